package region

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zbridge/zbridge/commands"
	"github.com/zbridge/zbridge/gateway/audit"
	"github.com/zbridge/zbridge/gateway/auth"
	"github.com/zbridge/zbridge/gateway/session"
	"github.com/zbridge/zbridge/gateway/store"
	"github.com/zbridge/zbridge/gateway/trust"
	"github.com/zbridge/zbridge/protocol"
	"github.com/zbridge/zbridge/protocol/lx"
	"github.com/zbridge/zbridge/zos/console"
)

// consoleBackend is the region's side of the 3270 operator console
// (package zos/console): logons are checked as on every port (the secret,
// then a role granting ports = ["console"]); an operator sees the events
// the client's roles let it see, runs the commands their targets grant,
// through the same guard and audit log as COMMANDS, and sees the agents
// panel only where the region command AGENTS is granted.
type consoleBackend struct{ r *Region }

// Name implements console.Backend.
func (b consoleBackend) Name() string { return b.r.cfg.Name }

// Logon implements console.Backend.
func (b consoleBackend) Logon(ctx context.Context, client, secret string, remote net.Addr) (console.Operator, error) {
	g := b.r.guard
	err := g.authz.ForPort(trust.PortConsole).Authenticate(ctx, client, secret)
	if err != nil {
		rf := session.Refusal{Server: "console", Remote: remote.String(), Client: client, Reason: protocol.RefuseAuth}
		msg := "the client name or the secret is wrong"
		var d *trust.Denial
		switch {
		case errors.As(err, &d):
			rf.Reason, msg = protocol.RefuseNotPermitted, d.Reason
		case !errors.Is(err, auth.ErrBadCredentials):
			// The secret could not be checked (argon2's memory bound):
			// load, not credentials.
			return nil, fmt.Errorf("%w: %v", console.ErrBusy, err)
		}
		rf.Message = msg
		g.refused(rf)
		if rf.Reason == protocol.RefuseNotPermitted {
			return nil, fmt.Errorf("%w: %s", console.ErrNotPermitted, msg)
		}
		return nil, errors.New(msg)
	}
	op := &consoleOperator{r: b.r, client: client, remote: remote.String()}
	b.r.consoles.add(op)
	// Checked again now that a refresh would revoke op: one made while the
	// secret was checked, against the policy before it, is seen here. Under
	// an unchanged policy this is a lookup in its cache of recent successes.
	if err := g.recheck(trust.PortConsole)(ctx, client, secret); err != nil {
		b.r.consoles.remove(op)
		msg := "the region's config changed while the secret was checked: " + err.Error()
		if errors.As(err, new(*trust.Denial)) {
			return nil, fmt.Errorf("%w: %s", console.ErrNotPermitted, msg)
		}
		return nil, errors.New(msg)
	}
	b.r.issue(ctx, "ZBR301I", quoteName(client), op.remote)
	return op, nil
}

// consoleOperator is one operator's console session.
type consoleOperator struct {
	r              *Region
	client, remote string
	revoked        atomic.Bool // by a refresh: the client was removed, its secret changed, or the console is no longer granted
	closeOnce      sync.Once
}

// consoles are the region's console sessions, which a refresh revokes as
// it ends other ports' sessions.
type consoles struct {
	mu  sync.Mutex
	ops map[*consoleOperator]struct{}
}

func (c *consoles) add(op *consoleOperator) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ops == nil {
		c.ops = map[*consoleOperator]struct{}{}
	}
	c.ops[op] = struct{}{}
}

func (c *consoles) remove(op *consoleOperator) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.ops, op)
}

// revoke marks the sessions of the clients revoked reports, and returns
// how many: their commands are refused at once, and their tails end
// within consoleRecheck.
func (c *consoles) revoke(revoked func(client string) bool) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for op := range c.ops {
		if !op.revoked.Load() && revoked(op.client) {
			op.revoked.Store(true)
			n++
		}
	}
	return n
}

// Client implements console.Operator.
func (o *consoleOperator) Client() string { return o.client }

// consoleScan bounds how many retained events Tail reads to find the
// newest ones to show first: the log area needs a few hundred lines, not
// the whole retained stream; a narrow role may find fewer.
const consoleScan = 20_000

// consoleRecheck is how often a waiting Tail checks that its client may
// still use the console.
const consoleRecheck = 2 * time.Second

// errRevoked ends a console session whose client a refresh removed, or
// whose roles no longer grant the console.
var errRevoked = errors.New("the client's access to the console was revoked by a refresh of the region's config (removed, its secret changed, or the console no longer granted)")

// allowed reports whether the client still may use the console and see
// events at all (a refresh may have changed that).
func (o *consoleOperator) allowed() error {
	if o.revoked.Load() {
		return errRevoked
	}
	p := o.r.guard.authz.Policy()
	if p.HasClients() && !p.Known(o.client) || p.Port(o.client, trust.PortConsole) != nil {
		return errRevoked
	}
	return nil
}

// Tail implements console.Operator.
func (o *consoleOperator) Tail(ctx context.Context, filter *protocol.Filter, back int, fn func(*protocol.Event)) error {
	if o.r.guard.authz.Policy().Subscribe(o.client) != nil {
		// A role that grants the console and commands but no events: the
		// log area shows the console's own lines only.
		for {
			if err := o.allowed(); err != nil {
				return err
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(consoleRecheck):
			}
		}
	}
	show := func(e *protocol.Event) bool {
		return o.r.guard.Visible(o.client, e) && (filter == nil || filter.Match(e))
	}
	st := o.r.store
	stats, err := st.Stats(ctx)
	if err != nil {
		return fmt.Errorf("region: console: %w", err)
	}
	after := stats.Last
	if back > 0 && !stats.Last.IsZero() {
		first, err := o.newest(ctx, stats, back, show)
		if err != nil {
			return err
		}
		for _, e := range first {
			fn(e)
		}
	}
	var buf []*protocol.Event
	for {
		if err := o.allowed(); err != nil {
			return err
		}
		wctx, cancel := context.WithTimeout(ctx, consoleRecheck) // to check allowed again
		err := st.Wait(wctx, after)
		cancel()
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, context.DeadlineExceeded):
			continue
		case err != nil:
			return fmt.Errorf("region: console: %w", err)
		}
		buf, _, err = st.Read(ctx, after, 256, buf[:0])
		if err != nil {
			return fmt.Errorf("region: console: %w", err)
		}
		for _, e := range buf {
			after = e.ID
			if show(e) {
				fn(e)
			}
		}
	}
}

