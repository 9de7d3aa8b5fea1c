package region

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/gateway/session"
	"github.com/zbridge/zbridge/protocol"
)

// fdLimit is the descriptor limit of TestFDLimit's region: the default
// reserve of it is 16, leaving a budget of 80.
const fdLimit = 96

// TestFDLimit runs a region in a child process (this test binary again,
// as TestFDLimitChild) whose descriptor limit is lowered to fdLimit, and
// opens UNSOLMSG sessions until one is refused:
//
//   - budget: with the default reserve, the logon past the budget is
//     refused busy, with retry_after and the reason, before the region
//     runs out of descriptors; COMMANDS refuses the same way, SYSLOG
//     closes the connection at once, and /healthz (which may use the
//     reserve) reports the budget and the region degraded;
//   - exhausted: with no reserve, the region runs out altogether (accept
//     fails with EMFILE), and a spare descriptor accepts the connection to
//     refuse it with the reason, rather than leaving it in the backlog;
//     /healthz answers 503 with the reason.
//
// Either way the sessions already logged on are still served, and a
// logon is accepted again once sessions end.
func TestFDLimit(t *testing.T) {
	for _, mode := range []string{"budget", "exhausted"} {
		t.Run(mode, func(t *testing.T) {
			c := startFDChild(t, mode)
			why := "connection limit"
			if mode == "exhausted" {
				why = "out of file descriptors"
			}

			var kept []*fdClient
			var refusal *protocol.Frame
			for len(kept) < 4*fdLimit && refusal == nil {
				cl, f := fdLogon(t, c.addrs["unsolmsg"], fmt.Sprintf("sub%d", len(kept)))
				switch f.Type {
				case protocol.TypeAccept:
					kept = append(kept, cl)
				case protocol.TypeRefuse:
					refusal = f
					cl.Close()
				default:
					t.Fatalf("logon answered with %+v", f)
				}
			}
			if refusal == nil {
				t.Fatalf("%d logons accepted with a limit of %d descriptors, none refused", len(kept), fdLimit)
			}
			t.Logf("%d sessions logged on; then refused: %s: %s", len(kept), refusal.Reason, refusal.Message)
			if len(kept) < 10 {
				t.Errorf("only %d sessions before the refusal", len(kept))
			}
			if refusal.Reason != protocol.RefuseBusy || refusal.RetryAfter <= 0 || !strings.Contains(refusal.Message, why) {
				t.Errorf("refusal %+v: want busy, retry_after and %q", refusal, why)
			}

			// COMMANDS refuses in the same words; SYSLOG closes.
			cl, f := fdLogon(t, c.addrs["commands"], "ops")
			cl.Close()
			if f.Type != protocol.TypeRefuse || f.Reason != protocol.RefuseBusy || !strings.Contains(f.Message, why) {
				t.Errorf("COMMANDS logon answered %+v, want refused busy: %s", f, why)
			}
			checkClosedAtOnce(t, c.addrs["syslog"])

			// The sessions logged on are still served.
			for _, s := range []*fdClient{kept[0], kept[len(kept)-1]} {
				s.heartbeat(t)
			}

			health := c.healthz(t)
			t.Logf("/healthz: %d %s", health.code, strings.TrimSpace(health.body))
			switch mode {
			case "budget":
				var body struct {
					Status  string   `json:"status"`
					Reasons []string `json:"reasons"`
					FDs     fdHealth `json:"fds"`
				}
				if err := json.Unmarshal([]byte(health.body), &body); err != nil || health.code != http.StatusOK {
					t.Fatalf("/healthz %d %q: %v", health.code, health.body, err)
				}
				fds := body.FDs
				if fds.Limit != fdLimit || fds.Reserved != 16 || fds.Budget != fdLimit-16 || fds.Open < fds.Budget ||
					fds.Refused < 3 || fds.Spares != fds.SparesWanted {
					t.Errorf("/healthz fds %+v: want limit %d, 16 reserved, %d open at least, 3 refused at least, every spare held",
						fds, fdLimit, fdLimit-16)
				}
				// The reserve kept the store's journal its spares.
				if fds.StoreSpares == nil || fds.StoreSparesWanted == nil || *fds.StoreSpares != 2 || *fds.StoreSparesWanted != 2 {
					t.Errorf("/healthz fds: store spares %v of %v, want 2 of 2", fds.StoreSpares, fds.StoreSparesWanted)
				}
				if body.Status != "degraded" || len(body.Reasons) == 0 || !strings.Contains(body.Reasons[len(body.Reasons)-1], "file descriptors") {
					t.Errorf("/healthz status %q, reasons %q: want degraded for the descriptors", body.Status, body.Reasons)
				}
			case "exhausted":
				if health.code != http.StatusServiceUnavailable || !strings.Contains(health.body, why) {
					t.Errorf("/healthz %d %q: want 503: %s", health.code, health.body, why)
				}
			}

			// Sessions end: a logon is accepted again.
			for _, s := range kept[:4] {
				s.Close()
			}
			kept = kept[4:]
			deadline := time.Now().Add(30 * time.Second)
			for {
				cl, f := fdLogon(t, c.addrs["unsolmsg"], "again")
				cl.Close()
				if f.Type == protocol.TypeAccept {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("still refused 30s after four sessions ended: %+v", f)
				}
				time.Sleep(100 * time.Millisecond)
			}
			for _, s := range kept {
				s.Close()
			}
			c.stop(t)
		})
	}
}

// fdChild is TestFDLimitChild running in a child process.
type fdChild struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *lockedBuffer
	addrs  map[string]string
	done   chan error
}

