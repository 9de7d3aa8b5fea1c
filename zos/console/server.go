package console

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/racingmars/go3270"
	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/internal/acceptloop"
	"github.com/zbridge/zbridge/internal/drain"
	"github.com/zbridge/zbridge/internal/throttle"
	"github.com/zbridge/zbridge/internal/tlsconf"
)

// Defaults of Config: what a zero field becomes.
const (
	DefaultMaxSessions      = 32
	DefaultMaxPending       = 64
	DefaultMaxPerAddr       = 4
	DefaultLogonTimeout     = 2 * time.Minute
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultIdleTimeout      = 30 * time.Minute
	DefaultWriteTimeout     = 30 * time.Second
	DefaultScrollback       = 5000
	DefaultTailBack         = 200
	DefaultLogonAttempts    = 3
	DefaultMaxLogonFailures = 5
	DefaultLogonBlock       = 2 * time.Second
	DefaultMaxLogonBlock    = 5 * time.Minute
)

// The failed-logon throttle's memory: an address is forgotten after
// LogonFailureWindow without a failure or a block; at most
// ThrottleEntries addresses are remembered (the least recently failed is
// forgotten first), about 200 bytes each.
const (
	LogonFailureWindow = 5 * time.Minute
	ThrottleEntries    = 4096
)

// Config configures a Server. New copies it; zero fields take the
// defaults (the Default constants).
type Config struct {
	// Backend is the region: who may log on, and each operator's events,
	// commands and agents. Required.
	Backend Backend
	// TLSConfig, when set, makes every connection TLS (TN3270 over TLS,
	// as x3270's "L:host:port"). It needs a certificate.
	TLSConfig *tls.Config
	// Logger receives the console's log; the caller sets its fields
	// (component=console). Required. Secrets are never logged.
	Logger logrus.FieldLogger

	// MaxSessions is the most operators logged on at once (default 32);
	// a logon past it is refused on the logon panel.
	MaxSessions int
	// MaxPending is the most connections not logged on yet (default 16):
	// a connection past it is closed at once, so that silent connections
	// cannot hold the server's memory.
	MaxPending int
	// MaxPerAddr is the most connections from one source IP address,
	// logged on or not (default 4); more are closed at once.
	MaxPerAddr int
	// LogonTimeout bounds the time from accept to a successful logon: TLS
	// handshake, telnet negotiation and the logon panel (default 2m). The
	// connection is closed when it passes.
	LogonTimeout time.Duration
	// HandshakeTimeout also bounds the TLS handshake (default 10s).
	HandshakeTimeout time.Duration
	// IdleTimeout ends a session in which no key was pressed for this
	// long (default 30m).
	IdleTimeout time.Duration
	// WriteTimeout ends a connection whose terminal takes no data for
	// this long (default 30s).
	WriteTimeout time.Duration
	// Scrollback is how many lines of the log area a session keeps for
	// PF7 (default 5000).
	Scrollback int
	// TailBack is how many of the newest retained events the log area
	// starts with, and starts with again after a filter change (default
	// 200).
	TailBack int
	// LogonAttempts is how many logons one connection may try; the
	// connection is closed after the last refused one (default 3).
	LogonAttempts int
	// MaxLogonFailures is how many failed logons one source address (an
	// IPv6 address by its /64) may have before it is blocked (default
	// 5): a blocked address's logons are refused without asking the
	// Backend. The block lasts LogonBlock (default 2s) and doubles with
	// each further failure up to MaxLogonBlock (default 5m);
	// LogonFailureWindow without failure forgets the address (a
	// successful logon does not: see tryLogon).
	MaxLogonFailures int
	// LogonBlock and MaxLogonBlock: see MaxLogonFailures.
	LogonBlock, MaxLogonBlock time.Duration
}

// Stats are a server's counters.
type Stats struct {
	Active   int    // operators logged on
	Pending  int    // connections not logged on yet
	Accepted uint64 // logons accepted
	Failed   uint64 // logons refused: by the Backend, the throttle or MaxSessions, or forged
	Refused  uint64 // connections closed at once: over MaxPerAddr or MaxPending
}

// Server is a 3270 operator console server. Create it with New; its
// methods are safe for concurrent use.
type Server struct {
	cfg    Config
	log    logrus.FieldLogger
	loop   *acceptloop.Loop
	fails  *throttle.Table[netip.Addr] // failed logons by source address
	names  *throttle.Table[string]     // failed logons by client name
	ctx    context.Context             // parent of every Backend and Operator call; cancelled by Shutdown and Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // Serve calls and connection goroutines

	mu       sync.Mutex // guards the following fields
	shutdown bool
	conns    map[*termConn]*session // every connection; nil until it logs on
	pending  int
	active   int
	logging  int // logons the Backend accepted or is asked about: places held under MaxSessions
	accepted uint64
	failed   uint64
	refused  uint64
}

