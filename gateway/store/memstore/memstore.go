// Package memstore is the embedded, in-process implementation of
// store.Store: the region's default, with nothing to install.
//
// Events are kept in arrival order in memory and trimmed from the oldest end
// when there are more than MaxEvents of them, they hold more than MaxBytes
// (estimated by protocol.Event.Size), or they were received longer than
// MaxAge ago. The newest (Config.CacheEvents) are kept as they were
// appended, each with its JSON encoded once for every subscriber
// (store.PreparedReader); the older ones are kept encoded in chunks of
// memory outside the Go heap, reused as retention trims them, and decoded
// for each reader that reaches them: a million retained events cost the
// garbage collector what the cache does, and the heap does not grow with
// retention. The JSON of the newest Config.JSONEvents is kept too, beyond
// the cache in chunks of its own, so that a subscriber a little behind
// decodes the events it reads but does not encode them again, and one that
// needs nothing but that JSON (ReadPreparedLight) does not decode them
// either, audit records aside. The cache is
// small (DefaultCacheEvents) because the collector traces its events'
// pointers at every collection, and the relay's latency rises while it
// does. Alone, a Store keeps nothing across a restart; with a Journal
// (package diskstore keeps one on disk) every change is also recorded, and
// replayed into a new Store with Apply.
//
// # Status records
//
// A Store is also a store.Ledger: the availability records
// (protocol.StatusRecord) are kept in a slice of their own, in Seq order,
// under a lock of their own. The event retention never trims them;
// MaxStatusRecords bounds their memory instead: beyond it the oldest are
// dropped, and counted (StatusStats). A reader asking for records after 0,
// or after a Seq that was dropped, then gets them from the oldest kept: a
// report over a window whose start was dropped starts at the first record
// kept. With a StatusJournal (package diskstore) each AppendStatus is
// also recorded there, and replayed with ApplyStatus.
//
// # Consumer groups
//
// Durable subscription positions are a map from name to ID. A consumer group
// is a cursor, the last event delivered to the group (at creation its start,
// or the newest ID the store assigned), and its pending entries: the events
// delivered to a consumer and not yet acknowledged, each with its consumer and
// the time (by Config.Now) it was delivered or last claimed. The entries are
// in a map by ID and in two lists: in the order they were delivered or last
// claimed, and in ID order. GroupRead claims the entries idle for claimAfter
// or longer from the front of the first list, where they are (it stops at the
// first that is not idle), then delivers the events after the cursor;
// GroupAck removes the entries of the consumer that acknowledges (not those
// claimed by another), each found in the map. So neither looks at entries it
// does not return or remove, however many a group holds. (If the clock steps
// back, entries delivered after the step may wait behind older ones to be
// claimed.)
//
// What groups hold is bounded by retention and by time. Trimming drops every
// group's entries for the events it trims, at once: a heap of the groups
// that have entries, by the ID of their oldest, gives the groups concerned
// without looking at the others. A group nothing reads for Config.GroupTTL
// (7 days by default) is deleted with its entries: the groups are kept in
// the order they were last read, and Append, GroupRead and the age trimmer
// delete those past the TTL from the front. A Journal records the deletion;
// the groups a replay brings back count their TTL from the replay.
package memstore

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/zbridge/zbridge/gateway/store"
	"github.com/zbridge/zbridge/gateway/store/eventcodec"
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
	// MaxAge trims events received longer ago than it (0: no age limit).
	// They are trimmed as events are appended and once a second.
	MaxAge time.Duration
	// Journal records every change (nil: the store lives in memory only).
	Journal Journal
	// MaxStatusRecords bounds the status records kept (store.Ledger):
	// beyond it the oldest are dropped (DefaultMaxStatusRecords if 0).
	// The event retention never trims them.
	MaxStatusRecords int
	// StatusJournal records the status records (nil: in memory only).
	StatusJournal StatusJournal
	// Now is the clock (time.Now if nil); tests pass their own.
	Now func() time.Time
	// CacheEvents is how many of the newest events are kept as they
	// came (DefaultCacheEvents if 0); the older retained ones are kept
	// encoded, outside the Go heap, and decoded for each reader that
	// reaches them.
	CacheEvents int
	// JSONEvents is how many of the newest events keep their prepared
	// JSON (DefaultJSONEvents if 0), outside the Go heap beyond the cache;
	// the cache's events keep theirs whatever it is (negative: only
	// theirs).
	JSONEvents int
	// GroupTTL is how long a consumer group that nothing reads is kept
	// (DefaultGroupTTL if 0; negative: for ever): then it is deleted with
	// its pending entries, and a read creates it anew. It counts from the
	// group's last read, or from the store's creation for the groups a
	// Journal's replay brings back.
	GroupTTL time.Duration
}

