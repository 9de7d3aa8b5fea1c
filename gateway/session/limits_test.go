package session_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/gateway/session"
	"github.com/zbridge/zbridge/internal/peer"
	"github.com/zbridge/zbridge/protocol"
)

// dialFrom connects to addr from the loopback address src: 127.0.0.2 and
// the like are other sources (Linux routes all of 127/8 to lo).
func dialFrom(t *testing.T, src, addr string) *rawConn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: waitTimeout}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawConn{t: t, nc: nc, r: protocol.NewReader(nc, 0)}
}

// logonFrom logs on from src with f and returns the connection and the
// first frame the server answered with.
func logonFrom(t *testing.T, src, addr string, f *protocol.Frame) (*rawConn, protocol.Frame) {
	t.Helper()
	c := dialFrom(t, src, addr)
	c.send(f)
	return c, c.next()
}

func withSecret(client, secret string) *protocol.Frame {
	f := logonFrame(client)
	f.Secret = protocol.Secret(secret)
	return f
}

// expectRefusal checks that f is a refusal with reason and a message
// saying want.
func expectRefusal(t *testing.T, f protocol.Frame, reason, want string) {
	t.Helper()
	if f.Type != protocol.TypeRefuse || f.Reason != reason {
		t.Fatalf("got %+v, want refuse %s", f, reason)
	}
	if !strings.Contains(f.Message, want) {
		t.Errorf("refusal message %q does not say %q", f.Message, want)
	}
	if reason == protocol.RefuseBusy && f.RetryAfter < 1 {
		t.Errorf("busy refusal without retry_after: %+v", f)
	}
}

// TestIdleFloodFromOneAddress: 64 idle connections from one address (as
// many as MaxPending) do not keep a client from another address from
// logging on; the ones over MaxPendingPerAddr are refused busy with a
// sentence.
func TestIdleFloodFromOneAddress(t *testing.T) {
	ts := startServer(t, session.Config{LogonTimeout: time.Minute})
	idle := make([]*rawConn, 64)
	for i := range idle {
		idle[i] = dialFrom(t, "127.0.0.1", ts.addr)
	}
	// Accepted after the 64 (one accept loop, in order).
	c, f := logonFrom(t, "127.0.0.2", ts.addr, logonFrame("other-host"))
	if f.Type != protocol.TypeAccept {
		t.Fatalf("logon from 127.0.0.2 behind 64 idle connections from 127.0.0.1: got %+v, want accept", f)
	}
	c.echo("served")
	refused := 64 - session.DefaultMaxPendingPerAddr
	waitFor(t, "the refusals", func() bool { return ts.srv.Stats().Refused[protocol.RefuseBusy] == uint64(refused) })
	// The first MaxPendingPerAddr wait for their logon; the rest were told.
	for i, ic := range idle[session.DefaultMaxPendingPerAddr:] {
		f := ic.next()
		expectRefusal(t, f, protocol.RefuseBusy, "the most allowed from one address")
		if i == 0 {
			t.Logf("refusal: %s", f.Message)
		}
		ic.expectClosed()
	}
	if st := ts.srv.Stats(); st.Pending != session.DefaultMaxPendingPerAddr || st.Active != 1 {
		t.Errorf("Stats %+v, want %d pending and 1 active", st, session.DefaultMaxPendingPerAddr)
	}
	// A waiting one can still log on, and then makes room for another.
	idle[0].send(logonFrame("late"))
	if f := idle[0].next(); f.Type != protocol.TypeAccept {
		t.Fatalf("a waiting connection's logon: got %+v", f)
	}
	if _, f := logonFrom(t, "127.0.0.1", ts.addr, logonFrame("next")); f.Type != protocol.TypeAccept {
		t.Fatalf("logon after a waiting connection logged on: got %+v", f)
	}
}

