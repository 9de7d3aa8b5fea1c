package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/zbridge/zbridge/gateway/store"
	"github.com/zbridge/zbridge/protocol"
)

// field is the name of the one field of a stream entry: the event's JSON.
const field = "e"

// Batches are written in parts of at most this many events or bytes of
// JSON, each one transaction or script call.
const (
	partEvents = 1024
	partBytes  = 4 << 20
)

// writerKeep is how many batch records a writer keeps: enough to outlast
// the batches that can be in flight when Redis goes away.
const writerKeep = 4096

// writerTTL is how long a writer's batch records outlive its last write.
const writerTTL = 24 * 60 * 60 * 1000 // ms

// Both ways of writing a batch run in one step on the server, so that the
// batch is contiguous in the stream, and record the batch's number in the
// writer's hash, mapped to its first ID, in the same step: a batch sent
// again (a buffered batch whose first attempt had no reply) is found there
// and not written twice.
//
// The usual way is a transaction (MULTI/EXEC): beginScript, which adds the
// batch's first event and does the bookkeeping, then one plain XADD for
// each other event. A transaction costs Redis about half the CPU of a
// script calling XADD once per event. It does not look for the record
// first: go-redis never sends a transaction again once it was written
// whole (an error reading the reply is returned, not retried), so the
// batch is new. The way with the check is appendScript, which the flusher
// uses for buffered batches.

// batchLua defines, for beginScript and appendScript, functions on the
// same KEYS (the stream, the writer's hash, the trimmed key, the born key)
// and ARGV[1] to ARGV[6]: the batch number, the batch number to forget
// (empty: none), MAXLEN (0: none), the slack, MINID (empty: none), the
// hash's TTL in ms.
//
// newest returns the stream's newest ID, nil if it is empty.
//
// started records that the stream begins with the entry first (as after
// Redis lost it): the born key moves back to just before it if needed, as
// buffered events keep their provisional IDs, from before Redis came back.
//
// finish records the batch's first ID under its number and applies
// retention. more is how many of the batch's events are still to be added
// (beginScript runs before them): trimming counts them and never removes
// the newest entry. When the stream would be longer than MAXLEN plus the
// slack, the oldest entries beyond MAXLEN are removed; entries before MINID
// are removed. The newest ID removed is recorded in the trimmed key, which
// is how readers behind retention learn that they missed events (XTRIM does
// not move XINFO's max-deleted-entry-id). To learn that ID without reading
// every removed entry, trimming by count stops one entry short, reads the
// oldest entry left, and removes it.
const batchLua = idLua + `
local function newest()
  local top = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
  if top[1] then return top[1][1] end
  return nil
end
local function started(first)
  local born = redis.call('GET', KEYS[4])
  local before = pred(first)
  if not born or less(before, born) then redis.call('SET', KEYS[4], before) end
end
local function finish(first, more)
  redis.call('HSET', KEYS[2], ARGV[1], first)
  if ARGV[2] ~= '' then redis.call('HDEL', KEYS[2], ARGV[2]) end
  redis.call('PEXPIRE', KEYS[2], ARGV[6])
  local trimmed = nil
  local n = tonumber(ARGV[3])
  if n > 0 then
    local len = redis.call('XLEN', KEYS[1])
    local k = math.min(len + more - n, len - 1)
    if len + more > n + tonumber(ARGV[4]) and k > 0 then
      if k > 1 then redis.call('XTRIM', KEYS[1], 'MAXLEN', '=', len - k + 1) end
      trimmed = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1][1]
      redis.call('XTRIM', KEYS[1], 'MAXLEN', '=', len - k)
    end
  end
  if ARGV[5] ~= '' then
    local old = redis.call('XREVRANGE', KEYS[1], '(' .. ARGV[5], '-', 'COUNT', 1)
    if old[1] then
      if not trimmed or less(trimmed, old[1][1]) then trimmed = old[1][1] end
      redis.call('XTRIM', KEYS[1], 'MINID', '=', ARGV[5])
    end
  end
  if trimmed then
    local cur = redis.call('GET', KEYS[3])
    if not cur or less(cur, trimmed) then redis.call('SET', KEYS[3], trimmed) end
  end
end
`

// luaScripts are the store's Lua scripts. They are made, and hashed, when
// the store first needs them, all at once: not at init, which every zbridge
// process would pay for (TestInitWork in cmd/zbridge).
type luaScripts struct {
	status         *redis.Script
	position       *redis.Script
	groupRead      *redis.Script
	groupAck       *redis.Script
	registerGroups *redis.Script
	dropTrimmed    *redis.Script
	staleGroups    *redis.Script
	destroyGroup   *redis.Script
	begin          *redis.Script
	append         *redis.Script
	head           *redis.Script
}

