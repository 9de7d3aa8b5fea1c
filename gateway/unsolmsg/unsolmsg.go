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
//
// An event is encoded once for all its subscribers: its JSON by the store
// as it takes the event (store.PreparedReader), its lx line by the first lx
// subscriber to send it while two or more stream, kept for the newest
// events (lxLines). A subscriber with no filter of its own, whose client
// may see every event but audit records (AllVisible), reads light: the
// store does not decode for it the events it kept the JSON of.
//
// Durable subscriptions: a subscriber that names a subscription acknowledges
// the events it has handled (ack frames; the newest ID acknowledged stands
// for every event before it) and the region records the position in the
// store. A session that subscribes with the same name later, on this region
// or on another sharing the store (Redis), starts after that position:
// delivery is at least once, and each event carries its ID so that a client
// can drop a repeat. A subscription first named starts where the subscribe
// says (after, or the newest event) and is recorded at once, so a client
// that disconnects before its first ack misses nothing either. One session
// at a time should use a name; sharing is what groups are for. A name
// belongs to the client that uses it: another client subscribing with the
// same name gets a subscription of its own (the store keeps CLIENT:NAME).
//
// Consumer groups: sessions that subscribe with the same group name share
// the events, each event delivered to one member at a time. A member
// acknowledges each event it handled, and only those delivered to it (the
// store acknowledges for a session only the events pending for it); events
// delivered to a member that does not acknowledge them within
// Config.GroupClaimAfter (it died, or its region did) are delivered again
// to a member that reads next, and are then that member's. A member's
// session is sent at most Config.GroupMaxUnacked events it has not
// acknowledged (window.go): one that reads without acknowledging costs its
// group no more than that. Members of
// one group should use one filter: events a member's filter excludes are
// acknowledged for the group without being sent. A group name belongs to
// the client that uses it, unless Config.Access shares it (the region's
// roles: groups = [...]); members sharing a group should see the same
// events. A member that was waiting and is woken by new events waits a
// random 0 to groupJitter more before it reads: the members on the region
// that stored the events are woken at once, those on other regions
// sharing Redis a little later through Redis, and without the wait the
// first would take every event that arrives while the group is idle.
//
// Access: with Config.Access set, a subscriber sees only the events its
// client may see (the region's roles), and its own filter narrows that. A
// group member asks Access again before each read and each ack: once it may
// no longer subscribe, or its group's key changed (a refresh of the roles),
// its session ends with bye revoked (groupRevoked).
package unsolmsg

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/gateway/session"
	"github.com/zbridge/zbridge/gateway/store"
	"github.com/zbridge/zbridge/protocol"
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
	// GroupClaimAfter is how long a group member may hold events without
	// acknowledging them before they are delivered to another member
	// (default 30s).
	GroupClaimAfter time.Duration
	// GroupMaxUnacked is the most events a group member's session is sent
	// and holds unacknowledged (default 2×Batch): holding that many, it is
	// sent nothing more until it acknowledges some, or until one and a
	// half GroupClaimAfter passed for the oldest. Past GroupClaimAfter the
	// events it holds go to another member that reads (the others read at
	// least every half GroupClaimAfter, so they have the first chance at
	// them), or, past the half more, to this one again. So a member that
	// reads without acknowledging costs its group's store that many
	// entries at most.
	GroupMaxUnacked int
	// MaxNames is the most durable subscription and group names one client
	// may subscribe with on this server within NameWindow (DefaultMaxNames
	// and DefaultNameWindow if 0: 64 in 7 days, the stores' group TTL): a
	// name counts from a subscribe until NameWindow after the last session
	// that used it ended, and a subscribe with one more is answered
	// not-permitted. Each name costs the store something it keeps (a
	// durable position for ever, a group until nothing reads it for the
	// store's group TTL); the count bounds how fast one client can add
	// them. It is this server's: regions sharing a store, and a restart,
	// count apart.
	MaxNames   int
	NameWindow time.Duration
	// TakeoverCheck is how often a durable subscription's session checks
	// that no newer session took the subscription over (default 2s).
	TakeoverCheck time.Duration
	// Access, when set, limits what each client may subscribe to and see
	// (the region's roles); nil: everything.
	Access Access
	// RelayLatency, when set, is given for each event written to a
	// subscriber the seconds from the event's Received time to the return
	// of the write that carried it (0 if the clocks of regions sharing a
	// store disagree). An event sent to a subscriber resuming from far back
	// counts with its age. It is called in the subscriber's stream
	// goroutine, once per event: it must be cheap (a histogram's Observe).
	RelayLatency Observer
	// Logger is required.
	Logger logrus.FieldLogger
}

