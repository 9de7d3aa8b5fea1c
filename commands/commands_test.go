package commands_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zbridge/zbridge/commands"
)

// waitTimeout bounds every wait for something that should happen soon. It
// is generous so that a loaded machine running -race does not fail tests;
// the timeouts under test are configured short instead.
const waitTimeout = 20 * time.Second

// printExec writes its lines to stdout and its error lines to stderr, then
// returns RC, or Err when set. It records the requests it was given and
// the deadline of each one's context.
type printExec struct {
	Lines, ErrLines []string
	RC              int
	Err             error

	mu        sync.Mutex // guards the following fields
	reqs      []commands.Request
	deadlines []time.Time
}

func (e *printExec) Run(ctx context.Context, req *commands.Request, out func(commands.Output)) (commands.Result, error) {
	dl, _ := ctx.Deadline()
	e.mu.Lock()
	e.reqs = append(e.reqs, *req)
	e.deadlines = append(e.deadlines, dl)
	e.mu.Unlock()
	for _, l := range e.Lines {
		out(commands.Output{Stream: commands.Stdout, Data: []byte(l), EOL: true})
	}
	for _, l := range e.ErrLines {
		out(commands.Output{Stream: commands.Stderr, Data: []byte(l), EOL: true})
	}
	if e.Err != nil {
		return commands.Result{}, e.Err
	}
	return commands.Result{RC: e.RC}, nil
}

func (e *printExec) last(t *testing.T) (commands.Request, time.Time) {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.reqs) == 0 {
		t.Fatal("the executor was not called")
	}
	return e.reqs[len(e.reqs)-1], e.deadlines[len(e.deadlines)-1]
}

func (e *printExec) calls() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.reqs)
}

// blockExec runs until its context ends or release is closed, like a
// process that is killed when its context ends: it then returns a plain
// error, leaving the router to say why. started receives each request's
// ID as it begins.
type blockExec struct {
	started chan string
	release chan struct{}
}

func newBlockExec() *blockExec {
	return &blockExec{started: make(chan string, 100), release: make(chan struct{})}
}

func (e *blockExec) Run(ctx context.Context, req *commands.Request, out func(commands.Output)) (commands.Result, error) {
	out(commands.Output{Stream: commands.Stdout, Data: []byte("started " + req.ID), EOL: true})
	e.started <- req.ID
	select {
	case <-ctx.Done():
		return commands.Result{RC: 137, Signal: "KILL"}, errors.New("signal: killed")
	case <-e.release:
		return commands.Result{}, nil
	}
}

// waitStarted waits for n commands to start and returns their IDs.
func (e *blockExec) waitStarted(t *testing.T, n int) []string {
	t.Helper()
	var ids []string
	for range n {
		select {
		case id := <-e.started:
			ids = append(ids, id)
		case <-time.After(waitTimeout):
			t.Fatalf("only %d of %d commands started", len(ids), n)
		}
	}
	return ids
}

func mustTarget(t *testing.T, s string) commands.Target {
	t.Helper()
	tgt, err := commands.ParseTarget(s)
	if err != nil {
		t.Fatal(err)
	}
	return tgt
}

// wantError checks that err is an *Error with the code, and returns it.
func wantError(t *testing.T, err error, code string) *commands.Error {
	t.Helper()
	var ce *commands.Error
	if !errors.As(err, &ce) {
		t.Fatalf("error %v (%T), want an *Error with code %s", err, err, code)
	}
	if ce.Code != code {
		t.Fatalf("error code %q (%s), want %q", ce.Code, ce.Message, code)
	}
	if ce.Message == "" {
		t.Errorf("error %s has no message", code)
	}
	return ce
}

// result is what a Run in a goroutine returned.
type result struct {
	res commands.Result
	err error
	out []commands.Output
}

