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
