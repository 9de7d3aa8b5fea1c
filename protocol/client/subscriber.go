package client

import (
	"context"
	"errors"
	"time"

	"github.com/zbridge/zbridge/protocol"
)

// ErrStop, returned by a Subscriber's Handle, ends Run once what was handled
// is flushed and acknowledged; Run then returns nil.
var ErrStop = errors.New("client: stop")

// Failover back-off: after every address was tried, Run waits before the
// next round, from minBackoff doubling to maxBackoff; a session that ran
// for longer than freshOutage starts the next outage at minBackoff again.
const (
	minBackoff  = 200 * time.Millisecond
	maxBackoff  = 5 * time.Second
	freshOutage = time.Minute
)

// A Subscriber reads one subscription's events from a region, failing over
// between several that share one store (Redis) when a session ends other
// than by its own choice, and resuming where it left off:
//
//   - a plain subscription (no Name, no Group) resumes after the last event
//     handled or, when none was yet, after where its first stream started,
//     so that an event stored while it was failing over is not missed;
//   - a durable subscription (Name) or a consumer group (Group) resumes
//     where the region has it, after the last event acknowledged. Events
//     are acknowledged only once Handle has returned for them and Flush has
//     returned nil: at least once.
//
// A plain subscription to one address does not fail over: Run returns the
// error that ended its session. Nor does any subscription after an error
// that would recur on any region (bad credentials, an unknown version, a
// bad request, not permitted) or whose retry would do harm (another client
// took the durable subscription over: two that each reconnect would take it
// from each other in turn; the client's access was revoked).
//
// A Subscriber starts no goroutines; Run reads on the caller's.
type Subscriber struct {
	// Configs are the regions' UNSOLMSG addresses, with the credentials to
	// log on with, tried in turn. Required.
	Configs []Config
	// Subscription is what to subscribe to. Its After applies to the first
	// session only.
	Subscription Subscription
	// Handle is called with each event frame, in order: its Event in the
	// JSON format, its ID and Line in a text format. ErrStop ends Run with
	// nil; another error ends it with that error. Required.
	Handle func(f *protocol.Frame) error
	// Flush, when set, is called when the connection has nothing more
	// buffered (and before Run returns), before the events handled are
	// acknowledged: a writer's buffer goes out before the region forgets
	// the events in it.
	Flush func() error
	// OnNotice, when set, is called with each notice frame (a gap, a
	// region's reason to say something); Run goes on.
	OnNotice func(f *protocol.Frame)
	// OnFailover, when set, is called when the session on addr ended with
	// err and next is tried.
	OnFailover func(addr string, err error, next string)
	// RawEvents, with Subscription.Format "json", gives Handle each event
	// as the region sent it, in Frame.EventJSON with its ID in
	// Frame.EventID, instead of decoded into Frame.Event (see
	// Conn.SetRawEvents): for a client that passes events on as JSON. Such
	// a frame is valid only until Handle returns.
	RawEvents bool
}

// subscriberRun is one Run's state.
type subscriberRun struct {
	s       *Subscriber
	last    position // the last event handled (or where the first stream started): where a plain subscription resumes
	unacked []string // events handled since the last acknowledgement
}

// position is where a stream is: an event's ID (isID), or the region's
// text for one (a subscription's start, an lx frame's ID), none when
// neither is set. An ID is kept as it is, to be made text only when a
// session resumes or acknowledges.
type position struct {
	id   protocol.ID
	isID bool
	text string
}

func (p position) String() string {
	if p.isID {
		return p.id.String() // "0-0" for an event a region sent without an ID
	}
	return p.text
}

// Run reads events until Handle returns ErrStop (nil), ctx ends (its
// error), or the subscription ends for good (the error that ended it).
func (s *Subscriber) Run(ctx context.Context) error {
	if len(s.Configs) == 0 || s.Handle == nil {
		return errors.New("client: a Subscriber needs Configs and Handle")
	}
	r := &subscriberRun{s: s}
	failover := len(s.Configs) > 1 || s.Subscription.Name != "" || s.Subscription.Group != ""
	backoff := minBackoff
	for i := 0; ; i = (i + 1) % len(s.Configs) {
		began := time.Now()
		err := r.session(ctx, s.Configs[i])
		if err == nil || !failover || ctx.Err() != nil || permanent(err) {
			return err
		}
		if time.Since(began) > freshOutage {
			backoff = minBackoff
		}
		if s.OnFailover != nil {
			s.OnFailover(s.Configs[i].Addr, err, s.Configs[(i+1)%len(s.Configs)].Addr)
		}
		if i == len(s.Configs)-1 { // every address tried: wait before the next round
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, maxBackoff)
		}
	}
}

// permanent reports whether err would recur on any region, or whether
// going on would do harm (see Subscriber).
func permanent(err error) bool {
	var ref *RefusedError
	if errors.As(err, &ref) {
		return ref.Reason == protocol.RefuseAuth || ref.Reason == protocol.RefuseVersion || ref.Reason == protocol.RefuseBadRequest ||
			ref.Reason == protocol.RefuseNotPermitted
	}
	var bye *ByeError
	if errors.As(err, &bye) && (bye.Reason == protocol.ByeReplaced || bye.Reason == protocol.ByeRevoked) {
		return true
	}
	var rep *ReplyError
	return errors.As(err, &rep) && (rep.Code == protocol.ErrCodeBadRequest || rep.Code == protocol.ErrCodeNotPermitted)
}

// session runs one session; nil means Handle returned ErrStop.
func (r *subscriberRun) session(ctx context.Context, cfg Config) error {
	s := r.s
	c, err := Dial(ctx, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetRawEvents(s.RawEvents)
	sub := s.Subscription
	plain := sub.Name == "" && sub.Group == ""
	if last := r.last.String(); last != "" && plain {
		sub.After = last
	}
	start, err := c.SubscribeWith(ctx, sub)
	if err != nil {
		return err
	}
	if r.last == (position{}) && plain {
		r.last = position{text: start}
	}
	flush := func() error {
		if s.Flush != nil {
			if err := s.Flush(); err != nil {
				return err
			}
		}
		if plain || len(r.unacked) == 0 {
			return nil
		}
		ids := r.unacked
		if sub.Name != "" { // a durable subscription's position is its last
			ids = ids[len(ids)-1:]
		}
		err := c.Ack(ids...)
		r.unacked = r.unacked[:0]
		return err
	}
	for {
		if c.Buffered() == 0 || len(r.unacked) >= 1024 {
			if err := flush(); err != nil {
				return err
			}
		}
		f, err := c.Next(ctx)
		if err != nil {
			if s.Flush != nil {
				s.Flush()
			}
			return err
		}
		switch {
		case f.Type == protocol.TypeNotice:
			if s.OnNotice != nil {
				s.OnNotice(f)
			}
			continue
		case f.Type != protocol.TypeEvent:
			continue
		}
		var at position
		switch {
		case f.Event != nil:
			at.id, at.isID = f.Event.ID, true
		case f.EventJSON != nil:
			at.id, at.isID = f.EventID, true
		default:
			at.text = f.ID
		}
		herr := s.Handle(f)
		if herr != nil && !errors.Is(herr, ErrStop) {
			return herr
		}
		r.last = at
		if !plain {
			r.unacked = append(r.unacked, at.String())
		}
		if herr != nil {
			break
		}
	}
	if err := flush(); err != nil {
		return err
	}
	// Done: the logoff is a courtesy, and a region that ended the session
	// meanwhile does not make this a failure.
	lctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c.Logoff(lctx)
	return nil
}
