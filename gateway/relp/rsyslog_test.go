package relp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zbridge/zbridge/internal/leakcheck"
	"github.com/zbridge/zbridge/internal/peer"
	"github.com/zbridge/zbridge/protocol/relp"
)

// These tests have the real rsyslogd (imtcp in, omrelp out, librelp 1.11)
// deliver to the server. peer.StartRelpForwarder skips them under -short
// or without rsyslog-relp, unless ZBRIDGE_REQUIRE_PEERS=1.

// seqRE finds the sequence number the tests put in each message.
var seqRE = regexp.MustCompile(`seq=(\d+)`)

// sendSeq sends the messages seq=from..to (RFC 5424, octet-counted) to a
// syslog input over one TCP connection.
func sendSeq(input string, from, to int) error {
	c, err := net.Dial("tcp", input)
	if err != nil {
		return err
	}
	defer c.Close()
	var b []byte
	for i := from; i <= to; i++ {
		m := fmt.Sprintf("<13>1 - testhost relptest - - - seq=%06d", i)
		b = fmt.Appendf(b, "%d %s", len(m), m)
	}
	_, err = c.Write(b)
	return err
}

// mustSendSeq is sendSeq for the test's goroutine.
func mustSendSeq(t testing.TB, input string, from, to int) {
	t.Helper()
	if err := sendSeq(input, from, to); err != nil {
		t.Fatal(err)
	}
}

// seqCounts counts the messages with each sequence number; seq 0 marks the
// nudges.
func seqCounts(msgs []string) map[int]int {
	n := make(map[int]int)
	for _, m := range msgs {
		if s := seqRE.FindStringSubmatch(m); s != nil {
			i, _ := strconv.Atoi(s[1])
			n[i]++
		}
	}
	return n
}

// waitAll waits until each of seq 1..n has arrived, sending a nudge
// (seq=0) to the forwarder every 300 ms: librelp notices a session the
// server closed, and resends what it did not acknowledge, only when it
// has a new message to send. It returns the counts and how many messages
// arrived more than once.
func waitAll(t *testing.T, rec *recorder, input string, n int, timeout time.Duration) (map[int]int, int) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msgs, _, _ := rec.snapshot()
		counts := seqCounts(msgs)
		missing := 0
		dups := 0
		for i := 1; i <= n; i++ {
			switch c := counts[i]; {
			case c == 0:
				missing++
			case c > 1:
				dups += c - 1
			}
		}
		if missing == 0 {
			return counts, dups
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d messages missing after %v", missing, n, timeout)
		}
		mustSendSeq(t, input, 0, 0)
		time.Sleep(300 * time.Millisecond)
	}
}

func TestRsyslogDelivers(t *testing.T) {
	leakcheck.Check(t)
	ts := startServer(t, nil)
	fw := peer.StartRelpForwarder(t, peer.RelpOptions{Target: ts.addr})
	const n = 2000
	start := time.Now()
	mustSendSeq(t, fw.Input, 1, n)
	special := []string{
		"<14>1 2026-12-06T08:00:01Z host1 app 100 ID2 - line one\nline two",
		"<13>1 2026-12-06T08:00:02Z host1 app 100 - - \ufeffgrüße – utf-8",
		"<13>1 2026-12-06T08:00:03Z host1 app 100 - - " + strings.Repeat("x", 5000),
	}
	c, err := net.Dial("tcp", fw.Input)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range special {
		fmt.Fprintf(c, "%d %s", len(m), m)
	}
	c.Close()
	peer.RunLogger(t, fw.Input, "-t", "zbtest", "sent by the real logger")

	msgs := ts.rec.wait(t, n+len(special)+1, 30*time.Second)
	elapsed := time.Since(start)
	last := 0
	for _, m := range msgs[:n] {
		s := seqRE.FindStringSubmatch(m)
		if s == nil {
			t.Fatalf("unexpected message %q", m)
		}
		i, _ := strconv.Atoi(s[1])
		if i != last+1 {
			t.Fatalf("seq %d after %d: out of order or lost", i, last)
		}
		last = i
	}
	// RSYSLOG_SyslogProtocol23Format: the message as sent, rsyslog's own
	// timestamp format, and an LF at the end.
	want := []string{
		"<14>1 2026-12-06T08:00:01Z host1 app 100 ID2 - line one\nline two\n",
		"<13>1 2026-12-06T08:00:02Z host1 app 100 - - \ufeffgrüße – utf-8\n",
		"<13>1 2026-12-06T08:00:03Z host1 app 100 - - " + strings.Repeat("x", 5000) + "\n",
	}
	for i, w := range want {
		if got := msgs[n+i]; got != w {
			t.Errorf("message %d:\n got %q\nwant %q", i, trunc(got), trunc(w))
		}
	}
	if got := msgs[n+len(special)]; !strings.Contains(got, " zbtest ") || !strings.HasSuffix(got, " sent by the real logger\n") {
		t.Errorf("logger's message %q", got)
	}
	_, batches, _ := ts.rec.snapshot()
	st := ts.srv.Stats()
	t.Logf("%d messages in %v over %d session(s), %d Delivers (%.1f messages each)",
		st.Messages, elapsed.Round(time.Millisecond), st.Sessions, len(batches), float64(st.Messages)/float64(len(batches)))
	if st.Sessions != 1 || st.ProtocolErrors != 0 || st.DeliverErrors != 0 {
		t.Errorf("stats %+v", st)
	}
}

