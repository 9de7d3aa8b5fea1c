// Package commands is the region's command model: where a command goes
// (Target), what it is (Request), what comes back (Output lines and a
// Result, or an *Error saying why it did not run), and the Router that
// sends each request to the executor for its target kind, within timeouts
// and concurrency limits, and keeps track of what is in flight so that a
// command can be cancelled by its ID.
//
// The servers (COMMANDS) only carry requests and responses; routing,
// correlation and policy live here.
package commands

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Stream says which output stream a line came from.
type Stream int

// The output streams.
const (
	Stdout Stream = 1
	Stderr Stream = 2
)

// String returns "stdout" or "stderr".
func (s Stream) String() string {
	if s == Stderr {
		return "stderr"
	}
	return "stdout"
}

// Request is one command for one target.
type Request struct {
	// ID identifies the command; the router assigns one when empty.
	ID      string
	Target  Target
	Command string
	// Timeout bounds the command; zero means the router's default.
	Timeout time.Duration
	// Requester is the client that asked (for logs and the agent).
	Requester string
	// Grant is the rule of the region's roles that allowed the request,
	// set by the region when it authorized it (for the audit log).
	Grant string
	// Via is the region that forwarded the request to this one (several
	// regions sharing Redis); a forwarded request is run here or fails
	// here, never forwarded again.
	Via string
}

// Output is a piece of a command's output: one line, or part of a long one.
// Data is binary-safe; EOL says the line ended with a newline.
type Output struct {
	Stream Stream
	Data   []byte
	EOL    bool
}

// Result is how a command that ran ended.
type Result struct {
	RC        int    // exit status; with Signal set, 128 + the signal's number when known
	Signal    string // the signal that ended it, if one did
	Truncated bool   // output beyond the cap was not sent
	Duration  time.Duration
}

// Executor runs commands for one kind of target.
type Executor interface {
	// Run runs req, calling out for each piece of output in order (never
	// concurrently), and returns how it ended. A command that did not run
	// to its end returns an *Error (codes in errors.go). Run returns
	// promptly when ctx ends.
	Run(ctx context.Context, req *Request, out func(Output)) (Result, error)
}

// Config configures a Router.
type Config struct {
	// Executors by target kind; a kind without one answers not-connected.
	Executors map[Kind]Executor
	// DefaultTimeout applies when a request has none (default 60s);
	// MaxTimeout caps what a request may ask for (default 1h, or
	// DefaultTimeout if longer). A DefaultTimeout over MaxTimeout is
	// lowered to it.
	DefaultTimeout, MaxTimeout time.Duration
	// MaxPerTarget is the most commands in flight to one target at once
	// (default 8); more are answered busy with RetryAfter.
	MaxPerTarget int
	// RetryAfter is what a busy answer tells the client (default 1s).
	RetryAfter time.Duration
	// IDPrefix starts assigned IDs (the region name).
	IDPrefix string
}

// Router sends requests to executors. It is safe for concurrent use.
type Router struct {
	cfg Config

	mu       sync.Mutex // guards the following fields
	perTgt   map[string]int
	inflight map[flightKey]*flight
}

// flightKey names a command in flight: its client's name and its ID.
type flightKey struct{ requester, id string }

type flight struct {
	req    *Request
	start  time.Time
	cancel context.CancelCauseFunc
}

// NewRouter returns a router for cfg, with defaults filled in.
func NewRouter(cfg Config) *Router {
	if cfg.MaxTimeout <= 0 {
		cfg.MaxTimeout = max(time.Hour, cfg.DefaultTimeout)
	}
	if cfg.DefaultTimeout <= 0 {
		cfg.DefaultTimeout = 60 * time.Second
	}
	// A request without a timeout gets the default, which must be allowed.
	cfg.DefaultTimeout = min(cfg.DefaultTimeout, cfg.MaxTimeout)
	if cfg.MaxPerTarget <= 0 {
		cfg.MaxPerTarget = 8
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = time.Second
	}
	if cfg.IDPrefix == "" {
		cfg.IDPrefix = "CMD"
	}
	return &Router{cfg: cfg, perTgt: map[string]int{}, inflight: map[flightKey]*flight{}}
}

