package linuxagent

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/user"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/ssh"

	"github.com/zbridge/zbridge/internal/acceptloop"
	"github.com/zbridge/zbridge/internal/drain"
	"github.com/zbridge/zbridge/internal/tcpalive"
)

// Defaults of Config.
const (
	DefaultMaxSessions = 32
	DefaultKillGrace   = 2 * time.Second
	DefaultKeepAlive   = 5 * time.Minute
	// DefaultTCPKeepAlive is Config.TCPKeepAlive's default.
	DefaultTCPKeepAlive = 2 * time.Minute
	// DefaultMaxPending and DefaultMaxPendingPerAddr are the most
	// connections waiting to authenticate, over all addresses and from
	// one address: the region's session servers' numbers. A region makes
	// one connection to an agent, and waits to authenticate only for the
	// milliseconds of its handshake.
	DefaultMaxPending        = 64
	DefaultMaxPendingPerAddr = 8
	// DefaultHandshakeTimeout bounds a connection's SSH handshake and
	// authentication (sshd's LoginGraceTime, which is 2 minutes; the
	// region's handshake takes milliseconds).
	DefaultHandshakeTimeout = 10 * time.Second
)

// ServerVersion is the agent's SSH identification string; the region
// tells the agent from a plain sshd by it.
const ServerVersion = "SSH-2.0-zbridge-linuxagent"

const (
	// execWait is how long a session channel may stay open without an exec
	// request before the agent closes it, so that idle channels do not
	// hold MaxSessions.
	execWait = 30 * time.Second
	// keepAliveMissed is how many keepalive intervals may pass without an
	// answer before the connection is closed.
	keepAliveMissed = 3
	// keepAliveSilent is how many keepalive intervals the region may be
	// silent before the agent sends a keepalive: more than the two a
	// region's own take when every other check finds the last answer
	// recent (see Config.KeepAlive).
	keepAliveSilent = 3
)

