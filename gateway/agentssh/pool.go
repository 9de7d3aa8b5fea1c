package agentssh

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/ssh"
)

// Pool keeps one SSH connection to each host added to it and runs commands
// over them, one session channel per command. A host whose connection drops,
// or cannot be made, is redialled in the background with exponential,
// jittered backoff. A Pool is safe for use by several goroutines.
type Pool struct {
	cfg  Config
	log  logrus.FieldLogger
	keys *hostKeys

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine the pool starts; see spawn

	mu     sync.Mutex // guards the following fields
	hosts  map[string]*host
	closed bool
}

// State is the state of a host's connection.
type State int

// States of a host's connection.
const (
	// StateConnecting: a connection attempt is in progress.
	StateConnecting State = iota + 1
	// StateConnected: commands can run.
	StateConnected
	// StateDown: the last attempt failed or the connection was lost; the
	// next attempt waits for the backoff.
	StateDown
)

func (s State) String() string {
	switch s {
	case StateConnecting:
		return "connecting"
	case StateConnected:
		return "connected"
	case StateDown:
		return "down"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// HostInfo describes a host of the pool, as Hosts reports it.
type HostInfo struct {
	Name string
	Addr string // host:port dialled
	// State is the connection's state, entered at Since.
	State State
	Since time.Time
	// LastError is what ended the last connection or failed the last
	// attempt (kept while reconnecting); nil if nothing failed yet.
	LastError error
	// LastKeepAlive is when the current connection last answered a
	// keepalive; zero before the first answer.
	LastKeepAlive time.Time
	// Remote is the IP address the last connection reached (Addr may name
	// the host by its DNS name); invalid before the first connection.
	Remote netip.Addr
	// HostKeyFingerprint is the SHA256 fingerprint of the host key last
	// presented, also when it was refused.
	HostKeyFingerprint string
	// ServerVersion is the server's SSH version string from the last
	// handshake, such as "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3".
	ServerVersion string
	// Agent is true when ServerVersion starts with AgentVersionPrefix: the
	// host runs zbridge's Linux agent rather than a plain sshd.
	Agent bool
	// Sessions is the number of commands running on the host.
	Sessions int
	// Platform is what the agent last reported as its GOOS/GOARCH
	// ("linux/s390x"); empty for a plain sshd or before the first command.
	Platform string
}

// host is one host of the pool and the state of its connection. A host is
// never reused: Remove, or Add with a new address, cancels it and makes a
// new one.
type host struct {
	name, addr string
	log        logrus.FieldLogger
	ctx        context.Context // cancelled when the host is removed or the pool closes
	cancel     context.CancelFunc
	slots      chan struct{} // one token per running command

	mu            sync.Mutex // guards the following fields
	state         State
	since         time.Time
	lastErr       error
	lastKeepAlive time.Time
	fingerprint   string
	remote        netip.Addr
	serverVersion string
	platform      string
	conn          *hostConn     // non-nil while connected
	changed       chan struct{} // closed and replaced at every state change
}

// hostConn is one SSH connection to a host.
type hostConn struct {
	ssh.Conn
	agent bool          // the server is zbridge's Linux agent
	dead  chan struct{} // closed once the connection has ended

	mu    sync.Mutex // guards cause
	cause error      // why we closed the connection, if we did
}

// fail closes the connection for the given reason, unless it has one.
func (c *hostConn) fail(err error) {
	c.mu.Lock()
	if c.cause == nil {
		c.cause = err
	}
	c.mu.Unlock()
	c.Close()
}

func (c *hostConn) failure() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cause
}

// alive reports whether the connection has not ended yet.
func (c *hostConn) alive() bool {
	select {
	case <-c.dead:
		return false
	default:
		return true
	}
}

// Causes recorded when the pool closes a connection.
var (
	errKeepAlive = errors.New("no answer to keepalive")
	errHostGone  = errors.New("host removed or pool closed")
)

// New returns a Pool with no hosts. It fails with ErrConfig when cfg lacks
// a required field or the known_hosts file cannot be read (or created, in
// accept-new mode).
func New(cfg Config) (*Pool, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	keys, err := newHostKeys(cfg.KnownHostsFile, cfg.AcceptNew)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Pool{
		cfg:    cfg,
		log:    cfg.Logger.WithField("component", "agentssh"),
		keys:   keys,
		ctx:    ctx,
		cancel: cancel,
		hosts:  make(map[string]*host),
	}, nil
}

// Add registers a host under name, to be reached at addr ("host:port"; a
// missing port means DefaultPort), and starts connecting to it in the
// background. Adding a name again with the same address does nothing; with
// another address it replaces the host, closing the old connection (commands
// running on it fail with ErrConnLost). Add after Close does nothing.
//
// The name is the host's identity for its host key (see the package doc):
// at a new address the host must present the key pinned for the name, and
// accept-new records a key only for a name that has none. A name that
// CheckName refuses cannot be pinned: its connections fail with
// ErrHostKeyUnknown.
func (p *Pool) Add(name, addr string) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(strings.Trim(addr, "[]"), DefaultPort)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	old := p.hosts[name]
	if old != nil {
		if old.addr == addr {
			return
		}
		old.log.WithField("new_addr", addr).Info("host address changed: reconnecting")
		old.cancel()
	}
	ctx, cancel := context.WithCancel(p.ctx)
	h := &host{
		name:    name,
		addr:    addr,
		log:     p.log.WithFields(logrus.Fields{"host": name, "addr": addr}),
		ctx:     ctx,
		cancel:  cancel,
		slots:   make(chan struct{}, p.cfg.MaxSessionsPerHost),
		state:   StateConnecting,
		since:   time.Now(),
		changed: make(chan struct{}),
	}
	p.hosts[name] = h
	p.goLocked(func() { p.manage(h) })
}