// Observer takes one value at a time; a Prometheus histogram is one.
type Observer interface {
	Observe(float64)
}

// AllVisible is implemented by an Access that can say when a client may
// see every event other than audit records, whatever the event holds
// (Visible then says yes to each of them). A subscriber of such a client
// without a filter of its own needs nothing of an event but its ID and
// Received time to send the JSON the store kept for it, and reads with
// store.PreparedReader's ReadPreparedLight: the store does not decode the
// events it keeps encoded for it (a subscriber that fell behind its cache
// reads those).
type AllVisible interface {
	VisibleAll(client string) bool
}

// Access decides what a client may subscribe to and see.
type Access interface {
	// Subscribe returns nil if sess may subscribe with f, or an error
	// whose text says what was missing (the subscriber is answered
	// not-permitted with it).
	Subscribe(sess *session.Session, f *protocol.Frame) error
	// Visible reports whether client may see e.
	Visible(client string, e *protocol.Event) bool
	// GroupKey returns the store's name for client's consumer group: the
	// client's own ("CLIENT:GROUP") unless the group is shared with other
	// clients, whose sessions then get the same key. Subscribe and GroupKey
	// are asked again during a group member's session, which ends when
	// either answers otherwise than at its subscribe.
	GroupKey(client, group string) string
}

