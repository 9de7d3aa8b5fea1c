package relp

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/internal/leakcheck"
	"github.com/zbridge/zbridge/internal/peer"
	"github.com/zbridge/zbridge/protocol/relp"
)

// recorder is a Sink that keeps what it is given. fail, when set, decides
// the error of each Deliver (by its number, from 1) before it keeps
// anything; block, when set, is waited on in every Deliver; delay is slept
// after keeping the messages, ctx or not (a store's round trip).
type recorder struct {
	fail  func(call int) error
	block chan struct{}
	delay time.Duration

	mu      sync.Mutex // guards the following fields
	calls   int
	batches [][]string
	msgs    []string
	cond    chan struct{} // closed and replaced on every Deliver
}

func newRecorder() *recorder { return &recorder{cond: make(chan struct{})} }

func (r *recorder) Deliver(ctx context.Context, from net.Addr, msgs [][]byte) error {
	if r.block != nil {
		select {
		case <-r.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := r.keep(msgs); err != nil {
		return err
	}
	time.Sleep(r.delay)
	return nil
}

func (r *recorder) keep(msgs [][]byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	defer func() {
		close(r.cond)
		r.cond = make(chan struct{})
	}()
	if r.fail != nil {
		if err := r.fail(r.calls); err != nil {
			return err
		}
	}
	var batch []string
	for _, m := range msgs {
		batch = append(batch, string(m))
	}
	r.batches = append(r.batches, batch)
	r.msgs = append(r.msgs, batch...)
	return nil
}

// wait waits until at least n messages were kept, and returns them all.
func (r *recorder) wait(t testing.TB, n int, timeout time.Duration) []string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		r.mu.Lock()
		msgs, cond := slices.Clone(r.msgs), r.cond
		r.mu.Unlock()
		if len(msgs) >= n {
			return msgs
		}
		select {
		case <-cond:
		case <-deadline:
			t.Fatalf("%d messages after %v, want %d", len(msgs), timeout, n)
		}
	}
}

func (r *recorder) snapshot() (msgs []string, batches [][]string, calls int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.msgs), slices.Clone(r.batches), r.calls
}

// logSink is the servers' log, written to the test log and kept.
type logSink struct {
	t   testing.TB
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	if !testing.Verbose() {
		return len(p), nil
	}
	l.t.Logf("log: %s", bytes.TrimSpace(p))
	return len(p), nil
}

func (l *logSink) contains(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Contains(l.buf.String(), s)
}

type testServer struct {
	srv    *Server
	rec    *recorder
	log    *logSink
	addr   string
	served chan error
}

// startServer starts a server on a loopback port; its cleanup closes it
// and checks what Serve returned. mod may change the config.
func startServer(t testing.TB, mod func(*Config)) *testServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveOn(t, l, mod)
}

