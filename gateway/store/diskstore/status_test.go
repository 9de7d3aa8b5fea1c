package diskstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/zbridge/zbridge/gateway/store/storetest"
	"github.com/zbridge/zbridge/protocol"
)

// allStatus returns every status record s holds.
func allStatus(t testing.TB, s *Store) []protocol.StatusRecord {
	t.Helper()
	recs, err := s.StatusRecords(bg, 0, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// wantSeqs checks that recs have the Seqs from to to, in order.
func wantSeqs(t testing.TB, recs []protocol.StatusRecord, from, to uint64) {
	t.Helper()
	if uint64(len(recs)) != to-from+1 || len(recs) > 0 && (recs[0].Seq != from || recs[len(recs)-1].Seq != to) {
		var seqs []uint64
		for _, r := range recs {
			seqs = append(seqs, r.Seq)
		}
		t.Fatalf("status records %v, want Seqs %d to %d", seqs, from, to)
	}
	for i := 1; i < len(recs); i++ {
		if recs[i].Seq != recs[i-1].Seq+1 {
			t.Fatalf("Seq %d after %d", recs[i].Seq, recs[i-1].Seq)
		}
	}
}

// appendStatus appends n records in one call.
func appendStatus(t testing.TB, s *Store, prefix string, n int) []*protocol.StatusRecord {
	t.Helper()
	recs := storetest.StatusRecords(prefix, n)
	if err := s.AppendStatus(bg, recs); err != nil {
		t.Fatal(err)
	}
	return recs
}

// statusFrames returns the offsets of the records of a status journal.
func statusFrames(t testing.TB, b []byte) []int {
	t.Helper()
	if !bytes.HasPrefix(b, []byte(statusMagic)) {
		t.Fatal("status journal without magic")
	}
	var offs []int
	for off := len(statusMagic); off < len(b); off += recordHeader + recordSize(b[off:]) {
		offs = append(offs, off)
	}
	return offs
}

// TestStatusBeyondSegments: the event retention deletes whole segments;
// the status records are in a file of their own and outlive them.
func TestStatusBeyondSegments(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Dir: dir, SegmentSize: 4096, MaxEvents: 10}
	s := open(t, cfg)
	appendStatus(t, s, "first", 3)
	firstSeg := segmentFiles(t, dir)[0]
	for i := range 100 {
		if err := s.Append(bg, richEvents(5)); err != nil {
			t.Fatal(err)
		}
		if i%10 == 0 {
			appendStatus(t, s, fmt.Sprint("s", i), 1)
		}
	}
	s.Sync(bg)
	waitFor(t, "retention to delete the first segment", func() bool {
		_, err := os.Stat(firstSeg)
		return errors.Is(err, os.ErrNotExist)
	})
	wantSeqs(t, allStatus(t, s), 1, 13)
	s.Close()
	r := open(t, cfg)
	defer r.Close()
	wantSeqs(t, allStatus(t, r), 1, 13)
	if info := r.Info(); info.StatusRecords != 13 {
		t.Errorf("Info().StatusRecords = %d, want 13", info.StatusRecords)
	}
}

// waitFor polls cond for up to 10 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestStatusTornWrite cuts the status journal at every offset inside its
// last record (one AppendStatus of three records), and flips a byte in it:
// the reopened store has every record before it, and none of it; the file
// is cut back to whole records, and Seqs go on after the last kept.
func TestStatusTornWrite(t *testing.T) {
	t.Parallel() // its store is its own
	dir := t.TempDir()
	s := open(t, Config{Dir: dir})
	appendStatus(t, s, "a", 2)
	appendStatus(t, s, "b", 1)
	appendStatus(t, s, "torn", 3) // Seqs 4 to 6
	s.Close()
	name := statusPath(dir)
	whole, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	frames := statusFrames(t, whole)
	start := frames[len(frames)-1]
	check := func(t *testing.T, d string, cut int) {
		t.Helper()
		before, _ := os.ReadFile(statusPath(d))
		r := open(t, Config{Dir: d})
		defer r.Close()
		wantSeqs(t, allStatus(t, r), 1, 3)
		if info := r.Info(); info.StatusCutBytes != int64(cut) {
			t.Errorf("cut %d bytes, want %d", info.StatusCutBytes, cut)
		}
		// What was cut is kept beside the file.
		if kept := r.Info().TornFiles; len(kept) != 1 || kept[0] != statusPath(d)+".torn" {
			t.Errorf("torn files %v, want %s.torn", kept, statusPath(d))
		} else if b, _ := os.ReadFile(kept[0]); !bytes.Equal(b, before[len(before)-cut:]) {
			t.Errorf("%s holds %d bytes, not the %d cut", kept[0], len(b), cut)
		}
		more := appendStatus(t, r, "after", 1)
		if more[0].Seq != 4 {
			t.Errorf("Seq after the cut = %d, want 4", more[0].Seq)
		}
	}
	for cut := start + 1; cut < len(whole); cut += max(1, (len(whole)-start)/29) {
		t.Run(fmt.Sprint(cut), func(t *testing.T) {
			d := t.TempDir()
			copyDir(t, dir, d)
			if err := os.Truncate(statusPath(d), int64(cut)); err != nil {
				t.Fatal(err)
			}
			check(t, d, cut-start)
		})
	}
	t.Run("Flipped", func(t *testing.T) {
		d := t.TempDir()
		copyDir(t, dir, d)
		b := bytes.Clone(whole)
		b[len(b)-5] ^= 0x40
		os.WriteFile(statusPath(d), b, 0o600)
		check(t, d, len(whole)-start)
	})
	// Frames lost in the middle of what the last run wrote (pages of an
	// unsynced tail that never reached the disk) are a torn write too:
	// cut from there, whole records after them included.
	t.Run("LostPage", func(t *testing.T) {
		d := t.TempDir()
		copyDir(t, dir, d)
		b := bytes.Clone(whole)
		lost := frames[len(frames)-2] // "b", with "torn" after it
		clear(b[lost : lost+recordHeader+2])
		os.WriteFile(statusPath(d), b, 0o600)
		r := open(t, Config{Dir: d})
		defer r.Close()
		wantSeqs(t, allStatus(t, r), 1, 2)
	})
	// A file created and cut before its header was whole is started anew.
	t.Run("Header", func(t *testing.T) {
		d := t.TempDir()
		copyDir(t, dir, d)
		os.Truncate(statusPath(d), 3)
		r := open(t, Config{Dir: d})
		wantSeqs(t, allStatus(t, r), 1, 0)
		appendStatus(t, r, "new", 2)
		r.Close()
		r = open(t, Config{Dir: d})
		defer r.Close()
		wantSeqs(t, allStatus(t, r), 1, 2)
	})
}

// TestStatusCorrupt: damage in what an earlier Open found whole is not a
// torn write: Open fails, naming the file and offset, and changes nothing.
func TestStatusCorrupt(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(b []byte, frames []int) []byte
		want   string
	}{
		{"Flipped", func(b []byte, frames []int) []byte { b[frames[1]+12] ^= 1; return b }, "checksum"},
		{"Zeroed", func(b []byte, frames []int) []byte { clear(b[frames[1] : frames[1]+4]); return b }, "checksum"},
		{"Header", func(b []byte, frames []int) []byte { b[0] = 'X'; return b }, "header"},
		{"SeqsBack", func(b []byte, frames []int) []byte {
			// A record that checks out, with a Seq before the one before it.
			rec := appendStatusRecords(nil, []protocol.StatusRecord{{Seq: 1, Component: "x", Status: protocol.StatusUp, Time: time.Unix(1, 0)}}, maxStatusPayload)
			return append(b, rec...)
		}, "not after"},
		{"MarkWrong", func(b []byte, frames []int) []byte { return appendStatusMark(b, 99) }, "mark says"},
		{"Kind", func(b []byte, frames []int) []byte {
			rec := append([]byte{1, 0, 0, 0, 0, 0, 0, 0, 9}, 0)
			binary.LittleEndian.PutUint32(rec[4:], crc32.Checksum(rec[8:], castagnoli()))
			return append(b, rec...)
		}, "kind 9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := open(t, Config{Dir: dir})
			appendStatus(t, s, "a", 2)
			appendStatus(t, s, "b", 2)
			s.Close()
			open(t, Config{Dir: dir}).Close() // its mark: what came before was whole
			name := statusPath(dir)
			b, _ := os.ReadFile(name)
			b = tc.damage(b, statusFrames(t, b))
			os.WriteFile(name, b, 0o600)
			_, err := Open(Config{Dir: dir, Logger: quiet()})
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open = %v, want ErrCorrupt naming %s and saying %q", err, name, tc.want)
			}
			if after, _ := os.ReadFile(name); !bytes.Equal(after, b) {
				t.Fatal("a failed Open changed the status journal")
			}
		})
	}
}

