package audit_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/zbridge/zbridge/gateway/audit"
)

// BenchmarkWrite writes command records from 1 and 16 goroutines at once.
// Every Write waits for an fsync, which dominates; with 16 writers the
// group commit shares each fsync among the writers that arrived during the
// one before (syncs/op below 1).
func BenchmarkWrite(b *testing.B) {
	for _, writers := range []int{1, 16} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			l, _ := newLog(b, audit.Config{})
			rec := audit.Record{Kind: audit.KindCommand, Phase: audit.PhaseStart, Client: "OPSAUTO",
				Remote: "10.1.2.3:50312", Session: "ZBR1-7", Server: "commands", Target: "linux:web1",
				Command: "df -h /var", ID: "ops-17", Rule: "role ops: linux:web* df -h **"}
			ctx := context.Background()
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			for range writers {
				wg.Go(func() {
					for next.Add(1) <= int64(b.N) {
						if err := l.Write(ctx, rec); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			s := l.Stats()
			b.ReportMetric(float64(s.Syncs)/float64(b.N), "syncs/op")
		})
	}
}
