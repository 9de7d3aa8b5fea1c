package relp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/internal/acceptloop"
	"github.com/zbridge/zbridge/protocol/relp"
)

// Sink takes syslog messages from RELP sessions. Deliver returns nil once
// every message is durable; the server then answers each with rsp 200.
//
// msgs are the DATA of consecutive syslog frames of one session, in the
// order the client sent them, exactly as received (rsyslog's
// RSYSLOG_SyslogProtocol23Format ends each with an LF). Deliver must not
// keep msgs or the byte slices in it after it returns: the server reuses
// them; it copies what it keeps. Deliver is called from one goroutine per
// session, so calls for different sessions run concurrently; the calls of
// one session never overlap. ctx is cancelled by Close.
//
// When Deliver returns an error, none of msgs is acknowledged: the server
// logs the error, sends the serverclose hint and closes the session, and
// the client sends them again on its next session (librelp resends every
// unacknowledged frame after it reconnects). A message may therefore be
// delivered twice (at least once, never lost): once when a Deliver that
// made it durable still reported an error, and whenever a session ends
// between Deliver and the client reading its rsp.
type Sink interface {
	Deliver(ctx context.Context, from net.Addr, msgs [][]byte) error
}

// SinkFunc adapts a function to a Sink.
type SinkFunc func(ctx context.Context, from net.Addr, msgs [][]byte) error

// Deliver calls f.
func (f SinkFunc) Deliver(ctx context.Context, from net.Addr, msgs [][]byte) error {
	return f(ctx, from, msgs)
}

// Defaults of Config.
const (
	// DefaultMaxFrame is librelp's maximum DATALEN (128 KiB): omrelp sends
	// no larger message unless rsyslog's maxMessageSize is raised.
	DefaultMaxFrame = relp.DefaultMaxData
	// DefaultMaxSessions is imrelp's and imtcp's default.
	DefaultMaxSessions = 200
	// DefaultMaxSessionsPerAddr is the default of Config.MaxSessionsPerAddr.
	DefaultMaxSessionsPerAddr = 32
	// DefaultIdleTimeout is the default of Config.IdleTimeout.
	DefaultIdleTimeout = 5 * time.Minute
	// DefaultHandshakeTimeout is the default of Config.HandshakeTimeout.
	DefaultHandshakeTimeout = 10 * time.Second
	// DefaultWindow is librelp's default window (omrelp windowSize): the
	// most unacknowledged frames a client sends.
	DefaultWindow = 128
)

const (
	// readBuffer is the size of a session's read buffer: a window of 128
	// typical messages fits in it, so one Deliver takes it whole.
	readBuffer = 64 << 10
	// refuseTimeout bounds the write of the serverclose hint to a refused
	// connection (with its TLS handshake), and the last one to a session
	// that ends.
	refuseTimeout = time.Second
	// maxBatchBytes bounds the messages of one Deliver (with one frame
	// more): as the SYSLOG server bounds one Append.
	maxBatchBytes = 4 << 20
	// maxKeptArena is the largest batch buffer a session keeps between
	// batches; a larger one (a window of huge messages) is dropped.
	maxKeptArena = 1 << 20
	// ProtocolVersion is the highest RELP version the server speaks.
	// librelp 1.11 still offers version 0, the same wire format.
	ProtocolVersion = 1
	// Software is the server's relp_software offer.
	Software = "zbridge"
)

// Config configures a Server. New copies it.
type Config struct {
	// Sink receives the syslog messages. Required.
	Sink Sink
	// Logger receives the server's log, with component=relp added, and
	// remote=ADDR for what concerns one session. Required.
	Logger logrus.FieldLogger
	// TLSConfig, when set, makes Serve speak RELP over TLS, as omrelp's
	// tls="on" does: the listener is wrapped with tls.NewListener. New
	// clones it and makes TLS 1.2 the minimum; it must provide a
	// certificate. (RELP's starttls command is not supported; librelp
	// never sends it either.)
	TLSConfig *tls.Config
	// MaxFrame is the largest DATALEN of a frame (default 128 KiB,
	// librelp's). A larger frame ends its session with serverclose; the
	// messages received before it are delivered and acknowledged first.
	MaxFrame int
	// MaxSessions is how many sessions are served at once (default 200).
	// A connection over it gets the serverclose hint and is closed at once;
	// omrelp retries after its action.resumeInterval.
	MaxSessions int
	// MaxSessionsPerAddr is how many of them may come from one source IP
	// address (default 32), so that one host cannot take all MaxSessions.
	MaxSessionsPerAddr int
	// IdleTimeout is how long a session may go without a frame (default 5
	// minutes) before it is closed with serverclose; it also bounds a frame
	// that arrives slowly, the write of the server's answers, and the
	// writes crypto/tls makes while a frame is read (its answers to TLS 1.3
	// key updates: a client that requests them and does not read is closed
	// at the same time). An idle omrelp notices at its next message and
	// reconnects: nothing is lost.
	IdleTimeout time.Duration
	// HandshakeTimeout bounds the TLS handshake of a new connection
	// (default 10 seconds).
	HandshakeTimeout time.Duration
	// Window is the most messages handed to one Deliver (default 128,
	// librelp's window). The server takes the syslog frames already
	// received, up to Window, without waiting for more.
	Window int
}

