package metrics

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"
)

// Counter is a value that only goes up, such as events received. Its
// methods are safe for concurrent use and do not allocate.
type Counter struct {
	whole atomic.Uint64 // the whole increments (Inc, and Add of whole numbers)
	frac  atomic.Uint64 // the float64 bits of the sum of the other increments
}

func newCounter() *Counter { return new(Counter) }

// Inc adds one.
func (c *Counter) Inc() { c.whole.Add(1) }

// Add adds v, which must not be negative: Add panics if it is, as a
// counter that went down would read as a restart.
func (c *Counter) Add(v float64) {
	switch {
	case v < 0:
		panic(fmt.Errorf("metrics: counter decreased by %v", -v))
	case v == math.Trunc(v) && v < 1<<53:
		c.whole.Add(uint64(v))
	default:
		addFloat(&c.frac, v)
	}
}

// Value returns the counter's value.
func (c *Counter) Value() float64 {
	return float64(c.whole.Load()) + math.Float64frombits(c.frac.Load())
}

func (c *Counter) read(s *series) { s.value = c.Value() }

// Gauge is a value that goes up and down, such as sessions open. Its
// methods are safe for concurrent use and do not allocate.
type Gauge struct {
	bits atomic.Uint64 // the float64 bits of the value
}

func newGauge() *Gauge { return new(Gauge) }

// Set sets the gauge to v.
func (g *Gauge) Set(v float64) { g.bits.Store(math.Float64bits(v)) }

// Inc adds one.
func (g *Gauge) Inc() { addFloat(&g.bits, 1) }

// Dec subtracts one.
func (g *Gauge) Dec() { addFloat(&g.bits, -1) }

// Add adds v, which may be negative.
func (g *Gauge) Add(v float64) { addFloat(&g.bits, v) }

// Sub subtracts v.
func (g *Gauge) Sub(v float64) { addFloat(&g.bits, -v) }

// Value returns the gauge's value.
func (g *Gauge) Value() float64 { return math.Float64frombits(g.bits.Load()) }

func (g *Gauge) read(s *series) { s.value = g.Value() }

// addFloat adds v to the float64 whose bits f holds.
func addFloat(f *atomic.Uint64, v float64) {
	for {
		old := f.Load()
		if f.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

// Histogram counts observations, such as latencies, in buckets by their
// upper bounds, and keeps their sum. Observe is safe for concurrent use,
// lock-free and does not allocate.
type Histogram struct {
	bounds []float64       // the buckets' upper bounds, strictly increasing; +Inf left implicit
	counts []atomic.Uint64 // counts[i]: observations in (bounds[i-1], bounds[i]]; the last, above every bound
	sum    atomic.Uint64   // the float64 bits of the sum of the observations
}

func newHistogram(bounds []float64) *Histogram {
	return &Histogram{bounds: bounds, counts: make([]atomic.Uint64, len(bounds)+1)}
}

// Observe adds v to the bucket of the least upper bound at or above it
// (NaN and values above every bound to +Inf's only) and to the sum.
func (h *Histogram) Observe(v float64) {
	h.counts[sort.SearchFloat64s(h.bounds, v)].Add(1)
	addFloat(&h.sum, v)
}

// read sets s to the histogram's cumulative bucket counts, count and sum.
// The count is the sum of the buckets, so that a scrape always has +Inf
// equal to the count, whatever Observe calls run meanwhile; the sum may
// include an observation the buckets do not yet, or miss one they have.
func (h *Histogram) read(s *series) {
	s.buckets = make([]uint64, len(h.bounds))
	var n uint64
	for i := range h.counts {
		n += h.counts[i].Load()
		if i < len(s.buckets) {
			s.buckets[i] = n
		}
	}
	s.count = n
	s.sum = math.Float64frombits(h.sum.Load())
}

// CounterVec is a family of counters told apart by their label values.
type CounterVec struct{ v *vec[Counter] }

// WithLabelValues returns the counter with the given label values, one
// for each of the family's label names in order, making it at the first
// call. It panics if their number is wrong. Invalid UTF-8 in a value is
// replaced by U+FFFD. It does not allocate once the counter exists.
func (v *CounterVec) WithLabelValues(values ...string) *Counter { return v.v.with(values) }

// GaugeVec is a family of gauges told apart by their label values.
type GaugeVec struct{ v *vec[Gauge] }

// WithLabelValues returns the gauge with the given label values, as
// [CounterVec.WithLabelValues] does for counters.
func (v *GaugeVec) WithLabelValues(values ...string) *Gauge { return v.v.with(values) }

// HistogramVec is a family of histograms told apart by their label values.
type HistogramVec struct{ v *vec[Histogram] }

// WithLabelValues returns the histogram with the given label values, as
// [CounterVec.WithLabelValues] does for counters.
func (v *HistogramVec) WithLabelValues(values ...string) *Histogram { return v.v.with(values) }

// vec is a family of metrics of type M, one per set of label values. A
// family without labels has one, made at registration.
type vec[M any] struct {
	d        *desc
	newChild func() *M
	read     func(*M, *series)

	mu       sync.RWMutex // guards children
	children map[string]*child[M]
}

// child is one metric of a vec and its label values.
type child[M any] struct {
	labelValues []string
	m           *M
}

func newVec[M any](d *desc, newChild func() *M, read func(*M, *series)) *vec[M] {
	return &vec[M]{d: d, newChild: newChild, read: read, children: map[string]*child[M]{}}
}

// with returns the child with the given label values, making it if need be.
func (v *vec[M]) with(values []string) *M {
	if len(values) != len(v.d.labelNames) {
		panic(fmt.Errorf("%w: %s: %d, want %d (%s)", ErrLabelValues, v.d.name, len(values), len(v.d.labelNames),
			strings.Join(v.d.labelNames, ", ")))
	}
	var buf [128]byte
	key := buf[:0]
	for i, s := range values {
		if !utf8.ValidString(s) {
			s = strings.ToValidUTF8(s, "\uFFFD")
		}
		if i > 0 {
			key = append(key, 0xff) // never in valid UTF-8
		}
		key = append(key, s...)
	}
	v.mu.RLock()
	c := v.children[string(key)]
	v.mu.RUnlock()
	if c != nil {
		return c.m
	}

	v.mu.Lock()
	defer v.mu.Unlock()
	if c := v.children[string(key)]; c != nil {
		return c.m
	}
	lv := make([]string, len(values))
	for i, s := range values {
		lv[i] = strings.ToValidUTF8(s, "\uFFFD")
	}
	c = &child[M]{labelValues: lv, m: v.newChild()}
	v.children[string(key)] = c
	return c.m
}

func (v *vec[M]) collect(g *gathering) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	for _, c := range v.children {
		s := series{labelValues: c.labelValues}
		v.read(c.m, &s)
		g.add(v.d, s)
	}
}