// TestStatusOlderDirectory: a data directory of a version before status
// records (no status.journal) opens with none, and keeps those appended.
func TestStatusOlderDirectory(t *testing.T) {
	dir := t.TempDir()
	copyDir(t, goldenBeforeSD, dir)
	s := open(t, Config{Dir: dir})
	if st := s.StatusStats(); st.Count != 0 || st.Last != 0 {
		t.Fatalf("StatusStats = %+v, want none", st)
	}
	evs, _, _ := s.Read(bg, protocol.ID{}, 0, nil)
	appendStatus(t, s, "new", 2)
	s.Close()
	r := open(t, Config{Dir: dir})
	defer r.Close()
	wantSeqs(t, allStatus(t, r), 1, 2)
	if again, _, _ := r.Read(bg, protocol.ID{}, 0, nil); len(again) != len(evs) {
		t.Fatalf("%d events after reopening, want %d", len(again), len(evs))
	}
}

// TestStatusRewrite: an Open that finds at least as many records dropped
// beyond MaxStatusRecords as kept writes the file anew with the kept ones.
func TestStatusRewrite(t *testing.T) {
	dir := t.TempDir()
	s := open(t, Config{Dir: dir})
	for i := range 25 {
		appendStatus(t, s, fmt.Sprint("r", i), 1)
	}
	s.Close()
	name := statusPath(dir)
	before, _ := os.Stat(name)
	cfg := Config{Dir: dir, MaxStatusRecords: 10}
	s = open(t, cfg)
	wantSeqs(t, allStatus(t, s), 16, 25)
	after, _ := os.Stat(name)
	if after.Size() >= before.Size()/2 {
		t.Fatalf("status journal of %d bytes, %d before: not written anew", after.Size(), before.Size())
	}
	if _, err := os.Stat(name + ".tmp"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temporary file left: %v", err)
	}
	more := appendStatus(t, s, "more", 2)
	if more[0].Seq != 26 {
		t.Fatalf("Seq after rewrite = %d, want 26", more[0].Seq)
	}
	s.Close()
	s = open(t, cfg)
	defer s.Close()
	wantSeqs(t, allStatus(t, s), 18, 27)
	if st := s.StatusStats(); st.Dropped != 2 {
		t.Fatalf("StatusStats = %+v, want 2 dropped", st)
	}
}