// Store is the embedded store.
type Store struct {
	maxEvents int
	maxBytes  int64
	maxAge    time.Duration
	now       func() time.Time
	journal   Journal
	lastSeq   uint64 // the journal's sequence number of the last change recorded

	mu        sync.RWMutex // guards the following fields
	evs       retained     // the retained events
	bytes     int64
	last      protocol.ID
	trimmed   protocol.ID
	born      protocol.ID // the store's first possible ID: IDs before it are another store's
	appended  uint64
	notify    chan struct{} // closed and replaced when events are appended
	sessions  map[string]store.Session
	positions map[string]protocol.ID // durable subscriptions' positions, by name
	groups    map[string]*group      // consumer groups, by name
	groupLRU  groupLRU               // the groups, least recently read first
	trimHeap  trimHeap               // the groups with entries, by their oldest entry
	groupTTL  time.Duration          // 0: for ever
	closed    bool

	done chan struct{} // closed by Close
	aged chan struct{} // closed when the age trimmer has stopped

	ledger ledger // the status records, under a lock of their own
}

var (
	_ store.Store          = (*Store)(nil)
	_ store.PreparedReader = (*Store)(nil)
	_ store.GroupInspector = (*Store)(nil)
)

// New returns an empty store.
func New(cfg Config) *Store {
	s := &Store{
		maxEvents: cfg.MaxEvents,
		maxBytes:  cfg.MaxBytes,
		maxAge:    cfg.MaxAge,
		now:       cfg.Now,
		journal:   cfg.Journal,
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
	s.evs.cacheMax = cfg.CacheEvents
	if s.evs.cacheMax <= 0 {
		s.evs.cacheMax = DefaultCacheEvents
	}
	s.evs.jsonMax = cfg.JSONEvents
	if s.evs.jsonMax == 0 {
		s.evs.jsonMax = DefaultJSONEvents
	}
	switch {
	case cfg.GroupTTL == 0:
		s.groupTTL = DefaultGroupTTL
	case cfg.GroupTTL > 0:
		s.groupTTL = cfg.GroupTTL
	}
	s.ledger.max = cfg.MaxStatusRecords
	if s.ledger.max <= 0 {
		s.ledger.max = DefaultMaxStatusRecords
	}
	s.ledger.journal = cfg.StatusJournal
	if s.now == nil {
		s.now = time.Now
	}
	s.born = protocol.ID{Ms: uint64(s.now().UnixMilli())}
	s.aged = make(chan struct{})
	if s.maxAge > 0 {
		go s.trimByAge()
	} else {
		close(s.aged)
	}
	return s
}

// trimByAge trims aged events once a second until Close, so that an idle
// store lets them go too.
func (s *Store) trimByAge() {
	defer close(s.aged)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
		}
		s.mu.Lock()
		if !s.closed {
			now := s.now()
			before := s.trimmed
			s.trimLocked(now)
			if s.trimmed != before {
				s.recordLocked(&Change{Kind: ChangeTrim, ID: s.trimmed})
			}
			s.expireGroupsLocked(now)
		}
		s.mu.Unlock()
	}
}

// Append implements store.Store.
func (s *Store) Append(ctx context.Context, evs []*protocol.Event) error {
	if len(evs) == 0 {
		return ctx.Err()
	}
	return s.appendMarked(ctx, evs, "", protocol.ID{})
}

// AppendMarked implements store.MarkedAppender: the events and the
// position change together, under one lock and in one journal record.
func (s *Store) AppendMarked(ctx context.Context, evs []*protocol.Event, name string, id protocol.ID) error {
	if len(evs) == 0 {
		return s.SetPosition(ctx, name, id)
	}
	return s.appendMarked(ctx, evs, name, id)
}

func (s *Store) appendMarked(ctx context.Context, evs []*protocol.Event, name string, id protocol.ID) error {
	now := s.now()
	for _, e := range evs {
		if e.Received.IsZero() {
			e.Received = now.UTC()
		}
	}
	json := prepareJSON(evs) // before the lock: appenders encode in parallel
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return store.ErrClosed
	}
	ms := max(uint64(now.UnixMilli()), s.born.Ms) // no ID before born, even if the clock went back
	for _, e := range evs {
		if ms > s.last.Ms {
			s.last = protocol.ID{Ms: ms}
		} else { // same millisecond, or the clock went back: keep IDs rising
			s.last.Seq++
		}
		e.ID = s.last
		s.bytes += int64(e.Size())
	}
	var enc [][]byte
	if s.journal != nil {
		// Encoded once, for the journal and the cold part. Without a
		// journal, an event is encoded only if it leaves the cache.
		enc = encodeEvents(evs)
	}
	s.evs.push(evs, json, enc)
	s.appended += uint64(len(evs))
	if name != "" {
		s.setPositionLocked(name, id)
	}
	seq := s.recordLocked(&Change{Kind: ChangeEvents, Events: evs, Encoded: enc, Name: name, ID: id})
	before := s.trimmed
	s.trimLocked(now)
	if s.trimmed != before {
		seq = s.recordLocked(&Change{Kind: ChangeTrim, ID: s.trimmed})
	}
	s.expireGroupsLocked(now)
	ch := s.notify
	s.notify = make(chan struct{})
	s.mu.Unlock()
	close(ch)
	return s.commit(ctx, seq)
}

