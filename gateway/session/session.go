// Package session runs the sessions of the region's protocol servers
// (UNSOLMSG now; COMMANDS and VMMON use it too): it accepts connections,
// performs the LOGON exchange (version, credentials, heartbeat negotiation,
// session limit), answers heartbeats, polices idle time and lifetime, and ends
// every session with a bye frame that says why. What a session does after
// logon is up to a Handler.
//
// See protocol/SPEC.md for the frames.
package session

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/gateway/store"
	"github.com/zbridge/zbridge/internal/acceptretry"
	"github.com/zbridge/zbridge/protocol"
)

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("session: server closed")

// Authenticator checks a client's name and secret at LOGON. It returns an
// error for a refusal; the error text is not shown to the client.
type Authenticator interface {
	Authenticate(ctx context.Context, name, secret string) error
}

// Handler serves requests after LOGON.
type Handler interface {
	// Request answers one request frame of a type the session does not
	// handle itself (it handles heartbeat, logoff and reply). It returns
	// the reply to send; the reply's Req is set by the caller.
	Request(s *Session, f *protocol.Frame) *protocol.Frame
}

// Admitter is a Handler that may refuse a session after its credentials
// were checked, e.g. a second session for a system that has one. Admit
// returns nil to accept, or a refuse frame's reason, message and
// retry_after; the session is then not started.
type Admitter interface {
	Admit(s *Session) *protocol.Frame
}

// ReplyHandler is a Handler that sends requests of its own to clients
// (numbered with Session.NextReq) and takes their replies: every reply
// frame from the client, heartbeat answers included, is passed to Reply.
type ReplyHandler interface {
	Reply(s *Session, f *protocol.Frame)
}

// Ender is a Handler told when a session has ended (after its goroutines
// returned), to forget what it kept for it.
type Ender interface {
	Ended(s *Session)
}

// Config configures a Server. Zero fields take the defaults given.
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
	// LogonTimeout bounds the wait for the LOGON frame (default 10s).
	LogonTimeout time.Duration
	// MaxPending is the most connections waiting to log on at once
	// (default 64); more are refused busy at once, so that a flood of
	// silent connections cannot hold the server's memory.
	MaxPending int
	// MaxLogonFrame bounds the LOGON frame (default 16 KiB); MaxFrame
	// applies once the session is accepted.
	MaxLogonFrame int
	// WriteTimeout ends a session whose client accepts no data for this
	// long (default 30s).
	WriteTimeout time.Duration
	// MaxFrame bounds frames from the client (default protocol.DefaultMaxFrame).
	MaxFrame int
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
	if c.MaxSessions <= 0 {
		c.MaxSessions = 100
	}
	if c.MaxPending <= 0 {
		c.MaxPending = 64
	}
	if c.MaxLogonFrame <= 0 {
		c.MaxLogonFrame = 16 << 10
	}
	def(&c.RetryAfter, 5*time.Second)
	def(&c.Heartbeat, 30*time.Second)
	def(&c.MinHeartbeat, time.Second)
	def(&c.MaxHeartbeat, 300*time.Second)
	def(&c.LogonTimeout, 10*time.Second)
	def(&c.WriteTimeout, 30*time.Second)
	if c.MaxFrame <= 0 {
		c.MaxFrame = protocol.DefaultMaxFrame
	}
	if c.MinHeartbeat > c.MaxHeartbeat {
		return fmt.Errorf("session: config: MinHeartbeat %v above MaxHeartbeat %v", c.MinHeartbeat, c.MaxHeartbeat)
	}
	return nil
}

// Stats are a server's counters.
type Stats struct {
	Active   int64
	Accepted uint64            // sessions that logged on
	Refused  map[string]uint64 // refusals by reason
	Ended    map[string]uint64 // sessions ended, by reason
}

// Server accepts connections and runs their sessions.
type Server struct {
	cfg   Config
	h     Handler
	log   logrus.FieldLogger
	start string // start time, making session IDs unique across restarts

	nextID atomic.Uint64

	mu        sync.Mutex // guards the following fields
	listeners map[net.Listener]struct{}
	sessions  map[*Session]struct{}
	conns     map[net.Conn]struct{} // connections not yet ended, logged on or not
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
	return &Server{
		cfg:       cfg,
		h:         h,
		log:       cfg.Logger,
		start:     strconv.FormatInt(time.Now().UnixMilli(), 36),
		listeners: make(map[net.Listener]struct{}),
		sessions:  make(map[*Session]struct{}),
		conns:     make(map[net.Conn]struct{}),
		refused:   make(map[string]uint64),
		ended:     make(map[string]uint64),
	}, nil
}

// Serve accepts connections on l until Shutdown or Close, and always
// returns a non-nil error: ErrServerClosed after those. It closes l.
func (s *Server) Serve(l net.Listener) error {
	if s.cfg.TLSConfig != nil {
		l = tls.NewListener(l, s.cfg.TLSConfig)
	}
	s.mu.Lock()
	if s.shutdown {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
		l.Close()
	}()
	var delay acceptretry.Backoff
	for {
		c, err := l.Accept()
		if err != nil {
			s.mu.Lock()
			down := s.shutdown
			s.mu.Unlock()
			if down {
				return ErrServerClosed
			}
			if acceptretry.Retryable(err) {
				d := delay.Next()
				s.log.WithError(err).Warnf("accept failed; retrying in %v", d)
				time.Sleep(d)
				continue
			}
			return fmt.Errorf("session: %s: accept: %w", s.cfg.Name, err)
		}
		delay.Reset()
		s.mu.Lock()
		if s.shutdown {
			s.mu.Unlock()
			c.Close()
			return ErrServerClosed
		}
		if pending := len(s.conns) - len(s.sessions); pending >= s.cfg.MaxPending {
			s.mu.Unlock()
			s.refuse(c, 0, protocol.RefuseBusy, fmt.Sprintf("%d connections already waiting to log on", pending), s.cfg.RetryAfter)
			c.Close()
			continue
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serveConn(c)
	}
}

// Shutdown stops accepting, asks every session to finish (handlers see
// Session.Stopping and flush what they owe), ends each with bye shutdown,
// and waits for them until ctx ends, when it closes what is left.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shutdown = true
	for l := range s.listeners {
		l.Close()
	}
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
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.Close()
		<-done
		return ctx.Err()
	}
}

