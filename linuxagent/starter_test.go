package linuxagent

import (
	"bytes"
	"errors"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

// TestStarter starts more commands at once than the starter has threads:
// each runs with no_new_privs, the threads stay within maxStarters, and
// after close nothing starts.
func TestStarter(t *testing.T) {
	st := newStarter()
	var wg sync.WaitGroup
	for range 3 * maxStarters {
		wg.Go(func() {
			var out bytes.Buffer
			cmd := exec.Command("/bin/sh", "-c", "grep NoNewPrivs /proc/self/status")
			cmd.Stdout = &out
			if err := st.start(cmd); err != nil {
				t.Errorf("start: %v", err)
				return
			}
			if err := cmd.Wait(); err != nil {
				t.Errorf("wait: %v", err)
			}
			if got := strings.Join(strings.Fields(out.String()), " "); got != "NoNewPrivs: 1" {
				t.Errorf("the command's status says %q, want NoNewPrivs: 1", got)
			}
		})
	}
	wg.Wait()
	st.mu.Lock()
	threads := st.threads
	st.mu.Unlock()
	if threads < 1 || threads > maxStarters {
		t.Errorf("%d starter threads, want 1 to %d", threads, maxStarters)
	}
	st.close()
	st.close() // again: nothing happens
	if err := st.start(exec.Command("/bin/true")); !errors.Is(err, errStarterClosed) {
		t.Errorf("start after close = %v, want errStarterClosed", err)
	}
}
