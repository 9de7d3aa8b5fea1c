package agentssh

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/ssh"

	"github.com/zbridge/zbridge/protocol/agentproto"
)

const (
	// agentTimeoutGrace is how much longer than Command.Timeout Run waits
	// for a command on an agent, which enforces the timeout itself (SIGTERM,
	// SIGKILL 2 s later) and reports it, before stopping it here.
	agentTimeoutGrace = 5 * time.Second
	// stopGrace bounds the wait for the host to acknowledge the close of a
	// command's channel after its output was cut at OutputCap.
	stopGrace = time.Second
	// connLostWait bounds the wait to tell a lost connection from a session
	// closed without exit status.
	connLostWait = 200 * time.Millisecond
	// readBuf is the size of each read from a channel.
	readBuf = 32 << 10
)

// Command is a command to run on a host. What it holds goes to the host as
// package agentproto describes, within its limits: Run refuses a Command
// that breaks them with ErrBadCommand, before it sends anything.
type Command struct {
	// ID identifies the command in logs and, sent as
	// agentproto.EnvCommandID, on the host. Optional; if set, 1 to
	// agentproto.MaxCommandID printable ASCII characters without spaces.
	ID string
	// Line is the command line. A plain sshd runs it with the user's login
	// shell; the agent applies its own policy. Required; at most
	// agentproto.MaxCommand bytes.
	Line string
	// Client names the client the command runs for (the region's
	// commands.Request.Requester), sent as agentproto.EnvClient for the
	// agent to log. Informational: the agent trusts the region's key, not
	// this name. Optional; if set, at most agentproto.MaxClient bytes of
	// UTF-8 without control characters.
	Client string
	// Timeout, if positive, bounds the command's run time. It is sent as
	// agentproto.EnvTimeout (whole seconds, rounded up; the context's
	// deadline when that is sooner) for the agent to enforce, and is
	// enforced here as well: at once on a plain sshd, after a grace period
	// on an agent so that the agent's own report arrives first. A command
	// stopped for its Timeout is not an error: its Result says TimedOut.
	Timeout time.Duration
}

// Output is one piece of a command's output: a line, or a chunk of one.
type Output struct {
	// Stream is 1 for standard output, 2 for standard error.
	Stream int
	// Data is the line without its newline, any bytes at all. It is a
	// fresh slice that the callback may keep.
	Data []byte
	// EOL is true when the line ended with a newline. It is false for a
	// chunk of a line longer than MaxLine (the line continues in the next
	// Output of the stream) and for the last, unterminated piece.
	EOL bool
}

// Result is how a command ended.
type Result struct {
	// ExitStatus is the command's exit status; -1 when it has none (ended
	// by a signal, stopped at the output cap, or no report arrived).
	ExitStatus int
	// Signal is the name of the signal that ended the command, without
	// "SIG" ("KILL", "TERM"), or "".
	Signal string
	// Truncated reports that output beyond Config.OutputCap was dropped
	// here and the command stopped, or that the agent cut it short.
	Truncated bool
	// TimedOut reports that the command was stopped for running past
	// Command.Timeout, by the agent or here (Run's error is then nil), or
	// that the context's deadline passed (Run's error wraps ErrTimeout).
	TimedOut bool
	// AgentError and AgentMessage are the agent's reason code (such as
	// "not-permitted") and explanation when it refused or failed the
	// command; empty for a plain sshd.
	AgentError, AgentMessage string
	// Platform is the agent's GOOS/GOARCH ("linux/s390x"), as it reports
	// it; empty for a plain sshd.
	Platform string
	// Duration is the time Run took.
	Duration time.Duration
}

