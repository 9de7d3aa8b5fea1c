package metrics

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// parse reads text with Prometheus's own text parser, checking names by the
// classic rules the Registry enforces.
func parse(t *testing.T, text string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, text)
	}
	return fams
}

func scrape(t *testing.T, r *Registry) string {
	t.Helper()
	var buf bytes.Buffer
	n, err := r.WriteTo(&buf)
	if err != nil {
		t.Fatalf("WriteTo: %v", err)
	}
	if n != int64(buf.Len()) {
		t.Errorf("WriteTo returned %d, wrote %d bytes", n, buf.Len())
	}
	return buf.String()
}

// labels returns m's labels as name=value,… sorted, for comparisons.
func labels(m *dto.Metric) string {
	var ls []string
	for _, lp := range m.GetLabel() {
		ls = append(ls, lp.GetName()+"="+lp.GetValue())
	}
	slices.Sort(ls)
	return strings.Join(ls, ",")
}

// value returns the value of m, a counter, gauge or untyped sample.
func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return m.GetUntyped().GetValue()
}

// samples returns the family's samples by their labels.
func samples(mf *dto.MetricFamily) map[string]float64 {
	s := map[string]float64{}
	for _, m := range mf.GetMetric() {
		s[labels(m)] = value(m)
	}
	return s
}

// newTestRegistry has one metric of each kind.
func newTestRegistry() *Registry {
	r := NewRegistry()
	frames := r.NewCounter("zbridge_frames_total", "Frames received from clients.")
	frames.Add(41)
	frames.Inc()

	sessions := r.NewGauge("zbridge_sessions", "Open client sessions.")
	sessions.Set(3)
	sessions.Dec()
	sessions.Add(0.5)

	r.NewCounterFunc("zbridge_events_stored_total", "Events written to the store.",
		func() float64 { return 1e6 })
	r.NewGaugeFunc("zbridge_store_limit_bytes", "Store limit; \\ is a backslash,\nthis a second line.",
		func() float64 { return math.Inf(1) })

	logons := r.NewCounterVec("zbridge_logons_total", "Logons by client and result.", "client", "result")
	logons.WithLabelValues("OPSAUTO", "ok").Add(2)
	logons.WithLabelValues("we\"ird\\name\n", "refused").Inc()
	logons.WithLabelValues("OPSAUTO", "ok").Inc()

	r.Collect("zbridge_agent_queue_depth", "Events queued per agent.", TypeGauge, []string{"lpar", "agent"},
		func(emit func(float64, ...string)) {
			emit(7, "A", "VMSYS2")
			emit(math.NaN(), "B", "X")
			emit(0, "A", "VMSYS1")
		})
	r.Collect("zbridge_build_info", "Build.", TypeUntyped, []string{"version"},
		func(emit func(float64, ...string)) { emit(1, "1.0") })

	lat := r.NewHistogram("zbridge_latency_seconds", "Latency.", nil)
	lat.Observe(0.0002)
	lat.Observe(3)
	lat.Observe(1000)

	cpu := r.NewCounter("zbridge_cpu_seconds_total", "Whole and fractional increments.")
	cpu.Add(0.5)
	cpu.Inc()
	cpu.Add(0.25)

	queues := r.NewGaugeVec("zbridge_queue_bytes", "Bytes queued, by queue.", "queue")
	queues.WithLabelValues("in").Set(10)
	queues.WithLabelValues("out").Sub(2.5)

	cmds := r.NewHistogramVec("zbridge_command_seconds", "Command times by kind.", []float64{0.5, 1, math.Inf(1)}, "kind")
	cmds.WithLabelValues("zvm").Observe(0.5) // a bound is in its own bucket
	cmds.WithLabelValues("zvm").Observe(math.NaN())
	cmds.WithLabelValues("linux").Observe(-1)

	r.NewCounterVec("zbridge_refusals_total", "No samples yet, so not written.", "reason")
	return r
}

