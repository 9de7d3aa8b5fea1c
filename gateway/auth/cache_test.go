package auth

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a clock a test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (f *fakeClock) now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeClock) advance(d time.Duration) {
	f.mu.Lock()
	f.t = f.t.Add(d)
	f.mu.Unlock()
}

func useClock(c *Clients) *fakeClock {
	f := &fakeClock{t: time.Unix(1_000_000, 0)}
	c.now = f.now
	return f
}

// TestCache checks what a success leaves behind, and that nothing else
// skips the hash.
func TestCache(t *testing.T) {
	c := mustParse(t, "a:"+cheapHash(t, "x", cheap)+"\n"+"b:"+cheapHash(t, "y", cheap)+"\n")
	seen := countingDerive(c)
	clock := useClock(c)
	ctx := context.Background()
	derivations := func() int { return len(*seen) }
	check := func(name, secret string, want bool, wantDerived int) {
		t.Helper()
		before := derivations()
		ok, err := c.Check(ctx, name, secret)
		if err != nil || ok != want {
			t.Fatalf("Check(%q) = %v, %v; want %v", name, ok, err, want)
		}
		if got := derivations() - before; got != wantDerived {
			t.Fatalf("Check(%q, right=%v) hashed %d times, want %d", name, want, got, wantDerived)
		}
	}

	check("a", "x", true, 1) // the first success hashes
	check("a", "x", true, 0) // and is remembered
	check("a", "x", true, 0)
	for range 3 {
		check("a", "wrong", false, 1) // a failure always hashes
		check("nobody", "x", false, 1)
	}
	check("b", "x", false, 1) // another client's secret: hashes, fails
	check("b", "y", true, 1)
	check("b", "y", true, 0)
	if n := c.tab.Load().cache.len(); n != 2 {
		t.Errorf("%d cache entries, want 2 (one a client)", n)
	}

	// Expiry: a hit does not extend it.
	clock.advance(CacheTTL - time.Second)
	check("a", "x", true, 0)
	clock.advance(time.Second)
	check("a", "x", true, 1)
	check("a", "x", true, 0)
}

// TestCacheUnambiguous checks that a name and secret that run together
// into a cached pair's bytes are not taken for it.
func TestCacheUnambiguous(t *testing.T) {
	c := mustParse(t, "a:"+cheapHash(t, "bc", cheap)+"\n"+"ab:"+cheapHash(t, "other", cheap)+"\n")
	ctx := context.Background()
	if ok, _ := c.Check(ctx, "a", "bc"); !ok {
		t.Fatal("right secret refused")
	}
	for _, tc := range [][2]string{{"ab", "c"}, {"abc", ""}, {"", "abc"}, {"abc", "x"}, {"a\x00", "bc"}} {
		if ok, _ := c.Check(ctx, tc[0], tc[1]); ok {
			t.Errorf("Check(%q, %q) accepted after a, bc was cached", tc[0], tc[1])
		}
	}
	tab := c.tab.Load()
	if tab.cache.tag("a", "bc") == tab.cache.tag("ab", "c") {
		t.Error("tags of a|bc and ab|c are equal")
	}
	// Another reading has another key.
	if mustParse(t, "").tab.Load().cache.key == tab.cache.key {
		t.Error("two readings share an HMAC key")
	}
}

