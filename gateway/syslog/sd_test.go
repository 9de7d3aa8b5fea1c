package syslog

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/leodido/go-syslog/v4/rfc5424"

	"github.com/zbridge/zbridge/protocol"
)

// sdEl builds an element from an ID and name, value pairs.
func sdEl(id string, nv ...string) protocol.SDElement {
	el := protocol.SDElement{ID: id}
	for i := 0; i+1 < len(nv); i += 2 {
		el.Params = append(el.Params, protocol.SDParam{Name: nv[i], Value: nv[i+1]})
	}
	return el
}

const sdHeader = "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 "

// sdCases are whole messages and their structured data. ok false: malformed.
var sdCases = []struct {
	name string
	in   string
	want []protocol.SDElement
	ok   bool
}{
	// RFC 5424 section 6.5.
	{"rfc5424 example 1", "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \xef\xbb\xbf'su root' failed for lonvick on /dev/pts/8", nil, true},
	{"rfc5424 example 2", "<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.", nil, true},
	{"rfc5424 example 3", sdHeader + `[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] ` + "\xef\xbb\xbfAn application event log entry...",
		[]protocol.SDElement{sdEl("exampleSDID@32473", "iut", "3", "eventSource", "Application", "eventID", "1011")}, true},
	{"rfc5424 example 4", sdHeader + `[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high"]`,
		[]protocol.SDElement{sdEl("exampleSDID@32473", "iut", "3", "eventSource", "Application", "eventID", "1011"),
			sdEl("examplePriority@32473", "class", "high")}, true},
	// RFC 5424 section 7: the registered SD-IDs, a repeated PARAM-NAME.
	{"rfc5424 section 7", sdHeader + `[timeQuality tzKnown="1" isSynced="1" syncAccuracy="60000000"][origin ip="192.0.2.1" ip="192.0.2.129" enterpriseId="32473.1.2" software="rsyslogd" swVersion="8.2312.0"][meta sequenceId="14125553" sysUpTime="37" language="en"] msg`,
		[]protocol.SDElement{sdEl("timeQuality", "tzKnown", "1", "isSynced", "1", "syncAccuracy", "60000000"),
			sdEl("origin", "ip", "192.0.2.1", "ip", "192.0.2.129", "enterpriseId", "32473.1.2", "software", "rsyslogd", "swVersion", "8.2312.0"),
			sdEl("meta", "sequenceId", "14125553", "sysUpTime", "37", "language", "en")}, true},
	{"repeated name between others", sdHeader + `[origin ip="192.0.2.1" software="x" ip="192.0.2.129"]`,
		[]protocol.SDElement{sdEl("origin", "ip", "192.0.2.1", "software", "x", "ip", "192.0.2.129")}, true},

	// go-syslog's test messages.
	{"go-syslog all nil", `<1>1 - - - - - -`, nil, true},
	{"go-syslog x-service", `<29>1 2016-01-15T01:00:43Z some-host-name SEKRETPROGRAM prg - [origin x-service="svcname"][meta sequenceId="1"] 127.0.0.1 - - 1452819643 "GET"`,
		[]protocol.SDElement{sdEl("origin", "x-service", "svcname"), sdEl("meta", "sequenceId", "1")}, true},
	{"go-syslog empty value", `<1>1 - - - - - [id pk=""]`, []protocol.SDElement{sdEl("id", "pk", "")}, true},
	{"go-syslog 32-byte id", `<1>1 - - - - - [abcdefghilmnopqrstuvzabcdefghilm]`, []protocol.SDElement{sdEl("abcdefghilmnopqrstuvzabcdefghilm")}, true},
	{"go-syslog 33-byte id", `<1>1 - - - - - [abcdefghilmnopqrstuvzabcdefghilmX]`, nil, false},
	{"go-syslog 33-byte name", `<1>1 - - - - - [id abcdefghilmnopqrstuvzabcdefghilmX="val"]`, nil, false},
	{"go-syslog escaped quote", `<29>2 2016-01-15T01:00:43Z some-host-name SEKRETPROGRAM prg - [meta escape="\""]`,
		[]protocol.SDElement{sdEl("meta", "escape", `"`)}, true},
	{"go-syslog escaped backslash", `<29>2 2016-01-15T01:00:43Z some-host-name SEKRETPROGRAM prg - [meta escape="\\"]`,
		[]protocol.SDElement{sdEl("meta", "escape", `\`)}, true},
	{"go-syslog every escape", `<29>2 2016-01-15T01:00:43Z some-host-name SEKRETPROGRAM prg - [meta escape="\]\"\\\\\]\""]`,
		[]protocol.SDElement{sdEl("meta", "escape", `]"\\]"`)}, true},
	{"go-syslog escaped bracket then msg", `<29>2 2016-01-15T01:00:44Z some-host-name SEKRETPROGRAM prg - [meta escape="\]"] some "mex"`,
		[]protocol.SDElement{sdEl("meta", "escape", `]`)}, true},
	{"go-syslog non-ASCII", `<29>50 2016-01-15T01:00:43Z hn S - - [meta gr="κόσμε" es="ñ"][beta pr="₡"] 𐌼 "GET"`,
		[]protocol.SDElement{sdEl("meta", "gr", "κόσμε", "es", "ñ"), sdEl("beta", "pr", "₡")}, true},
	{"go-syslog backslashes", `<29>53 2016-01-15T01:00:43Z hn S - - [meta one="\\one"][other two="\\two" double="\\a\\b"] 127.0.0.1 - - 1452819643 "GET"`,
		[]protocol.SDElement{sdEl("meta", "one", `\one`), sdEl("other", "two", `\two`, "double", `\a\b`)}, true},
	{"go-syslog 4-digit version", `<165>4 2003-10-11T22:14:15.003Z mymachine.it e - 1 [ex@32473 iut="3" eventSource="A"] An application event log entry...`,
		[]protocol.SDElement{sdEl("ex@32473", "iut", "3", "eventSource", "A")}, true},
	{"go-syslog lone quote id", `<6>1 - - - - - ["]`, nil, false},
	{"go-syslog two quotes", `<29>4 2017-01-15T01:00:43Z hn S - - [meta escape="""] 127.0.0.1 - - 1452819643 "GET"`, nil, false},
	{"go-syslog escaped closing quote", `<29>7 2019-01-15T01:00:43Z hn S - - [meta escape="a\"] 127.0.0.1 - - 1452819643 "GET"`, nil, false},

	// Leniency (go-syslog refuses these).
	{"invalid escape kept", `<29>8 2016-01-15T01:00:43Z hn S - - [meta escape="\n" path="C:\dir\x"] 127.0.0.1`,
		[]protocol.SDElement{sdEl("meta", "escape", `\n`, "path", `C:\dir\x`)}, true},
	{"unescaped bracket in value", `<29>3 2016-01-15T01:00:43Z hn S - - [meta escape="]" b="p]q"] 127.0.0.1 - - 1452819643 "GET"`,
		[]protocol.SDElement{sdEl("meta", "escape", "]", "b", "p]q")}, true},
	{"invalid UTF-8 value kept", "<1>1 - - - - - [id v=\"\xff\xfe\"]", []protocol.SDElement{sdEl("id", "v", "\xff\xfe")}, true},
	{"control characters kept", "<1>1 - - - - - [id v=\"a\tb\x00c\"]", []protocol.SDElement{sdEl("id", "v", "a\tb\x00c")}, true},

	// More shapes.
	{"element without params", sdHeader + `[a@1][b@1 x="1"] m`, []protocol.SDElement{sdEl("a@1"), sdEl("b@1", "x", "1")}, true},
	{"dotted SD-ID", sdHeader + `[origin@32473.1.2 ip="10.0.0.1"]`, []protocol.SDElement{sdEl("origin@32473.1.2", "ip", "10.0.0.1")}, true},
	{"brackets in MSG", sdHeader + `[a x="1"] msg [b y="2"] "q"`, []protocol.SDElement{sdEl("a", "x", "1")}, true},
	{"nil SD then MSG with brackets", sdHeader + `- [a x="1"]`, nil, true},
	{"empty MSG after space", sdHeader + `[a x="1"] `, []protocol.SDElement{sdEl("a", "x", "1")}, true},
	{"every escape in one value", sdHeader + `[x@32473 q="say \"hi\" C:\\dir\\ a\]b \z"]`, []protocol.SDElement{sdEl("x@32473", "q", `say "hi" C:\dir\ a]b \z`)}, true},
	{"value with spaces and =", sdHeader + `[a q="k=v w=\"x\""]`, []protocol.SDElement{sdEl("a", "q", `k=v w="x"`)}, true},
	{"long header fields", "<13>1 2026-11-22T02:50:57.069805+00:00 " + strings.Repeat("h", 300) + " " + strings.Repeat("a", 60) + " 1 2 [a b=\"c\"]",
		[]protocol.SDElement{sdEl("a", "b", "c")}, true},

	// Malformed.
	{"empty", "", nil, false},
	{"no PRI", `1 - - - - - [a b="c"]`, nil, false},
	{"header cut", `<1>1 - - - - -`, nil, false},
	{"header cut before SD", `<1>1 - - - - - `, nil, false},
	{"empty header field", `<1>1 - -  - - [a b="c"]`, nil, false},
	{"nil SD followed by text", `<1>1 - - - - - -x`, nil, false},
	{"SD not an element", `<1>1 - - - - - x`, nil, false},
	{"element not closed", `<1>1 - - - - - [a`, nil, false},
	{"element not closed after param", `<1>1 - - - - - [a b="c"`, nil, false},
	{"empty element", `<1>1 - - - - - []`, nil, false},
	{"space before ]", `<1>1 - - - - - [a ]`, nil, false},
	{"two spaces", `<1>1 - - - - - [a  b="c"]`, nil, false},
	{"param without value", `<1>1 - - - - - [a b]`, nil, false},
	{"param without =", `<1>1 - - - - - [a b"c"]`, nil, false},
	{"unquoted value", `<1>1 - - - - - [a b=c]`, nil, false},
	{"value not closed", `<1>1 - - - - - [a b="c]`, nil, false},
	{"value ends in backslash", `<1>1 - - - - - [a b="c\"]`, nil, false},
	{"text after quote", `<1>1 - - - - - [a b="c"d]`, nil, false},
	{"text after element", `<1>1 - - - - - [a b="c"]x`, nil, false},
	{"element then space then element", `<1>1 - - - - - [a b="c"] [d]`, []protocol.SDElement{sdEl("a", "b", "c")}, true},
	{"= in SD-ID", `<1>1 - - - - - [a=b]`, nil, false},
	{"quote in SD-ID", `<1>1 - - - - - [a"b]`, nil, false},
	{"non-ASCII SD-ID", `<1>1 - - - - - [é]`, nil, false},
	{"control in name", "<1>1 - - - - - [a b\x01=\"c\"]", nil, false},
	{"duplicate SD-ID", `<1>1 - - - - - [a x="1"][b][a y="2"]`, nil, false},
	{"tab separator", "<1>1 - - - - - [a\tb=\"c\"]", nil, false},
}

func TestStructuredData(t *testing.T) {
	for _, tc := range sdCases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := structuredData([]byte(tc.in))
			if ok != tc.ok || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("structuredData(%q) =\n%#v, %v\nwant\n%#v, %v", tc.in, got, ok, tc.want, tc.ok)
			}
			if ok {
				checkSDRoundTrip(t, tc.in, got)
			}
		})
	}
}

