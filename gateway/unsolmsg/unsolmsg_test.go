package unsolmsg_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/gateway/session"
	"github.com/zbridge/zbridge/gateway/store/memstore"
	"github.com/zbridge/zbridge/gateway/unsolmsg"
	"github.com/zbridge/zbridge/internal/leakcheck"
	"github.com/zbridge/zbridge/protocol"
	"github.com/zbridge/zbridge/protocol/client"
)

// waitTimeout bounds every wait for something the server should do soon. It
// is generous so that a loaded machine running -race does not fail tests;
// the timeouts under test are configured short instead.
const waitTimeout = 20 * time.Second

// testServer is an UNSOLMSG server on loopback with an in-memory store.
type testServer struct {
	srv    *unsolmsg.Server
	st     *memstore.Store
	addr   string
	served chan error

	once     sync.Once
	serveErr error
}

// startServer starts a server over a new memstore with retention mc and
// session config sc; cleanup closes both and checks that Serve returned
// ErrServerClosed.
func startServer(t *testing.T, mc memstore.Config, sc session.Config) *testServer {
	t.Helper()
	ts := newServer(t, mc, sc)
	t.Cleanup(func() { ts.close(t) })
	return ts
}

func newServer(t *testing.T, mc memstore.Config, sc session.Config) *testServer {
	t.Helper()
	st := memstore.New(mc)
	l := logrus.New()
	l.SetOutput(io.Discard)
	srv, err := unsolmsg.New(unsolmsg.Config{Session: sc, Store: st, Logger: l})
	if err != nil {
		t.Fatalf("unsolmsg.New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{srv: srv, st: st, addr: ln.Addr().String(), served: make(chan error, 1)}
	go func() { ts.served <- srv.Serve(ln) }()
	return ts
}

func (ts *testServer) close(t *testing.T) {
	t.Helper()
	if err := ts.srv.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := ts.serveResult(); !errors.Is(err, unsolmsg.ErrServerClosed) {
		t.Errorf("Serve returned %v, want ErrServerClosed", err)
	}
	ts.st.Close()
}

// serveResult waits for Serve to return and returns its error.
func (ts *testServer) serveResult() error {
	ts.once.Do(func() {
		select {
		case ts.serveErr = <-ts.served:
		case <-time.After(waitTimeout):
			ts.serveErr = errors.New("Serve did not return")
		}
	})
	return ts.serveErr
}

// append adds evs to the store; the store sets their IDs.
func (ts *testServer) append(t *testing.T, evs ...*protocol.Event) {
	t.Helper()
	if err := ts.st.Append(context.Background(), evs); err != nil {
		t.Fatalf("Append: %v", err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func dial(t *testing.T, addr string) *client.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	c, err := client.Dial(ctx, client.Config{Addr: addr, Client: "tester"})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// subscribe subscribes c and returns the reply's after.
func subscribe(t *testing.T, c *client.Conn, filter *protocol.Filter, after, format string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	got, err := c.Subscribe(ctx, filter, after, format)
	if err != nil {
		t.Fatalf("Subscribe(%+v, %q, %q): %v", filter, after, format, err)
	}
	return got
}

// next returns c's next frame, failing the test on an error.
func next(t *testing.T, c *client.Conn) *protocol.Frame {
	t.Helper()
	f, err := nextErr(c)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return f
}

func nextErr(c *client.Conn) (*protocol.Frame, error) {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	return c.Next(ctx)
}

// nextEvent returns the event of c's next frame, which must be a JSON event.
func nextEvent(t *testing.T, c *client.Conn) *protocol.Event {
	t.Helper()
	f := next(t, c)
	if f.Type != protocol.TypeEvent || f.Event == nil || f.ID != "" || f.Line != "" {
		t.Fatalf("got %+v, want a JSON event frame", f)
	}
	return f.Event
}

// expectEvents reads len(want) events from c and checks they are want, in
// order, field for field.
func expectEvents(t *testing.T, c *client.Conn, want []*protocol.Event) {
	t.Helper()
	for i, w := range want {
		got := nextEvent(t, c)
		if got.ID != w.ID {
			t.Fatalf("event %d of %d: ID %s (%q), want %s (%q)", i, len(want), got.ID, got.Text, w.ID, w.Text)
		}
		sameEvent(t, got, w)
	}
}

// expectBye reads from c until an error, which must be a bye with reason
// and resumeAfter; it fails on any frame before it.
func expectBye(t *testing.T, c *client.Conn, reason, resumeAfter string) {
	t.Helper()
	f, err := nextErr(c)
	if err == nil {
		t.Fatalf("got %+v, want bye %s", f, reason)
	}
	var bye *client.ByeError
	if !errors.As(err, &bye) || bye.Reason != reason || bye.ResumeAfter != resumeAfter {
		t.Fatalf("got %v, want bye reason %q resume_after %q", err, reason, resumeAfter)
	}
}

// sameEvent compares events by their full JSON form.
func sameEvent(t *testing.T, got, want *protocol.Event) {
	t.Helper()
	g, w := protocol.AppendEventJSON(nil, got), protocol.AppendEventJSON(nil, want)
	if string(g) != string(w) {
		t.Errorf("event differs:\n got  %s\n want %s", g, w)
	}
}

// syslogEvent returns a small syslog event.
func syslogEvent(host, text string) *protocol.Event {
	return &protocol.Event{Source: protocol.SourceSyslog, Origin: protocol.Origin{System: host, Host: host},
		Facility: protocol.FacDaemon, Severity: protocol.SevInfo, Text: text, Parsed: true}
}

// syslogEvents returns n events with texts prefix-0, prefix-1, ...
func syslogEvents(n int, prefix string) []*protocol.Event {
	evs := make([]*protocol.Event, n)
	for i := range evs {
		evs[i] = syslogEvent("lnx01", fmt.Sprintf("%s-%d", prefix, i))
	}
	return evs
}

// richEvents returns events with every field of the event model set
// somewhere, including text that needs escaping.
func richEvents() []*protocol.Event {
	ot := time.Date(2024, 11, 22, 14, 2, 41, 123456000, time.FixedZone("CET", 3600))
	return []*protocol.Event{
		{Source: protocol.SourceSyslog, Origin: protocol.Origin{System: "lnx01", Host: "lnx01", Node: "ZVM002", Addr: "10.0.0.7"},
			OriginTime: &ot, Time: ot.UTC(), MsgID: "ID47", App: "sshd", ProcID: "4242",
			Facility: protocol.FacDaemon, Severity: protocol.SevErr,
			Text: "session opened for \"root\"\tvia\\ssh é", Raw: "<27>1 2024-11-22T14:02:41.123456+01:00 lnx01 sshd 4242 ID47 - session", Parsed: true},
		{Source: protocol.SourceZVMConsole, Origin: protocol.Origin{System: "VMSYS1", Node: "ZVM002"},
			MsgID: "HCPMID6001I", Type: "CP", User: "OPERATOR", Severity: protocol.SevNotice, Facility: protocol.FacLocal0,
			Text: "HCPMID6001I TIME IS 13:02:41", Parsed: true, TimeFilled: "all"},
		{Source: protocol.SourceZVMEvent, Origin: protocol.Origin{System: "VMSYS1"}, Type: "LOGON", User: "LINUX113",
			Severity: protocol.SevInfo, Text: "", Parsed: true},
		{Source: protocol.SourceSyslog, Origin: protocol.Origin{Addr: "10.0.0.9"}, Severity: protocol.SevNotice,
			Facility: protocol.FacUser, Text: "garbage\x00line\n", Raw: "garbage\x00line\n", Parsed: false,
			ParseError: "no PRI at column 1"},
	}
}

// TestLiveSubscribe checks that a subscriber without after gets the events
// appended after it subscribed, each once and in order, as JSON event frames.
func TestLiveSubscribe(t *testing.T) {
	ts := startServer(t, memstore.Config{}, session.Config{})
	old := syslogEvent("lnx01", "before the subscription")
	ts.append(t, old)

	c := dial(t, ts.addr)
	if after := subscribe(t, c, nil, "", ""); after != old.ID.String() {
		t.Fatalf("subscribe reply after = %q, want the last ID %s", after, old.ID)
	}
	var want []*protocol.Event
	for i := 0; i < 3; i++ { // several appends, one and several events each
		evs := richEvents()
		if i == 1 {
			evs = evs[:1]
		}
		ts.append(t, evs...)
		want = append(want, evs...)
	}
	expectEvents(t, c, want)
	// Nothing else came before the next event: no duplicates.
	last := syslogEvent("lnx01", "last")
	ts.append(t, last)
	expectEvents(t, c, []*protocol.Event{last})
	waitFor(t, "EventsSent", func() bool { return ts.srv.EventsSent() == uint64(len(want)+1) })
}

// TestFormatLX: lx subscribers get each event's CA text line; three at
// once, so that they share the lines one of them encoded (lxLines).
func TestFormatLX(t *testing.T) {
	ts := startServer(t, memstore.Config{}, session.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	var cs []*client.Conn
	for range 3 {
		c := dial(t, ts.addr)
		if _, err := c.Subscribe(ctx, nil, "", "lx"); err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	evs := []*protocol.Event{
		{Source: protocol.SourceSyslog, Origin: protocol.Origin{Host: "host"}, Facility: protocol.FacDaemon,
			Severity: protocol.SevInfo, Text: "text"},
		{Source: protocol.SourceZVMConsole, Origin: protocol.Origin{System: "VMSYS1", Node: "ZVM002"}, Type: "MSG",
			User: "POLLGEN", Text: "two\nlines"},
		{Source: protocol.SourceZVMEvent, Origin: protocol.Origin{Node: "ZVM002"}, User: "LINUX113", Type: "LOGOFF"},
	}
	lines := []string{
		"LXLOG001I host - daemon info text",
		`LXMSG001I ZVM002 MSG POLLGEN two\nlines`,
		"LXEVT001I ZVM002 LINUX113 LOGOFF",
	}
	ts.append(t, evs...)
	for k, c := range cs {
		for i, e := range evs {
			f := next(t, c)
			if f.Type != protocol.TypeEvent || f.Event != nil || f.ID != e.ID.String() || f.Line != lines[i] {
				t.Errorf("subscriber %d: frame %d = %+v, want event id %s line %q", k, i, f, e.ID, lines[i])
			}
		}
	}
}

func TestFilter(t *testing.T) {
	sev := func(s protocol.Severity) *protocol.Severity { return &s }
	events := []*protocol.Event{
		{Text: "lnx-syslog-err", Source: protocol.SourceSyslog, Origin: protocol.Origin{System: "lnx01", Host: "lnx01"},
			MsgID: "SSHD01", Severity: protocol.SevErr},
		{Text: "LNX-upper-info", Source: protocol.SourceSyslog, Origin: protocol.Origin{Host: "LNX02"},
			Severity: protocol.SevInfo},
		{Text: "console-hcp-warning", Source: protocol.SourceZVMConsole, Origin: protocol.Origin{System: "VMSYS1", Node: "lnxnode"},
			MsgID: "HCP003E", Severity: protocol.SevWarning},
		{Text: "zvm-event-notice", Source: protocol.SourceZVMEvent, Origin: protocol.Origin{System: "VMSYS1"},
			MsgID: "LOGON", Severity: protocol.SevNotice},
		{Text: "region-crit", Source: protocol.SourceRegion, Origin: protocol.Origin{System: "REGION1"},
			MsgID: "ZBR001E", Severity: protocol.SevCrit},
		{Text: "agent-debug", Source: protocol.SourceAgent, Origin: protocol.Origin{System: "lnx03", Host: "agenthost"},
			MsgID: "HCPX", Severity: protocol.SevDebug},
	}
	// The last event passes every filter below: when it arrives, every
	// event before it has been considered.
	endEvent := func() *protocol.Event {
		return &protocol.Event{Text: "end", Source: protocol.SourceZVMConsole, Origin: protocol.Origin{System: "lnxEND", Node: "VMSYS1"},
			MsgID: "HCP999E", Severity: protocol.SevEmerg}
	}
	tests := []struct {
		name   string
		filter *protocol.Filter
		want   []string
	}{
		{"none", nil, []string{"lnx-syslog-err", "LNX-upper-info", "console-hcp-warning", "zvm-event-notice", "region-crit", "agent-debug"}},
		{"empty", &protocol.Filter{}, []string{"lnx-syslog-err", "LNX-upper-info", "console-hcp-warning", "zvm-event-notice", "region-crit", "agent-debug"}},
		{"origin glob", &protocol.Filter{Origin: "lnx*"}, []string{"lnx-syslog-err", "LNX-upper-info", "console-hcp-warning", "agent-debug"}},
		{"origin literal", &protocol.Filter{Origin: "vmsys1"}, []string{"console-hcp-warning", "zvm-event-notice"}},
		{"source", &protocol.Filter{Source: []protocol.Source{protocol.SourceZVMConsole, protocol.SourceZVMEvent}},
			[]string{"console-hcp-warning", "zvm-event-notice"}},
		{"msgid glob", &protocol.Filter{MsgID: "HCP*"}, []string{"console-hcp-warning", "agent-debug"}},
		{"msgid ?", &protocol.Filter{MsgID: "HCP???E"}, []string{"console-hcp-warning"}},
		{"severity", &protocol.Filter{Severity: sev(protocol.SevWarning)}, []string{"lnx-syslog-err", "console-hcp-warning", "region-crit"}},
		{"origin and severity", &protocol.Filter{Origin: "lnx*", Severity: sev(protocol.SevWarning)},
			[]string{"lnx-syslog-err", "console-hcp-warning"}},
		{"all four", &protocol.Filter{Origin: "*", Source: []protocol.Source{protocol.SourceZVMConsole, protocol.SourceRegion},
			MsgID: "*E", Severity: sev(protocol.SevErr)}, []string{"region-crit"}},
	}
	ts := startServer(t, memstore.Config{}, session.Config{})
	conns := make([]*client.Conn, len(tests))
	for i, tt := range tests {
		conns[i] = dial(t, ts.addr)
		subscribe(t, conns[i], tt.filter, "", "")
	}
	// Round 0 appends the events one by one, round 1 one by one and then
	// all in one append.
	for round := 0; round < 2; round++ {
		for _, e := range events {
			e := *e
			ts.append(t, &e)
		}
		if round == 1 {
			// One append holding everything.
			batch := make([]*protocol.Event, len(events))
			for i, e := range events {
				e := *e
				batch[i] = &e
			}
			ts.append(t, batch...)
		}
		ts.append(t, endEvent())
		for i, tt := range tests {
			var got []string
			for {
				e := nextEvent(t, conns[i])
				if e.Text == "end" {
					break
				}
				if !tt.filter.Match(e) { // a check of the check
					t.Errorf("%s: got %q, which the filter does not match", tt.name, e.Text)
				}
				got = append(got, e.Text)
			}
			want := tt.want
			if round == 1 {
				want = append(append([]string{}, tt.want...), tt.want...)
			}
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("round %d, %s: got %q, want %q", round, tt.name, got, want)
			}
		}
	}
}

func TestResume(t *testing.T) {
	ts := startServer(t, memstore.Config{}, session.Config{})
	first := syslogEvents(10, "first")
	ts.append(t, first[:5]...)

	c := dial(t, ts.addr)
	subscribe(t, c, nil, "0", "")
	expectEvents(t, c, first[:5])
	ts.append(t, first[5:]...)
	expectEvents(t, c, first[5:7])
	lastSeen := first[6].ID.String()
	c.Close()

	second := syslogEvents(10, "second")
	ts.append(t, second...)
	c2 := dial(t, ts.addr)
	if after := subscribe(t, c2, nil, lastSeen, ""); after != lastSeen {
		t.Errorf("reply after = %q, want %q", after, lastSeen)
	}
	missed := append(append([]*protocol.Event{}, first[7:]...), second...)
	expectEvents(t, c2, missed)
	end := syslogEvent("lnx01", "end")
	ts.append(t, end)
	expectEvents(t, c2, []*protocol.Event{end})

	all := append(append(append([]*protocol.Event{}, first...), second...), end)
	c3 := dial(t, ts.addr)
	if after := subscribe(t, c3, nil, "0", "json"); after != "0-0" {
		t.Errorf("reply after = %q, want 0-0", after)
	}
	expectEvents(t, c3, all)
	end2 := syslogEvent("lnx01", "end2")
	ts.append(t, end2)
	expectEvents(t, c3, []*protocol.Event{end2})
}

// TestGap checks that resuming from an event retention trimmed starts with a
// notice gap, then the retained events.
func TestGap(t *testing.T) {
	ts := startServer(t, memstore.Config{MaxEvents: 100}, session.Config{})
	evs := syslogEvents(500, "ev")
	ts.append(t, evs[:1]...)
	ts.append(t, evs[1:]...)

	c := dial(t, ts.addr)
	subscribe(t, c, nil, evs[0].ID.String(), "")
	f := next(t, c)
	if f.Type != protocol.TypeNotice || f.Reason != "gap" || f.ResumeAfter != evs[399].ID.String() ||
		!strings.Contains(f.Message, evs[0].ID.String()) || !strings.Contains(f.Message, evs[399].ID.String()) {
		t.Fatalf("got %+v, want notice gap through %s", f, evs[399].ID)
	}
	expectEvents(t, c, evs[400:])
	end := syslogEvent("lnx01", "end")
	ts.append(t, end)
	expectEvents(t, c, []*protocol.Event{end})

	// Resuming from a retained ID has no gap.
	c2 := dial(t, ts.addr)
	subscribe(t, c2, nil, evs[450].ID.String(), "")
	expectEvents(t, c2, append(append([]*protocol.Event{}, evs[451:]...), end))
}

// TestBehind checks that a live subscriber that retention overtakes is
// ended with bye behind and the ID of the last event it was sent, and that
// resuming from there reports the gap.
func TestBehind(t *testing.T) {
	ts := startServer(t, memstore.Config{MaxEvents: 100}, session.Config{})
	c := dial(t, ts.addr)
	subscribe(t, c, nil, "", "")
	e1 := syslogEvent("lnx01", "first")
	ts.append(t, e1)
	expectEvents(t, c, []*protocol.Event{e1})

	flood := syslogEvents(1000, "flood")
	ts.append(t, flood...)
	expectBye(t, c, protocol.ByeBehind, e1.ID.String())
	waitFor(t, "the session's end counted", func() bool { return ts.srv.Stats().Ended[protocol.ByeBehind] == 1 })

	c2 := dial(t, ts.addr)
	subscribe(t, c2, nil, e1.ID.String(), "")
	f := next(t, c2)
	if f.Type != protocol.TypeNotice || f.Reason != "gap" || f.ResumeAfter != flood[899].ID.String() {
		t.Fatalf("got %+v, want notice gap through %s", f, flood[899].ID)
	}
	expectEvents(t, c2, flood[900:])
}

// rawSubscriber logs on and subscribes over a plain connection that then
// reads nothing more.
func rawSubscriber(t *testing.T, addr string) net.Conn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, waitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetReadBuffer(4096) // fill up sooner
	}
	nc.SetDeadline(time.Now().Add(waitTimeout))
	r := protocol.NewReader(nc, 0)
	for _, f := range []*protocol.Frame{
		{Type: protocol.TypeLogon, Req: 1, Client: "stalled", Version: protocol.Version},
		{Type: protocol.TypeSubscribe, Req: 2},
	} {
		b, _ := protocol.AppendFrame(nil, f)
		if _, err := nc.Write(b); err != nil {
			t.Fatal(err)
		}
		var in protocol.Frame
		if err := r.Next(&in); err != nil {
			t.Fatal(err)
		}
		if in.Req != f.Req || in.Error != nil || (in.Type != protocol.TypeAccept && in.Type != protocol.TypeReply) {
			t.Fatalf("%s: got %+v", f.Type, in)
		}
	}
	nc.SetDeadline(time.Time{})
	return nc
}

// TestStalledSubscriber checks that a subscriber that stops reading is ended
// after the write timeout without holding up the region or the others.
//
// The reading subscriber is kept at most one append behind. With a write
// timeout this short it could not otherwise keep up under -race: Linux wakes
// a blocked writer only when half its send buffer (up to 2 MiB) has drained,
// so a subscriber with a backlog must take that much within the timeout.
func TestStalledSubscriber(t *testing.T) {
	const total, perAppend = 30000, 500
	ts := startServer(t, memstore.Config{}, session.Config{WriteTimeout: 300 * time.Millisecond})
	rawSubscriber(t, ts.addr)
	c := dial(t, ts.addr)
	subscribe(t, c, nil, "", "")

	var received atomic.Int64
	type result struct {
		ids []protocol.ID
		err error
	}
	done := make(chan result, 1)
	go func() {
		var r result
		ctx, cancel := context.WithTimeout(context.Background(), 10*waitTimeout)
		defer cancel()
		for len(r.ids) < total {
			f, err := c.Next(ctx)
			if err != nil {
				r.err = err
				break
			}
			if f.Event == nil {
				r.err = fmt.Errorf("got %+v, want an event", f)
				break
			}
			r.ids = append(r.ids, f.Event.ID)
			received.Add(1)
		}
		done <- r
	}()

	text := strings.Repeat("x", 1000)
	var want []protocol.ID
	var stalledEndedAt int
	var final *result // what the reader reported, once it has finished
	for len(want) < total {
		evs := make([]*protocol.Event, perAppend)
		for i := range evs {
			evs[i] = syslogEvent("lnx01", text)
		}
		start := time.Now()
		ts.append(t, evs...)
		if d := time.Since(start); d > waitTimeout/2 {
			t.Errorf("Append of %d events took %v", perAppend, d)
		}
		for _, e := range evs {
			want = append(want, e.ID)
		}
		if stalledEndedAt == 0 && ts.srv.Stats().Ended[protocol.ByeBehind] > 0 {
			stalledEndedAt = len(want)
		}
		// Wait for the reader to catch up.
		n := int64(len(want))
		deadline := time.Now().Add(waitTimeout)
		for final == nil && received.Load() < n && time.Now().Before(deadline) {
			select {
			case r := <-done:
				if r.err != nil || len(r.ids) != total {
					t.Fatalf("the reading subscriber stopped after %d events: %v", len(r.ids), r.err)
				}
				final = &r // it got the last event just now
			case <-time.After(time.Millisecond):
			}
		}
		if received.Load() < n {
			t.Fatalf("the reading subscriber has %d events of %d after %v", received.Load(), n, waitTimeout)
		}
	}
	waitFor(t, "the stalled subscriber ended behind", func() bool { return ts.srv.Stats().Ended[protocol.ByeBehind] >= 1 })
	t.Logf("the stalled subscriber was ended after %d of %d events were appended", stalledEndedAt, total)

	if final == nil {
		select {
		case r := <-done:
			final = &r
		case <-time.After(waitTimeout):
			t.Fatal("the reading subscriber did not finish")
		}
	}
	r := final
	if r.err != nil || len(r.ids) != total {
		t.Fatalf("the reading subscriber after %d events: %v", len(r.ids), r.err)
	}
	for i := range want {
		if r.ids[i] != want[i] {
			t.Fatalf("event %d: ID %s, want %s", i, r.ids[i], want[i])
		}
	}
	if st := ts.srv.Stats(); st.Active != 1 || st.Ended[protocol.ByeBehind] != 1 {
		t.Errorf("Stats() = %+v, want the reader still active and one session ended behind", st)
	}
}

// TestShutdownDrains checks that Shutdown sends a subscriber every event in
// the store before bye shutdown with the last event's ID.
func TestShutdownDrains(t *testing.T) {
	ts := startServer(t, memstore.Config{}, session.Config{})
	c := dial(t, ts.addr)
	subscribe(t, c, nil, "", "")
	evs := syslogEvents(1000, "ev")
	ts.append(t, evs...)

	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*waitTimeout)
		defer cancel()
		shut <- ts.srv.Shutdown(ctx)
	}()
	expectEvents(t, c, evs)
	expectBye(t, c, protocol.ByeShutdown, evs[len(evs)-1].ID.String())
	select {
	case err := <-shut:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(4 * waitTimeout):
		t.Fatal("Shutdown did not return")
	}
	if err := ts.serveResult(); !errors.Is(err, unsolmsg.ErrServerClosed) {
		t.Fatalf("Serve returned %v, want ErrServerClosed", err)
	}
	if st := ts.srv.Stats(); st.Ended[protocol.ByeShutdown] != 1 {
		t.Errorf("Stats().Ended = %v, want one shutdown", st.Ended)
	}
}

// TestShutdownRightAfterSubscribe checks that a subscription acknowledged
// just before Shutdown still gets the events in the store and a resume
// point.
func TestShutdownRightAfterSubscribe(t *testing.T) {
	for i := 0; i < 20; i++ {
		ts := newServer(t, memstore.Config{}, session.Config{})
		evs := syslogEvents(3, "ev")
		ts.append(t, evs...)
		c := dial(t, ts.addr)
		subscribe(t, c, nil, evs[0].ID.String(), "")
		shut := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			shut <- ts.srv.Shutdown(ctx)
		}()
		expectEvents(t, c, evs[1:])
		expectBye(t, c, protocol.ByeShutdown, evs[2].ID.String())
		if err := <-shut; err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		ts.close(t)
	}
}

func TestBadRequests(t *testing.T) {
	ts := startServer(t, memstore.Config{}, session.Config{})
	c := dial(t, ts.addr)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	tests := []struct {
		name   string
		filter *protocol.Filter
		after  string
		format string
	}{
		{name: "unknown format", format: "xml"},
		{name: "bad after", after: "yesterday"},
		{name: "bad after seq", after: "1700000000000-x"},
		{name: "unknown source kind", filter: &protocol.Filter{Source: []protocol.Source{protocol.SourceSyslog, "mail"}}},
	}
	for _, tt := range tests {
		_, err := c.Subscribe(ctx, tt.filter, tt.after, tt.format)
		var re *client.ReplyError
		if !errors.As(err, &re) || re.Code != protocol.ErrCodeBadRequest || re.Message == "" {
			t.Errorf("%s: Subscribe = %v, want a bad-request reply error", tt.name, err)
		}
	}
	// The session is still usable: a good subscribe works.
	subscribe(t, c, &protocol.Filter{Source: []protocol.Source{protocol.SourceSyslog}}, "", "lx")
	e := syslogEvent("lnx01", "works")
	ts.append(t, e)
	if f := next(t, c); f.ID != e.ID.String() || f.Line != "LXLOG001I lnx01 - daemon info works" {
		t.Errorf("got %+v, want the event in lx", f)
	}
	_, err := c.Subscribe(ctx, nil, "", "")
	var re *client.ReplyError
	if !errors.As(err, &re) || re.Code != protocol.ErrCodeState {
		t.Errorf("second Subscribe = %v, want a state reply error", err)
	}

	// An unknown request type, on the wire.
	nc := rawSubscriber(t, ts.addr)
	nc.SetDeadline(time.Now().Add(waitTimeout))
	if _, err := io.WriteString(nc, `{"type":"command","req":3}`+"\n"); err != nil {
		t.Fatal(err)
	}
	r := protocol.NewReader(nc, 0)
	var f protocol.Frame
	if err := r.Next(&f); err != nil {
		t.Fatal(err)
	}
	if f.Type != protocol.TypeReply || f.Req != 3 || f.Error == nil || f.Error.Code != protocol.ErrCodeUnknownType {
		t.Errorf("got %+v, want a reply with error unknown-type", f)
	}

	// The first connection still streams.
	e2 := syslogEvent("lnx01", "still works")
	ts.append(t, e2)
	if f := next(t, c); f.ID != e2.ID.String() {
		t.Errorf("got %+v, want event %s", f, e2.ID)
	}
}

func TestNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	ts := newServer(t, memstore.Config{MaxEvents: 100}, session.Config{WriteTimeout: 300 * time.Millisecond})

	// A subscriber ended behind.
	behind := dial(t, ts.addr)
	subscribe(t, behind, nil, "", "")
	e := syslogEvent("lnx01", "one")
	ts.append(t, e)
	expectEvents(t, behind, []*protocol.Event{e})
	flood := syslogEvents(500, "flood")
	ts.append(t, flood...)
	expectBye(t, behind, protocol.ByeBehind, e.ID.String())

	// A subscriber and a session without a subscription, ended by Shutdown.
	live := dial(t, ts.addr)
	subscribe(t, live, nil, "0", "")
	expectEvents(t, live, flood[400:])
	idle := dial(t, ts.addr)
	// A subscriber that reads nothing more.
	rawSubscriber(t, ts.addr)

	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		shut <- ts.srv.Shutdown(ctx)
	}()
	expectBye(t, live, protocol.ByeShutdown, flood[499].ID.String())
	expectBye(t, idle, protocol.ByeShutdown, "")
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	ts.close(t)
	live.Close()
	behind.Close()
	idle.Close()

	leakcheck.Wait(t, before, waitTimeout)
}

// TestSteadyTrafficNotIdle: a subscriber that only reads (and answers the
// region's heartbeats), under events arriving more often than the
// heartbeat interval, stays logged on well past the idle timeout.
func TestSteadyTrafficNotIdle(t *testing.T) {
	if testing.Short() {
		t.Skip("runs traffic for 6 s: not in -short")
	}
	ts := startServer(t, memstore.Config{}, session.Config{Heartbeat: time.Second, MinHeartbeat: time.Second,
		IdleTimeout: 2 * time.Second})
	c, err := client.Dial(context.Background(), client.Config{Addr: ts.addr, Client: "reader", Heartbeat: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	subscribe(t, c, nil, "", "json")
	const n = 30 // one every 200 ms: 6 s, three idle timeouts
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < n; i++ {
			ts.st.Append(context.Background(), []*protocol.Event{syslogEvent("lnx", fmt.Sprint("tick ", i))})
			time.Sleep(200 * time.Millisecond)
		}
	}()
	for i := 0; i < n; i++ {
		ev := nextEvent(t, c)
		if ev.Text != fmt.Sprint("tick ", i) {
			t.Fatalf("event %d = %q", i, ev.Text)
		}
	}
	<-done
}
