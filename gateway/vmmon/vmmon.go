// Package vmmon is the region's VMMON server: z/VM agents (one per z/VM
// system) log on with the system's name, send the events they scrape from
// the z/VM console, and run the CP commands that clients send to zvm:
// targets through COMMANDS.
//
// A system has at most one session: a second agent logging on for a system
// that has one is refused with reason "in-use". Events come in batches
// numbered by the agent's spool sequence; the region stores them, answers
// with the last sequence stored, and drops a batch's events it has already
// stored (an agent replaying its spool after a lost acknowledgement), so
// each console line is stored once while the region runs. The last
// sequence stored (the spool's mark) is kept in the store as a position,
// written with the events in one step where the store can (Redis): with a
// store that outlives the region, a batch is stored once also across a
// region restart, a region killed mid-batch, and an agent failing over to
// another region. (Not when the region the agent left is still alive and
// its write of the batch reaches Redis only after the next region read the
// mark, as after a network partition: then the batch is stored twice.) While the store cannot give the mark (Redis down),
// events are still stored, with the region's own mark: the console's events
// then matter more than a batch another region stored being stored again.
// A batch is acknowledged only once the store has made it durable
// (store.Sync): while Redis is unreachable the Redis store holds it in
// memory only, and the agent is answered an error, keeps its spool, and
// sends the batch again (it is not stored twice: the region's mark drops
// it) until Redis has it.
//
// Commands go down as "command" requests from the region, answered by the
// agent with "output" frames and a reply, exactly as on COMMANDS (see
// protocol/SPEC.md).
package vmmon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/commands"
	"github.com/zbridge/zbridge/gateway/session"
	"github.com/zbridge/zbridge/gateway/store"
	"github.com/zbridge/zbridge/protocol"
)

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = session.ErrServerClosed

// MaxCPCommand is protocol.MaxCPCommand, the longest CP command the
// region sends an agent.
const MaxCPCommand = protocol.MaxCPCommand

// Config configures a Server.
type Config struct {
	// Session configures logon, limits and timeouts; Session.Name defaults
	// to "vmmon" and Session.Logger to Logger.
	Session session.Config
	// Store receives the agents' events (required).
	Store store.Store
	// MaxBatch is the most events one events frame may carry (default and
	// at most protocol.MaxBatch, 1000, which the frame decoder enforces:
	// a larger batch ends the session as a bad frame; a smaller one here
	// is answered bad-request). The Redis store writes a batch and its
	// spool mark in one transaction up to 1024 events and 4 MiB; a larger
	// one in parts, the mark with the last.
	MaxBatch int
	// OnChange, when set, is called (without locks held) after a z/VM
	// system's agent logged on or its session ended: the region announces
	// its agents to the regions it shares Redis with at once, and issues
	// its messages.
	OnChange func(Change)
	// Permit, when set, decides whether the client that logged on may be
	// the agent of a z/VM system (the region asks its roles); a non-nil
	// error refuses the logon with reason not-permitted and the error's
	// text.
	Permit func(client, system string) error
	// Logger is required.
	Logger logrus.FieldLogger
}

// Change is a z/VM system's agent logging on or its session ending.
type Change struct {
	System, Client, Remote string
	Connected              bool   // logged on; false: its session ended
	Reason                 string // why it ended (a bye reason, or closed)
}

// Server is the VMMON server. It is also the commands.Executor for zvm:
// targets.
type Server struct {
	cfg Config
	ss  *session.Server
	log logrus.FieldLogger

	mu      sync.Mutex // guards the following fields
	systems map[string]*agent
	seen    map[string]time.Time // systems that ever had a session, and when it last ended
	lastSeq map[string]uint64    // per system and agent spool: the last event sequence stored
}

var _ commands.Executor = (*Server)(nil)

// agent is one z/VM agent's session.
type agent struct {
	sess   *session.Session
	system string
	since  time.Time
	// markRead is set once events read the spool's mark from the store in
	// this session (the request goroutine's alone).
	markRead bool

	mu      sync.Mutex // guards pending
	pending map[uint64]*pendingCmd
}

