package metrics

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// parsedSample is a sample line read back by parseExposition.
type parsedSample struct {
	name   string
	labels map[string]string
	value  float64
}

// parseExposition checks text against the text exposition format 0.0.4 as
// far as this package writes it, and returns its samples. It checks that
// every line is a HELP, TYPE or sample line; escapes are valid; each family
// is contiguous, with at most one HELP and one TYPE, before its samples; and
// no series appears twice.
func parseExposition(t *testing.T, text string) []parsedSample {
	t.Helper()
	if text != "" && !strings.HasSuffix(text, "\n") {
		t.Fatalf("output does not end in a newline")
	}
	var out []parsedSample
	done := map[string]bool{} // families finished
	cur := ""                 // family being read
	var help, typ, sampled bool
	series := map[string]bool{}
	enter := func(n int, name string) {
		if name == cur {
			return
		}
		if done[name] {
			t.Errorf("line %d: family %s is not contiguous", n, name)
		}
		if cur != "" {
			done[cur] = true
		}
		cur, help, typ, sampled = name, false, false, false
	}
	for i, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		n := i + 1
		switch {
		case strings.HasPrefix(line, "# HELP "):
			name, doc, ok := strings.Cut(line[len("# HELP "):], " ")
			if !ok || !validMetricName(name) {
				t.Errorf("line %d: bad HELP line %q", n, line)
				continue
			}
			enter(n, name)
			if help || typ || sampled {
				t.Errorf("line %d: HELP after HELP, TYPE or samples", n)
			}
			help = true
			if _, err := unescape(doc, false); err != nil {
				t.Errorf("line %d: HELP text: %v", n, err)
			}
		case strings.HasPrefix(line, "# TYPE "):
			name, ty, ok := strings.Cut(line[len("# TYPE "):], " ")
			if !ok || !validMetricName(name) {
				t.Errorf("line %d: bad TYPE line %q", n, line)
				continue
			}
			enter(n, name)
			if typ || sampled {
				t.Errorf("line %d: TYPE after TYPE or samples", n)
			}
			typ = true
			switch ty {
			case "counter", "gauge", "untyped", "histogram", "summary":
			default:
				t.Errorf("line %d: unknown type %q", n, ty)
			}
		case strings.HasPrefix(line, "#"):
			t.Errorf("line %d: unexpected comment %q", n, line)
		default:
			s, err := parseSampleLine(line)
			if err != nil {
				t.Errorf("line %d: %v: %q", n, err, line)
				continue
			}
			enter(n, s.name)
			sampled = true
			key := s.name + fmt.Sprint(s.labels) // fmt sorts map keys
			if series[key] {
				t.Errorf("line %d: series %s repeated", n, key)
			}
			series[key] = true
			out = append(out, s)
		}
	}
	return out
}

// parseSampleLine parses `name{l="v",...} value`.
func parseSampleLine(line string) (parsedSample, error) {
	s := parsedSample{labels: map[string]string{}}
	i := strings.IndexAny(line, "{ ")
	if i < 0 {
		return s, errors.New("no value")
	}
	s.name, line = line[:i], line[i:]
	if !validMetricName(s.name) {
		return s, fmt.Errorf("bad metric name %q", s.name)
	}
	if line[0] == '{' {
		line = line[1:]
		for !strings.HasPrefix(line, "}") {
			eq := strings.Index(line, `="`)
			if eq < 0 {
				return s, errors.New(`no =" in labels`)
			}
			name := line[:eq]
			if !validLabelName(name) {
				return s, fmt.Errorf("bad label name %q", name)
			}
			if _, dup := s.labels[name]; dup {
				return s, fmt.Errorf("label %q repeated", name)
			}
			line = line[eq+2:]
			// Find the closing quote, skipping escapes.
			end := -1
			for j := 0; j < len(line); j++ {
				if line[j] == '\\' {
					j++
				} else if line[j] == '"' {
					end = j
					break
				}
			}
			if end < 0 {
				return s, errors.New("unterminated label value")
			}
			v, err := unescape(line[:end], true)
			if err != nil {
				return s, err
			}
			s.labels[name] = v
			line = line[end+1:]
			switch {
			case strings.HasPrefix(line, ",}"):
				return s, errors.New("trailing comma in labels")
			case strings.HasPrefix(line, ","):
				line = line[1:]
			case !strings.HasPrefix(line, "}"):
				return s, errors.New("want , or } after label value")
			}
		}
		line = line[1:]
	}
	if !strings.HasPrefix(line, " ") {
		return s, errors.New("no space before value")
	}
	v, err := strconv.ParseFloat(line[1:], 64)
	if err != nil {
		return s, fmt.Errorf("bad value: %v", err)
	}
	s.value = v
	return s, nil
}

