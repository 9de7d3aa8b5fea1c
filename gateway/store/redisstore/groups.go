package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/zbridge/zbridge/gateway/store"
	"github.com/zbridge/zbridge/protocol"
)

// positionLua defines setpos(key, id), which sets a position unless it
// would move it backwards (see idLua) and answers 1 if it set it.
const positionLua = `
local function setpos(key, id)
  local cur = redis.call('GET', key)
  if cur and not less(cur, id) then return 0 end
  redis.call('SET', key, id)
  return 1
end
`

// positionScript sets a position unless it would move it backwards. KEYS:
// the position. ARGV: the ID.
func newPositionScript() *redis.Script {
	return redis.NewScript(idLua + positionLua + `return setpos(KEYS[1], ARGV[1])`)
}

// positionKey is the key of a durable subscription's (or a spool's) position.
func (s *Store) positionKey(name string) string { return Key(s.prefix, "position", name) }

// SetPosition implements store.Store.
func (s *Store) SetPosition(ctx context.Context, name string, id protocol.ID) error {
	if err := s.checkReachable("set position"); err != nil {
		return err
	}
	err := scripts().position.Run(ctx, s.rdb, []string{s.positionKey(name)}, id.String()).Err()
	if err != nil {
		return wrap("set position", err)
	}
	return nil
}

// Position implements store.Store.
func (s *Store) Position(ctx context.Context, name string) (protocol.ID, bool, error) {
	if err := s.checkReachable("position"); err != nil {
		return protocol.ID{}, false, err
	}
	v, err := s.rdb.Get(ctx, s.positionKey(name)).Result()
	if errors.Is(err, redis.Nil) {
		return protocol.ID{}, false, nil
	}
	if err != nil {
		return protocol.ID{}, false, wrap("position", err)
	}
	id, err := protocol.ParseID(v)
	if err != nil {
		return protocol.ID{}, false, wrap("position", err)
	}
	return id, true, nil
}

// Consumer groups are Redis consumer groups on the event stream.
const (
	groupNoLimit   = 10_000           // entries per read when the caller sets no max
	claimRounds    = 8                // XAUTOCLAIM calls per read at most
	janitorEvery   = time.Minute      // how often one group's idle consumers are removed
	consumerIdle   = 24 * time.Hour   // a consumer with nothing pending, idle this long, is removed
	janitorTimeout = 10 * time.Second // bound on the removal
	janitorPrune   = 1024             // the janitor's records are pruned when this many, or twice as many as last kept
)

// GroupRead implements store.Store with groupReadScript, which claims
// entries idle for claimAfter (XAUTOCLAIM: the idle time is measured by
// Redis's clock) and reads new ones (XREADGROUP). last is the newest entry
// in the stream, or newer if the cache knows one.
//
// A read that fails may have been done, its reply lost: its entries are
// then the consumer's, pending, and nothing would deliver them before
// claimAfter. So its token is kept, and the consumer's next read sends it
// again and gets those entries (see groupReadScript), if Redis had done
// it; go-redis's own attempts after a timeout send the same token. A
// token is this Store's name and the number of the call, so that the
// script can tell an attempt that reached Redis after a later call of the
// consumer, and leave the entries alone.
func (s *Store) GroupRead(ctx context.Context, group, consumer string, start protocol.ID, claimAfter time.Duration,
	max int, dst []*protocol.Event) ([]*protocol.Event, protocol.ID, error) {
	if err := s.checkClosed(); err != nil {
		return dst, protocol.ID{}, err
	}
	gc := groupConsumer{group, consumer}
	s.groupMu.Lock()
	token, ok := s.unread[gc]
	delete(s.unread, gc)
	s.groupMu.Unlock()
	if !ok {
		token = s.writer + ":" + strconv.FormatUint(s.groupCalls.Add(1), 10)
	}
	// What this Store knows is in the stream, taken before the read: an
	// append that lands while the read is on its way is not in what the
	// read saw, and a last past it would have the consumer wait for events
	// after ones the group never delivered to it.
	s.mu.Lock()
	known := s.last
	s.mu.Unlock()
	evs, last, err := s.groupRead(ctx, group, consumer, token, claimAfter, max, dst)
	if isNoGroup(err) {
		startID := "$"
		if !start.IsZero() {
			startID = start.String()
		}
		err = s.createGroup(ctx, group, startID)
		if err == nil || isBusyGroup(err) {
			evs, last, err = s.groupRead(ctx, group, consumer, token, claimAfter, max, dst)
		}
	}
	if err != nil {
		s.groupMu.Lock()
		if len(s.unread) < maxUnread {
			s.unread[gc] = token
		}
		s.groupMu.Unlock()
		return dst, protocol.ID{}, wrap("group read", err)
	}
	if groupReadReturned != nil {
		groupReadReturned()
	}
	last = maxID(last, known)
	s.tidyGroup(group)
	return evs, last, nil
}