// Stats are the server's counters since New.
type Stats struct {
	Sessions       uint64 // connections accepted, refused ones included
	Refused        uint64 // connections closed at once: MaxSessions or MaxSessionsPerAddr were open
	Active         int    // sessions being served now
	Frames         uint64 // well-formed frames read, of every command
	Bytes          uint64 // bytes of those frames
	Messages       uint64 // syslog messages delivered (Deliver returned nil); each answered rsp 200 unless the session broke first
	Batches        uint64 // Deliver calls that succeeded
	DeliverErrors  uint64 // Deliver calls that failed (their messages were not acknowledged)
	ProtocolErrors uint64 // sessions ended by a malformed or oversized frame or a protocol violation
	OpenRefused    uint64 // open commands answered with rsp 500
}

// counters are the atomic form of Stats.
type counters struct {
	sessions, refused, frames, bytes, messages, batches,
	deliverErrors, protocolErrors, openRefused atomic.Uint64
}

// A Server receives syslog messages over RELP and hands them, in batches,
// to a Sink, acknowledging each only once the Sink has made it durable.
// Create it with New; its methods are safe for concurrent use.
type Server struct {
	cfg    Config
	log    logrus.FieldLogger
	ctx    context.Context // the Sink's context, cancelled by Close
	cancel context.CancelFunc
	stats  counters
	loop   *acceptloop.Loop // every listener's accept loop

	mu       sync.Mutex // guards the following fields
	shutdown bool       // Shutdown or Close was called: start nothing new
	running  int        // goroutines (and Serve calls) Shutdown and Close wait for
	done     chan struct{}
	sessions map[*session]struct{}
}

// New checks cfg, fills in its defaults and returns a Server.
func New(cfg Config) (*Server, error) {
	switch {
	case cfg.Sink == nil:
		return nil, fmt.Errorf("%w: no Sink", ErrConfig)
	case cfg.Logger == nil:
		return nil, fmt.Errorf("%w: no Logger", ErrConfig)
	case cfg.MaxFrame < 0, cfg.MaxSessions < 0, cfg.MaxSessionsPerAddr < 0, cfg.IdleTimeout < 0,
		cfg.HandshakeTimeout < 0, cfg.Window < 0:
		return nil, fmt.Errorf("%w: negative MaxFrame, MaxSessions, MaxSessionsPerAddr, IdleTimeout, HandshakeTimeout or Window", ErrConfig)
	case cfg.MaxFrame > relp.MaxDataLen:
		return nil, fmt.Errorf("%w: MaxFrame %d above RELP's %d", ErrConfig, cfg.MaxFrame, relp.MaxDataLen)
	}
	if cfg.MaxFrame == 0 {
		cfg.MaxFrame = DefaultMaxFrame
	}
	if cfg.MaxSessions == 0 {
		cfg.MaxSessions = DefaultMaxSessions
	}
	if cfg.MaxSessionsPerAddr == 0 {
		cfg.MaxSessionsPerAddr = DefaultMaxSessionsPerAddr
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.HandshakeTimeout == 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if cfg.Window == 0 {
		cfg.Window = DefaultWindow
	}
	if cfg.TLSConfig != nil {
		tc := cfg.TLSConfig.Clone()
		if tc.MinVersion == 0 {
			tc.MinVersion = tls.VersionTLS12
		}
		if tc.MinVersion < tls.VersionTLS12 {
			return nil, fmt.Errorf("%w: TLSConfig.MinVersion below TLS 1.2", ErrConfig)
		}
		if len(tc.Certificates) == 0 && tc.GetCertificate == nil && tc.GetConfigForClient == nil {
			return nil, fmt.Errorf("%w: TLSConfig has no certificate", ErrConfig)
		}
		cfg.TLSConfig = tc
	}
	ctx, cancel := context.WithCancel(context.Background())
	log := cfg.Logger.WithField("component", "relp")
	return &Server{
		cfg:      cfg,
		log:      log,
		ctx:      ctx,
		cancel:   cancel,
		loop:     acceptloop.New(acceptloop.Config{MaxPerAddr: cfg.MaxSessionsPerAddr, Logger: log}),
		done:     make(chan struct{}),
		sessions: make(map[*session]struct{}),
	}, nil
}

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	active := len(s.sessions)
	s.mu.Unlock()
	c := &s.stats
	return Stats{
		Sessions:       c.sessions.Load(),
		Refused:        c.refused.Load(),
		Active:         active,
		Frames:         c.frames.Load(),
		Bytes:          c.bytes.Load(),
		Messages:       c.messages.Load(),
		Batches:        c.batches.Load(),
		DeliverErrors:  c.deliverErrors.Load(),
		ProtocolErrors: c.protocolErrors.Load(),
		OpenRefused:    c.openRefused.Load(),
	}
}

