package vmagent

import (
	"context"
	"errors"
	"io"
	"net"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zbridge/zbridge/protocol"
)

// leaked reports an event made of a command's echo, response or marker.
func leaked(e *protocol.Event) bool {
	return strings.HasPrefix(e.Text, "TIME IS") || strings.HasPrefix(e.Text, "CONNECT=") ||
		strings.Contains(e.Raw, "#CP ZB") || strings.Contains(e.Raw, "Unknown CP command: ZB")
}

// TestEchoNotDerailed: lines that start like the command the agent types
// ("QUERY", "QUERY TIME") keep arriving on the console, some of them
// between the agent's ENTER and CP's echo, as lines of their own and as
// the continuation of a user's message. The echo must still be found:
// every command completes with its response, and none of it (echo,
// response, marker) becomes an event.
func TestEchoNotDerailed(t *testing.T) {
	sim, addr := startConsoleSim(t)
	agent := startScraper(t, addr, "OPERATOR", consolePassword)
	agent.ready(t)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(300 * time.Microsecond):
			}
			switch i % 3 {
			case 0:
				sim.Inject("QUERY")
			case 1:
				sim.Inject("QUERY TIME")
			default:
				sim.Message("LINUX01", "OPERATOR", strings.Repeat("x", 49)+" QUERY")
			}
		}
	}()
	for i := range 20 {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		var lines []string
		rc, err := agent.sc.Run(ctx, "QUERY TIME", func(l string) { lines = append(lines, l) })
		cancel()
		if err != nil || rc != 0 || len(lines) != 2 || !strings.HasPrefix(lines[0], "TIME IS") {
			close(stop)
			<-done
			t.Fatalf("run %d: rc %d err %v lines %q", i, rc, err, lines)
		}
	}
	close(stop)
	<-done
	for _, e := range agent.evs.all() {
		if leaked(e) {
			t.Errorf("an event from a command: %+v", e)
		}
	}
	if n := agent.evs.count(textIs("QUERY")); n == 0 {
		t.Error("no QUERY line became an event")
	}
}

