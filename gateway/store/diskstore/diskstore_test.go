package diskstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/gateway/store"
	"github.com/zbridge/zbridge/gateway/store/storetest"
	"github.com/zbridge/zbridge/protocol"
)

func quiet() logrus.FieldLogger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}

func open(t testing.TB, cfg Config) *Store {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quiet()
	}
	s, err := Open(cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	if testing.Short() {
		// The suite waits out consumer-group claim times (seconds); memstore
		// runs it in -short on the same in-memory logic, and the journal has
		// the tests below.
		t.Skip("the conformance suite on disk: not in -short")
	}
	for _, p := range []SyncPolicy{SyncBatch, SyncAlways, SyncOS} {
		t.Run(string(p), func(t *testing.T) {
			t.Parallel()
			storetest.Run(t, storetest.Options{
				New: func(t *testing.T, r storetest.Retention) store.Store {
					return open(t, Config{Dir: t.TempDir(), Sync: p, MaxEvents: r.MaxEvents, MaxBytes: r.MaxBytes, GroupTTL: r.GroupTTL})
				},
				Reopen: func(t *testing.T, s store.Store, r storetest.Retention) store.Store {
					dir := s.(*Store).Dir()
					if err := s.Close(); err != nil {
						t.Fatal(err)
					}
					return open(t, Config{Dir: dir, Sync: p, MaxEvents: r.MaxEvents, MaxBytes: r.MaxBytes, GroupTTL: r.GroupTTL})
				},
			})
		})
	}
}

// TestConformanceReopened runs the suite on stores that were filled,
// closed and opened again: a replayed store behaves as a new one.
func TestConformanceReopened(t *testing.T) {
	if testing.Short() {
		t.Skip("the whole suite again: not in -short")
	}
	storetest.Run(t, storetest.Options{
		New: func(t *testing.T, r storetest.Retention) store.Store {
			dir := t.TempDir()
			s := open(t, Config{Dir: dir, MaxEvents: r.MaxEvents, MaxBytes: r.MaxBytes, GroupTTL: r.GroupTTL})
			if err := s.SetPosition(context.Background(), "other", protocol.ID{Ms: 1}); err != nil {
				t.Fatal(err)
			}
			s.Close()
			return open(t, Config{Dir: dir, MaxEvents: r.MaxEvents, MaxBytes: r.MaxBytes, GroupTTL: r.GroupTTL})
		},
		Reopen: func(t *testing.T, s store.Store, r storetest.Retention) store.Store {
			dir := s.(*Store).Dir()
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			return open(t, Config{Dir: dir, MaxEvents: r.MaxEvents, MaxBytes: r.MaxBytes, GroupTTL: r.GroupTTL})
		},
	})
}

var bg = context.Background()

// state is everything a reopen must give back.
type state struct {
	events    []protocol.Event
	stats     store.StreamStats
	positions map[string]protocol.ID
}

