// Package client is a Go client of the region's protocol: it logs on to
// UNSOLMSG (and the other ports), subscribes, and reads events. It starts no
// goroutines: Next reads frames, answers the server's heartbeats and sends
// the client's own when the session is quiet. A Subscriber reads one
// subscription from several regions sharing a store, failing over between
// them and resuming where it left off (zbridge tail is one).
package client

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/zbridge/zbridge/protocol"
)

// RefusedError is a LOGON the server refused.
type RefusedError struct {
	Reason     string // protocol.RefuseAuth, RefuseBusy, ...
	Message    string
	RetryAfter time.Duration
}

func (e *RefusedError) Error() string {
	s := fmt.Sprintf("client: logon refused (%s): %s", e.Reason, e.Message)
	if e.RetryAfter > 0 {
		s += fmt.Sprintf("; retry after %v", e.RetryAfter)
	}
	return s
}

// ByeError is the server ending the session.
type ByeError struct {
	Reason      string
	Message     string
	ResumeAfter string // for reason behind or shutdown: subscribe again after this ID
}

func (e *ByeError) Error() string {
	s := fmt.Sprintf("client: session ended by server (%s): %s", e.Reason, e.Message)
	if e.ResumeAfter != "" {
		s += "; resume after " + e.ResumeAfter
	}
	return s
}

// ReplyError is an error a reply carried.
type ReplyError struct {
	Code    string
	Message string
}

func (e *ReplyError) Error() string { return fmt.Sprintf("client: %s: %s", e.Code, e.Message) }

// Config says where and as whom to log on.
type Config struct {
	Addr   string // host:port
	Client string // client name
	Secret string
	// TLS, when set, makes the connection TLS.
	TLS *tls.Config
	// Heartbeat is the interval asked for (default 30s).
	Heartbeat time.Duration
	// MaxFrame bounds frames from the server (default 16 MiB).
	MaxFrame int
	// ReadBuffer is the size of the read buffer (default 64 KiB). A
	// subscriber that takes a stream at full rate (zbridge tail) reads
	// fewer, larger chunks with a larger one, and the region, whose writes
	// wait for it, makes fewer too.
	ReadBuffer int
}

// Conn is a logged-on session.
type Conn struct {
	nc      net.Conn
	r       *protocol.Reader
	bw      *bufio.Writer
	req     uint64
	hb      time.Duration
	Session string          // the session ID the server gave
	Limits  protocol.Limits // what the server granted
	pending []protocol.Frame
	wbuf    []byte // a request's bytes, reused
	// rawEvents: Next passes JSON event frames on as EventJSON (see
	// SetRawEvents), in raw, which each one reuses.
	rawEvents bool
	raw       protocol.Frame
}

// SetRawEvents sets whether Next returns an event frame in the JSON format
// with its event object as the region sent it (Frame.EventJSON and EventID,
// Event nil) instead of decoded: for a client that passes events on as
// JSON. A frame in another form than the region's encoder writes is decoded
// as before (protocol.SplitEventFrame). Such a raw event frame, and its
// EventJSON, which is part of the Conn's read buffer, are valid until the
// next call of Next: nothing is allocated or copied for it.
func (c *Conn) SetRawEvents(raw bool) { c.rawEvents = raw }

// Dial connects and logs on. A refusal is a *RefusedError.
func Dial(ctx context.Context, cfg Config) (*Conn, error) {
	return dial(ctx, cfg, nil)
}

// DialCommand connects, logs on and sends the command r, written behind
// the logon, in the same write, instead of after the region's accept: one
// round trip fewer for a client that connects to run one command (zbridge
// cmd). The region reads a session's frames in order, so it runs the
// command once the logon is accepted, and never when it is refused (the
// error is then the *RefusedError). The command's output and reply are read
// by the Pending's Wait, as Command reads them.
//
// Once written, the command may run whatever this client does next: if ctx
// ends while the answer to the logon is awaited, DialCommand waits up to
// commandGrace more for it, and returns an accepted logon as one (Wait,
// its ctx ended, then asks the region to cancel the command by its ID and
// returns the reply, as Command does). A command line of more than
// maxPipelined bytes is sent after the accept instead: behind a refused
// logon it could still be being written when the region closes the
// connection, and the refusal would be lost.
func DialCommand(ctx context.Context, cfg Config, r CommandRequest) (*Conn, Pending, error) {
	f := commandFrame(r)
	if len(r.Command)+len(r.Target)+len(r.ID) > maxPipelined {
		c, err := Dial(ctx, cfg)
		if err != nil {
			return nil, Pending{}, err
		}
		req, err := c.send(f)
		if err != nil {
			c.Close()
			return nil, Pending{}, err
		}
		return c, Pending{c: c, req: req, id: r.ID}, nil
	}
	c, err := dial(ctx, cfg, f)
	if err != nil {
		return nil, Pending{}, err
	}
	return c, Pending{c: c, req: f.Req, id: r.ID}, nil
}