// Close stops at once: listeners and connections are closed. It waits for
// the connection goroutines to return. It is safe to call more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	s.shutdown = true
	for l := range s.listeners {
		l.Close()
	}
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
	defer s.mu.Unlock()
	st := Stats{Active: int64(len(s.sessions)), Accepted: s.accepted,
		Refused: make(map[string]uint64, len(s.refused)), Ended: make(map[string]uint64, len(s.ended))}
	for k, v := range s.refused {
		st.Refused[k] = v
	}
	for k, v := range s.ended {
		st.Ended[k] = v
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

func (s *Server) refuse(c net.Conn, req uint64, reason, msg string, retry time.Duration) {
	s.mu.Lock()
	s.refused[reason]++
	s.mu.Unlock()
	f := &protocol.Frame{Type: protocol.TypeRefuse, Req: req, Reason: reason, Message: msg}
	if retry > 0 {
		f.RetryAfter = int((retry + time.Second - 1) / time.Second)
	}
	b, _ := protocol.AppendFrame(nil, f)
	c.SetWriteDeadline(time.Now().Add(2 * time.Second))
	c.Write(b)
	s.log.WithFields(logrus.Fields{"remote": c.RemoteAddr().String(), "reason": reason}).Info("logon refused: " + msg)
}

// serveConn runs one connection from LOGON to its end.
func (s *Server) serveConn(c net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
	}()
	remote := c.RemoteAddr().String()
	r := protocol.NewReader(c, min(s.cfg.MaxLogonFrame, s.cfg.MaxFrame))
	c.SetReadDeadline(time.Now().Add(s.cfg.LogonTimeout))
	var f protocol.Frame
	if err := r.Next(&f); err != nil {
		var ne net.Error
		switch {
		case errors.Is(err, protocol.ErrMalformed), errors.Is(err, protocol.ErrFrameTooLarge):
			s.refuse(c, 0, protocol.RefuseBadRequest, "first frame is not a valid logon: "+err.Error(), 0)
		case errors.As(err, &ne) && ne.Timeout():
			s.refuse(c, 0, protocol.RefuseBadRequest, fmt.Sprintf("no logon within %v", s.cfg.LogonTimeout), 0)
		default:
			s.log.WithField("remote", remote).WithError(err).Debug("connection ended before logon")
		}
		return
	}
	if f.Type != protocol.TypeLogon {
		s.refuse(c, f.Req, protocol.RefuseBadRequest, fmt.Sprintf("first frame must be logon, not %q", f.Type), 0)
		return
	}
	if f.Version != protocol.Version {
		s.refuse(c, f.Req, protocol.RefuseVersion, fmt.Sprintf("protocol version %d is not supported; this server speaks version %d", f.Version, protocol.Version), 0)
		return
	}
	if f.Client == "" {
		s.refuse(c, f.Req, protocol.RefuseBadRequest, "logon needs a client name", 0)
		return
	}
	s.mu.Lock()
	full := len(s.sessions) >= s.cfg.MaxSessions
	s.mu.Unlock()
	if full { // before the costly secret check; checked again below
		s.refuse(c, f.Req, protocol.RefuseBusy, fmt.Sprintf("%d sessions already (the most allowed)", s.cfg.MaxSessions), s.cfg.RetryAfter)
		return
	}
	if s.cfg.Auth != nil {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.LogonTimeout)
		err := s.cfg.Auth.Authenticate(ctx, f.Client, string(f.Secret))
		cancel()
		if err != nil {
			s.log.WithFields(logrus.Fields{"remote": remote, "client": f.Client}).WithError(err).Debug("authentication failed")
			s.refuse(c, f.Req, protocol.RefuseAuth, "bad client name or secret", 0)
			return
		}
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
		bw:      bufio.NewWriterSize(c, 64<<10),
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
		s.refuse(c, f.Req, protocol.RefuseBusy, "the region is shutting down", s.cfg.RetryAfter)
		return
	case len(s.sessions) >= s.cfg.MaxSessions:
		s.mu.Unlock()
		s.refuse(c, f.Req, protocol.RefuseBusy, fmt.Sprintf("%d sessions already (the most allowed)", s.cfg.MaxSessions), s.cfg.RetryAfter)
		return
	}
	s.sessions[sess] = struct{}{}
	s.accepted++
	s.mu.Unlock()
	if a, ok := s.h.(Admitter); ok {
		if refusal := a.Admit(sess); refusal != nil {
			s.mu.Lock()
			delete(s.sessions, sess)
			s.accepted--
			s.mu.Unlock()
			sess.cancel()
			s.refuse(c, f.Req, refusal.Reason, refusal.Message, time.Duration(refusal.RetryAfter)*time.Second)
			return
		}
	}

	sess.Log = sess.Log.WithField("session", sess.ID)
	err := sess.Send(&protocol.Frame{Type: protocol.TypeAccept, Req: f.Req, Session: sess.ID,
		Version: protocol.Version, Limits: &sess.limits})
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