func serveOn(t testing.TB, l net.Listener, mod func(*Config)) *testServer {
	t.Helper()
	ts := &testServer{rec: newRecorder(), log: &logSink{t: t}, addr: l.Addr().String(), served: make(chan error, 1)}
	logger := logrus.New()
	logger.SetOutput(ts.log)
	logger.SetLevel(logrus.DebugLevel)
	cfg := Config{Sink: ts.rec, Logger: logger}
	if mod != nil {
		mod(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts.srv = srv
	go func() { ts.served <- srv.Serve(l) }()
	t.Cleanup(func() { ts.close(t) })
	return ts
}

// close closes the server (if not yet) and checks Serve's result once.
func (ts *testServer) close(t testing.TB) {
	ts.srv.Close()
	select {
	case err, ok := <-ts.served:
		if ok && !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve: %v, want ErrServerClosed", err)
		}
		if ok {
			close(ts.served)
		}
	case <-time.After(10 * time.Second):
		t.Error("Serve did not return after Close")
	}
}

// client is a RELP client for the tests, written with the codec.
type client struct {
	t    testing.TB
	c    net.Conn
	rd   *relp.Reader
	txnr int
	wbuf []byte
}

func dial(t testing.TB, addr string, tc *tls.Config) *client {
	t.Helper()
	var c net.Conn
	var err error
	if tc != nil {
		c, err = tls.Dial("tcp", addr, tc)
	} else {
		c, err = net.Dial("tcp", addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return &client{t: t, c: c, rd: relp.NewReader(bufio.NewReader(c), 1<<20), txnr: 1}
}

// queue adds a frame with the next txnr to the write buffer.
func (c *client) queue(cmd string, data []byte) int {
	txnr := c.txnr
	c.wbuf = relp.AppendFrame(c.wbuf, relp.Frame{Txnr: txnr, Command: cmd, Data: data})
	c.txnr = relp.NextTxnr(c.txnr)
	return txnr
}

func (c *client) flush() {
	c.t.Helper()
	if _, err := c.c.Write(c.wbuf); err != nil {
		c.t.Fatal(err)
	}
	c.wbuf = c.wbuf[:0]
}

func (c *client) send(cmd string, data []byte) int {
	txnr := c.queue(cmd, data)
	c.flush()
	return txnr
}

// read reads a frame, copying its data.
func (c *client) read() (relp.Frame, error) {
	f, err := c.rd.ReadFrame()
	f.Data = slices.Clone(f.Data)
	return f, err
}

// rsp reads a frame that must be the rsp to txnr, and parses it.
func (c *client) rsp(txnr int) relp.Response {
	c.t.Helper()
	f, err := c.read()
	if err != nil {
		c.t.Fatalf("waiting for rsp %d: %v", txnr, err)
	}
	if f.Command != relp.CmdRsp || f.Txnr != txnr {
		c.t.Fatalf("got %d %s %q, want rsp %d", f.Txnr, f.Command, f.Data, txnr)
	}
	r, err := relp.ParseResponse(f.Data)
	if err != nil {
		c.t.Fatal(err)
	}
	return r
}

// serverClose reads frames until serverclose and then EOF, and returns
// serverclose's data. It fails if a rsp comes first.
func (c *client) serverClose() string {
	c.t.Helper()
	f, err := c.read()
	if err != nil || f.Command != relp.CmdServerClose || f.Txnr != 0 {
		c.t.Fatalf("got %d %s %q (%v), want serverclose", f.Txnr, f.Command, f.Data, err)
	}
	if _, err := c.read(); err != io.EOF && !errors.Is(err, net.ErrClosed) && !isReset(err) {
		c.t.Fatalf("after serverclose: %v, want EOF", err)
	}
	return string(f.Data)
}

func isReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "connection reset") || errors.Is(err, relp.ErrTruncated))
}

const librelpOffers = "relp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\ncommands=syslog"

// open opens the session as librelp 1.11 does and checks the answer.
func (c *client) open() {
	c.t.Helper()
	txnr := c.send(relp.CmdOpen, []byte(librelpOffers))
	r := c.rsp(txnr)
	if r.Code != relp.StatusOK {
		c.t.Fatalf("open: %d %s", r.Code, r.Text)
	}
}

func TestNewConfig(t *testing.T) {
	sink := newRecorder()
	log := logrus.New()
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"no sink", Config{Logger: log}},
		{"no logger", Config{Sink: sink}},
		{"negative window", Config{Sink: sink, Logger: log, Window: -1}},
		{"huge frame", Config{Sink: sink, Logger: log, MaxFrame: 1 << 30}},
		{"TLS without certificate", Config{Sink: sink, Logger: log, TLSConfig: &tls.Config{}}},
		{"TLS 1.1", Config{Sink: sink, Logger: log, TLSConfig: &tls.Config{MinVersion: tls.VersionTLS11, Certificates: []tls.Certificate{{}}}}},
	} {
		if _, err := New(tc.cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v, want ErrConfig", tc.name, err)
		}
	}
	s, err := New(Config{Sink: sink, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if s.cfg.Window != DefaultWindow || s.cfg.MaxFrame != DefaultMaxFrame || s.cfg.IdleTimeout != DefaultIdleTimeout {
		t.Errorf("defaults not filled in: %+v", s.cfg)
	}
	s.Close()
	s.Close() // twice is fine
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	if err := s.Serve(l); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve after Close: %v", err)
	}
}