type pendingCmd struct {
	out   func(commands.Output)
	reply chan *protocol.Frame // the agent's reply, or nil when the session ended
}

// New returns a server for cfg, validated and copied.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("vmmon: config: Store is required")
	}
	if cfg.Logger == nil {
		return nil, errors.New("vmmon: config: Logger is required")
	}
	switch {
	case cfg.MaxBatch <= 0:
		cfg.MaxBatch = protocol.MaxBatch
	case cfg.MaxBatch > protocol.MaxBatch:
		return nil, fmt.Errorf("vmmon: config: MaxBatch %d is over the protocol's %d", cfg.MaxBatch, protocol.MaxBatch)
	}
	if cfg.Session.Name == "" {
		cfg.Session.Name = "vmmon"
	}
	if cfg.Session.Logger == nil {
		cfg.Session.Logger = cfg.Logger
	}
	s := &Server{cfg: cfg, log: cfg.Logger, systems: map[string]*agent{}, seen: map[string]time.Time{},
		lastSeq: map[string]uint64{}}
	ss, err := session.NewServer(cfg.Session, (*handler)(s))
	if err != nil {
		return nil, fmt.Errorf("vmmon: %w", err)
	}
	s.ss = ss
	return s, nil
}

// Serve accepts agents on l until Shutdown or Close; it always returns a
// non-nil error, ErrServerClosed after those.
func (s *Server) Serve(l net.Listener) error { return s.ss.Serve(l) }

// Shutdown stops accepting and ends the agents' sessions, letting commands
// in flight finish until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error { return s.ss.Shutdown(ctx) }

// Close stops at once.
func (s *Server) Close() error { return s.ss.Close() }

// EndClients ends the session of every client for which match returns
// true with a bye of the reason given (the region revoking access), and
// returns how many it ended.
func (s *Server) EndClients(match func(client string) bool, reason string) int {
	return s.ss.EndClients(match, reason)
}

// Recheck asks Config.Permit again for every z/VM agent's session (after
// the region's roles changed) and ends those no longer permitted with bye
// revoked. It returns how many it ended.
func (s *Server) Recheck() int {
	if s.cfg.Permit == nil {
		return 0
	}
	s.mu.Lock()
	agents := make([]*agent, 0, len(s.systems))
	for _, a := range s.systems {
		agents = append(agents, a)
	}
	s.mu.Unlock()
	n := 0
	for _, a := range agents {
		if err := s.cfg.Permit(a.sess.Client, a.system); err != nil {
			a.sess.Log.Warn("access revoked: " + err.Error())
			a.sess.End(&protocol.Frame{Reason: protocol.ByeRevoked, Message: err.Error()})
			n++
		}
	}
	return n
}

// Stats returns the session counters.
func (s *Server) Stats() session.Stats { return s.ss.Stats() }

// System describes a connected z/VM agent.
type System struct {
	Name, Remote string
	Since        time.Time
	LastSeen     time.Time
}

// Systems lists the z/VM systems whose agents are connected.
func (s *Server) Systems() []System {
	infos := map[string]session.Info{}
	for _, i := range s.ss.Sessions() {
		infos[i.ID] = i
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]System, 0, len(s.systems))
	for name, a := range s.systems {
		out = append(out, System{Name: name, Remote: a.sess.Remote, Since: a.since, LastSeen: infos[a.sess.ID].LastSeen})
	}
	return out
}

type handler Server

func systemName(s string) string { return strings.ToUpper(strings.TrimSpace(s)) }

// validSystem reports whether s is a z/VM system name: 1 to 8 characters
// of A-Z 0-9 @ # $ (z/VM SYSTEM_IDENTIFIER).
func validSystem(s string) bool {
	if len(s) == 0 || len(s) > 8 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '@' || c == '#' || c == '$') {
			return false
		}
	}
	return true
}

// SystemOption is the logon option naming the z/VM system an agent speaks
// for; without it the client name is the system name.
const SystemOption = "system"

