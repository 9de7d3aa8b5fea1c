package session_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/gateway/session"
	"github.com/zbridge/zbridge/gateway/store/memstore"
	"github.com/zbridge/zbridge/internal/leakcheck"
	"github.com/zbridge/zbridge/protocol"
)

// waitTimeout bounds every wait for something the server should do soon. It
// is generous so that a loaded machine running -race does not fail tests;
// the timeouts under test are configured short instead.
const waitTimeout = 20 * time.Second

// echoHandler answers request type "echo" with a reply carrying the
// request's message, and any other type with unknown-type.
type echoHandler struct{}

func (echoHandler) Request(s *session.Session, f *protocol.Frame) *protocol.Frame {
	switch f.Type {
	case "echo":
		return &protocol.Frame{Message: f.Message}
	case "flood": // writes Message bytes of notices at once, then replies
		n, err := strconv.Atoi(f.Message)
		if err != nil {
			return protocol.Reply(0, &protocol.Error{Code: protocol.ErrCodeBadRequest, Message: err.Error()})
		}
		if err := s.Write(notices(n)); err != nil {
			return nil
		}
		return &protocol.Frame{Message: "flooded"}
	}
	return protocol.Reply(0, &protocol.Error{Code: protocol.ErrCodeUnknownType, Message: "only echo"})
}

// staticAuth accepts the clients it lists with their secrets. Its error does
// not name the secret.
type staticAuth map[string]string

func (a staticAuth) Authenticate(ctx context.Context, name, secret string) error {
	if want, ok := a[name]; ok && want == secret {
		return nil
	}
	return errors.New("unknown client or wrong secret")
}

func discardLogger() logrus.FieldLogger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}

// testServer is a session server serving on loopback.
type testServer struct {
	srv    *session.Server
	addr   string
	served chan error

	once     sync.Once
	serveErr error
}

// startServer starts a server with cfg (Name and Logger filled in when
// unset) and the echo handler; cleanup closes it and checks that Serve
// returned ErrServerClosed.
func startServer(t *testing.T, cfg session.Config) *testServer {
	t.Helper()
	return startServerWith(t, cfg, echoHandler{})
}

// startServerWith is startServer with handler h.
func startServerWith(t *testing.T, cfg session.Config, h session.Handler) *testServer {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "test"
	}
	if cfg.Logger == nil {
		cfg.Logger = discardLogger()
	}
	srv, err := session.NewServer(cfg, h)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{srv: srv, addr: ln.Addr().String(), served: make(chan error, 1)}
	go func() { ts.served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := ts.serveResult(); !errors.Is(err, session.ErrServerClosed) {
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

// rawConn is a client connection that reads and writes frames itself, so
// tests see exactly what is on the wire.
type rawConn struct {
	t   *testing.T
	nc  net.Conn
	r   *protocol.Reader
	req uint64
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, waitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawConn{t: t, nc: nc, r: protocol.NewReader(nc, 0)}
}

func (c *rawConn) write(s string) {
	c.t.Helper()
	c.nc.SetWriteDeadline(time.Now().Add(waitTimeout))
	if _, err := io.WriteString(c.nc, s); err != nil {
		c.t.Fatalf("write: %v", err)
	}
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
	c.write(string(b))
	return f.Req
}

// next reads the next frame as it is.
func (c *rawConn) next() protocol.Frame {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(waitTimeout))
	var f protocol.Frame
	if err := c.r.Next(&f); err != nil {
		c.t.Fatalf("reading a frame: %v", err)
	}
	return f
}

// nextNotHeartbeat reads the next frame that is not a server heartbeat,
// answering heartbeats on the way.
func (c *rawConn) nextNotHeartbeat() protocol.Frame {
	c.t.Helper()
	for {
		f := c.next()
		if f.Type != protocol.TypeHeartbeat {
			return f
		}
		c.send(protocol.Reply(f.Req, nil))
	}
}

// expectClosed checks that the server closed the connection: the next read
// ends (EOF, or a reset when the server closed with input unread) with no
// frame.
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

// keepAliveReq numbers keepAlive's heartbeats, apart from other requests.
const keepAliveReq = 1 << 20

// keepAlive sends a heartbeat every 50ms from a goroutine, so that an idle
// timeout does not end c, until stop is called (by cleanup at the latest).
// echo skips the replies.
func (c *rawConn) keepAlive() (stop func()) {
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for req := uint64(keepAliveReq); ; req++ {
			b, _ := protocol.AppendFrame(nil, &protocol.Frame{Type: protocol.TypeHeartbeat, Req: req})
			if _, err := c.nc.Write(b); err != nil {
				return
			}
			select {
			case <-quit:
				return
			case <-tick.C:
			}
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { close(quit); <-done }) }
	c.t.Cleanup(stop)
	return stop
}