// Remove forgets the host registered under name and closes its connection;
// commands running on it fail with ErrConnLost. Removing an unknown name
// does nothing.
func (p *Pool) Remove(name string) {
	p.mu.Lock()
	h := p.hosts[name]
	delete(p.hosts, name)
	p.mu.Unlock()
	if h != nil {
		h.log.Info("host removed")
		h.cancel()
	}
}

// Hosts describes every host of the pool, sorted by name.
func (p *Pool) Hosts() []HostInfo {
	p.mu.Lock()
	hosts := make([]*host, 0, len(p.hosts))
	for _, h := range p.hosts {
		hosts = append(hosts, h)
	}
	p.mu.Unlock()
	infos := make([]HostInfo, 0, len(hosts))
	for _, h := range hosts {
		infos = append(infos, h.info())
	}
	slices.SortFunc(infos, func(a, b HostInfo) int { return strings.Compare(a.Name, b.Name) })
	return infos
}

// Host describes the host registered under name; ok is false when there is
// none.
func (p *Pool) Host(name string) (info HostInfo, ok bool) {
	p.mu.Lock()
	h := p.hosts[name]
	p.mu.Unlock()
	if h == nil {
		return HostInfo{}, false
	}
	return h.info(), true
}

// Close closes every connection, which makes running commands fail, and
// waits for every goroutine the pool started. Later calls of Run fail with
// ErrClosed. Close is safe to call more than once; it always returns nil.
func (p *Pool) Close() error {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		clear(p.hosts)
		p.log.Info("pool closing")
	}
	p.mu.Unlock()
	p.cancel() // hosts' contexts are children of p.ctx
	p.wg.Wait()
	return nil
}

// goLocked starts f in a goroutine that Close waits for. p.mu must be held
// and the pool not closed.
func (p *Pool) goLocked(f func()) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		f()
	}()
}

// spawn starts each of fs in a goroutine that Close waits for, all or none:
// after Close it starts nothing and returns ErrClosed.
func (p *Pool) spawn(fs ...func()) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	for _, f := range fs {
		p.goLocked(f)
	}
	return nil
}

// lookup returns the host registered under name.
func (p *Pool) lookup(name string) (*host, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrClosed
	}
	h := p.hosts[name]
	if h == nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownHost, name)
	}
	return h, nil
}

