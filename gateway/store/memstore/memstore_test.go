package memstore

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/zbridge/zbridge/gateway/store"
	"github.com/zbridge/zbridge/gateway/store/storetest"
	"github.com/zbridge/zbridge/protocol"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Options{
		New: func(t *testing.T, r storetest.Retention) store.Store {
			return New(Config{MaxEvents: r.MaxEvents, MaxBytes: r.MaxBytes})
		},
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
	if err := s.GroupAck(ctx, "g", []protocol.ID{old[1].ID}); err != nil {
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
	if n := len(s.groups["g"].pending); n != 5 {
		t.Fatalf("%d pending entries, want 5", n)
	}
	if err := s.GroupAck(ctx, "g", idsOf(got)); err != nil {
		t.Fatal(err)
	}
	if p := s.groups["g"].pending; p != nil {
		t.Fatalf("pending after acknowledging all = %v, want nil", p)
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
	for name, err := range map[string]error{
		"GroupRead":   readErr,
		"GroupAck":    s.GroupAck(ctx, "g", nil),
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
