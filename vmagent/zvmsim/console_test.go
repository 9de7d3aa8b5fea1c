package zvmsim

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// numbered returns n lines "L001", "L002", ...
func numbered(from, n int) []string {
	var out []string
	for i := from; i < from+n; i++ {
		out = append(out, fmt.Sprintf("L%03d", i))
	}
	return out
}

func TestConsoleStates(t *testing.T) {
	type step struct {
		do         func(c *console)
		rows       int // rows on the screen after the step
		pending    int
		status     string
		wantsTimer bool
	}
	write := func(n int) func(*console) { return func(c *console) { c.write(false, numbered(1, n)...) } }
	msg := func(c *console) { c.write(true, "12:00:00 * MSG FROM MAINT   : hi") }
	clear := func(c *console) { c.clearScreen() }
	enter := func(c *console) { c.enter() }
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"output fits", []step{
			{write(10), 10, 0, statusCPRead, false},
			{write(12), 22, 0, statusCPRead, false},
		}},
		{"full screen then MORE... and the delay or CLEAR", []step{
			{write(30), 22, 8, statusMore, true},
			{clear, 8, 0, statusCPRead, false},
		}},
		{"a full screen alone is not MORE...", []step{
			{write(22), 22, 0, statusCPRead, false},
			{write(1), 22, 1, statusMore, true},
		}},
		{"ENTER during MORE... holds until CLEAR", []step{
			{write(50), 22, 28, statusMore, true},
			{enter, 22, 28, statusHolding, false},
			{enter, 22, 28, statusHolding, false},
			{write(2), 22, 30, statusHolding, false},
			{clear, 22, 8, statusMore, true},
			{clear, 8, 0, statusCPRead, false},
		}},
		{"ENTER without MORE... changes nothing", []step{
			{write(3), 3, 0, statusCPRead, false},
			{enter, 3, 0, statusCPRead, false},
		}},
		{"a message that fits just appears", []step{
			{write(5), 5, 0, statusCPRead, false},
			{msg, 6, 0, statusCPRead, false},
		}},
		{"a message on a full screen holds", []step{
			{write(22), 22, 0, statusCPRead, false},
			{msg, 22, 1, statusHolding, false},
			{clear, 1, 0, statusCPRead, false},
		}},
		{"a message during MORE... holds", []step{
			{write(25), 22, 3, statusMore, true},
			{msg, 22, 4, statusHolding, false},
			{clear, 4, 0, statusCPRead, false},
		}},
		{"a held message holds the next screen too", []step{
			{write(22), 22, 0, statusCPRead, false},
			{write(30), 22, 30, statusMore, true},
			{msg, 22, 31, statusHolding, false},
			{clear, 22, 9, statusHolding, false},
			{clear, 9, 0, statusCPRead, false},
		}},
		{"CLEAR with nothing waiting empties the screen", []step{
			{write(4), 4, 0, statusCPRead, false},
			{clear, 0, 0, statusCPRead, false},
		}},
		{"RUNNING, and MORE... over it", []step{
			{func(c *console) { c.running = true }, 0, 0, statusRunning, false},
			{write(23), 22, 1, statusMore, true},
			{clear, 1, 0, statusRunning, false},
			{func(c *console) { c.notAccepted = true }, 1, 0, statusNotAccepted, false},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &console{}
			for i, s := range tc.steps {
				s.do(c)
				if len(c.rows) != s.rows || len(c.pending) != s.pending || c.status() != s.status || c.wantsTimer() != s.wantsTimer {
					t.Fatalf("step %d: rows %d pending %d status %q timer %v; want %d %d %q %v",
						i, len(c.rows), len(c.pending), c.status(), c.wantsTimer(), s.rows, s.pending, s.status, s.wantsTimer)
				}
			}
		})
	}
}

// Every line appears once, in order, across MORE... screens, however the
// output arrives.
func TestConsoleEveryLineOnce(t *testing.T) {
	for _, chunk := range []int{1, 7, 22, 23, 200} {
		t.Run(fmt.Sprint(chunk), func(t *testing.T) {
			c := &console{}
			want := numbered(1, 200)
			var seen []string
			take := func() {
				seen = append(seen, c.rows...)
				c.clearScreen()
			}
			for i := 0; i < len(want); i += chunk {
				c.write(false, want[i:min(i+chunk, len(want))]...)
				if c.status() == statusMore {
					c.enter() // hold it, as a reader who is not done
					take()
				}
			}
			for len(c.rows) > 0 {
				take()
			}
			if !slices.Equal(seen, want) {
				t.Fatalf("lines seen:\n%q\nwant\n%q", seen, want)
			}
		})
	}
}

func TestSplitLine(t *testing.T) {
	long := strings.Repeat("x", 200)
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"", []string{""}},
		{"short", []string{"short"}},
		{strings.Repeat("a", 79), []string{strings.Repeat("a", 79)}},
		{long, []string{long[:79], long[79:158], long[158:]}},
		{"tab\there\x00", []string{"tab here "}},
		// The split real z/VM made of this message (zvm-bootcamp).
		{msgXautologInfo("LINUX2"), []string{
			"HCPCLS6056I XAUTOLOG information for LINUX2: The IPL command is verified by the",
			"IPL command processor.",
		}},
		{strings.Repeat("a", 79) + " b", []string{strings.Repeat("a", 79), "b"}},
		// The blanks before the break stay on the row; one is dropped.
		{strings.Repeat("a", 70) + strings.Repeat(" ", 9) + "bcd", []string{strings.Repeat("a", 70) + strings.Repeat(" ", 8), "bcd"}},
		{strings.Repeat("a", 70) + strings.Repeat(" ", 12) + "bcd", []string{strings.Repeat("a", 70) + strings.Repeat(" ", 9), "  bcd"}},
	} {
		if got := splitLine(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("splitLine(%q) = %q, want %q", tc.in, got, tc.want)
		}
		for _, r := range splitLine(tc.in) {
			if len([]rune(r)) > lineWidth {
				t.Errorf("row %q longer than %d", r, lineWidth)
			}
		}
	}
}