// maxPipelined bounds the command DialCommand writes behind the logon: far
// below what the sockets of both ends buffer, so that the whole write is
// in their buffers before the region has read the logon.
const maxPipelined = 16 << 10

// commandGrace is how long a command's client waits for an answer after
// its ctx ended, to a cancel (Command) or to the logon a command was
// written behind (DialCommand).
const commandGrace = 5 * time.Second

// Pending is a command sent and not yet answered.
type Pending struct {
	c   *Conn
	req uint64
	id  string
}

// Wait is the rest of Command once the command is sent: it reads the
// command's output, calling out (when set) with each output frame, until
// its reply.
func (p Pending) Wait(ctx context.Context, out func(*protocol.Frame)) (*protocol.Frame, error) {
	return p.c.awaitCommand(ctx, p.req, out, p.id)
}

// dial connects and logs on; then, when it is not nil, is a command written
// with the logon (numbered after it), for which an accepted logon is
// returned even if ctx ended while its answer was awaited (see
// DialCommand).
func dial(ctx context.Context, cfg Config, then *protocol.Frame) (*Conn, error) {
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 30 * time.Second
	}
	if cfg.MaxFrame <= 0 {
		cfg.MaxFrame = 16 << 20
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	if cfg.TLS != nil {
		tc := tls.Client(nc, cfg.TLS)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, fmt.Errorf("client: TLS handshake with %s: %w", cfg.Addr, err)
		}
		nc = tc
	}
	c := &Conn{nc: nc, r: protocol.NewReaderSize(nc, cfg.MaxFrame, cfg.ReadBuffer), bw: bufio.NewWriter(nc), hb: cfg.Heartbeat}
	// Once ctx ends, the logon's answer is waited for grace more.
	var grace time.Duration
	if then != nil {
		grace = commandGrace
	}
	if dl, ok := ctx.Deadline(); ok {
		nc.SetDeadline(dl.Add(grace))
	}
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(fired)
		if grace == 0 {
			nc.SetDeadline(time.Unix(1, 0))
		} else {
			nc.SetDeadline(time.Now().Add(grace))
		}
	})
	hbs := int((cfg.Heartbeat + time.Second - 1) / time.Second)
	logon, err := c.queue(&protocol.Frame{Type: protocol.TypeLogon, Client: cfg.Client, Secret: protocol.Secret(cfg.Secret),
		Version: protocol.Version, Heartbeat: hbs})
	if err == nil && then != nil {
		_, err = c.queue(then)
	}
	if err == nil {
		err = c.flush(protocol.TypeLogon)
	}
	var f *protocol.Frame
	if err == nil {
		f, err = c.await(protocol.TypeLogon, logon)
	}
	if !stop() {
		<-fired // its deadline is set before the one below
	}
	switch ctxErr := ctx.Err(); {
	case err == nil && f.Type == protocol.TypeRefuse:
		nc.Close()
		return nil, &RefusedError{Reason: f.Reason, Message: f.Message, RetryAfter: time.Duration(f.RetryAfter) * time.Second}
	case ctxErr != nil && then != nil && err != nil:
		nc.Close()
		return nil, fmt.Errorf("client: logon to %s: %w (the command written with it may have started)", cfg.Addr, ctxErr)
	case ctxErr != nil && then == nil: // ctx ended during the logon
		nc.Close()
		return nil, fmt.Errorf("client: logon to %s: %w", cfg.Addr, ctxErr)
	case err != nil:
		nc.Close()
		return nil, err
	case f.Type != protocol.TypeAccept:
		nc.Close()
		return nil, fmt.Errorf("client: unexpected %q frame in answer to logon", f.Type)
	}
	nc.SetDeadline(time.Time{})
	c.Session = f.Session
	if f.Limits != nil {
		c.Limits = *f.Limits
		if f.Limits.Heartbeat > 0 {
			c.hb = time.Duration(f.Limits.Heartbeat) * time.Second
		}
	}
	return c, nil
}