func TestWriteTo(t *testing.T) {
	r := newTestRegistry()
	text := scrape(t, r)
	fams := parse(t, text)
	for name, want := range map[string]dto.MetricType{
		"zbridge_frames_total":        dto.MetricType_COUNTER,
		"zbridge_sessions":            dto.MetricType_GAUGE,
		"zbridge_events_stored_total": dto.MetricType_COUNTER,
		"zbridge_store_limit_bytes":   dto.MetricType_GAUGE,
		"zbridge_logons_total":        dto.MetricType_COUNTER,
		"zbridge_agent_queue_depth":   dto.MetricType_GAUGE,
		"zbridge_build_info":          dto.MetricType_UNTYPED,
		"zbridge_latency_seconds":     dto.MetricType_HISTOGRAM,
		"zbridge_cpu_seconds_total":   dto.MetricType_COUNTER,
		"zbridge_queue_bytes":         dto.MetricType_GAUGE,
		"zbridge_command_seconds":     dto.MetricType_HISTOGRAM,
	} {
		mf := fams[name]
		if mf == nil {
			t.Errorf("%s missing:\n%s", name, text)
			continue
		}
		if mf.GetType() != want {
			t.Errorf("%s: type %v, want %v", name, mf.GetType(), want)
		}
	}
	if _, ok := fams["zbridge_refusals_total"]; ok {
		t.Error("a vec with no samples was written")
	}
	for _, tc := range []struct {
		name string
		want map[string]float64
	}{
		{"zbridge_frames_total", map[string]float64{"": 42}},
		{"zbridge_sessions", map[string]float64{"": 2.5}},
		{"zbridge_events_stored_total", map[string]float64{"": 1e6}},
		{"zbridge_store_limit_bytes", map[string]float64{"": math.Inf(1)}},
		{"zbridge_logons_total", map[string]float64{"client=OPSAUTO,result=ok": 3, "client=we\"ird\\name\n,result=refused": 1}},
		{"zbridge_build_info", map[string]float64{"version=1.0": 1}},
		{"zbridge_cpu_seconds_total", map[string]float64{"": 1.75}},
		{"zbridge_queue_bytes", map[string]float64{"queue=in": 10, "queue=out": -2.5}},
	} {
		if got := samples(fams[tc.name]); !mapsEqual(got, tc.want) {
			t.Errorf("%s = %v, want %v", tc.name, got, tc.want)
		}
	}
	q := samples(fams["zbridge_agent_queue_depth"])
	if len(q) != 3 || q["agent=VMSYS2,lpar=A"] != 7 || q["agent=VMSYS1,lpar=A"] != 0 || !math.IsNaN(q["agent=X,lpar=B"]) {
		t.Errorf("zbridge_agent_queue_depth = %v", q)
	}
	if got := fams["zbridge_store_limit_bytes"].GetHelp(); got != "Store limit; \\ is a backslash,\nthis a second line." {
		t.Errorf("help read back as %q", got)
	}

	h := fams["zbridge_latency_seconds"].GetMetric()[0].GetHistogram()
	if h.GetSampleCount() != 3 || h.GetSampleSum() != 1003.0002 {
		t.Errorf("histogram count %d sum %v, want 3 and 1003.0002", h.GetSampleCount(), h.GetSampleSum())
	}
	if got, want := len(h.GetBucket()), len(DurationBuckets())+1; got != want { // and +Inf
		t.Errorf("%d buckets, want %d", got, want)
	}
	for _, b := range h.GetBucket() {
		var want uint64
		switch ub := b.GetUpperBound(); {
		case math.IsInf(ub, 1):
			want = 3
		case ub >= 3:
			want = 2
		case ub >= 0.0002:
			want = 1
		}
		if b.GetCumulativeCount() != want {
			t.Errorf("bucket le=%v: %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), want)
		}
	}
	cmds := map[string]*dto.Histogram{}
	for _, m := range fams["zbridge_command_seconds"].GetMetric() {
		cmds[labels(m)] = m.GetHistogram()
	}
	buckets := func(h *dto.Histogram) (s string) {
		for _, b := range h.GetBucket() {
			s += fmt.Sprintf("%v:%d ", b.GetUpperBound(), b.GetCumulativeCount())
		}
		return s
	}
	if z, l := cmds["kind=zvm"], cmds["kind=linux"]; len(cmds) != 2 || buckets(z) != "0.5:1 1:1 +Inf:2 " || z.GetSampleCount() != 2 ||
		!math.IsNaN(z.GetSampleSum()) || buckets(l) != "0.5:1 1:1 +Inf:1 " || l.GetSampleSum() != -1 {
		t.Errorf("zbridge_command_seconds: %v", cmds)
	}

	// The text format sorts families by name and each family's series by
	// labels, so two scrapes of unchanged values are the same.
	if again := scrape(t, r); again != text {
		t.Error("second scrape differs")
	}
}

func mapsEqual(a, b map[string]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestEmptyRegistry(t *testing.T) {
	if got := scrape(t, NewRegistry()); got != "" {
		t.Errorf("empty registry wrote %q", got)
	}
}

func TestDurationBuckets(t *testing.T) {
	b := DurationBuckets()
	for i := 1; i < len(b); i++ {
		if b[i] <= b[i-1] {
			t.Fatalf("buckets not strictly increasing: %v", b)
		}
	}
	if b[0] > 0.0001 || b[len(b)-1] < 30 {
		t.Errorf("buckets %v do not span 100µs to tens of seconds", b)
	}
	b[0] = 42
	if DurationBuckets()[0] == 42 {
		t.Error("DurationBuckets returned a shared slice")
	}
}

// TestCollect: a Collect family's bad samples are left out and reported,
// and the rest is written.
func TestCollect(t *testing.T) {
	r := NewRegistry()
	r.NewCounter("a_total", "h").Inc()
	r.Collect("b", "h", TypeGauge, []string{"x", "y"}, func(emit func(float64, ...string)) {
		emit(1, "1", "")
		emit(2, "1")           // too few values
		emit(3, "1", "2", "3") // too many
		emit(4, "1", "")       // the same series as the first
		emit(5, "2", "bad\xffutf8")
	})
	var buf bytes.Buffer
	_, err := r.WriteTo(&buf)
	if !errors.Is(err, ErrLabelValues) || !errors.Is(err, ErrDuplicate) {
		t.Fatalf("WriteTo reported %v, want ErrLabelValues and ErrDuplicate", err)
	}
	for _, msg := range []string{"b: 1, want 2 (x, y)", "b: 3, want 2 (x, y)", `b{x="1",y=""}`} {
		if !strings.Contains(err.Error(), msg) {
			t.Errorf("error %q does not say %q", err, msg)
		}
	}
	fams := parse(t, buf.String())
	if got := samples(fams["a_total"]); got[""] != 1 {
		t.Errorf("a_total = %v", got)
	}
	// The first of the two samples of the repeated series is kept.
	got := samples(fams["b"])
	if len(got) != 2 || got["x=1,y="] != 1 || got["x=2,y=bad\uFFFDutf8"] != 5 {
		t.Errorf("b = %v, want x=1 (the first, 1) and x=2 with U+FFFD", got)
	}

	// The handler serves what it could and counts the failed scrape.
	var logged bytes.Buffer
	h := r.Handler(printer{&logged})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("handler: %d %q, want 200 with the valid samples", rec.Code, rec.Body.String())
	}
	fams = parse(t, rec.Body.String())
	if len(samples(fams["b"])) != 2 {
		t.Errorf("handler served b = %v", samples(fams["b"]))
	}
	if !strings.Contains(logged.String(), "metrics: a scrape left out what failed: ") ||
		!strings.Contains(logged.String(), "wrong number of label values") {
		t.Errorf("handler logged %q", logged.String())
	}
	if errs := samples(fams["promhttp_metric_handler_errors_total"]); errs["cause=gathering"] != 0 || errs["cause=encoding"] != 0 {
		t.Errorf("first scrape: promhttp_metric_handler_errors_total = %v, want both causes at 0", errs)
	}
	rec = httptest.NewRecorder()
	r.Handler(nil).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil)) // a second handler shares the count
	errs := samples(parse(t, rec.Body.String())["promhttp_metric_handler_errors_total"])
	if errs["cause=gathering"] != 1 || errs["cause=encoding"] != 0 {
		t.Errorf("promhttp_metric_handler_errors_total = %v, want gathering 1 (the first scrape)", errs)
	}
}

