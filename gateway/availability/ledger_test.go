package availability

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/gateway/store/memstore"
	"github.com/zbridge/zbridge/internal/leakcheck"
	"github.com/zbridge/zbridge/protocol"
)

func quiet() logrus.FieldLogger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}

// clock is a test clock the ledger reads.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// records returns the store's records as "COMPONENT STATUS CHANGE" lines.
func records(t *testing.T, st *memstore.Store) []string {
	t.Helper()
	recs, err := st.StatusRecords(context.Background(), 0, 1000, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i, r := range recs {
		if r.Seq != uint64(i+1) {
			t.Errorf("record %d has Seq %d", i, r.Seq)
		}
		out = append(out, fmt.Sprintf("%s %s %s", r.Component, r.Status, r.Change))
	}
	return out
}

// waitRecords waits until the store holds want (in order), or fails.
func waitRecords(t *testing.T, st *memstore.Store, want ...string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := records(t, st)
		if strings.Join(got, "\n") == strings.Join(want, "\n") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("records:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func ev(src protocol.Source, system, msgid, text string) *protocol.Event {
	return &protocol.Event{Source: src, Origin: protocol.Origin{System: system, Host: system}, MsgID: msgid, Text: text, Parsed: true}
}

// start runs a ledger on st; stop stops it and checks how Run ended.
func start(t *testing.T, st *memstore.Store, cfg Config) (l *Ledger, stop func()) {
	t.Helper()
	cfg.Store, cfg.Logger = st, quiet()
	if cfg.Tick == 0 {
		cfg.Tick = 5 * time.Millisecond
	}
	l, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	return l, func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v", err)
		}
	}
}

