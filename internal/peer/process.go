package peer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Default timeouts of a [Command].
const (
	DefaultReadyTimeout = 30 * time.Second
	DefaultStopTimeout  = 10 * time.Second
)

// ReadyFunc reports whether a started program is ready for the test, such as
// accepting connections. It should give up when ctx is done. [Start] calls it
// repeatedly until it returns nil.
type ReadyFunc func(ctx context.Context) error

// Command describes a program for [Start] to run.
type Command struct {
	// Name labels the program in logs and failures; default: base of Path.
	Name string
	// Path is the program, usually from [Require].
	Path string
	// Args are the arguments, without the program name.
	Args []string
	// Dir is the working directory; default: a new t.TempDir().
	Dir string
	// Env is added to the test's own environment (KEY=value).
	Env []string
	// KeepStdinOpen gives the program a standard input that stays open
	// until it stops, written to through [Process.Stdin]. Hercules, for
	// one, exits when its standard input ends. Otherwise stdin is /dev/null.
	KeepStdinOpen bool
	// Ready, if set, is polled after each start until it returns nil; the
	// test fails if the program exits first or ReadyTimeout passes.
	Ready ReadyFunc
	// ReadyTimeout bounds the wait for Ready; default DefaultReadyTimeout.
	ReadyTimeout time.Duration
	// StopTimeout is how long Stop waits after SIGTERM before it sends
	// SIGKILL; default DefaultStopTimeout.
	StopTimeout time.Duration
	// Logs are more files the program writes its log to; [Process.Log]
	// and the failure report include them after its output.
	Logs []string
}

// Process is a program started by [Start]. It runs in a process group of its
// own, so that stopping it also stops any children it forked. Its methods
// are safe to call from several goroutines, but those taking the test's
// t.Fatal path (Restart) only from the test goroutine.
type Process struct {
	t       testing.TB
	cmd     Command // defaults filled in
	logPath string  // standard output and error of every run

	mu   sync.Mutex // guards the following fields
	cur  *run       // the latest run; nil before the first start
	runs int        // how many times the program was started
}

// run is one execution of the program.
type run struct {
	pid   int
	stdin io.WriteCloser // nil unless KeepStdinOpen
	done  chan struct{}  // closed once the process has been waited for
	err   error          // from exec.Cmd.Wait; read only after done
}

// Start runs c and, if c.Ready is set, waits until it is ready. The program
// is stopped (SIGTERM, then SIGKILL after c.StopTimeout) and waited for in
// t.Cleanup; if the test failed, its log is written to the test log then.
func Start(t testing.TB, c Command) *Process {
	t.Helper()
	if c.Path == "" {
		t.Fatal("peer.Start: Command.Path is empty")
	}
	if c.Name == "" {
		c.Name = filepath.Base(c.Path)
	}
	if c.Dir == "" {
		c.Dir = t.TempDir()
	}
	if c.ReadyTimeout <= 0 {
		c.ReadyTimeout = DefaultReadyTimeout
	}
	if c.StopTimeout <= 0 {
		c.StopTimeout = DefaultStopTimeout
	}
	c.Args = append([]string(nil), c.Args...)
	c.Env = append([]string(nil), c.Env...)
	c.Logs = append([]string(nil), c.Logs...)
	p := &Process{
		t:       t,
		cmd:     c,
		logPath: filepath.Join(t.TempDir(), c.Name+".log"),
	}
	t.Cleanup(func() {
		// A program that ended before the cleanup, and how (a peer killed
		// by something else shows as "signal: killed" here).
		ended := ""
		if r := p.current(); r != nil {
			select {
			case <-r.done:
				ended = fmt.Sprintf(" (pid %d had ended before the cleanup: %v)", r.pid, r.err)
			default:
			}
		}
		p.Stop()
		if t.Failed() {
			t.Logf("%s: log of %s %s%s:\n%s", p.cmd.Name, p.cmd.Path,
				strings.Join(p.cmd.Args, " "), ended, tail(p.Log(), 64<<10))
		}
	})
	p.start()
	return p
}

// Name returns the program's label (Command.Name).
func (p *Process) Name() string { return p.cmd.Name }

// Pid returns the process ID of the latest run.
func (p *Process) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == nil {
		return 0
	}
	return p.cur.pid
}

// Running reports whether the latest run has not exited yet.
func (p *Process) Running() bool {
	r := p.current()
	if r == nil {
		return false
	}
	select {
	case <-r.done:
		return false
	default:
		return true
	}
}

// Done returns a channel that is closed when the latest run has exited and
// been waited for.
func (p *Process) Done() <-chan struct{} { return p.current().done }

// Wait waits for the latest run to exit, without signalling it, and returns
// its exit error as exec.Cmd.Wait reports it.
func (p *Process) Wait() error {
	r := p.current()
	<-r.done
	return r.err
}

