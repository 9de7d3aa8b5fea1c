package memstore

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/zbridge/zbridge/gateway/store"
	"github.com/zbridge/zbridge/protocol"
)

// DefaultMaxStatusRecords is Config.MaxStatusRecords when it is 0.
const DefaultMaxStatusRecords = 1_000_000

// A StatusJournal keeps the status records (store.Ledger) somewhere that
// outlives the process, as a Journal keeps the other changes (package
// diskstore keeps them in a file of their own). The store calls
// RecordStatus with the ledger's lock held, once for each AppendStatus, in
// Seq order; so RecordStatus must not block or do I/O: it encodes the
// records, whose Seq is set, into a buffer and returns a sequence number
// of its own. It must not keep the slice. AppendStatus then calls
// CommitStatus outside the lock and returns its error: CommitStatus
// returns once what was recorded through seq is kept as the journal's
// policy says.
type StatusJournal interface {
	RecordStatus(recs []protocol.StatusRecord) (seq uint64)
	CommitStatus(ctx context.Context, seq uint64) error
}

// ledger holds the status records: a store.Ledger apart from the events,
// with a lock of its own, so that the event retention never touches it
// and appending events never waits for it.
type ledger struct {
	max     int // records kept at most
	journal StatusJournal

	mu      sync.RWMutex // guards the following fields
	recs    []protocol.StatusRecord
	head    int    // recs[head:] are kept
	last    uint64 // the newest Seq assigned
	dropped uint64 // records dropped beyond max
	closed  bool
}

var _ store.Ledger = (*Store)(nil)

// StatusStats describe the status records a Store holds.
type StatusStats struct {
	First   uint64 // Seq of the oldest record kept; 0 when none
	Last    uint64 // the newest Seq assigned; 0 when none
	Count   int    // records kept
	Dropped uint64 // records dropped beyond MaxStatusRecords, since the store was made (or replayed)
}

// AppendStatus implements store.Ledger. The store keeps a copy of each
// record, its Time in UTC, and sets the Seq of the caller's records. When
// more than MaxStatusRecords are kept, the oldest are dropped (counted in
// StatusStats.Dropped): StatusRecords after 0, or after a dropped Seq,
// then starts with the oldest record kept.
func (s *Store) AppendStatus(ctx context.Context, recs []*protocol.StatusRecord) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for i, r := range recs {
		if err := r.Validate(); err != nil {
			return fmt.Errorf("memstore: append status: record %d: %w", i, err)
		}
	}
	if len(recs) == 0 {
		return nil
	}
	l := &s.ledger
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return store.ErrClosed
	}
	start := len(l.recs)
	for _, r := range recs {
		l.last++
		r.Seq = l.last
		c := *r
		c.Time = c.Time.UTC()
		l.recs = append(l.recs, c)
	}
	var seq uint64
	if l.journal != nil {
		seq = l.journal.RecordStatus(l.recs[start:])
	}
	l.trimLocked()
	l.mu.Unlock()
	if l.journal != nil {
		return l.journal.CommitStatus(ctx, seq)
	}
	return nil
}

// trimLocked drops the oldest records beyond max.
func (l *ledger) trimLocked() {
	for len(l.recs)-l.head > l.max {
		l.recs[l.head] = protocol.StatusRecord{}
		l.head++
		l.dropped++
	}
	if l.head > 0 && (l.head >= len(l.recs)/2 && l.head >= 1024 || l.head == len(l.recs)) {
		k := copy(l.recs, l.recs[l.head:])
		clear(l.recs[k:])
		l.recs = l.recs[:k]
		l.head = 0
	}
}

// StatusRecords implements store.Ledger. A max of zero or less means no
// limit, as for Read.
func (s *Store) StatusRecords(ctx context.Context, after uint64, max int, dst []protocol.StatusRecord) ([]protocol.StatusRecord, error) {
	if err := ctx.Err(); err != nil {
		return dst, err
	}
	l := &s.ledger
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return dst, store.ErrClosed
	}
	live := l.recs[l.head:]
	i := sort.Search(len(live), func(i int) bool { return live[i].Seq > after })
	end := len(live)
	if max > 0 && end-i > max {
		end = i + max
	}
	return append(dst, live[i:end]...), nil
}

// StatusStats reports the status records held.
func (s *Store) StatusStats() StatusStats {
	l := &s.ledger
	l.mu.RLock()
	defer l.mu.RUnlock()
	st := StatusStats{Last: l.last, Count: len(l.recs) - l.head, Dropped: l.dropped}
	if st.Count > 0 {
		st.First = l.recs[l.head].Seq
	}
	return st
}

// ApplyStatus replays status records read back from a StatusJournal,
// without recording them again. It is for the journal's owner, before the
// store is used: each record's Seq must be after every Seq before it. The
// records are copied; MaxStatusRecords applies as configured now.
func (s *Store) ApplyStatus(recs []protocol.StatusRecord) error {
	l := &s.ledger
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range recs {
		if r.Seq <= l.last {
			return fmt.Errorf("%w: status record %d is not after %d", ErrBadChange, r.Seq, l.last)
		}
		l.last = r.Seq
		l.recs = append(l.recs, r)
		l.trimLocked()
	}
	return nil
}

// close refuses every later call.
func (l *ledger) close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
}
