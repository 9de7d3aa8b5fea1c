package linuxagent

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/ssh"

	"github.com/zbridge/zbridge/protocol/agentproto"
)

// waitTimeout bounds every wait in these tests.
const waitTimeout = 20 * time.Second

// syncBuffer is a bytes.Buffer safe for concurrent writes: the agent's log.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testLogger returns a debug logger into a buffer that is written to the
// test log if the test fails.
func testLogger(t testing.TB) (*logrus.Logger, *syncBuffer) {
	buf := &syncBuffer{}
	l := logrus.New()
	l.SetOutput(buf)
	l.SetLevel(logrus.DebugLevel)
	l.SetFormatter(&logrus.TextFormatter{DisableColors: true, DisableTimestamp: true})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("agent log:\n%s", buf.String())
		}
	})
	return l, buf
}

// userKey is a client key pair, with its private key also in a file (for
// OpenSSH's ssh -i) and its authorized_keys line.
type userKey struct {
	signer  ssh.Signer
	file    string // private key, OpenSSH format, mode 0600
	authKey []byte // authorized_keys line
}

func newUserKey(t testing.TB, dir, name string) *userKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, name)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, name)
	if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	line := bytes.TrimSpace(ssh.MarshalAuthorizedKey(signer.PublicKey()))
	return &userKey{signer: signer, file: file, authKey: append(line, []byte(" "+name+"\n")...)}
}

// testAgent is an agent served in-process on a loopback port.
type testAgent struct {
	srv      *Server // nil for an agent in a process of its own
	hostKey  ssh.PublicKey
	addr     string
	port     int
	dir      string
	client   *userKey // in AuthorizedKeys
	authFile string
	log      *syncBuffer
	served   chan error
}