// Stdin returns the standard input of the latest run when the command was
// started with KeepStdinOpen, or nil.
func (p *Process) Stdin() io.Writer {
	r := p.current()
	if r == nil || r.stdin == nil {
		return nil
	}
	return r.stdin
}

// Signal sends sig to the program's process group.
func (p *Process) Signal(sig syscall.Signal) error {
	r := p.current()
	if r == nil {
		return os.ErrProcessDone
	}
	select {
	case <-r.done:
		return os.ErrProcessDone
	default:
	}
	return syscall.Kill(-r.pid, sig)
}

// Stop sends SIGTERM to the program's process group and waits for the
// program to exit; after StopTimeout it sends SIGKILL. Stopping a stopped
// program does nothing.
func (p *Process) Stop() { p.stop(syscall.SIGTERM) }

// Kill sends SIGKILL to the program's process group, as a crash would, and
// waits for the program to exit.
func (p *Process) Kill() { p.stop(syscall.SIGKILL) }

// Restart stops the program if it is running, starts it again with the same
// command (same ports and files), and waits until it is ready. Its output is
// appended to the same log.
func (p *Process) Restart() {
	p.t.Helper()
	p.Stop()
	p.start()
}

// Log returns what the program wrote to its standard output and error, over
// all its runs, followed by the content of the command's other log files.
func (p *Process) Log() string {
	var b strings.Builder
	for i, path := range append([]string{p.logPath}, p.cmd.Logs...) {
		data, err := os.ReadFile(path)
		if i > 0 {
			fmt.Fprintf(&b, "\n--- %s ---\n", path)
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(&b, "(%v)\n", err)
		}
		b.Write(data)
	}
	return b.String()
}

func (p *Process) current() *run {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cur
}

// start starts a new run and waits until it is ready, failing the test if
// either goes wrong.
func (p *Process) start() {
	p.t.Helper()
	r, err := p.spawn()
	if err != nil {
		p.t.Fatalf("%s: %v", p.cmd.Name, err)
	}
	if p.cmd.Ready == nil {
		return
	}
	if err := p.waitReady(r); err != nil {
		p.Stop()
		p.t.Fatalf("%s: %v (its log follows at cleanup)", p.cmd.Name, err)
	}
}

func (p *Process) spawn() (*run, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur != nil {
		select {
		case <-p.cur.done:
		default:
			return nil, errors.New("start: still running")
		}
	}
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	// The child gets its own copy of the descriptor.
	defer logf.Close()
	if p.runs > 0 {
		fmt.Fprintf(logf, "--- peer: restart %d at %s ---\n", p.runs, time.Now().Format(time.RFC3339Nano))
	}

	cmd := exec.Command(p.cmd.Path, p.cmd.Args...)
	cmd.Dir = p.cmd.Dir
	cmd.Env = append(os.Environ(), p.cmd.Env...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// A group of its own: Stop signals the program and its children.
		Setpgid: true,
		// If the test binary dies without cleaning up, so does the peer
		// (forked from the spawner thread, see spawn.go).
		Pdeathsig: syscall.SIGKILL,
	}
	r := &run{done: make(chan struct{})}
	if p.cmd.KeepStdinOpen {
		if r.stdin, err = cmd.StdinPipe(); err != nil {
			return nil, err
		}
	}
	if err := StartCmd(cmd); err != nil { // from the spawner thread: see spawn.go
		return nil, fmt.Errorf("start %s: %w", p.cmd.Path, err)
	}
	r.pid = cmd.Process.Pid
	p.cur = r
	p.runs++
	// Owned by r: done is closed when it returns; stop waits for that.
	go func() {
		r.err = cmd.Wait()
		close(r.done)
	}()
	return r, nil
}

func (p *Process) waitReady(r *run) error {
	ctx, cancel := context.WithTimeout(p.t.Context(), p.cmd.ReadyTimeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var err error
	for {
		select {
		case <-r.done:
			return fmt.Errorf("exited before it was ready (%v); last readiness check: %v", r.err, err)
		default:
		}
		probe, cancelProbe := context.WithTimeout(ctx, time.Second)
		err = p.cmd.Ready(probe)
		cancelProbe()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready after %v: %v", p.cmd.ReadyTimeout, err)
		case <-r.done:
		case <-tick.C:
		}
	}
}

func (p *Process) stop(sig syscall.Signal) {
	r := p.current()
	if r == nil {
		return
	}
	select {
	case <-r.done:
		return
	default:
	}
	_ = syscall.Kill(-r.pid, sig)
	if sig != syscall.SIGKILL {
		select {
		case <-r.done:
		case <-time.After(p.cmd.StopTimeout):
			_ = syscall.Kill(-r.pid, syscall.SIGKILL)
		}
	}
	<-r.done
	// Children the program left behind in its group. The group ID cannot
	// have been reused while the group still has members.
	_ = syscall.Kill(-r.pid, syscall.SIGKILL)
}

// tail returns the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