// Admit implements session.Admitter: a client permitted to speak for the
// system, and one session per z/VM system.
func (h *handler) Admit(sess *session.Session) *protocol.Frame {
	name := systemName(sess.Client)
	if s := sess.Options[SystemOption]; s != "" {
		name = systemName(s)
	}
	if !validSystem(name) {
		return &protocol.Frame{Reason: protocol.RefuseBadRequest, Message: fmt.Sprintf(
			"z/VM system name %q: 1 to 8 of A-Z 0-9 @ # $", name)}
	}
	if sp := sess.Options["spool"]; sp != "" && !validSpool(sp) {
		return &protocol.Frame{Reason: protocol.RefuseBadRequest, Message: "options.spool: 1 to 64 of A-Z a-z 0-9 . _ -"}
	}
	if h.cfg.Permit != nil {
		if err := h.cfg.Permit(sess.Client, name); err != nil {
			return &protocol.Frame{Reason: protocol.RefuseNotPermitted, Message: err.Error()}
		}
	}
	h.mu.Lock()
	if old, ok := h.systems[name]; ok {
		defer h.mu.Unlock()
		return &protocol.Frame{Reason: protocol.RefuseInUse, Message: fmt.Sprintf(
			"z/VM system %s already has an agent session (from %s since %s)", name, old.sess.Remote,
			old.since.UTC().Format(time.RFC3339)), RetryAfter: 10}
	}
	a := &agent{sess: sess, system: name, since: time.Now(), pending: map[uint64]*pendingCmd{}}
	h.systems[name] = a
	sess.State = a
	sess.Log = sess.Log.WithField("system", name)
	h.mu.Unlock()
	if h.cfg.OnChange != nil {
		h.cfg.OnChange(Change{System: name, Client: sess.Client, Remote: sess.Remote, Connected: true})
	}
	return nil
}

// Ended implements session.Ender.
func (h *handler) Ended(sess *session.Session) {
	a, _ := sess.State.(*agent)
	if a == nil {
		return
	}
	h.mu.Lock()
	if h.systems[a.system] == a {
		delete(h.systems, a.system)
	}
	h.seen[a.system] = time.Now()
	h.mu.Unlock()
	if h.cfg.OnChange != nil {
		h.cfg.OnChange(Change{System: a.system, Client: sess.Client, Remote: sess.Remote, Reason: sess.EndReason()})
	}
	a.mu.Lock()
	for req, p := range a.pending {
		close(p.reply)
		delete(a.pending, req)
	}
	a.mu.Unlock()
}

// Request implements session.Handler.
func (h *handler) Request(sess *session.Session, f *protocol.Frame) *protocol.Frame {
	a := sess.State.(*agent)
	switch f.Type {
	case protocol.TypeEvents:
		return h.events(sess, a, f)
	case protocol.TypeOutput:
		a.mu.Lock()
		p := a.pending[f.Req]
		a.mu.Unlock()
		if p != nil && p.out != nil {
			o := commands.Output{Stream: commands.Stdout, EOL: f.EOL}
			if f.Stream == "stderr" {
				o.Stream = commands.Stderr
			}
			if f.Data != nil {
				o.Data = f.Data
			} else {
				o.Data = []byte(f.Text)
			}
			p.out(o)
		}
		return nil // output frames are not requests: no reply
	}
	return protocol.Reply(0, &protocol.Error{Code: protocol.ErrCodeUnknownType,
		Message: fmt.Sprintf("VMMON does not know request type %q (events, output, heartbeat, logoff)", f.Type)})
}

// Reply implements session.ReplyHandler: the agent's answer to a command.
func (h *handler) Reply(sess *session.Session, f *protocol.Frame) {
	a := sess.State.(*agent)
	a.mu.Lock()
	p := a.pending[f.Req]
	delete(a.pending, f.Req)
	a.mu.Unlock()
	if p != nil {
		fr := *f
		p.reply <- &fr
	}
}

