package redisstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/gateway/store"
	"github.com/zbridge/zbridge/gateway/store/storetest"
	"github.com/zbridge/zbridge/internal/peer"
	"github.com/zbridge/zbridge/protocol"
)

// testLogger logs to the test's log.
func testLogger(t testing.TB) logrus.FieldLogger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	l.AddHook(&logHook{t: t})
	l.SetLevel(logrus.DebugLevel)
	return l
}

// logHook writes log entries to the test log while the test runs.
type logHook struct {
	mu   sync.Mutex // guards done
	t    testing.TB
	done bool
}

func (h *logHook) Levels() []logrus.Level { return logrus.AllLevels }

func (h *logHook) Fire(e *logrus.Entry) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.done {
		line, _ := e.String()
		h.t.Log(strings.TrimSpace(line))
	}
	return nil
}

// server is a redis-server for one test, and clients of it.
type server struct {
	addr string
	p    *peer.Process
	n    atomic.Int64 // prefixes given out
}

func startServer(t testing.TB, o peer.RedisOptions) *server {
	t.Helper()
	addr, p := peer.StartRedisOpts(t, o)
	return &server{addr: addr, p: p}
}

// client returns a client of the server, closed when the test ends. The
// options, if any, change the client's.
func (srv *server) client(t testing.TB, opts ...func(*redis.UniversalOptions)) redis.UniversalClient {
	t.Helper()
	o, err := ParseURL("redis://" + srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range opts {
		f(o)
	}
	c := redis.NewUniversalClient(o)
	t.Cleanup(func() { c.Close() })
	return c
}

// prefix returns a key prefix no other store of this server has used.
func (srv *server) prefix() string { return fmt.Sprintf("t%d", srv.n.Add(1)) }

// newStore returns a Store closed when the test ends.
func newStore(t testing.TB, cfg Config) *Store {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	srv := startServer(t, peer.RedisOptions{})
	// The region's client honours context deadlines; go-redis's default
	// does not.
	for _, deadlines := range []bool{true, false} {
		t.Run(fmt.Sprint("ContextTimeoutEnabled=", deadlines), func(t *testing.T) {
			c := srv.client(t, func(o *redis.UniversalOptions) { o.ContextTimeoutEnabled = deadlines })
			storetest.Run(t, storetest.Options{
				ApproxTrim: true,
				New: func(t *testing.T, r storetest.Retention) store.Store {
					s, err := New(Config{Client: c, Prefix: srv.prefix(), MaxEvents: r.MaxEvents, MaxBytes: r.MaxBytes,
						GroupTTL: r.GroupTTL, GroupSweep: 100 * time.Millisecond,
						Logger: testLogger(t), TailBlock: 100 * time.Millisecond})
					if err != nil {
						t.Fatal(err)
					}
					return s
				},
				Reopen: func(t *testing.T, s store.Store, r storetest.Retention) store.Store {
					prefix := s.(*Store).prefix
					s.Close()
					n, err := New(Config{Client: c, Prefix: prefix, MaxEvents: r.MaxEvents, MaxBytes: r.MaxBytes,
						GroupTTL: r.GroupTTL, GroupSweep: 100 * time.Millisecond,
						Logger: testLogger(t), TailBlock: 100 * time.Millisecond})
					if err != nil {
						t.Fatal(err)
					}
					return n
				},
				Describe: func(t *testing.T, s store.Store, group string, ids []protocol.ID) string {
					return describeGroup(t, s, group, ids, nil)
				},
			})
		})
	}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// reader follows a store like a subscriber: Read from the cursor, Wait
// when there is nothing new.
type reader struct {
	mu   sync.Mutex // guards the following fields
	got  []*protocol.Event
	gaps []store.Gap
	err  error
	done chan struct{}
}

func follow(ctx context.Context, s *Store, after protocol.ID) *reader {
	r := &reader{done: make(chan struct{})}
	go func() {
		defer close(r.done)
		var buf []*protocol.Event
		for {
			var gap store.Gap
			var err error
			buf, gap, err = s.Read(ctx, after, 100, buf[:0])
			if err == nil && gap.Missed {
				r.mu.Lock()
				r.gaps = append(r.gaps, gap)
				r.mu.Unlock()
			}
			if err == nil && len(buf) == 0 {
				err = s.Wait(ctx, after)
			}
			if err != nil {
				if ctx.Err() == nil {
					r.mu.Lock()
					r.err = err
					r.mu.Unlock()
				}
				return
			}
			r.mu.Lock()
			r.got = append(r.got, buf...)
			r.mu.Unlock()
			if len(buf) > 0 {
				after = buf[len(buf)-1].ID
			}
		}
	}()
	return r
}

// events returns what the reader got so far, and an error if it stopped
// or was told of a gap.
func (r *reader) events() ([]*protocol.Event, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	err := r.err
	if err == nil && len(r.gaps) > 0 {
		err = fmt.Errorf("told of gaps %+v", r.gaps)
	}
	return append([]*protocol.Event(nil), r.got...), err
}

// gapCount returns how many times the reader was told of a gap.
func (r *reader) gapCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.gaps)
}

