package tn3270

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/racingmars/go3270"
	"github.com/sirupsen/logrus"
)

// DefaultMaxRecord is the default bound on one 3270 record from the host.
// A full 27x132 screen with an extended attribute on every position is
// under 32 KiB; structured fields (file transfer) stay under 64 KiB.
const DefaultMaxRecord = 1 << 20

// DefaultWriteTimeout is the default bound on one write to the host: a
// record, or a telnet negotiation answer.
const DefaultWriteTimeout = 30 * time.Second

// Config configures a Client. The zero value is a 3278 model 2 (24x80)
// using CP037.
type Config struct {
	// Model is the IBM 3278 model, 2 to 5; 0 means 2. It sets the
	// alternate screen size (24x80, 32x80, 43x80, 27x132) reported to the
	// host; the default size is always 24x80.
	Model int
	// TerminalType is sent in the TERMINAL-TYPE negotiation; default
	// "IBM-3278-<Model>-E" (the -E tells the host the terminal takes
	// extended attributes). Printable ASCII, at most 40 characters.
	TerminalType string
	// Codepage translates EBCDIC for the screen text and for typing; nil
	// means go3270.Codepage037(). It is used by this client alone.
	Codepage go3270.Codepage
	// Logger receives the session's events (connection, negotiation,
	// errors); never field contents. Nil means no logging.
	Logger logrus.FieldLogger
	// MaxRecord bounds one record from the host; 0 means
	// DefaultMaxRecord. A longer record ends the session.
	MaxRecord int
	// WriteTimeout bounds every write to the host, the answers the
	// client's goroutine writes by itself (to Read Buffer, a query, telnet
	// negotiation) included; 0 means DefaultWriteTimeout. A host that
	// stops reading ends the session after it, rather than holding the
	// client's goroutine and every write after it for good.
	WriteTimeout time.Duration
	// TLS, when set, makes Dial speak TLS to the server from the first
	// byte, as to the secure port of z/VM's TN3270 server (s3270's "L:"
	// prefix; TELNET STARTTLS is not spoken). An empty ServerName is taken
	// from the host of Dial's address. Dial uses a copy; New takes its
	// connection as it is and ignores TLS.
	TLS *tls.Config
	// Trace, if set, is called with every 3270 record, telnet framing
	// removed: fromHost is true for the records the host sends (before
	// they are processed) and false for those the client sends, which
	// include what is typed into hidden fields. Calls come from the
	// client's goroutines one at a time; record must not be kept after
	// the call returns.
	Trace func(fromHost bool, record []byte)
}

// withDefaults validates cfg and fills in its defaults.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.Model == 0 {
		cfg.Model = 2
	}
	if _, ok := modelSizes[cfg.Model]; !ok {
		return cfg, fmt.Errorf("%w: model %d (want 2 to 5)", ErrBadConfig, cfg.Model)
	}
	if cfg.TerminalType == "" {
		cfg.TerminalType = fmt.Sprintf("IBM-3278-%d-E", cfg.Model)
	}
	if len(cfg.TerminalType) > 40 || strings.IndexFunc(cfg.TerminalType, func(r rune) bool {
		return r <= ' ' || r > '~'
	}) >= 0 {
		return cfg, fmt.Errorf("%w: terminal type %q (want printable ASCII, at most 40 characters)", ErrBadConfig, cfg.TerminalType)
	}
	if cfg.Codepage == nil {
		cfg.Codepage = go3270.Codepage037()
	}
	if cfg.Logger == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		cfg.Logger = l
	}
	if cfg.MaxRecord == 0 {
		cfg.MaxRecord = DefaultMaxRecord
	}
	if cfg.MaxRecord < 0 {
		return cfg, fmt.Errorf("%w: MaxRecord %d", ErrBadConfig, cfg.MaxRecord)
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.WriteTimeout < 0 {
		return cfg, fmt.Errorf("%w: WriteTimeout %v", ErrBadConfig, cfg.WriteTimeout)
	}
	return cfg, nil
}

// Client is a TN3270 terminal session with a host. It owns one goroutine,
// which reads from the host, answers telnet negotiation and the host's
// queries and read commands, and applies the host's writes to the screen;
// Close stops it and waits for it. The methods are safe for concurrent use.
type Client struct {
	conn net.Conn
	cfg  Config
	log  logrus.FieldLogger
	dec  telnetDecoder // owned by the reader goroutine

	done      chan struct{} // closed when the reader goroutine has returned
	closeOnce sync.Once

	// wlock serialises writes to conn: a write holds its one slot. A
	// channel rather than a mutex so that waiting for it can end with the
	// writer's context.
	wlock   chan struct{}
	traceMu sync.Mutex // serialises calls of cfg.Trace

	mu      sync.Mutex // guards the following fields
	buf     *Buffer
	neg     negotiator
	snap    Screen        // the screen after the last change
	changed chan struct{} // closed and replaced when snap changes or the session ends
	err     error         // why the session ended; nil while it runs
	closing bool          // Close was called
}