var scripts = sync.OnceValue(func() *luaScripts {
	return &luaScripts{
		status:         newStatusScript(),
		position:       newPositionScript(),
		groupRead:      newGroupReadScript(),
		groupAck:       newGroupAckScript(),
		registerGroups: newRegisterGroupsScript(),
		dropTrimmed:    newDropTrimmedScript(),
		staleGroups:    newStaleGroupsScript(),
		destroyGroup:   newDestroyGroupScript(),
		begin:          newBeginScript(),
		append:         newAppendScript(),
		head:           newHeadScript(),
	}
})

// beginScript starts a batch inside the append transaction: it adds the
// first event (XADD *) and runs finish, and answers {prev, first}: prev is
// the stream's newest entry before the batch ('0-0' if none), so that the
// caller knows whether the batch directly follows what it has cached.
//
// KEYS and ARGV[1] to ARGV[6]: see batchLua. ARGV[7]: how many events the
// transaction adds after this one; ARGV[8]: the first event's JSON.
func newBeginScript() *redis.Script {
	return redis.NewScript(batchLua + `
local prev = newest()
local first = redis.call('XADD', KEYS[1], '*', 'e', ARGV[8])
if not prev then started(first) end
finish(first, tonumber(ARGV[7]))
return {prev or '0-0', first}
`)
}

// appendScript adds a batch of events at once, unless the writer's hash
// has its number: it then answers {'dup', 'FIRST LAST'}, the IDs of the
// batch's first and last entries (both FIRST if retention removed the
// first). Otherwise it answers {prev, fallbacks, id...}: prev is the
// stream's newest entry before the batch. An event with an explicit ID
// that Redis refuses (not above the stream's top: another region wrote
// meanwhile) is added with a new ID and counted in fallbacks. Either way it
// then sets the batch's mark, if it has one (positions never move back).
//
// KEYS and ARGV[1] to ARGV[6]: see batchLua; KEYS[5]: the mark's position
// (any key of the prefix when there is none); ARGV[7]: the mark's ID (empty
// for none). Then an ID ('*' or explicit) and the JSON of each event.
func newAppendScript() *redis.Script {
	return redis.NewScript(batchLua + positionLua + `
local function mark()
  if ARGV[7] ~= '' then setpos(KEYS[5], ARGV[7]) end
end
local rec = redis.call('HGET', KEYS[2], ARGV[1])
if rec then
  local got = redis.call('XRANGE', KEYS[1], rec, '+', 'COUNT', (#ARGV - 7) / 2)
  local last = rec
  if got[1] and got[1][1] == rec then last = got[#got][1] end
  mark()
  return {'dup', rec .. ' ' .. last}
end
local prev = newest()
local out = {prev or '0-0', 0}
local fell = 0
for i = 8, #ARGV, 2 do
  local id
  if ARGV[i] == '*' then
    id = redis.call('XADD', KEYS[1], '*', 'e', ARGV[i+1])
  else
    id = redis.pcall('XADD', KEYS[1], ARGV[i], 'e', ARGV[i+1])
    if type(id) == 'table' then
      id = redis.call('XADD', KEYS[1], '*', 'e', ARGV[i+1])
      fell = fell + 1
    end
  end
  out[#out+1] = id
end
out[2] = fell
if not prev then started(out[3]) end
finish(out[3], 0)
mark() -- last: a script that fails before here has not moved the mark
return out
`)
}

// idLua defines functions on stream IDs for scripts. less(a, b) reports
// whether ID a is before b: IDs compare as numbers, by length and then as
// text, neither part having leading zeros; text that is not an ID is before
// every ID. pred(id) returns the ID just before id (of an ID above 0-0).
const idLua = `
local function less(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  if not am then return true end
  if not bm then return false end
  if #am ~= #bm then return #am < #bm end
  if am ~= bm then return am < bm end
  if #as ~= #bs then return #as < #bs end
  return as < bs
end
local function pred(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  if seq ~= '0' then return ms .. '-' .. string.format('%.0f', tonumber(seq) - 1) end
  return string.format('%.0f', tonumber(ms) - 1) .. '-18446744073709551615'
end
`