// unescape undoes the format's escapes: \\ and \n, and \" in label values.
// It rejects other escapes, raw newlines and, in label values, raw quotes.
func unescape(s string, label bool) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\n':
			return "", errors.New("raw newline")
		case c == '"' && label:
			return "", errors.New("raw double quote")
		case c != '\\':
			b.WriteByte(c)
			continue
		}
		i++
		if i == len(s) {
			return "", errors.New("trailing backslash")
		}
		switch s[i] {
		case '\\':
			b.WriteByte('\\')
		case 'n':
			b.WriteByte('\n')
		case '"':
			if !label {
				return "", errors.New(`\" in help text`)
			}
			b.WriteByte('"')
		default:
			return "", fmt.Errorf("unknown escape \\%c", s[i])
		}
	}
	return b.String(), nil
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

// newGoldenRegistry has one metric of each kind.
func newGoldenRegistry() *Registry {
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
	logons.With("OPSAUTO", "ok").Add(2)
	logons.With("we\"ird\\name\n", "refused").Inc()
	logons.With("OPSAUTO", "ok").Inc()

	r.Collect("zbridge_agent_queue_depth", "Events queued per agent.", TypeGauge,
		func(emit func(float64, ...string)) {
			emit(7, "agent", "VMSYS2")
			emit(math.NaN(), "agent", "X")
			emit(0, "lpar", "A", "agent", "VMSYS1") // written sorted by label name
		})
	r.Collect("zbridge_build_info", "", TypeUntyped,
		func(emit func(float64, ...string)) { emit(1, "version", "1.0") })

	r.NewCounterVec("zbridge_refusals_total", "No samples yet, so not written.", "reason")
	r.NewGauge("zbridge_lag_seconds", "").Set(-0.25)
	return r
}

const golden = `# HELP zbridge_agent_queue_depth Events queued per agent.
# TYPE zbridge_agent_queue_depth gauge
zbridge_agent_queue_depth{agent="VMSYS1",lpar="A"} 0
zbridge_agent_queue_depth{agent="VMSYS2"} 7
zbridge_agent_queue_depth{agent="X"} NaN
# TYPE zbridge_build_info untyped
zbridge_build_info{version="1.0"} 1
# HELP zbridge_events_stored_total Events written to the store.
# TYPE zbridge_events_stored_total counter
zbridge_events_stored_total 1e+06
# HELP zbridge_frames_total Frames received from clients.
# TYPE zbridge_frames_total counter
zbridge_frames_total 42
# TYPE zbridge_lag_seconds gauge
zbridge_lag_seconds -0.25
# HELP zbridge_logons_total Logons by client and result.
# TYPE zbridge_logons_total counter
zbridge_logons_total{client="OPSAUTO",result="ok"} 3
zbridge_logons_total{client="we\"ird\\name\n",result="refused"} 1
# HELP zbridge_sessions Open client sessions.
# TYPE zbridge_sessions gauge
zbridge_sessions 2.5
# HELP zbridge_store_limit_bytes Store limit; \\ is a backslash,\nthis a second line.
# TYPE zbridge_store_limit_bytes gauge
zbridge_store_limit_bytes +Inf
`

func TestGolden(t *testing.T) {
	r := newGoldenRegistry()
	got := scrape(t, r)
	if got != golden {
		t.Errorf("WriteTo:\n%s\nwant:\n%s", got, golden)
	}
	parseExposition(t, got)
	if again := scrape(t, r); again != got {
		t.Error("second scrape differs")
	}
}

func TestEmptyRegistry(t *testing.T) {
	if got := scrape(t, NewRegistry()); got != "" {
		t.Errorf("empty registry wrote %q", got)
	}
}