// expectClosedAfterBye is expectClosed allowing a bye with reason first:
// for Close, which may or may not get to send it.
func (c *rawConn) expectClosedAfterBye(reason string) {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(waitTimeout))
	var f protocol.Frame
	err := c.r.Next(&f)
	if err == nil && f.Type == protocol.TypeBye && f.Reason == reason {
		err = c.r.Next(&f)
	}
	switch {
	case err == nil:
		c.t.Fatalf("got %+v, want the connection closed", f)
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
	default:
		c.t.Fatalf("read error %v, want the connection closed", err)
	}
}

// echo sends an echo request and checks its reply.
func (c *rawConn) echo(msg string) {
	c.t.Helper()
	req := c.send(&protocol.Frame{Type: "echo", Message: msg})
	f := c.nextNotHeartbeat()
	for f.Type == protocol.TypeReply && f.Req >= keepAliveReq {
		f = c.nextNotHeartbeat()
	}
	if f.Type != protocol.TypeReply || f.Req != req || f.Error != nil || f.Message != msg {
		c.t.Fatalf("echo %q: got %+v (error %+v), want a reply req %d with the message", msg, f, f.Error, req)
	}
}

func logonFrame(client string) *protocol.Frame {
	return &protocol.Frame{Type: protocol.TypeLogon, Client: client, Version: protocol.Version}
}

// logon connects and logs on with f (logonFrame(client) if nil), and
// returns the connection and the accept frame.
func logon(t *testing.T, addr string, f *protocol.Frame) (*rawConn, protocol.Frame) {
	t.Helper()
	if f == nil {
		f = logonFrame("tester")
	}
	c := dialRaw(t, addr)
	req := c.send(f)
	a := c.next()
	if a.Type != protocol.TypeAccept || a.Req != req {
		t.Fatalf("logon: got %+v, want accept req %d", a, req)
	}
	return c, a
}

// checkServing checks that a new client can log on and be answered.
func checkServing(t *testing.T, addr string) {
	t.Helper()
	c, _ := logon(t, addr, nil)
	c.echo("still serving")
	c.nc.Close()
}

