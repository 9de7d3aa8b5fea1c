package metrics

import (
	"runtime"
	"runtime/debug"
	"time"
)

// RegisterGoMetrics registers the Go runtime's families, under the names
// the Prometheus Go client gives them, so that dashboards made for any Go
// program read them: go_goroutines, go_threads, go_info{version},
// go_sched_gomaxprocs_threads, go_gc_gomemlimit_bytes,
// go_gc_duration_seconds (a summary of the collector's stop-the-world
// pauses), and go_memstats_* (the runtime.MemStats fields: heap, stacks,
// the runtime's own structures, allocations and frees). Each scrape calls
// runtime.ReadMemStats, which stops the world for some microseconds.
//
// The client's go_gc_gogc_percent is left out: its one source,
// runtime/metrics, builds a table when the program starts, which every
// zbridge command would pay for (issue 14).
func (r *Registry) RegisterGoMetrics() {
	c := newGoCollector()
	r.register(c, c.descs()...)
}

// memstatsFamily is a family whose value is read from runtime.MemStats.
type memstatsFamily struct {
	d   *desc
	get func(*runtime.MemStats) float64
}

type goCollector struct {
	goroutines, threads, info, gomaxprocs, memlimit, gcDuration *desc
	memstats                                                    []memstatsFamily
}

func newGoCollector() *goCollector {
	c := &goCollector{
		goroutines: newDesc("go_goroutines", "Goroutines that exist now.", kindGauge, nil, nil),
		threads:    newDesc("go_threads", "OS threads the Go runtime has created.", kindGauge, nil, nil),
		info:       newDesc("go_info", "The Go version the program was built with, as its label; the value is 1.", kindGauge, []string{"version"}, nil),
		gomaxprocs: newDesc("go_sched_gomaxprocs_threads", "GOMAXPROCS: the OS threads that may run Go code at once.", kindGauge, nil, nil),
		memlimit:   newDesc("go_gc_gomemlimit_bytes", "GOMEMLIMIT: the Go runtime's soft memory limit (math.MaxInt64 when none).", kindGauge, nil, nil),
		gcDuration: newDesc("go_gc_duration_seconds",
			"Stop-the-world pauses of the garbage collector, in seconds: quantiles of the last 256 or fewer, and the sum and count of all.",
			kindSummary, nil, []float64{0, 0.25, 0.5, 0.75, 1}),
	}
	for _, f := range []struct {
		name string
		kind kind
		help string
		get  func(*runtime.MemStats) uint64
	}{
		{"go_memstats_alloc_bytes", kindGauge, "Bytes of heap objects allocated and not yet freed (MemStats.Alloc).",
			func(m *runtime.MemStats) uint64 { return m.Alloc }},
		{"go_memstats_alloc_bytes_total", kindCounter, "Bytes of heap objects allocated, freed ones included (MemStats.TotalAlloc).",
			func(m *runtime.MemStats) uint64 { return m.TotalAlloc }},
		{"go_memstats_buck_hash_sys_bytes", kindGauge, "Bytes of the profiling bucket hash table (MemStats.BuckHashSys).",
			func(m *runtime.MemStats) uint64 { return m.BuckHashSys }},
		{"go_memstats_frees_total", kindCounter, "Heap objects freed (MemStats.Frees).",
			func(m *runtime.MemStats) uint64 { return m.Frees }},
		{"go_memstats_gc_sys_bytes", kindGauge, "Bytes of the garbage collector's metadata (MemStats.GCSys).",
			func(m *runtime.MemStats) uint64 { return m.GCSys }},
		{"go_memstats_heap_alloc_bytes", kindGauge, "Bytes of heap objects allocated and not yet freed (MemStats.HeapAlloc).",
			func(m *runtime.MemStats) uint64 { return m.HeapAlloc }},
		{"go_memstats_heap_idle_bytes", kindGauge, "Bytes of heap spans with no object, returned to the OS or not (MemStats.HeapIdle).",
			func(m *runtime.MemStats) uint64 { return m.HeapIdle }},
		{"go_memstats_heap_inuse_bytes", kindGauge, "Bytes of heap spans with at least one object (MemStats.HeapInuse).",
			func(m *runtime.MemStats) uint64 { return m.HeapInuse }},
		{"go_memstats_heap_objects", kindGauge, "Heap objects allocated and not yet freed (MemStats.HeapObjects).",
			func(m *runtime.MemStats) uint64 { return m.HeapObjects }},
		{"go_memstats_heap_released_bytes", kindGauge, "Bytes of heap returned to the OS (MemStats.HeapReleased).",
			func(m *runtime.MemStats) uint64 { return m.HeapReleased }},
		{"go_memstats_heap_sys_bytes", kindGauge, "Bytes of heap address space obtained from the OS (MemStats.HeapSys).",
			func(m *runtime.MemStats) uint64 { return m.HeapSys }},
		{"go_memstats_mallocs_total", kindCounter, "Heap objects allocated, freed ones included (MemStats.Mallocs).",
			func(m *runtime.MemStats) uint64 { return m.Mallocs }},
		{"go_memstats_mcache_inuse_bytes", kindGauge, "Bytes of mcache structures in use (MemStats.MCacheInuse).",
			func(m *runtime.MemStats) uint64 { return m.MCacheInuse }},
		{"go_memstats_mcache_sys_bytes", kindGauge, "Bytes obtained from the OS for mcache structures (MemStats.MCacheSys).",
			func(m *runtime.MemStats) uint64 { return m.MCacheSys }},
		{"go_memstats_mspan_inuse_bytes", kindGauge, "Bytes of mspan structures in use (MemStats.MSpanInuse).",
			func(m *runtime.MemStats) uint64 { return m.MSpanInuse }},
		{"go_memstats_mspan_sys_bytes", kindGauge, "Bytes obtained from the OS for mspan structures (MemStats.MSpanSys).",
			func(m *runtime.MemStats) uint64 { return m.MSpanSys }},
		{"go_memstats_next_gc_bytes", kindGauge, "The heap size at which the next garbage collection is to start (MemStats.NextGC).",
			func(m *runtime.MemStats) uint64 { return m.NextGC }},
		{"go_memstats_other_sys_bytes", kindGauge, "Bytes of the runtime's other allocations off the heap (MemStats.OtherSys).",
			func(m *runtime.MemStats) uint64 { return m.OtherSys }},
		{"go_memstats_stack_inuse_bytes", kindGauge, "Bytes of goroutine stacks taken from the heap (MemStats.StackInuse).",
			func(m *runtime.MemStats) uint64 { return m.StackInuse }},
		{"go_memstats_stack_sys_bytes", kindGauge, "Bytes of stacks: goroutines' and the OS threads' (MemStats.StackSys).",
			func(m *runtime.MemStats) uint64 { return m.StackSys }},
		{"go_memstats_sys_bytes", kindGauge, "Bytes obtained from the OS by the Go runtime (MemStats.Sys).",
			func(m *runtime.MemStats) uint64 { return m.Sys }},
	} {
		get := f.get
		c.memstats = append(c.memstats, memstatsFamily{newDesc(f.name, f.help, f.kind, nil, nil),
			func(m *runtime.MemStats) float64 { return float64(get(m)) }})
	}
	c.memstats = append(c.memstats, memstatsFamily{
		newDesc("go_memstats_last_gc_time_seconds", "When the last garbage collection ended, in seconds since 1970 (0 before the first; MemStats.LastGC).", kindGauge, nil, nil),
		func(m *runtime.MemStats) float64 { return float64(m.LastGC) / 1e9 }})
	return c
}