func TestOpen(t *testing.T) {
	leakcheck.Check(t)
	ts := startServer(t, nil)
	tests := []struct {
		name    string
		offers  string
		code    int
		version string
		text    string
	}{
		{"librelp 1.11", librelpOffers, 200, "0", "OK"},
		{"version 1", "relp_version=1\ncommands=syslog", 200, "1", "OK"},
		{"version 2 gets 1", "relp_version=2\ncommands=syslog,eventlog", 200, "1", "OK"},
		{"spec form", "\nrelp_version=1\ncommands=syslog\n", 200, "1", "OK"},
		{"no version", "commands=syslog", 500, "", "relp_version offer missing"},
		{"bad version", "relp_version=1a\ncommands=syslog", 500, "", "relp_version 1a is not a version number"},
		{"negative version", "relp_version=-1\ncommands=syslog", 500, "", "relp_version -1 is not a version number"},
		{"no syslog", "relp_version=0\ncommands=eventlog", 500, "", "required command syslog not offered by client"},
		{"no commands", "relp_version=0", 500, "", "required command syslog not offered by client"},
		{"bad offers", "=0", 500, "", "malformed offers"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, ts.addr, nil)
			txnr := c.send(relp.CmdOpen, []byte(tc.offers))
			r := c.rsp(txnr)
			if r.Code != tc.code || r.Text != tc.text {
				t.Fatalf("rsp %d %q, want %d %q", r.Code, r.Text, tc.code, tc.text)
			}
			if tc.code != 200 {
				if got := c.serverClose(); got != "protocol error" {
					t.Errorf("serverclose %q", got)
				}
				return
			}
			offers, err := relp.ParseOffers(r.Body)
			if err != nil {
				t.Fatal(err)
			}
			want := []relp.Offer{
				{Name: "relp_version", Values: []string{tc.version}},
				{Name: "relp_software", Values: []string{"zbridge"}},
				{Name: "commands", Values: []string{"syslog"}},
			}
			if fmt.Sprint(offers) != fmt.Sprint(want) {
				t.Errorf("offers %v, want %v", offers, want)
			}
			// A second open is refused.
			txnr = c.send(relp.CmdOpen, []byte(tc.offers))
			if r := c.rsp(txnr); r.Code != 500 || r.Text != "protocol error: connection already open" {
				t.Errorf("second open: %d %q", r.Code, r.Text)
			}
			c.serverClose()
		})
	}
	if st := ts.srv.Stats(); st.OpenRefused != 6+4 || st.ProtocolErrors != st.OpenRefused {
		t.Errorf("stats %+v", st)
	}
}

// TestSession runs a whole session: open, a window of messages in one
// write (one Deliver), messages one by one, close.
func TestSession(t *testing.T) {
	leakcheck.Check(t)
	ts := startServer(t, func(c *Config) { c.Window = 8 })
	c := dial(t, ts.addr, nil)
	c.open()
	var want []string
	var txnrs []int
	for i := range 20 {
		m := fmt.Sprintf("<13>1 - host app - - - message %d\nwith a newline\n", i)
		want = append(want, m)
		txnrs = append(txnrs, c.queue(relp.CmdSyslog, []byte(m)))
	}
	c.flush()
	for _, txnr := range txnrs {
		if r := c.rsp(txnr); r.Code != 200 || r.Text != "OK" {
			t.Fatalf("rsp %d: %+v", txnr, r)
		}
	}
	got, batches, _ := ts.rec.snapshot()
	if !slices.Equal(got, want) {
		t.Fatalf("delivered %q\nwant %q", got, want)
	}
	for _, b := range batches {
		if len(b) > 8 {
			t.Errorf("a batch of %d messages, Window is 8", len(b))
		}
	}
	// Written at once, the 20 frames arrive in one or few reads: the
	// server takes what is buffered, up to Window, in one Deliver.
	if len(batches) > 6 {
		t.Errorf("%d batches for 20 messages written at once, window 8", len(batches))
	}
	txnr := c.send(relp.CmdSyslog, nil) // an empty message is a message
	if r := c.rsp(txnr); r.Code != 200 {
		t.Fatalf("empty message: %+v", r)
	}
	txnr = c.send(relp.CmdClose, nil)
	if r := c.rsp(txnr); r.Code != 200 || r.Text != "OK" {
		t.Fatalf("close: %+v", r)
	}
	if got := c.serverClose(); got != "closing" {
		t.Errorf("serverclose %q", got)
	}
	st := ts.srv.Stats()
	if st.Messages != 21 || st.Frames != 23 || st.Sessions != 1 || st.DeliverErrors != 0 || st.ProtocolErrors != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestCloseAfterBatch: a close behind messages in the same write is
// answered after them.
func TestCloseAfterBatch(t *testing.T) {
	leakcheck.Check(t)
	ts := startServer(t, nil)
	c := dial(t, ts.addr, nil)
	c.open()
	a := c.queue(relp.CmdSyslog, []byte("a"))
	b := c.queue(relp.CmdSyslog, []byte("b"))
	cl := c.queue(relp.CmdClose, nil)
	c.flush()
	c.rsp(a)
	c.rsp(b)
	if r := c.rsp(cl); r.Code != 200 {
		t.Fatalf("close %+v", r)
	}
	c.serverClose()
	if got, _, _ := ts.rec.snapshot(); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("delivered %q", got)
	}
}