// streamEvents reads the whole stream with c, not through a Store.
func streamEvents(t *testing.T, c redis.UniversalClient, prefix string) []*protocol.Event {
	t.Helper()
	msgs, err := c.XRange(ctxT(t), Key(prefix, "events"), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	s := &Store{}
	out := make([]*protocol.Event, len(msgs))
	for i, m := range msgs {
		out[i] = s.decode(m)
		if !out[i].Parsed && out[i].ParseError != "" {
			t.Fatalf("entry %s: %s", m.ID, out[i].ParseError)
		}
	}
	return out
}

// TestRedisDown: Redis killed or stopped while a region appends. The store
// goes degraded and accepts appends with provisional IDs that a live reader
// receives from the cache; once Redis is back (with its append-only file)
// every event is in the stream once, in order, with the ID the reader saw.
func TestRedisDown(t *testing.T) {
	for _, how := range []struct {
		name string
		stop func(*peer.Process)
	}{
		{"kill", (*peer.Process).Kill},
		{"stop", (*peer.Process).Stop},
	} {
		t.Run(how.name, func(t *testing.T) {
			o := startOutage(t, 200*time.Millisecond)
			srv, c, prefix, s := o.srv, o.c, o.prefix, o.s
			ctx := ctxT(t)
			live := followNew(t, ctx, s)

			var (
				mu       sync.Mutex // guards appended, appendErr
				appended []*protocol.Event
				appendEr error
				stop     = make(chan struct{})
				stopped  = make(chan struct{})
			)
			count := func() int {
				mu.Lock()
				defer mu.Unlock()
				return len(appended)
			}
			go func() {
				defer close(stopped)
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					evs := storetest.Events(fmt.Sprint("b", i), 10)
					err := s.Append(ctx, evs)
					mu.Lock()
					if err != nil {
						appendEr = err
						mu.Unlock()
						return
					}
					appended = append(appended, evs...)
					mu.Unlock()
					time.Sleep(time.Millisecond)
				}
			}()
			defer func() { close(stop); <-stopped }()

			waitFor(t, "appends while redis is up", 10*time.Second, func() bool { return count() >= 500 })
			how.stop(srv.p)
			waitFor(t, "the store to notice", 30*time.Second, func() bool { return s.Health().Degraded })
			t.Logf("degraded: %+v", s.Health())
			atDown := count()
			waitFor(t, "appends while redis is down", 30*time.Second, func() bool { return count() >= atDown+500 })
			if h := s.Health(); !h.Degraded || h.Buffered == 0 {
				t.Fatalf("after appends with redis down: %+v, want degraded with events buffered", h)
			}
			mu.Lock()
			newest := appended[len(appended)-1].ID
			mu.Unlock()
			waitFor(t, "the live reader to get the buffered events", 10*time.Second, func() bool {
				got, err := live.events()
				return err != nil || len(got) > 0 && !got[len(got)-1].ID.Less(newest)
			})
			if _, err := live.events(); err != nil {
				t.Fatalf("live reader while redis is down: %v", err)
			}

			srv.p.Restart()
			waitFor(t, "the store to recover", 60*time.Second, func() bool {
				h := s.Health()
				return !h.Degraded && h.Buffered == 0
			})
			atUp := count()
			waitFor(t, "appends after redis is back", 10*time.Second, func() bool { return count() >= atUp+300 })
			close(stop)
			<-stopped
			stop = make(chan struct{}) // for the deferred close

			mu.Lock()
			all := appended
			err := appendEr
			mu.Unlock()
			if err != nil {
				t.Fatalf("Append: %v", err)
			}
			last := all[len(all)-1].ID
			waitFor(t, "the live reader to catch up", 10*time.Second, func() bool {
				got, err := live.events()
				return err != nil || len(got) > 0 && !got[len(got)-1].ID.Less(last)
			})
			got, err := live.events()
			if err != nil {
				t.Fatalf("live reader: %v", err)
			}
			k := s.Counters()
			h := s.Health()
			t.Logf("appended %d events (%d while redis was down); health %+v; counters %+v", len(all), atUp-atDown, h, k)
			if h.Dropped != 0 || h.Degraded || k.Fallbacks != 0 {
				t.Errorf("health %+v, counters %+v: want nothing dropped, no new IDs", h, k)
			}
			sameEvents(t, "live reader", got, all, 0)
			sameEvents(t, "redis", streamEvents(t, c, prefix), all, int(k.Reconciled))
		})
	}
}

