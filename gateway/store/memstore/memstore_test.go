package memstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/zbridge/zbridge/gateway/store"
	"github.com/zbridge/zbridge/gateway/store/storetest"
	"github.com/zbridge/zbridge/protocol"
)

func TestConformance(t *testing.T) {
	var clk storetest.SkipClock // the group tests skip their idle times
	storetest.Run(t, storetest.Options{
		New: func(t *testing.T, r storetest.Retention) store.Store {
			return New(Config{MaxEvents: r.MaxEvents, MaxBytes: r.MaxBytes, GroupTTL: r.GroupTTL, Now: clk.Now})
		},
		Skip: clk.Skip,
	})
}

// TestConformanceCold runs the suite with a cache of 3 events: nearly
// every event is read back from the encoded, cold part. The full suite
// only (CI): -short runs TestConformance, and keeps under its budget.
func TestConformanceCold(t *testing.T) {
	if testing.Short() {
		t.Skip("the conformance suite again, with a cache of 3 events: in the full suite only")
	}
	var clk storetest.SkipClock
	storetest.Run(t, storetest.Options{
		New: func(t *testing.T, r storetest.Retention) store.Store {
			return New(Config{MaxEvents: r.MaxEvents, MaxBytes: r.MaxBytes, GroupTTL: r.GroupTTL, CacheEvents: 3, Now: clk.Now})
		},
		Skip: clk.Skip,
	})
}

