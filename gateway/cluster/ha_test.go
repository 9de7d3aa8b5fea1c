package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/zbridge/zbridge/commands"
	"github.com/zbridge/zbridge/gateway/cluster"
	"github.com/zbridge/zbridge/internal/peer"
)

// The tests of this file run regions on a real Redis Cluster and through
// real Sentinels (internal/peer), as the other tests do on one server.

// forwardBothWays checks that B's command for A's target, and A's for B's,
// are forwarded and answered, by name and by address, several at once.
func forwardBothWays(t *testing.T, a, b *region) {
	t.Helper()
	for _, tc := range []struct {
		from, to *region
		target   string
		rc       int
	}{
		{b, a, "linux:web1", 3},
		{b, a, "linux:ADDR=10.1.0.1", 0},
		{a, b, "linux:web2", 255},
	} {
		cmd := fmt.Sprintf("echo rc=%d from %s to %s", tc.rc, tc.from.name, tc.target)
		got := tc.from.run(t.Context(), t, &commands.Request{Target: mustTarget(t, tc.target), Command: cmd})
		if got.err != nil || got.res.RC != tc.rc {
			t.Fatalf("%s to %s: %+v, %v", tc.from.name, tc.target, got.res, got.err)
		}
		if want := echoOutput(tc.to.name, cmd); !outputEqual(got.out, want) {
			t.Errorf("%s to %s: output\n%s\nwant\n%s", tc.from.name, tc.target, fmtOutput(got.out), fmtOutput(want))
		}
	}
	var chans []<-chan result
	for i := range 8 {
		chans = append(chans, b.runAsync(t.Context(), &commands.Request{Target: mustTarget(t, "linux:web1"),
			Command: fmt.Sprintf("echo rc=%d n", i)}))
	}
	for i, ch := range chans {
		if got := await(t, ch); got.err != nil || got.res.RC != i {
			t.Errorf("command %d: %+v, %v", i, got.res, got.err)
		}
	}
}

// TestRedisCluster: two regions on a three-master Redis Cluster announce
// themselves and their agents, forward commands both ways, cancel a
// forwarded command, and see a region that closes go. Two prefixes, in
// different slots, keep two installations apart on the same Cluster.
func TestRedisCluster(t *testing.T) {
	rc := peer.StartRedisCluster(t, peer.RedisClusterOptions{})
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: rc.Addrs(), ContextTimeoutEnabled: true,
		DialTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second})
	t.Cleanup(func() { rdb.Close() })
	a, b := twoRegions(t, rdb)

	t.Run("forward", func(t *testing.T) { forwardBothWays(t, a, b) })
	t.Run("cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		ch := b.runAsync(ctx, &commands.Request{Target: mustTarget(t, "linux:web1"), Command: "block"})
		id := waitID(t, a.exec.started, "A's command started")
		cancel()
		wantError(t, await(t, ch).err, commands.CodeCancelled)
		if ended := waitID(t, a.exec.ended, "A's command saw its context end"); ended != id {
			t.Errorf("ended %s, want %s", ended, id)
		}
	})
	t.Run("listings", func(t *testing.T) {
		regions, err := a.c.Regions(t.Context())
		if err != nil || len(regions) != 2 || !regions[0].Alive || !regions[1].Alive {
			t.Fatalf("Regions = %+v, %v", regions, err)
		}
		agents, err := b.c.Agents(t.Context())
		if err != nil || len(agents) != 3 {
			t.Fatalf("Agents = %+v, %v", agents, err)
		}
	})
	t.Run("other prefix", func(t *testing.T) {
		// Another installation's regions, whose prefix is in a slot of
		// another master, neither see nor are seen by A and B.
		prefix := otherMaster(t, rdb, "zbridge")
		newRegion(t, rdb, "C", []cluster.Agent{linux("web9", "10.9.0.9:7022")}, regionOpts{prefix: prefix})
		d := newRegion(t, rdb, "D", nil, regionOpts{prefix: prefix})
		waitHolder(t, d, "linux:web9", "C")
		got := d.run(t.Context(), t, &commands.Request{Target: mustTarget(t, "linux:web9"), Command: "echo rc=2 other"})
		if got.err != nil || got.res.RC != 2 {
			t.Fatalf("D to C: %+v, %v", got.res, got.err)
		}
		if _, ok, err := a.c.Lookup(t.Context(), mustTarget(t, "linux:web9")); ok || err != nil {
			t.Errorf("A finds C's agent: %v, %v", ok, err)
		}
		regions, err := d.c.Regions(t.Context())
		if err != nil || len(regions) != 2 || regions[0].Name != "C" || regions[1].Name != "D" {
			t.Errorf("D's Regions = %+v, %v", regions, err)
		}
	})
	t.Run("close", func(t *testing.T) {
		b.close(t)
		waitFor(t, "B gone", func() error {
			regions, err := a.c.Regions(t.Context())
			if err != nil || len(regions) != 2 || regions[1].Alive {
				return fmt.Errorf("Regions = %+v, %v", regions, err)
			}
			return nil
		})
	})
}

