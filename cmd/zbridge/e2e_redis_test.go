//go:build !lean

package main

// End-to-end tests of regions sharing one Redis (`zbridge region --redis`):
// commands routed to the region holding their target, durable
// subscriptions and consumer groups across regions, and a region riding
// out a Redis restart. Real redis-server, real agents, real `zbridge tail`
// and `zbridge cmd`, all on loopback.

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/zbridge/zbridge/internal/peer"
	"github.com/zbridge/zbridge/protocol"
)

// redisURL is the --redis value for a redis-server at addr, database 0.
func redisURL(addr string) string { return "redis://" + addr + "/0" }

// syslogFlow is a steady flow of numbered messages ("PREFIX i", i from 0)
// to a region's SYSLOG over one octet-counted TCP connection, paced to last
// about as long as asked, for a test to disturb midway.
type syslogFlow struct {
	n      int
	sent   atomic.Int64  // messages written so far
	done   chan error    // the sender's result, once: nil when all n were written
	exited chan struct{} // closed when the sender has returned
	stop   chan struct{} // closed at cleanup
}

func startFlow(t *testing.T, addr, host, prefix string, n int, d time.Duration) *syslogFlow {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	f := &syslogFlow{n: n, done: make(chan error, 1), exited: make(chan struct{}), stop: make(chan struct{})}
	const batch = 10
	tick := d / time.Duration((n+batch-1)/batch)
	go func() {
		defer close(f.exited)
		defer c.Close()
		f.done <- f.send(c, host, prefix, batch, tick)
	}()
	t.Cleanup(func() {
		close(f.stop)
		c.Close() // unblocks a write
		<-f.exited
	})
	return f
}

func (f *syslogFlow) send(c net.Conn, host, prefix string, batch int, tick time.Duration) error {
	tk := time.NewTicker(tick)
	defer tk.Stop()
	var b strings.Builder
	for i := 0; i < f.n; {
		b.Reset()
		j := i
		for ; j < f.n && j < i+batch; j++ {
			b.WriteString(octet(msg5424(host, fmt.Sprintf("%s %d", prefix, j))))
		}
		// A region that stops reading its syslog senders is a failure too.
		c.SetWriteDeadline(time.Now().Add(60 * time.Second))
		if _, err := io.WriteString(c, b.String()); err != nil {
			return fmt.Errorf("sending messages %d to %d: %w", i, j-1, err)
		}
		i = j
		f.sent.Store(int64(i))
		select {
		case <-f.stop:
			return fmt.Errorf("stopped after %d messages", i)
		case <-tk.C:
		}
	}
	return nil
}

// wait waits for the sender to have written every message.
func (f *syslogFlow) wait(t *testing.T, within time.Duration) {
	t.Helper()
	select {
	case err := <-f.done:
		if err != nil {
			t.Fatalf("syslog flow: %v", err)
		}
	case <-time.After(within):
		t.Fatalf("syslog flow: not all sent within %v (%d of %d)", within, f.sent.Load(), f.n)
	}
}

// numbered returns the numbers of the events whose text is "PREFIX N", in
// the order they came.
func numbered(evs []protocol.Event, prefix string) []int {
	var out []int
	for _, e := range evs {
		s, ok := strings.CutPrefix(e.Text, prefix+" ")
		if !ok {
			continue
		}
		if i, err := strconv.Atoi(s); err == nil {
			out = append(out, i)
		}
	}
	return out
}

// tally counts how often each of 0..n-1 occurs in nums: it returns the
// numbers missing, those seen more than once (with their counts), and the
// number of repeats in all.
func tally(nums []int, n int) (missing []int, repeated map[int]int, repeats int) {
	seen := make([]int, n)
	for _, i := range nums {
		if i >= 0 && i < n {
			seen[i]++
		}
	}
	repeated = map[int]int{}
	for i, c := range seen {
		switch {
		case c == 0:
			missing = append(missing, i)
		case c > 1:
			repeated[i] = c
			repeats += c - 1
		}
	}
	return missing, repeated, repeats
}

// short abbreviates a list of numbers for a failure message.
func short(xs []int) string {
	if len(xs) > 20 {
		return fmt.Sprintf("%v … (%d in all)", xs[:20], len(xs))
	}
	return fmt.Sprint(xs)
}

