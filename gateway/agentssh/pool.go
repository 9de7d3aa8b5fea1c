package agentssh

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/ssh"

	"github.com/zbridge/zbridge/internal/checkgrid"
	"github.com/zbridge/zbridge/internal/tcpalive"
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

	// dials holds a token per connection attempt in progress (MaxDials);
	// an attempt waits to put one in, and takes it out when it ends.
	dials chan struct{}
	// Counters for Stats.
	dialsWaiting                           atomic.Int64
	dialsStarted, dialsFailed, dialTimeout atomic.Uint64
	keepAlives                             atomic.Uint64

	mu     sync.Mutex // guards the following fields
	hosts  map[string]*host
	closed bool
}

// Stats are a pool's counters and the states of its hosts, as Stats
// reports them.
type Stats struct {
	// Connecting, Connected and Down count the hosts in each State.
	Connecting, Connected, Down int
	// DialsInProgress is the connection attempts under way (at most
	// Config.MaxDials); DialsWaiting the hosts waiting for their turn.
	DialsInProgress, DialsWaiting int
	// Dials counts the connection attempts made; DialFailures those that
	// failed (the TCP connect, the SSH handshake, or the host key check),
	// of which DialTimeouts ran past Config.DialTimeout. An attempt cut
	// short by Remove or Close counts in Dials only.
	Dials, DialFailures, DialTimeouts uint64
	// KeepAlives counts the keepalive@openssh.com requests sent to hosts
	// (Config.KeepAlive).
	KeepAlives uint64
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
	// LastKeepAlive is when the current connection was last known to be
	// alive, as of the latest keepalive check (every Config.KeepAlive):
	// when it answered a keepalive, or when data last arrived from the
	// host, as a connection that hears from its host is sent none. Zero
	// before the first check.
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
	// Sessions is the number of commands running on the host, counting
	// those Run gave up on whose session the host has not answered yet
	// (see Config.AnswerTimeout).
	Sessions int
	// Platform is what the agent last reported as its GOOS/GOARCH
	// ("linux/s390x"); empty for a plain sshd or before the first command.
	Platform string
}

// ChangeKind says what changed in a host's connection (Change).
type ChangeKind int

// The changes Config.OnChange is told of.
const (
	// ChangeConnected: a connection was made; commands can run.
	ChangeConnected ChangeKind = iota + 1
	// ChangeLost: a connection that was made ended (the host closed it,
	// the network failed, keepalives went unanswered); the pool redials
	// it. Not told when the host was removed or the pool closed.
	ChangeLost
	// ChangeRefused: the host presented a host key other than the one
	// pinned for it, or a revoked one (ErrHostKeyMismatch). Told at the
	// first such refusal after the host was added or last connected, and
	// again for each other key it presents: while it keeps presenting a
	// refused key, its redials are refused without telling again.
	ChangeRefused
)

func (k ChangeKind) String() string {
	switch k {
	case ChangeConnected:
		return "connected"
	case ChangeLost:
		return "lost"
	case ChangeRefused:
		return "refused"
	}
	return fmt.Sprintf("ChangeKind(%d)", int(k))
}

// Change is a change of a host's connection, as Config.OnChange is told
// of it.
type Change struct {
	Kind ChangeKind
	// Name and Addr are the host's, as added (Addr is the host:port
	// dialled).
	Name, Addr string
	// Remote is the IP address the connection reached (for ChangeLost,
	// the lost connection's); invalid for ChangeRefused.
	Remote netip.Addr
	// ServerVersion is the server's SSH version string (for ChangeLost,
	// the lost connection's; empty for ChangeRefused), and Agent says
	// whether it starts with AgentVersionPrefix.
	ServerVersion string
	Agent         bool
	// HostKeyFingerprint is the SHA256 fingerprint of the host key
	// presented: for ChangeRefused the key refused.
	HostKeyFingerprint string
	// Err is why: for ChangeLost what ended the connection, for
	// ChangeRefused the refusal (wrapping ErrHostKeyMismatch); nil for
	// ChangeConnected.
	Err error
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
	heard *readClock    // when the host last sent anything
	// What the host sends on its own, which serve drains.
	chans <-chan ssh.NewChannel
	reqs  <-chan *ssh.Request

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

// readClock is a net.Conn that notes when data last arrived.
type readClock struct {
	net.Conn
	last atomic.Int64 // unix nanoseconds of the last read that returned data
}

func (c *readClock) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.last.Store(time.Now().UnixNano())
	}
	return n, err
}

