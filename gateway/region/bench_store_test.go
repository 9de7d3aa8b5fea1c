package region

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/zbridge/zbridge/gateway/store"
	"github.com/zbridge/zbridge/gateway/store/diskstore"
	"github.com/zbridge/zbridge/gateway/store/memstore"
	"github.com/zbridge/zbridge/gateway/store/storetest"
	"github.com/zbridge/zbridge/protocol"
)

// BenchmarkStoreAppend measures the latency of one Append of a batch of
// 64 syslog-sized events (what the SYSLOG server hands the store under a
// steady load) into the embedded store in memory and on disk under each
// sync policy, and reports its p50 and p99 and the events per second one
// appender reaches. Under batch and os an Append returns once written to
// the kernel; under always once fsynced.
//
//	go test -run '^$' -bench StoreAppend -benchtime 20000x ./gateway/region/
func BenchmarkStoreAppend(b *testing.B) {
	b.Run("memory", func(b *testing.B) {
		benchAppend(b, memstore.New(memstore.Config{MaxEvents: 200_000}))
	})
	for _, p := range []diskstore.SyncPolicy{diskstore.SyncBatch, diskstore.SyncAlways, diskstore.SyncOS} {
		b.Run("disk-"+string(p), func(b *testing.B) {
			s, err := diskstore.Open(diskstore.Config{Dir: b.TempDir(), Sync: p, MaxEvents: 200_000,
				Logger: quietLogger()})
			if err != nil {
				b.Fatal(err)
			}
			benchAppend(b, s)
		})
	}
}

func benchAppend(b *testing.B, s store.Store) {
	defer s.Close()
	const batch = 64
	// Events like the relay's: 200 bytes of text, raw the same.
	proto := storetest.Events("x", batch)
	text := string(make([]byte, 200))
	for _, e := range proto {
		e.Text, e.Raw, e.App, e.ProcID = text, text, "app", "1234"
		e.Origin = protocol.Origin{System: "lnx1", Host: "lnx1", Addr: "127.0.0.1"}
	}
	lat := make([]time.Duration, 0, b.N)
	ctx := context.Background()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		evs := make([]*protocol.Event, batch)
		for k, e := range proto {
			c := *e
			evs[k] = &c
		}
		t0 := time.Now()
		if err := s.Append(ctx, evs); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	el := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-µs")
	b.ReportMetric(float64(b.N*batch)/el.Seconds(), "events/s")
	b.ReportMetric(0, "ns/op")
}