// runAsync runs req in a goroutine; its result comes on the channel.
func runAsync(ctx context.Context, r *commands.Router, req *commands.Request) <-chan result {
	ch := make(chan result, 1)
	go func() {
		var out []commands.Output
		res, err := r.Run(ctx, req, func(o commands.Output) { out = append(out, o) })
		ch <- result{res, err, out}
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

func TestRouterRun(t *testing.T) {
	ex := &printExec{Lines: []string{"one", "two", "three"}, ErrLines: []string{"warn"}, RC: 3}
	r := commands.NewRouter(commands.Config{Executors: map[commands.Kind]commands.Executor{commands.KindLinux: ex}})
	req := &commands.Request{Target: mustTarget(t, "linux:web1"), Command: "ls -l", Requester: "ops"}
	var out []string
	res, err := r.Run(context.Background(), req, func(o commands.Output) {
		out = append(out, o.Stream.String()+":"+string(o.Data))
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.RC != 3 {
		t.Errorf("RC = %d, want 3", res.RC)
	}
	if res.Duration <= 0 {
		t.Errorf("Duration = %v, want it measured", res.Duration)
	}
	if want := []string{"stdout:one", "stdout:two", "stdout:three", "stderr:warn"}; !slices.Equal(out, want) {
		t.Errorf("output %q, want %q", out, want)
	}
	got, _ := ex.last(t)
	if got.Command != "ls -l" || got.Requester != "ops" || got.Target.String() != "linux:web1" || got.ID == "" {
		t.Errorf("the executor got %+v", got)
	}
	if len(r.InFlight()) != 0 {
		t.Errorf("InFlight after the command ended: %+v", r.InFlight())
	}
}

func TestRouterTimeouts(t *testing.T) {
	ex := &printExec{}
	r := commands.NewRouter(commands.Config{Executors: map[commands.Kind]commands.Executor{commands.KindLinux: ex},
		DefaultTimeout: 7 * time.Second, MaxTimeout: 10 * time.Second})
	tgt := mustTarget(t, "linux:web1")

	t.Run("default", func(t *testing.T) {
		start := time.Now()
		req := &commands.Request{Target: tgt, Command: "true"}
		if _, err := r.Run(context.Background(), req, func(commands.Output) {}); err != nil {
			t.Fatal(err)
		}
		got, dl := ex.last(t)
		if got.Timeout != 7*time.Second || req.Timeout != 7*time.Second {
			t.Errorf("timeout %v (request %v), want the default 7s", got.Timeout, req.Timeout)
		}
		if dl.Before(start.Add(7*time.Second)) || dl.After(time.Now().Add(7*time.Second)) {
			t.Errorf("the executor's deadline is %v after the start, want 7s after Run began", dl.Sub(start))
		}
	})
	t.Run("asked for", func(t *testing.T) {
		req := &commands.Request{Target: tgt, Command: "true", Timeout: 2 * time.Second}
		if _, err := r.Run(context.Background(), req, func(commands.Output) {}); err != nil {
			t.Fatal(err)
		}
		if got, _ := ex.last(t); got.Timeout != 2*time.Second {
			t.Errorf("timeout %v, want 2s", got.Timeout)
		}
	})
	t.Run("the maximum", func(t *testing.T) {
		req := &commands.Request{Target: tgt, Command: "true", Timeout: 10 * time.Second}
		if _, err := r.Run(context.Background(), req, func(commands.Output) {}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("over the maximum", func(t *testing.T) {
		n := ex.calls()
		req := &commands.Request{Target: tgt, Command: "true", Timeout: 11 * time.Second}
		_, err := r.Run(context.Background(), req, func(commands.Output) {})
		ce := wantError(t, err, commands.CodeBadRequest)
		if !strings.Contains(ce.Message, "10s") {
			t.Errorf("message %q does not say the maximum", ce.Message)
		}
		if ex.calls() != n {
			t.Error("the executor ran a refused command")
		}
	})
}

// TestRouterTimeoutDefaults checks that a request without a timeout is
// never refused for the default the router gives it: a maximum below the
// default default lowers the default, a default above the default
// maximum raises the maximum.
func TestRouterTimeoutDefaults(t *testing.T) {
	tests := []struct {
		name          string
		cfg           commands.Config
		want          time.Duration // the timeout a request without one gets
		allowed, over time.Duration // a timeout that must run, and one refused
	}{
		{"defaults", commands.Config{}, time.Minute, time.Hour, time.Hour + time.Second},
		{"small maximum", commands.Config{MaxTimeout: 30 * time.Second}, 30 * time.Second, 30 * time.Second, 31 * time.Second},
		{"large default", commands.Config{DefaultTimeout: 2 * time.Hour}, 2 * time.Hour, 2 * time.Hour, 2*time.Hour + time.Second},
		{"both", commands.Config{DefaultTimeout: 5 * time.Second, MaxTimeout: 20 * time.Second}, 5 * time.Second, 20 * time.Second, 21 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ex := &printExec{}
			tt.cfg.Executors = map[commands.Kind]commands.Executor{commands.KindLinux: ex}
			r := commands.NewRouter(tt.cfg)
			tgt := mustTarget(t, "linux:web1")
			if _, err := r.Run(context.Background(), &commands.Request{Target: tgt, Command: "true"}, func(commands.Output) {}); err != nil {
				t.Fatalf("a request without a timeout: %v", err)
			}
			if got, _ := ex.last(t); got.Timeout != tt.want {
				t.Errorf("default timeout %v, want %v", got.Timeout, tt.want)
			}
			if _, err := r.Run(context.Background(), &commands.Request{Target: tgt, Command: "true", Timeout: tt.allowed}, func(commands.Output) {}); err != nil {
				t.Errorf("timeout %v: %v", tt.allowed, err)
			}
			_, err := r.Run(context.Background(), &commands.Request{Target: tgt, Command: "true", Timeout: tt.over}, func(commands.Output) {})
			wantError(t, err, commands.CodeBadRequest)
		})
	}
}

func TestRouterTimeout(t *testing.T) {
	ex := newBlockExec()
	r := commands.NewRouter(commands.Config{Executors: map[commands.Kind]commands.Executor{commands.KindLinux: ex},
		DefaultTimeout: 50 * time.Millisecond})
	tgt := mustTarget(t, "linux:web1")
	for _, timeout := range []time.Duration{0, 80 * time.Millisecond} {
		t.Run(fmt.Sprint(timeout), func(t *testing.T) {
			start := time.Now()
			res, err := r.Run(context.Background(), &commands.Request{Target: tgt, Command: "sleep 1000", Timeout: timeout}, func(commands.Output) {})
			wantError(t, err, commands.CodeTimeout)
			if least := max(timeout, 50*time.Millisecond); time.Since(start) < least || res.Duration < least {
				t.Errorf("timed out after %v (Duration %v), before its timeout %v", time.Since(start), res.Duration, least)
			}
		})
	}
}

func TestRouterCancel(t *testing.T) {
	ex := newBlockExec()
	r := commands.NewRouter(commands.Config{Executors: map[commands.Kind]commands.Executor{commands.KindLinux: ex}})
	tgt := mustTarget(t, "linux:web1")

	if r.Cancel("", "no-such-id") {
		t.Error("Cancel of an unknown ID reported a command")
	}

	t.Run("by ID", func(t *testing.T) {
		ch := runAsync(context.Background(), r, &commands.Request{ID: "c1", Target: tgt, Command: "sleep 1000"})
		ex.waitStarted(t, 1)
		if !r.Cancel("", "c1") {
			t.Fatal("Cancel(c1) found no command")
		}
		res := await(t, ch)
		ce := wantError(t, res.err, commands.CodeCancelled)
		if ce.Message != "cancelled by request" {
			t.Errorf("message %q, want %q", ce.Message, "cancelled by request")
		}
		if len(res.out) != 1 {
			t.Errorf("output %+v, want the line written before the cancel", res.out)
		}
		if r.Cancel("", "c1") {
			t.Error("Cancel(c1) after it ended reported a command")
		}
	})
	t.Run("by the caller's context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		ch := runAsync(ctx, r, &commands.Request{ID: "c2", Target: tgt, Command: "sleep 1000"})
		ex.waitStarted(t, 1)
		cancel()
		ce := wantError(t, await(t, ch).err, commands.CodeCancelled)
		if ce.Message == "cancelled by request" {
			t.Errorf("message %q for a caller that went away", ce.Message)
		}
	})
	t.Run("by the caller with ErrCancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancelCause(context.Background())
		defer cancel(nil)
		ch := runAsync(ctx, r, &commands.Request{ID: "c3", Target: tgt, Command: "sleep 1000"})
		ex.waitStarted(t, 1)
		cancel(commands.ErrCancelled)
		if ce := wantError(t, await(t, ch).err, commands.CodeCancelled); ce.Message != "cancelled by request" {
			t.Errorf("message %q, want %q", ce.Message, "cancelled by request")
		}
	})
	t.Run("before it starts", func(t *testing.T) {
		ctx, cancel := context.WithCancelCause(context.Background())
		cancel(commands.ErrCancelled)
		_, err := r.Run(ctx, &commands.Request{ID: "c4", Target: tgt, Command: "sleep 1000"}, func(commands.Output) {})
		wantError(t, err, commands.CodeCancelled)
		<-ex.started // blockExec reports its start even with its context done
	})
	t.Run("other commands unaffected", func(t *testing.T) {
		a := runAsync(context.Background(), r, &commands.Request{ID: "a", Target: tgt, Command: "sleep 1000"})
		b := runAsync(context.Background(), r, &commands.Request{ID: "b", Target: tgt, Command: "sleep 1000"})
		ex.waitStarted(t, 2)
		r.Cancel("", "a")
		wantError(t, await(t, a).err, commands.CodeCancelled)
		if ids := inFlightIDs(r); !slices.Equal(ids, []string{"b"}) {
			t.Errorf("in flight %q, want [b]", ids)
		}
		r.Cancel("", "b")
		wantError(t, await(t, b).err, commands.CodeCancelled)
	})
}

func inFlightIDs(r *commands.Router) []string {
	var ids []string
	for _, f := range r.InFlight() {
		ids = append(ids, f.ID)
	}
	slices.Sort(ids)
	return ids
}

func TestRouterMaxPerTarget(t *testing.T) {
	ex := newBlockExec()
	r := commands.NewRouter(commands.Config{Executors: map[commands.Kind]commands.Executor{
		commands.KindLinux: ex, commands.KindRegion: ex},
		MaxPerTarget: 2, RetryAfter: 1500 * time.Millisecond})
	web1, web2 := mustTarget(t, "linux:web1"), mustTarget(t, "linux:web2")

	a := runAsync(context.Background(), r, &commands.Request{ID: "a", Target: web1, Command: "sleep"})
	b := runAsync(context.Background(), r, &commands.Request{ID: "b", Target: mustTarget(t, "LINUX:NAME=web1"), Command: "sleep"})
	ex.waitStarted(t, 2)

	_, err := r.Run(context.Background(), &commands.Request{ID: "c", Target: web1, Command: "sleep"}, func(commands.Output) {})
	ce := wantError(t, err, commands.CodeBusy)
	if ce.RetryAfter != 2 { // 1.5s rounded up
		t.Errorf("RetryAfter = %d, want 2", ce.RetryAfter)
	}
	// Other spellings of the same system share its limit.
	for i, alias := range []string{"linux:WEB1", "linux:web1,NODE=X", "linux:NAME=Web1,NODE=Y"} {
		_, err := r.Run(context.Background(), &commands.Request{ID: fmt.Sprintf("alias%d", i), Target: mustTarget(t, alias), Command: "sleep"},
			func(commands.Output) {})
		wantError(t, err, commands.CodeBusy)
	}

	// Another target, and the region itself, are not limited by web1's.
	other := runAsync(context.Background(), r, &commands.Request{ID: "other", Target: web2, Command: "sleep"})
	reg1 := runAsync(context.Background(), r, &commands.Request{ID: "reg1", Target: commands.Target{Kind: commands.KindRegion}, Command: "x"})
	reg2 := runAsync(context.Background(), r, &commands.Request{ID: "reg2", Target: commands.Target{Kind: commands.KindRegion}, Command: "x"})
	reg3 := runAsync(context.Background(), r, &commands.Request{ID: "reg3", Target: commands.Target{Kind: commands.KindRegion}, Command: "x"})
	ex.waitStarted(t, 4)
	if ids := inFlightIDs(r); !slices.Equal(ids, []string{"a", "b", "other", "reg1", "reg2", "reg3"}) {
		t.Errorf("in flight %q", ids)
	}

	// A slot that frees is taken again.
	r.Cancel("", "a")
	wantError(t, await(t, a).err, commands.CodeCancelled)
	c := runAsync(context.Background(), r, &commands.Request{ID: "c", Target: web1, Command: "sleep"})
	ex.waitStarted(t, 1)

	close(ex.release)
	for _, ch := range []<-chan result{b, c, other, reg1, reg2, reg3} {
		if res := await(t, ch); res.err != nil {
			t.Errorf("Run: %v", res.err)
		}
	}
	if n := len(r.InFlight()); n != 0 {
		t.Errorf("%d commands still in flight", n)
	}
}

func TestRouterIDs(t *testing.T) {
	ex := &printExec{}
	r := commands.NewRouter(commands.Config{Executors: map[commands.Kind]commands.Executor{commands.KindLinux: ex},
		IDPrefix: "REGION1", MaxPerTarget: 1000})
	tgt := mustTarget(t, "linux:web1")
	const n = 200
	ids := make(chan string, n+10)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			req := &commands.Request{Target: tgt, Command: "true"}
			if _, err := r.Run(context.Background(), req, func(commands.Output) {}); err != nil {
				t.Errorf("Run: %v", err)
			}
			ids <- req.ID
		})
	}
	for range 10 {
		ids <- r.NewID()
	}
	wg.Wait()
	close(ids)
	seen := map[string]bool{}
	for id := range ids {
		if !strings.HasPrefix(id, "REGION1-") {
			t.Errorf("ID %q lacks the prefix", id)
		}
		if seen[id] {
			t.Errorf("ID %q given twice", id)
		}
		seen[id] = true
	}
	if len(seen) != n+10 {
		t.Errorf("%d IDs, want %d", len(seen), n+10)
	}

	// A request's own ID is kept.
	req := &commands.Request{ID: "mine", Target: tgt, Command: "true"}
	if _, err := r.Run(context.Background(), req, func(commands.Output) {}); err != nil || req.ID != "mine" {
		t.Errorf("Run with ID mine: ID %q, %v", req.ID, err)
	}
	if got, _ := ex.last(t); got.ID != "mine" {
		t.Errorf("the executor got ID %q", got.ID)
	}
	if id := commands.NewRouter(commands.Config{}).NewID(); !strings.HasPrefix(id, "CMD-") {
		t.Errorf("ID %q without a prefix configured, want CMD-n", id)
	}
}

func TestRouterDuplicateID(t *testing.T) {
	ex := newBlockExec()
	r := commands.NewRouter(commands.Config{Executors: map[commands.Kind]commands.Executor{commands.KindLinux: ex, commands.KindZVM: ex}})
	first := runAsync(context.Background(), r, &commands.Request{ID: "dup", Target: mustTarget(t, "linux:web1"), Command: "sleep"})
	ex.waitStarted(t, 1)
	// Also to another target: IDs are unique in the router.
	for _, tgt := range []string{"linux:web1", "zvm:VMSYS1"} {
		_, err := r.Run(context.Background(), &commands.Request{ID: "dup", Target: mustTarget(t, tgt), Command: "sleep"}, func(commands.Output) {})
		wantError(t, err, commands.CodeBadRequest)
	}
	if ids := inFlightIDs(r); !slices.Equal(ids, []string{"dup"}) {
		t.Errorf("in flight %q, want [dup]", ids)
	}
	r.Cancel("", "dup")
	wantError(t, await(t, first).err, commands.CodeCancelled)

	// Once it ended, the ID may be used again.
	again := runAsync(context.Background(), r, &commands.Request{ID: "dup", Target: mustTarget(t, "zvm:VMSYS1"), Command: "sleep"})
	ex.waitStarted(t, 1)
	close(ex.release)
	if res := await(t, again); res.err != nil {
		t.Errorf("the ID used again: %v", res.err)
	}
}

func TestRouterInFlight(t *testing.T) {
	ex := newBlockExec()
	r := commands.NewRouter(commands.Config{Executors: map[commands.Kind]commands.Executor{commands.KindLinux: ex, commands.KindZVM: ex}})
	before := time.Now()
	a := runAsync(context.Background(), r, &commands.Request{ID: "a", Target: mustTarget(t, "linux:ADDR=::ffff:10.0.0.1"), Command: "uptime", Requester: "ops"})
	b := runAsync(context.Background(), r, &commands.Request{ID: "b", Target: mustTarget(t, "zvm:VMSYS1"), Command: "CP Q N", Requester: "auto"})
	ex.waitStarted(t, 2)
	got := r.InFlight()
	slices.SortFunc(got, func(x, y commands.InFlight) int { return strings.Compare(x.ID, y.ID) })
	want := []commands.InFlight{
		{ID: "a", Target: "linux:ADDR=10.0.0.1", Command: "uptime", Requester: "ops"},
		{ID: "b", Target: "zvm:VMSYS1", Command: "CP Q N", Requester: "auto"},
	}
	if len(got) != len(want) {
		t.Fatalf("InFlight = %+v, want %+v", got, want)
	}
	for i := range want {
		since := got[i].Since
		got[i].Since = time.Time{}
		if got[i] != want[i] {
			t.Errorf("InFlight[%d] = %+v, want %+v", i, got[i], want[i])
		}
		if since.Before(before) || since.After(time.Now()) {
			t.Errorf("InFlight[%d].Since = %v, not when it started", i, since)
		}
	}
	r.Cancel("ops", "a")
	wantError(t, await(t, a).err, commands.CodeCancelled)
	if ids := inFlightIDs(r); !slices.Equal(ids, []string{"b"}) {
		t.Errorf("in flight %q after a ended, want [b]", ids)
	}
	close(ex.release)
	await(t, b)
	if got := r.InFlight(); len(got) != 0 {
		t.Errorf("InFlight = %+v after all ended", got)
	}
}

func TestRouterRefusals(t *testing.T) {
	ex := &printExec{}
	r := commands.NewRouter(commands.Config{Executors: map[commands.Kind]commands.Executor{commands.KindLinux: ex}})
	tests := []struct {
		name string
		req  commands.Request
		code string
	}{
		{"no executor for zvm", commands.Request{Target: mustTarget(t, "zvm:VMSYS1"), Command: "CP Q N"}, commands.CodeNotConnected},
		{"no executor for the region", commands.Request{Target: commands.Target{Kind: commands.KindRegion}, Command: "status"}, commands.CodeNotConnected},
		{"empty command", commands.Request{Target: mustTarget(t, "linux:web1")}, commands.CodeBadRequest},
		{"timeout over the maximum", commands.Request{Target: mustTarget(t, "linux:web1"), Command: "x", Timeout: 2 * time.Hour}, commands.CodeBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := r.Run(context.Background(), &tt.req, func(commands.Output) { t.Error("output from a refused command") })
			wantError(t, err, tt.code)
		})
	}
	if n := ex.calls(); n != 0 {
		t.Errorf("the executor ran %d refused commands", n)
	}
	if n := len(r.InFlight()); n != 0 {
		t.Errorf("%d refused commands in flight", n)
	}
}