// waitUntil polls cond every 100ms until it holds or within passes.
func waitUntil(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// healthz returns the region's /healthz status code and "status" field
// (empty if it could not be read), and the body.
func healthz(httpAddr string) (code int, status, body string) {
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + httpAddr + "/healthz")
	if err != nil {
		return 0, "", err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var h struct {
		Status string `json:"status"`
	}
	json.Unmarshal(b, &h)
	return resp.StatusCode, h.Status, string(b)
}

// metric returns the value of the unlabelled sample name in the region's
// /metrics, and whether it was there.
func metric(t *testing.T, httpAddr, name string) (float64, bool) {
	t.Helper()
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatalf("/metrics: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("/metrics: %q: %v", l, err)
			}
			return f, true
		}
	}
	return 0, false
}

// stopTail interrupts a tail that runs until interrupted and waits for it.
func stopTail(t *testing.T, tp *tailProc) {
	t.Helper()
	tp.cmd.Process.Signal(syscall.SIGINT)
	if code := tp.wait(t, 30*time.Second); code != 0 {
		t.Errorf("tail exited %d after SIGINT; stderr:\n%s", code, tp.stderr.String())
	}
}

// operatorLines runs a region operator command and returns its lines,
// split into fields.
func operatorLines(t *testing.T, r *testRegion, word string) [][]string {
	t.Helper()
	res := runCmdProc(t, r, "region", "--", word)
	if res.code != 0 {
		t.Fatalf("region %s: exit %d stdout %q stderr %q", word, res.code, res.stdout, res.stderr)
	}
	var out [][]string
	for _, l := range strings.Split(strings.TrimRight(res.stdout, "\n"), "\n") {
		out = append(out, strings.Fields(l))
	}
	return out
}

// TestCrossRegionCommand: a command entering region RB for a Linux agent
// that only region RA holds runs on that agent through Redis, with its
// output, standard error apart, and return code unchanged.
func TestCrossRegionCommand(t *testing.T) {
	e2e(t)
	start := time.Now()
	redisAddr, _ := peer.StartRedis(t)
	e := newAgentEnv(t)
	policy := filepath.Join(e.dir, "policy")
	os.WriteFile(policy, []byte("shell yes\ndefault allow\n"), 0o644)
	agent := e.startAgent(t, "xweb1", zbridgeBin, "", "--policy", policy)
	// Only RA has the SSH key, the known hosts and the target.
	a := startRegion(t, e.regionArgs("--linux", "xweb1="+agent, "--redis", redisURL(redisAddr), "--name", "RA")...)
	b := startRegion(t, "--redis", redisURL(redisAddr), "--name", "RB")
	waitConnected(t, a, "linux:xweb1")

	var agents [][]string
	listed := waitUntil(60*time.Second, func() bool {
		agents = operatorLines(t, b, "AGENTS")
		for _, f := range agents {
			if len(f) > 0 && f[0] == "xweb1" && slices.Contains(f, "RA") && slices.Contains(f, "connected") {
				return true
			}
		}
		return false
	})
	if !listed {
		t.Fatalf("RB's AGENTS never listed xweb1 connected in region RA:\n%v", agents)
	}
	if len(agents) < 2 || !slices.Equal(agents[0], []string{"ZBR011I", "REGION", "RB", "AGENTS"}) || !slices.Contains(agents[1], "REGION") {
		t.Errorf("AGENTS is not message ZBR011I with a heading that has a REGION column: %v", agents)
	}
	regions := operatorLines(t, b, "REGIONS")
	for _, name := range []string{"RA", "RB"} {
		if !slices.ContainsFunc(regions, func(f []string) bool { return len(f) > 1 && f[0] == name && f[1] == "alive" }) {
			t.Errorf("RB's REGIONS does not list %s alive:\n%v", name, regions)
		}
	}
	t.Logf("regions and agent ready after %v", time.Since(start).Round(time.Millisecond))

	res := runCmdProc(t, b, "linux:xweb1", "--", "echo", "hello from the agent of RA")
	if res.code != 0 || res.stdout != "hello from the agent of RA\n" || res.stderr != "" {
		t.Fatalf("echo through RB: exit %d stdout %q stderr %q", res.code, res.stdout, res.stderr)
	}
	res = runCmdProc(t, b, "linux:xweb1", "--", "sh", "-c", "echo out1; echo err1 >&2; echo out2; exit 7")
	if res.code != 7 || res.stdout != "out1\nout2\n" || res.stderr != "err1\n" {
		t.Fatalf("sh through RB: exit %d stdout %q stderr %q; want 7, \"out1\\nout2\\n\", \"err1\\n\"",
			res.code, res.stdout, res.stderr)
	}
	// Both went through Redis: RB forwarded them and RA ran them for it.
	if v, ok := metric(t, b.http, "zbridge_commands_forwarded_total"); !ok || v != 2 {
		t.Errorf("RB zbridge_commands_forwarded_total = %v (present %v), want 2", v, ok)
	}
	if v, ok := metric(t, a.http, "zbridge_commands_run_for_peers_total"); !ok || v != 2 {
		t.Errorf("RA zbridge_commands_run_for_peers_total = %v (present %v), want 2", v, ok)
	}
	t.Logf("total %v", time.Since(start).Round(time.Millisecond))
}

