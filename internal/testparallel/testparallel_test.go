package testparallel

import (
	"flag"
	"os"
	"sync/atomic"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	Raise(4)
	os.Exit(m.Run())
}

var running, most atomic.Int32

// TestRaise: four parallel tests that wait run all at once, where the
// default (one per CPU) would let at most GOMAXPROCS of them.
func TestRaise(t *testing.T) {
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "test.parallel" })
	if given {
		t.Skip("-test.parallel was given: Raise leaves it")
	}
	if v := flag.Lookup("test.parallel").Value.String(); v != "4" {
		t.Fatalf("-test.parallel is %s, want 4", v)
	}
	for i := range 4 {
		t.Run(string(rune('a'+i)), func(t *testing.T) {
			t.Parallel()
			n := running.Add(1)
			defer running.Add(-1)
			for {
				m := most.Load()
				if n <= m || most.CompareAndSwap(m, n) {
					break
				}
			}
			// Wait until all four are in, with a generous deadline.
			for deadline := time.Now().Add(10 * time.Second); most.Load() < 4 && time.Now().Before(deadline); {
				time.Sleep(time.Millisecond)
			}
		})
	}
	t.Cleanup(func() {
		if m := most.Load(); m != 4 {
			t.Errorf("at most %d of the parallel tests ran at once, want 4", m)
		}
	})
}
