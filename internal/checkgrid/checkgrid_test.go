package checkgrid

import (
	"testing"
	"time"
)

// TestGrid: each connection's
// checks fall a whole interval apart, on its phase, which is a step of the
// grid within the interval; so connections with the same phase check at
// the same instants.
func TestGrid(t *testing.T) {
	for _, interval := range []time.Duration{200 * time.Millisecond, 15 * time.Second, 30 * time.Second, 7500 * time.Millisecond} {
		step := Step(interval)
		if step > time.Second || step > interval/8 && interval >= 8*time.Millisecond {
			t.Errorf("interval %v: step %v", interval, step)
		}
		phases := map[time.Duration]bool{}
		for range 200 {
			ph := Phase(interval)
			if ph < 0 || ph >= interval || ph%step != 0 {
				t.Fatalf("interval %v: phase %v, want a multiple of %v below the interval", interval, ph, step)
			}
			phases[ph] = true
		}
		if want := min(int(interval/step), 200) / 2; len(phases) < want {
			t.Errorf("interval %v: %d phases in 200 picks, want at least %d", interval, len(phases), want)
		}
		ph := Phase(interval)
		start := time.Now()
		first := Next(start, interval, ph)
		if !first.After(start) || first.Sub(start) > interval {
			t.Fatalf("interval %v: first check %v after now, want within (0, interval]", interval, first.Sub(start))
		}
		if (first.UnixNano()-int64(ph))%int64(interval) != 0 {
			t.Errorf("interval %v: check at %v is not on phase %v", interval, first, ph)
		}
		if next := Next(first, interval, ph); next.Sub(first) != interval {
			t.Errorf("interval %v: checks %v apart", interval, next.Sub(first))
		}
		// Another connection, made later, with the same phase: the same
		// instants.
		if other := Next(start.Add(interval/3), interval, ph); other != first && other != first.Add(interval) {
			t.Errorf("interval %v: a connection made later checks at %v, not on the grid of %v", interval, other, first)
		}
	}
}