// TestBadInput: what the server answers to malformed frames and protocol
// errors. Messages before the bad frame are delivered and acknowledged.
func TestBadInput(t *testing.T) {
	leakcheck.Check(t)
	ts := startServer(t, func(c *Config) { c.MaxFrame = 100 })
	tests := []struct {
		name   string
		open   bool
		raw    string // after two good messages (txnr 2 and 3) when open
		rsp    string // the rsp expected for the bad frame, if any
		reason string // serverclose's data
		log    string
	}{
		{"syslog before open", false, "1 syslog 1 x\n", "500 session not open: send open first", "protocol error", "syslog before open"},
		{"garbage", false, "GET / HTTP/1.1\r\n\r\n", "", "malformed frame", "TXNR: 'G' is not a digit"},
		{"tls to plain", false, "\x16\x03\x01\x00\xa5\x01", "", "malformed frame", "is not a digit"},
		{"bad txnr", true, "4x syslog 1 x\n", "", "malformed frame", "at offset"},
		{"datalen mismatch", true, "4 syslog 2 abc\n", "", "malformed frame", "want LF"},
		{"missing trailer", true, "4 syslog 3 abc5 syslog 1 x\n", "", "malformed frame", "want LF"},
		{"too big", true, "4 syslog 101 ", "", "frame too large", "DATALEN 101, limit 100"},
		{"negative datalen", true, "4 syslog -3 abc\n", "", "malformed frame", "DATALEN: '-'"},
		{"txnr out of sequence", true, "7 syslog 1 x\n", "", "protocol error", "want txnr 4"},
		{"txnr repeated", true, "3 syslog 1 x\n", "", "protocol error", "want txnr 4"},
		{"hint from client", true, "0 syslog 1 x\n", "", "protocol error", "txnr 0"},
		{"unknown command", true, "4 starttls 0\n", "500 command not supported: starttls", "protocol error", "did not offer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before, _, _ := ts.rec.snapshot()
			c := dial(t, ts.addr, nil)
			var good []int
			if tc.open {
				c.open()
				good = append(good, c.queue(relp.CmdSyslog, []byte(tc.name+" 1")), c.queue(relp.CmdSyslog, []byte(tc.name+" 2")))
			}
			c.wbuf = append(c.wbuf, tc.raw...)
			c.flush()
			for _, txnr := range good {
				if r := c.rsp(txnr); r.Code != 200 {
					t.Fatalf("good message %d: %+v", txnr, r)
				}
			}
			if tc.rsp != "" {
				f, err := c.read()
				if err != nil || f.Command != relp.CmdRsp || string(f.Data) != tc.rsp {
					t.Fatalf("got %+v %q (%v), want rsp %q", f, f.Data, err, tc.rsp)
				}
			}
			if got := c.serverClose(); got != tc.reason {
				t.Errorf("serverclose %q, want %q", got, tc.reason)
			}
			if !ts.log.contains(tc.log) {
				t.Errorf("log lacks %q", tc.log)
			}
			after, _, _ := ts.rec.snapshot()
			if len(after)-len(before) != len(good) {
				t.Errorf("%d messages delivered, want %d", len(after)-len(before), len(good))
			}
		})
	}
	if st := ts.srv.Stats(); st.ProtocolErrors != uint64(len(tests)) {
		t.Errorf("ProtocolErrors %d, want %d", st.ProtocolErrors, len(tests))
	}
}

