package cluster_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/commands"
	"github.com/zbridge/zbridge/gateway/cluster"
	"github.com/zbridge/zbridge/internal/peer"
)

// waitTimeout bounds every wait for something that should happen soon; it
// is generous for a loaded machine running -race. The intervals under test
// are configured short instead.
const waitTimeout = 30 * time.Second

// testTTL is the regions' announcement TTL: refreshed every second.
const testTTL = 3 * time.Second

// testKey is the cluster key of the tests' regions.
var testKey = []byte("test cluster key, 32 bytes or more")

// startRedis starts a redis-server and returns a client for it.
func startRedis(t *testing.T) (*redis.Client, *peer.Process) {
	t.Helper()
	addr, p := peer.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true,
		DialTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second})
	t.Cleanup(func() { rdb.Close() })
	return rdb, p
}

// testHook logs to the test log until stop, and keeps each entry's
// message and peer field.
type testHook struct {
	t *testing.T

	mu      sync.Mutex // guards the following fields
	done    bool
	entries []string // "message peer=NAME"
}

func (h *testHook) Levels() []logrus.Level { return logrus.AllLevels }
func (h *testHook) Fire(e *logrus.Entry) error {
	s, _ := e.String()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.entries = append(h.entries, fmt.Sprintf("%s peer=%v", e.Message, e.Data["peer"]))
	if !h.done {
		if len(s) > 2000 { // an entry a test made huge on purpose
			s = s[:2000] + "…"
		}
		h.t.Log(strings.TrimSpace(s))
	}
	return nil
}

// stop ends logging to t, which must not be used once the test ended.
func (h *testHook) stop() {
	h.mu.Lock()
	h.done = true
	h.mu.Unlock()
}

// count returns how many times msg was logged about peer.
func (h *testHook) count(msg, peer string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, e := range h.entries {
		if e == msg+" peer="+peer {
			n++
		}
	}
	return n
}

// waitLog waits until r logged msg about peer.
func (r *region) waitLog(t *testing.T, msg, peer string) {
	t.Helper()
	waitFor(t, r.name+" logs "+msg+" about "+peer, func() error {
		if r.hook.count(msg, peer) == 0 {
			return errors.New("not logged")
		}
		return nil
	})
}

// testExec is the regions' local executor for linux targets, a real one
// written for the tests. Commands:
//
//	echo rc=N WORDS   several lines of stdout and stderr, binary bytes, RC N
//	fail CODE [RETRY] MESSAGE    answers that *commands.Error
//	block             waits until its context ends
//	hold              like block, but release ends it: one more line
//	                  of output, "released", and RC 7
//
// A target the region does not hold is answered unknown-target.
type testExec struct {
	region string
	has    func(commands.Target) bool

	started chan string   // the IDs of block and hold commands that began
	ended   chan string   // the IDs of block and hold commands whose context ended
	release chan struct{} // ends a hold command

	mu   sync.Mutex // guards reqs
	reqs []commands.Request
}

func newTestExec(region string) *testExec {
	return &testExec{region: region, started: make(chan string, 16), ended: make(chan string, 16), release: make(chan struct{})}
}

// echoOutput is what "echo" writes, in order.
func echoOutput(region, cmd string) []commands.Output {
	return []commands.Output{
		{Stream: commands.Stdout, Data: []byte(region + ": " + cmd), EOL: true},
		{Stream: commands.Stderr, Data: []byte("warning: on stderr"), EOL: true},
		{Stream: commands.Stdout, Data: []byte("second line"), EOL: true},
		{Stream: commands.Stdout, Data: []byte{0, 0xff, 0xfe, '\r', 0x80, 'x', 0}, EOL: false},
		{Stream: commands.Stdout, Data: []byte(" rest of a long line"), EOL: true},
		{Stream: commands.Stderr, Data: []byte{}, EOL: true},
		{Stream: commands.Stderr, Data: []byte("no newline at the end"), EOL: false},
	}
}

