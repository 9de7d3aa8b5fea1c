package commandsrv_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/commands"
	"github.com/zbridge/zbridge/gateway/commandsrv"
	"github.com/zbridge/zbridge/gateway/session"
	"github.com/zbridge/zbridge/internal/leakcheck"
	"github.com/zbridge/zbridge/linuxagent"
	"github.com/zbridge/zbridge/protocol"
	"github.com/zbridge/zbridge/protocol/client"
)

// waitTimeout bounds every wait for something the server should do soon. It
// is generous so that a loaded machine running -race does not fail tests;
// the timeouts under test are configured short instead.
const waitTimeout = 20 * time.Second

// commandTimeout is the router's default timeout in tests, and how long
// runCommand waits: long, as a command with much output is slow under
// -race on a loaded machine.
const commandTimeout = 50 * time.Second

// maxLine is where shExec cuts long lines.
const maxLine = 4096

func discardLogger() logrus.FieldLogger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}

// testServer is a COMMANDS server on loopback whose router runs linux
// targets with sh (shExec) and zvm targets with a blockExec; it has no
// region executor.
type testServer struct {
	srv    *commandsrv.Server
	router *commands.Router
	block  *blockExec
	addr   string
	served chan error

	once     sync.Once
	serveErr error
}

// startServer starts a server with cfg; Router and Logger are filled in
// when unset. Cleanup closes it and checks what Serve returned.
func startServer(t *testing.T, cfg commandsrv.Config) *testServer {
	t.Helper()
	ts := &testServer{block: newBlockExec(), served: make(chan error, 1)}
	if cfg.Router == nil {
		cfg.Router = commands.NewRouter(commands.Config{
			Executors: map[commands.Kind]commands.Executor{
				commands.KindLinux: shExec{maxLine: maxLine},
				commands.KindZVM:   ts.block,
			},
			DefaultTimeout: commandTimeout, MaxTimeout: time.Minute, IDPrefix: "R1"})
	}
	if cfg.Logger == nil {
		cfg.Logger = discardLogger()
	}
	ts.router = cfg.Router
	srv, err := commandsrv.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ts.srv = srv
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.addr = ln.Addr().String()
	go func() { ts.served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ts.block.releaseAll()
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := ts.serveResult(); !errors.Is(err, commandsrv.ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return ts
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

// dial logs on with the client package.
func (ts *testServer) dial(t *testing.T) *client.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	c, err := client.Dial(ctx, client.Config{Addr: ts.addr, Client: "tester"})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// rawConn is a client connection that reads and writes frames itself, so
// tests see exactly what is on the wire.
type rawConn struct {
	t   *testing.T
	nc  net.Conn
	r   *protocol.Reader
	req uint64
}

// logon connects and logs on.
func (ts *testServer) logon(t *testing.T) *rawConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", ts.addr, waitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	c := &rawConn{t: t, nc: nc, r: protocol.NewReader(nc, 16<<20)}
	req := c.send(&protocol.Frame{Type: protocol.TypeLogon, Client: "tester", Version: protocol.Version})
	if f, _ := c.next(); f.Type != protocol.TypeAccept || f.Req != req {
		t.Fatalf("logon: got %+v, want accept req %d", f, req)
	}
	return c
}

// in makes c fail t (a subtest) instead of the test that opened it, until
// the function returned is called.
func (c *rawConn) in(t *testing.T) (restore func()) {
	old := c.t
	c.t = t
	return func() { c.t = old }
}

// send writes f, numbering it when it is a request without a number.
func (c *rawConn) send(f *protocol.Frame) uint64 {
	c.t.Helper()
	if f.Req == 0 && f.Type != protocol.TypeReply {
		c.req++
		f.Req = c.req
	}
	b, err := protocol.AppendFrame(nil, f)
	if err != nil {
		c.t.Fatal(err)
	}
	c.nc.SetWriteDeadline(time.Now().Add(waitTimeout))
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
	return f.Req
}

// command sends a command request.
func (c *rawConn) command(id, target, command string) uint64 {
	c.t.Helper()
	return c.send(&protocol.Frame{Type: protocol.TypeCommand, ID: id, Target: target, Command: command})
}

// next reads the next frame that is not a server heartbeat (answering
// those), and returns it with its line as it was on the wire.
func (c *rawConn) next() (protocol.Frame, string) {
	c.t.Helper()
	for {
		c.nc.SetReadDeadline(time.Now().Add(waitTimeout))
		line, err := c.r.ReadLine()
		if err != nil {
			c.t.Fatalf("reading a frame: %v", err)
		}
		var f protocol.Frame
		if err := protocol.Decode(line, &f); err != nil {
			c.t.Fatalf("frame %q: %v", line, err)
		}
		if f.Type == protocol.TypeHeartbeat {
			c.send(protocol.Reply(f.Req, nil))
			continue
		}
		return f, string(line)
	}
}

// expectClosed checks that the server closed the connection.
func (c *rawConn) expectClosed() {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(waitTimeout))
	var f protocol.Frame
	err := c.r.Next(&f)
	switch {
	case err == nil:
		c.t.Fatalf("got %+v, want the connection closed", f)
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
	default:
		c.t.Fatalf("read error %v, want the connection closed", err)
	}
}

// reply reads frames up to the reply to req, failing on any other frame.
func (c *rawConn) reply(req uint64) (protocol.Frame, string) {
	c.t.Helper()
	f, line := c.next()
	if f.Type != protocol.TypeReply || f.Req != req {
		c.t.Fatalf("got %s, want the reply to request %d", line, req)
	}
	return f, line
}

// wantErrorReply checks that f is a reply carrying an error with code.
func wantErrorReply(t *testing.T, f protocol.Frame, line, code string) {
	t.Helper()
	if f.Type != protocol.TypeReply || f.Error == nil || f.Error.Code != code {
		t.Fatalf("got %s, want a reply with error %s", line, code)
	}
	if f.Error.Message == "" {
		t.Errorf("error %s without a message: %s", code, line)
	}
	if f.RC != nil {
		t.Errorf("error reply with an rc: %s", line)
	}
}

// run is a command's output and reply as the client package gives them.
type run struct {
	stdout, stderr []*protocol.Frame
	reply          *protocol.Frame
	err            error
}

// text joins a stream's output, a newline after each piece with EOL.
func text(frames []*protocol.Frame) string {
	var b strings.Builder
	for _, f := range frames {
		b.WriteString(f.Text)
		b.Write(f.Data)
		if f.EOL {
			b.WriteByte('\n')
		}
	}
	return b.String()
}

func runCommand(t *testing.T, c *client.Conn, r client.CommandRequest) run {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	var res run
	res.reply, res.err = c.Command(ctx, r, func(f *protocol.Frame) {
		switch f.Stream {
		case "stdout":
			res.stdout = append(res.stdout, f)
		case "stderr":
			res.stderr = append(res.stderr, f)
		default:
			t.Errorf("output frame with stream %q", f.Stream)
		}
	})
	return res
}

func TestCommand(t *testing.T) {
	t.Parallel() // its commands run shells; its server is its own
	ts := startServer(t, commandsrv.Config{})
	c := ts.dial(t)
	tests := []struct {
		name           string
		command        string
		stdout, stderr string
		rc             int
	}{
		{name: "lines", command: `echo one; echo two; echo oops >&2; echo three`, stdout: "one\ntwo\nthree\n", stderr: "oops\n"},
		{name: "rc 3", command: `echo bad >&2; exit 3`, stderr: "bad\n", rc: 3},
		{name: "no output", command: `true`},
		{name: "empty lines", command: `printf '\n\nx\n\n'`, stdout: "\n\nx\n\n"},
		{name: "no final newline", command: `printf 'a\nb'`, stdout: "a\nb"},
		{name: "non-ASCII", command: `printf 'grüße 日本\n'`, stdout: "grüße 日本\n"},
		{name: "quotes and JSON", command: `printf '%s\n' '{"a":"b\\c"}' "it's"`, stdout: "{\"a\":\"b\\\\c\"}\nit's\n"},
		{name: "killed by a signal", command: `kill -TERM $$`, rc: 128 + int(syscall.SIGTERM)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCommand(t, c, client.CommandRequest{Target: "linux:local", Command: tt.command})
			if r.err != nil {
				t.Fatalf("Command: %v", r.err)
			}
			if r.reply.RC == nil || *r.reply.RC != tt.rc {
				t.Errorf("rc %v, want %d", r.reply.RC, tt.rc)
			}
			if got := text(r.stdout); got != tt.stdout {
				t.Errorf("stdout %q, want %q", got, tt.stdout)
			}
			if got := text(r.stderr); got != tt.stderr {
				t.Errorf("stderr %q, want %q", got, tt.stderr)
			}
			if !strings.HasPrefix(r.reply.ID, "R1-") {
				t.Errorf("reply ID %q, want one the region assigned", r.reply.ID)
			}
			for _, f := range append(r.stdout, r.stderr...) {
				if f.ID != r.reply.ID {
					t.Errorf("output ID %q, reply ID %q", f.ID, r.reply.ID)
				}
			}
		})
	}
	t.Run("duration", func(t *testing.T) {
		r := runCommand(t, c, client.CommandRequest{ID: "slow", Target: "linux:local", Command: "sleep 0.3"})
		if r.err != nil {
			t.Fatal(r.err)
		}
		if r.reply.ID != "slow" {
			t.Errorf("reply ID %q, want slow", r.reply.ID)
		}
		if r.reply.DurationMS < 300 || r.reply.DurationMS > waitTimeout.Milliseconds() {
			t.Errorf("duration_ms %d for sleep 0.3", r.reply.DurationMS)
		}
	})
	t.Run("signal name", func(t *testing.T) {
		r := runCommand(t, c, client.CommandRequest{Target: "linux:local", Command: "kill -KILL $$"})
		if r.err != nil || r.reply.RC == nil || *r.reply.RC != 137 || r.reply.Signal != "killed" {
			t.Errorf("rc %v signal %q, %v; want 137 killed", r.reply.RC, r.reply.Signal, r.err)
		}
	})
}

