package protocol

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestGlob(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		// Empty pattern matches only the empty name.
		{"", "", true},
		{"", "a", false},
		{"a", "", false},
		// Literals.
		{"lnx01", "lnx01", true},
		{"lnx01", "lnx02", false},
		{"lnx01", "lnx011", false},
		{"lnx011", "lnx01", false},
		// *.
		{"*", "", true},
		{"*", "anything", true},
		{"*", "*", true},
		{"*", "**x", true},
		{"**", "", true},
		{"***", "abc", true},
		{"lnx*", "lnx", true},
		{"lnx*", "lnx01", true},
		{"lnx*", "vm01", false},
		{"*01", "lnx01", true},
		{"*01", "lnx02", false},
		{"*nx*", "lnx01", true},
		{"*nx*", "vm01", false},
		// ?.
		{"?", "a", true},
		{"?", "", false},
		{"?", "ab", false},
		{"lnx0?", "lnx01", true},
		{"lnx0?", "lnx0", false},
		{"???", "abc", true},
		{"?*", "", false},
		{"?*", "a", true},
		{"*?", "", false},
		{"*?", "abc", true},
		{"?", "é", false}, // ? is one byte; é is two
		{"??", "é", true},
		// Multiple stars and backtracking.
		{"a*b*c", "abc", true},
		{"a*b*c", "aXbYbZc", true},
		{"a*b*c", "aXbYbZ", false},
		{"a*b*c", "aXcYbZ", false},
		{"a*b*c", "acb", false},
		{"a*b", "abab", true},
		{"a*b", "abba", false},
		{"*a*a*a*", "aaa", true},
		{"*a*a*a*", "aa", false},
		{"*aab", "aaaab", true},
		{"a*a*a*a*a*b", strings.Repeat("a", 40), false},
		{"*x*y*z*", "xxyyzz", true},
		// Case folding, ASCII only.
		{"LNX*", "lnx01", true},
		{"lnx*", "LNX01", true},
		{"VmSys?", "vmsYS1", true},
		{"É", "é", false},
		{"[", "[", true}, // no character classes
		{"a\\*", "a\\b", true},
		// A '*' or '?' in the name is an ordinary character.
		{"a*", "a*b", true},
		{"a?c", "a*c", true},
		{"*b", "*b", true},
		{"a*c", "a*c", true},
		{"x", "*", false},
		{"x", "?", false},
		// Long names: the runs between stars are found by the shift-and
		// search (one word up to 64 bytes, four words up to 256).
		{"*HCP003E*", strings.Repeat("x", 500) + "hcp003e" + strings.Repeat("y", 500), true},
		{"*HCP003E*", strings.Repeat("x", 500) + "hcp003" + strings.Repeat("y", 500), false},
		{"*HC?003E*", strings.Repeat("x", 500) + "hcX003e", true},
		{"*a*b*", strings.Repeat("b", 400) + "a" + strings.Repeat("c", 400), false},
		{"*a*b*", strings.Repeat("b", 400) + "a" + strings.Repeat("c", 400) + "B", true},
		{"*" + strings.Repeat("ab", 32) + "*", strings.Repeat("ab", 300), true},             // 64 bytes: the top bit of one word
		{"*" + strings.Repeat("ab", 32) + "*", strings.Repeat("aB", 31) + "a" + "x", false}, // one short
		{"*" + strings.Repeat("ab", 33) + "*", strings.Repeat("AB", 300), true},             // 66: two words
		{"*" + strings.Repeat("?", 200) + "z*", strings.Repeat("a", 200) + "z", true},
		{"*" + strings.Repeat("?", 200) + "z*", strings.Repeat("a", 199) + "z", false},
		{"*" + strings.Repeat("a", 255) + "*", strings.Repeat("a", 254) + "b" + strings.Repeat("a", 255), true}, // four words, found late
		{"*" + strings.Repeat("a", 255) + "*", strings.Repeat("a", 254) + "b" + strings.Repeat("a", 254), false},
		{"*" + strings.Repeat("a", 300) + "*", strings.Repeat("a", 600), true}, // over MaxGlobLen: the plain search
		{"*" + strings.Repeat("a", 300) + "*", strings.Repeat("a", 299), false},
		{"*a*" + strings.Repeat("b", 70) + "*c", "a" + strings.Repeat("b", 69) + "c" + strings.Repeat("b", 70) + "c", true},
		// The head and the tail are anchored, and do not overlap.
		{"ab*ba", "aba", false},
		{"ab*ba", "abba", true},
		{"a*a", "a", false},
		{"*aa*aa", "aaa", false},
		{"*aa*aa", "aaaa", true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%.40q~%.40q", tt.pattern, tt.name), func(t *testing.T) {
			if got := Glob(tt.pattern, tt.name); got != tt.want {
				t.Errorf("Glob(%q, %q) = %v, want %v", tt.pattern, tt.name, got, tt.want)
			}
		})
	}
}

