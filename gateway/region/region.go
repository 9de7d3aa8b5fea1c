// Package region is the zbridge region: it opens the listeners, starts the
// SYSLOG, UNSOLMSG, COMMANDS and HTTP servers over one session store and
// one command router (Linux targets over SSH, the region's own operator
// commands), and stops them in order (SYSLOG drains into the store first,
// COMMANDS lets commands finish, UNSOLMSG sends every subscriber what it is
// owed, then HTTP).
//
// Protected mode: the region refuses to start a server on a non-loopback
// address with no authentication configured. UNSOLMSG needs a clients file
// (named clients with hashed secrets) there, and so does COMMANDS; SYSLOG
// and HTTP, which have no logon, need an allow list of sender networks
// (Config.Allow): a syslog sender has nothing but its address to
// authenticate with.
package region

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/commands"
	"github.com/zbridge/zbridge/gateway/auth"
	"github.com/zbridge/zbridge/gateway/cluster"
	"github.com/zbridge/zbridge/gateway/commandsrv"
	"github.com/zbridge/zbridge/gateway/metrics"
	"github.com/zbridge/zbridge/gateway/session"
	"github.com/zbridge/zbridge/gateway/store"
	"github.com/zbridge/zbridge/gateway/store/memstore"
	"github.com/zbridge/zbridge/gateway/syslog"
	"github.com/zbridge/zbridge/gateway/unsolmsg"
	"github.com/zbridge/zbridge/gateway/vmmon"
)

// Config configures a region. Empty addresses leave that server off.
type Config struct {
	Name string // region name (required)

	SyslogTCP string // SYSLOG over TCP (or TLS when a certificate is set)
	SyslogUDP string // SYSLOG over UDP
	UnsolMsg  string // UNSOLMSG
	Commands  string // COMMANDS
	VMMon     string // VMMON (z/VM agents)
	HTTP      string // /healthz and /metrics

	// ClientsFile holds the named clients allowed to log on (see package
	// auth); empty means no authentication, allowed on loopback only.
	ClientsFile string
	// Allow lists the networks SYSLOG and HTTP accept connections and
	// datagrams from; empty means any, allowed on loopback only.
	Allow []netip.Prefix
	// TLSCertFile and TLSKeyFile, when set, make every TCP listener speak
	// TLS 1.2 or 1.3 (SYSLOG as RFC 5425).
	TLSCertFile, TLSKeyFile string

	// Retention of the embedded store.
	MaxEvents int
	MaxBytes  int64

	// Session settings for UNSOLMSG (zero: the session package defaults).
	Session session.Config
	// Syslog settings (zero: the syslog package defaults).
	SyslogMaxFrame    int
	SyslogMaxSessions int
	SyslogReadTimeout time.Duration

	// Store overrides the store (tests).
	Store store.Store

	// RedisURL keeps the session state in Redis (see package redisstore
	// for the URL form) instead of the embedded store, and lets regions
	// sharing it route commands to each other's agents. The password may
	// come from RedisPasswordFile instead of the URL.
	RedisURL, RedisPasswordFile string
	// RedisPrefix starts every key (default "zbridge").
	RedisPrefix string
	// MaxAge trims events older than it (Redis only; 0: no age limit).
	MaxAge time.Duration
	// PeerTTL is how long a region's announcement lives without being
	// refreshed (default 15s).
	PeerTTL time.Duration
	// GroupClaimAfter: see unsolmsg.Config.
	GroupClaimAfter time.Duration

	// Linux agents. SSHKeyFile is the region's private key (OpenSSH
	// format); without it Linux targets cannot be reached. Host keys are
	// pinned in KnownHostsFile; AcceptNewHostKeys records the key of a host
	// not yet in it (a changed key is always refused). Linux lists static
	// targets; others are learned from syslog connections and reached at
	// their address and AgentPort.
	SSHKeyFile        string
	KnownHostsFile    string
	AcceptNewHostKeys bool
	SSHUser           string
	Linux             []LinuxTarget
	AgentPort         int
	// Commands limits (zero: the commands package defaults).
	CommandTimeout, MaxCommandTimeout time.Duration
	MaxPerTarget, MaxPerSession       int
	// CommandsSession configures COMMANDS sessions (zero: defaults).
	CommandsSession session.Config

	Logger logrus.FieldLogger // required
}

