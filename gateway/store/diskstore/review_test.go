package diskstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/zbridge/zbridge/gateway/store/memstore"
	"github.com/zbridge/zbridge/gateway/store/storetest"
	"github.com/zbridge/zbridge/gateway/syslog"
	"github.com/zbridge/zbridge/protocol"
)

// TestParsedEventsReopen: events as the SYSLOG parser makes them (Text a
// part of Raw, written once) and times far from now come back the same.
func TestParsedEventsReopen(t *testing.T) {
	dir := t.TempDir()
	s := open(t, Config{Dir: dir})
	p := syslog.NewParser(nil)
	p.SetSender(netip.MustParseAddr("10.1.2.3"))
	now := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	var evs []*protocol.Event
	for _, m := range []string{
		"<134>1 2026-12-06T08:59:59.123456+05:30 lnx1 app 42 ID7 [x@1 a=\"b\"] hello \xef\xbb\xbfworld\n",
		"<13>Dec  6 08:59:59 lnx2 cron[7]: (root) CMD (backup)",
		"<134>1 9999-12-31T23:59:59Z lnx1 app - - - the far future",
		"<134>1 1000-01-01T00:00:00Z lnx1 app - - - the far past",
		"not syslog at all",
	} {
		evs = append(evs, p.Parse([]byte(m), now))
	}
	if err := s.Append(bg, evs); err != nil {
		t.Fatal(err)
	}
	want := snapshot(t, s)
	s.Close()
	r := open(t, Config{Dir: dir})
	defer r.Close()
	sameEvents(t, snapshot(t, r).events, want.events)
}

// TestBigStateNoCliff: a state bigger than a segment (many durable
// positions) does not make every change start a new segment.
func TestBigStateNoCliff(t *testing.T) {
	dir := t.TempDir()
	s := open(t, Config{Dir: dir, SegmentSize: 16 << 10})
	defer s.Close()
	for i := 0; i < 3000; i++ {
		if err := s.SetPosition(bg, fmt.Sprintf("client:subscription-%04d", i), protocol.ID{Ms: uint64(i + 1)}); err != nil {
			t.Fatal(err)
		}
	}
	before := len(segmentFiles(t, dir))
	for i := 0; i < 50; i++ {
		if err := s.Append(bg, storetest.Events("x", 1)); err != nil {
			t.Fatal(err)
		}
	}
	s.Sync(bg)
	if after := len(segmentFiles(t, dir)); after > before+2 {
		t.Fatalf("50 small appends made %d new segments", after-before)
	}
}

// TestHeaderOnlyNewest: a newest segment with no whole record (cut right
// after it was created) is deleted, and the state is the older ones'.
func TestHeaderOnlyNewest(t *testing.T) {
	for _, content := range []string{"", segmentMagic[:3], segmentMagic} {
		dir := t.TempDir()
		s := open(t, Config{Dir: dir})
		s.SetPosition(bg, "c:sub", protocol.ID{Ms: 42})
		s.Append(bg, storetest.Events("x", 3))
		want := snapshot(t, s, "c:sub")
		s.Close()
		segs := segmentFiles(t, dir)
		next := filepath.Join(dir, "journal", segmentName(uint64(len(segs)+5)))
		if err := os.WriteFile(next, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		r := open(t, Config{Dir: dir})
		got := snapshot(t, r, "c:sub")
		r.Close()
		sameEvents(t, got.events, want.events)
		if got.positions["c:sub"] != (protocol.ID{Ms: 42}) {
			t.Fatalf("%q: position %v lost", content, got.positions)
		}
		if _, err := os.Stat(next); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%q: the empty newest segment was kept", content)
		}
	}
}

// TestMissingOlderSegment: the checkpoint opening each segment restores
// the positions and groups when an older segment is gone.
func TestMissingOlderSegment(t *testing.T) {
	dir := t.TempDir()
	s := open(t, Config{Dir: dir, SegmentSize: 4096})
	s.SetPosition(bg, "c:sub", protocol.ID{Ms: 42})
	s.GroupRead(bg, "g", "a", protocol.ID{Seq: 1}, time.Hour, 1, nil)
	for i := 0; i < 20; i++ {
		s.Append(bg, richEvents(5))
	}
	s.Close()
	segs := segmentFiles(t, dir)
	if len(segs) < 3 {
		t.Fatalf("%d segments", len(segs))
	}
	os.Remove(segs[0])
	r := open(t, Config{Dir: dir})
	defer r.Close()
	if id, ok, _ := r.Position(bg, "c:sub"); !ok || id != (protocol.ID{Ms: 42}) {
		t.Fatalf("position %v %v after the first segment went", id, ok)
	}
}

// TestBadRecordNotCut: a record whose checksum holds but whose content
// makes no sense is damage, not a torn write: Open fails and cuts nothing.
func TestBadRecordNotCut(t *testing.T) {
	dir := t.TempDir()
	s := open(t, Config{Dir: dir})
	s.Append(bg, storetest.Events("x", 3))
	s.Close()
	segs := segmentFiles(t, dir)
	last := segs[len(segs)-1]
	// An events record claiming no events, with a good checksum.
	rec := []byte{0, 0, 0, 0, 0, 0, 0, 0, byte(memstore.ChangeEvents), 0, 0, 0, 0}
	binary.LittleEndian.PutUint32(rec, uint32(len(rec)-recordHeader))
	binary.LittleEndian.PutUint32(rec[4:], crc32.Checksum(rec[8:], castagnoli()))
	f, _ := os.OpenFile(last, os.O_WRONLY|os.O_APPEND, 0)
	f.Write(rec)
	f.Close()
	size := func() int64 { fi, _ := os.Stat(last); return fi.Size() }
	before := size()
	if _, err := Open(Config{Dir: dir, Logger: quiet()}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open = %v, want ErrCorrupt", err)
	}
	if size() != before {
		t.Fatal("Open cut a record that checks out")
	}
}

// FuzzReplay: whatever the newest segment holds, Open does not panic: it
// opens (cutting a torn end) or reports damage.
func FuzzReplay(f *testing.F) {
	for _, r := range realRecords(f) {
		f.Add(append([]byte(segmentMagic), r...))
	}
	f.Add([]byte(segmentMagic))
	{ // a whole segment with its sync marks
		dir := f.TempDir()
		s := open(f, Config{Dir: dir, Sync: SyncAlways})
		s.Append(bg, richEvents(3))
		s.SetPosition(bg, "c:sub", protocol.ID{Ms: 1})
		s.Close()
		segs := segmentFiles(f, dir)
		if b, err := os.ReadFile(segs[len(segs)-1]); err == nil {
			f.Add(b)
		}
	}
	if old, err := os.ReadFile(filepath.Join(goldenBeforeSD, "journal", segmentName(1))); err == nil {
		f.Add(old) // a whole segment written before structured data was kept
	}
	f.Fuzz(func(t *testing.T, seg []byte) {
		dir := t.TempDir()
		os.MkdirAll(filepath.Join(dir, "journal"), 0o700)
		os.WriteFile(filepath.Join(dir, "journal", segmentName(1)), seg, 0o600)
		s, err := Open(Config{Dir: dir, Logger: quiet()})
		if err == nil {
			s.Close()
		}
	})
}
