package peer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// This file starts the highly available Redis set-ups: a Sentinel-watched
// master with replicas, and a Redis Cluster. Both are real redis-server
// and redis-sentinel processes on 127.0.0.1 ports of their own.

// SentinelMaster is the name under which [StartSentinel]'s Sentinels
// monitor the master.
const SentinelMaster = "zbridge"

// Timing of [StartSentinel]'s Sentinels: a master that does not answer for
// SentinelDownAfter is down, and a failover not done within
// SentinelFailoverTimeout is abandoned (and tried again, by any Sentinel,
// after twice that). A failover takes about 2-4 seconds with these.
const (
	SentinelDownAfter       = 1000 * time.Millisecond
	SentinelFailoverTimeout = 2000 * time.Millisecond
)

// haWait bounds the waits of this file for a set-up to settle: generous,
// for a loaded machine running -race.
const haWait = 30 * time.Second

// RedisNode is one redis-server of a [Sentinel] or [RedisCluster] set-up.
type RedisNode struct {
	Addr string
	P    *Process
}

// SentinelOptions configure [StartSentinel].
type SentinelOptions struct {
	// Replicas is how many replicas the master has: 1 or 2 (default 2, so
	// that after one failover the new master still has a replica).
	Replicas int
}

// Sentinel is a master, its replicas and three redis-sentinel processes
// monitoring it with quorum 2, as [StartSentinel] started them.
type Sentinel struct {
	t testing.TB
	// Name is the master's name for the Sentinels ([SentinelMaster]).
	Name string
	// Sentinels are the Sentinels' addresses.
	Sentinels []string
	// Nodes are the data nodes; Nodes[0] was the master at the start.
	Nodes []RedisNode
	// SentinelProcs are the redis-sentinel processes, as Sentinels.
	SentinelProcs []*Process
}