// Server is the UNSOLMSG server.
type Server struct {
	cfg   Config
	ss    *session.Server
	sent  atomic.Uint64
	acked atomic.Uint64
	lx    lxLines // the lx lines of the newest events, for the lx subscribers
	// batches lends the streams the slices they read and write a batch
	// with (batch.go).
	batches batches
	// names counts each client's durable and group names (Config.MaxNames).
	names names
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
	if cfg.GroupClaimAfter <= 0 {
		cfg.GroupClaimAfter = 30 * time.Second
	}
	if cfg.GroupMaxUnacked <= 0 {
		cfg.GroupMaxUnacked = 2 * cfg.Batch
	}
	if cfg.MaxNames <= 0 {
		cfg.MaxNames = DefaultMaxNames
	}
	if cfg.NameWindow <= 0 {
		cfg.NameWindow = DefaultNameWindow
	}
	if cfg.TakeoverCheck <= 0 {
		cfg.TakeoverCheck = 2 * time.Second
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
	s := &Server{cfg: cfg, batches: batches{size: cfg.Batch}}
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

// EventsSent is the number of events sent to subscribers.
func (s *Server) EventsSent() uint64 { return s.sent.Load() }

// EventsAcked is the number of event IDs durable and group subscribers
// acknowledged.
func (s *Server) EventsAcked() uint64 { return s.acked.Load() }

type handler Server

// subscription is one session's subscription; the stream goroutine owns it
// (the request goroutine reads its fixed fields to handle acks).
type subscription struct {
	filter  *protocol.Filter
	format  string
	after   protocol.ID
	durable string // durable subscription name, or ""
	group   string // consumer group name, or ""
	// The store's names for them: a durable subscription belongs to its
	// client (CLIENT:NAME), and so does a group unless Access shares it.
	durableKey, groupKey string
	client               string // the session's client, for Access.Visible

	// A durable subscription's ack may name events up to the newer of
	// known (the store's newest when the session subscribed: a resumed
	// subscription may ack what an earlier session received) and sent (the
	// newest event written to this session, not one its filter or roles
	// passed over). An ack past both names an event this subscription
	// never had, and would skip events not yet sent. (A group member's ack
	// is checked by the store: groupAck.)
	claim   protocol.ID // durable: this session's claim (see claim)
	known   protocol.ID
	mu      sync.Mutex // guards sent, refused
	sent    protocol.ID
	refused int // acks refused, logged once

	// win counts what a group member holds unacknowledged (nil for a
	// subscription without a group).
	win *window
	// req is what Access.Subscribe was asked at the subscribe, asked
	// again of a group member before each read and ack (groupRevoked):
	// a copy, as the session's frame is not the handler's to keep.
	req *protocol.Frame

	// received holds, with Config.RelayLatency set, the Received times of
	// the events encoded for the next write (the stream goroutine's, kept
	// to be reused).
	received []time.Time
}

// nameKey is what Config.MaxNames counts of sub: its store key, or "" for
// a plain subscription.
func (sub *subscription) nameKey() string {
	switch {
	case sub.durable != "":
		return "subscription " + sub.durableKey
	case sub.group != "":
		return "group " + sub.groupKey
	}
	return ""
}

// markSent records that events up to id are being sent (id is the newest
// event of a write: one the client is sent).
func (sub *subscription) markSent(id protocol.ID) {
	sub.mu.Lock()
	if sub.sent.Less(id) {
		sub.sent = id
	}
	sub.mu.Unlock()
}

// ackable is the newest ID an ack may name.
func (sub *subscription) ackable() protocol.ID {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	return maxID(sub.known, sub.sent)
}

// refuse counts a refused ack and reports whether it is the first.
func (sub *subscription) refuse() bool {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	sub.refused++
	return sub.refused == 1
}

func maxID(a, b protocol.ID) protocol.ID {
	if a.Less(b) {
		return b
	}
	return a
}

// validName reports whether n may name a subscription or a group: 1 to
// 64 of A-Z a-z 0-9 . _ @ -, starting with a letter or digit.
func validName(n string) bool {
	if len(n) == 0 || len(n) > 64 {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case i > 0 && (c == '.' || c == '_' || c == '@' || c == '-'):
		default:
			return false
		}
	}
	return true
}

func badRequest(msg string) *protocol.Frame {
	return protocol.Reply(0, &protocol.Error{Code: protocol.ErrCodeBadRequest, Message: msg})
}

// Request implements session.Handler.
func (h *handler) Request(sess *session.Session, f *protocol.Frame) *protocol.Frame {
	switch f.Type {
	case protocol.TypeSubscribe:
	case protocol.TypeAck:
		return (*Server)(h).ack(sess, f)
	default:
		return protocol.Reply(0, &protocol.Error{Code: protocol.ErrCodeUnknownType,
			Message: fmt.Sprintf("UNSOLMSG does not know request type %q (subscribe, ack, heartbeat, logoff)", f.Type)})
	}
	if sess.State != nil {
		return protocol.Reply(0, &protocol.Error{Code: protocol.ErrCodeState, Message: "already subscribed"})
	}
	sub := &subscription{filter: f.Filter, format: f.Format, durable: f.Subscription, group: f.Group}
	if err := sub.filter.Validate(); err != nil {
		return badRequest(err.Error())
	}
	if sub.durable != "" && sub.group != "" {
		return badRequest("subscription and group are exclusive: a group's members share its position")
	}
	for _, n := range []string{sub.durable, sub.group} {
		if n != "" && !validName(n) {
			return badRequest(fmt.Sprintf("name %q: 1 to 64 of A-Z a-z 0-9 . _ @ -, starting with a letter or digit", n))
		}
	}
	sub.client = sess.Client
	if sub.durable != "" {
		sub.durableKey = sess.Client + ":" + sub.durable
	}
	if sub.group != "" {
		sub.groupKey = sub.group
		if h.cfg.Access != nil {
			sub.groupKey = h.cfg.Access.GroupKey(sess.Client, sub.group)
		}
		sub.win = newWindow()
	}
	if h.cfg.Access != nil {
		if err := h.cfg.Access.Subscribe(sess, f); err != nil {
			return protocol.Reply(0, &protocol.Error{Code: protocol.ErrCodeNotPermitted, Message: err.Error()})
		}
	}
	sub.req = &protocol.Frame{Type: f.Type, Req: f.Req, Filter: f.Filter, After: f.After, Format: f.Format,
		Subscription: f.Subscription, Group: f.Group}
	switch sub.format {
	case "":
		sub.format = FormatJSON
	case FormatJSON, FormatLX:
	default:
		return badRequest(fmt.Sprintf("unknown format %q (json, lx)", f.Format))
	}
	if key := sub.nameKey(); key != "" {
		if !h.names.use(sess.Client, key, time.Now(), h.cfg.MaxNames, h.cfg.NameWindow) {
			sess.Log.WithField("limit", h.cfg.MaxNames).Warn("subscription refused: the client uses as many durable and group names as it may")
			return protocol.Reply(0, &protocol.Error{Code: protocol.ErrCodeNotPermitted, Message: fmt.Sprintf(
				"client %s subscribed with %d durable subscription and group names in the last %v, the most it may: use one of those",
				sess.Client, h.cfg.MaxNames, h.cfg.NameWindow)})
		}
	}
	ctx := sess.Context()
	unavailable := protocol.Reply(0, &protocol.Error{Code: protocol.ErrCodeInternal, Message: "event store unavailable"})
	in := startInput{kind: startPlain, after: f.After}
	switch {
	case sub.durable != "":
		in.kind = startDurable
		pos, ok, err := h.cfg.Store.Position(ctx, positionKey(sub.durableKey))
		if err != nil {
			sess.Log.WithError(err).Warn("reading a durable subscription's position failed")
			return unavailable
		}
		in.position, in.resumed = pos, ok
	case sub.group != "":
		in.kind = startGroup
	}
	needNewest, err := startNeedsNewest(in)
	if err != nil {
		return badRequest(err.Error())
	}
	if needNewest {
		st, err := h.cfg.Store.Stats(ctx)
		if err != nil {
			return unavailable
		}
		in.newest = st.Last
	}
	start, err := subscriptionStart(in)
	if err != nil {
		return badRequest(err.Error())
	}
	sub.after, sub.known = start.after, start.known
	if start.record { // a new durable subscription: recorded before the reply
		if err := h.cfg.Store.SetPosition(ctx, positionKey(sub.durableKey), sub.after); err != nil {
			sess.Log.WithError(err).Warn("recording a durable subscription failed")
			return unavailable
		}
	}
	if sub.durable != "" {
		claim, err := (*Server)(h).claim(ctx, sub.durableKey)
		if err != nil {
			sess.Log.WithError(err).Warn("taking over a durable subscription failed")
			return unavailable
		}
		sub.claim = claim
	}
	sess.State = sub
	// The stream goroutine sends the reply before any event. Only a running
	// stream acknowledges a subscription: one acknowledged here, before
	// Go, could be refused by Go when Shutdown begins in between, and the
	// subscriber would get neither its events nor a resume point. If Go
	// starts nothing, the session ends with bye shutdown instead.
	req := f.Req
	sess.Go(func(ctx context.Context) {
		if key := sub.nameKey(); key != "" {
			defer func() { h.names.done(sub.client, key, time.Now()) }()
		}
		reply := &protocol.Frame{Type: protocol.TypeReply, Req: req, Format: sub.format,
			Subscription: sub.durable, Group: sub.group}
		if sub.group == "" {
			reply.After = sub.after.String()
		}
		if err := sess.Send(reply); err != nil {
			return
		}
		sess.Log.WithFields(logrus.Fields{"after": sub.after.String(), "format": sub.format,
			"subscription": sub.durable, "group": sub.group}).Info("subscribed")
		if sub.group != "" {
			(*Server)(h).streamGroup(sess, sub)
			return
		}
		if sub.durable != "" {
			sess.Go(func(ctx context.Context) { (*Server)(h).watchTakeover(ctx, sess, sub) })
		}
		(*Server)(h).stream(sess, sub)
	})
	return nil
}

// A durable subscription has one session at a time: the newest. Each
// session that subscribes takes the subscription over by raising its claim,
// a position of its own that never moves back (so regions sharing a store
// agree on it); a session whose claim was raised past its own ends with bye
// replaced within TakeoverCheck. The claim is above both the clock and the
// last claim, so a region whose clock is behind still takes over; two
// sessions subscribing at once end up with one of them.

// claimKey is the store's name for a durable subscription's claim.
func claimKey(name string) string { return "unsolmsg-claim:" + name }

// claim takes the durable subscription name over and returns the claim.
func (s *Server) claim(ctx context.Context, name string) (protocol.ID, error) {
	cur, _, err := s.cfg.Store.Position(ctx, claimKey(name))
	if err != nil {
		return protocol.ID{}, err
	}
	id := protocol.ID{Ms: max(uint64(time.Now().UnixMilli()), cur.Ms+1), Seq: rand.Uint64N(1 << 32)}
	if err := s.cfg.Store.SetPosition(ctx, claimKey(name), id); err != nil {
		return protocol.ID{}, err
	}
	return id, nil
}

// watchTakeover ends sess with bye replaced once a newer session claimed
// its durable subscription. A store it cannot read is asked again later.
func (s *Server) watchTakeover(ctx context.Context, sess *session.Session, sub *subscription) {
	t := time.NewTicker(s.cfg.TakeoverCheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-sess.StopContext().Done():
			return
		case <-t.C:
		}
		cur, _, err := s.cfg.Store.Position(ctx, claimKey(sub.durableKey))
		if err != nil || !sub.claim.Less(cur) {
			continue
		}
		sess.Log.WithField("subscription", sub.durable).Info("durable subscription taken over by a newer session")
		sess.End(&protocol.Frame{Reason: protocol.ByeReplaced,
			Message: fmt.Sprintf("subscription %s was taken over by a newer session", sub.durable)})
		return
	}
}

