package vmagent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zbridge/zbridge/commands"
	"github.com/zbridge/zbridge/protocol"
	"github.com/zbridge/zbridge/vmagent/zvmsim"
)

const consolePassword = "s3cret"

// eventLog records published events.
type eventLog struct {
	mu  sync.Mutex
	evs []*protocol.Event
}

func (l *eventLog) add(evs ...*protocol.Event) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.evs = append(l.evs, evs...)
	return nil
}

func (l *eventLog) all() []*protocol.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*protocol.Event(nil), l.evs...)
}

// count returns the number of events for which match holds.
func (l *eventLog) count(match func(*protocol.Event) bool) int {
	n := 0
	for _, e := range l.all() {
		if match(e) {
			n++
		}
	}
	return n
}

// waitCount waits until exactly want events match, then checks that no
// more arrive for a while.
func (l *eventLog) waitCount(t *testing.T, what string, want int, match func(*protocol.Event) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for l.count(match) < want && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	if n := l.count(match); n != want {
		t.Fatalf("%s: %d events, want %d", what, n, want)
	}
}

func textIs(s string) func(*protocol.Event) bool {
	return func(e *protocol.Event) bool { return e.Source == protocol.SourceZVMConsole && e.Text == s }
}

func startConsoleSim(t *testing.T) (*zvmsim.Sim, string) {
	t.Helper()
	// MORE... is cleared by the agent, never waited out: ten minutes is
	// past any command's wait here.
	sim, err := zvmsim.New(zvmsim.Config{System: "VMSYS1", Password: consolePassword, MoreDelay: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go sim.Serve(l)
	t.Cleanup(func() { sim.Close() })
	return sim, l.Addr().String()
}

type scraperRun struct {
	sc   *Scraper
	evs  *eventLog
	errc chan error
	stop context.CancelFunc
}

func startScraper(t *testing.T, addr, user, password string) *scraperRun {
	t.Helper()
	evs := &eventLog{}
	sc, err := NewScraper(ScraperConfig{Addr: addr, User: user, Password: password, System: "VMSYS1",
		Publish: evs.add, Logger: quiet(), ReconnectMin: 50 * time.Millisecond, ReconnectMax: 200 * time.Millisecond,
		LogonTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &scraperRun{sc: sc, evs: evs, errc: make(chan error, 1), stop: cancel}
	go func() { r.errc <- sc.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.errc:
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return")
		}
	})
	return r
}

func (r *scraperRun) ready(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.sc.Ready(ctx); err != nil {
		t.Fatal(err)
	}
}

func (r *scraperRun) run(t *testing.T, cmd string) ([]string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a hang check
	defer cancel()
	var lines []string
	rc, err := r.sc.Run(ctx, cmd, func(l string) { lines = append(lines, l) })
	if err != nil {
		t.Fatalf("Run(%q): %v", cmd, err)
	}
	return lines, rc
}

func TestScraperLogon(t *testing.T) {
	t.Parallel() // it mostly waits; its console simulator is its own
	_, addr := startConsoleSim(t)
	r := startScraper(t, addr, "operator", consolePassword)
	r.ready(t)
	r.evs.waitCount(t, "LOGON AT", 1, func(e *protocol.Event) bool { return strings.HasPrefix(e.Text, "LOGON AT ") })
	for _, e := range r.evs.all() {
		if strings.Contains(e.Raw, consolePassword) || strings.Contains(e.Text, consolePassword) {
			t.Fatalf("the password is in an event: %+v", e)
		}
		if e.Origin.System != "VMSYS1" {
			t.Fatalf("origin %+v", e.Origin)
		}
	}

	for name, tc := range map[string]struct{ user, password, msgid string }{
		"bad password":      {"MAINT", "wrong", "HCPLGA050E"},
		"unknown user":      {"NOBODY", consolePassword, "HCPLGA050E"},
		"already logged on": {"OPERATOR", consolePassword, "HCPLGA054E"},
	} {
		t.Run(name, func(t *testing.T) {
			bad := startScraper(t, addr, tc.user, tc.password)
			select {
			case err := <-bad.errc:
				bad.errc <- err // for the cleanup
				var le *LogonError
				if !errors.As(err, &le) || le.MsgID != tc.msgid {
					t.Fatalf("Serve = %v, want a LogonError %s", err, tc.msgid)
				}
				if strings.Contains(err.Error(), tc.password) && tc.password != "" {
					t.Fatalf("the password is in the error: %v", err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				if _, err := bad.sc.Run(ctx, "Q TIME", nil); err == nil {
					t.Fatal("Run worked without a console")
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Serve did not fail")
			}
		})
	}
}

func TestScraperQueryTime(t *testing.T) {
	_, addr := startConsoleSim(t)
	r := startScraper(t, addr, "OPERATOR", consolePassword)
	r.ready(t)
	lines, rc := r.run(t, "Q TIME")
	if rc != 0 || len(lines) == 0 || !strings.HasPrefix(lines[0], "TIME IS ") {
		t.Fatalf("Q TIME: rc %d lines %q", rc, lines)
	}
	for _, l := range lines[1:] {
		if !strings.HasPrefix(l, "CONNECT=") {
			t.Fatalf("Q TIME: unexpected line %q in %q", l, lines)
		}
	}
	if n := r.evs.count(func(e *protocol.Event) bool {
		return leaked(e) || strings.Contains(e.Text, "TIME IS") || strings.Contains(e.Text, "Q TIME")
	}); n != 0 {
		t.Fatalf("%d events from the command's echo or response", n)
	}
	lines, rc = r.run(t, "XYZZY")
	if rc != 1 || len(lines) != 1 || !strings.HasPrefix(lines[0], "HCPCMD001E") {
		t.Fatalf("XYZZY: rc %d lines %q", rc, lines)
	}
	if _, err := r.sc.Run(context.Background(), strings.Repeat("Q TIME ", 40), nil); err == nil {
		t.Fatal("a 280-character command was typed")
	}
}

func TestScraperLongOutput(t *testing.T) {
	_, addr := startConsoleSim(t)
	r := startScraper(t, addr, "OPERATOR", consolePassword)
	r.ready(t)
	for range 2 {
		// Were MORE... waited out (ten minutes here), run's wait would end.
		lines, rc := r.run(t, "LONGOUT 60")
		if rc != 0 || len(lines) != 60 {
			t.Fatalf("LONGOUT 60: rc %d, %d lines: %q", rc, len(lines), lines)
		}
		for i, l := range lines {
			if want := fmt.Sprintf("LONGOUT LINE %05d OF 00060", i+1); l != want {
				t.Fatalf("line %d = %q, want %q", i, l, want)
			}
		}
	}
	if n := r.evs.count(func(e *protocol.Event) bool { return strings.Contains(e.Text, "LONGOUT") }); n != 0 {
		t.Fatalf("%d LONGOUT events", n)
	}
}

func TestScraperMsgToSelf(t *testing.T) {
	t.Parallel() // it mostly waits; its console simulator is its own
	_, addr := startConsoleSim(t)
	r := startScraper(t, addr, "OPERATOR", consolePassword)
	r.ready(t)
	lines, rc := r.run(t, "MSG * hello")
	if rc != 0 || len(lines) != 0 {
		t.Fatalf("MSG: rc %d lines %q", rc, lines)
	}
	r.evs.waitCount(t, "MSG", 1, func(e *protocol.Event) bool {
		return e.Type == "MSG" && e.User == "OPERATOR" && e.Text == "hello" && e.Source == protocol.SourceZVMConsole
	})
	r.evs.waitCount(t, "any hello", 1, func(e *protocol.Event) bool { return strings.Contains(e.Raw, "hello") })
}

func TestScraperInjected(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out console timing for 5 s: not in -short")
	}
	sim, addr := startConsoleSim(t)
	r := startScraper(t, addr, "OPERATOR", consolePassword)
	r.ready(t)

	// Repeated identical lines: each is an event.
	for range 3 {
		if err := sim.Inject("SAME LINE"); err != nil {
			t.Fatal(err)
		}
	}
	if err := sim.Inject("SAME LINE\nSAME LINE"); err != nil {
		t.Fatal(err)
	}
	r.evs.waitCount(t, "SAME LINE", 5, textIs("SAME LINE"))

	// Many lines at once: several MORE... screens, complete and in order.
	if err := sim.InjectMany(70, "INJECTED %03d"); err != nil {
		t.Fatal(err)
	}
	r.evs.waitCount(t, "INJECTED", 70, func(e *protocol.Event) bool { return strings.HasPrefix(e.Text, "INJECTED ") })
	i := 0
	for _, e := range r.evs.all() {
		if strings.HasPrefix(e.Text, "INJECTED ") {
			i++
			if want := fmt.Sprintf("INJECTED %03d", i); e.Text != want {
				t.Fatalf("event %q, want %q", e.Text, want)
			}
		}
	}

	// CP messages, messages from users, guest logon and logoff.
	if err := sim.Inject("HCPABC123W a CP warning"); err != nil {
		t.Fatal(err)
	}
	r.evs.waitCount(t, "HCP", 1, func(e *protocol.Event) bool {
		return e.Type == "CP" && e.MsgID == "HCPABC123W" && e.Severity == protocol.SevWarning
	})
	if err := sim.Warning("MAINT", "OPERATOR", "shutting down"); err != nil {
		t.Fatal(err)
	}
	r.evs.waitCount(t, "WNG", 1, func(e *protocol.Event) bool {
		return e.Type == "WNG" && e.User == "MAINT" && e.Text == "shutting down"
	})
	if _, rc := r.run(t, "XAUTOLOG LINUX01"); rc != 0 {
		t.Fatalf("XAUTOLOG rc %d", rc)
	}
	r.evs.waitCount(t, "LOGON", 1, func(e *protocol.Event) bool {
		return e.Source == protocol.SourceZVMEvent && e.Type == "LOGON" && e.User == "LINUX01"
	})
	if _, rc := r.run(t, "FORCE LINUX01"); rc != 0 {
		t.Fatalf("FORCE rc %d", rc)
	}
	r.evs.waitCount(t, "LOGOFF", 1, func(e *protocol.Event) bool {
		return e.Source == protocol.SourceZVMEvent && e.Type == "LOGOFF" && e.User == "LINUX01"
	})

	// Lines injected while commands run: events, not response.
	for round := range 5 {
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(round) * 2 * time.Millisecond)
			sim.Inject(fmt.Sprintf("DURING %d", round))
			sim.Message("MAINT", "OPERATOR", fmt.Sprintf("msg during %d", round))
		}()
		lines, rc := r.run(t, "LONGOUT 50")
		wg.Wait()
		if rc != 0 || len(lines) != 50 {
			t.Fatalf("LONGOUT 50 with injections: rc %d, %d lines: %q", rc, len(lines), lines)
		}
		for i, l := range lines {
			if want := fmt.Sprintf("LONGOUT LINE %05d OF 00050", i+1); l != want {
				t.Fatalf("line %d = %q, want %q", i, l, want)
			}
		}
		r.evs.waitCount(t, "DURING", 1, textIs(fmt.Sprintf("DURING %d", round)))
		r.evs.waitCount(t, "msg during", 1, func(e *protocol.Event) bool {
			return e.Type == "MSG" && e.Text == fmt.Sprintf("msg during %d", round)
		})
	}
}

func TestScraperReconnects(t *testing.T) {
	t.Parallel() // it mostly waits; its console simulator is its own
	_, addr := startConsoleSim(t)
	r := startScraper(t, addr, "OPERATOR", consolePassword)
	r.ready(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := r.sc.Run(ctx, "DISCONNECT", nil); err == nil {
		t.Fatal("DISCONNECT: the command ended normally")
	}
	r.evs.waitCount(t, "RECONNECTED AT", 1, func(e *protocol.Event) bool { return strings.HasPrefix(e.Text, "RECONNECTED AT") })
	lines, rc := r.run(t, "QUERY TIME")
	if rc != 0 || len(lines) == 0 || !strings.HasPrefix(lines[0], "TIME IS") {
		t.Fatalf("after reconnect: rc %d lines %q", rc, lines)
	}
}

func TestConsoleEvents(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		line               string
		typ, user, msgid   string
		text               string
		extraType, extraID string
	}{
		{line: "13:02:41 * MSG FROM OPERATOR: hi there", typ: "MSG", user: "OPERATOR", text: "hi there"},
		{line: "13:02:41 * WNG FROM MAINT   : going down", typ: "WNG", user: "MAINT", text: "going down"},
		{line: "HCPCMD001E Unknown CP command: XYZ", typ: "CP", msgid: "HCPCMD001E", text: "HCPCMD001E Unknown CP command: XYZ"},
		{line: "AUTO LOGON  ***       LINUX01  USERS = 5", typ: "CP", text: "AUTO LOGON  ***       LINUX01  USERS = 5", extraType: "LOGON", extraID: "LINUX01"},
		{line: "USER DSC   LOGOFF AS  LINUX01  USERS = 4    FORCED BY OPERATOR", typ: "CP", text: "USER DSC   LOGOFF AS  LINUX01  USERS = 4    FORCED BY OPERATOR", extraType: "LOGOFF", extraID: "LINUX01"},
		{line: "GRAF L0005 LOGON  AS  MAINT    USERS = 3", typ: "CP", text: "GRAF L0005 LOGON  AS  MAINT    USERS = 3", extraType: "LOGON", extraID: "MAINT"},
		{line: "plain text", typ: "CP", text: "plain text"},
	} {
		evs := ConsoleEvents("VMSYS1", tc.line, now)
		e := evs[0]
		if e.Source != protocol.SourceZVMConsole || e.Type != tc.typ || e.User != tc.user || e.MsgID != tc.msgid || e.Text != tc.text || e.Origin.System != "VMSYS1" {
			t.Errorf("%q: %+v", tc.line, e)
		}
		if tc.extraType == "" {
			if len(evs) != 1 {
				t.Errorf("%q: %d events", tc.line, len(evs))
			}
			continue
		}
		if len(evs) != 2 || evs[1].Source != protocol.SourceZVMEvent || evs[1].Type != tc.extraType || evs[1].User != tc.extraID {
			t.Errorf("%q: guest event %+v", tc.line, evs[len(evs)-1])
		}
	}
}

func TestScraperWhileRunning(t *testing.T) {
	_, addr := startConsoleSim(t)
	r := startScraper(t, addr, "OPERATOR", consolePassword)
	r.ready(t)
	if lines, rc := r.run(t, "SPIN 2"); rc != 0 || len(lines) != 0 {
		t.Fatalf("SPIN: rc %d lines %q", rc, lines)
	}
	// The virtual machine runs: the command goes to CP with #CP.
	lines, rc := r.run(t, "QUERY TIME")
	if rc != 0 || len(lines) != 2 || !strings.HasPrefix(lines[0], "TIME IS") {
		t.Fatalf("QUERY TIME while RUNNING: rc %d lines %q", rc, lines)
	}
}

func TestScraperConcurrentRuns(t *testing.T) {
	_, addr := startConsoleSim(t)
	r := startScraper(t, addr, "OPERATOR", consolePassword)
	r.ready(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := 10 + 7*i
			var lines []string
			rc, err := r.sc.Run(context.Background(), fmt.Sprintf("LONGOUT %d", n), func(l string) { lines = append(lines, l) })
			if err != nil || rc != 0 || len(lines) != n || lines[n-1] != fmt.Sprintf("LONGOUT LINE %05d OF %05d", n, n) {
				errs <- fmt.Errorf("LONGOUT %d: rc %d err %v, %d lines", n, rc, err, len(lines))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestScraperReconnectsAfterDrop(t *testing.T) {
	t.Parallel() // it mostly waits; its console simulator is its own
	sim, addr := startConsoleSim(t)
	r := startScraper(t, addr, "OPERATOR", consolePassword)
	r.ready(t)
	sim.Close() // the TN3270 session drops
	sim2, err := zvmsim.New(zvmsim.Config{System: "VMSYS1", Password: consolePassword, MoreDelay: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var l net.Listener
	for i := 0; ; i++ {
		if l, err = net.Listen("tcp", addr); err == nil {
			break
		}
		if i > 100 {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	go sim2.Serve(l)
	t.Cleanup(func() { sim2.Close() })
	r.evs.waitCount(t, "LOGON AT", 2, func(e *protocol.Event) bool { return strings.HasPrefix(e.Text, "LOGON AT ") })
	lines, rc := r.run(t, "QUERY TIME")
	if rc != 0 || len(lines) == 0 || !strings.HasPrefix(lines[0], "TIME IS") {
		t.Fatalf("after reconnect: rc %d lines %q", rc, lines)
	}
	if err := sim2.Inject("AFTER DROP"); err != nil {
		t.Fatal(err)
	}
	r.evs.waitCount(t, "AFTER DROP", 1, textIs("AFTER DROP"))
}

// TestCancelledCommandIsNotEvents: a caller that gives up on a command
// does not turn the rest of its response into console events.
func TestCancelledCommandIsNotEvents(t *testing.T) {
	_, addr := startConsoleSim(t)
	r := startScraper(t, addr, "OPERATOR", consolePassword)
	r.ready(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Millisecond)
	defer cancel()
	if _, err := r.sc.Run(ctx, "LONGOUT 5000", nil); err == nil { // ~230 screens: far longer than 2 ms
		t.Fatal("Run with a 2 ms deadline returned no error")
	}
	// The next command runs once the abandoned one's response is taken.
	lines, rc := r.run(t, "QUERY TIME")
	if rc != 0 || len(lines) == 0 || !strings.HasPrefix(lines[0], "TIME IS") {
		t.Fatalf("QUERY TIME after the abandoned command: rc %d %q", rc, lines)
	}
	if n := r.evs.count(func(e *protocol.Event) bool {
		return strings.Contains(e.Text, "LONGOUT") || leaked(e)
	}); n > 0 {
		t.Fatalf("%d events from the abandoned command's response", n)
	}
}

func TestLineEndRefused(t *testing.T) {
	_, addr := startConsoleSim(t)
	r := startScraper(t, addr, "OPERATOR", consolePassword)
	r.ready(t)
	_, err := r.sc.Run(context.Background(), "QUERY TIME#FORCE LINUX01", nil)
	if ce, ok := err.(*commands.Error); !ok || ce.Code != commands.CodeBadRequest {
		t.Fatalf("a command with the line-end character: %v, want bad-request", err)
	}
}
