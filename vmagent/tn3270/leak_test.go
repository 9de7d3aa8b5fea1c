package tn3270

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestMain fails the run if goroutines of this package outlive the tests
// (a Client whose reader was not waited for, a test host left running).
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaked := leakedGoroutines(5 * time.Second); leaked != "" {
			fmt.Fprintf(os.Stderr, "goroutines leaked by the tests:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

// leakedGoroutines waits up to wait for this package's goroutines (other
// than the caller) to end, and returns the stacks of those left.
func leakedGoroutines(wait time.Duration) string {
	deadline := time.Now().Add(wait)
	for {
		var leaked []string
		for _, g := range goroutineStacks() {
			if strings.Contains(g, "vmagent/tn3270.") && !strings.Contains(g, "tn3270.TestMain") &&
				!strings.Contains(g, "tn3270.leakedGoroutines") {
				leaked = append(leaked, g)
			}
		}
		if len(leaked) == 0 || time.Now().After(deadline) {
			return strings.Join(leaked, "\n\n")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func goroutineStacks() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Split(string(buf[:n]), "\n\n")
		}
		buf = make([]byte, 2*len(buf))
	}
}

// countGoroutines counts the goroutines whose stack mentions fn.
func countGoroutines(fn string) int {
	n := 0
	for _, g := range goroutineStacks() {
		if strings.Contains(g, fn) {
			n++
		}
	}
	return n
}
