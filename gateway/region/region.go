// Package region is the zbridge region: it opens the listeners, starts the
// SYSLOG, UNSOLMSG, COMMANDS, VMMON and HTTP servers over one session store
// and one command router (Linux targets over SSH, z/VM targets through
// VMMON, the region's own operator commands), and stops them in order
// (SYSLOG drains into the store first, COMMANDS lets commands finish,
// UNSOLMSG sends every subscriber what it is owed, then HTTP).
//
// Trust (trust.go): one guard holds the clients and roles of the config
// file and the clients file (package trust) and checks every logon (secret
// and port), every VMMON system name, every subscription (what a client may
// see) and every command (target, command line, limits) against them; it
// writes the audit log (package audit) and applies a Refresh (SIGHUP,
// REFRESH) to the next request, ending revoked clients' sessions.
//
// Protected mode: the region refuses to start a server on a non-loopback
// address with no authentication configured. UNSOLMSG, COMMANDS and VMMON
// need clients there; SYSLOG and HTTP, which have no logon, need an allow
// list of sender networks (Config.Allow): a syslog sender has nothing but
// its address (or a client certificate) to authenticate with.
//
// Scale (linux.go, fdbudget.go): Start opens and serves every listener
// before it dials the static Linux targets, which the agent pool dials in
// turn (Config.AgentDials at once, each host's first dial jittered), so
// that a region with ten thousand agents serves its clients while it
// connects them. The process's file descriptors are a budget
// (Config.FDReserve, package internal/acceptloop's Reserve): a connection
// past it, or one that came once the descriptors ran out, is refused with
// a reason (busy on UNSOLMSG, COMMANDS and VMMON; closed on SYSLOG, RELP
// and the console; 503 on HTTP, which may use the reserve), never left
// in the listen backlog; /healthz reports the budget ("fds") and /metrics
// the zbridge_fd_* gauges, and the agents' connections as
// zbridge_linux_agents and zbridge_agent_dial*. The agents' messages
// (connected ZBR204I, lost ZBR205E, host key refused ZBR206E) are bounded,
// those held back counted in summaries (agentmsgs.go), so that ten
// thousand agents connecting do not flood automation. BenchmarkScale
// measures a region with 10,000 agents and 5,000 subscribers.
package region

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/commands"
	"github.com/zbridge/zbridge/gateway/availability"
	"github.com/zbridge/zbridge/gateway/cluster"
	"github.com/zbridge/zbridge/gateway/commandsrv"
	"github.com/zbridge/zbridge/gateway/flood"
	"github.com/zbridge/zbridge/gateway/metrics"
	"github.com/zbridge/zbridge/gateway/relp"
	"github.com/zbridge/zbridge/gateway/session"
	"github.com/zbridge/zbridge/gateway/store"
	"github.com/zbridge/zbridge/gateway/store/diskstore"
	"github.com/zbridge/zbridge/gateway/store/memstore"
	"github.com/zbridge/zbridge/gateway/syslog"
	"github.com/zbridge/zbridge/gateway/trust"
	"github.com/zbridge/zbridge/gateway/unsolmsg"
	"github.com/zbridge/zbridge/gateway/vmmon"
	"github.com/zbridge/zbridge/internal/acceptloop"
	"github.com/zbridge/zbridge/internal/tcpalive"
	"github.com/zbridge/zbridge/zos/console"
)