// Config configures a Server. New copies it.
type Config struct {
	// HostKey is the agent's host key. Exactly one of HostKey and
	// HostKeyFile is required.
	HostKey ssh.Signer
	// HostKeyFile is the path of the agent's host key, in OpenSSH or PEM
	// form. If it does not exist New generates an ed25519 key and writes
	// it there (mode 0600) and its public half to HostKeyFile+".pub", and
	// the same key is used from then on. A file that group or other may
	// access is refused, as sshd refuses one.
	HostKeyFile string
	// AuthorizedKeys is the path of an OpenSSH authorized_keys file: the
	// public keys that may connect (the region's). Required. It is read
	// again whenever it changes; while it cannot be read every key is
	// refused. Supported options: from="PATTERNS" (IP addresses with * and
	// ?, CIDR prefixes, ! to negate; no host names) and restrict, no-pty,
	// no-port-forwarding, no-agent-forwarding, no-X11-forwarding,
	// no-user-rc (which change nothing: the agent never allows those). A
	// line with any other option (command=, environment=, permitopen=,
	// cert-authority, ...) is skipped with a warning in the log.
	AuthorizedKeys string
	// Name is the agent's name in logs and results; default: the host name.
	Name string
	// Policy decides which commands run and how; nil means DefaultPolicy
	// (everything allowed, no shell). New copies it.
	Policy *Policy
	// Logger receives the agent's log, with component=linuxagent and
	// agent=Name added. Required. Each command is logged with the
	// connection's user and key fingerprint, its command line (so secrets
	// do not belong in command lines), exit status and duration; key
	// material and environment values never are.
	Logger logrus.FieldLogger
	// MaxSessions is how many session channels may be open at once, over
	// all connections (default 32). One more is rejected with
	// ResourceShortage "busy".
	MaxSessions int
	// Timeout is a command's time limit when neither the policy nor the
	// region sets one (default DefaultTimeout, 60 s).
	Timeout time.Duration
	// OutputCap is how many bytes of standard output and error together a
	// command may send when the policy sets no cap (default
	// DefaultOutputCap, 1 MiB).
	OutputCap int64
	// KillGrace is how long a command has to exit after SIGTERM (on
	// timeout, output cap or cancellation) before its process group gets
	// SIGKILL (default 2 s).
	KillGrace time.Duration
	// KeepAlive is how often the agent checks that the region on a
	// connection is still there and answering. A connection over which
	// nothing came from the region for three intervals is sent an OpenSSH
	// keepalive@openssh.com request, and closed when none is answered for
	// three more. A zbridge region sends keepalives of its own to a
	// connection it has not heard from for its interval (5 minutes; one
	// answered then keeps it quiet for another, so that it asks every ten
	// minutes), on a grid shared by its connections, so that ten thousand
	// agents are checked in a few batches a second: over a connection to
	// a region the agent only answers, and each keepalive costs the
	// region one exchange, not two. A region that is gone (its host, the
	// path) is found sooner by the kernel (TCPKeepAlive); this finds one
	// that is there but hung. Default 5 minutes; negative turns it off.
	// An agent whose KeepAlive is under a region's twice --agent-keepalive
	// (an older agent's 30 s, under a region's 5 minutes) sends keepalives
	// of its own to an idle region, one at a time rather than batched.
	KeepAlive time.Duration
	// TCPKeepAlive is the least time the region's connection is idle
	// before the kernel sends its first TCP keepalive probe (each
	// connection's is drawn up to twice it); the kernel then probes every
	// third of it and ends the connection when nothing came from the
	// region for 3.5 times it with a probe or data unanswered (package
	// tcpalive), so that a region whose host or path died does not hold
	// the agent's sessions. Default DefaultTCPKeepAlive (the region is
	// found gone within eight minutes); negative turns the probes and the
	// timeout off. It replaces the keepalive Go gives accepted
	// connections (15 s, the same for all, which a region's thousands of
	// agents would send together).
	TCPKeepAlive time.Duration
	// MaxPending is the most connections that may wait to authenticate at
	// once, over all source addresses (sshd's MaxStartups); default
	// DefaultMaxPending (64). MaxPendingPerAddr is the most from one
	// source IP address (sshd's PerSourceMaxStartups); default
	// DefaultMaxPendingPerAddr (8). A new connection past either is not
	// refused: the oldest connection still waiting to authenticate from
	// its address (past MaxPendingPerAddr), or from the address that has
	// the most waiting (past MaxPending), is closed to make room for it. Connections that send a banner and never
	// authenticate thus hold at most MaxPending places (and descriptors,
	// and goroutines) between them, and cannot keep the region out: its
	// new connection pushes the oldest one out and needs its place only
	// for the milliseconds of its handshake, while the flood would have
	// to bring MaxPending new connections (MaxPendingPerAddr from the
	// region's own address) in that time to push it out in turn. A
	// connection leaves its place once it has authenticated; one that has
	// not within HandshakeTimeout is closed.
	MaxPending, MaxPendingPerAddr int
	// HandshakeTimeout bounds a new connection's SSH handshake,
	// authentication included (sshd's LoginGraceTime); default
	// DefaultHandshakeTimeout (10 s).
	HandshakeTimeout time.Duration
}

// A Server is the Linux agent: an SSH server that runs the region's
// commands under a policy. Create it with New; its methods are safe for
// concurrent use.
type Server struct {
	cfg      Config
	log      logrus.FieldLogger
	sshCfg   *ssh.ServerConfig
	hostKey  ssh.Signer
	keys     *authorizedKeys
	policy   *Policy // with Timeout, MaxTimeout and OutputCap filled in
	home     string  // commands' HOME and working directory
	platform string
	starter  *starter       // starts the commands; closed once wg is done
	wg       sync.WaitGroup // Serve calls and connections

	// drainTimeout is the package constant; tests shorten it before Serve.
	drainTimeout time.Duration

	killOnce       sync.Once
	killNow        chan struct{} // closed when running commands must be killed at once
	shutdownOnce   sync.Once
	shuttingDownCh chan struct{} // closed when shutdown begins

	loop *acceptloop.Loop    // every listener's accept loop; MaxPerAddr is MaxPendingPerAddr
	fds  *acceptloop.Reserve // the descriptors connections may not take (see descriptorReserve)

	lastDropLog atomic.Int64 // unix ns of the last drop of a waiting connection logged at warning level

	mu       sync.Mutex // guards the following fields
	shutdown bool       // Shutdown or Close was called: start nothing new
	conns    map[*conn]struct{}
	pending  list.List // of *conn: the connections waiting to authenticate, oldest first
	sessions int       // open session channels, over all connections
}

