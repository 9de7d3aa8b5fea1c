package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/gateway/store/memstore"
	"github.com/zbridge/zbridge/gateway/unsolmsg"
	"github.com/zbridge/zbridge/protocol"
	"github.com/zbridge/zbridge/protocol/client"
)

// TestTailFailoverBeforeFirstEvent: a plain tail (new events only) whose
// region goes away before any event was printed resumes on the next region
// after where its first stream started, not at that region's newest event:
// an event stored while it was failing over is printed.
func TestTailFailoverBeforeFirstEvent(t *testing.T) {
	st := memstore.New(memstore.Config{})
	defer st.Close()
	log := logrus.New()
	log.SetOutput(io.Discard)
	subscribed := &msgHook{msg: "subscribed", seen: make(chan struct{})}
	log.AddHook(subscribed)
	newSrv := func() *unsolmsg.Server {
		srv, err := unsolmsg.New(unsolmsg.Config{Store: st, Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		return srv
	}
	a, b := newSrv(), newSrv()
	lnA, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// B's listener is open but not yet served: the tail's logon there
	// waits until the test serves it.
	lnB, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	doneA, doneB := make(chan error, 1), make(chan error, 1)
	go func() { doneA <- a.Serve(lnA) }()
	defer func() { a.Close(); <-doneA }()

	var out bytes.Buffer
	var stderr bytes.Buffer
	tl := &tailer{cfgs: []client.Config{{Addr: lnA.Addr().String(), Client: "t"}, {Addr: lnB.Addr().String(), Client: "t"}},
		sub: client.Subscription{Format: "json"}, format: "json", count: 1, out: bufio.NewWriter(&out), stderr: &stderr}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	runDone := make(chan error, 1)
	go func() { runDone <- tl.run(ctx) }()

	// Wait until the tail is subscribed on A, then take A away.
	select {
	case <-subscribed.seen:
	case <-time.After(30 * time.Second):
		t.Fatal("the tail did not subscribe on A")
	}
	time.Sleep(100 * time.Millisecond) // the subscribe's reply has been read
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	a.Shutdown(sctx)
	scancel()

	// An event arrives while the tail fails over, then B starts serving.
	ev := &protocol.Event{Source: protocol.SourceRegion, Severity: protocol.SevInfo, Text: "while failing over", Parsed: true}
	if err := st.Append(context.Background(), []*protocol.Event{ev}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	go func() { doneB <- b.Serve(lnB) }()
	defer func() { b.Close(); <-doneB }()

	select {
	case err := <-runDone:
		if err != nil {
			t.Fatalf("tail: %v (stderr %q)", err, stderr.String())
		}
	case <-time.After(5 * time.Second):
		cancel()
		err := <-runDone
		t.Fatalf("the event stored during the failover was not printed (tail: %v; stderr %q)", err, stderr.String())
	}
	tl.out.Flush()
	if !strings.Contains(out.String(), "while failing over") {
		t.Fatalf("printed %q", out.String())
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatal("timed out")
	}
}

// TestTailReplacedStops: a `tail --subscription S` whose subscription a
// newer session takes over stops with the region's bye replaced, rather
// than failing over and taking it back (two tails would take it from each
// other in turn).
func TestTailReplacedStops(t *testing.T) {
	st := memstore.New(memstore.Config{})
	defer st.Close()
	log := logrus.New()
	log.SetOutput(io.Discard)
	srv, err := unsolmsg.New(unsolmsg.Config{Store: st, Logger: log, TakeoverCheck: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	defer func() { srv.Close(); <-done }()

	var out, stderr bytes.Buffer
	cfg := client.Config{Addr: ln.Addr().String(), Client: "t"}
	tl := &tailer{cfgs: []client.Config{cfg}, sub: client.Subscription{Format: "json", Name: "S"}, format: "json",
		out: bufio.NewWriter(&out), stderr: &stderr}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	runDone := make(chan error, 1)
	go func() { runDone <- tl.run(ctx) }()
	// Subscribed: its claim on S is recorded.
	for deadline := time.Now().Add(30 * time.Second); ; {
		if _, ok, _ := st.Position(ctx, "unsolmsg-claim:t:S"); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the tail did not subscribe")
		}
		time.Sleep(10 * time.Millisecond)
	}

	other, err := client.Dial(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.SubscribeWith(ctx, client.Subscription{Name: "S"}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-runDone:
		var bye *client.ByeError
		if !errors.As(err, &bye) || bye.Reason != protocol.ByeReplaced {
			t.Fatalf("tail ended with %v, want bye %s", err, protocol.ByeReplaced)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the replaced tail did not stop; stderr: %s", stderr.String())
	}
	// The newer session keeps the subscription.
	time.Sleep(200 * time.Millisecond)
	if ss := srv.Sessions(); len(ss) != 1 {
		t.Fatalf("%d sessions after the tail stopped, want the newer one only", len(ss))
	}
}

// msgHook is a logrus hook that closes seen when msg is first logged.
type msgHook struct {
	msg  string
	once sync.Once
	seen chan struct{}
}

func (h *msgHook) Levels() []logrus.Level { return logrus.AllLevels }

func (h *msgHook) Fire(e *logrus.Entry) error {
	if e.Message == h.msg {
		h.once.Do(func() { close(h.seen) })
	}
	return nil
}

// hostileEvent is a syslog event whose every field a sender chose.
func hostileEvent(host, app, procid, msgid, text string) *protocol.Event {
	return &protocol.Event{Time: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), Source: protocol.SourceSyslog,
		Origin: protocol.Origin{Host: host, System: host}, App: app, ProcID: procid, MsgID: msgid, Text: text,
		Facility: protocol.Facility(4), Severity: protocol.SevCrit, Parsed: true}
}

// checkOneSafeLine fails unless line is valid UTF-8 with no control
// character (C0, DEL, C1), line or paragraph separator or bidi control.
func checkOneSafeLine(t *testing.T, line string) {
	t.Helper()
	if !utf8.ValidString(line) {
		t.Fatalf("invalid UTF-8 in %q", line)
	}
	for i, r := range line {
		if r < ' ' || r >= 0x7f && r <= 0x9f || r == '\u2028' || r == '\u2029' ||
			r >= '\u202a' && r <= '\u202e' || r >= '\u2066' && r <= '\u2069' {
			t.Fatalf("%U at %d in %q", r, i, line)
		}
	}
}

// TestTailTextEscapes: what a syslog sender puts in an event's fields is
// escaped in the text layout: no terminal escape, no line end, no invalid
// UTF-8 reaches the terminal, and each event is one line.
func TestTailTextEscapes(t *testing.T) {
	const at = "2026-03-01T12:00:00Z "
	tests := []struct {
		name string
		e    *protocol.Event
		want string
	}{
		{"plain", hostileEvent("lnx01", "sshd", "42", "", "session opened"),
			at + `lnx01 auth.crit sshd[42]: session opened`},
		{"title", hostileEvent("lnx01", "app", "", "", "\x1b]0;pwned\x07"),
			at + `lnx01 auth.crit app: \x1b]0;pwned\x07`},
		{"clear screen", hostileEvent("lnx01", "app", "", "", "\x1b[2J\x1b[H"),
			at + `lnx01 auth.crit app: \x1b[2J\x1b[H`},
		{"forged line", hostileEvent("lnx01", "app", "", "", "a\nLXLOG001I fake\r\n2026-03-01T12:00:01Z lnx02 auth.crit su: root"),
			at + `lnx01 auth.crit app: a\nLXLOG001I fake\r\n2026-03-01T12:00:01Z lnx02 auth.crit su: root`},
		{"separators", hostileEvent("lnx01", "app", "", "", "a\u2028b\u2029c"),
			at + `lnx01 auth.crit app: a\u2028b\u2029c`},
		{"C1", hostileEvent("lnx01", "app", "", "", "nel\x85 NEL\u0085 CSI\u009b2J"),
			at + `lnx01 auth.crit app: nel\x85 NEL\u0085 CSI\u009b2J`},
		{"invalid UTF-8", hostileEvent("lnx01", "app", "", "", "bad \xff\xfe \xc3"),
			at + `lnx01 auth.crit app: bad \xff\xfe \xc3`},
		{"backslash", hostileEvent("lnx01", "app", "", "", `C:\x1b`),
			at + `lnx01 auth.crit app: C:\\x1b`},
		{"tab and DEL", hostileEvent("lnx01", "app", "", "", "a\tb\x7f"),
			at + `lnx01 auth.crit app: a\tb\x7f`},
		{"every field", hostileEvent("h\x1b[31m", "a\npp", "1\u2028", "ID\x07", "t"),
			at + `h\x1b[31m auth.crit a\npp[1\u2028]: ID\x07 t`},
		{"unparsed", func() *protocol.Event {
			e := hostileEvent("", "", "", "", "\x00\x1b[2J")
			e.Parsed, e.ParseError, e.Origin.Host = false, "stopped at \x1b [col 3]", ""
			return e
		}(), at + ` auth.crit \x00\x1b[2J [unparsed: stopped at \x1b [col 3]]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(appendText(nil, tt.e))
			if got != tt.want {
				t.Errorf("appendText =\n%q\nwant\n%q", got, tt.want)
			}
			checkOneSafeLine(t, got)
		})
	}
}

// TestTailLineEscapes: a line in the lx layout from the region is written
// as it came when it is safe, and escaped whole when it is not (a region
// that does not escape).
func TestTailLineEscapes(t *testing.T) {
	tests := []struct{ in, want string }{
		{`LXLOG001I lnx01 - auth crit a\nLXLOG001I fake C:\\dir`, `LXLOG001I lnx01 - auth crit a\nLXLOG001I fake C:\\dir`},
		{"LXLOG001I lnx01 - auth crit a\nLXLOG001I fake", `LXLOG001I lnx01 - auth crit a\nLXLOG001I fake`},
		{"LXLOG001I lnx01 - auth crit \x1b]0;pwned\x07 \u2028 \x85 \\", `LXLOG001I lnx01 - auth crit \x1b]0;pwned\x07 \u2028 \x85 \\`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got := string(appendLine(nil, tt.in))
			if got != tt.want {
				t.Errorf("appendLine(%q) = %q, want %q", tt.in, got, tt.want)
			}
			checkOneSafeLine(t, got)
		})
	}
}

// TestTailJSONEscapes: `tail --format json` writes no raw control
// character (C0, C1), separator or invalid UTF-8 either; the JSON decodes
// to the same text (invalid UTF-8 as U+FFFD, as encoding/json has it).
func TestTailJSONEscapes(t *testing.T) {
	for _, text := range []string{"\x1b]0;pwned\x07", "\x1b[2J", "a\nLXLOG001I fake", "\u2028\u2029", "\u0085\u009b", "bad \xff", "\x7f"} {
		t.Run(text, func(t *testing.T) {
			e := hostileEvent("h\u0085", "a\x1b", "", "", text)
			line := string(protocol.AppendEventJSON(nil, e))
			for i, r := range line {
				if r < ' ' || r >= 0x80 && r <= 0x9f || r == '\u2028' || r == '\u2029' || r == utf8.RuneError {
					t.Fatalf("%U at %d in %s", r, i, line)
				}
			}
			var back protocol.Event
			if err := json.Unmarshal([]byte(line), &back); err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			if want := strings.ToValidUTF8(text, "\ufffd"); back.Text != want || back.Origin.Host != "h\u0085" || back.App != "a\x1b" {
				t.Errorf("decoded text %q host %q app %q, want %q h\\u0085 a\\x1b", back.Text, back.Origin.Host, back.App, want)
			}
		})
	}
}

// FuzzTailText checks that every event makes one line in the text layout
// with no control character or line end.
func FuzzTailText(f *testing.F) {
	f.Add("lnx01", "sshd", "42", "ID47", "session opened", "", true)
	f.Add("h\x1b[31m", "a\npp", "1\u2028", "ID\x07", "\x1b]0;pwned\x07\x1b[2J", "", true)
	f.Add("", "", "", "", "a\nLXLOG001I fake\r\n\u2028\u2029\x85\u0085\xff", "stopped at \x1b", false)
	f.Fuzz(func(t *testing.T, host, app, procid, msgid, text, parseError string, parsed bool) {
		e := hostileEvent(host, app, procid, msgid, text)
		e.Parsed, e.ParseError = parsed, parseError
		checkOneSafeLine(t, string(appendText(nil, e)))
		checkOneSafeLine(t, string(appendLine(nil, text)))
	})
}

// TestTailHostileSyslog sends a region syslog messages holding terminal
// escapes, line ends, separators and invalid UTF-8, and reads them back
// with `zbridge tail` in each layout: one safe line per event.
func TestTailHostileSyslog(t *testing.T) {
	e2e(t)
	r := startRegion(t)
	texts := []string{"\x1b]0;pwned\x07", "\x1b[2J", "a\nLXLOG001I fake", "x\u2028y", "nel\x85 \u0085", "bad \xff\xfe"}
	var data strings.Builder
	for _, s := range texts {
		data.WriteString(octet(msg5424("lnxhostile", s)))
	}
	data.WriteString(octet("\x1b[2J\x00 no PRI"))
	sendSyslog(t, r.syslog, data.String())
	n := len(texts) + 1
	for _, format := range []string{"text", "lx", "json"} {
		t.Run(format, func(t *testing.T) {
			tp := startTail(t, "--unsolmsg", r.unsolmsg, "--after", "0", "--format", format,
				"--count", fmt.Sprint(n), "--timeout", "60s")
			if code := tp.wait(t, 90*time.Second); code != 0 {
				t.Fatalf("tail exited %d: %s", code, tp.stderr.String())
			}
			out := tp.stdout.String()
			lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			if len(lines) != n {
				t.Fatalf("%d lines for %d events:\n%s", len(lines), n, out)
			}
			for _, l := range lines {
				if format == "json" {
					l = strings.ReplaceAll(l, "\x7f", "") // JSON has DEL as it is, as encoding/json
				}
				checkOneSafeLine(t, l)
			}
			if want := `a\nLXLOG001I fake`; !strings.Contains(out, want) {
				t.Errorf("no %s in\n%s", want, out)
			}
		})
	}
}
