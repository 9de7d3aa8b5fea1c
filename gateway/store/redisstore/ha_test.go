package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/zbridge/zbridge/gateway/store"
	"github.com/zbridge/zbridge/gateway/store/storetest"
	"github.com/zbridge/zbridge/internal/peer"
	"github.com/zbridge/zbridge/protocol"
)

// The tests of this file run the Store on a Sentinel set-up and on a Redis
// Cluster, both real (internal/peer).

// urlStore returns a client for url, as the region makes it (with context
// deadlines), and the Config for it with what the URL says applied.
func urlStore(t testing.TB, url string) (redis.UniversalClient, Config) {
	t.Helper()
	u, err := ParseURLConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	u.Client.ContextTimeoutEnabled = true
	c := redis.NewUniversalClient(u.Client)
	t.Cleanup(func() { c.Close() })
	cfg := Config{Client: c}
	u.Apply(&cfg)
	return c, cfg
}

// conformance runs the store suite with stores made from cfg, each with a
// prefix of its own, starting with name (on a Cluster, the prefixes spread
// over the nodes). rec, if not nil, records cfg.Client's commands for
// the log of a failed group test.
func conformance(t *testing.T, name string, cfg Config, rec *cmdRecorder) {
	var n atomic.Int64
	open := func(t *testing.T, prefix string, r storetest.Retention) store.Store {
		c := cfg
		c.Prefix = prefix
		c.MaxEvents, c.MaxBytes = r.MaxEvents, r.MaxBytes
		c.GroupTTL, c.GroupSweep = r.GroupTTL, 100*time.Millisecond
		c.Logger = testLogger(t)
		c.TailBlock = 100 * time.Millisecond
		s, err := New(c)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	storetest.Run(t, storetest.Options{
		ApproxTrim: true,
		New: func(t *testing.T, r storetest.Retention) store.Store {
			return open(t, fmt.Sprintf("%s%d", name, n.Add(1)), r)
		},
		Reopen: func(t *testing.T, s store.Store, r storetest.Retention) store.Store {
			prefix := s.(*Store).prefix
			s.Close()
			return open(t, prefix, r)
		},
		Describe: func(t *testing.T, s store.Store, group string, ids []protocol.ID) string {
			return describeGroup(t, s, group, ids, rec)
		},
	})
}

// TestConformanceSentinel runs the store suite through Sentinel, each
// append waiting for a replica (the default for a Sentinel URL).
func TestConformanceSentinel(t *testing.T) {
	sen := peer.StartSentinel(t, peer.SentinelOptions{})
	c, cfg := urlStore(t, sen.URL())
	rec := recordCommands(c)
	if cfg.MinReplicas != 1 {
		t.Fatalf("MinReplicas from a Sentinel URL = %d, want 1", cfg.MinReplicas)
	}
	if !isFailover(c) {
		t.Fatalf("client %T from a Sentinel URL is not a failover client", c)
	}
	conformance(t, "t", cfg, rec)
	t.Run("Replicated", func(t *testing.T) { checkReplicated(t, cfg, sen.Nodes[1:]) })
}

// checkReplicated appends with a Store made from cfg, which waits for one
// replica, and checks after each Append that one of replicas (in a Cluster,
// read with READONLY) has every event.
func checkReplicated(t *testing.T, cfg Config, replicas []peer.RedisNode) {
	cfg.Prefix = "replicated"
	cfg.Logger = testLogger(t)
	s := newStore(t, cfg)
	ctx := ctxT(t)
	clients := make([]*redis.Client, len(replicas))
	for i, n := range replicas {
		clients[i] = redis.NewClient(&redis.Options{Addr: n.Addr, MaxRetries: -1})
		defer clients[i].Close()
	}
	key := Key(cfg.Prefix, "events")
	for i := range 20 {
		if err := s.Append(ctx, storetest.Events(fmt.Sprint("w", i), 50)); err != nil {
			t.Fatal(err)
		}
		if h := s.Health(); h.Degraded {
			t.Fatalf("health %+v", h)
		}
		var most int64
		for _, c := range clients {
			conn := c.Conn()
			conn.ReadOnly(ctx) // a Cluster replica answers reads only then
			n, err := conn.XLen(ctx, key).Result()
			conn.Close()
			if err == nil {
				most = max(most, n)
			}
		}
		if want := int64(50 * (i + 1)); most != want {
			t.Fatalf("after append %d the replicas have at most %d events, want %d", i, most, want)
		}
	}
}

// TestConformanceCluster runs the store suite on a Redis Cluster of three
// masters with a replica each, the stores' prefixes in slots of every
// master: as a Cluster URL has it by default, appends not waiting for
// replicas, and with min_replicas=1, each append waiting (WAIT) on the
// master of its prefix's slot.
func TestConformanceCluster(t *testing.T) {
	rc := peer.StartRedisCluster(t, peer.RedisClusterOptions{Replicas: 1})
	for _, tc := range []struct {
		option      string
		minReplicas int
	}{
		{"", 0},
		{"min_replicas=1", 1},
	} {
		t.Run("min_replicas="+strconv.Itoa(tc.minReplicas), func(t *testing.T) {
			var opts []string
			if tc.option != "" {
				opts = append(opts, tc.option)
			}
			c, cfg := urlStore(t, rc.URL(opts...))
			rec := recordCommands(c)
			if _, ok := c.(*redis.ClusterClient); !ok {
				t.Fatalf("client %T from a Cluster URL", c)
			}
			if cfg.MinReplicas != tc.minReplicas {
				t.Fatalf("MinReplicas from %s = %d, want %d", rc.URL(opts...), cfg.MinReplicas, tc.minReplicas)
			}
			conformance(t, fmt.Sprintf("r%d.", tc.minReplicas), cfg, rec)
			if tc.minReplicas > 0 {
				t.Run("Replicated", func(t *testing.T) { checkReplicated(t, cfg, rc.Nodes[rc.Masters:]) })
			}
		})
	}
}

// appender appends batches of 10 events to s in a loop, as a region
// relaying syslog does, and keeps those Append accepted.
type appender struct {
	stop    chan struct{}
	stopped chan struct{}

	mu   sync.Mutex // guards the following fields
	done []*protocol.Event
	errs []error
}

func startAppender(ctx context.Context, s *Store, prefix string) *appender {
	a := &appender{stop: make(chan struct{}), stopped: make(chan struct{})}
	go func() {
		defer close(a.stopped)
		for i := 0; ; i++ {
			select {
			case <-a.stop:
				return
			default:
			}
			evs := storetest.Events(fmt.Sprint(prefix, i), 10)
			err := s.Append(ctx, evs)
			a.mu.Lock()
			if err != nil {
				a.errs = append(a.errs, err)
			} else {
				a.done = append(a.done, evs...)
			}
			a.mu.Unlock()
			time.Sleep(time.Millisecond)
		}
	}()
	return a
}

func (a *appender) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.done)
}