// Region is a running region.
type Region struct {
	cfg    Config
	log    logrus.FieldLogger
	store  store.Store
	tls    *tls.Config
	auth   session.Authenticator
	reg    *metrics.Registry
	syslog *syslog.Server
	unsol  *unsolmsg.Server
	cmds   *commandsrv.Server
	vmmon  *vmmon.Server
	router *commands.Router
	linux  *linuxAgents // nil without an SSH key
	http   *http.Server
	redis  redis.UniversalClient // nil without --redis

	mu      sync.Mutex // guards addrs and cluster
	addrs   map[string]net.Addr
	cluster *cluster.Cluster // with Redis, once started

	closeOnce sync.Once // closeShared

	wg   sync.WaitGroup // Serve goroutines
	errc chan error     // first Serve failure
}

// New validates cfg and builds the region's servers; Start opens the
// listeners.
func New(cfg Config) (*Region, error) {
	if cfg.Name == "" {
		return nil, errors.New("region: config: Name is required")
	}
	if cfg.Logger == nil {
		return nil, errors.New("region: config: Logger is required")
	}
	r := &Region{cfg: cfg, log: cfg.Logger.WithField("region", cfg.Name), addrs: map[string]net.Addr{},
		errc: make(chan error, 4), reg: metrics.NewRegistry()}
	if err := r.checkProtectedMode(); err != nil {
		return nil, err
	}
	if cfg.TLSCertFile != "" || cfg.TLSKeyFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("region: TLS certificate: %w", err)
		}
		r.tls = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	if cfg.ClientsFile != "" {
		clients, err := auth.Load(cfg.ClientsFile)
		if err != nil {
			return nil, fmt.Errorf("region: clients file: %w", err)
		}
		for _, w := range clients.Warnings() {
			r.log.Warn(w.Error())
		}
		r.log.Infof("%d clients loaded from %s", clients.Len(), cfg.ClientsFile)
		r.auth = clients
	}
	r.store = cfg.Store
	switch {
	case r.store != nil:
	case cfg.RedisURL != "":
		if err := r.openRedis(); err != nil {
			return nil, err
		}
	default:
		r.store = memstore.New(memstore.Config{MaxEvents: cfg.MaxEvents, MaxBytes: cfg.MaxBytes})
	}
	ok := false
	defer func() {
		if !ok {
			r.closeShared()
		}
	}()
	var err error
	r.syslog, err = syslog.New(syslog.Config{
		Appender:    r.store,
		Logger:      r.log.WithField("component", "syslog"),
		MaxFrame:    cfg.SyslogMaxFrame,
		MaxSessions: cfg.SyslogMaxSessions,
		ReadTimeout: cfg.SyslogReadTimeout,
		TLSConfig:   r.tls,
		OnSender:    r.onSender,
	})
	if err != nil {
		return nil, fmt.Errorf("region: %w", err)
	}
	sc := cfg.Session
	sc.Name, sc.Region, sc.Auth, sc.TLSConfig = "unsolmsg", cfg.Name, r.auth, r.tls
	sc.Logger = r.log.WithField("component", "unsolmsg")
	r.unsol, err = unsolmsg.New(unsolmsg.Config{Session: sc, Store: r.store, Logger: sc.Logger, GroupClaimAfter: cfg.GroupClaimAfter})
	if err != nil {
		return nil, fmt.Errorf("region: %w", err)
	}
	if cfg.SSHKeyFile != "" {
		r.linux, err = newLinuxAgents(cfg, r.log.WithField("component", "agents"))
		if err != nil {
			return nil, fmt.Errorf("region: %w", err)
		}
	}
	vc := cfg.CommandsSession
	vc.Name, vc.Region, vc.Auth, vc.TLSConfig = "vmmon", cfg.Name, r.auth, r.tls
	vc.Logger = r.log.WithField("component", "vmmon")
	vc.Store = r.store
	r.vmmon, err = vmmon.New(vmmon.Config{Session: vc, Store: r.store, Logger: vc.Logger, OnChange: r.agentsChanged})
	if err != nil {
		return nil, fmt.Errorf("region: %w", err)
	}
	r.router = commands.NewRouter(commands.Config{Executors: r.executors(), DefaultTimeout: cfg.CommandTimeout,
		MaxTimeout: cfg.MaxCommandTimeout, MaxPerTarget: cfg.MaxPerTarget, IDPrefix: cfg.Name})
	cc := cfg.CommandsSession
	cc.Name, cc.Region, cc.Auth, cc.TLSConfig = "commands", cfg.Name, r.auth, r.tls
	cc.Logger = r.log.WithField("component", "commands")
	cc.Store = r.store
	r.cmds, err = commandsrv.New(commandsrv.Config{Session: cc, Router: r.router, MaxPerSession: cfg.MaxPerSession, Logger: cc.Logger})
	if err != nil {
		if r.linux != nil {
			r.linux.Close()
		}
		return nil, fmt.Errorf("region: %w", err)
	}
	r.registerMetrics()
	r.registerSharedMetrics()
	mux := http.NewServeMux()
	mux.Handle("/metrics", r.reg.Handler())
	mux.HandleFunc("/healthz", r.healthz)
	r.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, TLSConfig: r.tls}
	ok = true
	return r, nil
}