// otherMaster returns a prefix whose keys a master other than the one of
// prefix's keys holds.
func otherMaster(t *testing.T, rdb *redis.ClusterClient, prefix string) string {
	t.Helper()
	master := func(p string) string {
		c, err := rdb.MasterForKey(t.Context(), "{"+p+"}:x")
		if err != nil {
			t.Fatal(err)
		}
		return c.Options().Addr
	}
	first := master(prefix)
	for i := range 100 {
		if p := fmt.Sprint("site", i); master(p) != first {
			return p
		}
	}
	t.Fatal("no prefix on another master")
	return ""
}

// TestSentinelFailover: two regions through Sentinel forward commands, the
// master is killed, and once Sentinel has promoted a replica they forward
// commands again (their blocking reads of the inboxes moved to the new
// master); a command in flight during the failover fails, promptly.
func TestSentinelFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("a failover takes seconds")
	}
	sen := peer.StartSentinel(t, peer.SentinelOptions{})
	rdb := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: sen.Name, SentinelAddrs: sen.Sentinels,
		ContextTimeoutEnabled: true, DialTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second})
	t.Cleanup(func() { rdb.Close() })
	a, b := twoRegions(t, rdb)
	forwardBothWays(t, a, b)

	ch := b.runAsync(t.Context(), &commands.Request{Target: mustTarget(t, "linux:web1"), Command: "block", Timeout: 10 * time.Minute})
	waitID(t, a.exec.started, "A's command started")
	start := time.Now()
	old := sen.KillMaster()
	got := await(t, ch)
	ce := wantError(t, got.err, commands.CodeFailed)
	if !strings.Contains(ce.Message, "cross-region routing unavailable") {
		t.Errorf("message %q", ce.Message)
	}
	waitID(t, a.exec.ended, "A's command saw its context end")
	next := sen.WaitFailover(old.Addr)
	t.Logf("failover from %s to %s in %v", old.Addr, next, time.Since(start).Round(time.Millisecond))

	waitFor(t, "B healthy again", b.c.Health)
	waitFor(t, "A healthy again", a.c.Health)
	waitHolder(t, b, "linux:web1", "A")
	waitHolder(t, a, "linux:web2", "B")
	forwardBothWays(t, a, b)
	t.Logf("forwarding again %v after the kill", time.Since(start).Round(time.Millisecond))
}

// TestRedisBackWithKeys: the client cancels a forwarded command while
// Redis is away, and Redis comes back with its data, as after a Sentinel
// failover: the forwarder, which could not delete the command key when it
// gave up, deletes it then, and the holder stops the run.
func TestRedisBackWithKeys(t *testing.T) {
	addr, proc := peer.StartRedisOpts(t, peer.RedisOptions{AppendOnly: true})
	rdb := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true,
		DialTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second})
	t.Cleanup(func() { rdb.Close() })
	a, b := twoRegions(t, rdb)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ch := b.runAsync(ctx, &commands.Request{Target: mustTarget(t, "linux:web1"), Command: "block", Timeout: 10 * time.Minute})
	id := waitID(t, a.exec.started, "A's command started")
	proc.Stop() // SIGTERM: the append-only file keeps the command key
	cancel()
	wantError(t, await(t, ch).err, commands.CodeCancelled)
	proc.Restart()
	if ended := waitID(t, a.exec.ended, "A's command saw its context end"); ended != id {
		t.Errorf("ended %s, want %s", ended, id)
	}
	const deleted = "deleted the keys of forwarded commands given up while redis was unreachable; their holders stop them"
	waitFor(t, "B deletes the command key", func() error {
		if b.hook.count(deleted, "<nil>") == 0 {
			return errors.New("not logged")
		}
		keys, err := rdb.Keys(t.Context(), "{zbridge}:command:*").Result()
		if err != nil || len(keys) != 0 {
			return fmt.Errorf("keys %q, %v", keys, err)
		}
		return nil
	})
}