// trimLocked drops the oldest events beyond the retention limits, and the
// groups' entries for them.
func (s *Store) trimLocked(now time.Time) {
	n := s.evs.len()
	var oldest time.Time
	if s.maxAge > 0 {
		oldest = now.Add(-s.maxAge)
	}
	for n > 0 {
		_, received, _, _ := s.evs.oldest()
		if n <= s.maxEvents && s.bytes <= s.maxBytes && !received.Before(oldest) {
			break
		}
		s.dropHeadLocked()
		n--
	}
	s.dropTrimmedLocked()
}

// trimThroughLocked drops the events through id, as a replayed trim, and
// the groups' entries for them.
func (s *Store) trimThroughLocked(id protocol.ID) {
	for {
		first, _, _, ok := s.evs.oldest()
		if !ok || id.Less(first) {
			break
		}
		s.dropHeadLocked()
	}
	if s.trimmed.Less(id) {
		s.trimmed = id
	}
	s.dropTrimmedLocked()
}

// dropHeadLocked trims the oldest retained event.
func (s *Store) dropHeadLocked() {
	id, _, size, _ := s.evs.oldest()
	s.bytes -= size
	s.trimmed = id
	s.evs.dropOldest()
}

// prepareJSON encodes each event's JSON after its ID, for the events
// whose JSON is no larger than their Size (retention counts that: an event
// of control characters, escaped six bytes for one, is encoded for each
// send instead of held at several times what retention allows for it).
//
// The batch is encoded into a scratch buffer kept between calls, then
// copied into allocations of exactly the bytes they hold, each of up to
// jsonArena bytes (or one event's, when larger): no buffer grows by
// copying, none is larger than the small-object size classes for a batch
// of small events, and none holds more than its events. (Growing one
// buffer per batch from nothing cost the relay half its CPU when a
// backlog made batches thousands of events long.)
func prepareJSON(evs []*protocol.Event) [][]byte {
	return encodeBatch(&jsonScratch, evs, func(b []byte, e *protocol.Event) []byte {
		start := len(b)
		if b = protocol.AppendEventJSONAfterID(b, e); len(b)-start > e.Size() {
			b = b[:start]
		}
		return b
	})
}

// encodeBatch appends each event's encoding (enc) to a scratch buffer
// from pool, kept there for the next batch up to maxJSONScratch, and
// returns the encodings copied into arenas (arenaViews).
func encodeBatch(pool *sync.Pool, evs []*protocol.Event, enc func([]byte, *protocol.Event) []byte) [][]byte {
	sp := pool.Get().(*jsonScratchBuf)
	scratch, ends := sp.b[:0], sp.ends[:0]
	for _, e := range evs {
		scratch = enc(scratch, e)
		ends = append(ends, len(scratch))
	}
	views := arenaViews(scratch, ends)
	if cap(scratch) <= maxJSONScratch {
		sp.b, sp.ends = scratch, ends
		pool.Put(sp)
	}
	return views
}

// arenaViews copies what scratch holds, item i ending at ends[i], into
// allocations of at most jsonArena bytes each (or one item's, when larger)
// and returns a view of each item (nil for an empty one), capped at its
// end.
func arenaViews(scratch []byte, ends []int) [][]byte {
	views := make([][]byte, len(ends))
	for i := 0; i < len(ends); {
		from := 0
		if i > 0 {
			from = ends[i-1]
		}
		j := i + 1 // items i..j-1 share one allocation
		for j < len(ends) && ends[j]-from <= jsonArena {
			j++
		}
		if n := ends[j-1] - from; n > 0 {
			// A copy by append: the allocation is not zeroed first, as
			// make's would be (2% of the relay's CPU).
			buf := append([]byte(nil), scratch[from:ends[j-1]]...)
			prev := from
			for k := i; k < j; k++ {
				if ends[k] > prev {
					views[k] = buf[prev-from : ends[k]-from : ends[k]-from]
				}
				prev = ends[k]
			}
		}
		i = j
	}
	return views
}

