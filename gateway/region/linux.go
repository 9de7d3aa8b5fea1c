package region

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/commands"
	"github.com/zbridge/zbridge/gateway/agentssh"
	"github.com/zbridge/zbridge/protocol/agentproto"
)

// DefaultAgentPort is where every Linux agent listens, as in the CA design.
const DefaultAgentPort = 7022

// LinuxTarget is a Linux system named on the command line
// (--linux NAME=HOST:PORT).
type LinuxTarget struct {
	Name string
	Addr string // host:port
}

// ParseLinuxTarget parses NAME=HOST:PORT (or NAME=HOST, with the agent
// port). NAME must be a name agentssh.CheckName accepts: it is pinned in
// known_hosts.
func ParseLinuxTarget(s string, agentPort int) (LinuxTarget, error) {
	name, addr, ok := strings.Cut(s, "=")
	if !ok || name == "" || addr == "" {
		return LinuxTarget{}, fmt.Errorf("region: --linux %q: want NAME=HOST:PORT", s)
	}
	if err := agentssh.CheckName(name); err != nil {
		return LinuxTarget{}, fmt.Errorf("region: --linux %q: %w", s, err)
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(addr, strconv.Itoa(agentPort))
	}
	return LinuxTarget{Name: name, Addr: addr}, nil
}

// Defaults of LearnConfig, and the bound of the refusals AGENTS shows.
const (
	// DefaultMaxLearned is how many names the region learns at most.
	DefaultMaxLearned = 1000
	// DefaultMaxNamesPerAddr is how many names one sender address may hold.
	// A system whose syslog daemon sends its short name on one connection
	// and its FQDN on another holds two.
	DefaultMaxNamesPerAddr = 4
	// DefaultLearnTTL is how long a learned name lives unused.
	DefaultLearnTTL = 24 * time.Hour
	// RefusalsShown is how many refused claims AGENTS lists: the latest,
	// one row per name and claiming address.
	RefusalsShown = 16
)

// The reasons a claim to a name is refused: the reason label of the
// zbridge_learned_name_conflicts_total metric.
const (
	// RefusedStatic: the name is a static target (--linux).
	RefusedStatic = "static"
	// RefusedLearned: the name was learned from another address and is
	// still in use.
	RefusedLearned = "learned"
	// RefusedCapTotal: MaxNames names are learned already.
	RefusedCapTotal = "cap-total"
	// RefusedCapAddr: the address holds MaxNamesPerAddr names already.
	RefusedCapAddr = "cap-addr"
	// RefusedInvalid: the name cannot be a target name (see
	// agentssh.CheckName).
	RefusedInvalid = "invalid"
)

// refusalReasons lists every refusal reason, for the metric.
func refusalReasons() []string {
	return []string{RefusedStatic, RefusedLearned, RefusedCapTotal, RefusedCapAddr, RefusedInvalid}
}

// LearnConfig bounds the Linux systems a region learns from syslog
// connections (see linuxAgents.learn). Zero fields take the defaults
// named after them.
type LearnConfig struct {
	// MaxNames is how many names may be learned at once; default
	// DefaultMaxLearned. Negative turns learning off: only static targets
	// (--linux) are reached, and syslog senders are ignored.
	MaxNames int
	// MaxNamesPerAddr is how many names one sender address may hold at
	// once; default DefaultMaxNamesPerAddr.
	MaxNamesPerAddr int
	// TTL is how long a learned name lives unused before it is forgotten
	// and may be claimed again, from any address; default DefaultLearnTTL.
	// A name is used by each syslog connection from its address that
	// names it, by each command sent to it, and while its SSH connection is
	// up.
	TTL time.Duration
}

// DefaultLearnConfig returns the defaults.
func DefaultLearnConfig() LearnConfig {
	return LearnConfig{MaxNames: DefaultMaxLearned, MaxNamesPerAddr: DefaultMaxNamesPerAddr, TTL: DefaultLearnTTL}
}

// withDefaults validates c and fills in its zero fields.
func (c LearnConfig) withDefaults() (LearnConfig, error) {
	if c.MaxNamesPerAddr < 0 || c.TTL < 0 {
		return c, fmt.Errorf("region: learn config: MaxNamesPerAddr (%d) and TTL (%v) must not be negative", c.MaxNamesPerAddr, c.TTL)
	}
	d := DefaultLearnConfig()
	if c.MaxNames == 0 {
		c.MaxNames = d.MaxNames
	}
	if c.MaxNamesPerAddr == 0 {
		c.MaxNamesPerAddr = d.MaxNamesPerAddr
	}
	if c.TTL == 0 {
		c.TTL = d.TTL
	}
	return c, nil
}