// TestDurableFailoverSIGKILL: a durable subscriber on RA, while a steady
// flow enters RB; RA is SIGKILLed midway; the subscriber fails over to RB
// and, at the end, has printed every message at least once.
func TestDurableFailoverSIGKILL(t *testing.T) {
	e2e(t)
	start := time.Now()
	const n = 3000
	redisAddr, _ := peer.StartRedis(t)
	a := startRegion(t, "--redis", redisURL(redisAddr), "--name", "RA")
	b := startRegion(t, "--redis", redisURL(redisAddr), "--name", "RB")
	tp := startTail(t, "--unsolmsg", a.unsolmsg+","+b.unsolmsg, "--format", "json", "--subscription", "S", "--after", "0")
	waitSessions(t, a.http, 1)
	flow := startFlow(t, b.syslog, "lnxdur", "durable", n, 6*time.Second)
	flowStart := time.Now()

	if !waitUntil(60*time.Second, func() bool { return flow.sent.Load() >= n/3 }) {
		t.Fatalf("the flow did not get a third of the way: %d sent", flow.sent.Load())
	}
	if !waitUntil(60*time.Second, func() bool { return len(numbered(tp.events(t), "durable")) > 0 }) {
		t.Fatalf("the subscriber on RA printed nothing; stderr:\n%s", tp.stderr.String())
	}
	before := len(numbered(tp.events(t), "durable"))
	a.Kill()
	killed := time.Now()
	sentAtKill := flow.sent.Load()
	t.Logf("SIGKILLed RA %v into the flow: %d sent, %d printed", killed.Sub(flowStart).Round(time.Millisecond), sentAtKill, before)
	if sentAtKill >= n {
		t.Fatalf("the flow had ended (%d sent) before RA was killed: not mid-flow", sentAtKill)
	}
	if !waitUntil(120*time.Second, func() bool { return len(numbered(tp.events(t), "durable")) > before }) {
		t.Fatalf("nothing printed in 120s after RA was killed; stderr:\n%s", tp.stderr.String())
	}
	t.Logf("printing again %v after the kill", time.Since(killed).Round(time.Millisecond))
	flow.wait(t, 120*time.Second)
	var missing []int
	waitUntil(180*time.Second, func() bool {
		missing, _, _ = tally(numbered(tp.events(t), "durable"), n)
		return len(missing) == 0
	})
	t.Logf("every message printed %v after the kill", time.Since(killed).Round(time.Millisecond))
	stopTail(t, tp)
	nums := numbered(tp.events(t), "durable")
	missing, repeated, repeats := tally(nums, n)
	t.Logf("%d lines printed for %d messages: %d repeats over %d messages", len(nums), n, repeats, len(repeated))
	if len(repeated) > 0 {
		var ks []int
		for k := range repeated {
			ks = append(ks, k)
		}
		sort.Ints(ks)
		t.Logf("repeated: %s", short(ks))
	}
	if len(missing) > 0 {
		t.Fatalf("%d of %d messages never printed: %s; tail stderr:\n%s", len(missing), n, short(missing), tp.stderr.String())
	}
	if !strings.Contains(tp.stderr.String(), "trying "+b.unsolmsg) {
		t.Errorf("tail's stderr does not say it failed over to %s:\n%s", b.unsolmsg, tp.stderr.String())
	}
	t.Logf("total %v", time.Since(start).Round(time.Millisecond))
}

