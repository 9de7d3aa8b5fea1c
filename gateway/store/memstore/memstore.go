// Package memstore is the embedded, in-process implementation of
// store.Store: the region's default, with nothing to install.
//
// Events are kept in arrival order in memory and trimmed from the oldest end
// when there are more than MaxEvents of them or they hold more than MaxBytes
// (estimated by protocol.Event.Size). State does not survive a restart; use
// the Redis store for that.
//
// # Consumer groups
//
// Durable subscription positions are a map from name to ID. A consumer group
// is a cursor, the last event delivered to the group (at creation its start,
// or the newest ID the store assigned), and its pending entries: the events
// delivered to a consumer and not yet acknowledged, in ID order, each with its
// consumer and the time (by Config.Now) it was delivered or last claimed.
// GroupRead claims the entries idle for claimAfter or longer, oldest first,
// then delivers the events after the cursor; GroupAck removes entries. Entries
// whose events retention trimmed are dropped at the group's next GroupRead, so
// a group holds no more entries than it has delivered unacknowledged. Each
// GroupRead scans the group's entries for idle ones: consumers should
// acknowledge as they go.
package memstore

import (
	"context"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/zbridge/zbridge/gateway/store"
	"github.com/zbridge/zbridge/protocol"
)

// Defaults for Config.
const (
	DefaultMaxEvents = 1_000_000
	DefaultMaxBytes  = 512 << 20
)

// Config sets the retention.
type Config struct {
	MaxEvents int   // events retained at most; DefaultMaxEvents if 0
	MaxBytes  int64 // estimated bytes retained at most; DefaultMaxBytes if 0
	// Now is the clock (time.Now if nil); tests pass their own.
	Now func() time.Time
}

// Store is the embedded store.
type Store struct {
	maxEvents int
	maxBytes  int64
	now       func() time.Time

	mu        sync.RWMutex // guards the following fields
	evs       []*protocol.Event
	head      int // evs[head:] are retained
	bytes     int64
	last      protocol.ID
	trimmed   protocol.ID
	born      protocol.ID // the store's first possible ID: IDs before it are another store's
	appended  uint64
	notify    chan struct{} // closed and replaced when events are appended
	sessions  map[string]store.Session
	positions map[string]protocol.ID // durable subscriptions' positions, by name
	groups    map[string]*group      // consumer groups, by name
	closed    bool

	done chan struct{} // closed by Close
}

var _ store.Store = (*Store)(nil)

// New returns an empty store.
func New(cfg Config) *Store {
	s := &Store{
		maxEvents: cfg.MaxEvents,
		maxBytes:  cfg.MaxBytes,
		now:       cfg.Now,
		notify:    make(chan struct{}),
		sessions:  make(map[string]store.Session),
		positions: make(map[string]protocol.ID),
		groups:    make(map[string]*group),
		done:      make(chan struct{}),
	}
	if s.maxEvents <= 0 {
		s.maxEvents = DefaultMaxEvents
	}
	if s.maxBytes <= 0 {
		s.maxBytes = DefaultMaxBytes
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.born = protocol.ID{Ms: uint64(s.now().UnixMilli())}
	return s
}

// Append implements store.Store.
func (s *Store) Append(ctx context.Context, evs []*protocol.Event) error {
	if len(evs) == 0 {
		return ctx.Err()
	}
	now := s.now()
	ms := max(uint64(now.UnixMilli()), s.born.Ms) // no ID before born, even if the clock went back
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return store.ErrClosed
	}
	for _, e := range evs {
		if ms > s.last.Ms {
			s.last = protocol.ID{Ms: ms}
		} else { // same millisecond, or the clock went back: keep IDs rising
			s.last.Seq++
		}
		e.ID = s.last
		if e.Received.IsZero() {
			e.Received = now.UTC()
		}
		s.bytes += int64(e.Size())
	}
	s.evs = append(s.evs, evs...)
	s.appended += uint64(len(evs))
	s.trimLocked()
	ch := s.notify
	s.notify = make(chan struct{})
	s.mu.Unlock()
	close(ch)
	return nil
}

// trimLocked drops the oldest events beyond the retention limits.
func (s *Store) trimLocked() {
	n := len(s.evs) - s.head
	for n > 0 && (n > s.maxEvents || s.bytes > s.maxBytes) {
		e := s.evs[s.head]
		s.bytes -= int64(e.Size())
		s.trimmed = e.ID
		s.evs[s.head] = nil
		s.head++
		n--
	}
	// Compact when the dead prefix is at least half the slice.
	if s.head > 0 && s.head >= len(s.evs)/2 && s.head >= 1024 || s.head == len(s.evs) {
		k := copy(s.evs, s.evs[s.head:])
		clear(s.evs[k:])
		s.evs = s.evs[:k]
		s.head = 0
	}
}