func mustSpec(t *testing.T, text string) *Spec {
	t.Helper()
	s, err := ParseSpec([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const rulesSpec = `
[[availability.rule]]
name = "sysplex-join"
events = "msgid=IXC418I"
text = 'SYSTEM (?P<system>\S+) IS NOW ACTIVE'
component = "{system}"
status = "UP"
[[availability.rule]]
name = "sysplex-leave"
events = "msgid=IXC402D"
text = '(?P<system>[A-Z0-9]+) (LAST OPERATIVE|SYSPLEX PARTITIONING)'
component = "{system}"
status = "down"
[[availability.rule]]
name = "guest-logon"
events = "source=zvm-event,type=LOGON"
component = "{system}/{user}"
status = "UP"
[[availability.rule]]
name = "guest-logoff"
events = "source=zvm-event,type=LOGOFF"
component = "{system}/{user}"
status = "DOWN"
`

// TestRules: events matching a rule set its component's status; repeats
// write nothing, flapping writes every change in order; the component and
// change come from captures and event fields; the records survive a new
// ledger on the same store, which resumes after the events it handled.
func TestRules(t *testing.T) {
	defer leakcheck.Check(t)
	st := memstore.New(memstore.Config{})
	defer st.Close()
	ctx := context.Background()
	spec := mustSpec(t, rulesSpec)
	var mu sync.Mutex
	var published []string
	l, stop := start(t, st, Config{Spec: spec, Publish: func(_ context.Context, r protocol.StatusRecord) {
		mu.Lock()
		published = append(published, fmt.Sprintf("%d %s %s", r.Seq, r.Component, r.Status))
		mu.Unlock()
	}})
	guest := func(typ, user string) *protocol.Event {
		e := ev(protocol.SourceZVMEvent, "VMSYS1", "", user+" "+typ)
		e.Type, e.User = typ, user
		return e
	}
	st.Append(ctx, []*protocol.Event{
		ev(protocol.SourceSyslog, "SYSA", "IXC418I", "SYSTEM SYSA IS NOW ACTIVE IN SYSPLEX PLEX1"),
		ev(protocol.SourceSyslog, "SYSA", "IXC418I", "SYSTEM SYSA IS NOW ACTIVE IN SYSPLEX PLEX1"), // a repeat
		ev(protocol.SourceSyslog, "SYSB", "IXC402D", "SYSA LAST OPERATIVE AT 10:11:12. REPLY DOWN"),
		ev(protocol.SourceSyslog, "SYSA", "IXC418I", "SYSTEM SYSA IS NOW ACTIVE IN SYSPLEX PLEX1"),
		ev(protocol.SourceSyslog, "SYSA", "IEF403I", "SYSTEM SYSA IS NOW ACTIVE"), // no rule's msgid
		guest("LOGON", "LINUX01"), guest("LOGOFF", "LINUX01"), guest("LOGON", "LINUX01"),
	})
	want := []string{"SYSA UP IXC418I", "SYSA DOWN IXC402D", "SYSA UP IXC418I",
		"VMSYS1/LINUX01 UP LOGON", "VMSYS1/LINUX01 DOWN LOGOFF", "VMSYS1/LINUX01 UP LOGON"}
	waitRecords(t, st, want...)
	mu.Lock()
	if len(published) != 6 || published[0] != "1 SYSA UP" || published[5] != "6 VMSYS1/LINUX01 UP" {
		t.Errorf("published %q; want each record once, with its Seq", published)
	}
	mu.Unlock()
	cur := l.Current()
	if len(cur) != 2 || cur[0].Component != "SYSA" || cur[0].Status != protocol.StatusUp || cur[1].Rule != "guest-logon" {
		t.Errorf("current %+v", cur)
	}

	// A second ledger on the same store (a restart): the state comes
	// back, and the events already handled are not handled again.
	stop() // the region stops
	l2, stop2 := start(t, st, Config{Spec: spec, Position: "availability"})
	defer stop2()
	if got := l2.Current(); len(got) != 2 || got[0].Status != protocol.StatusUp {
		t.Errorf("state after a restart: %+v", got)
	}
	st.Append(ctx, []*protocol.Event{guest("LOGOFF", "LINUX01")})
	waitRecords(t, st, append(want, "VMSYS1/LINUX01 DOWN LOGOFF")...)
}

// TestHeartbeats: events as beats and an agent's link as beats; a beat
// missing for the interval is DOWN from when the interval ran out, the
// next beat UP.
func TestHeartbeats(t *testing.T) {
	defer leakcheck.Check(t)
	st := memstore.New(memstore.Config{})
	defer st.Close()
	ctx := context.Background()
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	clk := &clock{t: t0}
	var amu sync.Mutex
	agent := Agent{Target: "zvm:VMSYS1"}
	spec := mustSpec(t, `
[[availability.heartbeat]]
name = "web-syslog"
events = "source=syslog,origin=web*"
component = "{host}.syslog"
interval = "5m"
[[availability.heartbeat]]
name = "vmsys1-agent"
agent = "zvm:VMSYS1"
component = "VMSYS1.agent"
interval = "1m"
`)
	_, stop := start(t, st, Config{Spec: spec, Now: clk.Now, Agents: func() []Agent {
		amu.Lock()
		defer amu.Unlock()
		return []Agent{agent}
	}})
	defer stop()
	beat := func(at time.Time) {
		e := ev(protocol.SourceSyslog, "web1", "", "a line")
		e.Received = at
		st.Append(ctx, []*protocol.Event{e})
		// Handled before the test moves the clock: a beat the ledger has
		// not read yet would be missing.
		deadline := time.Now().Add(30 * time.Second)
		for {
			pos, _, _ := st.Position(ctx, "availability")
			if !pos.Less(e.ID) || time.Now().After(deadline) {
				return
			}
			time.Sleep(time.Millisecond)
		}
	}
	beat(t0)
	waitRecords(t, st, "web1.syslog UP heartbeat")
	amu.Lock()
	agent.Connected = true
	amu.Unlock()
	waitRecords(t, st, "web1.syslog UP heartbeat", "VMSYS1.agent UP heartbeat")

	// The agent's link goes at t0+10s; 61 s later it is DOWN as of
	// t0+1m10s.
	clk.Set(t0.Add(10 * time.Second))
	time.Sleep(50 * time.Millisecond) // a few checks: beats at t0+10s
	amu.Lock()
	agent.Connected = false
	amu.Unlock()
	time.Sleep(50 * time.Millisecond) // no beat after the last check saw it connected
	clk.Set(t0.Add(71 * time.Second))
	waitRecords(t, st, "web1.syslog UP heartbeat", "VMSYS1.agent UP heartbeat", "VMSYS1.agent DOWN heartbeat-lost")
	// web1 beats at 4m, then nothing: DOWN as of 9m.
	beat(t0.Add(4 * time.Minute))
	clk.Set(t0.Add(10 * time.Minute))
	waitRecords(t, st, "web1.syslog UP heartbeat", "VMSYS1.agent UP heartbeat", "VMSYS1.agent DOWN heartbeat-lost",
		"web1.syslog DOWN heartbeat-lost")
	// Both back: web1 first, then the agent.
	beat(t0.Add(10 * time.Minute))
	waitRecords(t, st, "web1.syslog UP heartbeat", "VMSYS1.agent UP heartbeat", "VMSYS1.agent DOWN heartbeat-lost",
		"web1.syslog DOWN heartbeat-lost", "web1.syslog UP heartbeat")
	amu.Lock()
	agent.Connected = true
	amu.Unlock()
	waitRecords(t, st, "web1.syslog UP heartbeat", "VMSYS1.agent UP heartbeat", "VMSYS1.agent DOWN heartbeat-lost",
		"web1.syslog DOWN heartbeat-lost", "web1.syslog UP heartbeat", "VMSYS1.agent UP heartbeat")
	recs, _ := st.StatusRecords(ctx, 0, 100, nil)
	if !recs[2].Time.Equal(t0.Add(70*time.Second)) || !recs[3].Time.Equal(t0.Add(9*time.Minute)) {
		t.Errorf("heartbeat-lost times %v, %v; want when the interval ran out: %v, %v", recs[2].Time, recs[3].Time,
			t0.Add(70*time.Second), t0.Add(9*time.Minute))
	}
}

// TestProbes: a probe UP on its return code and output, DOWN when it
// fails or times out, nothing when it cannot run; each change once.
func TestProbes(t *testing.T) {
	defer leakcheck.Check(t)
	defer func(m time.Duration) { minInterval = m }(minInterval)
	minInterval = 10 * time.Millisecond
	st := memstore.New(memstore.Config{})
	defer st.Close()
	type answer struct {
		rc  int
		out string
		err error
	}
	answers := make(chan answer, 16)
	var calls sync.Mutex
	var targets []string
	spec := mustSpec(t, `
[[availability.probe]]
name = "httpd"
target = "linux:has113"
command = "systemctl is-active httpd"
component = "has113.httpd.80"
interval = "20ms"
up-text = '^active$'
`)
	_, stop := start(t, st, Config{Spec: spec, Tick: 10 * time.Millisecond, Probe: func(ctx context.Context, target, command string, timeout time.Duration) (int, string, error) {
		calls.Lock()
		targets = append(targets, target+" "+command)
		calls.Unlock()
		select {
		case a := <-answers:
			return a.rc, a.out, a.err
		case <-ctx.Done():
			return 0, "", ctx.Err()
		}
	}})
	defer stop()
	for _, a := range []answer{{0, "active", nil}, {0, "active", nil}, {3, "inactive", nil}, {0, "activating", nil},
		{0, "active", nil}, {0, "", fmt.Errorf("%w: the command did not finish within 20s", ErrProbeTimeout)},
		{0, "", errors.New("commands: not-connected: linux:has113 is down (dial tcp: i/o timeout)")}, {0, "active", nil}} {
		answers <- a
	}
	// The not-connected answer (it could not run, whatever its text says)
	// writes nothing.
	waitRecords(t, st, "has113.httpd.80 UP probe-ok", "has113.httpd.80 DOWN probe-failed", "has113.httpd.80 UP probe-ok",
		"has113.httpd.80 DOWN probe-timeout", "has113.httpd.80 UP probe-ok")
	calls.Lock()
	if targets[0] != "linux:has113 systemctl is-active httpd" {
		t.Errorf("probe ran %q", targets[0])
	}
	calls.Unlock()
}

// TestRCDetail: a failed probe's detail names its return code, and its
// output only when there is some.
func TestRCDetail(t *testing.T) {
	for _, tc := range []struct {
		rc   int
		out  string
		want string
	}{
		{3, "inactive", "rc 3: inactive"},
		{1, "", "rc 1"},
	} {
		if got := rcDetail(tc.rc, tc.out); got != tc.want {
			t.Errorf("rcDetail(%d, %q) = %q, want %q", tc.rc, tc.out, got, tc.want)
		}
	}
}

// TestSpecErrors: a spec that cannot work is refused with the reason.
func TestSpecErrors(t *testing.T) {
	for _, tt := range []struct{ spec, want string }{
		{"[[availability.rule]]\nname = \"a\"\nevents = \"msgid=X\"\ncomponent = \"c\"\nstatus = \"SIDEWAYS\"", "not UP or DOWN"},
		{"[[availability.rule]]\nname = \"a\"\ncomponent = \"c\"\nstatus = \"UP\"", "events or text is required"},
		{"[[availability.rule]]\nname = \"a\"\nevents = \"msgid=X\"\ncomponent = \"{nosuch}\"\nstatus = \"UP\"", "{nosuch} is neither"},
		{"[[availability.rule]]\nname = \"a\"\ntext = \"(\"\ncomponent = \"c\"\nstatus = \"UP\"", "text:"},
		{"[[availability.heartbeat]]\nname = \"h\"\nevents = \"origin=x\"\ncomponent = \"c\"\ninterval = \"10ms\"", "under"},
		{"[[availability.heartbeat]]\nname = \"h\"\nagent = \"ftp:x\"\ncomponent = \"c\"\ninterval = \"1m\"", "not zvm:SYSTEM"},
		{"[[availability.probe]]\nname = \"p\"\ntarget = \"linux:x\"\ncomponent = \"c\"\ninterval = \"1m\"", "required"},
		{"[[availability.probe]]\nname = \"p\"\ntarget = \"linux:x\"\ncommand = \"true\"\ncomponent = \"c\"\ninterval = \"1m\"\n[[availability.rule]]\nname = \"p\"\nevents = \"msgid=X\"\ncomponent = \"c\"\nstatus = \"UP\"", "already defined"},
		{"[availability]\nrules = 1", "unknown keys availability.rules"},
		{"[availability]\nmax-components-per-sender = -1", "max-components-per-sender -1"},
		{"[availability]\nmax-components-per-sender = 10001", "want 1 to 10000"},
	} {
		if _, err := ParseSpec([]byte(tt.spec)); err == nil || !errors.Is(err, ErrSpec) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s\n→ %v; want %q", tt.spec, err, tt.want)
		}
	}
	if s, err := ParseSpec([]byte("[region]\nname = \"x\"\n")); s != nil || err != nil {
		t.Errorf("a file without [availability]: %v, %v; want nil, nil", s, err)
	}
}

// TestOutOfOrder: a rule's record dated before its component's current
// status is history (stored, no state change, not published); a
// heartbeat received before its component was marked lost, but handled
// after, ends the outage then rather than dating an UP before the DOWN;
// an event dated in the future is recorded at its receipt.
func TestOutOfOrder(t *testing.T) {
	defer leakcheck.Check(t)
	st := memstore.New(memstore.Config{})
	defer st.Close()
	ctx := context.Background()
	var mu sync.Mutex
	published := 0
	l, stop := start(t, st, Config{Spec: mustSpec(t, rulesSpec), Publish: func(context.Context, protocol.StatusRecord) {
		mu.Lock()
		published++
		mu.Unlock()
	}})
	defer stop()
	at := func(h int) time.Time { return time.Date(2026, 12, 6, h, 0, 0, 0, time.UTC) }
	mk := func(msgid, text string, when time.Time) *protocol.Event {
		e := ev(protocol.SourceSyslog, "SYSB", msgid, text)
		e.Time, e.Received = when, at(12)
		return e
	}
	st.Append(ctx, []*protocol.Event{
		mk("IXC418I", "SYSTEM SYSA IS NOW ACTIVE", at(11)),
		mk("IXC402D", "SYSA LAST OPERATIVE AT 09:00", at(9)),           // a back-filled line: history
		mk("IXC418I", "SYSTEM SYSA IS NOW ACTIVE", at(10)),             // history too
		mk("IXC402D", "SYSA LAST OPERATIVE", at(12).Add(48*time.Hour)), // from the future: at its receipt
	})
	waitRecords(t, st, "SYSA UP IXC418I", "SYSA DOWN IXC402D", "SYSA UP IXC418I", "SYSA DOWN IXC402D")
	recs, _ := st.StatusRecords(ctx, 0, 10, nil)
	if !recs[3].Time.Equal(at(12)) {
		t.Errorf("a record from the future dated %v; want its receipt %v", recs[3].Time, at(12))
	}
	cur := l.Current()
	mu.Lock()
	defer mu.Unlock()
	if len(cur) != 1 || cur[0].Status != protocol.StatusDown || !cur[0].Since.Equal(at(12)) || published != 2 {
		t.Errorf("current %+v, %d published; want DOWN since 12:00 and 2 published (the history is not)", cur, published)
	}
}

// TestComponentsPerSender: a sender rotating the host names its lines
// claim adds at most its share of components, from rules and heartbeats
// alike (nor does it grow the heartbeats watched); another sender's new
// components, and the first sender's known ones, are still recorded.
func TestComponentsPerSender(t *testing.T) {
	leakcheck.Check(t)
	st := memstore.New(memstore.Config{})
	defer st.Close()
	spec := mustSpec(t, `
[availability]
max-components-per-sender = 3
[[availability.rule]]
name = "host-down"
events = "msgid=DOWN1"
component = "{host}"
status = "DOWN"
[[availability.rule]]
name = "host-up"
events = "msgid=UP1"
component = "{host}"
status = "UP"
[[availability.heartbeat]]
name = "host-beat"
events = "msgid=BEAT1"
component = "{host}.syslog"
interval = "1h"
`)
	l, stop := start(t, st, Config{Spec: spec})
	defer stop()
	from := func(addr, host, msgid string) *protocol.Event {
		return &protocol.Event{Source: protocol.SourceSyslog, Origin: protocol.Origin{Host: host, Addr: addr}, MsgID: msgid, Text: "x", Parsed: true}
	}
	ctx := context.Background()
	for i := 0; i < 10; i++ {
		if err := st.Append(ctx, []*protocol.Event{
			from("10.0.0.66", fmt.Sprintf("fake%d", i), "DOWN1"),
			from("2001:db8:1:2::66", fmt.Sprintf("fake6-%d", i), "BEAT1"),
			from("2001:db8:1:2::67", fmt.Sprintf("fake6b-%d", i), "BEAT1"), // the same /64
		}); err != nil {
			t.Fatal(err)
		}
	}
	// Another sender's, and a known component of the first one's again.
	if err := st.Append(ctx, []*protocol.Event{
		from("10.0.0.7", "web1", "DOWN1"), from("10.0.0.7", "web1", "BEAT1"), from("10.0.0.66", "fake0", "UP1"),
	}); err != nil {
		t.Fatal(err)
	}
	waitRecords(t, st,
		"fake0 DOWN DOWN1", "fake6-0.syslog UP heartbeat", "fake6b-0.syslog UP heartbeat",
		"fake1 DOWN DOWN1", "fake6-1.syslog UP heartbeat",
		"fake2 DOWN DOWN1",
		"web1 DOWN DOWN1", "web1.syslog UP heartbeat", "fake0 UP UP1")
	l.mu.Lock()
	beats := len(l.beats)
	l.mu.Unlock()
	if beats != 4 {
		t.Errorf("%d heartbeat components watched, want the 4 recorded", beats)
	}
}