func TestLogonRefused(t *testing.T) {
	t.Parallel() // its cases wait for timeouts; each has a server of its own
	auth := staticAuth{"ops": "good-secret"}
	tests := []struct {
		name    string
		cfg     session.Config
		input   string // written after connecting; "" writes nothing
		reason  string
		req     uint64
		message string // a substring of the refusal's message
	}{
		{name: "garbage", input: "hello there\n", reason: protocol.RefuseBadRequest, message: "not a valid logon"},
		{name: "not JSON object", input: "[1,2]\n", reason: protocol.RefuseBadRequest},
		{name: "no type", input: `{"req":1,"client":"ops"}` + "\n", reason: protocol.RefuseBadRequest},
		{name: "first frame not logon", input: `{"type":"heartbeat","req":7}` + "\n", reason: protocol.RefuseBadRequest, req: 7, message: "heartbeat"},
		{name: "subscribe first", input: `{"type":"subscribe","req":3}` + "\n", reason: protocol.RefuseBadRequest, req: 3},
		{name: "no logon in time", cfg: session.Config{LogonTimeout: 300 * time.Millisecond}, reason: protocol.RefuseBadRequest, message: "no logon within"},
		{name: "logon too large", cfg: session.Config{MaxFrame: 256},
			input:  `{"type":"logon","req":1,"client":"` + strings.Repeat("c", 300) + `","version":1}` + "\n",
			reason: protocol.RefuseBadRequest},
		{name: "version 2", input: `{"type":"logon","req":4,"client":"ops","version":2}` + "\n", reason: protocol.RefuseVersion, req: 4, message: "version 2"},
		{name: "no version", input: `{"type":"logon","req":4,"client":"ops"}` + "\n", reason: protocol.RefuseVersion, req: 4},
		{name: "no client name", input: `{"type":"logon","req":2,"version":1}` + "\n", reason: protocol.RefuseBadRequest, req: 2, message: "client name"},
		{name: "too many options", input: `{"type":"logon","req":2,"client":"ops","version":1,"options":{` +
			strings.Repeat(`"k":"v",`, protocol.MaxOptions) + `"k":"v"}}` + "\n", reason: protocol.RefuseBadRequest, message: "more than 16 options"},
		{name: "wrong secret", cfg: session.Config{Auth: auth},
			input:  `{"type":"logon","req":5,"client":"ops","secret":"bad-secret","version":1}` + "\n",
			reason: protocol.RefuseAuth, req: 5},
		{name: "unknown client", cfg: session.Config{Auth: auth},
			input:  `{"type":"logon","req":5,"client":"nobody","secret":"good-secret","version":1}` + "\n",
			reason: protocol.RefuseAuth, req: 5},
		{name: "no secret", cfg: session.Config{Auth: auth},
			input:  `{"type":"logon","req":5,"client":"ops","version":1}` + "\n",
			reason: protocol.RefuseAuth, req: 5},
	}
	var authMessages []string
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, tt.cfg)
			c := dialRaw(t, ts.addr)
			if tt.input != "" {
				c.write(tt.input)
			}
			f := c.next()
			if f.Type != protocol.TypeRefuse || f.Reason != tt.reason || f.Req != tt.req {
				t.Fatalf("got %+v, want refuse reason %q req %d", f, tt.reason, tt.req)
			}
			if f.Message == "" || !strings.Contains(f.Message, tt.message) {
				t.Errorf("message %q, want one saying %q", f.Message, tt.message)
			}
			if f.RetryAfter != 0 {
				t.Errorf("retry_after %d on a %s refusal", f.RetryAfter, f.Reason)
			}
			if f.Reason == protocol.RefuseAuth {
				authMessages = append(authMessages, f.Message)
				for _, leak := range []string{"ops", "nobody", "good-secret", "bad-secret"} {
					if strings.Contains(f.Message, leak) {
						t.Errorf("auth refusal %q reveals %q", f.Message, leak)
					}
				}
			}
			c.expectClosed()
			if got := ts.srv.Stats().Refused[tt.reason]; got != 1 {
				t.Errorf("Stats().Refused[%q] = %d, want 1", tt.reason, got)
			}
			if tt.cfg.Auth != nil {
				fr := logonFrame("ops")
				fr.Secret = "good-secret"
				c, _ := logon(t, ts.addr, fr)
				c.echo("good credentials work")
			} else {
				checkServing(t, ts.addr)
			}
		})
	}
	// The auth refusal must not say which part was wrong.
	for _, m := range authMessages[1:] {
		if m != authMessages[0] {
			t.Errorf("auth refusals differ: %q and %q", authMessages[0], m)
		}
	}
}

func TestLogonBusy(t *testing.T) {
	ts := startServer(t, session.Config{MaxSessions: 1, RetryAfter: 1500 * time.Millisecond})
	first, _ := logon(t, ts.addr, nil)

	c := dialRaw(t, ts.addr)
	req := c.send(logonFrame("second"))
	f := c.next()
	if f.Type != protocol.TypeRefuse || f.Reason != protocol.RefuseBusy || f.Req != req {
		t.Fatalf("got %+v, want refuse busy req %d", f, req)
	}
	if f.RetryAfter != 2 { // 1.5s rounded up to whole seconds
		t.Errorf("retry_after = %d, want 2", f.RetryAfter)
	}
	c.expectClosed()
	first.echo("the first session is unaffected")

	// Once the first session ends, there is room again.
	first.nc.Close()
	waitFor(t, "the first session to end", func() bool { return ts.srv.Stats().Active == 0 })
	checkServing(t, ts.addr)
	if st := ts.srv.Stats(); st.Refused[protocol.RefuseBusy] != 1 || st.Accepted != 2 {
		t.Errorf("Stats() = %+v, want 1 busy refusal and 2 accepted", st)
	}
}