// manage connects h and keeps it connected until h.ctx is cancelled.
func (p *Pool) manage(h *host) {
	backoff := p.cfg.ReconnectMin
	var lastLogged string // the last failure logged at warning level
	for {
		h.setConnecting()
		c, err := p.dial(h)
		connected := err == nil
		if connected {
			start := time.Now()
			h.log.WithFields(logrus.Fields{
				"server_version": string(c.ServerVersion()),
				"agent":          c.agent,
			}).Info("connected")
			lastLogged = ""
			err = p.serve(h, c)
			if time.Since(start) > p.cfg.ReconnectMax {
				backoff = p.cfg.ReconnectMin
			}
		}
		if h.ctx.Err() != nil {
			h.setDown(errHostGone)
			return
		}
		h.setDown(err)
		wait := backoff/2 + rand.N(backoff/2+1)
		backoff = min(2*backoff, p.cfg.ReconnectMax)
		entry := h.log.WithError(err).WithField("retry_in", wait.Round(time.Millisecond).String())
		switch {
		case errors.Is(err, ErrHostKeyMismatch):
			entry.Error("refusing host: host key mismatch")
		case connected:
			entry.Warn("connection lost")
		case err.Error() != lastLogged:
			entry.Warn("connection failed")
			lastLogged = err.Error()
		default:
			entry.Debug("connection failed again")
		}
		t := time.NewTimer(wait)
		select {
		case <-h.ctx.Done():
			t.Stop()
			h.setDown(errHostGone)
			return
		case <-t.C:
		}
	}
}

// dial connects to h and completes the SSH handshake within DialTimeout.
func (p *Pool) dial(h *host) (*hostConn, error) {
	ctx, cancel := context.WithTimeout(h.ctx, p.cfg.DialTimeout)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", h.addr)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	// The handshake honours ctx: its deadline, and cancellation by Remove
	// or Close.
	if deadline, ok := ctx.Deadline(); ok {
		nc.SetDeadline(deadline)
	}
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	cfg := &ssh.ClientConfig{
		User: p.cfg.User,
		Auth: []ssh.AuthMethod{ssh.PublicKeys(p.cfg.Signer)},
		HostKeyCallback: func(_ string, remote net.Addr, key ssh.PublicKey) error {
			h.setFingerprint(ssh.FingerprintSHA256(key))
			return p.keys.check(h.log, h.name, h.addr, remote, key)
		},
		HostKeyAlgorithms: p.keys.algorithms(h.name, h.addr),
		ClientVersion:     ClientVersion,
	}
	conn, chans, reqs, err := ssh.NewClientConn(nc, h.addr, cfg)
	if !stop() && err == nil {
		conn.Close()
		err = ctx.Err()
	}
	if err != nil {
		nc.Close()
		if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
			err = fmt.Errorf("%w (%w)", err, ctx.Err())
		}
		return nil, fmt.Errorf("ssh handshake: %w", err)
	}
	nc.SetDeadline(time.Time{})
	c := &hostConn{
		Conn:  conn,
		agent: strings.HasPrefix(string(conn.ServerVersion()), AgentVersionPrefix),
		dead:  make(chan struct{}),
	}
	err = p.spawn(
		func() {
			// The region opens channels; it accepts none.
			for ch := range chans {
				ch.Reject(ssh.Prohibited, "zbridge region accepts no channels")
			}
		},
		func() { ssh.DiscardRequests(reqs) },
		func() {
			c.Wait()
			close(c.dead)
		},
	)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

// serve marks h connected over c, keeps c alive and returns why it ended,
// once it has.
func (p *Pool) serve(h *host, c *hostConn) error {
	h.setConnected(c)
	if p.cfg.KeepAlive > 0 {
		if err := p.spawn(func() { p.keepAlive(h, c) }); err != nil {
			c.fail(err)
		}
	}
	select {
	case <-h.ctx.Done():
		c.fail(errHostGone)
	case <-c.dead:
	}
	<-c.dead
	if err := c.failure(); err != nil {
		return fmt.Errorf("connection closed: %w", err)
	}
	if err := c.Wait(); err != nil {
		return fmt.Errorf("connection lost: %w", err)
	}
	return errors.New("connection lost")
}