// New checks cfg, fills in its defaults, loads (or generates) the host key
// and reads the authorized keys, and returns a Server.
func New(cfg Config) (*Server, error) {
	switch {
	case cfg.Logger == nil:
		return nil, fmt.Errorf("%w: no Logger", ErrConfig)
	case cfg.AuthorizedKeys == "":
		return nil, fmt.Errorf("%w: no AuthorizedKeys file", ErrConfig)
	case cfg.HostKey == nil && cfg.HostKeyFile == "":
		return nil, fmt.Errorf("%w: no HostKey or HostKeyFile", ErrConfig)
	case cfg.HostKey != nil && cfg.HostKeyFile != "":
		return nil, fmt.Errorf("%w: both HostKey and HostKeyFile", ErrConfig)
	case cfg.MaxSessions < 0, cfg.Timeout < 0, cfg.OutputCap < 0, cfg.KillGrace < 0:
		return nil, fmt.Errorf("%w: negative MaxSessions, Timeout, OutputCap or KillGrace", ErrConfig)
	case cfg.MaxPending < 0, cfg.MaxPendingPerAddr < 0, cfg.HandshakeTimeout < 0:
		return nil, fmt.Errorf("%w: negative MaxPending, MaxPendingPerAddr or HandshakeTimeout", ErrConfig)
	}
	if cfg.Name == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "linuxagent"
		}
		cfg.Name = h
	}
	if cfg.MaxSessions == 0 {
		cfg.MaxSessions = DefaultMaxSessions
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.OutputCap == 0 {
		cfg.OutputCap = DefaultOutputCap
	}
	if cfg.KillGrace == 0 {
		cfg.KillGrace = DefaultKillGrace
	}
	if cfg.KeepAlive == 0 {
		cfg.KeepAlive = DefaultKeepAlive
	}
	if cfg.TCPKeepAlive == 0 {
		cfg.TCPKeepAlive = DefaultTCPKeepAlive
	}
	if cfg.MaxPending == 0 {
		cfg.MaxPending = DefaultMaxPending
	}
	if cfg.MaxPendingPerAddr == 0 {
		cfg.MaxPendingPerAddr = DefaultMaxPendingPerAddr
	}
	if cfg.HandshakeTimeout == 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if cfg.Policy == nil {
		cfg.Policy = DefaultPolicy()
	}
	pol := cfg.Policy.clone()
	cfg.Policy = cfg.Policy.clone()
	if pol.Timeout == 0 {
		pol.Timeout = cfg.Timeout
	}
	if pol.MaxTimeout == 0 {
		pol.MaxTimeout = max(DefaultMaxTimeout, pol.Timeout)
	}
	if pol.Timeout > pol.MaxTimeout {
		return nil, fmt.Errorf("%w: timeout %v is longer than the policy's max-timeout %v", ErrConfig, pol.Timeout, pol.MaxTimeout)
	}
	if pol.OutputCap == 0 {
		pol.OutputCap = cfg.OutputCap
	}
	for _, r := range pol.Rules {
		if err := checkGlob(r.Pattern); err != nil {
			return nil, fmt.Errorf("%w: policy rule %q: %v", ErrConfig, r.Pattern, err)
		}
	}

	log := cfg.Logger.WithFields(logrus.Fields{"component": "linuxagent", "agent": cfg.Name})
	hostKey := cfg.HostKey
	if hostKey == nil {
		var generated bool
		var err error
		hostKey, generated, err = loadHostKey(cfg.HostKeyFile)
		if err != nil {
			return nil, err
		}
		if generated {
			log.WithFields(logrus.Fields{"file": cfg.HostKeyFile, "fingerprint": ssh.FingerprintSHA256(hostKey.PublicKey())}).
				Info("generated a new host key")
		}
	}
	keys, err := newAuthorizedKeys(cfg.AuthorizedKeys, log.WithField("file", cfg.AuthorizedKeys))
	if err != nil {
		return nil, err
	}

	s := &Server{
		cfg:      cfg,
		log:      log,
		keys:     keys,
		hostKey:  hostKey,
		policy:   pol,
		home:     homeDir(),
		platform: runtime.GOOS + "/" + runtime.GOARCH,
		starter:  newStarter(),

		drainTimeout:   drainTimeout,
		killNow:        make(chan struct{}),
		shuttingDownCh: make(chan struct{}),
		conns:          make(map[*conn]struct{}),
	}
	s.sshCfg = &ssh.ServerConfig{
		// Only publickey: no PasswordCallback, no
		// KeyboardInteractiveCallback, NoClientAuth false.
		PublicKeyCallback: s.checkKey,
		ServerVersion:     ServerVersion,
	}
	s.sshCfg.AddHostKey(hostKey)
	s.loop = acceptloop.New(acceptloop.Config{MaxPerAddr: cfg.MaxPendingPerAddr, Logger: log})
	limit, err := acceptloop.DescriptorLimit()
	if err != nil {
		return nil, err
	}
	if s.fds, err = acceptloop.NewReserve(acceptloop.ReserveConfig{
		Reserve: descriptorReserve(cfg.MaxSessions, limit), Logger: log}); err != nil {
		return nil, err
	}
	return s, nil
}

