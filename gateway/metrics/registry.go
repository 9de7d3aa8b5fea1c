package metrics

import (
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"
)

// Type is the type of the samples a [Registry.Collect] family emits.
type Type int

// The types a [Registry.Collect] family may have.
const (
	TypeCounter Type = iota + 1
	TypeGauge
	TypeUntyped
)

// kind is a family's type, as its TYPE line names it.
type kind uint8

const (
	kindCounter kind = iota + 1
	kindGauge
	kindUntyped
	kindHistogram
	kindSummary
)

func (k kind) String() string {
	switch k {
	case kindCounter:
		return "counter"
	case kindGauge:
		return "gauge"
	case kindHistogram:
		return "histogram"
	case kindSummary:
		return "summary"
	}
	return "untyped"
}

// DurationBuckets returns the upper bounds, in seconds, of the buckets of a
// histogram of latencies: 100 µs to 60 s, about three to a decade, so that
// one histogram resolves a relay that takes a fraction of a millisecond and
// a command that takes tens of seconds. Each call returns a new slice.
func DurationBuckets() []float64 {
	return []float64{
		.0001, .00025, .0005,
		.001, .0025, .005,
		.01, .025, .05,
		.1, .25, .5,
		1, 2.5, 5,
		10, 25, 60,
	}
}

// A desc describes one family: its name, what its HELP and TYPE lines say,
// its label names, and for a histogram the upper bounds of its buckets (+Inf
// left implicit), for a summary its quantiles.
type desc struct {
	name, help string
	kind       kind
	labelNames []string
	bounds     []float64
}

// A series is one set of label values of a family, in the order of its
// label names, and its value at a scrape.
type series struct {
	labelValues []string
	value       float64   // a counter's, gauge's or untyped sample's
	sum         float64   // a histogram's or summary's
	count       uint64    // a histogram's or summary's
	buckets     []uint64  // a histogram's cumulative counts, one per bound (+Inf is count)
	quantiles   []float64 // a summary's values, one per quantile
}

// A collector adds the series of its families to a gathering at each
// scrape. It must be safe for concurrent use.
type collector interface {
	collect(g *gathering)
}

// A gathering is what one scrape collected: each family's series, in no
// order, and what failed.
type gathering struct {
	series map[*desc][]series
	errs   []error
}

func (g *gathering) add(d *desc, s series) { g.series[d] = append(g.series[d], s) }

func (g *gathering) fail(err error) { g.errs = append(g.errs, err) }

// Registry is a set of metric families, served by [Registry.Handler] and
// written by [Registry.WriteTo]. The zero Registry is empty and ready to
// use.
type Registry struct {
	mu         sync.Mutex // guards the following fields
	collectors []collector
	descs      []*desc           // sorted by name
	exposed    map[string]string // each name a family's samples have → the family's name

	handlerOnce sync.Once
	handler     *handlerMetrics // set by handlerOnce, in the first Handler call
}

// NewRegistry returns an empty Registry.
func NewRegistry() *Registry { return &Registry{} }

// register checks each of ds against the classic (pre-UTF-8) Prometheus
// rules, which every scraper and the text format 0.0.4 accept unquoted, and
// against the families registered already, then adds c. It panics on the
// first that fails, having registered nothing.
func (r *Registry) register(c collector, ds ...*desc) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.exposed == nil {
		r.exposed = map[string]string{}
	}
	var added []string
	for _, d := range ds {
		if err := checkDesc(d); err != nil {
			r.unexposeLocked(added)
			panic(err)
		}
		for _, name := range sampleNames(d) {
			if other, ok := r.exposed[name]; ok {
				r.unexposeLocked(added)
				if other == d.name {
					panic(fmt.Errorf("metrics: %s: registered twice", d.name))
				}
				panic(fmt.Errorf("metrics: %s: its samples named %s clash with family %s", d.name, name, other))
			}
			r.exposed[name] = d.name
			added = append(added, name)
		}
	}
	for _, d := range ds {
		i, _ := slices.BinarySearchFunc(r.descs, d.name, func(e *desc, name string) int { return strings.Compare(e.name, name) })
		r.descs = slices.Insert(r.descs, i, d)
	}
	r.collectors = append(r.collectors, c)
}

// unexposeLocked undoes what a failed register added to r.exposed.
func (r *Registry) unexposeLocked(names []string) {
	for _, name := range names {
		delete(r.exposed, name)
	}
}

// sampleNames returns the names d takes in the text format: its own, and
// its samples' when they differ (a histogram's and a summary's have
// suffixes).
func sampleNames(d *desc) []string {
	switch d.kind {
	case kindHistogram:
		return []string{d.name, d.name + "_bucket", d.name + "_sum", d.name + "_count"}
	case kindSummary:
		return []string{d.name, d.name + "_sum", d.name + "_count"}
	}
	return []string{d.name}
}

