package unsolmsg_test

import (
	"context"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/gateway/store/memstore"
	"github.com/zbridge/zbridge/gateway/unsolmsg"
	"github.com/zbridge/zbridge/protocol"
)

// recorder is an unsolmsg.Observer that keeps what it is given.
type recorder struct {
	mu sync.Mutex // guards vs
	vs []float64
}

func (r *recorder) Observe(v float64) {
	r.mu.Lock()
	r.vs = append(r.vs, v)
	r.mu.Unlock()
}

func (r *recorder) values() []float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.vs)
}

// TestRelayLatency: each event written to a subscriber is observed once,
// with the time since it was received; events its filter excludes are not.
func TestRelayLatency(t *testing.T) {
	for _, format := range []string{unsolmsg.FormatJSON, unsolmsg.FormatLX} {
		t.Run(format, func(t *testing.T) { testRelayLatency(t, format) })
	}
}

func testRelayLatency(t *testing.T, format string) {
	st := memstore.New(memstore.Config{})
	t.Cleanup(func() { st.Close() })
	l := logrus.New()
	l.SetOutput(io.Discard)
	rec := &recorder{}
	srv, err := unsolmsg.New(unsolmsg.Config{Store: st, Logger: l, RelayLatency: rec})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		<-served
	})

	c := dial(t, ln.Addr().String())
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if _, err := c.Subscribe(ctx, &protocol.Filter{Origin: "lnx01"}, "", format); err != nil {
		t.Fatal(err)
	}
	start := time.Now() // before the times below: the bound must cover them
	old := syslogEvent("lnx01", "received two seconds ago")
	old.Received = time.Now().Add(-2 * time.Second)
	fresh := syslogEvent("lnx01", "received now")
	skipped := syslogEvent("lnx02", "not for this subscriber")
	future := syslogEvent("lnx01", "received by a region whose clock is ahead")
	future.Received = time.Now().Add(time.Hour)
	if err := st.Append(context.Background(), []*protocol.Event{old, fresh, skipped, future}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if f := next(t, c); f.Type != protocol.TypeEvent {
			t.Fatalf("frame %+v, want an event", f)
		}
	}
	// The observations follow the write the client has read.
	waitFor(t, "3 observations", func() bool { return len(rec.values()) >= 3 })
	bound := time.Since(start).Seconds()
	got := rec.values()
	if len(got) != 3 {
		t.Fatalf("observed %v, want 3 values (not the excluded event)", got)
	}
	if got[0] < 2 || got[0] > 2+bound {
		t.Errorf("old event observed %vs, want 2s and a little", got[0])
	}
	if got[1] < 0 || got[1] > bound {
		t.Errorf("fresh event observed %vs, want at most %vs", got[1], bound)
	}
	if got[2] != 0 {
		t.Errorf("an event received in the future observed %vs, want 0", got[2])
	}
}