// linuxAgents is the executor for linux: targets: the region's SSH
// connections to Linux agents (or stock sshd), static ones and those
// learned from syslog connections.
//
// A learned name is claimed, not proven: a syslog sender authenticates
// with nothing but its address. So a claim never replaces what is held:
// a static target's name is never learned, and a learned name stays with
// the first address that claimed it while it is in use (see
// LearnConfig.TTL); other claims are refused, logged, counted and listed
// by AGENTS. Names are compared case-insensitively, as DNS names are, and
// learned ones are kept in lower case. The number of names is bounded in
// all and per address. Behind this, agentssh pins host keys to the name,
// so that a name which moves once its entry expired must bring its key.
type linuxAgents struct {
	pool  *agentssh.Pool
	port  int
	learn LearnConfig
	log   logrus.FieldLogger
	now   func() time.Time // the clock; tests move it before Start

	// static maps the lower-cased name of each static target to it;
	// read-only after newLinuxAgents.
	static map[string]LinuxTarget

	mu        sync.Mutex               // guards the following fields
	learned   map[string]*learnedAgent // by lower-cased name
	perAddr   map[netip.Addr]int       // learned names per sender address
	refusals  []*refusal               // the latest RefusalsShown, oldest first
	conflicts map[string]uint64        // refusals by reason
	lastSweep time.Time
}

type learnedAgent struct {
	addr  netip.Addr
	since time.Time // when it was learned
	used  time.Time // its last syslog connection, command or sight of its SSH connection up
}

// refusal is a refused claim to a name, as AGENTS lists it.
type refusal struct {
	name        string
	addr        netip.Addr // the claimant's
	reason      string
	holder      string // who holds the name, or what cap was hit
	first, last time.Time
	count       uint64
}

// sweepEvery bounds how often the learned names are swept for expired
// ones: each claim or listing may sweep, at most this often.
const sweepEvery = time.Minute

// newLinuxAgents makes the Linux agents' pool; onChange is told of each
// host's connection made, lost, or refused for its host key (see
// agentssh.Config.OnChange).
func newLinuxAgents(cfg Config, log logrus.FieldLogger, onChange func(agentssh.Change)) (*linuxAgents, error) {
	// Config has no field for these bounds yet: the defaults.
	learn, err := cfg.Learn.withDefaults()
	if err != nil {
		return nil, err
	}
	static := map[string]LinuxTarget{}
	for _, t := range cfg.Linux {
		if err := agentssh.CheckName(t.Name); err != nil {
			return nil, fmt.Errorf("region: Linux target %q: %w", t.Name, err)
		}
		k := strings.ToLower(t.Name)
		if o, dup := static[k]; dup {
			return nil, fmt.Errorf("region: Linux targets %q and %q name one system (names are case-insensitive)", o.Name, t.Name)
		}
		static[k] = t
	}
	signer, err := agentssh.LoadSigner(cfg.SSHKeyFile)
	if err != nil {
		return nil, err
	}
	port := cfg.AgentPort
	if port == 0 {
		port = DefaultAgentPort
	}
	pool, err := agentssh.New(agentssh.Config{
		Signer:         signer,
		User:           cfg.SSHUser,
		KnownHostsFile: cfg.KnownHostsFile,
		AcceptNew:      cfg.AcceptNewHostKeys,
		MaxDials:       cfg.AgentDials,
		KeepAlive:      cfg.AgentKeepAlive,
		Logger:         log,
		OnChange:       onChange,
	})
	if err != nil {
		return nil, err
	}
	return &linuxAgents{pool: pool, port: port, learn: learn, log: log, now: time.Now, static: static,
		learned: map[string]*learnedAgent{}, perAddr: map[netip.Addr]int{}, conflicts: map[string]uint64{}}, nil
}

// connect starts connecting the static targets. The region calls it once
// its listeners serve: the pool dials in turn (agentssh.Config.MaxDials),
// which for thousands of targets takes seconds that the ports must not
// wait for.
func (l *linuxAgents) connect(targets []LinuxTarget) {
	for _, t := range targets {
		l.pool.Add(t.Name, t.Addr)
	}
	if len(targets) > 0 {
		l.log.WithField("targets", len(targets)).Info("connecting to the static Linux targets")
	}
}