func (e *testExec) Run(ctx context.Context, req *commands.Request, out func(commands.Output)) (commands.Result, error) {
	e.mu.Lock()
	e.reqs = append(e.reqs, *req)
	e.mu.Unlock()
	if !e.has(req.Target) {
		return commands.Result{}, &commands.Error{Code: commands.CodeUnknown, Message: "no system " + req.Target.String() + " in region " + e.region}
	}
	word, rest, _ := strings.Cut(req.Command, " ")
	switch word {
	case "echo":
		for _, o := range echoOutput(e.region, req.Command) {
			out(o)
		}
		rc, _ := strconv.Atoi(strings.TrimPrefix(strings.Fields(rest)[0], "rc="))
		return commands.Result{RC: rc, Truncated: true}, nil
	case "fail":
		code, msg, _ := strings.Cut(rest, " ")
		retry := 0
		if n, m, ok := strings.Cut(msg, " "); ok {
			if r, err := strconv.Atoi(n); err == nil {
				retry, msg = r, m
			}
		}
		return commands.Result{}, fmt.Errorf("agent: %w", &commands.Error{Code: code, Message: msg, RetryAfter: retry})
	case "block":
		out(commands.Output{Stream: commands.Stdout, Data: []byte("started " + req.ID), EOL: true})
		e.started <- req.ID
		<-ctx.Done()
		e.ended <- req.ID
		return commands.Result{RC: 137, Signal: "KILL"}, errors.New("signal: killed")
	case "hold":
		out(commands.Output{Stream: commands.Stdout, Data: []byte("started " + req.ID), EOL: true})
		e.started <- req.ID
		select {
		case <-e.release:
			out(commands.Output{Stream: commands.Stdout, Data: []byte("released"), EOL: true})
			return commands.Result{RC: 7}, nil
		case <-ctx.Done():
			e.ended <- req.ID
			return commands.Result{RC: 137, Signal: "KILL"}, errors.New("signal: killed")
		}
	}
	return commands.Result{}, &commands.Error{Code: commands.CodeNotFound, Message: "no program " + word}
}

func (e *testExec) requests() []commands.Request {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.reqs)
}

// region is a region for the tests: a cluster member with a router whose
// linux executor is the cluster's over a testExec.
type region struct {
	name   string
	c      *cluster.Cluster
	router *commands.Router
	exec   *testExec
	hook   *testHook

	mu     sync.Mutex // guards agents
	agents []cluster.Agent
}

type regionOpts struct {
	ttl    time.Duration
	prefix string
	key    []byte    // default testKey
	logOut io.Writer // where the log is written, formatted; default none
}

func newRegion(t *testing.T, rdb redis.UniversalClient, name string, agents []cluster.Agent, opts ...regionOpts) *region {
	t.Helper()
	var o regionOpts
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.ttl == 0 {
		o.ttl = testTTL
	}
	if o.key == nil {
		o.key = testKey
	}
	r := &region{name: name, agents: agents, exec: newTestExec(name)}
	r.exec.has = r.has
	r.hook = &testHook{t: t}
	l := logrus.New()
	l.SetOutput(io.Discard)
	if o.logOut != nil {
		l.SetOutput(o.logOut)
	}
	l.SetLevel(logrus.DebugLevel)
	l.AddHook(r.hook)
	var err error
	r.c, err = cluster.New(cluster.Config{
		Client:      rdb,
		Prefix:      o.prefix,
		Region:      name,
		Key:         o.key,
		Addrs:       cluster.Addrs{Commands: "127.0.0.1:1" + strconv.Itoa(len(name)), HTTP: "127.0.0.1:8080"},
		TTL:         o.ttl,
		LocalAgents: r.localAgents,
		Run: func(ctx context.Context, req *commands.Request, out func(commands.Output)) (commands.Result, error) {
			return r.router.Run(ctx, req, out)
		},
		Logger: l.WithField("region", name),
	})
	if err != nil {
		t.Fatal(err)
	}
	r.router = commands.NewRouter(commands.Config{IDPrefix: name, DefaultTimeout: time.Minute,
		Executors: map[commands.Kind]commands.Executor{commands.KindLinux: r.c.Executor(commands.KindLinux, r.exec, r.has)}})
	r.c.Start()
	t.Cleanup(func() {
		r.close(t)
		r.hook.stop()
	})
	return r
}

func (r *region) close(t *testing.T) {
	t.Helper()
	if err := r.c.Close(); err != nil {
		t.Errorf("%s: Close: %v", r.name, err)
	}
}

func (r *region) localAgents() []cluster.Agent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.agents)
}

func (r *region) setAgents(agents []cluster.Agent) {
	r.mu.Lock()
	r.agents = agents
	r.mu.Unlock()
}

// has says whether the region holds a linux target, by name or address.
func (r *region) has(t commands.Target) bool {
	for _, a := range r.localAgents() {
		if a.Kind != t.Kind {
			continue
		}
		if t.Name != "" && a.Name == t.Name {
			return true
		}
		if ap, err := netip.ParseAddrPort(a.Addr); err == nil && t.Addr.IsValid() && ap.Addr() == t.Addr {
			return true
		}
	}
	return false
}

// result is what a Run returned.
type result struct {
	res     commands.Result
	err     error
	out     []commands.Output
	elapsed time.Duration
}

func (r *region) run(ctx context.Context, t *testing.T, req *commands.Request) result {
	t.Helper()
	return await(t, r.runAsync(ctx, req))
}

func (r *region) runAsync(ctx context.Context, req *commands.Request) <-chan result {
	ch := make(chan result, 1)
	go func() {
		var out []commands.Output
		start := time.Now()
		res, err := r.router.Run(ctx, req, func(o commands.Output) {
			o.Data = bytes.Clone(o.Data)
			out = append(out, o)
		})
		ch <- result{res, err, out, time.Since(start)}
	}()
	return ch
}