func TestFilterMatch(t *testing.T) {
	ev := func(mod func(*Event)) *Event {
		e := &Event{
			Origin:   Origin{System: "LNX01", Host: "lnx01.example.com", Node: "VMSYS1"},
			Source:   SourceSyslog,
			MsgID:    "HCP003E",
			Severity: SevWarning,
		}
		if mod != nil {
			mod(e)
		}
		return e
	}
	tests := []struct {
		name string
		f    *Filter
		e    *Event
		want bool
	}{
		{"nil filter", nil, ev(nil), true},
		{"empty filter", &Filter{}, ev(nil), true},
		{"empty filter empty event", &Filter{}, &Event{}, true},

		{"severity equal", &Filter{Severity: sevPtr(SevWarning)}, ev(nil), true},
		{"severity more severe", &Filter{Severity: sevPtr(SevWarning)}, ev(func(e *Event) { e.Severity = SevEmerg }), true},
		{"severity less severe", &Filter{Severity: sevPtr(SevWarning)}, ev(func(e *Event) { e.Severity = SevNotice }), false},
		{"severity emerg only", &Filter{Severity: sevPtr(SevEmerg)}, ev(nil), false},
		{"severity debug takes all", &Filter{Severity: sevPtr(SevDebug)}, ev(func(e *Event) { e.Severity = SevDebug }), true},

		{"source listed", &Filter{Source: []Source{SourceSyslog}}, ev(nil), true},
		{"source among several", &Filter{Source: []Source{SourceRegion, SourceSyslog}}, ev(nil), true},
		{"source not listed", &Filter{Source: []Source{SourceZVMConsole, SourceZVMEvent}}, ev(nil), false},
		{"empty source list takes all", &Filter{Source: []Source{}}, ev(nil), true},

		{"msgid exact", &Filter{MsgID: "HCP003E"}, ev(nil), true},
		{"msgid glob", &Filter{MsgID: "hcp*"}, ev(nil), true},
		{"msgid no match", &Filter{MsgID: "DMS*"}, ev(nil), false},
		{"msgid glob against none", &Filter{MsgID: "HCP*"}, ev(func(e *Event) { e.MsgID = "" }), false},
		{"msgid star against none", &Filter{MsgID: "*"}, ev(func(e *Event) { e.MsgID = "" }), true},

		{"origin system", &Filter{Origin: "lnx01"}, ev(nil), true},
		{"origin host", &Filter{Origin: "*.example.com"}, ev(nil), true},
		{"origin node", &Filter{Origin: "VMSYS?"}, ev(nil), true},
		{"origin none", &Filter{Origin: "zos*"}, ev(nil), false},
		{"origin addr not matched", &Filter{Origin: "10.*"}, ev(func(e *Event) { e.Origin.Addr = "10.0.0.1" }), false},
		{"origin empty event", &Filter{Origin: "lnx*"}, &Event{}, false},

		{"all hold", &Filter{Origin: "lnx*", Source: []Source{SourceSyslog}, MsgID: "HCP*", Severity: sevPtr(SevErr)},
			ev(func(e *Event) { e.Severity = SevErr }), true},
		{"all but severity", &Filter{Origin: "lnx*", Source: []Source{SourceSyslog}, MsgID: "HCP*", Severity: sevPtr(SevErr)},
			ev(nil), false},
		{"all but source", &Filter{Origin: "lnx*", Source: []Source{SourceRegion}, MsgID: "HCP*", Severity: sevPtr(SevWarning)},
			ev(nil), false},
		{"all but msgid", &Filter{Origin: "lnx*", Source: []Source{SourceSyslog}, MsgID: "DMS*", Severity: sevPtr(SevWarning)},
			ev(nil), false},
		{"all but origin", &Filter{Origin: "zos*", Source: []Source{SourceSyslog}, MsgID: "HCP*", Severity: sevPtr(SevWarning)},
			ev(nil), false},

		{"sd value", &Filter{SD: []SDTerm{{"exampleSDID@32473", "eventSource", "Application"}}}, ev(withSampleSD), true},
		{"sd glob, any case", &Filter{SD: []SDTerm{{"exampleSDID@32473", "eventSource", "app*"}}}, ev(withSampleSD), true},
		{"sd value differs", &Filter{SD: []SDTerm{{"exampleSDID@32473", "eventSource", "Kernel"}}}, ev(withSampleSD), false},
		{"sd second element", &Filter{SD: []SDTerm{{"examplePriority@32473", "class", "high"}}}, ev(withSampleSD), true},
		{"sd param of another element", &Filter{SD: []SDTerm{{"examplePriority@32473", "iut", "*"}}}, ev(withSampleSD), false},
		{"sd ID is case-sensitive", &Filter{SD: []SDTerm{{"EXAMPLESDID@32473", "iut", "3"}}}, ev(withSampleSD), false},
		{"sd param is case-sensitive", &Filter{SD: []SDTerm{{"exampleSDID@32473", "IUT", "3"}}}, ev(withSampleSD), false},
		{"sd star needs the param", &Filter{SD: []SDTerm{{"exampleSDID@32473", "nope", "*"}}}, ev(withSampleSD), false},
		{"sd star with the param", &Filter{SD: []SDTerm{{"exampleSDID@32473", "iut", "*"}}}, ev(withSampleSD), true},
		{"sd empty glob, empty value", &Filter{SD: []SDTerm{{"empty@1", "v", ""}}}, ev(func(e *Event) {
			e.SD = StructuredData{{ID: "empty@1", Params: []SDParam{{"v", ""}}}}
		}), true},
		{"sd empty glob, a value", &Filter{SD: []SDTerm{{"exampleSDID@32473", "iut", ""}}}, ev(withSampleSD), false},
		{"sd repeated name, first value", &Filter{SD: []SDTerm{{"origin", "ip", "192.0.2.1"}}}, ev(withSampleSD), true},
		{"sd repeated name, second value", &Filter{SD: []SDTerm{{"origin", "ip", "*.129"}}}, ev(withSampleSD), true},
		{"sd repeated name, no value", &Filter{SD: []SDTerm{{"origin", "ip", "10.*"}}}, ev(withSampleSD), false},
		{"sd dotted ID", &Filter{SD: []SDTerm{{"origin@32473.1.2", "ip", "10.*"}}}, ev(func(e *Event) {
			e.SD = StructuredData{{ID: "origin@32473.1.2", Params: []SDParam{{"ip", "10.0.0.1"}}}}
		}), true},
		{"sd all terms hold", &Filter{SD: []SDTerm{{"exampleSDID@32473", "iut", "3"}, {"origin", "ip", "*.129"}}}, ev(withSampleSD), true},
		{"sd one term fails", &Filter{SD: []SDTerm{{"exampleSDID@32473", "iut", "3"}, {"origin", "ip", "*.130"}}}, ev(withSampleSD), false},
		{"sd against none", &Filter{SD: []SDTerm{{"origin", "ip", "*"}}}, ev(nil), false},
		{"sd and the rest", &Filter{Origin: "lnx*", Severity: sevPtr(SevWarning), SD: []SDTerm{{"origin", "ip", "192.*"}}}, ev(withSampleSD), true},
		{"sd holds, severity not", &Filter{Severity: sevPtr(SevErr), SD: []SDTerm{{"origin", "ip", "192.*"}}}, ev(withSampleSD), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.f.Match(tt.e); got != tt.want {
				t.Errorf("%+v.Match(%+v) = %v, want %v", tt.f, tt.e, got, tt.want)
			}
		})
	}
}