// learnFrom records a system whose syslog daemon connected from addr
// naming itself host, and opens its command session at addr and the agent
// port, unless the claim is refused (see linuxAgents). It is called once
// per syslog connection, on the connection's goroutine, and never blocks
// on the network.
func (l *linuxAgents) learnFrom(host string, addr netip.Addr) {
	addr = addr.Unmap()
	if host == "" || !addr.IsValid() || l.learn.MaxNames < 0 {
		return
	}
	name := strings.ToLower(host)
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := agentssh.CheckName(name); err != nil {
		l.refuseLocked(now, name, addr, RefusedInvalid, "", err.Error())
		return
	}
	if ip, err := netip.ParseAddr(name); err == nil && ip.Unmap() != addr {
		// An address is a name only for the sender that has it: another
		// sender calling itself 10.1.2.3 would take linux:10.1.2.3.
		l.refuseLocked(now, name, addr, RefusedInvalid, "", "a host name that is another address")
		return
	}
	if t, ok := l.static[name]; ok {
		if l.isStaticAt(t, addr) {
			return // the static target's own syslog
		}
		l.refuseLocked(now, name, addr, RefusedStatic, t.Addr, "static target "+t.Name+" at "+t.Addr+" (--linux)")
		return
	}
	l.sweepLocked(now, false)
	if e, ok := l.learned[name]; ok {
		if e.addr == addr {
			e.used = now
			return
		}
		if l.liveLocked(name, e, now) {
			l.refuseLocked(now, name, addr, RefusedLearned, e.addr.String(),
				fmt.Sprintf("learned from %s at %s, in use", e.addr, e.since.UTC().Format(time.RFC3339)))
			return
		}
		l.forgetLocked(name, e, "unused for "+l.learn.TTL.String()+" and claimed from "+addr.String())
	}
	if l.perAddr[addr] >= l.learn.MaxNamesPerAddr {
		l.sweepLocked(now, true)
		if n := l.perAddr[addr]; n >= l.learn.MaxNamesPerAddr {
			l.refuseLocked(now, name, addr, RefusedCapAddr, "",
				fmt.Sprintf("%s holds %d learned names, the most one address may", addr, n))
			return
		}
	}
	if len(l.learned) >= l.learn.MaxNames {
		l.sweepLocked(now, true)
		if n := len(l.learned); n >= l.learn.MaxNames {
			l.refuseLocked(now, name, addr, RefusedCapTotal, "",
				fmt.Sprintf("%d names are learned, the most the region keeps", n))
			return
		}
	}
	l.learned[name] = &learnedAgent{addr: addr, since: now, used: now}
	l.perAddr[addr]++
	target := net.JoinHostPort(addr.String(), strconv.Itoa(l.port))
	l.log.WithFields(logrus.Fields{"host": name, "addr": target}).Info("syslog sender seen: opening its command session")
	l.pool.Add(name, target)
}

// isStaticAt reports whether the static target is at addr: its address is
// that IP, or its connection reached it (for an address given as a DNS
// name).
func (l *linuxAgents) isStaticAt(t LinuxTarget, addr netip.Addr) bool {
	if ap, err := netip.ParseAddrPort(t.Addr); err == nil && ap.Addr().Unmap() == addr {
		return true
	}
	h, ok := l.pool.Host(t.Name)
	return ok && h.Remote == addr
}

// liveLocked reports whether the learned name is in use: used within the
// TTL, or connected now (which counts as a use).
func (l *linuxAgents) liveLocked(name string, e *learnedAgent, now time.Time) bool {
	if now.Sub(e.used) < l.learn.TTL {
		return true
	}
	if h, ok := l.pool.Host(name); ok && h.State == agentssh.StateConnected {
		e.used = now
		return true
	}
	return false
}

// sweepLocked forgets the learned names no longer in use, and the refusals
// older than the TTL; unless force, at most every sweepEvery.
func (l *linuxAgents) sweepLocked(now time.Time, force bool) {
	if !force && now.Sub(l.lastSweep) < sweepEvery {
		return
	}
	l.lastSweep = now
	for name, e := range l.learned {
		if !l.liveLocked(name, e, now) {
			l.forgetLocked(name, e, "unused for "+l.learn.TTL.String())
		}
	}
	l.refusals = slices.DeleteFunc(l.refusals, func(r *refusal) bool { return now.Sub(r.last) >= l.learn.TTL })
}