// Config configures a region. Empty addresses leave that server off.
type Config struct {
	Name string // region name (required)

	SyslogTCP string // SYSLOG over TCP (or TLS when a certificate is set)
	SyslogUDP string // SYSLOG over UDP
	// RELP is SYSLOG over RELP, as rsyslog's omrelp sends it (TLS when a
	// certificate is set): each message is acknowledged once the store
	// has made it durable (store.Sync).
	RELP     string
	UnsolMsg string // UNSOLMSG
	Commands string // COMMANDS
	VMMon    string // VMMON (z/VM agents)
	// Console is the 3270 operator console (package zos/console; TLS when
	// a certificate is set): operators log on with a client name and
	// secret, and their roles apply as on every port.
	Console string
	HTTP    string // /healthz and /metrics

	// ClientsFile holds the named clients allowed to log on (see package
	// auth); empty means no authentication, allowed on loopback only.
	ClientsFile string
	// ConfigFile holds clients and the roles that say what each may do
	// (see package trust); read again by Refresh.
	ConfigFile string
	// AuditLog is the audit log file (see package audit); empty: none.
	AuditLog string
	// Allow lists the networks SYSLOG and HTTP accept connections and
	// datagrams from; empty means any, allowed on loopback only.
	Allow []netip.Prefix
	// TLSCertFile and TLSKeyFile, when set, make every TCP listener speak
	// TLS 1.2 (AEAD suites only) or 1.3 (SYSLOG as RFC 5425).
	TLSCertFile, TLSKeyFile string
	// SyslogClientCA, with a certificate, makes SYSLOG over TLS require a
	// client certificate issued by a CA in this PEM file.
	SyslogClientCA string

	// Retention of the event stream (MaxAge is further down).
	MaxEvents int
	MaxBytes  int64
	// DataDir keeps the embedded store on disk there (package diskstore):
	// a restart loses nothing it acknowledged. Empty: in memory only.
	// Unused with RedisURL.
	DataDir string
	// Sync is the on-disk store's sync policy (diskstore.DefaultSync if
	// empty).
	Sync diskstore.SyncPolicy

	// Session settings for UNSOLMSG (zero: the session package defaults).
	Session session.Config
	// Syslog settings (zero: the syslog package defaults).
	SyslogMaxFrame    int
	SyslogMaxSessions int
	// SyslogMaxSessionsPerAddr: see syslog.Config.MaxSessionsPerAddr.
	SyslogMaxSessionsPerAddr int
	SyslogReadTimeout        time.Duration
	// SyslogCoalesce: see syslog.Config.Coalesce (negative: none).
	SyslogCoalesce time.Duration
	// TimeFields are structured-data parameters an event's time is taken
	// from (see TimeField); TODLeapSeconds is the leap-second offset
	// (CVTLSO) of the TOD values among them.
	TimeFields     []TimeField
	TODLeapSeconds time.Duration
	// Hardcopy reads a syslog message whose text is a z/OS hardcopy log
	// line (SYSLOG or OPERLOG, forwarded by z/OS syslogd) into its message
	// ID, system, time and text; HardcopyLocation is the systems' time
	// zone (default UTC).
	Hardcopy         bool
	HardcopyLocation *time.Location
	// Flood is the per-source flood control of SYSLOG and RELP (see
	// package flood; Next and Logger are set by the region). The zero
	// value turns it off; flood.DefaultConfig() has the defaults.
	Flood flood.Config

	// Store overrides the store (tests).
	Store store.Store

	// RedisURL keeps the session state in Redis (see package redisstore
	// for the URL form) instead of the embedded store, and lets regions
	// sharing it route commands to each other's agents. The password may
	// come from RedisPasswordFile instead of the URL.
	RedisURL, RedisPasswordFile string
	// ClusterKeyFile holds the key (32 bytes or more) with which regions
	// sharing Redis sign the commands they forward to each other and the
	// answers; every region reads the same file. Required with RedisURL.
	ClusterKeyFile string
	// RedisPrefix starts every key (default "zbridge").
	RedisPrefix string
	// MaxAge trims events received longer ago than it (0: no age limit).
	MaxAge time.Duration
	// PeerTTL is how long a region's announcement lives without being
	// refreshed (default 15s).
	PeerTTL time.Duration
	// GroupClaimAfter: see unsolmsg.Config.
	GroupClaimAfter time.Duration

	// Linux agents. SSHKeyFile is the region's private key (OpenSSH
	// format); without it Linux targets cannot be reached. Host keys are
	// pinned per target name in KnownHostsFile; AcceptNewHostKeys records
	// the key of a name that has no pin yet (a name keeps its key at any
	// address, and a changed key is always refused; see package agentssh).
	// Linux lists static targets; others are learned from syslog TCP/TLS
	// connections (never UDP) and reached at their address and AgentPort,
	// within Learn's bounds: a learned name never replaces a static target
	// or a name another address holds.
	SSHKeyFile        string
	KnownHostsFile    string
	AcceptNewHostKeys bool
	SSHUser           string
	Linux             []LinuxTarget
	AgentPort         int
	Learn             LearnConfig // zero: DefaultLearnConfig
	// AgentDials bounds the SSH connection attempts to Linux agents in
	// progress at once (zero: agentssh.DefaultMaxDials): a region with
	// thousands of agents dials them in turn, once its listeners are up,
	// rather than all at once (see package agentssh).
	AgentDials int
	// AgentKeepAlive is how often each connection to a Linux agent is
	// checked, and sent an SSH keepalive when it was silent for as long
	// (zero: agentssh.DefaultKeepAlive, 5 minutes; negative: never): it
	// finds an agent that is connected but hung. A dead host or path is
	// found by the kernel, 3.5 minutes after the agent last sent anything
	// (agentssh.Config.TCPKeepAlive).
	AgentKeepAlive time.Duration
	// FDReserve is how many file descriptors, below the process's limit,
	// the connections the region accepts may not take: they are kept for
	// its own work (its store's files, the agents it dials, /healthz). A
	// connection past the budget is refused with a reason (busy on
	// UNSOLMSG, COMMANDS and VMMON; closed at once on SYSLOG, RELP and the
	// console), as is one accepted once the region ran out of descriptors
	// altogether. Zero: acceptloop.DefaultReserve of the limit (a
	// fiftieth, 16 to 1024); negative: none.
	FDReserve int
	// Commands limits (zero: the commands package defaults).
	CommandTimeout, MaxCommandTimeout time.Duration
	MaxPerTarget, MaxPerSession       int
	// CommandsSession configures COMMANDS sessions (zero: defaults).
	CommandsSession session.Config
	// Availability runs the availability ledger (package
	// gateway/availability) when the config file has an [availability]
	// table. With several regions sharing Redis, set it on one of them.
	Availability bool
	// ReportDir, with the ledger on, receives each day's availability
	// report (text, CSV, HTML) a minute after midnight UTC.
	ReportDir string

	Logger logrus.FieldLogger // required
}

