package region

import (
	"os"
	"runtime/debug"
	"time"
)

// GCPercent is the garbage collector target TuneGC sets.
const GCPercent = 200

// TuneGC sets the Go garbage collector for a region holding maxBytes of
// retained events, unless the operator set GOGC or GOMEMLIMIT: collect when
// the heap has grown by GCPercent (not the default 100), within a soft
// memory limit of three times the retention (at least 1 GiB). A region's
// heap is mostly the events passing through and the embedded store's cache
// of the newest (memstore.DefaultCacheEvents; the older retained events are
// kept outside the heap, see memstore), which every collection scans;
// collecting half as often saves the relay some of that scanning, and the
// memory limit keeps the heap bounded. (It was 400 while the whole retention was on the heap;
// with only the cache there, 400 grew the heap to half a gigabyte between
// collections and each one held the relay up for long enough to make its
// p99 at half its peak rate 90-130 ms, against 14-23 ms at 100 or 200 and
// the best throughput at 200: BenchmarkRelayLatency and
// BenchmarkRelayPeers with GOGC set, in one run.) It changes process-wide
// settings, so only main (and the benchmarks, to measure what main runs)
// call it.
func TuneGC(maxBytes int64) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(GCPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(max(1<<30, 3*maxBytes))
	}
}

// releaseAfterDials waits until the agent pool has made its first attempt
// at every static Linux target (none connecting or waiting for a turn),
// then collects the garbage and returns the memory freed to the operating
// system, once; it returns early when the region stops. Ten thousand SSH
// handshakes allocate about a GiB that is garbage once they are done; with
// GCPercent at 200 the collector would not run until the heap had grown
// to three times what the connections hold, and an idle region keeps what
// it does not collect: its resident memory would stay at its peak. The
// cost is one collection (a few hundred milliseconds of CPU for such a
// region), once.
func (r *Region) releaseAfterDials() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-r.quit:
			return
		case <-t.C:
		}
		if st := r.linux.pool.Stats(); st.Connecting == 0 && st.DialsWaiting == 0 && st.DialsInProgress == 0 {
			break
		}
	}
	start := time.Now()
	debug.FreeOSMemory()
	r.log.WithField("took", time.Since(start).Round(time.Millisecond).String()).
		Info("Linux targets dialled: collected the garbage of their handshakes and returned it to the system")
}