// result is what writing a batch answered.
type result struct {
	dup       bool
	first     protocol.ID // dup: the batch's first and last IDs
	last      protocol.ID
	prev      protocol.ID
	prevOK    bool // prev is known
	fallbacks int
	ids       []protocol.ID
}

// batchArgs returns ARGV[1] to ARGV[6] of beginScript and appendScript,
// with room for n more.
func (s *Store) batchArgs(b *batch, n int) []any {
	forget := ""
	if b.seq > writerKeep {
		forget = strconv.FormatUint(b.seq-writerKeep, 10)
	}
	minID := ""
	if s.maxAge > 0 {
		minID = strconv.FormatInt(s.now().Add(-s.maxAge).UnixMilli(), 10) + "-0"
	}
	maxLen := s.trimLen()
	args := make([]any, 0, 6+n)
	return append(args, b.seq, forget, maxLen, min(max(maxLen/16, 64), 1024), minID, writerTTL)
}

// eventsJSON returns the JSON of each event, in one buffer.
func eventsJSON(evs []*protocol.Event) [][]byte {
	var buf []byte
	ends := make([]int, len(evs))
	for i, e := range evs {
		buf = protocol.AppendEventJSON(buf, e)
		ends[i] = len(buf)
	}
	out := make([][]byte, len(evs))
	start := 0
	for i := range evs {
		out[i] = buf[start:ends[i]:ends[i]]
		start = ends[i]
	}
	return out
}

// appendArgs returns appendScript's ARGV for b, with the events' own IDs
// (provisional ones, for buffered batches).
func (s *Store) appendArgs(b *batch) []any {
	args := s.batchArgs(b, 1+2*len(b.evs))
	markID := ""
	if b.mark != nil {
		markID = b.mark.id.String()
	}
	args = append(args, markID)
	for i, js := range eventsJSON(b.evs) {
		args = append(args, b.evs[i].ID.String(), js)
	}
	return args
}

// batchKeys are the KEYS of beginScript.
func (s *Store) batchKeys() []string { return []string{s.kEvents, s.kWriter, s.kTrimmed, s.kBorn} }

// appendKeys are the KEYS of appendScript for b.
func (s *Store) appendKeys(b *batch) []string {
	markKey := s.kBorn // not used: no mark
	if b.mark != nil {
		markKey = b.mark.key
	}
	return []string{s.kEvents, s.kWriter, s.kTrimmed, s.kBorn, markKey}
}

// trimLen is the MAXLEN for the next append: MaxEvents, or MaxBytes over
// the mean event size if less; 0 for no limit.
func (s *Store) trimLen() int64 {
	n := s.maxEvents
	if s.maxBytes > 0 {
		byBytes := max(1, s.maxBytes/s.meanSize())
		if n == 0 || byBytes < n {
			n = byBytes
		}
	}
	return n
}

// runAppend writes b, a batch never sent before, in one transaction:
// beginScript, then an XADD for each other event, then its mark if it has
// one. Redis gives the IDs.
func (s *Store) runAppend(ctx context.Context, rdb redis.Cmdable, b *batch) (result, error) {
	js := eventsJSON(b.evs)
	var begin *redis.Cmd
	adds := make([]*redis.StringCmd, len(js)-1)
	_, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		begin = scripts().begin.Eval(ctx, p, s.batchKeys(), append(s.batchArgs(b, 2), len(js)-1, js[0])...)
		for i, j := range js[1:] {
			adds[i] = p.XAdd(ctx, &redis.XAddArgs{Stream: s.kEvents, ID: "*", Values: []any{field, j}})
		}
		if b.mark != nil {
			scripts().position.Eval(ctx, p, []string{b.mark.key}, b.mark.id.String())
		}
		return nil
	})
	if err != nil {
		return result{}, err
	}
	bad := func() (result, error) {
		return result{}, fmt.Errorf("redisstore: unexpected append reply %v", begin.Val())
	}
	v, _ := begin.Slice()
	if len(v) != 2 {
		return bad()
	}
	r := result{prevOK: true, ids: make([]protocol.ID, len(js))}
	prev, _ := v[0].(string)
	first, _ := v[1].(string)
	if r.prev, err = protocol.ParseID(prev); err != nil {
		return bad()
	}
	if r.ids[0], err = protocol.ParseID(first); err != nil {
		return bad()
	}
	for i, c := range adds {
		if r.ids[i+1], err = protocol.ParseID(c.Val()); err != nil {
			return bad()
		}
	}
	return r, nil
}