func TestEscaping(t *testing.T) {
	values := []string{
		``, `plain`, `back\slash`, `"quoted"`, "new\nline", `\n literal`, `\"`, `\\\`,
		"tab\tand unicode é 漢字", "trailing backslash\\", "\r\n", "{x=\"y\"},z",
	}
	r := NewRegistry()
	v := r.NewCounterVec("vec_total", "h", "v")
	for i, val := range values {
		v.With(val).Add(uint64(i + 1))
	}
	r.Collect("collected", "h", TypeGauge, func(emit func(float64, ...string)) {
		for i, val := range values {
			emit(float64(i+1), "v", val)
		}
	})
	for _, s := range parseExposition(t, scrape(t, r)) {
		i := int(s.value) - 1
		if i < 0 || i >= len(values) {
			t.Fatalf("unexpected sample %+v", s)
		}
		if got := s.labels["v"]; got != values[i] {
			t.Errorf("%s: label read back as %q, want %q", s.name, got, values[i])
		}
	}
}

func TestInvalidUTF8(t *testing.T) {
	r := NewRegistry()
	v := r.NewCounterVec("utf8_total", "bad \xff help", "v")
	v.With("a\xffb").Inc()
	v.With("a\xfeb").Inc() // the same series once made valid
	r.Collect("utf8_gauge", "h", TypeGauge, func(emit func(float64, ...string)) {
		emit(1, "v", "\xc3")
	})
	want := "# HELP utf8_gauge h\n# TYPE utf8_gauge gauge\nutf8_gauge{v=\"\uFFFD\"} 1\n" +
		"# HELP utf8_total bad \uFFFD help\n# TYPE utf8_total counter\nutf8_total{v=\"a\uFFFDb\"} 2\n"
	if got := scrape(t, r); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestFormatFloat(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		want string
	}{
		{0, "0"}, {math.Copysign(0, -1), "-0"}, {1, "1"}, {-1.5, "-1.5"}, {1e6, "1e+06"},
		{123456, "123456"}, {0.1, "0.1"}, {1e-9, "1e-09"}, {math.MaxFloat64, "1.7976931348623157e+308"},
		{math.Inf(1), "+Inf"}, {math.Inf(-1), "-Inf"}, {math.NaN(), "NaN"},
	} {
		if got := formatFloat(tc.v); got != tc.want {
			t.Errorf("formatFloat(%v) = %q, want %q", tc.v, got, tc.want)
		}
	}
}

func TestInvalidSamples(t *testing.T) {
	r := NewRegistry()
	r.NewCounter("a_total", "h").Inc()
	r.Collect("b", "h", TypeGauge, func(emit func(float64, ...string)) {
		emit(1, "x", "1")
		emit(2, "x")                // odd
		emit(3, "1x", "1")          // bad name
		emit(4, "__x", "1")         // reserved
		emit(5, "x", "1", "x", "2") // repeated label
		emit(6, "x", "1")           // repeated series
		emit(7, "y", "1", "x", "2")
		emit(8, "x", "2", "y", "1") // the same series as 7
	})
	var buf bytes.Buffer
	_, err := r.WriteTo(&buf)
	if !errors.Is(err, ErrInvalidSample) {
		t.Fatalf("WriteTo error = %v, want ErrInvalidSample", err)
	}
	for _, msg := range []string{"odd number", `"1x"`, `"__x"`, `"x" given twice`, `b{x="1"}: labels repeat`, `b{x="2",y="1"}: labels repeat`} {
		if !strings.Contains(err.Error(), msg) {
			t.Errorf("error %q does not say %q", err, msg)
		}
	}
	want := "# HELP a_total h\n# TYPE a_total counter\na_total 1\n" +
		"# HELP b h\n# TYPE b gauge\nb{x=\"1\"} 1\nb{x=\"2\",y=\"1\"} 7\n"
	if buf.String() != want {
		t.Errorf("got\n%s\nwant\n%s", buf.String(), want)
	}

	// The handler turns it into a 500.
	rec := httptest.NewRecorder()
	r.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusInternalServerError || !strings.Contains(rec.Body.String(), "metrics: invalid sample") {
		t.Errorf("handler: %d %q, want 500 with the error", rec.Code, rec.Body.String())
	}
}

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
		{"nil func", func(r *Registry) { r.NewGaugeFunc("f", "h", nil) }},
		{"nil collect", func(r *Registry) { r.Collect("f", "h", TypeGauge, nil) }},
		{"bad type", func(r *Registry) { r.Collect("f", "h", "histogram", collect) }},
		{"empty type", func(r *Registry) { r.Collect("f", "h", "", collect) }},
		{"bad label", func(r *Registry) { r.NewCounterVec("v", "h", "ok", "not-ok") }},
		{"reserved label", func(r *Registry) { r.NewCounterVec("v", "h", "__name__") }},
		{"colon in label", func(r *Registry) { r.NewCounterVec("v", "h", "a:b") }},
		{"repeated label", func(r *Registry) { r.NewCounterVec("v", "h", "a", "a") }},
		{"With too few", func(r *Registry) { r.NewCounterVec("v", "h", "a", "b").With("x") }},
		{"With too many", func(r *Registry) { r.NewCounterVec("v", "h", "a").With("x", "y") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				p := recover()
				if p == nil {
					t.Fatal("no panic")
				}
				if s, ok := p.(string); !ok || !strings.HasPrefix(s, "metrics: ") {
					t.Errorf("panic %v, want a string starting metrics:", p)
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
	r.NewCounterVec("none", "h").With().Inc()
	if got := scrape(t, r); !strings.Contains(got, "\nnone 1\n") {
		t.Errorf("label-less CounterVec: %q", got)
	}
}

func TestHandler(t *testing.T) {
	r := newGoldenRegistry()
	srv := httptest.NewServer(r.Handler())
	t.Cleanup(srv.Close)

	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	body.ReadFrom(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/plain; version=0.0.4; charset=utf-8" {
		t.Errorf("Content-Type = %q", ct)
	}
	if body.String() != golden {
		t.Errorf("body:\n%s\nwant:\n%s", body.String(), golden)
	}

	resp, err = http.Head(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != ContentType {
		t.Errorf("HEAD: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}

	resp, err = http.Post(srv.URL, "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

// TestConcurrent updates, registers and scrapes at once; run with -race.
func TestConcurrent(t *testing.T) {
	r := NewRegistry()
	c := r.NewCounter("c_total", "h")
	g := r.NewGauge("g", "h")
	v := r.NewCounterVec("v_total", "h", "worker")
	var state sync.Map
	r.Collect("collected", "h", TypeGauge, func(emit func(float64, ...string)) {
		state.Range(func(k, val any) bool {
			emit(val.(float64), "k", k.(string))
			return true
		})
	})

	const workers, perWorker = 8, 1000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			name := strconv.Itoa(w % 3)
			for i := range perWorker {
				c.Inc()
				g.Add(1)
				g.Add(-0.5)
				v.With(name).Inc()
				if i%100 == 0 {
					state.Store(fmt.Sprint(w, i), float64(i))
				}
			}
		})
	}
	wg.Go(func() {
		for i := range 50 {
			parseExposition(t, scrape(t, r))
			r.NewGaugeFunc(fmt.Sprintf("late_%d", i), "h", func() float64 { return float64(i) })
		}
	})
	wg.Wait()

	if got := c.Value(); got != workers*perWorker {
		t.Errorf("counter = %d, want %d", got, workers*perWorker)
	}
	if got := g.Value(); got != workers*perWorker/2 {
		t.Errorf("gauge = %v, want %d", got, workers*perWorker/2)
	}
	var total float64
	for _, s := range parseExposition(t, scrape(t, r)) {
		if s.name == "v_total" {
			total += s.value
		}
	}
	if total != workers*perWorker {
		t.Errorf("vec total = %v, want %d", total, workers*perWorker)
	}
}

func TestCounterIncDoesNotAllocate(t *testing.T) {
	c := NewRegistry().NewCounter("c_total", "h")
	if n := testing.AllocsPerRun(100, c.Inc); n != 0 {
		t.Errorf("Inc allocates %v times", n)
	}
	v := NewRegistry().NewCounterVec("v_total", "h", "a")
	v.With("x")
	if n := testing.AllocsPerRun(100, func() { v.With("x").Inc() }); n != 0 {
		t.Errorf("With(existing).Inc allocates %v times", n)
	}
}

func BenchmarkCounterInc(b *testing.B) {
	c := NewRegistry().NewCounter("c_total", "h")
	for b.Loop() {
		c.Inc()
	}
}

func BenchmarkCounterIncParallel(b *testing.B) {
	c := NewRegistry().NewCounter("c_total", "h")
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.Inc()
		}
	})
}

func BenchmarkGaugeAdd(b *testing.B) {
	g := NewRegistry().NewGauge("g", "h")
	for b.Loop() {
		g.Add(1)
	}
}

func BenchmarkCounterVecWith(b *testing.B) {
	v := NewRegistry().NewCounterVec("v_total", "h", "client", "result")
	for b.Loop() {
		v.With("OPSAUTO", "ok").Inc()
	}
}

func BenchmarkWriteTo(b *testing.B) {
	r := newGoldenRegistry()
	var buf bytes.Buffer
	for b.Loop() {
		buf.Reset()
		r.WriteTo(&buf)
	}
}

// TestSampleLineParser checks that the test's own parser rejects what it
// should, so that the tests using it mean something.
func TestSampleLineParser(t *testing.T) {
	for _, line := range []string{
		`a{x="1"} 2`, `a 1`, `a{} 1`, `a{x="1",y="\"\\\n"} NaN`, `a -Inf`, `a:b_c 1e+06`,
	} {
		if _, err := parseSampleLine(line); err != nil {
			t.Errorf("%q: %v", line, err)
		}
	}
	for _, line := range []string{
		`a`, `a{x="1"}`, `a{x="1",} 1`, `a{x="1"y="2"} 1`, `a{x=1} 1`, `a{x="1} 1`,
		`a{x="\t"} 1`, `a{x="1",x="2"} 1`, `a{1x="1"} 1`, `1a 1`, `a  1`, `a{x="1"}1`, `a one`,
	} {
		if _, err := parseSampleLine(line); err == nil {
			t.Errorf("%q parsed", line)
		}
	}
}
