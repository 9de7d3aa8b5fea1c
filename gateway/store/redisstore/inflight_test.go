package redisstore

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/zbridge/zbridge/gateway/store/storetest"
	"github.com/zbridge/zbridge/protocol"
)

// TestRedisDownConcurrent: several appenders at once while Redis is killed
// and restarted (with its append-only file) twice, quickly. A live reader
// gets every acknowledged event, each once, in ID order, and Redis has each
// once. Two ways that failed: an append in flight when Redis went away,
// retried by go-redis on the restarted Redis, got IDs above provisional
// ones already given (Fallbacks, events missed and seen twice); and the
// cache lacking this Store's newest appends (the tail catching up) when
// provisional events were put in it after them (readers skipped the hole).
func TestRedisDownConcurrent(t *testing.T) {
	o := startOutage(t, 100*time.Millisecond)
	srv, c, prefix, s := o.srv, o.c, o.prefix, o.s
	ctx := ctxT(t)
	live := followNew(t, ctx, s)
	var (
		mu       sync.Mutex
		appended = map[string]protocol.ID{}
		appendEr error
		stop     = make(chan struct{})
		wg       sync.WaitGroup
	)
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(appended)
	}
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				evs := storetest.Events(fmt.Sprintf("w%d-b%d", w, i), 1+i%7)
				err := s.Append(ctx, evs)
				mu.Lock()
				if err != nil {
					appendEr = err
					mu.Unlock()
					return
				}
				for _, e := range evs {
					appended[e.Text] = e.ID
				}
				mu.Unlock()
				time.Sleep(time.Millisecond)
			}
		}()
	}
	for round := range 2 {
		n := count()
		waitFor(t, "appends while up", 20*time.Second, func() bool { return count() >= n+300 })
		if round == 0 {
			srv.p.Kill()
		} else {
			srv.p.Stop()
		}
		waitFor(t, "degraded", 30*time.Second, func() bool { return s.Health().Degraded })
		n = count()
		waitFor(t, "appends while down", 20*time.Second, func() bool { return count() >= n+300 })
		srv.p.Restart()
		waitFor(t, "recovered", 60*time.Second, func() bool { h := s.Health(); return !h.Degraded && h.Buffered == 0 })
	}
	n := count()
	waitFor(t, "appends after", 20*time.Second, func() bool { return count() >= n+300 })
	close(stop)
	wg.Wait()
	if k := s.Counters(); k.Fallbacks != 0 {
		t.Errorf("%d events got new IDs with no other writer", k.Fallbacks)
	}
	if appendEr != nil {
		t.Fatalf("Append: %v", appendEr)
	}
	k := s.Counters()
	t.Logf("appended %d; health %+v; counters %+v", count(), s.Health(), k)
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if got, err := live.events(); err != nil || len(got) >= count() {
			break
		}
	}
	time.Sleep(500 * time.Millisecond)
	got, err := live.events()
	if err != nil {
		t.Fatalf("live: %v", err)
	}
	seen := map[string]int{}
	for i, e := range got {
		seen[e.Text]++
		if i > 0 && !got[i-1].ID.Less(e.ID) {
			t.Errorf("out of order at %d: %v then %v", i, got[i-1].ID, e.ID)
		}
	}
	for text := range appended {
		if seen[text] != 1 {
			t.Errorf("event %s (%v) seen %d times", text, appended[text], seen[text])
		}
	}
	inRedis := streamEvents(t, c, prefix)
	rs := map[string]int{}
	for _, e := range inRedis {
		rs[e.Text]++
	}
	for text := range appended {
		if rs[text] != 1 {
			t.Errorf("event %s in redis %d times", text, rs[text])
		}
	}
	if len(got) != len(appended) || len(inRedis) != len(appended) {
		t.Errorf("live %d, redis %d, appended %d", len(got), len(inRedis), len(appended))
	}
}
