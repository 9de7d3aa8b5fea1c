package redisstore

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

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
var positionScript = redis.NewScript(idLua + positionLua + `return setpos(KEYS[1], ARGV[1])`)

// positionKey is the key of a durable subscription's (or a spool's) position.
func (s *Store) positionKey(name string) string { return Key(s.prefix, "position", name) }

// SetPosition implements store.Store.
func (s *Store) SetPosition(ctx context.Context, name string, id protocol.ID) error {
	if err := s.checkReachable("set position"); err != nil {
		return err
	}
	err := positionScript.Run(ctx, s.rdb, []string{s.positionKey(name)}, id.String()).Err()
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
)

// GroupRead implements store.Store with XAUTOCLAIM (the idle time is
// measured by Redis's clock) and XREADGROUP. last is the newest entry in the
// stream, or newer if the cache knows one.
func (s *Store) GroupRead(ctx context.Context, group, consumer string, start protocol.ID, claimAfter time.Duration,
	max int, dst []*protocol.Event) ([]*protocol.Event, protocol.ID, error) {
	if err := s.checkClosed(); err != nil {
		return dst, protocol.ID{}, err
	}
	evs, last, err := s.groupRead(ctx, group, consumer, claimAfter, max, dst)
	if isNoGroup(err) {
		startID := "$"
		if !start.IsZero() {
			startID = start.String()
		}
		err = s.rdb.XGroupCreateMkStream(ctx, s.kEvents, group, startID).Err()
		if err == nil || isBusyGroup(err) {
			evs, last, err = s.groupRead(ctx, group, consumer, claimAfter, max, dst)
		}
	}
	if err != nil {
		return dst, protocol.ID{}, wrap("group read", err)
	}
	s.mu.Lock()
	last = maxID(last, s.last)
	s.mu.Unlock()
	s.tidyGroup(group)
	return evs, last, nil
}

func (s *Store) groupRead(ctx context.Context, group, consumer string, claimAfter time.Duration,
	max int, dst []*protocol.Event) ([]*protocol.Event, protocol.ID, error) {
	want := max
	if want <= 0 {
		want = groupNoLimit
	}
	first := len(dst)
	cursor := "0-0"
	for range claimRounds {
		msgs, next, _, err := s.rdb.XAutoClaimWithDeleted(ctx, &redis.XAutoClaimArgs{
			Stream: s.kEvents, Group: group, Consumer: consumer,
			MinIdle: claimAfter, Start: cursor, Count: int64(want - (len(dst) - first)),
		}).Result()
		if err != nil {
			return dst, protocol.ID{}, err
		}
		// Entries retention trimmed are reported apart (Redis 7) and
		// leave the group's pending list: lost to it, as to a reader.
		for _, m := range msgs {
			if m.Values != nil {
				dst = append(dst, s.decode(m))
			}
		}
		cursor = next
		if cursor == "0-0" || len(dst)-first >= want {
			break
		}
	}
	var read *redis.XStreamSliceCmd
	var top *redis.XMessageSliceCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		if n := want - (len(dst) - first); n > 0 {
			read = p.XReadGroup(ctx, &redis.XReadGroupArgs{
				Group: group, Consumer: consumer, Streams: []string{s.kEvents, ">"},
				Count: int64(n), Block: -1,
			})
		}
		top = p.XRevRangeN(ctx, s.kEvents, "+", "-", 1)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return dst, protocol.ID{}, err
	}
	if read != nil {
		for _, st := range read.Val() {
			for _, m := range st.Messages {
				dst = append(dst, s.decode(m))
			}
		}
	}
	var last protocol.ID
	if t := top.Val(); len(t) > 0 {
		last, _ = protocol.ParseID(t[0].ID)
	}
	if n := len(dst); n > first {
		last = maxID(last, dst[n-1].ID)
	}
	s.noteSize(dst[first:])
	return dst, last, nil
}

// GroupAck implements store.Store.
func (s *Store) GroupAck(ctx context.Context, group string, ids []protocol.ID) error {
	if err := s.checkClosed(); err != nil {
		return err
	}
	if len(ids) == 0 {
		return nil
	}
	xs := make([]string, len(ids))
	for i, id := range ids {
		xs[i] = id.String()
	}
	if err := s.rdb.XAck(ctx, s.kEvents, group, xs...).Err(); err != nil {
		return wrap("group ack", err)
	}
	return nil
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
		}
	}
}