// TestHandlerWriteError: a response that cannot be written is counted as
// encoding.
func TestHandlerWriteError(t *testing.T) {
	r := NewRegistry()
	r.NewCounter("a_total", "h")
	var logged bytes.Buffer
	h := r.Handler(printer{&logged})
	h.ServeHTTP(failResponse{httptest.NewRecorder()}, httptest.NewRequest("GET", "/metrics", nil))
	if !strings.Contains(logged.String(), "disk on fire") {
		t.Errorf("handler logged %q", logged.String())
	}
	errs := samples(parse(t, scrape(t, r))["promhttp_metric_handler_errors_total"])
	if errs["cause=encoding"] != 1 || errs["cause=gathering"] != 0 {
		t.Errorf("promhttp_metric_handler_errors_total = %v, want encoding 1", errs)
	}
}

type failResponse struct{ *httptest.ResponseRecorder }

func (failResponse) Write([]byte) (int, error) { return 0, errors.New("disk on fire") }

type printer struct{ w *bytes.Buffer }

func (p printer) Println(v ...any) { fmt.Fprintln(p.w, v...) }

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestWriteError(t *testing.T) {
	r := NewRegistry()
	r.NewCounter("a_total", "h")
	if _, err := r.WriteTo(failWriter{}); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("WriteTo(failing writer) = %v", err)
	}
}