// lastRead is when data last arrived.
func (c *readClock) lastRead() time.Time { return time.Unix(0, c.last.Load()) }

// Causes recorded when the pool closes a connection.
var (
	errKeepAlive = errors.New("no answer to keepalive")
	errHostGone  = errors.New("host removed or pool closed")
	errNoAnswer  = errors.New("no answer to a session channel's opening or exec request")
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
		dials:  make(chan struct{}, cfg.MaxDials),
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

// Stats returns the pool's counters and how many hosts are in each state.
// It allocates nothing, for metrics scraped often from a pool of ten
// thousand hosts.
func (p *Pool) Stats() Stats {
	st := Stats{
		DialsInProgress: len(p.dials),
		DialsWaiting:    int(p.dialsWaiting.Load()),
		Dials:           p.dialsStarted.Load(),
		DialFailures:    p.dialsFailed.Load(),
		DialTimeouts:    p.dialTimeout.Load(),
		KeepAlives:      p.keepAlives.Load(),
	}
	p.mu.Lock() // then each h.mu: nothing takes p.mu holding an h.mu
	defer p.mu.Unlock()
	for _, h := range p.hosts {
		h.mu.Lock()
		state := h.state
		h.mu.Unlock()
		switch state {
		case StateConnecting:
			st.Connecting++
		case StateConnected:
			st.Connected++
		case StateDown:
			st.Down++
		}
	}
	return st
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
	if p.cfg.DialJitter > 0 && !sleep(h.ctx, rand.N(p.cfg.DialJitter)) {
		h.setDown(errHostGone)
		return
	}
	// refusedTold is set once OnChange was told of a refused host key
	// (refusedKey, its fingerprint), until the host connects again: a host
	// that keeps presenting it is told of once, not at every redial;
	// another key refused is told of again.
	refusedTold, refusedKey := false, ""
	for {
		h.setConnecting()
		c, err := p.dialAside(h)
		connected := err == nil
		if !connected && h.ctx.Err() == nil {
			p.dialsFailed.Add(1)
			if isTimeout(err) {
				p.dialTimeout.Add(1)
			}
		}
		var lost Change // the connection's, for ChangeLost
		if connected {
			start := time.Now()
			h.setConnected(c)
			h.log.WithFields(logrus.Fields{
				"server_version": string(c.ServerVersion()),
				"agent":          c.agent,
			}).Info("connected")
			lastLogged = ""
			refusedTold = false
			up := h.change(ChangeConnected, nil)
			lost = up
			lost.Kind = ChangeLost
			p.notify(h, up)
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
		switch {
		case connected:
			lost.Err = err
			p.notify(h, lost)
		case errors.Is(err, ErrHostKeyMismatch):
			refused := h.change(ChangeRefused, err)
			refused.Remote, refused.ServerVersion, refused.Agent = netip.Addr{}, "", false
			if !refusedTold || refused.HostKeyFingerprint != refusedKey {
				refusedTold, refusedKey = true, refused.HostKeyFingerprint
				p.notify(h, refused)
			}
		}
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
		if !sleep(h.ctx, wait) {
			h.setDown(errHostGone)
			return
		}
	}
}

// notify tells Config.OnChange of ch, if it is set and h is still the
// pool's (not removed, the pool not closed). It runs on h's goroutine and
// holds no lock.
func (p *Pool) notify(h *host, ch Change) {
	if p.cfg.OnChange == nil || h.ctx.Err() != nil {
		return
	}
	p.cfg.OnChange(ch)
}

// change returns a Change of kind for h as it is now, with err.
func (h *host) change(kind ChangeKind, err error) Change {
	h.mu.Lock()
	defer h.mu.Unlock()
	return Change{Kind: kind, Name: h.name, Addr: h.addr, Remote: h.remote, ServerVersion: h.serverVersion,
		Agent: strings.HasPrefix(h.serverVersion, AgentVersionPrefix), HostKeyFingerprint: h.fingerprint, Err: err}
}

// sleep waits for d, and reports false when ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// isTimeout reports whether a connection attempt failed for running out
// of time.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) ||
		errors.As(err, &ne) && ne.Timeout()
}

// dialTurn waits until fewer than MaxDials attempts are in progress and
// takes a place among them, which the caller gives back with <-p.dials.
// Waiting senders on a channel are served in the order they came.
func (p *Pool) dialTurn(h *host) error {
	select {
	case p.dials <- struct{}{}:
		return nil
	default:
	}
	p.dialsWaiting.Add(1)
	defer p.dialsWaiting.Add(-1)
	select {
	case p.dials <- struct{}{}:
		return nil
	case <-h.ctx.Done():
		return fmt.Errorf("waiting for a turn to dial: %w", h.ctx.Err())
	}
}

// dialAside runs dial on a goroutine of its own and waits for it. The
// handshake's cryptography grows a goroutine's stack to tens of KiB, which
// the host's goroutine, which then serves the connection for as long as it
// lasts, would keep (a stack shrinks by half at a garbage collection, and
// an idle region collects seldom): ten thousand hosts held hundreds of MiB
// of stacks so.
func (p *Pool) dialAside(h *host) (*hostConn, error) {
	type dialed struct {
		c   *hostConn
		err error
	}
	done := make(chan dialed, 1)
	if err := p.spawn(func() {
		c, err := p.dial(h)
		done <- dialed{c, err}
	}); err != nil {
		return nil, err
	}
	d := <-done
	return d.c, d.err
}

// dial connects to h and completes the SSH handshake within DialTimeout,
// once it has its turn among the attempts in progress.
func (p *Pool) dial(h *host) (*hostConn, error) {
	if err := p.dialTurn(h); err != nil {
		return nil, err
	}
	defer func() { <-p.dials }()
	p.dialsStarted.Add(1)
	ctx, cancel := context.WithTimeout(h.ctx, p.cfg.DialTimeout)
	defer cancel()
	tc, err := tcpalive.Dialer(p.cfg.TCPKeepAlive).DialContext(ctx, "tcp", h.addr)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	nc := &readClock{Conn: tc}
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
	return &hostConn{
		Conn:  conn,
		agent: strings.HasPrefix(string(conn.ServerVersion()), AgentVersionPrefix),
		dead:  make(chan struct{}),
		heard: nc,
		chans: chans,
		reqs:  reqs,
	}, nil
}

// serve keeps c, h's connection (manage has marked h connected over it),
// until it ends, then returns why. The host's goroutine does it all: it
// takes what the host sends on its own (channels, which the region never
// accepts, and global requests, which must be read for the connection not
// to stall) and checks the connection every KeepAlive, so that a
// connection costs one goroutine of the pool's beside x/crypto/ssh's
// three: with ten thousand hosts, goroutine stacks are a good part of the
// region's memory.
//
// The checks fall at a phase of the connection's own, random, on a grid
// shared by the pool's connections (see package checkgrid): spread over the
// interval, so that the connections made together do not send their
// keepalives together, yet those due in the same step of the grid go
// together, so that ten thousand idle connections wake the process a few
// times a second rather than hundreds. At each check, a connection from
// which nothing arrived for a whole interval is sent keepalive@openssh.com
// (on a goroutine of its own, which waits for the answer), and closed when
// the answer does not come within another interval. Any answer counts:
// OpenSSH answers with a failure. A connection that hears from its host
// (the agent's own keepalives, command output) needs no request, as with
// OpenSSH's ServerAliveInterval.
func (p *Pool) serve(h *host, c *hostConn) error {
	stop := context.AfterFunc(h.ctx, func() { c.fail(errHostGone) })
	defer stop()
	interval := p.cfg.KeepAlive
	var check <-chan time.Time
	var timer *time.Timer
	var phase time.Duration
	if interval > 0 {
		phase = checkgrid.Phase(interval)
		timer = time.NewTimer(time.Until(checkgrid.Next(time.Now(), interval, phase)))
		defer timer.Stop()
		check = timer.C
	}
	var answered chan error // non-nil while a keepalive waits for its answer
	// An idle connection is asked at every other check (see keepAliveDue),
	// and connections made together (a region's start) would all be asked
	// in the same intervals, none in the others: half of them, drawn at
	// random, are asked at their first check, so that the keepalives of
	// ten thousand idle connections come at an even rate.
	early := rand.N(2) == 0
	chans, reqs := c.chans, c.reqs
	for chans != nil || reqs != nil {
		select {
		case ch, ok := <-chans:
			if !ok {
				chans = nil
				continue
			}
			ch.Reject(ssh.Prohibited, "zbridge region accepts no channels")
		case req, ok := <-reqs:
			if !ok {
				reqs = nil
				continue
			}
			if req.WantReply {
				req.Reply(false, nil)
			}
		case err := <-answered:
			answered = nil
			if err == nil {
				h.setAlive(c, time.Now())
			}
		case <-check:
			timer.Reset(time.Until(checkgrid.Next(time.Now(), interval, phase)))
			if answered != nil {
				continue // the last one is still out
			}
			heard := c.heard.lastRead()
			due := keepAliveDue(early, heard, time.Now(), interval)
			early = false // only the first check
			if !due {
				h.setAlive(c, heard)
				continue
			}
			ch := make(chan error, 1)
			if err := p.spawn(func() { ch <- p.keepAlive(h, c, interval) }); err != nil {
				c.fail(err)
				continue
			}
			p.keepAlives.Add(1)
			answered = ch
		}
	}
	// The mux closed both: the connection has ended.
	c.Wait()
	close(c.dead)
	if err := c.failure(); err != nil {
		return fmt.Errorf("connection closed: %w", err)
	}
	if err := c.Wait(); err != nil {
		return fmt.Errorf("connection lost: %w", err)
	}
	return errors.New("connection lost")
}

// keepAliveDue reports whether a check at now sends a keepalive over a
// connection last heard from at heard: when nothing came from it for a
// whole interval, as OpenSSH's ServerAliveInterval does, or when it is
// the first check of a connection drawn to be asked then (early).
func keepAliveDue(early bool, heard, now time.Time, interval time.Duration) bool {
	return early || now.Sub(heard) >= interval
}

// keepAlive sends keepalive@openssh.com over c and waits for the answer;
// when it does not come within interval, it closes c.
func (p *Pool) keepAlive(h *host, c *hostConn, interval time.Duration) error {
	missed := time.AfterFunc(interval, func() {
		h.log.WithField("timeout", interval.String()).Warn("keepalive not answered: closing connection")
		c.fail(fmt.Errorf("%w within %v", errKeepAlive, interval))
	})
	_, _, err := c.SendRequest("keepalive@openssh.com", true, nil)
	missed.Stop()
	return err
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

// setAlive records that c, if it is still h's connection, was heard from
// at t.
func (h *host) setAlive(c *hostConn, t time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.conn == c && t.After(h.lastKeepAlive) {
		h.lastKeepAlive = t
	}
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
