// Package commandsrv is the region's COMMANDS server: clients log on (see
// protocol/SPEC.md), send command requests naming a target, and get the
// command's output lines as they arrive and then a reply with its return
// code, or an error saying why it did not run. Several commands may be in
// flight per session, told apart by ID; a client may cancel one; a client
// that goes away cancels all of its commands.
//
// Routing, timeouts and per-target limits are the commands.Router's; this
// server adds a per-session limit and carries frames.
package commandsrv

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/commands"
	"github.com/zbridge/zbridge/gateway/session"
	"github.com/zbridge/zbridge/protocol"
	"github.com/zbridge/zbridge/protocol/agentproto"
)

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = session.ErrServerClosed

// Config configures a Server.
type Config struct {
	// Session configures logon, limits and timeouts; Session.Name defaults
	// to "commands" and Session.Logger to Logger.
	Session session.Config
	// Router runs the commands (required).
	Router *commands.Router
	// MaxPerSession is the most commands in flight per session (default
	// 16); more are answered busy.
	MaxPerSession int
	// Guard, when set, authorizes each command before it runs and is told
	// how it ended (the region's roles and audit log).
	Guard Guard
	// Done, when set, is called once for each command that was handed to
	// the Guard (run, or refused by it), after its reply was sent, with
	// the time from its request to then and the error it ended with (nil
	// for a command that ran to its end: the reply has its return code).
	// Commands answered before the Guard (a malformed request, the
	// session's limit) are not. It must be cheap: a histogram's Observe.
	Done func(req *commands.Request, took time.Duration, err error)
	// Logger is required.
	Logger logrus.FieldLogger
}

// Guard authorizes and records commands.
type Guard interface {
	// Begin is called before req runs, in the goroutine that will run it.
	// It may lower req.Timeout; a non-nil error (a *commands.Error is
	// passed on as it is) refuses the command, and End is not called.
	Begin(sess *session.Session, req *commands.Request) error
	// End is called once a command Begin accepted has ended, with the
	// bytes of output sent and the router's error.
	End(sess *session.Session, req *commands.Request, res commands.Result, outBytes int64, err error)
	// Refused is told of a command the server answered before Begin (a
	// malformed target or timeout, a duplicate ID, the session's limit);
	// target is the target as the client wrote it.
	Refused(sess *session.Session, req *commands.Request, target string, ce *commands.Error)
}

// Server is the COMMANDS server.
type Server struct {
	cfg Config
	ss  *session.Server
}

// New returns a server for cfg, validated and copied.
func New(cfg Config) (*Server, error) {
	if cfg.Router == nil {
		return nil, errors.New("commandsrv: config: Router is required")
	}
	if cfg.Logger == nil {
		return nil, errors.New("commandsrv: config: Logger is required")
	}
	if cfg.MaxPerSession <= 0 {
		cfg.MaxPerSession = 16
	}
	if cfg.Session.Name == "" {
		cfg.Session.Name = "commands"
	}
	if cfg.Session.Logger == nil {
		cfg.Session.Logger = cfg.Logger
	}
	s := &Server{cfg: cfg}
	ss, err := session.NewServer(cfg.Session, (*handler)(s))
	if err != nil {
		return nil, fmt.Errorf("commandsrv: %w", err)
	}
	s.ss = ss
	return s, nil
}

// Serve accepts clients on l until Shutdown or Close; it always returns a
// non-nil error, ErrServerClosed after those.
func (s *Server) Serve(l net.Listener) error { return s.ss.Serve(l) }

// Shutdown stops accepting and lets commands in flight finish (their
// clients get their replies) until ctx ends, when they are cancelled.
func (s *Server) Shutdown(ctx context.Context) error { return s.ss.Shutdown(ctx) }

// Close stops at once, cancelling commands in flight.
func (s *Server) Close() error { return s.ss.Close() }

// EndClients ends the session of every client for which match returns
// true with a bye of the reason given (the region revoking access), and
// returns how many it ended.
func (s *Server) EndClients(match func(client string) bool, reason string) int {
	return s.ss.EndClients(match, reason)
}

// Stats returns the session counters.
func (s *Server) Stats() session.Stats { return s.ss.Stats() }

// Sessions lists the live sessions.
func (s *Server) Sessions() []session.Info { return s.ss.Sessions() }

type handler Server

