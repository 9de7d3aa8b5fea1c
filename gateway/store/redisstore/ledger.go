package redisstore

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/zbridge/zbridge/protocol"
)

// This file keeps the status records (store.Ledger): see the package doc,
// "Status records".

// statusField is the name of the one field of a status stream entry: the
// record's JSON.
const statusField = "r"

// statusPart is how many status records one script call appends at most:
// a larger AppendStatus is written in parts.
const statusPart = 1024

// statusPage is how many status records one XRANGE reads at most.
const statusPage = 4096

// statusScript appends status records to the status stream, each under
// the ID SEQ-0, SEQ following the stream's last generated ID, and records
// the call's number in the writer's hash, mapped to its first Seq, in the
// same step; a call whose number is there already (go-redis sent it again
// after losing the reply) answers that Seq and adds nothing. Several
// regions appending at once get distinct Seqs, in stream order: a script
// runs alone. The Seq is kept as a Lua number, exact up to 2^53.
//
// KEYS: the stream, the writer's status hash. ARGV: the call's number, the
// number to forget (empty: none), the hash's TTL in ms, then each record's
// JSON. It answers the first record's Seq.
func newStatusScript() *redis.Script {
	return redis.NewScript(`
local stream, calls = KEYS[1], KEYS[2]
local done = redis.call('HGET', calls, ARGV[1])
if done then return done end
local last = 0
if redis.call('EXISTS', stream) == 1 then
  local info = redis.call('XINFO', 'STREAM', stream)
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' then
      last = tonumber(string.match(info[i+1], '^(%d+)-'))
      break
    end
  end
end
local first = string.format('%.0f', last + 1)
for i = 4, #ARGV do
  redis.call('XADD', stream, string.format('%.0f', last + i - 3) .. '-0', 'r', ARGV[i])
end
redis.call('HSET', calls, ARGV[1], first)
if ARGV[2] ~= '' then redis.call('HDEL', calls, ARGV[2]) end
redis.call('PEXPIRE', calls, ARGV[3])
return first
`)
}

// AppendStatus implements store.Ledger. The records go to the status
// stream with Seqs given by Redis, atomically across the regions sharing
// the prefix; with MinReplicas the call returns once that many replicas
// have them, as an append does. It is not buffered: while Redis is
// unreachable (the Store degraded) it fails at once with an error
// wrapping ErrUnavailable, and the caller tries again later. An error
// other than an invalid record may leave the records stored (their reply,
// or the replicas' acknowledgement, was lost): a caller that tries again
// may store them twice, under two Seqs. A call of more than 1024 records
// is written in parts, each with consecutive Seqs.
func (s *Store) AppendStatus(ctx context.Context, recs []*protocol.StatusRecord) error {
	for i, r := range recs {
		if err := r.Validate(); err != nil {
			return fmt.Errorf("redisstore: append status: record %d: %w", i, err)
		}
	}
	if len(recs) == 0 {
		return ctx.Err()
	}
	if err := s.checkReachable("append status"); err != nil {
		return err
	}
	seqs := make([]uint64, len(recs))
	for done := 0; done < len(recs); {
		part := recs[done:min(len(recs), done+statusPart)]
		first, err := s.appendStatusPart(ctx, part)
		if err != nil {
			return err
		}
		for i := range part {
			seqs[done+i] = first + uint64(i)
		}
		done += len(part)
	}
	for i, r := range recs {
		r.Seq = seqs[i]
	}
	return nil
}

// appendStatusPart runs statusScript for recs and returns the first Seq.
func (s *Store) appendStatusPart(ctx context.Context, recs []*protocol.StatusRecord) (uint64, error) {
	n := s.statusCalls.Add(1)
	forget := ""
	if n > writerKeep {
		forget = strconv.FormatUint(n-writerKeep, 10)
	}
	args := make([]any, 0, 3+len(recs))
	args = append(args, n, forget, writerTTL)
	for _, r := range recs {
		c := *r
		c.Seq = 0 // the entry ID says it
		c.Time = c.Time.UTC()
		js, err := json.Marshal(&c)
		if err != nil {
			return 0, fmt.Errorf("redisstore: append status: %w", err)
		}
		args = append(args, js)
	}
	keys := []string{s.kStatus, s.kStatusWriter}
	var v string
	var err error
	if s.minReplicas == 0 {
		v, err = scripts().status.Run(ctx, s.rdb, keys, args...).Text()
	} else {
		var conn *redis.Conn
		if conn, err = s.masterConn(ctx); err == nil {
			v, err = scripts().status.Run(ctx, conn, keys, args...).Text()
			if err == nil {
				err = s.waitReplicas(ctx, conn)
			}
			conn.Close()
			if err != nil {
				s.clusterMoved(err)
			}
		}
	}
	if err != nil {
		return 0, wrap("append status", err)
	}
	first, err := strconv.ParseUint(v, 10, 64)
	if err != nil || first == 0 {
		return 0, fmt.Errorf("redisstore: append status: unexpected reply %q", v)
	}
	return first, nil
}

// StatusRecords implements store.Ledger. A max of zero or less means no
// limit, as for Read. While Redis is unreachable it fails at once with an
// error wrapping ErrUnavailable. An entry that is not a status record
// (not written by a Store) is logged and left out.
func (s *Store) StatusRecords(ctx context.Context, after uint64, max int, dst []protocol.StatusRecord) ([]protocol.StatusRecord, error) {
	if err := s.checkReachable("status records"); err != nil {
		return dst, err
	}
	if after == math.MaxUint64 {
		return dst, nil
	}
	start := strconv.FormatUint(after+1, 10) + "-0"
	for left := max; max <= 0 || left > 0; {
		count := statusPage
		if max > 0 {
			count = min(count, left)
		}
		msgs, err := s.rdb.XRangeN(ctx, s.kStatus, start, "+", int64(count)).Result()
		if err != nil {
			return dst, wrap("status records", err)
		}
		for _, m := range msgs {
			if r, ok := s.statusRecord(m); ok {
				dst = append(dst, r)
				left--
			}
		}
		if len(msgs) < count {
			break
		}
		start = "(" + msgs[len(msgs)-1].ID
	}
	return dst, nil
}

// statusRecord decodes an entry of the status stream.
func (s *Store) statusRecord(m redis.XMessage) (protocol.StatusRecord, bool) {
	var r protocol.StatusRecord
	id, err := protocol.ParseID(m.ID)
	js, ok := m.Values[statusField].(string)
	if err == nil && (id.Seq != 0 || !ok) {
		err = fmt.Errorf("not a status record")
	}
	if err == nil {
		err = json.Unmarshal([]byte(js), &r)
	}
	if err != nil {
		s.log.WithError(err).WithField("entry", m.ID).Warn("redis store: unreadable entry in the status stream left out")
		return r, false
	}
	r.Seq = id.Ms
	return r, true
}