func withSampleSD(e *Event) { e.SD = sampleSD() }

func TestFilterValidate(t *testing.T) {
	tests := []struct {
		name    string
		f       *Filter
		wantErr bool
	}{
		{"nil", nil, false},
		{"empty", &Filter{}, false},
		{"every source", &Filter{Source: []Source{SourceSyslog, SourceZVMConsole, SourceZVMEvent, SourceAgent, SourceRegion}}, false},
		{"debug", &Filter{Severity: sevPtr(SevDebug)}, false},
		{"unknown source", &Filter{Source: []Source{SourceSyslog, "mail"}}, true},
		{"empty source", &Filter{Source: []Source{""}}, true},
		{"severity out of range", &Filter{Severity: sevPtr(8)}, true},
		{"longest globs", &Filter{Origin: strings.Repeat("o", MaxGlobLen), MsgID: strings.Repeat("m", MaxGlobLen)}, false},
		{"most stars", &Filter{Origin: strings.Repeat("*a", MaxGlobStars), MsgID: strings.Repeat("*", MaxGlobStars)}, false},
		{"origin glob too long", &Filter{Origin: strings.Repeat("o", MaxGlobLen+1)}, true},
		{"msgid glob too long", &Filter{MsgID: "*" + strings.Repeat("a", MaxGlobLen) + "*"}, true},
		{"origin too many stars", &Filter{Origin: strings.Repeat("*a", MaxGlobStars+1)}, true},
		{"msgid too many stars", &Filter{MsgID: strings.Repeat("*", MaxGlobStars+1)}, true},
		{"sd", &Filter{SD: []SDTerm{{"origin@32473.1.2", "ip", "192.0.2.*"}, {"a", "b", ""}}}, false},
		{"sd longest names and glob", &Filter{SD: []SDTerm{{strings.Repeat("i", MaxSDName), strings.Repeat("p", MaxSDName),
			strings.Repeat("*a", MaxGlobStars) + strings.Repeat("g", MaxGlobLen-2*MaxGlobStars)}}}, false},
		{"sd too many terms", &Filter{SD: slices.Repeat([]SDTerm{{"a", "b", "*"}}, MaxSDTerms+1)}, true},
		{"sd as many terms as allowed", &Filter{SD: slices.Repeat([]SDTerm{{"a", "b", "*"}}, MaxSDTerms)}, false},
		{"too many source kinds", &Filter{Source: slices.Repeat([]Source{SourceSyslog}, MaxFilterSources+1)}, true},
		{"as many source kinds as allowed", &Filter{Source: slices.Repeat([]Source{SourceSyslog}, MaxFilterSources)}, false},
		{"sd empty ID", &Filter{SD: []SDTerm{{"", "b", "*"}}}, true},
		{"sd empty param", &Filter{SD: []SDTerm{{"a", "", "*"}}}, true},
		{"sd ID too long", &Filter{SD: []SDTerm{{strings.Repeat("i", MaxSDName+1), "b", "*"}}}, true},
		{"sd param too long", &Filter{SD: []SDTerm{{"a", strings.Repeat("p", MaxSDName+1), "*"}}}, true},
		{"sd ID with space", &Filter{SD: []SDTerm{{"a b", "c", "*"}}}, true},
		{"sd param with =", &Filter{SD: []SDTerm{{"a", "b=c", "*"}}}, true},
		{"sd ID with ]", &Filter{SD: []SDTerm{{"a]", "c", "*"}}}, true},
		{"sd param with quote", &Filter{SD: []SDTerm{{"a", `b"`, "*"}}}, true},
		{"sd non-ASCII ID", &Filter{SD: []SDTerm{{"é", "b", "*"}}}, true},
		{"sd glob too long", &Filter{SD: []SDTerm{{"a", "b", strings.Repeat("g", MaxGlobLen+1)}}}, true},
		{"sd glob too many stars", &Filter{SD: []SDTerm{{"a", "b", strings.Repeat("*", MaxGlobStars+1)}}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.f.Validate()
			if tt.wantErr != (err != nil) {
				t.Fatalf("Validate() = %v, want error %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrBadFilter) {
				t.Errorf("Validate() = %v, want ErrBadFilter", err)
			}
		})
	}
}

func TestParseFilter(t *testing.T) {
	tests := []struct {
		in      string
		want    *Filter
		wantErr []error // all must hold (errors.Is)
	}{
		{in: "", want: &Filter{}},
		{in: "   ", want: &Filter{}},
		{in: "origin=lnx*", want: &Filter{Origin: "lnx*"}},
		{in: "msgid=HCP*", want: &Filter{MsgID: "HCP*"}},
		{in: "source=syslog", want: &Filter{Source: []Source{SourceSyslog}}},
		{in: "source=syslog|region", want: &Filter{Source: []Source{SourceSyslog, SourceRegion}}},
		{in: "source=ZVM-Console", want: &Filter{Source: []Source{SourceZVMConsole}}},
		{in: "severity=warning", want: &Filter{Severity: sevPtr(SevWarning)}},
		{in: "severity=3", want: &Filter{Severity: sevPtr(SevErr)}},
		{in: "severity=ERROR", want: &Filter{Severity: sevPtr(SevErr)}},
		{in: "origin=lnx*,source=syslog|region,severity=warning",
			want: &Filter{Origin: "lnx*", Source: []Source{SourceSyslog, SourceRegion}, Severity: sevPtr(SevWarning)}},
		{in: " origin=a* , msgid=b? ", want: &Filter{Origin: "a*", MsgID: "b?"}},
		{in: "ORIGIN=VM*", want: &Filter{Origin: "VM*"}},
		{in: "origin=a,origin=b", want: &Filter{Origin: "b"}}, // the last wins
		{in: "origin=", want: &Filter{}},
		{in: "msgid=a=b", want: &Filter{MsgID: "a=b"}},
		{in: "sd.exampleSDID@32473.eventSource=App*", want: &Filter{SD: []SDTerm{{"exampleSDID@32473", "eventSource", "App*"}}}},
		{in: "SD.origin.ip=192.0.2.*", want: &Filter{SD: []SDTerm{{"origin", "ip", "192.0.2.*"}}}}, // "sd." in any case
		{in: "sd.origin@32473.1.2.ip=10.*", want: &Filter{SD: []SDTerm{{"origin@32473.1.2", "ip", "10.*"}}}},
		{in: "sd.meta.x=", want: &Filter{SD: []SDTerm{{"meta", "x", ""}}}},
		{in: "sd.a.b=x=y", want: &Filter{SD: []SDTerm{{"a", "b", "x=y"}}}},
		{in: "sd.a.b=1,sd.a.b=*2,severity=err,sd.c.d=*", want: &Filter{Severity: sevPtr(SevErr),
			SD: []SDTerm{{"a", "b", "1"}, {"a", "b", "*2"}, {"c", "d", "*"}}}}, // every term kept, in order

		{in: "origin", wantErr: []error{ErrBadFilter}},
		{in: "lnx*", wantErr: []error{ErrBadFilter}},
		{in: "origin=a,", wantErr: []error{ErrBadFilter}},
		{in: ",", wantErr: []error{ErrBadFilter}},
		{in: "colour=blue", wantErr: []error{ErrBadFilter}},
		{in: "=x", wantErr: []error{ErrBadFilter}},
		{in: "source=mail", wantErr: []error{ErrBadFilter}},
		{in: "source=syslog|", wantErr: []error{ErrBadFilter}},
		{in: "source=", wantErr: []error{ErrBadFilter}},
		{in: "severity=loud", wantErr: []error{ErrBadFilter, ErrBadSeverity}},
		{in: "severity=8", wantErr: []error{ErrBadFilter, ErrBadSeverity}},
		{in: "severity=", wantErr: []error{ErrBadFilter, ErrBadSeverity}},
		{in: "origin=" + strings.Repeat("*a", 200) + "*b", wantErr: []error{ErrBadFilter}},
		{in: "msgid=*" + strings.Repeat("a", 300) + "b*", wantErr: []error{ErrBadFilter}},
		{in: "sd=x", wantErr: []error{ErrBadFilter}},
		{in: "sd.=x", wantErr: []error{ErrBadFilter}},
		{in: "sd.origin=x", wantErr: []error{ErrBadFilter}},  // no param
		{in: "sd.origin.=x", wantErr: []error{ErrBadFilter}}, // empty param
		{in: "sd..ip=x", wantErr: []error{ErrBadFilter}},     // empty ID
		{in: "sd.a b.c=x", wantErr: []error{ErrBadFilter}},
		{in: "sd.a.b=" + strings.Repeat("*", MaxGlobStars+1), wantErr: []error{ErrBadFilter}},
		{in: strings.Repeat("sd.a.b=*,", MaxSDTerms) + "sd.a.b=*", wantErr: []error{ErrBadFilter}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%.60q", tt.in), func(t *testing.T) {
			got, err := ParseFilter(tt.in)
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("ParseFilter(%q) = %+v, want an error", tt.in, got)
				}
				if got != nil {
					t.Errorf("ParseFilter(%q) returned a filter with its error: %+v", tt.in, got)
				}
				for _, want := range tt.wantErr {
					if !errors.Is(err, want) {
						t.Errorf("ParseFilter(%q) error %v is not %v", tt.in, err, want)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseFilter(%q): %v", tt.in, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseFilter(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestFilterJSON(t *testing.T) {
	tests := []struct {
		name string
		f    Filter
		json string
	}{
		{"empty", Filter{}, `{}`},
		{"all", Filter{Origin: "lnx*", Source: []Source{SourceSyslog, SourceRegion}, MsgID: "HCP*", Severity: sevPtr(SevWarning)},
			`{"origin":"lnx*","source":["syslog","region"],"msgid":"HCP*","severity":"warning"}`},
		{"emerg is not omitted", Filter{Severity: sevPtr(SevEmerg)}, `{"severity":"emerg"}`},
		{"sd", Filter{SD: []SDTerm{{"origin@32473.1.2", "ip", "192.0.2.*"}, {"meta", "language", ""}}},
			`{"sd":[{"id":"origin@32473.1.2","param":"ip","glob":"192.0.2.*"},{"id":"meta","param":"language","glob":""}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(&tt.f)
			if err != nil || string(b) != tt.json {
				t.Fatalf("json.Marshal = %s, %v; want %s", b, err, tt.json)
			}
			var back Filter
			if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, tt.f) {
				t.Errorf("json.Unmarshal(%s) = %+v, %v; want %+v", b, back, err, tt.f)
			}
		})
	}
}

// pathologicalGlobs are patterns a backtracking matcher takes
// O(len(pattern)*len(name)) or worse on against a long run of "a", each as
// long as Validate allows in its kind.
func pathologicalGlobs() map[string]string {
	return map[string]string{
		"many stars":      strings.Repeat("*a", MaxGlobStars-1) + "*b",
		"long run":        "*" + strings.Repeat("a", MaxGlobLen-3) + "b*",
		"long run, ?":     "*" + strings.Repeat("a?", (MaxGlobLen-3)/2) + "b*",
		"one-word run":    strings.Repeat("*"+strings.Repeat("a", 63)+"b", 3) + "*",
		"stars and runs":  strings.Repeat("*"+strings.Repeat("a", 14)+"b", MaxGlobStars-1) + "*",
		"anchored ends":   strings.Repeat("a", 100) + "*" + strings.Repeat("a", 50) + "b*" + strings.Repeat("a", 100),
		"matches at last": "*" + strings.Repeat("a", MaxGlobLen-3) + "b",
	}
}

// globBound is the most steps glob may take for a pattern with runs
// between stars of at most MaxGlobLen bytes (see Glob).
func globBound(pattern, name string) int {
	return 4*len(pattern) + 4*len(name) + plainSearchSteps*strings.Count(pattern, "*")
}

// TestGlobLinear matches the pathological patterns against a 64 KiB field:
// every pattern Validate accepts takes steps linear in the lengths, where
// a backtracking matcher takes about len(pattern)*len(name) (16 M here);
// BenchmarkGlob measures the time.
func TestGlobLinear(t *testing.T) {
	name := strings.Repeat("a", 64<<10)
	for what, p := range pathologicalGlobs() {
		t.Run(what, func(t *testing.T) {
			if err := (&Filter{Origin: p, MsgID: p}).Validate(); err != nil {
				t.Fatalf("the pattern does not validate: %v", err)
			}
			for _, n := range []string{name, name + "b", "b" + name} {
				got, steps := glob(p, n)
				if want := globBound(p, n); steps > want {
					t.Errorf("glob(%.20q…, %d bytes) took %d steps, more than %d", p, len(n), steps, want)
				}
				if want := globSlow(p, n); got != want {
					t.Errorf("glob(%.20q…, %.10q… of %d bytes) = %v, want %v", p, n, len(n), got, want)
				}
			}
		})
	}
}

// globSlow is a backtracking matcher (the one Glob used to be), for the
// tests' answers on inputs too long for globRef.
func globSlow(pattern, name string) bool {
	p, n := 0, 0
	star, mark := -1, 0
	for n < len(name) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, n
			p++
		case p < len(pattern) && (pattern[p] == '?' || foldEq(pattern[p], name[n])):
			p++
			n++
		case star >= 0:
			p = star + 1
			mark++
			n = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

func BenchmarkGlob(b *testing.B) {
	long := strings.Repeat("a", 64<<10)
	cases := []struct{ name, pattern, s string }{
		{"literal", "HCP003E", "HCP003E"},
		{"prefix", "lnx*", "lnx01"},
		{"suffix", "*.example.com", "lnx01.example.com"},
		{"middle", "*nx0*", "lnx01.example.com"},
		{"three runs", "*a*b*c*", "xxaxxbxxcxx"},
	}
	for what, p := range pathologicalGlobs() {
		cases = append(cases, struct{ name, pattern, s string }{"64KiB/" + what, p, long})
	}
	for _, c := range cases {
		b.Run(strings.ReplaceAll(c.name, " ", "_"), func(b *testing.B) {
			b.SetBytes(int64(len(c.s)))
			for b.Loop() {
				Glob(c.pattern, c.s)
			}
		})
	}
}

// FuzzGlob checks that Glob never panics and holds its simplest promises,
// that it agrees with a plainly correct matcher, that its three searches
// agree, and that it keeps to its bound on steps.
func FuzzGlob(f *testing.F) {
	for _, s := range [][2]string{
		{"lnx*", "lnx01"}, {"a*b*c", "aXbYbZc"}, {"VMSYS?", "vmsys1"}, {"", ""},
		{"*", "*x"}, {"a*", "a*b"}, {"*.example.com", "lnx01.example.com"}, {"HCP???E", "HCP003E"},
		{"ab*ba", "aba"}, {"*aa*aa", "aaa"},
		// Small kin of the pathological globs (long inputs make the
		// fuzzer's minimizing slow; 40 bytes of name already take the
		// shift-and searches).
		{"*a*a*a*a*a*a*a*b", strings.Repeat("a", 40)},
		{"*HCP0?3E*", strings.Repeat("x", 40) + "hcp003E"},
		{"*" + strings.Repeat("a", 20) + "b*", strings.Repeat("a", 60) + "b"},
		{"*" + strings.Repeat("a?", 35) + "b*", strings.Repeat("ab", 40) + "b"},
		{"*" + strings.Repeat("ab", 32) + "*", strings.Repeat("aB", 31) + "axab"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, name string) {
		got, steps := glob(pattern, name)
		if len(pattern) <= MaxGlobLen {
			if bound := globBound(pattern, name); steps > bound {
				t.Errorf("glob(%q, %q) took %d steps, more than %d", pattern, name, steps, bound)
			}
		}
		// The searches, each on the pattern's stars taken out.
		if run := strings.ReplaceAll(pattern, "*", ""); run != "" && len(run) <= MaxGlobLen {
			want, _ := findPlain(run, name)
			if len(run) <= 64 {
				if i, _ := findShiftAnd1(run, name); i != want {
					t.Errorf("findShiftAnd1(%q, %q) = %d, findPlain says %d", run, name, i, want)
				}
			}
			if i, _ := findShiftAnd4(run, name); i != want {
				t.Errorf("findShiftAnd4(%q, %q) = %d, findPlain says %d", run, name, i, want)
			}
		}
		if !strings.ContainsAny(pattern, "*?") {
			if !Glob(pattern, pattern) {
				t.Errorf("Glob(%q, itself) = false", pattern)
			}
			if want := asciiLower(pattern) == asciiLower(name); got != want {
				t.Errorf("Glob(%q, %q) = %v, want %v (a literal compares ignoring ASCII case)", pattern, name, got, want)
			}
		}
		if !Glob("*", name) {
			t.Errorf("Glob(\"*\", %q) = false", name)
		}
		if !Glob("*"+pattern, name) && got {
			t.Errorf("Glob(%q, %q) but not with a leading *", pattern, name)
		}
		if !Glob(pattern+"*", name) && got {
			t.Errorf("Glob(%q, %q) but not with a trailing *", pattern, name)
		}
		if want := len(name) == 1; Glob("?", name) != want {
			t.Errorf("Glob(\"?\", %q) = %v, want %v", name, !want, want)
		}
		if got != globRef(pattern, name) {
			t.Errorf("Glob(%q, %q) = %v, the reference matcher says %v", pattern, name, got, !got)
		}
	})
}

// asciiLower lowers ASCII letters only, as Glob folds case.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// lowerByte lowers an ASCII letter.
func lowerByte(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// globRef is a plainly correct glob matcher by dynamic programming:
// m[i][j] says whether p[i:] matches n[j:].
func globRef(p, n string) bool {
	m := make([][]bool, len(p)+1)
	for i := range m {
		m[i] = make([]bool, len(n)+1)
	}
	m[len(p)][len(n)] = true
	for i := len(p) - 1; i >= 0; i-- {
		for j := len(n); j >= 0; j-- {
			switch {
			case p[i] == '*':
				m[i][j] = m[i+1][j] || (j < len(n) && m[i][j+1])
			case j < len(n) && (p[i] == '?' || lowerByte(p[i]) == lowerByte(n[j])):
				m[i][j] = m[i+1][j+1]
			}
		}
	}
	return m[0][0]
}

// FuzzParseFilter checks that ParseFilter never panics, that what it accepts
// validates, and that it survives the JSON of a subscribe frame.
func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{
		"", "origin=lnx*,source=syslog|region,severity=warning", "msgid=HCP*",
		"severity=3", "source=zvm-console|zvm-event|agent", "origin=a,", "colour=blue", "severity=panic",
		"sd.origin@32473.1.2.ip=192.0.2.*,sd.meta.language=en", "sd.a.b=", "sd.a=b",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		flt, err := ParseFilter(s)
		if err != nil {
			if !errors.Is(err, ErrBadFilter) {
				t.Fatalf("ParseFilter(%q) error %v is not ErrBadFilter", s, err)
			}
			if flt != nil {
				t.Fatalf("ParseFilter(%q) returned a filter with its error", s)
			}
			return
		}
		if err := flt.Validate(); err != nil {
			t.Fatalf("ParseFilter(%q) = %+v, which does not validate: %v", s, flt, err)
		}
		for _, term := range flt.SD {
			// The command-line form of a term parses back to it.
			back, err := ParseFilter(term.String())
			if err != nil || len(back.SD) != 1 || back.SD[0] != term {
				t.Fatalf("ParseFilter(%q) = %+v, %v; want term %+v", term.String(), back, err, term)
			}
		}
		if !utf8.ValidString(s) {
			return // JSON would replace the bad bytes
		}
		// As a client sends it.
		fr := Frame{Type: TypeSubscribe, Req: 1, Filter: flt}
		b, err := AppendFrame(nil, &fr)
		if err != nil {
			t.Fatal(err)
		}
		var back Frame
		if err := Decode(b[:len(b)-1], &back); err != nil {
			t.Fatalf("Decode(%s): %v", b, err)
		}
		if !framesEqual(back, fr) {
			t.Fatalf("subscribe round trip = %+v, want %+v", back.Filter, flt)
		}
		if err := back.Filter.Validate(); err != nil {
			t.Fatalf("decoded filter does not validate: %v", err)
		}
	})
}

func TestFilterAddr(t *testing.T) {
	e := func(addr string) *Event { return &Event{Origin: Origin{Addr: addr}} }
	for _, tt := range []struct {
		term, addr string
		want       bool
	}{
		{"10.1.2.0/24", "10.1.2.3", true},
		{"10.1.2.0/24", "10.1.3.3", false},
		{"10.1.2.3", "10.1.2.3", true},
		{"10.1.2.3", "::ffff:10.1.2.3", true},
		{"2001:db8::/32", "2001:db8::1", true},
		{"10.1.2.0/24", "", false},
	} {
		f, err := ParseFilter("addr=" + tt.term)
		if err != nil {
			t.Fatal(err)
		}
		if got := f.Match(e(tt.addr)); got != tt.want {
			t.Errorf("addr=%s on %q: %v", tt.term, tt.addr, got)
		}
	}
	if _, err := ParseFilter("addr=web1"); err == nil {
		t.Error("addr=web1 accepted")
	}
}

// TestFilterMatchesAll: a filter MatchesAll says matches all does match
// every event, and one field set to a condition some event fails makes it
// not match all. Every field of Filter must have a case here: a new field
// that MatchesAll does not know would let a light read skip a condition.
func TestFilterMatchesAll(t *testing.T) {
	debug, warning := SevDebug, SevWarning
	events := []*Event{
		{},
		{Source: SourceSyslog, Severity: SevDebug, MsgID: "ID47", App: "sshd", Type: "MSG",
			Origin: Origin{System: "web1", Host: "web1.example.com", Addr: "192.0.2.7"},
			SD:     StructuredData{{ID: "ex@32473", Params: []SDParam{{Name: "a", Value: "1"}}}}},
		{Source: SourceAudit, Severity: SevEmerg},
	}
	for _, f := range []*Filter{nil, {}, {Severity: &debug}, {Origin: "*", MsgID: "*", App: "*", Type: "*"}} {
		if !f.MatchesAll() {
			t.Errorf("%+v: MatchesAll false", f)
		}
		for _, e := range events {
			if !f.Match(e) {
				t.Errorf("%+v says it matches all, but not %+v", f, e)
			}
		}
	}
	restrictive := map[string]*Filter{
		"Origin":   {Origin: "web*"},
		"Source":   {Source: []Source{SourceSyslog}},
		"MsgID":    {MsgID: "ID*"},
		"App":      {App: "sshd"},
		"Type":     {Type: "M*"},
		"Addr":     {Addr: "192.0.2.0/24"},
		"Severity": {Severity: &warning},
		"SD":       {SD: []SDTerm{{ID: "ex@32473", Param: "a", Glob: "*"}}},
	}
	typ := reflect.TypeOf(Filter{})
	for i := 0; i < typ.NumField(); i++ {
		name := typ.Field(i).Name
		f, ok := restrictive[name]
		if !ok {
			t.Errorf("Filter.%s has no case here: add one, and to MatchesAll", name)
			continue
		}
		if f.MatchesAll() {
			t.Errorf("%s: %+v says it matches all", name, f)
		}
		if !slices.ContainsFunc(events, func(e *Event) bool { return !f.Match(e) }) {
			t.Errorf("%s: %+v matches every event here: not a restrictive case", name, f)
		}
	}
}