// TestStructuredDataTruncated: a message cut anywhere reads as malformed,
// or as the elements before the cut (cut right after an element), or as
// the whole structured data (cut in MSG); never anything else, and no
// panic. So does a message with any byte changed to one the grammar
// cares about.
func TestStructuredDataTruncated(t *testing.T) {
	t.Parallel() // it waits for the read timeout
	for _, tc := range sdCases {
		if !tc.ok {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			in := []byte(tc.in)
			for k := 0; k <= len(in); k++ {
				got, ok := structuredData(in[:k:k])
				if !ok {
					continue
				}
				if len(got) > len(tc.want) || len(got) > 0 && !reflect.DeepEqual(got, tc.want[:len(got)]) {
					t.Fatalf("cut to %q: %#v, want a prefix of %#v", in[:k], got, tc.want)
				}
			}
			for i := range in {
				for _, c := range []byte(" -[]=\"\\xé\x00") {
					m := append([]byte(nil), in...)
					m[i] = c
					if got, ok := structuredData(m); ok {
						checkSDRoundTrip(t, string(m), got)
					}
				}
			}
		})
	}
}

// checkSDRoundTrip checks that sd, read from the message in, encodes to
// structured data that reads back the same (decode → encode → decode),
// that its names are SD-NAMEs and no SD-ID repeats, and that its JSON form
// decodes to it (the values of a repeated name together, see
// protocol.StructuredData) and encodes again to the same JSON.
func checkSDRoundTrip(t *testing.T, in string, sd []protocol.SDElement) {
	t.Helper()
	ids := map[string]bool{}
	for _, el := range sd {
		if !protocol.ValidSDName(el.ID) || ids[el.ID] {
			t.Fatalf("%q: SD-ID %q not an SD-NAME or repeated", in, el.ID)
		}
		ids[el.ID] = true
		for _, p := range el.Params {
			if !protocol.ValidSDName(p.Name) {
				t.Fatalf("%q: PARAM-NAME %q not an SD-NAME", in, p.Name)
			}
		}
	}
	enc := string(protocol.AppendStructuredData(nil, sd))
	msg := "<13>1 - host app - - " + enc + " msg"
	again, ok := structuredData([]byte(msg))
	if !ok || !reflect.DeepEqual(again, sd) {
		t.Fatalf("%q: structured data %#v encoded as %q reads back as %#v, %v", in, sd, enc, again, ok)
	}

	valid := true
	for _, el := range sd {
		for _, p := range el.Params {
			valid = valid && utf8.ValidString(p.Value)
		}
	}
	if !valid {
		return // JSON replaces invalid UTF-8, as in every string of an event
	}
	j, err := json.Marshal(protocol.StructuredData(sd))
	if err != nil {
		t.Fatal(err)
	}
	var back protocol.StructuredData
	if err := json.Unmarshal(j, &back); err != nil {
		t.Fatalf("%q: json.Unmarshal(%s): %v", in, j, err)
	}
	if want := groupRepeated(sd); !reflect.DeepEqual([]protocol.SDElement(back), want) {
		t.Fatalf("%q: JSON %s decodes to %#v, want %#v", in, j, back, want)
	}
	if j2, _ := json.Marshal(back); string(j2) != string(j) {
		t.Fatalf("%q: JSON %s encodes again as %s", in, j, j2)
	}
}