func TestPerAddrLimits(t *testing.T) {
	tests := []struct {
		name string
		cfg  session.Config
		// loggedOn and idle connections are made from 127.0.0.1 first;
		// then one more from 127.0.0.1 is refused with a message saying
		// want, and one from 127.0.0.2 logs on.
		loggedOn, idle int
		want           string
	}{
		{name: "MaxPerAddr, logged on", cfg: session.Config{MaxPerAddr: 3}, loggedOn: 3,
			want: "3 connections from 127.0.0.1 already (the most allowed from one address)"},
		{name: "MaxPerAddr, logged on and pending", cfg: session.Config{MaxPerAddr: 3}, loggedOn: 1, idle: 2,
			want: "3 connections from 127.0.0.1 already"},
		{name: "MaxPendingPerAddr", cfg: session.Config{MaxPendingPerAddr: 2}, loggedOn: 2, idle: 2,
			want: "2 connections from 127.0.0.1 already waiting to log on"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.LogonTimeout = time.Minute
			ts := startServer(t, tt.cfg)
			for i := range tt.loggedOn {
				if _, f := logonFrom(t, "127.0.0.1", ts.addr, logonFrame(fmt.Sprint("c", i))); f.Type != protocol.TypeAccept {
					t.Fatalf("logon %d: got %+v", i, f)
				}
			}
			for range tt.idle {
				dialFrom(t, "127.0.0.1", ts.addr)
			}
			_, f := logonFrom(t, "127.0.0.1", ts.addr, logonFrame("one-too-many"))
			expectRefusal(t, f, protocol.RefuseBusy, tt.want)
			c, f := logonFrom(t, "127.0.0.2", ts.addr, logonFrame("elsewhere"))
			if f.Type != protocol.TypeAccept {
				t.Fatalf("logon from another address: got %+v", f)
			}
			c.echo("served")
			if got := ts.srv.Stats().Refused[protocol.RefuseBusy]; got != 1 {
				t.Errorf("Stats().Refused[busy] = %d, want 1", got)
			}
		})
	}
}

// countingAuth counts Authenticate calls: the costly check (argon2).
type countingAuth struct {
	session.Authenticator
	calls atomic.Int64
}

func (a *countingAuth) Authenticate(ctx context.Context, name, secret string) error {
	a.calls.Add(1)
	return a.Authenticator.Authenticate(ctx, name, secret)
}

// TestLogonBruteForce: many wrong-secret logons from one address are
// throttled (refused busy, without checking the secret), while the right
// secret from another address still logs on.
func TestLogonBruteForce(t *testing.T) {
	auth := &countingAuth{Authenticator: staticAuth{"ops": "right-secret"}}
	ts := startServer(t, session.Config{Auth: auth})
	const attempts = 200
	reasons := map[string]int{}
	for i := range attempts {
		_, f := logonFrom(t, "127.0.0.1", ts.addr, withSecret("ops", fmt.Sprint("guess-", i)))
		if f.Type != protocol.TypeRefuse {
			t.Fatalf("attempt %d: got %+v, want a refusal", i, f)
		}
		reasons[f.Reason]++
		if f.Reason == protocol.RefuseBusy && reasons[protocol.RefuseBusy] == 1 {
			expectRefusal(t, f, protocol.RefuseBusy, "too many failed logons from 127.0.0.1")
		}
	}
	calls := auth.calls.Load()
	t.Logf("%d attempts: %v, %d secret checks", attempts, reasons, calls)
	if reasons[protocol.RefuseBusy] == 0 {
		t.Fatalf("no attempt was throttled: %v", reasons)
	}
	// Five failures block the address for 1 s, doubling: unless this
	// machine is very slow, the checks stop at five or a few more.
	if calls < session.DefaultMaxLogonFailures || calls > 10 {
		t.Errorf("the secret was checked %d times in %d attempts, want %d or a few more", calls, attempts, session.DefaultMaxLogonFailures)
	}
	if int64(reasons[protocol.RefuseAuth]) != calls {
		t.Errorf("%d auth refusals, %d checks", reasons[protocol.RefuseAuth], calls)
	}
	c, f := logonFrom(t, "127.0.0.2", ts.addr, withSecret("ops", "right-secret"))
	if f.Type != protocol.TypeAccept {
		t.Fatalf("the right secret from another address: got %+v", f)
	}
	c.echo("logged on")
}