// groupReadReturned, when a test sets it, runs after a group read's
// answer came and before GroupRead works out its last: a test appends
// there, as another appender of this Store may.
var groupReadReturned func()

// groupConsumer names a consumer of a group.
type groupConsumer struct{ group, consumer string }

// maxUnread bounds the tokens of failed group reads a Store keeps: a
// consumer that never reads again leaves its token behind.
const maxUnread = 4096

// createGroup creates a consumer group at startID. With MinReplicas it
// waits for the replicas to have it, as for an append: a group lost in a
// failover would be made again at the stream's end, skipping what came
// in between.
func (s *Store) createGroup(ctx context.Context, group, startID string) error {
	if s.minReplicas == 0 {
		return s.rdb.XGroupCreateMkStream(ctx, s.kEvents, group, startID).Err()
	}
	conn, err := s.masterConn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.XGroupCreateMkStream(ctx, s.kEvents, group, startID).Err(); err != nil {
		s.clusterMoved(err)
		return err
	}
	return s.waitReplicas(ctx, conn)
}

// groupReadScript claims and reads a group's entries for a consumer in
// one step, and makes that step idempotent: a read whose reply is lost
// (a timeout, a connection reset) has moved its entries to the
// consumer's pending list, where nothing else delivers them before
// claimAfter; and go-redis sends a command again after such an error (a
// Cluster client even a whole pipeline), or the server runs the first
// attempt late, after the second. So each call carries a token, and the
// script records under the consumer's name, in a hash of the group's, the
// token and the IDs it answered: a call with the recorded token answers
// those entries again (the ones still in the stream) instead of
// delivering more (at most as many as this call asks for: a later call
// may send the token of one that failed, see GroupRead, and ask for fewer;
// the rest then wait for claimAfter).
//
// An attempt may also reach Redis after the consumer's next call was
// done (go-redis gave up on it, and its request was still on the way or
// queued): nobody reads its reply, and the record is the next call's. A
// token is "STORE:N", the Store's name and the number of its call, so
// such an attempt is known by a recorded token of the same Store with a
// higher number: it answers no entries and changes nothing. (Tokens of
// different Stores, or of another form, are not compared: the consumer's
// reads then go on as they come.)
//
// The group's read time (Redis's clock, in ms) is recorded in the
// groups' sorted set, for GroupTTL (sweepGroups).
//
// KEYS: the stream, the group's read records, the groups' read times.
// ARGV: the group, the consumer, claimAfter in ms, most entries,
// XAUTOCLAIM calls at most, the token, the records' TTL in ms. It answers
// {entries, newest}: the entries as XRANGE has them, and the stream's
// newest ID ('0-0' if empty); or the NOGROUP error.
func newGroupReadScript() *redis.Script {
	return redis.NewScript(nowLua + `
local stream, reads = KEYS[1], KEYS[2]
local group, consumer, idle, want, rounds, token = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
local function newest()
  local top = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)
  if top[1] then return top[1][1] end
  return '0-0'
end
local rec = redis.call('HGET', reads, consumer)
if rec and string.sub(rec, 1, #token + 1) == token .. ' ' then
  redis.call('ZADD', KEYS[3], nowMs(), group)
  local out = {}
  for id in string.gmatch(string.sub(rec, #token + 2), '%S+') do
    if #out >= want then break end
    local e = redis.call('XRANGE', stream, id, id)
    if e[1] then out[#out+1] = e[1] end
  end
  return {out, newest()}
end
if rec then
  local rs, rn = string.match(rec, '^(%x+):(%d+) ')
  local cs, cn = string.match(token, '^(%x+):(%d+)$')
  if rs and cs and rs == cs and (#cn < #rn or #cn == #rn and cn < rn) then
    return {{}, newest()}
  end
end
local out, ids = {}, {}
local function add(e)
  -- Entries retention trimmed are reported apart (Redis 7) and leave the
  -- group's pending list: lost to it, as to a reader.
  if type(e[2]) == 'table' then
    out[#out+1] = e
    ids[#ids+1] = e[1]
  end
end
local cursor = '0-0'
for i = 1, rounds do
  local r = redis.pcall('XAUTOCLAIM', stream, group, consumer, idle, cursor, 'COUNT', want - #out)
  if type(r) == 'table' and r.err then return r end
  for _, e in ipairs(r[2]) do add(e) end
  cursor = r[1]
  if cursor == '0-0' or #out >= want then break end
end
if #out < want then
  local r = redis.pcall('XREADGROUP', 'GROUP', group, consumer, 'COUNT', want - #out, 'STREAMS', stream, '>')
  if type(r) == 'table' and r.err then return r end
  if r then
    for _, e in ipairs(r[1][2]) do add(e) end
  end
end
redis.call('HSET', reads, consumer, token .. ' ' .. table.concat(ids, ' '))
redis.call('PEXPIRE', reads, ARGV[7])
redis.call('ZADD', KEYS[3], nowMs(), group)
return {out, newest()}
`)
}