// keepAlive sends keepalive@openssh.com every KeepAlive until c ends, and
// closes c when an answer does not come within another KeepAlive. Any answer
// counts: OpenSSH answers with a failure.
func (p *Pool) keepAlive(h *host, c *hostConn) {
	tick := time.NewTicker(p.cfg.KeepAlive)
	defer tick.Stop()
	for {
		select {
		case <-c.dead:
			return
		case <-tick.C:
		}
		missed := time.AfterFunc(p.cfg.KeepAlive, func() {
			h.log.WithField("timeout", p.cfg.KeepAlive.String()).Warn("keepalive not answered: closing connection")
			c.fail(fmt.Errorf("%w within %v", errKeepAlive, p.cfg.KeepAlive))
		})
		_, _, err := c.SendRequest("keepalive@openssh.com", true, nil)
		missed.Stop()
		if err != nil {
			return
		}
		h.mu.Lock()
		if h.conn == c {
			h.lastKeepAlive = time.Now()
		}
		h.mu.Unlock()
	}
}

// setStateLocked enters state and wakes those waiting for a change.
func (h *host) setStateLocked(state State) {
	h.state = state
	h.since = time.Now()
	close(h.changed)
	h.changed = make(chan struct{})
}

func (h *host) setConnecting() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.state != StateConnecting {
		h.setStateLocked(StateConnecting)
	}
}

func (h *host) setConnected(c *hostConn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.conn = c
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		h.remote = ap.Addr().Unmap()
	}
	h.serverVersion = string(c.ServerVersion())
	h.lastKeepAlive = time.Time{}
	h.setStateLocked(StateConnected)
}

func (h *host) setDown(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.conn = nil
	h.lastErr = err
	h.setStateLocked(StateDown)
}

func (h *host) setFingerprint(fp string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.fingerprint = fp
}

func (h *host) info() HostInfo {
	h.mu.Lock()
	defer h.mu.Unlock()
	return HostInfo{
		Name:               h.name,
		Addr:               h.addr,
		State:              h.state,
		Since:              h.since,
		LastError:          h.lastErr,
		LastKeepAlive:      h.lastKeepAlive,
		Remote:             h.remote,
		HostKeyFingerprint: h.fingerprint,
		ServerVersion:      h.serverVersion,
		Agent:              strings.HasPrefix(h.serverVersion, AgentVersionPrefix),
		Sessions:           len(h.slots),
		Platform:           h.platform,
	}
}

// connection returns h's live connection. While a connection attempt is in
// progress it waits for its outcome, up to wait; otherwise, when h is down,
// it fails at once with ErrNotConnected and the last error.
func (h *host) connection(ctx context.Context, wait time.Duration) (*hostConn, error) {
	var timeout <-chan time.Time
	for {
		h.mu.Lock()
		c, state, since, lastErr, changed := h.conn, h.state, h.since, h.lastErr, h.changed
		h.mu.Unlock()
		if c != nil && c.alive() {
			return c, nil
		}
		if state != StateConnecting && state != StateConnected {
			return nil, h.notConnected(state, since, lastErr)
		}
		// Connecting, or connected over a connection that just ended and
		// is about to be marked down.
		if timeout == nil {
			t := time.NewTimer(wait)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-changed:
		case <-timeout:
			return nil, h.notConnected(state, since, lastErr)
		case <-ctx.Done():
			return nil, ctxError(ctx)
		}
	}
}

// notConnected returns ErrNotConnected wrapped with what is known.
func (h *host) notConnected(state State, since time.Time, lastErr error) error {
	what := fmt.Sprintf("%s since %s", state, since.Format(time.RFC3339))
	if lastErr == nil {
		return fmt.Errorf("%w: %s (%s) %s", ErrNotConnected, h.name, h.addr, what)
	}
	return fmt.Errorf("%w: %s (%s) %s: %w", ErrNotConnected, h.name, h.addr, what, lastErr)
}