// TestGroupSharesAcrossRegions: two members of one consumer group, on two
// regions, share the events: each exactly once, each member some.
func TestGroupSharesAcrossRegions(t *testing.T) {
	e2e(t)
	start := time.Now()
	const n = 1000
	redisAddr, _ := peer.StartRedis(t)
	a := startRegion(t, "--redis", redisURL(redisAddr), "--name", "RA")
	b := startRegion(t, "--redis", redisURL(redisAddr), "--name", "RB")
	ta := startTail(t, "--unsolmsg", a.unsolmsg, "--format", "json", "--group", "G")
	tb := startTail(t, "--unsolmsg", b.unsolmsg, "--format", "json", "--group", "G")
	waitSessions(t, a.http, 1)
	waitSessions(t, b.http, 1)
	flow := startFlow(t, a.syslog, "lnxgrp", "grouped", n, 2*time.Second)
	flow.wait(t, 120*time.Second)
	union := func() []int {
		return append(numbered(ta.events(t), "grouped"), numbered(tb.events(t), "grouped")...)
	}
	all := waitUntil(120*time.Second, func() bool {
		missing, _, _ := tally(union(), n)
		return len(missing) == 0
	})
	t.Logf("union complete=%v %v after the flow began", all, time.Since(start).Round(time.Millisecond))
	time.Sleep(2 * time.Second) // a repeat would come right behind
	stopTail(t, ta)
	stopTail(t, tb)
	na, nb := numbered(ta.events(t), "grouped"), numbered(tb.events(t), "grouped")
	t.Logf("member on RA printed %d, member on RB %d", len(na), len(nb))
	missing, repeated, repeats := tally(append(na, nb...), n)
	if len(missing) > 0 || repeats > 0 {
		var ks []int
		for k := range repeated {
			ks = append(ks, k)
		}
		sort.Ints(ks)
		t.Fatalf("group delivery: %d missing %s, %d repeats of %s; stderr RA:\n%s\nstderr RB:\n%s",
			len(missing), short(missing), repeats, short(ks), ta.stderr.String(), tb.stderr.String())
	}
	if len(na) == 0 || len(nb) == 0 {
		t.Fatalf("one member got every event (RA %d, RB %d): the group did not share", len(na), len(nb))
	}
	t.Logf("total %v", time.Since(start).Round(time.Millisecond))
}

