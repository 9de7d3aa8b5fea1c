package region

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/zbridge/zbridge/commands"
	"github.com/zbridge/zbridge/gateway/agentssh"
	"github.com/zbridge/zbridge/gateway/cluster"
	"github.com/zbridge/zbridge/gateway/metrics"
	"github.com/zbridge/zbridge/gateway/store"
	"github.com/zbridge/zbridge/gateway/store/redisstore"
	"github.com/zbridge/zbridge/gateway/vmmon"
)

// This file wires the region to Redis: the Redis store, and the cluster
// (region announcements, the agent registry, commands forwarded to the
// region that holds their target).

// openRedis builds the Redis client, store and cluster for cfg.RedisURL.
func (r *Region) openRedis() error {
	if r.cfg.ClusterKeyFile == "" {
		return errors.New("region: --redis needs --cluster-key-file: regions sharing Redis sign what they forward to each other with it, so that writing to Redis is not a way to run commands (make one with: umask 077; head -c 32 /dev/urandom | base64 > cluster.key)")
	}
	key, err := cluster.LoadKey(r.cfg.ClusterKeyFile)
	if err != nil {
		return fmt.Errorf("region: --cluster-key-file: %w", err)
	}
	r.clusterKey = key
	u, err := redisstore.ParseURLConfig(r.cfg.RedisURL)
	if err != nil {
		return fmt.Errorf("region: --redis: %w", err)
	}
	opts := u.Client
	if r.cfg.RedisPasswordFile != "" {
		b, err := os.ReadFile(r.cfg.RedisPasswordFile)
		if err != nil {
			return fmt.Errorf("region: Redis password: %w", err)
		}
		opts.Password = strings.TrimRight(string(b), "\r\n")
	}
	// Honour context deadlines on socket reads, so that a Redis that hangs
	// (rather than refusing) cannot hold a caller past its deadline.
	opts.ContextTimeoutEnabled = true
	if opts.PoolSize == 0 {
		// Each command forwarded to another region holds a connection
		// while it waits for output, besides the store's own traffic.
		opts.PoolSize = 64
	}
	r.redis = redis.NewUniversalClient(opts)
	sc := redisstore.Config{
		Client:    r.redis,
		Prefix:    r.cfg.RedisPrefix,
		MaxEvents: r.cfg.MaxEvents,
		MaxBytes:  r.cfg.MaxBytes,
		MaxAge:    r.cfg.MaxAge,
		Logger:    r.log.WithField("component", "redis"),
	}
	u.Apply(&sc) // min_replicas, replica_timeout
	st, err := redisstore.New(sc)
	if err != nil {
		r.redis.Close()
		return fmt.Errorf("region: %w", err)
	}
	r.store = st
	return nil
}

// openCluster starts announcing the region and its agents and serving
// commands forwarded to it; it needs the router and the listeners' addresses.
func (r *Region) openCluster() error {
	addr := func(name string) string {
		if a := r.Addr(name); a != nil {
			return a.String()
		}
		return ""
	}
	c, err := cluster.New(cluster.Config{
		Key:         r.clusterKey,
		Client:      r.redis,
		Prefix:      r.cfg.RedisPrefix,
		Region:      r.cfg.Name,
		Addrs:       cluster.Addrs{Commands: addr("commands"), UnsolMsg: addr("unsolmsg"), HTTP: addr("http")},
		TTL:         r.cfg.PeerTTL,
		LocalAgents: r.clusterAgents,
		Run:         r.guard.runForwarded,
		Logger:      r.log.WithField("component", "cluster"),
	})
	if err != nil {
		return fmt.Errorf("region: %w", err)
	}
	r.cluster = c
	c.Start()
	return nil
}

// executors returns the command executors by target kind: with Redis,
// Linux and z/VM targets held by another region are forwarded to it.
func (r *Region) executors() map[commands.Kind]commands.Executor {
	execs := map[commands.Kind]commands.Executor{commands.KindRegion: operator{r}, commands.KindZVM: r.vmmon}
	if r.linux != nil {
		execs[commands.KindLinux] = r.linux
	}
	if r.redis == nil {
		return execs
	}
	var linux commands.Executor = notConnected{}
	if r.linux != nil {
		linux = r.linux
	}
	// The cluster starts after the listeners open; the executors route
	// through it once it exists.
	execs[commands.KindLinux] = &routed{r: r, kind: commands.KindLinux, local: linux, has: r.hasLinux}
	execs[commands.KindZVM] = &routed{r: r, kind: commands.KindZVM, local: r.vmmon, has: r.hasZVM}
	return execs
}

// routed runs a command here when this region holds its target, and
// forwards it through the cluster otherwise.
type routed struct {
	r     *Region
	kind  commands.Kind
	local commands.Executor
	has   func(commands.Target) bool
}

func (x *routed) Run(ctx context.Context, req *commands.Request, out func(commands.Output)) (commands.Result, error) {
	c := x.r.clusterOrNil()
	if c == nil {
		return x.local.Run(ctx, req, out)
	}
	return c.Executor(x.kind, x.local, x.has).Run(ctx, req, out)
}

func (r *Region) clusterOrNil() *cluster.Cluster {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cluster
}

// notConnected is the Linux executor of a region without an SSH key.
type notConnected struct{}

func (notConnected) Run(ctx context.Context, req *commands.Request, out func(commands.Output)) (commands.Result, error) {
	return commands.Result{}, &commands.Error{Code: commands.CodeNotConnected,
		Message: fmt.Sprintf("%s: this region has no SSH key for Linux agents (--ssh-key) and no other region holds it", req.Target)}
}

