package redisstore

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/zbridge/zbridge/gateway/store"
	"github.com/zbridge/zbridge/gateway/store/storetest"
	"github.com/zbridge/zbridge/internal/peer"
)

// syncSoon calls s.Sync and fails the test unless it returns within
// limit: Sync must not wait out an outage.
func syncSoon(t *testing.T, s *Store, limit time.Duration) error {
	t.Helper()
	start := time.Now()
	err := store.Sync(ctxT(t), s)
	if d := time.Since(start); d > limit {
		t.Fatalf("Sync took %v (returned %v), want at most %v", d, err, limit)
	}
	return err
}

// TestSyncWhileDown: Sync, which the servers that acknowledge events
// (RELP, VMMON) call before they do, returns nil for events in Redis and
// an error wrapping ErrUnavailable, at once, while events appended before
// it are held only in the write buffer (Redis stopped): a region stopped
// then would lose them. Once Redis is back and the buffer written, it
// returns nil again.
func TestSyncWhileDown(t *testing.T) {
	o := startOutage(t, 200*time.Millisecond)
	srv, c, prefix, s := o.srv, o.c, o.prefix, o.s
	ctx := ctxT(t)

	if err := syncSoon(t, s, time.Second); err != nil {
		t.Fatalf("Sync of an empty store: %v", err)
	}
	up := storetest.Events("up", 3)
	if err := s.Append(ctx, up); err != nil {
		t.Fatal(err)
	}
	if err := syncSoon(t, s, time.Second); err != nil {
		t.Fatalf("Sync after an append Redis took: %v", err)
	}

	srv.p.Stop()
	down := storetest.Events("down", 4)
	if err := s.Append(ctx, down); err != nil {
		t.Fatalf("Append with redis down: %v (want it buffered)", err)
	}
	if h := s.Health(); !h.Degraded || h.Buffered != len(down) {
		t.Fatalf("health %+v, want degraded with %d buffered", h, len(down))
	}
	err := syncSoon(t, s, time.Second)
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Sync with events held only in the buffer = %v, want ErrUnavailable at once", err)
	}
	t.Logf("Sync with redis down: %v", err)
	// Again, with nothing appended since: the buffered events still are
	// not in Redis.
	if err := syncSoon(t, s, time.Second); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("second Sync with redis down = %v, want ErrUnavailable", err)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if err := store.Sync(canceled, s); !errors.Is(err, context.Canceled) {
		t.Errorf("Sync with a canceled context = %v, want context.Canceled", err)
	}

	srv.p.Restart()
	waitFor(t, "the store to recover", 60*time.Second, func() bool {
		h := s.Health()
		return !h.Degraded && h.Buffered == 0
	})
	if err := syncSoon(t, s, time.Second); err != nil {
		t.Fatalf("Sync after the buffer was written: %v", err)
	}
	sameEvents(t, "redis", streamEvents(t, c, prefix), append(up, down...), int(s.Counters().Reconciled))

	s.Close()
	if err := store.Sync(ctx, s); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Sync after Close = %v, want store.ErrClosed", err)
	}
}

// holdFlush holds, once armed, every pipeline that runs a script
// (the flusher's EVALSHA of buffered batches) until release is closed or
// the pipeline's context ends.
type holdFlush struct {
	armed   atomic.Bool
	held    chan struct{} // closed when the first pipeline is held
	release chan struct{}
	once    atomic.Bool
}

func (h *holdFlush) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *holdFlush) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

func (h *holdFlush) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if h.armed.Load() && len(cmds) > 0 && strings.EqualFold(cmds[0].Name(), "evalsha") {
			if h.once.CompareAndSwap(false, true) {
				close(h.held)
			}
			select {
			case <-h.release:
			case <-ctx.Done():
			}
		}
		return next(ctx, cmds)
	}
}

// TestSyncWaitsForFlush: while the flusher is writing the buffer to a
// Redis that is back, Sync waits for the events appended before it to be
// written (it returns nil then), instead of failing.
func TestSyncWaitsForFlush(t *testing.T) {
	srv := startServer(t, peer.RedisOptions{AppendOnly: true})
	c := srv.client(t, func(o *redis.UniversalOptions) { o.ContextTimeoutEnabled = true })
	hook := &holdFlush{held: make(chan struct{}), release: make(chan struct{})}
	c.AddHook(hook)
	prefix := srv.prefix()
	s := newStore(t, Config{Client: c, Prefix: prefix, TailBlock: 200 * time.Millisecond})
	ctx := ctxT(t)

	srv.p.Stop()
	down := storetest.Events("down", 5)
	if err := s.Append(ctx, down); err != nil {
		t.Fatalf("Append with redis down: %v (want it buffered)", err)
	}
	hook.armed.Store(true)
	srv.p.Restart()
	select {
	case <-hook.held:
	case <-time.After(30 * time.Second):
		t.Fatal("the flusher did not write the buffer within 30s of redis restarting")
	}
	done := make(chan error, 1)
	go func() { done <- store.Sync(ctx, s) }()
	select {
	case err := <-done:
		t.Fatalf("Sync returned %v while the flusher was writing the events, want it to wait", err)
	case <-time.After(300 * time.Millisecond):
	}
	close(hook.release)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Sync once the flusher wrote the events: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Sync did not return within 30s of the flusher going on")
	}
	// Sync returned: Redis has the events.
	sameEvents(t, "redis", streamEvents(t, c, prefix), down, int(s.Counters().Reconciled))
	if h := s.Health(); h.Buffered != 0 {
		t.Errorf("health after Sync: %+v, want nothing buffered", h)
	}
}

// TestSyncReplicas: with MinReplicas and no replica to acknowledge, an
// append Redis took is kept in the buffer, and Sync fails at once: Redis
// alone has it, and a failover could lose it.
func TestSyncReplicas(t *testing.T) {
	srv := startServer(t, peer.RedisOptions{})
	c := srv.client(t, func(o *redis.UniversalOptions) { o.ContextTimeoutEnabled = true })
	s := newStore(t, Config{Client: c, Prefix: srv.prefix(), MinReplicas: 1, ReplicaTimeout: 100 * time.Millisecond,
		TailBlock: 100 * time.Millisecond})
	ctx := ctxT(t)
	if err := s.Append(ctx, storetest.Events("r", 3)); err != nil {
		t.Fatalf("Append without a replica: %v", err)
	}
	err := syncSoon(t, s, time.Second)
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "replicas") {
		t.Fatalf("Sync of an append no replica acknowledged = %v, want ErrUnavailable for want of replicas", err)
	}
	t.Logf("Sync without a replica: %v", err)
}
