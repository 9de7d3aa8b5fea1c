// Package checkgrid spaces periodic checks of many connections (UNSOLMSG,
// COMMANDS and VMMON heartbeats, the Linux agents' SSH keepalives) on a
// grid shared by all of them: each connection checks on a phase, a random
// step of the grid within the interval, and connections with the same
// phase check at the same instants, whenever they were made. Ten
// thousand connections then wake the process a few times a second, in
// batches, instead of ten thousand times at moments of their own, and do
// not all check at once either.
package checkgrid

import (
	"math/rand/v2"
	"time"
)

// Step is the step of the grid for an interval: a second, or an eighth of
// a shorter interval (a millisecond at least).
func Step(interval time.Duration) time.Duration {
	return max(min(time.Second, interval/8), time.Millisecond)
}

// Phase picks a connection's phase: a random step of the grid within the
// interval.
func Phase(interval time.Duration) time.Duration {
	step := Step(interval)
	return step * time.Duration(rand.N(int64(max(interval/step, 1))))
}

// Next returns the first time after now that is phase past a multiple of
// interval since the Unix epoch.
func Next(now time.Time, interval, phase time.Duration) time.Time {
	t := now.UnixNano() - int64(phase)
	next := (t/int64(interval) + 1) * int64(interval)
	return time.Unix(0, next+int64(phase))
}
