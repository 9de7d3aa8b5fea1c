package metrics

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Type is the type of the samples a [Registry.Collect] family emits.
type Type int

// The types a [Registry.Collect] family may have.
const (
	TypeCounter Type = iota + 1
	TypeGauge
	TypeUntyped
)

func (t Type) valueType() (prometheus.ValueType, bool) {
	switch t {
	case TypeCounter:
		return prometheus.CounterValue, true
	case TypeGauge:
		return prometheus.GaugeValue, true
	case TypeUntyped:
		return prometheus.UntypedValue, true
	}
	return 0, false
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

// Registry is a set of metric families, served by [Registry.Handler]. It
// wraps a prometheus.Registry of its own; the zero Registry is not usable,
// call [NewRegistry].
type Registry struct {
	reg *prometheus.Registry
}

// NewRegistry returns an empty Registry.
func NewRegistry() *Registry {
	return &Registry{reg: prometheus.NewRegistry()}
}

// MustRegister registers collectors made elsewhere, such as the Go runtime
// and process collectors of package prometheus/collectors. It panics if one
// cannot be registered, as [Registry.NewCounter] does.
func (r *Registry) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.reg.Register(c); err != nil {
			panic(fmt.Errorf("metrics: %w", err))
		}
	}
}

// register checks name and labelNames against the classic (pre-UTF-8)
// Prometheus rules, which every scraper and the text format 0.0.4 accept
// unquoted, and registers c.
func (r *Registry) register(name string, labelNames []string, c prometheus.Collector) {
	if !model.LegacyValidation.IsValidMetricName(name) {
		panic(fmt.Errorf("metrics: invalid metric name %q", name))
	}
	for i, l := range labelNames {
		if !model.LegacyValidation.IsValidLabelName(l) || strings.HasPrefix(l, "__") {
			panic(fmt.Errorf("metrics: %s: invalid label name %q", name, l))
		}
		if slices.Contains(labelNames[:i], l) {
			panic(fmt.Errorf("metrics: %s: label %q given twice", name, l))
		}
	}
	if err := r.reg.Register(c); err != nil {
		panic(fmt.Errorf("metrics: %s: %w", name, err))
	}
}

// NewCounter registers and returns a counter.
func (r *Registry) NewCounter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	r.register(name, nil, c)
	return c
}

// NewGauge registers and returns a gauge.
func (r *Registry) NewGauge(name, help string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	r.register(name, nil, g)
	return g
}

// NewCounterVec registers and returns a family of counters told apart by
// the values of labelNames. Every set of values used stays in the family
// until the program ends, so they must come from a small set; on a hot
// path, look the counter up once (WithLabelValues) and keep it.
func (r *Registry) NewCounterVec(name, help string, labelNames ...string) *prometheus.CounterVec {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labelNames)
	r.register(name, labelNames, v)
	return v
}

// NewCounterFunc registers a counter whose value fn returns at each scrape.
// fn must be safe for concurrent use and its result must never decrease.
func (r *Registry) NewCounterFunc(name, help string, fn func() float64) {
	if fn == nil {
		panic(fmt.Errorf("metrics: %s: nil func", name))
	}
	r.register(name, nil, prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, fn))
}

// NewGaugeFunc registers a gauge whose value fn returns at each scrape. fn
// must be safe for concurrent use.
func (r *Registry) NewGaugeFunc(name, help string, fn func() float64) {
	if fn == nil {
		panic(fmt.Errorf("metrics: %s: nil func", name))
	}
	r.register(name, nil, prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, fn))
}

// NewHistogram registers and returns a histogram with the given bucket
// upper bounds ([DurationBuckets] if nil). Observe is a few atomic
// operations and does not allocate.
func (r *Registry) NewHistogram(name, help string, buckets []float64) prometheus.Histogram {
	if buckets == nil {
		buckets = DurationBuckets()
	}
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets})
	r.register(name, nil, h)
	return h
}

// NewHistogramVec registers and returns a family of histograms told apart by
// the values of labelNames, with the given bucket upper bounds
// ([DurationBuckets] if nil). As with [Registry.NewCounterVec], label values
// must come from a small set.
func (r *Registry) NewHistogramVec(name, help string, buckets []float64, labelNames ...string) *prometheus.HistogramVec {
	if slices.Contains(labelNames, "le") {
		panic(fmt.Errorf("metrics: %s: label \"le\" is the histogram's own", name))
	}
	if buckets == nil {
		buckets = DurationBuckets()
	}
	v := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labelNames)
	r.register(name, labelNames, v)
	return v
}

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
// replaced by U+FFFD. A sample with the wrong number of label values, or the
// same values as an earlier one, is left out of the scrape, which reports
// the error (the handler logs it and serves the rest). fn must be safe for
// concurrent use and must not keep emit after it returns.
func (r *Registry) Collect(name, help string, typ Type, labelNames []string, fn func(emit func(value float64, labelValues ...string))) {
	vt, ok := typ.valueType()
	if !ok {
		panic(fmt.Errorf("metrics: %s: unsupported type %d", name, typ))
	}
	if fn == nil {
		panic(fmt.Errorf("metrics: %s: nil func", name))
	}
	c := &collector{desc: prometheus.NewDesc(name, help, slices.Clone(labelNames), nil), typ: vt, fn: fn}
	r.register(name, labelNames, c)
}

// collector is a family registered by Collect.
type collector struct {
	desc *prometheus.Desc
	typ  prometheus.ValueType
	fn   func(emit func(value float64, labelValues ...string))
}

var _ prometheus.Collector = (*collector)(nil)

func (c *collector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	c.fn(func(value float64, labelValues ...string) {
		cloned := false
		for i, v := range labelValues {
			if !utf8.ValidString(v) {
				if !cloned { // the caller's slice is left as it was
					labelValues, cloned = slices.Clone(labelValues), true
				}
				labelValues[i] = strings.ToValidUTF8(v, "\uFFFD")
			}
		}
		m, err := prometheus.NewConstMetric(c.desc, c.typ, value, labelValues...)
		if err != nil {
			m = prometheus.NewInvalidMetric(c.desc, err)
		}
		ch <- m
	})
}

// Handler returns an http.Handler that serves r's metrics in the format the
// scraper asks for (the text format by default), as promhttp.HandlerFor
// does. A scrape in which some collector failed still serves the rest
// (what failed is left out), and is counted in
// promhttp_metric_handler_errors_total; the error is logged to log unless
// log is nil (an untyped nil: a nil *logrus.Logger would be called). Calling
// Handler again returns another handler sharing that count.
func (r *Registry) Handler(log promhttp.Logger) http.Handler {
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{
		ErrorLog:      log,
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      r.reg,
	})
}

// WriteTo writes every family with samples to w in the Prometheus text
// format 0.0.4, sorted by name. It returns the bytes written and the first
// error writing to w; if that succeeded, an error if some collector failed,
// in which case the rest was still written.
func (r *Registry) WriteTo(w io.Writer) (int64, error) {
	mfs, gatherErr := r.reg.Gather()
	var n int64
	for _, mf := range mfs {
		k, err := expfmt.MetricFamilyToText(w, mf)
		n += int64(k)
		if err != nil {
			return n, fmt.Errorf("metrics: write: %w", err)
		}
	}
	if gatherErr != nil {
		return n, fmt.Errorf("metrics: %w", gatherErr)
	}
	return n, nil
}