// TestNoEchoEndsSession: when CP's echo does not come in time (here a
// proxy drops everything the host writes after the agent's ENTER), the
// command fails with ErrResponseLost, nothing after its ENTER becomes an
// event, and the console is logged on again.
func TestNoEchoEndsSession(t *testing.T) {
	_, simAddr := startConsoleSim(t)
	p := startMuteProxy(t, simAddr)
	evs := &eventLog{}
	sc, err := NewScraper(ScraperConfig{Addr: p.addr, User: "OPERATOR", Password: consolePassword, System: "VMSYS1",
		Publish: evs.add, Logger: quiet(), ReconnectMin: 50 * time.Millisecond, ReconnectMax: 200 * time.Millisecond,
		LogonTimeout: 5 * time.Second, EchoTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- sc.Serve(ctx) }()
	defer func() { cancel(); <-errc }()
	rctx, rcancel := context.WithTimeout(ctx, 20*time.Second)
	defer rcancel()
	if err := sc.Ready(rctx); err != nil {
		t.Fatal(err)
	}
	p.mute.Store(true) // the first connection hears nothing more from the host
	if _, err := sc.Run(rctx, "QUERY TIME", nil); !errors.Is(err, ErrResponseLost) {
		t.Fatalf("Run = %v, want ErrResponseLost", err)
	}
	evs.waitCount(t, "RECONNECTED AT", 1, func(e *protocol.Event) bool { return strings.HasPrefix(e.Text, "RECONNECTED AT") })
	var lines []string
	if rc, err := sc.Run(rctx, "QUERY TIME", func(l string) { lines = append(lines, l) }); err != nil || rc != 0 || len(lines) != 2 {
		t.Fatalf("QUERY TIME after the reconnection: rc %d err %v lines %q", rc, err, lines)
	}
	for _, e := range evs.all() {
		if leaked(e) || strings.Contains(e.Raw, "QUERY TIME") {
			t.Errorf("an event from a command: %+v", e)
		}
	}
}

// muteProxy passes TN3270 connections through to a host; once mute is
// set, it drops what the host sends on the first connection (between
// records: set it while the host is quiet).
type muteProxy struct {
	addr string
	mute atomic.Bool
}

func startMuteProxy(t *testing.T, host string) *muteProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &muteProxy{addr: ln.Addr().String()}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	track := func(c net.Conn) {
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
	}
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", host)
			if err != nil {
				c.Close()
				return
			}
			track(c)
			track(s)
			first := i == 0
			wg.Add(2)
			go func() { defer wg.Done(); io.Copy(s, c); s.Close() }()
			go func() {
				defer wg.Done()
				defer c.Close()
				buf := make([]byte, 32<<10)
				for {
					n, err := s.Read(buf)
					if n > 0 && !(first && p.mute.Load()) {
						if _, err := c.Write(buf[:n]); err != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return p
}

func TestEchoMatch(t *testing.T) {
	typed := "QUERY TIME#CP ZBABCDEFGHIJ"
	// A typed line of 101 characters, split as CP splits it: at the last
	// blank that fits (column 76), which is dropped.
	long := "MSG LINUX01 " + strings.Repeat("word ", 14) + "end#CP ZBABCDEFGHIJ"
	cut := strings.LastIndexByte(long[:80], ' ')
	early := strings.LastIndexByte(long[:cut], ' ') // a blank the next word would fit after
	hard := "XAUTOLOG " + strings.Repeat("A", 80) + "#CP ZBABCDEFGHIJ"
	r := func(text string) outRow { return row(text, 0) }
	for _, tc := range []struct {
		name  string
		typed string
		rows  []outRow
		want  echoState
	}{
		{"one row", typed, []outRow{r(typed)}, echoWhole},
		{"a prefix is not its start", typed, []outRow{r("QUERY")}, echoNot},
		{"a prefix with more is not its start", typed, []outRow{r("QUERY TIME")}, echoNot},
		{"another line", typed, []outRow{r("QUERY TIME#CP ZBABCDEFGHIK")}, echoNot},
		{"broken at a blank: start", long, []outRow{r(long[:cut])}, echoStart},
		{"broken at a blank: whole", long, []outRow{r(long[:cut]), r(long[cut+1:])}, echoWhole},
		{"broken where the next word fits", long, []outRow{r(long[:early]), r(long[early+1:])}, echoNot},
		{"blanks written before the break", "MSG A " + strings.Repeat("b", 60) + "   " + strings.Repeat("c", 10) + "#CP ZBABCDEFGHIJ",
			[]outRow{row("MSG A "+strings.Repeat("b", 60), 68), r(strings.Repeat("c", 10) + "#CP ZBABCDEFGHIJ")}, echoWhole},
		{"broken at the width", hard, []outRow{r(hard[:79]), r(hard[79:])}, echoWhole},
		{"broken at the width, the blank after it dropped", "Q " + strings.Repeat("a", 77) + " B#CP ZBABCDEFGHIJ",
			[]outRow{r("Q " + strings.Repeat("a", 77)), r("B#CP ZBABCDEFGHIJ")}, echoWhole},
		{"broken at the width, the blank kept", "Q " + strings.Repeat("a", 77) + " B#CP ZBABCDEFGHIJ",
			[]outRow{r("Q " + strings.Repeat("a", 77)), r(" B#CP ZBABCDEFGHIJ")}, echoWhole},
		{"short of the width", hard, []outRow{r(hard[:70]), r(hard[70:])}, echoNot},
		{"whole, then more", typed, []outRow{r(typed), r("X")}, echoNot},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := echoMatch(tc.rows, tc.typed); got != tc.want {
				t.Errorf("echoMatch = %d, want %d", got, tc.want)
			}
		})
	}
}

// TestCollectorHoldsLinesBeforeEcho: lines between the ENTER and the echo
// become events once the echo is seen, and not before; a false start of
// the echo (a row that could begin it) is such a line too. If the echo
// never comes, nothing that came is published.
func TestCollectorHoldsLinesBeforeEcho(t *testing.T) {
	token := "ZBABCDEFGHIJ"
	long := "MSG LINUX01 " + strings.Repeat("word ", 14) + "end#CP " + token
	cut := strings.LastIndexByte(long[:80], ' ')
	first, second := long[:cut], long[cut+1:] // the echo's rows
	newSession := func() (*consoleSession, *eventLog) {
		evs := &eventLog{}
		st := &consoleSession{s: &Scraper{cfg: ScraperConfig{Publish: evs.add}, log: quiet()}, system: "VMSYS1"}
		st.events.emit = st.event
		st.remember(token)
		return st, evs
	}
	texts := func(evs *eventLog) []string {
		var ts []string
		for _, e := range evs.all() {
			ts = append(ts, e.Text)
		}
		return ts
	}

	st, evs := newSession()
	c := newCollector(st, long, token)
	// A row that could start the echo, then the echo.
	for _, r := range rows("BEFORE", first, first, second, "TIME IS 13:02:41", "HCPCMD001E Unknown CP command: "+token, "AFTER") {
		c.row(r)
		if c.phase == 0 && len(evs.all()) > 0 {
			t.Fatalf("events before the echo: %q", texts(evs))
		}
	}
	c.flush()
	if want := []string{"BEFORE", first, "AFTER"}; !slices.Equal(texts(evs), want) {
		t.Errorf("events %q, want %q", texts(evs), want)
	}
	if want := []string{"TIME IS 13:02:41"}; !slices.Equal(c.lines, want) {
		t.Errorf("response %q, want %q", c.lines, want)
	}

	// No echo: the rows that came are dropped.
	st, evs = newSession()
	c = newCollector(st, long, token)
	for _, r := range rows("BEFORE", first, "TIME IS 13:02:41", "HCPCMD001E Unknown CP command: "+token) {
		c.row(r)
	}
	c.flush()
	if n := c.drop(); n == 0 {
		t.Error("nothing to drop")
	}
	if len(evs.all()) != 0 || len(c.lines) != 0 {
		t.Errorf("events %q, response %q, want none", texts(evs), c.lines)
	}
	// A row holding the marker is never an event.
	st.eventRow(row("HCPCMD001E Unknown CP command: "+token, 0))
	st.eventRow(row("SOMETHING "+token[:8], 0))
	st.events.flush()
	if len(evs.all()) != 0 {
		t.Errorf("events %q from the marker", texts(evs))
	}
}

func TestNewMarker(t *testing.T) {
	re := regexp.MustCompile(`^ZB[A-Z2-7]{10}$`)
	seen := map[string]bool{}
	for range 100 {
		m := newMarker()
		if !re.MatchString(m) || seen[m] {
			t.Fatalf("marker %q (seen before: %v)", m, seen[m])
		}
		seen[m] = true
	}
}
