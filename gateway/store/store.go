// Package store defines the region's session state: the event stream with
// bounded retention, and the sessions connected to the region's servers.
//
// Store is the interface. diskstore is the embedded implementation (the
// default: memstore's in-memory state, journalled to files so that a
// restart loses nothing acknowledged), memstore the same in memory only,
// redisstore keeps the state in Redis for regions that share it, and
// storetest is the conformance suite that every implementation must pass.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/zbridge/zbridge/protocol"
)

// Errors a Store returns.
var (
	ErrClosed   = errors.New("store: closed")
	ErrNotFound = errors.New("store: not found")
)

// Store holds the region's session state. All methods are safe for
// concurrent use.
type Store interface {
	// Append assigns each event an ID, in order, later than every ID
	// assigned before, and adds the events to the stream. Events whose
	// Received time is zero get the current time. The store keeps the
	// pointers; callers must not change the events afterwards.
	Append(ctx context.Context, evs []*protocol.Event) error

	// Read appends to dst up to max retained events with IDs after `after`,
	// oldest first, and returns the extended slice. Events it returns must
	// not be modified. The Gap it returns is set when events after `after`
	// were trimmed by retention before this read: those events are lost to
	// this reader, and Gap.Through is the last trimmed ID.
	Read(ctx context.Context, after protocol.ID, max int, dst []*protocol.Event) ([]*protocol.Event, Gap, error)

	// Wait blocks until the stream holds an event after `after`, or ctx
	// ends (returning ctx.Err()), or the store closes (ErrClosed).
	Wait(ctx context.Context, after protocol.ID) error

	// Stats reports the stream's retained range and counters.
	Stats(ctx context.Context) (StreamStats, error)

	// PutSession records or updates a session.
	PutSession(ctx context.Context, s Session) error
	// DeleteSession removes a session; removing an unknown one is not an error.
	DeleteSession(ctx context.Context, id string) error
	// Sessions lists the recorded sessions, ordered by ID.
	Sessions(ctx context.Context) ([]Session, error)

	// SetPosition records that the durable subscription name has handled
	// every event up to and including id. A position never moves
	// backwards: an id before the recorded one is ignored.
	SetPosition(ctx context.Context, name string, id protocol.ID) error
	// Position returns the durable subscription's recorded position; ok
	// is false for a name never set.
	Position(ctx context.Context, name string) (id protocol.ID, ok bool, err error)

	// GroupRead delivers up to max events to one consumer of a consumer
	// group, appending them to dst, oldest first within each part: first
	// events delivered to any consumer of the group and not acknowledged
	// for claimAfter or longer (claimed for this consumer: a member that
	// died has its events reassigned; when more than max are, those
	// delivered or claimed longest ago), then events the group has not yet
	// delivered to anyone. On first use the group is created to start
	// after start (the zero ID: at the newest event, so only new events
	// are delivered). Every event returned stays pending for this consumer
	// until GroupAck. Each event is delivered to one consumer at a time.
	// last is the newest stream ID the store knew at the read: Wait(ctx,
	// last) wakes when there may be more for the group. Events trimmed by
	// retention before delivery are lost to the group, as to a reader.
	//
	// What a group holds is bounded by what its consumers leave pending
	// and by time, never by how often it is read:
	//   - The pending entries of events retention trimmed leave every
	//     group as the events are trimmed (Redis: within its group sweep,
	//     a minute by default), whether or not the group is read again.
	//   - A group that nothing reads for the store's group TTL (7 days by
	//     default; counted from the store's opening for a group the
	//     embedded store replays) is deleted with its pending entries; a
	//     later read creates it anew, at start. A consumer that is alive
	//     reads far more often than that (UNSOLMSG's do at least every
	//     claimAfter).
	//   - A read costs what it returns: finding the idle entries does not
	//     look at the others (the embedded store keeps them in the order
	//     they were delivered; Redis's XAUTOCLAIM bounds its scan by the
	//     count), and an acknowledgement costs a lookup per ID. Bounding
	//     what one consumer leaves pending is the caller's part (UNSOLMSG
	//     stops delivering to a session that holds too many).
	GroupRead(ctx context.Context, group, consumer string, start protocol.ID, claimAfter time.Duration,
		max int, dst []*protocol.Event) (evs []*protocol.Event, last protocol.ID, err error)
	// GroupAck marks the events of ids handled by the group, as consumer
	// handled them, and returns how many it marked: only the entries
	// pending for consumer count (delivered to it, or claimed by it). IDs
	// not pending, or pending for another consumer (one that claimed them
	// after claimAfter), are ignored: a consumer acknowledges only what it
	// was delivered and still holds.
	GroupAck(ctx context.Context, group, consumer string, ids []protocol.ID) (int, error)

	// Close releases the store; Wait calls return ErrClosed.
	Close() error
}

// MarkedAppender is implemented by stores that can append events and move
// a position in one step, so that a crash of the writer never leaves the
// events stored without the position moved, or the other way round. VMMON
// keeps the mark of the agent's spool this way: a batch the agent sends
// again after the region died is then either stored and marked, or
// neither. It is not a compare-and-set: the position is not checked first.
type MarkedAppender interface {
	// AppendMarked is Append followed by SetPosition(name, id), done
	// together. An error means neither may have happened, or both.
	AppendMarked(ctx context.Context, evs []*protocol.Event, name string, id protocol.ID) error
}