// TestStatusDurability: AppendStatus returns with the records synced
// under SyncAlways; under SyncBatch written, and synced within the
// interval or by Sync; under SyncOS written.
func TestStatusDurability(t *testing.T) {
	for _, p := range []SyncPolicy{SyncAlways, SyncBatch, SyncOS} {
		t.Run(string(p), func(t *testing.T) {
			s := open(t, Config{Dir: t.TempDir(), Sync: p, SyncInterval: 50 * time.Millisecond})
			defer s.Close()
			appendStatus(t, s, "d", 2)
			l := s.status
			seq := l.recorded()
			if l.written.Load() < seq {
				t.Fatal("AppendStatus returned before its records were written")
			}
			switch p {
			case SyncAlways:
				if l.synced.Load() < seq {
					t.Fatal("AppendStatus returned before its records were synced")
				}
			case SyncBatch:
				waitFor(t, "the flusher to sync", func() bool { return l.synced.Load() >= seq })
				appendStatus(t, s, "e", 1)
				if err := s.Sync(bg); err != nil {
					t.Fatal(err)
				}
				if l.synced.Load() < l.recorded() {
					t.Fatal("Sync returned before the status records were synced")
				}
			}
		})
	}
}

// TestStatusWriteFailure: a status journal the disk refuses stops the
// store, as a failed event write does.
func TestStatusWriteFailure(t *testing.T) {
	s := open(t, Config{Dir: t.TempDir()})
	defer s.Close()
	s.status.wmu.Lock()
	s.status.file.Close() // every later write fails
	s.status.wmu.Unlock()
	if err := s.AppendStatus(bg, storetest.StatusRecords("x", 1)); err == nil {
		t.Fatal("AppendStatus succeeded on a closed file")
	}
	if h := s.Health(); !h.Degraded {
		t.Fatal("store not degraded after a write failure")
	}
	if err := s.Append(bg, storetest.Events("y", 1)); err == nil {
		t.Fatal("Append succeeded after a write failure")
	}
	if err := s.AppendStatus(bg, storetest.StatusRecords("y", 1)); err == nil {
		t.Fatal("AppendStatus succeeded after a write failure")
	}
}