func trunc(s string) string {
	if len(s) > 120 {
		return s[:60] + "…" + s[len(s)-60:]
	}
	return s
}

// TestRsyslogResendsAfterDeliverError: the Sink fails its first Delivers;
// each failure ends the session unacknowledged, omrelp reconnects and
// resends, and every message arrives.
func TestRsyslogResendsAfterDeliverError(t *testing.T) {
	leakcheck.Check(t)
	ts := startServer(t, nil)
	ts.rec.fail = func(call int) error {
		if call <= 3 {
			return errors.New("store unavailable")
		}
		return nil
	}
	fw := peer.StartRelpForwarder(t, peer.RelpOptions{Target: ts.addr})
	const n = 500
	mustSendSeq(t, fw.Input, 1, n)
	_, dups := waitAll(t, ts.rec, fw.Input, n, 60*time.Second)
	st := ts.srv.Stats()
	t.Logf("all %d messages arrived; %d duplicates; %d sessions, %d failed Delivers", n, dups, st.Sessions, st.DeliverErrors)
	if st.DeliverErrors != 3 || st.Sessions < 4 {
		t.Errorf("stats %+v", st)
	}
}

// TestRsyslogReconnectAfterCut: in mid-flow the server is stopped (Close:
// sessions cut, Delivers not answered; Shutdown: the Deliver in progress
// answered, then serverclose) and a new one started on the same port;
// omrelp reconnects and resends what was not acknowledged. Every message
// arrives at least once; the test counts the duplicates. The Sink takes
// 2 ms per Deliver after keeping the messages, like a store's round trip,
// so that the stop falls inside one.
func TestRsyslogReconnectAfterCut(t *testing.T) {
	for _, stop := range []string{"close", "shutdown"} {
		t.Run(stop, func(t *testing.T) {
			leakcheck.Check(t)
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := l.Addr().String()
			first := serveOn(t, l, nil)
			first.rec.delay = 2 * time.Millisecond
			fw := peer.StartRelpForwarder(t, peer.RelpOptions{Target: addr})

			const n, chunk = 5000, 250
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 1; i <= n; i += chunk {
					if err := sendSeq(fw.Input, i, i+chunk-1); err != nil {
						t.Error(err)
						return
					}
					time.Sleep(10 * time.Millisecond)
				}
			}()
			// Inside a chunk, just after a Deliver kept its messages.
			first.rec.wait(t, n/4+chunk/2, 30*time.Second)
			if stop == "shutdown" {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				if err := first.srv.Shutdown(ctx); err != nil {
					t.Errorf("Shutdown: %v", err)
				}
				cancel()
			}
			first.close(t)
			cut := first.srv.Stats()
			kept := len(seqCountsOf(first.rec))
			l2, err := net.Listen("tcp", addr)
			if err != nil {
				t.Fatalf("listen again on %s: %v", addr, err)
			}
			second := serveOn(t, l2, func(c *Config) { c.Sink = first.rec })
			wg.Wait()
			_, dups := waitAll(t, first.rec, fw.Input, n, 60*time.Second)
			t.Logf("%s: all %d messages arrived; stopped after %d acknowledged (%d kept); %d duplicates; %d sessions after",
				stop, n, cut.Messages, kept, dups, second.srv.Stats().Sessions)
			if stop == "shutdown" && dups != 0 {
				t.Errorf("%d duplicates after a graceful shutdown", dups)
			}
		})
	}
}