// Dial connects to the TN3270 server at addr (host:port), with TLS when
// cfg.TLS is set, and starts a session (see New). ctx bounds the connection
// attempt (and the TLS handshake) only. A server that fails the TLS
// handshake or the certificate check gives an error that says so and wraps
// crypto/tls's (and, for a certificate, crypto/x509's: test with
// errors.As for x509.UnknownAuthorityError, say).
func Dial(ctx context.Context, addr string, cfg Config) (*Client, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("tn3270: dial %s: %w", addr, err)
	}
	if cfg.TLS != nil {
		tc := cfg.TLS.Clone()
		if tc.ServerName == "" {
			if host, _, err := net.SplitHostPort(addr); err == nil {
				tc.ServerName = host
			}
		}
		tconn := tls.Client(conn, tc)
		if err := tconn.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, fmt.Errorf("tn3270: TLS handshake with %s: %w", addr, err)
		}
		conn = tconn
	}
	c, err := New(conn, cfg)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

// New starts a session over conn, which the Client owns from now on (Close
// closes it). It returns at once: the host negotiates and writes the first
// screen in its own time; use WaitUpdate or WaitFor to wait for it.
func New(conn net.Conn, cfg Config) (*Client, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	buf, err := NewBuffer(cfg.Model, cfg.Codepage)
	if err != nil {
		return nil, err
	}
	c := &Client{
		conn:    conn,
		cfg:     cfg,
		log:     cfg.Logger.WithField("host", conn.RemoteAddr().String()),
		dec:     telnetDecoder{maxRecord: cfg.MaxRecord},
		done:    make(chan struct{}),
		wlock:   make(chan struct{}, 1),
		buf:     buf,
		neg:     negotiator{termType: cfg.TerminalType},
		changed: make(chan struct{}),
	}
	c.snap = buf.Snapshot()
	c.log.WithField("terminal_type", cfg.TerminalType).Debug("tn3270 session started")
	go c.readLoop()
	return c, nil
}

// Screen returns the screen as it is now.
func (c *Client) Screen() Screen {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.snap
}

// WaitUpdate waits until the host has written to the screen after the
// write numbered afterSeq (Screen.Seq), and returns the screen then. It
// returns at once if that has happened already. When the session ends
// first, the error wraps ErrClosed (and the reason, see Err).
func (c *Client) WaitUpdate(ctx context.Context, afterSeq uint64) (Screen, error) {
	for {
		c.mu.Lock()
		snap, changed, err := c.snap, c.changed, c.err
		c.mu.Unlock()
		if snap.Seq > afterSeq {
			return snap, nil
		}
		if err != nil {
			return snap, closedError(err)
		}
		select {
		case <-ctx.Done():
			return snap, ctx.Err()
		case <-changed:
		}
	}
}

// WaitFor waits until cond holds for the screen, testing it now and after
// every host write, and returns that screen. cond must not block.
func (c *Client) WaitFor(ctx context.Context, cond func(Screen) bool) (Screen, error) {
	s := c.Screen()
	for {
		if cond(s) {
			return s, nil
		}
		var err error
		if s, err = c.WaitUpdate(ctx, s.Seq); err != nil {
			return s, err
		}
	}
}

// Err returns why the session ended: nil while it runs, ErrClosed after
// Close, else the failure (wrapping ErrDisconnected, ErrBadDataStream,
// ErrTelnet or a network error).
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Done returns a channel closed when the session has ended.
func (c *Client) Done() <-chan struct{} { return c.done }

// Close ends the session, closes the connection and waits for the
// client's goroutine to return. It is safe to call more than once.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closing = true
		c.mu.Unlock()
		c.conn.Close()
	})
	<-c.done
	return nil
}

// closedError wraps the reason a session ended so that it matches
// ErrClosed as well as the reason.
func closedError(cause error) error {
	if errors.Is(cause, ErrClosed) {
		return cause
	}
	return fmt.Errorf("%w: %w", ErrClosed, cause)
}