// Read implements store.Store.
func (s *Store) Read(ctx context.Context, after protocol.ID, max int, dst []*protocol.Event) ([]*protocol.Event, store.Gap, error) {
	if err := ctx.Err(); err != nil {
		return dst, store.Gap{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return dst, store.Gap{}, store.ErrClosed
	}
	var gap store.Gap
	switch {
	case after.IsZero():
	case after.Less(s.trimmed):
		gap = store.Gap{Missed: true, Through: s.trimmed}
	case after.Less(s.born):
		// An ID from before this store existed (a region restart): what
		// came after it then is not here.
		gap = store.Gap{Missed: true, Through: s.born}
	}
	live := s.evs[s.head:]
	i := 0
	if !after.IsZero() {
		i = sort.Search(len(live), func(i int) bool { return after.Less(live[i].ID) })
	}
	end := len(live)
	if max > 0 && end-i > max {
		end = i + max
	}
	return append(dst, live[i:end]...), gap, nil
}

// Wait implements store.Store.
func (s *Store) Wait(ctx context.Context, after protocol.ID) error {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return store.ErrClosed
	}
	// Compare with the newest retained event, not the newest ID: when
	// retention trimmed everything, there is nothing to read until more come.
	if n := len(s.evs); n > s.head && after.Less(s.evs[n-1].ID) {
		s.mu.RUnlock()
		return nil
	}
	ch := s.notify
	s.mu.RUnlock()
	select {
	case <-ch:
		return nil
	case <-s.done:
		return store.ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stats implements store.Store.
func (s *Store) Stats(ctx context.Context) (store.StreamStats, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := store.StreamStats{
		Last:     s.last,
		Trimmed:  s.trimmed,
		Count:    int64(len(s.evs) - s.head),
		Bytes:    s.bytes,
		Appended: s.appended,
	}
	if st.Count > 0 {
		st.First = s.evs[s.head].ID
	}
	return st, ctx.Err()
}

// PutSession implements store.Store.
func (s *Store) PutSession(ctx context.Context, sess store.Session) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return store.ErrClosed
	}
	s.sessions[sess.ID] = sess
	return ctx.Err()
}

// DeleteSession implements store.Store.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return store.ErrClosed
	}
	delete(s.sessions, id)
	return ctx.Err()
}

// Sessions implements store.Store.
func (s *Store) Sessions(ctx context.Context) ([]store.Session, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, store.ErrClosed
	}
	out := make([]store.Session, 0, len(s.sessions))
	for _, v := range s.sessions {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, ctx.Err()
}

// SetPosition implements store.Store.
func (s *Store) SetPosition(ctx context.Context, name string, id protocol.ID) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return store.ErrClosed
	}
	if cur, ok := s.positions[name]; !ok || cur.Less(id) {
		s.positions[name] = id
	}
	return nil
}

// Position implements store.Store.
func (s *Store) Position(ctx context.Context, name string) (protocol.ID, bool, error) {
	if err := ctx.Err(); err != nil {
		return protocol.ID{}, false, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return protocol.ID{}, false, store.ErrClosed
	}
	id, ok := s.positions[name]
	return id, ok, nil
}

// group is a consumer group's state.
type group struct {
	cursor  protocol.ID // the last event delivered to the group, or where it starts
	pending []pending   // delivered and not acknowledged, in ID order
}

// pending is an event delivered to a consumer of a group and not yet
// acknowledged.
type pending struct {
	id       protocol.ID
	consumer string
	at       time.Time // when delivered or last claimed
	acked    bool      // set by GroupAck just before it removes the entry
}

// dropTrimmed drops the entries for events retention trimmed: those through
// trimmed, as trimming takes the oldest first.
func (g *group) dropTrimmed(trimmed protocol.ID) {
	k := sort.Search(len(g.pending), func(i int) bool { return trimmed.Less(g.pending[i].id) })
	if k > 0 {
		g.setPending(slices.Delete(g.pending, 0, k))
	}
}

// setPending replaces the entries; an empty list is dropped, releasing the
// array a burst of deliveries may have left.
func (g *group) setPending(p []pending) {
	if len(p) == 0 {
		p = nil
	}
	g.pending = p
}

// GroupRead implements store.Store. A max of zero or less means no limit,
// as for Read.
func (s *Store) GroupRead(ctx context.Context, name, consumer string, start protocol.ID, claimAfter time.Duration,
	max int, dst []*protocol.Event) ([]*protocol.Event, protocol.ID, error) {
	if err := ctx.Err(); err != nil {
		return dst, protocol.ID{}, err
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return dst, protocol.ID{}, store.ErrClosed
	}
	g := s.groups[name]
	if g == nil {
		g = &group{cursor: start}
		if start.IsZero() {
			g.cursor = s.last
		}
		s.groups[name] = g
	}
	g.dropTrimmed(s.trimmed)
	live := s.evs[s.head:]
	n := 0
	full := func() bool { return max > 0 && n >= max }

	// Claim the entries left unacknowledged too long. Every entry's event
	// is retained, as those trimmed were just dropped.
	for i := 0; i < len(g.pending) && !full(); i++ {
		p := &g.pending[i]
		if now.Sub(p.at) < claimAfter {
			continue
		}
		j := sort.Search(len(live), func(j int) bool { return !live[j].ID.Less(p.id) })
		if j == len(live) || live[j].ID != p.id {
			continue // not reached while the invariant above holds
		}
		p.consumer, p.at = consumer, now
		dst = append(dst, live[j])
		n++
	}

	// Deliver the events after the cursor. Their IDs are after every
	// pending one, so appending keeps the entries in ID order.
	i := sort.Search(len(live), func(i int) bool { return g.cursor.Less(live[i].ID) })
	for ; i < len(live) && !full(); i++ {
		e := live[i]
		g.pending = append(g.pending, pending{id: e.ID, consumer: consumer, at: now})
		g.cursor = e.ID
		dst = append(dst, e)
		n++
	}
	return dst, s.last, nil
}

// GroupAck implements store.Store.
func (s *Store) GroupAck(ctx context.Context, name string, ids []protocol.ID) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return store.ErrClosed
	}
	g := s.groups[name]
	if g == nil {
		return nil
	}
	acked := 0
	for _, id := range ids {
		i := sort.Search(len(g.pending), func(i int) bool { return !g.pending[i].id.Less(id) })
		if i < len(g.pending) && g.pending[i].id == id && !g.pending[i].acked {
			g.pending[i].acked = true
			acked++
		}
	}
	if acked > 0 {
		g.setPending(slices.DeleteFunc(g.pending, func(p pending) bool { return p.acked }))
	}
	return nil
}

// Close implements store.Store. It is safe to call more than once.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		close(s.done)
	}
	return nil
}
