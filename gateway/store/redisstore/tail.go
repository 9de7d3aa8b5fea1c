package redisstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/gateway/store"
	"github.com/zbridge/zbridge/protocol"
)

// Tuning of the background work.
const (
	tailCount    = 4096                  // most entries one tail read fetches
	checkEvery   = 5 * time.Second       // how often an idle tail checks that the stream did not go back
	minBackoff   = 50 * time.Millisecond // first wait after a failure
	maxBackoff   = 5 * time.Second       // longest wait between attempts
	attemptLimit = 10 * time.Second      // bound on one attempt of background work
	flushParts   = 256                   // most buffered batches written per round trip
	flushEvents  = 16 * partEvents       // most buffered events written per round trip
	flushBytes   = 4 * partBytes         // most bytes (Event.Size) written per round trip, but one batch
	ownWait      = 20 * time.Millisecond // how long the tail waits for appends in flight
)

// headScript reads what the Store needs to know about the stream in one
// step, and records when the stream began (the born key) if nobody has:
// now by Redis's clock, or, for a stream that exists and never lost an
// entry, just before its first entry; for one that lost entries, 0-0
// (unknown: the trimmed key tells readers what they missed). It answers {born,
// last-generated-id, newest entry, max-deleted-entry-id, 1 if the server
// reports max-deleted-entry-id (Redis 7) else 0}.
//
// KEYS: the stream, the born key.
func newHeadScript() *redis.Script {
	return redis.NewScript(idLua + `
local h = nil
if redis.call('EXISTS', KEYS[1]) == 1 then
  h = {}
  local info = redis.call('XINFO', 'STREAM', KEYS[1])
  for i = 1, #info, 2 do h[info[i]] = info[i+1] end
end
local born = redis.call('GET', KEYS[2])
if not born then
  local t = redis.call('TIME')
  born = t[1] .. string.format('%03d', math.floor(tonumber(t[2]) / 1000)) .. '-0'
  if h and h['length'] > 0 then
    if h['entries-added'] == h['length'] and h['first-entry'] then
      born = pred(h['first-entry'][1])
    else
      born = '0-0'
    end
  end
  redis.call('SET', KEYS[2], born)
end
if not h then return {born, '0-0', '0-0', '0-0', 1} end
local newest = '0-0'
if h['last-entry'] then newest = h['last-entry'][1] end
local maxdel, has = h['max-deleted-entry-id'], 1
if not maxdel then maxdel, has = '0-0', 0 end
return {born, h['last-generated-id'], newest, maxdel, has}
`)
}

// streamHead is what headScript answered.
type streamHead struct {
	born, lastGen, newest, trimmed protocol.ID
	redis7                         bool
}

func (s *Store) head(ctx context.Context) (streamHead, error) {
	v, err := scripts().head.Run(ctx, s.rdb, []string{s.kEvents, s.kBorn}).Slice()
	if err != nil {
		return streamHead{}, err
	}
	var h streamHead
	if len(v) != 5 {
		return h, fmt.Errorf("redisstore: unexpected head reply %v", v)
	}
	for i, p := range []*protocol.ID{&h.born, &h.lastGen, &h.newest, &h.trimmed} {
		x, _ := v[i].(string)
		if *p, err = protocol.ParseID(x); err != nil {
			return h, fmt.Errorf("redisstore: unexpected head reply %v", v)
		}
	}
	h.redis7 = v[4] == int64(1)
	return h, nil
}

