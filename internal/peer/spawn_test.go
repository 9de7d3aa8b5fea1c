package peer

import (
	"os/exec"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// TestSpawnSurvivesThreadExit: a peer started with Pdeathsig lives on when
// the thread of the goroutine that started it ends. Here that goroutine
// locks its thread and returns locked, so that the runtime ends the thread
// (as the Linux agent's command start does to any thread): a child forked
// from that thread would get SIGKILL (19 of 20 did, forked with cmd.Start);
// one forked from the spawner thread must not.
func TestSpawnSurvivesThreadExit(t *testing.T) {
	path, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep program")
	}
	var cmds []*exec.Cmd
	for range 8 {
		cmd := exec.Command(path, "30")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		started := make(chan error, 1)
		go func() {
			runtime.LockOSThread() // never unlocked: its thread ends with it
			started <- StartCmd(cmd)
		}()
		if err := <-started; err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
		t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); cmd.Wait() })
	}
	time.Sleep(300 * time.Millisecond) // the signal, had there been one
	for i, cmd := range cmds {
		var ws syscall.WaitStatus
		if pid, _ := syscall.Wait4(cmd.Process.Pid, &ws, syscall.WNOHANG, nil); pid == cmd.Process.Pid {
			t.Errorf("peer %d died when the thread of the goroutine that started it ended: %v", i, ws.Signal())
		}
	}
}
