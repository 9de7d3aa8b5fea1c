package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/internal/checkgrid"
	"github.com/zbridge/zbridge/protocol"
)

// Reasons a session ends without a bye (the connection could not carry
// one). With the bye reasons of package protocol they label the ended
// sessions in Stats and the region's metrics.
const (
	EndClosed     = "closed"      // the client closed the connection
	EndReadError  = "read-error"  // reading from the client failed
	EndWriteError = "write-error" // writing to the client failed (not a timeout)
)

// Session is one logged-on client.
type Session struct {
	ID      string
	Client  string
	Remote  string
	Since   time.Time
	Options map[string]string // from the LOGON frame
	// State is the handler's: set and read only in Handler.Request calls,
	// which come one at a time from the session's reader.
	State any
	Log   logrus.FieldLogger

	srv    *Server
	conn   net.Conn
	limits protocol.Limits
	hb     time.Duration
	idle   time.Duration

	ctx    context.Context
	cancel context.CancelFunc

	lastRecv atomic.Int64  // unix ms of the last frame from the client
	lastSent atomic.Int64  // unix ms of the last write to the client
	reqs     atomic.Uint64 // numbers the server's own requests

	stopCtx    context.Context // done when the session ends or the server stops
	stopCancel context.CancelFunc

	hmu      sync.Mutex     // guards stopped and hwg.Add
	stopped  bool           // stopping is closed
	stopping chan struct{}  // closed when the server shuts down
	hwg      sync.WaitGroup // goroutines started with Go

	// wmu guards writes to conn. Writes go straight to conn: each Write is
	// flushed at once anyway, and a buffer per session (64 KiB, as there
	// was) would cost a region with thousands of subscribers hundreds of
	// MiB for nothing.
	wmu sync.Mutex

	endOnce   sync.Once
	endMu     sync.Mutex // guards endReason
	endReason string     // set once by end or End

	wg sync.WaitGroup // the session's own goroutines
}

// Context is cancelled when the session ends.
func (s *Session) Context() context.Context { return s.ctx }

// Stopping is closed when the server begins to shut down: a handler
// goroutine should send what it owes, end the session (End with reason
// shutdown) and return.
func (s *Session) Stopping() <-chan struct{} { return s.stopping }

// StopContext is done when the session ends or the server begins to shut
// down: handy for a handler goroutine's blocking waits.
func (s *Session) StopContext() context.Context { return s.stopCtx }

// NextReq numbers a request the server sends to the client (heartbeats
// and a ReplyHandler's own requests share the numbering).
func (s *Session) NextReq() uint64 { return s.reqs.Add(1) }

// Limits returns what was negotiated at logon.
func (s *Session) Limits() protocol.Limits { return s.limits }

// Go runs fn in a goroutine the session owns: the session waits for it
// before it is gone. fn must return when Context is done, and should finish
// its work and return when Stopping is closed. Once the server is shutting
// down, Go starts nothing and returns false.
func (s *Session) Go(fn func(ctx context.Context)) bool {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	if s.stopped {
		return false
	}
	s.hwg.Add(1)
	go func() {
		defer s.hwg.Done()
		fn(s.ctx)
	}()
	return true
}

// Send writes one frame and flushes it.
func (s *Session) Send(f *protocol.Frame) error {
	b, err := protocol.AppendFrame(nil, f)
	if err != nil {
		return err
	}
	return s.Write(b)
}

// Write writes already-encoded frames (each ending in a newline) and
// flushes them. If the write cannot complete within the write timeout (the
// client takes no data while the kernel's socket buffers are full), the
// session ends (reason behind: it stopped reading) and Write returns an
// error.
func (s *Session) Write(b []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.writeLocked(b, s.srv.cfg.WriteTimeout)
}

