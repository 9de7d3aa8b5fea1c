package metrics

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// ContentType is the Content-Type of the text exposition format 0.0.4.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// Type is a metric type, written on the # TYPE line.
type Type string

// The metric types a Registry writes.
const (
	TypeCounter Type = "counter"
	TypeGauge   Type = "gauge"
	TypeUntyped Type = "untyped"
)

// Registry is a set of metric families, written by [Registry.WriteTo]. The
// zero Registry is not usable; call [NewRegistry].
type Registry struct {
	mu       sync.Mutex // guards families
	families map[string]*family
}

// NewRegistry returns an empty Registry.
func NewRegistry() *Registry {
	return &Registry{families: make(map[string]*family)}
}

// family is one registered metric name.
type family struct {
	name, help string // help as given, escaped when written
	typ        Type
	// collect appends the family's samples to s; samples are sorted by the
	// caller. An error means some samples were left out.
	collect func(s []sample) ([]sample, error)
}

// sample is one line: the family name, labels, and a value, both already
// formatted. labels is "" or `{a="x",b="y"}`.
type sample struct {
	labels, value string
}

// register adds a family, panicking on a bad or duplicate name.
func (r *Registry) register(name, help string, typ Type, collect func([]sample) ([]sample, error)) {
	if !validMetricName(name) {
		panic(fmt.Sprintf("metrics: invalid metric name %q", name))
	}
	switch typ {
	case TypeCounter, TypeGauge, TypeUntyped:
	default:
		panic(fmt.Sprintf("metrics: %s: unsupported type %q", name, typ))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.families[name]; dup {
		panic(fmt.Sprintf("metrics: %s registered twice", name))
	}
	r.families[name] = &family{name: name, help: help, typ: typ, collect: collect}
}

// NewCounter registers and returns a counter.
func (r *Registry) NewCounter(name, help string) *Counter {
	c := new(Counter)
	r.register(name, help, TypeCounter, func(s []sample) ([]sample, error) {
		return append(s, sample{value: strconv.FormatUint(c.Value(), 10)}), nil
	})
	return c
}

// NewGauge registers and returns a gauge.
func (r *Registry) NewGauge(name, help string) *Gauge {
	g := new(Gauge)
	r.register(name, help, TypeGauge, func(s []sample) ([]sample, error) {
		return append(s, sample{value: formatFloat(g.Value())}), nil
	})
	return g
}

// NewCounterFunc registers a counter whose value fn returns at each scrape.
// fn must be safe for concurrent use and its result must never decrease.
func (r *Registry) NewCounterFunc(name, help string, fn func() float64) {
	r.newFunc(name, help, TypeCounter, fn)
}

// NewGaugeFunc registers a gauge whose value fn returns at each scrape. fn
// must be safe for concurrent use.
func (r *Registry) NewGaugeFunc(name, help string, fn func() float64) {
	r.newFunc(name, help, TypeGauge, fn)
}

func (r *Registry) newFunc(name, help string, typ Type, fn func() float64) {
	if fn == nil {
		panic(fmt.Sprintf("metrics: %s: nil func", name))
	}
	r.register(name, help, typ, func(s []sample) ([]sample, error) {
		return append(s, sample{value: formatFloat(fn())}), nil
	})
}

// NewCounterVec registers and returns a family of counters told apart by
// the values of labelNames.
func (r *Registry) NewCounterVec(name, help string, labelNames ...string) *CounterVec {
	for i, l := range labelNames {
		if !validLabelName(l) {
			panic(fmt.Sprintf("metrics: %s: invalid label name %q", name, l))
		}
		if slices.Contains(labelNames[:i], l) {
			panic(fmt.Sprintf("metrics: %s: label %q given twice", name, l))
		}
	}
	v := &CounterVec{
		name:       name,
		labelNames: slices.Clone(labelNames),
		children:   make(map[string]*vecChild),
	}
	r.register(name, help, TypeCounter, v.collect)
	return v
}

// Collect registers a family whose samples fn emits at each scrape, one
// call of emit a sample. labelPairs alternate label names and values:
//
//	reg.Collect("zbridge_agent_queue_depth", "Events queued per agent.", metrics.TypeGauge,
//		func(emit func(float64, ...string)) {
//			for agent, n := range depths() {
//				emit(float64(n), "agent", agent)
//			}
//		})
//
// Labels are written sorted by name. A sample with an odd number of labelPairs, an invalid or repeated label
// name, or the same labels as an earlier sample is left out, and WriteTo
// reports it. fn must be safe for concurrent use and must not keep emit
// after it returns.
func (r *Registry) Collect(name, help string, typ Type, fn func(emit func(value float64, labelPairs ...string))) {
	if fn == nil {
		panic(fmt.Sprintf("metrics: %s: nil func", name))
	}
	r.register(name, help, typ, func(s []sample) ([]sample, error) {
		var errs []error
		seen := make(map[string]bool)
		fn(func(value float64, labelPairs ...string) {
			labels, err := formatLabelPairs(labelPairs)
			if err == nil && seen[labels] {
				err = errors.New("labels repeat an earlier sample")
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("%w: %s%s: %v", ErrInvalidSample, name, labels, err))
				return
			}
			seen[labels] = true
			s = append(s, sample{labels: labels, value: formatFloat(value)})
		})
		return s, errors.Join(errs...)
	})
}

