// Package memstore is the embedded, in-process implementation of
// store.Store: the region's default, with nothing to install.
//
// Events are kept in arrival order in memory and trimmed from the oldest end
// when there are more than MaxEvents of them or they hold more than MaxBytes
// (estimated by protocol.Event.Size). State does not survive a restart; use
// the Redis store for that.
package memstore

import (
	"context"
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

	mu       sync.RWMutex // guards the following fields
	evs      []*protocol.Event
	head     int // evs[head:] are retained
	bytes    int64
	last     protocol.ID
	trimmed  protocol.ID
	born     protocol.ID // the store's first possible ID: IDs before it are another store's
	appended uint64
	notify   chan struct{} // closed and replaced when events are appended
	sessions map[string]store.Session
	closed   bool

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
