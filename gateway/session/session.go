// Package session runs the sessions of the region's protocol servers
// (UNSOLMSG, COMMANDS and VMMON): it accepts connections, performs the
// LOGON exchange (version, credentials, heartbeat negotiation, session
// limit), answers heartbeats, polices idle time and lifetime, and ends
// every session with a bye frame that says why. What a session does after
// logon is up to a Handler.
//
// # Trust boundaries
//
// Everything before a successful logon comes from an unknown peer, so it is
// bounded: a TLS handshake must finish within HandshakeTimeout and the
// LOGON frame arrive within LogonTimeout; at most MaxPending connections
// wait to log on, at most MaxPendingPerAddr of them from one source IP
// address, and one address holds at most MaxPerAddr connections, logged on
// or not, so that one host cannot take the port from the others. Those
// refusals are written by goroutines of their own, at most MaxPending at
// once (a TLS refusal waits for the handshake); beyond that a connection
// is closed without an answer, so that the accept loop never waits. Failed
// logons are throttled per source address (an IPv6 address by its /64) and
// per client name (see MaxLogonFailures): a blocked address is refused
// busy, with retry_after, before its secret is checked, so that a brute
// force costs neither the Authenticator's time (argon2) nor its memory; a
// blocked name is still checked, so that the right secret logs on (others
// failing with a client's name cannot lock it out), and a wrong one is
// refused busy. The throttle
// tables have a fixed capacity (ThrottleEntries each, the least recently
// failed key forgotten when full): about 200 bytes an entry plus the client
// name, so under 2 MiB with the defaults. Every refused logon is logged,
// counted in Stats.Refused by reason and passed to Config.OnRefuse;
// failed logons are logged at warning level with the client name and the
// remote address, never the secret.
//
// The process's file descriptors are bounded too (Config.Reserve, the
// region's descriptor budget): a connection accepted past the budget, or
// with a spare descriptor once the process has run out, is refused busy
// with retry_after and a message that says so, before anything is read
// from it, rather than left in the kernel's listen backlog, where its
// client would wait for an answer that never comes.
//
// # Heartbeats
//
// A session's timers check once a heartbeat interval whether to send a
// heartbeat (when nothing was sent, or nothing received, for most of an
// interval), so that an idle session is woken once for each heartbeat;
// twice an interval when the idle timeout is under two and a half
// intervals, so that the heartbeat, and the client's answer, come in
// time. The heartbeat and the answer to a client's are written without
// encoding/json (protocol.AppendBareFrame), and a client's answer read so
// (protocol.Decode): an idle subscriber's heartbeat is most
// of what an idle region does. The checks fall at a phase of the session's own, chosen at
// random, on a grid of one second (an eighth of a shorter interval) that
// every session shares: the heartbeats of the thousands of sessions that
// log on together when a region restarts are spread over the interval,
// and the checks due in the same second are made together, so that idle
// sessions wake the process a few times a second rather than hundreds.
//
// # Goroutines
//
// Serve runs the accept loop (package internal/acceptloop) on the caller's
// goroutine. Each accepted connection gets one goroutine, counted in the
// Server's WaitGroup, which Shutdown and Close wait for: it runs the logon
// and then the session (or writes a refusal and closes; a connection past
// the descriptor budget gets such a goroutine too, counted alike). A
// session adds its timers goroutine and the handler's goroutines started
// with Session.Go; the connection's goroutine waits for them before it
// returns. EndClients waits for the goroutines it starts to send the byes.
//
// See protocol/SPEC.md for the frames.
package session

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/gateway/store"
	"github.com/zbridge/zbridge/internal/acceptloop"
	"github.com/zbridge/zbridge/internal/drain"
	"github.com/zbridge/zbridge/internal/throttle"
	"github.com/zbridge/zbridge/internal/tlsconf"
	"github.com/zbridge/zbridge/protocol"
)

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("session: server closed")

// Authenticator checks a client's name and secret at LOGON. It returns an
// error for a refusal; the error text is not shown to the client.
type Authenticator interface {
	Authenticate(ctx context.Context, name, secret string) error
}

// refuseReasoner is an Authenticator's error that is not about the
// credentials (they were good) but about what the client may do: the logon
// is refused with its reason and the error's text as the message (package
// trust's *Denial: reason not-permitted).
type refuseReasoner interface {
	error
	RefuseReason() string
}

// Handler serves requests after LOGON.
type Handler interface {
	// Request answers one request frame of a type the session does not
	// handle itself (it handles heartbeat, logoff and reply). It returns
	// the reply to send; the reply's Req is set by the caller. f is the
	// session's for the call only: it is cleared when Request returns
	// (so that an idle session holds nothing of its last frame), and a
	// handler that needs any of it later (a goroutine it starts) copies
	// the fields. What f's fields point to (f.Filter, f.Events) is made
	// anew for each frame and may be kept.
	Request(s *Session, f *protocol.Frame) *protocol.Frame
}