// outageSetup is what the tests that take Redis away start from.
type outageSetup struct {
	srv    *server
	c      redis.UniversalClient
	prefix string
	s      *Store
}

// startOutage starts a redis-server with an append-only file (it keeps
// what it acknowledged across Kill and Restart), a client with context
// deadlines, and a Store with the given tail block.
func startOutage(t *testing.T, tailBlock time.Duration) outageSetup {
	t.Helper()
	srv := startServer(t, peer.RedisOptions{AppendOnly: true})
	c := srv.client(t, func(o *redis.UniversalOptions) { o.ContextTimeoutEnabled = true })
	prefix := srv.prefix()
	return outageSetup{srv: srv, c: c, prefix: prefix, s: newStore(t, Config{Client: c, Prefix: prefix, TailBlock: tailBlock})}
}

// followNew follows s from its newest event now.
func followNew(t *testing.T, ctx context.Context, s *Store) *reader {
	t.Helper()
	st, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return follow(ctx, s, st.Last)
}

// sameEvents fails the test unless got are the events want, in order, with
// their IDs; except that up to reconciled IDs may differ.
func sameEvents(t *testing.T, what string, got, want []*protocol.Event, reconciled int) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d events, want %d", what, len(got), len(want))
	}
	differ := 0
	for i := range min(len(got), len(want)) {
		if got[i].Text != want[i].Text {
			t.Fatalf("%s: event %d is %q (%v), want %q (%v)", what, i, got[i].Text, got[i].ID, want[i].Text, want[i].ID)
		}
		if got[i].ID != want[i].ID {
			if differ++; differ > reconciled {
				t.Fatalf("%s: event %d (%q) has ID %v, want %v", what, i, got[i].Text, got[i].ID, want[i].ID)
			}
		}
		if i > 0 && !got[i-1].ID.Less(got[i].ID) {
			t.Fatalf("%s: IDs out of order at %d: %v then %v", what, i, got[i-1].ID, got[i].ID)
		}
	}
}

// TestStartDegraded: a Store made while Redis is down starts degraded,
// serves its live readers from the cache, and writes everything once Redis
// is up.
func TestStartDegraded(t *testing.T) {
	srv := startServer(t, peer.RedisOptions{AppendOnly: true})
	c := srv.client(t, func(o *redis.UniversalOptions) { o.DialerRetries = 1 })
	prefix := srv.prefix()
	// Something in the stream from before, as a region restart would find.
	before := newStore(t, Config{Client: c, Prefix: prefix})
	old := storetest.Events("old", 5)
	if err := before.Append(ctxT(t), old); err != nil {
		t.Fatal(err)
	}
	before.Close()
	srv.p.Stop()

	s := newStore(t, Config{Client: c, Prefix: prefix, TailBlock: 200 * time.Millisecond})
	if h := s.Health(); !h.Degraded {
		t.Fatalf("health with redis down = %+v, want degraded", h)
	}
	ctx := ctxT(t)
	first := storetest.Events("first", 3)
	if err := s.Append(ctx, first); err != nil {
		t.Fatalf("Append with redis down: %v", err)
	}
	st, err := s.Stats(ctx)
	if err != nil || st.Last != first[2].ID {
		t.Fatalf("Stats with redis down = %+v, %v; want Last %v", st, err, first[2].ID)
	}
	live := follow(ctx, s, st.Last)
	more := storetest.Events("more", 3)
	if err := s.Append(ctx, more); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the live reader", 10*time.Second, func() bool {
		got, err := live.events()
		return err != nil || len(got) == 3
	})
	if _, _, err := s.Read(ctx, protocol.ID{}, 10, nil); err == nil {
		t.Error("Read from the start with redis down: no error")
	} else if !errors.Is(err, ErrUnavailable) {
		t.Errorf("Read from the start with redis down = %v, want ErrUnavailable", err)
	}

	srv.p.Restart()
	waitFor(t, "the store to recover", 60*time.Second, func() bool { return !s.Health().Degraded })
	later := storetest.Events("later", 3)
	if err := s.Append(ctx, later); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the live reader", 10*time.Second, func() bool {
		got, err := live.events()
		return err != nil || len(got) == 6
	})
	got, err := live.events()
	if err != nil {
		t.Fatal(err)
	}
	sameEvents(t, "live reader", got, append(append([]*protocol.Event(nil), more...), later...), 0)
	want := slices.Concat(old, first, more, later)
	sameEvents(t, "redis", streamEvents(t, c, prefix), want, 0)
	all, _, err := s.Read(ctx, protocol.ID{}, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	sameEvents(t, "Read from the start", all, want, 0)
}