func TestRouterExecutorErrors(t *testing.T) {
	tgt := mustTarget(t, "linux:web1")
	run := func(ex commands.Executor) error {
		r := commands.NewRouter(commands.Config{Executors: map[commands.Kind]commands.Executor{commands.KindLinux: ex}})
		_, err := r.Run(context.Background(), &commands.Request{Target: tgt, Command: "x"}, func(commands.Output) {})
		return err
	}
	t.Run("plain error", func(t *testing.T) {
		ce := wantError(t, run(&printExec{Err: errors.New("ssh: handshake failed")}), commands.CodeFailed)
		if !strings.Contains(ce.Message, "ssh: handshake failed") {
			t.Errorf("message %q, want the executor's error", ce.Message)
		}
	})
	t.Run("its own code", func(t *testing.T) {
		err := run(&printExec{Err: fmt.Errorf("run: %w", &commands.Error{Code: commands.CodeNotFound, Message: "no such program"})})
		if ce := wantError(t, err, commands.CodeNotFound); ce.Message != "no such program" {
			t.Errorf("message %q", ce.Message)
		}
	})
}

// TestRouterIDsPerClient: a command ID belongs to its client. Another
// client's command with the same ID runs (it is not refused as a
// duplicate, which would tell it the ID is in use), and cancelling by ID
// reaches only the client's own command.
func TestRouterIDsPerClient(t *testing.T) {
	ex := newBlockExec()
	r := commands.NewRouter(commands.Config{Executors: map[commands.Kind]commands.Executor{commands.KindLinux: ex}})
	mine := runAsync(context.Background(), r, &commands.Request{ID: "job", Target: mustTarget(t, "linux:web1"), Command: "sleep", Requester: "alice"})
	ex.waitStarted(t, 1)
	theirs := runAsync(context.Background(), r, &commands.Request{ID: "job", Target: mustTarget(t, "linux:web1"), Command: "sleep", Requester: "mallory"})
	ex.waitStarted(t, 1)
	if r.Cancel("mallory", "other") {
		t.Error("cancelled an ID nobody used")
	}
	if !r.Cancel("mallory", "job") {
		t.Fatal("mallory could not cancel its own command")
	}
	wantError(t, await(t, theirs).err, commands.CodeCancelled)
	close(ex.release)
	if res := await(t, mine); res.err != nil {
		t.Errorf("alice's command: %v", res.err)
	}
}

// TestRouterIDsNotGuessable: assigned IDs carry 80 random bits, not a count.
func TestRouterIDsNotGuessable(t *testing.T) {
	r := commands.NewRouter(commands.Config{IDPrefix: "ZBR1"})
	a, b := r.NewID(), r.NewID()
	if !strings.HasPrefix(a, "ZBR1-") || len(a) != len("ZBR1-")+16 {
		t.Fatalf("ID %q: want ZBR1- and 16 base32 characters", a)
	}
	if a == b || a[:len(a)-1] == b[:len(b)-1] {
		t.Errorf("IDs %q and %q look sequential", a, b)
	}
}