// positionKey is the store's name for a durable subscription's position;
// name is the subscription's key (CLIENT:NAME).
func positionKey(name string) string { return "unsolmsg:" + name }

// ack records what a durable or group subscriber has handled. It answers
// only a request that has a req number (acks are usually sent without one,
// and often); a bad ack is answered in any case.
func (s *Server) ack(sess *session.Session, f *protocol.Frame) *protocol.Frame {
	sub, _ := sess.State.(*subscription)
	fail := func(code, msg string) *protocol.Frame {
		return protocol.Reply(f.Req, &protocol.Error{Code: code, Message: msg})
	}
	if sub == nil || (sub.durable == "" && sub.group == "") {
		return fail(protocol.ErrCodeState, "ack needs a subscription or group subscription")
	}
	if len(f.IDs) == 0 {
		return fail(protocol.ErrCodeBadRequest, "ack without ids")
	}
	ids := make([]protocol.ID, 0, len(f.IDs))
	var newest protocol.ID
	for _, x := range f.IDs {
		id, err := protocol.ParseID(x)
		if err != nil {
			return fail(protocol.ErrCodeBadRequest, err.Error())
		}
		ids = append(ids, id)
		if newest.Less(id) {
			newest = id
		}
	}
	if sub.group != "" {
		return s.groupAck(sess, sub, f.Req, ids)
	}
	if limit := sub.ackable(); limit.Less(newest) {
		if sub.refuse() { // a client that does this once does it often
			sess.Log.WithFields(logrus.Fields{"ack": newest.String(), "sent": limit.String()}).
				Warn("ack of an event this subscription was never sent refused (logged once a session)")
		}
		// The answer names no ID but the client's own: the limit is the
		// newest event stored at the subscribe, or sent since.
		return fail(protocol.ErrCodeBadRequest, fmt.Sprintf("ack of %s: this subscription was sent no event that late; nothing was recorded", newest))
	}
	ctx, cancel := context.WithTimeout(sess.Context(), 10*time.Second)
	defer cancel()
	if err := s.cfg.Store.SetPosition(ctx, positionKey(sub.durableKey), newest); err != nil {
		sess.Log.WithError(err).Warn("recording an ack failed; the events will be delivered again")
		return fail(protocol.ErrCodeInternal, "the ack could not be recorded; the events may be delivered again")
	}
	s.acked.Add(uint64(len(ids)))
	if f.Req == 0 {
		return nil
	}
	return protocol.Reply(f.Req, nil)
}