// TestCommandWire checks the frames as they are on the wire.
func TestCommandWire(t *testing.T) {
	ts := startServer(t, commandsrv.Config{})
	c := ts.logon(t)
	req := c.command("w1", "linux:local", `echo out; echo err >&2`)
	var lines []string
	for {
		f, line := c.next()
		if f.Req != req || f.ID != "w1" {
			t.Fatalf("frame %s, want req %d and id w1", line, req)
		}
		if f.Type == protocol.TypeReply {
			if !strings.Contains(line, `"rc":0`) {
				t.Errorf("reply %s lacks \"rc\":0", line)
			}
			if strings.Contains(line, `"error"`) {
				t.Errorf("reply %s has an error", line)
			}
			break
		}
		if f.Type != protocol.TypeOutput {
			t.Fatalf("got %s, want output or the reply", line)
		}
		lines = append(lines, line)
	}
	slices.Sort(lines) // stdout and stderr may come either way round
	want := []string{
		fmt.Sprintf(`{"type":"output","req":%d,"id":"w1","stream":"stderr","text":"err","eol":true}`, req),
		fmt.Sprintf(`{"type":"output","req":%d,"id":"w1","stream":"stdout","text":"out","eol":true}`, req),
	}
	if !slices.Equal(lines, want) {
		t.Errorf("output frames\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

func TestBinaryOutput(t *testing.T) {
	ts := startServer(t, commandsrv.Config{})
	c := ts.logon(t)
	// Bytes 0..255 twice over (so that invalid UTF-8 comes in the lines
	// between the newlines), then a valid line.
	var want []byte
	for i := range 512 {
		want = append(want, byte(i))
	}
	file := filepath.Join(t.TempDir(), "bin")
	if err := os.WriteFile(file, want, 0o600); err != nil {
		t.Fatal(err)
	}
	want = append(want, "\nok\n"...)
	req := c.command("bin", "linux:local", "cat "+linuxagent.QuoteCommand(file)+"; printf '\\nok\\n'")
	var got []byte
	var sawData, sawText bool
	for {
		f, line := c.next()
		if f.Req != req {
			t.Fatalf("frame %s for another request", line)
		}
		if f.Type == protocol.TypeReply {
			if f.RC == nil || *f.RC != 0 || f.Error != nil {
				t.Fatalf("reply %s", line)
			}
			break
		}
		switch {
		case strings.Contains(line, `"data":`) && !strings.Contains(line, `"text":`):
			sawData = true
		case f.Text == "ok":
			sawText = true
		}
		got = append(got, f.Text...)
		got = append(got, f.Data...)
		if f.EOL {
			got = append(got, '\n')
		}
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output\n%q\nwant\n%q", got, want)
	}
	if !sawData || !sawText {
		t.Errorf("binary output in data: %v; a text line in text: %v", sawData, sawText)
	}
}

func TestLongOutput(t *testing.T) {
	ts := startServer(t, commandsrv.Config{})
	c := ts.dial(t)
	t.Run("many lines", func(t *testing.T) {
		const n = 5000
		r := runCommand(t, c, client.CommandRequest{Target: "linux:local", Command: fmt.Sprintf("seq 1 %d", n)})
		if r.err != nil {
			t.Fatal(r.err)
		}
		if len(r.stdout) != n {
			t.Fatalf("%d output frames, want %d", len(r.stdout), n)
		}
		for i, f := range r.stdout {
			if f.Text != strconv.Itoa(i+1) || !f.EOL {
				t.Fatalf("line %d: %+v", i+1, f)
			}
		}
	})
	t.Run("long line", func(t *testing.T) {
		const n = 10*maxLine + 123
		r := runCommand(t, c, client.CommandRequest{Target: "linux:local", Command: fmt.Sprintf("head -c %d /dev/zero | tr '\\0' x; echo", n)})
		if r.err != nil {
			t.Fatal(r.err)
		}
		if got := text(r.stdout); got != strings.Repeat("x", n)+"\n" {
			t.Errorf("got %d bytes, want %d x and a newline", len(got), n)
		}
		if len(r.stdout) != 11 {
			t.Errorf("%d pieces, want 11", len(r.stdout))
		}
		for i, f := range r.stdout {
			if f.EOL != (i == len(r.stdout)-1) {
				t.Errorf("piece %d of %d: eol %v", i+1, len(r.stdout), f.EOL)
			}
		}
	})
}

// TestConcurrentCommands runs several commands at once on one session
// and checks that each output frame is attributed to its command.
func TestConcurrentCommands(t *testing.T) {
	t.Parallel() // its commands wait; its server is its own
	ts := startServer(t, commandsrv.Config{})
	c := ts.logon(t)
	loop := func(tag string, n int) string {
		return fmt.Sprintf(`i=1; while [ $i -le %d ]; do echo %s$i; echo %s-err$i >&2; sleep 0.01; i=$((i+1)); done; exit %d`, n, tag, tag, len(tag))
	}
	type cmd struct {
		id, tag string
		rc      int
		req     uint64
		out     []string
		errs    []string
		replied bool
	}
	cmds := []*cmd{{id: "A", tag: "a", rc: 1}, {id: "B", tag: "bb", rc: 2}, {id: "", tag: "ccc", rc: 3}}
	byReq := map[uint64]*cmd{}
	for _, cm := range cmds {
		cm.req = c.command(cm.id, "linux:local", loop(cm.tag, 20))
		byReq[cm.req] = cm
	}
	assigned := ""
	for left := len(cmds); left > 0; {
		f, line := c.next()
		cm := byReq[f.Req]
		if cm == nil || cm.replied {
			t.Fatalf("frame %s for no running command", line)
		}
		if cm.id == "" {
			if assigned == "" {
				assigned = f.ID
			}
			cm.id = assigned
		}
		if f.ID != cm.id {
			t.Fatalf("frame %s, want id %q", line, cm.id)
		}
		switch f.Type {
		case protocol.TypeOutput:
			if f.Stream == "stderr" {
				cm.errs = append(cm.errs, f.Text)
			} else {
				cm.out = append(cm.out, f.Text)
			}
		case protocol.TypeReply:
			if f.Error != nil || f.RC == nil || *f.RC != cm.rc {
				t.Errorf("reply %s, want rc %d", line, cm.rc)
			}
			cm.replied = true
			left--
		default:
			t.Fatalf("unexpected %s", line)
		}
	}
	for _, cm := range cmds {
		var out, errs []string
		for i := 1; i <= 20; i++ {
			out = append(out, fmt.Sprintf("%s%d", cm.tag, i))
			errs = append(errs, fmt.Sprintf("%s-err%d", cm.tag, i))
		}
		if !slices.Equal(cm.out, out) || !slices.Equal(cm.errs, errs) {
			t.Errorf("command %s: stdout %q stderr %q", cm.id, cm.out, cm.errs)
		}
	}
	if !strings.HasPrefix(assigned, "R1-") {
		t.Errorf("assigned ID %q", assigned)
	}
}

func TestMaxPerSession(t *testing.T) {
	ts := startServer(t, commandsrv.Config{MaxPerSession: 2})
	c := ts.logon(t)
	r1 := c.command("s1", "zvm:VMSYS1", "CP Q N")
	r2 := c.command("s2", "zvm:VMSYS2", "CP Q N")
	ts.block.waitStarted(t, 2)
	r3 := c.command("s3", "zvm:VMSYS3", "CP Q N")
	var busy protocol.Frame
	var busyLine string
	outputs := 0
	for busy.Type == "" {
		f, line := c.next()
		switch {
		case f.Type == protocol.TypeOutput && (f.Req == r1 || f.Req == r2):
			outputs++
		case f.Req == r3:
			busy, busyLine = f, line
		default:
			t.Fatalf("unexpected %s", line)
		}
	}
	wantErrorReply(t, busy, busyLine, commands.CodeBusy)
	if busy.RetryAfter <= 0 {
		t.Errorf("busy reply without retry_after: %s", busyLine)
	}

	// Another session has its own limit.
	other := ts.logon(t)
	or := other.command("o1", "linux:local", "echo hi")
	if f, line := other.next(); f.Type != protocol.TypeOutput || f.Text != "hi" {
		t.Fatalf("other session: %s", line)
	}
	if f, line := other.reply(or); f.RC == nil || *f.RC != 0 {
		t.Fatalf("other session: %s", line)
	}

	// When one ends, the session may run another.
	if !ts.router.Cancel("tester", "s1") {
		t.Fatal("s1 is not in flight")
	}
	for {
		f, line := c.next()
		if f.Type == protocol.TypeOutput {
			outputs++
			continue
		}
		if f.Req != r1 {
			t.Fatalf("got %s, want the reply to s1", line)
		}
		wantErrorReply(t, f, line, commands.CodeCancelled)
		break
	}
	r4 := c.command("s4", "zvm:VMSYS4", "CP Q N")
	ts.block.waitStarted(t, 1)
	ts.block.releaseAll()
	replies := map[uint64]bool{}
	for len(replies) < 2 {
		f, line := c.next()
		switch {
		case f.Type == protocol.TypeOutput:
		case f.Type == protocol.TypeReply && (f.Req == r2 || f.Req == r4) && f.RC != nil:
			replies[f.Req] = true
		default:
			t.Fatalf("unexpected %s", line)
		}
	}
}

func TestCancel(t *testing.T) {
	ts := startServer(t, commandsrv.Config{})
	c := ts.logon(t)

	// waitReplies reads frames until the replies to the requests given,
	// and returns them by request number.
	waitReplies := func(t *testing.T, c *rawConn, reqs ...uint64) map[uint64]protocol.Frame {
		t.Helper()
		got := map[uint64]protocol.Frame{}
		for len(got) < len(reqs) {
			f, line := c.next()
			switch {
			case f.Type == protocol.TypeOutput:
			case f.Type == protocol.TypeReply && slices.Contains(reqs, f.Req):
				got[f.Req] = f
			default:
				t.Fatalf("unexpected %s", line)
			}
		}
		return got
	}

	t.Run("by ID", func(t *testing.T) {
		defer c.in(t)()
		req := c.command("k1", "zvm:VMSYS1", "CP Q N")
		if f, line := c.next(); f.Type != protocol.TypeOutput || f.Text != "started" {
			t.Fatalf("got %s, want the first output", line)
		}
		ts.block.waitStarted(t, 1)
		creq := c.send(&protocol.Frame{Type: protocol.TypeCancel, ID: "k1"})
		got := waitReplies(t, c, req, creq)
		if f := got[creq]; f.Error != nil {
			t.Errorf("cancel answered with error %+v", f.Error)
		}
		f := got[req]
		if f.Error == nil || f.Error.Code != commands.CodeCancelled || f.Error.Message != "cancelled by request" || f.ID != "k1" || f.RC != nil {
			t.Errorf("command reply %+v (error %+v), want error cancelled by request", f, f.Error)
		}
		waitIDs(t, ts.block.ended, 1, "end")
	})
	t.Run("unknown ID", func(t *testing.T) {
		defer c.in(t)()
		creq := c.send(&protocol.Frame{Type: protocol.TypeCancel, ID: "no-such"})
		f, line := c.reply(creq)
		wantErrorReply(t, f, line, protocol.ErrCodeState)
	})
	t.Run("another session's command", func(t *testing.T) {
		defer c.in(t)()
		req := c.command("mine", "zvm:VMSYS1", "CP Q N")
		ts.block.waitStarted(t, 1)
		other := ts.logon(t)
		creq := other.send(&protocol.Frame{Type: protocol.TypeCancel, ID: "mine"})
		f, line := other.reply(creq)
		wantErrorReply(t, f, line, protocol.ErrCodeState)
		if ids := inFlight(ts.router); !slices.Equal(ids, []string{"mine"}) {
			t.Errorf("in flight %q, want [mine]", ids)
		}
		creq = c.send(&protocol.Frame{Type: protocol.TypeCancel, ID: "mine"})
		waitReplies(t, c, req, creq)
		waitIDs(t, ts.block.ended, 1, "end")
	})
	t.Run("a real process", func(t *testing.T) {
		defer c.in(t)()
		req := c.command("sleeper", "linux:local", "echo going; exec sleep 1000")
		if f, line := c.next(); f.Text != "going" {
			t.Fatalf("got %s, want the first output", line)
		}
		creq := c.send(&protocol.Frame{Type: protocol.TypeCancel, ID: "sleeper"})
		got := waitReplies(t, c, req, creq)
		if f := got[req]; f.Error == nil || f.Error.Code != commands.CodeCancelled {
			t.Errorf("command reply %+v (error %+v), want error cancelled", f, f.Error)
		}
	})
	// A cancel sent right behind its command, before the command has
	// started to run, still cancels it.
	t.Run("at once", func(t *testing.T) {
		defer c.in(t)()
		for i := range 20 {
			id := fmt.Sprintf("quick%d", i)
			req := c.command(id, "zvm:VMSYS1", "CP Q N")
			creq := c.send(&protocol.Frame{Type: protocol.TypeCancel, ID: id})
			got := waitReplies(t, c, req, creq)
			if f := got[creq]; f.Error != nil {
				t.Fatalf("cancel %d answered with error %+v", i, f.Error)
			}
			if f := got[req]; f.Error == nil || f.Error.Code != commands.CodeCancelled {
				t.Fatalf("command %d: reply %+v (error %+v), want error cancelled", i, f, f.Error)
			}
		}
	})
}

func inFlight(r *commands.Router) []string {
	var ids []string
	for _, f := range r.InFlight() {
		ids = append(ids, f.ID)
	}
	slices.Sort(ids)
	return ids
}

// TestClientGoesAway checks that the commands of a client that closes its
// connection are cancelled.
func TestClientGoesAway(t *testing.T) {
	ts := startServer(t, commandsrv.Config{})
	c := ts.logon(t)
	c.command("g1", "zvm:VMSYS1", "CP Q N")
	c.command("g2", "zvm:VMSYS2", "CP Q N")
	ts.block.waitStarted(t, 2)
	c.nc.Close()
	start := time.Now()
	ids := waitIDs(t, ts.block.ended, 2, "see its context end")
	if d := time.Since(start); d > time.Second {
		t.Errorf("the commands saw their context end %v after the client went away", d)
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"g1", "g2"}) {
		t.Errorf("ended %q", ids)
	}
	waitFor(t, "the router to forget the commands", func() bool { return len(ts.router.InFlight()) == 0 })
	waitFor(t, "the session to end", func() bool { return len(ts.srv.Sessions()) == 0 })
}

// TestClientCancelsWithContext checks client.Conn.Command's cancel when its
// context ends while it waits for the command.
func TestClientCancelsWithContext(t *testing.T) {
	t.Parallel() // it waits for the command to be cancelled; its server is its own
	ts := startServer(t, commandsrv.Config{})
	c := ts.dial(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started := make(chan struct{}, 1)
	go func() {
		select {
		case <-started:
			// Command resets its read deadline before each read, which
			// can undo a cancel that comes while it handles a frame; wait
			// until it is reading again.
			time.Sleep(500 * time.Millisecond)
			cancel()
		case <-time.After(waitTimeout):
		}
	}()
	f, err := c.Command(ctx, client.CommandRequest{ID: "ctx1", Target: "zvm:VMSYS1", Command: "CP Q N"}, func(f *protocol.Frame) {
		if f.Text == "started" {
			started <- struct{}{}
		}
	})
	var ce *client.CommandError
	if !errors.As(err, &ce) || ce.Code != commands.CodeCancelled || f == nil || f.ID != "ctx1" {
		t.Fatalf("Command = %+v, %v; want a cancelled reply", f, err)
	}
	// The session is still usable.
	r := runCommand(t, c, client.CommandRequest{Target: "linux:local", Command: "echo after"})
	if r.err != nil || text(r.stdout) != "after\n" {
		t.Errorf("a command after the cancel: %q, %v", text(r.stdout), r.err)
	}
}

func TestRequestErrors(t *testing.T) {
	t.Parallel() // its server is its own
	ts := startServer(t, commandsrv.Config{})
	c := ts.logon(t)
	tests := []struct {
		name string
		f    protocol.Frame
		code string
	}{
		{"bad target", protocol.Frame{Type: protocol.TypeCommand, ID: "e1", Target: "foo:x", Command: "ls"}, commands.CodeBadRequest},
		{"no target", protocol.Frame{Type: protocol.TypeCommand, ID: "e2", Command: "ls"}, commands.CodeBadRequest},
		{"no command", protocol.Frame{Type: protocol.TypeCommand, ID: "e3", Target: "linux:local"}, commands.CodeBadRequest},
		{"negative timeout", protocol.Frame{Type: protocol.TypeCommand, ID: "e4", Target: "linux:local", Command: "ls", Timeout: -1}, commands.CodeBadRequest},
		{"timeout over the maximum", protocol.Frame{Type: protocol.TypeCommand, ID: "e5", Target: "linux:local", Command: "ls", Timeout: 61}, commands.CodeBadRequest},
		{"timeout past a Duration", protocol.Frame{Type: protocol.TypeCommand, ID: "e6", Target: "linux:local", Command: "ls", Timeout: 1e10}, commands.CodeBadRequest},
		{"timeout far past a Duration", protocol.Frame{Type: protocol.TypeCommand, ID: "e7", Target: "linux:local", Command: "ls", Timeout: 1e300}, commands.CodeBadRequest},
		{"no executor", protocol.Frame{Type: protocol.TypeCommand, ID: "e8", Target: "region", Command: "status"}, commands.CodeNotConnected},
		{"unknown type", protocol.Frame{Type: "frobnicate", ID: "e9"}, protocol.ErrCodeUnknownType},
		{"subscribe", protocol.Frame{Type: protocol.TypeSubscribe}, protocol.ErrCodeUnknownType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer c.in(t)()
			req := c.send(&tt.f)
			f, line := c.reply(req)
			wantErrorReply(t, f, line, tt.code)
			// The session stays usable.
			req = c.command("", "linux:local", "echo ok")
			if f, line := c.next(); f.Req != req || f.Text != "ok" {
				t.Fatalf("got %s, want output ok", line)
			}
			if f, line := c.reply(req); f.RC == nil || *f.RC != 0 {
				t.Fatalf("got %s, want rc 0", line)
			}
		})
	}
	t.Run("timeout", func(t *testing.T) {
		defer c.in(t)()
		req := c.send(&protocol.Frame{Type: protocol.TypeCommand, ID: "t1", Target: "linux:local", Command: "echo a; exec sleep 1000", Timeout: 0.2})
		if f, line := c.next(); f.Text != "a" {
			t.Fatalf("got %s, want output a", line)
		}
		f, line := c.reply(req)
		wantErrorReply(t, f, line, commands.CodeTimeout)
		if f.ID != "t1" || f.DurationMS < 200 {
			t.Errorf("reply %s: want id t1 and duration_ms at least 200", line)
		}
	})
	t.Run("duplicate ID", func(t *testing.T) {
		defer c.in(t)()
		first := c.command("d1", "zvm:VMSYS1", "CP Q N")
		ts.block.waitStarted(t, 1)
		dup := c.command("d1", "linux:local", "echo never")
		for {
			f, line := c.next()
			if f.Type == protocol.TypeOutput && f.Req == first {
				continue
			}
			if f.Req != dup {
				t.Fatalf("got %s, want the reply to the duplicate", line)
			}
			wantErrorReply(t, f, line, commands.CodeBadRequest)
			break
		}
		// Another session may not use an ID in flight either.
		other := ts.logon(t)
		req := other.command("d1", "linux:local", "echo never")
		f, line := other.reply(req)
		wantErrorReply(t, f, line, commands.CodeBadRequest)

		creq := c.send(&protocol.Frame{Type: protocol.TypeCancel, ID: "d1"})
		for n := 0; n < 2; {
			f, line := c.next()
			switch {
			case f.Type == protocol.TypeOutput:
			case f.Req == first || f.Req == creq:
				n++
			default:
				t.Fatalf("unexpected %s", line)
			}
		}
	})
}

// TestShutdown checks that Shutdown lets a running command finish and its
// client get the reply before bye shutdown, and that a command sent once
// shutdown began is answered busy.
func TestShutdown(t *testing.T) {
	t.Parallel() // it waits for a running command; its server is its own
	ts := startServer(t, commandsrv.Config{})
	c := ts.logon(t)
	req := c.command("long", "zvm:VMSYS1", "CP Q N")
	if f, line := c.next(); f.Type != protocol.TypeOutput || f.Text != "started" {
		t.Fatalf("got %s, want the first output", line)
	}
	ts.block.waitStarted(t, 1)

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- ts.srv.Shutdown(ctx) }()
	if err := ts.serveResult(); !errors.Is(err, commandsrv.ErrServerClosed) {
		t.Fatalf("Serve returned %v", err)
	}
	// Serve returned, so the sessions have been told to stop.
	late := c.command("late", "linux:local", "echo never")
	f, line := c.reply(late)
	wantErrorReply(t, f, line, commands.CodeBusy)
	if f.RetryAfter <= 0 {
		t.Errorf("busy reply without retry_after: %s", line)
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a command running", err)
	case <-time.After(100 * time.Millisecond):
	}

	ts.block.releaseAll()
	if f, line := c.next(); f.Req != req || f.Type != protocol.TypeOutput || f.Text != "released" {
		t.Fatalf("got %s, want the last output", line)
	}
	if f, line := c.reply(req); f.RC == nil || *f.RC != 0 || f.ID != "long" {
		t.Fatalf("got %s, want the command's reply with rc 0", line)
	}
	if f, line := c.next(); f.Type != protocol.TypeBye || f.Reason != protocol.ByeShutdown {
		t.Fatalf("got %s, want bye shutdown", line)
	}
	c.expectClosed()
	select {
	case err := <-shut:
		if err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Shutdown did not return")
	}
}

// TestShutdownTimeout checks that a command still running when Shutdown's
// context ends is cancelled.
func TestShutdownTimeout(t *testing.T) {
	t.Parallel() // it waits for the shutdown timeout; its server is its own
	ts := startServer(t, commandsrv.Config{})
	c := ts.logon(t)
	c.command("stuck", "zvm:VMSYS1", "CP Q N")
	ts.block.waitStarted(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want DeadlineExceeded", err)
	}
	waitIDs(t, ts.block.ended, 1, "see its context end")
	if n := len(ts.router.InFlight()); n != 0 {
		t.Errorf("%d commands in flight after Shutdown returned", n)
	}
}

func TestNewConfig(t *testing.T) {
	r := commands.NewRouter(commands.Config{})
	if _, err := commandsrv.New(commandsrv.Config{Logger: discardLogger()}); err == nil {
		t.Error("New without a Router succeeded")
	}
	if _, err := commandsrv.New(commandsrv.Config{Router: r}); err == nil {
		t.Error("New without a Logger succeeded")
	}
	if _, err := commandsrv.New(commandsrv.Config{Router: r, Logger: discardLogger(),
		Session: session.Config{MinHeartbeat: time.Minute, MaxHeartbeat: time.Second}}); err == nil {
		t.Error("New with a bad session config succeeded")
	}
}

// waitFor polls cond until it holds, failing the test after waitTimeout.
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

func TestNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		ts := startServerNoCleanup(t)
		srv, block := ts.srv, ts.block

		// A command that completes, one cancelled, one whose client goes
		// away, one running at Shutdown, one stuck at Close.
		a := ts.logon(t)
		req := a.command("", "linux:local", "echo hi; echo ho >&2")
		for f, _ := a.next(); f.Type != protocol.TypeReply || f.Req != req; f, _ = a.next() {
		}
		req = a.command("c", "linux:local", "echo c; exec sleep 1000")
		if f, line := a.next(); f.Req != req || f.Text != "c" {
			t.Fatalf("got %s, want output c", line)
		}
		a.send(&protocol.Frame{Type: protocol.TypeCancel, ID: "c"})
		b := ts.logon(t)
		b.command("gone", "zvm:VMSYS1", "x")
		block.waitStarted(t, 1)
		b.nc.Close()
		waitIDs(t, block.ended, 1, "end")
		a.command("shut", "zvm:VMSYS1", "x")
		block.waitStarted(t, 1)
		go func() {
			time.Sleep(100 * time.Millisecond)
			block.releaseAll()
		}()
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := ts.serveResult(); !errors.Is(err, commandsrv.ErrServerClosed) {
			t.Errorf("Serve = %v", err)
		}
		a.nc.Close()

		ts2 := startServerNoCleanup(t)
		c := ts2.logon(t)
		c.command("stuck", "zvm:VMSYS1", "x")
		c.command("sleeping", "linux:local", "exec sleep 1000")
		ts2.block.waitStarted(t, 1)
		ts2.srv.Close()
		if err := ts2.serveResult(); !errors.Is(err, commandsrv.ErrServerClosed) {
			t.Errorf("Serve = %v", err)
		}
		c.nc.Close()
	}()
	leakcheck.Wait(t, before, waitTimeout)
}