func TestRegistrationPanics(t *testing.T) {
	fn := func() float64 { return 0 }
	collect := func(func(float64, ...string)) {}
	for _, tc := range []struct {
		name string
		reg  func(r *Registry)
	}{
		{"empty name", func(r *Registry) { r.NewCounter("", "h") }},
		{"digit first", func(r *Registry) { r.NewGauge("1abc", "h") }},
		{"dash", func(r *Registry) { r.NewCounter("zbridge-frames", "h") }},
		{"non-ASCII", func(r *Registry) { r.NewCounter("zbridge_é", "h") }},
		{"duplicate", func(r *Registry) { r.NewCounter("dup", "h"); r.NewGauge("dup", "h") }},
		{"duplicate func", func(r *Registry) { r.NewGaugeFunc("dup", "h", fn); r.NewCounterFunc("dup", "h", fn) }},
		{"duplicate collect", func(r *Registry) {
			r.NewHistogram("dup", "h", nil)
			r.Collect("dup", "h", TypeGauge, nil, collect)
		}},
		{"nil func", func(r *Registry) { r.NewGaugeFunc("f", "h", nil) }},
		{"nil collect", func(r *Registry) { r.Collect("f", "h", TypeGauge, nil, nil) }},
		{"bad type", func(r *Registry) { r.Collect("f", "h", Type(42), nil, collect) }},
		{"zero type", func(r *Registry) { r.Collect("f", "h", 0, nil, collect) }},
		{"bad label", func(r *Registry) { r.NewCounterVec("v", "h", "ok", "not-ok") }},
		{"reserved label", func(r *Registry) { r.NewCounterVec("v", "h", "__name__") }},
		{"colon in label", func(r *Registry) { r.NewCounterVec("v", "h", "a:b") }},
		{"repeated label", func(r *Registry) { r.NewCounterVec("v", "h", "a", "a") }},
		{"bad collect label", func(r *Registry) { r.Collect("c", "h", TypeGauge, []string{"a b"}, collect) }},
		{"bad histogram label", func(r *Registry) { r.NewHistogramVec("h", "h", nil, "le") }},
		{"unsorted buckets", func(r *Registry) { r.NewHistogram("h", "h", []float64{2, 1}) }},
		{"NaN bucket", func(r *Registry) { r.NewHistogram("h", "h", []float64{1, math.NaN()}) }},
		{"repeated bucket", func(r *Registry) { r.NewHistogramVec("h", "h", []float64{1, 1}, "x") }},
		{"a histogram's _bucket", func(r *Registry) { r.NewHistogram("h", "h", nil); r.NewCounter("h_bucket", "h") }},
		{"a histogram's _count", func(r *Registry) { r.NewGauge("h_count", "h"); r.NewHistogram("h", "h", nil) }},
		{"the Go summary's _sum", func(r *Registry) { r.NewGauge("go_gc_duration_seconds_sum", "h"); r.RegisterGoMetrics() }},
		{"Go metrics twice", func(r *Registry) { r.RegisterGoMetrics(); r.RegisterGoMetrics() }},
		{"process metrics twice", func(r *Registry) { r.RegisterProcessMetrics(); r.RegisterProcessMetrics() }},
		{"handler's name taken", func(r *Registry) {
			r.NewCounter("promhttp_metric_handler_errors_total", "h")
			r.Handler(nil)
		}},
		{"WithLabelValues, too few", func(r *Registry) { r.NewCounterVec("v", "h", "a", "b").WithLabelValues("x") }},
		{"WithLabelValues, too many", func(r *Registry) { r.NewHistogramVec("v", "h", nil).WithLabelValues("x") }},
		{"negative Add", func(r *Registry) { r.NewCounter("c_total", "h").Add(-1) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if p := recover(); p == nil {
					t.Fatal("no panic")
				}
			}()
			tc.reg(NewRegistry())
		})
	}

	// Valid names do not panic.
	r := NewRegistry()
	r.NewCounter("a:b_c:D9", "h")
	r.NewCounter("_x", "h")
	r.NewCounter(":x", "h")
	r.NewCounterVec("v", "h", "_a", "B9")
	r.NewCounterVec("none", "h").WithLabelValues().Inc()
	if got := scrape(t, r); !strings.Contains(got, "\nnone 1\n") {
		t.Errorf("label-less CounterVec: %q", got)
	}
	// A histogram named like another family's sample, but not taking one.
	r.NewHistogram("a_count_of", "h", []float64{}).Observe(1)
	r.NewHistogram("a", "h", nil)
	if got := scrape(t, r); !strings.Contains(got, "\na_count_of_bucket{le=\"+Inf\"} 1\n") {
		t.Errorf("histogram without bounds: %q", got)
	}
}

