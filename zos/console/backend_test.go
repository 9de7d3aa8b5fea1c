package console

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/protocol"
)

// testBackend is a region in memory: clients with secrets, events pushed
// by the test and fanned out to every operator's tail, canned commands
// and agents.
type testBackend struct {
	name    string
	secrets map[string]string

	logons atomic.Int64 // Logon calls

	mu        sync.Mutex // guards the following fields
	events    []*protocol.Event
	subs      map[chan *protocol.Event]struct{}
	ops       []*testOp
	agents    []Agent
	agentsErr error
	commands  []string // as received, in order
	release   chan struct{}
}

// A command line the test backend knows:
//
//	echo WORDS          prints WORDS, RC 0
//	lines N             prints line 1 .. line N
//	rc N SIGNAL         RC N, ended by SIGNAL, output truncated
//	wait                waits for the test's release (or the context)
//	anything else       refused: "not permitted: ..."
var errRevoked = errors.New("the client's access was withdrawn")

func newBackend() *testBackend {
	return &testBackend{
		name:    "ZBR1",
		secrets: map[string]string{"OPER1": "s3cr3t-Pa55", "OPER2": "other-secret"},
		subs:    make(map[chan *protocol.Event]struct{}),
		release: make(chan struct{}),
	}
}

func (b *testBackend) Name() string { return b.name }

func (b *testBackend) Logon(ctx context.Context, client, secret string, remote net.Addr) (Operator, error) {
	b.logons.Add(1)
	if remote == nil || !strings.HasPrefix(remote.String(), "127.0.0.1:") {
		return nil, fmt.Errorf("unexpected remote address %v", remote)
	}
	if client == "BUSY" {
		return nil, fmt.Errorf("%w (test)", ErrBusy)
	}
	if want, ok := b.secrets[client]; !ok || want != secret {
		return nil, errors.New("bad client name or secret")
	}
	op := &testOp{b: b, client: client, revoked: make(chan struct{})}
	b.mu.Lock()
	b.ops = append(b.ops, op)
	b.mu.Unlock()
	return op, nil
}

// push stores e and hands it to every tail.
func (b *testBackend) push(e *protocol.Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.events = append(b.events, e)
	for ch := range b.subs {
		ch <- e
	}
}

// op returns the i-th operator session logged on.
func (b *testBackend) op(t testing.TB, i int) *testOp {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if i >= len(b.ops) {
		t.Fatalf("%d operators logged on, want at least %d", len(b.ops), i+1)
	}
	return b.ops[i]
}

func (b *testBackend) received() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.commands...)
}

// testOp is one operator's session of the test backend.
type testOp struct {
	b       *testBackend
	client  string
	closed  atomic.Int64
	tails   atomic.Int64
	revoked chan struct{}
	filters []string // guarded by b.mu: the filter of each Tail, as JSON-ish text
}

func (o *testOp) Client() string { return o.client }

func (o *testOp) Tail(ctx context.Context, f *protocol.Filter, back int, fn func(*protocol.Event)) error {
	o.tails.Add(1)
	ch := make(chan *protocol.Event, 100000)
	o.b.mu.Lock()
	var backlog []*protocol.Event
	for _, e := range o.b.events {
		if f.Match(e) {
			backlog = append(backlog, e)
		}
	}
	backlog = backlog[max(0, len(backlog)-back):]
	o.b.subs[ch] = struct{}{}
	o.filters = append(o.filters, fmt.Sprintf("%+v", f))
	o.b.mu.Unlock()
	defer func() {
		o.b.mu.Lock()
		delete(o.b.subs, ch)
		o.b.mu.Unlock()
	}()
	for _, e := range backlog {
		fn(e)
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-o.revoked:
			return errRevoked
		case e := <-ch:
			if f.Match(e) {
				fn(e)
			}
		}
	}
}

func (o *testOp) Command(ctx context.Context, line string, out func(string)) (Result, error) {
	o.b.mu.Lock()
	o.b.commands = append(o.b.commands, line)
	n := len(o.b.commands)
	o.b.mu.Unlock()
	id := "C" + strconv.Itoa(n)
	_, rest, _ := strings.Cut(line, " ") // the target
	verb, args, _ := strings.Cut(rest, " ")
	switch verb {
	case "echo":
		out(args)
		return Result{ID: id}, nil
	case "lines":
		k, _ := strconv.Atoi(args)
		for i := 1; i <= k; i++ {
			out("line " + strconv.Itoa(i))
		}
		return Result{ID: id}, nil
	case "rc":
		rc, sig, _ := strings.Cut(args, " ")
		n, _ := strconv.Atoi(rc)
		return Result{ID: id, RC: n, Signal: sig, Truncated: true}, nil
	case "wait":
		select {
		case <-o.b.release:
			out("released")
			return Result{ID: id}, nil
		case <-ctx.Done():
			return Result{}, ctx.Err()
		}
	}
	return Result{}, fmt.Errorf("not permitted for %s", o.client)
}

func (o *testOp) Agents(ctx context.Context) ([]Agent, error) {
	o.b.mu.Lock()
	defer o.b.mu.Unlock()
	return append([]Agent(nil), o.b.agents...), o.b.agentsErr
}

func (o *testOp) Close() error {
	o.closed.Add(1)
	return nil
}

var _ Backend = (*testBackend)(nil)
var _ Operator = (*testOp)(nil)

// logBuffer collects a server's log for the test to search.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// ev makes an event.
func ev(at string, system, msgid, text string, sev protocol.Severity) *protocol.Event {
	tm, err := time.Parse("15:04:05", at)
	if err != nil {
		panic(err)
	}
	tm = time.Date(2025, 3, 14, tm.Hour(), tm.Minute(), tm.Second(), 0, time.UTC)
	return &protocol.Event{Time: tm, Received: tm, Origin: protocol.Origin{System: system}, Source: protocol.SourceSyslog,
		MsgID: msgid, Text: text, Severity: sev, Parsed: true}
}

// testServer is a console on a loopback port with a test backend.
type testServer struct {
	*Server
	b    *testBackend
	addr string
	log  *logBuffer
}

// startServer starts a console with cfg (its Backend and Logger filled in)
// and closes it at the end of the test, checking that Serve returned
// ErrServerClosed and the secrets were never logged.
func startServer(t *testing.T, cfg Config) *testServer {
	t.Helper()
	b := newBackend()
	if cfg.Backend == nil {
		cfg.Backend = b
	} else {
		b = cfg.Backend.(*testBackend)
	}
	lb := &logBuffer{}
	logger := logrus.New()
	logger.SetOutput(lb)
	logger.SetLevel(logrus.DebugLevel)
	cfg.Logger = logger.WithField("component", "console")
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
		log := lb.String()
		for _, secret := range b.secrets {
			if strings.Contains(log, secret) {
				t.Errorf("the log holds a secret:\n%s", log)
			}
		}
		if t.Failed() {
			t.Logf("server log:\n%s", log)
		}
	})
	return &testServer{Server: s, b: b, addr: l.Addr().String(), log: lb}
}

// waitStats polls the server's Stats until ok holds.
func (ts *testServer) waitStats(t testing.TB, what string, ok func(Stats) bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		st := ts.Stats()
		if ok(st) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s; stats %+v", waitTimeout, what, st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func quietLogger() logrus.FieldLogger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}