// Run runs cmd on the host added as name, calling out (which may be nil)
// with its output one line at a time: the lines of each stream in order, out
// never called concurrently, and never after Run returned. Run honours ctx in
// every step: when it is done the command is stopped (signal KILL, channel
// closed; the agent kills the command's process group when the channel
// closes, a stock sshd on the signal, but not in a root session) and Run
// returns at once with ErrTimeout or ErrCancelled. A command that runs past
// Command.Timeout is stopped in the same way (or by the agent), and Run
// returns its Result with TimedOut set and a nil error.
//
// Run does not wait for a free session (ErrBusy) or for a host that is down
// (ErrNotConnected); it waits up to Config.ConnectWait for a connection
// attempt in progress. A command that ran to its end returns its Result and
// a nil error, whatever its exit status. Along with an error, Run returns
// what it knows of the Result (with Duration set).
func (p *Pool) Run(ctx context.Context, name string, cmd Command, out func(Output)) (Result, error) {
	start := time.Now()
	res, err := p.run(ctx, name, cmd, out)
	res.Duration = time.Since(start)
	if res.Platform != "" {
		p.mu.Lock()
		h := p.hosts[name]
		p.mu.Unlock()
		if h != nil {
			h.mu.Lock()
			h.platform = res.Platform
			h.mu.Unlock()
		}
	}
	return res, err
}

func (p *Pool) run(ctx context.Context, name string, cmd Command, out func(Output)) (Result, error) {
	res := Result{ExitStatus: -1}
	if err := checkCommand(cmd); err != nil {
		return res, err
	}
	if ctx.Err() != nil {
		return res, ctxError(ctx)
	}
	h, err := p.lookup(name)
	if err != nil {
		return res, err
	}
	sl, ok := h.takeSlot()
	if !ok {
		return res, fmt.Errorf("%w: %s already runs %d commands, or waits for it to answer them", ErrBusy, name, cap(h.slots))
	}
	defer sl.release()
	c, err := h.connection(ctx, p.cfg.ConnectWait)
	if err != nil {
		return res, err
	}

	var expired <-chan time.Time // Command.Timeout, enforced here
	if cmd.Timeout > 0 {
		local := cmd.Timeout
		if c.agent {
			local += agentTimeoutGrace
		}
		t := time.NewTimer(local)
		defer t.Stop()
		expired = t.C
	}
	log := h.log.WithField("command_id", cmd.ID)
	if cmd.Client != "" {
		log = log.WithField("client", cmd.Client)
	}
	ch, reqs, err := p.open(ctx, h, c, sl, cmd, remoteTimeout(ctx, cmd.Timeout))
	if err != nil {
		log.WithError(err).Info("command not started")
		return res, err
	}
	res, err = p.collect(ctx, expired, log, h, c, ch, reqs, out)
	entry := log.WithFields(logrus.Fields{
		"exit_status": res.ExitStatus, "signal": res.Signal, "truncated": res.Truncated,
		"timed_out": res.TimedOut, "agent_error": res.AgentError,
	})
	if err != nil {
		entry.WithError(err).Info("command failed")
	} else {
		entry.Debug("command ended")
	}
	return res, err
}

// checkCommand returns an error wrapping ErrBadCommand (and, for a value
// over a limit of the agent contract, an *agentproto.FieldError) for a
// Command that Run must not send. Sent, a value larger than an SSH packet
// would end the connection, and every other command running over it.
func checkCommand(cmd Command) error {
	if cmd.Line == "" {
		return fmt.Errorf("%w: empty command line", ErrBadCommand)
	}
	if err := agentproto.CheckCommand(cmd.Line); err != nil {
		return fmt.Errorf("%w: %w", ErrBadCommand, err)
	}
	if cmd.ID != "" {
		if err := agentproto.CheckCommandID(cmd.ID); err != nil {
			return fmt.Errorf("%w: %w", ErrBadCommand, err)
		}
	}
	if cmd.Client != "" {
		if err := agentproto.CheckClient(cmd.Client); err != nil {
			return fmt.Errorf("%w: %w", ErrBadCommand, err)
		}
	}
	return nil
}

// remoteTimeout returns the timeout to send to the host: cmd's, or what is
// left until ctx's deadline when that is sooner; 0 for none.
func remoteTimeout(ctx context.Context, timeout time.Duration) time.Duration {
	if deadline, ok := ctx.Deadline(); ok {
		if left := time.Until(deadline); timeout <= 0 || left < timeout {
			timeout = max(left, time.Millisecond)
		}
	}
	return max(timeout, 0)
}