// startAgent starts an agent on 127.0.0.1:0 whose authorized_keys holds
// one fresh client key. mod, if set, adjusts the Config first. The agent is
// closed at cleanup.
func startAgent(t testing.TB, mod func(*Config)) *testAgent {
	t.Helper()
	dir := t.TempDir()
	client := newUserKey(t, dir, "region_key")
	authFile := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(authFile, client.authKey, 0o600); err != nil {
		t.Fatal(err)
	}
	logger, buf := testLogger(t)
	cfg := Config{
		HostKeyFile:    filepath.Join(dir, "host_key"),
		AuthorizedKeys: authFile,
		Name:           "test-agent",
		Logger:         logger,
	}
	if mod != nil {
		mod(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := &testAgent{srv: srv, hostKey: srv.HostKey(), addr: l.Addr().String(), port: l.Addr().(*net.TCPAddr).Port, dir: dir,
		client: client, authFile: authFile, log: buf, served: make(chan error, 1)}
	go func() { a.served <- srv.Serve(l) }()
	t.Cleanup(func() {
		srv.Close()
		select {
		case err := <-a.served:
			if !errors.Is(err, ErrServerClosed) {
				t.Errorf("Serve = %v, want ErrServerClosed", err)
			}
		case <-time.After(waitTimeout):
			t.Error("Serve did not return after Close")
		}
	})
	return a
}

// knownHosts writes a known_hosts file pinning the agent's host key for
// [127.0.0.1]:port and returns its path.
func (a *testAgent) knownHosts(t testing.TB) string {
	t.Helper()
	return writeKnownHosts(t, a.dir, a.port, a.hostKey)
}

func writeKnownHosts(t testing.TB, dir string, port int, key ssh.PublicKey) string {
	t.Helper()
	path := filepath.Join(dir, "known_hosts_"+strconv.Itoa(port))
	line := "[127.0.0.1]:" + strconv.Itoa(port) + " " + string(ssh.MarshalAuthorizedKey(key))
	if err := os.WriteFile(path, []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// dial connects to the agent with signer, checking the host key.
func (a *testAgent) dial(t testing.TB, signer ssh.Signer) *ssh.Client {
	t.Helper()
	c, err := a.tryDial(signer)
	if err != nil {
		t.Fatalf("dial agent: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func (a *testAgent) tryDial(auth ...ssh.Signer) (*ssh.Client, error) {
	return ssh.Dial("tcp", a.addr, &ssh.ClientConfig{
		User:            "zbridge",
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(auth...)},
		HostKeyCallback: ssh.FixedHostKey(a.hostKey),
		Timeout:         waitTimeout,
	})
}

// run is one command run over a raw session channel, so that the
// agent's result request (agentproto.ResultRequest) is seen.
type run struct {
	stdout, stderr []byte
	result         *agentproto.Result
	exitStatus     int    // -1 if none was sent
	exitSignal     string // "" if none was sent
	requests       []string
}

// runCommand runs line on the agent through c and collects everything the
// agent sends.
func runCommand(t testing.TB, c *ssh.Client, line string, env map[string]string) *run {
	t.Helper()
	ch, reqs, err := c.OpenChannel("session", nil)
	if err != nil {
		t.Fatalf("open session: %v", err)
	}
	defer ch.Close()
	for k, v := range env {
		ok, err := ch.SendRequest("env", true, ssh.Marshal(struct{ Name, Value string }{k, v}))
		if err != nil || !ok {
			t.Fatalf("env %s refused: %v", k, err)
		}
	}
	return execOn(t, ch, reqs, line)
}

// execOn sends an exec request on an open session channel and collects the
// answer until the channel closes.
func execOn(t testing.TB, ch ssh.Channel, reqs <-chan *ssh.Request, line string) *run {
	t.Helper()
	startExec(t, ch, line)
	return collectRun(t, ch, reqs, line)
}

// startCommand opens a session on c and has the agent start line, and
// returns where the command's answer will come, collected on a goroutine
// of its own (its helpers' t.Fatal ends only that goroutine: wait with a
// bound). The session is closed at the end of the test.
func startCommand(t testing.TB, c *ssh.Client, line string) <-chan *run {
	t.Helper()
	ch, reqs, err := c.OpenChannel("session", nil)
	if err != nil {
		t.Fatalf("open session: %v", err)
	}
	t.Cleanup(func() { ch.Close() })
	startExec(t, ch, line)
	done := make(chan *run, 1)
	go func() { done <- collectRun(t, ch, reqs, line) }()
	return done
}

// startExec sends an exec request for line on an open session channel;
// once the agent has said yes, the session is running a command.
func startExec(t testing.TB, ch ssh.Channel, line string) {
	t.Helper()
	ok, err := ch.SendRequest("exec", true, ssh.Marshal(struct{ Command string }{line}))
	if err != nil || !ok {
		t.Fatalf("exec %q: ok=%v err=%v", line, ok, err)
	}
}

// collectRun collects the answer to the command line started on ch until
// the channel closes.
func collectRun(t testing.TB, ch ssh.Channel, reqs <-chan *ssh.Request, line string) *run {
	t.Helper()
	var err error
	r := &run{exitStatus: -1}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); r.stdout, _ = io.ReadAll(ch) }()
	go func() { defer wg.Done(); r.stderr, _ = io.ReadAll(ch.Stderr()) }()
	timeout := time.After(waitTimeout)
	for done := false; !done; {
		select {
		case req, ok := <-reqs:
			if !ok {
				done = true
				break
			}
			r.requests = append(r.requests, req.Type)
			switch req.Type {
			case agentproto.ResultRequest:
				if req.WantReply {
					t.Errorf("%s wants a reply", agentproto.ResultRequest)
				}
				if r.result, err = agentproto.ParseResultPayload(req.Payload); err != nil {
					t.Errorf("result payload: %v", err)
				}
			case "exit-status":
				if len(req.Payload) != 4 {
					t.Errorf("exit-status payload %x", req.Payload)
					break
				}
				r.exitStatus = int(binary.BigEndian.Uint32(req.Payload))
			case "exit-signal":
				var m exitSignalMsg
				if err := ssh.Unmarshal(req.Payload, &m); err != nil {
					t.Errorf("exit-signal payload: %v", err)
				}
				r.exitSignal = m.Signal
			}
			req.Reply(false, nil)
		case <-timeout:
			t.Fatalf("command %q: channel not closed within %v", line, waitTimeout)
		}
	}
	wg.Wait()
	return r
}

// liveGroupMembers returns the processes of group pgid that are not
// zombies, read from /proc independently of the package's own code.
func liveGroupMembers(t testing.TB, pgid int) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatalf("read /proc: %v", err)
	}
	var live []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		rest := string(data[strings.LastIndexByte(string(data), ')')+2:])
		f := strings.Fields(rest) // state ppid pgrp ...
		if len(f) >= 3 && f[2] == strconv.Itoa(pgid) && f[0] != "Z" {
			live = append(live, e.Name()+":"+string(data[:min(len(data), 60)]))
		}
	}
	return live
}

// waitFor polls cond until it holds or waitTimeout passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// mustPolicy parses a policy text, failing the test on error.
func mustPolicy(t testing.TB, text string) *Policy {
	t.Helper()
	p, err := ParsePolicy(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	return p
}
