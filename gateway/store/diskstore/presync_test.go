package diskstore

import (
	"errors"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/zbridge/zbridge/gateway/store/storetest"
	"github.com/zbridge/zbridge/protocol"
)

// TestPresync: the segment being filled is synced as it fills, ahead of
// the sync that seals it, under SyncOS (whose flusher syncs nothing) and
// under SyncBatch with an interval that does not come; under SyncAlways,
// whose every commit syncs, there is no presync.
func TestPresync(t *testing.T) {
	for _, policy := range []SyncPolicy{SyncOS, SyncBatch} {
		t.Run(string(policy), func(t *testing.T) {
			dir := t.TempDir()
			s := open(t, Config{Dir: dir, Sync: policy, SyncInterval: time.Hour, SegmentSize: 4 << 20})
			defer s.Close()
			every := s.j.presyncEvery
			if every != 128<<10 {
				t.Fatalf("presync every %d bytes of a 4 MiB segment, want 128 KiB", every)
			}
			synced := s.j.synced.Load() // what Open synced
			segs := segmentFiles(t, dir)
			seg := segs[len(segs)-1]
			for size := int64(0); size < 3*every; {
				if err := s.Append(bg, richEvents(20)); err != nil {
					t.Fatal(err)
				}
				fi, err := os.Stat(seg)
				if err != nil {
					t.Fatal(err)
				}
				size = fi.Size()
			}
			if now := segmentFiles(t, dir); !slices.Equal(now, segs) {
				t.Fatalf("segments %v, then %v: the test wants one segment filling", segs, now)
			}
			written := s.j.written.Load()
			for deadline := time.Now().Add(30 * time.Second); s.j.synced.Load() <= synced; time.Sleep(10 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("records through %d synced, %d written, after 3 presync intervals of data: no presync", s.j.synced.Load(), written)
				}
			}
		})
	}
	s := open(t, Config{Dir: t.TempDir(), Sync: SyncAlways})
	defer s.Close()
	if s.j.presyncEvery != 0 {
		t.Fatalf("SyncAlways: presync every %d bytes, want none", s.j.presyncEvery)
	}
}

// BenchmarkAppendStall appends batches of 64 events (~30 KB) to an
// on-disk store with 16 MiB segments under SyncBatch as fast as it takes
// them, and reports the latency of the appends: p50, p99.9 and the
// longest, which is one that started a segment and waited for the sync of
// the one before, with the presyncs (presync=on) and without (off), in
// the same run:
//
//	go test -run '^$' -bench AppendStall -benchtime 4000x -count 3 ./gateway/store/diskstore/
func BenchmarkAppendStall(b *testing.B) {
	for _, presync := range []bool{false, true} {
		name := "presync=off"
		if presync {
			name = "presync=on"
		}
		b.Run(name, func(b *testing.B) {
			s := open(b, Config{Dir: b.TempDir(), SegmentSize: 16 << 20, MaxEvents: 200_000})
			defer s.Close()
			if !presync {
				s.j.wmu.Lock()
				s.j.presyncEvery = 0
				s.j.wmu.Unlock()
			}
			lat := make([]time.Duration, 0, b.N)
			evs := storetest.Events("stall", 64)
			for _, e := range evs {
				e.Raw = "<134>1 2026-12-07T07:00:00Z lnx1 app 42 - - " + e.Text + " some more text to make it two hundred bytes or so, like a syslog line"
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				batch := make([]*protocol.Event, len(evs))
				for k, e := range evs {
					c := *e
					batch[k] = &c
				}
				start := time.Now()
				if err := s.Append(bg, batch); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			slices.Sort(lat)
			q := func(p float64) float64 {
				return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
			}
			b.ReportMetric(q(0.5), "p50-ms")
			b.ReportMetric(q(0.999), "p99.9-ms")
			b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
		})
	}
}

// TestNothingSettledAfterFailure: once a write or sync failed, a sync
// (the presync's, the flusher's) marks nothing synced and deletes nothing:
// the failure may have lost data that a later fsync of the same file
// would not report.
func TestNothingSettledAfterFailure(t *testing.T) {
	s := open(t, Config{Dir: t.TempDir(), Sync: SyncOS, SyncInterval: time.Hour})
	defer s.Close()
	if err := s.Append(bg, richEvents(20)); err != nil {
		t.Fatal(err)
	}
	synced, written := s.j.synced.Load(), s.j.written.Load()
	if synced >= written {
		t.Fatalf("synced %d of %d written before the test's sync", synced, written)
	}
	s.j.fail(errors.New("injected write failure"))
	s.j.smu.Lock()
	err := s.j.settleLocked(true)
	s.j.smu.Unlock()
	if err == nil || s.j.synced.Load() != synced {
		t.Fatalf("settle after a failure: %v, synced %d (was %d, %d written)", err, s.j.synced.Load(), synced, written)
	}
}