// groupRepeated moves the values of a repeated parameter name next to its
// first occurrence, as the JSON form keeps them.
func groupRepeated(sd []protocol.SDElement) []protocol.SDElement {
	var out []protocol.SDElement
	for _, el := range sd {
		g := protocol.SDElement{ID: el.ID}
		done := map[string]bool{}
		for _, p := range el.Params {
			if done[p.Name] {
				continue
			}
			done[p.Name] = true
			for _, q := range el.Params {
				if q.Name == p.Name {
					g.Params = append(g.Params, q)
				}
			}
		}
		out = append(out, g)
	}
	return out
}

// goSyslogSD returns the structured data go-syslog's RFC 5424 parser
// (strict) reads from in, and whether it accepts the message.
func goSyslogSD(in []byte) (map[string]map[string]string, bool) {
	msg, err := rfc5424.NewMachine().Parse(in)
	if err != nil || msg == nil {
		return nil, false
	}
	m, ok := msg.(*rfc5424.SyslogMessage)
	if !ok || m == nil {
		return nil, false
	}
	if m.StructuredData == nil {
		return nil, true
	}
	return *m.StructuredData, true
}

// sameAsGoSyslog reports how sd differs from go-syslog's map of the same
// message: the same IDs, the same names in each, and for each name its
// last value (go-syslog's map keeps the last of a repeated name).
func sameAsGoSyslog(sd []protocol.SDElement, gs map[string]map[string]string) error {
	if len(sd) != len(gs) {
		return fmt.Errorf("%d elements, go-syslog %d", len(sd), len(gs))
	}
	for _, el := range sd {
		params, ok := gs[el.ID]
		if !ok {
			return fmt.Errorf("element %q not in go-syslog's", el.ID)
		}
		last := map[string]string{}
		for _, p := range el.Params {
			last[p.Name] = p.Value
		}
		if !reflect.DeepEqual(last, params) && !(len(last) == 0 && len(params) == 0) {
			return fmt.Errorf("element %q: %q, go-syslog %q", el.ID, last, params)
		}
	}
	return nil
}

