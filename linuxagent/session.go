package linuxagent

import (
	"fmt"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/ssh"

	"github.com/zbridge/zbridge/protocol/agentproto"
)

// session is one session channel.
type session struct {
	c   *conn
	ch  ssh.Channel
	log logrus.FieldLogger

	// Set by env requests before exec.
	commandID string
	client    string        // informational: who the region runs the command for
	timeout   time.Duration // asked for by the region; 0: the policy's

	ptyRequested bool // a pty-req was refused: exec is refused too
}

// serveSession serves a session channel: it answers its requests, runs
// the command of its exec request, and sends the output and the result.
// It returns when the channel is gone; a command still running then (the
// region closed the channel or the connection dropped) is terminated.
func (c *conn) serveSession(nch ssh.NewChannel) {
	released := false
	release := func() {
		if !released {
			released = true
			c.s.sessionClosed(c)
		}
	}
	defer release()
	ch, reqs, err := nch.Accept()
	if err != nil {
		return
	}
	sess := &session{c: c, ch: ch, log: c.log}
	execTimer := time.NewTimer(execWait)
	defer execTimer.Stop()
	shutdownC := c.s.shuttingDownCh
	var (
		started bool          // an exec request was accepted
		closing bool          // the agent closed the channel
		cancel  chan struct{} // closed to terminate the running command
		runDone chan *outcome // receives the command's outcome; nil when none runs
		line    string        // the command line
		begun   time.Time     // when the command was accepted
	)
	for {
		select {
		case req, ok := <-reqs:
			if !ok {
				// The channel is gone: the region closed it, or the
				// connection ended.
				if runDone != nil {
					close(cancel)
					o := <-runDone
					sess.logOutcome(line, o, time.Since(begun))
				}
				return
			}
			if closing || started && req.Type != "keepalive@openssh.com" {
				refuseRequest(sess, req, "the command is already running or done")
				continue
			}
			switch req.Type {
			case "exec":
				var p struct{ Command string }
				if err := ssh.Unmarshal(req.Payload, &p); err != nil {
					refuseRequest(sess, req, "malformed")
					continue
				}
				// A line over agentproto.MaxCommand is accepted here and
				// refused by runCommand, with a result saying why.
				req.Reply(true, nil)
				started, line, begun = true, p.Command, time.Now()
				execTimer.Stop()
				cancel, runDone = make(chan struct{}), make(chan *outcome, 1)
				// Owned by this loop, which always receives from runDone
				// before it returns.
				go func() { runDone <- c.s.runCommand(sess, p.Command, cancel) }()
			case "env":
				var e struct{ Name, Value string }
				if ssh.Unmarshal(req.Payload, &e) != nil || !sess.setEnv(e.Name, e.Value) {
					refuseRequest(sess, req, "only "+agentproto.EnvTimeout+", "+agentproto.EnvCommandID+" and "+
						agentproto.EnvClient+" with valid values are accepted")
					continue
				}
				req.Reply(true, nil)
			case "pty-req":
				sess.ptyRequested = true
				refuseRequest(sess, req, "no terminals: the agent runs commands without a pty")
			case "shell":
				ch.Stderr().Write([]byte("zbridge-agent: not permitted: interactive shell; the agent only runs commands (ssh HOST COMMAND)\r\n"))
				refuseRequest(sess, req, "no interactive shell")
			case "subsystem":
				var p struct{ Name string }
				ssh.Unmarshal(req.Payload, &p)
				sess.log.WithField("subsystem", p.Name).Info("subsystem refused")
				req.Reply(false, nil)
			case "keepalive@openssh.com":
				req.Reply(true, nil)
			default:
				refuseRequest(sess, req, "not supported")
			}
		case <-execTimer.C:
			if !started && !closing {
				sess.log.Info("no exec request in time; closing the session")
				closing = true
				ch.Close()
				release()
			}
		case <-shutdownC:
			shutdownC = nil
			if !started && !closing {
				sess.log.Info("shutting down: closing a session that runs nothing")
				closing = true
				ch.Close()
				release()
			}
		case o := <-runDone:
			runDone = nil
			// The log line first: finish can wait on a region that
			// reads nothing, and the line says what ran.
			sess.logOutcome(line, o, time.Since(begun))
			sess.finish(o)
			closing = true
			release()
		}
	}
}

// refuseRequest answers a channel request no, and logs it.
func refuseRequest(sess *session, req *ssh.Request, why string) {
	sess.log.WithFields(logrus.Fields{"request": req.Type, "reason": why}).Info("channel request refused")
	req.Reply(false, nil)
}

// setEnv takes an env request; it reports false for a name the agent does
// not accept or a bad value (which is not logged). The command ID and the
// client name are added to the session's log fields.
func (sess *session) setEnv(name, value string) bool {
	switch name {
	case agentproto.EnvTimeout:
		d, err := agentproto.ParseTimeout(value)
		if err != nil {
			return false
		}
		sess.timeout = min(d, sess.c.s.policy.MaxTimeout)
		return true
	case agentproto.EnvCommandID:
		if agentproto.CheckCommandID(value) != nil {
			return false
		}
		sess.commandID = value
		sess.log = sess.log.WithField("command_id", value)
		return true
	case agentproto.EnvClient:
		if agentproto.CheckClient(value) != nil {
			return false
		}
		sess.client = value
		sess.log = sess.log.WithField("client", value)
		return true
	}
	return false
}

// exitSignalMsg is the payload of an exit-signal request (RFC 4254 6.10).
type exitSignalMsg struct {
	Signal     string
	CoreDumped bool
	Error      string
	Lang       string
}

// finish sends what the region is told after the output: the agent's own
// note on standard error, the ResultRequest, exit-status or exit-signal,
// EOF, and closes the channel.
func (sess *session) finish(o *outcome) {
	ch := sess.ch
	if o.note != "" {
		ch.Stderr().Write([]byte("zbridge-agent: " + o.note + "\n"))
	}
	ch.SendRequest(agentproto.ResultRequest, false, agentproto.MarshalResultPayload(&o.Result))
	if o.Signal != "" {
		ch.SendRequest("exit-signal", false, ssh.Marshal(exitSignalMsg{Signal: o.Signal, CoreDumped: o.coreDumped}))
	} else {
		ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(o.ExitStatus)}))
	}
	ch.CloseWrite()
	ch.Close()
}

// logOutcome logs a command: who ran it (the connection's user and key,
// and the command ID and client name the region sent, in sess.log), what,
// how it ended, how long it took. The timeout is not logged; a command
// line over agentproto.MaxCommand only in part.
func (sess *session) logOutcome(line string, o *outcome, d time.Duration) {
	if len(line) > agentproto.MaxCommand {
		line = fmt.Sprintf("%.200s... (%d bytes)", line, len(line))
	}
	f := logrus.Fields{
		"command":      line,
		"duration":     d.Round(time.Millisecond).String(),
		"output_bytes": o.OutputBytes,
	}
	if o.Signal != "" {
		f["signal"] = o.Signal
	} else {
		f["exit_status"] = o.ExitStatus
	}
	if o.PID != 0 {
		f["pid"] = o.PID
	}
	for k, v := range map[string]bool{"timed_out": o.TimedOut, "truncated": o.Truncated, "cancelled": o.cancelled} {
		if v {
			f[k] = true
		}
	}
	log := sess.log.WithFields(f)
	switch {
	case o.Error != "":
		log.WithField("error", o.Error).Warn("command refused: " + o.Message)
	case o.cancelled:
		log.Info("command cancelled: the region closed the session")
	default:
		log.Info("command finished")
	}
}