// StartSentinel starts a redis-server master with replicas (no
// persistence) and three Sentinels monitoring it (quorum 2, down after
// [SentinelDownAfter]), and waits until the replicas are in sync and every
// Sentinel knows the master, every replica and the two other Sentinels.
// Everything is stopped when the test ends. It skips the test, or fails
// it (see [Require]), when redis-server or redis-sentinel is missing.
func StartSentinel(t testing.TB, o SentinelOptions) *Sentinel {
	t.Helper()
	quietClientOnce.Do(func() { redis.SetLogger(quietClient{}) })
	server := Require(t, "redis-server")
	sentinel := Require(t, "redis-sentinel")
	if o.Replicas == 0 {
		o.Replicas = 2
	}
	if o.Replicas < 1 || o.Replicas > 2 {
		t.Fatalf("peer.StartSentinel: %d replicas, want 1 or 2", o.Replicas)
	}
	s := &Sentinel{t: t, Name: SentinelMaster}
	master := startRedisNode(t, server, "redis-master", "")
	s.Nodes = append(s.Nodes, master)
	for i := range o.Replicas {
		s.Nodes = append(s.Nodes, startRedisNode(t, server, fmt.Sprintf("redis-replica%d", i+1), master.Addr))
	}
	ctx, cancel := context.WithTimeout(t.Context(), haWait)
	defer cancel()
	if err := waitReplicas(ctx, master.Addr, o.Replicas); err != nil {
		t.Fatalf("peer.StartSentinel: replicas not in sync: %v", err)
	}

	// Each Sentinel is told its ID, the replicas and the other Sentinels,
	// which it would otherwise learn from the master and from their hello
	// messages on it within a few seconds.
	ports := make([]int, 3)
	ids := make([]string, 3)
	for i := range ports {
		ports[i] = FreePort(t)
		var b [20]byte
		if _, err := rand.Read(b[:]); err != nil {
			t.Fatal(err)
		}
		ids[i] = hex.EncodeToString(b[:])
	}
	host, port, _ := strings.Cut(master.Addr, ":")
	for i, sport := range ports {
		addr := Addr(sport)
		dir := t.TempDir()
		conf := filepath.Join(dir, "sentinel.conf")
		lines := []string{
			"bind " + Loopback,
			"port " + strconv.Itoa(sport),
			"protected-mode yes",
			"daemonize no",
			`logfile ""`,
			"dir " + dir,
			"sentinel myid " + ids[i],
			fmt.Sprintf("sentinel monitor %s %s %s 2", s.Name, host, port),
			fmt.Sprintf("sentinel down-after-milliseconds %s %d", s.Name, SentinelDownAfter.Milliseconds()),
			fmt.Sprintf("sentinel failover-timeout %s %d", s.Name, SentinelFailoverTimeout.Milliseconds()),
			fmt.Sprintf("sentinel parallel-syncs %s 2", s.Name),
		}
		for _, r := range s.Nodes[1:] {
			rh, rp, _ := strings.Cut(r.Addr, ":")
			lines = append(lines, fmt.Sprintf("sentinel known-replica %s %s %s", s.Name, rh, rp))
		}
		for k, other := range ports {
			if k != i {
				lines = append(lines, fmt.Sprintf("sentinel known-sentinel %s %s %d %s", s.Name, Loopback, other, ids[k]))
			}
		}
		// Sentinel rewrites its configuration file, so it is the test's own.
		if err := os.WriteFile(conf, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		p := Start(t, Command{
			Name:  fmt.Sprintf("redis-sentinel%d", i+1),
			Path:  sentinel,
			Args:  []string{conf},
			Dir:   dir,
			Ready: func(ctx context.Context) error { return RedisPing(ctx, addr) },
		})
		s.Sentinels = append(s.Sentinels, addr)
		s.SentinelProcs = append(s.SentinelProcs, p)
	}
	if err := poll(ctx, func(ctx context.Context) error { return s.settled(ctx, master.Addr, o.Replicas) }); err != nil {
		t.Fatalf("peer.StartSentinel: sentinels not settled after %v: %v", haWait, err)
	}
	return s
}

// startRedisNode starts a redis-server without persistence, a replica of
// master unless master is empty.
func startRedisNode(t testing.TB, path, name, master string, extra ...string) RedisNode {
	t.Helper()
	port := FreePort(t)
	addr := Addr(port)
	dir := t.TempDir()
	args := []string{
		"--bind", Loopback,
		"--port", strconv.Itoa(port),
		"--save", "",
		"--appendonly", "no",
		"--dir", dir,
		"--daemonize", "no",
		"--protected-mode", "yes",
		"--logfile", "",
		// A master sends its first full copy to replicas at once, not
		// after waiting 5 seconds for more to ask.
		"--repl-diskless-sync-delay", "0",
	}
	if master != "" {
		h, p, _ := strings.Cut(master, ":")
		args = append(args, "--replicaof", h, p)
	}
	args = append(args, extra...)
	p := Start(t, Command{
		Name:  name,
		Path:  path,
		Args:  args,
		Dir:   dir,
		Ready: func(ctx context.Context) error { return RedisPing(ctx, addr) },
	})
	return RedisNode{Addr: addr, P: p}
}

// URL returns the Redis URL of the set-up in the form the region's --redis
// takes: redis://SENTINEL,SENTINEL,SENTINEL?master=NAME, followed by
// options ("&min_replicas=1") if given.
func (s *Sentinel) URL(options ...string) string {
	u := "redis://" + strings.Join(s.Sentinels, ",") + "?master=" + s.Name
	for _, o := range options {
		u += "&" + o
	}
	return u
}

// Node returns the data node at addr, or nil.
func (s *Sentinel) Node(addr string) *RedisNode {
	for i := range s.Nodes {
		if s.Nodes[i].Addr == addr {
			return &s.Nodes[i]
		}
	}
	return nil
}

// MasterAddr returns the master's address as the Sentinels that answer
// agree on it, failing the test if they do not within a while.
func (s *Sentinel) MasterAddr() string {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(s.t.Context(), haWait)
	defer cancel()
	var addr string
	err := poll(ctx, func(ctx context.Context) error {
		var err error
		addr, err = s.agreedMaster(ctx)
		return err
	})
	if err != nil {
		s.t.Fatalf("peer: sentinel master: %v", err)
	}
	return addr
}

// KillMaster SIGKILLs the current master, as a crash would, and returns
// it. The Sentinels then promote a replica; [Sentinel.WaitFailover] waits
// for that.
func (s *Sentinel) KillMaster() RedisNode {
	s.t.Helper()
	addr := s.MasterAddr()
	n := s.Node(addr)
	if n == nil {
		s.t.Fatalf("peer: sentinels name master %s, not a node of the set-up", addr)
	}
	n.P.Kill()
	return *n
}

// WaitFailover waits until the Sentinels that run agree on a master other
// than old, that master says it is one, and every other data node that
// runs is its replica, online (streaming from it, maybe a little behind
// while clients write); and returns its address.
func (s *Sentinel) WaitFailover(old string) string {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(s.t.Context(), haWait)
	defer cancel()
	var addr string
	err := poll(ctx, func(ctx context.Context) error {
		var err error
		if addr, err = s.agreedMaster(ctx); err != nil {
			return err
		}
		if addr == old {
			return errors.New("sentinels still name the old master")
		}
		replicas := 0
		for _, n := range s.Nodes {
			if n.Addr != addr && n.P.Running() {
				replicas++
			}
		}
		return replicasOnline(ctx, addr, replicas, false)
	})
	if err != nil {
		s.t.Fatalf("peer: no failover from %s after %v: %v", old, haWait, err)
	}
	return addr
}

// agreedMaster asks each running Sentinel for the master's address and
// returns it if they all name the same one.
func (s *Sentinel) agreedMaster(ctx context.Context) (string, error) {
	var addrs []string
	for i, a := range s.Sentinels {
		if !s.SentinelProcs[i].Running() {
			continue
		}
		sc := sentinelClient(a)
		v, err := sc.GetMasterAddrByName(ctx, s.Name).Result()
		sc.Close()
		if err != nil {
			return "", fmt.Errorf("sentinel %s: %w", a, err)
		}
		if len(v) != 2 {
			return "", fmt.Errorf("sentinel %s: master address %q", a, v)
		}
		addrs = append(addrs, v[0]+":"+v[1])
	}
	if len(addrs) == 0 {
		return "", errors.New("no sentinel runs")
	}
	if len(slices.Compact(slices.Sorted(slices.Values(addrs)))) != 1 {
		return "", fmt.Errorf("sentinels disagree on the master: %v", addrs)
	}
	return addrs[0], nil
}

// settled reports whether every Sentinel names master, knows its replicas
// as up and the other two Sentinels, and can authorize a failover.
func (s *Sentinel) settled(ctx context.Context, master string, replicas int) error {
	for _, a := range s.Sentinels {
		sc := sentinelClient(a)
		err := func() error {
			defer sc.Close()
			v, err := sc.GetMasterAddrByName(ctx, s.Name).Result()
			if err != nil {
				return err
			}
			if len(v) != 2 || v[0]+":"+v[1] != master {
				return fmt.Errorf("names master %v, want %s", v, master)
			}
			rs, err := sc.Replicas(ctx, s.Name).Result()
			if err != nil {
				return err
			}
			up := 0
			for _, r := range rs {
				if r["flags"] == "slave" && r["master-link-status"] == "ok" {
					up++
				}
			}
			if up != replicas {
				return fmt.Errorf("knows %d replicas up, want %d: %v", up, replicas, rs)
			}
			ss, err := sc.Sentinels(ctx, s.Name).Result()
			if err != nil {
				return err
			}
			if len(ss) != len(s.Sentinels)-1 {
				return fmt.Errorf("knows %d other sentinels, want %d", len(ss), len(s.Sentinels)-1)
			}
			return sc.CkQuorum(ctx, s.Name).Err()
		}()
		if err != nil {
			return fmt.Errorf("sentinel %s: %w", a, err)
		}
	}
	return nil
}

func sentinelClient(addr string) *redis.SentinelClient {
	return redis.NewSentinelClient(&redis.Options{Addr: addr, Protocol: 2, MaxRetries: -1,
		DialTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second})
}

// nodeClient returns a client of one server, that does not retry.
func nodeClient(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, MaxRetries: -1, DisableIdentity: true,
		DialTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second})
}