func TestAccept(t *testing.T) {
	ts := startServer(t, session.Config{Region: "REG1", IdleTimeout: 7 * time.Second,
		Lifetime: time.Hour, MaxFrame: 4096})
	c, a := logon(t, ts.addr, nil)
	if a.Version != protocol.Version {
		t.Errorf("accept version %d, want %d", a.Version, protocol.Version)
	}
	if !strings.Contains(a.Session, "REG1") || !strings.Contains(a.Session, "test") {
		t.Errorf("session ID %q does not name the region and server", a.Session)
	}
	// The heartbeat granted is at most a third of the idle timeout.
	want := protocol.Limits{Heartbeat: 3, IdleTimeout: 7, Lifetime: 3600, MaxFrame: 4096} // 7s/3, rounded up
	if a.Limits == nil || *a.Limits != want {
		t.Fatalf("accept limits %+v, want %+v", a.Limits, want)
	}
	_, a2 := logon(t, ts.addr, nil)
	if a2.Session == a.Session {
		t.Errorf("two sessions share ID %q", a.Session)
	}

	// A second logon is a request out of place, not the end of the session.
	req := c.send(logonFrame("again"))
	f := c.next()
	if f.Type != protocol.TypeReply || f.Req != req || f.Error == nil || f.Error.Code != protocol.ErrCodeState {
		t.Fatalf("second logon: got %+v, want reply with error state", f)
	}
	// An unknown request is the handler's to answer.
	req = c.send(&protocol.Frame{Type: "frobnicate"})
	f = c.next()
	if f.Type != protocol.TypeReply || f.Req != req || f.Error == nil || f.Error.Code != protocol.ErrCodeUnknownType {
		t.Fatalf("unknown request: got %+v, want reply with error unknown-type", f)
	}
	c.echo("still logged on")
}

func TestHeartbeatNegotiation(t *testing.T) {
	tests := []struct {
		name     string
		cfg      session.Config
		ask      int // seconds
		want     int
		wantIdle int
	}{
		{name: "within range", ask: 2, want: 2, wantIdle: 6},
		{name: "raised to the minimum", cfg: session.Config{MinHeartbeat: 3 * time.Second}, ask: 2, want: 3, wantIdle: 9},
		{name: "lowered to the maximum", cfg: session.Config{MinHeartbeat: time.Second, MaxHeartbeat: time.Second}, ask: 2, want: 1, wantIdle: 3},
		{name: "none asked", cfg: session.Config{Heartbeat: 7 * time.Second}, ask: 0, want: 7, wantIdle: 21},
		{name: "idle timeout set", cfg: session.Config{IdleTimeout: 5 * time.Second}, ask: 3, want: 2, wantIdle: 5}, // at most a third of it, rounded up
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, tt.cfg)
			f := logonFrame("hb")
			f.Heartbeat = tt.ask
			_, a := logon(t, ts.addr, f)
			if a.Limits == nil || a.Limits.Heartbeat != tt.want || a.Limits.IdleTimeout != tt.wantIdle {
				t.Fatalf("limits %+v, want heartbeat %d idle_timeout %d", a.Limits, tt.want, tt.wantIdle)
			}
		})
	}
}

func TestClientHeartbeatAnswered(t *testing.T) {
	ts := startServer(t, session.Config{})
	c, _ := logon(t, ts.addr, nil)
	for _, req := range []uint64{42, 43, 1000} {
		c.send(&protocol.Frame{Type: protocol.TypeHeartbeat, Req: req})
		f := c.next()
		if f.Type != protocol.TypeReply || f.Req != req || f.Error != nil {
			t.Fatalf("heartbeat %d: got %+v, want a reply with the same req", req, f)
		}
	}
}