// closeShared closes what openRedis and openCluster opened (and the
// embedded store the region made): the cluster first, so that peers learn
// at once that this region is gone, then the store, then the client.
func (r *Region) closeShared() { r.closeOnce.Do(r.closeSharedOnce) }

func (r *Region) closeSharedOnce() {
	r.mu.Lock()
	c := r.cluster
	r.mu.Unlock()
	if c != nil {
		if err := c.Close(); err != nil {
			r.log.WithError(err).Warn("leaving the cluster")
		}
	}
	if r.cfg.Store == nil && r.store != nil {
		r.store.Close()
	}
	if r.redis != nil {
		r.redis.Close()
	}
}

// isLoopback reports whether addr (host:port) names only loopback: an
// explicit loopback IP or "localhost". An empty host means every address.
func isLoopback(addr string) (bool, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false, fmt.Errorf("region: address %q: %w", addr, err)
	}
	if host == "localhost" {
		return true, nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false, nil // a name that may resolve anywhere
	}
	return ip.IsLoopback(), nil
}

func (r *Region) checkProtectedMode() error {
	type listener struct{ name, addr, need string }
	var ls []listener
	if r.cfg.ClientsFile == "" {
		ls = append(ls, listener{"UNSOLMSG", r.cfg.UnsolMsg, "--clients FILE"},
			listener{"COMMANDS", r.cfg.Commands, "--clients FILE"}, listener{"VMMON", r.cfg.VMMon, "--clients FILE"})
	}
	if len(r.cfg.Allow) == 0 {
		ls = append(ls, listener{"SYSLOG", r.cfg.SyslogTCP, "--allow CIDR"},
			listener{"SYSLOG UDP", r.cfg.SyslogUDP, "--allow CIDR"}, listener{"HTTP", r.cfg.HTTP, "--allow CIDR"})
	}
	for _, l := range ls {
		if l.addr == "" {
			continue
		}
		lo, err := isLoopback(l.addr)
		if err != nil {
			return err
		}
		if !lo {
			return fmt.Errorf("%w: %s would listen on %s with no authentication; listen on 127.0.0.1, or configure %s",
				ErrProtected, l.name, l.addr, l.need)
		}
	}
	return nil
}

// ErrProtected is the protected-mode refusal.
var ErrProtected = errors.New("region: protected mode")

