// Package unsolmsg is the region's UNSOLMSG server: automation products log
// on, subscribe with a filter, and receive the region's unsolicited events,
// live or resumed after an event ID they saw.
//
// Each subscriber reads the event stream from the store at its own cursor,
// so the region never blocks on one client and keeps no per-client copy:
// a subscriber's queue is the store's retention (bounded by count and
// bytes). A subscriber that falls so far behind that retention trims events
// it has not been sent is ended with bye reason "behind" and the ID to
// resume after (resuming from there reports the gap: nothing is skipped
// silently); one whose socket accepts nothing for the write timeout is ended
// the same way. A subscriber resuming from an ID older than retention is
// sent a notice "gap" saying which events it missed before the stream.
package unsolmsg

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"

	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/gateway/session"
	"github.com/zbridge/zbridge/gateway/store"
	"github.com/zbridge/zbridge/protocol"
	"github.com/zbridge/zbridge/protocol/lx"
)

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = session.ErrServerClosed

// Output formats a subscriber can ask for.
const (
	FormatJSON = "json" // event frames carry the event object
	FormatLX   = "lx"   // event frames carry id and the CA text line
)

// Config configures a Server.
type Config struct {
	// Session configures logon, limits and timeouts; Session.Name defaults
	// to "unsolmsg" and Session.Logger to Logger.
	Session session.Config
	// Store is the event stream (required).
	Store store.Store
	// Batch is the most events read and written at once (default 512).
	Batch int
	// Logger is required.
	Logger logrus.FieldLogger
}

// Server is the UNSOLMSG server.
type Server struct {
	cfg  Config
	ss   *session.Server
	sent atomic.Uint64
}

// New returns a server for cfg, validated and copied.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("unsolmsg: config: Store is required")
	}
	if cfg.Logger == nil {
		return nil, errors.New("unsolmsg: config: Logger is required")
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 512
	}
	if cfg.Session.Name == "" {
		cfg.Session.Name = "unsolmsg"
	}
	if cfg.Session.Logger == nil {
		cfg.Session.Logger = cfg.Logger
	}
	if cfg.Session.Store == nil {
		cfg.Session.Store = cfg.Store
	}
	s := &Server{cfg: cfg}
	ss, err := session.NewServer(cfg.Session, (*handler)(s))
	if err != nil {
		return nil, fmt.Errorf("unsolmsg: %w", err)
	}
	s.ss = ss
	return s, nil
}

// Serve accepts subscribers on l until Shutdown or Close; it always returns
// a non-nil error, ErrServerClosed after those.
func (s *Server) Serve(l net.Listener) error { return s.ss.Serve(l) }

// Shutdown stops accepting, sends each subscriber the events already in the
// store that it has not been sent, ends its session with bye shutdown and
// the ID to resume after, and waits until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error { return s.ss.Shutdown(ctx) }

// Close stops at once.
func (s *Server) Close() error { return s.ss.Close() }

// Stats returns the session counters.
func (s *Server) Stats() session.Stats { return s.ss.Stats() }

// Sessions lists the live sessions.
func (s *Server) Sessions() []session.Info { return s.ss.Sessions() }

// EventsSent is the number of events sent to subscribers.
func (s *Server) EventsSent() uint64 { return s.sent.Load() }

type handler Server

// subscription is one session's subscription; the stream goroutine owns it.
type subscription struct {
	filter *protocol.Filter
	format string
	after  protocol.ID
}

func badRequest(msg string) *protocol.Frame {
	return protocol.Reply(0, &protocol.Error{Code: protocol.ErrCodeBadRequest, Message: msg})
}

