package flood

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/zbridge/zbridge/protocol"
)

var discardNext = appenderFunc(func(context.Context, []*protocol.Event) error { return nil })

func benchLimiter(b *testing.B, cfg Config) *Limiter {
	cfg.Next, cfg.Logger, cfg.Interval = discardNext, quietLogger(), time.Hour
	l, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close(context.Background()) })
	return l
}

// benchBatch is a batch of 256 events from hosts sources of one address
// (a relay), each source's events together, as a connection delivers them.
func benchBatch(hosts int) []*protocol.Event {
	evs := make([]*protocol.Event, 256)
	for i := range evs {
		h := i * hosts / len(evs)
		evs[i] = ev("10.1.2.3", fmt.Sprintf("lnx%03d", h), "", "An application event log entry")
		evs[i].App = fmt.Sprintf("app%d", i%4)
	}
	return evs
}

func reportPerEvent(b *testing.B, n int) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/event")
}

// BenchmarkAppend is the normal path: the default limits, nothing held
// back (the buckets never run dry: the rate is raised so that the
// benchmark's own speed does not empty them). It must not allocate.
func BenchmarkAppend(b *testing.B) {
	for _, hosts := range []int{1, 16} {
		b.Run(fmt.Sprintf("hosts=%d", hosts), func(b *testing.B) {
			cfg := DefaultConfig()
			cfg.Rate, cfg.MsgIDRate, cfg.AddrRate = 1e12, 1e12, 1e12
			l := benchLimiter(b, cfg)
			evs := benchBatch(hosts)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				l.Append(ctx, evs)
			}
			reportPerEvent(b, len(evs))
		})
	}
}

// BenchmarkAppendFlood is a source far over its limit: every event is
// held back and counted (its text copied for the summary).
func BenchmarkAppendFlood(b *testing.B) {
	l := benchLimiter(b, Config{Rate: 1, Burst: 1, MsgIDRate: 1, MsgIDBurst: 1, AddrRate: 1, AddrBurst: 1})
	evs := benchBatch(1)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		l.Append(ctx, evs)
	}
	reportPerEvent(b, len(evs))
}

// BenchmarkAppendParallel is many connections at once, each from a source
// of its own, on the normal path.
func BenchmarkAppendParallel(b *testing.B) {
	cfg := DefaultConfig()
	cfg.Rate, cfg.MsgIDRate, cfg.AddrRate = 1e12, 1e12, 1e12
	l := benchLimiter(b, cfg)
	ctx := context.Background()
	var next int64
	var mu = make(chan struct{}, 1)
	mu <- struct{}{}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		<-mu
		next++
		evs := benchBatch(1)
		for _, e := range evs {
			e.Origin.Host = fmt.Sprintf("conn%d", next)
		}
		mu <- struct{}{}
		for pb.Next() {
			l.Append(ctx, evs)
		}
	})
	reportPerEvent(b, 256)
}

// TestAppendDoesNotAllocate: on the normal path (nothing held back) and
// while a source is held back, Append allocates nothing.
func TestAppendDoesNotAllocate(t *testing.T) {
	if testing.CoverMode() != "" || raceEnabled {
		t.Skip("allocations are counted without coverage and the race detector")
	}
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"passing", Config{Rate: 1e12, Burst: 1 << 30, MsgIDRate: 1e12, MsgIDBurst: 1 << 30, AddrRate: 1e12, AddrBurst: 1 << 30}},
		{"held back", Config{Rate: 1, Burst: 1, MsgIDRate: 1, MsgIDBurst: 1, AddrRate: 1, AddrBurst: 1}},
		{"held back by the address", Config{Rate: 1e12, Burst: 1 << 30, AddrRate: 1, AddrBurst: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Next, cfg.Logger, cfg.Interval = discardNext, quietLogger(), time.Hour
			l, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close(context.Background())
			evs := benchBatch(16)
			ctx := context.Background()
			l.Append(ctx, evs) // the sources and IDs are made
			if n := testing.AllocsPerRun(100, func() { l.Append(ctx, evs) }); n != 0 {
				t.Errorf("%v allocations an Append of %d events", n, len(evs))
			}
		})
	}
}