// hasLinux reports whether this region holds a session to the target.
func (r *Region) hasLinux(t commands.Target) bool {
	if r.linux == nil {
		return false
	}
	for _, h := range r.linux.pool.Hosts() {
		if h.State != agentssh.StateConnected {
			continue
		}
		if t.Addr.IsValid() {
			host, _, err := net.SplitHostPort(h.Addr)
			if err != nil {
				continue
			}
			if a, err := netip.ParseAddr(host); err == nil && a.Unmap() == t.Addr {
				return true
			}
			continue
		}
		if strings.EqualFold(h.Name, t.Name) {
			return true
		}
	}
	return false
}

func (r *Region) hasZVM(t commands.Target) bool {
	for _, s := range r.vmmon.Systems() {
		if strings.EqualFold(s.Name, t.Name) {
			return true
		}
	}
	return false
}

// agentsChanged issues ZBR201I or ZBR202E for a z/VM agent that came or
// went, and tells the other regions at once.
func (r *Region) agentsChanged(ch vmmon.Change) {
	if ch.Connected {
		r.issue(context.Background(), "ZBR201I", ch.System, ch.Remote, quoteName(ch.Client))
	} else {
		r.issue(context.Background(), "ZBR202E", ch.System, ch.Reason)
	}
	if c := r.clusterOrNil(); c != nil {
		c.Touch()
	}
}

// clusterAgents lists the agents this region holds, for the registry.
func (r *Region) clusterAgents() []cluster.Agent {
	var out []cluster.Agent
	for _, a := range r.Agents() {
		if a.State == StateRefused {
			continue // a refused claim is shown locally, never announced
		}
		if a.Kind != "zvm" && !a.Static && a.State != agentssh.StateConnected.String() {
			continue // a learned name is announced only while its system answers
		}
		kind := commands.KindLinux
		if a.Kind == "zvm" {
			kind = commands.KindZVM
		}
		out = append(out, cluster.Agent{Kind: kind, Name: a.Name, Addr: a.Addr, State: a.State, Since: a.Since, Detail: a.Detail,
			Static: a.Static})
	}
	return out
}

// health reports the store's and the cluster's condition: degraded, with
// the reasons, when Redis cannot be reached.
func (r *Region) health() (degraded bool, reasons []string, sh store.Health) {
	if hr, ok := r.store.(store.HealthReporter); ok {
		sh = hr.Health()
		if sh.Degraded {
			degraded = true
			reasons = append(reasons, "store: "+sh.Reason)
		}
	}
	if c := r.clusterOrNil(); c != nil {
		if err := c.Health(); err != nil {
			degraded = true
			reasons = append(reasons, "cluster: "+err.Error())
		}
	}
	return degraded, reasons, sh
}

func (r *Region) registerSharedMetrics() {
	reg := r.reg
	reg.NewGaugeFunc("zbridge_degraded", "1 when the region runs degraded (Redis unreachable), else 0.", func() float64 {
		if d, _, _ := r.health(); d {
			return 1
		}
		return 0
	})
	if r.redis != nil {
		reg.NewCounterFunc("zbridge_cluster_rejected_entries_total",
			"Entries in Redis streams refused because their cluster-key signature did not verify, or they were stale or replayed.",
			func() float64 {
				if c := r.clusterOrNil(); c != nil {
					return float64(c.RejectedEntries())
				}
				return 0
			})
	}
	if _, ok := r.store.(store.HealthReporter); ok {
		reg.NewGaugeFunc("zbridge_store_buffered_events", "Events accepted while Redis was unreachable and not yet written to it.",
			func() float64 { _, _, h := r.health(); return float64(h.Buffered) })
		reg.NewCounterFunc("zbridge_store_dropped_events_total", "Events dropped because the buffer for an unreachable Redis was full.",
			func() float64 { _, _, h := r.health(); return float64(h.Dropped) })
	}
	if r.redis == nil {
		return
	}
	if rs, ok := r.store.(*redisstore.Store); ok {
		reg.NewCounterFunc("zbridge_store_renumbered_events_total",
			"Events buffered while Redis was unreachable that Redis took only under a new ID (another region wrote meanwhile).",
			func() float64 { return float64(rs.Counters().Fallbacks) })
		reg.NewCounterFunc("zbridge_store_tail_behind_total",
			"Times retention removed events before this region fetched them (its live subscribers were told of a gap).",
			func() float64 { return float64(rs.Counters().Behind) })
	}
	stat := func(f func(cluster.Stats) uint64) func() float64 {
		return func() float64 {
			if c := r.clusterOrNil(); c != nil {
				return float64(f(c.Stats()))
			}
			return 0
		}
	}
	reg.NewCounterFunc("zbridge_commands_forwarded_total", "Commands forwarded to the region holding their target.",
		stat(func(s cluster.Stats) uint64 { return s.ForwardedOut }))
	reg.NewCounterFunc("zbridge_commands_run_for_peers_total", "Commands run for another region.",
		stat(func(s cluster.Stats) uint64 { return s.ForwardedIn }))
	reg.NewCounterFunc("zbridge_peers_lost_total", "Times a peer region stopped announcing itself.",
		stat(func(s cluster.Stats) uint64 { return s.PeersLost }))
	reg.Collect("zbridge_peer_regions", "Regions sharing the Redis, by liveness.", metrics.TypeGauge, []string{"state"}, func(emit func(float64, ...string)) {
		c := r.clusterOrNil()
		if c == nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		regions, err := c.Regions(ctx)
		if err != nil {
			return
		}
		alive, dead := 0, 0
		for _, x := range regions {
			if x.Alive {
				alive++
			} else {
				dead++
			}
		}
		emit(float64(alive), "alive")
		emit(float64(dead), "dead")
	})
}