// parseResult parses appendScript's answer for a batch of n events.
func parseResult(v []any, n int) (result, error) {
	var r result
	bad := func() (result, error) { return result{}, fmt.Errorf("redisstore: unexpected append reply %v", v) }
	if len(v) == 2 && v[0] == "dup" {
		rec, _ := v[1].(string)
		var a, b string
		if _, err := fmt.Sscan(rec, &a, &b); err != nil {
			return bad()
		}
		var err1, err2 error
		r.first, err1 = protocol.ParseID(a)
		r.last, err2 = protocol.ParseID(b)
		if err1 != nil || err2 != nil {
			return bad()
		}
		r.dup = true
		return r, nil
	}
	if len(v) != 2+n {
		return bad()
	}
	prev, _ := v[0].(string)
	fell, ok := v[1].(int64)
	if !ok {
		return bad()
	}
	var err error
	if r.prev, err = protocol.ParseID(prev); err != nil {
		return bad()
	}
	r.prevOK = true
	r.fallbacks = int(fell)
	r.ids = make([]protocol.ID, n)
	for i := range n {
		x, _ := v[2+i].(string)
		if r.ids[i], err = protocol.ParseID(x); err != nil {
			return bad()
		}
	}
	return r, nil
}

// Append implements store.Store. While Redis is unreachable the events are
// accepted with provisional IDs (see the package documentation); when the
// write buffer is full they are dropped and the error wraps ErrBufferFull.
func (s *Store) Append(ctx context.Context, evs []*protocol.Event) error {
	return s.appendMarked(ctx, evs, nil)
}

// AppendMarked implements store.MarkedAppender: the position is set in the
// transaction that writes the events (the last one, for a batch written in
// parts), or with the buffered events while Redis is unreachable.
func (s *Store) AppendMarked(ctx context.Context, evs []*protocol.Event, name string, id protocol.ID) error {
	if len(evs) == 0 {
		return s.SetPosition(ctx, name, id)
	}
	return s.appendMarked(ctx, evs, &mark{key: s.positionKey(name), id: id})
}

func (s *Store) appendMarked(ctx context.Context, evs []*protocol.Event, mk *mark) error {
	if len(evs) == 0 {
		return ctx.Err()
	}
	// The events are the store's now, but the slice is still the caller's
	// (the syslog server clears and reuses it): the buffer, the cache and
	// the orphans keep a copy.
	evs = slices.Clone(evs)
	now := s.now()
	for _, e := range evs {
		if e.Received.IsZero() {
			e.Received = now.UTC()
		}
	}
	s.noteSize(evs)
	for len(evs) > 0 {
		n, size := 0, 0
		for n < len(evs) && n < partEvents && (n == 0 || size < partBytes) {
			size += evs[n].Size()
			n++
		}
		var m *mark
		if n == len(evs) {
			m = mk
		}
		if err := s.appendPart(ctx, evs[:n], m); err != nil {
			return err
		}
		evs = evs[n:]
	}
	return nil
}

// appendPart appends at most one transaction's worth of events.
func (s *Store) appendPart(ctx context.Context, evs []*protocol.Event, mk *mark) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return store.ErrClosed
	}
	if err := s.waitInflightLocked(ctx); err != nil {
		s.mu.Unlock()
		return err
	}
	s.seq++
	b := &batch{seq: s.seq, evs: evs, mark: mk}
	if s.degraded {
		err := s.bufferLocked(b)
		s.mu.Unlock()
		return err
	}
	gen := s.gen
	s.inflight++
	s.mu.Unlock()

	r, err := s.writeBatch(ctx, b)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inflight--
	s.wakeTailLocked()
	switch {
	case err == nil:
		s.nAppended.Add(uint64(len(evs)))
		s.writeErr.Store(false)
		for i, e := range evs {
			e.ID = r.ids[i]
		}
		s.addOwnLocked(gen, r, evs)
		return nil
	case ctx.Err() != nil:
		// The caller gave up; the events may have been written.
		return ctx.Err()
	case unavailable(err):
		if s.closed {
			return store.ErrClosed
		}
		// Written or not, the batch is buffered: the flusher writes it
		// with appendScript, which finds its record if it was written
		// (also if Redis came back while this waited for the appends in
		// flight, and the flusher left degraded mode).
		for !s.degraded || !s.provisional && s.inflight > 0 {
			s.enterDegradedLocked(err)
			if err := s.waitInflightLocked(context.WithoutCancel(ctx)); err != nil {
				return err
			}
		}
		return s.bufferLocked(b)
	default:
		if !s.writeErr.Swap(true) {
			s.log.WithError(err).Error("redis store: append failed")
		}
		return wrap("append", err)
	}
}