// clock is a test clock that moves only when told.
type clock struct {
	mu  sync.Mutex // guards now
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// TestGroupClock: idle times are measured by Config.Now.
func TestGroupClock(t *testing.T) {
	clk := &clock{now: time.Date(2026, 11, 22, 5, 0, 0, 0, time.UTC)}
	s := New(Config{Now: clk.Now})
	defer s.Close()
	ctx := context.Background()
	s.GroupRead(ctx, "g", "a", protocol.ID{}, time.Minute, 0, nil)
	evs := storetest.Events("e", 3)
	if err := s.Append(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := s.GroupRead(ctx, "g", "a", protocol.ID{}, time.Minute, 0, nil); len(got) != 3 {
		t.Fatalf("a read %d events, want 3", len(got))
	}
	clk.Add(time.Minute - time.Millisecond)
	if got, _, _ := s.GroupRead(ctx, "g", "b", protocol.ID{}, time.Minute, 0, nil); len(got) != 0 {
		t.Fatalf("b claimed %d events idle under a minute", len(got))
	}
	clk.Add(time.Millisecond)
	got, _, _ := s.GroupRead(ctx, "g", "b", protocol.ID{}, time.Minute, 2, nil)
	if len(got) != 2 || got[0] != evs[0] || got[1] != evs[1] {
		t.Fatalf("b claimed %v, want the two oldest", got)
	}
}

// TestGroupTrimmedPending: entries for events retention trimmed are
// dropped; the group holds only delivered, unacknowledged, retained events.
func TestGroupTrimmedPending(t *testing.T) {
	clk := &clock{now: time.Date(2026, 11, 22, 5, 0, 0, 0, time.UTC)}
	s := New(Config{MaxEvents: 5, Now: clk.Now})
	defer s.Close()
	ctx := context.Background()
	s.GroupRead(ctx, "g", "a", protocol.ID{}, time.Second, 0, nil)
	old := storetest.Events("old", 4)
	if err := s.Append(ctx, old); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := s.GroupRead(ctx, "g", "a", protocol.ID{}, time.Second, 0, nil); len(got) != 4 {
		t.Fatalf("a read %d events, want 4", len(got))
	}
	if _, err := s.GroupAck(ctx, "g", "a", []protocol.ID{old[1].ID}); err != nil {
		t.Fatal(err)
	}
	fresh := storetest.Events("new", 3) // trims old[0] and old[1]
	if err := s.Append(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Second)
	got, _, _ := s.GroupRead(ctx, "g", "b", protocol.ID{}, time.Second, 0, nil)
	want := []*protocol.Event{old[2], old[3], fresh[0], fresh[1], fresh[2]}
	if len(got) != len(want) {
		t.Fatalf("b got %d events, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("b's event %d = %v, want %v", i, got[i].Text, want[i].Text)
		}
	}
	if n := len(s.groups["g"].entries); n != 5 {
		t.Fatalf("%d pending entries, want 5", n)
	}
	if _, err := s.GroupAck(ctx, "g", "b", idsOf(got)); err != nil {
		t.Fatal(err)
	}
	if g := s.groups["g"]; len(g.entries) != 0 || g.byAt.head != nil || g.byID.head != nil || g.heapIdx >= 0 || len(s.trimHeap) != 0 {
		t.Fatalf("pending after acknowledging all: %d entries, lists %v %v, heap place %d of %d",
			len(g.entries), g.byAt.head, g.byID.head, g.heapIdx, len(s.trimHeap))
	}
}

func idsOf(evs []*protocol.Event) []protocol.ID {
	ids := make([]protocol.ID, len(evs))
	for i, e := range evs {
		ids[i] = e.ID
	}
	return ids
}

// TestClosedGroups: after Close, positions and groups return ErrClosed.
func TestClosedGroups(t *testing.T) {
	s := New(Config{})
	s.Close()
	ctx := context.Background()
	_, _, readErr := s.GroupRead(ctx, "g", "a", protocol.ID{}, time.Second, 0, nil)
	_, _, posErr := s.Position(ctx, "p")
	_, ackErr := s.GroupAck(ctx, "g", "a", nil)
	for name, err := range map[string]error{
		"GroupRead":   readErr,
		"GroupAck":    ackErr,
		"SetPosition": s.SetPosition(ctx, "p", protocol.ID{Ms: 1}),
		"Position":    posErr,
	} {
		if !errors.Is(err, store.ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
}

func BenchmarkAppendRead(b *testing.B) {
	s := New(Config{MaxEvents: 100000})
	batch := storetest.Events("bench", 256)
	ctx := context.Background()
	var buf []*protocol.Event
	var after protocol.ID
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += len(batch) {
		evs := make([]*protocol.Event, len(batch))
		for j := range batch {
			e := *batch[j]
			evs[j] = &e
		}
		if err := s.Append(ctx, evs); err != nil {
			b.Fatal(err)
		}
		buf, _, _ = s.Read(ctx, after, 256, buf[:0])
		after = buf[len(buf)-1].ID
	}
}

// TestStatusCap: beyond MaxStatusRecords the oldest status records are
// dropped and counted; a read from before them starts at the oldest kept,
// and the array does not grow with what was dropped.
func TestStatusCap(t *testing.T) {
	s := New(Config{MaxStatusRecords: 5})
	defer s.Close()
	ctx := context.Background()
	for _, n := range []int{3, 1, 6, 2} { // 12 records
		if err := s.AppendStatus(ctx, storetest.StatusRecords("c", n)); err != nil {
			t.Fatal(err)
		}
	}
	if st := s.StatusStats(); st != (StatusStats{First: 8, Last: 12, Count: 5, Dropped: 7}) {
		t.Fatalf("StatusStats = %+v", st)
	}
	for _, tc := range []struct {
		name  string
		after uint64
		first uint64
	}{
		{"FromZero", 0, 8},
		{"FromDropped", 3, 8},
		{"FromLastDropped", 7, 8},
		{"FromKept", 9, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.StatusRecords(ctx, tc.after, 0, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) == 0 || got[0].Seq != tc.first || got[len(got)-1].Seq != 12 {
				t.Fatalf("read after %d: %d records from Seq %v, want %d to 12", tc.after, len(got), got, tc.first)
			}
		})
	}
	for range 5000 {
		if err := s.AppendStatus(ctx, storetest.StatusRecords("m", 1)); err != nil {
			t.Fatal(err)
		}
	}
	s.ledger.mu.RLock()
	n := len(s.ledger.recs)
	s.ledger.mu.RUnlock()
	if n > 2*1024 {
		t.Fatalf("%d records in the array for 5 kept", n)
	}
	if st := s.StatusStats(); st.Count != 5 || st.Last != 5012 || st.Dropped != 5007 {
		t.Fatalf("StatusStats = %+v", st)
	}
}

// TestApplyStatus: replayed records keep their Seqs, must rise, and the
// next append goes on after them.
func TestApplyStatus(t *testing.T) {
	s := New(Config{})
	defer s.Close()
	recs := []protocol.StatusRecord{*storetest.StatusRecords("a", 1)[0], *storetest.StatusRecords("b", 1)[0]}
	recs[0].Seq, recs[1].Seq = 4, 9
	if err := s.ApplyStatus(recs); err != nil {
		t.Fatal(err)
	}
	if err := s.ApplyStatus(recs[1:]); !errors.Is(err, ErrBadChange) {
		t.Fatalf("replaying Seq 9 again: %v, want ErrBadChange", err)
	}
	more := storetest.StatusRecords("c", 1)
	if err := s.AppendStatus(context.Background(), more); err != nil {
		t.Fatal(err)
	}
	if more[0].Seq != 10 {
		t.Fatalf("Seq after replay = %d, want 10", more[0].Seq)
	}
}

// groupWithPending returns a store whose group "g" has n entries pending
// for consumer "a", delivered just now, and their IDs.
func groupWithPending(b *testing.B, n int) (*Store, []protocol.ID) {
	b.Helper()
	s := New(Config{MaxEvents: n + 1024})
	b.Cleanup(func() { s.Close() })
	ctx := context.Background()
	for i := 0; i < n; i += 10_000 {
		if err := s.Append(ctx, storetest.Events("p", min(10_000, n-i))); err != nil {
			b.Fatal(err)
		}
	}
	evs, _, err := s.GroupRead(ctx, "g", "a", protocol.ID{Seq: 1}, time.Hour, 0, nil)
	if err != nil || len(evs) != n {
		b.Fatalf("GroupRead: %d events, %v", len(evs), err)
	}
	return s, idsOf(evs)
}

// BenchmarkGroupReadPending: a group read, of a group holding many
// entries none of which is idle, costs what it returns (it took 4 to 10 ms
// at a million pending, under the store's lock, when it looked at every
// entry).
func BenchmarkGroupReadPending(b *testing.B) {
	for _, n := range []int{1_000, 1_000_000} {
		b.Run(fmt.Sprint("pending=", n), func(b *testing.B) {
			s, _ := groupWithPending(b, n)
			ctx := context.Background()
			b.ResetTimer()
			for range b.N {
				s.GroupRead(ctx, "g", "b", protocol.ID{Seq: 1}, time.Hour, 512, nil)
			}
		})
	}
}

// BenchmarkGroupAckPending: acknowledging one entry of a group holding
// many costs a lookup (it rewrote the pending list, ~6 ms at a million).
func BenchmarkGroupAckPending(b *testing.B) {
	for _, n := range []int{1_000, 1_000_000} {
		b.Run(fmt.Sprint("pending=", n), func(b *testing.B) {
			s, ids := groupWithPending(b, n)
			ctx := context.Background()
			b.ResetTimer()
			for i := range b.N {
				if i%n == 0 && i > 0 {
					b.StopTimer()
					s, ids = groupWithPending(b, n)
					b.StartTimer()
				}
				s.GroupAck(ctx, "g", "a", ids[len(ids)-1-i%n:len(ids)-i%n])
			}
		})
	}
}