// commandDescriptors is the most descriptors a command takes while it
// starts: its two pipes, /dev/null as its standard input, exec's status
// pipe and its pidfd.
const commandDescriptors = 8

// descriptorReserve is how many of the limit descriptors accepted
// connections may not take: those MaxSessions commands need, and
// acceptloop's default reserve for the agent's own files, at most half of
// the limit.
func descriptorReserve(maxSessions, limit int) int {
	return max(1, min(maxSessions*commandDescriptors+acceptloop.DefaultReserve(limit), limit/2))
}

// homeDir returns the agent user's home directory if it exists, else /.
func homeDir() string {
	if u, err := user.Current(); err == nil && u.HomeDir != "" {
		if fi, err := os.Stat(u.HomeDir); err == nil && fi.IsDir() {
			return u.HomeDir
		}
	}
	return "/"
}

// HostKey returns the public half of the agent's host key, for the
// region's known hosts.
func (s *Server) HostKey() ssh.PublicKey { return s.hostKey.PublicKey() }

// Errors handed to x/crypto/ssh; they end up only in its handshake error.
var (
	errUnknownKey = errors.New("key not authorized")
	errFromRefuse = errors.New("key not authorized from this address")
)

// checkKey is the PublicKeyCallback: the key must be in the authorized
// keys and its from= must allow the client's address.
func (s *Server) checkKey(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
	keys, err := s.keys.current()
	if err != nil {
		return nil, errUnknownKey
	}
	cands := keys[string(key.Marshal())]
	if len(cands) == 0 {
		return nil, errUnknownKey
	}
	addr := addrOf(meta.RemoteAddr())
	for _, k := range cands {
		if k.permits(addr) {
			return &ssh.Permissions{Extensions: map[string]string{
				extFingerprint: ssh.FingerprintSHA256(key),
				extComment:     k.comment,
			}}, nil
		}
	}
	s.log.WithFields(logrus.Fields{"remote": meta.RemoteAddr().String(), "fingerprint": ssh.FingerprintSHA256(key)}).
		Warn("authorized key offered from an address its from= option does not allow")
	return nil, errFromRefuse
}

// Keys of ssh.Permissions.Extensions set by checkKey.
const (
	extFingerprint = "zbridge-fingerprint"
	extComment     = "zbridge-comment"
)

// startLocked counts a goroutine that Shutdown and Close wait for. It
// reports false once shutdown has begun.
func (s *Server) startLocked() bool {
	if s.shutdown {
		return false
	}
	s.wg.Add(1)
	return true
}

// Serve accepts connections on l and serves each on its own goroutine.
// Serve always returns a non-nil error and closes l; after Shutdown or
// Close the error is ErrServerClosed.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if !s.startLocked() {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	s.mu.Unlock()
	defer s.wg.Done()
	log := s.log.WithField("listen", l.Addr().String())
	log.WithField("host_key", ssh.FingerprintSHA256(s.HostKey())).Info("linux agent serving")
	// Past the descriptor budget a connection is closed before anything
	// is read from it or written to it: SSH has no way to refuse one
	// before its version exchange.
	l = s.fds.Listener(l, acceptloop.ListenerConfig{Name: "linuxagent", Server: "the agent"})
	err := s.loop.Serve(l, func(nc net.Conn, a *acceptloop.Admission) {
		s.accept(nc, a, log.WithField("remote", nc.RemoteAddr().String()))
	})
	if errors.Is(err, acceptloop.ErrStopped) || s.shuttingDown() {
		return ErrServerClosed
	}
	return fmt.Errorf("linuxagent: %w", err)
}