func (c *goCollector) descs() []*desc {
	ds := []*desc{c.goroutines, c.threads, c.info, c.gomaxprocs, c.memlimit, c.gcDuration}
	for _, f := range c.memstats {
		ds = append(ds, f.d)
	}
	return ds
}

func (c *goCollector) collect(g *gathering) {
	g.add(c.goroutines, series{value: float64(runtime.NumGoroutine())})
	threads, _ := runtime.ThreadCreateProfile(nil)
	g.add(c.threads, series{value: float64(threads)})
	g.add(c.info, series{labelValues: []string{runtime.Version()}, value: 1})
	g.add(c.gomaxprocs, series{value: float64(runtime.GOMAXPROCS(0))})
	g.add(c.memlimit, series{value: float64(debug.SetMemoryLimit(-1))}) // a negative limit reads it, changing nothing

	stats := debug.GCStats{PauseQuantiles: make([]time.Duration, len(c.gcDuration.bounds))}
	debug.ReadGCStats(&stats)
	s := series{sum: stats.PauseTotal.Seconds(), count: uint64(stats.NumGC), quantiles: make([]float64, len(stats.PauseQuantiles))}
	for i, q := range stats.PauseQuantiles {
		s.quantiles[i] = q.Seconds()
	}
	g.add(c.gcDuration, s)

	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	for _, f := range c.memstats {
		g.add(f.d, series{value: f.get(&ms)})
	}
}