// Admitter is a Handler that may refuse a session after its credentials
// were checked, e.g. a second session for a system that has one. Admit
// runs before the accept is written, and the session's writes wait for
// the accept: Admit must not write to the session itself, which would wait
// forever; another goroutine may, and its frame follows the accept. Admit
// returns nil to accept, or a refuse frame's reason, message and
// retry_after; the session is then not started.
type Admitter interface {
	Admit(s *Session) *protocol.Frame
}

// ReplyHandler is a Handler that sends requests of its own to clients
// (numbered with Session.NextReq) and takes their replies: every reply
// frame from the client, heartbeat answers included, is passed to Reply.
type ReplyHandler interface {
	// Reply takes one reply frame; f is the session's for the call only,
	// as Request's is.
	Reply(s *Session, f *protocol.Frame)
}

// Ender is a Handler told when a session has ended (after its goroutines
// returned), to forget what it kept for it.
type Ender interface {
	Ended(s *Session)
}

// Defaults of Config: what a zero field becomes.
const (
	DefaultMaxSessions       = 100
	DefaultMaxPending        = 64
	DefaultMaxPerAddr        = 16
	DefaultMaxPendingPerAddr = 8
	DefaultRetryAfter        = 5 * time.Second
	DefaultHeartbeat         = 30 * time.Second
	DefaultMinHeartbeat      = time.Second
	DefaultMaxHeartbeat      = 300 * time.Second
	DefaultHandshakeTimeout  = 10 * time.Second
	DefaultLogonTimeout      = 10 * time.Second
	DefaultMaxLogonFrame     = 16 << 10
	DefaultWriteTimeout      = 30 * time.Second

	DefaultMaxLogonFailures       = 5
	DefaultMaxClientLogonFailures = 20
	DefaultLogonFailureWindow     = 5 * time.Minute
	DefaultLogonBlock             = time.Second
	DefaultMaxLogonBlock          = 5 * time.Minute
	DefaultThrottleEntries        = 4096
)

// readBuffer is the size of a connection's read buffer.
const readBuffer = 4 << 10

// Refusal describes a refused logon, for Config.OnRefuse.
type Refusal struct {
	Server  string // Config.Name
	Remote  string // the client's address, host:port
	Client  string // the client name of the LOGON frame; "" when refused before it was read
	Reason  string // the refuse frame's reason (protocol.RefuseBusy, ...)
	Message string // the sentence the client was told
}