// TestCacheInvalidatedByReload checks that a changed secret is refused at
// once after Reload, and the unchanged ones hash again.
func TestCacheInvalidatedByReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "clients")
	keep := "b:" + cheapHash(t, "y", cheap) + "\n"
	writeFile(t, path, "a:"+cheapHash(t, "old", cheap)+"\n"+keep, 0o600)
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, p := range [][2]string{{"a", "old"}, {"b", "y"}} {
		if ok, _ := c.Check(ctx, p[0], p[1]); !ok {
			t.Fatalf("%s refused", p[0])
		}
	}
	writeFile(t, path, "a:"+cheapHash(t, "new", cheap)+"\n"+keep, 0o600)
	if err := c.Reload(); err != nil {
		t.Fatal(err)
	}
	seen := countingDerive(c)
	if ok, _ := c.Check(ctx, "a", "old"); ok {
		t.Error("the old secret is accepted after Reload")
	}
	if ok, _ := c.Check(ctx, "a", "new"); !ok {
		t.Error("the new secret is refused after Reload")
	}
	if ok, _ := c.Check(ctx, "b", "y"); !ok {
		t.Error("an unchanged client is refused after Reload")
	}
	if len(*seen) != 3 {
		t.Errorf("%d hashes after Reload, want 3: the cache must start empty", len(*seen))
	}

	// Removed from the file: refused.
	writeFile(t, path, keep, 0o600)
	if err := c.Reload(); err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.Check(ctx, "a", "new"); ok {
		t.Error("a removed client is accepted")
	}
}

// TestCacheBounded checks that the cache holds at most MaxCachedLogons
// entries, however many clients log on.
func TestCacheBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("hashes a few thousand times")
	}
	n := MaxCachedLogons + 50
	var file strings.Builder
	for i := range n {
		fmt.Fprintf(&file, "c%d:%s\n", i, cheapHash(t, fmt.Sprint("s", i), params{memory: 8, time: 1, threads: 1}))
	}
	c := mustParse(t, file.String())
	clock := useClock(c)
	ctx := context.Background()
	for i := range n {
		if ok, _ := c.Check(ctx, fmt.Sprint("c", i), fmt.Sprint("s", i)); !ok {
			t.Fatalf("c%d refused", i)
		}
		if i == n/2 {
			clock.advance(CacheTTL) // the first half expire
		}
	}
	if got := c.tab.Load().cache.len(); got > MaxCachedLogons {
		t.Errorf("%d entries, want at most %d", got, MaxCachedLogons)
	}
	// The newest is kept: a full cache drops the expired ones first.
	seen := countingDerive(c)
	if ok, _ := c.Check(ctx, fmt.Sprint("c", n-1), fmt.Sprint("s", n-1)); !ok || len(*seen) != 0 {
		t.Errorf("newest entry: accepted %v after %d hashes, want true after 0", ok, len(*seen))
	}
}

// TestCacheBurst checks that logons of one client waiting for a slot take
// the result of the one that hashed (and, under -race, the locking).
func TestCacheBurst(t *testing.T) {
	c := mustParse(t, "a:"+cheapHash(t, "x", cheap)+"\n")
	var derived atomic.Int32
	release := make(chan struct{})
	c.derive = func(secret []byte, h *phc) []byte {
		derived.Add(1)
		<-release
		return deriveKey(secret, h)
	}
	var wg sync.WaitGroup
	for range MaxConcurrentChecks * 4 {
		wg.Go(func() {
			if ok, err := c.Check(context.Background(), "a", "x"); !ok || err != nil {
				t.Errorf("Check = %v, %v", ok, err)
			}
		})
	}
	for derived.Load() < MaxConcurrentChecks {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	if d := derived.Load(); d != MaxConcurrentChecks {
		t.Errorf("%d hashes for a burst of %d logons, want %d (those that started before the first ended)",
			d, MaxConcurrentChecks*4, MaxConcurrentChecks)
	}
}

func BenchmarkCheck(b *testing.B) {
	h, err := Hash("opensesame")
	if err != nil {
		b.Fatal(err)
	}
	c, err := Parse(strings.NewReader("OPSAUTO:" + h + "\n"))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.Run("cached", func(b *testing.B) {
		for b.Loop() {
			if ok, _ := c.Check(ctx, "OPSAUTO", "opensesame"); !ok {
				b.Fatal("refused")
			}
		}
	})
	b.Run("wrong-secret", func(b *testing.B) {
		for b.Loop() {
			if ok, _ := c.Check(ctx, "OPSAUTO", "opensesamE"); ok {
				b.Fatal("accepted")
			}
		}
	})
}
