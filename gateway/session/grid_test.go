package session

import (
	"testing"
	"time"
)

// TestCheckGrid checks the heartbeat checks' grid: a session's checks fall
// a whole interval apart on its phase, a step of the grid within the
// interval, so that sessions with the same phase check at the same
// instants, whenever they logged on.
func TestCheckGrid(t *testing.T) {
	for _, interval := range []time.Duration{500 * time.Millisecond, 15 * time.Second, 150 * time.Second} {
		step := checkStep(interval)
		phases := map[time.Duration]bool{}
		for range 200 {
			ph := checkPhase(interval)
			if ph < 0 || ph >= interval || ph%step != 0 {
				t.Fatalf("interval %v: phase %v, want a multiple of %v below the interval", interval, ph, step)
			}
			phases[ph] = true
		}
		if want := min(int(interval/step), 200) / 2; len(phases) < want {
			t.Errorf("interval %v: %d phases in 200 picks, want at least %d: the phases are not spread", interval, len(phases), want)
		}
		ph := checkPhase(interval)
		now := time.Now()
		first := nextCheck(now, interval, ph)
		if !first.After(now) || first.Sub(now) > interval || (first.UnixNano()-int64(ph))%int64(interval) != 0 {
			t.Fatalf("interval %v, phase %v: first check %v after now, at %v", interval, ph, first.Sub(now), first)
		}
		if next := nextCheck(first, interval, ph); next.Sub(first) != interval {
			t.Errorf("interval %v: checks %v apart", interval, next.Sub(first))
		}
		if later := nextCheck(now.Add(interval/3), interval, ph); later != first && later != first.Add(interval) {
			t.Errorf("interval %v: a session that logged on later checks at %v, off the grid of %v", interval, later, first)
		}
	}
}