// TestPanicRegistersNothing: a registration that panicked left no name
// taken, so the program's next (correct) registration of it works.
func TestPanicRegistersNothing(t *testing.T) {
	r := NewRegistry()
	r.NewGauge("taken", "h")
	mustPanic := func(f func()) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Fatal("no panic")
			}
		}()
		f()
	}
	mustPanic(func() { r.NewHistogramVec("h", "h", nil, "bad-label") })
	r.NewGauge("y_sum", "h")
	mustPanic(func() { r.NewHistogram("y", "h", nil) }) // y and y_bucket pass, y_sum clashes
	r.NewHistogram("h", "h", nil).Observe(1)
	r.NewCounter("y_bucket", "h")
	r.NewGauge("y", "h")
	if got := scrape(t, r); !strings.Contains(got, "\nh_count 1\n") || !strings.Contains(got, "\ny_bucket 0\n") {
		t.Errorf("after the panics: %q", got)
	}
}

// TestRegistrationPanicSays: a registration panic names the metric.
func TestRegistrationPanicSays(t *testing.T) {
	defer func() {
		p := recover()
		err, ok := p.(error)
		if !ok || !strings.HasPrefix(err.Error(), "metrics: ") || !strings.Contains(err.Error(), "dup") {
			t.Errorf("panic %v, want an error starting metrics: and naming the metric", p)
		}
	}()
	r := NewRegistry()
	r.NewCounter("dup", "h")
	r.NewCounter("dup", "h")
}

