package diskstore

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zbridge/zbridge/gateway/store/memstore"
	"github.com/zbridge/zbridge/gateway/store/storetest"
	"github.com/zbridge/zbridge/protocol"
)

// rec is where a record lies in a segment file, and its kind.
type rec struct {
	off, size int
	kind      byte
}

// segmentRecords walks a segment's records by their headers.
func segmentRecords(t *testing.T, b []byte) []rec {
	t.Helper()
	var out []rec
	for off := len(segmentMagic); off < len(b); {
		if len(b)-off < recordHeader {
			t.Fatalf("%d bytes at offset %d: not a record", len(b)-off, off)
		}
		n := recordHeader + recordSize(b[off:])
		out = append(out, rec{off: off, size: n, kind: b[off+8]})
		off += n
	}
	return out
}

// tornFiles lists the files holding bytes Open cut, in dir/journal.
func tornFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "journal", "*.torn*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestDamageBeforeSyncMark: a record of the newest segment that is cut
// short or fails its checksum, but was synced (a sync mark after it says
// so), is damage, not a torn write: Open fails with ErrCorrupt naming the
// file and the offset, and cuts nothing. (It was cut as a torn write, with
// everything after it: every event acknowledged in the segment, and with
// its checkpoint the positions, were gone without an error.) Cutting the
// file at the offset named, as the package doc tells an operator, opens it
// with what came before.
func TestDamageBeforeSyncMark(t *testing.T) {
	type damage struct {
		name string
		// where picks the record to damage among the segment's records
		// (marks left out); flip the byte to flip, from the record's start.
		where func(recs []rec) rec
		flip  int
	}
	first := func(recs []rec) rec { return recs[0] }
	second := func(recs []rec) rec { return recs[1] }
	middle := func(recs []rec) rec { return recs[len(recs)/2] }
	last := func(recs []rec) rec { return recs[len(recs)-1] }
	for _, p := range []SyncPolicy{SyncAlways, SyncBatch} {
		for _, d := range []damage{
			{"checkpoint", first, recordHeader + 1},
			{"first-events-record", second, recordHeader + 1},
			{"middle-record", middle, recordHeader + 3},
			{"middle-record-length", middle, 1}, // hides where the next record starts
			{"middle-record-checksum", middle, 5},
			{"last-record", last, recordHeader}, // marked by Close
		} {
			t.Run(string(p)+"/"+d.name, func(t *testing.T) {
				dir := t.TempDir()
				s := open(t, Config{Dir: dir, Sync: p})
				for i := 0; i < 100; i++ {
					if err := s.Append(bg, storetest.Events("x", 10)); err != nil {
						t.Fatal(err)
					}
					if i%10 == 9 {
						s.SetPosition(bg, "c:sub", protocol.ID{Ms: uint64(i)})
					}
					if err := s.Sync(bg); err != nil { // as RELP and VMMON do before they acknowledge
						t.Fatal(err)
					}
				}
				s.Close()
				segs := segmentFiles(t, dir)
				seg := segs[len(segs)-1]
				b, err := os.ReadFile(seg)
				if err != nil {
					t.Fatal(err)
				}
				var changes []rec
				for _, r := range segmentRecords(t, b) {
					if r.kind != syncMark {
						changes = append(changes, r)
					}
				}
				bad := d.where(changes)
				b[bad.off+d.flip] ^= 0x01
				if err := os.WriteFile(seg, b, 0o600); err != nil {
					t.Fatal(err)
				}

				s, err = Open(Config{Dir: dir, Sync: p, Logger: quiet()})
				if err == nil {
					s.Close()
				}
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("Open = %v, want ErrCorrupt", err)
				}
				if want := fmt.Sprintf("%s at offset %d:", seg, bad.off); !strings.Contains(err.Error(), want) {
					t.Errorf("Open = %v, want it to say %q", err, want)
				}
				if after, _ := os.ReadFile(seg); !bytes.Equal(after, b) {
					t.Fatalf("Open changed the damaged segment (%d bytes, were %d)", len(after), len(b))
				}
				if torn := tornFiles(t, dir); len(torn) != 0 {
					t.Fatalf("Open moved bytes aside: %v", torn)
				}

				// The recovery the package doc gives: the damaged record
				// and what follows it kept aside, the segment cut there.
				if err := os.WriteFile(seg+".damaged", b[bad.off:], 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Truncate(seg, int64(bad.off)); err != nil {
					t.Fatal(err)
				}
				r := open(t, Config{Dir: dir, Sync: p})
				defer r.Close()
				evs, _, _ := r.Read(bg, protocol.ID{}, 0, nil)
				want := 0
				for _, c := range changes {
					if c.off < bad.off && c.kind == byte(memstore.ChangeEvents) {
						want += 10
					}
				}
				if len(evs) != want {
					t.Fatalf("%d events after the cut at %d, want the %d before it", len(evs), bad.off, want)
				}
			})
		}
	}
}

