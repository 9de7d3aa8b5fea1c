package linuxagent

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// statStamp adds the inode and change time to st, so that a file replaced
// by rename or rewritten within one mtime tick is still seen to change.
func statStamp(fi os.FileInfo, st *fileStamp) {
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.ino = uint64(sys.Ino)
		st.ctime = int64(sys.Ctim.Sec)*1e9 + int64(sys.Ctim.Nsec)
	}
}

// groupMembers returns the processes of process group pgid that are still
// alive (zombies, which hold nothing but their process ID until their
// parent reaps them, are not counted), read from /proc. ok is false when
// /proc cannot be read.
func groupMembers(pgid int) (pids []int, ok bool) {
	d, err := os.Open("/proc")
	if err != nil {
		return nil, false
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, false
	}
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil {
			continue
		}
		g, state, ok := procStat(pid)
		if ok && g == pgid && state != 'Z' && state != 'X' {
			pids = append(pids, pid)
		}
	}
	return pids, true
}

// procStat returns the process group and state of a process from
// /proc/PID/stat.
func procStat(pid int) (pgid int, state byte, ok bool) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	// pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := bytes.Fields(data[i+1:])
	if len(f) < 4 || len(f[0]) != 1 {
		return 0, 0, false
	}
	pgid, err = strconv.Atoi(string(f[2]))
	if err != nil {
		return 0, 0, false
	}
	return pgid, f[0][0], true
}

// fileOwner returns the user ID owning a file.
func fileOwner(fi os.FileInfo) int {
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(sys.Uid)
	}
	return -1
}

// closeOnExecFrom marks every file descriptor from first up close-on-exec:
// with one close_range(2) and CLOSE_RANGE_CLOEXEC (Linux 5.11), or, on an
// older kernel, one by one as /proc/self/fd lists them.
func closeOnExecFrom(first int) error {
	err := unix.CloseRange(uint(first), uint(^uint32(0)), unix.CLOSE_RANGE_CLOEXEC)
	if err == unix.ENOSYS || err == unix.EINVAL || err == unix.EPERM { // EPERM: some seccomp filters
		return closeOnExecProc(first)
	}
	return err
}

// closeOnExecProc is closeOnExecFrom by /proc/self/fd.
func closeOnExecProc(first int) error {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return err
	}
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd < first {
			continue
		}
		// EBADF: the descriptor ReadDir used, closed since.
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil && err != unix.EBADF {
			return fmt.Errorf("fcntl(%d, F_SETFD, FD_CLOEXEC): %w", fd, err)
		}
	}
	return nil
}

// maxStarters is how many threads a starter keeps at most: commands are
// started on one of them, more at once wait for one to be free. A start
// holds its thread only for the fork, until the exec has succeeded (a
// millisecond or two on a loaded machine), so a handful serves the
// agent's MaxSessions.
const maxStarters = 4

// errStarterClosed is returned by starter.start once the Server has shut
// down; no session is left to ask then.
var errStarterClosed = errors.New("the agent is shutting down")

// A starter starts commands with no_new_privs set (prctl
// PR_SET_NO_NEW_PRIVS): neither the command nor anything it runs can gain
// privileges through execve (set-user-ID or set-group-ID programs such as
// sudo or su, file capabilities).
//
// Go's SysProcAttr has no field for it. The attribute belongs to a thread
// and a child inherits it from the thread that forks it, and keeps it
// across execve. syscall.AllThreadsSyscall could set it on every thread of
// the agent once, at start, but fails (ENOTSUP) in a binary linked with
// cgo, which a plain `go build` gives wherever a C compiler is installed
// (os/user and net use cgo then); a re-exec through a helper would cost an
// exec per command. So the starter keeps threads of its own, up to
// maxStarters, made as they are first needed: a goroutine locks itself to
// its thread, sets the attribute there, and then starts every command
// handed to it from that thread (os/exec forks from the calling thread).
// The goroutine never unlocks, so no other goroutine ever runs on such a
// thread, and when it returns (at close) the runtime retires the thread
// rather than handing it on: it ends it, or, if it was the main thread,
// parks it for good (so /proc/PID/status, which shows the main thread, may
// say NoNewPrivs 1 for the agent itself). The runtime never creates a
// thread from a locked one, so the attribute spreads no further.
//
// Keeping the threads, rather than locking a new goroutine for each
// command and letting its thread be retired, spares each command the
// creation and teardown of a thread: 0.2 to 0.6 ms of the ~2 ms a start
// took on a loaded two-CPU machine.
//
// Goroutines: one per thread, up to maxStarters, started by start and
// waited for by close.
type starter struct {
	reqs chan startReq // to the threads; closed by close
	wg   sync.WaitGroup

	mu      sync.Mutex // guards the following fields
	threads int        // threads started
	closed  bool
}

type startReq struct {
	cmd  *exec.Cmd
	done chan<- error
}

func newStarter() *starter { return &starter{reqs: make(chan startReq)} }

// start starts cmd from one of the starter's threads and returns
// cmd.Start's error, or errStarterClosed after close.
func (st *starter) start(cmd *exec.Cmd) error {
	done := make(chan error, 1)
	req := startReq{cmd: cmd, done: done}
	st.mu.Lock()
	if st.closed {
		st.mu.Unlock()
		return errStarterClosed
	}
	select {
	case st.reqs <- req: // a thread was waiting
		st.mu.Unlock()
		return <-done
	default:
	}
	if st.threads < maxStarters {
		st.threads++
		st.wg.Add(1)
		go st.thread()
	}
	// Sent under mu, so that close cannot close reqs meanwhile: the
	// threads take requests without mu, so this waits only for a start.
	st.reqs <- req
	st.mu.Unlock()
	return <-done
}

// thread is the goroutine of one starter thread.
func (st *starter) thread() {
	defer st.wg.Done()
	runtime.LockOSThread() // never unlocked: see starter
	nnpErr := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
	if nnpErr != nil {
		nnpErr = fmt.Errorf("prctl(PR_SET_NO_NEW_PRIVS): %w", nnpErr)
	}
	for req := range st.reqs {
		if nnpErr != nil {
			req.done <- nnpErr
			continue
		}
		req.done <- req.cmd.Start()
	}
}

// close ends the starter's threads and waits for them. Calling it again
// does nothing.
func (st *starter) close() {
	st.mu.Lock()
	if !st.closed {
		st.closed = true
		close(st.reqs)
	}
	st.mu.Unlock()
	st.wg.Wait()
}
