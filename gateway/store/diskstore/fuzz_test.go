package diskstore

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"math"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/zbridge/zbridge/gateway/store/memstore"
	"github.com/zbridge/zbridge/gateway/store/storetest"
	"github.com/zbridge/zbridge/protocol"
)

// realRecords writes a journal with every kind of record through the
// store itself and returns its records.
func realRecords(t testing.TB) [][]byte {
	dir := t.TempDir()
	var clk storetest.SkipClock
	s := open(t, Config{Dir: dir, MaxEvents: 8, GroupTTL: time.Hour, Now: clk.Now})
	s.Append(bg, richEvents(4))
	s.SetPosition(bg, "c:sub", protocol.ID{Ms: 9, Seq: 2})
	s.AppendMarked(bg, richEvents(2), "vmmon:VMSYS1", protocol.ID{Ms: 1, Seq: 1})
	evs, _, _ := s.GroupRead(bg, "g", "a", protocol.ID{Seq: 1}, time.Hour, 3, nil)
	s.GroupAck(bg, "g", "a", []protocol.ID{evs[0].ID})
	s.GroupRead(bg, "g", "b", protocol.ID{Seq: 1}, 0, 2, nil) // claims
	clk.Skip(2 * time.Hour)
	s.Append(bg, richEvents(4)) // trims, deletes g (GroupTTL)
	s.GroupRead(bg, "h", "a", protocol.ID{Seq: 1}, time.Hour, 2, nil)
	s.ms.Checkpoint()
	s.Close()
	var out [][]byte
	for _, name := range segmentFiles(t, dir) {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		off := len(segmentMagic)
		for off < len(b) {
			n := recordSize(b[off:])
			if b[off+8] != syncMark { // the journal's, not a change
				out = append(out, b[off:off+recordHeader+n])
			}
			off += recordHeader + n
		}
	}
	return out
}

// FuzzDecodeRecord: no input panics the decoder or makes it allocate more
// than the input holds, and every record it accepts encodes back to a
// record that decodes the same. Half the inputs get their length and
// checksum fixed up, so that the fuzzer reaches the payload decoder.
func FuzzDecodeRecord(f *testing.F) {
	for _, r := range append(realRecords(f), goldenRecords(f)...) {
		f.Add(r, false)
		f.Add(r, true)
	}
	f.Fuzz(func(t *testing.T, b []byte, fix bool) {
		if fix && len(b) >= recordHeader {
			binary.LittleEndian.PutUint32(b, uint32(len(b)-recordHeader))
			binary.LittleEndian.PutUint32(b[4:], crc32.Checksum(b[8:], castagnoli()))
		}
		c, err := decodeRecord(b)
		if err != nil {
			return
		}
		again := appendRecord(nil, c)
		if !bytes.Equal(again, b) {
			// Varints have one shortest form; a record the store wrote
			// always uses it, damage that still checks out may not.
			c2, err := decodeRecord(again)
			if err != nil || c2.Kind != c.Kind {
				t.Fatalf("re-encoded record does not decode: %v", err)
			}
			for i, e := range c2.Events {
				if !reflect.DeepEqual(e.SD, c.Events[i].SD) {
					t.Fatalf("event %d: structured data %#v re-decoded as %#v", i, c.Events[i].SD, e.SD)
				}
			}
		}
	})
}

// TestRecordKinds: the real journal holds every kind of change, and each
// decodes.
func TestRecordKinds(t *testing.T) {
	seen := map[memstore.ChangeKind]bool{}
	for _, r := range realRecords(t) {
		c, err := decodeRecord(r)
		if err != nil {
			t.Fatal(err)
		}
		seen[c.Kind] = true
	}
	for k := memstore.ChangeEvents; k <= memstore.ChangeCheckpoint; k++ {
		if !seen[k] {
			t.Errorf("no record of kind %d in a real journal", k)
		}
	}
}

// realStatusRecords writes a status journal through the store itself (two
// Opens: two marks) and returns its records.
func realStatusRecords(t testing.TB) [][]byte {
	dir := t.TempDir()
	s := open(t, Config{Dir: dir})
	s.AppendStatus(bg, storetest.StatusRecords("a", 3))
	s.AppendStatus(bg, []*protocol.StatusRecord{{Component: "SYSA", Status: protocol.StatusDown,
		Time: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), Change: "IXC418I", Rule: "r", Event: protocol.ID{Ms: 7, Seq: 8}}})
	s.Close()
	open(t, Config{Dir: dir}).Close()
	b, err := os.ReadFile(statusPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for off := len(statusMagic); off < len(b); {
		n := recordSize(b[off:])
		out = append(out, b[off:off+recordHeader+n])
		off += recordHeader + n
	}
	return out
}

// FuzzDecodeStatus: no input panics the status journal's decoder, and
// every record it accepts encodes back to a record that decodes the same.
func FuzzDecodeStatus(f *testing.F) {
	for _, r := range realStatusRecords(f) {
		f.Add(r, false)
		f.Add(r, true)
	}
	f.Fuzz(func(t *testing.T, b []byte, fix bool) {
		if fix && len(b) >= recordHeader {
			binary.LittleEndian.PutUint32(b, uint32(len(b)-recordHeader))
			binary.LittleEndian.PutUint32(b[4:], crc32.Checksum(b[8:], castagnoli()))
		}
		kind, recs, mark, err := decodeStatus(b)
		if err != nil {
			return
		}
		var again []byte
		if kind == statusMark {
			again = appendStatusMark(nil, mark)
		} else {
			again = appendStatusRecords(nil, recs, math.MaxInt)
		}
		kind2, recs2, mark2, err := decodeStatus(again)
		if err != nil || kind2 != kind || mark2 != mark || len(recs2) != len(recs) {
			t.Fatalf("re-encoded record decodes as kind %d, %d records, mark %d, %v", kind2, len(recs2), mark2, err)
		}
		for i := range recs {
			if d := sameStatus(recs2[i], recs[i]); d != "" {
				t.Fatalf("record %d: %s", i, d)
			}
		}
	})
}