// TestSessionsExpire: the sessions of a Store closed without deleting them
// (a region that died) expire; those of a live Store do not.
func TestSessionsExpire(t *testing.T) {
	srv := startServer(t, peer.RedisOptions{})
	c := srv.client(t)
	prefix := srv.prefix()
	const ttl = time.Second
	a := newStore(t, Config{Client: c, Prefix: prefix, SessionTTL: ttl})
	b := newStore(t, Config{Client: c, Prefix: prefix, SessionTTL: ttl})
	ctx := ctxT(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	for _, x := range []struct {
		s  *Store
		id string
	}{{a, "a1"}, {a, "a2"}, {b, "b1"}} {
		if err := x.s.PutSession(ctx, store.Session{ID: x.id, Server: "unsolmsg", Region: "R", Since: now, LastSeen: now}); err != nil {
			t.Fatal(err)
		}
	}
	ids := func() string {
		t.Helper()
		ss, err := b.Sessions(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, x := range ss {
			out = append(out, x.ID)
		}
		return strings.Join(out, " ")
	}
	time.Sleep(3 * ttl) // refreshed meanwhile
	if got := ids(); got != "a1 a2 b1" {
		t.Fatalf("sessions after 3 TTLs with both stores open = %q", got)
	}
	if err := a.DeleteSession(ctx, "a2"); err != nil {
		t.Fatal(err)
	}
	if got := ids(); got != "a1 b1" {
		t.Fatalf("sessions after deleting a2 = %q", got)
	}
	a.Close()
	closed := time.Now()
	waitFor(t, "a's sessions to expire", 10*time.Second, func() bool { return ids() == "b1" })
	if d := time.Since(closed); d > 2*ttl {
		t.Errorf("a's session lived %v after a closed, TTL %v", d, ttl)
	}
	if n, err := c.ZCard(ctx, Key(prefix, "sessions")).Result(); err != nil || n != 1 {
		t.Errorf("session index holds %d entries (%v), want 1 after pruning", n, err)
	}
	time.Sleep(ttl)
	if got := ids(); got != "b1" {
		t.Fatalf("b's session after a closed = %q", got)
	}
}

// TestTwoRegions: two Stores on one Redis, as two regions. Each one's
// readers get the other's events from its own cache, and both see one
// order.
func TestTwoRegions(t *testing.T) {
	srv := startServer(t, peer.RedisOptions{})
	c := srv.client(t)
	prefix := srv.prefix()
	a := newStore(t, Config{Client: c, Prefix: prefix})
	b := newStore(t, Config{Client: c, Prefix: prefix})
	ctx := ctxT(t)

	st, err := b.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	woke := make(chan error, 1)
	go func() { woke <- b.Wait(ctx, st.Last) }()
	time.Sleep(50 * time.Millisecond)
	evs := storetest.Events("a", 50)
	if err := a.Append(ctx, evs); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-woke:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("b's Wait did not wake for a's append")
	}
	k0 := b.Counters()
	got, gap, err := b.Read(ctx, st.Last, 0, nil)
	if err != nil || gap.Missed {
		t.Fatalf("b's Read = %v, %+v", err, gap)
	}
	sameEvents(t, "b's read of a's events", got, evs, 0)
	if k := b.Counters(); k.CacheHits != k0.CacheHits+1 || k.CacheMiss != k0.CacheMiss {
		t.Errorf("b's read: counters went from %+v to %+v, want one cache hit", k0, k)
	}

	// Both append at once; readers on both see the same events in the
	// same order, all from their caches.
	ra, rb := follow(ctx, a, evs[49].ID), follow(ctx, b, evs[49].ID)
	ka, kb := a.Counters(), b.Counters()
	var wg sync.WaitGroup
	const batches = 100
	for _, s := range []*Store{a, b} {
		for w := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range batches {
					if err := s.Append(ctx, storetest.Events(fmt.Sprintf("%p-%d-%d", s, w, i), 5)); err != nil {
						t.Errorf("Append: %v", err)
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	const total = 2 * 2 * batches * 5
	for _, r := range []*reader{ra, rb} {
		waitFor(t, "readers", 20*time.Second, func() bool {
			got, err := r.events()
			return err != nil || len(got) >= total
		})
	}
	gotA, errA := ra.events()
	gotB, errB := rb.events()
	if errA != nil || errB != nil {
		t.Fatalf("readers: %v, %v", errA, errB)
	}
	sameEvents(t, "b's reader against a's", gotB, gotA, 0)
	if len(gotA) != total {
		t.Fatalf("a's reader got %d events, want %d", len(gotA), total)
	}
	for name, k := range map[string][2]Counters{"a": {ka, a.Counters()}, "b": {kb, b.Counters()}} {
		if k[1].CacheMiss != k[0].CacheMiss {
			t.Errorf("%s's reader went to redis %d times", name, k[1].CacheMiss-k[0].CacheMiss)
		}
		t.Logf("%s: %d reads from the cache", name, k[1].CacheHits-k[0].CacheHits)
	}
}

// TestNoGoroutinesLeft: Close stops every goroutine of the Store, also
// while Redis is down.
func TestNoGoroutinesLeft(t *testing.T) {
	srv := startServer(t, peer.RedisOptions{})
	c := srv.client(t)
	s := newStore(t, Config{Client: c, Prefix: srv.prefix(), SessionTTL: 30 * time.Millisecond})
	if err := s.PutSession(ctxT(t), store.Session{ID: "x"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(ctxT(t), storetest.Events("x", 3)); err != nil {
		t.Fatal(err)
	}
	srv.p.Kill()
	if err := s.Append(ctxT(t), storetest.Events("y", 3)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "degraded", 10*time.Second, func() bool { return s.Health().Degraded })
	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(time.Minute): // far past any retry: Close does not wait for redis
		t.Fatal("Close did not return with redis down")
	}
	// A goroutine Close waited for may still be returning (its deferred
	// wg.Done ran): give it a moment to be gone.
	var stacks string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		buf := make([]byte, 1<<20)
		stacks = string(buf[:runtime.Stack(buf, true)])
		if !strings.Contains(stacks, "redisstore.(*Store)") || time.Now().After(deadline) {
			break
		}
	}
	if strings.Contains(stacks, "redisstore.(*Store)") {
		t.Fatalf("goroutines of the store left after Close:\n%s", stacks)
	}
}

func BenchmarkAppend(b *testing.B) {
	srv := startServer(b, peer.RedisOptions{})
	c := srv.client(b)
	s := newStore(b, Config{Client: c, Prefix: srv.prefix(), MaxEvents: 200_000})
	text := strings.Repeat("x", 150)
	batch := func() []*protocol.Event {
		evs := storetest.Events("bench", 64)
		for _, e := range evs {
			e.Text = text // about 200 bytes of JSON with the rest
		}
		return evs
	}
	ctx := context.Background()
	b.Run("serial", func(b *testing.B) {
		for i := 0; i < b.N; i += 64 {
			if err := s.Append(ctx, batch()); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	})
	b.Run("parallel", func(b *testing.B) {
		b.SetParallelism(2)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := s.Append(ctx, batch()); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N*64)/b.Elapsed().Seconds(), "events/s")
	})
}

func BenchmarkReadCache(b *testing.B) {
	srv := startServer(b, peer.RedisOptions{})
	c := srv.client(b)
	s := newStore(b, Config{Client: c, Prefix: srv.prefix()})
	ctx := context.Background()
	st, err := s.Stats(ctx)
	if err != nil {
		b.Fatal(err)
	}
	for range 100 {
		if err := s.Append(ctx, storetest.Events("r", 100)); err != nil {
			b.Fatal(err)
		}
	}
	buf := make([]*protocol.Event, 0, 256)
	k0 := s.Counters()
	b.ResetTimer()
	b.ReportAllocs()
	after := st.Last
	n := 0
	for range b.N {
		buf, _, err = s.Read(ctx, after, 256, buf[:0])
		if err != nil {
			b.Fatal(err)
		}
		n += len(buf)
		if len(buf) < 256 {
			after = st.Last
		} else {
			after = buf[len(buf)-1].ID
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
	if k := s.Counters(); k.CacheMiss != k0.CacheMiss {
		b.Fatalf("%d reads went to redis", k.CacheMiss-k0.CacheMiss)
	}
}

// TestCutOffWhileOthersWrite: a region loses Redis (its user disabled)
// while another region goes on writing. When it is back, Redis holds every
// event of both exactly once, each region's in its order; the region's
// provisional IDs that fell below the other's events were replaced, and
// its live reader goes on without an error.
func TestCutOffWhileOthersWrite(t *testing.T) {
	srv := startServer(t, peer.RedisOptions{})
	admin := srv.client(t)
	ctx := ctxT(t)
	acl := func(args ...any) {
		t.Helper()
		if err := admin.Do(ctx, args...).Err(); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
	}
	acl("ACL", "SETUSER", "region", "on", ">pw", "~*", "&*", "+@all")
	o, err := ParseURL("redis://region:pw@" + srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	o.MaxRetries = -1
	c := redis.NewUniversalClient(o)
	t.Cleanup(func() { c.Close() })
	prefix := srv.prefix()
	s := newStore(t, Config{Client: c, Prefix: prefix, TailBlock: 100 * time.Millisecond})
	other := newStore(t, Config{Client: admin, Prefix: prefix})

	st, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	live := follow(ctx, s, st.Last)
	var mine, theirs []*protocol.Event
	add := func(s *Store, to *[]*protocol.Event, name string, n int) {
		t.Helper()
		evs := storetest.Events(name, n)
		if err := s.Append(ctx, evs); err != nil {
			t.Fatalf("Append %s: %v", name, err)
		}
		*to = append(*to, evs...)
	}
	add(s, &mine, "mine-before", 20)

	acl("ACL", "SETUSER", "region", "off")
	acl("CLIENT", "KILL", "USER", "region")
	for i := range 5 {
		add(s, &mine, fmt.Sprint("mine-cut", i), 10)
		time.Sleep(5 * time.Millisecond)
		add(other, &theirs, fmt.Sprint("theirs", i), 10)
		time.Sleep(5 * time.Millisecond)
	}
	if h := s.Health(); !h.Degraded {
		t.Fatalf("health while cut off = %+v, want degraded", h)
	}
	acl("ACL", "SETUSER", "region", "on")
	waitFor(t, "the store to recover", 30*time.Second, func() bool { return !s.Health().Degraded })
	add(s, &mine, "mine-after", 10)
	add(other, &theirs, "theirs-after", 10)

	k := s.Counters()
	t.Logf("counters %+v, health %+v", k, s.Health())
	inRedis := streamEvents(t, admin, prefix)
	seen := map[string]int{}
	for _, e := range inRedis {
		seen[e.Text]++
	}
	for tag, list := range map[string][]*protocol.Event{"mine": mine, "theirs": theirs} {
		var order []*protocol.Event
		for _, e := range inRedis {
			if strings.HasPrefix(e.Text, tag) {
				order = append(order, e)
			}
		}
		if len(order) != len(list) {
			t.Errorf("redis holds %d events of %s, want %d", len(order), tag, len(list))
		}
		for i := range min(len(order), len(list)) {
			if order[i].Text != list[i].Text {
				t.Fatalf("redis: event %d of its writer is %q, want %q", i, order[i].Text, list[i].Text)
			}
		}
	}
	for text, n := range seen {
		if n != 1 {
			t.Errorf("redis holds %q %d times", text, n)
		}
	}
	// A new reader gets what Redis holds.
	fresh := newStore(t, Config{Client: admin, Prefix: prefix})
	all, _, err := fresh.Read(ctx, protocol.ID{}, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	sameEvents(t, "fresh reader", all, inRedis, 0)
	// The live reader got all of this region's events (some maybe twice,
	// under a provisional and a final ID) and the other's later ones.
	waitFor(t, "the live reader", 10*time.Second, func() bool {
		got, err := live.events()
		return err != nil || len(got) > 0 && got[len(got)-1].Text == "theirs-after-9"
	})
	got, err := live.events()
	if err != nil {
		t.Fatalf("live reader: %v", err)
	}
	have := map[string]bool{}
	for i, e := range got {
		have[e.Text] = true
		if i > 0 && !got[i-1].ID.Less(e.ID) {
			t.Fatalf("live reader: IDs out of order at %d: %v then %v", i, got[i-1].ID, e.ID)
		}
	}
	for _, e := range append(mine, theirs[len(theirs)-10:]...) {
		if !have[e.Text] {
			t.Errorf("live reader never got %q", e.Text)
		}
	}
	t.Logf("live reader got %d events for %d of this region and 10 of the other after", len(got), len(mine))
}

// TestLostReply: a batch whose write had no reply when Redis went away was
// written after all. Once Redis is back it is not written again: Redis
// holds it once, under the IDs Redis gave it.
func TestLostReply(t *testing.T) {
	srv := startServer(t, peer.RedisOptions{})
	admin := srv.client(t)
	ctx := ctxT(t)
	if err := admin.Do(ctx, "ACL", "SETUSER", "region", "on", ">pw", "~*", "&*", "+@all").Err(); err != nil {
		t.Fatal(err)
	}
	o, err := ParseURL("redis://region:pw@" + srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewUniversalClient(o)
	t.Cleanup(func() { c.Close() })
	prefix := srv.prefix()
	s := newStore(t, Config{Client: c, Prefix: prefix, TailBlock: 100 * time.Millisecond})
	st, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	live := follow(ctx, s, st.Last)
	before := storetest.Events("before", 5)
	if err := s.Append(ctx, before); err != nil {
		t.Fatal(err)
	}

	admin.Do(ctx, "ACL", "SETUSER", "region", "off")
	admin.Do(ctx, "CLIENT", "KILL", "USER", "region")
	lost := storetest.Events("lost", 5)
	if err := s.Append(ctx, lost); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	if len(s.buf) != 1 {
		s.mu.Unlock()
		t.Fatalf("%d batches buffered, want 1", len(s.buf))
	}
	b := *s.buf[0]
	s.mu.Unlock()
	// What the first attempt would have done, had Redis run it and died
	// before replying; a few milliseconds on, so that Redis's IDs differ
	// from the provisional ones.
	time.Sleep(5 * time.Millisecond)
	if _, err := s.runAppend(ctx, admin, &batch{seq: b.seq, evs: copyEvents(b.evs)}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	after := storetest.Events("after", 5)
	if err := s.Append(ctx, after); err != nil {
		t.Fatal(err)
	}
	admin.Do(ctx, "ACL", "SETUSER", "region", "on")
	waitFor(t, "the store to recover", 30*time.Second, func() bool { return !s.Health().Degraded })
	if k := s.Counters(); k.Reconciled != 5 || k.Fallbacks != 0 {
		t.Errorf("counters %+v, want 5 reconciled", k)
	}
	want := slices.Concat(before, lost, after)
	sameEvents(t, "redis", streamEvents(t, admin, prefix), want, 5)
	final := storetest.Events("final", 1)
	if err := s.Append(ctx, final); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the live reader", 10*time.Second, func() bool {
		got, err := live.events()
		return err != nil || len(got) > 0 && got[len(got)-1].Text == "final-0"
	})
	got, err := live.events()
	if err != nil {
		t.Fatal(err)
	}
	sameEvents(t, "live reader", got, append(want, final...), 0)
}

func copyEvents(evs []*protocol.Event) []*protocol.Event {
	out := make([]*protocol.Event, len(evs))
	for i, e := range evs {
		c := *e
		out[i] = &c
	}
	return out
}

// TestRetentionByAge: events older than MaxAge go, from Redis and from
// the cache, and a reader behind them is told.
func TestRetentionByAge(t *testing.T) {
	srv := startServer(t, peer.RedisOptions{})
	c := srv.client(t)
	s := newStore(t, Config{Client: c, Prefix: srv.prefix(), MaxAge: 200 * time.Millisecond})
	ctx := ctxT(t)
	old := storetest.Events("old", 5)
	if err := s.Append(ctx, old); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	fresh := storetest.Events("fresh", 2)
	if err := s.Append(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	st, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Count != 2 || st.First != fresh[0].ID || st.Trimmed != old[4].ID {
		t.Fatalf("stats = %+v, want the 2 fresh events, trimmed through %v", st, old[4].ID)
	}
	got, gap, err := s.Read(ctx, old[1].ID, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !gap.Missed || gap.Through != old[4].ID {
		t.Errorf("reader behind retention: gap %+v, want through %v", gap, old[4].ID)
	}
	sameEvents(t, "read after the trimmed", got, fresh, 0)
	got, gap, err = s.Read(ctx, old[4].ID, 0, nil)
	if err != nil || gap.Missed {
		t.Fatalf("reader at the last trimmed event: %v, gap %+v", err, gap)
	}
	sameEvents(t, "read after the last trimmed", got, fresh, 0)
}

// TestRetentionByCount: batches of all sizes, over the limit. Once the
// stream is longer than the limit plus the slack, it is cut back to the
// limit, and the trimmed key holds exactly the newest entry removed, so
// that a reader at that entry is told of no gap and one before it is.
func TestRetentionByCount(t *testing.T) {
	srv := startServer(t, peer.RedisOptions{})
	c := srv.client(t)
	prefix := srv.prefix()
	const limit, slack = 100, 64
	s := newStore(t, Config{Client: c, Prefix: prefix, MaxEvents: limit})
	ctx := ctxT(t)
	var all []*protocol.Event
	trims := 0
	for i := range 40 {
		evs := storetest.Events(fmt.Sprint("b", i), 1+i%30)
		if err := s.Append(ctx, evs); err != nil {
			t.Fatal(err)
		}
		all = append(all, evs...)
		kept := streamEvents(t, c, prefix)
		if len(kept) > limit+slack || len(kept) < min(limit, len(all)) {
			t.Fatalf("after batch %d: %d entries kept, want %d to %d", i, len(kept), limit, limit+slack)
		}
		sameEvents(t, "kept", kept, all[len(all)-len(kept):], 0)
		trimmed, err := c.Get(ctx, Key(prefix, "trimmed")).Result()
		if len(kept) == len(all) {
			if !errors.Is(err, redis.Nil) {
				t.Fatalf("after batch %d: nothing trimmed, but the trimmed key is %q (%v)", i, trimmed, err)
			}
			continue
		}
		if len(kept) == limit {
			trims++
		}
		removed := all[len(all)-len(kept)-1]
		if trimmed != removed.ID.String() {
			t.Fatalf("after batch %d: trimmed key %q, want %v, the newest entry removed", i, trimmed, removed.ID)
		}
		if _, gap, err := s.Read(ctx, removed.ID, 1, nil); err != nil || gap.Missed {
			t.Fatalf("reader at the newest entry removed: %v, gap %+v", err, gap)
		}
		if _, gap, err := s.Read(ctx, all[0].ID, 1, nil); err != nil || !gap.Missed || gap.Through != removed.ID {
			t.Fatalf("reader behind retention: %v, gap %+v, want through %v", err, gap, removed.ID)
		}
	}
	if trims < 2 {
		t.Fatalf("the stream was cut back %d times, want at least 2", trims)
	}
}

// recorder is a logrus hook that keeps the messages logged.
type recorder struct {
	mu   sync.Mutex // guards msgs
	msgs []string
}

func (r *recorder) Levels() []logrus.Level { return logrus.AllLevels }

func (r *recorder) Fire(e *logrus.Entry) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, e.Message)
	return nil
}

func (r *recorder) logged(part string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.msgs {
		if strings.Contains(m, part) {
			return true
		}
	}
	return false
}

// TestRedisRestartsEmpty: Redis comes back without its data (no
// persistence). The Store warns, writes what it buffered, goes on, and
// tells a reader resuming from before that it missed events.
func TestRedisRestartsEmpty(t *testing.T) {
	for _, idle := range []bool{false, true} {
		t.Run(fmt.Sprint("idle=", idle), func(t *testing.T) {
			srv := startServer(t, peer.RedisOptions{})
			c := srv.client(t)
			prefix := srv.prefix()
			log := logrus.New()
			log.SetOutput(io.Discard)
			rec := &recorder{}
			log.AddHook(rec)
			log.AddHook(&logHook{t: t})
			s := newStore(t, Config{Client: c, Prefix: prefix, Logger: log, TailBlock: 100 * time.Millisecond})
			ctx := ctxT(t)
			st, _ := s.Stats(ctx)
			live := follow(ctx, s, st.Last)
			before := storetest.Events("before", 5)
			if err := s.Append(ctx, before); err != nil {
				t.Fatal(err)
			}
			srv.p.Kill()
			var down []*protocol.Event
			if !idle {
				down = storetest.Events("down", 5)
				if err := s.Append(ctx, down); err != nil {
					t.Fatal(err)
				}
			}
			srv.p.Restart()
			if idle {
				// Nothing appended: the tail finds out by itself.
				waitFor(t, "the warning", 30*time.Second, func() bool { return rec.logged("went back") || rec.logged("without events") })
			}
			waitFor(t, "the store to recover", 30*time.Second, func() bool { return !s.Health().Degraded })
			if !rec.logged("went back") && !rec.logged("without events") {
				t.Error("no warning that redis lost events")
			}
			after := storetest.Events("after", 5)
			if err := s.Append(ctx, after); err != nil {
				t.Fatal(err)
			}
			sameEvents(t, "redis", streamEvents(t, c, prefix), slices.Concat(down, after), 0)
			waitFor(t, "the live reader", 10*time.Second, func() bool {
				got, _ := live.events()
				return len(got) > 0 && got[len(got)-1].Text == "after-4"
			})
			got, _ := live.events()
			sameEvents(t, "live reader", got, slices.Concat(before, down, after), 0)
			// A reader that had all the events Redis lost is told nothing
			// was lost when the region's buffered events start the stream
			// anew; with nothing buffered, it cannot know: other regions'
			// events may have been lost.
			if n := live.gapCount(); idle != (n > 0) {
				t.Errorf("live reader told of %d gaps", n)
			}
			// A reader resuming after an event Redis lost is told.
			fresh := newStore(t, Config{Client: c, Prefix: prefix})
			evs, gap, err := fresh.Read(ctx, before[2].ID, 0, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !gap.Missed {
				t.Errorf("resuming after %v, lost with redis: no gap", before[2].ID)
			}
			sameEvents(t, "resumed reader", evs, slices.Concat(down, after), 0)
		})
	}
}

// TestCallerReusesSlice: callers may clear and reuse the slice they pass
// to Append (the syslog server does); the store keeps only the events.
func TestCallerReusesSlice(t *testing.T) {
	srv := startServer(t, peer.RedisOptions{AppendOnly: true})
	c := srv.client(t, func(o *redis.UniversalOptions) { o.DialerRetries = 1 })
	prefix := srv.prefix()
	s := newStore(t, Config{Client: c, Prefix: prefix, TailBlock: 100 * time.Millisecond})
	ctx := ctxT(t)
	var want []*protocol.Event
	buf := make([]*protocol.Event, 0, 10)
	add := func(name string) {
		t.Helper()
		buf = append(buf[:0], storetest.Events(name, 10)...)
		if err := s.Append(ctx, buf); err != nil {
			t.Fatal(err)
		}
		want = append(want, buf...)
		clear(buf)
	}
	add("up")
	srv.p.Kill()
	waitFor(t, "degraded", 10*time.Second, func() bool { add("down"); return s.Health().Degraded })
	add("down-more")
	srv.p.Restart()
	waitFor(t, "the store to recover", 30*time.Second, func() bool { return !s.Health().Degraded })
	add("back")
	got, _, err := s.Read(ctx, protocol.ID{}, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	sameEvents(t, "read", got, want, 0)
	sameEvents(t, "redis", streamEvents(t, c, prefix), want, 0)
}
