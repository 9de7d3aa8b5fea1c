package relp

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/internal/acceptloop"
	"github.com/zbridge/zbridge/internal/tlsconf"
	"github.com/zbridge/zbridge/protocol/relp"
)

// session is one RELP connection, served by one goroutine (serve).
type session struct {
	s      *Server
	nc     net.Conn     // raw, or a TLS server connection over it
	raw    *watchedConn // the accepted connection
	remote net.Addr
	log    logrus.FieldLogger
	adm    *acceptloop.Admission // its place in the per-address count

	// Used by the session's goroutine only.
	rd     *relp.Reader
	expect int         // the txnr the next frame must carry
	opened bool        // open was answered with 200
	held   *relp.Frame // a frame read after a batch, to be handled next
	wbuf   []byte      // the answers being written
	arena  []byte      // the batch's messages, one after another
	ends   []int       // where each message ends in arena
	txnrs  []int       // each message's txnr
	msgs   [][]byte    // the batch as handed to Deliver

	mu       sync.Mutex // guards the following fields and the setting of nc's deadlines
	stopping bool       // Shutdown: finish the batch in hand, then serverclose
	writing  bool       // the session is writing answers (write): stop leaves the write deadline alone
}

// stop makes the session end after the batch it is delivering, if any:
// a read waiting for the client returns at once, and so does a write
// crypto/tls makes inside it (its answer to a TLS 1.3 KeyUpdate, which a
// client that does not read would hold forever); the answers the session
// is writing are not cut short.
func (ss *session) stop() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if !ss.stopping {
		ss.stopping = true
		if ss.writing {
			ss.nc.SetReadDeadline(time.Now())
		} else {
			ss.nc.SetDeadline(time.Now())
		}
	}
}

// write writes p, waiting at most d.
func (ss *session) write(p []byte, d time.Duration) error {
	ss.mu.Lock()
	ss.writing = true
	ss.nc.SetWriteDeadline(time.Now().Add(d))
	ss.mu.Unlock()
	_, err := ss.nc.Write(p)
	ss.mu.Lock()
	ss.writing = false
	ss.mu.Unlock()
	return err
}

func (ss *session) isStopping() bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.stopping
}

// serve runs the session until it ends, then says why (serverclose, log)
// and closes the connection.
func (ss *session) serve() {
	s := ss.s
	defer func() {
		if ss.raw.writeTimedOut.Load() {
			// The client does not read: crypto/tls's Close would wait
			// 5 s more to send it a close_notify.
			ss.raw.Close()
		} else {
			ss.nc.Close()
		}
		s.mu.Lock()
		delete(s.sessions, ss)
		s.mu.Unlock()
		ss.adm.Release()
		s.finished()
	}()
	ss.log.Debug("session open")
	if tc, ok := ss.nc.(*tls.Conn); ok {
		// Bounded by HandshakeTimeout, cut short by Close (s.ctx) and by
		// Shutdown (the deadline stop sets).
		ctx, cancel := context.WithTimeout(s.ctx, s.cfg.HandshakeTimeout)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			ss.log.WithError(tlsconf.ExplainHandshake(err)).Warn("TLS handshake failed; connection closed")
			return
		}
	}
	ss.rd = relp.NewReader(bufio.NewReaderSize(ss.nc, readBuffer), s.cfg.MaxFrame)
	ss.end(ss.run())
}

// Causes of a session's end besides errors.
var (
	errClientClosed = errors.New("client sent close")
	errClosed       = errors.New("server closed")
)

// deliverError is a Sink's error, which ends the session.
type deliverError struct{ err error }

func (e *deliverError) Error() string { return "delivery failed: " + e.err.Error() }
func (e *deliverError) Unwrap() error { return e.err }

// run serves frames until the session must end, and returns why.
func (ss *session) run() error {
	for {
		if ss.isStopping() {
			return ErrShutdown
		}
		f, err := ss.next()
		if err != nil {
			return err
		}
		switch f.Command {
		case relp.CmdSyslog:
			if !ss.opened {
				ss.answer(f.Txnr, relp.StatusError, "session not open: send open first", nil)
				return fmt.Errorf("%w: syslog before open", ErrProtocol)
			}
			stopped := ss.gather(f)
			if err := ss.deliver(); err != nil {
				return err
			}
			if stopped != nil {
				return stopped
			}
		case relp.CmdOpen:
			if err := ss.open(f); err != nil {
				return err
			}
		case relp.CmdClose:
			ss.answer(f.Txnr, relp.StatusOK, "OK", nil)
			return errClientClosed
		default:
			ss.answer(f.Txnr, relp.StatusError, "command not supported: "+f.Command, nil)
			return fmt.Errorf("%w: command %q, which the server did not offer", ErrProtocol, f.Command)
		}
	}
}