// state is one session's commands in flight.
type state struct {
	mu sync.Mutex // guards ids
	// ids holds the commands of this session in flight, from the request
	// on, and how to cancel each: the router knows a command only once its
	// goroutine has started, and a cancel may come before that.
	ids map[string]context.CancelCauseFunc
}

// Bounds on a command request, checked before anything else. No target
// takes a longer line than a Linux agent (agentproto.MaxCommand), nor a
// longer ID (agentproto.MaxCommandID, which the agents check too).
const (
	// MaxTarget is the longest target, in bytes.
	MaxTarget = 300
	// MaxCommand is the longest command line, in bytes.
	MaxCommand = agentproto.MaxCommand
	// clipCommand is how much of an oversized command line a refusal
	// keeps for the audit log.
	clipCommand = 1 << 10
)

// oversized says what is too long in a command request; "" when nothing is.
func oversized(f *protocol.Frame) string {
	switch {
	case len(f.Target) > MaxTarget:
		return fmt.Sprintf("target of %d bytes: at most %d", len(f.Target), MaxTarget)
	case len(f.Command) > MaxCommand:
		return fmt.Sprintf("command line of %d bytes: at most %d", len(f.Command), MaxCommand)
	case f.ID != "":
		if err := agentproto.CheckCommandID(f.ID); err != nil {
			return fmt.Sprintf("command ID: 1 to %d printable ASCII characters, no blanks", agentproto.MaxCommandID)
		}
	}
	return ""
}

// clip shortens s to at most n bytes (at a rune boundary), saying how
// long it was.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s… (%d bytes)", s[:cut], len(s))
}

func errReply(code, msg string) *protocol.Frame {
	return protocol.Reply(0, &protocol.Error{Code: code, Message: msg})
}

// Request implements session.Handler.
func (h *handler) Request(sess *session.Session, f *protocol.Frame) *protocol.Frame {
	st, _ := sess.State.(*state)
	if st == nil {
		st = &state{ids: map[string]context.CancelCauseFunc{}}
		sess.State = st
	}
	switch f.Type {
	case protocol.TypeCommand:
		return h.command(sess, st, f)
	case protocol.TypeCancel:
		st.mu.Lock()
		cancel := st.ids[f.ID]
		st.mu.Unlock()
		if cancel == nil {
			return errReply(protocol.ErrCodeState, fmt.Sprintf("no command %q of this session is in flight", f.ID))
		}
		cancel(commands.ErrCancelled)
		return protocol.Reply(0, nil)
	}
	return errReply(protocol.ErrCodeUnknownType,
		fmt.Sprintf("COMMANDS does not know request type %q (command, cancel, heartbeat, logoff)", f.Type))
}

func (h *handler) command(sess *session.Session, st *state, f *protocol.Frame) *protocol.Frame {
	start := time.Now()
	// refused answers a command refused before it reached the Guard, and
	// tells the Guard (the audit log).
	refused := func(req *commands.Request, ce *commands.Error) *protocol.Frame {
		if h.cfg.Guard != nil {
			h.cfg.Guard.Refused(sess, req, clip(f.Target, MaxTarget), ce)
		}
		r := errReply(ce.Code, ce.Message)
		r.RetryAfter = ce.RetryAfter
		return r
	}
	if msg := oversized(f); msg != "" {
		// What the audit log and the logs keep of it is clipped: a
		// client without a single grant must not be able to make the
		// region write (and sync) a megabyte per frame.
		return refused(&commands.Request{ID: clip(f.ID, agentproto.MaxCommandID), Command: clip(f.Command, clipCommand),
			Requester: sess.Client}, &commands.Error{Code: commands.CodeBadRequest, Message: msg})
	}
	tgt, err := commands.ParseTarget(f.Target)
	if err != nil {
		return refused(&commands.Request{ID: f.ID, Command: f.Command, Requester: sess.Client},
			&commands.Error{Code: commands.CodeBadRequest, Message: err.Error()})
	}
	if f.Timeout < 0 {
		return refused(&commands.Request{ID: f.ID, Target: tgt, Command: f.Command, Requester: sess.Client},
			&commands.Error{Code: commands.CodeBadRequest, Message: "timeout must not be negative"})
	}
	// A timeout too long for a Duration is longer than any maximum: the
	// router refuses it (converted, it could overflow to the default).
	timeout := time.Duration(math.MaxInt64)
	if f.Timeout < float64(math.MaxInt64)/float64(time.Second) {
		timeout = time.Duration(f.Timeout * float64(time.Second))
	}
	req := &commands.Request{ID: f.ID, Target: tgt, Command: f.Command, Requester: sess.Client, Timeout: timeout}
	if req.ID == "" {
		req.ID = h.cfg.Router.NewID()
	}
	st.mu.Lock()
	switch {
	case len(st.ids) >= h.cfg.MaxPerSession:
		st.mu.Unlock()
		return refused(req, &commands.Error{Code: commands.CodeBusy, RetryAfter: 1,
			Message: fmt.Sprintf("%d commands of this session already in flight (the most allowed)", h.cfg.MaxPerSession)})
	case st.ids[req.ID] != nil:
		st.mu.Unlock()
		return refused(req, &commands.Error{Code: commands.CodeBadRequest, Message: fmt.Sprintf("command ID %q is already in flight", req.ID)})
	}
	// The session's Go runs fn with sess.Context(); the command's context
	// is made here so that a cancel can stop it before it starts.
	ctx, cancel := context.WithCancelCause(sess.Context())
	st.ids[req.ID] = cancel
	st.mu.Unlock()
	reqNo := f.Req
	if !sess.Go(func(context.Context) { h.run(ctx, sess, st, reqNo, req, start) }) {
		cancel(nil)
		st.mu.Lock()
		delete(st.ids, req.ID)
		st.mu.Unlock()
		r := errReply(commands.CodeBusy, "the region is shutting down")
		r.RetryAfter = 5
		return r
	}
	return nil // the reply comes when the command ends
}