// TestStructuredDataGoSyslog: wherever go-syslog's RFC 5424 parser accepts
// a message, structuredData reads the same structured data.
func TestStructuredDataGoSyslog(t *testing.T) {
	accepted := 0
	for _, tc := range sdCases {
		gs, ok := goSyslogSD([]byte(tc.in))
		if !ok {
			continue
		}
		accepted++
		got, ok := structuredData([]byte(tc.in))
		if !ok {
			t.Errorf("%s: go-syslog reads %q, structuredData finds it malformed", tc.name, gs)
			continue
		}
		if err := sameAsGoSyslog(got, gs); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	if accepted < 15 {
		t.Errorf("go-syslog accepted %d of the messages: the cross-check checks little", accepted)
	}
}

func TestStructuredDataAllocs(t *testing.T) {
	in := []byte(sdCases[3].in) // two elements, four parameters, no escapes
	allocs := testing.AllocsPerRun(100, func() { structuredData(in) })
	if allocs > 3 {
		t.Errorf("structuredData: %v allocations, want 3 (the copy, the elements, the parameters)", allocs)
	}
}

// FuzzStructuredData: no input panics structuredData; what it accepts has
// SD-NAMEs for names and no SD-ID twice, reads back the same when encoded
// (decode → encode → decode), survives its JSON form, and equals what
// go-syslog reads wherever go-syslog accepts the message.
func FuzzStructuredData(f *testing.F) {
	for _, tc := range sdCases {
		f.Add([]byte(tc.in))
	}
	f.Add([]byte(sdHeader + `[a x="` + strings.Repeat(`\]`, 40) + `"]`))
	f.Add([]byte(sdHeader + strings.Repeat(`[a@1 x="1" x="2" y="\\\"\]"]`, 1)))
	f.Fuzz(func(t *testing.T, in []byte) {
		sd, ok := structuredData(in)
		gs, gok := goSyslogSD(in)
		if gok {
			if !ok {
				t.Fatalf("%q: go-syslog reads %q, structuredData finds it malformed", in, gs)
			}
			if err := sameAsGoSyslog(sd, gs); err != nil {
				t.Fatalf("%q: %v", in, err)
			}
		}
		if !ok {
			if sd != nil {
				t.Fatalf("%q: malformed with %#v", in, sd)
			}
			return
		}
		checkSDRoundTrip(t, string(in), sd)
	})
}

// BenchmarkStructuredData reads RFC 5424's fourth example message (two
// elements, four parameters) and one with escapes.
func BenchmarkStructuredData(b *testing.B) {
	for _, bc := range []struct{ name, in string }{
		{"rfc5424-example", sdCases[3].in},
		{"escapes", sdHeader + `[x@32473 q="say \"hi\" C:\\dir\\ a\]b" r="plain"][origin ip="192.0.2.1" ip="192.0.2.129"] msg`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			in := []byte(bc.in)
			b.ReportAllocs()
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				if _, ok := structuredData(in); !ok {
					b.Fatal("malformed")
				}
			}
		})
	}
}