// TestRedisRestartUnderLoad: redis-server (append-only) dies under a
// steady flow and comes back on the same port. The region reports degraded
// meanwhile and ok after, keeps running, drops nothing: a live subscriber
// gets every message once and in order, a durable one every message, and a
// subscriber reading the stored stream afterwards every message once.
func TestRedisRestartUnderLoad(t *testing.T) {
	e2e(t)
	start := time.Now()
	const n = 3000
	redisAddr, rp := peer.StartRedisOpts(t, peer.RedisOptions{AppendOnly: true})
	// 3000 messages from one host at once pass the default flood limits:
	// flood control is off, every message must arrive.
	a := startRegion(t, "--redis", redisURL(redisAddr), "--name", "RA", "--flood-rate", "0", "--flood-msgid-rate", "0")
	live := startTail(t, "--unsolmsg", a.unsolmsg, "--format", "json")
	durable := startTail(t, "--unsolmsg", a.unsolmsg, "--format", "json", "--subscription", "D", "--after", "0")
	waitSessions(t, a.http, 2)
	if code, status, body := healthz(a.http); code != 200 || status != "ok" {
		t.Fatalf("/healthz before the outage = %d %s", code, body)
	}
	flow := startFlow(t, a.syslog, "lnxrds", "restart", n, 9*time.Second)

	if !waitUntil(60*time.Second, func() bool { return flow.sent.Load() >= 800 }) {
		t.Fatalf("the flow did not get going: %d sent", flow.sent.Load())
	}
	rp.Kill()
	down := time.Now()
	sentAtKill := flow.sent.Load()
	// exited fails the test at once if the region died (its log follows
	// at cleanup) rather than when a wait for it times out.
	exited := func(when string) {
		t.Helper()
		if !a.Running() {
			t.Fatalf("region RA exited %s: %v", when, a.Wait())
		}
	}
	var body string
	degraded := waitUntil(30*time.Second, func() bool {
		var code int
		var status string
		code, status, body = healthz(a.http)
		return code == 200 && status == "degraded" || !a.Running()
	})
	exited("while Redis was down")
	if !degraded {
		t.Fatalf("/healthz never said degraded (HTTP 200) within 30s of Redis dying; last: %s", body)
	}
	t.Logf("degraded %v after Redis was killed (%d sent at the kill): %s", time.Since(down).Round(time.Millisecond), sentAtKill, body)
	if v, ok := metric(t, a.http, "zbridge_degraded"); !ok || v != 1 {
		t.Errorf("zbridge_degraded = %v (present %v) while Redis is down, want 1", v, ok)
	}
	// Keep sending while Redis is away.
	waitUntil(30*time.Second, func() bool { return flow.sent.Load() >= 2000 || flow.sent.Load() == n })
	sentAtRestart := flow.sent.Load()
	if sentAtRestart <= sentAtKill {
		t.Fatalf("nothing was sent while Redis was down (%d at the kill, %d at the restart)", sentAtKill, sentAtRestart)
	}
	if v, ok := metric(t, a.http, "zbridge_store_buffered_events"); ok {
		t.Logf("zbridge_store_buffered_events = %v before the restart", v)
	}
	rp.Restart()
	up := time.Now()
	t.Logf("Redis down %v; %d messages sent meanwhile", up.Sub(down).Round(time.Millisecond), sentAtRestart-sentAtKill)
	ok := waitUntil(60*time.Second, func() bool {
		var code int
		var status string
		code, status, body = healthz(a.http)
		return code == 200 && status == "ok" || !a.Running()
	})
	exited("once Redis was back")
	if !ok {
		t.Fatalf("/healthz not back to ok within 60s of Redis restarting; last: %s", body)
	}
	t.Logf("ok again %v after Redis restarted", time.Since(up).Round(time.Millisecond))
	flow.wait(t, 120*time.Second)

	// The live subscriber: every message, once, in order.
	waitUntil(120*time.Second, func() bool { return len(numbered(live.events(t), "restart")) >= n })
	time.Sleep(time.Second) // a repeat would come right behind
	liveEvs := live.events(t)
	got := numbered(liveEvs, "restart")
	missing, repeated, repeats := tally(got, n)
	if len(missing) > 0 || repeats > 0 {
		t.Errorf("live subscriber: %d lines, %d missing %s, %d repeats (%d messages); stderr:\n%s",
			len(got), len(missing), short(missing), repeats, len(repeated), live.stderr.String())
	} else {
		for i, x := range got {
			if x != i {
				t.Errorf("live subscriber: line %d is message %d: out of order", i, x)
				break
			}
		}
	}
	for i := 1; i < len(liveEvs); i++ {
		if !liveEvs[i-1].ID.Less(liveEvs[i].ID) {
			t.Errorf("live subscriber: event IDs out of order: %v then %v", liveEvs[i-1].ID, liveEvs[i].ID)
			break
		}
	}
	// The durable subscriber: every message at least once.
	waitUntil(120*time.Second, func() bool {
		missing, _, _ = tally(numbered(durable.events(t), "restart"), n)
		return len(missing) == 0
	})
	dnums := numbered(durable.events(t), "restart")
	missing, repeated, repeats = tally(dnums, n)
	t.Logf("durable subscriber: %d lines, %d repeats over %d messages", len(dnums), repeats, len(repeated))
	if len(missing) > 0 {
		t.Errorf("durable subscriber: %d messages never printed: %s; stderr:\n%s", len(missing), short(missing), durable.stderr.String())
	}
	stopTail(t, live)
	stopTail(t, durable)

	for _, name := range []string{"zbridge_store_dropped_events_total", "zbridge_store_renumbered_events_total", "zbridge_store_tail_behind_total"} {
		if v, ok := metric(t, a.http, name); !ok || v != 0 {
			t.Errorf("%s = %v (present %v), want 0", name, v, ok)
		}
	}
	var buffered float64
	if !waitUntil(30*time.Second, func() bool {
		v, ok := metric(t, a.http, "zbridge_store_buffered_events")
		buffered = v
		return ok && v == 0
	}) {
		t.Errorf("zbridge_store_buffered_events = %v long after Redis came back, want 0", buffered)
	}
	if v, ok := metric(t, a.http, "zbridge_degraded"); !ok || v != 0 {
		t.Errorf("zbridge_degraded = %v (present %v) after Redis came back, want 0", v, ok)
	}
	exited("after the flow")

	// A new subscriber reading the stored stream from the start.
	stored := tailEvents(t, "--unsolmsg", a.unsolmsg, "--after", "0", "--format", "json", "--count", strconv.Itoa(n), "--timeout", "90s")
	snums := numbered(stored, "restart")
	if len(snums) != n {
		t.Fatalf("stored stream: %d of the first %d events are the test's messages", len(snums), n)
	}
	for i, x := range snums {
		if x != i {
			missing, _, repeats := tally(snums, n)
			t.Fatalf("stored stream: event %d is message %d (%d missing %s, %d repeats)", i, x, len(missing), short(missing), repeats)
		}
	}
	extra := startTail(t, "--unsolmsg", a.unsolmsg, "--after", stored[n-1].ID.String(), "--count", "1", "--timeout", "3s")
	if code := extra.wait(t, 30*time.Second); code == 0 {
		t.Fatalf("the stored stream holds an event after the last message: %s", extra.stdout.String())
	}
	t.Logf("total %v", time.Since(start).Round(time.Millisecond))
}