// TestServerHeartbeats checks that the server sends heartbeats when it has
// nothing else to send, and that a client that answers them (and sends
// nothing else) outlives the idle timeout.
func TestServerHeartbeats(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out heartbeats and the idle timeout for 5 s: not in -short")
	}
	// Three heartbeats' idle timeout: checked once an interval; 2.4: twice.
	for _, idle := range []time.Duration{3 * time.Second, 2400 * time.Millisecond} {
		t.Run(idle.String(), func(t *testing.T) {
			ts := startServer(t, session.Config{Heartbeat: time.Second, MinHeartbeat: time.Second, IdleTimeout: idle})
			f := logonFrame("hb")
			f.Heartbeat = 1
			c, a := logon(t, ts.addr, f)
			if a.Limits.Heartbeat != 1 {
				t.Fatalf("heartbeat limit %d, want 1", a.Limits.Heartbeat)
			}
			start := time.Now()
			seen := map[uint64]bool{}
			for time.Since(start) < 2*idle || len(seen) < 3 {
				f := c.next()
				if f.Type != protocol.TypeHeartbeat {
					t.Fatalf("after %v got %+v, want only heartbeats", time.Since(start), f)
				}
				if f.Req == 0 || seen[f.Req] {
					t.Fatalf("heartbeat req %d: want a new positive number", f.Req)
				}
				seen[f.Req] = true
				c.send(protocol.Reply(f.Req, nil))
			}
			c.echo("still logged on after twice the idle timeout")
			if st := ts.srv.Stats(); st.Active != 1 || len(st.Ended) != 0 {
				t.Errorf("Stats() = %+v, want the session still active", st)
			}
		})
	}
}

// TestSessionEnds checks each way the server ends a session: a bye frame
// with the reason, the connection closed, and other sessions unaffected.
func TestSessionEnds(t *testing.T) {
	t.Parallel() // its cases wait for timeouts; each has a server of its own
	tests := []struct {
		name   string
		cfg    session.Config
		act    func(c *rawConn) // what the client does after logon
		reason string
		// The server ends every session in the same way after the same
		// time: a bystander logged on beforehand would end too, so only a
		// new session is checked.
		sameForAll bool
		minAge     time.Duration // the session lasts at least this long
	}{
		{name: "idle", cfg: session.Config{IdleTimeout: 500 * time.Millisecond},
			act: func(c *rawConn) {}, reason: protocol.ByeIdle, minAge: 400 * time.Millisecond},
		{name: "lifetime", cfg: session.Config{Lifetime: 500 * time.Millisecond},
			act: func(c *rawConn) {}, reason: protocol.ByeLifetime, sameForAll: true, minAge: 400 * time.Millisecond},
		{name: "logoff", act: func(c *rawConn) {
			req := c.send(&protocol.Frame{Type: protocol.TypeLogoff})
			f := c.next()
			if f.Type != protocol.TypeReply || f.Req != req || f.Error != nil {
				c.t.Fatalf("logoff: got %+v, want a reply req %d", f, req)
			}
		}, reason: protocol.ByeLogoff},
		{name: "frame too large", cfg: session.Config{MaxFrame: 1024}, act: func(c *rawConn) {
			c.write(`{"type":"echo","req":9,"message":"` + strings.Repeat("m", 2000) + `"}` + "\n")
		}, reason: protocol.ByeFrameTooLarge},
		{name: "bad frame", act: func(c *rawConn) { c.write("this is not JSON\n") }, reason: protocol.ByeBadFrame},
		{name: "frame without type", act: func(c *rawConn) { c.write(`{"req":3}` + "\n") }, reason: protocol.ByeBadFrame},
		{name: "too many events", act: func(c *rawConn) {
			c.write(`{"type":"events","req":3,"seq":1,"events":[` + strings.Repeat(`{},`, protocol.MaxBatch) + `{}]}` + "\n")
		}, reason: protocol.ByeBadFrame},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ts := startServer(t, tt.cfg)
			var bystander *rawConn
			stopKeepAlive := func() {}
			if !tt.sameForAll {
				// The bystander keeps talking, so that an idle
				// timeout does not end it too.
				bystander, _ = logon(t, ts.addr, nil)
				stopKeepAlive = bystander.keepAlive()
			}
			// From before the logon: the server's clocks start when it
			// takes the logon, which a loaded machine may answer well
			// before this goroutine runs again.
			start := time.Now()
			c, _ := logon(t, ts.addr, nil)
			tt.act(c)
			f := c.next()
			for f.Type == protocol.TypeHeartbeat { // a client that does not answer them
				f = c.next()
			}
			age := time.Since(start)
			if f.Type != protocol.TypeBye || f.Reason != tt.reason || f.Message == "" {
				t.Fatalf("got %+v, want bye reason %q with a message", f, tt.reason)
			}
			if age < tt.minAge {
				t.Errorf("session ended after %v, before %v", age, tt.minAge)
			}
			c.expectClosed()
			waitFor(t, "the session's end to be counted", func() bool { return ts.srv.Stats().Ended[tt.reason] == 1 })
			if st := ts.srv.Stats(); len(st.Ended) != 1 {
				t.Errorf("Stats().Ended = %v, want only %s", st.Ended, tt.reason)
			}
			if bystander != nil {
				stopKeepAlive()
				bystander.echo("unaffected")
			}
			// A new session is served; with a short idle timeout or
			// lifetime, on a slow machine, it may itself end first.
			n, _ := logon(t, ts.addr, nil)
			start = time.Now()
			req := n.send(&protocol.Frame{Type: "echo", Message: "new"})
			f = n.next()
			if f.Type == protocol.TypeBye && tt.minAge > 0 && f.Reason == tt.reason && time.Since(start) >= tt.minAge {
				t.Logf("the new session ended (%s) before it was answered", f.Reason)
			} else if f.Type != protocol.TypeReply || f.Req != req || f.Message != "new" {
				t.Errorf("new session: got %+v, want the echo's reply", f)
			}
		})
	}
}

