package diskstore

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/zbridge/zbridge/gateway/store/eventcodec"
	"github.com/zbridge/zbridge/gateway/store/memstore"
	"github.com/zbridge/zbridge/protocol"
)

// TestReplayAllocBound: a crafted or damaged segment does not make Open
// allocate many times its size. (It read every segment whole, and an
// events record of zeros with a good checksum, counting as many events as
// its bytes could hold, allocated ~80 times the file as events before its
// IDs failed; a sparse file of 256 MiB was read whole to find it torn.)
func TestReplayAllocBound(t *testing.T) {
	if testing.Short() {
		t.Skip("replays crafted segments of megabytes: not in -short")
	}
	const fileSize = 8 << 20
	checkpoint := appendRecord(nil, &memstore.Change{Kind: memstore.ChangeCheckpoint, State: &memstore.State{}})
	// zeroEvents is an events record of size bytes of zeros but its count:
	// events of zeros, all with the ID 0-0.
	zeroEvents := func(count, size int) []byte {
		rec := make([]byte, recordHeader, recordHeader+size)
		rec[8] = byte(memstore.ChangeEvents)
		rec = binary.AppendUvarint(rec, uint64(count))
		rec = rec[:recordHeader+size]
		fixRecord(rec)
		return rec
	}
	payload := fileSize - len(segmentMagic) - len(checkpoint) - recordHeader
	for _, tc := range []struct {
		name  string
		write func(t *testing.T, name string)
		bound uint64
		opens bool // Open succeeds (the segment is torn, and cut)
	}{
		{"events-as-many-as-bytes", func(t *testing.T, name string) {
			seg := append([]byte(segmentMagic), checkpoint...)
			seg = append(seg, zeroEvents(payload/eventcodec.MinEvent, payload)...)
			writeFile(t, name, seg)
		}, 4 * fileSize, false},
		{"events-at-the-bound", func(t *testing.T, name string) {
			seg := append([]byte(segmentMagic), checkpoint...)
			seg = append(seg, zeroEvents(min(maxRecordEvents, payload/23), payload)...)
			writeFile(t, name, seg)
		}, 4 * fileSize, false},
		{"sparse", func(t *testing.T, name string) {
			seg := append([]byte(segmentMagic), checkpoint...)
			h := make([]byte, recordHeader)
			binary.LittleEndian.PutUint32(h, 256<<20-uint32(len(seg))-recordHeader)
			h[8] = byte(memstore.ChangeEvents) // a checksum of zeros, which does not match
			writeFile(t, name, append(seg, h...))
			if err := os.Truncate(name, 256<<20); err != nil {
				t.Fatal(err)
			}
		}, 8 << 20, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			name := filepath.Join(dir, "journal", segmentName(1))
			if err := os.MkdirAll(filepath.Dir(name), 0o700); err != nil {
				t.Fatal(err)
			}
			tc.write(t, name)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			s, err := Open(Config{Dir: dir, Logger: quiet()})
			runtime.ReadMemStats(&after)
			if err == nil {
				s.Close()
			}
			if tc.opens && err != nil {
				t.Fatalf("Open = %v", err)
			}
			if !tc.opens && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open = %v, want ErrCorrupt", err)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > tc.bound {
				t.Errorf("Open allocated %d MiB, more than %d MiB", alloc>>20, tc.bound>>20)
			} else {
				t.Logf("Open allocated %.1f MiB", float64(alloc)/(1<<20))
			}
		})
	}
}

func writeFile(t *testing.T, name string, b []byte) {
	t.Helper()
	if err := os.WriteFile(name, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestLargestRecordReplays: the most events Append puts in one record (by
// their size and count) replay, and AppendMarked refuses more than a
// record holds rather than write one that Open would refuse.
func TestLargestRecordReplays(t *testing.T) {
	if testing.Short() {
		t.Skip("writes and replays the largest record: not in -short")
	}
	dir := t.TempDir()
	s := open(t, Config{Dir: dir})
	evs := make([]*protocol.Event, maxRecordEvents+1)
	for i := range evs {
		evs[i] = &protocol.Event{} // protocol.Event.Size's least: 400
	}
	if err := s.AppendMarked(bg, evs, "vmmon:X", protocol.ID{Ms: 1}); err == nil {
		t.Fatal("AppendMarked took more events than a record holds")
	}
	if err := s.Append(bg, evs); err != nil {
		t.Fatal(err)
	}
	s.Close()
	r := open(t, Config{Dir: dir})
	defer r.Close()
	if st, _ := r.Stats(bg); st.Count != int64(len(evs)) {
		t.Fatalf("%d events replayed, want %d", st.Count, len(evs))
	}
}