// initTail looks at the stream and makes the cache valid from its newest
// ID: the tail goes on from there.
func (s *Store) initTail(ctx context.Context) error {
	h, err := s.head(ctx)
	if err != nil {
		return err
	}
	if !h.redis7 {
		s.log.Error("redis store: the server does not report trimmed stream entries (max-deleted-entry-id): Redis 7.0 or later is needed, or readers behind retention are not told they missed events")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.degraded {
		return nil // the flusher owns the cache until Redis has the buffer
	}
	s.born = h.born
	s.last = maxID(s.last, h.newest)
	s.top = maxID(s.top, h.lastGen)
	s.gen++
	s.cache.reset(h.lastGen)
	clear(s.orphans)
	// Waiters go and read what came while the cache was not valid.
	s.wakeLocked()
	return nil
}

// tailLoop follows the stream with blocking reads and feeds the cache,
// which wakes the waiters. It pauses while the Store is degraded.
func (s *Store) tailLoop() {
	defer s.wg.Done()
	delay := minBackoff
	lastCheck := time.Now()
	count := int64(tailCount) // of the next read
	for {
		s.mu.Lock()
		closed, degraded, valid, gen, from := s.closed, s.degraded, s.cache.valid, s.gen, s.cache.newest()
		s.mu.Unlock()
		switch {
		case closed:
			return
		case degraded:
			select {
			case <-s.done:
				return
			case <-s.tailWake:
			}
			continue
		case !valid:
			ctx, cancel := context.WithTimeout(s.ctx, attemptLimit)
			err := s.initTail(ctx)
			cancel()
			if err != nil && !s.tailFailed(err, &delay) {
				return
			}
			count = tailCount
			continue
		}
		// The entries after the cache's newest and the trimming state,
		// read in one transaction: if retention (another region's, maybe
		// shorter than this one's) removed entries after the newest that
		// the tail had not fetched, the read would skip them unseen.
		msgs, trimmed, err := s.readAfter(from, count)
		if err != nil {
			if !s.tailFailed(err, &delay) {
				return
			}
			continue
		}
		delay = minBackoff
		if from.Less(trimmed) {
			s.fellBehind(gen, from, trimmed)
			continue
		}
		if len(msgs) > 0 {
			// A read that brought only this process's own appends, which
			// were in the cache by then, served to wake the tail: the next
			// one asks for a single entry, until one brings something new,
			// so that Redis does not send back every event the Store
			// writes; and it waits for it first.
			if !s.feed(gen, msgs) {
				count = tailCount
				continue // there may be more
			}
			count = 1
			s.mu.Lock()
			from = s.cache.newest()
			s.mu.Unlock()
		}
		// Nothing new (or only this process's own): wait for the next
		// entry. What this read returns is read again by the transaction.
		_, err = s.rdb.XRead(s.ctx, &redis.XReadArgs{
			Streams: []string{s.kEvents, from.String()},
			Count:   1,
			Block:   s.block,
		}).Result()
		switch {
		case errors.Is(err, redis.Nil):
			if time.Since(lastCheck) >= checkEvery {
				lastCheck = time.Now()
				s.checkStream()
			}
		case err != nil:
			if !s.tailFailed(err, &delay) {
				return
			}
		}
	}
}

// readAfter reads up to count entries after from, and the newest entry
// retention removed (zero if none), in one transaction.
func (s *Store) readAfter(from protocol.ID, count int64) ([]redis.XMessage, protocol.ID, error) {
	ctx, cancel := context.WithTimeout(s.ctx, attemptLimit)
	defer cancel()
	var get *redis.StringCmd
	var read *redis.XStreamSliceCmd
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		get = p.Get(ctx, s.kTrimmed)
		read = p.XRead(ctx, &redis.XReadArgs{Streams: []string{s.kEvents, from.String()}, Count: count, Block: -1})
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, protocol.ID{}, err
	}
	var trimmed protocol.ID
	if v, err := get.Result(); err == nil {
		trimmed, _ = protocol.ParseID(v)
	} else if !errors.Is(err, redis.Nil) {
		return nil, protocol.ID{}, err
	}
	res, err := read.Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, protocol.ID{}, err
	}
	var msgs []redis.XMessage
	for _, st := range res {
		msgs = append(msgs, st.Messages...)
	}
	return msgs, trimmed, nil
}

// fellBehind restarts the cache after through, the newest entry retention
// removed before the tail fetched it: readers inside the old cache then
// read from Redis, which tells them of the gap, instead of passing over
// the removed entries in the cache.
func (s *Store) fellBehind(gen uint64, from, through protocol.ID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if gen != s.gen || s.degraded || s.cache.newest() != from {
		return // the cache moved meanwhile: look again
	}
	s.log.WithFields(logrus.Fields{"cached_newest": from.String(), "trimmed_through": through.String()}).
		Warn("redis store: retention removed events before this region fetched them; its readers are told of the gap")
	s.behind.Add(1)
	s.gen++
	s.cache.reset(through)
	clear(s.orphans)
	s.wakeLocked()
}

