package peer

import (
	"os/exec"
	"runtime"
)

// Peers are started with Pdeathsig, so that they die with a test binary
// that dies without cleaning up. But Linux sends that signal when the
// thread that forked the child ends, not the process (prctl(2),
// PR_SET_PDEATHSIG; golang/go#27505), and the Go runtime ends a thread
// whenever a goroutine that locked it returns without unlocking it — as
// the Linux agent's command start does (linuxagent/sys_linux.go). A peer
// forked from such a thread was killed in the middle of a test (the Redis
// Cluster nodes of gateway/region's tests, beside in-process Linux
// agents). So every peer is forked from one goroutine locked to its thread
// for the life of the test process: the thread ends only with it.

// spawnJob is a command for the spawner to start.
type spawnJob struct {
	cmd  *exec.Cmd
	done chan<- error
}

// spawnJobs feeds the spawner, which init starts: before any test runs, so
// that a test's goroutine count (internal/leakcheck) already has it.
var spawnJobs = make(chan spawnJob)

func init() {
	go func() { // lives as long as the process, on its own thread
		runtime.LockOSThread()
		for j := range spawnJobs {
			j.done <- j.cmd.Start()
		}
	}()
}

// StartCmd starts cmd (cmd.Start) from the peers' spawner thread. Use it
// for any command whose SysProcAttr sets Pdeathsig.
func StartCmd(cmd *exec.Cmd) error {
	done := make(chan error, 1)
	spawnJobs <- spawnJob{cmd, done}
	return <-done
}
