package region

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/ssh"

	"github.com/zbridge/zbridge/internal/peer"
	"github.com/zbridge/zbridge/linuxagent"
	"github.com/zbridge/zbridge/protocol"
	"github.com/zbridge/zbridge/protocol/client"
)

// The tests of this file check that a syslog sender's HOSTNAME, which
// nothing authenticates, cannot re-point a Linux target name: the region's
// Linux agents run in this process on 127.0.0.1 (the real system) and
// 127.0.0.2 (the attacker's), on the same port, the agent port; the
// attacker sends its syslog from 127.0.0.2.

var (
	realAddr     = netip.MustParseAddr("127.0.0.1")
	attackerAddr = netip.MustParseAddr("127.0.0.2")
)

// identityEnv is a region with an SSH key, accept-new host keys, and
// what the tests look at.
type identityEnv struct {
	t        *testing.T
	dir      string
	keyFile  string
	authFile string
	port     int // the agent port, on every address
	r        *Region
	logs     *lockedBuffer // the region's log
	clock    *testClock
}

func newIdentityEnv(t *testing.T) *identityEnv {
	t.Helper()
	e := &identityEnv{t: t, dir: t.TempDir(), logs: &lockedBuffer{}, clock: &testClock{}}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	blk, err := ssh.MarshalPrivateKey(priv, "region")
	if err != nil {
		t.Fatal(err)
	}
	e.keyFile = filepath.Join(e.dir, "region_key")
	if err := os.WriteFile(e.keyFile, pem.EncodeToMemory(blk), 0o600); err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	e.authFile = filepath.Join(e.dir, "authorized_keys")
	if err := os.WriteFile(e.authFile, ssh.MarshalAuthorizedKey(signer.PublicKey()), 0o600); err != nil {
		t.Fatal(err)
	}
	e.port = sharedPort(t, realAddr, attackerAddr)
	return e
}

// start starts the region with SYSLOG (TCP and UDP), COMMANDS and HTTP on
// 127.0.0.1 and the given static targets.
func (e *identityEnv) start(static ...LinuxTarget) {
	e.t.Helper()
	log := logrus.New()
	log.SetLevel(logrus.DebugLevel)
	log.SetOutput(e.logs)
	r, err := New(Config{Name: "ID", SyslogTCP: "127.0.0.1:0", SyslogUDP: "127.0.0.1:0", Commands: "127.0.0.1:0",
		HTTP: "127.0.0.1:0", Logger: log, SSHKeyFile: e.keyFile, KnownHostsFile: filepath.Join(e.dir, "known_hosts"),
		AcceptNewHostKeys: true, Linux: static, AgentPort: e.port})
	if err != nil {
		e.t.Fatal(err)
	}
	r.linux.now = e.clock.now // before Start: nothing reads it yet
	if err := r.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		r.Close()
		if e.t.Failed() {
			e.t.Logf("region log:\n%s", e.logs.String())
		}
	})
	e.r = r
}

// agent is a Linux agent run in this process.
type agent struct {
	srv  *linuxagent.Server
	logs *lockedBuffer
	key  ssh.PublicKey
}

// startAgent runs a Linux agent with a host key of its own on ip and the
// agent port.
func (e *identityEnv) startAgent(ip netip.Addr, name string) *agent {
	e.t.Helper()
	_, hk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		e.t.Fatal(err)
	}
	host, err := ssh.NewSignerFromKey(hk)
	if err != nil {
		e.t.Fatal(err)
	}
	a := &agent{logs: &lockedBuffer{}, key: host.PublicKey()}
	log := logrus.New()
	log.SetOutput(a.logs)
	a.srv, err = linuxagent.New(linuxagent.Config{HostKey: host, AuthorizedKeys: e.authFile, Logger: log, Name: name})
	if err != nil {
		e.t.Fatal(err)
	}
	l, err := net.Listen("tcp", net.JoinHostPort(ip.String(), strconv.Itoa(e.port)))
	if err != nil {
		e.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.srv.Serve(l)
	}()
	e.t.Cleanup(func() {
		a.srv.Close()
		<-done
	})
	return a
}

// agentAddr is the address the region dials for ip.
func (e *identityEnv) agentAddr(ip netip.Addr) string {
	return net.JoinHostPort(ip.String(), strconv.Itoa(e.port))
}

