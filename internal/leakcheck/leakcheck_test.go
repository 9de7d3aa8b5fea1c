package leakcheck

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

// recorder is a testing.TB that keeps its failure instead of failing.
type recorder struct {
	testing.TB
	failed string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) { r.failed = fmt.Sprintf(format, args...) }

func TestWait(t *testing.T) {
	before := runtime.NumGoroutine()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-stop
	}()
	r := &recorder{TB: t}
	Wait(r, before, 50*time.Millisecond)
	if !strings.Contains(r.failed, "goroutines left") || !strings.Contains(r.failed, "leakcheck.TestWait") {
		t.Errorf("a goroutine left behind: failure %q, want the count and its stack", r.failed)
	}
	close(stop)
	<-done
	r = &recorder{TB: t}
	Wait(r, before, 5*time.Second)
	if r.failed != "" {
		t.Errorf("no goroutine left behind: failed with %q", r.failed)
	}
}