func await(t *testing.T, ch <-chan result) result {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(waitTimeout):
		t.Fatal("Run did not return")
		return result{}
	}
}

func waitID(t *testing.T, ch <-chan string, what string) string {
	t.Helper()
	select {
	case id := <-ch:
		return id
	case <-time.After(waitTimeout):
		t.Fatalf("%s: not within %v", what, waitTimeout)
		return ""
	}
}

// waitFor polls cond until it returns nil.
func waitFor(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitHolder waits until r's cluster finds the target in region want.
func waitHolder(t *testing.T, r *region, target, want string) {
	t.Helper()
	tgt := mustTarget(t, target)
	waitFor(t, r.name+" finds "+target+" in "+want, func() error {
		got, ok, err := r.c.Lookup(t.Context(), tgt)
		if err != nil || !ok || got != want {
			return fmt.Errorf("Lookup = %q, %v, %v", got, ok, err)
		}
		return nil
	})
}

func mustTarget(t *testing.T, s string) commands.Target {
	t.Helper()
	tgt, err := commands.ParseTarget(s)
	if err != nil {
		t.Fatal(err)
	}
	return tgt
}

func wantError(t *testing.T, err error, code string) *commands.Error {
	t.Helper()
	var ce *commands.Error
	if !errors.As(err, &ce) {
		t.Fatalf("error %v (%T), want an *Error with code %s", err, err, code)
	}
	if ce.Code != code {
		t.Fatalf("error code %q (%s), want %q", ce.Code, ce.Message, code)
	}
	return ce
}

func linux(name, addr string) cluster.Agent {
	return cluster.Agent{Kind: commands.KindLinux, Name: name, Addr: addr, State: "connected",
		Since: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Detail: "agent " + name}
}

// twoRegions starts A, holding web1 (10.1.0.1) and the z/VM system
// VMSYS1, and B, holding web2, on one Redis, and waits until B sees A's
// agents.
func twoRegions(t *testing.T, rdb redis.UniversalClient) (a, b *region) {
	t.Helper()
	a = newRegion(t, rdb, "A", []cluster.Agent{linux("web1", "10.1.0.1:7022"),
		{Kind: commands.KindZVM, Name: "vmsys1", Addr: "127.0.0.1:40001", State: "connected", Since: time.Unix(1700000000, 0).UTC()}})
	b = newRegion(t, rdb, "B", []cluster.Agent{linux("web2", "10.1.0.2:7022")})
	waitHolder(t, b, "linux:web1", "A")
	waitHolder(t, a, "linux:web2", "B")
	return a, b
}

func TestForward(t *testing.T) {
	rdb, _ := startRedis(t)
	a, b := twoRegions(t, rdb)

	t.Run("by name", func(t *testing.T) {
		req := &commands.Request{Target: mustTarget(t, "linux:web1"), Command: "echo rc=3 hello world", Requester: "ops"}
		got := b.run(t.Context(), t, req)
		if got.err != nil {
			t.Fatalf("Run: %v", got.err)
		}
		if got.res.RC != 3 || !got.res.Truncated {
			t.Errorf("result %+v, want RC 3, truncated", got.res)
		}
		want := echoOutput("A", "echo rc=3 hello world")
		if !outputEqual(got.out, want) {
			t.Errorf("output\n%s\nwant\n%s", fmtOutput(got.out), fmtOutput(want))
		}
		reqs := a.exec.requests()
		if len(reqs) != 1 {
			t.Fatalf("A ran %d requests, want 1", len(reqs))
		}
		r := reqs[0]
		if r.ID != req.ID || r.Via != "B" || r.Requester != "ops" || r.Command != req.Command ||
			r.Target.String() != "linux:web1" || r.Timeout != time.Minute {
			t.Errorf("A ran %+v; want ID %s, via B, requester ops, timeout 1m", r, req.ID)
		}
		if n := len(b.exec.requests()); n != 0 {
			t.Errorf("B's local executor ran %d requests", n)
		}
		if s := b.c.Stats(); s.ForwardedOut != 1 || s.ForwardedIn != 0 {
			t.Errorf("B's stats %+v, want 1 forwarded out", s)
		}
		if s := a.c.Stats(); s.ForwardedIn != 1 || s.ForwardedOut != 0 {
			t.Errorf("A's stats %+v, want 1 forwarded in", s)
		}
		// The forwarder cleans up its keys.
		waitFor(t, "no command or output keys left", func() error {
			keys, err := rdb.Keys(t.Context(), "{zbridge}:[co]*").Result()
			if err != nil || len(keys) != 0 {
				return fmt.Errorf("keys %q, %v", keys, err)
			}
			return nil
		})
	})
	t.Run("by address", func(t *testing.T) {
		got := b.run(t.Context(), t, &commands.Request{Target: mustTarget(t, "linux:ADDR=10.1.0.1"), Command: "echo rc=0 by address"})
		if got.err != nil || got.res.RC != 0 {
			t.Fatalf("Run: %+v, %v", got.res, got.err)
		}
		if want := echoOutput("A", "echo rc=0 by address"); !outputEqual(got.out, want) {
			t.Errorf("output\n%s\nwant\n%s", fmtOutput(got.out), fmtOutput(want))
		}
	})
	t.Run("the other way", func(t *testing.T) {
		got := a.run(t.Context(), t, &commands.Request{Target: mustTarget(t, "linux:web2"), Command: "echo rc=255 to B"})
		if got.err != nil || got.res.RC != 255 {
			t.Fatalf("Run: %+v, %v", got.res, got.err)
		}
		if want := echoOutput("B", "echo rc=255 to B"); !outputEqual(got.out, want) {
			t.Errorf("output\n%s\nwant\n%s", fmtOutput(got.out), fmtOutput(want))
		}
	})
	t.Run("local", func(t *testing.T) {
		n := a.c.Stats().ForwardedIn
		got := b.run(t.Context(), t, &commands.Request{Target: mustTarget(t, "linux:web2"), Command: "echo rc=1 local"})
		if got.err != nil || got.res.RC != 1 {
			t.Fatalf("Run: %+v, %v", got.res, got.err)
		}
		if want := echoOutput("B", "echo rc=1 local"); !outputEqual(got.out, want) {
			t.Errorf("output\n%s\nwant\n%s", fmtOutput(got.out), fmtOutput(want))
		}
		if a.c.Stats().ForwardedIn != n {
			t.Error("a local command went to A")
		}
	})
	t.Run("unknown everywhere", func(t *testing.T) {
		got := b.run(t.Context(), t, &commands.Request{Target: mustTarget(t, "linux:nowhere"), Command: "echo rc=0"})
		ce := wantError(t, got.err, commands.CodeUnknown)
		if !strings.Contains(ce.Message, "region B") {
			t.Errorf("message %q, want B's local executor's answer", ce.Message)
		}
	})
	t.Run("never forwarded twice", func(t *testing.T) {
		// B holds web2, but a request forwarded to A is A's to answer.
		ex := a.c.Executor(commands.KindLinux, a.exec, a.has)
		_, err := ex.Run(t.Context(), &commands.Request{ID: "x", Target: mustTarget(t, "linux:web2"), Command: "echo rc=0", Via: "C"},
			func(commands.Output) {})
		ce := wantError(t, err, commands.CodeUnknown)
		if !strings.Contains(ce.Message, "region A") {
			t.Errorf("message %q, want A's local executor's answer", ce.Message)
		}
	})
	t.Run("many at once", func(t *testing.T) {
		var chans []<-chan result
		for i := range 8 { // the most in flight to one target
			chans = append(chans, b.runAsync(t.Context(), &commands.Request{Target: mustTarget(t, "linux:web1"),
				Command: fmt.Sprintf("echo rc=%d n", i)}))
		}
		for i, ch := range chans {
			got := await(t, ch)
			if got.err != nil || got.res.RC != i {
				t.Errorf("command %d: %+v, %v", i, got.res, got.err)
			} else if !outputEqual(got.out, echoOutput("A", fmt.Sprintf("echo rc=%d n", i))) {
				t.Errorf("command %d: output\n%s", i, fmtOutput(got.out))
			}
		}
	})
}

func outputEqual(a, b []commands.Output) bool {
	return slices.EqualFunc(a, b, func(x, y commands.Output) bool {
		return x.Stream == y.Stream && x.EOL == y.EOL && bytes.Equal(x.Data, y.Data)
	})
}

func fmtOutput(out []commands.Output) string {
	var b strings.Builder
	for _, o := range out {
		fmt.Fprintf(&b, "  %s %q eol=%v\n", o.Stream, o.Data, o.EOL)
	}
	return b.String()
}

func TestForwardErrors(t *testing.T) {
	rdb, _ := startRedis(t)
	_, b := twoRegions(t, rdb)
	tests := []struct {
		name, cmd string
		want      commands.Error
	}{
		{"not permitted", "fail not-permitted policy forbids rm", commands.Error{Code: commands.CodeNotPermitted, Message: "policy forbids rm"}},
		{"not found", "fail not-found no such program", commands.Error{Code: commands.CodeNotFound, Message: "no such program"}},
		{"busy", "fail busy 7 too many at once", commands.Error{Code: commands.CodeBusy, Message: "too many at once", RetryAfter: 7}},
		{"unknown program", "frobnicate", commands.Error{Code: commands.CodeNotFound, Message: "no program frobnicate"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := b.run(t.Context(), t, &commands.Request{Target: mustTarget(t, "linux:web1"), Command: tt.cmd})
			ce := wantError(t, got.err, tt.want.Code)
			if *ce != tt.want {
				t.Errorf("error %+v, want %+v", *ce, tt.want)
			}
		})
	}
}

func TestForwardCancel(t *testing.T) {
	rdb, _ := startRedis(t)
	a, b := twoRegions(t, rdb)

	t.Run("context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		ch := b.runAsync(ctx, &commands.Request{Target: mustTarget(t, "linux:web1"), Command: "block"})
		id := waitID(t, a.exec.started, "A's command started")
		cancel()
		got := await(t, ch)
		ce := wantError(t, got.err, commands.CodeCancelled)
		if ce.Message != "the client went away" {
			t.Errorf("message %q", ce.Message)
		}
		// The line A wrote before the cancel may or may not have crossed
		// Redis before B stopped reading; if it did, it is that line.
		if len(got.out) > 1 || (len(got.out) == 1 && string(got.out[0].Data) != "started "+id) {
			t.Errorf("output %s, want at most the line written before the cancel", fmtOutput(got.out))
		}
		if ended := waitID(t, a.exec.ended, "A's command saw its context end"); ended != id {
			t.Errorf("ended %s, want %s", ended, id)
		}
	})
	t.Run("by ID", func(t *testing.T) {
		req := &commands.Request{ID: "stop-me", Target: mustTarget(t, "linux:web1"), Command: "block"}
		ch := b.runAsync(t.Context(), req)
		waitID(t, a.exec.started, "A's command started")
		if !b.router.Cancel("", "stop-me") {
			t.Fatal("Cancel: not in flight")
		}
		ce := wantError(t, await(t, ch).err, commands.CodeCancelled)
		if ce.Message != "cancelled by request" {
			t.Errorf("message %q", ce.Message)
		}
		waitID(t, a.exec.ended, "A's command saw its context end")
	})
	t.Run("timeout", func(t *testing.T) {
		ch := b.runAsync(t.Context(), &commands.Request{Target: mustTarget(t, "linux:web1"), Command: "block", Timeout: 2 * time.Second})
		waitID(t, a.exec.started, "A's command started")
		got := await(t, ch)
		ce := wantError(t, got.err, commands.CodeTimeout)
		if !strings.Contains(ce.Message, "2s") {
			t.Errorf("message %q, want the timeout", ce.Message)
		}
		waitID(t, a.exec.ended, "A's command saw its context end")
	})
}