// groupAck records a group member's ack of ids. The store acknowledges
// only the events pending for this session (delivered to it, and not
// claimed by another member since): an ack naming any other is answered
// with an error that says the same whatever the ID names (an event sent to
// another member, one acknowledged already, none), and records nothing
// for those IDs; the others are recorded.
func (s *Server) groupAck(sess *session.Session, sub *subscription, req uint64, ids []protocol.ID) *protocol.Frame {
	if s.groupRevoked(sess, sub) {
		return nil // the session ended: nothing is recorded
	}
	ctx, cancel := context.WithTimeout(sess.Context(), 10*time.Second)
	defer cancel()
	n, err := s.cfg.Store.GroupAck(ctx, sub.groupKey, sess.ID, ids)
	if err != nil {
		sess.Log.WithError(err).Warn("recording an ack failed; the events will be delivered again")
		return protocol.Reply(req, &protocol.Error{Code: protocol.ErrCodeInternal,
			Message: "the ack could not be recorded; the events may be delivered again"})
	}
	s.acked.Add(uint64(n))
	sub.win.remove(ids) // those the store had as another's are not this session's either
	if n < distinct(ids) {
		if sub.refuse() { // a client that does this once does it often
			sess.Log.WithField("ids", len(ids)).Warn("ack of events not pending for this group member refused (logged once a session)")
		}
		return protocol.Reply(req, &protocol.Error{Code: protocol.ErrCodeBadRequest,
			Message: "the ack names events not pending for this session (not sent to it, acknowledged already, " +
				"or sent to another member after the claim timeout): those were not recorded"})
	}
	if req == 0 {
		return nil
	}
	return protocol.Reply(req, nil)
}

