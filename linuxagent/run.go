package linuxagent

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/zbridge/zbridge/protocol/agentproto"
)

// commandPath is the only PATH commands are looked up in and run with.
var commandPath = []string{"/usr/local/bin", "/usr/bin", "/bin"}

const (
	// groupGoneTimeout bounds the wait for a killed process group to die.
	groupGoneTimeout = 5 * time.Second
	// escapeeWait is how long the output pipes are read, once the process
	// group is gone and they are empty, before the agent stops waiting for
	// their end: only a process that left the group (setsid) can still
	// hold them.
	escapeeWait = time.Second
	// drainTimeout bounds the sending of the output left once the process
	// group is gone. A region that reads none of it for that long gets the
	// channel closed, and then the connection: x/crypto/ssh has no other
	// way to unblock a write waiting for the region's window.
	drainTimeout = 30 * time.Second
	// copyBuffer is the size of one read from a command's output pipe.
	copyBuffer = 32 << 10
)

// outcome is how a command ended: the Result sent to the region and what
// only the agent needs.
type outcome struct {
	agentproto.Result
	note       string // the agent's own line for the region's standard error
	coreDumped bool
	cancelled  bool // terminated because the region closed the channel
}

// runCommand runs a command line under the policy and returns how it
// ended, once its process group is gone. Its output goes to sess.ch as it
// comes. Closing cancel terminates it, as does Server.kill.
func (s *Server) runCommand(sess *session, line string, cancel <-chan struct{}) *outcome {
	start := time.Now()
	o := &outcome{Result: agentproto.Result{CommandID: sess.commandID, Agent: s.cfg.Name, Platform: s.platform}}
	timeout := s.policy.Timeout
	if sess.timeout > 0 {
		timeout = min(sess.timeout, s.policy.MaxTimeout)
	}
	o.TimeoutMS = timeout.Milliseconds()
	refuse := func(code string, status int, format string, args ...any) *outcome {
		o.Error, o.ExitStatus = code, status
		o.Message = fmt.Sprintf(format, args...)
		o.note = o.Message
		o.DurationMS = time.Since(start).Milliseconds()
		return o
	}

	if err := agentproto.CheckCommand(line); err != nil {
		// The region checks first: only a client of its own sends this.
		return refuse(agentproto.CodeBadCommand, agentproto.ExitBadCommand, "%v", err)
	}
	if sess.ptyRequested {
		return refuse(agentproto.CodeNotPermitted, agentproto.ExitNotPermitted, "not permitted: a terminal (pty) was requested; the agent runs commands without one")
	}
	var argv []string
	var subject string
	if s.policy.Shell {
		subject = strings.TrimSpace(line)
		switch {
		case subject == "":
			return refuse(agentproto.CodeBadCommand, agentproto.ExitBadCommand, "malformed command line: empty command")
		case strings.IndexByte(line, 0) >= 0:
			return refuse(agentproto.CodeBadCommand, agentproto.ExitBadCommand, "malformed command line: NUL byte")
		}
		argv = []string{"/bin/sh", "-c", line}
	} else {
		var err error
		argv, err = SplitCommand(line)
		var se *SplitError
		switch {
		case errors.As(err, &se) && se.Kind == ErrShellSyntax:
			return refuse(agentproto.CodeNotPermitted, agentproto.ExitNotPermitted,
				"not permitted: shell syntax (%s at offset %d); policy does not allow sh -c", se.Detail, se.Offset)
		case errors.As(err, &se):
			return refuse(agentproto.CodeBadCommand, agentproto.ExitBadCommand, "malformed command line: %s at offset %d", se.Detail, se.Offset)
		case err != nil:
			return refuse(agentproto.CodeBadCommand, agentproto.ExitBadCommand, "malformed command line: %v", err)
		}
		subject = strings.Join(argv, " ")
	}
	decide := func() (Action, *Rule) { return s.policy.Decide(subject) }
	if !s.policy.Shell {
		// The words are the argv: an argument with a blank in it is one
		// word, as the program will see it.
		decide = func() (Action, *Rule) { return s.policy.DecideArgv(argv) }
	}
	if action, rule := decide(); action != Allow {
		switch {
		case rule == nil:
			return refuse(agentproto.CodeNotPermitted, agentproto.ExitNotPermitted, "not permitted: no policy rule allows %q", subject)
		case rule.Line > 0:
			return refuse(agentproto.CodeNotPermitted, agentproto.ExitNotPermitted, "not permitted: %q is denied by the policy (line %d)", subject, rule.Line)
		default:
			return refuse(agentproto.CodeNotPermitted, agentproto.ExitNotPermitted, "not permitted: %q is denied by the policy", subject)
		}
	}
	path, err := s.lookPath(argv[0])
	if errors.Is(err, fs.ErrNotExist) {
		return refuse(agentproto.CodeNotFound, agentproto.ExitNotFound, "not found: %s", argv[0])
	} else if err != nil {
		return refuse(agentproto.CodeCannotExecute, agentproto.ExitCannotExecute, "cannot execute %s: %v", argv[0], err)
	}

	outR, outW, err := os.Pipe()
	if err != nil {
		return refuse(agentproto.CodeCannotExecute, agentproto.ExitCannotExecute, "cannot execute %s: %v", argv[0], err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return refuse(agentproto.CodeCannotExecute, agentproto.ExitCannotExecute, "cannot execute %s: %v", argv[0], err)
	}
	env := []string{"PATH=" + strings.Join(commandPath, ":"), "LANG=C.UTF-8", "HOME=" + s.home}
	if sess.commandID != "" {
		env = append(env, agentproto.EnvCommandID+"="+sess.commandID)
	}
	cmd := &exec.Cmd{
		Path:   path,
		Args:   argv,
		Env:    env,
		Dir:    s.home,
		Stdout: outW, // *os.File: the child gets the pipe itself, no copying goroutine in exec
		Stderr: errW,
		// Stdin nil: /dev/null.
		// A session of its own, and so a group of its own (pgid = pid),
		// without the agent's controlling terminal: an agent started
		// from a terminal does not lend it to the commands (a command
		// could otherwise type into it with TIOCSTI).
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	err = s.starter.start(cmd)
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		if errors.Is(err, fs.ErrNotExist) { // e.g. a script's interpreter
			return refuse(agentproto.CodeNotFound, agentproto.ExitNotFound, "not found: %s: %v", argv[0], unwrapPathError(err))
		}
		return refuse(agentproto.CodeCannotExecute, agentproto.ExitCannotExecute, "cannot execute %s: %v", argv[0], unwrapPathError(err))
	}
	pgid := cmd.Process.Pid
	o.PID = pgid

	sink := &outputSink{limit: s.policy.OutputCap, hit: make(chan struct{})}
	copiers := make(chan struct{}, 2) // one value per copier that is done
	var copying [2]atomic.Int32       // each copier's copyState
	go func() { sink.copy(sess.ch, outR, &copying[0]); copiers <- struct{}{} }()
	go func() { sink.copy(sess.ch.Stderr(), errR, &copying[1]); copiers <- struct{}{} }()
	// Both owned here: drain receives from copiers twice.
	waitDone := make(chan struct{})
	var waitErr error
	go func() { // owned here: waitDone is received from below
		waitErr = cmd.Wait()
		close(waitDone)
	}()

	var (
		timer      = time.NewTimer(timeout)
		termSent   bool
		capStopped bool // terminated for going over the output cap
		grace      <-chan time.Time
		capHit     = sink.hit
		cancelC    = cancel
		killC      = s.killNow
	)
	defer timer.Stop()
	terminate := func() {
		if !termSent {
			termSent = true
			syscall.Kill(-pgid, syscall.SIGTERM)
			grace = time.After(s.cfg.KillGrace)
		}
	}
wait:
	for {
		select {
		case <-waitDone:
			break wait
		case <-timer.C:
			o.TimedOut = true
			terminate()
		case <-capHit:
			capHit = nil
			capStopped = true
			terminate()
		case <-cancelC:
			cancelC = nil
			o.cancelled = true
			terminate()
		case <-killC:
			killC, grace = nil, nil
			syscall.Kill(-pgid, syscall.SIGKILL)
		case <-grace:
			grace = nil
			syscall.Kill(-pgid, syscall.SIGKILL)
		}
	}
	// The command is over when its first process is; whatever it left in
	// its group is killed, and waited for. (The group ID cannot have been
	// reused while any member is left. If none is, the signal could only
	// reach a process given the same number and made a group leader in
	// the microseconds since the leader was reaped.)
	if syscall.Kill(-pgid, syscall.SIGKILL) == nil {
		if !waitGroupGone(pgid, groupGoneTimeout) {
			sess.log.WithField("pgid", pgid).Error("process group still alive after SIGKILL")
		}
	}

	s.drain(sess, outR, errR, copiers, &copying)
	o.DurationMS = time.Since(start).Milliseconds()
	o.OutputBytes, o.Truncated = sink.result()
	if ps := cmd.ProcessState; ps != nil {
		ws := ps.Sys().(syscall.WaitStatus)
		if ws.Signaled() {
			o.ExitStatus, o.Signal, o.coreDumped = -1, signalName(ws.Signal()), ws.CoreDump()
		} else {
			o.ExitStatus = ws.ExitStatus()
		}
	} else {
		o.ExitStatus, o.Error = agentproto.ExitCannotExecute, agentproto.CodeCannotExecute
		o.Message = fmt.Sprintf("lost track of the command: %v", waitErr)
		o.note = o.Message
	}
	var notes []string
	if o.TimedOut {
		notes = append(notes, fmt.Sprintf("timed out after %v; the command's process group was terminated", timeout))
	}
	if o.Truncated {
		note := fmt.Sprintf("output truncated at %d bytes (the output cap)", s.policy.OutputCap)
		if capStopped {
			note += "; the command was terminated"
		}
		notes = append(notes, note)
	}
	if len(notes) > 0 {
		o.Message = strings.Join(notes, "; ")
		o.note = o.Message
	}
	return o
}

// drain waits for the two output copiers once the command's process group
// is gone, then closes the pipes. It stops reading pipes that stay open and
// empty for escapeeWait (held by a process that left the group), and gives
// up on a region that takes in nothing for Server.drainTimeout.
func (s *Server) drain(sess *session, outR, errR *os.File, copiers <-chan struct{}, copying *[2]atomic.Int32) {
	defer outR.Close()
	defer errR.Close()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var (
		done        int
		start       = time.Now()
		idleSince   time.Time // since when every copier left is waiting in Read
		stopReading bool
		closedCh    bool
		closedConn  bool
	)
	for done < 2 {
		select {
		case <-copiers:
			done++
			continue
		case <-tick.C:
		}
		idle := true
		for i := range copying {
			if st := copying[i].Load(); st == copyWriting {
				idle = false
			}
		}
		switch {
		case !idle:
			idleSince = time.Time{}
		case idleSince.IsZero():
			idleSince = time.Now()
		case !stopReading && time.Since(idleSince) > escapeeWait:
			stopReading = true
			sess.log.Warn("a process that left the command's process group holds its output open; no longer reading it")
			outR.SetReadDeadline(time.Now())
			errR.SetReadDeadline(time.Now())
		}
		if !closedCh && time.Since(start) > s.drainTimeout {
			closedCh = true
			sess.log.Warn("the region takes in no output; closing the session")
			sess.ch.Close()
			outR.SetReadDeadline(time.Now())
			errR.SetReadDeadline(time.Now())
		}
		if closedCh && !closedConn && time.Since(start) > s.drainTimeout+time.Second {
			closedConn = true
			sess.log.Error("the region reads nothing on its connection; closing it")
			sess.c.nc.Close()
		}
	}
}

// unwrapPathError drops the *fs.PathError wrapping, whose path repeats
// what the message already says.
func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// lookPath resolves a command's argv[0]: a name with a slash is taken as
// a path (relative to the commands' working directory), any other name is
// looked up in commandPath. The error wraps fs.ErrNotExist when there is
// no such program.
func (s *Server) lookPath(name string) (string, error) {
	if strings.Contains(name, "/") {
		path := name
		if !filepath.IsAbs(path) {
			path = filepath.Join(s.home, path)
		}
		fi, err := os.Stat(path)
		if err != nil {
			return "", err
		}
		if fi.IsDir() {
			return "", errors.New("is a directory")
		}
		if fi.Mode()&0o111 == 0 {
			return "", errors.New("permission denied")
		}
		return path, nil
	}
	for _, dir := range commandPath {
		path := filepath.Join(dir, name)
		if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return path, nil
		}
	}
	return "", fs.ErrNotExist
}