// tailFailed handles an error of the tail: Redis unreachable makes the
// Store degraded, anything else is logged and waited out. It returns false
// when the Store is closing.
func (s *Store) tailFailed(err error, delay *time.Duration) bool {
	if s.ctx.Err() != nil {
		return false
	}
	if unavailable(err) {
		s.mu.Lock()
		s.enterDegradedLocked(err)
		s.mu.Unlock()
		return true
	}
	s.log.WithError(err).Warn("redis store: reading the event stream failed; retrying")
	return s.sleep(delay)
}

// sleep waits for *delay (with jitter) and doubles it, up to maxBackoff. It
// returns false if the Store closed meanwhile.
func (s *Store) sleep(delay *time.Duration) bool {
	d := *delay/2 + rand.N(*delay/2+1)
	*delay = min(2**delay, maxBackoff)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-s.done:
		return false
	case <-t.C:
		return true
	}
}

// feed adds what a tail read returned to the cache: the entries after the
// cache's newest, which may have moved on by this process's own appends.
// A read begun before the cache was reset (gen) is dropped. It reports
// whether the cache had every entry already.
func (s *Store) feed(gen uint64, msgs []redis.XMessage) (had bool) {
	if len(msgs) == 0 {
		return true
	}
	lastID, _ := protocol.ParseID(msgs[len(msgs)-1].ID)
	s.mu.Lock()
	s.waitOwnLocked(gen, lastID)
	newest, ok := s.cache.newest(), gen == s.gen && !s.degraded
	s.mu.Unlock()
	if !ok {
		return false
	}
	evs := make([]*protocol.Event, 0, len(msgs))
	for _, m := range msgs {
		id, err := protocol.ParseID(m.ID)
		if err == nil && !newest.Less(id) {
			continue // this process's own, already cached
		}
		evs = append(evs, s.decode(m))
	}
	if len(evs) == 0 {
		return true
	}
	s.noteSize(evs)
	s.mu.Lock()
	defer s.mu.Unlock()
	if gen != s.gen || s.degraded {
		return false
	}
	newest = s.cache.newest()
	i := 0
	for i < len(evs) && !newest.Less(evs[i].ID) {
		i++
	}
	if evs = evs[i:]; len(evs) > 0 {
		s.top = maxID(s.top, evs[len(evs)-1].ID)
		s.addLocked(evs)
	}
	return len(evs) == 0
}

// waitOwnLocked waits, up to ownWait, while appends of this process are
// in flight and the cache has not reached id: the entries a tail read
// returns are often this process's own, whose replies are on their way,
// and it is cheaper to wait for those to fill the cache than to decode the
// entries again. It releases s.mu while it waits.
func (s *Store) waitOwnLocked(gen uint64, id protocol.ID) {
	var timeout <-chan time.Time
	for s.inflight > 0 && s.cache.newest().Less(id) && gen == s.gen && !s.closed {
		if timeout == nil {
			t := time.NewTimer(ownWait)
			defer t.Stop()
			timeout = t.C
		}
		ch := s.appended
		s.mu.Unlock()
		select {
		case <-ch:
			s.mu.Lock()
		case <-timeout:
			s.mu.Lock()
			return
		}
	}
}

