package memstore

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/zbridge/zbridge/gateway/store"
	"github.com/zbridge/zbridge/protocol"
)

// A Journal keeps the store's changes somewhere that outlives the process
// (package diskstore keeps them in files). The store calls Record with its
// lock held, once for every change, in the order the changes happen; so
// Record must not block or do I/O: it encodes the change into a buffer and
// returns the change's sequence number. Record must not keep c or its
// slices after it returns, except the events, which are the store's.
//
// When Record returns checkpoint true, the store records at once a
// ChangeCheckpoint with its whole state (Journal uses it to start a new
// file that does not need the older ones for anything but their events).
//
// Append, AppendMarked and SetPosition call Commit after they release the
// lock and return its error: Commit returns once the changes recorded up to
// seq are kept as the journal's policy says (written, or on stable
// storage). The other changes (groups, trimming) are left to the journal
// to keep in its own time.
type Journal interface {
	Record(c *Change) (seq uint64, checkpoint bool)
	Commit(ctx context.Context, seq uint64) error
}

// ChangeKind says what a Change does.
type ChangeKind uint8

// The kinds of change, as Journal records them. The values are written to
// disk by package diskstore: do not renumber them.
const (
	// ChangeEvents: Events were appended with the IDs they carry. With a
	// Name, the position Name moved to ID in the same step
	// (AppendMarked).
	ChangeEvents ChangeKind = 1
	// ChangePosition: the durable position Name moved to ID.
	ChangePosition ChangeKind = 2
	// ChangeTrim: retention trimmed every event through ID.
	ChangeTrim ChangeKind = 3
	// ChangeGroupCreate: the group Name was created with its cursor at ID.
	ChangeGroupCreate ChangeKind = 4
	// ChangeGroupDeliver: at At, the group Name's entries for IDs were
	// claimed for Consumer, and the events after the group's cursor through
	// ID were delivered to Consumer (the cursor moved to ID).
	ChangeGroupDeliver ChangeKind = 5
	// ChangeGroupAck: the group Name's entries for IDs were acknowledged.
	ChangeGroupAck ChangeKind = 6
	// ChangeCheckpoint: State is the store's whole state but its events.
	ChangeCheckpoint ChangeKind = 7
	// ChangeGroupDelete: the group Name was deleted with its entries
	// (nothing read it for GroupTTL).
	ChangeGroupDelete ChangeKind = 8
)

// Change is one change to the store, as a Journal records it and Apply
// replays it. Which fields are set depends on Kind (see the kinds).
type Change struct {
	Kind   ChangeKind
	Events []*protocol.Event
	// Encoded, when set, is Events encoded by eventcodec.AppendEvent
	// (Encoded[i] is Events[i]'s), for a journal to copy: Append encodes
	// each event once, for the journal and for its own cold part.
	Encoded  [][]byte
	Name     string
	ID       protocol.ID
	Consumer string
	At       time.Time
	IDs      []protocol.ID
	State    *State
}

// State is the store's state apart from its events and sessions: what a
// checkpoint holds.
type State struct {
	Born      protocol.ID // the first ID the store could have assigned
	Last      protocol.ID // the newest ID assigned
	Trimmed   protocol.ID // the newest ID trimmed by retention
	Positions map[string]protocol.ID
	Groups    map[string]GroupState
}

// GroupState is a consumer group's state in a checkpoint.
type GroupState struct {
	Cursor  protocol.ID // the last event delivered to the group
	Pending []Pending   // delivered and not acknowledged, in ID order
}

// Pending is an event delivered to a consumer of a group and not yet
// acknowledged.
type Pending struct {
	ID       protocol.ID
	Consumer string
	At       time.Time // when delivered or last claimed
}

// ErrBadChange is wrapped by the errors of Apply.
var ErrBadChange = errors.New("memstore: bad change")

// stateLocked returns the state for a checkpoint.
func (s *Store) stateLocked() *State {
	st := &State{Born: s.born, Last: s.last, Trimmed: s.trimmed,
		Positions: maps.Clone(s.positions), Groups: make(map[string]GroupState, len(s.groups))}
	for name, g := range s.groups {
		st.Groups[name] = g.state()
	}
	return st
}

