package metrics

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"
)

// Counter is a count that only goes up. Make one with
// [Registry.NewCounter] or [CounterVec.With].
type Counter struct {
	v atomic.Uint64
}

// Inc adds 1: a single atomic add.
func (c *Counter) Inc() { c.v.Add(1) }

// Add adds n.
func (c *Counter) Add(n uint64) { c.v.Add(n) }

// Value returns the count.
func (c *Counter) Value() uint64 { return c.v.Load() }

// Gauge is a value that goes up and down. Make one with
// [Registry.NewGauge].
type Gauge struct {
	bits atomic.Uint64 // math.Float64bits of the value
}

// Set sets the gauge to v.
func (g *Gauge) Set(v float64) { g.bits.Store(math.Float64bits(v)) }

// Add adds d, which may be negative.
func (g *Gauge) Add(d float64) {
	for {
		old := g.bits.Load()
		if g.bits.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+d)) {
			return
		}
	}
}

// Inc adds 1.
func (g *Gauge) Inc() { g.Add(1) }

// Dec subtracts 1.
func (g *Gauge) Dec() { g.Add(-1) }

// Value returns the gauge's value.
func (g *Gauge) Value() float64 { return math.Float64frombits(g.bits.Load()) }

// CounterVec is a family of counters with fixed label names, one counter
// for each set of label values. Make one with [Registry.NewCounterVec].
type CounterVec struct {
	name       string
	labelNames []string

	mu       sync.RWMutex // guards children
	children map[string]*vecChild
}

type vecChild struct {
	labels string // formatted, as in sample
	c      Counter
}

// With returns the counter for labelValues, one value for each label name in
// order, making it on first use. It panics if the number of values is wrong.
// With looks the values up in a map; on a hot path, call it once and keep
// the *Counter. Every set of values used stays in the family until the
// program ends, so label values must come from a small set.
func (v *CounterVec) With(labelValues ...string) *Counter {
	if len(labelValues) != len(v.labelNames) {
		panic(fmt.Sprintf("metrics: %s: %d label values for %d labels", v.name, len(labelValues), len(v.labelNames)))
	}
	for i, val := range labelValues {
		if !utf8.ValidString(val) {
			// Keyed as written, so that values that differ only in
			// invalid bytes are one series.
			labelValues = slices.Clone(labelValues)
			labelValues[i] = strings.ToValidUTF8(val, "\uFFFD")
		}
	}
	// The key is built on the stack for the usual short values, and
	// m[string(b)] does not copy b, so finding an existing counter does not
	// allocate.
	key := appendVecKey(make([]byte, 0, 128), labelValues)
	v.mu.RLock()
	ch := v.children[string(key)]
	v.mu.RUnlock()
	if ch != nil {
		return &ch.c
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if ch = v.children[string(key)]; ch == nil {
		ch = &vecChild{labels: v.formatLabels(labelValues)}
		v.children[string(key)] = ch
	}
	return &ch.c
}

func (v *CounterVec) formatLabels(values []string) string {
	if len(values) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteByte('{')
	for i, val := range values {
		if i > 0 {
			b.WriteByte(',')
		}
		writeLabel(&b, v.labelNames[i], val)
	}
	b.WriteByte('}')
	return b.String()
}

func (v *CounterVec) collect(s []sample) ([]sample, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	for _, ch := range v.children {
		s = append(s, sample{labels: ch.labels, value: strconv.FormatUint(ch.c.Value(), 10)})
	}
	return s, nil
}

// appendVecKey appends the label values to b unambiguously: each is
// prefixed by its length, since a value may hold any byte.
func appendVecKey(b []byte, values []string) []byte {
	for _, val := range values {
		b = strconv.AppendInt(b, int64(len(val)), 10)
		b = append(b, ':')
		b = append(b, val...)
	}
	return b
}