// startServerNoCleanup is startServer without the cleanup, for the leak
// check, which must see everything end before it returns.
func startServerNoCleanup(t *testing.T) *testServer {
	t.Helper()
	block := newBlockExec()
	router := commands.NewRouter(commands.Config{Executors: map[commands.Kind]commands.Executor{
		commands.KindLinux: shExec{maxLine: maxLine}, commands.KindZVM: block}})
	srv, err := commandsrv.New(commandsrv.Config{Router: router, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{srv: srv, router: router, block: block, addr: ln.Addr().String(), served: make(chan error, 1)}
	go func() { ts.served <- srv.Serve(ln) }()
	return ts
}

// secretAuth accepts any client name with the secret "good".
type secretAuth struct{}

func (secretAuth) Authenticate(_ context.Context, _, secret string) error {
	if secret != "good" {
		return errors.New("bad secret")
	}
	return nil
}

// TestDialCommand checks the command written behind the logon
// (client.DialCommand): run once the logon is accepted, never when it is
// refused.
func TestDialCommand(t *testing.T) {
	ts := startServer(t, commandsrv.Config{Session: session.Config{Auth: secretAuth{}}})
	mark := filepath.Join(t.TempDir(), "ran")
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	dial := func(secret, command string) (*client.Conn, *protocol.Frame, []string, error) {
		c, pending, err := client.DialCommand(ctx, client.Config{Addr: ts.addr, Client: "tester", Secret: secret},
			client.CommandRequest{Target: "linux:local", Command: command})
		if err != nil {
			return nil, nil, nil, err
		}
		t.Cleanup(func() { c.Close() })
		var out []string
		reply, err := pending.Wait(ctx, func(f *protocol.Frame) { out = append(out, f.Text) })
		return c, reply, out, err
	}

	_, _, _, err := dial("bad", "touch "+mark)
	var re *client.RefusedError
	if !errors.As(err, &re) || re.Reason != protocol.RefuseAuth {
		t.Fatalf("DialCommand with a bad secret: %v; want refused auth", err)
	}
	// A command on a session after it: the refused one had its chance.
	c, reply, out, err := dial("good", "echo one; echo two >&2; exit 4")
	if err != nil {
		t.Fatalf("DialCommand: %v", err)
	}
	slices.Sort(out) // two streams: in either order
	if reply.RC == nil || *reply.RC != 4 || !slices.Equal(out, []string{"one", "two"}) {
		t.Errorf("reply %+v, output %q; want rc 4, one and two", reply, out)
	}
	if _, err := os.Stat(mark); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the command sent behind a refused logon ran (stat: %v)", err)
	}
	if err := c.Logoff(ctx); err != nil {
		t.Errorf("Logoff: %v", err)
	}
}