// New checks cfg, fills in its defaults and returns a Server.
func New(cfg Config) (*Server, error) {
	switch {
	case cfg.Backend == nil:
		return nil, fmt.Errorf("%w: no Backend", ErrConfig)
	case cfg.Logger == nil:
		return nil, fmt.Errorf("%w: no Logger", ErrConfig)
	case cfg.MaxSessions < 0, cfg.MaxPending < 0, cfg.MaxPerAddr < 0, cfg.LogonTimeout < 0,
		cfg.HandshakeTimeout < 0, cfg.IdleTimeout < 0, cfg.WriteTimeout < 0, cfg.Scrollback < 0,
		cfg.TailBack < 0, cfg.LogonAttempts < 0, cfg.MaxLogonFailures < 0, cfg.LogonBlock < 0,
		cfg.MaxLogonBlock < 0:
		return nil, fmt.Errorf("%w: a negative limit or timeout", ErrConfig)
	}
	defInt := func(n *int, v int) {
		if *n == 0 {
			*n = v
		}
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	defInt(&cfg.MaxSessions, DefaultMaxSessions)
	defInt(&cfg.MaxPending, DefaultMaxPending)
	defInt(&cfg.MaxPerAddr, DefaultMaxPerAddr)
	defInt(&cfg.Scrollback, DefaultScrollback)
	defInt(&cfg.TailBack, DefaultTailBack)
	defInt(&cfg.LogonAttempts, DefaultLogonAttempts)
	defInt(&cfg.MaxLogonFailures, DefaultMaxLogonFailures)
	def(&cfg.LogonTimeout, DefaultLogonTimeout)
	def(&cfg.HandshakeTimeout, DefaultHandshakeTimeout)
	def(&cfg.IdleTimeout, DefaultIdleTimeout)
	def(&cfg.WriteTimeout, DefaultWriteTimeout)
	def(&cfg.LogonBlock, DefaultLogonBlock)
	def(&cfg.MaxLogonBlock, max(DefaultMaxLogonBlock, cfg.LogonBlock))
	if cfg.MaxLogonBlock < cfg.LogonBlock {
		return nil, fmt.Errorf("%w: MaxLogonBlock %v below LogonBlock %v", ErrConfig, cfg.MaxLogonBlock, cfg.LogonBlock)
	}
	if cfg.TLSConfig != nil {
		tc := cfg.TLSConfig.Clone()
		if tc.MinVersion == 0 {
			tc.MinVersion = tls.VersionTLS12
		}
		if len(tc.Certificates) == 0 && tc.GetCertificate == nil && tc.GetConfigForClient == nil {
			return nil, fmt.Errorf("%w: TLSConfig has no certificate", ErrConfig)
		}
		cfg.TLSConfig = tc
	}
	tc := throttle.Config{MaxFailures: cfg.MaxLogonFailures,
		Window: LogonFailureWindow, Block: cfg.LogonBlock, MaxBlock: cfg.MaxLogonBlock, Capacity: ThrottleEntries}
	fails, err := throttle.New[netip.Addr](tc)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	names, err := throttle.New[string](tc)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		cfg:    cfg,
		log:    cfg.Logger,
		loop:   acceptloop.New(acceptloop.Config{MaxPerAddr: cfg.MaxPerAddr, Logger: cfg.Logger}),
		fails:  fails,
		names:  names,
		ctx:    ctx,
		cancel: cancel,
		conns:  make(map[*termConn]*session),
	}, nil
}

// Serve accepts terminals on l, TN3270 or TN3270 over TLS when
// Config.TLSConfig is set, and serves each on a goroutine of its own. It
// always returns a non-nil error and closes l; after Shutdown or Close the
// error is ErrServerClosed.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.shutdown {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	if s.cfg.TLSConfig != nil {
		l = tls.NewListener(l, s.cfg.TLSConfig)
	}
	s.log.WithFields(logrus.Fields{"listen": l.Addr().String(), "tls": s.cfg.TLSConfig != nil}).Info("serving the 3270 console")
	err := s.loop.Serve(l, s.accept)
	if errors.Is(err, acceptloop.ErrStopped) {
		return ErrServerClosed
	}
	return fmt.Errorf("console: %w", err)
}

// accept starts the goroutine that serves nc, or closes nc at once when
// its address has MaxPerAddr connections or MaxPending connections wait
// to log on. It runs on the accept loop's goroutine and never blocks.
func (s *Server) accept(nc net.Conn, a *acceptloop.Admission) {
	log := s.log.WithField("remote", nc.RemoteAddr().String())
	s.mu.Lock()
	switch {
	case s.shutdown:
		s.mu.Unlock()
		nc.Close()
		a.Release()
		return
	case a.Over:
		s.refused++
		s.mu.Unlock()
		log.Infof("connection closed: %d connections from %s already (MaxPerAddr)", a.Count, a.Addr)
		nc.Close()
		return
	case s.pending >= s.cfg.MaxPending:
		s.refused++
		s.mu.Unlock()
		log.Infof("connection closed: %d connections waiting to log on already (MaxPending)", s.cfg.MaxPending)
		nc.Close()
		a.Release()
		return
	}
	c := newTermConn(nc, s.cfg.WriteTimeout)
	s.conns[c] = nil
	s.pending++
	s.wg.Add(1)
	s.mu.Unlock()
	go s.serveConn(c, a, log)
}