// Config configures a Server. Zero fields take the defaults given (the
// Default constants).
type Config struct {
	// Name is the server's name in logs, metrics and session records
	// ("unsolmsg").
	Name string
	// Region is the region's name, recorded with each session.
	Region string
	// Auth checks credentials; nil accepts any client name without a secret
	// (the region allows that only on loopback listeners).
	Auth Authenticator
	// TLSConfig, when set, makes Serve speak TLS.
	TLSConfig *tls.Config
	// HandshakeTimeout bounds the TLS handshake of a new connection
	// (default 10s); a client that does not complete it in time is closed.
	HandshakeTimeout time.Duration
	// MaxSessions is the most sessions at once (default 100); a LOGON past
	// it is refused with reason busy and RetryAfter.
	MaxSessions int
	// RetryAfter is what a busy refusal tells the client to wait (default 5s).
	RetryAfter time.Duration
	// Heartbeat is the interval granted when the client asks for none
	// (default 30s); a request is clamped to [MinHeartbeat, MaxHeartbeat]
	// (defaults 1s and 300s).
	Heartbeat, MinHeartbeat, MaxHeartbeat time.Duration
	// IdleTimeout ends a session that sent nothing for this long (default
	// three heartbeat intervals). When set, the heartbeat granted is at most
	// a third of it (or MinHeartbeat, at most half of it).
	IdleTimeout time.Duration
	// Lifetime ends a session this long after logon (default 0: never).
	Lifetime time.Duration
	// LogonTimeout bounds the wait for the LOGON frame, after the TLS
	// handshake (default 10s).
	LogonTimeout time.Duration
	// MaxPending is the most connections waiting to log on at once
	// (default 64); more are refused busy at once, so that a flood of
	// silent connections cannot hold the server's memory.
	MaxPending int
	// MaxPendingPerAddr is the most connections from one source IP address
	// waiting to log on at once (default 8), so that one host's silent
	// connections cannot take all of MaxPending; more are refused busy.
	MaxPendingPerAddr int
	// MaxPerAddr is the most connections from one source IP address, logged
	// on or waiting to log on (default 16); more are refused busy. Raise it
	// when many clients share one address (behind NAT).
	MaxPerAddr int
	// MaxLogonFailures is how many failed logons (a wrong client name or
	// secret) one source IP address may have before it is blocked (default
	// 5). A blocked address's logons are refused busy, with retry_after,
	// without checking the secret; the block lasts LogonBlock (default 1s)
	// and doubles with each further failure, up to MaxLogonBlock (default
	// 5m). LogonFailureWindow (default 5m) without failure or block
	// forgets the address; a successful logon does not, since any client
	// with a secret of its own could then clear its address's count
	// between guesses at another client's secret. (A host one of whose
	// clients keeps failing is therefore blocked for all of them: the log
	// names the client that fails.)
	MaxLogonFailures int
	// MaxClientLogonFailures is how many failed logons one client name
	// may have, whichever address they come from, before it is blocked
	// (default 20): a blocked name's logons are still checked, the right
	// secret logs on and a wrong one is refused busy.
	MaxClientLogonFailures int
	// LogonFailureWindow, LogonBlock and MaxLogonBlock: see MaxLogonFailures.
	LogonFailureWindow, LogonBlock, MaxLogonBlock time.Duration
	// ThrottleEntries is how many addresses, and how many client names,
	// the logon throttle remembers (default 4096 each); when full, the one
	// that failed least recently is forgotten.
	ThrottleEntries int
	// OnRefuse, when set, is called for every refused logon (any reason,
	// connections refused before their LOGON included), before the client
	// is told. It is called on the connection's goroutine, or on the accept
	// loop's for a connection closed without an answer: it must not block
	// for long.
	OnRefuse func(Refusal)
	// Recheck, when set, is asked once a logon has passed Auth and its
	// session is registered whether client, with secret, may still log on:
	// the region's config may have changed while the secret was checked
	// (the client removed, its secret changed, the port withdrawn), too
	// late for the change to end a session not yet registered. An error
	// refuses the logon, with the reason of an error that has a
	// RefuseReason method (not-permitted), else auth. ctx ends after
	// LogonTimeout.
	Recheck func(ctx context.Context, client, secret string) error
	// MaxLogonFrame bounds the LOGON frame (default 16 KiB); MaxFrame
	// applies once the session is accepted.
	MaxLogonFrame int
	// WriteTimeout ends a session whose client accepts no data for this
	// long (default 30s).
	WriteTimeout time.Duration
	// MaxFrame bounds frames from the client (default protocol.DefaultMaxFrame).
	MaxFrame int
	// Reserve, when set, is the process's descriptor budget (shared by
	// its servers): a connection past it, or one accepted with a spare
	// descriptor once the process ran out (see acceptloop.Reserve), is
	// refused busy with RetryAfter and a message that says so, before
	// anything is read from it, rather than left in the listen backlog.
	// At most MaxPending such refusals are written at once; beyond that a
	// connection is closed without an answer.
	Reserve *acceptloop.Reserve
	// Store records sessions; optional.
	Store store.Store
	// Logger is required.
	Logger logrus.FieldLogger
}

