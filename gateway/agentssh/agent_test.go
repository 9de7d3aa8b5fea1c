package agentssh

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/linuxagent"
	"github.com/zbridge/zbridge/protocol/agentproto"
)

// startLinuxAgent serves a Linux agent (package linuxagent) in this
// process on a loopback port, accepting the fixture's key, and pins its
// host key. It returns the agent's address and its log; the agent is
// closed at cleanup.
func startLinuxAgent(t *testing.T, f *fixture) (string, *syncBuffer) {
	t.Helper()
	log := &syncBuffer{}
	logger := logrus.New()
	logger.SetLevel(logrus.DebugLevel)
	logger.SetOutput(&testWriter{t: t, also: log})
	srv, err := linuxagent.New(linuxagent.Config{HostKeyFile: filepath.Join(f.dir, "agent_host_key"),
		AuthorizedKeys: f.authKeys, Name: "lx-agent", Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-served; !errors.Is(err, linuxagent.ErrServerClosed) {
			t.Errorf("agent Serve: %v", err)
		}
	})
	f.pin(l.Addr().String(), srv.HostKey())
	return l.Addr().String(), log
}

// runAsync runs cmd on host in a goroutine; started is closed at its
// first output.
type asyncRun struct {
	started chan struct{}
	done    chan struct{}
	out     capture
	res     Result
	err     error
}

func runAsync(p *Pool, host string, cmd Command) *asyncRun {
	r := &asyncRun{started: make(chan struct{}), done: make(chan struct{})}
	var once sync.Once
	go func() {
		defer close(r.done)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		r.res, r.err = p.Run(ctx, host, cmd, func(o Output) {
			r.out.add(o)
			once.Do(func() { close(r.started) })
		})
	}()
	return r
}

// wait waits for r to end, failing the test if it takes longer than a
// generous bound.
func (r *asyncRun) wait(t *testing.T) {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(60 * time.Second):
		t.Fatal("command did not end")
	}
}

// TestOversizeCommand sends a command far larger than an SSH packet to a
// host that runs another client's command: the large one is refused as a
// bad command before anything is sent, and the running one, over the same
// connection, finishes with all its output. (Sent, the large exec request
// ended the connection, and every command on it.) It runs against the
// Linux agent and against a stock sshd.
func TestOversizeCommand(t *testing.T) {
	checkLeaks(t)
	f := newFixture(t)
	agentAddr, _ := startLinuxAgent(t, f)
	sshdAddr, _ := f.pinnedSSHD()
	p := f.newPool(nil)
	p.Add("agent", agentAddr)
	p.Add("sshd", sshdAddr)

	huge := strings.Repeat("x", 300<<10)
	for _, host := range []string{"agent", "sshd"} {
		t.Run(host, func(t *testing.T) {
			waitConnected(t, p, host)
			long := runAsync(p, host, Command{ID: "long-1", Client: "first", Line: `sh -c 'echo started; sleep 2; echo done'`})
			select {
			case <-long.started:
			case <-long.done:
				t.Fatalf("the long command ended at once: %+v, %v", long.res, long.err)
			case <-time.After(30 * time.Second):
				t.Fatal("the long command never started")
			}
			for _, tt := range []struct {
				name string
				cmd  Command
				want string
			}{
				{"line", Command{ID: "big-1", Client: "second", Line: huge}, "command is 307200 bytes; the most a Linux agent takes is 65152"},
				{"ID", Command{ID: huge, Client: "second", Line: "echo hi"}, "command ID is 307200 bytes; the most a Linux agent takes is 128"},
				{"client", Command{ID: "big-2", Client: huge, Line: "echo hi"}, "client name is 307200 bytes; the most a Linux agent takes is 256"},
			} {
				res, err := p.Run(t.Context(), host, tt.cmd, nil)
				var fe *agentproto.FieldError
				if !errors.Is(err, ErrBadCommand) || !errors.As(err, &fe) || fe.Error() != tt.want {
					t.Errorf("oversize %s: %v, want ErrBadCommand and %q", tt.name, err, tt.want)
				}
				if res.ExitStatus != -1 {
					t.Errorf("oversize %s: result %+v", tt.name, res)
				}
			}
			long.wait(t)
			if long.err != nil || long.res.ExitStatus != 0 {
				t.Fatalf("the running command: %+v, %v; want it to finish normally", long.res, long.err)
			}
			if got := long.out.lines(1); !slices.Equal(got, []string{"started", "done"}) {
				t.Errorf("the running command's output %q", got)
			}
			// And the connection serves the next command.
			res, err := p.Run(t.Context(), host, Command{Line: "echo " + strings.Repeat("y", 1000)}, nil)
			if err != nil || res.ExitStatus != 0 {
				t.Errorf("next command: %+v, %v", res, err)
			}
		})
	}
}

// TestClientReachesAgent checks that the client a command runs for
// reaches the agent's log line for the command, with the command ID, and
// that a stock sshd without AcceptEnv, which ignores it, runs the command
// all the same.
func TestClientReachesAgent(t *testing.T) {
	checkLeaks(t)
	f := newFixture(t)
	agentAddr, agentLog := startLinuxAgent(t, f)
	sshdAddr, _ := f.pinnedSSHD() // no AcceptEnv: every env request is ignored
	p := f.newPool(nil)
	p.Add("agent", agentAddr)
	p.Add("sshd", sshdAddr)
	waitConnected(t, p, "agent")
	waitConnected(t, p, "sshd")

	cmd := Command{ID: "CMD-77", Client: "ops desk", Line: "echo ran", Timeout: 30 * time.Second}
	for _, host := range []string{"agent", "sshd"} {
		var c capture
		res, err := p.Run(t.Context(), host, cmd, c.add)
		if err != nil || res.ExitStatus != 0 || !slices.Equal(c.lines(1), []string{"ran"}) {
			t.Errorf("%s: %+v, %v, output %q", host, res, err, c.lines(1))
		}
	}
	var line string
	for _, l := range strings.Split(agentLog.String(), "\n") {
		if strings.Contains(l, "command finished") {
			line = l
		}
	}
	for _, want := range []string{`client="ops desk"`, "command_id=CMD-77", `command="echo ran"`} {
		if !strings.Contains(line, want) {
			t.Errorf("the agent's line for the command, %q, lacks %s", line, want)
		}
	}
	if logs := f.logs.String(); !strings.Contains(logs, `client="ops desk"`) {
		t.Errorf("the region's log never names the client:\n%s", logs)
	}
}