// waitInflightLocked waits, while the Store is degraded and has given no
// provisional ID yet, until no append is in flight: one that was in flight
// when Redis went away may still succeed (go-redis retries it, maybe on a
// Redis already back), with IDs Redis gives it then, and provisional IDs
// must come after those, or live readers that passed the provisional IDs
// would miss those events. It releases s.mu while it waits; it returns
// ctx.Err() if ctx ends first, store.ErrClosed if the Store closes.
func (s *Store) waitInflightLocked(ctx context.Context) error {
	for s.degraded && !s.provisional && s.inflight > 0 {
		if s.closed {
			return store.ErrClosed
		}
		ch := s.appended
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
	if s.closed {
		return store.ErrClosed
	}
	return nil
}

// addOwnLocked puts events this process wrote into the cache if they
// directly follow its newest entry (prev, the stream's newest before them),
// or keeps them for when their predecessor arrives; the tail fetches what
// does not fit.
func (s *Store) addOwnLocked(gen uint64, r result, evs []*protocol.Event) {
	s.top = maxID(s.top, evs[len(evs)-1].ID)
	if s.provisional || gen != s.gen || !s.cache.valid || !r.prevOK {
		return
	}
	prev, newest := r.prev, s.cache.newest()
	if prev != newest {
		if newest.Less(prev) && len(s.orphans) < 64 {
			s.orphans[prev] = orphan{evs: evs}
		}
		// The tail may have fetched the start of this batch before the
		// reply came: the rest follows the cache's newest.
		i := sort.Search(len(evs), func(i int) bool { return !evs[i].ID.Less(newest) })
		if prev.Less(newest) && i < len(evs)-1 && evs[i].ID == newest {
			s.addLocked(evs[i+1:])
		}
		return
	}
	s.addLocked(evs)
}

// addLocked adds events that directly follow the cache's newest entry, and
// then any orphans that follow them, and wakes the waiters.
func (s *Store) addLocked(evs []*protocol.Event) {
	for len(evs) > 0 {
		s.cache.add(evs)
		s.last = maxID(s.last, evs[len(evs)-1].ID)
		next := evs[len(evs)-1].ID
		evs = nil
		if o, ok := s.orphans[next]; ok {
			delete(s.orphans, next)
			evs = o.evs
		}
	}
	if s.maxAge > 0 {
		s.cache.dropBefore(protocol.ID{Ms: uint64(max(s.now().Add(-s.maxAge).UnixMilli(), 0))})
	}
	newest := s.cache.newest()
	for prev := range s.orphans {
		if prev.Less(newest) {
			delete(s.orphans, prev) // the tail brought them
		}
	}
	s.wakeLocked()
}

func maxID(a, b protocol.ID) protocol.ID {
	if a.Less(b) {
		return b
	}
	return a
}

// Read implements store.Store. Reads after an ID the tail cache covers are
// served from it without a round trip, also while Redis is unreachable;
// others read the stream with XRANGE.
func (s *Store) Read(ctx context.Context, after protocol.ID, max int, dst []*protocol.Event) ([]*protocol.Event, store.Gap, error) {
	if err := ctx.Err(); err != nil {
		return dst, store.Gap{}, err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return dst, store.Gap{}, store.ErrClosed
	}
	// The cache serves readers inside it, and those at its newest entry
	// unless a newer one is known to exist. Readers beyond it go to Redis:
	// theirs may be an ID the tail has not fetched yet.
	if newest := s.cache.newest(); s.cache.covers(after) &&
		(after.Less(newest) || after == newest && !after.Less(s.last) || s.degraded) {
		var gap store.Gap
		if !after.IsZero() && after.Less(s.born) {
			gap = store.Gap{Missed: true, Through: s.born}
		}
		dst = s.cache.read(after, max, dst)
		s.mu.Unlock()
		s.cacheHits.Add(1)
		return dst, gap, nil
	}
	s.mu.Unlock()
	s.cacheMiss.Add(1)
	return s.readRedis(ctx, after, max, dst)
}

// readRedis reads the stream and its trimming state in one transaction.
func (s *Store) readRedis(ctx context.Context, after protocol.ID, max int, dst []*protocol.Event) ([]*protocol.Event, store.Gap, error) {
	start := "-"
	if !after.IsZero() {
		start = "(" + after.String()
	}
	var rng *redis.XMessageSliceCmd
	var marks *redis.SliceCmd
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		if max > 0 {
			rng = p.XRangeN(ctx, s.kEvents, start, "+", int64(max))
		} else {
			rng = p.XRange(ctx, s.kEvents, start, "+")
		}
		marks = p.MGet(ctx, s.kTrimmed, s.kBorn)
		return nil
	})
	if err != nil {
		return dst, store.Gap{}, wrap("read", err)
	}
	var gap store.Gap
	if !after.IsZero() {
		// Trimmed first, as in the memstore: when both apply, it is the
		// later.
		for _, v := range marks.Val() {
			x, _ := v.(string)
			if id, err := protocol.ParseID(x); err == nil && after.Less(id) {
				gap = store.Gap{Missed: true, Through: id}
				break
			}
		}
	}
	msgs := rng.Val()
	start0 := len(dst)
	for _, m := range msgs {
		dst = append(dst, s.decode(m))
	}
	s.noteSize(dst[start0:])
	return dst, gap, nil
}