func startFDChild(t *testing.T, mode string) *fdChild {
	t.Helper()
	c := &fdChild{stderr: &lockedBuffer{}, addrs: map[string]string{}, done: make(chan error, 1)}
	c.cmd = exec.Command(os.Args[0], "-test.run=^TestFDLimitChild$")
	c.cmd.Env = append(os.Environ(), "ZBRIDGE_FD_CHILD="+mode)
	c.cmd.Stderr = c.stderr
	var err error
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.stdin.Close()
		select {
		case <-c.done:
		case <-time.After(time.Minute):
			c.cmd.Process.Kill()
			<-c.done
		}
		if t.Failed() {
			t.Logf("region log:\n%s", c.stderr.String())
		}
	})
	lines := bufio.NewScanner(stdout)
	for lines.Scan() {
		if rest, ok := strings.CutPrefix(lines.Text(), "ADDRS "); ok {
			for _, kv := range strings.Fields(rest) {
				k, v, _ := strings.Cut(kv, "=")
				c.addrs[k] = v
			}
			break
		}
	}
	go func() {
		io.Copy(io.Discard, stdout)
		c.done <- c.cmd.Wait()
	}()
	if len(c.addrs) == 0 {
		t.Fatal("the child region did not start")
	}
	return c
}

// stop ends the child (its standard input) and checks it shut down
// cleanly.
func (c *fdChild) stop(t *testing.T) {
	c.stdin.Close()
	select {
	case err := <-c.done:
		c.done <- err // for the cleanup
		if err != nil {
			t.Errorf("child region: %v", err)
		}
	case <-time.After(time.Minute):
		t.Error("the child region did not stop within a minute")
	}
}

type httpAnswer struct {
	code int
	body string
}

func (c *fdChild) healthz(t *testing.T) httpAnswer {
	t.Helper()
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get("http://" + c.addrs["http"] + "/healthz")
	if err != nil {
		t.Fatalf("/healthz: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return httpAnswer{resp.StatusCode, string(b)}
}

// fdClient is a protocol connection of TestFDLimit's.
type fdClient struct {
	net.Conn
	r *protocol.Reader
}

// fdLogon connects to addr, logs on as client and returns the answer.
func fdLogon(t *testing.T, addr, client string) (*fdClient, *protocol.Frame) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 30*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	c := &fdClient{Conn: nc, r: protocol.NewReader(nc, 0)}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	b, _ := protocol.AppendFrame(nil, &protocol.Frame{Type: protocol.TypeLogon, Req: 1, Client: client,
		Version: protocol.Version, Heartbeat: 60})
	if _, err := c.Write(b); err != nil {
		t.Fatalf("logon to %s: %v", addr, err)
	}
	var f protocol.Frame
	if err := c.r.Next(&f); err != nil {
		t.Fatalf("logon to %s: no answer: %v", addr, err)
	}
	c.SetDeadline(time.Time{})
	return c, &f
}

// heartbeat sends a heartbeat and waits for its reply.
func (c *fdClient) heartbeat(t *testing.T) {
	t.Helper()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	defer c.SetDeadline(time.Time{})
	b, _ := protocol.AppendFrame(nil, &protocol.Frame{Type: protocol.TypeHeartbeat, Req: 99})
	if _, err := c.Write(b); err != nil {
		t.Fatalf("a session logged on: heartbeat: %v", err)
	}
	for {
		var f protocol.Frame
		if err := c.r.Next(&f); err != nil {
			t.Fatalf("a session logged on: no reply to its heartbeat: %v", err)
		}
		if f.Type == protocol.TypeReply && f.Req == 99 {
			return
		}
		if f.Type == protocol.TypeBye {
			t.Fatalf("a session logged on was ended: %+v", f)
		}
	}
}

// checkClosedAtOnce connects to addr and checks that the connection is
// closed without a byte read.
func checkClosedAtOnce(t *testing.T, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 30*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	n, err := c.Read(make([]byte, 1))
	var ne net.Error
	if n != 0 || err == nil || errors.As(err, &ne) && ne.Timeout() {
		t.Errorf("SYSLOG connection past the budget: read %d bytes, %v; want it closed at once", n, err)
	}
}

// TestFDLimitChild is TestFDLimit's region: it runs only as that, in the
// child process, with ZBRIDGE_FD_CHILD set to the mode. It lowers its own
// descriptor limit, starts a region on loopback ports, prints them and
// serves until its standard input ends.
func TestFDLimitChild(t *testing.T) {
	mode := os.Getenv("ZBRIDGE_FD_CHILD")
	if mode == "" {
		t.Skip("TestFDLimit's region: runs only as that")
	}
	rl := syscall.Rlimit{Cur: fdLimit, Max: fdLimit}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	log := logrus.New()
	log.SetOutput(os.Stderr)
	log.SetLevel(logrus.DebugLevel)
	limits := session.Config{MaxSessions: 1000, MaxPerAddr: 1000}
	cfg := Config{Name: "FDTEST", UnsolMsg: "127.0.0.1:0", Commands: "127.0.0.1:0", SyslogTCP: "127.0.0.1:0",
		HTTP: "127.0.0.1:0", Session: limits, CommandsSession: limits, Logger: log,
		DataDir: t.TempDir()} // the on-disk store, whose journal holds spares of its own
	if mode == "exhausted" {
		cfg.FDReserve = -1
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("ADDRS unsolmsg=%s commands=%s syslog=%s http=%s\n", r.Addr("unsolmsg"), r.Addr("commands"),
		r.Addr("syslog"), r.Addr("http"))
	io.Copy(io.Discard, os.Stdin)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}