// newest returns up to n of the newest retained events that show, oldest
// first, reading back from the newest in widening windows of time (IDs
// start with the receive time in milliseconds) and at most consoleScan
// events in all.
func (o *consoleOperator) newest(ctx context.Context, stats store.StreamStats, n int,
	show func(*protocol.Event) bool) ([]*protocol.Event, error) {
	st := o.r.store
	scanned := 0
	var ring []*protocol.Event
	for _, w := range []time.Duration{time.Minute, time.Hour, 24 * time.Hour, 0} {
		var after protocol.ID
		if w > 0 && stats.Last.Ms > uint64(w.Milliseconds()) {
			after = protocol.ID{Ms: stats.Last.Ms - uint64(w.Milliseconds())}
		}
		ring = ring[:0]
		var buf []*protocol.Event
		for {
			var err error
			buf, _, err = st.Read(ctx, after, 1024, buf[:0])
			if err != nil {
				return nil, fmt.Errorf("region: console: %w", err)
			}
			for _, e := range buf {
				if stats.Last.Less(e.ID) {
					break
				}
				after = e.ID
				if show(e) {
					ring = append(ring, e)
					if len(ring) > n {
						ring = ring[1:]
					}
				}
			}
			scanned += len(buf)
			if len(buf) < 1024 || !after.Less(stats.Last) || scanned >= consoleScan {
				break
			}
		}
		if len(ring) >= n || w == 0 || scanned >= consoleScan {
			break
		}
	}
	return ring, nil
}

// Command implements console.Operator: "kind:name command" runs on that
// target, "region ..." and any line without a target are region commands
// (F NAME,WORD and the other operator forms).
func (o *consoleOperator) Command(ctx context.Context, line string, out func(string)) (console.Result, error) {
	if err := o.allowed(); err != nil {
		return console.Result{}, err
	}
	line = strings.TrimSpace(line)
	target, rest := commands.Target{Kind: commands.KindRegion}, line
	if first, after, _ := strings.Cut(line, " "); strings.Contains(first, ":") || strings.EqualFold(first, "region") {
		first = strings.TrimSuffix(first, ":") // "region: SERVERS" as "region SERVERS"
		t, err := commands.ParseTarget(first)
		if err != nil {
			return console.Result{}, fmt.Errorf("target %q: %w", first, err)
		}
		target, rest = t, strings.TrimSpace(after)
	}
	// The ID first, so that the audit log's start and end records of the
	// command carry it.
	req := &commands.Request{ID: o.r.router.NewID(), Target: target, Command: rest, Requester: o.client}
	rec := audit.Record{Kind: audit.KindCommand, Server: "console", Client: o.client, Remote: o.remote}
	start := time.Now()
	g := o.r.guard
	if err := g.begin(ctx, rec, req); err != nil {
		o.r.cmdDone(req, time.Since(start), err)
		return console.Result{}, commandReason(err)
	}
	var n int64
	var partial []byte
	emit := func(b []byte) { out(string(lx.AppendEscaped(nil, string(b)))) }
	res, err := o.r.router.Run(ctx, req, func(x commands.Output) {
		n += int64(len(x.Data))
		partial = append(partial, x.Data...)
		if x.EOL || len(partial) >= 4096 {
			emit(partial)
			partial = partial[:0]
		}
	})
	if len(partial) > 0 {
		emit(partial)
	}
	g.end(context.Background(), rec, req, res, n, err)
	o.r.cmdDone(req, time.Since(start), err)
	if err != nil {
		return console.Result{ID: req.ID}, commandReason(err)
	}
	return console.Result{ID: req.ID, RC: res.RC, Signal: res.Signal, Truncated: res.Truncated, Duration: res.Duration}, nil
}

// commandReason is the text the console shows for a command that did not
// run to its end: the error code and the region's words.
func commandReason(err error) error {
	var ce *commands.Error
	if errors.As(err, &ce) {
		return errors.New(ce.Code + ": " + ce.Message)
	}
	return err
}

// Agents implements console.Operator: the region command AGENTS must be
// granted.
func (o *consoleOperator) Agents(ctx context.Context) ([]console.Agent, error) {
	if err := o.allowed(); err != nil {
		return nil, err
	}
	if _, err := o.r.guard.authz.Policy().Command(o.client, commands.Target{Kind: commands.KindRegion}, "AGENTS"); err != nil {
		return nil, err
	}
	rows, err := o.r.allAgents(ctx)
	out := make([]console.Agent, 0, len(rows))
	for _, a := range rows {
		out = append(out, console.Agent{Name: a.Name, Kind: a.Kind, Addr: a.Addr, State: a.State, Since: a.Since,
			LastHeartbeat: a.LastHeartbeat, Region: a.Region})
	}
	return out, err
}

// Close implements console.Operator.
func (o *consoleOperator) Close() error {
	o.closeOnce.Do(func() {
		o.r.consoles.remove(o)
		o.r.issue(context.Background(), "ZBR302I", quoteName(o.client), o.remote)
	})
	return nil
}