// TestStatusParts: an AppendStatus of more than a record holds is
// written as several records, each within the limit (but for a single
// record), and they decode to the whole call.
func TestStatusParts(t *testing.T) {
	var recs []protocol.StatusRecord
	for i, r := range storetest.StatusRecords("big", 50) {
		r.Seq = uint64(i + 1)
		r.Detail = strings.Repeat("d", i*5)
		recs = append(recs, *r)
	}
	for _, limit := range []int{1, 600, 2000, maxStatusPayload} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			b := append([]byte(statusMagic), appendStatusRecords(nil, recs, limit)...)
			var got []protocol.StatusRecord
			frames := statusFrames(t, b)
			for _, off := range frames {
				rec := b[off : off+recordHeader+recordSize(b[off:])]
				kind, part, _, err := decodeStatus(rec)
				if err != nil || kind != statusRecords {
					t.Fatalf("record at %d: kind %d, %v", off, kind, err)
				}
				if len(part) > 1 && recordSize(rec) > limit {
					t.Fatalf("record of %d records and %d bytes, limit %d", len(part), recordSize(rec), limit)
				}
				got = append(got, part...)
			}
			switch {
			case limit == 1 && len(frames) != len(recs):
				t.Fatalf("%d records for %d status records at limit 1", len(frames), len(recs))
			case limit == maxStatusPayload && len(frames) != 1:
				t.Fatalf("%d records for a small call", len(frames))
			}
			if len(got) != len(recs) {
				t.Fatalf("decoded %d status records, want %d", len(got), len(recs))
			}
			for i := range got {
				if d := sameStatus(got[i], recs[i]); d != "" {
					t.Fatalf("record %d: %s", i, d)
				}
			}
		})
	}
}

// sameStatus compares two records, their times by Equal.
func sameStatus(got, want protocol.StatusRecord) string {
	if !got.Time.Equal(want.Time) {
		return fmt.Sprintf("time %v, want %v", got.Time, want.Time)
	}
	got.Time, want.Time = time.Time{}, time.Time{}
	if got != want {
		return fmt.Sprintf("%+v, want %+v", got, want)
	}
	return ""
}