func (s *Session) writeLocked(b []byte, timeout time.Duration) error {
	if s.ctx.Err() != nil {
		return fmt.Errorf("session %s: %w", s.ID, net.ErrClosed)
	}
	s.conn.SetWriteDeadline(time.Now().Add(timeout))
	_, err := s.conn.Write(b)
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			s.end(protocol.ByeBehind, fmt.Sprintf("client accepted no data for %v", timeout))
		} else {
			s.end(EndWriteError, err.Error())
		}
		s.conn.Close()
		return fmt.Errorf("session %s: write: %w", s.ID, err)
	}
	s.lastSent.Store(time.Now().UnixMilli())
	return nil
}

// End ends the session with a bye frame carrying f's reason, message and
// resume point (f.Type is set to bye). Only the first End counts.
func (s *Session) End(f *protocol.Frame) {
	first := false
	s.endOnce.Do(func() {
		first = true
		s.endMu.Lock()
		s.endReason = f.Reason
		s.endMu.Unlock()
	})
	if !first {
		return
	}
	bye := *f
	bye.Type = protocol.TypeBye
	if b, err := protocol.AppendFrame(nil, &bye); err == nil {
		s.wmu.Lock()
		if s.ctx.Err() == nil {
			// A short deadline: the bye is a courtesy; the session ends anyway.
			s.conn.SetWriteDeadline(time.Now().Add(2 * time.Second))
			s.conn.Write(b)
		}
		s.cancel() // under wmu: nothing is written after the bye
		s.wmu.Unlock()
	}
	lvl := s.Log.WithFields(logrus.Fields{"reason": f.Reason})
	if f.ResumeAfter != "" {
		lvl = lvl.WithField("resume_after", f.ResumeAfter)
	}
	lvl.Info("session ended: " + f.Message)
	s.cancel()
	s.conn.Close()
}

// EndReason is why the session ended (a bye reason, or EndClosed,
// EndReadError, EndWriteError); "" while it runs. An Ender may call it.
func (s *Session) EndReason() string {
	s.endMu.Lock()
	defer s.endMu.Unlock()
	return s.endReason
}

// end records a reason without sending a bye (the connection is unusable).
func (s *Session) end(reason, msg string) {
	s.endOnce.Do(func() {
		s.endMu.Lock()
		s.endReason = reason
		s.endMu.Unlock()
		s.Log.WithField("reason", reason).Info("session ended: " + msg)
	})
	s.cancel()
}

func (s *Session) stop() {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	if !s.stopped {
		s.stopped = true
		close(s.stopping)
		s.stopCancel()
	}
}

func (s *Session) touch() { s.lastRecv.Store(time.Now().UnixMilli()) }

// run reads and answers frames until the session ends.
func (s *Session) run(r *protocol.Reader) {
	r.SetMaxFrame(s.srv.cfg.MaxFrame)
	s.wg.Add(1)
	go s.timers()
	var f protocol.Frame
	for {
		s.conn.SetReadDeadline(time.Now().Add(s.idle))
		err := r.Next(&f)
		if err != nil {
			s.readFailed(err)
			return
		}
		s.touch()
		switch f.Type {
		case protocol.TypeHeartbeat:
			s.Write(protocol.AppendBareFrame(nil, protocol.TypeReply, f.Req))
		case protocol.TypeReply:
			// An answer to a heartbeat or to a handler's request.
			if rh, ok := s.srv.h.(ReplyHandler); ok {
				rh.Reply(s, &f)
			}
		case protocol.TypeLogoff:
			s.Send(protocol.Reply(f.Req, nil))
			s.End(&protocol.Frame{Reason: protocol.ByeLogoff, Message: "logged off"})
			return
		case protocol.TypeLogon:
			s.Send(protocol.Reply(f.Req, &protocol.Error{Code: protocol.ErrCodeState, Message: "already logged on"}))
		default:
			if reply := s.srv.h.Request(s, &f); reply != nil {
				reply.Req = f.Req
				if reply.Type == "" {
					reply.Type = protocol.TypeReply
				}
				s.Send(reply)
			}
		}
		// Nothing of the frame is kept while the session waits for the
		// next: a handler keeps what it needs of it (Handler).
		f = protocol.Frame{}
		if s.ctx.Err() != nil {
			return
		}
	}
}