// accept starts the goroutine that serves nc, a new connection, which
// waits to authenticate: when MaxPendingPerAddr connections from its
// address wait already (a.Over), the oldest of them is closed and nc
// takes its place and admission; else when MaxPending connections wait,
// the oldest from the address with the most of them is closed.
func (s *Server) accept(nc net.Conn, a *acceptloop.Admission, log logrus.FieldLogger) {
	c := &conn{s: s, nc: nc, addr: a.Addr, log: log}
	if err := tcpalive.Set(nc, s.cfg.TCPKeepAlive); err != nil {
		c.log.WithError(err).Warn("connection kept without the kernel's keepalive")
	}
	s.mu.Lock()
	if !s.startLocked() {
		s.mu.Unlock()
		nc.Close()
		a.Release()
		return
	}
	var dropped *conn
	var why string
	switch {
	case a.Over:
		dropped = s.oldestPendingLocked(a.Addr)
		if dropped == nil {
			// The address's other connections are between their accept
			// and this, on other listeners: refuse this one.
			s.wg.Done()
			s.mu.Unlock()
			nc.Close()
			c.log.Debug("connection closed: too many connections from its address wait to authenticate")
			return
		}
		c.adm, dropped.adm = dropped.adm, nil
		why = fmt.Sprintf("%d connections from %s wait to authenticate (the most from one address)", s.cfg.MaxPendingPerAddr, a.Addr)
	case s.pending.Len() >= s.cfg.MaxPending:
		c.adm = a
		dropped = s.crowdedPendingLocked()
		why = fmt.Sprintf("%d connections wait to authenticate (the most at once)", s.pending.Len())
	default:
		c.adm = a
	}
	if dropped != nil {
		s.unpendLocked(dropped)
		dropped.dropped = true
		dropped.nc.Close()
	}
	s.conns[c] = struct{}{}
	c.waiting = s.pending.PushBack(c)
	s.mu.Unlock()
	if dropped != nil {
		s.logDropped(dropped, why)
	}
	go c.serve()
}

// oldestPendingLocked returns the connection from addr that has waited
// longest to authenticate and holds its admission, or nil.
func (s *Server) oldestPendingLocked(addr netip.Addr) *conn {
	for e := s.pending.Front(); e != nil; e = e.Next() {
		if c := e.Value.(*conn); c.addr == addr && c.adm != nil {
			return c
		}
	}
	return nil
}

// crowdedPendingLocked returns the connection that has waited longest to
// authenticate from the address with the most connections waiting (of
// those with as many, the one whose connection waited longest), or nil
// when none waits.
func (s *Server) crowdedPendingLocked() *conn {
	counts := make(map[netip.Addr]int)
	most := 0
	for e := s.pending.Front(); e != nil; e = e.Next() {
		c := e.Value.(*conn)
		counts[c.addr]++
		most = max(most, counts[c.addr])
	}
	for e := s.pending.Front(); e != nil; e = e.Next() {
		if c := e.Value.(*conn); counts[c.addr] == most {
			return c
		}
	}
	return nil
}

// unpendLocked takes c off the connections waiting to authenticate, and
// gives back its admission (unless another connection took it): it
// authenticated, ended, or was dropped to make room.
func (s *Server) unpendLocked(c *conn) {
	if c.waiting != nil {
		s.pending.Remove(c.waiting)
		c.waiting = nil
	}
	if c.adm != nil {
		c.adm.Release()
		c.adm = nil
	}
}

// logDropped logs c's drop, at warning level at most once a second:
// drops come in floods.
func (s *Server) logDropped(c *conn, why string) {
	entry := c.log.WithField("reason", why)
	now := time.Now().UnixNano()
	if last := s.lastDropLog.Load(); now-last >= int64(time.Second) && s.lastDropLog.CompareAndSwap(last, now) {
		entry.Warn("connection closed before it authenticated, to make room for a new one")
	} else {
		entry.Debug("connection closed before it authenticated, to make room for a new one")
	}
}

func (s *Server) shuttingDown() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.shutdown
}

