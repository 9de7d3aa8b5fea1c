package unsolmsg

import (
	"errors"
	"fmt"

	"github.com/zbridge/zbridge/protocol"
)

// errAfterNewest is wrapped by subscriptionStart's error for an after
// later than the store's newest ID, where it would be kept: a group's or a
// new durable subscription's start.
var errAfterNewest = errors.New("after is later than every event stored")

// Where a subscription starts is decided here, apart from the store, so
// that one table (start_test.go) covers every case and every store gets the
// same answer. Request reads what is needed, in this order: a durable
// subscription's recorded position, then (if startNeedsNewest says so and
// the request is well formed) the store's newest ID; then it calls
// subscriptionStart.

// startKind is what a subscribe asks for.
type startKind int

const (
	startPlain   startKind = iota // no name: the events after an ID, or new ones
	startDurable                  // a named subscription, its position recorded
	startGroup                    // a consumer group member
)

// startInput is what decides where a subscription starts: the subscribe
// request and what the store said.
type startInput struct {
	kind  startKind
	after string // the subscribe's after as sent: "", "0" or an ID
	// A durable subscription's recorded position, and whether there is
	// one (resumed); read before anything else, for durable only.
	position protocol.ID
	resumed  bool
	// newest is the store's newest ID (Stats().Last), read when
	// startNeedsNewest says so and zero otherwise.
	newest protocol.ID
}

// startPoint is where a subscription starts.
type startPoint struct {
	// after is the ID the subscription starts after (for a group, the
	// start of a group not yet in the store; an existing group goes on
	// from its own position). For a group it is never zero: to the store
	// the zero ID means "the newest when the group is first read", which
	// may be after events stored once the subscribe is answered.
	after protocol.ID
	// record: a durable subscription first named, whose start must be
	// recorded as its position before the subscribe is answered (a client
	// that goes away before its first ack resumes there, missing nothing).
	record bool
	// known is the newest ID an ack may name before this session is sent
	// anything: the store's newest when it subscribed (a resumed
	// subscription may ack what an earlier session received); zero when
	// the newest was not read.
	known protocol.ID
}

// startNeedsNewest reports whether subscriptionStart(in) needs in.newest,
// given the request and (durable) the recorded position: always for a
// durable subscription or a group (an ack may name what an earlier session
// was sent), and for a plain one without after (it starts at the newest).
// Its error is subscriptionStart's: an after that would be used and does
// not parse, which the caller answers before reading the store again.
func startNeedsNewest(in startInput) (bool, error) {
	if _, _, err := requestedAfter(in); err != nil {
		return false, err
	}
	return in.kind != startPlain || in.after == "", nil
}

// subscriptionStart returns where a subscription starts. A durable
// subscription with a recorded position resumes after it, whatever the
// request's after (which is then not even parsed). Otherwise it starts
// after the request's after, or with none after in.newest (new events
// only); a new durable subscription's start is to be recorded. A group's
// zero start (after "0", or none on an empty store) becomes 0-1, before
// every ID a store assigns. The errors, bad requests, are an after that is
// used and does not parse (wrapping protocol.ErrBadID), and one later than
// in.newest for a group or a new durable subscription (wrapping
// errAfterNewest): their start is kept, in the store, and one after the
// newest event would skip every event stored until the IDs pass it, for
// every member of a group and for good (a member of a role's group could
// choose it for the others). A plain subscription keeps nothing: its
// after may name any ID (a client failing over between regions that share
// a store may hold one newer than this region has yet seen).
func subscriptionStart(in startInput) (startPoint, error) {
	p := startPoint{known: in.newest}
	id, given, err := requestedAfter(in)
	switch {
	case err != nil:
		return startPoint{}, err
	case in.kind == startDurable && in.resumed:
		p.after = in.position
		return p, nil
	case given && in.kind != startPlain && in.newest.Less(id):
		// The message does not say the newest ID: a client learns the
		// IDs of the events it is sent, not of others.
		return startPoint{}, fmt.Errorf("%w: a group or a new durable subscription starts after an event stored "+
			"(its ID), at the newest (no after) or at the oldest retained (after \"0\")", errAfterNewest)
	case given:
		p.after = id
	default:
		p.after = in.newest
	}
	p.record = in.kind == startDurable
	if in.kind == startGroup && p.after.IsZero() {
		p.after = protocol.ID{Seq: 1}
	}
	return p, nil
}

// requestedAfter parses the request's after when it is used: given is
// false when there is none or a recorded position overrides it.
func requestedAfter(in startInput) (id protocol.ID, given bool, err error) {
	if in.after == "" || in.kind == startDurable && in.resumed {
		return protocol.ID{}, false, nil
	}
	id, err = protocol.ParseID(in.after)
	if err != nil {
		return protocol.ID{}, false, err
	}
	return id, true, nil
}