// Type types text at the cursor, as an operator would: into the
// unprotected field at the cursor (or the one whose attribute the cursor is
// on), setting the field's modified data tag. All of text must fit in the
// rest of the field, else nothing is typed (ErrFieldOverflow); typing into
// a protected field fails with ErrProtected, and while the keyboard is
// locked with ErrKeyboardLocked. The cursor ends after the text, or at the
// next unprotected field if the text filled the field.
func (c *Client) Type(text string) error {
	return c.edit(func(b *Buffer) error { return b.typeText(text) })
}

// SetField replaces the content of the unprotected field at (row, col)
// (its attribute position or any of its characters) with text, the rest of
// the field nulled, and sets its modified data tag; the cursor ends after
// the text. Errors as for Type, and ErrNoField on an unformatted screen.
func (c *Client) SetField(row, col int, text string) error {
	return c.edit(func(b *Buffer) error { return b.setField(row, col, text) })
}

// MoveCursor puts the cursor at (row, col).
func (c *Client) MoveCursor(row, col int) error {
	return c.edit(func(b *Buffer) error { return b.moveCursor(row, col) })
}

// Tab moves the cursor to the first position of the next unprotected
// field, as the Tab key does.
func (c *Client) Tab() error {
	return c.edit(func(b *Buffer) error { b.tab(); return nil })
}

func (c *Client) edit(f func(*Buffer) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return closedError(c.err)
	}
	if err := f(c.buf); err != nil {
		return err
	}
	c.snap = c.buf.Snapshot()
	return nil
}

// SendAID presses an attention key: Enter or a PF key sends the AID, the
// cursor address and the modified fields (Read Modified format); Clear
// (which clears the screen first) and the PA keys send the AID alone. The
// keyboard then stays locked until the host restores it. It fails with
// ErrKeyboardLocked while the keyboard is locked and ErrBadAID for an AID
// no keyboard sends. ctx bounds the wait for another write to finish
// (when it ends first, SendAID returns ctx's error and nothing was pressed)
// and the write itself; a write that fails, is interrupted or takes longer
// than Config.WriteTimeout ends the session.
func (c *Client) SendAID(ctx context.Context, aid go3270.AID) error {
	if err := c.lockWrite(ctx); err != nil {
		return err
	}
	defer c.unlockWrite()
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return closedError(c.err)
	}
	rec, err := c.buf.pressAID(aid)
	if err == nil {
		c.snap = c.buf.Snapshot()
	}
	c.mu.Unlock()
	if err != nil {
		return err
	}
	c.log.WithField("aid", go3270.AIDtoString(aid)).Debug("tn3270 AID sent")
	c.trace(false, rec)
	return c.writeLocked(ctx, appendRecord(make([]byte, 0, len(rec)+8), rec))
}

// sendRecord sends one 3270 record to the host.
func (c *Client) sendRecord(ctx context.Context, rec []byte) error {
	c.trace(false, rec)
	return c.write(ctx, appendRecord(make([]byte, 0, len(rec)+8), rec))
}

func (c *Client) trace(fromHost bool, rec []byte) {
	if c.cfg.Trace == nil {
		return
	}
	c.traceMu.Lock()
	defer c.traceMu.Unlock()
	c.cfg.Trace(fromHost, rec)
}

// write writes p to the host in one piece, after the writes before it.
// If ctx ends while it waits for them, it returns ctx's error and the
// session goes on; if ctx ends during the write, or the write takes longer
// than Config.WriteTimeout, the write is interrupted. Any failure of the
// write ends the session: the stream is no longer whole.
func (c *Client) write(ctx context.Context, p []byte) error {
	if err := c.lockWrite(ctx); err != nil {
		return err
	}
	defer c.unlockWrite()
	return c.writeLocked(ctx, p)
}