// TestDeliverError: when the Sink fails, the messages are not
// acknowledged; the session ends with serverclose; the client resends on
// a new session and nothing is lost.
func TestDeliverError(t *testing.T) {
	leakcheck.Check(t)
	ts := startServer(t, nil)
	ts.rec.fail = func(call int) error {
		if call == 1 {
			return errors.New("store unavailable")
		}
		return nil
	}
	c := dial(t, ts.addr, nil)
	c.open()
	c.queue(relp.CmdSyslog, []byte("one"))
	c.queue(relp.CmdSyslog, []byte("two"))
	c.flush()
	if got := c.serverClose(); got != "delivery failed, send again" {
		t.Errorf("serverclose %q", got)
	}
	if !ts.log.contains("store unavailable") {
		t.Error("the Sink's error is not logged")
	}
	// As librelp does: a new session, the unacknowledged messages again.
	c = dial(t, ts.addr, nil)
	c.open()
	a := c.queue(relp.CmdSyslog, []byte("one"))
	b := c.queue(relp.CmdSyslog, []byte("two"))
	c.flush()
	c.rsp(a)
	c.rsp(b)
	if got, _, _ := ts.rec.snapshot(); !slices.Equal(got, []string{"one", "two"}) {
		t.Errorf("delivered %q", got)
	}
	if st := ts.srv.Stats(); st.DeliverErrors != 1 || st.Messages != 2 {
		t.Errorf("stats %+v", st)
	}
}