// distinct returns how many different IDs ids holds.
func distinct(ids []protocol.ID) int {
	if len(ids) < 2 {
		return len(ids)
	}
	seen := make(map[protocol.ID]struct{}, len(ids))
	for _, id := range ids {
		seen[id] = struct{}{}
	}
	return len(seen)
}

// groupRevoked reports whether sub's client may no longer be in its group
// as it subscribed: Access, asked again (the region's roles may have been
// refreshed since), refuses it events, or names its group with another
// key (it left the role that shares the group, or joined one). It then
// ends the session with bye revoked, saying why: a member that stayed
// would take the group's events and, no longer seeing them, acknowledge
// them for the group unseen, or acknowledge what it no longer may.
func (s *Server) groupRevoked(sess *session.Session, sub *subscription) bool {
	if s.cfg.Access == nil {
		return false
	}
	var msg string
	if err := s.cfg.Access.Subscribe(sess, sub.req); err != nil {
		msg = "the region's roles changed: " + err.Error()
	} else if key := s.cfg.Access.GroupKey(sub.client, sub.group); key != sub.groupKey {
		msg = fmt.Sprintf("the region's roles changed: group %s is no longer the one this session joined "+
			"(a role that shares it was taken away or given); subscribe again", sub.group)
	} else {
		return false
	}
	sess.Log.WithField("group", sub.group).Info("group member revoked: " + msg)
	sess.End(&protocol.Frame{Reason: protocol.ByeRevoked, Message: msg})
	return true
}