// checkStream warns when the stream's newest ID is before the cache's: Redis
// lost data (it restarted without persistence, or failed over to a replica
// that lagged). The cache is then dropped and the tail starts again from the
// stream as it is; the born key is set anew, so that readers resuming from
// before are told they missed events.
func (s *Store) checkStream() {
	ctx, cancel := context.WithTimeout(s.ctx, attemptLimit)
	h, err := s.head(ctx)
	cancel()
	if err != nil {
		return // the next read reports it
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.degraded || !s.cache.valid || !h.lastGen.Less(s.cache.newest()) {
		return
	}
	s.log.WithFields(logrus.Fields{"redis_newest": h.lastGen.String(), "cached_newest": s.cache.newest().String()}).
		Warn("redis store: the event stream went back: redis lost events (restarted without persistence, or failed over to a replica that lagged); following the stream as it is now")
	s.born = h.born
	s.last = h.newest
	s.gen++
	s.cache.invalidate()
	clear(s.orphans)
}

// enterDegradedLocked makes the Store degraded: appends get provisional IDs
// and wait in the buffer for the flusher.
func (s *Store) enterDegradedLocked(err error) {
	if s.degraded || s.closed {
		return
	}
	s.degraded = true
	s.reason = "redis unreachable: " + err.Error()
	if errors.Is(err, ErrNotReplicated) {
		s.reason = "redis replicas unavailable: " + err.Error()
	}
	// The cache stays as it is (gen too): appends still in flight may
	// succeed (go-redis retries them), and go into it as usual until the
	// first provisional ID is given (see bufferLocked).
	// One millisecond past anything known: a batch whose reply was lost may
	// have been written with an ID of this millisecond.
	s.floor = max(uint64(max(s.now().UnixMilli(), 0)), s.top.Ms, s.last.Ms, s.cache.newest().Ms) + 1
	s.expect = s.cache.newest()
	s.dirty = !s.cache.valid
	s.logDrop = false
	s.log.WithError(err).Warn("redis store degraded: " + strings.TrimSuffix(s.reason, ": "+err.Error()) + "; accepting events with provisional IDs until it is back")
	signal(s.flushWake)
}

// bufferLocked gives b's events provisional IDs and keeps them for the
// flusher, and in the cache for readers; or drops them if the buffer is full.
func (s *Store) bufferLocked(b *batch) error {
	var size int64
	for _, e := range b.evs {
		size += int64(e.Size())
	}
	if s.bufN+len(b.evs) > s.bufEvents || s.bufSize+size > s.bufBytes {
		s.dropped += uint64(len(b.evs))
		if !s.logDrop {
			s.logDrop = true
			s.log.WithFields(logrus.Fields{"buffered": s.bufN, "buffered_bytes": s.bufSize}).
				Error("redis store: write buffer full while redis is unreachable; dropping new events until it is back")
		}
		return ErrBufferFull
	}
	if !s.provisional {
		// The first provisional ID. No append is in flight (see
		// waitInflightLocked): the cache now holds what Redis took from
		// this Store, unless some of it could not go in (an orphan, or
		// another writer's entry in between), which the tail fetches
		// after the outage.
		s.provisional = true
		s.floor = max(s.floor, uint64(max(s.now().UnixMilli(), 0))+1, s.top.Ms+1)
		if s.cache.valid {
			s.expect = s.cache.newest()
			if s.expect.Less(s.top) {
				// Entries this Store wrote are not in the cache yet
				// (the tail was catching up): readers would pass
				// over them to the provisional IDs.
				s.dirty, s.hidden = true, true
			}
		}
		s.gen++
		clear(s.orphans)
	}
	id := maxID(maxID(s.last, s.top), s.cache.newest())
	ms := max(uint64(max(s.now().UnixMilli(), 0)), s.floor)
	for _, e := range b.evs {
		if ms > id.Ms {
			id = protocol.ID{Ms: ms}
		} else {
			id.Seq++
		}
		e.ID = id
	}
	s.top = id
	s.buf = append(s.buf, b)
	s.bufN += len(b.evs)
	s.bufSize += size
	s.nAppended.Add(uint64(len(b.evs)))
	signal(s.flushWake)
	if s.hidden {
		return nil
	}
	s.last = id
	if !s.cache.valid {
		// Started degraded: the cache begins here, for live readers.
		first := b.evs[0].ID
		if first.Seq > 0 {
			first.Seq--
		} else {
			first = protocol.ID{Ms: first.Ms - 1, Seq: ^uint64(0)}
		}
		s.cache.reset(first)
		s.dirty = true
	}
	s.cache.add(b.evs)
	s.wakeLocked()
	return nil
}

// flushLoop writes the buffered events when Redis is back, then ends the
// degraded mode.
func (s *Store) flushLoop() {
	defer s.wg.Done()
	for {
		select {
		case <-s.done:
			return
		case <-s.flushWake:
		}
		delay := minBackoff
		for {
			err := s.recoverOnce()
			if err == nil {
				break
			}
			if s.ctx.Err() != nil {
				return
			}
			s.log.WithError(err).Debug("redis store: redis still unreachable")
			if !s.sleep(&delay) {
				return
			}
		}
	}
}

// Sync implements store.Syncer: it returns nil once every event appended
// before the call (by an Append or AppendMarked that returned) is in
// Redis, and in MinReplicas replicas. Appends that return nil have done
// that, unless they left their events in the write buffer (see Degraded
// mode); so Sync returns nil at once unless such events are still there.
// Then, while the flusher is writing the buffer to a Redis that answers,
// it waits for them to be written, up to ctx; when they are held only in
// this process's memory (Redis unreachable, the replicas not
// acknowledging, the flusher waiting to try again), it returns an error
// wrapping ErrUnavailable at once, so that a server acknowledging events
// does not acknowledge them, and is not held for the outage. It also
// fails when Redis refused buffered events for good while it waited, and
// with store.ErrClosed after Close.
func (s *Store) Sync(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Every batch in the buffer now was appended before the call: a batch
	// enters it under s.mu before its Append returns. It has left when
	// bufOut reaches through.
	through, refused := s.bufOut+uint64(len(s.buf)), s.refused
	for {
		switch {
		case s.closed:
			return store.ErrClosed
		case s.refused != refused:
			return fmt.Errorf("redisstore: sync: redis refused %d buffered events for good (logged); they are dropped", s.refused-refused)
		case s.bufOut >= through:
			return nil
		case !s.flushing:
			return fmt.Errorf("redisstore: sync: %w: %d events held only in this process's memory until redis has them (%s)",
				ErrUnavailable, s.bufN, s.reason)
		}
		ch := s.flushed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
		case <-s.done:
		}
		s.mu.Lock()
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// recoverOnce tries once to write the buffer and leave degraded mode.
func (s *Store) recoverOnce() error {
	s.mu.Lock()
	degraded := s.degraded
	s.mu.Unlock()
	if !degraded {
		return nil
	}
	ctx, cancel := context.WithTimeout(s.ctx, attemptLimit)
	defer cancel()
	h, err := s.head(ctx)
	if err != nil {
		return err
	}
	// With MinReplicas the batches are written on one connection to the
	// master, each round trip ending with a WAIT: they leave the buffer
	// only once the replicas have them.
	var conn *redis.Conn
	if s.minReplicas > 0 {
		if conn, err = s.masterConn(ctx); err != nil {
			return err
		}
		defer conn.Close()
	}
	// The script goes to the master that runs it only: a Cluster client
	// would load it on every master, and fail while any is down.
	var loader redis.Scripter = s.rdb
	switch {
	case conn != nil:
		loader = conn
	case isCluster(s.rdb):
		m, err := s.rdb.(*redis.ClusterClient).MasterForKey(ctx, s.kEvents)
		if err != nil {
			return fmt.Errorf("%w: %w", errNoMaster, err)
		}
		loader = m
	}
	if err := scripts().append.Load(ctx, loader).Err(); err != nil {
		return err
	}
	s.mu.Lock()
	// Redis answers: Syncs wait for this attempt (every return below has
	// released s.mu).
	s.flushing = true
	defer func() {
		s.mu.Lock()
		s.flushing = false
		s.wakeSyncLocked()
		s.mu.Unlock()
	}()
	if !s.expect.IsZero() && h.lastGen.Less(s.expect) {
		s.log.WithFields(logrus.Fields{"redis_newest": h.lastGen.String(), "known_newest": s.expect.String()}).
			Warn("redis store: redis is back without events it had (restarted without persistence, or failed over to a replica that lagged)")
		s.dirty = true
	}
	s.born = h.born
	s.mu.Unlock()
	var written, fell, found int
	top := h.newest // the newest entry in the stream as far as known
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil
		}
		if len(s.buf) == 0 {
			s.leaveDegradedLocked(written, fell, found, top)
			s.mu.Unlock()
			return nil
		}
		parts := s.flushRoundLocked()
		s.mu.Unlock()

		var born *redis.StringCmd // the first batch may move it back
		var pipe redis.Pipeliner = s.rdb.Pipeline()
		if conn != nil {
			pipe = conn.Pipeline()
		}
		for _, b := range parts {
			pipe.EvalSha(ctx, scripts().append.Hash(), s.appendKeys(b), s.appendArgs(b)...)
		}
		born = pipe.Get(ctx, s.kBorn)
		cmds, err := pipe.Exec(ctx)
		if conn != nil {
			// Exec's error is the first command's that failed; a batch
			// Redis refused for good is dropped below, after the WAIT for
			// the others.
			if err == nil || !unavailable(err) && !redis.HasErrorPrefix(err, "NOSCRIPT") {
				err = s.waitReplicas(ctx, conn)
			}
			if err != nil {
				// Written or not, replicated or not: the batches stay in
				// the buffer, and the next attempt finds those written.
				s.clusterMoved(err)
				return err
			}
		}
		cmds = cmds[:len(parts)]
		s.mu.Lock()
		if id, err := protocol.ParseID(born.Val()); born.Err() == nil && err == nil {
			s.born = id
		}
		var failed error
		for i, cmd := range cmds {
			b := parts[i]
			v, err := cmd.(*redis.Cmd).Slice()
			var r result
			if err == nil {
				r, err = parseResult(v, len(b.evs))
			}
			if err != nil {
				if unavailable(err) || redis.HasErrorPrefix(err, "NOSCRIPT") {
					failed = err
					s.clusterMoved(err)
					break
				}
				// Redis refuses this batch for good: drop it rather than
				// stop every later one.
				s.log.WithError(err).WithField("events", len(b.evs)).Error("redis store: redis refused buffered events; dropping them")
				s.dropped += uint64(len(b.evs))
				s.refused++
				s.dirty = true
			} else {
				written += len(b.evs)
				n := len(b.evs)
				if r.dup {
					top = maxID(top, r.last)
				} else {
					top = maxID(top, r.ids[n-1])
				}
				switch {
				case r.dup:
					s.dirty = true
					if r.first != b.evs[0].ID || r.last != b.evs[n-1].ID {
						found += n
						s.reconciled.Add(uint64(n))
					}
				case r.fallbacks > 0:
					fell += r.fallbacks
					s.fallbacks.Add(uint64(r.fallbacks))
					s.dirty = true
				case r.prev != s.expect:
					s.dirty = true // something else was written before
				}
				if !s.dirty {
					s.expect = b.evs[n-1].ID
				}
			}
			s.buf[0] = nil
			s.buf = s.buf[1:]
			s.bufOut++
			s.bufN -= len(b.evs)
			for _, e := range b.evs {
				s.bufSize -= int64(e.Size())
			}
		}
		s.wakeSyncLocked()
		s.mu.Unlock()
		if failed != nil {
			return failed
		}
	}
}

