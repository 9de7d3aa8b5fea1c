package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zbridge/zbridge/gateway/store"
	"github.com/zbridge/zbridge/protocol"
)

// The conformance tests of store.Ledger, which every store of this module
// implements.
var ledgerTests = []struct {
	name string
	fn   func(*testing.T, Options)
}{
	{"LedgerAppendOne", testLedgerOne},
	{"LedgerAppendMany", testLedgerMany},
	{"LedgerContentPreserved", testLedgerContent},
	{"LedgerPaging", testLedgerPaging},
	{"LedgerInvalidRefused", testLedgerInvalid},
	{"LedgerConcurrentAppenders", testLedgerConcurrent},
	{"LedgerBeyondEventRetention", testLedgerRetention},
	{"LedgerReopen", testLedgerReopen},
	{"LedgerClosed", testLedgerClosed},
}

// StatusRecords returns n valid status records for components
// "prefix-i", alternately DOWN and UP, a second apart.
func StatusRecords(prefix string, n int) []*protocol.StatusRecord {
	base := time.Date(2026, 3, 1, 8, 0, 0, 123456789, time.UTC)
	out := make([]*protocol.StatusRecord, n)
	for i := range out {
		st := protocol.StatusDown
		if i%2 == 1 {
			st = protocol.StatusUp
		}
		out[i] = &protocol.StatusRecord{
			Component: fmt.Sprintf("%s-%d", prefix, i),
			Status:    st,
			Time:      base.Add(time.Duration(i) * time.Second),
			Change:    "probe-failed",
			Rule:      "probe:" + prefix,
			Detail:    fmt.Sprintf("record %d of %s", i, prefix),
		}
	}
	return out
}

// ledgerOf returns s as a store.Ledger.
func ledgerOf(t *testing.T, s store.Store) store.Ledger {
	t.Helper()
	l, ok := s.(store.Ledger)
	if !ok {
		t.Fatalf("%T is not a store.Ledger", s)
	}
	return l
}

// appendStatus appends recs and fails the test on an error.
func appendStatus(t *testing.T, l store.Ledger, recs []*protocol.StatusRecord) {
	t.Helper()
	if err := l.AppendStatus(ctx(t), recs); err != nil {
		t.Fatalf("AppendStatus: %v", err)
	}
}

// allStatus reads every record after `after`, a page of 7 at a time.
func allStatus(t *testing.T, l store.Ledger, after uint64) []protocol.StatusRecord {
	t.Helper()
	var out []protocol.StatusRecord
	for {
		n := len(out)
		var err error
		out, err = l.StatusRecords(ctx(t), after, 7, out)
		if err != nil {
			t.Fatalf("StatusRecords: %v", err)
		}
		if len(out) == n {
			return out
		}
		if len(out)-n > 7 {
			t.Fatalf("StatusRecords(max 7) returned %d records", len(out)-n)
		}
		after = out[len(out)-1].Seq
	}
}

// sameRecord reports how got differs from want (its Time in UTC), or "".
func sameRecord(got, want protocol.StatusRecord) string {
	if got.Time.Location() != time.UTC {
		return fmt.Sprintf("time %v not in UTC", got.Time)
	}
	if !got.Time.Equal(want.Time) {
		return fmt.Sprintf("time %v, want %v", got.Time, want.Time)
	}
	got.Time, want.Time = time.Time{}, time.Time{}
	if got != want {
		return fmt.Sprintf("%+v, want %+v", got, want)
	}
	return ""
}

// wantRecords checks that got are want, in order.
func wantRecords(t *testing.T, got []protocol.StatusRecord, want []*protocol.StatusRecord) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i := range got {
		if d := sameRecord(got[i], *want[i]); d != "" {
			t.Fatalf("record %d: %s", i, d)
		}
	}
}

func testLedgerOne(t *testing.T, o Options) {
	s := newStore(t, o, Retention{})
	l := ledgerOf(t, s)
	if got, err := l.StatusRecords(ctx(t), 0, 10, nil); err != nil || len(got) != 0 {
		t.Fatalf("empty ledger: StatusRecords = %v, %v; want none", got, err)
	}
	recs := StatusRecords("one", 1)
	appendStatus(t, l, recs)
	if recs[0].Seq != 1 {
		t.Fatalf("first record's Seq = %d, want 1", recs[0].Seq)
	}
	wantRecords(t, allStatus(t, l, 0), recs)
	// An empty append stores nothing.
	if err := l.AppendStatus(ctx(t), nil); err != nil {
		t.Fatalf("AppendStatus(nil): %v", err)
	}
	wantRecords(t, allStatus(t, l, 0), recs)
}