// TestHandler scrapes over HTTP, as Prometheus would (its Accept asks for
// protobuf and OpenMetrics first), with and without gzip.
func TestHandler(t *testing.T) {
	r := newTestRegistry()
	srv := httptest.NewServer(r.Handler(nil))
	t.Cleanup(srv.Close)
	want := scrape(t, r) // the handler's own family is registered by now

	const prometheusAccept = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.5," +
		"application/openmetrics-text;version=1.0.0;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.1"
	for _, tc := range []struct {
		name, accept, encoding string
		gzipped                bool
	}{
		{name: "plain"},
		{name: "as Prometheus asks", accept: prometheusAccept, encoding: "gzip", gzipped: true},
		{name: "gzip refused", encoding: "gzip;q=0, identity"},
		{name: "other encodings", encoding: "br, deflate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", srv.URL+"/metrics", nil)
			if tc.accept != "" {
				req.Header.Set("Accept", tc.accept)
			}
			// Set, the transport leaves the body as it came.
			req.Header.Set("Accept-Encoding", tc.encoding)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if ct := resp.Header.Get("Content-Type"); ct != ContentType || expfmt.ResponseFormat(resp.Header).FormatType() != expfmt.TypeTextPlain {
				t.Errorf("Content-Type %q, want %q", ct, ContentType)
			}
			body := io.Reader(resp.Body)
			if got := resp.Header.Get("Content-Encoding"); tc.gzipped != (got == "gzip") {
				t.Fatalf("Content-Encoding %q", got)
			}
			if tc.gzipped {
				zr, err := gzip.NewReader(resp.Body)
				if err != nil {
					t.Fatal(err)
				}
				body = zr
			}
			b, err := io.ReadAll(body)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != want {
				t.Errorf("served\n%s\nwant what WriteTo writes:\n%s", b, want)
			}
			fams := parse(t, string(b))
			if fams["zbridge_frames_total"].GetType() != dto.MetricType_COUNTER || fams["zbridge_latency_seconds"].GetType() != dto.MetricType_HISTOGRAM ||
				fams["promhttp_metric_handler_errors_total"].GetType() != dto.MetricType_COUNTER || len(fams) != 12 {
				t.Errorf("%d families: %v", len(fams), slices.Sorted(maps.Keys(fams)))
			}
		})
	}
}

func TestAcceptsGzip(t *testing.T) {
	for _, tc := range []struct {
		lines []string
		want  bool
	}{
		{nil, false},
		{[]string{"gzip"}, true},
		{[]string{"GZIP"}, true},
		{[]string{"deflate, gzip;q=1.0, *;q=0.5"}, true},
		{[]string{"br", " gzip ; q=0.2"}, true},
		{[]string{"gzip;q=0"}, false},
		{[]string{"gzip; q=0.000"}, false},
		{[]string{"gzip;q=bad"}, false},
		{[]string{"x-gzip"}, false},
		{[]string{"identity"}, false},
	} {
		h := http.Header{}
		for _, l := range tc.lines {
			h.Add("Accept-Encoding", l)
		}
		if got := acceptsGzip(h); got != tc.want {
			t.Errorf("Accept-Encoding %q: %v, want %v", tc.lines, got, tc.want)
		}
	}
}

