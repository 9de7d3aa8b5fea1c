package redisstore

import (
	"context"
	"errors"
	"fmt"
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

// plainStore hides AppendMarked, so that store.AppendMarked falls back to
// Append and then SetPosition.
type plainStore struct{ store.Store }

// TestAppendMarkedAtomic watches the stream's length and the mark together
// (in one MULTI/EXEC of another client) while batches are appended with a
// mark that counts the events: with AppendMarked they never disagree. The
// two-step fallback is watched the same way and must be caught disagreeing,
// which shows the watch can see the difference.
func TestAppendMarkedAtomic(t *testing.T) {
	srv := startServer(t, peer.RedisOptions{})
	for _, tc := range []struct {
		name   string
		wrap   func(*Store) store.Store
		atomic bool
	}{
		{"AppendMarked", func(s *Store) store.Store { return s }, true},
		{"two steps", func(s *Store) store.Store { return plainStore{s} }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := srv.client(t)
			s := newStore(t, Config{Client: c, Prefix: srv.prefix()})
			st := tc.wrap(s)
			const name, batch = "vmmon:SYS1/spool", 5
			watcher := srv.client(t)
			ctx := ctxT(t)

			var (
				wg       sync.WaitGroup
				mu       sync.Mutex
				seen     int // snapshots with events in the stream
				disagree []string
			)
			done := make(chan struct{})
			wg.Go(func() {
				for {
					select {
					case <-done:
						return
					default:
					}
					var xlen *redis.IntCmd
					var pos *redis.StringCmd
					_, err := watcher.TxPipelined(ctx, func(p redis.Pipeliner) error {
						xlen = p.XLen(ctx, s.kEvents)
						pos = p.Get(ctx, s.positionKey(name))
						return nil
					})
					if err != nil && !errors.Is(err, redis.Nil) {
						t.Errorf("watch: %v", err)
						return
					}
					var mark uint64
					if v, err := pos.Result(); err == nil {
						id, err := protocol.ParseID(v)
						if err != nil {
							t.Errorf("mark %q: %v", v, err)
							return
						}
						mark = id.Ms
					}
					mu.Lock()
					if xlen.Val() > 0 {
						seen++
					}
					if uint64(xlen.Val()) != mark && len(disagree) < 5 {
						disagree = append(disagree, fmt.Sprintf("%d events, mark %d", xlen.Val(), mark))
					}
					stop := !tc.atomic && len(disagree) > 0
					mu.Unlock()
					if stop {
						return
					}
				}
			})
			for i := 1; i <= 2000; i++ {
				evs := storetest.Events(fmt.Sprint("b", i), batch)
				if err := store.AppendMarked(ctx, st, evs, name, protocol.ID{Ms: uint64(i * batch)}); err != nil {
					t.Fatalf("AppendMarked %d: %v", i, err)
				}
				mu.Lock()
				caught := !tc.atomic && len(disagree) > 0
				mu.Unlock()
				if caught {
					break
				}
			}
			close(done)
			wg.Wait()
			mu.Lock()
			defer mu.Unlock()
			t.Logf("%d snapshots with events; disagreements %q", seen, disagree)
			if seen == 0 {
				t.Fatal("the watcher never saw events: it checked nothing")
			}
			if tc.atomic && len(disagree) > 0 {
				t.Errorf("the stream and the mark disagreed: %q", disagree)
			}
			if !tc.atomic && len(disagree) == 0 {
				t.Errorf("the two-step fallback was never seen between its steps in %d snapshots; the watch proves nothing", seen)
			}
		})
	}
}

// TestAppendMarkedWhileDown: a batch appended with a mark while Redis is
// unreachable is buffered with its mark, and both are written when Redis is
// back.
func TestAppendMarkedWhileDown(t *testing.T) {
	o := startOutage(t, 200*time.Millisecond)
	srv, c, prefix, s := o.srv, o.c, o.prefix, o.s
	ctx := ctxT(t)
	const name = "vmmon:SYS1/spool"
	first := storetest.Events("up", 3)
	if err := s.AppendMarked(ctx, first, name, protocol.ID{Ms: 3}); err != nil {
		t.Fatal(err)
	}
	srv.p.Stop()
	down := storetest.Events("down", 4)
	if err := s.AppendMarked(ctx, down, name, protocol.ID{Ms: 7}); err != nil {
		t.Fatalf("AppendMarked with redis down: %v (want it buffered)", err)
	}
	if h := s.Health(); !h.Degraded || h.Buffered != len(down) {
		t.Fatalf("health %+v, want degraded with %d buffered", h, len(down))
	}
	if _, _, err := s.Position(ctx, name); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Position with redis down: %v, want ErrUnavailable at once", err)
	}
	srv.p.Restart()
	waitFor(t, "the store to recover", 60*time.Second, func() bool {
		h := s.Health()
		return !h.Degraded && h.Buffered == 0
	})
	id, ok, err := s.Position(ctx, name)
	if err != nil || !ok || id != (protocol.ID{Ms: 7}) {
		t.Errorf("Position after recovery = %v, %v, %v; want 7-0", id, ok, err)
	}
	sameEvents(t, "redis", streamEvents(t, c, prefix), append(first, down...), int(s.Counters().Reconciled))

	// A buffered batch found written (its first reply lost) still sets its
	// mark: appendScript's duplicate branch.
	b := &batch{seq: 1 << 40, evs: storetest.Events("again", 2), mark: &mark{key: s.positionKey(name), id: protocol.ID{Ms: 9}}}
	if _, err := s.runAppend(ctx, c, &batch{seq: b.seq, evs: copyEvents(b.evs)}); err != nil {
		t.Fatal(err)
	}
	v, err := scripts().append.Run(context.Background(), c, s.appendKeys(b), s.appendArgs(b)...).Slice()
	if err != nil || len(v) != 2 || v[0] != "dup" {
		t.Fatalf("appendScript on a batch written before = %v, %v; want dup", v, err)
	}
	if id, _, err := s.Position(ctx, name); err != nil || id != (protocol.ID{Ms: 9}) {
		t.Errorf("Position after the duplicate = %v, %v; want 9-0", id, err)
	}
}

