package agentssh

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/zbridge/zbridge/internal/peer"
)

// BenchmarkRunTrue measures the round trip of Run("true") over the pooled
// connection to a real sshd: a session channel opened, the command run by
// the user's shell, its exit status back. It reports the 50th and 99th
// percentiles besides the mean.
//
// It logs in as peer.SSHLogin's ordinary user, whose shell start-up files
// are empty, so that it measures ssh: as root (as in CI) root's own
// ~/.bashrc, which bash reads when sshd runs it, made the p50 477 ms here.
func BenchmarkRunTrue(b *testing.B) {
	f := newFixture(b)
	name, _ := peer.SSHLogin(b)
	f.user = name
	// sshd reads authorized_keys as that user.
	for p, mode := range map[string]os.FileMode{filepath.Dir(f.dir): 0o755, f.dir: 0o755, f.authKeys: 0o644} {
		if err := os.Chmod(p, mode); err != nil {
			b.Fatal(err)
		}
	}
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