// TestReviewMidSegmentFlip is the review's reproduction: one flipped bit in
// the newest segment's checkpoint or first events record lost every
// acknowledged event of the segment, and Open succeeded. It now fails, and
// says where.
func TestReviewMidSegmentFlip(t *testing.T) {
	for _, where := range []string{"checkpoint", "first-events-record"} {
		t.Run(where, func(t *testing.T) {
			dir := t.TempDir()
			s := open(t, Config{Dir: dir, Sync: SyncAlways})
			for i := 0; i < 100; i++ {
				if err := s.Append(bg, storetest.Events("x", 10)); err != nil {
					t.Fatal(err)
				}
			}
			st, _ := s.Stats(bg)
			s.Close()
			segs := segmentFiles(t, dir)
			last := segs[len(segs)-1]
			b, _ := os.ReadFile(last)
			off := len(segmentMagic)
			if where == "first-events-record" {
				off += recordHeader + recordSize(b[off:])
			}
			b[off+recordHeader+1] ^= 0x01
			os.WriteFile(last, b, 0o600)
			r, err := Open(Config{Dir: dir, Sync: SyncAlways, Logger: quiet()})
			if err == nil {
				st2, _ := r.Stats(bg)
				r.Close()
				t.Fatalf("Open succeeded with %d of %d acknowledged events", st2.Count, st.Count)
			}
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), fmt.Sprintf("%s at offset %d:", last, off)) {
				t.Fatalf("Open = %v, want ErrCorrupt naming %s at offset %d", err, last, off)
			}
		})
	}
}