// next returns the frame held after the last batch, or reads one, waiting
// at most IdleTimeout for it, and checks its txnr. The deadline is the
// write deadline too: the session writes nothing while it reads, but
// crypto/tls does, from inside Read: its answer to a TLS 1.3 KeyUpdate
// that requests one. A client that keeps requesting them and never reads
// fills the socket's buffers, and that write would then wait forever
// (before the session's first answer, no write deadline was set at all),
// holding the session past IdleTimeout and Shutdown
// (TestTLSKeyUpdateNotRead).
func (ss *session) next() (relp.Frame, error) {
	if f := ss.held; f != nil {
		ss.held = nil
		return *f, nil
	}
	s := ss.s
	if !ss.rd.Buffered() {
		ss.mu.Lock()
		if ss.stopping {
			ss.mu.Unlock()
			return relp.Frame{}, ErrShutdown
		}
		ss.nc.SetDeadline(time.Now().Add(s.cfg.IdleTimeout))
		ss.mu.Unlock()
	}
	off := ss.rd.Offset()
	f, err := ss.rd.ReadFrame()
	if err != nil {
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded) && ss.isStopping():
			return f, ErrShutdown
		case errors.Is(err, os.ErrDeadlineExceeded):
			return f, fmt.Errorf("%w: no frame for %v: %w", ErrIdle, s.cfg.IdleTimeout, err)
		case s.ctx.Err() != nil:
			return f, errClosed
		}
		return f, err
	}
	s.stats.frames.Add(1)
	s.stats.bytes.Add(uint64(ss.rd.Offset() - off))
	if f.Txnr != ss.expect {
		return f, fmt.Errorf("%w: %s frame with txnr %d at offset %d, want txnr %d", ErrProtocol, f.Command, f.Txnr, off, ss.expect)
	}
	ss.expect = relp.NextTxnr(ss.expect)
	return f, nil
}

// gather puts the syslog frame f in the batch, with the syslog frames
// received after it that are already in the buffer, up to Window frames
// and maxBatchBytes of messages (so that a window of the largest frames
// is delivered in parts, not held whole by every session at once). A frame
// of another command is held for next. It returns what stopped the reading
// (a malformed frame, a txnr out of sequence), to be reported after the
// batch is delivered: what the client sent before it is not lost.
func (ss *session) gather(f relp.Frame) error {
	ss.add(f)
	for len(ss.txnrs) < ss.s.cfg.Window && len(ss.arena) < maxBatchBytes && ss.rd.Buffered() {
		f, err := ss.next()
		if err != nil {
			return err
		}
		if f.Command != relp.CmdSyslog {
			f.Data = slices.Clone(f.Data) // the next read may overwrite it
			ss.held = &f
			return nil
		}
		ss.add(f)
	}
	return nil
}

// add copies a syslog frame's message into the batch.
func (ss *session) add(f relp.Frame) {
	ss.arena = append(ss.arena, f.Data...)
	ss.ends = append(ss.ends, len(ss.arena))
	ss.txnrs = append(ss.txnrs, f.Txnr)
}

// deliver hands the batch to the Sink and, once it has made it durable,
// answers each message with rsp 200, in order, in one write. When the Sink
// fails nothing is answered: the error ends the session.
func (ss *session) deliver() error {
	s := ss.s
	start := 0
	for _, end := range ss.ends {
		ss.msgs = append(ss.msgs, ss.arena[start:end:end])
		start = end
	}
	err := s.ctx.Err()
	if err == nil {
		err = s.cfg.Sink.Deliver(s.ctx, ss.remote, ss.msgs)
	}
	n := len(ss.msgs)
	clear(ss.msgs)
	ss.msgs = ss.msgs[:0]
	ss.ends = ss.ends[:0]
	if cap(ss.arena) > maxKeptArena {
		ss.arena = nil
	} else {
		ss.arena = ss.arena[:0]
	}
	if err != nil {
		ss.txnrs = ss.txnrs[:0]
		if s.ctx.Err() != nil {
			return errClosed
		}
		s.stats.deliverErrors.Add(1)
		ss.log.WithError(err).Errorf("delivery of %d messages failed; not acknowledged, the client will send them again", n)
		return &deliverError{err}
	}
	s.stats.batches.Add(1)
	s.stats.messages.Add(uint64(n))
	for _, t := range ss.txnrs {
		ss.wbuf = relp.AppendResponse(ss.wbuf, t, relp.StatusOK, "OK", nil)
	}
	ss.txnrs = ss.txnrs[:0]
	return ss.flush()
}

