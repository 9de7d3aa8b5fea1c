package peer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Descendants returns the process IDs of the processes below the peer's,
// from /proc: such as the processes sshd starts to serve each connection,
// in sessions of their own (setsid), which signalling the peer's process
// group does not reach. A test that crashes sshd kills them too, as a
// host going down would.
func (p *Process) Descendants() []int {
	parent := map[int]int{}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, path := range stats {
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		s := string(data)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		var pid, ppid int
		var state string
		if _, err := fmt.Sscan(s[:strings.IndexByte(s, ' ')], &pid); err != nil {
			continue
		}
		if _, err := fmt.Sscan(s[i+1:], &state, &ppid); err != nil {
			continue
		}
		parent[pid] = ppid
	}
	var pids []int
	var descend func(int)
	descend = func(pp int) {
		for pid, ppid := range parent {
			if ppid == pp {
				pids = append(pids, pid)
				descend(pid)
			}
		}
	}
	descend(p.Pid())
	return pids
}

// SignalAll sends sig to each of pids; one already gone is no error.
func SignalAll(t testing.TB, pids []int, sig syscall.Signal) {
	t.Helper()
	for _, pid := range pids {
		if err := syscall.Kill(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			t.Errorf("kill %d %v: %v", pid, sig, err)
		}
	}
}
