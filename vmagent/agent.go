// Package vmagent is the z/VM agent: one per z/VM system, it logs on to
// the system's console through TN3270 (package vmagent/tn3270), turns the
// console's output into events, and types the CP commands the region sends.
// This file is its link to the region: a VMMON session that sends the
// spooled events and serves the region's commands, reconnecting with
// backoff while the region is away (events wait in the Spool meanwhile).
//
// A CP command from the region is typed only if the agent's Policy
// (Config.Policy, `zbridge vmagent --policy FILE`) allows it; a refused one
// is answered with code not-permitted and a sentence naming the rule, and
// never reaches the console. An agent without a policy types every
// command, as agents did before policies: CP's privilege classes of the
// console's userid are then the only limit, so give an agent a policy
// ending in "default deny" unless the region is trusted with that userid.
// The policy refuses outright any command holding CP's line end (#),
// character delete (@) or escape ("), or a character outside printable
// ASCII, and takes the command name as CP does, abbreviations included
// (see Policy).
package vmagent

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/commands"
	"github.com/zbridge/zbridge/protocol"
)

// Console runs CP commands: the console scraper implements it.
type Console interface {
	// Run types cmd on the console and calls out with each line of CP's
	// response, in order. It returns 0 when CP answered without an error
	// message, else a non-zero return code; an *commands.Error when the
	// command could not be run.
	Run(ctx context.Context, cmd string, out func(line string)) (rc int, err error)
}

// Config configures an Agent.
type Config struct {
	// VMMon is the region's VMMON address, or a comma-separated list of
	// the VMMON addresses of regions sharing one Redis: the agent logs on
	// to the first and, when a session ends, tries the next.
	VMMon  string
	System string // the z/VM system name: the agent's identity at logon
	Secret string // the agent's secret in the region's clients file
	// TLS, when set, makes the agent speak TLS to VMMON (the region
	// serves TLS on VMMON when it has a certificate). An empty ServerName
	// is taken from the host of each VMMON address.
	TLS *tls.Config
	// Spool keeps events until the region acknowledges them (required).
	Spool *Spool
	// Batch is the most events per events frame (default 500).
	Batch int
	// Heartbeat is the interval asked for at logon (default 30s).
	Heartbeat time.Duration
	// ReconnectMin and ReconnectMax bound the backoff between attempts
	// (defaults 500ms and 30s).
	ReconnectMin, ReconnectMax time.Duration
	// Policy decides which CP commands are typed; nil types every one.
	// New copies it.
	Policy *Policy
	Logger logrus.FieldLogger // required
}

// Agent is the z/VM agent's VMMON side.
type Agent struct {
	cfg     Config
	console Console
	log     logrus.FieldLogger
	cmdMu   sync.Mutex // one CP command at a time on the console
	addrs   []string   // cfg.VMMon's addresses, at least one
}

// New returns an agent for cfg running commands on console.
func New(cfg Config, console Console) (*Agent, error) {
	var addrs []string
	for _, x := range strings.Split(cfg.VMMon, ",") {
		if x = strings.TrimSpace(x); x != "" {
			addrs = append(addrs, x)
		}
	}
	switch {
	case len(addrs) == 0, cfg.System == "":
		return nil, errors.New("vmagent: config: VMMon and System are required")
	case cfg.Spool == nil:
		return nil, errors.New("vmagent: config: Spool is required")
	case cfg.Logger == nil:
		return nil, errors.New("vmagent: config: Logger is required")
	case console == nil:
		return nil, errors.New("vmagent: no console")
	}
	if cfg.Policy != nil {
		p, err := cfg.Policy.clone()
		if err != nil {
			return nil, fmt.Errorf("vmagent: config: %w", err)
		}
		cfg.Policy = p
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 500
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 30 * time.Second
	}
	if cfg.ReconnectMin <= 0 {
		cfg.ReconnectMin = 500 * time.Millisecond
	}
	if cfg.ReconnectMax <= 0 {
		cfg.ReconnectMax = 30 * time.Second
	}
	return &Agent{cfg: cfg, console: console, addrs: addrs, log: cfg.Logger.WithFields(logrus.Fields{"component": "vmagent", "system": cfg.System})}, nil
}