// waitGroupGone waits until process group pgid has no live member left,
// killing again whatever is there, for at most limit. Zombies count as
// gone: they hold nothing, and their parent (init, once the agent has
// reaped the group's leader) reaps them.
func waitGroupGone(pgid int, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for {
		if syscall.Kill(-pgid, 0) == syscall.ESRCH {
			return true
		}
		if pids, ok := groupMembers(pgid); ok && len(pids) == 0 {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		syscall.Kill(-pgid, syscall.SIGKILL)
		time.Sleep(5 * time.Millisecond)
	}
}

// outputSink passes a command's standard output and error to the channel
// up to the output cap, counting both together.
type outputSink struct {
	limit int64
	hit   chan struct{} // closed when output first goes over limit

	mu        sync.Mutex // guards the following fields
	sent      int64      // bytes passed on (or being passed on)
	truncated bool
	broken    bool // a write to the channel failed: discard the rest
}

// States of a copier, for drain.
const (
	copyWriting int32 = iota // passing data on (or about to read)
	copyReading              // waiting in Read for the pipe
	copyDone
)

// copy reads r to its end, writing to w what the cap allows and
// discarding the rest, so that the command never blocks on a full pipe
// once its output is no longer wanted. state tells drain what it is doing.
func (o *outputSink) copy(w io.Writer, r io.Reader, state *atomic.Int32) {
	defer state.Store(copyDone)
	buf := make([]byte, copyBuffer)
	for {
		state.Store(copyReading)
		n, err := r.Read(buf)
		state.Store(copyWriting)
		if n > 0 {
			o.write(w, buf[:n])
		}
		if err != nil {
			return
		}
	}
}

func (o *outputSink) write(w io.Writer, p []byte) {
	o.mu.Lock()
	n := int64(len(p))
	if room := o.limit - o.sent; n > room {
		n = max(room, 0)
		if !o.truncated {
			o.truncated = true
			close(o.hit)
		}
	}
	o.sent += n
	broken := o.broken
	o.mu.Unlock()
	if n == 0 || broken {
		return
	}
	if _, err := w.Write(p[:n]); err != nil {
		o.mu.Lock()
		o.broken = true
		o.mu.Unlock()
	}
}

// result returns how many bytes were sent and whether output was cut.
func (o *outputSink) result() (int64, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.sent, o.truncated
}

// signalNames are the exit-signal names of RFC 4254 section 6.10, and a
// few more Linux signals under the same scheme.
var signalNames = map[syscall.Signal]string{
	syscall.SIGABRT: "ABRT", syscall.SIGALRM: "ALRM", syscall.SIGFPE: "FPE",
	syscall.SIGHUP: "HUP", syscall.SIGILL: "ILL", syscall.SIGINT: "INT",
	syscall.SIGKILL: "KILL", syscall.SIGPIPE: "PIPE", syscall.SIGQUIT: "QUIT",
	syscall.SIGSEGV: "SEGV", syscall.SIGTERM: "TERM", syscall.SIGUSR1: "USR1",
	syscall.SIGUSR2: "USR2",
}

// signalName returns the exit-signal name of sig; signals RFC 4254 does
// not name are sent as "NUMBER@zbridge".
func signalName(sig syscall.Signal) string {
	if n, ok := signalNames[sig]; ok {
		return n
	}
	return strconv.Itoa(int(sig)) + "@zbridge"
}