func (h *handler) events(sess *session.Session, a *agent, f *protocol.Frame) *protocol.Frame {
	if len(f.Events) > h.cfg.MaxBatch {
		return protocol.Reply(0, &protocol.Error{Code: protocol.ErrCodeBadRequest,
			Message: fmt.Sprintf("%d events in one batch; at most %d", len(f.Events), h.cfg.MaxBatch)})
	}
	if f.Seq == 0 && len(f.Events) > 0 {
		return protocol.Reply(0, &protocol.Error{Code: protocol.ErrCodeBadRequest, Message: "events need seq (the first event's sequence, from 1)"})
	}
	key := a.system + "/" + sess.Options["spool"] // the numbering is the spool's
	h.mu.Lock()
	last := h.lastSeq[key]
	h.mu.Unlock()
	if !a.markRead {
		// The mark is kept in the store too: with a store that outlives the
		// region (Redis), a batch stored before a restart or by another
		// region is not stored again. It is read once a session: the agent
		// may have been on another region since this one last saw it.
		pos, ok, err := h.cfg.Store.Position(sess.Context(), markName(key))
		switch {
		case err != nil:
			// Store unreachable (Redis down): the console's events matter
			// more now than a possible repeat. Go on with this region's
			// own mark, and read the stored one again with the next batch.
			sess.Log.WithError(err).Warn("reading the stored spool mark failed; going on with this region's own (a batch stored by another region may be stored again)")
		case ok:
			last = max(last, pos.Ms)
			a.markRead = true
		default:
			a.markRead = true
		}
	}
	var fresh []*protocol.Event
	remoteHost, _, err := net.SplitHostPort(sess.Remote)
	if err != nil {
		remoteHost = sess.Remote
	}
	for i, e := range f.Events {
		seq := f.Seq + uint64(i)
		if seq <= last || e == nil {
			continue // stored before: a replay after a lost acknowledgement
		}
		ev := *e
		ev.ID, ev.Received = protocol.ID{}, time.Time{}
		// Where an event comes from is the session's to say, not the
		// frame's: an agent speaks for the system it logged on as, from
		// the address it connected from, and for nothing else.
		ev.Origin = protocol.Origin{System: a.system, Addr: remoteHost}
		// Structured data is RFC 5424's, which z/VM events do not have:
		// an agent's would let it meet the sd filters of roles.
		ev.SD = nil
		if ev.Source != protocol.SourceZVMConsole && ev.Source != protocol.SourceZVMEvent && ev.Source != protocol.SourceAgent {
			ev.Source = protocol.SourceZVMConsole
		}
		if ev.Time.IsZero() {
			ev.Time = time.Now().UTC()
		}
		fresh = append(fresh, &ev)
	}
	newLast := last
	if n := f.Seq + uint64(len(f.Events)); len(f.Events) > 0 && n-1 > last {
		newLast = n - 1
	}
	if newLast > last {
		// The events and the mark are stored in one step where the store
		// can (Redis): a region killed in between would otherwise store the
		// batch the agent sends again.
		err := store.AppendMarked(sess.Context(), h.cfg.Store, fresh, markName(key), protocol.ID{Ms: newLast})
		switch {
		case errors.Is(err, store.ErrNotMarked):
			// Stored: a failure here only risks storing a replayed batch again.
			sess.Log.WithError(err).Warn("recording the spool mark failed")
		case err != nil:
			// Maybe stored all the same (a reply lost): read the stored
			// mark again before taking the agent's resend.
			a.markRead = false
			sess.Log.WithError(err).Warn("storing z/VM events failed")
			return protocol.Reply(0, &protocol.Error{Code: protocol.ErrCodeInternal,
				Message: "the region could not store the events; keep them and send them again"})
		}
		h.mu.Lock()
		if _, known := h.lastSeq[key]; !known {
			h.forgetSpoolsLocked(a.system, maxSpoolsPerSystem-1)
		}
		h.lastSeq[key] = max(h.lastSeq[key], newLast)
		last = h.lastSeq[key]
		h.mu.Unlock()
	}
	// The agent drops its spool through Seq on this reply: the events must
	// be as durable as the store's policy makes them first (a store on
	// disk syncs; one that synced already returns at once; the Redis store
	// fails while it holds them in memory only, Redis unreachable).
	if err := store.Sync(sess.Context(), h.cfg.Store); err != nil {
		sess.Log.WithError(err).Warn("making z/VM events durable failed (not acknowledged)")
		return protocol.Reply(0, &protocol.Error{Code: protocol.ErrCodeInternal,
			Message: "the region could not keep the events; keep them and send them again"})
	}
	return &protocol.Frame{Type: protocol.TypeReply, Seq: last}
}