// end stops the appender and returns the events appended and the errors.
func (a *appender) end() ([]*protocol.Event, []error) {
	select {
	case <-a.stop:
	default:
		close(a.stop)
	}
	<-a.stopped
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.done, a.errs
}

// sameTexts fails the test unless got are the events want, by their texts,
// once each and in order, their IDs rising.
func sameTexts(t *testing.T, what string, got, want []*protocol.Event) {
	t.Helper()
	for i := range min(len(got), len(want)) {
		if got[i].Text != want[i].Text {
			t.Fatalf("%s: event %d is %q (%v), want %q", what, i, got[i].Text, got[i].ID, want[i].Text)
		}
		if i > 0 && !got[i-1].ID.Less(got[i].ID) {
			t.Fatalf("%s: IDs out of order at %d: %v then %v", what, i, got[i-1].ID, got[i].ID)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%s: %d events, want %d", what, len(got), len(want))
	}
}

// firstSeen returns evs without the events whose text came before, and how
// many it left out: a live reader may receive an event again after a
// failover (at least once), but never out of order.
func firstSeen(evs []*protocol.Event) ([]*protocol.Event, int) {
	seen := make(map[string]bool, len(evs))
	var out []*protocol.Event
	for _, e := range evs {
		if !seen[e.Text] {
			seen[e.Text] = true
			out = append(out, e)
		}
	}
	return out, len(evs) - len(out)
}

// TestSentinelFailover: appends run on while the master is SIGKILLed and
// Sentinel promotes a replica. Every append that returned nil is in the
// stream on the new master once, in order, and a live reader received
// every one, in order.
func TestSentinelFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("a failover takes seconds")
	}
	sen := peer.StartSentinel(t, peer.SentinelOptions{})
	_, cfg := urlStore(t, sen.URL())
	cfg.Prefix = "ha"
	cfg.TailBlock = 200 * time.Millisecond
	s := newStore(t, cfg)
	ctx := ctxT(t)
	live := followNew(t, ctx, s)
	a := startAppender(ctx, s, "f")
	defer a.end()

	waitFor(t, "appends before the failover", 10*time.Second, func() bool { return a.count() >= 500 })
	start := time.Now()
	old := sen.KillMaster()
	atKill := a.count()
	next := sen.WaitFailover(old.Addr)
	t.Logf("master %s killed after %d events; sentinels promoted %s in %v", old.Addr, atKill, next, time.Since(start).Round(time.Millisecond))
	waitFor(t, "the store to write its buffer to the new master", 30*time.Second, func() bool {
		h := s.Health()
		return !h.Degraded && h.Buffered == 0
	})
	t.Logf("store recovered %v after the kill", time.Since(start).Round(time.Millisecond))
	atUp := a.count()
	waitFor(t, "appends after the failover", 10*time.Second, func() bool { return a.count() >= atUp+500 })
	all, errs := a.end()
	if len(errs) > 0 {
		t.Fatalf("%d appends failed, the first: %v", len(errs), errs[0])
	}
	h, k := s.Health(), s.Counters()
	t.Logf("appended %d events (%d during the failover); health %+v; counters %+v", len(all), atUp-atKill, h, k)
	if h.Dropped != 0 {
		t.Errorf("health %+v: events dropped", h)
	}

	// The new master holds every event once, in order: read directly, and
	// through a new Store (a region starting now).
	direct := redis.NewClient(&redis.Options{Addr: next})
	defer direct.Close()
	sameTexts(t, "new master", streamEvents(t, direct, cfg.Prefix), all)
	_, cfg2 := urlStore(t, sen.URL())
	cfg2.Prefix = cfg.Prefix
	fresh := newStore(t, cfg2)
	got, gap, err := fresh.Read(ctx, protocol.ID{}, 0, nil)
	if err != nil || gap.Missed {
		t.Fatalf("fresh store Read = %v, gap %+v", err, gap)
	}
	sameTexts(t, "fresh store", got, all)

	last := all[len(all)-1].Text
	waitFor(t, "the live reader to catch up", 10*time.Second, func() bool {
		got, err := live.events()
		return err != nil || len(got) > 0 && got[len(got)-1].Text == last
	})
	seen, err := live.events()
	if err != nil {
		t.Fatalf("live reader: %v", err)
	}
	first, again := firstSeen(seen)
	t.Logf("live reader: %d events, %d of them again after the failover", len(seen), again)
	for i := range min(len(first), len(all)) {
		if first[i].Text != all[i].Text {
			t.Fatalf("live reader: event %d is %q, want %q", i, first[i].Text, all[i].Text)
		}
	}
	if len(first) != len(all) {
		t.Fatalf("live reader: %d distinct events, want %d", len(first), len(all))
	}
}