// send writes a request, numbering it.
func (c *Conn) send(f *protocol.Frame) (uint64, error) {
	req, err := c.queue(f)
	if err != nil {
		return 0, err
	}
	return req, c.flush(f.Type)
}

// queue numbers a request and adds it to what the next flush writes.
func (c *Conn) queue(f *protocol.Frame) (uint64, error) {
	if f.Type != protocol.TypeReply && f.Type != protocol.TypeAck {
		c.req++
		f.Req = c.req
	}
	var err error
	c.wbuf, err = protocol.AppendFrame(c.wbuf[:0], f)
	if err != nil {
		return 0, err
	}
	c.bw.Write(c.wbuf)
	return f.Req, nil
}

// flush writes the requests queued, typ naming the one an error is about.
func (c *Conn) flush(typ string) error {
	if err := c.bw.Flush(); err != nil {
		return fmt.Errorf("client: send %s: %w", typ, err)
	}
	return nil
}

// call sends a request and reads until its answer, keeping any other
// frames that arrive meanwhile for Next.
func (c *Conn) call(f *protocol.Frame) (*protocol.Frame, error) {
	req, err := c.send(f)
	if err != nil {
		return nil, err
	}
	return c.await(f.Type, req)
}

// await reads until the answer to request req, of type typ, keeping any
// other frames that arrive meanwhile for Next.
func (c *Conn) await(typ string, req uint64) (*protocol.Frame, error) {
	for {
		var in protocol.Frame
		if err := c.r.Next(&in); err != nil {
			return nil, fmt.Errorf("client: waiting for answer to %s: %w", typ, err)
		}
		switch {
		case in.Req == req && (in.Type == protocol.TypeReply || in.Type == protocol.TypeAccept || in.Type == protocol.TypeRefuse):
			return &in, nil
		case in.Type == protocol.TypeBye:
			return nil, &ByeError{Reason: in.Reason, Message: in.Message, ResumeAfter: in.ResumeAfter}
		case in.Type == protocol.TypeRefuse:
			return &in, nil
		case in.Type == protocol.TypeHeartbeat:
			if _, err := c.send(protocol.Reply(in.Req, nil)); err != nil {
				return nil, err
			}
		default:
			c.pending = append(c.pending, in)
		}
	}
}

// Subscribe asks for events. after is "" for live events only, "0" for all
// retained, or an event ID to resume after; format is "json" or "lx". It
// returns the ID the stream starts after.
func (c *Conn) Subscribe(ctx context.Context, filter *protocol.Filter, after, format string) (string, error) {
	return c.SubscribeWith(ctx, Subscription{Filter: filter, After: after, Format: format})
}

// Subscription is what SubscribeWith asks for.
type Subscription struct {
	Filter *protocol.Filter
	After  string // "" live only, "0" everything retained, or an ID (a durable subscription's or group's start when new)
	Format string // "json" or "lx"
	// Name is a durable subscription: the region resumes it after the last
	// event acknowledged with Ack, on any region sharing the store.
	Name string
	// Group is a consumer group: its members share the events; each
	// member acknowledges every event it handled with Ack.
	Group string
}

// SubscribeWith asks for events as s says and returns the ID the stream
// starts after ("" for a group).
func (c *Conn) SubscribeWith(ctx context.Context, s Subscription) (string, error) {
	f, err := c.callCtx(ctx, &protocol.Frame{Type: protocol.TypeSubscribe, Filter: s.Filter, After: s.After, Format: s.Format,
		Subscription: s.Name, Group: s.Group})
	if err != nil {
		return "", err
	}
	if f.Error != nil {
		return "", &ReplyError{Code: f.Error.Code, Message: f.Error.Message}
	}
	return f.After, nil
}

// callCtx is call bounded by ctx: the connection's deadline follows ctx
// while it waits and is cleared after. An answer that arrived is returned
// even if ctx ended meanwhile.
func (c *Conn) callCtx(ctx context.Context, f *protocol.Frame) (*protocol.Frame, error) {
	if dl, ok := ctx.Deadline(); ok {
		c.nc.SetDeadline(dl)
	}
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(fired)
		c.nc.SetDeadline(time.Unix(1, 0))
	})
	reply, err := c.call(f)
	if !stop() {
		<-fired
	}
	c.nc.SetDeadline(time.Time{})
	if err != nil && ctx.Err() != nil {
		return nil, fmt.Errorf("client: %s: %w", f.Type, ctx.Err())
	}
	return reply, err
}