func TestMaxSessions(t *testing.T) {
	leakcheck.Check(t)
	ts := startServer(t, func(c *Config) { c.MaxSessions = 1 })
	c1 := dial(t, ts.addr, nil)
	c1.open()
	c2 := dial(t, ts.addr, nil)
	if got := c2.serverClose(); !strings.Contains(got, "busy") {
		t.Errorf("refused with %q", got)
	}
	txnr := c1.send(relp.CmdSyslog, []byte("still served"))
	c1.rsp(txnr)
	if st := ts.srv.Stats(); st.Refused != 1 || st.Active != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestMaxSessionsTLSSilent: a connection refused over TLS that never
// sends its ClientHello is closed after refuseTimeout (the serverclose
// hint's write makes the handshake, which reads), and does not hold
// Shutdown.
func TestMaxSessionsTLSSilent(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out a TLS refusal: not in -short")
	}
	leakcheck.Check(t)
	ca := newTestCA(t, "zbridge-region")
	ts := startServer(t, func(c *Config) {
		c.TLSConfig = &tls.Config{Certificates: []tls.Certificate{ca.server}}
		c.MaxSessions = 1
	})
	dial(t, ts.addr, &tls.Config{RootCAs: ca.pool, ServerName: "zbridge-region"}).open()
	silent, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { silent.Close() })
	silent.SetReadDeadline(time.Now().Add(time.Minute)) // a hang check, far past refuseTimeout
	if _, err := io.Copy(io.Discard, silent); err != nil && !isReset(err) {
		t.Fatalf("the refused connection was not closed: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

func TestIdleTimeout(t *testing.T) {
	leakcheck.Check(t)
	ts := startServer(t, func(c *Config) { c.IdleTimeout = 100 * time.Millisecond })
	c := dial(t, ts.addr, nil)
	c.open()
	if got := c.serverClose(); got != "idle timeout" {
		t.Errorf("serverclose %q", got)
	}
	// A frame trickled byte by byte is bounded too.
	c = dial(t, ts.addr, nil)
	for _, b := range []byte("1 open 30 relp_version=0") {
		c.c.Write([]byte{b})
		time.Sleep(10 * time.Millisecond)
	}
	if got := c.serverClose(); got != "idle timeout" {
		t.Errorf("trickle: serverclose %q", got)
	}
}

// TestShutdownWaitsForDeliver: Shutdown lets the batch in Deliver finish,
// answers it, then sends serverclose; a session waiting for frames gets
// serverclose at once.
func TestShutdownWaitsForDeliver(t *testing.T) {
	leakcheck.Check(t)
	ts := startServer(t, nil)
	ts.rec.block = make(chan struct{})
	busy := dial(t, ts.addr, nil)
	busy.open()
	idle := dial(t, ts.addr, nil)
	idle.open()
	txnr := busy.send(relp.CmdSyslog, []byte("in flight"))
	// Wait until the Deliver is in progress.
	for deadline := time.Now().Add(5 * time.Second); ts.srv.Stats().Frames < 3; {
		if time.Now().After(deadline) {
			t.Fatal("the message did not arrive")
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	shut := make(chan error, 1)
	go func() { shut <- ts.srv.Shutdown(context.Background()) }()
	if got := idle.serverClose(); got != "server shutting down" {
		t.Errorf("idle session: serverclose %q", got)
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v while a Deliver was in progress", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(ts.rec.block)
	if r := busy.rsp(txnr); r.Code != 200 {
		t.Errorf("in-flight message: %+v", r)
	}
	if got := busy.serverClose(); got != "server shutting down" {
		t.Errorf("busy session: serverclose %q", got)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if _, err := net.Dial("tcp", ts.addr); err == nil {
		t.Error("still accepting after Shutdown")
	}
}

// TestShutdownTimeoutThenClose: a Deliver that does not end holds
// Shutdown until its ctx ends; Close then cancels the Deliver, whose
// messages are not acknowledged.
func TestShutdownTimeoutThenClose(t *testing.T) {
	leakcheck.Check(t)
	ts := startServer(t, nil)
	ts.rec.block = make(chan struct{}) // never closed
	c := dial(t, ts.addr, nil)
	c.open()
	c.send(relp.CmdSyslog, []byte("stuck"))
	for ts.srv.Stats().Frames < 2 {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v, want DeadlineExceeded", err)
	}
	ts.close(t)
	if f, err := c.read(); err == nil {
		t.Errorf("after Close the client read %d %s %q", f.Txnr, f.Command, f.Data)
	}
	if st := ts.srv.Stats(); st.Messages != 0 || st.DeliverErrors != 0 {
		t.Errorf("stats %+v", st)
	}
}

// testCA is a certificate authority and a server certificate it signed
// for serverName and 127.0.0.1, the CA also as a PEM file (for rsyslog).
type testCA struct {
	pool   *x509.CertPool
	server tls.Certificate
	caFile string
}

func newTestCA(t testing.TB, serverName string) *testCA {
	t.Helper()
	ca := peer.NewTLSCA(t)
	return &testCA{pool: ca.Pool(), server: ca.ServerPair(t, serverName, "127.0.0.1"), caFile: ca.File}
}

// TestTLSGoClient runs a session over TLS with the Go client.
func TestTLSGoClient(t *testing.T) {
	leakcheck.Check(t)
	ca := newTestCA(t, "zbridge-region")
	ts := startServer(t, func(c *Config) {
		c.TLSConfig = &tls.Config{Certificates: []tls.Certificate{ca.server}}
	})
	c := dial(t, ts.addr, &tls.Config{RootCAs: ca.pool, ServerName: "zbridge-region"})
	c.open()
	txnr := c.send(relp.CmdSyslog, []byte("<13>1 - h a - - - over TLS"))
	if r := c.rsp(txnr); r.Code != 200 {
		t.Fatalf("%+v", r)
	}
	if got, _, _ := ts.rec.snapshot(); !slices.Equal(got, []string{"<13>1 - h a - - - over TLS"}) {
		t.Errorf("delivered %q", got)
	}
	// Plain RELP to the TLS port is not a TLS handshake.
	p := dial(t, ts.addr, nil)
	p.c.Write([]byte("1 open 30 relp_version=0\ncommands=syslog\n"))
	if _, err := p.read(); err == nil {
		t.Error("plain RELP answered on the TLS port")
	}
}
