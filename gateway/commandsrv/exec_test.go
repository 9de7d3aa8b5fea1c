package commandsrv_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zbridge/zbridge/commands"
)

// shExec runs each request's Command with sh -c as a local process,
// streaming its stdout and stderr as they come, a line at a time (or
// pieces of maxLine bytes of a longer one), and returns its exit status.
// When ctx ends it kills the process's whole group.
type shExec struct {
	maxLine int
}

func (e shExec) Run(ctx context.Context, req *commands.Request, out func(commands.Output)) (commands.Result, error) {
	var mu sync.Mutex // out is never called concurrently
	emit := func(o commands.Output) {
		mu.Lock()
		defer mu.Unlock()
		out(o)
	}
	stdout := &lineWriter{stream: commands.Stdout, max: e.maxLine, emit: emit}
	stderr := &lineWriter{stream: commands.Stderr, max: e.maxLine, emit: emit}
	cmd := exec.CommandContext(ctx, "sh", "-c", req.Command)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = waitTimeout // a safety net: killing the group closes the pipes
	err := cmd.Run()
	stdout.flush()
	stderr.flush()
	if ctx.Err() != nil {
		// Killed: a plain error, so that the router says why.
		return commands.Result{}, fmt.Errorf("sh: %w", err)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return commands.Result{RC: 128 + int(ws.Signal()), Signal: ws.Signal().String()}, nil
		}
		return commands.Result{RC: ee.ExitCode()}, nil
	}
	if err != nil {
		return commands.Result{}, err
	}
	return commands.Result{}, nil
}

// lineWriter cuts what a process writes into Outputs. Its Write is called
// from one goroutine of os/exec.
type lineWriter struct {
	stream commands.Stream
	max    int
	emit   func(commands.Output)
	buf    []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		switch {
		case i >= 0 && i <= w.max:
			w.send(w.buf[:i], true)
			w.buf = w.buf[i+1:]
		case len(w.buf) > w.max:
			w.send(w.buf[:w.max], false)
			w.buf = w.buf[w.max:]
		default:
			w.buf = append([]byte(nil), w.buf...)
			return len(p), nil
		}
	}
}

func (w *lineWriter) flush() {
	if len(w.buf) > 0 {
		w.send(w.buf, false)
		w.buf = nil
	}
}

func (w *lineWriter) send(b []byte, eol bool) {
	w.emit(commands.Output{Stream: w.stream, Data: bytes.Clone(b), EOL: eol})
}

// blockExec writes "started" and then runs until its context ends or
// release is closed. started and ended receive each request's ID when it
// begins and when it sees its context end.
type blockExec struct {
	started, ended chan string
	release        chan struct{}
	releaseOnce    sync.Once
}

func newBlockExec() *blockExec {
	return &blockExec{started: make(chan string, 100), ended: make(chan string, 100), release: make(chan struct{})}
}

func (e *blockExec) Run(ctx context.Context, req *commands.Request, out func(commands.Output)) (commands.Result, error) {
	out(commands.Output{Stream: commands.Stdout, Data: []byte("started"), EOL: true})
	e.started <- req.ID
	select {
	case <-ctx.Done():
		e.ended <- req.ID
		return commands.Result{}, errors.New("stopped")
	case <-e.release:
		out(commands.Output{Stream: commands.Stdout, Data: []byte("released"), EOL: true})
		return commands.Result{}, nil
	}
}

func (e *blockExec) releaseAll() { e.releaseOnce.Do(func() { close(e.release) }) }

// waitStarted waits for n commands to start and returns their IDs.
func (e *blockExec) waitStarted(t *testing.T, n int) []string {
	t.Helper()
	return waitIDs(t, e.started, n, "start")
}

func waitIDs(t *testing.T, ch chan string, n int, what string) []string {
	t.Helper()
	var ids []string
	timeout := time.After(waitTimeout)
	for range n {
		select {
		case id := <-ch:
			ids = append(ids, id)
		case <-timeout:
			t.Fatalf("only %d of %d commands did %s", len(ids), n, what)
		}
	}
	return ids
}
