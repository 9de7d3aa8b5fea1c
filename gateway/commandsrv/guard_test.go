package commandsrv_test

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/zbridge/zbridge/commands"
	"github.com/zbridge/zbridge/gateway/commandsrv"
	"github.com/zbridge/zbridge/gateway/session"
	"github.com/zbridge/zbridge/protocol"
)

// recordingGuard refuses commands containing "forbidden" and records
// every call.
type recordingGuard struct {
	mu    sync.Mutex
	calls []string
}

func (g *recordingGuard) add(s string) {
	g.mu.Lock()
	g.calls = append(g.calls, s)
	g.mu.Unlock()
}

func (g *recordingGuard) Begin(sess *session.Session, req *commands.Request) error {
	if strings.Contains(req.Command, "forbidden") {
		g.add("refuse " + req.Command)
		return &commands.Error{Code: commands.CodeNotPermitted, Message: "client tester may not run it"}
	}
	g.add("begin " + req.Command)
	return nil
}

func (g *recordingGuard) End(sess *session.Session, req *commands.Request, res commands.Result, n int64, err error) {
	g.add(fmt.Sprintf("end %s rc=%d bytes=%d", req.Command, res.RC, n))
}

func (g *recordingGuard) Refused(sess *session.Session, req *commands.Request, target string, ce *commands.Error) {
	g.add(fmt.Sprintf("refused %s %s %s", target, req.Command, ce.Code))
}

func (g *recordingGuard) seen() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.calls)
}

// TestGuard: every command passes the Guard (authorization and the audit
// log) — those it refuses never run, and those the server refuses itself
// before the Guard are told to it as well.
func TestGuard(t *testing.T) {
	g := &recordingGuard{}
	ts := startServer(t, commandsrv.Config{Guard: g})
	c := ts.logon(t)

	ok := c.command("a", "linux:local", "echo hi")
	if f, line := c.next(); f.Type != protocol.TypeOutput || f.Text != "hi" {
		t.Fatalf("output: %s", line)
	}
	if f, line := c.reply(ok); f.RC == nil || *f.RC != 0 {
		t.Fatalf("reply: %s", line)
	}
	no := c.command("b", "linux:local", "echo forbidden")
	if f, line := c.reply(no); f.Error == nil || f.Error.Code != commands.CodeNotPermitted {
		t.Fatalf("refused command: %s", line)
	}
	bad := c.command("c", "mvs:SYS1", "D A")
	if f, line := c.reply(bad); f.Error == nil || f.Error.Code != commands.CodeBadRequest {
		t.Fatalf("bad target: %s", line)
	}
	want := []string{"begin echo hi", "end echo hi rc=0 bytes=2", "refuse echo forbidden", "refused mvs:SYS1 D A bad-request"}
	waitFor(t, "the guard's calls", func() bool { return slices.Equal(g.seen(), want) })
}

// TestOversizedRequests: a target, command line or ID longer than any
// target takes is refused bad-request before anything else, and what the
// Guard (the audit log) is given of it is clipped: a client without a
// single grant must not make the region write a megabyte a frame.
func TestOversizedRequests(t *testing.T) {
	g := &recordingGuard{}
	ts := startServer(t, commandsrv.Config{Guard: g})
	c := ts.logon(t)
	long := strings.Repeat("\xff", commandsrv.MaxCommand+1)
	for _, f := range []protocol.Frame{
		{Type: protocol.TypeCommand, Target: "linux:local", Command: long},
		{Type: protocol.TypeCommand, Target: "linux:" + strings.Repeat("a", commandsrv.MaxTarget), Command: "ls"},
		{Type: protocol.TypeCommand, ID: strings.Repeat("i", 129), Target: "linux:local", Command: "ls"},
		{Type: protocol.TypeCommand, ID: "a b", Target: "linux:local", Command: "ls"},
	} {
		req := c.send(&f)
		reply, line := c.reply(req)
		wantErrorReply(t, reply, line, commands.CodeBadRequest)
	}
	waitFor(t, "the guard's four refusals", func() bool { return len(g.seen()) == 4 })
	for _, call := range g.seen() {
		if !strings.HasPrefix(call, "refused ") || !strings.HasSuffix(call, " bad-request") || len(call) > 3<<10 {
			t.Errorf("the guard was told %d bytes: %.200q", len(call), call)
		}
	}
	// The session stays usable.
	req := c.command("", "linux:local", "echo ok")
	if f, line := c.next(); f.Req != req || f.Text != "ok" {
		t.Fatalf("got %s, want output ok", line)
	}
}