// Region is a running region.
type Region struct {
	cfg    Config
	log    logrus.FieldLogger
	store  store.Store
	tls    *tls.Config
	guard  *guard
	reg    *metrics.Registry
	syslog *syslog.Server
	relp   *relp.Server   // nil when RELP is off
	flood  *flood.Limiter // nil when flood control is off
	unsol  *unsolmsg.Server
	cmds   *commandsrv.Server
	vmmon  *vmmon.Server
	// console is the 3270 operator console (nil when off), consoles its
	// operators' sessions.
	console  *console.Server
	consoles consoles
	router   *commands.Router
	// avail is the availability ledger (nil when off); availStop and
	// availDone stop it and say it stopped.
	avail     *availability.Ledger
	availStop context.CancelFunc
	availDone chan struct{}
	// cmdDone records a command's duration and outcome (COMMANDS and the
	// console).
	cmdDone func(*commands.Request, time.Duration, error)
	linux   *linuxAgents // nil without an SSH key
	fds     *acceptloop.Reserve
	http    *http.Server
	redis   redis.UniversalClient // nil without --redis
	// clusterKey signs what regions sharing Redis forward to each other.
	clusterKey []byte

	mu      sync.Mutex // guards addrs and cluster
	addrs   map[string]net.Addr
	cluster *cluster.Cluster // with Redis, once started

	// started is set when Start has issued ZBR001I: until then /healthz
	// says "starting" (503), so that a readiness probe, and a test, do not
	// take the region for ready while it is still joining its cluster.
	started atomic.Bool

	closeOnce sync.Once // closeShared

	msgLimits msgLimits  // messages issued at a bounded rate
	agentMsgs *agentMsgs // the Linux agents' messages, bounded (agentmsgs.go)

	intakeOnce sync.Once
	intakeApp  syslog.Appender // what SYSLOG and RELP append to (see intake)
	joined     syslog.Appender // the store, the Appends made at once joined (see openFlood)

	stopOnce   sync.Once
	stopping   chan struct{} // closed by Stop
	stopReason string        // set once, before stopping closes

	quitOnce sync.Once
	quit     chan struct{} // closed when Shutdown or Close begins

	wg   sync.WaitGroup // Serve goroutines, releaseAfterDials, summarizeAgentsEvery, refuseHTTP's
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
		errc: make(chan error, 4), reg: metrics.NewRegistry(), stopping: make(chan struct{}), quit: make(chan struct{}),
		agentMsgs: newAgentMsgs(agentMsgBurst, agentMsgEvery)}
	var err error
	if r.guard, err = newGuard(r); err != nil {
		return nil, err
	}
	if err := r.checkProtectedMode(r.guard.authz.Policy().HasClients()); err != nil {
		r.guard.close()
		return nil, err
	}
	if cfg.TLSCertFile != "" || cfg.TLSKeyFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
		if err != nil {
			r.guard.close()
			return nil, fmt.Errorf("region: TLS certificate: %w", err)
		}
		r.tls = serverTLS(cert)
	}
	syslogTLS := r.tls
	if cfg.SyslogClientCA != "" {
		if r.tls == nil {
			r.guard.close()
			return nil, errors.New("region: a syslog client CA needs a TLS certificate (--tls-cert)")
		}
		if syslogTLS, err = requireClientCerts(r.tls, cfg.SyslogClientCA); err != nil {
			r.guard.close()
			return nil, err
		}
	}
	r.store = cfg.Store
	switch {
	case r.store != nil:
	case cfg.RedisURL != "":
		if err := r.openRedis(); err != nil {
			return nil, err
		}
	case cfg.DataDir != "":
		ds, err := diskstore.Open(diskstore.Config{Dir: cfg.DataDir, Sync: cfg.Sync, MaxEvents: cfg.MaxEvents,
			MaxBytes: cfg.MaxBytes, MaxAge: cfg.MaxAge, Logger: r.log.WithField("component", "store")})
		if err != nil {
			r.guard.close()
			return nil, fmt.Errorf("region: %w", err)
		}
		info := ds.Info()
		r.log.WithFields(logrus.Fields{"component": "store", "dir": cfg.DataDir, "sync": cfg.Sync,
			"segments": info.Segments, "records": info.Records, "events": info.Events,
			"cut_bytes": info.CutBytes, "took": info.Took.Round(time.Millisecond)}).Info("event store opened")
		r.store = ds
	default:
		r.store = memstore.New(memstore.Config{MaxEvents: cfg.MaxEvents, MaxBytes: cfg.MaxBytes, MaxAge: cfg.MaxAge})
	}
	ok := false
	defer func() {
		if !ok {
			r.closeShared()
			r.guard.close()
		}
	}()
	if r.fds, err = acceptloop.NewReserve(acceptloop.ReserveConfig{Reserve: cfg.FDReserve, Logger: r.log}); err != nil {
		return nil, fmt.Errorf("region: %w", err)
	}
	defer func() {
		if !ok {
			r.fds.Close()
		}
	}()
	if err := r.openFlood(); err != nil {
		return nil, err
	}
	defer func() {
		if !ok {
			r.closeFlood(context.Background())
		}
	}()
	r.syslog, err = syslog.New(syslog.Config{
		Appender:           r.intake(),
		Logger:             r.log.WithField("component", "syslog"),
		MaxFrame:           cfg.SyslogMaxFrame,
		MaxSessions:        cfg.SyslogMaxSessions,
		MaxSessionsPerAddr: cfg.SyslogMaxSessionsPerAddr,
		ReadTimeout:        cfg.SyslogReadTimeout,
		Coalesce:           cfg.SyslogCoalesce,
		TLSConfig:          syslogTLS,
		OnSender:           r.onSender,
	})
	if err != nil {
		return nil, fmt.Errorf("region: %w", err)
	}
	if cfg.RELP != "" {
		if _, ok := r.store.(store.Syncer); !ok {
			r.log.Warn("RELP with the event store in memory only (--data-dir \"\"): messages are acknowledged once stored, and a restart loses them")
		} else if _, disk := r.store.(*diskstore.Store); disk && cfg.Sync == diskstore.SyncOS {
			r.log.Warn("RELP with --sync os: messages are acknowledged once written, and a power loss can lose them")
		}
		r.relp, err = relp.New(relp.Config{Sink: newRELPSink(r), Logger: r.log, TLSConfig: syslogTLS,
			MaxSessions: cfg.SyslogMaxSessions, MaxSessionsPerAddr: cfg.SyslogMaxSessionsPerAddr,
			IdleTimeout: cfg.SyslogReadTimeout})
		if err != nil {
			return nil, fmt.Errorf("region: %w", err)
		}
	}
	sc := cfg.Session
	sc.Name, sc.Region, sc.Auth, sc.TLSConfig = "unsolmsg", cfg.Name, r.guard.authz.ForPort(trust.PortUnsolMsg), r.tls
	sc.Logger = r.log.WithField("component", "unsolmsg")
	sc.OnRefuse, sc.Recheck = r.guard.refused, r.guard.recheck(trust.PortUnsolMsg)
	sc.Reserve = r.fds
	r.unsol, err = unsolmsg.New(unsolmsg.Config{Session: sc, Store: r.store, Logger: sc.Logger, GroupClaimAfter: cfg.GroupClaimAfter,
		Access: r.guard, RelayLatency: r.newRelayLatency()})
	if err != nil {
		return nil, fmt.Errorf("region: %w", err)
	}
	if cfg.SSHKeyFile != "" {
		r.linux, err = newLinuxAgents(cfg, r.log.WithField("component", "agents"), r.linuxChanged)
		if err != nil {
			return nil, fmt.Errorf("region: %w", err)
		}
	}
	vc := cfg.CommandsSession
	vc.Name, vc.Region, vc.Auth, vc.TLSConfig = "vmmon", cfg.Name, r.guard.authz.ForPort(trust.PortVMMon), r.tls
	vc.Logger = r.log.WithField("component", "vmmon")
	vc.OnRefuse, vc.Recheck = r.guard.refused, r.guard.recheck(trust.PortVMMon)
	vc.Reserve = r.fds
	vc.Store = r.store
	r.vmmon, err = vmmon.New(vmmon.Config{Session: vc, Store: r.store, Logger: vc.Logger, OnChange: r.agentsChanged,
		Permit: r.guard.permitVMMon})
	if err != nil {
		return nil, fmt.Errorf("region: %w", err)
	}
	r.cmdDone = r.newCommandDuration()
	r.router = commands.NewRouter(commands.Config{Executors: r.executors(), DefaultTimeout: cfg.CommandTimeout,
		MaxTimeout: cfg.MaxCommandTimeout, MaxPerTarget: cfg.MaxPerTarget, IDPrefix: cfg.Name})
	cc := cfg.CommandsSession
	cc.Name, cc.Region, cc.Auth, cc.TLSConfig = "commands", cfg.Name, r.guard.authz.ForPort(trust.PortCommands), r.tls
	cc.Logger = r.log.WithField("component", "commands")
	cc.OnRefuse, cc.Recheck = r.guard.refused, r.guard.recheck(trust.PortCommands)
	cc.Reserve = r.fds
	cc.Store = r.store
	r.cmds, err = commandsrv.New(commandsrv.Config{Session: cc, Router: r.router, MaxPerSession: cfg.MaxPerSession, Logger: cc.Logger,
		Guard: r.guard, Done: r.cmdDone})
	if err != nil {
		if r.linux != nil {
			r.linux.Close()
		}
		return nil, fmt.Errorf("region: %w", err)
	}
	if cfg.Console != "" {
		r.console, err = console.New(console.Config{Backend: consoleBackend{r}, TLSConfig: r.tls,
			Logger: r.log.WithField("component", "console")})
		if err != nil {
			if r.linux != nil {
				r.linux.Close()
			}
			return nil, fmt.Errorf("region: %w", err)
		}
	}
	if err := r.openAvailability(); err != nil {
		if r.linux != nil {
			r.linux.Close()
		}
		return nil, err
	}
	r.registerMetrics()
	r.registerSharedMetrics()
	r.registerFDMetrics()
	r.registerAgentMetrics()
	mux := http.NewServeMux()
	mux.Handle("/metrics", r.reg.Handler(r.log.WithField("component", "metrics")))
	mux.HandleFunc("/healthz", r.healthzWithFDs)
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