// TestMinReplicas: with MinReplicas 1 and no replica, appends are kept in
// the write buffer (the Store degraded, its reason the replicas) and
// written once a replica has them; each is in the stream once.
func TestMinReplicas(t *testing.T) {
	srv := startServer(t, peer.RedisOptions{})
	c := srv.client(t, func(o *redis.UniversalOptions) { o.ContextTimeoutEnabled = true })
	prefix := srv.prefix()
	s := newStore(t, Config{Client: c, Prefix: prefix, MinReplicas: 1, ReplicaTimeout: 100 * time.Millisecond,
		TailBlock: 100 * time.Millisecond})
	ctx := ctxT(t)
	live := followNew(t, ctx, s)
	var all []*protocol.Event
	for i := range 5 {
		evs := storetest.Events(fmt.Sprint("r", i), 3)
		if err := s.Append(ctx, evs); err != nil {
			t.Fatalf("Append without a replica: %v", err)
		}
		all = append(all, evs...)
	}
	h := s.Health()
	if !h.Degraded || h.Buffered == 0 || !strings.Contains(h.Reason, "replicas") {
		t.Fatalf("health without a replica = %+v, want degraded for want of replicas, events buffered", h)
	}

	// A replica comes: the buffer is written, and the Store is itself again.
	replica, _ := peer.StartRedis(t)
	rc := redis.NewClient(&redis.Options{Addr: replica})
	defer rc.Close()
	// The master sends its first copy at once, not after 5 seconds.
	if err := c.ConfigSet(ctx, "repl-diskless-sync-delay", "0").Err(); err != nil {
		t.Fatal(err)
	}
	host, port, _ := strings.Cut(srv.addr, ":")
	if err := rc.SlaveOf(ctx, host, port).Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the store to write its buffer", 30*time.Second, func() bool {
		h := s.Health()
		return !h.Degraded && h.Buffered == 0
	})
	more := storetest.Events("after", 3)
	if err := s.Append(ctx, more); err != nil {
		t.Fatal(err)
	}
	// (A replica that has just loaded its first copy may be slow to
	// acknowledge on a loaded machine: the append may then go through
	// the buffer too.)
	waitFor(t, "the store to write the last append", 30*time.Second, func() bool {
		h := s.Health()
		return !h.Degraded && h.Buffered == 0
	})
	all = append(all, more...)
	sameTexts(t, "redis", streamEvents(t, c, prefix), all)
	waitFor(t, "the replica to have every event", 10*time.Second, func() bool {
		msgs, err := rc.XLen(ctx, Key(prefix, "events")).Result()
		return err == nil && msgs == int64(len(all))
	})
	waitFor(t, "the live reader", 10*time.Second, func() bool {
		got, err := live.events()
		return err != nil || len(got) >= len(all)
	})
	got, err := live.events()
	if err != nil {
		t.Fatal(err)
	}
	first, _ := firstSeen(got)
	// Known limit (doc.go, "Replicas"): a batch that Redis took but whose
	// WAIT failed as the Store went degraded is found written when it
	// recovers, under IDs a live reader may already have passed. Those,
	// and only those, a live reader may miss; Redis has them (checked
	// above), and a durable subscription resuming from its position gets
	// them.
	reconciled := int(s.Counters().Reconciled)
	if len(first) < len(all)-reconciled || len(first) > len(all) {
		t.Fatalf("live reader: %d distinct events, want %d (%d found already written after the outage)",
			len(first), len(all), reconciled)
	}
	if len(first) < len(all) {
		t.Logf("live reader missed %d of the %d events found already written after the outage (the known limit)",
			len(all)-len(first), reconciled)
	}
}