// streamGroup sends sess its share of the group's events until the session
// ends. Events its filter excludes are acknowledged for the group. It reads
// no more than sub.win has room for (Config.GroupMaxUnacked), and waits
// while it has none. Before each read, and before acknowledging what its
// filter or visibility excludes, it asks Access again (groupRevoked).
func (s *Server) streamGroup(sess *session.Session, sub *subscription) {
	ctx := sess.Context()
	var skip []protocol.ID
	var bt *batch // lent while events come, given back before a wait
	defer func() {
		if bt != nil {
			s.batches.put(bt)
		}
	}()
	for {
		if bt == nil {
			bt = s.batches.get()
		}
		if sess.StopContext().Err() != nil {
			// Stopping: this member takes no more; what it holds
			// unacknowledged goes to the group's other members.
			sess.End(&protocol.Frame{Reason: protocol.ByeShutdown,
				Message: "the region is shutting down; unacknowledged events go to the group's other members"})
			return
		}
		room, wait := sub.win.room(time.Now(), s.cfg.GroupClaimAfter+s.cfg.GroupClaimAfter/2, s.cfg.GroupMaxUnacked)
		if room == 0 {
			// Full: until an ack makes room, or the oldest held passes
			// the hold (one and a half claim timeouts; see window).
			s.batches.put(bt)
			bt = nil
			t := time.NewTimer(wait)
			select {
			case <-sub.win.freed:
			case <-t.C:
			case <-sess.StopContext().Done():
			}
			t.Stop()
			if ctx.Err() != nil {
				return
			}
			continue
		}
		if s.groupRevoked(sess, sub) {
			return
		}
		var last protocol.ID
		var err error
		bt.evs, last, err = s.cfg.Store.GroupRead(ctx, sub.groupKey, sess.ID, sub.after, s.cfg.GroupClaimAfter,
			min(s.cfg.Batch, room), bt.evs[:0])
		evs := bt.evs
		if err != nil {
			if ctx.Err() == nil {
				sess.Log.WithError(err).Warn("group read failed; ending the subscription")
				sess.End(&protocol.Frame{Reason: protocol.ByeShutdown,
					Message: "the region's event store is unavailable; subscribe again (unacknowledged events are delivered again)"})
			}
			return
		}
		if len(evs) == 0 {
			s.batches.put(bt)
			bt = nil
			// Wake for new events, and now and then to claim a dead
			// member's events.
			wctx, cancel := context.WithTimeout(sess.StopContext(), max(s.cfg.GroupClaimAfter/2, 100*time.Millisecond))
			err := s.cfg.Store.Wait(wctx, last)
			cancel()
			if ctx.Err() != nil {
				return
			}
			if err == nil {
				time.Sleep(rand.N(groupJitter)) // see the package doc: other regions' members get their turn
			}
			if sess.StopContext().Err() != nil || errors.Is(err, store.ErrClosed) {
				sess.End(&protocol.Frame{Reason: protocol.ByeShutdown,
					Message: "the region is shutting down; unacknowledged events go to the group's other members"})
				return
			}
			continue
		}
		skip = skip[:0]
		sub.win.add(evs, time.Now()) // before the client can see them, and ack them
		if bt.buf, _, err = s.send(sess, sub, evs, nil, false, bt.buf, func(e *protocol.Event) { skip = append(skip, e.ID) }); err != nil {
			return
		}
		if len(skip) > 0 {
			if s.groupRevoked(sess, sub) { // refreshed during the send: what it no longer sees is not acknowledged
				return
			}
			if _, err := s.cfg.Store.GroupAck(ctx, sub.groupKey, sess.ID, skip); err != nil {
				if ctx.Err() == nil {
					sess.Log.WithError(err).Warn("acknowledging filtered-out events failed; they will be offered again")
				}
			} else {
				sub.win.remove(skip)
			}
		}
		clear(evs)
	}
}

// groupJitter bounds the random wait of a group member woken by new
// events (see the package doc): about what a wake through Redis takes on
// a busy host.
const groupJitter = 3 * time.Millisecond

// stream sends sub's events to sess until the session ends.
func (s *Server) stream(sess *session.Session, sub *subscription) {
	ctx := sess.Context()
	prepared, _ := s.cfg.Store.(store.PreparedReader)
	if sub.format == FormatLX {
		prepared = nil
		defer s.lx.streaming()()
	}
	cursor := sub.after
	first := true
	stopping := false
	var bt *batch // lent while events come, given back before a wait
	defer func() {
		if bt != nil {
			s.batches.put(bt)
		}
	}()
	for {
		if bt == nil {
			bt = s.batches.get()
		}
		var gap store.Gap
		var err error
		light := prepared != nil && s.readsLight(sub)
		switch {
		case light:
			bt.evs, bt.jsons, gap, err = prepared.ReadPreparedLight(ctx, cursor, s.cfg.Batch, bt.evs[:0], bt.jsons[:0])
		case prepared != nil:
			bt.evs, bt.jsons, gap, err = prepared.ReadPrepared(ctx, cursor, s.cfg.Batch, bt.evs[:0], bt.jsons[:0])
		default:
			bt.evs, gap, err = s.cfg.Store.Read(ctx, cursor, s.cfg.Batch, bt.evs[:0])
		}
		evs, jsons := bt.evs, bt.jsons // jsons[i] is evs[i]'s JSON as the store prepared it
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
			s.batches.put(bt)
			bt = nil
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
		var done int
		if bt.buf, done, err = s.send(sess, sub, evs, jsons, light, bt.buf, nil); err != nil {
			return
		}
		cursor = evs[done-1].ID
		clear(evs) // the store trims them; this reader must not keep them alive
		clear(jsons)
	}
}

