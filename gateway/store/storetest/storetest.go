// Package storetest is the conformance suite every store.Store
// implementation must pass: the embedded store and the Redis store run the
// same tests. It covers store.Ledger too, which every store of this module
// implements.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zbridge/zbridge/gateway/store"
	"github.com/zbridge/zbridge/protocol"
)

// Retention is what the suite asks of a new store's retention.
type Retention struct {
	MaxEvents int
	MaxBytes  int64
	// GroupTTL, when not zero, is how long the store keeps a consumer
	// group nothing reads (zero: the store's default). A store that
	// deletes such groups by a sweep (Redis) should sweep often in the
	// suite: the suite waits for it up to 30 seconds.
	GroupTTL time.Duration
}

// Options describe the implementation under test.
type Options struct {
	// New returns a new, empty store with the given retention (zero
	// fields: the implementation's defaults). The suite closes it.
	New func(t *testing.T, r Retention) store.Store
	// ApproxTrim says retention by count may keep somewhat more than
	// MaxEvents (Redis MAXLEN ~): the suite then checks trimming happened,
	// not its exact point.
	ApproxTrim bool
	// Reopen, for a store whose data outlives it, closes s and returns a
	// new store on the same data (the same directory, the same Redis
	// prefix) with retention r; the suite closes it. The suite then checks
	// that what the store kept comes back. Nil for a store that keeps
	// nothing (memstore).
	Reopen func(t *testing.T, s store.Store, r Retention) store.Store
	// Describe, if set, returns what the store holds of a consumer group
	// and of the given events (its pending lists, its consumers, the
	// entries): the group tests log it when they fail, for a failure
	// seen once in a while to be understood from its log.
	Describe func(t *testing.T, s store.Store, group string, ids []protocol.ID) string
	// Skip, if set, moves the clock of every store New returns forward
	// by d. The group tests then skip the idle times they wait out
	// instead of sleeping through them. Nil: they sleep (a store on the
	// wall clock, such as Redis).
	Skip func(d time.Duration)
}

// idle lets d of idle time pass for the stores of o: Skip if it is set,
// a sleep otherwise.
func (o Options) idle(d time.Duration) {
	if o.Skip != nil {
		o.Skip(d)
		return
	}
	time.Sleep(d)
}

// SkipClock is a clock for Options.Skip: the wall clock plus however far
// Skip has moved it. Give its Now to each store the suite's New makes.
type SkipClock struct {
	ahead atomic.Int64 // nanoseconds
}

// Now is the wall clock moved forward by every Skip so far.
func (c *SkipClock) Now() time.Time {
	return time.Now().Add(time.Duration(c.ahead.Load()))
}

// Skip moves the clock forward by d.
func (c *SkipClock) Skip(d time.Duration) { c.ahead.Add(int64(d)) }

// Run runs the suite.
func Run(t *testing.T, o Options) {
	tests := []struct {
		name string
		fn   func(*testing.T, Options)
	}{
		{"AppendAssignsRisingIDs", testRisingIDs},
		{"ConcurrentAppenders", testConcurrentAppend},
		{"ReadAfter", testReadAfter},
		{"ContentPreserved", testContent},
		{"WaitWakes", testWait},
		{"WaitContext", testWaitContext},
		{"CloseEndsWait", testCloseEndsWait},
		{"RetentionByCount", testRetentionCount},
		{"RetentionByBytes", testRetentionBytes},
		{"ResumeFromBeforeStore", testResumeFromBefore},
		{"WaitWhenAllTrimmed", testWaitAllTrimmed},
		{"Sessions", testSessions},
		{"Stats", testStats},
		{"Positions", testPositions},
		{"AppendMarked", testAppendMarked},
		{"Sync", testSync},
		{"GroupNewOnly", testGroupNewOnly},
		{"GroupStartAfter", testGroupStartAfter},
		{"GroupSharesExactlyOnce", testGroupShares},
		{"GroupReclaim", testGroupReclaim},
		{"GroupAckUnknown", testGroupAckUnknown},
		{"GroupAckOwnOnly", testGroupAckOwnOnly},
		{"GroupsIndependent", testGroupsIndependent},
		{"GroupWait", testGroupWait},
		{"GroupTrimDropsPending", testGroupTrimDropsPending},
		{"GroupExpires", testGroupExpires},
	}
	tests = append(tests, ledgerTests...)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, o) })
	}
}

func newStore(t *testing.T, o Options, r Retention) store.Store {
	t.Helper()
	s := o.New(t, r)
	t.Cleanup(func() { s.Close() })
	return s
}