// Shutdown stops accepting, ends every session (each terminal is told
// that the region is stopping, its command in flight is cancelled and its
// Operator closed), closes the connections not logged on, and waits for
// all of them until ctx ends; then it calls Close and returns ctx.Err().
func (s *Server) Shutdown(ctx context.Context) error {
	s.cancel()
	s.mu.Lock()
	s.shutdown = true
	for c, ss := range s.conns {
		if ss != nil {
			ss.end(reasonStopping)
		} else {
			c.Close()
		}
	}
	s.mu.Unlock()
	s.loop.Stop()
	return drain.Wait(ctx, &s.wg, func() { s.Close() })
}

// Close stops at once: it closes the listeners and every connection, and
// waits for the connections' goroutines (each closes its Operator). It is
// safe to call more than once.
func (s *Server) Close() error {
	s.cancel()
	s.loop.Stop()
	s.mu.Lock()
	s.shutdown = true
	for c, ss := range s.conns {
		if ss != nil {
			ss.end(reasonStopping)
		}
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
	return Stats{Active: s.active, Pending: s.pending, Accepted: s.accepted, Failed: s.failed, Refused: s.refused}
}

// serveConn runs one connection: TLS handshake, telnet negotiation, logon
// panel (all within LogonTimeout), then the operator's session.
func (s *Server) serveConn(c *termConn, a *acceptloop.Admission, log logrus.FieldLogger) {
	defer s.wg.Done()
	pending := true
	defer func() {
		c.Close()
		s.mu.Lock()
		delete(s.conns, c)
		if pending {
			s.pending--
		}
		s.mu.Unlock()
		a.Release()
	}()

	// The logon deadline closes the connection, whatever it is waiting
	// for: go3270's negotiation clears read deadlines part way through.
	fired := make(chan struct{})
	timer := time.AfterFunc(s.cfg.LogonTimeout, func() {
		defer close(fired)
		c.Close()
	})
	timerLive := true
	stopTimer := func() bool { // reports whether it stopped before firing
		if !timerLive {
			return true
		}
		timerLive = false
		if timer.Stop() {
			return true
		}
		<-fired
		return false
	}
	defer stopTimer()

	if tc, ok := c.Conn.(*tls.Conn); ok {
		ctx, cancel := context.WithTimeout(s.ctx, s.cfg.HandshakeTimeout)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			log.WithError(tlsconf.ExplainHandshake(err)).Info("TLS handshake failed; connection closed")
			return
		}
	}
	c.budget()
	negotiating := time.AfterFunc(negotiateDeadline, func() { c.Close() })
	dev, err := negotiateTerminal(c)
	if !negotiating.Stop() && err == nil {
		err = fmt.Errorf("console: telnet negotiation took over %v", negotiateDeadline)
	}
	if err != nil {
		log.WithError(err).Info("telnet negotiation failed; connection closed")
		return
	}
	cp := dev.Codepage()
	if cp == nil {
		cp = go3270.Codepage1047()
	}
	t := &terminal{conn: c, dev: dev, cp: cp, cs: newCharset(cp)}
	t.rows, t.cols = dev.AltDimensions()
	log = log.WithFields(logrus.Fields{"terminal": dev.TerminalType(), "size": fmt.Sprintf("%dx%d", t.rows, t.cols), "codepage": cp.ID()})
	if t.rows < minRows || t.cols < minCols {
		log.Info("terminal too small; connection closed")
		t.tooSmall(s.cfg.Backend.Name())
		return
	}
	op, client, err := s.logon(t, a.Addr, log) // holds a place under MaxSessions
	if err != nil {
		log.WithError(err).Info("connection ended before logon")
		return
	}
	log = log.WithField("client", client)
	ss := newSession(s, t, op, client, log)
	timedOut := !stopTimer() // LogonTimeout passed during the Backend's Logon: the connection is closed
	s.mu.Lock()
	s.logging--
	if timedOut {
		s.mu.Unlock()
		log.Info("logon timed out")
		ss.cancel()
		op.Close()
		return
	}
	if s.shutdown {
		s.mu.Unlock()
		ss.cancel()
		op.Close()
		t.endScreen(s.cfg.Backend.Name(), reasonStopping)
		return
	}
	s.conns[c] = ss
	s.pending--
	pending = false
	s.active++
	s.accepted++
	s.mu.Unlock()
	log.Info("operator logged on")
	reason := ss.run()
	log.WithField("reason", reason).Info("operator session ended")
	s.mu.Lock()
	s.active--
	s.mu.Unlock()
}

// throttleAddr is an address's key in the failed-logon table: an IPv6
// address counts as its /64, which one host or site usually holds whole
// (as in gateway/session).
func throttleAddr(a netip.Addr) netip.Addr {
	if a.Is6() && !a.Is4In6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}