// flushRoundLocked returns the buffered batches to write in the next
// round trip: the oldest, within flushParts, flushEvents and flushBytes,
// and at least one. Rounds of many small batches make the most of the
// round trip, and of the WAIT for replicas after it.
func (s *Store) flushRoundLocked() []*batch {
	n, events, size := 0, 0, 0
	for n < len(s.buf) && n < flushParts {
		b := s.buf[n]
		bs := 0
		for _, e := range b.evs {
			bs += e.Size()
		}
		if n > 0 && (events+len(b.evs) > flushEvents || size+bs > flushBytes) {
			break
		}
		n, events, size = n+1, events+len(b.evs), size+bs
	}
	return s.buf[:n]
}

// leaveDegradedLocked ends degraded mode once the buffer is written. If
// Redis did not take every buffered event as the cache has it (IDs changed,
// or other entries came in between), the cache keeps only what is known to
// match, and the tail fetches the rest.
func (s *Store) leaveDegradedLocked(written, fell, found int, top protocol.ID) {
	if s.dirty {
		s.cache.dropAfter(s.expect)
		// Provisional IDs beyond expect may not be in the stream: Wait
		// goes by what is.
		s.last = maxID(s.cache.newest(), top)
	}
	f := logrus.Fields{"written": written, "dropped": s.dropped}
	if fell > 0 {
		f["new_ids"] = fell
		s.log.WithField("events", fell).Warn("redis store: other writers added events while redis was unreachable from here; some buffered events got new IDs, and live readers may see them twice")
	}
	if found > 0 {
		f["already_written"] = found
		s.log.WithField("events", found).Warn("redis store: events whose write had no reply when redis went away were written after all; they keep the IDs redis gave them, which live readers did not see")
	}
	s.degraded, s.reason, s.dirty, s.provisional, s.hidden = false, "", false, false, false
	s.gen++
	clear(s.orphans)
	s.buf = nil
	s.log.WithFields(f).Info("redis store: redis is back; buffered events written")
	signal(s.tailWake)
	s.wakeLocked()
}