// Run keeps a VMMON session to the region until ctx ends, reconnecting
// with jittered exponential backoff. It returns ctx's error, or at once an
// error the region will keep giving (bad credentials, a version it does
// not speak).
func (a *Agent) Run(ctx context.Context) error {
	wait := a.cfg.ReconnectMin
	addrs := a.addrs
	for i := 0; ; i = (i + 1) % len(addrs) {
		start := time.Now()
		err := a.session(ctx, addrs[i])
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var ref *refusedError
		if errors.As(err, &ref) && (ref.reason == protocol.RefuseAuth || ref.reason == protocol.RefuseVersion) {
			return err
		}
		if time.Since(start) > a.cfg.ReconnectMax {
			wait = a.cfg.ReconnectMin
		}
		d := wait/2 + rand.N(wait/2+1)
		if len(addrs) > 1 && time.Since(start) > a.cfg.ReconnectMax {
			d = 0 // a session that ran for a while ended: try the next region at once
		}
		a.log.WithError(err).Warnf("VMMON session with %s ended; reconnecting to %s in %v", addrs[i], addrs[(i+1)%len(addrs)], d.Round(time.Millisecond))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
		}
		wait = min(2*wait, a.cfg.ReconnectMax)
	}
}

type refusedError struct{ reason, message string }

func (e *refusedError) Error() string {
	return fmt.Sprintf("vmagent: logon refused (%s): %s", e.reason, e.message)
}

// conn is one VMMON session.
type conn struct {
	a   *Agent
	nc  net.Conn
	wmu sync.Mutex // guards bw
	bw  *bufio.Writer
	req uint64 // our requests' numbers; touched only by the sender

	mu      sync.Mutex // guards the following fields
	acks    map[uint64]chan *protocol.Frame
	running map[string]context.CancelFunc // commands by ID
}

func (c *conn) send(f *protocol.Frame) error {
	b, err := protocol.AppendFrame(nil, f)
	if err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.nc.SetWriteDeadline(time.Now().Add(30 * time.Second))
	c.bw.Write(b)
	return c.bw.Flush()
}

// session runs one VMMON session: logon, then the event sender and the
// frame reader, until either fails or ctx ends.
func (a *Agent) session(ctx context.Context, addr string) error {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("vmagent: %w", err)
	}
	if a.cfg.TLS != nil {
		cfg := a.cfg.TLS
		if cfg.ServerName == "" {
			if host, _, err := net.SplitHostPort(addr); err == nil {
				cfg = cfg.Clone()
				cfg.ServerName = host
			}
		}
		tc := tls.Client(nc, cfg)
		nc.SetDeadline(time.Now().Add(30 * time.Second)) // a peer that never answers the handshake
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return fmt.Errorf("vmagent: TLS handshake with VMMON %s: %w", addr, err)
		}
		nc = tc
	}
	defer nc.Close()
	c := &conn{a: a, nc: nc, bw: bufio.NewWriter(nc), acks: map[uint64]chan *protocol.Frame{}, running: map[string]context.CancelFunc{}}
	r := protocol.NewReader(nc, 16<<20)
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	c.req++
	if err := c.send(&protocol.Frame{Type: protocol.TypeLogon, Req: c.req, Client: a.cfg.System, Secret: protocol.Secret(a.cfg.Secret),
		Version: protocol.Version, Heartbeat: int(a.cfg.Heartbeat / time.Second), Options: map[string]string{"kind": "zvm-agent", "spool": a.cfg.Spool.ID()}}); err != nil {
		return fmt.Errorf("vmagent: logon: %w", err)
	}
	var f protocol.Frame
	if err := r.Next(&f); err != nil {
		return fmt.Errorf("vmagent: logon: %w", err)
	}
	if f.Type == protocol.TypeRefuse {
		return &refusedError{reason: f.Reason, message: f.Message}
	}
	if f.Type != protocol.TypeAccept {
		return fmt.Errorf("vmagent: logon answered with %q", f.Type)
	}
	nc.SetDeadline(time.Time{})
	a.log.WithField("session", f.Session).Info("VMMON session started")
	hb := a.cfg.Heartbeat
	if f.Limits != nil && f.Limits.Heartbeat > 0 {
		hb = time.Duration(f.Limits.Heartbeat) * time.Second
	}

	sctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(sctx, func() { nc.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		cancel(c.sendEvents(sctx, hb))
	}()
	err = c.read(sctx, r, &wg, 3*hb)
	cancel(err)
	c.mu.Lock()
	for _, stopCmd := range c.running {
		stopCmd()
	}
	c.mu.Unlock()
	if cause := context.Cause(sctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return err
}

// sendEvents sends the spool's events in batches, one batch in flight,
// acknowledging what the region stored; it sends a heartbeat when idle.
func (c *conn) sendEvents(ctx context.Context, hb time.Duration) error {
	sp := c.a.cfg.Spool
	var after uint64
	for {
		evs, first, more := sp.Pending(after, c.a.cfg.Batch)
		if len(evs) == 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-more:
			case <-time.After(hb):
				c.req++
				if err := c.send(&protocol.Frame{Type: protocol.TypeHeartbeat, Req: c.req}); err != nil {
					return err
				}
			}
			continue
		}
		c.req++
		req := c.req
		ack := make(chan *protocol.Frame, 1)
		c.mu.Lock()
		c.acks[req] = ack
		c.mu.Unlock()
		if err := c.send(&protocol.Frame{Type: protocol.TypeEvents, Req: req, Seq: first, Events: evs}); err != nil {
			return fmt.Errorf("vmagent: send events: %w", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case r := <-ack:
			if r.Error != nil {
				return fmt.Errorf("vmagent: region refused events: %s: %s", r.Error.Code, r.Error.Message)
			}
			if err := sp.Ack(r.Seq); err != nil {
				return err
			}
			after = max(after, r.Seq, first+uint64(len(evs))-1)
		case <-time.After(2 * time.Minute):
			return errors.New("vmagent: no acknowledgement of events for 2 minutes")
		}
	}
}