// Next returns the next event or notice frame. It answers heartbeats and
// sends its own while waiting. A bye from the server is a *ByeError.
func (c *Conn) Next(ctx context.Context) (*protocol.Frame, error) {
	if len(c.pending) > 0 {
		f := c.pending[0]
		c.pending = c.pending[1:]
		if f.Type == protocol.TypeBye {
			return nil, &ByeError{Reason: f.Reason, Message: f.Message, ResumeAfter: f.ResumeAfter}
		}
		return &f, nil
	}
	// The read deadline (for heartbeats) and the cancel of ctx matter only
	// when the next frame is not read yet: a stream's frames mostly are,
	// and then this sets no deadline and registers nothing.
	var stop func() bool
	defer func() {
		if stop != nil {
			stop()
		}
	}()
	for {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if !c.r.HasFrame() {
			if stop == nil {
				stop = context.AfterFunc(ctx, func() { c.nc.SetReadDeadline(time.Unix(1, 0)) })
			}
			c.nc.SetReadDeadline(time.Now().Add(c.hb))
			if ctx.Err() != nil { // after the deadline is set: a cancel is not overwritten
				return nil, ctx.Err()
			}
		}
		f, err := c.readFrame()
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				if _, err := c.send(&protocol.Frame{Type: protocol.TypeHeartbeat}); err != nil {
					return nil, err
				}
				continue
			}
			return nil, fmt.Errorf("client: read: %w", err)
		}
		switch f.Type {
		case protocol.TypeHeartbeat:
			if _, err := c.send(protocol.Reply(f.Req, nil)); err != nil {
				return nil, err
			}
		case protocol.TypeReply:
			// the answer to one of our heartbeats
		case protocol.TypeBye:
			return nil, &ByeError{Reason: f.Reason, Message: f.Message, ResumeAfter: f.ResumeAfter}
		default:
			return f, nil
		}
	}
}

// readFrame reads the next frame: when rawEvents is set, an event frame in
// the encoder's form as it came, in c.raw.
func (c *Conn) readFrame() (*protocol.Frame, error) {
	if !c.rawEvents {
		f := new(protocol.Frame)
		return f, c.r.Next(f)
	}
	for {
		line, err := c.r.ReadLine()
		if err != nil {
			return nil, err
		}
		if obj, id, ok := protocol.SplitEventFrame(line); ok {
			c.raw = protocol.Frame{Type: protocol.TypeEvent, EventID: id, EventJSON: obj}
			return &c.raw, nil
		}
		if len(bytes.TrimSpace(line)) != 0 {
			f := new(protocol.Frame)
			return f, protocol.Decode(line, f)
		}
	}
}

// Ack tells the region that the events with these IDs were handled (a
// durable subscription or group; for a durable subscription the newest ID
// is enough). It does not wait for an answer: an ack the region could not
// record comes back as a reply with an error, which Next skips, and the
// events are delivered again.
func (c *Conn) Ack(ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := c.send(&protocol.Frame{Type: protocol.TypeAck, IDs: ids})
	return err
}

// AckWait is Ack that waits for the region's answer: nil once the ack is
// recorded, a *ReplyError if the region refused it (no durable or group
// subscription, an ID of an event never sent) or could not record it.
// Events arriving meanwhile are kept for Next.
func (c *Conn) AckWait(ctx context.Context, ids ...string) error {
	c.req++
	f, err := c.callCtx(ctx, &protocol.Frame{Type: protocol.TypeAck, Req: c.req, IDs: ids})
	if err != nil {
		return err
	}
	if f.Error != nil {
		return &ReplyError{Code: f.Error.Code, Message: f.Error.Message}
	}
	return nil
}

// Logoff ends the session cleanly and closes the connection.
func (c *Conn) Logoff(ctx context.Context) error {
	defer c.nc.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.nc.SetDeadline(dl)
	}
	_, err := c.call(&protocol.Frame{Type: protocol.TypeLogoff})
	var bye *ByeError
	if errors.As(err, &bye) && bye.Reason == protocol.ByeLogoff {
		return nil
	}
	return err
}