// notices returns about n bytes of notice frames of 1 KiB each.
func notices(n int) []byte {
	f, _ := protocol.AppendFrame(nil, &protocol.Frame{Type: protocol.TypeNotice, Message: strings.Repeat("n", 1000)})
	return bytes.Repeat(f, max(1, n/len(f)))
}

// TestWriteTimeout checks that a client that reads nothing is ended after
// the write timeout, and that the others are not held up.
func TestWriteTimeout(t *testing.T) {
	// It waits for the write timeout.
	t.Parallel()
	const size = 16 << 20 // more than the socket buffers hold
	ts := startServer(t, session.Config{WriteTimeout: 300 * time.Millisecond})
	bystander, _ := logon(t, ts.addr, nil)
	c, _ := logon(t, ts.addr, nil)
	c.nc.(*net.TCPConn).SetReadBuffer(64 << 10)
	c.send(&protocol.Frame{Type: "flood", Message: strconv.Itoa(size)})
	waitFor(t, "the stalled session ended behind", func() bool { return ts.srv.Stats().Ended[protocol.ByeBehind] == 1 })
	bystander.echo("unaffected")
	if st := ts.srv.Stats(); st.Active != 1 || len(st.Ended) != 1 {
		t.Errorf("Stats() = %+v, want the bystander active and one session ended behind", st)
	}
}

// TestClientCloses checks that a client that goes away without logging off
// is counted as closed and frees its place.
func TestClientCloses(t *testing.T) {
	ts := startServer(t, session.Config{MaxSessions: 1})
	c, _ := logon(t, ts.addr, nil)
	c.nc.Close()
	waitFor(t, "the session to end", func() bool { return ts.srv.Stats().Ended["closed"] == 1 })
	checkServing(t, ts.addr)
}

func TestStoreRecordsSessions(t *testing.T) {
	st := memstore.New(memstore.Config{})
	t.Cleanup(func() { st.Close() })
	ts := startServer(t, session.Config{Name: "unsolmsg", Region: "REG1", Store: st})
	ctx := context.Background()
	sessions := func() []string {
		ss, err := st.Sessions(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, s := range ss {
			ids = append(ids, s.ID)
		}
		return ids
	}

	c1, a1 := logon(t, ts.addr, logonFrame("alice"))
	c2, a2 := logon(t, ts.addr, logonFrame("bob"))
	waitFor(t, "both sessions recorded", func() bool { return len(sessions()) == 2 })
	ss, err := st.Sessions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]struct{ client, remote string }{
		a1.Session: {"alice", c1.nc.LocalAddr().String()},
		a2.Session: {"bob", c2.nc.LocalAddr().String()},
	}
	for _, s := range ss {
		want, ok := byID[s.ID]
		if !ok {
			t.Fatalf("recorded session %q is not one the server accepted (%s, %s)", s.ID, a1.Session, a2.Session)
		}
		if s.Client != want.client || s.Remote != want.remote || s.Server != "unsolmsg" || s.Region != "REG1" ||
			s.Since.IsZero() || s.LastSeen.IsZero() {
			t.Errorf("recorded %+v, want client %s remote %s server unsolmsg region REG1 and times", s, want.client, want.remote)
		}
	}

	req := c1.send(&protocol.Frame{Type: protocol.TypeLogoff})
	if f := c1.next(); f.Type != protocol.TypeReply || f.Req != req {
		t.Fatalf("logoff: got %+v", f)
	}
	waitFor(t, "the logged-off session removed", func() bool {
		ids := sessions()
		return len(ids) == 1 && ids[0] == a2.Session
	})
	c2.nc.Close()
	waitFor(t, "the closed session removed", func() bool { return len(sessions()) == 0 })
}