func snapshot(t *testing.T, s store.Store, names ...string) state {
	t.Helper()
	evs, _, err := s.Read(bg, protocol.ID{}, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	st := state{positions: map[string]protocol.ID{}}
	for _, e := range evs {
		st.events = append(st.events, *e)
	}
	st.stats, _ = s.Stats(bg)
	st.stats.Appended = 0 // counts this process's appends
	for _, n := range names {
		if id, ok, _ := s.Position(bg, n); ok {
			st.positions[n] = id
		}
	}
	return st
}

func sameEvents(t *testing.T, got, want []protocol.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d events, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if !g.Received.Equal(w.Received) || !g.Time.Equal(w.Time) ||
			(g.OriginTime == nil) != (w.OriginTime == nil) ||
			g.OriginTime != nil && !g.OriginTime.Equal(*w.OriginTime) {
			t.Fatalf("event %d: times %v %v %v, want %v %v %v", i, g.Received, g.Time, g.OriginTime,
				w.Received, w.Time, w.OriginTime)
		}
		if g.OriginTime != nil {
			_, go1 := g.OriginTime.Zone()
			_, wo := w.OriginTime.Zone()
			if go1 != wo {
				t.Fatalf("event %d: zone offset %d, want %d", i, go1, wo)
			}
		}
		g.Received, g.Time, g.OriginTime = w.Received, w.Time, w.OriginTime
		if !reflect.DeepEqual(g, w) {
			t.Fatalf("event %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
}

// richEvents are events with every field set, some with an origin time,
// every other one with structured data (a repeated parameter name between
// others: the journal keeps the order exactly).
func richEvents(n int) []*protocol.Event {
	evs := storetest.Events("rich", n)
	for i, e := range evs {
		e.Origin = protocol.Origin{System: "VMSYS1", Host: "lnx1", Node: "ZVM002", Addr: "10.0.0.1"}
		e.MsgID, e.App, e.ProcID, e.Type, e.User = "HCPMSG045I", "app", "42", "MSG", "OPERATOR"
		e.Facility, e.Severity = protocol.FacLocal0, protocol.SevWarning
		e.Raw, e.TimeFilled, e.Parsed = "<134>raw "+e.Text, "year", i%2 == 0
		if i%3 == 0 {
			ot := time.Date(2026, 11, 22, 13, 2, 41, i, time.FixedZone("", 5*3600+1800))
			e.OriginTime, e.Time = &ot, ot.UTC()
			e.ParseError = "bad [col 3]"
		}
		if i%2 == 1 {
			e.SD = protocol.StructuredData{
				{ID: "origin", Params: []protocol.SDParam{{Name: "ip", Value: "192.0.2.1"},
					{Name: "software", Value: "rsyslogd"}, {Name: "ip", Value: fmt.Sprint("192.0.2.", i)}}},
				{ID: "empty@32473"},
				{ID: "x@32473", Params: []protocol.SDParam{{Name: "q", Value: `"]\`}}},
			}
		}
	}
	return evs
}

// TestReopen: close, reopen: same events, same IDs, same positions, same
// consumer groups, and new IDs after the old ones.
func TestReopen(t *testing.T) {
	for _, p := range []SyncPolicy{SyncBatch, SyncAlways, SyncOS} {
		t.Run(string(p), func(t *testing.T) {
			dir := t.TempDir()
			s := open(t, Config{Dir: dir, Sync: p})
			if err := s.Append(bg, richEvents(50)); err != nil {
				t.Fatal(err)
			}
			all, _, _ := s.Read(bg, protocol.ID{}, 0, nil)
			if err := s.SetPosition(bg, "c:sub", all[9].ID); err != nil {
				t.Fatal(err)
			}
			if err := s.AppendMarked(bg, richEvents(3), "vmmon:VMSYS1", protocol.ID{Ms: 7, Seq: 3}); err != nil {
				t.Fatal(err)
			}
			// A group: a delivers 5 and acks 2, b delivers 3.
			start := protocol.ID{Seq: 1}
			ga, _, _ := s.GroupRead(bg, "g", "a", start, time.Hour, 5, nil)
			s.GroupAck(bg, "g", "a", []protocol.ID{ga[0].ID, ga[1].ID})
			s.GroupRead(bg, "g", "b", start, time.Hour, 3, nil)
			want := snapshot(t, s, "c:sub", "vmmon:VMSYS1")
			s.Close()

			r := open(t, Config{Dir: dir, Sync: p})
			defer r.Close()
			got := snapshot(t, r, "c:sub", "vmmon:VMSYS1")
			sameEvents(t, got.events, want.events)
			if got.stats != want.stats {
				t.Errorf("stats %+v, want %+v", got.stats, want.stats)
			}
			if fmt.Sprint(got.positions) != fmt.Sprint(want.positions) {
				t.Errorf("positions %v, want %v", got.positions, want.positions)
			}
			// The group goes on where it was: the next read gets the 9th
			// event on, and a's 3 unacked ones are claimable by c later.
			next, _, _ := r.GroupRead(bg, "g", "c", start, time.Hour, 1, nil)
			if len(next) != 1 || next[0].ID != all[8].ID {
				t.Fatalf("group resumed at %v, want %s", idsOf(next), all[8].ID)
			}
			claimed, _, _ := r.GroupRead(bg, "g", "c", start, 0, 3, nil)
			if want := []protocol.ID{ga[2].ID, ga[3].ID, ga[4].ID}; fmt.Sprint(idsOf(claimed)) != fmt.Sprint(want) {
				t.Fatalf("claimed %v, want a's unacked %v", idsOf(claimed), want)
			}
			// New events get IDs after every old one.
			more := storetest.Events("after", 2)
			if err := r.Append(bg, more); err != nil {
				t.Fatal(err)
			}
			if !want.stats.Last.Less(more[0].ID) {
				t.Fatalf("new ID %s not after %s", more[0].ID, want.stats.Last)
			}
		})
	}
}

func idsOf(evs []*protocol.Event) []protocol.ID {
	out := make([]protocol.ID, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

// segmentFiles lists the journal's segment files, oldest first.
func segmentFiles(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "journal", "*.seg"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(m)
	return m
}

// TestTornWrite cuts the newest segment at every offset inside its last
// record: the reopened store has every earlier event and never a partial
// one, and the file is cut back to whole records.
func TestTornWrite(t *testing.T) {
	t.Parallel() // its store is its own
	dir := t.TempDir()
	s := open(t, Config{Dir: dir})
	if err := s.Append(bg, richEvents(20)); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, s)
	if err := s.Append(bg, richEvents(5)); err != nil { // the record to tear
		t.Fatal(err)
	}
	s.Close()
	segs := segmentFiles(t, dir)
	last := segs[len(segs)-1]
	whole, err := os.ReadFile(last)
	if err != nil {
		t.Fatal(err)
	}
	// The torn record is the last one: find where it starts. Close synced
	// it and wrote a sync mark after it: a crash before that sync leaves
	// no mark saying it was synced.
	recStart, recEnd := lastRecord(t, whole)
	whole = whole[:recEnd]
	if err := os.WriteFile(last, whole, 0o600); err != nil {
		t.Fatal(err)
	}
	for cut := recStart + 1; cut < len(whole); cut += max(1, (len(whole)-recStart)/37) {
		t.Run(fmt.Sprint(cut), func(t *testing.T) {
			d := t.TempDir()
			copyDir(t, dir, d)
			seg := filepath.Join(d, "journal", filepath.Base(last))
			if err := os.Truncate(seg, int64(cut)); err != nil {
				t.Fatal(err)
			}
			r := open(t, Config{Dir: d})
			defer r.Close()
			got := snapshot(t, r)
			sameEvents(t, got.events, before.events)
			if info := r.Info(); info.CutBytes != int64(cut-recStart) {
				t.Errorf("cut %d bytes, want %d", info.CutBytes, cut-recStart)
			}
			// What was cut is kept beside the segment.
			if kept := r.Info().TornFiles; len(kept) != 1 {
				t.Errorf("torn files %v, want one", kept)
			} else if b, _ := os.ReadFile(kept[0]); !bytes.Equal(b, whole[recStart:cut]) {
				t.Errorf("%s holds %d bytes, not the %d cut", kept[0], len(b), cut-recStart)
			}
		})
	}
	// A flipped byte inside the last record, which no sync mark says was
	// synced (a write the disk half did when the power went), is caught by
	// the checksum the same way. (After a sync mark it is damage:
	// TestDamageBeforeSyncMark.)
	d := t.TempDir()
	copyDir(t, dir, d)
	seg := filepath.Join(d, "journal", filepath.Base(last))
	b, _ := os.ReadFile(seg)
	b[len(b)-10] ^= 0x40
	os.WriteFile(seg, b, 0o600)
	r := open(t, Config{Dir: d})
	defer r.Close()
	sameEvents(t, snapshot(t, r).events, before.events)
}

// lastRecord walks a segment's records and returns where the last one
// that is not a sync mark starts and ends.
func lastRecord(t *testing.T, b []byte) (start, end int) {
	t.Helper()
	start = -1
	for _, r := range segmentRecords(t, b) {
		if r.kind != syncMark {
			start, end = r.off, r.off+r.size
		}
	}
	return start, end
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestCorruptOlderSegment: damage in a segment before the newest is not a
// torn write: Open refuses, naming the file and offset, and changes
// nothing.
func TestCorruptOlderSegment(t *testing.T) {
	dir := t.TempDir()
	s := open(t, Config{Dir: dir, SegmentSize: 4096})
	for i := 0; i < 10; i++ {
		if err := s.Append(bg, richEvents(10)); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	segs := segmentFiles(t, dir)
	if len(segs) < 3 {
		t.Fatalf("%d segments, want several", len(segs))
	}
	b, _ := os.ReadFile(segs[0])
	bad := -1 // where the damaged record starts
	for _, r := range segmentRecords(t, b) {
		if r.off <= len(b)/2 {
			bad = r.off
		}
	}
	b[len(b)/2] ^= 0xff
	os.WriteFile(segs[0], b, 0o600)
	_, err := Open(Config{Dir: dir, Logger: quiet()})
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open = %v, want ErrCorrupt", err)
	}
	if want := fmt.Sprintf("%s at offset %d:", segs[0], bad); !strings.Contains(err.Error(), want) {
		t.Errorf("Open = %v, want it to say %q", err, want)
	}
	if after, _ := os.ReadFile(segs[0]); len(after) != len(b) {
		t.Fatal("Open changed the damaged file")
	}
	// The recovery the package doc gives: cut the segment at the offset
	// named (or, at its checkpoint, move it away); the segments after it
	// replay.
	if bad == len(segmentMagic) {
		err = os.Rename(segs[0], filepath.Join(dir, "damaged"))
	} else {
		err = os.Truncate(segs[0], int64(bad))
	}
	if err != nil {
		t.Fatal(err)
	}
	r := open(t, Config{Dir: dir})
	defer r.Close()
	if evs, _, _ := r.Read(bg, protocol.ID{}, 0, nil); len(evs) == 0 || len(evs) >= 100 {
		t.Fatalf("%d events after the cut, want some of the 100 but not all", len(evs))
	}
}

// TestRetentionDeletesSegments: retention trims whole old segments off the
// disk, the newest state survives, and what is left replays to the same
// retained events.
func TestRetentionDeletesSegments(t *testing.T) {
	dir := t.TempDir()
	s := open(t, Config{Dir: dir, SegmentSize: 16 << 10, MaxEvents: 300, SyncInterval: 10 * time.Millisecond})
	if err := s.SetPosition(bg, "c:sub", protocol.ID{Ms: 5}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		if err := s.Append(bg, richEvents(20)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Sync(bg); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	var segs []string
	for {
		segs = segmentFiles(t, dir)
		if n := len(segs); n > 0 && n <= 8 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	// 2000 events of about 500 bytes in 16 KiB segments is over 60
	// segments; 300 retained fit in about 10.
	if len(segs) > 14 {
		t.Fatalf("%d segments left for 300 retained events", len(segs))
	}
	want := snapshot(t, s, "c:sub")
	s.Close()
	r := open(t, Config{Dir: dir, SegmentSize: 16 << 10, MaxEvents: 300})
	defer r.Close()
	got := snapshot(t, r, "c:sub")
	sameEvents(t, got.events, want.events)
	if got.positions["c:sub"] != (protocol.ID{Ms: 5}) {
		t.Fatalf("position lost with the old segments: %v", got.positions)
	}
	if got.stats.Trimmed != want.stats.Trimmed {
		t.Fatalf("trimmed %s, want %s", got.stats.Trimmed, want.stats.Trimmed)
	}
}

// TestMaxAge: events older than MaxAge are trimmed, on append and while
// idle.
func TestMaxAge(t *testing.T) {
	t.Parallel() // it waits for events to age
	var mu sync.Mutex
	now := time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s := open(t, Config{Dir: t.TempDir(), MaxAge: time.Hour, Now: clock})
	defer s.Close()
	if err := s.Append(bg, storetest.Events("old", 3)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	now = now.Add(2 * time.Hour)
	mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, _ := s.Stats(bg)
		if st.Count == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d events older than MaxAge still retained while idle", st.Count)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestLocked: a second Open of the same directory fails while the first
// holds it, and succeeds after Close.
func TestLocked(t *testing.T) {
	dir := t.TempDir()
	s := open(t, Config{Dir: dir})
	if _, err := Open(Config{Dir: dir, Logger: quiet()}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
	s.Close()
	open(t, Config{Dir: dir}).Close()
}

// TestCloseTwice: Close is safe twice, and a closed store refuses appends.
func TestCloseTwice(t *testing.T) {
	s := open(t, Config{Dir: t.TempDir()})
	s.Close()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(bg, storetest.Events("x", 1)); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Append after Close = %v", err)
	}
}

// TestWriteFailure: when the disk refuses a write, the store says so and
// refuses what comes after, instead of acknowledging what it cannot keep.
func TestWriteFailure(t *testing.T) {
	s := open(t, Config{Dir: t.TempDir()})
	defer s.Close()
	s.j.wmu.Lock()
	s.j.file.Close() // every later write fails
	s.j.wmu.Unlock()
	if err := s.Append(bg, storetest.Events("x", 1)); err == nil {
		t.Fatal("Append succeeded on a closed file")
	}
	if h := s.Health(); !h.Degraded {
		t.Fatal("store not degraded after a write failure")
	}
	if err := s.Append(bg, storetest.Events("y", 1)); err == nil {
		t.Fatal("Append succeeded after a write failure")
	}
}

// TestOutOfDescriptors: with every descriptor of the process taken (its
// limit lowered, the rest opened on /dev/null), the journal goes on
// starting segments and syncing its directory with the spares it holds:
// appends succeed, the store is not degraded, and everything appended
// reads back after a reopen. (Without the spares, the first new segment
// failed with EMFILE and the store refused every change after it.)
func TestOutOfDescriptors(t *testing.T) {
	dir := t.TempDir()
	s := open(t, Config{Dir: dir, SegmentSize: 64 << 10})
	closed := false
	defer func() {
		if !closed {
			s.Close()
		}
	}()
	if held, wanted := s.SpareFDs(); held != 2 || wanted != 2 {
		t.Fatalf("the journal holds %d spare descriptors of %d, want 2 of 2", held, wanted)
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd to count the open descriptors: %v", err)
	}
	low := lim
	low.Cur = uint64(len(fds) + 16)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	var fillers []*os.File
	restore := func() {
		for _, f := range fillers {
			f.Close()
		}
		fillers = nil
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	defer restore()
	for {
		f, err := os.Open(os.DevNull)
		if err != nil {
			if !outOfFDs(err) {
				t.Fatal(err)
			}
			break
		}
		fillers = append(fillers, f)
	}
	before := len(segmentFiles(t, dir))
	ctx := context.Background()
	var all []*protocol.Event
	fewest := spareFDs
	for i := 0; i < 12; i++ { // ~12 × 40 kB through 64 KiB segments
		evs := richEvents(20)
		for _, e := range evs {
			e.Text += strings.Repeat("d", 1800)
		}
		if err := s.Append(ctx, evs); err != nil {
			t.Fatalf("append %d, out of descriptors: %v", i, err)
		}
		// A segment started since the last sync took a spare; the sync
		// closes the one written full and takes the spare back.
		if held, _ := s.SpareFDs(); held < fewest {
			fewest = held
		}
		if err := s.Sync(ctx); err != nil {
			t.Fatalf("sync %d, out of descriptors: %v", i, err)
		}
		all = append(all, evs...)
	}
	if fewest == spareFDs {
		t.Errorf("SpareFDs said %d held throughout, out of descriptors, though segments were started with them", fewest)
	}
	if h := s.Health(); h.Degraded {
		t.Fatalf("degraded out of descriptors: %s", h.Reason)
	}
	restore()
	if after := len(segmentFiles(t, dir)); after < before+4 {
		t.Fatalf("%d segments after, %d before: the journal did not start segments while out of descriptors", after, before)
	}
	// With descriptors free again, the next segment's start takes the
	// spares back.
	for i := 0; i < 3; i++ {
		evs := richEvents(20)
		for _, e := range evs {
			e.Text += strings.Repeat("e", 1800)
		}
		if err := s.Append(ctx, evs); err != nil {
			t.Fatal(err)
		}
		if err := s.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		all = append(all, evs...)
	}
	if held, wanted := s.SpareFDs(); held != 2 || wanted != 2 {
		t.Errorf("the journal holds %d spare descriptors of %d after descriptors were freed, want 2 of 2", held, wanted)
	}
	closed = true
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := open(t, Config{Dir: dir})
	defer s2.Close()
	got, _, err := s2.Read(ctx, protocol.ID{}, 0, nil)
	if err != nil || len(got) != len(all) {
		t.Fatalf("read back %d events, %v; want %d", len(got), err, len(all))
	}
	for i := range all {
		if got[i].Text != all[i].Text {
			t.Fatalf("event %d read back as %.40q, want %.40q", i, got[i].Text, all[i].Text)
		}
	}
}

// TestGroupTTLReplay: a group's TTL counts from the Open that replays it
// (reads are not journalled), and its deletion is journalled: the group
// stays deleted across the next Open.
func TestGroupTTLReplay(t *testing.T) {
	const ttl = time.Hour
	var clk storetest.SkipClock
	dir := t.TempDir()
	cfg := Config{Dir: dir, GroupTTL: ttl, Now: clk.Now}
	s := open(t, cfg)
	s.GroupRead(bg, "g", "a", protocol.ID{Seq: 1}, time.Hour, 0, nil)
	s.GroupRead(bg, "other", "a", protocol.ID{Seq: 1}, time.Hour, 0, nil)
	if err := s.Append(bg, richEvents(3)); err != nil {
		t.Fatal(err)
	}
	s.GroupRead(bg, "g", "a", protocol.ID{Seq: 1}, time.Hour, 0, nil) // 3 pending
	s.Close()

	clk.Skip(2 * ttl) // the store was closed meanwhile
	s = open(t, cfg)
	if info, ok, err := s.GroupInfo(bg, "g"); err != nil || !ok || info.Pending != 3 {
		t.Fatalf("after an Open two TTLs later: GroupInfo(g) = %+v, %v, %v; want it kept with 3 pending", info, ok, err)
	}
	clk.Skip(ttl / 2)
	s.GroupRead(bg, "other", "a", protocol.ID{Seq: 1}, time.Hour, 0, nil)
	clk.Skip(ttl / 2)
	s.GroupRead(bg, "other", "a", protocol.ID{Seq: 1}, time.Hour, 0, nil) // a TTL after the Open: g is due
	if info, ok, err := s.GroupInfo(bg, "g"); err != nil || ok {
		t.Fatalf("a TTL after the Open: GroupInfo(g) = %+v, %v, %v; want it deleted", info, ok, err)
	}
	s.Close()

	s = open(t, cfg)
	defer s.Close()
	if info, ok, err := s.GroupInfo(bg, "g"); err != nil || ok {
		t.Fatalf("after the next Open: GroupInfo(g) = %+v, %v, %v; want it still deleted", info, ok, err)
	}
	if _, ok, err := s.GroupInfo(bg, "other"); err != nil || !ok {
		t.Fatalf("after the next Open: GroupInfo(other) = %v, %v; want it kept", ok, err)
	}
}
