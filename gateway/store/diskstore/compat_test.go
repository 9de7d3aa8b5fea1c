package diskstore

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/zbridge/zbridge/gateway/store/eventcodec"
	"github.com/zbridge/zbridge/gateway/store/memstore"
	"github.com/zbridge/zbridge/protocol"
)

// goldenBeforeSD is a journal written by the store before events kept
// structured data (commit b73c09b): three events of richEvents(3) and one
// RFC 5424 message with structured data parsed by the syslog parser of
// then (its structured data only in Raw, its Text a part of Raw), and a
// position. Its events, as AppendEventJSON wrote them then, are in
// goldenBeforeSD + ".events.jsonl". It is not regenerated: it stands for
// the journals on disk that a new version must replay.
const goldenBeforeSD = "testdata/journal-before-sd"

// goldenRecords returns the records of the golden segment.
func goldenRecords(t testing.TB) [][]byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(goldenBeforeSD, "journal", segmentName(1)))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte(segmentMagic)) {
		t.Fatal("golden segment without magic")
	}
	var out [][]byte
	for off := len(segmentMagic); off < len(b); {
		n := recordSize(b[off:])
		out = append(out, b[off:off+recordHeader+n])
		off += recordHeader + n
	}
	return out
}

// TestReplayJournalBeforeSD: a journal written before structured data was
// kept replays to the same events (none with SD), and its records encode
// back to the same bytes: the record of an event without structured data
// did not change.
func TestReplayJournalBeforeSD(t *testing.T) {
	dir := t.TempDir()
	copyDir(t, goldenBeforeSD, dir)
	s := open(t, Config{Dir: dir})
	defer s.Close()
	evs, _, err := s.Read(bg, protocol.ID{}, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []byte
	for _, e := range evs {
		if e.SD != nil {
			t.Errorf("event %s replayed with structured data %v", e.ID, e.SD)
		}
		got = append(protocol.AppendEventJSON(got, e), '\n')
	}
	want, err := os.ReadFile(goldenBeforeSD + ".events.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("replayed events\n%s\nwant\n%s", got, want)
	}
	if id, ok, _ := s.Position(bg, "c:sub"); !ok || id != evs[1].ID {
		t.Errorf("position c:sub = %v %v, want %v", id, ok, evs[1].ID)
	}

	recs := goldenRecords(t)
	kinds := map[memstore.ChangeKind]bool{}
	for i, rec := range recs {
		c, err := decodeRecord(rec)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		kinds[c.Kind] = true
		if again := appendRecord(nil, c); !bytes.Equal(again, rec) {
			t.Errorf("record %d (kind %d) encodes to\n%x\nnot as written before SD\n%x", i, c.Kind, again, rec)
		}
	}
	if !kinds[memstore.ChangeEvents] || !kinds[memstore.ChangeCheckpoint] {
		t.Errorf("golden segment has record kinds %v, want events and a checkpoint", kinds)
	}
}

// TestRecordSD: structured data survives a record exactly (element and
// parameter order, a name repeated between others, escapes, an element
// without parameters), events without keep none, and a record cut inside
// the structured data is damage.
func TestRecordSD(t *testing.T) {
	evs := richEvents(4)
	for i, e := range evs {
		e.ID = protocol.ID{Ms: 5, Seq: uint64(i)} // rising, as the store gives them
	}
	evs[2].SD = protocol.StructuredData{{ID: "a", Params: []protocol.SDParam{{Name: "n", Value: ""}}}}
	c := &memstore.Change{Kind: memstore.ChangeEvents, Events: evs, Name: "vmmon:X", ID: protocol.ID{Ms: 3}}
	rec := appendRecord(nil, c)
	got, err := decodeRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range got.Events {
		if !reflect.DeepEqual(e.SD, evs[i].SD) {
			t.Errorf("event %d: SD = %#v, want %#v", i, e.SD, evs[i].SD)
		}
	}
	if got.Events[0].SD != nil {
		t.Errorf("event without structured data decoded with %#v", got.Events[0].SD)
	}
	if got.Name != c.Name || got.ID != c.ID {
		t.Errorf("mark %q %v after the events, want %q %v", got.Name, got.ID, c.Name, c.ID)
	}

	// Cut the payload inside the last event's structured data, fixing
	// the header: the decoder reports damage, it does not read past.
	one := appendRecord(nil, &memstore.Change{Kind: memstore.ChangeEvents, Events: evs[1:2]})
	for cut := len(one) - 1; cut > len(one)-30; cut-- {
		rec := append([]byte(nil), one[:cut]...)
		fixRecord(rec)
		if _, err := decodeRecord(rec); err == nil {
			t.Errorf("record cut to %d of %d bytes decoded", cut, len(one))
		}
	}
}

// fixRecord sets a record's length and checksum to those of its bytes.
func fixRecord(rec []byte) {
	binary.LittleEndian.PutUint32(rec, uint32(len(rec)-recordHeader))
	binary.LittleEndian.PutUint32(rec[4:], crc32.Checksum(rec[8:], castagnoli()))
}

// TestRecordEncoded: a change carrying its events' encodings (as the
// store's Append passes them) is recorded as the same bytes as one the
// journal encodes itself.
func TestRecordEncoded(t *testing.T) {
	evs := richEvents(5)
	var enc [][]byte
	for _, e := range evs {
		enc = append(enc, eventcodec.AppendEvent(nil, e))
	}
	c := &memstore.Change{Kind: memstore.ChangeEvents, Events: evs, Name: "syslog:x", ID: protocol.ID{Ms: 9}}
	want := appendRecord(nil, c)
	c.Encoded = enc
	if got := appendRecord(nil, c); !bytes.Equal(got, want) {
		t.Errorf("with the encodings given:\n%x\nencoded by the journal:\n%x", got, want)
	}
}
