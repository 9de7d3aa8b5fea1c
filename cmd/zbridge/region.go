//go:build !lean

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/gateway/flood"
	"github.com/zbridge/zbridge/gateway/region"
	"github.com/zbridge/zbridge/gateway/session"
	"github.com/zbridge/zbridge/gateway/store/diskstore"
	"github.com/zbridge/zbridge/gateway/syslog"
	"github.com/zbridge/zbridge/gateway/trust"
)

// prefixList is a flag of comma-separated CIDRs, repeatable.
type prefixList []netip.Prefix

func (p *prefixList) String() string {
	var s []string
	for _, x := range *p {
		s = append(s, x.String())
	}
	return strings.Join(s, ",")
}

func (p *prefixList) Set(v string) error {
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if !strings.Contains(part, "/") {
			a, err := netip.ParseAddr(part)
			if err != nil {
				return err
			}
			*p = append(*p, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		pr, err := netip.ParsePrefix(part)
		if err != nil {
			return err
		}
		*p = append(*p, pr.Masked())
	}
	return nil
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

type regionFlags struct {
	cfg             region.Config
	dataDir         optionalString
	sync            string
	configFile      string
	allow           prefixList
	linux           stringList
	logLevel        string
	logFormat       string
	shutdownTimeout time.Duration
	timeFields      stringList
	hardcopyTZ      string
}

func (f *regionFlags) register(fs *flag.FlagSet) {
	c := &f.cfg
	fs.StringVar(&c.Name, "name", "ZBRIDGE", "region name")
	fs.StringVar(&c.SyslogTCP, "syslog", defaultSyslog, "SYSLOG TCP address (TLS when --tls-cert is set); empty: off")
	fs.StringVar(&c.SyslogUDP, "syslog-udp", defaultSyslog, "SYSLOG UDP address; empty: off")
	fs.StringVar(&c.RELP, "relp", "", "SYSLOG over RELP (rsyslog omrelp; TLS when --tls-cert is set): each message acknowledged once the store has synced it to disk (with --data-dir \"\" once it is in memory; with --redis once Redis has it); empty: off")
	fs.StringVar(&c.UnsolMsg, "unsolmsg", defaultUnsolMsg, "UNSOLMSG address; empty: off")
	fs.StringVar(&c.Commands, "commands", defaultCommands, "COMMANDS address; empty: off")
	fs.StringVar(&c.VMMon, "vmmon", defaultVMMon, "VMMON address (z/VM agents); empty: off")
	fs.StringVar(&c.Console, "console", "", "3270 operator console address (TN3270; TLS when --tls-cert is set; x3270 host:port, or L:host:port with TLS): operators log on with a client name and secret, roles granting ports = [\"console\"]; empty: off")
	fs.StringVar(&c.HTTP, "http", defaultHTTP, "HTTP address for /healthz and /metrics; empty: off")
	fs.StringVar(&c.SSHKeyFile, "ssh-key", "", "the region's SSH private key for Linux agents (OpenSSH format); without it linux: targets are unreachable")
	fs.StringVar(&c.KnownHostsFile, "known-hosts", "", "known_hosts file pinning the agents' host keys (OpenSSH format)")
	fs.BoolVar(&c.AcceptNewHostKeys, "accept-new-host-keys", false, "record the host key of an agent not yet in --known-hosts (a changed key is always refused)")
	fs.StringVar(&c.SSHUser, "ssh-user", "zbridge", "user name the region logs on to agents and sshd as")
	fs.Var(&f.linux, "linux", "a static Linux target NAME=HOST:PORT (repeatable)")
	fs.IntVar(&c.AgentPort, "agent-port", region.DefaultAgentPort, "the port every Linux agent listens on")
	fs.IntVar(&c.Learn.MaxNames, "max-learned", region.DefaultMaxLearned, "Linux target names learned from syslog senders at most (negative: learn none)")
	fs.IntVar(&c.Learn.MaxNamesPerAddr, "max-names-per-addr", region.DefaultMaxNamesPerAddr, "names one syslog sender address may claim at most")
	fs.DurationVar(&c.Learn.TTL, "learn-ttl", region.DefaultLearnTTL, "a learned name unused this long is forgotten (and may then be claimed from another address)")
	fs.DurationVar(&c.CommandTimeout, "command-timeout", 60*time.Second, "a command's timeout when its request gives none")
	fs.IntVar(&c.MaxPerTarget, "max-per-target", 8, "commands in flight to one target at most")
	fs.IntVar(&c.MaxPerSession, "max-per-session", 16, "commands in flight per COMMANDS session at most")
	fs.StringVar(&f.configFile, "config", "", "region config file (TOML): clients, roles and any of these flags in [region] (a flag given here overrides the file); reread on SIGHUP and REFRESH")
	fs.StringVar(&c.ClientsFile, "clients", "", "file of named clients with hashed secrets (see 'zbridge passwd'); clients (here or in --config) are required off loopback")
	fs.StringVar(&c.AuditLog, "audit-log", "", "append-only audit log (JSON lines): every command, refused logon and refused subscription; reopened on SIGHUP")
	fs.StringVar(&c.SyslogClientCA, "syslog-client-ca", "", "PEM CA file: SYSLOG over TLS requires client certificates issued by it")
	fs.Var(&f.allow, "allow", "networks (CIDR, comma-separated, repeatable) that may send SYSLOG and reach HTTP; required off loopback")
	fs.StringVar(&c.TLSCertFile, "tls-cert", "", "PEM certificate: every TCP listener speaks TLS 1.2/1.3")
	fs.StringVar(&c.TLSKeyFile, "tls-key", "", "PEM private key for --tls-cert")
	fs.IntVar(&c.MaxEvents, "max-events", 1_000_000, "events kept for resuming subscribers")
	fs.Int64Var(&c.MaxBytes, "max-bytes", 512<<20, "bytes of events kept for resuming subscribers (estimate)")
	fs.Var(&f.dataDir, "data-dir", "keep the embedded store on disk here (default $STATE_DIRECTORY/NAME, else $XDG_STATE_HOME/zbridge/NAME, else ~/.local/state/zbridge/NAME); \"\": in memory only, lost on restart; unused with --redis")
	fs.StringVar(&f.sync, "sync", string(diskstore.DefaultSync), "when the on-disk store syncs: batch (fsync at least every 100 ms, and before RELP and VMMON acknowledge), always (before every write returns), os (the kernel decides)")
	fs.IntVar(&c.Session.MaxSessions, "max-sessions", 100, "sessions at most, on UNSOLMSG and on COMMANDS each")
	fs.IntVar(&c.AgentDials, "agent-dials", 0, "SSH connection attempts to Linux agents in progress at once (0: 1024, or an eighth of the descriptor limit when less); the others wait their turn")
	fs.DurationVar(&c.AgentKeepAlive, "agent-keepalive", 0, "check each Linux agent connection this often, with an SSH keepalive when it was silent as long, for an agent connected but hung (0: 5m; negative: never); a dead host or path is found 3.5m after it last sent anything, by TCP keepalive")
	fs.IntVar(&c.FDReserve, "fd-reserve", 0, "file descriptors below the limit (ulimit -n) that accepted connections may not take; past it a connection is refused with the reason (0: a fiftieth of the limit, 16 to 1024; -1: none)")
	fs.DurationVar(&c.Session.Heartbeat, "heartbeat", 30*time.Second, "heartbeat interval granted when a client asks for none")
	fs.DurationVar(&c.Session.IdleTimeout, "idle-timeout", 0, "end a session silent this long (0: three heartbeats)")
	fs.DurationVar(&c.Session.Lifetime, "session-lifetime", 0, "end sessions this long after logon (0: never)")
	fs.DurationVar(&c.Session.WriteTimeout, "write-timeout", 30*time.Second, "end a session whose client reads nothing this long")
	fs.IntVar(&c.SyslogMaxFrame, "syslog-max-frame", 200000, "largest syslog message in bytes (64 MiB at most)")
	fs.IntVar(&c.SyslogMaxSessions, "syslog-max-sessions", 200, "SYSLOG TCP connections at most")
	fs.IntVar(&c.SyslogMaxSessionsPerAddr, "syslog-max-sessions-per-addr", syslog.DefaultMaxSessionsPerAddr, "SYSLOG TCP connections from one address at most")
	fs.IntVar(&c.Session.MaxPerAddr, "max-per-addr", session.DefaultMaxPerAddr, "connections from one address at most, on UNSOLMSG, COMMANDS and VMMON each (logged on or waiting to)")
	fs.DurationVar(&c.SyslogReadTimeout, "syslog-read-timeout", 5*time.Minute, "close a SYSLOG connection silent this long")
	fs.DurationVar(&c.SyslogCoalesce, "syslog-coalesce", syslog.DefaultCoalesce, "once caught up with a SYSLOG TCP or TLS sender, read its connection again only this long after the last read, so that what it sends meanwhile is taken as one batch (at most 20ms; 0: read as messages come)")
	fs.Float64Var(&c.Flood.Rate, "flood-rate", flood.DefaultRate, "flood control: syslog events a second one source (sender address and claimed host) may send sustained; more are held back and summarised (ZBR101E); 0: no per-source limit (with --flood-msgid-rate 0: flood control off)")
	fs.IntVar(&c.Flood.Burst, "flood-burst", flood.DefaultBurst, "flood control: events one source may send at once beyond --flood-rate")
	fs.Float64Var(&c.Flood.MsgIDRate, "flood-msgid-rate", flood.DefaultMsgIDRate, "flood control: events a second one message ID (MSGID, else APP-NAME) of one source may send sustained; 0: no per-message-ID limit")
	fs.IntVar(&c.Flood.MsgIDBurst, "flood-msgid-burst", flood.DefaultMsgIDBurst, "flood control: events one message ID of one source may send at once")
	fs.Float64Var(&c.Flood.AddrRate, "flood-addr-rate", flood.DefaultAddrRate, "flood control: events a second all the sources of one sender address may send together, sustained, whatever host names it claims; 0: no per-address limit")
	fs.IntVar(&c.Flood.AddrBurst, "flood-addr-burst", flood.DefaultAddrBurst, "flood control: events all the sources of one sender address may send at once")
	fs.DurationVar(&c.Flood.Interval, "flood-interval", flood.DefaultInterval, "flood control: how often a source that had events held back gets a summary event")
	fs.IntVar(&c.Flood.MaxHostsPerAddr, "flood-hosts-per-addr", flood.DefaultMaxHostsPerAddr, "flood control: host names one sender address (an IPv6 address: its /64) has buckets for; its further names share one")
	fs.IntVar(&c.Flood.MaxSources, "flood-max-sources", flood.DefaultMaxSources, "flood control: sources tracked at most (bounds its memory; when full, shared out among the addresses)")
	fs.Var(&f.timeFields, "time-field", "sd.ID.PARAM=KIND: take an event's time from this structured-data parameter, read as KIND (stck, stcke, filetime, unix, unix-s, unix-ms, unix-us, unix-ns, julian, rfc3339, auto); repeatable, the first present wins")
	fs.DurationVar(&c.TODLeapSeconds, "tod-leap-seconds", 0, "the leap-second offset (CVTLSO) of STCK/STCKE values in --time-field parameters, e.g. 27s for a TOD clock that counts leap seconds")
	fs.BoolVar(&c.Hardcopy, "hardcopy", true, "read a syslog message whose text is a z/OS hardcopy log line (z/OS syslogd forwarding SYSLOG/OPERLOG) into its message ID, system, time and text")
	fs.StringVar(&f.hardcopyTZ, "hardcopy-tz", "UTC", "the time zone of the z/OS systems' hardcopy log times (an IANA name such as Europe/Berlin)")
	fs.StringVar(&c.ReportDir, "report-dir", "", "with the availability ledger on: write each day's availability report (availability-YYYY-MM-DD.txt, .csv, .html; mode 0600) here a minute after midnight UTC, and at start the previous day's if it is missing")
	fs.BoolVar(&c.Availability, "availability", true, "run the availability ledger when the config file has an [availability] table (with --redis: on one region only)")
	fs.StringVar(&c.RedisURL, "redis", "", "keep session state in Redis: redis[s]://[user@]host:port[,host:port...][/db][?master=NAME|cluster=1][&min_replicas=N][&replica_timeout=D]; regions sharing it share events, subscriptions, agents and commands; with master= (Sentinel) an event counts as stored once min_replicas (default 1) replicas have it (default: the embedded store)")
	fs.StringVar(&c.RedisPasswordFile, "redis-password-file", "", "file holding the Redis password (kept out of the command line)")
	fs.StringVar(&c.ClusterKeyFile, "cluster-key-file", "", "with --redis: the key (a file of 32 or more bytes, mode 0600) every region sharing Redis signs forwarded commands with; make one with: umask 077; head -c 32 /dev/urandom | base64 > cluster.key")
	fs.StringVar(&c.RedisPrefix, "redis-prefix", "zbridge", "prefix of every Redis key (one Cluster hash tag)")
	fs.DurationVar(&c.MaxAge, "max-age", 0, "events received longer ago than this are trimmed (0: by count and bytes only)")
	fs.DurationVar(&c.PeerTTL, "peer-ttl", 15*time.Second, "with --redis: a region, and its agents, not heard of for this long is taken for dead")
	fs.DurationVar(&c.GroupClaimAfter, "group-claim-after", 30*time.Second, "a consumer-group member's unacknowledged events go to another member after this long")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	fs.DurationVar(&f.shutdownTimeout, "shutdown-timeout", 10*time.Second, "time to drain on SIGINT/SIGTERM")
}

// finish moves what the flags gathered into the config.
func (f *regionFlags) finish(log logrus.FieldLogger) error {
	f.cfg.Allow = f.allow
	f.cfg.Logger = log
	f.cfg.CommandsSession = f.cfg.Session
	for _, s := range f.linux {
		t, err := region.ParseLinuxTarget(s, f.cfg.AgentPort)
		if err != nil {
			return err
		}
		f.cfg.Linux = append(f.cfg.Linux, t)
	}
	if f.cfg.SSHKeyFile != "" && f.cfg.KnownHostsFile == "" {
		return errors.New("--ssh-key needs --known-hosts (host keys are always checked)")
	}
	for _, tf := range f.timeFields {
		field, err := region.ParseTimeField(tf)
		if err != nil {
			return fmt.Errorf("--time-field: %w", err)
		}
		f.cfg.TimeFields = append(f.cfg.TimeFields, field)
	}
	loc, err := time.LoadLocation(f.hardcopyTZ)
	if err != nil {
		return fmt.Errorf("--hardcopy-tz: %w", err)
	}
	f.cfg.HardcopyLocation = loc
	switch {
	case f.cfg.SyslogCoalesce == 0:
		f.cfg.SyslogCoalesce = -1 // the flag's 0 is none; the region's zero, the default
	case f.cfg.SyslogCoalesce < 0 || f.cfg.SyslogCoalesce > syslog.MaxCoalesce:
		return fmt.Errorf("--syslog-coalesce %v: from 0 to %v", f.cfg.SyslogCoalesce, syslog.MaxCoalesce)
	}
	sync, err := diskstore.ParseSyncPolicy(f.sync)
	if err != nil {
		return fmt.Errorf("--sync: %w", err)
	}
	f.cfg.Sync = sync
	f.cfg.DataDir = f.dataDir.value
	if !f.dataDir.set && f.cfg.RedisURL == "" {
		if f.cfg.DataDir, err = defaultDataDir(f.cfg.Name, os.Getenv); err != nil {
			return err
		}
	}
	return nil
}

// optionalString is a string flag that knows whether it was given (an
// empty value is a choice, not the default).
type optionalString struct {
	value string
	set   bool
}

func (o *optionalString) String() string     { return o.value }
func (o *optionalString) Set(v string) error { o.value, o.set = v, true; return nil }

// defaultDataDir is where a region named name keeps its store when
// --data-dir is not given: under systemd's StateDirectory= when the
// region runs as such a service, else under the XDG state directory.
func defaultDataDir(name string, getenv func(string) string) (string, error) {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`) {
		return "", fmt.Errorf("region name %q cannot name a data directory: give --data-dir", name)
	}
	if d, _, _ := strings.Cut(getenv("STATE_DIRECTORY"), ":"); d != "" {
		return filepath.Join(d, name), nil
	}
	if d := getenv("XDG_STATE_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "zbridge", name), nil
	}
	home := getenv("HOME")
	if home == "" {
		return "", errors.New("no $HOME for the default data directory: give --data-dir")
	}
	return filepath.Join(home, ".local", "state", "zbridge", name), nil
}

func newLogger(level, format string, w io.Writer) (*logrus.Logger, error) {
	l := logrus.New()
	l.SetOutput(w)
	lv, err := logrus.ParseLevel(level)
	if err != nil {
		return nil, err
	}
	l.SetLevel(lv)
	switch format {
	case "json":
		l.SetFormatter(&logrus.JSONFormatter{})
	case "text":
		l.SetFormatter(&logrus.TextFormatter{FullTimestamp: true, DisableColors: true})
	default:
		return nil, fmt.Errorf("unknown log format %q (text, json)", format)
	}
	return l, nil
}

func runRegion(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("zbridge region", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f regionFlags
	f.register(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "zbridge region: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if err := applyConfigFile(fs, f.configFile); err != nil {
		fmt.Fprintln(stderr, "zbridge region:", err)
		return 2
	}
	f.cfg.ConfigFile = f.configFile
	log, err := newLogger(f.logLevel, f.logFormat, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "zbridge region:", err)
		return 2
	}
	if err := f.finish(log); err != nil {
		fmt.Fprintln(stderr, "zbridge region:", err)
		return 2
	}
	// go-redis logs its connection failures on its own; the region reports
	// Redis trouble itself (degraded, with the reason), so these go to the
	// debug level.
	redis.SetLogger(redisLogger{log.WithField("component", "go-redis")})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	if err := serveRegion(ctx, f.cfg, f.shutdownTimeout, func(r *region.Region) { go refreshOnHUP(ctx, r, hup) }); err != nil {
		fmt.Fprintln(stderr, "zbridge region:", err)
		return 1
	}
	return 0
}

// refreshOnHUP refreshes the region on each SIGHUP until ctx ends (the
// region logs what it did).
func refreshOnHUP(ctx context.Context, r *region.Region, hup <-chan os.Signal) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			r.Refresh("SIGHUP")
		}
	}
}

// applyConfigFile sets every flag that the [region] table of the config
// file names and the command line did not set. A value may be a string,
// number, boolean or duration string; an array sets a repeatable flag once
// per element.
func applyConfigFile(fs *flag.FlagSet, path string) error {
	if path == "" {
		return nil
	}
	file, err := trust.ReadFile(path)
	if err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	keys := make([]string, 0, len(file.Region))
	for k := range file.Region {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == "config" || fs.Lookup(k) == nil {
			return fmt.Errorf("config file %s: [region] %s is not a region flag", path, k)
		}
		if set[k] {
			continue // the command line wins
		}
		vals := []any{file.Region[k]}
		if arr, ok := file.Region[k].([]any); ok {
			vals = arr
		}
		for _, v := range vals {
			var s string
			switch v := v.(type) {
			case string:
				s = v
			case int64, float64, bool:
				s = fmt.Sprint(v)
			default:
				return fmt.Errorf("config file %s: [region] %s: a %T is not a flag value", path, k, v)
			}
			if err := fs.Set(k, s); err != nil {
				return fmt.Errorf("config file %s: [region] %s = %q: %w", path, k, s, err)
			}
		}
	}
	return nil
}

// redisLogger passes go-redis's log lines to logrus at debug level.
type redisLogger struct{ log logrus.FieldLogger }

func (l redisLogger) Printf(_ context.Context, format string, v ...any) { l.log.Debugf(format, v...) }

// stopReason names what ended ctx for ZBR002I: the signal, from
// signal.NotifyContext's cause ("terminated signal received"), else
// SHUTDOWN.
func stopReason(ctx context.Context) string {
	c := context.Cause(ctx)
	if c == nil {
		return "SHUTDOWN"
	}
	for _, s := range []struct {
		sig  syscall.Signal
		name string
	}{{syscall.SIGTERM, "SIGTERM"}, {syscall.SIGINT, "SIGINT"}} {
		if c.Error() == s.sig.String()+" signal received" {
			return s.name
		}
	}
	return "SHUTDOWN"
}

// serveRegion runs a region until ctx ends, or an operator stops it (P
// NAME), then shuts it down within
// timeout. started, when set, is called once the listeners are open.
func serveRegion(ctx context.Context, cfg region.Config, timeout time.Duration, started func(*region.Region)) error {
	region.TuneGC(cfg.MaxBytes)
	r, err := region.New(cfg)
	if err != nil {
		return err
	}
	if err := r.Start(); err != nil {
		return err
	}
	if started != nil {
		started(r)
	}
	var failed error
	select {
	case <-ctx.Done():
		r.Stop(stopReason(ctx))
	case <-r.Stopping(): // P NAME from an operator
	case failed = <-r.Err():
		r.Stop("FAILURE: " + failed.Error())
	}
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err = r.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("shutdown did not finish within %v: %w", timeout, err)
	}
	return errors.Join(failed, err)
}