// waitReplicas waits until the master at addr has n replicas online and
// caught up with it.
func waitReplicas(ctx context.Context, addr string, n int) error {
	return poll(ctx, func(ctx context.Context) error { return replicasOnline(ctx, addr, n, true) })
}

// replicasOnline checks once that the server at addr is a master with n
// replicas online, and with caughtUp each at the master's replication
// offset (which, while clients write, is seldom so).
func replicasOnline(ctx context.Context, addr string, n int, caughtUp bool) error {
	c := nodeClient(addr)
	defer c.Close()
	info, err := c.Info(ctx, "replication").Result()
	if err != nil {
		return err
	}
	f := infoFields(info)
	if f["role"] != "master" {
		return fmt.Errorf("%s: role %s", addr, f["role"])
	}
	if f["connected_slaves"] != strconv.Itoa(n) {
		return fmt.Errorf("%s: %s replicas connected, want %d", addr, f["connected_slaves"], n)
	}
	for i := range n {
		// slaveI:ip=127.0.0.1,port=P,state=online,offset=N,lag=0
		r := map[string]string{}
		for _, kv := range strings.Split(f["slave"+strconv.Itoa(i)], ",") {
			k, v, _ := strings.Cut(kv, "=")
			r[k] = v
		}
		if r["state"] != "online" || caughtUp && r["offset"] != f["master_repl_offset"] {
			return fmt.Errorf("%s: replica %d %v, master offset %s", addr, i, r, f["master_repl_offset"])
		}
	}
	return nil
}

// infoFields parses the "name:value" lines of an INFO reply.
func infoFields(info string) map[string]string {
	f := map[string]string{}
	for _, line := range strings.Split(info, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			f[k] = v
		}
	}
	return f
}

