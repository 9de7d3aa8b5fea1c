package drain

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestWaitDrains(t *testing.T) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { time.Sleep(10 * time.Millisecond); wg.Done() }()
	forced := false
	if err := Wait(context.Background(), &wg, func() { forced = true }); err != nil || forced {
		t.Fatalf("Wait = %v, forced %v; want nil, not forced", err, forced)
	}
}

func TestWaitForces(t *testing.T) {
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() { <-stop; wg.Done() }() // returns only when forced
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Wait(ctx, &wg, func() { close(stop) }); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait = %v; want context.Canceled after forcing", err)
	}
}
