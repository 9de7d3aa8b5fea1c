// Package store defines the region's session state: the event stream with
// bounded retention, and the sessions connected to the region's servers.
//
// Store is the interface; memstore is the embedded, in-process
// implementation (the default) and storetest is the conformance suite that
// every implementation must pass.
package store

import (
	"context"
	"errors"
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

	// Close releases the store; Wait calls return ErrClosed.
	Close() error
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