// run runs one command, requested at start, and streams its output and
// reply to the session.
func (h *handler) run(ctx context.Context, sess *session.Session, st *state, reqNo uint64, req *commands.Request, start time.Time) {
	log := sess.Log.WithFields(logrus.Fields{"target": req.Target.String(), "id": req.ID})
	var buf []byte
	var outBytes int64
	out := func(o commands.Output) {
		outBytes += int64(len(o.Data))
		buf = appendOutput(buf[:0], reqNo, req.ID, o)
		sess.Write(buf)
	}
	var res commands.Result
	err := h.begin(sess, req)
	if err == nil {
		res, err = h.cfg.Router.Run(ctx, req, out)
		if h.cfg.Guard != nil {
			h.cfg.Guard.End(sess, req, res, outBytes, err)
		}
	}
	st.mu.Lock()
	st.ids[req.ID](nil) // release the command's context
	delete(st.ids, req.ID)
	st.mu.Unlock()
	reply := &protocol.Frame{Type: protocol.TypeReply, Req: reqNo, ID: req.ID, Truncated: res.Truncated,
		Signal: res.Signal, DurationMS: res.Duration.Milliseconds()}
	var ce *commands.Error
	if errors.As(err, &ce) {
		reply.Error = &protocol.Error{Code: ce.Code, Message: ce.Message}
		reply.RetryAfter = ce.RetryAfter
	} else {
		rc := res.RC
		reply.RC = &rc
	}
	sess.Send(reply) // the client first; then the log
	if ce != nil {
		log.WithField("code", ce.Code).Info("command did not complete: " + ce.Message)
	} else {
		log.WithFields(logrus.Fields{"rc": *reply.RC, "ms": reply.DurationMS}).Info("command completed")
	}
	if h.cfg.Done != nil {
		h.cfg.Done(req, time.Since(start), err)
	}
}

// begin asks the Guard, if any, whether req may run.
func (h *handler) begin(sess *session.Session, req *commands.Request) error {
	if h.cfg.Guard == nil {
		return nil
	}
	err := h.cfg.Guard.Begin(sess, req)
	var ce *commands.Error
	if err != nil && !errors.As(err, &ce) {
		err = &commands.Error{Code: commands.CodeFailed, Message: err.Error()}
	}
	return err
}

// appendOutput appends an output frame. Text carries valid UTF-8; other
// bytes go base64 in Data.
func appendOutput(b []byte, req uint64, id string, o commands.Output) []byte {
	f := protocol.Frame{Type: protocol.TypeOutput, Req: req, ID: id, Stream: o.Stream.String(), EOL: o.EOL}
	if utf8.Valid(o.Data) {
		f.Text = string(o.Data)
	} else {
		f.Data = o.Data
	}
	b, _ = protocol.AppendFrame(b, &f)
	return b
}