// Start opens the listeners and starts serving. It returns once every
// listener is open; Addr reports where.
func (r *Region) Start() error {
	type tcp struct {
		name, addr string
		serve      func(net.Listener) error
	}
	var opened []net.Listener
	var pcs []net.PacketConn
	fail := func(err error) error {
		for _, l := range opened {
			l.Close()
		}
		for _, pc := range pcs {
			pc.Close()
		}
		return err
	}
	for _, t := range []tcp{
		{"syslog", r.cfg.SyslogTCP, r.syslog.Serve},
		{"unsolmsg", r.cfg.UnsolMsg, r.unsol.Serve},
		{"commands", r.cfg.Commands, r.cmds.Serve},
		{"vmmon", r.cfg.VMMon, r.vmmon.Serve},
		{"http", r.cfg.HTTP, r.serveHTTP},
	} {
		if t.addr == "" {
			continue
		}
		l, err := net.Listen("tcp", t.addr)
		if err != nil {
			return fail(fmt.Errorf("region: %s: %w", t.name, err))
		}
		if (t.name == "syslog" || t.name == "http") && len(r.cfg.Allow) > 0 {
			l = &allowListener{Listener: l, allow: r.cfg.Allow, log: r.log.WithField("component", t.name)}
		}
		opened = append(opened, l)
		r.setAddr(t.name, l.Addr())
	}
	if r.cfg.SyslogUDP != "" {
		pc, err := net.ListenPacket("udp", r.cfg.SyslogUDP)
		if err != nil {
			return fail(fmt.Errorf("region: syslog udp: %w", err))
		}
		if len(r.cfg.Allow) > 0 {
			pc = &allowPacketConn{PacketConn: pc, allow: r.cfg.Allow}
		}
		pcs = append(pcs, pc)
		r.setAddr("syslog-udp", pc.LocalAddr())
	}
	i := 0
	for _, t := range []tcp{
		{"syslog", r.cfg.SyslogTCP, r.syslog.Serve},
		{"unsolmsg", r.cfg.UnsolMsg, r.unsol.Serve},
		{"commands", r.cfg.Commands, r.cmds.Serve},
		{"vmmon", r.cfg.VMMon, r.vmmon.Serve},
		{"http", r.cfg.HTTP, r.serveHTTP},
	} {
		if t.addr == "" {
			continue
		}
		r.run(t.name, opened[i], t.serve)
		i++
	}
	for _, pc := range pcs {
		pc := pc
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			if err := r.syslog.ServePacket(pc); err != nil && !errors.Is(err, syslog.ErrServerClosed) {
				r.errc <- fmt.Errorf("region: syslog udp: %w", err)
			}
		}()
	}
	if r.redis != nil {
		if err := r.openCluster(); err != nil {
			r.Close()
			return err
		}
	}
	r.log.WithField("addrs", r.addrString()).Info("region started")
	return nil
}

func (r *Region) run(name string, l net.Listener, serve func(net.Listener) error) {
	r.log.WithField("component", name).Infof("listening on %s", l.Addr())
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		err := serve(l)
		if err != nil && !errors.Is(err, syslog.ErrServerClosed) && !errors.Is(err, session.ErrServerClosed) &&
			!errors.Is(err, http.ErrServerClosed) {
			select {
			case r.errc <- fmt.Errorf("region: %s: %w", name, err):
			default:
			}
		}
	}()
}

func (r *Region) serveHTTP(l net.Listener) error {
	if r.tls != nil {
		return r.http.ServeTLS(l, "", "")
	}
	return r.http.Serve(l)
}

func (r *Region) setAddr(name string, a net.Addr) {
	r.mu.Lock()
	r.addrs[name] = a
	r.mu.Unlock()
}

func (r *Region) addrString() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := ""
	for _, k := range []string{"syslog", "syslog-udp", "unsolmsg", "commands", "vmmon", "http"} {
		if a, ok := r.addrs[k]; ok {
			s += fmt.Sprintf("%s=%s ", k, a)
		}
	}
	return s
}

// Addr returns where a server listens: "syslog", "syslog-udp", "unsolmsg",
// "commands", "vmmon" or "http"; nil when it is off.
func (r *Region) Addr(name string) net.Addr {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.addrs[name]
}

// Store returns the region's session store.
func (r *Region) Store() store.Store { return r.store }

// Err returns a channel that yields a server's failure.
func (r *Region) Err() <-chan error { return r.errc }

// Shutdown stops the region in order: SYSLOG drains what it has received
// into the store, COMMANDS lets commands in flight finish, UNSOLMSG sends
// subscribers what they are owed and ends their sessions, then HTTP stops,
// the agent connections close and the store closes. When ctx ends
// first, what is left is closed at once.
func (r *Region) Shutdown(ctx context.Context) error {
	r.log.Info("region shutting down")
	serr := r.syslog.Shutdown(ctx)
	if serr != nil {
		r.syslog.Close() // out of time: stop the senders before the store closes
	}
	errs := []error{
		serr,
		r.cmds.Shutdown(ctx),
		r.vmmon.Shutdown(ctx),
		r.unsol.Shutdown(ctx),
		r.http.Shutdown(ctx),
	}
	r.wg.Wait()
	if r.linux != nil {
		errs = append(errs, r.linux.Close())
	}
	r.closeShared()
	r.log.Info("region stopped")
	return errors.Join(errs...)
}

// Close stops everything at once.
func (r *Region) Close() error {
	err := errors.Join(r.syslog.Close(), r.cmds.Close(), r.vmmon.Close(), r.unsol.Close(), r.http.Close())
	r.wg.Wait()
	if r.linux != nil {
		r.linux.Close()
	}
	r.closeShared()
	return err
}