// checkProtectedMode refuses a server on a non-loopback address with no
// authentication: hasClients says whether logons are checked.
func (r *Region) checkProtectedMode(hasClients bool) error {
	type listener struct{ name, addr, need string }
	var ls []listener
	if !hasClients {
		ls = append(ls, listener{"UNSOLMSG", r.cfg.UnsolMsg, "clients (--config or --clients)"},
			listener{"COMMANDS", r.cfg.Commands, "clients (--config or --clients)"},
			listener{"VMMON", r.cfg.VMMon, "clients (--config or --clients)"},
			listener{"CONSOLE", r.cfg.Console, "clients (--config or --clients)"})
	}
	if len(r.cfg.Allow) == 0 {
		ls = append(ls, listener{"SYSLOG", r.cfg.SyslogTCP, "--allow CIDR"},
			listener{"SYSLOG UDP", r.cfg.SyslogUDP, "--allow CIDR"}, listener{"RELP", r.cfg.RELP, "--allow CIDR"},
			listener{"HTTP", r.cfg.HTTP, "--allow CIDR"})
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

// AcceptedTCPKeepAlive is the idle time of the kernel's TCP keepalive on
// every connection the region accepts (package tcpalive): each one's own
// is drawn from 2 to 4 minutes, it probes every 40 s after that, and a
// peer that sent nothing for 7 minutes with a probe or data unanswered is
// gone (TCP_USER_TIMEOUT): a syslog sender's host that died or a path
// that broke frees its connection and its descriptor. Go's own keepalive,
// which the region's connections had before, probes after 15 s idle,
// every connection alike: the 5,000 subscribers of BenchmarkScale, each
// heartbeating every 30 s, were probed about once a heartbeat, ~170
// probes and answers a second through both ends' kernels, and
// connections accepted together (clients reconnecting to a region that
// restarted) were probed together, in bursts that can overflow the
// queues on their way (see tcpalive). The sessions' heartbeats find a
// client that is there but hung; the keepalive a host or path that is
// gone, for SYSLOG and RELP senders too, which send no heartbeats.
const AcceptedTCPKeepAlive = 2 * time.Minute

// Start opens the listeners and starts serving. It returns once every
// listener is open; Addr reports where. Then it starts connecting the
// static Linux targets (Config.Linux), paced: a region with thousands of
// them serves its ports while it dials.
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
	servers := []tcp{
		{"syslog", r.cfg.SyslogTCP, r.syslog.Serve},
		{"unsolmsg", r.cfg.UnsolMsg, r.unsol.Serve},
		{"commands", r.cfg.Commands, r.cmds.Serve},
		{"vmmon", r.cfg.VMMon, r.vmmon.Serve},
		{"http", r.cfg.HTTP, r.serveHTTP},
	}
	if r.relp != nil {
		servers = append(servers, tcp{"relp", r.cfg.RELP, r.relp.Serve})
	}
	if r.console != nil {
		servers = append(servers, tcp{"console", r.cfg.Console, r.console.Serve})
	}
	for _, t := range servers {
		if t.addr == "" {
			continue
		}
		l, err := net.Listen("tcp", t.addr)
		if err != nil {
			return fail(fmt.Errorf("region: %s: %w", t.name, err))
		}
		log := r.log.WithField("component", t.name)
		l = tcpalive.Listener(l, AcceptedTCPKeepAlive, func(err error) {
			log.WithError(err).Warn("setting TCP keepalive on an accepted connection failed")
		})
		l = r.budgeted(t.name, l)
		if (t.name == "syslog" || t.name == "relp" || t.name == "http") && len(r.cfg.Allow) > 0 {
			l = &allowListener{Listener: l, allow: r.cfg.Allow, log: log}
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
	for _, t := range servers {
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
	r.runAvailability()
	r.log.WithField("addrs", r.addrString()).Info("region started")
	r.issue(context.Background(), "ZBR001I", r.cfg.Name, r.serverList())
	r.started.Store(true)
	if r.linux != nil {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.summarizeAgentsEvery()
		}()
	}
	if r.linux != nil && len(r.cfg.Linux) > 0 {
		r.linux.connect(r.cfg.Linux)
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.releaseAfterDials()
		}()
	}
	return nil
}

// serverList is ZBR001I's list of the servers that listen.
func (r *Region) serverList() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := ""
	for _, k := range serverNames {
		if a, ok := r.addrs[k]; ok {
			if s != "" {
				s += " "
			}
			s += strings.ToUpper(k) + "=" + a.String()
		}
	}
	if s == "" {
		s = "NONE"
	}
	return s
}

// serverNames are the names Addr knows, in the order they are listed.
var serverNames = []string{"syslog", "syslog-udp", "relp", "unsolmsg", "commands", "vmmon", "console", "http"}

// Stop asks the region's owner to stop it: Stopping is closed, and the
// owner (the zbridge command's serveRegion) calls Shutdown. reason says
// why, for ZBR002I: the first reason given is kept. The operator command
// P NAME calls it, where the client's roles grant the region command STOP.
func (r *Region) Stop(reason string) {
	r.stopOnce.Do(func() {
		r.stopReason = reason
		close(r.stopping)
	})
}

// Stopping is closed once Stop was called.
func (r *Region) Stopping() <-chan struct{} { return r.stopping }

func (r *Region) run(name string, l net.Listener, serve func(net.Listener) error) {
	r.log.WithField("component", name).Infof("listening on %s", l.Addr())
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		err := serve(l)
		if err != nil && !errors.Is(err, syslog.ErrServerClosed) && !errors.Is(err, session.ErrServerClosed) &&
			!errors.Is(err, http.ErrServerClosed) && !errors.Is(err, relp.ErrServerClosed) &&
			!errors.Is(err, console.ErrServerClosed) {
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
	for _, k := range serverNames {
		if a, ok := r.addrs[k]; ok {
			s += fmt.Sprintf("%s=%s ", k, a)
		}
	}
	return s
}

// Addr returns where a server listens: "syslog", "syslog-udp", "relp", "unsolmsg",
// "commands", "vmmon", "console" or "http"; nil when it is off.
func (r *Region) Addr(name string) net.Addr {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.addrs[name]
}

// Name returns the region's name.
func (r *Region) Name() string { return r.cfg.Name }

// Store returns the region's session store.
func (r *Region) Store() store.Store { return r.store }

// Err returns a channel that yields a server's failure.
func (r *Region) Err() <-chan error { return r.errc }

// Shutdown stops the region in order: SYSLOG drains what it has received
// into the store, COMMANDS lets commands in flight finish, UNSOLMSG sends
// subscribers what they are owed and ends their sessions, then HTTP stops,
// the agent connections close and the store closes. When ctx ends
// first, what is left is closed at once.
//
// It issues ZBR002I with the reason given to Stop ("SHUTDOWN" if none) and,
// once the servers have stopped and before the store closes, ZBR003I.
func (r *Region) Shutdown(ctx context.Context) error {
	r.Stop("SHUTDOWN")
	r.quitOnce.Do(func() { close(r.quit) })
	r.issue(ctx, "ZBR002I", r.cfg.Name, r.stopReason)
	serr := r.syslog.Shutdown(ctx)
	if serr != nil {
		r.syslog.Close() // out of time: stop the senders before the store closes
	}
	var rerr error
	if r.relp != nil {
		if rerr = r.relp.Shutdown(ctx); rerr != nil {
			r.relp.Close()
		}
	}
	errs := []error{
		serr, rerr, r.closeFloodAfter(ctx), // after the intake drained into it, before the store closes
		r.shutdownConsole(ctx), // its commands finish, as COMMANDS's do
		r.cmds.Shutdown(ctx),
		r.vmmon.Shutdown(ctx),
		r.unsol.Shutdown(ctx),
		r.http.Shutdown(ctx),
	}
	r.stopAvailability()
	r.wg.Wait()
	errs = append(errs, r.closeLinux()) // and the last summaries of its messages (ZBR207I, ZBR208E)
	r.issue(ctx, "ZBR003I", r.cfg.Name)
	r.closeShared()
	errs = append(errs, r.guard.close(), r.fds.Close())
	return errors.Join(errs...)
}

func (r *Region) shutdownConsole(ctx context.Context) error {
	if r.console == nil {
		return nil
	}
	if err := r.console.Shutdown(ctx); err != nil {
		r.console.Close()
		return err
	}
	return nil
}

// Close stops everything at once.
func (r *Region) Close() error {
	r.quitOnce.Do(func() { close(r.quit) })
	err := errors.Join(r.syslog.Close(), r.cmds.Close(), r.vmmon.Close(), r.unsol.Close(), r.http.Close())
	if r.relp != nil {
		err = errors.Join(err, r.relp.Close())
	}
	if r.console != nil {
		err = errors.Join(err, r.console.Close())
	}
	r.stopAvailability()
	r.wg.Wait()
	fctx, cancel := context.WithTimeout(context.Background(), floodCloseTimeout)
	err = errors.Join(err, r.closeFlood(fctx))
	cancel()
	r.closeLinux()
	r.closeShared()
	r.guard.close()
	r.fds.Close()
	return err
}