func testLedgerMany(t *testing.T, o Options) {
	s := newStore(t, o, Retention{})
	l := ledgerOf(t, s)
	var all []*protocol.StatusRecord
	for b, n := range []int{1, 5, 2, 30, 1} {
		recs := StatusRecords(fmt.Sprint("b", b), n)
		appendStatus(t, l, recs)
		for _, r := range recs {
			if want := uint64(len(all) + 1); r.Seq != want {
				t.Fatalf("batch %d: Seq %d, want %d", b, r.Seq, want)
			}
			all = append(all, r)
		}
	}
	wantRecords(t, allStatus(t, l, 0), all)
}

func testLedgerContent(t *testing.T, o Options) {
	s := newStore(t, o, Retention{})
	l := ledgerOf(t, s)
	zone := time.FixedZone("CET", 3600)
	recs := []*protocol.StatusRecord{
		{Component: "SYSA", Status: protocol.StatusDown, Time: time.Date(2026, 1, 2, 3, 4, 5, 6, zone),
			Change: "IXC418I", Rule: "sysplex-partition", Event: protocol.ID{Ms: 1767319445000, Seq: 3},
			Detail: "IXC418I SYSTEM SYSA IS NOW ACTIVE IN SYSPLEX PLEX1 — ünïcode"},
		{Component: "VMSYS1/LINUX01", Status: protocol.StatusUp, Time: time.Now(), // a monotonic reading
			Change: "LOGON", Rule: "guest"},
		{Component: "has113.httpd.80", Status: protocol.StatusDown, Time: time.Unix(0, 1).UTC(),
			Change: "probe-timeout", Rule: "http", Detail: strings.Repeat("d", protocol.MaxStatusDetail)},
		{Component: strings.Repeat("c", 256), Status: protocol.StatusUp, Time: time.Date(2262, 4, 11, 0, 0, 0, 999999999, time.UTC),
			Change: strings.Repeat("x", 64), Rule: strings.Repeat("r", 128)},
	}
	appendStatus(t, l, recs)
	wantRecords(t, allStatus(t, l, 0), recs)
}

func testLedgerPaging(t *testing.T, o Options) {
	s := newStore(t, o, Retention{})
	l := ledgerOf(t, s)
	recs := StatusRecords("p", 25)
	appendStatus(t, l, recs)
	seqs := func(from, to uint64) []uint64 {
		var out []uint64
		for q := from; q <= to; q++ {
			out = append(out, q)
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		after uint64
		max   int
		want  []uint64
	}{
		{"FromZero", 0, 10, seqs(1, 10)},
		{"Middle", 10, 10, seqs(11, 20)},
		{"MaxLargerThanRest", 20, 10, seqs(21, 25)},
		{"One", 12, 1, seqs(13, 13)},
		{"AfterLast", 25, 10, nil},
		{"AfterBeyond", 1000, 10, nil},
		{"NoLimit", 3, 0, seqs(4, 25)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := []protocol.StatusRecord{{Seq: 999}} // kept in front
			got, err := l.StatusRecords(ctx(t), tc.after, tc.max, dst)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) == 0 || got[0].Seq != 999 {
				t.Fatalf("dst's records not kept: %v", got)
			}
			got = got[1:]
			if len(got) != len(tc.want) {
				t.Fatalf("got %d records, want %d", len(got), len(tc.want))
			}
			for i, r := range got {
				if r.Seq != tc.want[i] {
					t.Fatalf("record %d: Seq %d, want %d", i, r.Seq, tc.want[i])
				}
				if d := sameRecord(r, *recs[r.Seq-1]); d != "" {
					t.Fatalf("record %d: %s", r.Seq, d)
				}
			}
		})
	}
}

func testLedgerInvalid(t *testing.T, o Options) {
	s := newStore(t, o, Retention{})
	l := ledgerOf(t, s)
	valid := func() *protocol.StatusRecord { return StatusRecords("v", 1)[0] }
	for _, tc := range []struct {
		name string
		bad  func(r *protocol.StatusRecord)
	}{
		{"NoComponent", func(r *protocol.StatusRecord) { r.Component = "" }},
		{"LongComponent", func(r *protocol.StatusRecord) { r.Component = strings.Repeat("c", 257) }},
		{"BadStatus", func(r *protocol.StatusRecord) { r.Status = "SLOW" }},
		{"NoStatus", func(r *protocol.StatusRecord) { r.Status = "" }},
		{"NoTime", func(r *protocol.StatusRecord) { r.Time = time.Time{} }},
		{"LongChange", func(r *protocol.StatusRecord) { r.Change = strings.Repeat("x", 65) }},
		{"LongRule", func(r *protocol.StatusRecord) { r.Rule = strings.Repeat("x", 129) }},
		{"LongDetail", func(r *protocol.StatusRecord) { r.Detail = strings.Repeat("x", protocol.MaxStatusDetail+1) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The bad record last: the valid ones before it are not
			// stored either.
			recs := []*protocol.StatusRecord{valid(), valid(), valid()}
			tc.bad(recs[2])
			if err := l.AppendStatus(ctx(t), recs); err == nil {
				t.Fatal("AppendStatus took an invalid record")
			}
			for i, r := range recs {
				if r.Seq != 0 {
					t.Fatalf("record %d of a refused call got Seq %d", i, r.Seq)
				}
			}
			if got := allStatus(t, l, 0); len(got) != 0 {
				t.Fatalf("a refused call stored %d records", len(got))
			}
		})
	}
	// The next valid append starts at 1: the refused calls took no Seq.
	recs := StatusRecords("after", 2)
	appendStatus(t, l, recs)
	if recs[0].Seq != 1 || recs[1].Seq != 2 {
		t.Fatalf("Seqs after refused calls: %d, %d; want 1, 2", recs[0].Seq, recs[1].Seq)
	}
}