// A slot is one of a host's MaxSessionsPerHost places, taken by Run for a
// command. It is given back once both its holders have let go: Run, and
// the goroutine opening the command's session (see open), which holds it
// until its SSH calls have returned, also after Run gave up on it.
type slot struct {
	h    *host
	refs atomic.Int32
}

// takeSlot takes one of h's places, held by the caller, or reports false
// when there is none.
func (h *host) takeSlot() (*slot, bool) {
	select {
	case h.slots <- struct{}{}:
	default:
		return nil, false
	}
	sl := &slot{h: h}
	sl.refs.Store(1)
	return sl, true
}

func (sl *slot) hold() { sl.refs.Add(1) }

func (sl *slot) release() {
	if sl.refs.Add(-1) == 0 {
		<-sl.h.slots
	}
}

// answerWait watches the SSH calls that open a command's session once Run
// has given up on them: unless they return within AnswerTimeout, the host
// is taken for broken (see open).
type answerWait struct {
	mu       sync.Mutex  // guards the following fields
	returned bool        // the calls have returned
	timer    *time.Timer // set once Run gave up, while they had not
}

// givenUp starts the wait: fail runs after d unless the calls return
// first.
func (w *answerWait) givenUp(d time.Duration, fail func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.returned {
		w.timer = time.AfterFunc(d, fail)
	}
}

// answered ends the wait: the calls have returned.
func (w *answerWait) answered() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.returned = true
	if w.timer != nil {
		w.timer.Stop()
	}
}

// open opens a session channel on c and starts cmd in it. The SSH calls
// cannot be interrupted: x/crypto/ssh waits for the host's answer to the
// opening and to the exec request until the connection ends, however long
// that is. So they run in a goroutine of the pool, which holds sl until
// they return; when ctx ends first, open returns, and that goroutine stops
// the command once it has started. A host that has not answered the calls
// AnswerTimeout after open returned is taken for broken: the connection is
// closed, which ends them.
func (p *Pool) open(ctx context.Context, h *host, c *hostConn, sl *slot, cmd Command,
	timeout time.Duration) (ssh.Channel, <-chan *ssh.Request, error) {
	type opened struct {
		ch   ssh.Channel
		reqs <-chan *ssh.Request
		err  error
	}
	result := make(chan opened) // unbuffered: a receive hands the channel over
	abandon := make(chan struct{})
	defer close(abandon)
	var wait answerWait
	sl.hold()
	err := p.spawn(func() {
		var o opened
		o.ch, o.reqs, o.err = c.OpenChannel("session", nil)
		if o.err != nil {
			var oce *ssh.OpenChannelError
			if errors.As(o.err, &oce) {
				o.err = fmt.Errorf("%w: %s: session channel: %w", ErrRefused, h.name, o.err)
			} else {
				o.err = fmt.Errorf("%w: %s (%s): connection lost opening a session: %w", ErrNotConnected, h.name, h.addr, o.err)
			}
		} else if o.err = startCommand(o.ch, cmd, timeout); o.err != nil {
			if !errors.Is(o.err, ErrRefused) {
				o.err = fmt.Errorf("%w: %s: %w", ErrConnLost, h.name, o.err)
			}
		}
		wait.answered()
		select {
		case result <- o:
			sl.release() // Run holds it still
			if o.err == nil {
				return // collect owns the channel
			}
		case <-abandon:
			if o.err == nil {
				stopCommand(o.ch)
			}
			// Answered: the command is stopped, as one Run stops in
			// collect, which gives its place back without waiting for the
			// host to acknowledge the close.
			sl.release()
		}
		if o.ch != nil {
			o.ch.Close()
			// Until the host acknowledges the close, requests must be
			// read: an unread one would stall the whole connection.
			ssh.DiscardRequests(o.reqs)
		}
	})
	if err != nil {
		sl.release()
		return nil, nil, err
	}
	select {
	case o := <-result:
		return o.ch, o.reqs, o.err
	case <-ctx.Done():
		d := p.cfg.AnswerTimeout
		wait.givenUp(d, func() {
			h.log.WithField("answer_timeout", d.String()).
				Warn("host did not answer the opening of a session or an exec request: closing connection")
			c.fail(fmt.Errorf("%w within %v of the command being given up on", errNoAnswer, d))
		})
		return nil, nil, ctxError(ctx)
	}
}