func TestHolderCloses(t *testing.T) {
	rdb, _ := startRedis(t)
	a, b := twoRegions(t, rdb)
	b.waitLog(t, "region joined the cluster", "A")
	ch := b.runAsync(t.Context(), &commands.Request{Target: mustTarget(t, "linux:web1"), Command: "block", Timeout: 10 * time.Minute})
	waitID(t, a.exec.started, "A's command started")
	a.close(t)
	got := await(t, ch)
	ce := wantError(t, got.err, commands.CodeFailed)
	if !strings.Contains(ce.Message, "region A") {
		t.Errorf("message %q, want it to name region A", ce.Message)
	}
	waitID(t, a.exec.ended, "A's command saw its context end")

	// A's announcement and agents are gone at once.
	regions, err := b.c.Regions(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range regions {
		if r.Name == "A" && r.Alive {
			t.Errorf("A is alive after Close: %+v", r)
		}
	}
	agents, err := b.c.Agents(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, ag := range agents {
		if ag.Region == "A" {
			t.Errorf("agent of A listed after Close: %+v", ag)
		}
	}
	if _, ok, err := b.c.Lookup(t.Context(), mustTarget(t, "linux:web1")); ok || err != nil {
		t.Errorf("Lookup(web1) after A closed: %v, %v", ok, err)
	}
	b.waitLog(t, "region stopped announcing", "A")
	time.Sleep(2 * time.Second) // two more refreshes: logged and counted once
	if n := b.hook.count("region stopped announcing", "A"); n != 1 {
		t.Errorf("B logged %d times that A stopped announcing", n)
	}
	if n := b.c.Stats().PeersLost; n != 1 {
		t.Errorf("PeersLost = %d, want 1", n)
	}
	// Its target is now unknown: B answers it locally.
	wantError(t, b.run(t.Context(), t, &commands.Request{Target: mustTarget(t, "linux:web1"), Command: "echo rc=0"}).err, commands.CodeUnknown)

	// A comes back, as a new process.
	a2 := newRegion(t, rdb, "A", []cluster.Agent{linux("web1", "10.1.0.1:7022")})
	b.waitLog(t, "region announces itself again", "A")
	waitHolder(t, b, "linux:web1", "A")
	got = b.run(t.Context(), t, &commands.Request{Target: mustTarget(t, "linux:web1"), Command: "echo rc=0 back"})
	if got.err != nil || !outputEqual(got.out, echoOutput("A", "echo rc=0 back")) {
		t.Errorf("after A came back: %v, output\n%s", got.err, fmtOutput(got.out))
	}
	if n := len(a2.exec.requests()); n != 1 {
		t.Errorf("the new A ran %d commands, want 1", n)
	}
}

// TestHolderVanishes forwards to a region that stops announcing without
// closing, as a crashed one: its key, written here as it would have, expires.
func TestHolderVanishes(t *testing.T) {
	rdb, _ := startRedis(t)
	b := newRegion(t, rdb, "B", nil)
	ctx := t.Context()
	reg, _ := json.Marshal(cluster.Region{Name: "C", Instance: "c0ffee", Started: time.Now(), Seen: time.Now()})
	ag, _ := json.Marshal(cluster.Agent{Kind: commands.KindLinux, Name: "ghost", Region: "C", State: "connected"})
	if err := rdb.Set(ctx, "{zbridge}:region:C", reg, 2*time.Second).Err(); err != nil {
		t.Fatal(err)
	}
	rdb.ZAdd(ctx, "{zbridge}:regions", redis.Z{Score: float64(time.Now().UnixMilli()), Member: "C"})
	rdb.Set(ctx, "{zbridge}:agent:linux:ghost", ag, time.Minute)
	rdb.ZAdd(ctx, "{zbridge}:agents", redis.Z{Score: float64(time.Now().UnixMilli()), Member: "linux:ghost"})

	got := b.run(ctx, t, &commands.Request{Target: mustTarget(t, "linux:ghost"), Command: "uptime", Timeout: 10 * time.Minute})
	ce := wantError(t, got.err, commands.CodeFailed)
	if !strings.Contains(ce.Message, "region C stopped announcing") {
		t.Errorf("message %q", ce.Message)
	}
	// The request is in C's inbox; the cancel followed it.
	msgs, err := rdb.XRange(ctx, "{zbridge}:inbox:C", "-", "+").Result()
	if err != nil || len(msgs) != 2 {
		t.Fatalf("C's inbox: %v, %v", msgs, err)
	}
	run, cancel := msgs[0].Values, msgs[1].Values
	if run["type"] != "run" || run["command"] != "uptime" || run["target"] != "linux:ghost" || run["via"] != "B" ||
		run["timeout"] != "600000" || run["to"] != "c0ffee" || cancel["type"] != "cancel" || cancel["fid"] != run["fid"] ||
		cancel["via"] != "B" {
		t.Errorf("C's inbox: %v", msgs)
	}
	// Both are signed as the package doc says.
	for _, m := range msgs {
		if want := entryMAC(testKey, "inbox", "{zbridge}:inbox:C", nil, m.Values); m.Values["mac"] != want {
			t.Errorf("%s entry: mac %v, want %s", m.Values["type"], m.Values["mac"], want)
		}
	}
}

func TestAgentsAndRegions(t *testing.T) {
	rdb, _ := startRedis(t)
	a, b := twoRegions(t, rdb)
	ctx := t.Context()

	regions, err := b.c.Regions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(regions) != 2 || regions[0].Name != "A" || regions[1].Name != "B" {
		t.Fatalf("Regions = %+v, want A and B", regions)
	}
	for _, r := range regions {
		if !r.Alive || r.Instance == "" || r.Commands == "" || r.HTTP != "127.0.0.1:8080" || r.Started.IsZero() ||
			time.Since(r.Seen) > waitTimeout || r.Seen.Before(r.Started) {
			t.Errorf("region %+v", r)
		}
	}

	want := []cluster.Agent{
		linux("web1", "10.1.0.1:7022"), linux("web2", "10.1.0.2:7022"),
		{Kind: commands.KindZVM, Name: "VMSYS1", Addr: "127.0.0.1:40001", State: "connected", Since: time.Unix(1700000000, 0).UTC()},
	}
	want[0].Region, want[1].Region, want[2].Region = "A", "B", "A"
	for _, r := range []*region{a, b} {
		got, err := r.c.Agents(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.EqualFunc(got, want, agentEqual) {
			t.Errorf("%s: Agents =\n%+v\nwant\n%+v", r.name, got, want)
		}
	}
	for _, tt := range []struct{ target, want string }{
		{"zvm:VMSYS1", "A"}, {"zvm:vmsys1", "A"}, {"linux:ADDR=10.1.0.2", "B"}, {"linux:ADDR=::ffff:10.1.0.1", "A"},
		{"linux:web2,NODE=X", "B"}, {"linux:WEB1", "A"}, {"linux:ADDR=10.1.0.3", ""}, {"region", ""},
	} {
		got, ok, err := a.c.Lookup(ctx, mustTarget(t, tt.target))
		if err != nil || got != tt.want || ok != (tt.want != "") {
			t.Errorf("Lookup(%s) = %q, %v, %v; want %q", tt.target, got, ok, err, tt.want)
		}
	}

	// An agent that connects is announced at once on Touch, and one that
	// goes away is withdrawn.
	b.setAgents([]cluster.Agent{linux("web3", "10.1.0.3:7022")})
	b.c.Touch()
	waitHolder(t, a, "linux:ADDR=10.1.0.3", "B")
	waitFor(t, "web2 withdrawn", func() error {
		if _, ok, err := a.c.Lookup(ctx, mustTarget(t, "linux:web2")); ok || err != nil {
			return fmt.Errorf("Lookup(web2): %v, %v", ok, err)
		}
		return nil
	})

	b.close(t)
	regions, err = a.c.Regions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(regions) != 2 || !regions[0].Alive || regions[1].Alive || regions[1].Name != "B" || regions[1].Seen.IsZero() {
		t.Errorf("Regions after B closed = %+v, want A alive and B not", regions)
	}
	agents, err := a.c.Agents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(agents) != 2 || agents[0].Region != "A" || agents[1].Region != "A" {
		t.Errorf("Agents after B closed = %+v, want A's two", agents)
	}
	if n, err := rdb.Exists(ctx, "{zbridge}:region:B", "{zbridge}:agent:linux:web3").Result(); n != 0 || err != nil {
		t.Errorf("B's keys after Close: %d left, %v", n, err)
	}
}

func agentEqual(a, b cluster.Agent) bool {
	return a.Kind == b.Kind && a.Name == b.Name && a.Addr == b.Addr && a.State == b.State &&
		a.Since.Equal(b.Since) && a.Detail == b.Detail && a.Region == b.Region
}

// TestTouch checks that Touch announces at once, long before the refresh
// (every 10 minutes here, past the wait for the announcement).
func TestTouch(t *testing.T) {
	rdb, _ := startRedis(t)
	a := newRegion(t, rdb, "A", nil, regionOpts{ttl: 30 * time.Minute})
	b := newRegion(t, rdb, "B", nil, regionOpts{ttl: 30 * time.Minute})
	waitFor(t, "both regions announced", func() error {
		rs, err := b.c.Regions(t.Context())
		if err != nil || len(rs) != 2 {
			return fmt.Errorf("Regions = %+v, %v", rs, err)
		}
		return nil
	})
	a.setAgents([]cluster.Agent{linux("new", "10.9.9.9:22")})
	a.c.Touch()
	waitHolder(t, b, "linux:new", "A")
}

// TestPrefix checks that regions under different prefixes do not see
// each other.
func TestPrefix(t *testing.T) {
	rdb, _ := startRedis(t)
	a := newRegion(t, rdb, "A", []cluster.Agent{linux("web1", "")}, regionOpts{prefix: "one"})
	b := newRegion(t, rdb, "B", nil, regionOpts{prefix: "two"})
	waitHolder(t, a, "linux:web1", "A")
	if keys, _ := rdb.Keys(t.Context(), "{one}:region:A").Result(); len(keys) != 1 {
		t.Errorf("keys %q, want {one}:region:A", keys)
	}
	if _, ok, err := b.c.Lookup(t.Context(), mustTarget(t, "linux:web1")); ok || err != nil {
		t.Errorf("B under another prefix found web1: %v, %v", ok, err)
	}
}

func TestRedisDown(t *testing.T) {
	rdb, proc := startRedis(t)
	a, b := twoRegions(t, rdb)
	ctx := t.Context()

	// A command in flight when Redis dies fails within the short timeout,
	// and A stops it: nobody can read its output.
	ch := b.runAsync(ctx, &commands.Request{Target: mustTarget(t, "linux:web1"), Command: "block", Timeout: 10 * time.Minute})
	waitID(t, a.exec.started, "A's command started")
	proc.Kill()
	got := await(t, ch)
	ce := wantError(t, got.err, commands.CodeFailed)
	if !strings.Contains(ce.Message, "cross-region routing unavailable") {
		t.Errorf("message %q", ce.Message)
	}
	waitID(t, a.exec.ended, "A's command saw its context end")

	waitFor(t, "B unhealthy", func() error {
		if b.c.Health() == nil {
			return errors.New("Health() = nil with Redis down")
		}
		return nil
	})
	t.Logf("Health: %v", b.c.Health())

	// A new command for a remote target fails promptly; a local one runs.
	got = b.run(ctx, t, &commands.Request{Target: mustTarget(t, "linux:web1"), Command: "echo rc=0"})
	ce = wantError(t, got.err, commands.CodeFailed)
	if !strings.HasPrefix(ce.Message, "cross-region routing unavailable: ") {
		t.Errorf("message %q", ce.Message)
	}
	if got.elapsed > cluster.DefaultTimeout+3*time.Second {
		t.Errorf("the remote command failed after %v", got.elapsed)
	}
	got = b.run(ctx, t, &commands.Request{Target: mustTarget(t, "linux:web2"), Command: "echo rc=4 local"})
	if got.err != nil || got.res.RC != 4 {
		t.Errorf("local command with Redis down: %+v, %v", got.res, got.err)
	}

	proc.Restart()
	waitFor(t, "B healthy again", b.c.Health)
	waitFor(t, "A healthy again", a.c.Health)
	waitHolder(t, b, "linux:web1", "A")
	got = b.run(ctx, t, &commands.Request{Target: mustTarget(t, "linux:web1"), Command: "echo rc=9 again"})
	if got.err != nil || got.res.RC != 9 {
		t.Fatalf("after the restart: %+v, %v", got.res, got.err)
	}
	if want := echoOutput("A", "echo rc=9 again"); !outputEqual(got.out, want) {
		t.Errorf("output\n%s\nwant\n%s", fmtOutput(got.out), fmtOutput(want))
	}
}

func TestNewConfig(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer rdb.Close()
	run := func(context.Context, *commands.Request, func(commands.Output)) (commands.Result, error) {
		return commands.Result{}, nil
	}
	ok := cluster.Config{Client: rdb, Region: "A", Key: testKey, Run: run, Logger: logrus.New()}
	tests := []struct {
		name string
		edit func(*cluster.Config)
	}{
		{"no client", func(c *cluster.Config) { c.Client = nil }},
		{"no region", func(c *cluster.Config) { c.Region = "" }},
		{"region with a blank", func(c *cluster.Config) { c.Region = "A B" }},
		{"no run", func(c *cluster.Config) { c.Run = nil }},
		{"no logger", func(c *cluster.Config) { c.Logger = nil }},
		{"prefix with a brace", func(c *cluster.Config) { c.Prefix = "a}b" }},
		{"TTL under a second", func(c *cluster.Config) { c.TTL = time.Millisecond }},
		{"no key", func(c *cluster.Config) { c.Key = nil }},
		{"short key", func(c *cluster.Config) { c.Key = testKey[:cluster.MinKeySize-1] }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.edit(&cfg)
			if _, err := cluster.New(cfg); !errors.Is(err, cluster.ErrConfig) {
				t.Errorf("New: %v, want ErrConfig", err)
			}
		})
	}
	c, err := cluster.New(ok)
	if err != nil {
		t.Fatal(err)
	}
	// Close without Start, twice.
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close again: %v", err)
	}
	c.Start() // does nothing after Close
}

// TestNoLeaks checks that Close leaves no goroutine of the package behind.
func TestNoLeaks(t *testing.T) {
	rdb, _ := startRedis(t)
	a, b := twoRegions(t, rdb)
	ch := b.runAsync(t.Context(), &commands.Request{Target: mustTarget(t, "linux:web1"), Command: "block"})
	waitID(t, a.exec.started, "A's command started")
	b.close(t)
	wantError(t, await(t, ch).err, commands.CodeFailed)
	a.close(t)
	waitFor(t, "goroutines of the package ended", func() error {
		buf := make([]byte, 1<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		for g := range strings.SplitSeq(stacks, "\n\n") {
			if strings.Contains(g, "gateway/cluster.(*") || strings.Contains(g, "gateway/cluster.(*writer)") {
				return fmt.Errorf("still running:\n%s", g)
			}
		}
		return nil
	})
}

// TestNameConflict checks that two processes announcing one region name
// are told apart and logged.
func TestNameConflict(t *testing.T) {
	rdb, _ := startRedis(t)
	a := newRegion(t, rdb, "A", nil)
	a2 := newRegion(t, rdb, "A", nil)
	waitFor(t, "the conflict logged", func() error {
		if a.hook.count("another process announces this region's name", "A")+
			a2.hook.count("another process announces this region's name", "A") == 0 {
			return errors.New("not logged")
		}
		return nil
	})
}

// TestLearnedNameNotTakenOver: a name one region learned (from a syslog
// sender) never takes the entry of a name another region holds, and a
// static name takes the entry from a learned one.
func TestLearnedNameNotTakenOver(t *testing.T) {
	rdb, _ := startRedis(t)
	static := linux("web1", "10.1.0.1:7022")
	static.Static = true
	a := newRegion(t, rdb, "A", []cluster.Agent{static})
	b := newRegion(t, rdb, "B", []cluster.Agent{linux("web2", "10.1.0.2:7022")})
	waitHolder(t, b, "linux:web1", "A")
	// B learns web1 (an attacker's syslog line) and announces it, often.
	b.setAgents([]cluster.Agent{linux("web2", "10.1.0.2:7022"), linux("web1", "10.6.6.6:7022")})
	for range 5 {
		b.c.Touch()
		a.c.Touch()
	}
	waitHolder(t, b, "linux:web2", "B")
	time.Sleep(200 * time.Millisecond) // more announcements
	if got, ok, err := a.c.Lookup(t.Context(), mustTarget(t, "linux:web1")); err != nil || !ok || got != "A" {
		t.Fatalf("after B learned web1: Lookup = %q, %v, %v; want A's static web1", got, ok, err)
	}
	// A learned name held first is taken over by another region's static one.
	b.setAgents([]cluster.Agent{linux("web2", "10.1.0.2:7022"), linux("lab1", "10.6.6.7:7022")})
	b.c.Touch()
	waitHolder(t, a, "linux:lab1", "B")
	lab := linux("lab1", "10.1.0.9:7022")
	lab.Static = true
	a.setAgents([]cluster.Agent{static, lab})
	a.c.Touch()
	waitHolder(t, b, "linux:lab1", "A")
}