// forgetLocked forgets a learned name and closes its session.
func (l *linuxAgents) forgetLocked(name string, e *learnedAgent, why string) {
	delete(l.learned, name)
	if l.perAddr[e.addr]--; l.perAddr[e.addr] <= 0 {
		delete(l.perAddr, e.addr)
	}
	l.log.WithFields(logrus.Fields{"host": name, "addr": e.addr.String(), "learned": e.since.UTC().Format(time.RFC3339)}).
		Info("forgetting a learned Linux system: " + why)
	l.pool.Remove(name)
}

// refuseLocked records a refused claim: counted, listed by AGENTS (one row
// per name and claiming address, the latest RefusalsShown), and logged at
// warning level, except a repeat of a listed one with the same reason,
// logged at debug level, so that a sender reconnecting does not flood the
// log.
func (l *linuxAgents) refuseLocked(now time.Time, name string, addr netip.Addr, reason, holderAddr, holder string) {
	l.conflicts[reason]++
	if len(name) > 64 {
		name = name[:64] + "..." // an invalid name may be long; the log and AGENTS need no more
	}
	entry := l.log.WithFields(logrus.Fields{"host": name, "claimed_from": addr.String(), "reason": reason, "held_by": holderAddr})
	for i, r := range l.refusals {
		if r.name != name || r.addr != addr {
			continue
		}
		repeat := r.reason == reason
		r.reason, r.holder, r.last = reason, holder, now
		r.count++
		l.refusals = append(append(l.refusals[:i:i], l.refusals[i+1:]...), r)
		if repeat {
			entry.Debug("claim to a Linux target name refused again: " + holder)
			return
		}
		entry.Warn("claim to a Linux target name refused: " + holder)
		return
	}
	l.refusals = append(l.refusals, &refusal{name: name, addr: addr, reason: reason, holder: holder, first: now, last: now, count: 1})
	if len(l.refusals) > RefusalsShown {
		l.refusals = slices.Delete(l.refusals, 0, len(l.refusals)-RefusalsShown)
	}
	entry.Warn("claim to a Linux target name refused: " + holder)
}

// conflictCounts returns the refusals by reason.
func (l *linuxAgents) conflictCounts() map[string]uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.conflicts)
}

// learnedCount returns how many names are learned.
func (l *linuxAgents) learnedCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.learned)
}

// refusalRows lists the refusals as AGENTS rows, sweeping first.
func (l *linuxAgents) refusalRows() []AgentInfo {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweepLocked(now, false)
	rows := make([]AgentInfo, 0, len(l.refusals))
	for _, r := range l.refusals {
		rows = append(rows, AgentInfo{Name: r.name, Kind: "linux", Addr: r.addr.String(), State: StateRefused, Since: r.last,
			Detail: fmt.Sprintf("claim by syslog sender %s refused (%s; %d since %s): %s",
				r.addr, r.reason, r.count, r.first.UTC().Format(time.RFC3339), r.holder)})
	}
	return rows
}

// StateRefused is the state of an AGENTS row for a refused claim to a
// name: a syslog sender named itself as a system the region knows at
// another address, or the region keeps as many names as it may.
const StateRefused = "refused"

// resolve finds the pool name of a target; a command to a learned name
// counts as a use of it.
func (l *linuxAgents) resolve(t commands.Target) (string, error) {
	if !t.Addr.IsValid() {
		name := strings.ToLower(t.Name)
		if s, ok := l.static[name]; ok {
			return s.Name, nil
		}
		l.touch(name)
		return name, nil // the pool says whether it knows it
	}
	for _, h := range l.pool.Hosts() {
		host, _, err := net.SplitHostPort(h.Addr)
		if err != nil {
			continue
		}
		if a, err := netip.ParseAddr(host); err == nil && a.Unmap() == t.Addr {
			l.touch(h.Name)
			return h.Name, nil
		}
	}
	return "", &commands.Error{Code: commands.CodeUnknown,
		Message: fmt.Sprintf("no Linux system at address %s is known; wait until the Linux system has connected", t.Addr)}
}

// touch marks a learned name used, or forgets it if it expired.
func (l *linuxAgents) touch(name string) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.learned[name]
	if !ok {
		return
	}
	if l.liveLocked(name, e, now) {
		e.used = now
		return
	}
	l.forgetLocked(name, e, "unused for "+l.learn.TTL.String())
}

