package region

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zbridge/zbridge/gateway/store"
	"github.com/zbridge/zbridge/internal/peer"
	"github.com/zbridge/zbridge/protocol"
	"github.com/zbridge/zbridge/protocol/relp"
)

// relpClient is one RELP session, as librelp opens it.
type relpClient struct {
	c    net.Conn
	rd   *relp.Reader
	txnr int // of the last frame sent
}

// dialRELP opens a RELP session with the region's RELP server.
func dialRELP(t *testing.T, r *Region) *relpClient {
	t.Helper()
	c, err := net.Dial("tcp", r.Addr("relp").String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	rc := &relpClient{c: c, rd: relp.NewReader(bufio.NewReader(c), 0)}
	offers := relp.AppendOffers(nil, []relp.Offer{
		{Name: relp.OfferVersion, Values: []string{"0"}},
		{Name: relp.OfferCommands, Values: []string{relp.CmdSyslog}},
	})
	f, err := rc.exchange(relp.CmdOpen, offers)
	if err != nil {
		t.Fatalf("RELP open: %v", err)
	}
	if resp, err := relp.ParseResponse(f.Data); f.Command != relp.CmdRsp || err != nil || resp.Code != relp.StatusOK {
		t.Fatalf("RELP open answered %d %s %q", f.Txnr, f.Command, f.Data)
	}
	return rc
}

// exchange sends one command and returns the first frame the server sends
// after it.
func (rc *relpClient) exchange(cmd string, data []byte) (relp.Frame, error) {
	rc.txnr = relp.NextTxnr(rc.txnr)
	if _, err := rc.c.Write(relp.AppendFrame(nil, relp.Frame{Txnr: rc.txnr, Command: cmd, Data: data})); err != nil {
		return relp.Frame{}, err
	}
	f, err := rc.rd.ReadFrame()
	f.Data = []byte(string(f.Data))
	return f, err
}

// send sends one syslog message and reports whether the server
// acknowledged it (rsp 200). When it did not, the server must have ended
// the session with serverclose, unanswered, as librelp needs to send the
// message again: anything else fails the test.
func (rc *relpClient) send(t *testing.T, msg string) bool {
	t.Helper()
	f, err := rc.exchange(relp.CmdSyslog, []byte(msg))
	if err != nil {
		t.Fatalf("RELP syslog %d: %v", rc.txnr, err)
	}
	if f.Command == relp.CmdRsp {
		resp, err := relp.ParseResponse(f.Data)
		if f.Txnr != rc.txnr || err != nil || resp.Code != relp.StatusOK {
			t.Fatalf("RELP syslog %d answered %d rsp %q", rc.txnr, f.Txnr, f.Data)
		}
		return true
	}
	if f.Txnr != 0 || f.Command != relp.CmdServerClose {
		t.Fatalf("RELP syslog %d answered %d %s %q, want rsp 200 or serverclose", rc.txnr, f.Txnr, f.Command, f.Data)
	}
	if f, err := rc.rd.ReadFrame(); err != io.EOF {
		t.Fatalf("after serverclose: %d %s %q, %v; want the connection closed", f.Txnr, f.Command, f.Data, err)
	}
	return false
}

// relpMessage is an RFC 5424 message, as rsyslog's
// RSYSLOG_SyslogProtocol23Format sends it.
func relpMessage(text string) string {
	return "<13>1 2026-03-01T10:00:00Z web1 app - - - " + text + "\n"
}

// eachStored calls fn with every event st holds, oldest first.
func eachStored(t *testing.T, st store.Store, fn func(*protocol.Event)) {
	t.Helper()
	var evs []*protocol.Event
	var after protocol.ID
	for {
		var err error
		evs, _, err = st.Read(context.Background(), after, 1000, evs[:0])
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		if len(evs) == 0 {
			return
		}
		for _, e := range evs {
			fn(e)
		}
		after = evs[len(evs)-1].ID
	}
}

// storedTexts returns how many events of st hold each of texts.
func storedTexts(t *testing.T, st store.Store, texts ...string) map[string]int {
	t.Helper()
	n := make(map[string]int)
	eachStored(t, st, func(e *protocol.Event) {
		for _, x := range texts {
			if strings.TrimSpace(e.Text) == x {
				n[x]++
			}
		}
	})
	return n
}

// TestRELPRedisDown: with --redis, RELP acknowledges a message (rsp 200)
// only once Redis has it, and min_replicas replicas when set. While Redis
// is down, or no replica acknowledges, the Redis store could take the
// message only into the region's memory, which a crash or stop of the
// region loses: the message must go unanswered, the session ended with
// serverclose, so that librelp keeps it and sends it again. Sending it
// again while Redis is still down leaves no copy in the region's buffer
// either. The region is then stopped before Redis is back, and the message
// sent again to a new one is acknowledged and stored.
func TestRELPRedisDown(t *testing.T) {
	key := haKeyFile(t)
	withRELP := func(c *Config) { c.RELP = "127.0.0.1:0" }

	t.Run("down", func(t *testing.T) {
		addr, rp := peer.StartRedisOpts(t, peer.RedisOptions{AppendOnly: true})
		url := "redis://" + addr + "/0"
		r := haRegion(t, "T", url, key, withRELP)
		if !dialRELP(t, r).send(t, relpMessage("while-up")) {
			t.Fatal("a message sent with Redis up was not acknowledged")
		}

		rp.Stop() // SIGTERM: Redis keeps what it had
		if dialRELP(t, r).send(t, relpMessage("must-not-be-lost")) {
			h := r.Store().(store.HealthReporter).Health()
			t.Fatalf("a message was acknowledged (rsp 200) while Redis was down; the store has it in memory only (health %+v)", h)
		}
		buffered := r.Store().(store.HealthReporter).Health().Buffered
		// librelp sends it again, on new sessions, while Redis is still down.
		for range 3 {
			if dialRELP(t, r).send(t, relpMessage("must-not-be-lost")) {
				t.Fatal("a message sent again while Redis was down was acknowledged")
			}
		}
		h := r.Store().(store.HealthReporter).Health()
		t.Logf("store health after 4 tries with Redis down: %+v", h)
		if !h.Degraded || h.Buffered != buffered {
			t.Errorf("health %+v after the message was sent again, want degraded and still %d buffered: each try must not leave a copy in memory", h, buffered)
		}

		r.Close() // stopped (or crashed) before Redis is back: its buffer is gone
		rp.Restart()
		r2 := haRegion(t, "T", url, key, withRELP)
		if !dialRELP(t, r2).send(t, relpMessage("must-not-be-lost")) {
			t.Fatalf("the message sent again with Redis back was not acknowledged (health %+v)",
				r2.Store().(store.HealthReporter).Health())
		}
		got := storedTexts(t, r2.Store(), "while-up", "must-not-be-lost")
		if got["while-up"] != 1 || got["must-not-be-lost"] < 1 {
			t.Errorf("in Redis after the restart: %v, want each message", got)
		}
		t.Logf("in Redis: %v", got)
	})

	t.Run("no replica", func(t *testing.T) {
		addr, _ := peer.StartRedis(t)
		url := "redis://" + addr + "/0?min_replicas=1&replica_timeout=100ms"
		r := haRegion(t, "T", url, key, withRELP)
		if dialRELP(t, r).send(t, relpMessage("unreplicated")) {
			t.Fatalf("a message was acknowledged while no replica had it (health %+v)",
				r.Store().(store.HealthReporter).Health())
		}
		t.Logf("store health: %+v", r.Store().(store.HealthReporter).Health())
	})
}

// seqPattern finds the number in the messages TestRsyslogRELPRedisOutage sends.
var seqPattern = regexp.MustCompile(`relpseq=(\d+)`)

// sendSeq sends relpseq=from..to (RFC 5424, octet-counted) to a syslog
// input over one TCP connection.
func sendSeq(t *testing.T, input string, from, to int) {
	t.Helper()
	c, err := net.Dial("tcp", input)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var b []byte
	for i := from; i <= to; i++ {
		m := fmt.Sprintf("<13>1 - web1 app - - - relpseq=%d", i)
		b = fmt.Appendf(b, "%d %s", len(m), m)
	}
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
}

// storedSeqs counts the events of st with each relpseq number.
func storedSeqs(t *testing.T, st store.Store) map[int]int {
	t.Helper()
	n := make(map[int]int)
	eachStored(t, st, func(e *protocol.Event) {
		if m := seqPattern.FindStringSubmatch(e.Text); m != nil {
			k, _ := strconv.Atoi(m[1])
			n[k]++
		}
	})
	return n
}

// TestRsyslogRELPRedisOutage: the real rsyslog (omrelp) forwards to a
// region on Redis. Redis stops; messages sent meanwhile are not
// acknowledged, and the region is stopped before Redis is back, as in a
// crash. With Redis back and the region started again on the same
// address, rsyslog sends them again, and every message ends up in Redis.
// (Before the fix, the region acknowledged them from its buffer in
// memory, and they were lost with it.)
func TestRsyslogRELPRedisOutage(t *testing.T) {
	key := haKeyFile(t)
	redisAddr, rp := peer.StartRedisOpts(t, peer.RedisOptions{AppendOnly: true})
	url := "redis://" + redisAddr + "/0"
	relpAddr := peer.Addr(peer.FreePort(t))
	configure := func(c *Config) { c.RELP = relpAddr } // and flood control off (Config.Flood zero)
	r := haRegion(t, "T", url, key, configure)
	fw := peer.StartRelpForwarder(t, peer.RelpOptions{Target: relpAddr})

	const half, n = 50, 100
	// waitStored waits until relpseq=1..upto are stored, nudging rsyslog
	// (relpseq=0) meanwhile: librelp notices a closed session, and sends
	// what it did not have acknowledged again, when it next has a message
	// to send.
	waitStored := func(st store.Store, upto int, within time.Duration) map[int]int {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			got := storedSeqs(t, st)
			missing := 0
			for i := 1; i <= upto; i++ {
				if got[i] == 0 {
					missing++
				}
			}
			if missing == 0 {
				return got
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d of relpseq=1..%d not stored after %v", missing, upto, within)
			}
			sendSeq(t, fw.Input, 0, 0)
			time.Sleep(300 * time.Millisecond)
		}
	}
	sendSeq(t, fw.Input, 1, half)
	waitStored(r.Store(), half, 30*time.Second)

	rp.Stop()
	sendSeq(t, fw.Input, half+1, n)
	// rsyslog sends them; the region refuses them (the first Append after
	// Redis went away may take go-redis's retries, seconds, to fail), or
	// acknowledges them all (the defect this guards against).
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		st := r.relp.Stats()
		if st.DeliverErrors > 0 || st.Messages >= n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("RELP neither refused nor acknowledged the messages within 30s of Redis stopping: %+v", st)
		}
	}
	st := r.relp.Stats()
	t.Logf("with Redis down: store health %+v; RELP %+v", r.Store().(store.HealthReporter).Health(), st)
	if st.DeliverErrors == 0 {
		t.Errorf("RELP acknowledged every message while Redis was down; none was refused")
	}
	r.Close()
	rp.Restart()
	r2 := haRegion(t, "T", url, key, configure)
	got := waitStored(r2.Store(), n, 60*time.Second)
	dups := 0
	for i := 1; i <= n; i++ {
		dups += max(got[i]-1, 0)
	}
	t.Logf("all %d messages stored; %d stored twice or more", n, dups)
}