// beginShutdown stops the listeners and refuses new connections and
// channels; it closes connections that have no session open, and sessions
// that have not asked to run a command yet.
func (s *Server) beginShutdown() {
	s.shutdownOnce.Do(func() { close(s.shuttingDownCh) })
	s.mu.Lock()
	defer s.mu.Unlock()
	s.shutdown = true
	s.loop.Stop() // closes the listeners, interrupts an accept back-off
	for c := range s.conns {
		if c.channels == 0 {
			c.nc.Close()
		}
	}
}

// kill kills every running command at once (SIGKILL to its process group)
// and closes every connection.
func (s *Server) kill() {
	s.killOnce.Do(func() { close(s.killNow) })
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.nc.Close()
	}
}

// Shutdown stops accepting connections and new sessions, closes idle
// connections and sessions that have not asked for a command, and waits
// for running commands to finish and their results to be sent, closing
// each connection once it has no session left. If ctx ends first, the commands still running are killed (SIGKILL
// to their process groups), every connection is closed, and Shutdown
// returns ctx.Err() once all is stopped.
func (s *Server) Shutdown(ctx context.Context) error {
	s.beginShutdown()
	err := drain.Wait(ctx, &s.wg, s.kill)
	s.starter.close() // no session is left to start a command
	s.fds.Close()
	return err
}

// Close stops the server at once: listeners and connections are closed
// and running commands killed (SIGKILL to their process groups). It waits
// for them to be gone. Calling it again does nothing.
func (s *Server) Close() error {
	s.beginShutdown()
	s.kill()
	s.wg.Wait()
	s.starter.close()
	s.fds.Close()
	return nil
}

// activeSessions returns how many session channels are open.
func (s *Server) activeSessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions
}

// sessionOpened takes a session slot for c; it returns the rejection to
// send when there is none.
func (s *Server) sessionOpened(c *conn) (ssh.RejectionReason, string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.shutdown:
		return ssh.ResourceShortage, "shutting down", false
	case c.noMoreSessions.Load():
		return ssh.Prohibited, "no-more-sessions@openssh.com was sent", false
	case s.sessions >= s.cfg.MaxSessions:
		return ssh.ResourceShortage, "busy", false
	}
	s.sessions++
	c.channels++
	return 0, "", true
}

// sessionClosed gives back a slot taken by sessionOpened. During shutdown
// a connection left without sessions is closed.
func (s *Server) sessionClosed(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sessions--
	c.channels--
	if s.shutdown && c.channels == 0 {
		c.nc.Close()
	}
}

// conn is one SSH connection.
type conn struct {
	s     *Server
	nc    net.Conn
	addr  netip.Addr   // the source address (the zero Addr when not an IP address)
	heard atomic.Int64 // when the region last spoke: nanoseconds since monoEpoch (see hear)
	log   logrus.FieldLogger

	// While the connection waits to authenticate: its element of
	// s.pending, and its place in its address's count (nil once another
	// connection took it). Guarded by s.mu.
	waiting *list.Element
	adm     *acceptloop.Admission
	dropped bool // closed to make room for a new connection

	sc             *ssh.ServerConn // set once the handshake is done
	user           string
	fingerprint    string
	noMoreSessions atomic.Bool // no-more-sessions@openssh.com received

	channels int // open session channels; guarded by s.mu
}

// serve runs the handshake and then serves the connection's requests and
// channels until it ends.
func (c *conn) serve() {
	s := c.s
	defer func() {
		c.nc.Close()
		s.mu.Lock()
		s.unpendLocked(c)
		delete(s.conns, c)
		s.mu.Unlock()
		s.wg.Done()
	}()
	c.nc.SetDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
	sc, chans, reqs, err := ssh.NewServerConn(c.nc, s.sshCfg)
	if err != nil {
		s.mu.Lock()
		dropped := c.dropped
		s.mu.Unlock()
		if !dropped { // else logged already
			c.log.WithError(err).Info("connection refused: SSH handshake or authentication failed")
		}
		return
	}
	c.nc.SetDeadline(time.Time{})
	s.mu.Lock()
	s.unpendLocked(c) // authenticated: its place is another's now
	s.mu.Unlock()
	c.sc = sc
	c.hear() // the handshake: silence counts from here
	c.user = sc.User()
	c.fingerprint = sc.Permissions.Extensions[extFingerprint]
	c.log = c.log.WithFields(logrus.Fields{"user": c.user, "key": c.fingerprint})
	c.log.WithField("key_comment", sc.Permissions.Extensions[extComment]).Info("connection authenticated")

	s.mu.Lock()
	if s.shutdown {
		// Shutdown began during the handshake: the connection is idle.
		c.nc.Close()
	}
	s.mu.Unlock()

	var wg sync.WaitGroup // the connection's goroutines, waited for below
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.globalRequests(reqs)
	}()
	done := make(chan struct{})
	if s.cfg.KeepAlive > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.keepAlive(done)
		}()
	}
	for nch := range chans {
		c.hear()
		c.newChannel(nch, &wg)
	}
	close(done)
	sc.Close()
	wg.Wait()
	c.log.Info("connection closed")
}