// sharedPort returns a TCP port free on each of ips just now.
func sharedPort(t *testing.T, ips ...netip.Addr) int {
	t.Helper()
	for range 100 {
		port := peer.FreePort(t)
		ok := true
		for _, ip := range ips {
			l, err := net.Listen("tcp", net.JoinHostPort(ip.String(), strconv.Itoa(port)))
			if err != nil {
				ok = false
				break
			}
			l.Close()
		}
		if ok {
			return port
		}
	}
	t.Fatal("no port free on every address")
	return 0
}

// rfc5424Time is a TIMESTAMP of RFC 5424, which allows six digits of
// fraction at most.
const rfc5424Time = "2006-01-02T15:04:05.000000Z07:00"

// syslogLine is an RFC 5424 message with the given HOSTNAME, octet-counted.
func syslogLine(hostname, msg string) []byte {
	m := fmt.Sprintf("<13>1 %s %s forger - - - %s", time.Now().UTC().Format(rfc5424Time), hostname, msg)
	return []byte(strconv.Itoa(len(m)) + " " + m)
}

// sendTCP sends one syslog message naming hostname over a TCP connection
// from the local address from, as an attacker does, and closes it.
func (e *identityEnv) sendTCP(from netip.Addr, hostname string) {
	e.t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: from.AsSlice()}}
	c, err := d.Dial("tcp", e.r.Addr("syslog").String())
	if err != nil {
		e.t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(syslogLine(hostname, "forged")); err != nil {
		e.t.Fatal(err)
	}
}

// sendUDP sends one syslog datagram naming hostname from from.
func (e *identityEnv) sendUDP(from netip.Addr, hostname string) {
	e.t.Helper()
	c, err := net.DialUDP("udp", &net.UDPAddr{IP: from.AsSlice()}, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(e.r.Addr("syslog-udp").String())))
	if err != nil {
		e.t.Fatal(err)
	}
	defer c.Close()
	m := fmt.Sprintf("<13>1 %s %s forger - - - forged", time.Now().UTC().Format(rfc5424Time), hostname)
	if _, err := c.Write([]byte(m)); err != nil {
		e.t.Fatal(err)
	}
}

// waitStored waits until the store holds n events in all: the SYSLOG
// server calls OnSender before it appends, so the region has dealt with
// every sender by then.
// waitStored waits until n syslog events are stored (the region's own
// messages are not counted).
func (e *identityEnv) waitStored(n uint64) {
	e.t.Helper()
	waitUntil(e.t, 60*time.Second, fmt.Sprintf("%d events stored", n), func() bool {
		evs, _, err := e.r.Store().Read(context.Background(), protocol.ID{}, 100000, nil)
		var got uint64
		for _, ev := range evs {
			if ev.Source == protocol.SourceSyslog {
				got++
			}
		}
		return err == nil && got >= n
	})
}

// row returns the AGENTS row of name in the given state ("" for any state
// but refused).
func (e *identityEnv) row(name, state string) (AgentInfo, bool) {
	for _, a := range e.r.Agents() {
		if a.Name != name {
			continue
		}
		if state == "" && a.State != StateRefused || state != "" && a.State == state {
			return a, true
		}
	}
	return AgentInfo{}, false
}

// command runs a command on target through COMMANDS.
func (e *identityEnv) command(target, line string) error {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, client.Config{Addr: e.r.Addr("commands").String(), Client: "identity-test"})
	if err != nil {
		e.t.Fatal(err)
	}
	defer c.Close()
	reply, err := c.Command(ctx, client.CommandRequest{Target: target, Command: line}, nil)
	if err != nil {
		return err
	}
	if reply.RC == nil || *reply.RC != 0 {
		return fmt.Errorf("command %q on %s: reply %+v", line, target, reply)
	}
	return nil
}

// metric returns the value of a sample of the region's /metrics, such as
// `zbridge_learned_names` or `zbridge_learned_name_conflicts_total{reason="static"}`.
func (e *identityEnv) metric(sample string) float64 {
	e.t.Helper()
	resp, err := http.Get("http://" + e.r.Addr("http").String() + "/metrics")
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				e.t.Fatalf("metrics line %q: %v", line, err)
			}
			return f
		}
	}
	e.t.Fatalf("no sample %s in /metrics:\n%s", sample, body)
	return 0
}

// checkConflicts checks every reason's count of refused claims.
func (e *identityEnv) checkConflicts(want map[string]float64) {
	e.t.Helper()
	for _, reason := range refusalReasons() {
		if got := e.metric(`zbridge_learned_name_conflicts_total{reason="` + reason + `"}`); got != want[reason] {
			e.t.Errorf("conflicts with reason %s: %v, want %v", reason, got, want[reason])
		}
	}
}

