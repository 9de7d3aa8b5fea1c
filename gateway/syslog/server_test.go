package syslog

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/internal/leakcheck"
	"github.com/zbridge/zbridge/internal/peer"
	"github.com/zbridge/zbridge/protocol"
)

// ---- test helpers ----

// recorder is an Appender that keeps what it is given.
type recorder struct {
	mu      sync.Mutex
	evs     []*protocol.Event
	batches []int // size of each Append
	fail    int   // fail this many Appends from now on
	changed chan struct{}
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{}, 1)} }

func (r *recorder) Append(ctx context.Context, evs []*protocol.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail > 0 {
		r.fail--
		return errors.New("store unavailable (test)")
	}
	r.evs = append(r.evs, evs...)
	r.batches = append(r.batches, len(evs))
	select {
	case r.changed <- struct{}{}:
	default:
	}
	return nil
}

func (r *recorder) failNext(n int) {
	r.mu.Lock()
	r.fail = n
	r.mu.Unlock()
}

func (r *recorder) snapshot() ([]*protocol.Event, []int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*protocol.Event(nil), r.evs...), append([]int(nil), r.batches...)
}

// wait returns the events once there are at least n of them.
func (r *recorder) wait(t *testing.T, n int) []*protocol.Event {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		evs, _ := r.snapshot()
		if len(evs) >= n {
			return evs
		}
		select {
		case <-r.changed:
		case <-deadline:
			t.Fatalf("got %d events, want %d: %s", len(evs), n, texts(evs))
		}
	}
}

// texts summarises events for failure messages.
func texts(evs []*protocol.Event) string {
	var b strings.Builder
	for _, ev := range evs {
		fmt.Fprintf(&b, "\n\t%q parsed=%v err=%q", ev.Text, ev.Parsed, ev.ParseError)
	}
	return b.String()
}

// logSink collects the server's log and shows it in the test's output.
type logSink struct {
	t   *testing.T
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	l.t.Logf("log: %s", bytes.TrimSpace(p))
	return len(p), nil
}

func (l *logSink) contains(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Contains(l.buf.String(), s)
}

type testServer struct {
	srv     *Server
	rec     *recorder
	log     *logSink
	tcp     string // address of the TCP (or TLS) listener
	udp     string // address of the UDP listener
	client  *tls.Config
	served  chan error // what Serve and ServePacket returned
	servers int
}

// startServer starts a server with a TCP (or TLS, if tlsOn) listener and a
// UDP listener on loopback. Its cleanup closes it and checks what Serve
// and ServePacket returned.
func startServer(t *testing.T, tlsOn bool, mod func(*Config)) *testServer {
	t.Helper()
	ts := &testServer{rec: newRecorder(), log: &logSink{t: t}, served: make(chan error, 2), servers: 2}
	logger := logrus.New()
	logger.Out = ts.log
	logger.Level = logrus.DebugLevel
	cfg := Config{Appender: ts.rec, Logger: logger}
	if tlsOn {
		cfg.TLSConfig, ts.client = testTLS(t)
	}
	if mod != nil {
		mod(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts.srv = srv
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.tcp, ts.udp = l.Addr().String(), pc.LocalAddr().String()
	go func() { ts.served <- srv.Serve(l) }()
	go func() { ts.served <- srv.ServePacket(pc) }()
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		for range ts.servers {
			if err := <-ts.served; !errors.Is(err, ErrServerClosed) {
				t.Errorf("Serve returned %v, want ErrServerClosed", err)
			}
		}
	})
	return ts
}