// nowLua defines nowMs(), Redis's clock in Unix milliseconds.
const nowLua = `
local function nowMs()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
`

// groupReadsKey is the key of a group's read records (groupReadScript).
func (s *Store) groupReadsKey(group string) string { return Key(s.prefix, "groupreads", group) }

// groupRead runs groupReadScript with token.
func (s *Store) groupRead(ctx context.Context, group, consumer, token string, claimAfter time.Duration,
	max int, dst []*protocol.Event) ([]*protocol.Event, protocol.ID, error) {
	want := max
	if want <= 0 {
		want = groupNoLimit
	}
	idle := claimAfter.Milliseconds()
	if claimAfter > 0 && idle == 0 {
		idle = 1 // as go-redis rounds it
	}
	v, err := scripts().groupRead.Run(ctx, s.rdb, []string{s.kEvents, s.groupReadsKey(group), s.kGroups},
		group, consumer, idle, want, claimRounds, token, consumerIdle.Milliseconds()).Slice()
	if err != nil {
		return dst, protocol.ID{}, err
	}
	bad := func() error { return fmt.Errorf("redisstore: unexpected group read reply %v", v) }
	if len(v) != 2 {
		return dst, protocol.ID{}, bad()
	}
	entries, ok1 := v[0].([]any)
	top, ok2 := v[1].(string)
	if !ok1 || !ok2 {
		return dst, protocol.ID{}, bad()
	}
	first := len(dst)
	for _, x := range entries {
		m, ok := xMessage(x)
		if !ok {
			return dst[:first], protocol.ID{}, bad()
		}
		dst = append(dst, s.decode(m))
	}
	last, _ := protocol.ParseID(top)
	if n := len(dst); n > first {
		last = maxID(last, dst[n-1].ID)
	}
	s.noteSize(dst[first:])
	return dst, last, nil
}

// xMessage turns an entry of a script's reply, {id, {field, value, ...}},
// into a redis.XMessage.
func xMessage(x any) (redis.XMessage, bool) {
	e, ok := x.([]any)
	if !ok || len(e) != 2 {
		return redis.XMessage{}, false
	}
	id, ok1 := e[0].(string)
	kv, ok2 := e[1].([]any)
	if !ok1 || !ok2 || len(kv)%2 != 0 {
		return redis.XMessage{}, false
	}
	m := redis.XMessage{ID: id, Values: make(map[string]any, len(kv)/2)}
	for i := 0; i < len(kv); i += 2 {
		k, ok := kv[i].(string)
		if !ok {
			return redis.XMessage{}, false
		}
		m.Values[k] = kv[i+1]
	}
	return m, true
}