// TestTornBeforeWholeRecords: after a power loss under SyncBatch the pages
// of the unsynced end of the segment may have reached the disk out of
// order, so that whole records follow a torn one. With no sync mark after
// it that says it was synced, that is a torn write: cut, with everything
// after it, and the cut bytes kept beside the segment.
func TestTornBeforeWholeRecords(t *testing.T) {
	dir := t.TempDir()
	s := open(t, Config{Dir: dir, Sync: SyncBatch, SyncInterval: time.Hour})
	if err := s.Append(bg, storetest.Events("synced", 5)); err != nil {
		t.Fatal(err)
	}
	s.Sync(bg)
	for i := 0; i < 3; i++ { // written, never synced
		if err := s.Append(bg, storetest.Events("unsynced", 5)); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	segs := segmentFiles(t, dir)
	seg := segs[len(segs)-1]
	b, _ := os.ReadFile(seg)
	recs := segmentRecords(t, b)
	// Drop the marks Close wrote after the records, as a power loss would
	// before they reached the disk.
	for recs[len(recs)-1].kind == syncMark {
		recs = recs[:len(recs)-1]
	}
	b = b[:recs[len(recs)-1].off+recs[len(recs)-1].size]
	torn := recs[len(recs)-3] // the first of the three unsynced
	if torn.kind != byte(memstore.ChangeEvents) {
		t.Fatalf("record at %d is of kind %d", torn.off, torn.kind)
	}
	b[torn.off+recordHeader+2] ^= 0x10
	os.WriteFile(seg, b, 0o600)

	r := open(t, Config{Dir: dir})
	defer r.Close()
	evs, _, _ := r.Read(bg, protocol.ID{}, 0, nil)
	if len(evs) != 5 {
		t.Fatalf("%d events, want the 5 synced", len(evs))
	}
	if got := r.Info().CutBytes; got != int64(len(b)-torn.off) {
		t.Errorf("CutBytes %d, want %d", got, len(b)-torn.off)
	}
	kept := tornFiles(t, dir)
	if len(kept) != 1 || !slices.Equal(r.Info().TornFiles, kept) {
		t.Fatalf("torn files %v, Info says %v", kept, r.Info().TornFiles)
	}
	if got, _ := os.ReadFile(kept[0]); !bytes.Equal(got, b[torn.off:]) {
		t.Fatalf("%s holds %d bytes, not the %d cut", kept[0], len(got), len(b)-torn.off)
	}
}

// TestTornWholeSegmentKept: a newest segment with no whole record is moved
// aside, not deleted; the next Open starts a segment of the same number,
// and when that one is torn the same way, its bytes are kept under a name
// of their own.
func TestTornWholeSegmentKept(t *testing.T) {
	dir := t.TempDir()
	s := open(t, Config{Dir: dir})
	s.Append(bg, storetest.Events("x", 3))
	s.Close()
	segs := segmentFiles(t, dir)
	next := filepath.Join(dir, "journal", segmentName(uint64(len(segs)+1)))
	var want []string
	for i, junk := range []string{"first", "second"} {
		content := append([]byte(segmentMagic), "\x40\x00\x00\x00torn checkpoint: "+junk...)
		if err := os.WriteFile(next, content, 0o600); err != nil {
			t.Fatal(err)
		}
		r := open(t, Config{Dir: dir})
		evs, _, _ := r.Read(bg, protocol.ID{}, 0, nil)
		info := r.Info()
		r.Close()
		if len(evs) != 3 {
			t.Fatalf("%d events, want 3", len(evs))
		}
		kept := next + ".torn"
		if i > 0 {
			kept += ".2"
		}
		want = append(want, kept)
		if !slices.Equal(info.TornFiles, []string{kept}) {
			t.Fatalf("torn files %v, want %s", info.TornFiles, kept)
		}
		if got, _ := os.ReadFile(kept); !bytes.Equal(got, content) {
			t.Fatalf("%s holds %q, want %q", kept, got, content)
		}
		// The Open started a new segment under the same number.
		if _, err := os.Stat(next); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(next); err != nil {
			t.Fatal(err)
		}
	}
	if got := tornFiles(t, dir); !slices.Equal(got, want) {
		t.Fatalf("torn files %v, want %v", got, want)
	}
}

// TestFindSyncMark: a sync mark is found at any offset, across the
// MiB-sized reads too, and only where it says it is, and when it says
// bytes after past were synced.
func TestFindSyncMark(t *testing.T) {
	const from, past = 100, 99
	for _, tc := range []struct {
		name     string
		at, says int64 // where the mark is, and where it says it is
		synced   int64
		found    bool
		size     int64
	}{
		{"right after", from, from, from, true, 4 << 20},
		{"far on", 3<<20 + 7, 3<<20 + 7, 3 << 20, true, 4 << 20},
		{"across a read", from + 1<<20 - 5, from + 1<<20 - 5, from + 1, true, 4 << 20},
		{"at a read's start", from + 1<<20, from + 1<<20, from + 1, true, 4 << 20},
		{"at the end", 4<<20 - 13, 4<<20 - 13, 200, true, 4 << 20},
		{"elsewhere than it says", 5000, 5001, 200, false, 4 << 20},
		{"synced no further than past", 5000, 5000, past, false, 4 << 20},
		{"synced beyond itself", 5000, 5000, 5001, false, 4 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := bytes.Repeat([]byte{syncMark}, int(tc.size)) // every byte a kind byte
			m := appendSyncMark(nil, tc.synced, tc.says)
			if int64(len(m)) > tc.size-tc.at {
				b = b[:tc.at]
				b = append(b, m...)
			} else {
				copy(b[tc.at:], m)
			}
			at, synced, ok, err := findSyncMark(bytes.NewReader(b), from, int64(len(b)), past)
			if err != nil {
				t.Fatal(err)
			}
			if ok != tc.found || ok && (at != tc.at || synced != tc.synced) {
				t.Fatalf("found %v at %d (synced %d), want %v at %d (synced %d)", ok, at, synced, tc.found, tc.at, tc.synced)
			}
		})
	}
}