// TestZVMAgentFailover: a z/VM agent given both regions' VMMON addresses
// works through RA; RA is SIGKILLed; the agent logs on to RB and carries
// on: every console line reaches a subscriber exactly once, and a zvm:
// command entering RB is answered.
func TestZVMAgentFailover(t *testing.T) {
	e2e(t)
	redisAddr, _ := peer.StartRedis(t)
	e := startZVMSim(t)
	a := startRegion(t, "--redis", redisURL(redisAddr), "--name", "RA")
	b := startRegion(t, "--redis", redisURL(redisAddr), "--name", "RB")
	e.startAgent(t, a.vmmon+","+b.vmmon)
	waitZVM(t, a)
	// RA announces the agent when it logs on, not at its next refresh.
	if !waitUntil(10*time.Second, func() bool {
		for _, f := range operatorLines(t, b, "AGENTS") {
			if len(f) > 0 && f[0] == "VMSYS1" && slices.Contains(f, "RA") {
				return true
			}
		}
		return false
	}) {
		t.Fatalf("RB's AGENTS did not list VMSYS1 in RA within 10s of its logon:\n%v", operatorLines(t, b, "AGENTS"))
	}
	// Through RB while the agent is on RA: forwarded.
	if res := runCmdProc(t, b, "zvm:VMSYS1", "--", "QUERY", "TIME"); res.code != 0 || !strings.Contains(res.stdout, "TIME IS") {
		t.Fatalf("QUERY TIME through RB while the agent is on RA: exit %d stdout %q stderr %q", res.code, res.stdout, res.stderr)
	}
	lines := func(from, to int) []string {
		var m []string
		for i := from; i < to; i++ {
			m = append(m, fmt.Sprintf("failover line %03d", i))
		}
		return m
	}
	sendMessages(t, e, lines(0, 5))
	a.Kill()
	<-a.Done()
	waitZVM(t, b) // the agent logged on to RB
	sendMessages(t, e, lines(5, 15))

	tp := startTail(t, "--unsolmsg", b.unsolmsg, "--after", "0", "--format", "json", "--timeout", "90s", "--filter", "source=zvm-console")
	var got []string
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		got = got[:0]
		for _, ev := range tp.events(t) {
			if i := strings.Index(ev.Text, "failover line"); i >= 0 {
				got = append(got, ev.Text[i:])
			}
		}
		if len(got) >= 15 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(time.Second) // any duplicate right behind
	stopTail(t, tp)
	got = got[:0]
	for _, ev := range tp.events(t) {
		if i := strings.Index(ev.Text, "failover line"); i >= 0 {
			got = append(got, ev.Text[i:])
		}
	}
	// Exactly once, in order: RA stores a batch and its spool mark in one
	// Redis transaction, so a batch the agent sends RB again after the kill
	// is either in the stream and marked (RB drops it) or neither.
	if want := lines(0, 15); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("console lines across the agent's failover:\n got %d %q\nwant %d %q", len(got), got, len(want), want)
	}
}
