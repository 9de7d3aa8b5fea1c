package unsolmsg

import (
	"testing"
	"time"
)

// TestNamesWindow: a name counts until the window passes after its last
// use (a subscribe, or the end of the session that used it); then the
// client may use another.
func TestNamesWindow(t *testing.T) {
	var n names
	const max, window = 2, time.Hour
	t0 := time.Date(2026, 12, 8, 0, 0, 0, 0, time.UTC)
	for _, step := range []struct {
		key  string
		at   time.Duration
		want bool
	}{
		{"a", 0, true},
		{"b", time.Minute, true},
		{"c", 2 * time.Minute, false},
		{"a", 3 * time.Minute, true}, // counted: a use again
		{"c", time.Hour, false},
		{"c", time.Hour + time.Minute, true}, // b unused for an hour
		{"d", 2 * time.Hour, false},          // a ended at 90 minutes (below)
	} {
		if step.key == "d" {
			n.done("x", "a", t0.Add(90*time.Minute))
		}
		if got := n.use("x", step.key, t0.Add(step.at), max, window); got != step.want {
			t.Fatalf("use(%q) at +%v = %v, want %v", step.key, step.at, got, step.want)
		}
	}
	if !n.use("y", "d", t0, max, window) {
		t.Fatal("another client's name refused")
	}
}