// startCommand sends the env requests and the exec request, and closes the
// command's standard input.
func startCommand(ch ssh.Channel, cmd Command, timeout time.Duration) error {
	type env struct{ Name, Value string }
	// A plain sshd refuses or ignores env requests it has no AcceptEnv
	// for: they ask for no reply, and nothing depends on them.
	var envs []env
	if timeout > 0 {
		envs = append(envs, env{agentproto.EnvTimeout, agentproto.FormatTimeout(timeout)})
	}
	if cmd.ID != "" {
		envs = append(envs, env{agentproto.EnvCommandID, cmd.ID})
	}
	if cmd.Client != "" {
		envs = append(envs, env{agentproto.EnvClient, cmd.Client})
	}
	for _, e := range envs {
		if _, err := ch.SendRequest("env", false, ssh.Marshal(e)); err != nil {
			return fmt.Errorf("env request %s: %w", e.Name, err)
		}
	}
	ok, err := ch.SendRequest("exec", true, ssh.Marshal(struct{ Command string }{cmd.Line}))
	if err != nil {
		return fmt.Errorf("exec request: %w", err)
	}
	if !ok {
		return fmt.Errorf("%w: exec request refused", ErrRefused)
	}
	// The command gets no input: an empty standard input, not one that
	// never ends.
	ch.CloseWrite()
	return nil
}

// stop stops the command of ch in a goroutine of the pool (or, after Close,
// of the caller), as writing to a connection can block, such as during a key
// exchange with a host that stopped answering.
func (p *Pool) stop(ch ssh.Channel) {
	if err := p.spawn(func() { stopCommand(ch) }); err != nil {
		stopCommand(ch)
	}
}

// stopCommand asks the host to kill the command and closes its channel.
func stopCommand(ch ssh.Channel) {
	ch.SendRequest("signal", false, ssh.Marshal(struct{ Signal string }{"KILL"}))
	ch.Close()
}

// event is what the goroutines reading a channel hand to collect.
type event struct {
	stream   int    // 1 stdout, 2 stderr; 0 for a request
	data     []byte // output read from stream
	eof      bool   // stream ended
	req      *ssh.Request
	reqsDone bool // the channel's requests ended: it is closed
}