// Run implements commands.Executor.
func (l *linuxAgents) Run(ctx context.Context, req *commands.Request, out func(commands.Output)) (commands.Result, error) {
	name, err := l.resolve(req.Target)
	if err != nil {
		return commands.Result{}, err
	}
	res, err := l.pool.Run(ctx, name, agentssh.Command{ID: req.ID, Line: req.Command, Timeout: req.Timeout, Client: req.Requester},
		func(o agentssh.Output) {
			out(commands.Output{Stream: commands.Stream(o.Stream), Data: o.Data, EOL: o.EOL})
		})
	r := commands.Result{RC: res.ExitStatus, Signal: res.Signal, Truncated: res.Truncated, Duration: res.Duration}
	if err != nil {
		return r, l.commandError(req, err)
	}
	switch {
	case res.TimedOut:
		return r, &commands.Error{Code: commands.CodeTimeout, Message: fmt.Sprintf("the command ran past its timeout of %v and was stopped by the agent", req.Timeout)}
	case res.AgentError == commands.CodeNotPermitted || res.AgentError == commands.CodeNotFound:
		return r, &commands.Error{Code: res.AgentError, Message: res.AgentMessage}
	}
	return r, nil
}

func (l *linuxAgents) commandError(req *commands.Request, err error) error {
	t := req.Target.String()
	switch {
	case errors.Is(err, agentssh.ErrUnknownHost):
		return &commands.Error{Code: commands.CodeUnknown,
			Message: fmt.Sprintf("%s is not known to this region; wait until the Linux system has connected", t)}
	case errors.Is(err, agentssh.ErrNotConnected), errors.Is(err, agentssh.ErrHostKeyMismatch),
		errors.Is(err, agentssh.ErrHostKeyUnknown):
		return &commands.Error{Code: commands.CodeNotConnected, Message: fmt.Sprintf("%s is not connected: %v", t, err)}
	case errors.Is(err, agentssh.ErrBadCommand):
		msg := err.Error()
		var fe *agentproto.FieldError
		if errors.As(err, &fe) {
			msg = fe.Error()
		}
		return &commands.Error{Code: commands.CodeBadRequest, Message: msg}
	case errors.Is(err, agentssh.ErrBusy):
		return &commands.Error{Code: commands.CodeBusy, RetryAfter: 1, Message: fmt.Sprintf("%s: %v", t, err)}
	case errors.Is(err, agentssh.ErrTimeout), errors.Is(err, agentssh.ErrCancelled):
		return err // the router tells timeout from cancel by its contexts
	}
	return &commands.Error{Code: commands.CodeFailed, Message: fmt.Sprintf("%s: %v", t, err)}
}

func (l *linuxAgents) Close() error { return l.pool.Close() }

// isStatic reports whether name is a static (--linux) target.
func (l *linuxAgents) isStatic(name string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.static[strings.ToLower(name)]
	return ok
}

// AgentInfo is a row of the AGENTS display.
type AgentInfo struct {
	Name, Kind, Addr, State string
	Since, LastHeartbeat    time.Time
	Detail                  string
	Static                  bool // a --linux target (not learned)
}

// Agents lists the agents the region knows, and the latest refused claims
// to their names (State StateRefused, Addr the claimant's address).
func (r *Region) Agents() []AgentInfo {
	var out []AgentInfo
	if r.linux != nil {
		for _, h := range r.linux.pool.Hosts() {
			kind, detail := "linux", "sshd "+h.ServerVersion
			if h.Agent {
				kind, detail = "agent", "zbridge linuxagent "+h.Platform
			}
			if h.State != agentssh.StateConnected && h.LastError != nil {
				detail = h.LastError.Error()
			}
			out = append(out, AgentInfo{Name: h.Name, Kind: kind, Addr: h.Addr, State: h.State.String(),
				Since: h.Since, LastHeartbeat: h.LastKeepAlive, Detail: detail, Static: r.linux.isStatic(h.Name)})
		}
		out = append(out, r.linux.refusalRows()...)
	}
	for _, z := range r.vmmon.Systems() {
		out = append(out, AgentInfo{Name: z.Name, Kind: "zvm", Addr: z.Remote, State: "connected",
			Since: z.Since, LastHeartbeat: z.LastSeen, Detail: "z/VM agent on VMMON"})
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].State != StateRefused && out[j].State == StateRefused
	})
	return out
}

// onSender is the SYSLOG server's hook: a host's syslog daemon connected.
func (r *Region) onSender(host string, addr netip.Addr) {
	if r.linux != nil {
		r.linux.learnFrom(host, addr)
	}
}
