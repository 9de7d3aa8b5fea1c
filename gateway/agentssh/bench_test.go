package agentssh

import (
	"slices"
	"testing"
	"time"
)

// BenchmarkRunTrue measures the round trip of Run("true") over the pooled
// connection to a real sshd: a session channel opened, the command run by
// the user's shell, its exit status back. It reports the 50th and 99th
// percentiles besides the mean.
func BenchmarkRunTrue(b *testing.B) {
	f := newFixture(b)
	addr, _ := f.pinnedSSHD()
	p := f.newPool(func(c *Config) { c.Logger = quietLogger() })
	p.Add("lx1", addr)
	waitConnected(b, p, "lx1")
	ctx := b.Context()
	cmd := Command{Line: "true"}
	if _, err := p.Run(ctx, "lx1", cmd, nil); err != nil { // warm up
		b.Fatal(err)
	}
	durations := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for b.Loop() {
		res, err := p.Run(ctx, "lx1", cmd, nil)
		if err != nil || res.ExitStatus != 0 {
			b.Fatalf("Run: %+v, %v", res, err)
		}
		durations = append(durations, res.Duration)
	}
	b.StopTimer()
	slices.Sort(durations)
	pct := func(q float64) float64 {
		return float64(durations[int(q*float64(len(durations)-1))]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}