// read handles the region's frames until the session ends.
func (c *conn) read(ctx context.Context, r *protocol.Reader, wg *sync.WaitGroup, idle time.Duration) error {
	for {
		// The region heartbeats a quiet session: a link silent for three
		// intervals is dead, even if no FIN or RST said so.
		c.nc.SetReadDeadline(time.Now().Add(idle))
		var f protocol.Frame
		if err := r.Next(&f); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("vmagent: read: %w", err)
		}
		switch f.Type {
		case protocol.TypeReply:
			c.mu.Lock()
			ack := c.acks[f.Req]
			delete(c.acks, f.Req)
			c.mu.Unlock()
			if ack != nil {
				fr := f
				ack <- &fr
			}
		case protocol.TypeHeartbeat:
			if err := c.send(protocol.Reply(f.Req, nil)); err != nil {
				return err
			}
		case protocol.TypeBye:
			return fmt.Errorf("vmagent: region ended the session (%s): %s", f.Reason, f.Message)
		case protocol.TypeCommand:
			cctx, stopCmd := context.WithCancel(ctx)
			c.mu.Lock()
			c.running[f.ID] = stopCmd
			c.mu.Unlock()
			cmd := f
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer stopCmd()
				c.runCommand(cctx, &cmd)
				c.mu.Lock()
				delete(c.running, cmd.ID)
				c.mu.Unlock()
			}()
		case protocol.TypeCancel:
			c.mu.Lock()
			stopCmd := c.running[f.ID]
			c.mu.Unlock()
			if stopCmd != nil {
				stopCmd()
			}
		}
	}
}

// runCommand types one CP command (one at a time on the console) and
// sends its response lines and reply.
func (c *conn) runCommand(ctx context.Context, f *protocol.Frame) {
	a := c.a
	if f.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(f.Timeout*float64(time.Second)))
		defer cancel()
	}
	start := time.Now()
	reply := &protocol.Frame{Type: protocol.TypeReply, Req: f.Req, ID: f.ID}
	if len(f.Command) > protocol.MaxCPCommand {
		reply.Error = &protocol.Error{Code: commands.CodeBadRequest,
			Message: fmt.Sprintf("CP commands are at most %d characters", protocol.MaxCPCommand)}
		c.send(reply)
		return
	}
	if ce := a.cfg.Policy.Check(f.Command); ce != nil {
		reply.Error = &protocol.Error{Code: ce.Code, Message: ce.Message}
		a.log.WithFields(logrus.Fields{"id": f.ID, "command": f.Command}).Warn("CP command refused: " + ce.Message)
		c.send(reply)
		return
	}
	a.cmdMu.Lock()
	rc, err := a.console.Run(ctx, f.Command, func(line string) {
		c.send(&protocol.Frame{Type: protocol.TypeOutput, Req: f.Req, ID: f.ID, Stream: "stdout", Text: line, EOL: true})
	})
	a.cmdMu.Unlock()
	reply.DurationMS = time.Since(start).Milliseconds()
	var ce *commands.Error
	switch {
	case err == nil:
		reply.RC = &rc
	case errors.As(err, &ce):
		reply.Error = &protocol.Error{Code: ce.Code, Message: ce.Message}
	case ctx.Err() != nil:
		reply.Error = &protocol.Error{Code: commands.CodeTimeout, Message: "CP did not finish answering in time"}
	default:
		reply.Error = &protocol.Error{Code: commands.CodeFailed, Message: err.Error()}
	}
	a.log.WithFields(logrus.Fields{"id": f.ID, "command": f.Command, "rc": rc, "ms": reply.DurationMS}).Info("CP command done")
	c.send(reply)
}
