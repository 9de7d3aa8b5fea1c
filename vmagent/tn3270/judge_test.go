package tn3270

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/racingmars/go3270"
)

// TestScreensAgainstS3270 shows each test screen to our client and to
// s3270, and checks that every row of text and the cursor are the same.
// With -update it records the data stream and s3270's text as golden files.
func TestScreensAgainstS3270(t *testing.T) {
	for _, ts := range testScreens() {
		t.Run(ts.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
			defer cancel()
			s := startS3270(t)
			host := startHost(t, func(conn net.Conn, _ go3270.DevInfo) error {
				if err := ts.show(conn); err != nil {
					return err
				}
				return drain(conn)
			})

			var rec recorder
			c, err := Dial(ctx, host.addr, Config{Trace: rec.trace, Logger: testLogger(t)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			ours, err := c.WaitFor(ctx, hasMarker(ts.marker))
			if err != nil {
				t.Fatalf("our client: %v\n%s", err, c.Screen())
			}

			if _, err := s.do(ctx, fmt.Sprintf("Connect(%s)", host.addr)); err != nil {
				t.Fatal(err)
			}
			theirs, cur, err := s.waitScreen(ctx, func(rows []string) bool { return containsLine(rows, ts.marker) })
			if err != nil {
				t.Fatal(err)
			}
			if !equalRows(ours.Rows(), theirs) {
				t.Errorf("screen differs from s3270's:\n%s", diffRows(theirs, ours.Rows()))
			}
			if ours.Cursor != cur {
				t.Errorf("cursor at %v, s3270 has it at %v", ours.Cursor, cur)
			}
			if !t.Failed() {
				saveRecording(t, ts.name, fmt.Sprintf("go3270 test host, screen %q (screens_test.go)", ts.name), rec.records(), theirs)
			}

			if ts.name == "login" {
				compareTyping(ctx, t, c, s)
			}
			s.do(ctx, "Disconnect()")
		})
	}
}

// keyActions turns String("text") into one Key() action a character:
// s3270's String() pastes, and pasting continues a full field on the next
// row, where a keyboard (and Client.Type) skips to the next field.
func keyActions(action string) []string {
	text, ok := strings.CutPrefix(action, `String("`)
	if !ok {
		return []string{action}
	}
	var keys []string
	for _, r := range strings.TrimSuffix(text, `")`) {
		keys = append(keys, fmt.Sprintf("Key(%c)", r))
	}
	return keys
}

// compareTyping types into the login screen on both terminals, key for
// key, and compares the screens and cursors after each.
func compareTyping(ctx context.Context, t *testing.T, c *Client, s *s3270) {
	steps := []struct {
		action string
		ours   func() error
	}{
		{`String("alice")`, func() error { return c.Type("alice") }},
		{`Tab()`, c.Tab},
		{`String("pw")`, func() error { return c.Type("pw") }},
		{`Tab()`, c.Tab},
		{`String("77")`, func() error { return c.Type("77") }},
		{`Tab()`, c.Tab},
		{`MoveCursor(4,20)`, func() error { return c.MoveCursor(4, 20) }},
		{`String("xy")`, func() error { return c.Type("xy") }},
	}
	for _, st := range steps {
		if err := st.ours(); err != nil {
			t.Fatalf("%s: our client: %v", st.action, err)
		}
		for _, a := range keyActions(st.action) {
			if _, err := s.do(ctx, a); err != nil {
				t.Fatal(err)
			}
		}
		theirs, cur, err := s.ascii(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ours := c.Screen()
		if !equalRows(ours.Rows(), theirs) {
			t.Errorf("after %s: screen differs from s3270's:\n%s", st.action, diffRows(theirs, ours.Rows()))
		}
		if ours.Cursor != cur {
			t.Errorf("after %s: cursor at %v, s3270 has it at %v", st.action, ours.Cursor, cur)
		}
	}
}
