package region

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/commands"
	"github.com/zbridge/zbridge/gateway/agentssh"
)

// DefaultAgentPort is where every Linux agent listens, as in the CA design.
const DefaultAgentPort = 7022

// LinuxTarget is a Linux system named on the command line
// (--linux NAME=HOST:PORT).
type LinuxTarget struct {
	Name string
	Addr string // host:port
}

// ParseLinuxTarget parses NAME=HOST:PORT (or NAME=HOST, with the agent port).
func ParseLinuxTarget(s string, agentPort int) (LinuxTarget, error) {
	name, addr, ok := strings.Cut(s, "=")
	if !ok || name == "" || addr == "" {
		return LinuxTarget{}, fmt.Errorf("region: --linux %q: want NAME=HOST:PORT", s)
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(addr, strconv.Itoa(agentPort))
	}
	return LinuxTarget{Name: name, Addr: addr}, nil
}

// linuxAgents is the executor for linux: targets: the region's SSH
// connections to Linux agents (or stock sshd), static ones and those
// learned from syslog connections.
type linuxAgents struct {
	pool *agentssh.Pool
	port int
	log  logrus.FieldLogger

	mu      sync.Mutex // guards learned
	learned map[string]learnedAgent
}

type learnedAgent struct {
	addr  netip.Addr
	since time.Time
}

func newLinuxAgents(cfg Config, log logrus.FieldLogger) (*linuxAgents, error) {
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
		Logger:         log,
	})
	if err != nil {
		return nil, err
	}
	l := &linuxAgents{pool: pool, port: port, log: log, learned: map[string]learnedAgent{}}
	for _, t := range cfg.Linux {
		pool.Add(t.Name, t.Addr)
	}
	return l, nil
}

// learn records a system whose syslog daemon connected from addr, and
// opens its command session at addr and the agent port.
func (l *linuxAgents) learn(host string, addr netip.Addr) {
	if host == "" || !addr.IsValid() {
		return
	}
	l.mu.Lock()
	old, known := l.learned[host]
	if known && old.addr == addr {
		l.mu.Unlock()
		return
	}
	l.learned[host] = learnedAgent{addr: addr, since: time.Now()}
	l.mu.Unlock()
	target := net.JoinHostPort(addr.String(), strconv.Itoa(l.port))
	l.log.WithFields(logrus.Fields{"host": host, "addr": target}).Info("syslog sender seen: opening its command session")
	l.pool.Add(host, target)
}

// resolve finds the pool name of a target.
func (l *linuxAgents) resolve(t commands.Target) (string, error) {
	if !t.Addr.IsValid() {
		return t.Name, nil
	}
	for _, h := range l.pool.Hosts() {
		host, _, err := net.SplitHostPort(h.Addr)
		if err != nil {
			continue
		}
		if a, err := netip.ParseAddr(host); err == nil && a.Unmap() == t.Addr {
			return h.Name, nil
		}
	}
	return "", &commands.Error{Code: commands.CodeUnknown,
		Message: fmt.Sprintf("no Linux system at address %s is known; wait until the Linux system has connected", t.Addr)}
}

// Run implements commands.Executor.
func (l *linuxAgents) Run(ctx context.Context, req *commands.Request, out func(commands.Output)) (commands.Result, error) {
	name, err := l.resolve(req.Target)
	if err != nil {
		return commands.Result{}, err
	}
	res, err := l.pool.Run(ctx, name, agentssh.Command{ID: req.ID, Line: req.Command, Timeout: req.Timeout},
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
	case errors.Is(err, agentssh.ErrBusy):
		return &commands.Error{Code: commands.CodeBusy, RetryAfter: 1, Message: fmt.Sprintf("%s: %v", t, err)}
	case errors.Is(err, agentssh.ErrTimeout), errors.Is(err, agentssh.ErrCancelled):
		return err // the router tells timeout from cancel by its contexts
	}
	return &commands.Error{Code: commands.CodeFailed, Message: fmt.Sprintf("%s: %v", t, err)}
}

func (l *linuxAgents) Close() error { return l.pool.Close() }

// AgentInfo is a row of the AGENTS display.
type AgentInfo struct {
	Name, Kind, Addr, State string
	Since, LastHeartbeat    time.Time
	Detail                  string
}

// Agents lists the agents the region knows.
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
				Since: h.Since, LastHeartbeat: h.LastKeepAlive, Detail: detail})
		}
	}
	for _, z := range r.vmmon.Systems() {
		out = append(out, AgentInfo{Name: z.Name, Kind: "zvm", Addr: z.Remote, State: "connected",
			Since: z.Since, LastHeartbeat: z.LastSeen, Detail: "z/VM agent on VMMON"})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// onSender is the SYSLOG server's hook: a host's syslog daemon connected.
func (r *Region) onSender(host string, addr netip.Addr) {
	if r.linux != nil {
		r.linux.learn(host, addr)
	}
}
