package metrics

import (
	"runtime"
	"runtime/debug"
	"testing"

	dto "github.com/prometheus/client_model/go"
)

// TestGoMetrics scrapes the Go runtime's families and checks them against
// what the runtime says through its other interfaces.
func TestGoMetrics(t *testing.T) {
	old := debug.SetMemoryLimit(3 << 30)
	defer debug.SetMemoryLimit(old)
	runtime.GC() // so that the pause summary has one at least

	r := NewRegistry()
	r.RegisterGoMetrics()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	text := scrape(t, r)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fams := parse(t, text)

	c := newGoCollector()
	if got, want := len(fams), len(c.descs()); got != want {
		t.Errorf("%d families, want %d", got, want)
	}
	gauge, counter := dto.MetricType_GAUGE, dto.MetricType_COUNTER
	for name, typ := range map[string]dto.MetricType{
		"go_goroutines":                    gauge,
		"go_threads":                       gauge,
		"go_info":                          gauge,
		"go_gc_duration_seconds":           dto.MetricType_SUMMARY,
		"go_gc_gomemlimit_bytes":           gauge,
		"go_sched_gomaxprocs_threads":      gauge,
		"go_memstats_alloc_bytes":          gauge,
		"go_memstats_alloc_bytes_total":    counter,
		"go_memstats_heap_alloc_bytes":     gauge,
		"go_memstats_heap_inuse_bytes":     gauge,
		"go_memstats_heap_sys_bytes":       gauge,
		"go_memstats_last_gc_time_seconds": gauge,
		"go_memstats_mallocs_total":        counter,
		"go_memstats_frees_total":          counter,
		"go_memstats_next_gc_bytes":        gauge,
		"go_memstats_stack_inuse_bytes":    gauge,
		"go_memstats_sys_bytes":            gauge,
	} {
		switch mf := fams[name]; {
		case mf == nil:
			t.Errorf("%s missing", name)
		case mf.GetType() != typ:
			t.Errorf("%s: type %v, want %v", name, mf.GetType(), typ)
		}
	}
	v := func(name string) float64 { return value(fams[name].GetMetric()[0]) }

	if got := v("go_gc_gomemlimit_bytes"); got != 3<<30 {
		t.Errorf("go_gc_gomemlimit_bytes = %v, want 3 GiB (set)", got)
	}
	if got, want := v("go_sched_gomaxprocs_threads"), float64(runtime.GOMAXPROCS(0)); got != want {
		t.Errorf("go_sched_gomaxprocs_threads = %v, want %v", got, want)
	}
	if got := fams["go_info"].GetMetric()[0].GetLabel()[0].GetValue(); got != runtime.Version() {
		t.Errorf("go_info version %q, want %q", got, runtime.Version())
	}
	if v("go_goroutines") < 1 || v("go_threads") < 1 || v("go_memstats_last_gc_time_seconds") < 1e9 {
		t.Errorf("goroutines %v, threads %v, last GC %v", v("go_goroutines"), v("go_threads"), v("go_memstats_last_gc_time_seconds"))
	}
	gc := fams["go_gc_duration_seconds"].GetMetric()[0].GetSummary()
	var stats debug.GCStats
	debug.ReadGCStats(&stats)
	if gc.GetSampleCount() < 1 || gc.GetSampleCount() > uint64(stats.NumGC) || len(gc.GetQuantile()) != 5 ||
		gc.GetQuantile()[4].GetValue() < gc.GetQuantile()[0].GetValue() || gc.GetSampleSum() <= 0 {
		t.Errorf("go_gc_duration_seconds %v; %d collections now", gc, stats.NumGC)
	}

	// The heap families are the runtime.MemStats fields they are named
	// after, read just before and after the scrape (whose own allocations
	// move them): the totals between the two, the sizes of the same order.
	for name, bounds := range map[string][2]uint64{
		"go_memstats_mallocs_total":     {before.Mallocs, ms.Mallocs},
		"go_memstats_frees_total":       {before.Frees, ms.Frees},
		"go_memstats_alloc_bytes_total": {before.TotalAlloc, ms.TotalAlloc},
	} {
		// The runtime counts a span's free slots as allocated while a P
		// holds it, which it may have let go of by the second read.
		if got := v(name); got < float64(bounds[0])*0.9 || got > float64(bounds[1])*1.1 {
			t.Errorf("%s = %v, MemStats said %d before, %d after", name, got, bounds[0], bounds[1])
		}
	}
	for name, want := range map[string]uint64{
		"go_memstats_heap_sys_bytes":    ms.HeapSys,
		"go_memstats_sys_bytes":         ms.Sys,
		"go_memstats_stack_sys_bytes":   ms.StackSys,
		"go_memstats_mspan_sys_bytes":   ms.MSpanSys,
		"go_memstats_mcache_sys_bytes":  ms.MCacheSys,
		"go_memstats_heap_alloc_bytes":  ms.HeapAlloc,
		"go_memstats_heap_inuse_bytes":  ms.HeapInuse,
		"go_memstats_stack_inuse_bytes": ms.StackInuse,
	} {
		if got := v(name); got < float64(want)/4 || got > float64(want)*4 {
			t.Errorf("%s = %v, MemStats says %d", name, got, want)
		}
	}
	if v("go_memstats_heap_alloc_bytes") != v("go_memstats_alloc_bytes") {
		t.Errorf("go_memstats_heap_alloc_bytes %v != go_memstats_alloc_bytes %v", v("go_memstats_heap_alloc_bytes"), v("go_memstats_alloc_bytes"))
	}
}