// collect reads the running command's output and requests until it ends, or
// ctx does, or expired fires.
func (p *Pool) collect(ctx context.Context, expired <-chan time.Time, log logrus.FieldLogger,
	h *host, c *hostConn, ch ssh.Channel, reqs <-chan *ssh.Request, out func(Output)) (Result, error) {
	res := Result{ExitStatus: -1}
	events := make(chan event)
	finished := make(chan struct{}) // closed when collect returns
	defer close(finished)
	read := func(stream int, r io.Reader) func() {
		return func() {
			buf := make([]byte, readBuf)
			for {
				n, err := r.Read(buf)
				if n > 0 {
					select {
					case events <- event{stream: stream, data: bytes.Clone(buf[:n])}:
					case <-finished:
						return
					}
				}
				if err != nil {
					select {
					case events <- event{stream: stream, eof: true}:
					case <-finished:
					}
					return
				}
			}
		}
	}
	forward := func() {
		// Reads every request until the channel closes, also after
		// collect returned: an unread one would stall the connection.
		for req := range reqs {
			select {
			case events <- event{req: req}:
			case <-finished:
				if req.WantReply {
					req.Reply(false, nil)
				}
			}
		}
		select {
		case events <- event{reqsDone: true}:
		case <-finished:
		}
	}
	if err := p.spawn(read(1, ch), read(2, ch.Stderr()), forward); err != nil {
		p.stop(ch)
		return res, err
	}

	emit := func(o Output) {
		if out != nil {
			out(o)
		}
	}
	splitters := [3]*lineSplitter{nil, {stream: 1, maxLine: MaxLine}, {stream: 2, maxLine: MaxLine}}
	flush := func() {
		splitters[1].flush(emit)
		splitters[2].flush(emit)
	}
	var (
		eof              [3]bool
		reqsDone, exited bool
		kept             int              // output bytes delivered
		stopping         <-chan time.Time // set once the command was stopped at the cap
	)
loop:
	for !eof[1] || !eof[2] || !(exited || reqsDone) {
		select {
		case e := <-events:
			switch {
			case e.req != nil:
				if err := handleRequest(&res, e.req); err != nil {
					log.WithError(err).Warn("bad request from host")
				}
				exited = exited || e.req.Type == "exit-status" || e.req.Type == "exit-signal"
			case e.reqsDone:
				reqsDone = true
			case e.eof:
				eof[e.stream] = true
				splitters[e.stream].flush(emit)
			case stopping != nil:
				// Output after the cap is dropped.
			default:
				n := min(len(e.data), p.cfg.OutputCap-kept)
				splitters[e.stream].write(e.data[:n], emit)
				kept += n
				if n < len(e.data) {
					res.Truncated = true
					log.WithField("output_cap", p.cfg.OutputCap).Info("output cap reached: stopping command")
					p.stop(ch)
					t := time.NewTimer(stopGrace)
					defer t.Stop()
					stopping = t.C
				}
			}
		case <-stopping:
			break loop
		case <-expired:
			log.Info("command timeout passed: stopping command")
			p.stop(ch)
			flush()
			res.TimedOut = true
			return res, nil
		case <-ctx.Done():
			p.stop(ch)
			flush()
			err := ctxError(ctx)
			res.TimedOut = res.TimedOut || errors.Is(err, ErrTimeout)
			return res, err
		}
	}
	flush()
	// Usually the host closed the channel already, and this writes nothing.
	ch.Close()
	if exited || res.Truncated {
		return res, nil
	}
	// The mux closes every channel of a connection that ends, which looks
	// like a session the host closed without exit status.
	t := time.NewTimer(connLostWait)
	defer t.Stop()
	select {
	case <-c.dead:
		cause := c.failure()
		if cause == nil {
			cause = c.Wait()
		}
		return res, fmt.Errorf("%w: %s: %w", ErrConnLost, h.name, cause)
	case <-t.C:
		return res, fmt.Errorf("%w: %s", ErrNoExitStatus, h.name)
	}
}

// handleRequest records what a channel request from the host says in res,
// and answers it if it wants an answer.
func handleRequest(res *Result, req *ssh.Request) error {
	var err error
	switch req.Type {
	case "exit-status":
		var m struct{ Status uint32 }
		if err = ssh.Unmarshal(req.Payload, &m); err == nil {
			res.ExitStatus = int(m.Status)
		}
	case "exit-signal":
		var m struct {
			Signal     string
			CoreDumped bool
			Error      string
			Lang       string
		}
		if err = ssh.Unmarshal(req.Payload, &m); err == nil {
			res.Signal = m.Signal
			res.ExitStatus = -1
		}
	case agentproto.ResultRequest:
		var r *agentproto.Result
		if r, err = agentproto.ParseResultPayload(req.Payload); err == nil {
			res.Truncated = res.Truncated || r.Truncated
			res.TimedOut = res.TimedOut || r.TimedOut
			res.AgentError = r.Error
			res.AgentMessage = r.Message
			res.Platform = r.Platform
		}
	}
	if err != nil {
		err = fmt.Errorf("%s request: %w", req.Type, err)
	}
	if req.WantReply {
		req.Reply(false, nil)
	}
	return err
}

// ctxError returns the error for a done ctx: ErrTimeout or ErrCancelled,
// wrapping the context's own error.
func ctxError(ctx context.Context) error {
	err := ctx.Err()
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", ErrTimeout, err)
	}
	return fmt.Errorf("%w: %w", ErrCancelled, err)
}