func (c *Config) setDefaults() error {
	if c.Name == "" {
		return errors.New("session: config: Name is required")
	}
	if c.Logger == nil {
		return errors.New("session: config: Logger is required")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	defInt := func(n *int, v int) {
		if *n <= 0 {
			*n = v
		}
	}
	defInt(&c.MaxSessions, DefaultMaxSessions)
	defInt(&c.MaxPending, DefaultMaxPending)
	defInt(&c.MaxPendingPerAddr, DefaultMaxPendingPerAddr)
	defInt(&c.MaxPerAddr, DefaultMaxPerAddr)
	defInt(&c.MaxLogonFrame, DefaultMaxLogonFrame)
	defInt(&c.MaxFrame, protocol.DefaultMaxFrame)
	defInt(&c.MaxLogonFailures, DefaultMaxLogonFailures)
	defInt(&c.MaxClientLogonFailures, DefaultMaxClientLogonFailures)
	defInt(&c.ThrottleEntries, DefaultThrottleEntries)
	def(&c.RetryAfter, DefaultRetryAfter)
	def(&c.Heartbeat, DefaultHeartbeat)
	def(&c.MinHeartbeat, DefaultMinHeartbeat)
	def(&c.MaxHeartbeat, DefaultMaxHeartbeat)
	def(&c.HandshakeTimeout, DefaultHandshakeTimeout)
	def(&c.LogonTimeout, DefaultLogonTimeout)
	def(&c.WriteTimeout, DefaultWriteTimeout)
	def(&c.LogonFailureWindow, DefaultLogonFailureWindow)
	def(&c.LogonBlock, DefaultLogonBlock)
	def(&c.MaxLogonBlock, max(DefaultMaxLogonBlock, c.LogonBlock))
	if c.MinHeartbeat > c.MaxHeartbeat {
		return fmt.Errorf("session: config: MinHeartbeat %v above MaxHeartbeat %v", c.MinHeartbeat, c.MaxHeartbeat)
	}
	if c.MaxLogonBlock < c.LogonBlock {
		return fmt.Errorf("session: config: MaxLogonBlock %v below LogonBlock %v", c.MaxLogonBlock, c.LogonBlock)
	}
	return nil
}

// Stats are a server's counters.
type Stats struct {
	Active   int64
	Pending  int64             // connections waiting to log on
	Accepted uint64            // sessions that logged on
	Refused  map[string]uint64 // refusals by reason
	Ended    map[string]uint64 // sessions ended, by reason
	// Throttled is how many source addresses and client names the logon
	// throttle remembers (at most 2*ThrottleEntries).
	Throttled int
}

// Server accepts connections and runs their sessions.
type Server struct {
	cfg   Config
	h     Handler
	log   logrus.FieldLogger
	start string // start time, making session IDs unique across restarts
	loop  *acceptloop.Loop

	// The logon throttle: failures per source address and per client name
	// (clientKey). Nil without Auth.
	addrFails   *throttle.Table[netip.Addr]
	clientFails *throttle.Table[string]

	nextID atomic.Uint64

	mu        sync.Mutex // guards the following fields
	sessions  map[*Session]struct{}
	conns     map[net.Conn]struct{} // connections not yet ended: logged on, pending or being refused
	pending   int                   // connections waiting to log on
	pendingAt map[netip.Addr]int    // pending, by source address
	refusing  int                   // goroutines writing a refusal from accept (at most MaxPending)
	shutdown  bool
	refused   map[string]uint64
	ended     map[string]uint64
	accepted  uint64

	wg sync.WaitGroup // connection goroutines
}

// NewServer returns a server for h with cfg, validated and copied.
func NewServer(cfg Config, h Handler) (*Server, error) {
	if h == nil {
		return nil, errors.New("session: nil Handler")
	}
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	s := &Server{
		cfg:       cfg,
		h:         h,
		log:       cfg.Logger,
		start:     strconv.FormatInt(time.Now().UnixMilli(), 36),
		loop:      acceptloop.New(acceptloop.Config{MaxPerAddr: cfg.MaxPerAddr, Logger: cfg.Logger}),
		sessions:  make(map[*Session]struct{}),
		conns:     make(map[net.Conn]struct{}),
		pendingAt: make(map[netip.Addr]int),
		refused:   make(map[string]uint64),
		ended:     make(map[string]uint64),
	}
	if cfg.Auth != nil {
		tc := throttle.Config{MaxFailures: cfg.MaxLogonFailures, Window: cfg.LogonFailureWindow,
			Block: cfg.LogonBlock, MaxBlock: cfg.MaxLogonBlock, Capacity: cfg.ThrottleEntries}
		var err error
		if s.addrFails, err = throttle.New[netip.Addr](tc); err != nil {
			return nil, fmt.Errorf("session: config: %w", err)
		}
		tc.MaxFailures = cfg.MaxClientLogonFailures
		if s.clientFails, err = throttle.New[string](tc); err != nil {
			return nil, fmt.Errorf("session: config: %w", err)
		}
	}
	return s, nil
}

// Serve accepts connections on l until Shutdown or Close, and always
// returns a non-nil error: ErrServerClosed after those. It closes l.
func (s *Server) Serve(l net.Listener) error {
	if s.cfg.Reserve != nil {
		// Under TLS: the budget looks at the TCP connection's descriptor,
		// and the refusal is written over TLS.
		l = s.cfg.Reserve.Listener(l, acceptloop.ListenerConfig{Name: s.cfg.Name, Refuse: s.refuseNoDescriptor})
	}
	if s.cfg.TLSConfig != nil {
		l = tls.NewListener(l, s.cfg.TLSConfig)
	}
	err := s.loop.Serve(l, s.accept)
	if errors.Is(err, acceptloop.ErrStopped) {
		return ErrServerClosed
	}
	return fmt.Errorf("session: %s: %w", s.cfg.Name, err)
}

// accept starts the goroutine that serves c, or the one that refuses it:
// when its address has MaxPerAddr connections, or MaxPending connections
// (MaxPendingPerAddr from its address) wait to log on.
func (s *Server) accept(c net.Conn, a *acceptloop.Admission) {
	s.mu.Lock()
	if s.shutdown {
		s.mu.Unlock()
		c.Close()
		a.Release()
		return
	}
	var msg string
	switch {
	case a.Over:
		msg = fmt.Sprintf("%d connections from %s already (the most allowed from one address)", s.cfg.MaxPerAddr, a.Addr)
	case s.pending >= s.cfg.MaxPending:
		msg = fmt.Sprintf("%d connections already waiting to log on", s.pending)
	case s.pendingAt[a.Addr] >= s.cfg.MaxPendingPerAddr:
		msg = fmt.Sprintf("%d connections from %s already waiting to log on (the most allowed from one address)", s.pendingAt[a.Addr], a.Addr)
	}
	if msg != "" && s.refusing >= s.cfg.MaxPending {
		// A flood: no goroutine to tell this one why.
		s.mu.Unlock()
		s.countRefusal(protocol.RefuseBusy)
		s.reportRefusal(c.RemoteAddr().String(), "", protocol.RefuseBusy, msg+" (closed without an answer: too many refusals in progress)")
		c.Close()
		a.Release()
		return
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	if msg != "" {
		s.refusing++
		s.mu.Unlock()
		// On a goroutine of its own: writing the refusal may wait (for a
		// TLS handshake), and the accept loop must not.
		go func() {
			defer s.wg.Done()
			defer func() {
				s.forget(c, a)
				s.mu.Lock()
				s.refusing--
				s.mu.Unlock()
			}()
			s.refuse(c, 0, "", protocol.RefuseBusy, msg, s.cfg.RetryAfter)
		}()
		return
	}
	s.pending++
	s.pendingAt[a.Addr]++
	s.mu.Unlock()
	go s.serveConn(c, a)
}

// refuseNoDescriptor refuses c, a connection past the descriptor budget
// (see Config.Reserve), busy with why, on a goroutine of its own as other
// refusals from the accept loop are.
func (s *Server) refuseNoDescriptor(c net.Conn, why string) {
	s.mu.Lock()
	if s.shutdown || s.refusing >= s.cfg.MaxPending {
		s.mu.Unlock()
		s.countRefusal(protocol.RefuseBusy)
		s.reportRefusal(c.RemoteAddr().String(), "", protocol.RefuseBusy, why+" (closed without an answer: too many refusals in progress)")
		c.Close()
		return
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.refusing++
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		defer func() {
			c.Close()
			s.mu.Lock()
			delete(s.conns, c)
			s.refusing--
			s.mu.Unlock()
		}()
		rc := c
		if s.cfg.TLSConfig != nil {
			rc = tls.Server(c, s.cfg.TLSConfig) // refuse's write completes the handshake, within its deadline
		}
		s.refuse(rc, 0, "", protocol.RefuseBusy, why, s.cfg.RetryAfter)
	}()
}

// forget closes c and drops it from the server's connections.
func (s *Server) forget(c net.Conn, a *acceptloop.Admission) {
	c.Close()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	a.Release()
}

// notPendingLocked takes a connection from addr off the pending counts: it
// logged on, or ended before.
func (s *Server) notPendingLocked(addr netip.Addr) {
	s.pending--
	if n := s.pendingAt[addr]; n > 1 {
		s.pendingAt[addr] = n - 1
	} else {
		delete(s.pendingAt, addr)
	}
}

// Shutdown stops accepting, asks every session to finish (handlers see
// Session.Stopping and flush what they owe), ends each with bye shutdown,
// and waits for them until ctx ends, when it closes what is left.
func (s *Server) Shutdown(ctx context.Context) error {
	// The sessions are told to stop before the accept loop, so that once
	// Serve has returned no session starts a new request's work.
	s.mu.Lock()
	s.shutdown = true
	logged := make(map[net.Conn]bool, len(s.sessions))
	for sess := range s.sessions {
		sess.stop()
		logged[sess.conn] = true
	}
	for c := range s.conns { // not logged on yet: nothing to finish
		if !logged[c] {
			c.Close()
		}
	}
	s.mu.Unlock()
	s.loop.Stop()
	return drain.Wait(ctx, &s.wg, func() { s.Close() })
}

// Close stops at once: listeners and connections are closed. It waits for
// the connection goroutines to return. It is safe to call more than once.
func (s *Server) Close() error {
	s.loop.Stop()
	s.mu.Lock()
	s.shutdown = true
	for sess := range s.sessions {
		sess.stop()
	}
	for c := range s.conns { // sessions' and those still in logon
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	st := Stats{Active: int64(len(s.sessions)), Pending: int64(s.pending), Accepted: s.accepted,
		Refused: make(map[string]uint64, len(s.refused)), Ended: make(map[string]uint64, len(s.ended))}
	for k, v := range s.refused {
		st.Refused[k] = v
	}
	for k, v := range s.ended {
		st.Ended[k] = v
	}
	s.mu.Unlock()
	if s.addrFails != nil {
		st.Throttled = s.addrFails.Len() + s.clientFails.Len()
	}
	return st
}

// Info describes a live session.
type Info struct {
	ID, Client, Remote string
	Since, LastSeen    time.Time
}

// Sessions lists the live sessions.
func (s *Server) Sessions() []Info {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Info, 0, len(s.sessions))
	for sess := range s.sessions {
		out = append(out, Info{ID: sess.ID, Client: sess.Client, Remote: sess.Remote,
			Since: sess.Since, LastSeen: time.UnixMilli(sess.lastRecv.Load())})
	}
	return out
}

// EndClients ends every live session whose client name matches with a bye
// of reason (protocol.ByeRevoked when a client's access was withdrawn), and
// returns how many it ended. It returns once each was sent its bye or
// could not be (a client that takes no data holds it for the bye's short
// write deadline); the sessions' goroutines finish on their own. A session
// that logs on while EndClients runs is not ended: the caller withdraws
// access first (from the Authenticator), then calls EndClients.
func (s *Server) EndClients(match func(client string) bool, reason string) int {
	s.mu.Lock()
	var end []*Session
	for sess := range s.sessions {
		if match(sess.Client) {
			end = append(end, sess)
		}
	}
	s.mu.Unlock()
	msg := "ended by the region: " + reason
	if reason == protocol.ByeRevoked {
		msg = "the client's access was withdrawn"
	}
	var wg sync.WaitGroup
	for _, sess := range end {
		wg.Add(1)
		go func() { // End may wait for a write in progress: one at a time would add up
			defer wg.Done()
			sess.End(&protocol.Frame{Reason: reason, Message: msg})
		}()
	}
	wg.Wait()
	return len(end)
}

// refuse writes a refuse frame to c, counts, logs and reports it. It does
// not close c. client is the LOGON's client name, if it was read.
func (s *Server) refuse(c net.Conn, req uint64, client, reason, msg string, retry time.Duration) {
	// Counted and reported before the client can see it.
	s.countRefusal(reason)
	s.reportRefusal(c.RemoteAddr().String(), client, reason, msg)
	f := &protocol.Frame{Type: protocol.TypeRefuse, Req: req, Reason: reason, Message: msg}
	if retry > 0 {
		f.RetryAfter = int((retry + time.Second - 1) / time.Second)
	}
	b, _ := protocol.AppendFrame(nil, f)
	// Both deadlines: on a TLS connection the write may first have to
	// complete the handshake.
	c.SetDeadline(time.Now().Add(2 * time.Second))
	c.Write(b)
}

func (s *Server) countRefusal(reason string) {
	s.mu.Lock()
	s.refused[reason]++
	s.mu.Unlock()
}

// reportRefusal logs a refused logon and passes it on to OnRefuse.
func (s *Server) reportRefusal(remote, client, reason, msg string) {
	log := s.log.WithFields(logrus.Fields{"remote": remote, "reason": reason})
	if client != "" {
		log = log.WithField("client", clip(client))
	}
	log.Info("logon refused: " + msg)
	if s.cfg.OnRefuse != nil {
		s.cfg.OnRefuse(Refusal{Server: s.cfg.Name, Remote: remote, Client: client, Reason: reason, Message: msg})
	}
}

// clip shortens a client name from an unknown peer for the log.
func clip(name string) string {
	const n = 128
	if len(name) <= n {
		return name
	}
	return strings.ToValidUTF8(name[:n], "") + "..."
}

// clientKey is a client name's key in the throttle table: the name itself,
// or a digest of a long one, so that an entry's size is bounded.
func clientKey(name string) string {
	if len(name) <= 64 {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// throttled reports, when addr or client is blocked for failed logons, the
// sentence to refuse the logon with and how long to wait.
//
// A blocked address is refused before its secret is checked. A blocked
// name is not: its secret is still checked (each address trying it is
// throttled on its own), a right one logs on, and only a wrong one is
// refused busy, so that others failing with a client's name cannot lock
// the client out.
func (s *Server) throttled(addr netip.Addr, client string) (msg string, wait time.Duration, byName bool) {
	if s.addrFails == nil {
		return "", 0, false
	}
	if d := s.addrFails.Wait(throttleAddr(addr)); d > 0 {
		return fmt.Sprintf("too many failed logons from %s; try again in %v", addr, roundUp(d)), d, false
	}
	if d := s.clientFails.Wait(clientKey(client)); d > 0 {
		return fmt.Sprintf("too many failed logons for this client name; try again in %v", roundUp(d)), d, true
	}
	return "", 0, false
}

// throttleAddr is an address's key in the failed-logon table: an IPv6
// address counts as its /64, which one host or site usually holds whole.
func throttleAddr(a netip.Addr) netip.Addr {
	if a.Is6() && !a.Is4In6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

// admit asks Config.Recheck and then the Handler's Admit, if any, about a
// session that logged on, with secret, and is registered; a non-nil frame
// refuses it. Recheck is asked here rather than with the secret: access
// withdrawn while the secret was being checked either ended the session
// (EndClients saw it registered) or is seen now.
func (s *Server) admit(sess *Session, secret string) *protocol.Frame {
	if s.cfg.Recheck != nil {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.LogonTimeout)
		err := s.cfg.Recheck(ctx, sess.Client, secret)
		cancel()
		if err != nil {
			reason := protocol.RefuseAuth
			var rr refuseReasoner
			if errors.As(err, &rr) {
				reason = rr.RefuseReason()
			}
			return &protocol.Frame{Reason: reason, Message: err.Error()}
		}
	}
	if a, ok := s.h.(Admitter); ok {
		return a.Admit(sess)
	}
	return nil
}

func roundUp(d time.Duration) time.Duration {
	return (d + time.Second - 1).Truncate(time.Second)
}

// serveConn runs one connection from LOGON to its end. It is pending until
// it logs on; a.Addr is its source address.
func (s *Server) serveConn(c net.Conn, a *acceptloop.Admission) {
	defer s.wg.Done()
	addr := a.Addr
	pending := true
	defer func() {
		s.mu.Lock()
		if pending {
			s.notPendingLocked(addr)
		}
		s.mu.Unlock()
		s.forget(c, a)
	}()
	remote := c.RemoteAddr().String()
	if tc, ok := c.(*tls.Conn); ok {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.HandshakeTimeout)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			s.log.WithField("remote", remote).WithError(tlsconf.ExplainHandshake(err)).Info("TLS handshake failed; connection closed")
			return
		}
	}
	// A small read buffer, whatever the frame limit: the reader gathers a
	// longer frame across refills, and a region with thousands of
	// sessions would otherwise hold 16 KiB (the logon limit) to 64 KiB a
	// session of buffers that idle sessions never fill.
	r := protocol.NewReader(c, readBuffer-1)
	r.SetMaxFrame(min(s.cfg.MaxLogonFrame, s.cfg.MaxFrame))
	c.SetReadDeadline(time.Now().Add(s.cfg.LogonTimeout))
	var f protocol.Frame
	if err := r.Next(&f); err != nil {
		var ne net.Error
		switch {
		case errors.Is(err, protocol.ErrMalformed), errors.Is(err, protocol.ErrFrameTooLarge):
			s.refuse(c, 0, "", protocol.RefuseBadRequest, "first frame is not a valid logon: "+err.Error(), 0)
		case errors.As(err, &ne) && ne.Timeout():
			s.refuse(c, 0, "", protocol.RefuseBadRequest, fmt.Sprintf("no logon within %v", s.cfg.LogonTimeout), 0)
		default:
			s.log.WithField("remote", remote).WithError(err).Debug("connection ended before logon")
		}
		return
	}
	if f.Type != protocol.TypeLogon {
		s.refuse(c, f.Req, "", protocol.RefuseBadRequest, fmt.Sprintf("first frame must be logon, not %q", f.Type), 0)
		return
	}
	if f.Version != protocol.Version {
		s.refuse(c, f.Req, f.Client, protocol.RefuseVersion, fmt.Sprintf("protocol version %d is not supported; this server speaks version %d", f.Version, protocol.Version), 0)
		return
	}
	if f.Client == "" {
		s.refuse(c, f.Req, "", protocol.RefuseBadRequest, "logon needs a client name", 0)
		return
	}
	// Before the costly secret check: a blocked address or name costs
	// nothing more.
	nameMsg, nameWait, byName := s.throttled(addr, f.Client)
	if nameMsg != "" && !byName {
		s.refuse(c, f.Req, f.Client, protocol.RefuseBusy, nameMsg, nameWait)
		return
	}
	s.mu.Lock()
	full := len(s.sessions) >= s.cfg.MaxSessions
	s.mu.Unlock()
	if full { // before the costly secret check; checked again below
		s.refuse(c, f.Req, f.Client, protocol.RefuseBusy, fmt.Sprintf("%d sessions already (the most allowed)", s.cfg.MaxSessions), s.cfg.RetryAfter)
		return
	}
	if s.cfg.Auth != nil {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.LogonTimeout)
		err := s.cfg.Auth.Authenticate(ctx, f.Client, string(f.Secret))
		cancel()
		var rr refuseReasoner
		if errors.As(err, &rr) {
			// Good credentials, but no grant of this port: the client is
			// told what is missing. It resets no failure count.
			s.log.WithFields(logrus.Fields{"remote": remote, "client": clip(f.Client)}).Warn("logon refused: " + err.Error())
			s.refuse(c, f.Req, f.Client, rr.RefuseReason(), err.Error(), 0)
			return
		}
		if err != nil {
			log := s.log.WithFields(logrus.Fields{"remote": remote, "client": clip(f.Client)}).WithError(err)
			blockAddr := s.addrFails.Failure(throttleAddr(addr))
			blockClient := s.clientFails.Failure(clientKey(f.Client))
			if b := max(blockAddr, blockClient); b > 0 {
				log = log.WithField("blocked_for", b.String())
			}
			log.Warn("authentication failed")
			if byName {
				s.refuse(c, f.Req, f.Client, protocol.RefuseBusy, nameMsg, nameWait)
				return
			}
			s.refuse(c, f.Req, f.Client, protocol.RefuseAuth, "bad client name or secret", 0)
			return
		}
		// The name's count is forgotten, the address's is not (see
		// MaxLogonFailures).
		s.clientFails.Success(clientKey(f.Client))
	}
	hb := s.cfg.Heartbeat
	if f.Heartbeat > 0 {
		hb = min(max(time.Duration(f.Heartbeat)*time.Second, s.cfg.MinHeartbeat), s.cfg.MaxHeartbeat)
	}
	idle := s.cfg.IdleTimeout
	if idle <= 0 {
		idle = 3 * hb
	}
	// Heartbeats must come often enough for the idle timeout, with room
	// for a slow answer: at most a third of it (but not under the minimum,
	// and never over half), whatever the client asked.
	hb = min(max(min(hb, idle/3), s.cfg.MinHeartbeat), idle/2)
	sess := &Session{
		ID:      fmt.Sprintf("%s-%s-%s-%d", s.cfg.Region, s.cfg.Name, s.start, s.nextID.Add(1)),
		Client:  f.Client,
		Remote:  remote,
		Since:   time.Now().UTC(),
		Options: f.Options,
		srv:     s,
		conn:    c,
		limits: protocol.Limits{Heartbeat: int((hb + time.Second - 1) / time.Second), IdleTimeout: int(idle / time.Second),
			Lifetime: int(s.cfg.Lifetime / time.Second), MaxFrame: s.cfg.MaxFrame},
		hb:       hb,
		idle:     idle,
		stopping: make(chan struct{}),
		Log:      s.log.WithFields(logrus.Fields{"client": f.Client, "remote": remote}),
	}
	sess.ctx, sess.cancel = context.WithCancel(context.Background())
	sess.stopCtx, sess.stopCancel = context.WithCancel(sess.ctx)
	sess.touch()

	s.mu.Lock()
	switch {
	case s.shutdown:
		s.mu.Unlock()
		s.refuse(c, f.Req, f.Client, protocol.RefuseBusy, "the region is shutting down", s.cfg.RetryAfter)
		return
	case len(s.sessions) >= s.cfg.MaxSessions:
		s.mu.Unlock()
		s.refuse(c, f.Req, f.Client, protocol.RefuseBusy, fmt.Sprintf("%d sessions already (the most allowed)", s.cfg.MaxSessions), s.cfg.RetryAfter)
		return
	}
	s.sessions[sess] = struct{}{}
	s.accepted++
	s.notPendingLocked(addr)
	pending = false
	s.mu.Unlock()
	// Nothing is written to the client before its accept: the handler's
	// Admit can make the session reachable (VMMON routes commands to the
	// agent it admits), and a frame written by another goroutine before
	// the accept was taken by the client for the answer to its logon.
	sess.wmu.Lock()
	if refusal := s.admit(sess, string(f.Secret)); refusal != nil {
		sess.wmu.Unlock()
		s.mu.Lock()
		delete(s.sessions, sess)
		s.accepted--
		s.mu.Unlock()
		sess.cancel()
		s.refuse(c, f.Req, f.Client, refusal.Reason, refusal.Message, time.Duration(refusal.RetryAfter)*time.Second)
		return
	}

	sess.Log = sess.Log.WithField("session", sess.ID)
	accept, err := protocol.AppendFrame(nil, &protocol.Frame{Type: protocol.TypeAccept, Req: f.Req, Session: sess.ID,
		Version: protocol.Version, Limits: &sess.limits})
	if err == nil {
		err = sess.writeLocked(accept, s.cfg.WriteTimeout)
	}
	sess.wmu.Unlock()
	if err == nil {
		sess.Log.Info("session started")
		s.record(sess)
		sess.run(r)
	}
	reason := sess.finish()
	if e, ok := s.h.(Ender); ok {
		e.Ended(sess)
	}

	s.mu.Lock()
	delete(s.sessions, sess)
	s.ended[reason]++
	s.mu.Unlock()
	if s.cfg.Store != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := s.cfg.Store.DeleteSession(ctx, sess.ID); err != nil {
			sess.Log.WithError(err).Warn("could not remove session record")
		}
		cancel()
	}
}

func (s *Server) record(sess *Session) {
	if s.cfg.Store == nil {
		return
	}
	ctx, cancel := context.WithTimeout(sess.ctx, 5*time.Second)
	defer cancel()
	err := s.cfg.Store.PutSession(ctx, store.Session{ID: sess.ID, Server: s.cfg.Name, Client: sess.Client,
		Remote: sess.Remote, Region: s.cfg.Region, Since: sess.Since, LastSeen: time.UnixMilli(sess.lastRecv.Load()).UTC()})
	if err != nil {
		sess.Log.WithError(err).Warn("could not record session")
	}
}