// maxSpoolsPerSystem bounds the spool marks the region keeps in memory for
// one system: an agent keeps one spool, so more are old ones (or an agent
// inventing spool names, which must not grow the region).
const maxSpoolsPerSystem = 16

// forgetSpoolsLocked drops system's spool marks beyond keep (any of them:
// the store keeps each, and a spool that comes back reads its mark there).
func (h *handler) forgetSpoolsLocked(system string, keep int) {
	n := 0
	for k := range h.lastSeq {
		if strings.HasPrefix(k, system+"/") {
			if n++; n > keep {
				delete(h.lastSeq, k)
			}
		}
	}
}

// validSpool reports whether s is a spool ID a region keeps: 1 to 64 of
// A-Z a-z 0-9 . _ - (an agent's spool IDs are hex).
func validSpool(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// markName is the store's name for the mark of one system's spool: the
// last spool sequence stored, kept as a position's Ms.
func markName(key string) string { return "vmmon:" + key }

// Run implements commands.Executor for zvm: targets: the command goes to
// the system's agent, which types it on the console and returns CP's
// response lines.
func (s *Server) Run(ctx context.Context, req *commands.Request, out func(commands.Output)) (commands.Result, error) {
	name := systemName(req.Target.Name)
	if len(req.Command) > MaxCPCommand {
		return commands.Result{}, &commands.Error{Code: commands.CodeBadRequest,
			Message: fmt.Sprintf("CP commands are at most %d characters; this one has %d", MaxCPCommand, len(req.Command))}
	}
	s.mu.Lock()
	a := s.systems[name]
	_, seen := s.seen[name]
	s.mu.Unlock()
	if a == nil {
		if seen {
			return commands.Result{}, &commands.Error{Code: commands.CodeNotConnected,
				Message: fmt.Sprintf("the agent for z/VM system %s is not connected; wait until it reconnects", name)}
		}
		return commands.Result{}, &commands.Error{Code: commands.CodeUnknown,
			Message: fmt.Sprintf("no agent for z/VM system %s has connected to this region; wait until it has connected", name)}
	}
	req2 := a.sess.NextReq()
	p := &pendingCmd{out: out, reply: make(chan *protocol.Frame, 1)}
	a.mu.Lock()
	a.pending[req2] = p
	a.mu.Unlock()
	forget := func() {
		a.mu.Lock()
		delete(a.pending, req2)
		a.mu.Unlock()
	}
	f := &protocol.Frame{Type: protocol.TypeCommand, Req: req2, ID: req.ID, Target: req.Target.String(),
		Command: req.Command, Timeout: req.Timeout.Seconds()}
	if err := a.sess.Send(f); err != nil {
		forget()
		return commands.Result{}, &commands.Error{Code: commands.CodeNotConnected, Message: fmt.Sprintf("sending to the agent of %s: %v", name, err)}
	}
	select {
	case r, ok := <-p.reply:
		if !ok {
			return commands.Result{}, &commands.Error{Code: commands.CodeNotConnected,
				Message: fmt.Sprintf("the agent of %s disconnected before it answered", name)}
		}
		res := commands.Result{Truncated: r.Truncated, Signal: r.Signal}
		if r.Error != nil {
			return res, &commands.Error{Code: r.Error.Code, Message: r.Error.Message, RetryAfter: r.RetryAfter}
		}
		if r.RC != nil {
			res.RC = *r.RC
		}
		return res, nil
	case <-ctx.Done():
		forget()
		// Tell the agent; it stops waiting for the response (a CP command
		// cannot be taken back once typed).
		a.sess.Send(&protocol.Frame{Type: protocol.TypeCancel, Req: a.sess.NextReq(), ID: req.ID})
		return commands.Result{}, ctx.Err()
	}
}