// readsLight reports whether sub, a subscription in JSON format, needs
// nothing of an event the store kept the JSON of but its ID and Received
// time (see AllVisible): its filter matches all, and its client may see every
// event but audit records, which a light read decodes. Asked at each read,
// and a light batch is sent one write at a time (send): a refreshed policy
// applies after at most one write.
func (s *Server) readsLight(sub *subscription) bool {
	if !sub.filter.MatchesAll() {
		return false
	}
	if s.cfg.Access == nil {
		return true
	}
	av, ok := s.cfg.Access.(AllVisible)
	return ok && av.VisibleAll(sub.client)
}

// send writes the events of evs that sub's filter matches to sess, in
// sub's format, encoding into buf (returned for reuse); jsons, if not nil,
// holds the JSON the store prepared for each (store.PreparedReader), copied
// instead of encoded again; excluded, if set, is called for each event the
// filter excludes. light says evs came from a light read (readsLight): the
// client was found to see every event but audit records when they were
// read, and only those are asked about, whole, the others being perhaps
// no more than an ID and a time. Such a batch is sent one write at a time:
// after a write, send returns (done, the events of evs handled, is then
// fewer than all) so that the next read asks the policy again. A policy
// refreshed meanwhile then applies after at most one write's worth of
// events, as it does for a batch read whole, whose events are each asked
// about as they are encoded.
func (s *Server) send(sess *session.Session, sub *subscription, evs []*protocol.Event, jsons [][]byte, light bool,
	buf []byte, excluded func(*protocol.Event)) (_ []byte, done int, _ error) {
	buf = buf[:0]
	n := 0
	var last protocol.ID // the newest event encoded for the next write
	for i, e := range evs {
		if !sub.filter.Match(e) || !s.visible(sub, e, light) {
			if excluded != nil {
				excluded(e)
			}
		} else {
			n++
			last = e.ID
			switch {
			case sub.format == FormatLX:
				buf = s.lx.appendFrame(buf, e)
			case i < len(jsons) && jsons[i] != nil:
				buf = protocol.AppendPreparedEventFrame(buf, e.ID, jsons[i])
			default:
				buf = protocol.AppendEventFrame(buf, e)
			}
			if s.cfg.RelayLatency != nil {
				sub.received = append(sub.received, e.Received)
			}
		}
		// Write when the buffer is full or the batch done: a batch of
		// large events must not grow one subscriber's buffer without bound.
		if n > 0 && (len(buf) >= maxWrite || i == len(evs)-1) {
			// Only what is sent counts for acks (markSent), not what the
			// filter or the client's roles passed over: an ack's answer
			// tells the client nothing of those.
			sub.markSent(last) // before the client can see them
			if err := sess.Write(buf); err != nil {
				sub.received = sub.received[:0]
				return buf, i + 1, err
			}
			s.sent.Add(uint64(n))
			buf, n = buf[:0], 0
			s.observeLatency(sub)
			if light {
				return shrink(buf), i + 1, nil
			}
		}
	}
	return shrink(buf), len(evs), nil
}

// shrink returns buf, or nil when it grew for one huge event: a
// subscriber does not keep such a buffer.
func shrink(buf []byte) []byte {
	if cap(buf) > 2*maxWrite {
		return nil
	}
	return buf
}

// visible reports whether sub's client may see e (Config.Access). After a
// light read only an audit record is asked about: the others were found
// visible, all of them, when they were read (AllVisible).
func (s *Server) visible(sub *subscription, e *protocol.Event, light bool) bool {
	if s.cfg.Access == nil || light && e.Source != protocol.SourceAudit {
		return true
	}
	return s.cfg.Access.Visible(sub.client, e)
}

// observeLatency gives Config.RelayLatency the latency of each event in
// sub.received, written just now, and empties it.
func (s *Server) observeLatency(sub *subscription) {
	if s.cfg.RelayLatency == nil {
		return
	}
	now := time.Now()
	for _, t := range sub.received {
		if !t.IsZero() { // a store fills it in; one that did not says nothing
			s.cfg.RelayLatency.Observe(max(now.Sub(t), 0).Seconds())
		}
	}
	sub.received = sub.received[:0]
}

// maxWrite is how much a subscriber's stream encodes before it writes.
const maxWrite = 256 << 10