// groupAckScript acknowledges, for a group, the entries of the IDs given
// that are pending for a consumer (XPENDING with the consumer, then
// XACK), and answers how many it acknowledged: an entry another consumer
// claimed is left to it. A group or stream that is not there has nothing
// pending. KEYS: the stream. ARGV: the group, the consumer, the IDs.
func newGroupAckScript() *redis.Script {
	return redis.NewScript(`
local n = 0
for i = 3, #ARGV do
  local p = redis.pcall('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1, ARGV[2])
  if type(p) == 'table' and p.err then
    if string.sub(p.err, 1, 7) == 'NOGROUP' then return 0 end
    return p
  end
  if p[1] then n = n + redis.call('XACK', KEYS[1], ARGV[1], ARGV[i]) end
end
return n
`)
}

// GroupAck implements store.Store with groupAckScript.
func (s *Store) GroupAck(ctx context.Context, group, consumer string, ids []protocol.ID) (int, error) {
	if err := s.checkClosed(); err != nil {
		return 0, err
	}
	if len(ids) == 0 {
		return 0, nil
	}
	args := make([]any, 0, 2+len(ids))
	args = append(args, group, consumer)
	for _, id := range ids {
		args = append(args, id.String())
	}
	n, err := scripts().groupAck.Run(ctx, s.rdb, []string{s.kEvents}, args...).Int()
	if err != nil {
		return 0, wrap("group ack", err)
	}
	return n, nil
}

// tidyGroup removes, at most once a janitorEvery per group and Store, the
// consumers of a group that have nothing pending and have been idle for
// consumerIdle: each subscriber session is a consumer, and Redis keeps
// consumers until they are deleted.
func (s *Store) tidyGroup(group string) {
	now := time.Now()
	s.groupMu.Lock()
	if now.Sub(s.janitor[group]) < janitorEvery {
		s.groupMu.Unlock()
		return
	}
	s.janitor[group] = now
	if len(s.janitor) >= s.pruneAt {
		// Each group read leaves its name here: forget those not read for
		// a janitor round, so that groups gone do not pile up.
		for g, t := range s.janitor {
			if now.Sub(t) >= janitorEvery {
				delete(s.janitor, g)
			}
		}
		s.pruneAt = max(janitorPrune, 2*len(s.janitor))
	}
	s.groupMu.Unlock()
	ctx, cancel := context.WithTimeout(s.ctx, janitorTimeout)
	defer cancel()
	cs, err := s.rdb.XInfoConsumers(ctx, s.kEvents, group).Result()
	if err != nil {
		return
	}
	for _, c := range cs {
		if c.Pending == 0 && c.Idle >= consumerIdle {
			s.rdb.XGroupDelConsumer(ctx, s.kEvents, group, c.Name)
			s.rdb.HDel(ctx, s.groupReadsKey(group), c.Name)
		}
	}
}

// GroupInfo implements store.GroupInspector (XINFO GROUPS).
func (s *Store) GroupInfo(ctx context.Context, group string) (store.GroupInfo, bool, error) {
	if err := s.checkReachable("group info"); err != nil {
		return store.GroupInfo{}, false, err
	}
	gs, err := s.rdb.XInfoGroups(ctx, s.kEvents).Result()
	if noSuchKey(err) {
		return store.GroupInfo{}, false, nil
	}
	if err != nil {
		return store.GroupInfo{}, false, wrap("group info", err)
	}
	for _, g := range gs {
		if g.Name == group {
			return store.GroupInfo{Pending: int(g.Pending)}, true, nil
		}
	}
	return store.GroupInfo{}, false, nil
}

// The group sweep: every GroupSweep each Store (of every region sharing
// the prefix; what they do is the same, and done once) drops from every
// group's pending list the entries of events retention removed, and
// destroys the groups nothing read for GroupTTL. Redis removes an entry
// it finds deleted only when XAUTOCLAIM passes over it, and keeps a group
// until it is destroyed: without the sweep, a group that a client read
// without acknowledging and left would keep its entries, and itself, for
// good.
//
// A group's read time is its score in {p}:groups, set by each read
// (groupReadScript) by Redis's clock. A group the set does not have
// (created by a version before it) is added at its first sweep, and its
// time counts from then.
const (
	sweepTimeout = 30 * time.Second // bound on one sweep
	sweepPage    = 100              // groups destroyed per call, entries acknowledged per call: 10 times that
	sweepRounds  = 100              // calls of each script per sweep at most
)

