package peer

import (
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestSentinel: the Sentinels promote a replica when the master is killed,
// and a write the replicas acknowledged is on the new master; a failover
// client follows.
func TestSentinel(t *testing.T) {
	if testing.Short() {
		t.Skip("a failover takes seconds")
	}
	s := StartSentinel(t, SentinelOptions{})
	if len(s.Sentinels) != 3 || len(s.Nodes) != 3 {
		t.Fatalf("%d sentinels, %d nodes; want 3 and 3", len(s.Sentinels), len(s.Nodes))
	}
	first := s.MasterAddr()
	if first != s.Nodes[0].Addr {
		t.Fatalf("master %s, want %s", first, s.Nodes[0].Addr)
	}
	c := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: s.Name, SentinelAddrs: s.Sentinels})
	defer c.Close()
	ctx := t.Context()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	conn := c.Conn()
	if err := conn.Set(ctx, "k2", "v2", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := conn.Wait(ctx, 2, time.Second).Result(); err != nil || n != 2 {
		t.Fatalf("WAIT 2 = %d, %v", n, err)
	}
	conn.Close()

	start := time.Now()
	dead := s.KillMaster()
	if dead.Addr != first || dead.P.Running() {
		t.Fatalf("killed %s (running %v), want %s dead", dead.Addr, dead.P.Running(), first)
	}
	next := s.WaitFailover(first)
	t.Logf("failover from %s to %s in %v", first, next, time.Since(start).Round(time.Millisecond))
	if next == first || s.Node(next) == nil {
		t.Fatalf("new master %s", next)
	}
	deadline := time.Now().Add(haWait)
	for {
		v, err := c.Get(ctx, "k2").Result()
		if err == nil {
			if v != "v2" {
				t.Fatalf("GET k2 after failover = %q", v)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET k2 after failover: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := s.URL("min_replicas=1"); got != fmt.Sprintf("redis://%s,%s,%s?master=%s&min_replicas=1",
		s.Sentinels[0], s.Sentinels[1], s.Sentinels[2], SentinelMaster) {
		t.Errorf("URL = %q", got)
	}
}

// TestRedisCluster: three masters share the slots; a cluster client
// reaches every one of them.
func TestRedisCluster(t *testing.T) {
	rc := StartRedisCluster(t, RedisClusterOptions{})
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: rc.Addrs()})
	defer c.Close()
	ctx := t.Context()
	for i := range 30 {
		if err := c.Set(ctx, fmt.Sprint("key", i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range rc.Nodes {
		nc := nodeClient(n.Addr)
		size, err := nc.DBSize(ctx).Result()
		nc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if size == 0 {
			t.Errorf("node %s holds no key of 30", n.Addr)
		}
	}
	if got, want := rc.URL(), "redis://"+rc.Nodes[0].Addr+","+rc.Nodes[1].Addr+","+rc.Nodes[2].Addr; got != want {
		t.Errorf("URL = %q, want %q", got, want)
	}
}

// TestRedisClusterReplicas: with a replica each, three masters come first
// in Nodes and each has its replica online.
func TestRedisClusterReplicas(t *testing.T) {
	rc := StartRedisCluster(t, RedisClusterOptions{Replicas: 1})
	if len(rc.Nodes) != 6 || rc.Masters != 3 {
		t.Fatalf("%d nodes, %d masters", len(rc.Nodes), rc.Masters)
	}
	ctx := t.Context()
	for i, n := range rc.Nodes {
		c := nodeClient(n.Addr)
		info, err := c.Info(ctx, "replication").Result()
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
		f := infoFields(info)
		if want := map[bool]string{true: "master", false: "slave"}[i < rc.Masters]; f["role"] != want {
			t.Errorf("node %d %s: role %s, want %s", i, n.Addr, f["role"], want)
		}
	}
}