// decode turns a stream entry into an event. An entry that is not an
// event's JSON (not written by a Store) still becomes one, unparsed, with
// its fields as text: nothing in the stream is skipped.
func (s *Store) decode(m redis.XMessage) *protocol.Event {
	e := new(protocol.Event)
	id, idErr := protocol.ParseID(m.ID)
	v, ok := m.Values[field].(string)
	if ok && len(m.Values) == 1 {
		if err := json.Unmarshal([]byte(v), e); err == nil && idErr == nil {
			e.ID = id
			return e
		}
	}
	*e = protocol.Event{ID: id, Source: protocol.SourceRegion, Severity: protocol.SevWarning,
		Text: fmt.Sprint(m.Values), Parsed: false, ParseError: "redisstore: stream entry " + m.ID + " is not an event"}
	return e
}

// Wait implements store.Store.
func (s *Store) Wait(ctx context.Context, after protocol.ID) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return store.ErrClosed
	}
	if after.Less(s.last) {
		s.mu.Unlock()
		return nil
	}
	ch := s.notify
	s.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-s.done:
		return store.ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stats implements store.Store. Bytes is Count times the mean size of the
// events this process has seen, an estimate. Appended counts the events
// this Store appended. While Redis is unreachable, Stats reports what the
// Store last read, with Last the newest ID it knows (provisional ones
// included) and Count including the buffered events.
func (s *Store) Stats(ctx context.Context) (store.StreamStats, error) {
	if err := ctx.Err(); err != nil {
		return store.StreamStats{}, err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return store.StreamStats{}, store.ErrClosed
	}
	if s.degraded {
		st := s.stats
		st.Last = maxID(st.Last, s.last)
		st.Count += int64(s.bufN)
		st.Bytes = st.Count * s.meanSize()
		st.Appended = s.nAppended.Load()
		if st.First.IsZero() {
			if e := s.cache.oldest(); e != nil {
				st.First = e.ID
			}
		}
		s.mu.Unlock()
		return st, nil
	}
	s.mu.Unlock()
	var info *redis.XInfoStreamCmd
	var trimmed *redis.StringCmd
	// Each command's own error counts (a missing stream is no error).
	_, _ = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		info = p.XInfoStream(ctx, s.kEvents)
		trimmed = p.Get(ctx, s.kTrimmed)
		return nil
	})
	if err := info.Err(); err != nil && !noSuchKey(err) {
		return store.StreamStats{}, wrap("stats", err)
	}
	if err := trimmed.Err(); err != nil && !errors.Is(err, redis.Nil) {
		return store.StreamStats{}, wrap("stats", err)
	}
	var st store.StreamStats
	if info.Err() == nil {
		v := info.Val()
		st.Count = v.Length
		st.Last, _ = protocol.ParseID(v.LastGeneratedID)
		if v.Length > 0 {
			st.First, _ = protocol.ParseID(v.FirstEntry.ID)
		}
		// Entries deleted by XDEL, not by this package.
		st.Trimmed, _ = protocol.ParseID(v.MaxDeletedEntryID)
	}
	if t, err := protocol.ParseID(trimmed.Val()); err == nil {
		st.Trimmed = maxID(st.Trimmed, t)
	}
	st.Bytes = st.Count * s.meanSize()
	st.Appended = s.nAppended.Load()
	s.mu.Lock()
	s.stats = st
	s.mu.Unlock()
	return st, nil
}