func TestShutdown(t *testing.T) {
	ts := startServer(t, session.Config{})
	c, _ := logon(t, ts.addr, nil)
	c.echo("before shutdown")

	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		shut <- ts.srv.Shutdown(ctx)
	}()
	f := c.next()
	if f.Type != protocol.TypeBye || f.Reason != protocol.ByeShutdown {
		t.Fatalf("got %+v, want bye shutdown", f)
	}
	c.expectClosed()
	select {
	case err := <-shut:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Shutdown did not return")
	}
	if err := ts.serveResult(); !errors.Is(err, session.ErrServerClosed) {
		t.Fatalf("Serve returned %v, want ErrServerClosed", err)
	}
	if got := ts.srv.Stats().Ended[protocol.ByeShutdown]; got != 1 {
		t.Errorf("Stats().Ended[shutdown] = %d, want 1", got)
	}
	if _, err := net.DialTimeout("tcp", ts.addr, waitTimeout); err == nil {
		// The port may be reused by then only in theory; the listener is closed.
		t.Errorf("dial after Shutdown succeeded")
	}
	for i := 0; i < 2; i++ {
		if err := ts.srv.Close(); err != nil {
			t.Errorf("Close #%d after Shutdown: %v", i+1, err)
		}
	}
	// Serve on a shut-down server returns at once.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.srv.Serve(ln); !errors.Is(err, session.ErrServerClosed) {
		t.Errorf("Serve after Shutdown = %v, want ErrServerClosed", err)
	}
}

// TestCloseBeforeLogon checks that Close does not wait for connections that
// have not logged on yet: it closes them.
func TestCloseBeforeLogon(t *testing.T) {
	ts := startServer(t, session.Config{LogonTimeout: time.Minute})
	silent := dialRaw(t, ts.addr)
	// The server accepts connections in order: once a later one is logged
	// on, the silent one is being served.
	later, _ := logon(t, ts.addr, nil)

	closed := make(chan error, 1)
	go func() { closed <- ts.srv.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Close waited for a connection that never logged on")
	}
	silent.expectClosed()
	later.expectClosedAfterBye(protocol.ByeShutdown)
	if err := ts.srv.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestShutdownTimeout checks that Shutdown does not wait for connections
// that have not logged on (it closes them at once) and returns by the end
// of its context.
func TestShutdownTimeout(t *testing.T) {
	ts := startServer(t, session.Config{LogonTimeout: time.Minute})
	silent := dialRaw(t, ts.addr)
	logon(t, ts.addr, nil)

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- ts.srv.Shutdown(ctx) }()
	select {
	case err := <-shut:
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Shutdown = %v, want nil or context.DeadlineExceeded", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Shutdown did not return after its context ended")
	}
	silent.expectClosed()
}