// checkDesc reports what is wrong with d: a name or label name that breaks
// the classic rules, a label name given twice or reserved for the kind,
// bucket bounds out of order.
func checkDesc(d *desc) error {
	if !validMetricName(d.name) {
		return fmt.Errorf("metrics: invalid metric name %q", d.name)
	}
	for i, l := range d.labelNames {
		switch {
		case !validLabelName(l):
			return fmt.Errorf("metrics: %s: invalid label name %q", d.name, l)
		case slices.Contains(d.labelNames[:i], l):
			return fmt.Errorf("metrics: %s: label %q given twice", d.name, l)
		case l == "le" && d.kind == kindHistogram, l == "quantile" && d.kind == kindSummary:
			return fmt.Errorf("metrics: %s: label %q is the %s's own", d.name, l, d.kind)
		}
	}
	for i, b := range d.bounds {
		if math.IsNaN(b) || i > 0 && b <= d.bounds[i-1] {
			return fmt.Errorf("metrics: %s: bounds %v are not strictly increasing", d.name, d.bounds)
		}
	}
	return nil
}

// validMetricName reports whether name matches [a-zA-Z_:][a-zA-Z0-9_:]*.
func validMetricName(name string) bool {
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == ':' || c >= '0' && c <= '9' && i > 0) {
			return false
		}
	}
	return name != ""
}

// validLabelName reports whether name matches [a-zA-Z_][a-zA-Z0-9_]* and
// does not start with "__", which Prometheus reserves.
func validLabelName(name string) bool {
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c >= '0' && c <= '9' && i > 0) {
			return false
		}
	}
	return name != "" && !strings.HasPrefix(name, "__")
}

// newDesc returns the desc of a family registered by a New method, its
// help made valid UTF-8 and its label names copied from the caller's.
func newDesc(name, help string, k kind, labelNames []string, bounds []float64) *desc {
	return &desc{name: name, help: strings.ToValidUTF8(help, "\uFFFD"), kind: k,
		labelNames: slices.Clone(labelNames), bounds: bounds}
}

// NewCounter registers and returns a counter.
func (r *Registry) NewCounter(name, help string) *Counter {
	v := newVec(newDesc(name, help, kindCounter, nil, nil), newCounter, (*Counter).read)
	r.register(v, v.d)
	return v.with(nil)
}

// NewGauge registers and returns a gauge.
func (r *Registry) NewGauge(name, help string) *Gauge {
	v := newVec(newDesc(name, help, kindGauge, nil, nil), newGauge, (*Gauge).read)
	r.register(v, v.d)
	return v.with(nil)
}

// NewCounterVec registers and returns a family of counters told apart by
// the values of labelNames. Every set of values used stays in the family
// until the program ends, so they must come from a small set; on a hot
// path, look the counter up once (WithLabelValues) and keep it.
func (r *Registry) NewCounterVec(name, help string, labelNames ...string) *CounterVec {
	v := newVec(newDesc(name, help, kindCounter, labelNames, nil), newCounter, (*Counter).read)
	r.register(v, v.d)
	return &CounterVec{v}
}

// NewGaugeVec registers and returns a family of gauges told apart by the
// values of labelNames. As with [Registry.NewCounterVec], label values
// must come from a small set; for a set that changes, use
// [Registry.Collect].
func (r *Registry) NewGaugeVec(name, help string, labelNames ...string) *GaugeVec {
	v := newVec(newDesc(name, help, kindGauge, labelNames, nil), newGauge, (*Gauge).read)
	r.register(v, v.d)
	return &GaugeVec{v}
}

// NewHistogram registers and returns a histogram with the given bucket
// upper bounds, which must be strictly increasing ([DurationBuckets] if
// nil; a last bound of +Inf is implied and may be left out). Observe is a
// few atomic operations and does not allocate.
func (r *Registry) NewHistogram(name, help string, buckets []float64) *Histogram {
	d := newDesc(name, help, kindHistogram, nil, histogramBounds(buckets))
	v := newVec(d, func() *Histogram { return newHistogram(d.bounds) }, (*Histogram).read)
	r.register(v, v.d)
	return v.with(nil)
}

// NewHistogramVec registers and returns a family of histograms told apart by
// the values of labelNames, with the given bucket upper bounds
// ([DurationBuckets] if nil). As with [Registry.NewCounterVec], label values
// must come from a small set.
func (r *Registry) NewHistogramVec(name, help string, buckets []float64, labelNames ...string) *HistogramVec {
	d := newDesc(name, help, kindHistogram, labelNames, histogramBounds(buckets))
	v := newVec(d, func() *Histogram { return newHistogram(d.bounds) }, (*Histogram).read)
	r.register(v, v.d)
	return &HistogramVec{v}
}

// histogramBounds returns a copy of buckets, or DurationBuckets if nil,
// less a last bound of +Inf, which every histogram has.
func histogramBounds(buckets []float64) []float64 {
	if buckets == nil {
		return DurationBuckets()
	}
	b := slices.Clone(buckets)
	if n := len(b); n > 0 && math.IsInf(b[n-1], 1) {
		b = b[:n-1]
	}
	return b
}

// NewCounterFunc registers a counter whose value fn returns at each scrape.
// fn must be safe for concurrent use and its result must never decrease.
func (r *Registry) NewCounterFunc(name, help string, fn func() float64) {
	r.newFunc(newDesc(name, help, kindCounter, nil, nil), fn)
}