// Run routes req (assigning req.ID when empty) and runs it. It returns an
// *Error when the command did not run to its end.
func (r *Router) Run(ctx context.Context, req *Request, out func(Output)) (Result, error) {
	if req.Command == "" && req.Target.Kind != KindRegion {
		return Result{}, &Error{Code: CodeBadRequest, Message: "no command given"}
	}
	ex := r.cfg.Executors[req.Target.Kind]
	if ex == nil {
		return Result{}, &Error{Code: CodeNotConnected, Message: fmt.Sprintf("no %s systems can be reached from this region", req.Target.Kind)}
	}
	timeout := req.Timeout
	if timeout <= 0 {
		timeout = r.cfg.DefaultTimeout
	}
	if timeout > r.cfg.MaxTimeout {
		return Result{}, &Error{Code: CodeBadRequest, Message: fmt.Sprintf("timeout %v is over the region's maximum of %v", timeout, r.cfg.MaxTimeout)}
	}
	req.Timeout = timeout
	if req.ID == "" {
		req.ID = r.NewID()
	}
	key := limitKey(req.Target)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	f := &flight{req: req, start: time.Now(), cancel: cancel}
	// A command ID is its client's: two clients using the same ID are two
	// commands, and neither learns of the other's.
	fk := flightKey{req.Requester, req.ID}
	r.mu.Lock()
	if _, dup := r.inflight[fk]; dup {
		r.mu.Unlock()
		return Result{}, &Error{Code: CodeBadRequest, Message: fmt.Sprintf("a command with ID %q is already in flight", req.ID)}
	}
	if req.Target.Kind != KindRegion && r.perTgt[key] >= r.cfg.MaxPerTarget {
		r.mu.Unlock()
		return Result{}, &Error{Code: CodeBusy, RetryAfter: int((r.cfg.RetryAfter + time.Second - 1) / time.Second),
			Message: fmt.Sprintf("%d commands already in flight to %s (the most allowed)", r.cfg.MaxPerTarget, key)}
	}
	r.perTgt[key]++
	r.inflight[fk] = f
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		if r.perTgt[key]--; r.perTgt[key] == 0 {
			delete(r.perTgt, key)
		}
		delete(r.inflight, fk)
		r.mu.Unlock()
	}()

	tctx, tcancel := context.WithTimeout(ctx, timeout)
	defer tcancel()
	res, err := ex.Run(tctx, req, out)
	res.Duration = time.Since(f.start)
	if err == nil {
		return res, nil
	}
	var ce *Error
	switch {
	case errors.As(err, &ce):
	case errors.Is(tctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil:
		ce = &Error{Code: CodeTimeout, Message: fmt.Sprintf("the command ran past its timeout of %v and was stopped", timeout)}
	case ctx.Err() != nil:
		why := "the client went away"
		if errors.Is(context.Cause(ctx), ErrCancelled) {
			why = "cancelled by request"
		}
		ce = &Error{Code: CodeCancelled, Message: why}
	default:
		ce = &Error{Code: CodeFailed, Message: err.Error()}
	}
	return res, ce
}

// limitKey names the system a target reaches, for MaxPerTarget: the forms
// that reach one system (case, ",NODE=") share one limit.
func limitKey(t Target) string {
	switch {
	case t.Kind == KindRegion:
		return string(KindRegion)
	case t.Addr.IsValid():
		return string(t.Kind) + ":ADDR=" + t.Addr.Unmap().String()
	case t.Kind == KindZVM:
		return string(t.Kind) + ":" + strings.ToUpper(t.Name)
	}
	return string(t.Kind) + ":" + strings.ToLower(t.Name)
}

// NewID returns a new command ID: the prefix and 80 random bits, so that
// an ID the region assigns cannot be guessed by another client.
func (r *Router) NewID() string {
	var b [10]byte
	rand.Read(b[:])
	return r.cfg.IDPrefix + "-" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// Cancel stops the command that requester sent with the given ID. It
// reports whether one was in flight.
func (r *Router) Cancel(requester, id string) bool {
	r.mu.Lock()
	f := r.inflight[flightKey{requester, id}]
	r.mu.Unlock()
	if f != nil {
		f.cancel(ErrCancelled)
	}
	return f != nil
}

// InFlight describes a command being run.
type InFlight struct {
	ID, Target, Command, Requester string
	Since                          time.Time
}

// InFlight lists the commands being run.
func (r *Router) InFlight() []InFlight {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]InFlight, 0, len(r.inflight))
	for _, f := range r.inflight {
		out = append(out, InFlight{ID: f.req.ID, Target: f.req.Target.String(), Command: f.req.Command,
			Requester: f.req.Requester, Since: f.start})
	}
	return out
}