// lockedBuffer is a bytes.Buffer safe for the logger's and the test's use.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestSecretNotLogged(t *testing.T) {
	const secret = "s3cr3t-XYZ"
	var buf lockedBuffer
	l := logrus.New()
	l.SetOutput(&buf)
	l.SetLevel(logrus.DebugLevel)
	ts := startServer(t, session.Config{Auth: staticAuth{"ops": secret}, Logger: l})

	good := logonFrame("ops")
	good.Secret = secret
	c, _ := logon(t, ts.addr, good)
	c.echo("hello")
	c.send(&protocol.Frame{Type: protocol.TypeLogoff})
	c.next()

	refusals := []string{
		`{"type":"logon","req":1,"client":"nobody","secret":"` + secret + `","version":1}`,
		`{"type":"logon","req":1,"client":"ops","secret":"` + secret + `-wrong","version":1}`,
		`{"type":"logon","req":1,"client":"ops","secret":"` + secret + `","version":2}`,
		`{"type":"logon","req":1,"client":"ops","secret":"` + secret + `","version":"one"}`,
		`{"type":"logon","req":1,"client":"ops","secret":"` + secret + `"`,
		`{"type":"heartbeat","req":1,"secret":"` + secret + `"}`,
	}
	for _, in := range refusals {
		c := dialRaw(t, ts.addr)
		c.write(in + "\n")
		if f := c.next(); f.Type != protocol.TypeRefuse {
			t.Fatalf("%s: got %+v, want a refusal", in, f)
		}
		c.expectClosed()
	}
	// A logged-on session that sends the secret in a bad frame.
	c, _ = logon(t, ts.addr, good)
	c.write(`{"type":"echo","secret":"` + secret + `" oops` + "\n")
	if f := c.next(); f.Type != protocol.TypeBye {
		t.Fatalf("got %+v, want bye", f)
	}
	ts.srv.Close()

	out := buf.String()
	if !strings.Contains(out, "authentication failed") || !strings.Contains(out, "session started") {
		t.Fatalf("the log lacks the expected lines; is it at debug level?\n%s", out)
	}
	if strings.Contains(out, secret) {
		t.Errorf("the log contains the secret:\n%s", out)
	}
}

func TestNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	// serve starts a server and returns it, its address, and what Serve
	// returned, to wait for.
	serve := func() (*session.Server, string, chan error) {
		srv, err := session.NewServer(session.Config{Name: "leak", Logger: discardLogger(),
			Heartbeat: time.Second, LogonTimeout: time.Minute}, echoHandler{})
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		served := make(chan error, 1)
		go func() { served <- srv.Serve(ln) }()
		return srv, ln.Addr().String(), served
	}
	checkServed := func(served chan error) {
		select {
		case err := <-served:
			if !errors.Is(err, session.ErrServerClosed) {
				t.Errorf("Serve = %v, want ErrServerClosed", err)
			}
		case <-time.After(waitTimeout):
			t.Fatal("Serve did not return")
		}
	}

	// Sessions ended by Shutdown, by logoff, by the client.
	srv, addr, served := serve()
	a, _ := logon(t, addr, nil)
	a.echo("a")
	b, _ := logon(t, addr, nil)
	b.send(&protocol.Frame{Type: protocol.TypeLogoff})
	c, _ := logon(t, addr, nil)
	c.nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	checkServed(served)
	a.nc.Close()
	b.nc.Close()

	// A session and a connection that never logged on, ended by Close.
	srv, addr, served = serve()
	d := dialRaw(t, addr)
	d.write(`{"type":"lo`)
	e, _ := logon(t, addr, nil)
	srv.Close()
	checkServed(served)
	d.nc.Close()
	e.nc.Close()

	leakcheck.Wait(t, before, waitTimeout)
}

// eagerAdmitter admits every session and has another goroutine write to it
// at once, as VMMON's command routing may the moment it admits an agent.
type eagerAdmitter struct {
	echoHandler
	wrote chan error
}

func (h eagerAdmitter) Admit(s *session.Session) *protocol.Frame {
	go func() { h.wrote <- s.Send(&protocol.Frame{Type: protocol.TypeNotice, Message: "early"}) }()
	time.Sleep(50 * time.Millisecond) // the goroutine is at its write before the accept is
	return nil
}

// TestAcceptFirst: a frame another goroutine writes while the session is
// being admitted reaches the client after the accept, never before it,
// where the client would take it for the answer to its logon.
func TestAcceptFirst(t *testing.T) {
	h := eagerAdmitter{wrote: make(chan error, 1)}
	ts := startServerWith(t, session.Config{}, h)
	c, a := logon(t, ts.addr, nil) // fails unless the first frame is the accept
	if a.Session == "" {
		t.Fatalf("accept %+v without a session", a)
	}
	if err := <-h.wrote; err != nil {
		t.Fatalf("the early write: %v", err)
	}
	if f := c.next(); f.Type != protocol.TypeNotice || f.Message != "early" {
		t.Fatalf("after the accept: %+v, want the early notice", f)
	}
}