// TestLogonThrottle checks the throttle's rules with a block long enough
// not to end during the test, and what OnRefuse is told.
func TestLogonThrottle(t *testing.T) {
	var mu sync.Mutex
	var refusals []session.Refusal
	auth := &countingAuth{Authenticator: staticAuth{"ops": "right-secret", "dev": "dev-secret"}}
	ts := startServer(t, session.Config{Name: "unsolmsg", Auth: auth, LogonBlock: time.Minute,
		MaxLogonFailures: 3, MaxClientLogonFailures: 5,
		OnRefuse: func(r session.Refusal) {
			mu.Lock()
			refusals = append(refusals, r)
			mu.Unlock()
		}})
	type attempt struct {
		src, client, secret string
		reason              string // "" for accept
		want                string // in the refusal's message
		checks              int64  // Authenticate calls so far
	}
	steps := []attempt{
		{"127.0.0.1", "ops", "wrong-1", protocol.RefuseAuth, "bad client name or secret", 1},
		{"127.0.0.1", "ops", "wrong-2", protocol.RefuseAuth, "", 2},
		// Another client's success from the address does not forget its
		// failures: else any client could clear them between guesses at
		// another's secret.
		{"127.0.0.1", "dev", "dev-secret", "", "", 3},
		{"127.0.0.1", "nobody", "wrong-3", protocol.RefuseAuth, "", 4}, // third from the address: blocked
		{"127.0.0.1", "ops", "wrong-4", protocol.RefuseBusy, "too many failed logons from 127.0.0.1; try again in 1m0s", 4},
		{"127.0.0.1", "dev", "dev-secret", protocol.RefuseBusy, "from 127.0.0.1", 4}, // not checked either
		// "ops" has two failures; three from other addresses block it.
		{"127.0.0.3", "ops", "wrong-5", protocol.RefuseAuth, "", 5},
		{"127.0.0.4", "ops", "wrong-6", protocol.RefuseAuth, "", 6},
		{"127.0.0.5", "ops", "wrong-7", protocol.RefuseAuth, "", 7},
		// A blocked name is still checked: the right secret logs on (no
		// one can lock a client out by failing with its name), and a
		// wrong one is refused busy.
		{"127.0.0.7", "ops", "wrong-8", protocol.RefuseBusy, "too many failed logons for this client name", 8},
		{"127.0.0.6", "ops", "right-secret", "", "", 9},
		{"127.0.0.6", "dev", "dev-secret", "", "", 10}, // the address is not blocked
		// The name's own success forgot its failures.
		{"127.0.0.8", "ops", "wrong-9", protocol.RefuseAuth, "bad client name or secret", 11},
	}
	for i, st := range steps {
		_, f := logonFrom(t, st.src, ts.addr, withSecret(st.client, st.secret))
		if st.reason == "" {
			if f.Type != protocol.TypeAccept {
				t.Fatalf("step %d: %s from %s: got %+v, want accept", i, st.client, st.src, f)
			}
		} else {
			if f.Type != protocol.TypeRefuse || f.Reason != st.reason || !strings.Contains(f.Message, st.want) {
				t.Fatalf("step %d: %s from %s: got %+v, want refuse %s saying %q", i, st.client, st.src, f, st.reason, st.want)
			}
			if st.reason == protocol.RefuseBusy && f.RetryAfter != 60 {
				t.Errorf("step %d: retry_after %d, want 60", i, f.RetryAfter)
			}
		}
		if n := auth.calls.Load(); n != st.checks {
			t.Fatalf("step %d: %d secret checks, want %d", i, n, st.checks)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(refusals) != 10 {
		t.Fatalf("OnRefuse called %d times, want 10: %+v", len(refusals), refusals)
	}
	r := refusals[3]
	if r.Server != "unsolmsg" || r.Client != "ops" || r.Reason != protocol.RefuseBusy ||
		!strings.HasPrefix(r.Remote, "127.0.0.1:") || !strings.Contains(r.Message, "too many failed logons") {
		t.Errorf("OnRefuse got %+v", r)
	}
	for _, r := range refusals {
		if strings.Contains(r.Message, "wrong-") || strings.Contains(r.Message, "-secret") {
			t.Errorf("refusal %+v shows a secret", r)
		}
	}
	if st := ts.srv.Stats(); st.Refused[protocol.RefuseAuth] != 7 || st.Refused[protocol.RefuseBusy] != 3 {
		t.Errorf("Stats().Refused = %v, want 7 auth and 3 busy", st.Refused)
	}
}

// TestThrottleBounded: failed logons from many addresses with many names
// leave at most ThrottleEntries of each in the throttle.
func TestThrottleBounded(t *testing.T) {
	ts := startServer(t, session.Config{Auth: staticAuth{"ops": "right-secret"}, ThrottleEntries: 8})
	for i := range 40 {
		_, f := logonFrom(t, fmt.Sprintf("127.0.0.%d", 10+i), ts.addr, withSecret(fmt.Sprint("name-", i), "x"))
		if f.Type != protocol.TypeRefuse || f.Reason != protocol.RefuseAuth {
			t.Fatalf("attempt %d: got %+v", i, f)
		}
		if n := ts.srv.Stats().Throttled; n > 16 {
			t.Fatalf("after %d failures from as many addresses and names, the throttle holds %d entries, want at most 16", i+1, n)
		}
	}
	if n := ts.srv.Stats().Throttled; n != 16 {
		t.Errorf("the throttle holds %d entries, want 16 (full)", n)
	}
}

// TestFailedLogonLogged: a failed logon is logged at warning level with the
// client name and remote address, and without the secret.
func TestFailedLogonLogged(t *testing.T) {
	var buf lockedBuffer
	l := logrus.New()
	l.SetOutput(&buf)
	l.SetLevel(logrus.WarnLevel)
	ts := startServer(t, session.Config{Auth: staticAuth{"ops": "right-secret"}, Logger: l})
	_, f := logonFrom(t, "127.0.0.2", ts.addr, withSecret("ops", "guess-XYZ"))
	if f.Reason != protocol.RefuseAuth {
		t.Fatalf("got %+v", f)
	}
	waitFor(t, "the warning", func() bool { return strings.Contains(buf.String(), "authentication failed") })
	out := buf.String()
	for _, want := range []string{"level=warning", "client=ops", "remote=\"127.0.0.2:"} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "guess-XYZ") {
		t.Errorf("the log shows the secret:\n%s", out)
	}
}

// testTLS returns a server config with a certificate for 127.0.0.1 that a
// fresh CA signed.
func testTLS(t *testing.T) *tls.Config {
	t.Helper()
	return &tls.Config{Certificates: []tls.Certificate{peer.NewTLSCA(t).ServerPair(t, "127.0.0.1")}}
}

// TestTLSHandshakeTimeout: a TLS client that never sends its ClientHello is
// closed after HandshakeTimeout, though LogonTimeout is long; one that
// does logs on.
func TestTLSHandshakeTimeout(t *testing.T) {
	t.Parallel() // it waits for the handshake timeout
	ts := startServer(t, session.Config{TLSConfig: testTLS(t), HandshakeTimeout: 300 * time.Millisecond,
		LogonTimeout: time.Minute})
	silent := dialFrom(t, "127.0.0.1", ts.addr)
	silent.expectClosed()

	nc, err := tls.Dial("tcp", ts.addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	c := &rawConn{t: t, nc: nc, r: protocol.NewReader(nc, 0)}
	c.send(logonFrame("tls"))
	if f := c.next(); f.Type != protocol.TypeAccept {
		t.Fatalf("logon over TLS: got %+v", f)
	}
	c.echo("over TLS")
}

// TestTLSRefusalDoesNotStallAccept: a connection refused at accept over
// TLS, whose client never sends a ClientHello, does not hold up the next
// connections.
func TestTLSRefusalDoesNotStallAccept(t *testing.T) {
	ts := startServer(t, session.Config{TLSConfig: testTLS(t), MaxPending: 2, LogonTimeout: time.Minute,
		HandshakeTimeout: time.Minute})
	for range 2 { // wait to log on, silent
		dialFrom(t, "127.0.0.1", ts.addr)
	}
	waitFor(t, "the silent connections to be pending", func() bool { return ts.srv.Stats().Pending == 2 })
	dialFrom(t, "127.0.0.1", ts.addr) // refused: the refusal waits for a handshake that does not come

	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: waitTimeout}
	nc, err := tls.DialWithDialer(d, "tcp", ts.addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("TLS client behind a stalled refusal: %v", err)
	}
	t.Cleanup(func() { nc.Close() })
	c := &rawConn{t: t, nc: nc, r: protocol.NewReader(nc, 0)}
	c.send(logonFrame("tls"))
	expectRefusal(t, c.next(), protocol.RefuseBusy, "2 connections already waiting to log on")
}

// TestRefusalFlood: while MaxPending refusals are being written (here one,
// waiting for a TLS handshake), a further connection over a limit is closed
// at once, without a goroutine to tell it why; it is still reported.
func TestRefusalFlood(t *testing.T) {
	var mu sync.Mutex
	var got []session.Refusal
	ts := startServer(t, session.Config{TLSConfig: testTLS(t), MaxPending: 1, LogonTimeout: time.Minute,
		HandshakeTimeout: time.Minute, OnRefuse: func(r session.Refusal) {
			mu.Lock()
			got = append(got, r)
			mu.Unlock()
		}})
	dialFrom(t, "127.0.0.1", ts.addr)
	waitFor(t, "the silent connection to be pending", func() bool { return ts.srv.Stats().Pending == 1 })
	waitFor(t, "a connection closed without an answer", func() bool {
		dialFrom(t, "127.0.0.1", ts.addr)
		mu.Lock()
		defer mu.Unlock()
		for _, r := range got {
			if strings.Contains(r.Message, "closed without an answer") {
				return r.Reason == protocol.RefuseBusy
			}
		}
		return false
	})
}

func TestEndClients(t *testing.T) {
	ts := startServer(t, session.Config{})
	a1, _ := logon(t, ts.addr, logonFrame("alpha"))
	a2, _ := logon(t, ts.addr, logonFrame("alpha"))
	b, _ := logon(t, ts.addr, logonFrame("beta"))
	stop := b.keepAlive()
	defer stop()

	if n := ts.srv.EndClients(func(c string) bool { return c == "gamma" }, protocol.ByeRevoked); n != 0 {
		t.Errorf("EndClients(gamma) = %d, want 0", n)
	}
	if n := ts.srv.EndClients(func(c string) bool { return c == "alpha" }, protocol.ByeRevoked); n != 2 {
		t.Fatalf("EndClients(alpha) = %d, want 2", n)
	}
	for _, c := range []*rawConn{a1, a2} {
		f := c.nextNotHeartbeat()
		if f.Type != protocol.TypeBye || f.Reason != protocol.ByeRevoked || f.Message == "" {
			t.Fatalf("got %+v, want bye revoked with a message", f)
		}
		c.expectClosed()
	}
	waitFor(t, "the ended sessions to go", func() bool { return ts.srv.Stats().Active == 1 })
	b.echo("beta is unaffected")
	if got := ts.srv.Stats().Ended[protocol.ByeRevoked]; got != 2 {
		t.Errorf("Stats().Ended[revoked] = %d, want 2", got)
	}
	for _, in := range ts.srv.Sessions() {
		if in.Client != "beta" {
			t.Errorf("session %+v still listed", in)
		}
	}
}

// faultyListener wraps a real listener; its Accept always fails with
// EMFILE (an error the accept loop retries), and it records calls made
// after the test said it stops the server.
type faultyListener struct {
	net.Listener
	calls chan int

	mu        sync.Mutex
	n         int
	stopping  bool
	lateCalls int
}

func (l *faultyListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	l.n++
	n := l.n
	if l.stopping {
		l.lateCalls++
	}
	l.mu.Unlock()
	select {
	case l.calls <- n:
	default:
	}
	return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
}

// TestShutdownInterruptsAcceptBackoff: Shutdown ends Serve in the middle of
// an accept back-off, without another Accept (a sleep would wait it out
// and Accept once more).
func TestShutdownInterruptsAcceptBackoff(t *testing.T) {
	t.Parallel() // it waits for the accept back-off
	srv, err := session.NewServer(session.Config{Name: "test", Logger: discardLogger()}, echoHandler{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &faultyListener{Listener: ln, calls: make(chan int, 1)}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	deadline := time.After(waitTimeout)
	for n := 0; n < 7; { // the back-off waits 320 ms after the 7th: Stop comes during it
		select {
		case n = <-l.calls:
		case <-deadline:
			t.Fatal("Accept was not retried")
		}
	}
	l.mu.Lock()
	l.stopping = true
	l.mu.Unlock()
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-served:
		if !errors.Is(err, session.ErrServerClosed) {
			t.Errorf("Serve = %v, want ErrServerClosed", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Serve did not return")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lateCalls != 0 {
		t.Errorf("%d Accept calls after Shutdown: the back-off was not interrupted", l.lateCalls)
	}
}

// TestRecheck: a logon whose access was withdrawn while its secret was
// checked is refused once registered, with the reason Recheck gives.
func TestRecheck(t *testing.T) {
	var withdrawn atomic.Bool
	ts := startServer(t, session.Config{Recheck: func(_ context.Context, client, _ string) error {
		if withdrawn.Load() {
			return notPermitted("client " + client + " may no longer use this port")
		}
		return nil
	}})
	if _, f := logonFrom(t, "127.0.0.1", ts.addr, logonFrame("before")); f.Type != protocol.TypeAccept {
		t.Fatalf("logon: %+v", f)
	}
	withdrawn.Store(true)
	_, f := logonFrom(t, "127.0.0.1", ts.addr, logonFrame("after"))
	expectRefusal(t, f, protocol.RefuseNotPermitted, "may no longer use this port")
	if st := ts.srv.Stats(); st.Active != 1 {
		t.Errorf("%d sessions active, want the first only", st.Active)
	}
}

// notPermitted is an error with a refusal reason, as package trust's are.
type notPermitted string

func (e notPermitted) Error() string        { return string(e) }
func (e notPermitted) RefuseReason() string { return protocol.RefuseNotPermitted }
