package redisstore

import (
	"context"
	"encoding/json"
	"sort"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/zbridge/zbridge/gateway/store"
)

// sessionKey is the key of one session's record.
func (s *Store) sessionKey(id string) string { return Key(s.prefix, "session", id) }

// PutSession implements store.Store. The record lives for SessionTTL and
// the Store refreshes it until DeleteSession or Close. When Redis is
// unreachable the error wraps ErrUnavailable, and the Store writes the
// record once Redis is back.
func (s *Store) PutSession(ctx context.Context, sess store.Session) error {
	if err := s.checkClosed(); err != nil {
		return err
	}
	data, err := json.Marshal(sess)
	if err != nil {
		return err
	}
	s.sessMu.Lock()
	defer s.sessMu.Unlock()
	s.mine[sess.ID] = data
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, s.sessionKey(sess.ID), data, s.ttl)
		p.ZAdd(ctx, s.kSessions, redis.Z{Member: sess.ID})
		return nil
	})
	if err != nil {
		return wrap("put session", err)
	}
	return nil
}

// DeleteSession implements store.Store. When Redis is unreachable the
// error wraps ErrUnavailable; the record then expires after SessionTTL, as
// the Store no longer refreshes it.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	if err := s.checkClosed(); err != nil {
		return err
	}
	s.sessMu.Lock()
	defer s.sessMu.Unlock()
	delete(s.mine, id)
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, s.sessionKey(id))
		p.ZRem(ctx, s.kSessions, id)
		return nil
	})
	if err != nil {
		return wrap("delete session", err)
	}
	return nil
}

// Sessions implements store.Store. It lists the sessions of every Store
// sharing the prefix whose records have not expired, and removes expired
// ones from the index.
func (s *Store) Sessions(ctx context.Context) ([]store.Session, error) {
	if err := s.checkClosed(); err != nil {
		return nil, err
	}
	ids, err := s.rdb.ZRange(ctx, s.kSessions, 0, -1).Result()
	if err != nil {
		return nil, wrap("sessions", err)
	}
	out := make([]store.Session, 0, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = s.sessionKey(id)
	}
	vals, err := s.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, wrap("sessions", err)
	}
	var gone []any
	for i, v := range vals {
		data, ok := v.(string)
		if !ok {
			gone = append(gone, ids[i])
			continue
		}
		var sess store.Session
		if err := json.Unmarshal([]byte(data), &sess); err != nil {
			s.log.WithError(err).WithField("session", ids[i]).Warn("redis store: unreadable session record")
			continue
		}
		out = append(out, sess)
	}
	if len(gone) > 0 {
		// The owner refreshes the index with each heartbeat, so removing
		// an entry whose record was put again meanwhile is undone soon.
		if err := s.rdb.ZRem(ctx, s.kSessions, gone...).Err(); err != nil {
			s.log.WithError(err).Debug("redis store: pruning the session index failed")
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// refreshLoop extends the life of this Store's session records every
// SessionTTL/3, and writes again those Redis lost or never got.
func (s *Store) refreshLoop() {
	defer s.wg.Done()
	s.every(s.ttl/3, min(s.ttl, attemptLimit), s.refresh,
		"refreshing session records failed; they expire unless redis is back in time", "session records refreshed again")
}

// every runs fn every interval, each run bounded by timeout, until Close.
// The first failure after a success is logged with failed, the first
// success after a failure with ok.
func (s *Store) every(interval, timeout time.Duration, fn func(context.Context) error, failed, ok string) {
	t := time.NewTicker(interval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(s.ctx, timeout)
		err := fn(ctx)
		cancel()
		switch {
		case err != nil && !failing && s.ctx.Err() == nil:
			failing = true
			s.log.WithError(err).Warn("redis store: " + failed)
		case err == nil && failing:
			failing = false
			s.log.Info("redis store: " + ok)
		}
	}
}

// refresh runs one round of refreshLoop.
func (s *Store) refresh(ctx context.Context) error {
	s.sessMu.Lock()
	defer s.sessMu.Unlock()
	if len(s.mine) == 0 {
		return nil
	}
	ids := make([]string, 0, len(s.mine))
	exp := make([]*redis.BoolCmd, 0, len(s.mine))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for id := range s.mine {
			ids = append(ids, id)
			exp = append(exp, p.PExpire(ctx, s.sessionKey(id), s.ttl))
			p.ZAdd(ctx, s.kSessions, redis.Z{Member: id})
		}
		return nil
	})
	if err != nil {
		return err
	}
	var lost []string
	for i, c := range exp {
		if !c.Val() {
			lost = append(lost, ids[i])
		}
	}
	if len(lost) == 0 {
		return nil
	}
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, id := range lost {
			p.Set(ctx, s.sessionKey(id), s.mine[id], s.ttl)
		}
		return nil
	})
	return err
}