// encodeEvents encodes each event as the journal records it and the cold
// part keeps it (eventcodec), once they have their IDs: the journal copies
// these bytes, and so does the cold part when the event leaves the cache.
func encodeEvents(evs []*protocol.Event) [][]byte {
	return encodeBatch(&encScratch, evs, eventcodec.AppendEvent)
}

var encScratch = sync.Pool{New: func() any { return new(jsonScratchBuf) }}

// jsonArena is the most bytes of event JSON (or of encoded events) put in
// one allocation: the largest small-object size class of the Go allocator.
const jsonArena = 32 << 10

// maxJSONScratch is the largest scratch buffer prepareJSON keeps for the
// next batch: one batch of the largest appends (syslog's 4 MiB of frames,
// with their JSON) fits. The pool holds one for each appender that ran at
// once (a few: the SYSLOG and RELP connections' committers, VMMON), and
// the collector drops what the pool holds when it is not used; that
// memory is not counted in retention.
const maxJSONScratch = 16 << 20

type jsonScratchBuf struct {
	b    []byte
	ends []int
}

var jsonScratch = sync.Pool{New: func() any { return new(jsonScratchBuf) }}

// Read implements store.Store.
func (s *Store) Read(ctx context.Context, after protocol.ID, max int, dst []*protocol.Event) ([]*protocol.Event, store.Gap, error) {
	dst, _, gap, err := s.read(ctx, after, max, dst, nil, false)
	return dst, gap, err
}

// ReadPrepared implements store.PreparedReader: the events in the cache
// come with the JSON encoded as they were appended.
func (s *Store) ReadPrepared(ctx context.Context, after protocol.ID, max int, dst []*protocol.Event, json [][]byte) (
	[]*protocol.Event, [][]byte, store.Gap, error) {
	return s.readPrepared(ctx, after, max, dst, json, false)
}

// ReadPreparedLight implements store.PreparedReader: an event of the cold
// part whose JSON is kept, and which is not an audit record, comes with
// its ID and Received time only, not decoded.
func (s *Store) ReadPreparedLight(ctx context.Context, after protocol.ID, max int, dst []*protocol.Event, json [][]byte) (
	[]*protocol.Event, [][]byte, store.Gap, error) {
	return s.readPrepared(ctx, after, max, dst, json, true)
}

func (s *Store) readPrepared(ctx context.Context, after protocol.ID, max int, dst []*protocol.Event, json [][]byte,
	light bool) ([]*protocol.Event, [][]byte, store.Gap, error) {
	if json == nil {
		json = make([][]byte, 0, cap(dst))
	}
	for len(json) < len(dst) { // json[i] goes with dst[i]
		json = append(json, nil)
	}
	return s.read(ctx, after, max, dst, json, light)
}

func (s *Store) read(ctx context.Context, after protocol.ID, max int, dst []*protocol.Event, json [][]byte,
	light bool) ([]*protocol.Event, [][]byte, store.Gap, error) {
	if err := ctx.Err(); err != nil {
		return dst, json, store.Gap{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return dst, json, store.Gap{}, store.ErrClosed
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
	i := 0
	if !after.IsZero() {
		i = s.evs.after(after)
	}
	end := s.evs.len()
	if max > 0 && end-i > max {
		end = i + max
	}
	dst, json = s.evs.appendRange(dst, json, i, end, light)
	return dst, json, gap, nil
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
	if newest, ok := s.evs.newest(); ok && after.Less(newest) {
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
		Count:    int64(s.evs.len()),
		Bytes:    s.bytes,
		Appended: s.appended,
	}
	if st.Count > 0 {
		st.First = s.evs.id(0)
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
	if s.closed {
		s.mu.Unlock()
		return store.ErrClosed
	}
	if !s.setPositionLocked(name, id) {
		// Already there: return once the change that put it there is
		// kept, which a caller racing that one must not assume.
		seq := s.lastSeq
		s.mu.Unlock()
		return s.commit(ctx, seq)
	}
	seq := s.recordLocked(&Change{Kind: ChangePosition, Name: name, ID: id})
	s.mu.Unlock()
	return s.commit(ctx, seq)
}

// setPositionLocked moves a position forward and reports whether it moved.
func (s *Store) setPositionLocked(name string, id protocol.ID) bool {
	if cur, ok := s.positions[name]; ok && !cur.Less(id) {
		return false
	}
	s.positions[name] = id
	return true
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

// Close implements store.Store. It is safe to call more than once.
func (s *Store) Close() error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.done)
		s.evs.release()
	}
	s.mu.Unlock()
	s.ledger.close()
	<-s.aged
	return nil
}
