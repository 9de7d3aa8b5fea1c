package memstore

import (
	"context"
	"testing"

	"github.com/zbridge/zbridge/gateway/store"
	"github.com/zbridge/zbridge/gateway/store/storetest"
	"github.com/zbridge/zbridge/protocol"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Options{
		New: func(t *testing.T, r storetest.Retention) store.Store {
			return New(Config{MaxEvents: r.MaxEvents, MaxBytes: r.MaxBytes})
		},
	})
}

func BenchmarkAppendRead(b *testing.B) {
	s := New(Config{MaxEvents: 100000})
	batch := storetest.Events("bench", 256)
	ctx := context.Background()
	var buf []*protocol.Event
	var after protocol.ID
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += len(batch) {
		evs := make([]*protocol.Event, len(batch))
		for j := range batch {
			e := *batch[j]
			evs[j] = &e
		}
		if err := s.Append(ctx, evs); err != nil {
			b.Fatal(err)
		}
		buf, _, _ = s.Read(ctx, after, 256, buf[:0])
		after = buf[len(buf)-1].ID
	}
}
