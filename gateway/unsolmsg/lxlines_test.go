package unsolmsg

import (
	"fmt"
	"strings"
	"testing"

	"github.com/zbridge/zbridge/protocol"
	"github.com/zbridge/zbridge/protocol/lx"
)

// TestLXLines: with two lx subscriptions or more streaming, an event's line
// is encoded once and the same bytes serve every subscriber, the newest
// lxKept events' lines kept; with one, nothing is kept. Every line is the
// quoted lx.Format of its event.
func TestLXLines(t *testing.T) {
	ev := func(i int) *protocol.Event {
		return &protocol.Event{ID: protocol.ID{Ms: 1, Seq: uint64(i)}, Source: protocol.SourceSyslog,
			Origin: protocol.Origin{Host: "h"}, Text: fmt.Sprintf("text %d \"quoted\"\x01", i)}
	}
	want := func(e *protocol.Event) string { return string(protocol.AppendJSONString(nil, lx.Format(e))) }
	frame := func(e *protocol.Event) string { return string(protocol.AppendLineFrame(nil, e.ID, lx.Format(e))) }
	var c lxLines
	c.subs.Store(1)
	e := ev(0)
	if got := string(c.appendFrame(nil, e)); got != frame(e) || len(c.lines) != 0 {
		t.Fatalf("one subscriber: %q, kept %d; want %q", got, len(c.lines), frame(e))
	}
	c.subs.Store(2)
	if got := string(c.appendFrame(nil, e)); got != frame(e) || len(c.lines) != 1 {
		t.Fatalf("two subscribers: %q, kept %d; want %q", got, len(c.lines), frame(e))
	}
	a, b := c.line(e), c.line(e)
	if string(a) != want(e) || &a[0] != &b[0] {
		t.Fatalf("two subscribers: %q, shared %v", a, &a[0] == &b[0])
	}
	for i := 1; i <= lxKept+10; i++ {
		if got := c.line(ev(i)); string(got) != want(ev(i)) {
			t.Fatalf("event %d: %q", i, got)
		}
	}
	if len(c.lines) != lxKept {
		t.Fatalf("%d lines kept, want %d", len(c.lines), lxKept)
	}
	if _, ok := c.lines[e.ID]; ok {
		t.Error("the oldest line is still kept")
	}
	newest := ev(lxKept + 10)
	if _, ok := c.lines[newest.ID]; !ok {
		t.Error("the newest line is not kept")
	}

	// Another event with a kept event's ID gets its own line, not the
	// one kept (found in review: an ID can name two events).
	other := &protocol.Event{ID: newest.ID, Source: protocol.SourceSyslog, Origin: protocol.Origin{Host: "secret"}, Text: "other"}
	if got := string(c.line(other)); got != want(other) {
		t.Fatalf("another event of a kept ID: %q, want %q", got, want(other))
	}
	if got := string(c.line(newest)); got != want(newest) {
		t.Fatalf("the first event again: %q, want %q", got, want(newest))
	}

	// A line longer than its event's Size is not kept; the bytes kept
	// stay within lxKeptBytes.
	ctl := &protocol.Event{ID: protocol.ID{Ms: 9}, Source: protocol.SourceSyslog, Text: strings.Repeat("\x01", 100000)}
	if got := string(c.line(ctl)); got != want(ctl) {
		t.Fatal("the line of control characters is wrong")
	}
	if _, ok := c.lines[ctl.ID]; ok {
		t.Error("a line longer than its event's Size was kept")
	}
	for i := 0; i < 100; i++ {
		big := &protocol.Event{ID: protocol.ID{Ms: 10, Seq: uint64(i)}, Source: protocol.SourceSyslog, Text: strings.Repeat("x", 100000)}
		c.line(big)
	}
	if c.bytes > lxKeptBytes {
		t.Errorf("%d bytes kept, more than %d", c.bytes, lxKeptBytes)
	}
	// A short line keeps its whole event alive: the event counts too (one
	// decoded for a reader behind the store's cache is that reader's own).
	for i := 0; i < 100; i++ {
		raw := strings.Repeat("r", 1<<20) + " short"
		heavy := &protocol.Event{ID: protocol.ID{Ms: 11, Seq: uint64(i)}, Source: protocol.SourceSyslog, Raw: raw, Text: raw[len(raw)-5:]}
		c.line(heavy)
	}
	if c.bytes > lxKeptBytes || len(c.lines) > lxKeptBytes>>20 {
		t.Errorf("%d lines of 1 MiB events kept, %d bytes counted; want at most %d bytes", len(c.lines), c.bytes, lxKeptBytes)
	}
	sum := 0
	for _, l := range c.lines {
		sum += len(l.line) + l.ev.Size()
	}
	if sum != c.bytes {
		t.Errorf("the lines kept and their events hold %d bytes, counted %d", sum, c.bytes)
	}

	// The lines go when fewer than two subscriptions stream.
	c.subs.Store(0)
	done1, done2 := c.streaming(), c.streaming()
	c.line(ev(1))
	done2()
	done1()
	if len(c.lines) != 0 || c.bytes != 0 {
		t.Errorf("%d lines (%d bytes) kept with no subscription", len(c.lines), c.bytes)
	}
}

// BenchmarkSendLX: ten lx subscribers sending the same 512 new events, as
// their streams do (one op: the ten sends of one batch). With the lines
// shared (subscribers=10) each event's line is encoded once, by the first,
// against ten times (subscribers=1, where nothing is kept).
func BenchmarkSendLX(b *testing.B) {
	evs := make([]*protocol.Event, 512)
	for i := range evs {
		evs[i] = &protocol.Event{ID: protocol.ID{Ms: 2, Seq: uint64(i)}, Source: protocol.SourceSyslog,
			Origin: protocol.Origin{Host: "lnx01.example.com"}, Facility: protocol.FacDaemon, Severity: protocol.SevWarning,
			Text: "Failed password for root from 10.1.2.3 port 22 ssh2"}
	}
	for _, subs := range []int32{1, 10} {
		b.Run(fmt.Sprintf("subscribers=%d", subs), func(b *testing.B) {
			var c lxLines
			c.subs.Store(subs)
			var buf []byte
			round := uint64(0)
			b.ReportAllocs()
			for b.Loop() {
				round++
				for i, e := range evs { // new events: not yet kept
					e.ID = protocol.ID{Ms: 2, Seq: round<<16 | uint64(i)}
				}
				for range 10 {
					buf = buf[:0]
					for _, e := range evs {
						buf = c.appendFrame(buf, e)
					}
				}
			}
		})
	}
}