// TestTailBehindRetention: a region's tail that falls so far behind that
// another region's appends trim events it had not fetched must not let its
// live readers skip them silently: they are told of the gap (and get every
// event kept after it). The tail falls behind two ways: the region stalls
// (its mutex held), or the other region writes right after one of the
// tail's reads of the trimming state (a client hook).
func TestTailBehindRetention(t *testing.T) {
	for _, how := range []string{"stalled", "between reads"} {
		t.Run(how, func(t *testing.T) { testTailBehind(t, how == "stalled") })
	}
}

// afterTrimmedRead is a go-redis hook that calls fire, once armed, right
// after a command or transaction that reads the trimmed key.
type afterTrimmedRead struct {
	key   string
	armed atomic.Bool
	fire  func()
}

func (h *afterTrimmedRead) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *afterTrimmedRead) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		h.after([]redis.Cmder{cmd})
		return err
	}
}

func (h *afterTrimmedRead) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		h.after(cmds)
		return err
	}
}

func (h *afterTrimmedRead) after(cmds []redis.Cmder) {
	for _, c := range cmds {
		if args := c.Args(); c.Name() == "get" && len(args) > 1 && fmt.Sprint(args[1]) == h.key {
			if h.armed.CompareAndSwap(true, false) {
				h.fire()
			}
			return
		}
	}
}

func testTailBehind(t *testing.T, stall bool) {
	srv := startServer(t, peer.RedisOptions{})
	prefix := srv.prefix()
	const limit = 50
	writer := newStore(t, Config{Client: srv.client(t), Prefix: prefix, MaxEvents: limit})
	// The lagging store's own retention is the default: its cache keeps far
	// more than the writer's retention keeps in Redis.
	lc := srv.client(t)
	hook := &afterTrimmedRead{key: Key(prefix, "trimmed")}
	lc.AddHook(hook)
	lagging := newStore(t, Config{Client: lc, Prefix: prefix, TailBlock: 100 * time.Millisecond})
	ctx := ctxT(t)
	first := storetest.Events("before", 5)
	if err := writer.Append(ctx, first); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the lagging store's tail to fetch the first events", 10*time.Second, func() bool {
		lagging.mu.Lock()
		defer lagging.mu.Unlock()
		return !lagging.cache.newest().Less(first[4].ID)
	})
	live := follow(ctx, lagging, first[4].ID)

	var all []*protocol.Event
	write := func() error {
		for i := range 20 {
			evs := storetest.Events(fmt.Sprint("b", i), 20)
			if err := writer.Append(ctx, evs); err != nil {
				return err
			}
			all = append(all, evs...)
		}
		return nil
	}
	if stall {
		// The tail needs the mutex.
		lagging.mu.Lock()
		err := write()
		lagging.mu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
	} else {
		done := make(chan error, 1)
		hook.fire = func() { done <- write() }
		hook.armed.Store(true)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	kept := streamEvents(t, srv.client(t), prefix)
	if len(kept) >= len(all) {
		t.Fatalf("%d of %d kept: nothing was trimmed", len(kept), len(all))
	}
	last := all[len(all)-1].ID
	waitFor(t, "the live reader to reach the newest event", 10*time.Second, func() bool {
		got, _ := live.events()
		return len(got) > 0 && !got[len(got)-1].ID.Less(last)
	})
	got, _ := live.events()
	t.Logf("live reader: %d of %d events, gap notices %+v; counters %+v", len(got), len(all), live.gaps, lagging.Counters())
	if k := lagging.Counters(); k.Behind == 0 {
		t.Errorf("counters %+v: the tail did not notice it fell behind", k)
	}
	if live.gapCount() == 0 {
		t.Fatalf("the live reader got %d of %d events and was told of no gap", len(got), len(all))
	}
	sameEvents(t, "after the gap", got[len(got)-len(kept):], kept, 0)
}