// Events returns n syslog events with distinct texts "prefix-i".
func Events(prefix string, n int) []*protocol.Event {
	out := make([]*protocol.Event, n)
	for i := range out {
		out[i] = &protocol.Event{
			Source:   protocol.SourceSyslog,
			Origin:   protocol.Origin{Host: "lnx1", System: "lnx1", Addr: "127.0.0.1"},
			Severity: protocol.SevInfo,
			Facility: protocol.FacDaemon,
			Text:     fmt.Sprintf("%s-%d", prefix, i),
			Parsed:   true,
		}
	}
	return out
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func readAll(t *testing.T, s store.Store, after protocol.ID) []*protocol.Event {
	t.Helper()
	var out []*protocol.Event
	for {
		n := len(out)
		var err error
		out, _, err = s.Read(ctx(t), after, 1000, out)
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		if len(out) == n {
			return out
		}
		after = out[len(out)-1].ID
	}
}

func testRisingIDs(t *testing.T, o Options) {
	s := newStore(t, o, Retention{})
	var prev protocol.ID
	for b := 0; b < 5; b++ {
		evs := Events(fmt.Sprint("b", b), 50)
		if err := s.Append(ctx(t), evs); err != nil {
			t.Fatalf("Append: %v", err)
		}
		for _, e := range evs {
			if !prev.Less(e.ID) {
				t.Fatalf("ID %v not after %v", e.ID, prev)
			}
			if e.Received.IsZero() {
				t.Fatalf("Received not filled")
			}
			prev = e.ID
		}
	}
}

func testConcurrentAppend(t *testing.T, o Options) {
	s := newStore(t, o, Retention{})
	const writers, per = 4, 200
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i += 10 {
				if err := s.Append(context.Background(), Events(fmt.Sprintf("w%d-%d", w, i), 10)); err != nil {
					t.Errorf("Append: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	all := readAll(t, s, protocol.ID{})
	if len(all) != writers*per {
		t.Fatalf("read %d events, want %d", len(all), writers*per)
	}
	seen := map[protocol.ID]bool{}
	for i, e := range all {
		if seen[e.ID] {
			t.Fatalf("duplicate ID %v", e.ID)
		}
		seen[e.ID] = true
		if i > 0 && !all[i-1].ID.Less(e.ID) {
			t.Fatalf("IDs out of order at %d: %v then %v", i, all[i-1].ID, e.ID)
		}
	}
}

// testSync: store.Sync, which the servers that acknowledge events call
// before they do, returns nil on a store that is well, with nothing
// appended and after each Append while other appenders go on, and what
// was appended before it is readable, also after reopening. (A store that
// may hold events in memory only fails it then: redisstore while Redis is
// unreachable, tested on its own.)
func testSync(t *testing.T, o Options) {
	s := newStore(t, o, Retention{})
	if err := store.Sync(ctx(t), s); err != nil {
		t.Fatalf("Sync with nothing appended: %v", err)
	}
	const writers, per, batch = 4, 10, 3
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range per {
				if err := s.Append(ctx(t), Events(fmt.Sprintf("w%d-%d", w, i), batch)); err != nil {
					t.Errorf("Append: %v", err)
					return
				}
				if err := store.Sync(ctx(t), s); err != nil {
					t.Errorf("Sync after Append: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if all := readAll(t, s, protocol.ID{}); len(all) != writers*per*batch {
		t.Fatalf("read %d events after Sync, want %d", len(all), writers*per*batch)
	}
	if o.Reopen != nil {
		s = reopen(t, o, s, Retention{})
		if all := readAll(t, s, protocol.ID{}); len(all) != writers*per*batch {
			t.Fatalf("read %d events after Sync and reopening, want %d", len(all), writers*per*batch)
		}
	}
}

func testReadAfter(t *testing.T, o Options) {
	s := newStore(t, o, Retention{})
	evs := Events("r", 100)
	if err := s.Append(ctx(t), evs); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		after protocol.ID
		max   int
		want  []string
	}{
		{"FromZero", protocol.ID{}, 3, []string{"r-0", "r-1", "r-2"}},
		{"AfterMiddle", evs[49].ID, 2, []string{"r-50", "r-51"}},
		{"AfterLast", evs[99].ID, 10, nil},
		{"MaxLargerThanRest", evs[97].ID, 10, []string{"r-98", "r-99"}},
		{"BetweenIDs", protocol.ID{Ms: evs[10].ID.Ms, Seq: evs[10].ID.Seq}, 1, []string{"r-11"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, gap, err := s.Read(ctx(t), tc.after, tc.max, nil)
			if err != nil {
				t.Fatal(err)
			}
			if gap.Missed {
				t.Errorf("unexpected gap %+v", gap)
			}
			var texts []string
			for _, e := range got {
				texts = append(texts, e.Text)
			}
			if fmt.Sprint(texts) != fmt.Sprint(tc.want) {
				t.Errorf("got %v, want %v", texts, tc.want)
			}
		})
	}
}

func testContent(t *testing.T, o Options) {
	s := newStore(t, o, Retention{})
	ot := time.Date(2026, 11, 22, 13, 2, 41, 123456789, time.FixedZone("", 5*3600+1800))
	in := &protocol.Event{
		Received: time.Date(2026, 11, 22, 7, 32, 41, 5, time.UTC), OriginTime: &ot,
		Time: ot.UTC(), TimeFilled: "year,zone",
		Origin: protocol.Origin{System: "VMSYS1", Host: "lnx1", Node: "ZVM002", Addr: "10.0.0.1"},
		Source: protocol.SourceZVMConsole, MsgID: "HCPMSG045I", App: "app", ProcID: "42",
		Facility: protocol.FacLocal0, Severity: protocol.SevWarning, Type: "MSG", User: "OPERATOR",
		Text: "hello \"world\"\nline two", Raw: "<134>raw", Parsed: false, ParseError: "bad [col 3]",
		// Structured data in order, with an element without parameters,
		// a repeated name and values that need escaping in JSON and in
		// RFC 5424.
		SD: protocol.StructuredData{
			{ID: "exampleSDID@32473", Params: []protocol.SDParam{{Name: "iut", Value: "3"},
				{Name: "eventSource", Value: "Application"}, {Name: "eventID", Value: "1011"}}},
			{ID: "origin", Params: []protocol.SDParam{{Name: "ip", Value: "192.0.2.1"},
				{Name: "ip", Value: "192.0.2.129"}, {Name: "software", Value: "rsyslogd"}}},
			{ID: "empty@32473"},
			{ID: "meta.x@32473.1", Params: []protocol.SDParam{{Name: "q", Value: `a "b" \ c] \x é`}}},
		},
	}
	want := *in
	if err := s.Append(ctx(t), []*protocol.Event{in}); err != nil {
		t.Fatal(err)
	}
	// Events after it: a store that keeps only its newest events as
	// they came (memstore's cache) reads this one back from its own form.
	appendEvents(t, s, "after", 5)
	got, _, err := s.Read(ctx(t), protocol.ID{}, 1, nil)
	if err != nil || len(got) != 1 {
		t.Fatalf("Read = %d events, %v", len(got), err)
	}
	want.ID = in.ID
	g := *got[0]
	if !g.Received.Equal(want.Received) || !g.Time.Equal(want.Time) ||
		g.OriginTime == nil || !g.OriginTime.Equal(*want.OriginTime) {
		t.Fatalf("times differ: got %v %v %v", g.Received, g.Time, g.OriginTime)
	}
	_, gOff := g.OriginTime.Zone()
	if gOff != 5*3600+1800 {
		t.Errorf("origin zone offset = %d, want +05:30 kept", gOff)
	}
	g.Received, g.Time, g.OriginTime = want.Received, want.Time, want.OriginTime
	if !reflect.DeepEqual(g, want) {
		t.Fatalf("event changed in store:\n got %+v\nwant %+v", g, want)
	}
}

func testWait(t *testing.T, o Options) {
	s := newStore(t, o, Retention{})
	if err := s.Append(ctx(t), Events("a", 1)); err != nil {
		t.Fatal(err)
	}
	st, err := s.Stats(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	// An event already after: returns at once.
	if err := s.Wait(ctx(t), protocol.ID{}); err != nil {
		t.Fatalf("Wait with event present: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Wait(ctx(t), st.Last) }()
	select {
	case err := <-done:
		t.Fatalf("Wait returned %v before any new event", err)
	case <-time.After(50 * time.Millisecond):
	}
	if err := s.Append(ctx(t), Events("b", 1)); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Wait: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not wake after Append")
	}
}

func testWaitContext(t *testing.T, o Options) {
	s := newStore(t, o, Retention{})
	c, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.Wait(c, protocol.ID{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait on empty store = %v, want deadline exceeded", err)
	}
}

func testCloseEndsWait(t *testing.T, o Options) {
	s := o.New(t, Retention{})
	done := make(chan error, 1)
	go func() { done <- s.Wait(context.Background(), protocol.ID{}) }()
	time.Sleep(20 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, store.ErrClosed) {
			t.Fatalf("Wait after Close = %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end Wait")
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := s.Append(context.Background(), Events("x", 1)); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Append after Close = %v, want ErrClosed", err)
	}
}

func testRetentionCount(t *testing.T, o Options) {
	const max = 100
	s := newStore(t, o, Retention{MaxEvents: max})
	first := Events("old", 10)
	if err := s.Append(ctx(t), first); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		if err := s.Append(ctx(t), Events(fmt.Sprint("n", i), 20)); err != nil {
			t.Fatal(err)
		}
	}
	all := readAll(t, s, protocol.ID{})
	if !o.ApproxTrim && len(all) != max {
		t.Fatalf("retained %d, want %d", len(all), max)
	}
	if len(all) >= 1010 || len(all) < max {
		t.Fatalf("retained %d, want about %d", len(all), max)
	}
	if all[len(all)-1].Text != "n49-19" {
		t.Fatalf("newest retained = %q, want n49-19", all[len(all)-1].Text)
	}
	// A reader whose position was trimmed is told so.
	_, gap, err := s.Read(ctx(t), first[0].ID, 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !gap.Missed || gap.Through.Less(first[0].ID) {
		t.Fatalf("reader behind retention: gap = %+v, want Missed through at least %v", gap, first[0].ID)
	}
	// Reading from the start is not a gap: it asks for what is retained.
	if _, gap, _ := s.Read(ctx(t), protocol.ID{}, 1, nil); gap.Missed {
		t.Fatalf("read from zero reported gap %+v", gap)
	}
	// A reader at the newest retained event has no gap.
	if _, gap, _ := s.Read(ctx(t), all[len(all)-1].ID, 1, nil); gap.Missed {
		t.Fatalf("reader at head reported gap %+v", gap)
	}
}

func testRetentionBytes(t *testing.T, o Options) {
	evs := Events("b", 1)
	one := int64(evs[0].Size())
	s := newStore(t, o, Retention{MaxBytes: one * 20})
	for i := 0; i < 10; i++ {
		if err := s.Append(ctx(t), Events(fmt.Sprint("b", i), 10)); err != nil {
			t.Fatal(err)
		}
	}
	st, err := s.Stats(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if !o.ApproxTrim && st.Bytes > one*20 {
		t.Fatalf("retained %d bytes, limit %d", st.Bytes, one*20)
	}
	if st.Count >= 100 {
		t.Fatalf("retained all %d events despite byte limit", st.Count)
	}
	if st.Trimmed.IsZero() {
		t.Fatal("Stats.Trimmed not set after trimming")
	}
}

func testSessions(t *testing.T, o Options) {
	s := newStore(t, o, Retention{})
	now := time.Now().UTC().Truncate(time.Millisecond)
	a := store.Session{ID: "s2", Server: "unsolmsg", Client: "ops", Remote: "127.0.0.1:5", Region: "R1", Since: now, LastSeen: now}
	b := store.Session{ID: "s1", Server: "unsolmsg", Client: "auto", Remote: "127.0.0.1:6", Region: "R1", Since: now, LastSeen: now}
	for _, x := range []store.Session{a, b} {
		if err := s.PutSession(ctx(t), x); err != nil {
			t.Fatal(err)
		}
	}
	a.LastSeen = now.Add(time.Second)
	if err := s.PutSession(ctx(t), a); err != nil {
		t.Fatal(err)
	}
	got, err := s.Sessions(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != "s1" || got[1].ID != "s2" || !got[1].LastSeen.Equal(a.LastSeen) {
		t.Fatalf("Sessions = %+v", got)
	}
	if err := s.DeleteSession(ctx(t), "s1"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSession(ctx(t), "nope"); err != nil {
		t.Fatalf("deleting unknown session: %v", err)
	}
	got, _ = s.Sessions(ctx(t))
	if len(got) != 1 || got[0].ID != "s2" {
		t.Fatalf("after delete: %+v", got)
	}
}

func testStats(t *testing.T, o Options) {
	s := newStore(t, o, Retention{})
	st, err := s.Stats(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if st.Count != 0 || !st.Last.IsZero() || !st.First.IsZero() {
		t.Fatalf("empty store stats = %+v", st)
	}
	evs := Events("s", 7)
	if err := s.Append(ctx(t), evs); err != nil {
		t.Fatal(err)
	}
	st, _ = s.Stats(ctx(t))
	if st.Count != 7 || st.First != evs[0].ID || st.Last != evs[6].ID || st.Appended < 7 {
		t.Fatalf("stats = %+v", st)
	}
}

// testResumeFromBefore: a reader resuming after an ID from before anything
// this store holds or held (a region restart with an embedded store) is
// told that it missed events, never silently skipped past them.
func testResumeFromBefore(t *testing.T, o Options) {
	s := newStore(t, o, Retention{})
	if err := s.Append(ctx(t), Events("new", 3)); err != nil {
		t.Fatal(err)
	}
	old := protocol.ID{Ms: 1_000_000, Seq: 5} // 1970: surely another store's
	evs, gap, err := s.Read(ctx(t), old, 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !gap.Missed {
		t.Fatalf("resuming after %v, older than this store: no gap reported", old)
	}
	if len(evs) != 3 {
		t.Fatalf("read %d events after the gap, want the 3 retained", len(evs))
	}
}

// testWaitAllTrimmed: when retention has trimmed every event, Wait blocks
// until a new one comes instead of returning at once (a reader would spin).
func testWaitAllTrimmed(t *testing.T, o Options) {
	evs := Events("big", 1)
	evs[0].Text = strings.Repeat("x", 4096)
	s := newStore(t, o, Retention{MaxBytes: 1024})
	if err := s.Append(ctx(t), evs); err != nil {
		t.Fatal(err)
	}
	st, _ := s.Stats(ctx(t))
	waits := []protocol.ID{st.Last} // after the newest: nothing to read, on any store
	if !o.ApproxTrim {
		if st.Count != 0 {
			t.Fatalf("an event over MaxBytes was retained (count %d)", st.Count)
		}
		waits = append(waits, protocol.ID{}) // nothing retained: nothing to read from the start either
	}
	for _, after := range waits {
		c, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		err := s.Wait(c, after)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Wait(%v) with nothing to read = %v, want it to block until the deadline", after, err)
		}
	}
}

func testPositions(t *testing.T, o Options) {
	s := newStore(t, o, Retention{})
	if id, ok, err := s.Position(ctx(t), "a"); err != nil || ok || !id.IsZero() {
		t.Fatalf("Position of a name never set = %v, %v, %v; want zero, false, nil", id, ok, err)
	}
	const ms = 1_700_000_000_000
	want := map[string]protocol.ID{}
	for i, step := range []struct {
		name  string
		set   protocol.ID
		moves bool
	}{
		{"a", protocol.ID{Ms: ms, Seq: 9}, true},
		{"a", protocol.ID{Ms: ms, Seq: 10}, true},             // compared as numbers, not text
		{"a", protocol.ID{Ms: ms, Seq: 9}, false},             // backwards: ignored
		{"b", protocol.ID{Ms: 999_999_999_999, Seq: 5}, true}, // another name: its own position
		{"b", protocol.ID{Ms: 1_000_000_000_000}, true},
		{"a", protocol.ID{Ms: ms - 1, Seq: 99}, false},
		{"a", protocol.ID{Ms: ms, Seq: 10}, false}, // the same: unchanged
		{"a", protocol.ID{Ms: ms + 1}, true},
	} {
		if err := s.SetPosition(ctx(t), step.name, step.set); err != nil {
			t.Fatalf("step %d: SetPosition(%q, %v): %v", i, step.name, step.set, err)
		}
		if step.moves {
			want[step.name] = step.set
		}
		for _, name := range []string{"a", "b"} {
			w, set := want[name]
			id, ok, err := s.Position(ctx(t), name)
			if err != nil || ok != set || id != w {
				t.Fatalf("step %d (set %q to %v): Position(%q) = %v, %v, %v; want %v, %v",
					i, step.name, step.set, name, id, ok, err, w, set)
			}
		}
	}
}

// testAppendMarked checks store.AppendMarked (in one step where the store
// is a MarkedAppender): the events are stored in order, the position moves
// with them, never backwards, and a call without events only moves it.
func testAppendMarked(t *testing.T, o Options) {
	s := newStore(t, o, Retention{})
	const name = "vmmon:SYS1/spool"
	// Large enough that a store writing in parts writes several.
	big := Events("big", 2100)
	for i, step := range []struct {
		evs  []*protocol.Event
		mark uint64
		want uint64
	}{
		{Events("one", 1), 1, 1},
		{Events("three", 3), 4, 4},
		{Events("back", 2), 2, 4}, // a mark behind: the events are stored, the mark stays
		{nil, 9, 9},
		{big, 2109, 2109},
	} {
		before := readAll(t, s, protocol.ID{})
		if err := store.AppendMarked(ctx(t), s, step.evs, name, protocol.ID{Ms: step.mark}); err != nil {
			t.Fatalf("step %d: AppendMarked: %v", i, err)
		}
		got := readAll(t, s, protocol.ID{})
		wantEvents(t, fmt.Sprintf("step %d: events after", i), got[len(before):], step.evs)
		id, ok, err := s.Position(ctx(t), name)
		if err != nil || !ok || id != (protocol.ID{Ms: step.want}) {
			t.Fatalf("step %d: Position = %v, %v, %v; want %d-0", i, id, ok, err, step.want)
		}
	}
}

// groupRead calls GroupRead without a dst and fails the test on error.
func groupRead(t *testing.T, s store.Store, group, consumer string, start protocol.ID,
	claimAfter time.Duration, max int) ([]*protocol.Event, protocol.ID) {
	t.Helper()
	evs, last, err := s.GroupRead(ctx(t), group, consumer, start, claimAfter, max, nil)
	if err != nil {
		t.Fatalf("GroupRead(%q, %q): %v", group, consumer, err)
	}
	return evs, last
}

// groupAck calls GroupAck for the events, as consumer, and fails the
// test on error or unless it acknowledged every one.
func groupAck(t *testing.T, s store.Store, group, consumer string, evs []*protocol.Event) {
	t.Helper()
	n, err := s.GroupAck(ctx(t), group, consumer, idsOf(evs))
	if err != nil {
		t.Fatalf("GroupAck(%q, %q): %v", group, consumer, err)
	}
	if n != len(evs) {
		t.Fatalf("GroupAck(%q, %q) of %d events pending for it acknowledged %d", group, consumer, len(evs), n)
	}
}

func idsOf(evs []*protocol.Event) []protocol.ID {
	ids := make([]protocol.ID, len(evs))
	for i, e := range evs {
		ids[i] = e.ID
	}
	return ids
}

// wantEvents fails the test unless got are the events want, in order.
func wantEvents(t *testing.T, what string, got, want []*protocol.Event) {
	t.Helper()
	ok := len(got) == len(want)
	for i := 0; ok && i < len(got); i++ {
		ok = got[i].ID == want[i].ID && got[i].Text == want[i].Text
	}
	if !ok {
		t.Fatalf("%s: got %d events %v, want %d %v", what, len(got), texts(got), len(want), texts(want))
	}
}

func texts(evs []*protocol.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.ID.String() + " " + e.Text
	}
	return out
}

func appendEvents(t *testing.T, s store.Store, prefix string, n int) []*protocol.Event {
	t.Helper()
	evs := Events(prefix, n)
	if err := s.Append(ctx(t), evs); err != nil {
		t.Fatalf("Append: %v", err)
	}
	return evs
}

// testGroupNewOnly: a group created without a start delivers only the
// events appended after its creation.
func testGroupNewOnly(t *testing.T, o Options) {
	s := newStore(t, o, Retention{})
	old := appendEvents(t, s, "old", 5)
	got, last := groupRead(t, s, "g", "c1", protocol.ID{}, time.Hour, 100)
	wantEvents(t, "first read of a new group", got, nil)
	if last != old[4].ID {
		t.Fatalf("GroupRead last = %v, want the newest ID %v", last, old[4].ID)
	}
	got, _ = groupRead(t, s, "g", "c2", protocol.ID{}, time.Hour, 100)
	wantEvents(t, "another consumer's first read", got, nil)
	fresh := appendEvents(t, s, "new", 3)
	got, last = groupRead(t, s, "g", "c1", protocol.ID{}, time.Hour, 100)
	wantEvents(t, "read after appending", got, fresh)
	if last != fresh[2].ID {
		t.Fatalf("GroupRead last = %v, want %v", last, fresh[2].ID)
	}
	got, _ = groupRead(t, s, "g", "c2", protocol.ID{}, time.Hour, 100)
	wantEvents(t, "other consumer after all were delivered", got, nil)
}

// testGroupStartAfter: a group created with a start delivers exactly the
// events after it, max at a time; start matters only on creation.
func testGroupStartAfter(t *testing.T, o Options) {
	s := newStore(t, o, Retention{})
	evs := appendEvents(t, s, "s", 10)
	got, _ := groupRead(t, s, "g", "c", evs[3].ID, time.Hour, 4)
	wantEvents(t, "first read, max 4", got, evs[4:8])
	got, _ = groupRead(t, s, "g", "c", evs[0].ID, time.Hour, 100) // the group exists: start ignored
	wantEvents(t, "second read", got, evs[8:])
	got, _ = groupRead(t, s, "g", "c", evs[0].ID, time.Hour, 100)
	wantEvents(t, "third read", got, nil)
}

// testGroupShares: consumers of one group share its events, each event
// going to exactly one of them, and acknowledged events are not delivered
// again.
func testGroupShares(t *testing.T, o Options) {
	s := newStore(t, o, Retention{})
	const group = "g"
	groupRead(t, s, group, "a", protocol.ID{}, time.Hour, 100) // create at the newest
	pre := appendEvents(t, s, "pre", 10)
	got, _ := groupRead(t, s, group, "a", protocol.ID{}, time.Hour, 5)
	wantEvents(t, "a's read", got, pre[:5])
	groupAck(t, s, group, "a", got)
	got, _ = groupRead(t, s, group, "b", protocol.ID{}, time.Hour, 5)
	wantEvents(t, "b's read", got, pre[5:])
	groupAck(t, s, group, "b", got)

	// Now both read concurrently, while events come.
	const total = 200
	var (
		mu      sync.Mutex // guards handled
		handled = map[string][]protocol.ID{}
		count   atomic.Int64 // events handled, by both
		wg      sync.WaitGroup
		trace   groupTrace
	)
	readCtx, stop := context.WithCancel(context.Background())
	ackCtx := ctx(t)
	defer func() { stop(); wg.Wait() }()
	for _, c := range []string{"a", "b"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				evs, last, err := s.GroupRead(readCtx, group, c, protocol.ID{}, time.Hour, 3, nil)
				trace.add(c, "read %v last %v err %v", idsOf(evs), last, err)
				if err == nil && len(evs) == 0 {
					err = s.Wait(readCtx, last)
					trace.add(c, "wait after %v: %v", last, err)
				}
				if err != nil {
					if readCtx.Err() == nil {
						t.Errorf("consumer %s: %v", c, err)
					}
					return
				}
				if len(evs) == 0 {
					continue
				}
				time.Sleep(time.Millisecond) // handling them: the other consumer gets its turn
				ids := idsOf(evs)
				if n, err := s.GroupAck(ackCtx, group, c, ids); err != nil || n != len(ids) {
					t.Errorf("consumer %s: GroupAck of %d events it was delivered: %d, %v", c, len(ids), n, err)
					return
				}
				mu.Lock()
				handled[c] = append(handled[c], ids...)
				mu.Unlock()
				count.Add(int64(len(ids)))
			}
		}()
	}
	var all []protocol.ID
	for i := 0; i < total; i += 5 {
		ids := idsOf(appendEvents(t, s, fmt.Sprint("c", i), 5))
		trace.add("append", "%v", ids)
		all = append(all, ids...)
		time.Sleep(2 * time.Millisecond)
	}
	for deadline := time.Now().Add(30 * time.Second); count.Load() < total && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	stop()
	wg.Wait()

	times := map[protocol.ID]int{}
	for c, ids := range handled {
		for i, id := range ids {
			times[id]++
			if i > 0 && !ids[i-1].Less(id) {
				t.Errorf("consumer %s got %v after %v", c, id, ids[i-1])
			}
		}
	}
	var wrong []protocol.ID
	for _, id := range all {
		if times[id] != 1 {
			t.Errorf("event %v handled %d times, want once", id, times[id])
			wrong = append(wrong, id)
		}
	}
	if len(times) != total {
		t.Errorf("%d distinct events handled, want %d", len(times), total)
	}
	if len(handled["a"]) == 0 || len(handled["b"]) == 0 {
		t.Errorf("a handled %d events and b %d: want both some", len(handled["a"]), len(handled["b"]))
	}
	if t.Failed() {
		t.Logf("what the consumers and the appender did:\n%s", trace.around(wrong))
		if o.Describe != nil {
			t.Logf("the store's group %q:\n%s", group, o.Describe(t, s, group, wrong))
		}
		t.FailNow()
	}

	// Everything was acknowledged: even a short claimAfter finds nothing.
	o.idle(50 * time.Millisecond)
	got, _ = groupRead(t, s, group, "c", protocol.ID{}, 10*time.Millisecond, 1000)
	wantEvents(t, "claim after all were acknowledged", got, nil)
}

// groupTrace records what the goroutines of a group test did, for its
// log when it fails.
type groupTrace struct {
	start time.Time // of the first line

	mu    sync.Mutex // guards lines
	lines []traceLine
}

type traceLine struct {
	at   time.Duration // since start
	who  string
	what string
}

func (tr *groupTrace) add(who, format string, args ...any) {
	now := time.Now()
	what := fmt.Sprintf(format, args...)
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.start.IsZero() {
		tr.start = now
	}
	tr.lines = append(tr.lines, traceLine{now.Sub(tr.start), who, what})
}

// around returns the lines from a little before the first that names one
// of ids to a while after it, or the first lines if none does.
func (tr *groupTrace) around(ids []protocol.ID) string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	first := -1
	for i, l := range tr.lines {
		for _, id := range ids {
			if strings.Contains(l.what, id.String()) {
				first = i
				break
			}
		}
		if first >= 0 {
			break
		}
	}
	from := max(0, first-20)
	to := min(len(tr.lines), from+80)
	var b strings.Builder
	fmt.Fprintf(&b, "(lines %d to %d of %d)\n", from, to, len(tr.lines))
	for _, l := range tr.lines[from:to] {
		fmt.Fprintf(&b, "%9.3fms %-6s %s\n", float64(l.at.Microseconds())/1000, l.who, l.what)
	}
	return b.String()
}

// testGroupReclaim: events a consumer does not acknowledge within
// claimAfter go to the next consumer that reads, and only then.
func testGroupReclaim(t *testing.T, o Options) {
	s := newStore(t, o, Retention{})
	// claimAfter is long enough that two reads always fit well inside it,
	// even on a loaded machine under -race.
	const group, claimAfter = "g", 1500 * time.Millisecond
	groupRead(t, s, group, "a", protocol.ID{}, claimAfter, 100)
	evs := appendEvents(t, s, "rec", 10)
	aStart := time.Now()
	got, _ := groupRead(t, s, group, "a", protocol.ID{}, claimAfter, 100)
	aDone := time.Now()
	wantEvents(t, "a's read", got, evs)
	got, _ = groupRead(t, s, group, "b", protocol.ID{}, claimAfter, 100)
	if took := time.Since(aStart); took >= claimAfter {
		t.Fatalf("two group reads took %v, not under claimAfter %v: the store is far too slow", took, claimAfter)
	}
	wantEvents(t, "b's read before claimAfter", got, nil)

	o.idle(claimAfter + 200*time.Millisecond - time.Since(aDone))
	fresh := appendEvents(t, s, "fresh", 2)
	bStart := time.Now()
	got, _ = groupRead(t, s, group, "b", protocol.ID{}, claimAfter, 4)
	wantEvents(t, "b's claim, max 4", got, evs[:4])
	got, _ = groupRead(t, s, group, "b", protocol.ID{}, claimAfter, 100)
	wantEvents(t, "b's next read: the other claims, then new events", got, append(evs[4:10:10], fresh...))

	got, _ = groupRead(t, s, group, "a", protocol.ID{}, time.Hour, 100)
	wantEvents(t, "a's read after b claimed its events", got, nil)
	got, _ = groupRead(t, s, group, "c", protocol.ID{}, claimAfter, 100)
	if took := time.Since(bStart); took < claimAfter {
		wantEvents(t, "c's read just after b claimed", got, nil)
	} else {
		t.Logf("machine too slow to check that claims restart the idle time (took %v)", took)
	}

	groupAck(t, s, group, "b", append(evs[:10:10], fresh...))
	o.idle(claimAfter + 200*time.Millisecond)
	got, _ = groupRead(t, s, group, "d", protocol.ID{}, claimAfter, 100)
	wantEvents(t, "read after all were acknowledged", got, nil)
}

// testGroupAckUnknown: acknowledging IDs that are not pending is no error
// and changes nothing.
func testGroupAckUnknown(t *testing.T, o Options) {
	s := newStore(t, o, Retention{})
	if n, err := s.GroupAck(ctx(t), "nosuch", "a", []protocol.ID{{Ms: 1, Seq: 1}}); err != nil || n != 0 {
		t.Fatalf("GroupAck on a group never read = %d, %v; want 0, nil", n, err)
	}
	groupRead(t, s, "g", "a", protocol.ID{}, time.Hour, 100)
	evs := appendEvents(t, s, "k", 5)
	got, _ := groupRead(t, s, "g", "a", protocol.ID{}, time.Hour, 2)
	wantEvents(t, "a's read", got, evs[:2])
	for _, step := range []struct {
		ids  []protocol.ID
		want int
	}{
		{nil, 0},
		{[]protocol.ID{}, 0},
		{[]protocol.ID{evs[3].ID, {Ms: 1, Seq: 1}}, 0}, // not yet delivered; never assigned
		{[]protocol.ID{evs[0].ID, evs[0].ID}, 1},       // pending, then no more
	} {
		if n, err := s.GroupAck(ctx(t), "g", "a", step.ids); err != nil || n != step.want {
			t.Fatalf("GroupAck(%v) = %d, %v; want %d, nil", step.ids, n, err, step.want)
		}
	}
	got, _ = groupRead(t, s, "g", "a", protocol.ID{}, time.Hour, 100)
	wantEvents(t, "read after acknowledging undelivered events", got, evs[2:])
	o.idle(50 * time.Millisecond)
	got, _ = groupRead(t, s, "g", "b", protocol.ID{}, 10*time.Millisecond, 100)
	wantEvents(t, "claim of the unacknowledged", got, evs[1:])
}

// testGroupAckOwnOnly: a consumer acknowledges only the entries pending
// for it: another consumer's ack of them (never delivered to that one, or
// claimed from it since) is ignored and counted out, and they stay pending
// for their consumer, to be claimed by the next reader after claimAfter.
func testGroupAckOwnOnly(t *testing.T, o Options) {
	s := newStore(t, o, Retention{})
	const group, claimAfter = "g", 1500 * time.Millisecond
	groupRead(t, s, group, "a", protocol.ID{}, claimAfter, 100)
	evs := appendEvents(t, s, "own", 4)
	got, _ := groupRead(t, s, group, "a", protocol.ID{}, claimAfter, 2)
	wantEvents(t, "a's read", got, evs[:2])
	got, _ = groupRead(t, s, group, "b", protocol.ID{}, claimAfter, 100)
	wantEvents(t, "b's read", got, evs[2:])
	// b acknowledges one of its own and both of a's: only its own counts.
	if n, err := s.GroupAck(ctx(t), group, "b", []protocol.ID{evs[0].ID, evs[2].ID, evs[1].ID}); err != nil || n != 1 {
		t.Fatalf("b's ack of one of its events and two of a's = %d, %v; want 1, nil", n, err)
	}
	o.idle(claimAfter + 200*time.Millisecond)
	// a's two and b's unacknowledged one are claimed by c.
	got, _ = groupRead(t, s, group, "c", protocol.ID{}, claimAfter, 100)
	wantEvents(t, "c's claim", got, []*protocol.Event{evs[0], evs[1], evs[3]})
	// Claimed: no longer a's or b's to acknowledge, but c's.
	if n, err := s.GroupAck(ctx(t), group, "a", idsOf(evs[:2])); err != nil || n != 0 {
		t.Fatalf("a's ack of its events c claimed = %d, %v; want 0, nil", n, err)
	}
	if n, err := s.GroupAck(ctx(t), group, "b", idsOf(evs[3:])); err != nil || n != 0 {
		t.Fatalf("b's ack of its event c claimed = %d, %v; want 0, nil", n, err)
	}
	groupAck(t, s, group, "c", got)
	o.idle(claimAfter + 200*time.Millisecond)
	got, _ = groupRead(t, s, group, "d", protocol.ID{}, claimAfter, 100)
	wantEvents(t, "read after c acknowledged all", got, nil)
}

// testGroupsIndependent: every group receives every event, and one group's
// acknowledgements are not another's.
func testGroupsIndependent(t *testing.T, o Options) {
	s := newStore(t, o, Retention{})
	for _, g := range []string{"g1", "g2"} {
		groupRead(t, s, g, "c", protocol.ID{}, time.Hour, 100)
	}
	evs := appendEvents(t, s, "i", 20)
	got, _ := groupRead(t, s, "g1", "c", protocol.ID{}, time.Hour, 100)
	wantEvents(t, "g1's read", got, evs)
	groupAck(t, s, "g1", "c", got)
	got, _ = groupRead(t, s, "g2", "c", protocol.ID{}, time.Hour, 100)
	wantEvents(t, "g2's read", got, evs)
	o.idle(50 * time.Millisecond)
	got, _ = groupRead(t, s, "g1", "d", protocol.ID{}, 10*time.Millisecond, 100)
	wantEvents(t, "g1's claim after acknowledging", got, nil)
	got, _ = groupRead(t, s, "g2", "d", protocol.ID{}, 10*time.Millisecond, 100)
	wantEvents(t, "g2's claim, not acknowledged in g2", got, evs)
}

// testGroupWait: the last ID GroupRead returns is what Wait needs to block
// until there is more.
func testGroupWait(t *testing.T, o Options) {
	s := newStore(t, o, Retention{})
	evs := appendEvents(t, s, "w", 3)
	got, last := groupRead(t, s, "g", "c", protocol.ID{}, time.Hour, 100)
	wantEvents(t, "first read", got, nil)
	if last != evs[2].ID {
		t.Fatalf("GroupRead last = %v, want the newest ID %v", last, evs[2].ID)
	}
	c, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	err := s.Wait(c, last)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait(last) with nothing new = %v, want it to block until the deadline", err)
	}
	wctx := ctx(t)
	done := make(chan error, 1)
	go func() { done <- s.Wait(wctx, last) }()
	select {
	case err := <-done:
		t.Fatalf("Wait(last) returned %v before any new event", err)
	case <-time.After(50 * time.Millisecond):
	}
	fresh := appendEvents(t, s, "w2", 1)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Wait: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Wait(last) did not wake after Append")
	}
	got, last = groupRead(t, s, "g", "c", protocol.ID{}, time.Hour, 100)
	wantEvents(t, "read after the wake", got, fresh)
	if last != fresh[0].ID {
		t.Fatalf("GroupRead last = %v, want %v", last, fresh[0].ID)
	}
}

// inspectorOf returns s as a store.GroupInspector.
func inspectorOf(t *testing.T, s store.Store) store.GroupInspector {
	t.Helper()
	gi, ok := s.(store.GroupInspector)
	if !ok {
		t.Fatalf("%T is not a store.GroupInspector", s)
	}
	return gi
}

// groupInfo calls GroupInfo and fails the test on error.
func groupInfo(t *testing.T, gi store.GroupInspector, group string) (store.GroupInfo, bool) {
	t.Helper()
	info, ok, err := gi.GroupInfo(ctx(t), group)
	if err != nil {
		t.Fatalf("GroupInfo(%q): %v", group, err)
	}
	return info, ok
}

// eventually calls cond until it returns "", failing the test with its
// last answer if that takes 30 seconds.
func eventually(t *testing.T, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		why := cond()
		if why == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30s: %s", why)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// testGroupTrimDropsPending: the pending entries of events retention
// trimmed leave every group, whether or not it is read again (the
// embedded store at once, Redis within its sweep); a group holds no more
// than its consumers left pending of what is retained.
func testGroupTrimDropsPending(t *testing.T, o Options) {
	s := newStore(t, o, Retention{MaxEvents: 10})
	gi := inspectorOf(t, s)
	for _, g := range []string{"g1", "g2"} {
		groupRead(t, s, g, "c", protocol.ID{}, time.Hour, 100)
	}
	held := appendEvents(t, s, "held", 5)
	for _, g := range []string{"g1", "g2"} {
		got, _ := groupRead(t, s, g, "c", protocol.ID{}, time.Hour, 100)
		wantEvents(t, g+"'s read", got, held)
	}
	groupAck(t, s, "g2", "c", held[:2])
	for g, want := range map[string]int{"g1": 5, "g2": 3} {
		if info, ok := groupInfo(t, gi, g); !ok || info.Pending != want {
			t.Fatalf("GroupInfo(%q) = %+v, %v; want %d pending", g, info, ok, want)
		}
	}
	for i := 0; i < 20; i++ { // retention trims every held event
		appendEvents(t, s, fmt.Sprint("later", i), 20)
	}
	if st, err := s.Stats(ctx(t)); err != nil || st.Trimmed.Less(held[4].ID) {
		t.Fatalf("Stats = %+v, %v: the held events were not trimmed", st, err)
	}
	// Neither group is read again: their entries leave them all the same.
	eventually(t, func() string {
		for _, g := range []string{"g1", "g2"} {
			if info, ok := groupInfo(t, gi, g); !ok || info.Pending != 0 {
				return fmt.Sprintf("GroupInfo(%q) = %+v, %v; want the group with nothing pending", g, info, ok)
			}
		}
		return ""
	})
	// Nothing held is claimed: the group goes on after its cursor.
	o.idle(50 * time.Millisecond)
	got, _ := groupRead(t, s, "g1", "d", protocol.ID{}, 10*time.Millisecond, 1000)
	for _, e := range got {
		if !held[4].ID.Less(e.ID) {
			t.Fatalf("g1 delivered %s (%q), an event retention trimmed", e.ID, e.Text)
		}
	}
}

// testGroupExpires: a group that nothing reads for the group TTL is
// deleted with its pending entries; one read within it is kept; a read
// after the deletion creates the group anew at its start. A store that
// outlives a reopen keeps the deletion.
func testGroupExpires(t *testing.T, o Options) {
	const ttl = 3 * time.Second
	s := newStore(t, o, Retention{GroupTTL: ttl})
	gi := inspectorOf(t, s)
	for _, g := range []string{"idle", "live"} {
		groupRead(t, s, g, "c", protocol.ID{}, time.Hour, 100)
	}
	evs := appendEvents(t, s, "x", 4)
	for _, g := range []string{"idle", "live"} {
		got, _ := groupRead(t, s, g, "c", protocol.ID{}, time.Hour, 2)
		wantEvents(t, g+"'s read", got, evs[:2])
	}
	o.idle(ttl / 2)
	got, _ := groupRead(t, s, "live", "c", protocol.ID{}, time.Hour, 100)
	wantEvents(t, "live's read half a TTL later", got, evs[2:])
	o.idle(ttl/2 + ttl/4) // idle: 1.25 TTL since its last read; live: 0.75
	// The store finds it (the embedded store when a group is read or
	// events appended, Redis at its sweep): live is read meanwhile.
	eventually(t, func() string {
		groupRead(t, s, "live", "c", protocol.ID{}, time.Hour, 100)
		if info, ok := groupInfo(t, gi, "idle"); ok {
			return fmt.Sprintf("GroupInfo(idle) = %+v, true; want it deleted", info)
		}
		return ""
	})
	if info, ok := groupInfo(t, gi, "live"); !ok || info.Pending != 4 {
		t.Fatalf("GroupInfo(live) = %+v, %v; want it kept with its 4 pending", info, ok)
	}
	if o.Reopen != nil {
		s = o.Reopen(t, s, Retention{GroupTTL: ttl})
		t.Cleanup(func() { s.Close() })
		gi = inspectorOf(t, s)
		if info, ok := groupInfo(t, gi, "idle"); ok {
			t.Fatalf("after a reopen: GroupInfo(idle) = %+v, true; want it still deleted", info)
		}
		if info, ok := groupInfo(t, gi, "live"); !ok || info.Pending != 4 {
			t.Fatalf("after a reopen: GroupInfo(live) = %+v, %v; want it with its 4 pending", info, ok)
		}
	}
	// Created anew at the start given: not at its old cursor, with none of
	// its old entries.
	got, _ = groupRead(t, s, "idle", "c", evs[3].ID, time.Hour, 100)
	wantEvents(t, "the deleted group's read", got, nil)
	fresh := appendEvents(t, s, "fresh", 1)
	got, _ = groupRead(t, s, "idle", "c", evs[3].ID, 0, 100)
	wantEvents(t, "the new group's read, claiming any idle", got, fresh)
	if info, ok := groupInfo(t, gi, "idle"); !ok || info.Pending != 1 {
		t.Fatalf("GroupInfo(idle) anew = %+v, %v; want 1 pending", info, ok)
	}
}