// checkRunsOn runs a command on target and checks that it ran on the
// agent on, not on the agent not.
func (e *identityEnv) checkRunsOn(target string, on, not *agent) {
	e.t.Helper()
	marker := fmt.Sprintf("identity-marker-%d", time.Now().UnixNano())
	if err := e.command(target, "echo "+marker); err != nil {
		e.t.Fatalf("command on %s: %v", target, err)
	}
	if !strings.Contains(on.logs.String(), marker) {
		e.t.Errorf("the command on %s did not run on the real system's agent", target)
	}
	if strings.Contains(not.logs.String(), marker) {
		e.t.Errorf("the command on %s ran on the attacker's agent", target)
	}
}

// TestForgedHostnameStaticTarget: one syslog line over TCP from another
// address naming a static target (--linux b=...) leaves it where it is; the
// claim is refused, logged, counted and listed.
func TestForgedHostnameStaticTarget(t *testing.T) {
	e := newIdentityEnv(t)
	real := e.startAgent(realAddr, "real")
	attacker := e.startAgent(attackerAddr, "attacker")
	e.start(LinuxTarget{Name: "b", Addr: e.agentAddr(realAddr)})
	waitUntil(t, 60*time.Second, "b connected", func() bool {
		a, ok := e.row("b", "")
		return ok && a.State == "connected"
	})

	e.sendTCP(attackerAddr, "b")
	e.sendTCP(attackerAddr, "B") // names are case-insensitive
	e.waitStored(2)

	if a, _ := e.row("b", ""); a.Addr != e.agentAddr(realAddr) {
		t.Errorf("b is at %q, want %q", a.Addr, e.agentAddr(realAddr))
	}
	ref, ok := e.row("b", StateRefused)
	if !ok {
		t.Fatalf("no refused row for b in %+v", e.r.Agents())
	}
	if ref.Addr != attackerAddr.String() || !strings.Contains(ref.Detail, e.agentAddr(realAddr)) ||
		!strings.Contains(ref.Detail, "static") {
		t.Errorf("refused row %+v: want the claimant %s and the holder %s", ref, attackerAddr, e.agentAddr(realAddr))
	}
	if _, ok := e.row("B", ""); ok {
		t.Error("B was learned beside b")
	}
	e.checkRunsOn("linux:b", real, attacker)
	e.checkRunsOn("linux:B", real, attacker)
	e.checkConflicts(map[string]float64{RefusedStatic: 2})
	if logs := e.logs.String(); !strings.Contains(logs, "level=warning") || !strings.Contains(logs, "claimed_from=127.0.0.2") ||
		!strings.Contains(logs, "held_by=\""+e.agentAddr(realAddr)+"\"") && !strings.Contains(logs, "held_by="+e.agentAddr(realAddr)) {
		t.Error("the refusal was not logged at warning level with the claimant and the holder")
	}
}

// TestForgedHostnameLearnedTarget: a system learned from its syslog (the
// real logger program, from 127.0.0.1) keeps its name when another address
// claims it.
func TestForgedHostnameLearnedTarget(t *testing.T) {
	e := newIdentityEnv(t)
	real := e.startAgent(realAddr, "real")
	attacker := e.startAgent(attackerAddr, "attacker")
	e.start()
	peer.RunLogger(t, e.r.Addr("syslog").String(), "-t", "identity", "hello from the real system")
	var name string
	waitUntil(t, 60*time.Second, "the logger's host learned and connected", func() bool {
		for _, a := range e.r.Agents() {
			if a.Addr == e.agentAddr(realAddr) && a.State == "connected" {
				name = a.Name
				return true
			}
		}
		return false
	})

	e.sendTCP(attackerAddr, name)
	e.sendTCP(attackerAddr, strings.ToUpper(name))
	e.waitStored(3)

	if a, _ := e.row(name, ""); a.Addr != e.agentAddr(realAddr) {
		t.Errorf("%s is at %q, want %q", name, a.Addr, e.agentAddr(realAddr))
	}
	ref, ok := e.row(name, StateRefused)
	if !ok {
		t.Fatalf("no refused row for %s in %+v", name, e.r.Agents())
	}
	if ref.Addr != attackerAddr.String() || !strings.Contains(ref.Detail, realAddr.String()) {
		t.Errorf("refused row %+v: want the claimant %s and the holder %s", ref, attackerAddr, realAddr)
	}
	e.checkRunsOn("linux:"+name, real, attacker)
	e.checkConflicts(map[string]float64{RefusedLearned: 2})
	if got := e.metric("zbridge_learned_names"); got != 1 {
		t.Errorf("learned names %v, want 1", got)
	}
}