// Close closes the connection without logging off.
func (c *Conn) Close() error { return c.nc.Close() }

// Buffered reports whether frames are already read and waiting, so that a
// caller can batch its output until Next would block.
func (c *Conn) Buffered() int { return len(c.pending) + c.r.Buffered() }

// CommandRequest is a command for the COMMANDS port.
type CommandRequest struct {
	ID      string        // optional; the region assigns one when empty
	Target  string        // linux:NAME, linux:ADDR=IP, zvm:SYSTEM, region
	Command string        // the command line
	Timeout time.Duration // 0: the region's default
}

// CommandError is a command that did not run to its end: the region's
// error code (commands.Code*) and sentence.
type CommandError struct {
	ID         string
	Code       string
	Message    string
	RetryAfter time.Duration
}

func (e *CommandError) Error() string {
	s := fmt.Sprintf("client: command %s: %s: %s", e.ID, e.Code, e.Message)
	if e.RetryAfter > 0 {
		s += fmt.Sprintf("; retry after %v", e.RetryAfter)
	}
	return s
}

// Command runs one command and returns its reply frame (RC, Truncated,
// DurationMS, ID). out, when set, is called with each output frame as it
// arrives. A command that did not run to its end is a *CommandError (the
// reply frame is still returned). Frames for other requests that arrive
// meanwhile are kept for Next. If ctx ends first, the command is cancelled
// and Command waits briefly for its reply.
func (c *Conn) Command(ctx context.Context, r CommandRequest, out func(*protocol.Frame)) (*protocol.Frame, error) {
	req, err := c.send(commandFrame(r))
	if err != nil {
		return nil, err
	}
	return c.awaitCommand(ctx, req, out, r.ID)
}

// commandFrame is the command request for r.
func commandFrame(r CommandRequest) *protocol.Frame {
	return &protocol.Frame{Type: protocol.TypeCommand, ID: r.ID, Target: r.Target, Command: r.Command,
		Timeout: r.Timeout.Seconds()}
}

// awaitCommand reads the output and the reply of the command sent as
// request req with ID id (cancelled by that ID if ctx ends first).
func (c *Conn) awaitCommand(ctx context.Context, req uint64, out func(*protocol.Frame), id string) (*protocol.Frame, error) {
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(fired)
		c.nc.SetReadDeadline(time.Unix(1, 0))
	})
	defer stop()
	cancelled := false
	for {
		if !cancelled {
			c.nc.SetReadDeadline(time.Now().Add(c.hb))
			if ctx.Err() != nil { // after the deadline is set: a cancel is not overwritten
				c.nc.SetReadDeadline(time.Unix(1, 0))
			}
		}
		f, err := c.readFrame()
		if err != nil {
			if ctx.Err() != nil && !cancelled {
				// Ask the region to stop the command; wait a little for its reply.
				cancelled = true
				if id != "" {
					c.send(&protocol.Frame{Type: protocol.TypeCancel, ID: id})
				}
				if !stop() {
					<-fired // its deadline is set before the grace's
				}
				c.nc.SetReadDeadline(time.Now().Add(commandGrace))
				continue
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				if _, err := c.send(&protocol.Frame{Type: protocol.TypeHeartbeat}); err != nil {
					return nil, err
				}
				continue
			}
			return nil, fmt.Errorf("client: read: %w", err)
		}
		switch {
		case f.Type == protocol.TypeOutput && f.Req == req:
			if out != nil {
				out(f)
			}
		case f.Type == protocol.TypeReply && f.Req == req:
			if f.Error != nil {
				return f, &CommandError{ID: f.ID, Code: f.Error.Code, Message: f.Error.Message,
					RetryAfter: time.Duration(f.RetryAfter) * time.Second}
			}
			return f, nil
		case f.Type == protocol.TypeHeartbeat:
			if _, err := c.send(protocol.Reply(f.Req, nil)); err != nil {
				return nil, err
			}
		case f.Type == protocol.TypeReply && f.RC == nil && f.ID == "":
			// the answer to a heartbeat or cancel of ours
		case f.Type == protocol.TypeBye:
			return nil, &ByeError{Reason: f.Reason, Message: f.Message, ResumeAfter: f.ResumeAfter}
		default:
			kept := *f
			kept.EventJSON = bytes.Clone(f.EventJSON) // a raw event's is the read buffer's
			c.pending = append(c.pending, kept)
		}
	}
}