// TestConcurrent updates, registers and scrapes at once; run with -race.
func TestConcurrent(t *testing.T) {
	r := NewRegistry()
	c := r.NewCounter("c_total", "h")
	g := r.NewGauge("g", "h")
	v := r.NewCounterVec("v_total", "h", "worker")
	h := r.NewHistogram("h_seconds", "h", nil)
	var state sync.Map
	r.Collect("collected", "h", TypeGauge, []string{"k"}, func(emit func(float64, ...string)) {
		state.Range(func(k, val any) bool {
			emit(val.(float64), k.(string))
			return true
		})
	})

	const workers, perWorker = 8, 1000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			name := fmt.Sprint(w % 3)
			for i := range perWorker {
				c.Inc()
				g.Add(1)
				g.Add(-0.5)
				v.WithLabelValues(name).Inc()
				h.Observe(float64(i) / 1000)
				if i%100 == 0 {
					state.Store(fmt.Sprint(w, i), float64(i))
				}
			}
		})
	}
	wg.Go(func() {
		for i := range 50 {
			parse(t, scrape(t, r))
			r.NewGaugeFunc(fmt.Sprintf("late_%d", i), "h", func() float64 { return float64(i) })
		}
	})
	wg.Wait()

	fams := parse(t, scrape(t, r))
	if got := samples(fams["c_total"])[""]; got != workers*perWorker {
		t.Errorf("counter = %v, want %d", got, workers*perWorker)
	}
	if got := samples(fams["g"])[""]; got != workers*perWorker/2 {
		t.Errorf("gauge = %v, want %d", got, workers*perWorker/2)
	}
	var total float64
	for _, n := range samples(fams["v_total"]) {
		total += n
	}
	if total != workers*perWorker {
		t.Errorf("vec total = %v, want %d", total, workers*perWorker)
	}
	if n := fams["h_seconds"].GetMetric()[0].GetHistogram().GetSampleCount(); n != workers*perWorker {
		t.Errorf("histogram count = %d, want %d", n, workers*perWorker)
	}
	if n := len(fams["collected"].GetMetric()); n != workers*perWorker/100 {
		t.Errorf("collected %d samples, want %d", n, workers*perWorker/100)
	}
}

// TestHotPathDoesNotAllocate: what components do per event costs no
// allocation.
func TestHotPathDoesNotAllocate(t *testing.T) {
	r := NewRegistry()
	c := r.NewCounter("c_total", "h")
	h := r.NewHistogram("h_seconds", "h", nil)
	v := r.NewHistogramVec("v_seconds", "h", nil, "kind")
	o := v.WithLabelValues("x")
	g := r.NewGauge("g", "h")
	cv := r.NewCounterVec("cv_total", "h", "a", "b")
	cv.WithLabelValues("some value", "another").Inc()
	for name, fn := range map[string]func(){
		"Counter.Inc":                  c.Inc,
		"Counter.Add":                  func() { c.Add(0.5) },
		"Gauge.Add":                    func() { g.Add(-2.5) },
		"Histogram.Observe":            func() { h.Observe(0.0042) },
		"Vec child Observe":            func() { o.Observe(0.0042) },
		"WithLabelValues of a series":  func() { v.WithLabelValues("x").Observe(1) },
		"WithLabelValues of 2 labels ": func() { cv.WithLabelValues("some value", "another").Inc() },
	} {
		if n := testing.AllocsPerRun(100, fn); n != 0 {
			t.Errorf("%s allocates %v times", name, n)
		}
	}
}

func BenchmarkHistogramObserve(b *testing.B) {
	h := NewRegistry().NewHistogram("h_seconds", "h", nil)
	for i := range b.N {
		h.Observe(float64(i%1000) * 1e-4)
	}
}

func BenchmarkHistogramObserveParallel(b *testing.B) {
	h := NewRegistry().NewHistogram("h_seconds", "h", nil)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			h.Observe(0.0042)
		}
	})
}

func BenchmarkScrape(b *testing.B) {
	r := newTestRegistry()
	var buf bytes.Buffer
	for b.Loop() {
		buf.Reset()
		r.WriteTo(&buf)
	}
}
