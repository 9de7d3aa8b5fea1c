package protocol

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
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
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q~%q", tt.pattern, tt.name), func(t *testing.T) {
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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.f.Match(tt.e); got != tt.want {
				t.Errorf("%+v.Match(%+v) = %v, want %v", tt.f, tt.e, got, tt.want)
			}
		})
	}
}

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
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.in), func(t *testing.T) {
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

// FuzzGlob checks that Glob never panics and holds its simplest promises.
func FuzzGlob(f *testing.F) {
	for _, s := range [][2]string{
		{"lnx*", "lnx01"}, {"a*b*c", "aXbYbZc"}, {"VMSYS?", "vmsys1"}, {"", ""},
		{"*", "*x"}, {"a*", "a*b"}, {"*.example.com", "lnx01.example.com"}, {"HCP???E", "HCP003E"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, name string) {
		got := Glob(pattern, name)
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
			case j < len(n) && (p[i] == '?' || asciiLower(p[i:i+1]) == asciiLower(n[j:j+1])):
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