func (s *Session) readFailed(err error) {
	var ne net.Error
	switch {
	case s.ctx.Err() != nil:
		// Ended elsewhere (End, a write failure, Close).
	case errors.Is(err, protocol.ErrFrameTooLarge):
		s.End(&protocol.Frame{Reason: protocol.ByeFrameTooLarge, Message: err.Error()})
	case errors.Is(err, protocol.ErrMalformed):
		s.End(&protocol.Frame{Reason: protocol.ByeBadFrame, Message: err.Error()})
	case errors.As(err, &ne) && ne.Timeout():
		s.End(&protocol.Frame{Reason: protocol.ByeIdle, Message: fmt.Sprintf("nothing received for %v", s.idle)})
	case errors.Is(err, io.EOF), errors.Is(err, protocol.ErrPartialFrame):
		s.end(EndClosed, "the client closed the connection without logging off")
	default:
		s.end(EndReadError, err.Error())
	}
}

// timers sends heartbeats when the session is otherwise quiet and ends it
// at the end of its lifetime.
func (s *Session) timers() {
	defer s.wg.Done()
	// Check once an interval when the idle timeout is 2.5 intervals or
	// more (it is three by default): a heartbeat then goes out at most 1.9
	// intervals after the client last spoke, inside the idle timeout, and
	// an idle session's check finds a heartbeat due each time, where two
	// checks an interval woke the session twice for one heartbeat. With a
	// shorter idle timeout, check twice an interval: a heartbeat then goes
	// out at most 1.4 intervals after the client last spoke.
	// The checks fall at a random phase of the session's own, so that the
	// sessions that logged on together (the subscribers of a region that
	// restarted) do not send their heartbeats together; the phases fall on
	// a grid shared by every session (see package checkgrid), so that the checks
	// due in the same second go together and thousands of idle sessions
	// wake the process a few times a second rather than hundreds.
	check := s.hb
	if s.idle < s.hb*5/2 {
		check = s.hb / 2
	}
	check = max(check, time.Millisecond)
	phase := checkgrid.Phase(check)
	tick := time.NewTimer(time.Until(checkgrid.Next(time.Now(), check, phase)))
	defer tick.Stop()
	var life <-chan time.Time
	if s.srv.cfg.Lifetime > 0 {
		t := time.NewTimer(s.srv.cfg.Lifetime)
		defer t.Stop()
		life = t.C
	}
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.stopping:
			// Handler goroutines flush what they owe and end the session
			// themselves; a session with none ends here.
			s.hwg.Wait()
			s.End(&protocol.Frame{Reason: protocol.ByeShutdown, Message: "the region is shutting down"})
			return
		case <-life:
			s.End(&protocol.Frame{Reason: protocol.ByeLifetime, Message: fmt.Sprintf("session lifetime of %v reached", s.srv.cfg.Lifetime)})
			return
		case <-tick.C:
			tick.Reset(time.Until(checkgrid.Next(time.Now(), check, phase)))
			// Heartbeat when we have sent nothing for an interval, and when
			// the client has: its answer keeps a client that only reads
			// (a subscriber under steady traffic) from going idle.
			quiet := s.hb - s.hb/10
			if time.Since(time.UnixMilli(s.lastSent.Load())) >= quiet ||
				time.Since(time.UnixMilli(s.lastRecv.Load())) >= quiet {
				s.Write(protocol.AppendBareFrame(nil, protocol.TypeHeartbeat, s.NextReq()))
			}
		}
	}
}

// finish waits for the session's goroutines and returns why it ended.
func (s *Session) finish() string {
	s.end(EndClosed, "connection closed")
	s.conn.Close()
	s.hwg.Wait()
	s.wg.Wait()
	return s.endReason
}
