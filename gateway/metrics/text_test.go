package metrics

import (
	"bytes"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

var update = flag.Bool("update", false, "rewrite testdata/exposition.txt from the output")

// TestExpositionGolden: the exact text of a registry with every kind,
// escapes and special values, against testdata/exposition.txt (go test
// -update rewrites it; review the diff).
func TestExpositionGolden(t *testing.T) {
	r := newTestRegistry()
	r.Handler(nil)
	got := scrape(t, r)
	path := filepath.Join("testdata", "exposition.txt")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("exposition differs from %s (go test -update to rewrite):\n%s", path, got)
	}
	parse(t, got)
}

func TestAppendFloat(t *testing.T) {
	for _, tc := range []struct {
		f    float64
		want string
	}{
		{0, "0"},
		{1, "1"},
		{-1, "-1"},
		{0.5, "0.5"},
		{0.0001, "0.0001"},
		{0.00001, "1e-05"},
		{302816, "302816"},
		{1e6, "1e+06"},
		{1.6515072e7, "1.6515072e+07"},
		{0.30000000000000004, "0.30000000000000004"},
		{math.MaxInt64, "9.223372036854776e+18"},
		{math.MaxUint64, "1.8446744073709552e+19"},
		{math.NaN(), "NaN"},
		{math.Inf(1), "+Inf"},
		{math.Inf(-1), "-Inf"},
	} {
		if got := string(appendFloat(nil, tc.f)); got != tc.want {
			t.Errorf("appendFloat(%v) = %q, want %q", tc.f, got, tc.want)
		}
	}
}

func TestEscaping(t *testing.T) {
	r := NewRegistry()
	r.NewGaugeFunc("g", "a \\ b \" c\nd\\n", func() float64 { return 1 })
	r.NewCounterVec("v_total", "h", "x").WithLabelValues("a \\ b \" c\nd\\n").Inc()
	got := scrape(t, r)
	for _, line := range []string{
		`# HELP g a \\ b " c\nd\\n`, // a double quote in HELP is as it is
		`v_total{x="a \\ b \" c\nd\\n"} 1`,
	} {
		if !strings.Contains(got, line+"\n") {
			t.Errorf("no line %s in\n%s", line, got)
		}
	}
}

// FuzzExposition: whatever the help, label value and value, Prometheus's
// own parser reads back what was registered (invalid UTF-8 as U+FFFD).
func FuzzExposition(f *testing.F) {
	f.Add("Frames received.", "OPSAUTO", 42.0)
	f.Add("back\\slash\nnew line \"quoted\"", "we\"ird\\name\n", math.Inf(-1))
	f.Add("", "", 1e-300)
	f.Add("tab\tand\r", "bad\xffutf8 \\n", 0.30000000000000004)
	f.Add("ünïcode ☃", "{le=\"+Inf\"}", math.NaN())
	f.Fuzz(func(t *testing.T, help, labelValue string, v float64) {
		r := NewRegistry()
		r.NewGaugeVec("g", help, "l").WithLabelValues(labelValue).Set(v)
		var buf bytes.Buffer
		if _, err := r.WriteTo(&buf); err != nil {
			t.Fatal(err)
		}
		mf := parse(t, buf.String())["g"]
		if mf == nil || len(mf.GetMetric()) != 1 {
			t.Fatalf("read back %v from\n%s", mf, buf.String())
		}
		// The parser skips the blanks between the name and the help.
		if got, want := mf.GetHelp(), strings.TrimLeft(strings.ToValidUTF8(help, "\uFFFD"), " \t"); got != want {
			t.Errorf("help read back %q, want %q", got, want)
		}
		m := mf.GetMetric()[0]
		if got := m.GetLabel()[0].GetValue(); got != strings.ToValidUTF8(labelValue, "\uFFFD") || !utf8.ValidString(got) {
			t.Errorf("label value read back %q, want %q", got, labelValue)
		}
		if got := m.GetGauge().GetValue(); got != v && !(math.IsNaN(got) && math.IsNaN(v)) {
			t.Errorf("value read back %v, want %v", got, v)
		}
	})
}