// Request implements session.Handler.
func (h *handler) Request(sess *session.Session, f *protocol.Frame) *protocol.Frame {
	if f.Type != protocol.TypeSubscribe {
		return protocol.Reply(0, &protocol.Error{Code: protocol.ErrCodeUnknownType,
			Message: fmt.Sprintf("UNSOLMSG does not know request type %q (subscribe, heartbeat, logoff)", f.Type)})
	}
	if sess.State != nil {
		return protocol.Reply(0, &protocol.Error{Code: protocol.ErrCodeState, Message: "already subscribed"})
	}
	sub := &subscription{filter: f.Filter, format: f.Format}
	if err := sub.filter.Validate(); err != nil {
		return badRequest(err.Error())
	}
	switch sub.format {
	case "":
		sub.format = FormatJSON
	case FormatJSON, FormatLX:
	default:
		return badRequest(fmt.Sprintf("unknown format %q (json, lx)", f.Format))
	}
	ctx := sess.Context()
	if f.After != "" {
		id, err := protocol.ParseID(f.After)
		if err != nil {
			return badRequest(err.Error())
		}
		sub.after = id
	} else {
		st, err := h.cfg.Store.Stats(ctx)
		if err != nil {
			return protocol.Reply(0, &protocol.Error{Code: protocol.ErrCodeInternal, Message: "event store unavailable"})
		}
		sub.after = st.Last
	}
	sess.State = sub
	// The stream goroutine sends the reply before any event. Only a running
	// stream acknowledges a subscription: one acknowledged here, before
	// Go, could be refused by Go when Shutdown begins in between, and the
	// subscriber would get neither its events nor a resume point. If Go
	// starts nothing, the session ends with bye shutdown instead.
	req := f.Req
	sess.Go(func(ctx context.Context) {
		if err := sess.Send(&protocol.Frame{Type: protocol.TypeReply, Req: req, After: sub.after.String(), Format: sub.format}); err != nil {
			return
		}
		sess.Log.WithFields(logrus.Fields{"after": sub.after.String(), "format": sub.format}).Info("subscribed")
		(*Server)(h).stream(sess, sub)
	})
	return nil
}

// stream sends sub's events to sess until the session ends.
func (s *Server) stream(sess *session.Session, sub *subscription) {
	ctx := sess.Context()
	evs := make([]*protocol.Event, 0, s.cfg.Batch)
	buf := make([]byte, 0, maxWrite)
	cursor := sub.after
	first := true
	stopping := false
	for {
		var gap store.Gap
		var err error
		evs, gap, err = s.cfg.Store.Read(ctx, cursor, s.cfg.Batch, evs[:0])
		if err != nil {
			if ctx.Err() == nil {
				sess.Log.WithError(err).Warn("event store read failed; ending the subscription")
				sess.End(&protocol.Frame{Reason: protocol.ByeShutdown, ResumeAfter: cursor.String(),
					Message: "the region's event store is unavailable; resume after the ID given"})
			}
			return
		}
		if gap.Missed {
			msg := fmt.Sprintf("events after %s through %s were trimmed by retention before they could be sent", cursor, gap.Through)
			if !first {
				sess.End(&protocol.Frame{Reason: protocol.ByeBehind, ResumeAfter: cursor.String(), Message: "fell behind: " + msg})
				return
			}
			if err := sess.Send(&protocol.Frame{Type: protocol.TypeNotice, Reason: "gap", Message: msg,
				ResumeAfter: gap.Through.String()}); err != nil {
				return
			}
		}
		first = false
		if len(evs) == 0 {
			if stopping {
				sess.End(&protocol.Frame{Reason: protocol.ByeShutdown, ResumeAfter: cursor.String(),
					Message: "the region is shutting down; every event it received was sent"})
				return
			}
			if err := s.cfg.Store.Wait(sess.StopContext(), cursor); err != nil {
				if ctx.Err() != nil {
					return
				}
				// The server is stopping (or the store closed): one more
				// pass sends what is left.
				stopping = true
			}
			continue
		}
		buf = buf[:0]
		n := 0
		for i, e := range evs {
			cursor = e.ID
			if sub.filter.Match(e) {
				n++
				if sub.format == FormatLX {
					buf = protocol.AppendLineFrame(buf, e.ID, lx.Format(e))
				} else {
					buf = protocol.AppendEventFrame(buf, e)
				}
			}
			// Write when the buffer is full or the batch done: a batch of
			// large events must not grow one subscriber's buffer without bound.
			if n > 0 && (len(buf) >= maxWrite || i == len(evs)-1) {
				if err := sess.Write(buf); err != nil {
					return
				}
				s.sent.Add(uint64(n))
				buf, n = buf[:0], 0
			}
		}
		if cap(buf) > 2*maxWrite { // one huge event: do not keep its buffer
			buf = make([]byte, 0, maxWrite)
		}
		clear(evs) // the store trims them; this reader must not keep them alive
	}
}

// maxWrite is how much a subscriber's stream encodes before it writes.
const maxWrite = 256 << 10
