// Package leakcheck fails a test that leaves goroutines behind: the check
// every server's tests make that Shutdown and Close wait for what they
// started.
package leakcheck

import (
	"runtime"
	"testing"
	"time"
)

// Check records the number of goroutines now and, when the test ends, waits
// up to 2 s for it to fall back there; if it does not, the test fails with
// every goroutine's stack. Call it before anything that starts goroutines,
// so that its cleanup runs after theirs.
func Check(t testing.TB) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() { wait(t, before, 2*time.Second, t.Errorf) })
}

// Wait waits up to timeout for the number of goroutines to fall back to
// before, and fails the test at once with every goroutine's stack if it
// does not.
func Wait(t testing.TB, before int, timeout time.Duration) {
	t.Helper()
	wait(t, before, timeout, t.Fatalf)
}

func wait(t testing.TB, before int, timeout time.Duration, fail func(string, ...any)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		n := runtime.NumGoroutine()
		if n <= before {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			fail("%d goroutines left, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}