// groupLoop sweeps the groups every GroupSweep until Close.
func (s *Store) groupLoop() {
	defer s.wg.Done()
	s.every(s.sweep, sweepTimeout, func(ctx context.Context) error {
		if s.checkReachable("group sweep") != nil {
			return nil // degraded: the next round, once Redis is back
		}
		return s.sweepGroups(ctx)
	}, "sweeping consumer groups failed; tried again every sweep", "consumer groups swept again")
}

// registerGroupsScript adds groups to the read times, at Redis's clock,
// unless they are there. KEYS: the read times. ARGV: the groups.
func newRegisterGroupsScript() *redis.Script {
	return redis.NewScript(nowLua + `
local now = nowMs()
for i = 1, #ARGV do redis.call('ZADD', KEYS[1], 'NX', now, ARGV[i]) end
return #ARGV
`)
}

// dropTrimmedScript acknowledges, for a group, up to a count of the
// entries whose events retention removed (those through the trimmed ID)
// and answers how many. KEYS: the stream. ARGV: the group, the trimmed
// ID, the count.
func newDropTrimmedScript() *redis.Script {
	return redis.NewScript(`
local p = redis.pcall('XPENDING', KEYS[1], ARGV[1], '-', ARGV[2], tonumber(ARGV[3]))
if type(p) == 'table' and p.err then
  if string.sub(p.err, 1, 7) == 'NOGROUP' then return 0 end
  return p
end
if #p == 0 then return 0 end
local ids = {}
for i, e in ipairs(p) do ids[i] = e[1] end
redis.call('XACK', KEYS[1], ARGV[1], unpack(ids))
return #ids
`)
}

// staleGroupsScript answers up to a count of the groups not read for the
// TTL, by Redis's clock. KEYS: the read times. ARGV: the TTL in ms, the
// count.
func newStaleGroupsScript() *redis.Script {
	return redis.NewScript(nowLua + `
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', nowMs() - tonumber(ARGV[1]), 'LIMIT', 0, tonumber(ARGV[2]))
`)
}

// destroyGroupScript destroys a group unless it was read within the TTL
// (or is gone from the read times: another Store destroyed it), with its
// read records, and answers 1 if it did. KEYS: the stream, the read
// times, the group's read records. ARGV: the group, the TTL in ms.
func newDestroyGroupScript() *redis.Script {
	return redis.NewScript(nowLua + `
local read = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not read or nowMs() - tonumber(read) < tonumber(ARGV[2]) then return 0 end
redis.pcall('XGROUP', 'DESTROY', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[3])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
`)
}

// sweepGroups runs one sweep.
func (s *Store) sweepGroups(ctx context.Context) error {
	gs, err := s.rdb.XInfoGroups(ctx, s.kEvents).Result()
	if err != nil && !noSuchKey(err) {
		return err
	}
	if len(gs) > 0 {
		names := make([]any, len(gs))
		for i, g := range gs {
			names[i] = g.Name
		}
		if err := scripts().registerGroups.Run(ctx, s.rdb, []string{s.kGroups}, names...).Err(); err != nil {
			return err
		}
		trimmed, err := s.rdb.Get(ctx, s.kTrimmed).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		if trimmed != "" {
			for _, g := range gs {
				if g.Pending == 0 {
					continue
				}
				for range sweepRounds {
					n, err := scripts().dropTrimmed.Run(ctx, s.rdb, []string{s.kEvents}, g.Name, trimmed, 10*sweepPage).Int()
					if err != nil {
						return err
					}
					if n < 10*sweepPage {
						break
					}
				}
			}
		}
	}
	if s.groupTTL <= 0 {
		return nil
	}
	for range sweepRounds {
		stale, err := scripts().staleGroups.Run(ctx, s.rdb, []string{s.kGroups}, s.groupTTL.Milliseconds(), sweepPage).StringSlice()
		if err != nil {
			return err
		}
		for _, g := range stale {
			n, err := scripts().destroyGroup.Run(ctx, s.rdb, []string{s.kEvents, s.kGroups, s.groupReadsKey(g)},
				g, s.groupTTL.Milliseconds()).Int()
			if err != nil {
				return err
			}
			if n == 1 {
				s.groupMu.Lock()
				delete(s.janitor, g)
				s.groupMu.Unlock()
			}
		}
		if len(stale) < sweepPage {
			break
		}
	}
	return nil
}
