package region

import (
	"os"
	"runtime/debug"
)

// GCPercent is the garbage collector target TuneGC sets.
const GCPercent = 400

// TuneGC sets the Go garbage collector for a region holding maxBytes of
// retained events, unless the operator set GOGC or GOMEMLIMIT: collect when
// the heap has grown by GCPercent (not the default 100), within a soft
// memory limit of three times the retention (at least 1 GiB). A region's
// heap is mostly its retained event stream, which every collection scans;
// collecting a quarter as often roughly halves the relay's CPU per message
// (BenchmarkRelay, 5424: about 400k → 600k msg/s on 2 vCPUs), and the
// memory limit keeps the heap bounded. It changes process-wide settings, so
// only main (and the benchmarks, to measure what main runs) call it.
func TuneGC(maxBytes int64) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(GCPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(max(1<<30, 3*maxBytes))
	}
}