// TestForgedHostnameUDP: a forged datagram, naming a static target or a
// new name, has no effect at all: UDP senders are not learned.
func TestForgedHostnameUDP(t *testing.T) {
	e := newIdentityEnv(t)
	real := e.startAgent(realAddr, "real")
	attacker := e.startAgent(attackerAddr, "attacker")
	e.start(LinuxTarget{Name: "b", Addr: e.agentAddr(realAddr)})
	waitUntil(t, 60*time.Second, "b connected", func() bool {
		a, ok := e.row("b", "")
		return ok && a.State == "connected"
	})
	before := e.r.Agents()

	e.sendUDP(attackerAddr, "b")
	e.sendUDP(attackerAddr, "ghost")
	e.waitStored(2)

	after := e.r.Agents()
	if len(after) != len(before) || len(after) != 1 || after[0].Name != "b" || after[0].Addr != e.agentAddr(realAddr) {
		t.Errorf("agents after the datagrams %+v, want b at %s alone", after, e.agentAddr(realAddr))
	}
	e.checkRunsOn("linux:b", real, attacker)
	e.checkConflicts(nil)
	if got := e.metric("zbridge_learned_names"); got != 0 {
		t.Errorf("learned names %v, want 0", got)
	}
}

// TestLearnedNamesBounded: 1,500 distinct names claimed over TCP, first ten
// from one address, then four per address from 373 more, leave at most
// DefaultMaxNamesPerAddr per address and DefaultMaxLearned in all: the
// pool, the learned names and the refusals listed stay bounded.
func TestLearnedNamesBounded(t *testing.T) {
	e := newIdentityEnv(t) // no agents: the pool's dials are refused, which changes nothing here
	e.start()
	const total, first = 1500, 10
	claim := func(from []netip.Addr, names []string) {
		var wg sync.WaitGroup
		errs := make(chan error, len(names))
		for i, name := range names {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d := net.Dialer{LocalAddr: &net.TCPAddr{IP: from[i].AsSlice()}}
				c, err := d.Dial("tcp", e.r.Addr("syslog").String())
				if err != nil {
					errs <- err
					return
				}
				defer c.Close()
				if _, err := c.Write(syslogLine(name, "claim")); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}
	var names []string
	var from []netip.Addr
	for i := range first {
		names = append(names, fmt.Sprintf("one-addr-%d", i))
		from = append(from, attackerAddr)
	}
	claim(from, names)
	e.waitStored(first)
	// Then the rest, 50 connections at a time (SYSLOG serves 200 at once).
	sent := uint64(first)
	base := netip.MustParseAddr("127.0.1.1")
	for i := first; i < total; {
		names, from = names[:0], from[:0]
		for ; i < total && len(names) < 50; i++ {
			names = append(names, fmt.Sprintf("Many-%04d", i)) // upper case: stored lower
			a := base
			for range (i - first) / DefaultMaxNamesPerAddr {
				a = a.Next()
			}
			from = append(from, a)
		}
		claim(from, names)
		sent += uint64(len(names))
		e.waitStored(sent)
	}

	perAddr := map[string]int{}
	learned, refused, upper := 0, 0, false
	for _, a := range e.r.Agents() {
		if a.State == StateRefused {
			refused++
			continue
		}
		learned++
		host, _, _ := net.SplitHostPort(a.Addr)
		perAddr[host]++
		if a.Name != strings.ToLower(a.Name) && !upper {
			upper = true
			t.Errorf("learned name %q is not lower case", a.Name)
		}
	}
	if learned != DefaultMaxLearned {
		t.Errorf("%d names learned, want the cap %d", learned, DefaultMaxLearned)
	}
	if got := len(e.r.linux.pool.Hosts()); got != DefaultMaxLearned {
		t.Errorf("the pool holds %d hosts, want %d", got, DefaultMaxLearned)
	}
	if refused != RefusalsShown {
		t.Errorf("%d refusals listed, want the latest %d", refused, RefusalsShown)
	}
	for host, n := range perAddr {
		if n > DefaultMaxNamesPerAddr {
			t.Errorf("%s holds %d names, more than %d", host, n, DefaultMaxNamesPerAddr)
		}
	}
	if perAddr[attackerAddr.String()] != DefaultMaxNamesPerAddr {
		t.Errorf("%s holds %d names, want %d", attackerAddr, perAddr[attackerAddr.String()], DefaultMaxNamesPerAddr)
	}
	e.checkConflicts(map[string]float64{
		RefusedCapAddr:  first - DefaultMaxNamesPerAddr,
		RefusedCapTotal: total - DefaultMaxLearned - (first - DefaultMaxNamesPerAddr),
	})
	if got := e.metric("zbridge_learned_names"); got != DefaultMaxLearned {
		t.Errorf("learned names %v, want %d", got, DefaultMaxLearned)
	}
}

// TestLearnedNameExpiry: a learned name whose system went away stays its
// own while within the TTL; after it, another address may claim it, but
// the host there must present the key pinned for the name, and a host with
// another key is refused even with accept-new.
func TestLearnedNameExpiry(t *testing.T) {
	e := newIdentityEnv(t)
	real := e.startAgent(realAddr, "real")
	e.startAgent(attackerAddr, "attacker")
	e.start()
	e.sendTCP(realAddr, "lx-exp")
	waitUntil(t, 60*time.Second, "lx-exp connected", func() bool {
		a, ok := e.row("lx-exp", "")
		return ok && a.State == "connected"
	})
	real.srv.Close() // the real system goes away
	waitUntil(t, 60*time.Second, "lx-exp down", func() bool {
		a, ok := e.row("lx-exp", "")
		return ok && a.State != "connected"
	})

	e.clock.advance(DefaultLearnTTL / 2)
	e.sendTCP(attackerAddr, "lx-exp")
	e.waitStored(2)
	if a, _ := e.row("lx-exp", ""); a.Addr != e.agentAddr(realAddr) {
		t.Fatalf("within the TTL lx-exp moved to %q", a.Addr)
	}
	if _, ok := e.row("lx-exp", StateRefused); !ok {
		t.Error("the claim within the TTL was not refused")
	}

	e.clock.advance(DefaultLearnTTL)
	e.sendTCP(attackerAddr, "lx-exp")
	e.waitStored(3)
	a := waitRow(t, e, "lx-exp", "refused for its host key", func(a AgentInfo) bool {
		return a.Addr == e.agentAddr(attackerAddr) && a.State == "down" && strings.Contains(a.Detail, "host key mismatch")
	})
	if !strings.Contains(a.Detail, "lx-exp") {
		t.Errorf("detail %q does not say which name's pin refused the key", a.Detail)
	}
	err := e.command("linux:lx-exp", "echo never")
	if err == nil || !strings.Contains(err.Error(), "not-connected") && !strings.Contains(err.Error(), "not connected") {
		t.Errorf("command on the moved name: %v, want not connected", err)
	}
	kh, _ := os.ReadFile(filepath.Join(e.dir, "known_hosts"))
	if n := bytes.Count(kh, []byte("\n")); n != 1 || !bytes.HasPrefix(kh, []byte("lx-exp@zbridge,")) {
		t.Errorf("known_hosts %q, want the one line of the real system", kh)
	}
}

// waitRow waits until name's row (not a refused one) satisfies ok.
func waitRow(t *testing.T, e *identityEnv, name, what string, ok func(AgentInfo) bool) AgentInfo {
	t.Helper()
	var a AgentInfo
	waitUntil(t, 60*time.Second, name+" "+what, func() bool {
		var found bool
		a, found = e.row(name, "")
		return found && ok(a)
	})
	return a
}

// waitUntil polls cond until it holds, failing the test after timeout.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not %s after %v", what, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// testClock is the region's clock, moved forward by the test.
type testClock struct{ offset atomic.Int64 }

func (c *testClock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *testClock) advance(d time.Duration) { c.offset.Add(int64(d)) }

// lockedBuffer is a bytes.Buffer safe for concurrent use.
type lockedBuffer struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestAddressAsHostName: a sender may call itself by its own address, but
// not by another's: linux:10.1.2.3 must not reach whoever claims that name.
func TestAddressAsHostName(t *testing.T) {
	e := newIdentityEnv(t)
	e.start()
	e.sendTCP(attackerAddr, "127.0.0.1")
	e.sendTCP(attackerAddr, "127.0.0.2")
	e.waitStored(2)
	if a, ok := e.row("127.0.0.1", StateRefused); !ok || !strings.Contains(a.Detail, "another address") {
		t.Errorf("a sender at %s claiming the name 127.0.0.1: row %+v, %v; want refused", attackerAddr, a, ok)
	}
	if _, ok := e.row("127.0.0.2", ""); !ok {
		t.Errorf("a sender claiming its own address as its name was not learned: %+v", e.r.Agents())
	}
}