func testLedgerConcurrent(t *testing.T, o Options) {
	s := newStore(t, o, Retention{})
	l := ledgerOf(t, s)
	const writers, calls = 6, 20
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range calls {
				recs := StatusRecords(fmt.Sprintf("w%d-c%d", w, i), 1+i%3)
				if err := l.AppendStatus(context.Background(), recs); err != nil {
					t.Errorf("writer %d: AppendStatus: %v", w, err)
					return
				}
				for k := 1; k < len(recs); k++ {
					if recs[k].Seq != recs[k-1].Seq+1 {
						t.Errorf("writer %d: one call's Seqs %d, %d not consecutive", w, recs[k-1].Seq, recs[k].Seq)
					}
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	got := allStatus(t, l, 0)
	want := 0
	for i := range calls {
		want += writers * (1 + i%3)
	}
	if len(got) != want {
		t.Fatalf("read %d records, want %d", len(got), want)
	}
	last := map[string]int{} // each writer's last call seen
	for i, r := range got {
		if r.Seq != uint64(i+1) {
			t.Fatalf("record %d has Seq %d: Seqs not 1 to %d without gaps", i, r.Seq, want)
		}
		var w, c, k int
		if _, err := fmt.Sscanf(r.Component, "w%d-c%d-%d", &w, &c, &k); err != nil {
			t.Fatalf("record %d: component %q", i, r.Component)
		}
		key := fmt.Sprint(w)
		if prev, ok := last[key]; ok && c < prev {
			t.Fatalf("writer %d's call %d stored after its call %d", w, c, prev)
		}
		last[key] = c
	}
}

// testLedgerRetention: the event retention never trims status records,
// however many events pass (and, for stores that keep their data, not
// across a reopen either).
func testLedgerRetention(t *testing.T, o Options) {
	r := Retention{MaxEvents: 5}
	s := newStore(t, o, r)
	l := ledgerOf(t, s)
	var all []*protocol.StatusRecord
	for i := range 20 {
		recs := StatusRecords(fmt.Sprint("r", i), 2)
		appendStatus(t, l, recs)
		all = append(all, recs...)
		if err := s.Append(ctx(t), Events(fmt.Sprint("e", i), 20)); err != nil {
			t.Fatal(err)
		}
	}
	st, err := s.Stats(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if st.Trimmed.IsZero() {
		t.Fatal("the event retention trimmed nothing")
	}
	wantRecords(t, allStatus(t, l, 0), all)
	if o.Reopen != nil {
		s = reopen(t, o, s, r)
		wantRecords(t, allStatus(t, ledgerOf(t, s), 0), all)
	}
}

// reopen reopens s and closes the new store when the test ends.
func reopen(t *testing.T, o Options, s store.Store, r Retention) store.Store {
	t.Helper()
	n := o.Reopen(t, s, r)
	t.Cleanup(func() { n.Close() })
	return n
}

func testLedgerReopen(t *testing.T, o Options) {
	if o.Reopen == nil {
		t.Skip("the store keeps nothing across reopening")
	}
	s := newStore(t, o, Retention{})
	l := ledgerOf(t, s)
	recs := StatusRecords("before", 5)
	appendStatus(t, l, recs[:2])
	appendStatus(t, l, recs[2:])
	s = reopen(t, o, s, Retention{})
	l = ledgerOf(t, s)
	wantRecords(t, allStatus(t, l, 0), recs)
	// Seqs go on after the reopened ones.
	more := StatusRecords("after", 3)
	appendStatus(t, l, more)
	if more[0].Seq != 6 {
		t.Fatalf("first Seq after reopening = %d, want 6", more[0].Seq)
	}
	s = reopen(t, o, s, Retention{})
	wantRecords(t, allStatus(t, ledgerOf(t, s), 0), append(recs, more...))
}

func testLedgerClosed(t *testing.T, o Options) {
	s := o.New(t, Retention{})
	l := ledgerOf(t, s)
	appendStatus(t, l, StatusRecords("x", 1))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.AppendStatus(context.Background(), StatusRecords("y", 1)); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("AppendStatus after Close = %v, want ErrClosed", err)
	}
	if _, err := l.StatusRecords(context.Background(), 0, 10, nil); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("StatusRecords after Close = %v, want ErrClosed", err)
	}
}