// globalRequests answers the connection's global requests: keepalives yes,
// everything else (tcpip-forward, streamlocal-forward, ...) no.
func (c *conn) globalRequests(reqs <-chan *ssh.Request) {
	for req := range reqs {
		c.hear()
		switch req.Type {
		case "keepalive@openssh.com":
			req.Reply(true, nil)
		case "no-more-sessions@openssh.com":
			c.noMoreSessions.Store(true)
			req.Reply(true, nil)
		default:
			c.log.WithField("request", req.Type).Info("global request refused")
			req.Reply(false, nil)
		}
	}
}

// monoEpoch is the zero of conn.heard: durations since it are read from
// the monotonic clock, which a step of the wall clock does not move.
var monoEpoch = time.Now()

// hear records that the region spoke: an SSH message that x/crypto/ssh
// has authenticated and delivered (a global request such as the region's
// keepalive, a channel), not mere bytes on the connection, which anyone on
// the path could trickle in to keep a dead connection looking alive.
func (c *conn) hear() { c.heard.Store(int64(time.Since(monoEpoch))) }

// silentFor is how long the region has not spoken.
func (c *conn) silentFor() time.Duration {
	return time.Since(monoEpoch) - time.Duration(c.heard.Load())
}

// keepAlive checks the connection every interval until done: one over
// which nothing came for keepAliveSilent intervals is sent a keepalive
// request, and closed when that goes unanswered for keepAliveMissed
// intervals.
func (c *conn) keepAlive(done <-chan struct{}) {
	interval := c.s.cfg.KeepAlive
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		if c.silentFor() < keepAliveSilent*interval {
			continue // the region spoke: its own keepalives, its commands
		}
		dead := time.AfterFunc(keepAliveMissed*interval, func() {
			c.log.Warn("region stopped answering keepalives; closing the connection")
			c.nc.Close()
		})
		// Any answer counts, success or failure (OpenSSH clients refuse
		// the request, which is an answer all the same).
		_, _, err := c.sc.SendRequest("keepalive@openssh.com", true, nil)
		dead.Stop()
		if err != nil {
			return
		}
	}
}

// forwardingChannels are the channel types of port, socket, X11 and agent
// forwarding and tunnels, all refused as Prohibited.
var forwardingChannels = map[string]bool{
	"direct-tcpip":                      true,
	"forwarded-tcpip":                   true,
	"direct-streamlocal@openssh.com":    true,
	"forwarded-streamlocal@openssh.com": true,
	"x11":                               true,
	"auth-agent@openssh.com":            true,
	"tun@openssh.com":                   true,
}

// newChannel accepts a session channel and serves it on a goroutine
// counted in wg, or rejects the channel.
func (c *conn) newChannel(nch ssh.NewChannel, wg *sync.WaitGroup) {
	typ := nch.ChannelType()
	log := c.log.WithField("channel", typ)
	switch {
	case typ == "session":
	case forwardingChannels[typ]:
		log.Info("channel refused: forwarding is not permitted")
		nch.Reject(ssh.Prohibited, fmt.Sprintf("zbridge-agent: %s channels are not permitted: the agent runs commands and forwards nothing", typ))
		return
	default:
		log.Info("channel refused: unknown type")
		nch.Reject(ssh.UnknownChannelType, fmt.Sprintf("zbridge-agent: unknown channel type %q", typ))
		return
	}
	if reason, msg, ok := c.s.sessionOpened(c); !ok {
		log.WithField("reason", msg).Warn("session refused")
		nch.Reject(reason, msg)
		return
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.serveSession(nch)
	}()
}
