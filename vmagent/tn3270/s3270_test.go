package tn3270

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/zbridge/zbridge/internal/peer"
)

// s3270 drives a real s3270 process (the x3270 suite's scripting terminal)
// through its standard input, one action at a time, reading the replies
// from its output. It is the outside judge of what a screen shows.
type s3270 struct {
	t    testing.TB
	p    *peer.Process
	seen int // replies consumed
}

// s3270Reply is s3270's answer to one action: its data lines, the status
// line and whether it ended with "ok".
type s3270Reply struct {
	data   []string
	status string
	ok     bool
}

// startS3270 starts s3270 emulating a 3278 model 2 with codepage CP037, the
// same terminal as a default Client.
func startS3270(t testing.TB) *s3270 {
	t.Helper()
	path := peer.Require(t, "s3270")
	p := peer.Start(t, peer.Command{
		Name:          "s3270",
		Path:          path,
		Args:          []string{"-model", "3278-2", "-codepage", "cp037"},
		Env:           []string{"LANG=C.UTF-8", "LC_ALL=C.UTF-8"},
		KeepStdinOpen: true,
		StopTimeout:   3 * time.Second,
	})
	return &s3270{t: t, p: p}
}

// do runs one action and returns its reply; an "error" reply is an error.
func (s *s3270) do(ctx context.Context, action string) (s3270Reply, error) {
	if _, err := io.WriteString(s.p.Stdin(), action+"\n"); err != nil {
		return s3270Reply{}, fmt.Errorf("s3270 %s: %w", action, err)
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if replies := parseS3270(s.p.Log()); len(replies) > s.seen {
			r := replies[s.seen]
			s.seen++
			if !r.ok {
				return r, fmt.Errorf("s3270 %s: error: %s", action, strings.Join(r.data, " / "))
			}
			return r, nil
		}
		select {
		case <-ctx.Done():
			return s3270Reply{}, fmt.Errorf("s3270 %s: no reply: %w", action, ctx.Err())
		case <-s.p.Done():
			return s3270Reply{}, fmt.Errorf("s3270 %s: s3270 exited", action)
		case <-tick.C:
		}
	}
}

// parseS3270 splits s3270's output into replies: "data: " lines, a status
// line, then "ok" or "error".
func parseS3270(out string) []s3270Reply {
	var (
		replies []s3270Reply
		cur     s3270Reply
		prev    string
	)
	for line := range strings.Lines(out) {
		line = strings.TrimSuffix(line, "\n")
		switch {
		case strings.HasPrefix(line, "data: "):
			cur.data = append(cur.data, line[len("data: "):])
		case line == "data:":
			cur.data = append(cur.data, "")
		case line == "ok" || line == "error":
			cur.ok = line == "ok"
			cur.status = prev
			replies = append(replies, cur)
			cur = s3270Reply{}
		}
		prev = line
	}
	return replies
}

// ascii returns the screen as s3270 shows it, and the cursor position from
// its status line.
func (s *s3270) ascii(ctx context.Context) ([]string, Pos, error) {
	r, err := s.do(ctx, "Ascii()")
	if err != nil {
		return nil, Pos{}, err
	}
	// Status: keyboard formatted protected connection mode model rows
	// cols cursor-row cursor-col window time.
	f := strings.Fields(r.status)
	var cur Pos
	if len(f) < 10 {
		return nil, Pos{}, fmt.Errorf("s3270: odd status line %q", r.status)
	}
	fmt.Sscan(f[8], &cur.Row)
	fmt.Sscan(f[9], &cur.Col)
	return r.data, cur, nil
}

// waitScreen polls s3270's screen until cond holds, and returns it.
func (s *s3270) waitScreen(ctx context.Context, cond func([]string) bool) ([]string, Pos, error) {
	for {
		rows, cur, err := s.ascii(ctx)
		if err != nil {
			return nil, Pos{}, err
		}
		if cond(rows) {
			return rows, cur, nil
		}
		select {
		case <-ctx.Done():
			return rows, cur, fmt.Errorf("s3270: screen not as awaited: %w; last screen:\n%s", ctx.Err(), strings.Join(rows, "\n"))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// containsLine reports whether any row contains s.
func containsLine(rows []string, s string) bool {
	for _, r := range rows {
		if strings.Contains(r, s) {
			return true
		}
	}
	return false
}

// diffRows describes how two screens differ, row by row.
func diffRows(want, got []string) string {
	var b strings.Builder
	if len(want) != len(got) {
		fmt.Fprintf(&b, "%d rows, want %d\n", len(got), len(want))
	}
	for i := range max(len(want), len(got)) {
		var w, g string
		if i < len(want) {
			w = want[i]
		}
		if i < len(got) {
			g = got[i]
		}
		if w != g {
			fmt.Fprintf(&b, "row %2d: got  %q\n        want %q\n", i, g, w)
		}
	}
	return b.String()
}