// PreparedReader is a Store that encodes each event's JSON once, as it
// takes it, for every subscriber to send (the embedded store, for the
// events in its cache). ReadPrepared is Read, with json[i] the JSON of
// evs[i] after its ID (protocol.AppendEventJSONAfterID) or nil where the
// store has none (protocol.AppendPreparedEventFrame sends it). The bytes
// are the store's: read them, never change them.
//
// ReadPreparedLight is ReadPrepared for a reader that needs of an event it
// is given the JSON of nothing but its ID and its Received time (a
// subscriber without a filter, who may see every event but audit
// records): such an event may come with only those two set, Source empty,
// which spares the store decoding the events it keeps encoded. An event
// without JSON comes whole, and so does every audit record.
type PreparedReader interface {
	ReadPrepared(ctx context.Context, after protocol.ID, max int, dst []*protocol.Event, json [][]byte) (
		evs []*protocol.Event, jsons [][]byte, gap Gap, err error)
	ReadPreparedLight(ctx context.Context, after protocol.ID, max int, dst []*protocol.Event, json [][]byte) (
		evs []*protocol.Event, jsons [][]byte, gap Gap, err error)
}

// ErrNotMarked is wrapped by the error of AppendMarked on a store that is
// not a MarkedAppender when the events were stored but the position could
// not be set.
var ErrNotMarked = errors.New("store: events stored, position not set")

// AppendMarked appends evs to st and moves the position name to id: in one
// step when st is a MarkedAppender, else Append and then SetPosition (an
// error wrapping ErrNotMarked then says the events were stored). With no
// events it only sets the position.
func AppendMarked(ctx context.Context, st Store, evs []*protocol.Event, name string, id protocol.ID) error {
	if len(evs) == 0 {
		return st.SetPosition(ctx, name, id)
	}
	if m, ok := st.(MarkedAppender); ok {
		return m.AppendMarked(ctx, evs, name, id)
	}
	if err := st.Append(ctx, evs); err != nil {
		return err
	}
	if err := st.SetPosition(ctx, name, id); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrNotMarked, name, err)
	}
	return nil
}

// Syncer is implemented by stores whose Append may return before the
// events are as durable as the store ever makes them: the store on disk,
// which syncs under a policy (package diskstore), and the Redis store,
// which accepts events into a buffer in memory while Redis is unreachable
// (package redisstore). Sync returns nil once everything the store
// accepted before the call (every Append that returned before it) is as
// durable as the store makes it: on stable storage under diskstore's
// batch and always policies; in Redis, and in the replicas it waits for,
// for redisstore. It returns an error when it cannot say so, rather than
// wait without bound: redisstore's, at once, while such events are held
// only in its buffer. Servers that acknowledge events to their sender
// (RELP, VMMON) call it before they do, and acknowledge nothing when it
// fails: the sender keeps the events and sends them again.
type Syncer interface {
	Sync(ctx context.Context) error
}

// Sync calls st.Sync when st is a Syncer. Other stores (memstore) have an
// event as durably as they ever will once Append returns, so for them it
// returns nil at once.
func Sync(ctx context.Context, st Store) error {
	if s, ok := st.(Syncer); ok {
		return s.Sync(ctx)
	}
	return nil
}

// GroupInspector is implemented by stores that can tell what they hold of
// a consumer group: every store of this module, for the conformance suite
// (which checks through it that a group holds no more than it should) and
// for operators.
type GroupInspector interface {
	// GroupInfo reports what the store holds of group; ok is false when
	// it holds no such group (never read, or deleted after the group TTL).
	GroupInfo(ctx context.Context, group string) (info GroupInfo, ok bool, err error)
}

// GroupInfo is what a store holds of a consumer group.
type GroupInfo struct {
	Pending int // entries delivered to a consumer and not acknowledged
}

// Ledger is implemented by stores that keep availability records
// (protocol.StatusRecord, written by package gateway/availability) apart
// from the event stream: the event retention (MaxEvents, MaxBytes, MaxAge)
// never trims them, and they are as durable as events are (diskstore's
// sync policy; Redis). Every store of this module implements it.
type Ledger interface {
	// AppendStatus validates the records (StatusRecord.Validate), assigns
	// each the next Seq, in order, from 1, and stores them. An invalid
	// record fails the whole call and stores none.
	AppendStatus(ctx context.Context, recs []*protocol.StatusRecord) error
	// StatusRecords appends to dst up to max records with Seq after
	// `after`, in Seq order, and returns the extended slice.
	StatusRecords(ctx context.Context, after uint64, max int, dst []protocol.StatusRecord) ([]protocol.StatusRecord, error)
}

// HealthReporter is implemented by stores that can be degraded (Redis
// unreachable) while they go on serving what they can.
type HealthReporter interface {
	Health() Health
}

// Health is a store's condition.
type Health struct {
	Degraded bool
	Reason   string // why, when degraded
	Buffered int    // events accepted but not yet written to the backing service
	Dropped  uint64 // events the store had to drop since it started (buffer full)
}

// Gap describes events a reader missed because retention trimmed them.
type Gap struct {
	Missed  bool
	Through protocol.ID // last trimmed ID
}

// StreamStats describe the event stream.
type StreamStats struct {
	First    protocol.ID // oldest retained; zero when empty
	Last     protocol.ID // newest ever assigned; zero when none
	Trimmed  protocol.ID // newest trimmed by retention; zero when none
	Count    int64       // events retained
	Bytes    int64       // estimated bytes retained
	Appended uint64      // events appended since start
}

// Session is one client or agent session on one of the region's servers.
type Session struct {
	ID       string    `json:"id"`
	Server   string    `json:"server"` // "unsolmsg", "commands", "vmmon"
	Client   string    `json:"client"` // authenticated identity
	Remote   string    `json:"remote"` // remote address
	Region   string    `json:"region"` // region holding the session
	Since    time.Time `json:"since"`
	LastSeen time.Time `json:"last_seen"`
}