// lockWrite takes the write slot, or returns ctx's error if ctx ends
// first.
func (c *Client) lockWrite(ctx context.Context) error {
	select {
	case c.wlock <- struct{}{}:
		return nil
	default:
	}
	select {
	case c.wlock <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *Client) unlockWrite() { <-c.wlock }

// writeLocked is write with the write slot held.
func (c *Client) writeLocked(ctx context.Context, p []byte) error {
	if err := c.Err(); err != nil {
		return closedError(err)
	}
	c.conn.SetWriteDeadline(time.Now().Add(c.cfg.WriteTimeout))
	defer c.conn.SetWriteDeadline(time.Time{})
	if ctx.Done() != nil {
		fired := make(chan struct{})
		stop := context.AfterFunc(ctx, func() {
			c.conn.SetWriteDeadline(time.Unix(1, 0))
			close(fired)
		})
		defer func() {
			if !stop() {
				<-fired
			}
		}()
	}
	if _, err := c.conn.Write(p); err != nil {
		switch {
		case ctx.Err() != nil:
			err = ctx.Err()
		case errors.Is(err, os.ErrDeadlineExceeded):
			err = fmt.Errorf("the host did not take it within %v: %w", c.cfg.WriteTimeout, err)
		}
		err = fmt.Errorf("tn3270: write: %w", err)
		c.fail(err)
		return closedError(c.Err())
	}
	return nil
}

// fail ends the session for cause (ErrClosed if Close was called).
func (c *Client) fail(cause error) {
	c.mu.Lock()
	if c.err == nil {
		if c.closing {
			cause = ErrClosed
		}
		c.err = cause
		close(c.changed)
		c.changed = make(chan struct{})
		if cause == ErrClosed {
			c.log.Debug("tn3270 session closed")
		} else {
			c.log.WithError(cause).Warn("tn3270 session ended")
		}
	}
	c.mu.Unlock()
	c.conn.Close()
}

// readLoop is the client's goroutine: it reads from the host until the
// connection fails or is closed.
func (c *Client) readLoop() {
	defer close(c.done)
	p := make([]byte, 32<<10)
	for {
		n, err := c.conn.Read(p)
		if n > 0 {
			if ferr := c.dec.feed(p[:n], c); ferr != nil {
				c.fail(ferr)
				return
			}
		}
		if err != nil {
			c.fail(c.readError(err))
			return
		}
	}
}

// readError describes why reading stopped.
func (c *Client) readError(err error) error {
	if !errors.Is(err, io.EOF) {
		return fmt.Errorf("tn3270: read: %w", err)
	}
	// A host that refuses a session often says why in plain text before
	// closing (Hercules: "Connection rejected, no available 3270 device").
	if text := printable(c.dec.pending(), 200); text != "" {
		return fmt.Errorf("%w (its last words: %q)", ErrDisconnected, text)
	}
	return ErrDisconnected
}

// printable returns p as text if it is printable ASCII (line ends
// trimmed), cut at n bytes; else "".
func printable(p []byte, n int) string {
	s := strings.TrimSpace(string(p[:min(len(p), n)]))
	for _, r := range s {
		if r > unicode.MaxASCII || !unicode.IsPrint(r) && !unicode.IsSpace(r) {
			return ""
		}
	}
	return s
}

// record handles a 3270 record from the host (telnetHandler).
func (c *Client) record(rec []byte) error {
	c.trace(true, rec)
	c.mu.Lock()
	before := c.buf.writes
	reply, err := ParseDataStream(c.buf, rec)
	if c.buf.writes != before || err != nil {
		c.snap = c.buf.Snapshot()
		close(c.changed)
		c.changed = make(chan struct{})
	}
	c.mu.Unlock()
	if err != nil {
		var dse *DataStreamError
		if errors.As(err, &dse) {
			lo, hi := max(0, dse.Offset-8), min(len(rec), dse.Offset+8)
			c.log.WithFields(logrus.Fields{
				"record_len": len(rec),
				"near":       fmt.Sprintf("% X", rec[lo:hi]),
			}).Debug("tn3270 bad record")
		}
		return fmt.Errorf("host record of %d bytes: %w", len(rec), err)
	}
	if reply != nil {
		return c.sendRecord(context.Background(), reply)
	}
	return nil
}

// command handles the host's WILL, WONT, DO or DONT (telnetHandler). Each
// answer goes out in a write of its own: go3270's server reads them one
// at a time.
func (c *Client) command(cmd, opt byte) error {
	c.mu.Lock()
	was := c.neg.in3270()
	out := c.neg.answer(cmd, opt)
	now := c.neg.in3270()
	c.mu.Unlock()
	c.log.WithFields(logrus.Fields{"cmd": telnetName(cmd), "option": opt}).Debug("tn3270 telnet negotiation")
	if out != nil {
		if err := c.write(context.Background(), out); err != nil {
			return err
		}
	}
	if now != was {
		c.log.WithField("3270_mode", now).Info("tn3270 mode changed")
	}
	return nil
}

// subneg handles a subnegotiation (telnetHandler).
func (c *Client) subneg(data []byte) error {
	c.mu.Lock()
	out := c.neg.subneg(data)
	c.mu.Unlock()
	if out == nil {
		return nil
	}
	return c.write(context.Background(), out)
}

func telnetName(cmd byte) string {
	switch cmd {
	case tnWILL:
		return "WILL"
	case tnWONT:
		return "WONT"
	case tnDO:
		return "DO"
	case tnDONT:
		return "DONT"
	}
	return fmt.Sprintf("0x%02X", cmd)
}