// dial connects to the TCP (or TLS) listener.
func (ts *testServer) dial(t *testing.T) net.Conn {
	t.Helper()
	var c net.Conn
	var err error
	if ts.client != nil {
		c, err = tls.Dial("tcp", ts.tcp, ts.client)
	} else {
		c, err = net.Dial("tcp", ts.tcp)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func write(t *testing.T, c net.Conn, s string) {
	t.Helper()
	if _, err := io.WriteString(c, s); err != nil {
		t.Fatal(err)
	}
}

// waitClosed waits for the server to close c.
func waitClosed(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, net.ErrClosed) || isTimeout(err) {
		t.Fatalf("read from a connection the server should close: %d, %v", n, err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// checkWorks shows that the server still takes a message on a new
// connection: want is the number of events expected once it has.
func (ts *testServer) checkWorks(t *testing.T, want int) {
	t.Helper()
	c := ts.dial(t)
	write(t, c, octet("<13>1 - good app - - - still working"))
	evs := ts.rec.wait(t, want)
	if last := evs[len(evs)-1]; last.Text != "still working" || !last.Parsed {
		t.Errorf("last event %q parsed=%v, want the good message", last.Text, last.Parsed)
	}
	c.Close()
}

func octet(msgs ...string) string {
	var b strings.Builder
	for _, m := range msgs {
		b.WriteString(strconv.Itoa(len(m)) + " " + m)
	}
	return b.String()
}

// testTLS returns a server config with a certificate for 127.0.0.1 that a
// fresh CA signed, and a client config that trusts that CA.
func testTLS(t testing.TB) (server, client *tls.Config) {
	t.Helper()
	ca := peer.NewTLSCA(t)
	return &tls.Config{Certificates: []tls.Certificate{ca.ServerPair(t, "127.0.0.1")}},
		&tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"}
}

// ---- tests ----

func TestNewConfig(t *testing.T) {
	serverTLS, _ := testTLS(t)
	logger := logrus.New()
	ok := Config{Appender: newRecorder(), Logger: logger}
	tests := []struct {
		name    string
		mod     func(*Config)
		wantErr string
	}{
		{"defaults", func(*Config) {}, ""},
		{"no appender", func(c *Config) { c.Appender = nil }, "no Appender"},
		{"no logger", func(c *Config) { c.Logger = nil }, "no Logger"},
		{"negative MaxFrame", func(c *Config) { c.MaxFrame = -1 }, "negative"},
		{"MaxFrame too large", func(c *Config) { c.MaxFrame = MaxMaxFrame + 1 }, "above the most allowed"},
		{"negative ReadTimeout", func(c *Config) { c.ReadTimeout = -time.Second }, "negative"},
		{"negative MaxSessionsPerAddr", func(c *Config) { c.MaxSessionsPerAddr = -1 }, "negative"},
		{"negative HandshakeTimeout", func(c *Config) { c.HandshakeTimeout = -time.Second }, "negative"},
		{"Coalesce too long", func(c *Config) { c.Coalesce = MaxCoalesce + 1 }, "above the most allowed"},
		{"Coalesce off", func(c *Config) { c.Coalesce = -1 }, ""},
		{"TLS without certificate", func(c *Config) { c.TLSConfig = &tls.Config{} }, "no certificate"},
		{"TLS 1.1 allowed", func(c *Config) {
			c.TLSConfig = serverTLS.Clone()
			c.TLSConfig.MinVersion = tls.VersionTLS11
		}, "below TLS 1.2"},
		{"TLS", func(c *Config) { c.TLSConfig = serverTLS }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.mod(&cfg)
			srv, err := New(cfg)
			if tt.wantErr != "" {
				if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("New: %v, want ErrConfig about %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c := srv.cfg
			if c.MaxFrame != DefaultMaxFrame || c.MaxSessions != DefaultMaxSessions ||
				c.MaxSessionsPerAddr != DefaultMaxSessionsPerAddr || c.HandshakeTimeout != DefaultHandshakeTimeout ||
				c.ReadTimeout != DefaultReadTimeout || c.BatchSize != DefaultBatchSize || c.Location != time.UTC ||
				c.Coalesce != DefaultCoalesce && tt.name != "Coalesce off" {
				t.Errorf("defaults not applied: %+v", c)
			}
			if c.TLSConfig != nil && (c.TLSConfig == serverTLS || c.TLSConfig.MinVersion != tls.VersionTLS12) {
				t.Errorf("TLS config not cloned with TLS 1.2 minimum")
			}
			srv.Close()
		})
	}
}

func TestServerTransports(t *testing.T) {
	msgs := []string{
		lineLogger5424,
		"<13>1 2026-11-22T02:50:57Z vm app - - - first line\nsecond line", // survives octet counting
		lineLogger3164,
	}
	type want struct {
		text, host string
	}
	wantOctet := []want{{"hello world", "vm"}, {"first line\nsecond line", "vm"}, {"hello 3164", "vm"}}
	tests := []struct {
		name string
		tls  bool
		udp  bool
		send string
		want []want
	}{
		{name: "tcp octet counting", send: octet(msgs...), want: wantOctet},
		{name: "tls octet counting", tls: true, send: octet(msgs...), want: wantOctet},
		{name: "tcp lf", send: lineLogger5424 + "\n" + lineLogger3164 + "\r\n",
			want: []want{{"hello world", "vm"}, {"hello 3164", "vm"}}},
		{name: "tls lf", tls: true, send: lineLogger5424 + "\n" + lineLogger3164 + "\n",
			want: []want{{"hello world", "vm"}, {"hello 3164", "vm"}}},
		{name: "udp", udp: true, want: wantOctet},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leakcheck.Check(t)
			ts := startServer(t, tt.tls, nil)
			if tt.udp {
				c, err := net.Dial("udp", ts.udp)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				for _, m := range msgs {
					write(t, c, m+"\n")
				}
			} else {
				c := ts.dial(t)
				write(t, c, tt.send)
			}
			evs := ts.rec.wait(t, len(tt.want))
			for i, w := range tt.want {
				ev := evs[i]
				if !ev.Parsed || ev.Text != w.text || ev.Origin.Host != w.host || ev.Origin.Addr != "127.0.0.1" ||
					ev.Source != protocol.SourceSyslog || ev.Received.IsZero() {
					t.Errorf("event %d: parsed=%v err=%q text=%q host=%q addr=%q; want text %q host %q from 127.0.0.1",
						i, ev.Parsed, ev.ParseError, ev.Text, ev.Origin.Host, ev.Origin.Addr, w.text, w.host)
				}
			}
			if tt.udp {
				if st := ts.srv.Stats(); st.Datagrams != uint64(len(msgs)) {
					t.Errorf("Datagrams = %d, want %d", st.Datagrams, len(msgs))
				}
			}
		})
	}
}

// TestServerLFSplitsNewline shows why octet counting matters: under LF
// framing a newline inside a message cuts it in two (rsyslog #1165); the
// second half is kept as an unparsed event.
func TestServerLFSplitsNewline(t *testing.T) {
	leakcheck.Check(t)
	ts := startServer(t, false, nil)
	c := ts.dial(t)
	write(t, c, "<13>1 2026-11-22T02:50:57Z vm app - - - first line\nsecond line\n")
	evs := ts.rec.wait(t, 2)
	if evs[0].Text != "first line" || !evs[0].Parsed || evs[1].Text != "second line" || evs[1].Parsed {
		t.Errorf("got %s", texts(evs))
	}
}

func TestServerBatches(t *testing.T) {
	leakcheck.Check(t)
	ts := startServer(t, false, func(c *Config) { c.BatchSize = 64 })
	var msgs []string
	for i := range 1000 {
		msgs = append(msgs, fmt.Sprintf("<13>1 - vm app - - - message %d", i))
	}
	c := ts.dial(t)
	write(t, c, octet(msgs...))
	evs := ts.rec.wait(t, 1000)
	for i, ev := range evs {
		if want := fmt.Sprintf("message %d", i); ev.Text != want {
			t.Fatalf("event %d is %q, want %q", i, ev.Text, want)
		}
	}
	_, batches := ts.rec.snapshot()
	// BatchSize bounds the events parsed as one job; an Append may take
	// several jobs parsed while the one before was appended.
	for _, n := range batches {
		if n > maxAppendEvents {
			t.Errorf("batch of %d events, at most %d allowed", n, maxAppendEvents)
		}
	}
	if len(batches) >= 1000/2 {
		t.Errorf("%d Appends for 1000 messages written at once; want them batched", len(batches))
	}
	t.Logf("1000 messages in %d Appends", len(batches))
	if st := ts.srv.Stats(); st.Frames != 1000 || st.Connections != 1 || st.Bytes != uint64(len(octet(msgs...))) {
		t.Errorf("Stats = %+v", st)
	}
}

func TestServerBadInput(t *testing.T) {
	tests := []struct {
		name   string
		mod    func(*Config)
		run    func(t *testing.T, ts *testServer) // sends and checks; returns when the outcome is visible
		events int                                // events expected before checkWorks
	}{
		{
			name: "garbage lines are kept as unparsed events",
			run: func(t *testing.T, ts *testServer) {
				c := ts.dial(t)
				write(t, c, "this is not syslog\n\x01\x02\x03\n"+lineLogger5424+"\n")
				evs := ts.rec.wait(t, 3)
				if evs[0].Parsed || evs[0].Text != "this is not syslog" || !strings.Contains(evs[0].ParseError, "[col 0]") ||
					evs[0].Facility != protocol.FacUser || evs[0].Severity != protocol.SevNotice || evs[0].Origin.Host != "127.0.0.1" {
					t.Errorf("garbage event: %+v", evs[0])
				}
				if evs[1].Parsed || evs[1].Raw != "\x01\x02\x03" {
					t.Errorf("binary garbage event: %+v", evs[1])
				}
				if !evs[2].Parsed || evs[2].Text != "hello world" {
					t.Errorf("the same connection goes on: %s", texts(evs))
				}
				if st := ts.srv.Stats(); st.ParseFailures != 2 {
					t.Errorf("ParseFailures = %d, want 2", st.ParseFailures)
				}
			},
			events: 3,
		},
		{
			name: "malformed octet count closes the connection",
			run: func(t *testing.T, ts *testServer) {
				c := ts.dial(t)
				write(t, c, octet("<13>1 - vm app - - - before")+"12x garbage")
				waitClosed(t, c)
				evs := ts.rec.wait(t, 2)
				if !evs[0].Parsed || evs[0].Text != "before" {
					t.Errorf("first event: %s", texts(evs[:1]))
				}
				if evs[1].Parsed || evs[1].Raw != "12x garbage" || !strings.Contains(evs[1].ParseError, "framing: malformed octet count") {
					t.Errorf("garbage event: %s", texts(evs[1:]))
				}
				if st := ts.srv.Stats(); st.FramingErrors != 1 {
					t.Errorf("FramingErrors = %d, want 1", st.FramingErrors)
				}
			},
			events: 2,
		},
		{
			name: "oversized octet-counted frame",
			mod:  func(c *Config) { c.MaxFrame = 1000 },
			run: func(t *testing.T, ts *testServer) {
				c := ts.dial(t)
				big := "<13>1 - vm app - - - " + strings.Repeat("x", 2000)
				write(t, c, octet("<13>1 - vm app - - - before", big))
				waitClosed(t, c)
				evs := ts.rec.wait(t, 2)
				if evs[1].Parsed || !strings.Contains(evs[1].ParseError, "frame too large: octet count 2021 exceeds 1000") ||
					len(evs[1].Raw) > 1000 || !strings.HasPrefix(big, evs[1].Raw) {
					t.Errorf("oversize event: parsed=%v err=%q raw of %d bytes", evs[1].Parsed, evs[1].ParseError, len(evs[1].Raw))
				}
				if st := ts.srv.Stats(); st.Oversize != 1 {
					t.Errorf("Oversize = %d, want 1", st.Oversize)
				}
				if !ts.log.contains("frame too large") {
					t.Error("oversize frame not logged")
				}
			},
			events: 2,
		},
		{
			name: "oversized line",
			mod:  func(c *Config) { c.MaxFrame = 1000 },
			run: func(t *testing.T, ts *testServer) {
				c := ts.dial(t)
				big := "<13>1 - vm app - - - " + strings.Repeat("x", 2000)
				write(t, c, big+"\n")
				waitClosed(t, c)
				evs := ts.rec.wait(t, 1)
				if evs[0].Parsed || !strings.Contains(evs[0].ParseError, "line longer than 1000 bytes at offset 0") || evs[0].Raw != big[:1000] {
					t.Errorf("oversize event: parsed=%v err=%q raw of %d bytes", evs[0].Parsed, evs[0].ParseError, len(evs[0].Raw))
				}
			},
			events: 1,
		},
		{
			name: "sender stops mid-frame",
			run: func(t *testing.T, ts *testServer) {
				c := ts.dial(t)
				write(t, c, octet("<13>1 - vm app - - - complete")+"40 <13>1 - vm app - - - cut sh")
				c.(*net.TCPConn).CloseWrite()
				waitClosed(t, c)
				evs := ts.rec.wait(t, 2)
				if !evs[0].Parsed || evs[0].Text != "complete" {
					t.Errorf("complete frame: %s", texts(evs[:1]))
				}
				if evs[1].Parsed || evs[1].Raw != "<13>1 - vm app - - - cut sh" ||
					!strings.Contains(evs[1].ParseError, "stream ended inside a frame") || evs[1].Origin.Host != "vm" {
					t.Errorf("partial frame: %s", texts(evs[1:]))
				}
			},
			events: 2,
		},
		{
			name: "silent sender hits ReadTimeout",
			mod:  func(c *Config) { c.ReadTimeout = 200 * time.Millisecond },
			run: func(t *testing.T, ts *testServer) {
				c := ts.dial(t)
				start := time.Now()
				write(t, c, "<13>1 - vm app - - - no newline yet")
				waitClosed(t, c)
				if d := time.Since(start); d < 150*time.Millisecond {
					t.Errorf("closed after %v, before the read timeout", d)
				}
				evs := ts.rec.wait(t, 1)
				if evs[0].Parsed || evs[0].Raw != "<13>1 - vm app - - - no newline yet" || !strings.Contains(evs[0].ParseError, "i/o timeout") {
					t.Errorf("partial frame: %s", texts(evs))
				}
				if !ts.log.contains("frame not complete 200ms after its first byte") {
					t.Error("timeout not logged")
				}
			},
			events: 1,
		},
		{
			name: "MaxSessions exceeded",
			mod:  func(c *Config) { c.MaxSessions = 1 },
			run: func(t *testing.T, ts *testServer) {
				first := ts.dial(t)
				write(t, first, octet("<13>1 - vm app - - - one"))
				ts.rec.wait(t, 1) // first is being served
				second := ts.dial(t)
				write(t, second, octet("<13>1 - vm app - - - refused"))
				waitClosed(t, second)
				write(t, first, octet("<13>1 - vm app - - - two"))
				evs := ts.rec.wait(t, 2)
				if evs[1].Text != "two" {
					t.Errorf("first connection stopped working: %s", texts(evs))
				}
				st := ts.srv.Stats()
				if st.Refused != 1 || st.Active != 1 || st.Connections != 2 {
					t.Errorf("Stats = %+v; want 2 connections, 1 refused, 1 active", st)
				}
				if !ts.log.contains("connection refused") {
					t.Error("refusal not logged")
				}
				first.Close()
				for ts.srv.Stats().Active != 0 {
					time.Sleep(5 * time.Millisecond)
				}
			},
			events: 2,
		},
		{
			name: "append error closes the connection",
			run: func(t *testing.T, ts *testServer) {
				ts.rec.failNext(1)
				c := ts.dial(t)
				write(t, c, octet("<13>1 - vm app - - - lost"))
				waitClosed(t, c)
				if st := ts.srv.Stats(); st.AppendErrors != 1 {
					t.Errorf("AppendErrors = %d, want 1", st.AppendErrors)
				}
				if !ts.log.contains("append of 1 events failed") {
					t.Error("append error not logged")
				}
			},
			events: 0,
		},
		{
			name: "TLS client offering only TLS 1.1",
			mod: func(c *Config) {
				c.TLSConfig, _ = testTLS(t)
			},
			run: func(t *testing.T, ts *testServer) {
				_, client := testTLS(t)
				client.InsecureSkipVerify = true
				client.MaxVersion = tls.VersionTLS11
				if c, err := tls.Dial("tcp", ts.tcp, client); err == nil {
					c.Close()
					t.Fatal("TLS 1.1 handshake succeeded")
				}
			},
			events: 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leakcheck.Check(t)
			ts := startServer(t, false, tt.mod)
			if ts.srv.cfg.TLSConfig != nil { // trust the server's own certificate
				pool := x509.NewCertPool()
				cert, _ := x509.ParseCertificate(ts.srv.cfg.TLSConfig.Certificates[0].Certificate[0])
				pool.AddCert(cert)
				ts.client = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
			}
			tt.run(t, ts)
			ts.checkWorks(t, tt.events+1) // another connection keeps working
		})
	}
}

func TestServerOnSender(t *testing.T) {
	leakcheck.Check(t)
	type call struct {
		host string
		addr netip.Addr
	}
	var mu sync.Mutex
	var calls []call
	ts := startServer(t, false, func(c *Config) {
		c.OnSender = func(host string, addr netip.Addr) {
			mu.Lock()
			calls = append(calls, call{host, addr})
			mu.Unlock()
		}
	})
	c := ts.dial(t)
	write(t, c, octet("<13>1 - lnx01 app - - - one", "<13>1 - other app - - - two"))
	u, err := net.Dial("udp", ts.udp)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	for _, m := range []string{"<13>1 - lnx02 app - - - a", "<13>1 - lnx02 app - - - b", "<13>1 - lnx03 app - - - c"} {
		write(t, u, m)
	}
	ts.rec.wait(t, 5)
	// A second connection, after the datagrams were appended: one call per
	// connection, none for a datagram (its source address can be forged).
	c2 := ts.dial(t)
	write(t, c2, octet("<13>1 - lnx04 app - - - three"))
	ts.rec.wait(t, 6)
	mu.Lock()
	defer mu.Unlock()
	lo := netip.MustParseAddr("127.0.0.1")
	want := []call{{"lnx01", lo}, {"lnx04", lo}}
	if fmt.Sprint(calls) != fmt.Sprint(want) {
		t.Fatalf("OnSender calls %v, want %v (none for UDP)", calls, want)
	}
}

func TestServerUDPOversize(t *testing.T) {
	leakcheck.Check(t)
	ts := startServer(t, false, func(c *Config) { c.MaxFrame = 1000 })
	u, err := net.Dial("udp", ts.udp)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	big := "<13>1 - vm app - - - " + strings.Repeat("x", 2000)
	write(t, u, big)
	write(t, u, "<13>1 - vm app - - - small\x00")
	evs := ts.rec.wait(t, 2)
	if evs[0].Parsed || evs[0].Raw != big[:1000] || !strings.Contains(evs[0].ParseError, "datagram of 2021 bytes, limit 1000") {
		t.Errorf("oversize datagram: parsed=%v err=%q raw of %d bytes", evs[0].Parsed, evs[0].ParseError, len(evs[0].Raw))
	}
	if !evs[1].Parsed || evs[1].Text != "small" || evs[1].Raw != "<13>1 - vm app - - - small" {
		t.Errorf("next datagram: %s", texts(evs[1:]))
	}
	if st := ts.srv.Stats(); st.Oversize != 1 || st.Datagrams != 2 {
		t.Errorf("Stats = %+v", st)
	}
}

func TestServerShutdown(t *testing.T) {
	for _, tlsOn := range []bool{false, true} {
		t.Run(map[bool]string{false: "tcp", true: "tls"}[tlsOn], func(t *testing.T) {
			leakcheck.Check(t)
			ts := startServer(t, tlsOn, nil)
			var msgs []string
			for i := range 500 {
				msgs = append(msgs, fmt.Sprintf("<13>1 - vm app - - - message %d", i))
			}
			c := ts.dial(t)
			// The frames and the start of one more are on their way when
			// Shutdown is called; the sender keeps the connection open.
			write(t, c, octet(msgs...)+"100 <13>1 - vm app - - - unfinished")
			ts.dial(t) // a connection that sends nothing
			// Both connections are accepted before Shutdown.
			for ts.srv.Stats().Active != 2 {
				time.Sleep(time.Millisecond)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			start := time.Now()
			if err := ts.srv.Shutdown(ctx); err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
			t.Logf("Shutdown took %v", time.Since(start))
			for range 2 {
				if err := <-ts.served; !errors.Is(err, ErrServerClosed) {
					t.Errorf("Serve returned %v, want ErrServerClosed", err)
				}
			}
			ts.servers = 0
			evs, _ := ts.rec.snapshot()
			if len(evs) != 501 {
				t.Fatalf("%d events after Shutdown, want 501", len(evs))
			}
			last := evs[500]
			if last.Parsed || last.Raw != "<13>1 - vm app - - - unfinished" || !strings.Contains(last.ParseError, "server shutting down") {
				t.Errorf("unfinished frame: %s", texts(evs[500:]))
			}
			if st := ts.srv.Stats(); st.Active != 0 {
				t.Errorf("%d connections active after Shutdown", st.Active)
			}
			waitClosed(t, c)
			// After Shutdown nothing new is served.
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			if err := ts.srv.Serve(l); !errors.Is(err, ErrServerClosed) {
				t.Errorf("Serve after Shutdown: %v", err)
			}
			if _, err := l.Accept(); err == nil {
				t.Error("Serve left the listener open")
			}
		})
	}
}

func TestServerShutdownTimeout(t *testing.T) {
	leakcheck.Check(t)
	block := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(block) }) }
	ts := startServer(t, false, func(c *Config) {
		c.Appender = appenderFunc(func(ctx context.Context, _ []*protocol.Event) error {
			select {
			case <-block:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	})
	t.Cleanup(unblock)
	c := ts.dial(t)
	write(t, c, octet("<13>1 - vm app - - - stuck"))
	for ts.srv.Stats().Bytes == 0 {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown with a stuck Appender: %v, want DeadlineExceeded", err)
	}
	// Close cancels the Append and waits; a second Close is harmless.
	if err := ts.srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ts.srv.Close(); err != nil {
		t.Fatal(err)
	}
}

type appenderFunc func(context.Context, []*protocol.Event) error

func (f appenderFunc) Append(ctx context.Context, evs []*protocol.Event) error { return f(ctx, evs) }

// TestServerShutdownBusyConnection: a connection busy in a slow Append when
// Shutdown is called still reads and delivers what the kernel received for
// it meanwhile.
func TestServerShutdownBusyConnection(t *testing.T) {
	leakcheck.Check(t)
	rec := newRecorder()
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	ts := startServer(t, false, func(c *Config) {
		c.Appender = appenderFunc(func(ctx context.Context, evs []*protocol.Event) error {
			select {
			case entered <- struct{}{}:
				<-release // the first Append is slow
			default:
			}
			return rec.Append(ctx, evs)
		})
	})
	ts.rec = rec
	c := ts.dial(t)
	write(t, c, octet("<13>1 - vm app - - - first"))
	<-entered
	var msgs []string
	for i := range 100 {
		msgs = append(msgs, fmt.Sprintf("<13>1 - vm app - - - later %d", i))
	}
	write(t, c, octet(msgs...))
	time.Sleep(20 * time.Millisecond) // in the server's socket buffer by now
	done := make(chan error, 1)
	go func() { done <- ts.srv.Shutdown(context.Background()) }()
	time.Sleep(3 * drainWindow) // longer than the drain window
	once.Do(func() { close(release) })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for range 2 {
		<-ts.served
	}
	ts.servers = 0
	evs, _ := rec.snapshot()
	if len(evs) != 101 || evs[100].Text != "later 99" {
		t.Errorf("got %d events, want 101 ending with \"later 99\"", len(evs))
	}
}