// NewGaugeFunc registers a gauge whose value fn returns at each scrape. fn
// must be safe for concurrent use.
func (r *Registry) NewGaugeFunc(name, help string, fn func() float64) {
	r.newFunc(newDesc(name, help, kindGauge, nil, nil), fn)
}

func (r *Registry) newFunc(d *desc, fn func() float64) {
	if fn == nil {
		panic(fmt.Errorf("metrics: %s: nil func", d.name))
	}
	r.register(funcCollector{d, fn}, d)
}

// funcCollector is a family registered by NewCounterFunc or NewGaugeFunc.
type funcCollector struct {
	d  *desc
	fn func() float64
}

func (c funcCollector) collect(g *gathering) { g.add(c.d, series{value: c.fn()}) }

// Collect registers a family of the given type whose samples fn emits at
// each scrape, one call of emit a sample, with one value for each of
// labelNames in order:
//
//	reg.Collect("zbridge_agent_queue_depth", "Events queued per agent.", metrics.TypeGauge,
//		[]string{"agent"}, func(emit func(float64, ...string)) {
//			for agent, n := range depths() {
//				emit(float64(n), agent)
//			}
//		})
//
// It suits sets that change, such as one gauge per connected agent, and
// counts another component keeps. Invalid UTF-8 in a label value is
// replaced by U+FFFD. A sample with the wrong number of label values
// ([ErrLabelValues]), or the same values as an earlier one
// ([ErrDuplicate]), is left out of the scrape, which reports the error (the
// handler logs it and serves the rest). fn must be safe for concurrent use
// and must not keep emit after it returns.
func (r *Registry) Collect(name, help string, typ Type, labelNames []string, fn func(emit func(value float64, labelValues ...string))) {
	var k kind
	switch typ {
	case TypeCounter:
		k = kindCounter
	case TypeGauge:
		k = kindGauge
	case TypeUntyped:
		k = kindUntyped
	default:
		panic(fmt.Errorf("metrics: %s: unsupported type %d", name, typ))
	}
	if fn == nil {
		panic(fmt.Errorf("metrics: %s: nil func", name))
	}
	d := newDesc(name, help, k, labelNames, nil)
	r.register(&emitCollector{d, fn}, d)
}

// emitCollector is a family registered by Collect.
type emitCollector struct {
	d  *desc
	fn func(emit func(value float64, labelValues ...string))
}

func (c *emitCollector) collect(g *gathering) {
	c.fn(func(value float64, labelValues ...string) {
		if len(labelValues) != len(c.d.labelNames) {
			g.fail(fmt.Errorf("%w: %s: %d, want %d (%s)", ErrLabelValues, c.d.name,
				len(labelValues), len(c.d.labelNames), strings.Join(c.d.labelNames, ", ")))
			return
		}
		vs := make([]string, len(labelValues)) // the caller may reuse its slice
		for i, v := range labelValues {
			if !utf8.ValidString(v) {
				v = strings.ToValidUTF8(v, "\uFFFD")
			}
			vs[i] = v
		}
		g.add(c.d, series{labelValues: vs, value: value})
	})
}

// gather collects every family of r. It returns the families that have
// series, sorted by name, each with its series sorted by label values, and
// the errors the collectors reported joined; a family's series emitted
// twice is kept once and reported.
func (r *Registry) gather() ([]*desc, map[*desc][]series, error) {
	r.mu.Lock()
	cs, ds := slices.Clone(r.collectors), slices.Clone(r.descs)
	r.mu.Unlock()

	g := &gathering{series: make(map[*desc][]series, len(ds))}
	for _, c := range cs {
		c.collect(g)
	}
	n := 0
	for _, d := range ds {
		ss := g.series[d]
		if len(ss) == 0 {
			continue
		}
		slices.SortStableFunc(ss, func(a, b series) int { return slices.Compare(a.labelValues, b.labelValues) })
		kept := ss[:1]
		for _, s := range ss[1:] {
			if slices.Equal(s.labelValues, kept[len(kept)-1].labelValues) {
				g.fail(fmt.Errorf("%w: %s%s", ErrDuplicate, d.name, appendLabels(nil, d.labelNames, s.labelValues)))
				continue
			}
			kept = append(kept, s)
		}
		g.series[d] = kept
		ds[n] = d
		n++
	}
	return ds[:n], g.series, errors.Join(g.errs...)
}

// WriteTo writes every family with samples to w in the Prometheus text
// format 0.0.4, sorted by name, each family's series sorted by their label
// values. It returns the bytes written and the first error writing to w;
// if that succeeded, an error if some collector failed, in which case the
// rest was still written.
func (r *Registry) WriteTo(w io.Writer) (int64, error) {
	ds, ss, gatherErr := r.gather()
	var b []byte
	for _, d := range ds {
		b = appendFamily(b, d, ss[d])
	}
	if len(b) == 0 {
		return 0, gatherErr
	}
	n, err := w.Write(b)
	if err != nil {
		return int64(n), fmt.Errorf("metrics: write: %w", err)
	}
	return int64(n), gatherErr
}
