package throttle

import (
	"fmt"
	"runtime"
	"testing"
	"time"
)

// clock is a settable clock for Config.Now.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newTable(t *testing.T, capacity int) (*Table[string], *clock) {
	t.Helper()
	c := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	tb, err := New[string](Config{MaxFailures: 3, Window: time.Minute, Block: time.Second,
		MaxBlock: 8 * time.Second, Capacity: capacity, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	return tb, c
}

func TestTable(t *testing.T) {
	// Each step happens after advancing the clock by wait.
	type step struct {
		wait     time.Duration
		op       string // "fail", "ok" or "check"
		key      string
		want     time.Duration // Failure's block, or Wait's wait
		wantKeys int
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"blocks after MaxFailures, doubling to MaxBlock", []step{
			{0, "fail", "a", 0, 1},
			{0, "fail", "a", 0, 1},
			{0, "check", "a", 0, 1},
			{0, "fail", "a", time.Second, 1},
			{0, "check", "a", time.Second, 1},
			{500 * time.Millisecond, "check", "a", 500 * time.Millisecond, 1},
			{500 * time.Millisecond, "check", "a", 0, 1},
			{0, "fail", "a", 2 * time.Second, 1},
			{0, "fail", "a", 4 * time.Second, 1},
			{0, "fail", "a", 8 * time.Second, 1},
			{0, "fail", "a", 8 * time.Second, 1},
			{0, "check", "b", 0, 1},
		}},
		{"keys are apart", []step{
			{0, "fail", "a", 0, 1},
			{0, "fail", "a", 0, 1},
			{0, "fail", "a", time.Second, 1},
			{0, "fail", "b", 0, 2},
			{0, "check", "b", 0, 2},
		}},
		{"success forgets", []step{
			{0, "fail", "a", 0, 1},
			{0, "fail", "a", 0, 1},
			{0, "ok", "a", 0, 0},
			{0, "fail", "a", 0, 1},
			{0, "fail", "a", 0, 1},
			{0, "fail", "a", time.Second, 1},
		}},
		{"forgotten a Window after the last failure", []step{
			{0, "fail", "a", 0, 1},
			{0, "fail", "a", 0, 1},
			{time.Minute - time.Second, "fail", "a", time.Second, 1},
			{time.Minute + time.Second, "check", "a", 0, 0},
			{0, "fail", "a", 0, 1},
		}},
		{"remembered a Window after the block ends", []step{
			{0, "fail", "a", 0, 1},
			{0, "fail", "a", 0, 1},
			{0, "fail", "a", time.Second, 1},
			{0, "fail", "a", 2 * time.Second, 1},
			{0, "fail", "a", 4 * time.Second, 1},
			{4 * time.Second, "check", "a", 0, 1},
			{time.Minute - time.Second, "fail", "a", 8 * time.Second, 1}, // still growing
			{8*time.Second + time.Minute, "fail", "a", 0, 1},             // forgotten: a first failure
		}},
		{"full: the least recent failure goes", []step{
			{0, "fail", "a", 0, 1},
			{0, "fail", "b", 0, 2},
			{0, "fail", "c", 0, 3},
			{0, "fail", "a", 0, 3}, // a is the most recent now
			{0, "fail", "d", 0, 3}, // b goes
			{0, "fail", "b", 0, 3}, // c goes; b starts again
			{0, "fail", "b", 0, 3},
			{0, "fail", "a", time.Second, 3}, // a was kept: its third failure
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb, c := newTable(t, 3)
			for i, s := range tt.steps {
				c.advance(s.wait)
				var got time.Duration
				switch s.op {
				case "fail":
					got = tb.Failure(s.key)
				case "ok":
					tb.Success(s.key)
				case "check":
					got = tb.Wait(s.key)
				}
				if got != s.want || tb.Len() != s.wantKeys {
					t.Fatalf("step %d (%s %s): got %v with %d keys, want %v with %d", i, s.op, s.key, got, tb.Len(), s.want, s.wantKeys)
				}
			}
		})
	}
}

func TestConfig(t *testing.T) {
	good := Config{MaxFailures: 1, Window: time.Second, Block: time.Second, MaxBlock: time.Second, Capacity: 1}
	for _, tt := range []struct {
		name string
		mod  func(*Config)
	}{
		{"no MaxFailures", func(c *Config) { c.MaxFailures = 0 }},
		{"no Window", func(c *Config) { c.Window = 0 }},
		{"no Block", func(c *Config) { c.Block = 0 }},
		{"MaxBlock below Block", func(c *Config) { c.MaxBlock = time.Millisecond }},
		{"no Capacity", func(c *Config) { c.Capacity = 0 }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			tt.mod(&c)
			if _, err := New[string](c); err == nil {
				t.Error("New accepted it")
			}
		})
	}
	if _, err := New[string](good); err != nil {
		t.Errorf("New(%+v): %v", good, err)
	}
}

// TestMemoryBounded fails 200000 distinct keys: the table keeps Capacity
// of them, and the heap grows by about that many entries, not 200000.
func TestMemoryBounded(t *testing.T) {
	const capacity = 1000
	tb, c := newTable(t, capacity)
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before := heap()
	for i := range 200_000 {
		tb.Failure(fmt.Sprintf("client-%07d", i))
		if i%1000 == 0 {
			c.advance(time.Millisecond)
		}
	}
	after := heap()
	if n := tb.Len(); n != capacity {
		t.Errorf("%d keys, want %d", n, capacity)
	}
	grown := int64(after) - int64(before)
	t.Logf("heap grew by %d bytes for %d entries: %d per entry", grown, capacity, grown/capacity)
	// A generous bound: 1 KiB an entry (200000 entries would be ~40 MB).
	if grown > capacity*1024 {
		t.Errorf("heap grew by %d bytes for %d entries", grown, capacity)
	}
	runtime.KeepAlive(tb)
}

func BenchmarkFailureFull(b *testing.B) {
	tb, err := New[int](Config{MaxFailures: 5, Window: time.Minute, Block: time.Second, MaxBlock: time.Minute, Capacity: 4096})
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; b.Loop(); i++ {
		tb.Failure(i)
	}
}