// record gives c to the journal, if there is one, with the lock held, and
// records a checkpoint when the journal asks for one. It returns the
// sequence number to commit.
func (s *Store) recordLocked(c *Change) uint64 {
	if s.journal == nil {
		return 0
	}
	seq, cp := s.journal.Record(c)
	if cp {
		seq, _ = s.journal.Record(&Change{Kind: ChangeCheckpoint, State: s.stateLocked()})
	}
	s.lastSeq = max(s.lastSeq, seq)
	return seq
}

// commit waits for the journal to keep what was recorded through seq.
func (s *Store) commit(ctx context.Context, seq uint64) error {
	if s.journal == nil {
		return nil
	}
	return s.journal.Commit(ctx, seq)
}

// Apply replays a change read back from a journal, without recording it
// again. It is for the journal's owner, before the store is used: the
// changes must come in the order they were recorded, starting with a
// checkpoint or with a store that was empty. Events keep the IDs they
// carry; retention applies as configured now.
func (s *Store) Apply(c *Change) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return store.ErrClosed
	}
	switch c.Kind {
	case ChangeEvents:
		for _, e := range c.Events {
			if !s.last.Less(e.ID) {
				return fmt.Errorf("%w: event %s is not after %s", ErrBadChange, e.ID, s.last)
			}
			s.last = e.ID
			s.bytes += int64(e.Size())
		}
		s.evs.push(c.Events, nil, nil)
		if c.Name != "" {
			s.setPositionLocked(c.Name, c.ID)
		}
		s.trimLocked(s.now())
	case ChangePosition:
		s.setPositionLocked(c.Name, c.ID)
	case ChangeTrim:
		s.trimThroughLocked(c.ID)
	case ChangeGroupCreate:
		if g := s.groups[c.Name]; g != nil {
			s.deleteGroupLocked(g)
		}
		s.newGroupLocked(c.Name, c.ID, s.now())
	case ChangeGroupDeliver:
		g := s.groups[c.Name]
		if g == nil {
			return fmt.Errorf("%w: delivery to unknown group %q", ErrBadChange, c.Name)
		}
		for _, id := range c.IDs {
			if p := g.entries[id]; p != nil {
				g.claim(p, c.Consumer, c.At)
			}
		}
		for i := s.evs.after(g.cursor); i < s.evs.len() && !c.ID.Less(s.evs.id(i)); i++ {
			s.addPendingLocked(g, s.evs.id(i), c.Consumer, c.At)
		}
		if g.cursor.Less(c.ID) {
			g.cursor = c.ID
		}
	case ChangeGroupAck:
		if g := s.groups[c.Name]; g != nil {
			for _, id := range c.IDs {
				if p := g.entries[id]; p != nil {
					s.removePendingLocked(g, p)
				}
			}
		}
	case ChangeGroupDelete:
		if g := s.groups[c.Name]; g != nil {
			s.deleteGroupLocked(g)
		}
	case ChangeCheckpoint:
		st := c.State
		if st == nil {
			return fmt.Errorf("%w: checkpoint without state", ErrBadChange)
		}
		s.born, s.trimmed = st.Born, st.Trimmed
		if s.last.Less(st.Last) {
			s.last = st.Last
		}
		s.trimThroughLocked(st.Trimmed)
		s.positions = maps.Clone(st.Positions)
		if s.positions == nil {
			s.positions = make(map[string]protocol.ID)
		}
		s.clearGroupsLocked()
		now := s.now()
		for _, name := range slices.Sorted(maps.Keys(st.Groups)) {
			s.restoreGroupLocked(name, st.Groups[name], now)
		}
		s.dropTrimmedLocked() // a checkpoint of a version that dropped them later may hold some
	default:
		return fmt.Errorf("%w: unknown kind %d", ErrBadChange, c.Kind)
	}
	return nil
}

// Checkpoint records the store's whole state but its events now. A
// journal's owner calls it once the replay is done, so that the journal
// starts a new file with everything the older ones said.
func (s *Store) Checkpoint() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recordLocked(&Change{Kind: ChangeCheckpoint, State: s.stateLocked()})
}
