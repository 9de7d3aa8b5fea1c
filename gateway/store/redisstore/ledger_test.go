package redisstore

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/zbridge/zbridge/gateway/store/storetest"
	"github.com/zbridge/zbridge/internal/peer"
	"github.com/zbridge/zbridge/protocol"
)

// TestStatusRegions: two regions (two clients, two Stores) appending to
// one prefix at once get distinct Seqs, from 1 without a gap, each call's
// consecutive, in the stream's order; each reads the other's records.
func TestStatusRegions(t *testing.T) {
	srv := startServer(t, peer.RedisOptions{})
	prefix := srv.prefix()
	a := newStore(t, Config{Client: srv.client(t), Prefix: prefix})
	b := newStore(t, Config{Client: srv.client(t), Prefix: prefix})
	ctx := ctxT(t)
	const calls = 100
	var wg sync.WaitGroup
	for i, s := range []*Store{a, b} {
		wg.Go(func() {
			for k := range calls {
				recs := storetest.StatusRecords(fmt.Sprintf("r%d-%d", i, k), 1+k%2)
				if err := s.AppendStatus(ctx, recs); err != nil {
					t.Errorf("region %d: %v", i, err)
					return
				}
				if len(recs) == 2 && recs[1].Seq != recs[0].Seq+1 {
					t.Errorf("region %d: one call's Seqs %d, %d", i, recs[0].Seq, recs[1].Seq)
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	want := 2 * (calls/2*1 + calls/2*2)
	ra, err := a.StatusRecords(ctx, 0, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	rb, err := b.StatusRecords(ctx, 0, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(ra) != want || len(rb) != want {
		t.Fatalf("regions read %d and %d records, want %d", len(ra), len(rb), want)
	}
	for i := range ra {
		if ra[i].Seq != uint64(i+1) || rb[i] != ra[i] {
			t.Fatalf("record %d: Seq %d in one region, %+v in the other", i, ra[i].Seq, rb[i])
		}
	}
	// The stream's entry IDs are the Seqs, in order.
	msgs, err := srv.client(t).XRange(ctx, Key(prefix, "status"), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range msgs {
		if want := fmt.Sprintf("%d-0", i+1); m.ID != want {
			t.Fatalf("entry %d has ID %s, want %s", i, m.ID, want)
		}
	}
}

// TestStatusSentAgain: a script call sent again with the same number (as
// go-redis does after losing a reply) answers the first Seq it gave and
// adds nothing; another call goes on after it.
func TestStatusSentAgain(t *testing.T) {
	srv := startServer(t, peer.RedisOptions{})
	s := newStore(t, Config{Client: srv.client(t), Prefix: srv.prefix()})
	ctx := ctxT(t)
	if err := s.AppendStatus(ctx, storetest.StatusRecords("x", 2)); err != nil {
		t.Fatal(err)
	}
	n := s.statusCalls.Load()
	recs := storetest.StatusRecords("y", 3)
	first, err := s.appendStatusPart(ctx, recs)
	if err != nil || first != 3 {
		t.Fatalf("appendStatusPart = %d, %v; want 3", first, err)
	}
	// The same call again.
	s.statusCalls.Store(n)
	if again, err := s.appendStatusPart(ctx, recs); err != nil || again != 3 {
		t.Fatalf("the call sent again = %d, %v; want 3", again, err)
	}
	if l := s.rdb.XLen(ctx, s.kStatus).Val(); l != 5 {
		t.Fatalf("the stream holds %d entries, want 5", l)
	}
	more := storetest.StatusRecords("z", 1)
	if err := s.AppendStatus(ctx, more); err != nil || more[0].Seq != 6 {
		t.Fatalf("next call: Seq %d, %v; want 6", more[0].Seq, err)
	}
}

// TestStatusForeignEntries: entries not written by a Store are left out
// of StatusRecords, and Seqs go on after the stream's last ID.
func TestStatusForeignEntries(t *testing.T) {
	srv := startServer(t, peer.RedisOptions{})
	c := srv.client(t)
	s := newStore(t, Config{Client: c, Prefix: srv.prefix()})
	ctx := ctxT(t)
	if err := s.AppendStatus(ctx, storetest.StatusRecords("a", 1)); err != nil {
		t.Fatal(err)
	}
	for _, e := range []struct{ id, field, value string }{{"2-0", "x", "{}"}, {"3-0", "r", "not json"}, {"3-1", "r", "{}"}} {
		if err := c.XAdd(ctx, &redis.XAddArgs{Stream: s.kStatus, ID: e.id, Values: []any{e.field, e.value}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	recs := storetest.StatusRecords("b", 1)
	if err := s.AppendStatus(ctx, recs); err != nil || recs[0].Seq != 4 {
		t.Fatalf("AppendStatus after foreign entries: Seq %d, %v; want 4", recs[0].Seq, err)
	}
	got, err := s.StatusRecords(ctx, 0, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Seq != 1 || got[1].Seq != 4 || got[1].Component != "b-0" {
		t.Fatalf("StatusRecords = %+v, want Seqs 1 and 4", got)
	}
}

// TestStatusRedisDown: status records are not buffered: with Redis
// unreachable both calls fail at once with ErrUnavailable, and work again
// when it is back.
func TestStatusRedisDown(t *testing.T) {
	srv := startServer(t, peer.RedisOptions{AppendOnly: true})
	c := srv.client(t, func(o *redis.UniversalOptions) { o.DialerRetries = 1 })
	s := newStore(t, Config{Client: c, Prefix: srv.prefix(), TailBlock: 100 * time.Millisecond})
	ctx := ctxT(t)
	if err := s.AppendStatus(ctx, storetest.StatusRecords("up", 2)); err != nil {
		t.Fatal(err)
	}
	srv.p.Stop()
	waitFor(t, "the store to be degraded", 30*time.Second, func() bool {
		s.Append(ctx, storetest.Events("e", 1)) // finds Redis gone
		return s.Health().Degraded
	})
	start := time.Now()
	if err := s.AppendStatus(ctx, storetest.StatusRecords("down", 1)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("AppendStatus with redis down = %v, want ErrUnavailable", err)
	}
	if _, err := s.StatusRecords(ctx, 0, 0, nil); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("StatusRecords with redis down = %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("failing took %v, not at once", d)
	}
	srv.p.Restart()
	waitFor(t, "the store to recover", 60*time.Second, func() bool { return !s.Health().Degraded })
	recs := storetest.StatusRecords("back", 1)
	if err := s.AppendStatus(ctx, recs); err != nil || recs[0].Seq != 3 {
		t.Fatalf("AppendStatus after redis is back: Seq %d, %v; want 3", recs[0].Seq, err)
	}
	got, err := s.StatusRecords(ctx, 0, 0, nil)
	if err != nil || len(got) != 3 {
		t.Fatalf("StatusRecords = %d records, %v; want 3", len(got), err)
	}
}

// TestStatusBigCall: a call of more than statusPart records is written in
// parts, and reads back whole, in pages.
func TestStatusBigCall(t *testing.T) {
	srv := startServer(t, peer.RedisOptions{})
	s := newStore(t, Config{Client: srv.client(t), Prefix: srv.prefix()})
	ctx := ctxT(t)
	recs := storetest.StatusRecords("big", 2*statusPart+statusPage/3)
	if err := s.AppendStatus(ctx, recs); err != nil {
		t.Fatal(err)
	}
	for i, r := range recs {
		if r.Seq != uint64(i+1) {
			t.Fatalf("record %d: Seq %d", i, r.Seq)
		}
	}
	for _, max := range []int{0, statusPage + 1, 10} {
		got, err := s.StatusRecords(ctx, 5, max, nil)
		if err != nil {
			t.Fatal(err)
		}
		want := len(recs) - 5
		if max > 0 {
			want = min(want, max)
		}
		if len(got) != want || got[0].Seq != 6 || got[len(got)-1].Seq != uint64(5+want) {
			t.Fatalf("max %d: %d records, want %d from Seq 6", max, len(got), want)
		}
	}
	var none []protocol.StatusRecord
	if got, err := s.StatusRecords(ctx, ^uint64(0), 0, none); err != nil || len(got) != 0 {
		t.Fatalf("after the largest Seq: %v, %v", got, err)
	}
}
