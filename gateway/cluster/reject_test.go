package cluster

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestClip(t *testing.T) {
	for _, tt := range []struct {
		name, in string
		n        int
		want     string
	}{
		{"short", "abc", 5, "abc"},
		{"exact", "abcde", 5, "abcde"},
		{"long", "abcdefgh", 5, "abcde… (8 bytes)"},
		{"rune across the cut", "abcdé" + "fgh", 5, "abcd… (9 bytes)"},           // é is 2 bytes: 4 and 5
		{"rune ending at the cut", "abcé" + "fgh", 5, "abcé… (8 bytes)"},         // é is bytes 3 and 4
		{"4-byte rune across the cut", "ab😀cdef", 5, "ab… (10 bytes)"},           // 😀 is bytes 2 to 5
		{"invalid UTF-8", strings.Repeat("\x80", 10), 5, "\x80\x80… (10 bytes)"}, // no rune start: cut at most 3 back
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := clip(tt.in, tt.n)
			if got != tt.want {
				t.Errorf("clip(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
			}
			if utf8.ValidString(tt.in) && !utf8.ValidString(got) {
				t.Errorf("clip(%q, %d) = %q splits a rune", tt.in, tt.n, got)
			}
		})
	}
}

// TestLogLimiter: the first line passes, then one a minute at most, with
// the number held back since the last.
func TestLogLimiter(t *testing.T) {
	l := logLimiter{every: time.Minute}
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i, step := range []struct {
		at   time.Duration
		ok   bool
		held uint64
	}{
		{0, true, 0},
		{time.Second, false, 0},
		{30 * time.Second, false, 0},
		{59 * time.Second, false, 0},
		{time.Minute, true, 3},
		{time.Minute + time.Second, false, 0},
		{10 * time.Minute, true, 1},
		{11 * time.Minute, true, 0},
	} {
		held, ok := l.allow(t0.Add(step.at))
		if ok != step.ok || held != step.held {
			t.Errorf("step %d, at +%v: allow = %d, %v; want %d, %v", i, step.at, held, ok, step.held, step.ok)
		}
	}
}