// seqCountsOf returns the counts of what rec has kept so far.
func seqCountsOf(rec *recorder) map[int]int {
	msgs, _, _ := rec.snapshot()
	return seqCounts(msgs)
}

// TestMalformedClientBesideRsyslog: raw TCP clients sending bad frames get
// serverclose with a reason, while an omrelp session goes on delivering.
func TestMalformedClientBesideRsyslog(t *testing.T) {
	leakcheck.Check(t)
	ts := startServer(t, func(c *Config) { c.MaxFrame = 64 << 10 })
	fw := peer.StartRelpForwarder(t, peer.RelpOptions{Target: ts.addr})
	const n = 3000
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; i <= n; i += 100 {
			if err := sendSeq(fw.Input, i, i+99); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	bad := []struct{ raw, reason string }{
		{"hello\n", "malformed frame"},
		{"1 syslog 1 x\n", "protocol error"},
		{"1 open 999999 ", "frame too large"},
		{"1 open 30 relp_version=0\ncommands=syslog\n2 syslog 3 abcdef\n", "malformed frame"},
	}
	for _, b := range bad {
		c := dial(t, ts.addr, nil)
		c.c.Write([]byte(b.raw))
		var reason string
		for {
			f, err := c.read()
			if err != nil {
				t.Fatalf("%q: %v before serverclose", b.raw, err)
			}
			if f.Command == relp.CmdServerClose {
				reason = string(f.Data)
				break
			}
		}
		if reason != b.reason {
			t.Errorf("%q: serverclose %q, want %q", b.raw, reason, b.reason)
		}
	}
	<-done
	_, dups := waitAll(t, ts.rec, fw.Input, n, 30*time.Second)
	st := ts.srv.Stats()
	if st.ProtocolErrors != uint64(len(bad)) || dups != 0 {
		t.Errorf("%d duplicates; stats %+v", dups, st)
	}
}

// TestRsyslogTLS: omrelp with tls="on" (librelp's OpenSSL) checks the
// server's certificate against a CA and its name, and delivers.
func TestRsyslogTLS(t *testing.T) {
	leakcheck.Check(t)
	ca := newTestCA(t, "zbridge-region")
	ts := startServer(t, func(c *Config) {
		c.TLSConfig = &tls.Config{Certificates: []tls.Certificate{ca.server}}
	})
	fw := peer.StartRelpForwarder(t, peer.RelpOptions{Target: ts.addr, TLS: &peer.RelpTLS{
		CACert: ca.caFile, AuthMode: "name", PermittedPeer: "zbridge-region",
	}})
	const n = 1000
	mustSendSeq(t, fw.Input, 1, n)
	counts, dups := waitAll(t, ts.rec, fw.Input, n, 30*time.Second)
	if dups != 0 || len(counts) < n {
		t.Errorf("%d duplicates, %d distinct", dups, len(counts))
	}
}

// TestRsyslogTLSUnknownCA: a server certificate from a CA omrelp does not
// trust is refused by librelp: nothing is delivered (and rsyslog disables
// the action). librelp 1.11 with OpenSSL did not refuse a certificate for
// another name than tls.permittedPeer with tls.authmode="name" (checked by
// hand): the region's certificate is checked against the CA only.
func TestRsyslogTLSUnknownCA(t *testing.T) {
	leakcheck.Check(t)
	ca, other := newTestCA(t, "zbridge-region"), newTestCA(t, "zbridge-region")
	ts := startServer(t, func(c *Config) {
		c.TLSConfig = &tls.Config{Certificates: []tls.Certificate{ca.server}}
	})
	fw := peer.StartRelpForwarder(t, peer.RelpOptions{Target: ts.addr, TLS: &peer.RelpTLS{
		CACert: other.caFile, AuthMode: "name", PermittedPeer: "zbridge-region",
	}})
	mustSendSeq(t, fw.Input, 1, 10)
	deadline := time.Now().Add(10 * time.Second)
	for ts.srv.Stats().Sessions == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	if st := ts.srv.Stats(); st.Messages != 0 || st.Sessions == 0 {
		t.Errorf("stats %+v, want a session tried and no message", st)
	}
}