// WriteTo writes every family with samples to w in the text exposition
// format, sorted by name. It returns the bytes written and an error if w
// failed or if samples were left out (wrapping [ErrInvalidSample]), in which
// case the rest was still written.
func (r *Registry) WriteTo(w io.Writer) (int64, error) {
	r.mu.Lock()
	fams := make([]*family, 0, len(r.families))
	for _, f := range r.families {
		fams = append(fams, f)
	}
	r.mu.Unlock()
	slices.SortFunc(fams, func(a, b *family) int { return strings.Compare(a.name, b.name) })

	cw := &countingWriter{w: w}
	bw := bufio.NewWriter(cw)
	var errs []error
	var samples []sample
	for _, f := range fams {
		var err error
		samples, err = f.collect(samples[:0])
		if err != nil {
			errs = append(errs, err)
		}
		if len(samples) == 0 {
			continue
		}
		slices.SortFunc(samples, func(a, b sample) int { return strings.Compare(a.labels, b.labels) })
		if f.help != "" {
			bw.WriteString("# HELP " + f.name + " " + escapeHelp(f.help) + "\n")
		}
		bw.WriteString("# TYPE " + f.name + " " + string(f.typ) + "\n")
		for _, s := range samples {
			bw.WriteString(f.name + s.labels + " " + s.value + "\n")
		}
	}
	if err := bw.Flush(); err != nil {
		errs = append([]error{fmt.Errorf("metrics: write: %w", err)}, errs...)
	}
	return cw.n, errors.Join(errs...)
}

// Handler returns an http.Handler that serves r's metrics to GET and HEAD
// with Content-Type [ContentType]. If WriteTo reports an error it serves 500
// and the error instead, as promhttp does by default: a scrape that fails is
// noticed, one that silently lacks samples is not.
func (r *Registry) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		var buf bytes.Buffer
		if _, err := r.WriteTo(&buf); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", ContentType)
		w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
		w.Write(buf.Bytes())
	})
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// formatFloat formats v as the exposition format wants it.
func formatFloat(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// formatLabelPairs returns `{a="x",b="y"}` for "b", "y", "a", "x", or "" for
// no pairs.
func formatLabelPairs(pairs []string) (string, error) {
	if len(pairs)%2 != 0 {
		return "", fmt.Errorf("odd number of label strings (%d)", len(pairs))
	}
	if len(pairs) == 0 {
		return "", nil
	}
	type pair struct{ name, value string }
	ps := make([]pair, 0, len(pairs)/2)
	for i := 0; i < len(pairs); i += 2 {
		if !validLabelName(pairs[i]) {
			return "", fmt.Errorf("invalid label name %q", pairs[i])
		}
		ps = append(ps, pair{pairs[i], pairs[i+1]})
	}
	// Sorted by name, so that one series is always written one way.
	slices.SortFunc(ps, func(a, b pair) int { return strings.Compare(a.name, b.name) })
	var b strings.Builder
	b.WriteByte('{')
	for i, p := range ps {
		if i > 0 {
			if p.name == ps[i-1].name {
				return "", fmt.Errorf("label %q given twice", p.name)
			}
			b.WriteByte(',')
		}
		writeLabel(&b, p.name, p.value)
	}
	b.WriteByte('}')
	return b.String(), nil
}

// writeLabel writes name="value" with value escaped.
func writeLabel(b *strings.Builder, name, value string) {
	b.WriteString(name)
	b.WriteString(`="`)
	b.WriteString(labelEscaper.Replace(strings.ToValidUTF8(value, "\uFFFD")))
	b.WriteByte('"')
}

// The escapes of the text format: label values escape backslash, double
// quote and newline; help text escapes backslash and newline.
var (
	labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
)

func escapeHelp(s string) string {
	return helpEscaper.Replace(strings.ToValidUTF8(s, "\uFFFD"))
}

// validMetricName reports whether s matches [a-zA-Z_:][a-zA-Z0-9_:]*.
func validMetricName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c == ':' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// validLabelName reports whether s matches [a-zA-Z_][a-zA-Z0-9_]* and does
// not start with "__", which Prometheus reserves.
func validLabelName(s string) bool {
	if s == "" || strings.HasPrefix(s, "__") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}