// open answers the open command: 200 with the server's offers when the
// client speaks a RELP version and offers the syslog command, else 500
// with the reason, which ends the session.
func (ss *session) open(f relp.Frame) error {
	refuse := func(reason string) error {
		ss.s.stats.openRefused.Add(1)
		ss.answer(f.Txnr, relp.StatusError, reason, nil)
		return fmt.Errorf("%w: open refused: %s", ErrProtocol, reason)
	}
	if ss.opened {
		return refuse("protocol error: connection already open")
	}
	offers, err := relp.ParseOffers(f.Data)
	if err != nil {
		return refuse("malformed offers")
	}
	o, ok := relp.FindOffer(offers, relp.OfferVersion)
	if !ok || len(o.Values) == 0 {
		return refuse("relp_version offer missing")
	}
	version, ok := parseVersion(o.Values[0])
	if !ok {
		return refuse("relp_version " + o.Values[0] + " is not a version number")
	}
	o, _ = relp.FindOffer(offers, relp.OfferCommands)
	if !slices.Contains(o.Values, relp.CmdSyslog) {
		return refuse("required command syslog not offered by client")
	}
	// Like librelp: the lower of the two versions (librelp 1.11 offers 0).
	version = min(version, ProtocolVersion)
	body := relp.AppendOffers(nil, []relp.Offer{
		{Name: relp.OfferVersion, Values: []string{fmt.Sprint(version)}},
		{Name: relp.OfferSoftware, Values: []string{Software}},
		{Name: relp.OfferCommands, Values: []string{relp.CmdSyslog}},
	})
	ss.opened = true
	log := ss.log.WithField("relp_version", version)
	if sw, ok := relp.FindOffer(offers, relp.OfferSoftware); ok {
		log = log.WithField("relp_software", sw.Values)
	}
	log.Debug("session opened")
	ss.answer(f.Txnr, relp.StatusOK, "OK", body)
	return ss.flush()
}

// parseVersion reads a relp_version value: digits only, as librelp.
func parseVersion(v string) (int, bool) {
	if len(v) == 0 || len(v) > 9 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, false
		}
		n = n*10 + int(v[i]-'0')
	}
	return n, true
}

// answer queues a rsp frame; flush writes it.
func (ss *session) answer(txnr, code int, text string, body []byte) {
	ss.wbuf = relp.AppendResponse(ss.wbuf, txnr, code, text, body)
}

// flush writes the queued answers, waiting at most IdleTimeout.
func (ss *session) flush() error {
	if len(ss.wbuf) == 0 {
		return nil
	}
	err := ss.write(ss.wbuf, ss.s.cfg.IdleTimeout)
	ss.wbuf = ss.wbuf[:0]
	if err != nil {
		if ss.s.ctx.Err() != nil {
			return errClosed
		}
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// end logs and counts why the session ends and, when the client can still
// read, sends what is queued and the serverclose hint with the reason.
func (ss *session) end(cause error) {
	s := ss.s
	log := ss.log.WithField("offset", ss.rd.Offset())
	var reason string // serverclose's data; "" when none is sent
	var de *deliverError
	switch {
	case cause == errClientClosed:
		log.Debug("session closed by the client")
		reason = "closing"
	case cause == errClosed:
		log.Debug("session closed by Close")
	case errors.Is(cause, ErrShutdown):
		log.Debug("session closed for shutdown")
		reason = "server shutting down"
	case errors.Is(cause, ErrIdle):
		log.WithError(cause).Info("session idle; closed")
		reason = "idle timeout"
	case errors.As(cause, &de):
		reason = "delivery failed, send again"
	case errors.Is(cause, relp.ErrTooLarge):
		s.stats.protocolErrors.Add(1)
		log.WithError(cause).Warn("frame too large; session closed")
		reason = "frame too large"
	case errors.Is(cause, relp.ErrMalformed):
		s.stats.protocolErrors.Add(1)
		log.WithError(cause).Warn("malformed frame; session closed")
		reason = "malformed frame"
	case errors.Is(cause, ErrProtocol):
		s.stats.protocolErrors.Add(1)
		log.WithError(cause).Warn("protocol error; session closed")
		reason = "protocol error"
	case errors.Is(cause, relp.ErrTruncated):
		log.WithError(cause).Info("connection ended inside a frame")
	case cause == io.EOF:
		log.Debug("connection closed by the client")
	default:
		log.WithError(cause).Info("session ended")
	}
	if reason == "" {
		ss.wbuf = ss.wbuf[:0]
		return
	}
	ss.wbuf = relp.AppendServerClose(ss.wbuf, reason)
	ss.write(ss.wbuf, refuseTimeout)
	ss.wbuf = ss.wbuf[:0]
}