// poll calls check every 50ms until it returns nil or ctx ends, and then
// returns the last error.
func poll(ctx context.Context, check func(context.Context) error) error {
	for {
		probe, cancel := context.WithTimeout(ctx, 3*time.Second)
		err := check(probe)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// RedisClusterOptions configure [StartRedisCluster].
type RedisClusterOptions struct {
	// Replicas is how many replicas each master has: 0 (the default) or 1.
	Replicas int
}

// RedisCluster is a Redis Cluster of three masters, as [StartRedisCluster]
// started it.
type RedisCluster struct {
	// Nodes are the cluster's servers: the three masters first, then their
	// replicas if any (redis-cli pairs them).
	Nodes []RedisNode
	// Masters is how many of Nodes are masters (3).
	Masters int
}

// StartRedisCluster starts three redis-server masters, and o.Replicas
// replicas for each, with cluster-enabled yes (no persistence; each with
// its own cluster configuration file and bus port), joins them with
// `redis-cli --cluster create`, the 16384 slots shared among the masters,
// and waits until every node reports cluster_state:ok and knows all the
// others, and every master has its replicas online. Everything is stopped
// when the test ends. It skips the test, or fails it (see [Require]), when
// redis-server or redis-cli is missing.
func StartRedisCluster(t testing.TB, o RedisClusterOptions) *RedisCluster {
	t.Helper()
	quietClientOnce.Do(func() { redis.SetLogger(quietClient{}) })
	server := Require(t, "redis-server")
	cli := Require(t, "redis-cli")
	if o.Replicas < 0 || o.Replicas > 1 {
		t.Fatalf("peer.StartRedisCluster: %d replicas a master, want 0 or 1", o.Replicas)
	}
	c := &RedisCluster{Masters: 3}
	for i := range c.Masters * (1 + o.Replicas) {
		dir := t.TempDir()
		c.Nodes = append(c.Nodes, startRedisNode(t, server, fmt.Sprintf("redis-cluster%d", i+1), "",
			"--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(dir, "nodes.conf"),
			// The bus port defaults to the port + 10000, which may be
			// taken or in the ephemeral range.
			"--cluster-port", strconv.Itoa(FreePort(t)),
			"--cluster-node-timeout", "5000",
		))
	}
	ctx, cancel := context.WithTimeout(t.Context(), haWait)
	defer cancel()
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", strconv.Itoa(o.Replicas), "--cluster-yes")
	out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("peer.StartRedisCluster: redis-cli %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	err = poll(ctx, func(ctx context.Context) error {
		for _, n := range c.Nodes {
			rc := nodeClient(n.Addr)
			info, err := rc.ClusterInfo(ctx).Result()
			rc.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", n.Addr, err)
			}
			f := infoFields(info)
			if f["cluster_state"] != "ok" || f["cluster_known_nodes"] != strconv.Itoa(len(c.Nodes)) || f["cluster_slots_ok"] != "16384" {
				return fmt.Errorf("%s: cluster_state %s, %s nodes known, %s slots ok", n.Addr,
					f["cluster_state"], f["cluster_known_nodes"], f["cluster_slots_ok"])
			}
		}
		var masters, replicas []RedisNode
		for _, n := range c.Nodes {
			rc := nodeClient(n.Addr)
			info, err := rc.Info(ctx, "replication").Result()
			rc.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", n.Addr, err)
			}
			if infoFields(info)["role"] != "master" {
				replicas = append(replicas, n)
				continue
			}
			if err := replicasOnline(ctx, n.Addr, o.Replicas, false); err != nil {
				return err
			}
			masters = append(masters, n)
		}
		if len(masters) != c.Masters {
			return fmt.Errorf("%d masters, want %d", len(masters), c.Masters)
		}
		c.Nodes = append(masters, replicas...)
		return nil
	})
	if err != nil {
		t.Fatalf("peer.StartRedisCluster: not ready after %v: %v\nredis-cli said:\n%s", haWait, err, out)
	}
	return c
}

// Addrs returns the addresses of all the nodes.
func (c *RedisCluster) Addrs() []string {
	addrs := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		addrs[i] = n.Addr
	}
	return addrs
}

// URL returns the Redis URL of the cluster in the form the region's
// --redis takes: redis://NODE,NODE,NODE (several addresses make a Cluster
// URL), followed by options if given.
func (c *RedisCluster) URL(options ...string) string {
	u := "redis://" + strings.Join(c.Addrs(), ",")
	if len(options) > 0 {
		u += "?" + strings.Join(options, "&")
	}
	return u
}