// startLocked counts a goroutine (or a Serve call) that Shutdown and Close
// wait for. It reports false once shutdown has begun.
func (s *Server) startLocked() bool {
	if s.shutdown {
		return false
	}
	s.running++
	return true
}

// finished uncounts what startLocked counted.
func (s *Server) finished() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.running--
	s.closeDoneLocked()
}

// closeDoneLocked closes done once shutdown has begun and nothing runs.
func (s *Server) closeDoneLocked() {
	if s.shutdown && s.running == 0 {
		select {
		case <-s.done:
		default:
			close(s.done)
		}
	}
}

// Serve accepts connections on l and serves each RELP session on its own
// goroutine: TCP, or TLS when Config.TLSConfig is set. Serve always returns
// a non-nil error and closes l; after Shutdown or Close the error is
// ErrServerClosed.
func (s *Server) Serve(l net.Listener) error {
	transport := "tcp"
	l = watchedListener{l}
	if s.cfg.TLSConfig != nil {
		l = tls.NewListener(l, s.cfg.TLSConfig)
		transport = "tls"
	}
	s.mu.Lock()
	if !s.startLocked() {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	s.mu.Unlock()
	defer s.finished()

	log := s.log.WithFields(logrus.Fields{"listen": l.Addr().String(), "transport": transport})
	log.Info("serving RELP")
	err := s.loop.Serve(l, func(nc net.Conn, a *acceptloop.Admission) { s.accept(nc, a, log) })
	if errors.Is(err, acceptloop.ErrStopped) {
		return ErrServerClosed
	}
	return fmt.Errorf("relp: %w", err)
}

// accept starts serving nc, or refuses it when MaxSessions, or
// MaxSessionsPerAddr from its address, are open.
func (s *Server) accept(nc net.Conn, a *acceptloop.Admission, log logrus.FieldLogger) {
	s.stats.sessions.Add(1)
	rlog := log.WithField("remote", nc.RemoteAddr().String())

	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.startLocked() {
		nc.Close()
		a.Release()
		return
	}
	if a.Over || len(s.sessions) >= s.cfg.MaxSessions {
		s.stats.refused.Add(1)
		if a.Over {
			rlog.WithError(ErrTooManySessions).Warnf("connection refused: %d sessions open from %s", a.Count, a.Addr)
		} else {
			rlog.WithError(ErrTooManySessions).Warnf("connection refused: %d sessions open", s.cfg.MaxSessions)
			a.Release()
		}
		go s.refuse(nc)
		return
	}
	ss := &session{s: s, nc: nc, remote: nc.RemoteAddr(), log: rlog, adm: a, expect: 1}
	if tc, ok := nc.(*tls.Conn); ok {
		ss.raw = tc.NetConn().(*watchedConn)
	} else {
		ss.raw = nc.(*watchedConn)
	}
	s.sessions[ss] = struct{}{}
	go ss.serve()
}

// refuse tells a connection over the limits why it is closed, as a
// serverclose hint (a busy server: omrelp retries later), and closes it.
// Over TLS the write makes the handshake first, which reads: the deadline
// bounds both, else a client that sends no ClientHello would keep the
// goroutine and its connection forever, and Shutdown and Close with them.
func (s *Server) refuse(nc net.Conn) {
	defer s.finished()
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(refuseTimeout))
	nc.Write(relp.AppendServerClose(nil, "busy: too many sessions, retry later"))
}

// Shutdown stops the server gracefully: it closes the listeners; a session
// reading waits no more, a session whose messages are in Deliver waits for
// it and answers; then each sends the serverclose hint and closes, and
// Shutdown waits for every goroutine. Frames received but not yet handed
// to Deliver are not acknowledged: the client sends them again to the next
// server. If ctx ends first, Shutdown returns ctx.Err() and the rest goes
// on; call Close to stop it at once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.loop.Stop()
	s.mu.Lock()
	s.shutdown = true
	for ss := range s.sessions {
		ss.stop()
	}
	s.closeDoneLocked()
	s.mu.Unlock()
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops the server at once: it closes every listener and session
// (without serverclose), cancels the Delivers in progress, which are not
// acknowledged, and waits for the server's goroutines to end. It is safe to
// call more than once, and after Shutdown. It closes the TCP connections
// beneath TLS, sending no close_notify: that would wait for a write TLS
// has in progress, and for a client that does not read.
func (s *Server) Close() error {
	s.loop.Stop()
	s.mu.Lock()
	s.shutdown = true
	s.cancel()
	for ss := range s.sessions {
		ss.raw.Close()
	}
	s.closeDoneLocked()
	s.mu.Unlock()
	<-s.done
	return nil
}

// watchedListener hands out its connections as watchedConns, beneath TLS.
type watchedListener struct{ net.Listener }

func (l watchedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &watchedConn{Conn: c}, nil
}

// watchedConn is an accepted connection that notes a write that ran into
// its deadline (the session's answers, or crypto/tls's own: its answers to
// key updates, alerts): the client does not read, and the session closes
// the connection without a close_notify.
type watchedConn struct {
	net.Conn
	writeTimedOut atomic.Bool
}

func (c *watchedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		c.writeTimedOut.Store(true)
	}
	return n, err
}
