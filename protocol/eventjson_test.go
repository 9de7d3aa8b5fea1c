package protocol

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// sampleEvent is a realistic event with every field set.
func sampleEvent() Event {
	ist := time.FixedZone("IST", 5*3600+30*60)
	origin := time.Date(2025, 3, 1, 17, 30, 0, 123456789, ist)
	return Event{
		ID:         ID{Ms: 1740830400123, Seq: 7},
		Received:   time.Date(2025, 3, 1, 12, 0, 0, 200000000, time.UTC),
		OriginTime: &origin,
		Time:       origin.UTC(),
		TimeFilled: "year",
		Origin:     Origin{System: "lnx01", Host: "lnx01.example.com", Node: "VMSYS1", Addr: "10.0.0.7"},
		Source:     SourceSyslog,
		MsgID:      "ID47",
		App:        "sshd",
		ProcID:     "4711",
		Facility:   FacDaemon,
		Severity:   SevWarning,
		Type:       "MSG",
		User:       "MAINT",
		Text:       `Failed password for root from 10.1.2.3 port 22 ssh2`,
		Raw:        `<28>1 2025-03-01T17:30:00.123456789+05:30 lnx01.example.com sshd 4711 ID47 - Failed password for root from 10.1.2.3 port 22 ssh2`,
		Parsed:     true,
		ParseError: "",
	}
}

func eventJSONCases() []struct {
	name string
	e    Event
} {
	all := sampleEvent()
	all.ParseError = "partly: bad SD"

	ist := time.FixedZone("", 5*3600+30*60)
	nanos := time.Date(2024, 2, 29, 23, 59, 59, 999999999, ist)
	west := time.Date(1999, 12, 31, 23, 0, 0, 1, time.FixedZone("", -(3*3600+30*60)))

	textWith := func(s string) Event {
		e := sampleEvent()
		e.Text, e.Raw, e.User, e.Origin.Host = s, s, s, s
		return e
	}
	var control strings.Builder
	for c := 0; c < 0x20; c++ {
		control.WriteByte(byte(c))
	}
	control.WriteByte(0x7f)

	return []struct {
		name string
		e    Event
	}{
		{"all fields", all},
		{"minimal", Event{}},
		{"minimal parsed", Event{ID: ID{Ms: 1}, Source: SourceRegion, Text: "started", Parsed: true}},
		{"origin time +05:30 with nanoseconds", func() Event {
			e := sampleEvent()
			e.OriginTime, e.Time = &nanos, nanos.UTC()
			return e
		}()},
		{"origin time -03:30 with one nanosecond", func() Event {
			e := sampleEvent()
			e.OriginTime, e.Time = &west, west.UTC()
			return e
		}()},
		{"origin time UTC", func() Event {
			e := sampleEvent()
			u := e.OriginTime.UTC()
			e.OriginTime = &u
			return e
		}()},
		{"no origin time", func() Event {
			e := sampleEvent()
			e.OriginTime, e.Time, e.TimeFilled = nil, e.Received, "all"
			return e
		}()},
		{"quotes and backslashes", textWith(`say "hi" \ C:\path\ \"\\`)},
		{"control characters", textWith(control.String())},
		{"newline and tabs", textWith("line one\n\tline two\r\n\t\tend\n")},
		{"line and paragraph separators", textWith("a\u2028b\u2029c")},
		{"invalid UTF-8", textWith("bad \xff\xfe bytes \xc3 and \xe2\x80 cut")},
		{"non-ASCII", textWith("Grüße, 日本語, emoji 🎉, U+FFFD \ufffd")},
		{"HTML characters", textWith("<script>alert('&')</script>")},
		{"empty origin", func() Event {
			e := sampleEvent()
			e.Origin = Origin{}
			return e
		}()},
		{"origin with only addr", func() Event {
			e := sampleEvent()
			e.Origin = Origin{Addr: "192.0.2.1"}
			return e
		}()},
		{"unparsed", Event{
			ID:         ID{Ms: 1740830400999, Seq: 0},
			Received:   time.Date(2025, 3, 1, 12, 0, 0, 999000000, time.UTC),
			Time:       time.Date(2025, 3, 1, 12, 0, 0, 999000000, time.UTC),
			TimeFilled: "all",
			Origin:     Origin{Addr: "10.9.9.9"},
			Source:     SourceSyslog,
			Facility:   FacUser,
			Severity:   SevNotice,
			Text:       "\x00\x01garbage <<>>",
			Raw:        "\x00\x01garbage <<>>",
			Parsed:     false,
			ParseError: "no PRI",
		}},
		{"all severities and facilities at the top", func() Event {
			e := sampleEvent()
			e.Severity, e.Facility = SevDebug, Facility(23)
			return e
		}()},
		{"big IDs", func() Event {
			e := sampleEvent()
			e.ID = ID{Ms: 1<<64 - 1, Seq: 1<<64 - 1}
			return e
		}()},
		{"structured data", withSD(sampleSD())},
		{"structured data, names repeated together", withSD(StructuredData{
			{ID: "origin", Params: []SDParam{{"ip", "192.0.2.1"}, {"ip", "192.0.2.129"}, {"software", "rsyslogd"}}},
		})},
		{"structured data, a name repeated between others", withSD(StructuredData{
			{ID: "origin", Params: []SDParam{{"ip", "192.0.2.1"}, {"software", "rsyslogd"}, {"ip", "192.0.2.129"}, {"ip", "::1"}}},
		})},
		{"structured data, element without parameters", withSD(StructuredData{{ID: "x@32473"}, {ID: "y@32473", Params: []SDParam{{"a", ""}}}})},
		{"structured data, escapes", withSD(StructuredData{
			{ID: `odd\id`, Params: []SDParam{{"q", `say "hi" C:\dir\ a]b`}, {"ctl", "a\tb\x00c\x7f"}, {"html", "<b>&</b>"},
				{"sep", "a\u2028b\u2029c"}, {"bad", "x\xffy"}, {"utf8", "Grüße 日本語"}, {"\"name\"", "v"}}},
		})},
		{"structured data, a big element", withSD(bigSD(40))},
	}
}

// sampleSD is the structured data of RFC 5424's fourth example message,
// and an origin element with a repeated name.
func sampleSD() StructuredData {
	return StructuredData{
		{ID: "exampleSDID@32473", Params: []SDParam{{"iut", "3"}, {"eventSource", "Application"}, {"eventID", "1011"}}},
		{ID: "examplePriority@32473", Params: []SDParam{{"class", "high"}}},
		{ID: "origin", Params: []SDParam{{"ip", "192.0.2.1"}, {"ip", "192.0.2.129"}}},
	}
}

// bigSD is one element of n parameters (more than smallElement: the
// encoder's map), names repeated every third, interleaved.
func bigSD(n int) StructuredData {
	el := SDElement{ID: "big@32473"}
	for i := 0; i < n; i++ {
		el.Params = append(el.Params, SDParam{Name: fmt.Sprint("p", i%(n/3+1)), Value: fmt.Sprint("v", i)})
	}
	return StructuredData{el}
}

func withSD(sd StructuredData) Event {
	e := sampleEvent()
	e.SD = sd
	return e
}

// stdEvent returns what encoding/json makes of e: marshalled and decoded
// again. Invalid UTF-8 becomes U+FFFD on the way.
func stdEvent(t *testing.T, e *Event) (Event, map[string]any) {
	t.Helper()
	j, err := json.Marshal(e)
	if err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}
	var back Event
	if err := json.Unmarshal(j, &back); err != nil {
		t.Fatalf("json.Unmarshal(json.Marshal(e)): %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(j, &m); err != nil {
		t.Fatal(err)
	}
	return back, m
}

func TestAppendEventJSON(t *testing.T) {
	for _, tt := range eventJSONCases() {
		t.Run(tt.name, func(t *testing.T) {
			got := AppendEventJSON(nil, &tt.e)
			if !json.Valid(got) {
				t.Fatalf("AppendEventJSON wrote invalid JSON: %s", got)
			}
			var dec Event
			if err := json.Unmarshal(got, &dec); err != nil {
				t.Fatalf("json.Unmarshal(%s): %v", got, err)
			}
			want, wantMap := stdEvent(t, &tt.e)
			if !eventsEqual(dec, want) {
				t.Errorf("decoded\n%+v\nwant (as encoding/json)\n%+v\nfrom %s", dec, want, got)
			}
			// Times must come back as the same instant in the same zone
			// offset as the original.
			if !sameTime(dec.Received, tt.e.Received) || !sameTime(dec.Time, tt.e.Time) {
				t.Errorf("times changed: received %v, time %v; want %v, %v", dec.Received, dec.Time, tt.e.Received, tt.e.Time)
			}
			if tt.e.OriginTime != nil && (dec.OriginTime == nil || !sameTime(*dec.OriginTime, *tt.e.OriginTime)) {
				t.Errorf("origin_time = %v, want %v", dec.OriginTime, tt.e.OriginTime)
			}

			var gotMap map[string]any
			if err := json.Unmarshal(got, &gotMap); err != nil {
				t.Fatal(err)
			}
			if gk, wk := keys(gotMap), keys(wantMap); !slices.Equal(gk, wk) {
				t.Errorf("keys = %v\nwant (encoding/json) %v", gk, wk)
			}
			if go_, wo := keys(gotMap["origin"].(map[string]any)), keys(wantMap["origin"].(map[string]any)); !slices.Equal(go_, wo) {
				t.Errorf("origin keys = %v, want (encoding/json) %v", go_, wo)
			}
			// Not only the keys: every value must be what encoding/json writes.
			if !reflect.DeepEqual(gotMap, wantMap) {
				t.Errorf("object = %v\nwant (encoding/json) %v", gotMap, wantMap)
			}
		})
	}
}

// TestAppendEventJSONBytes checks the stronger claim of the doc comment:
// the bytes are those of encoding/json without HTML escaping. The one
// allowed difference: encoding/json writes \b and \f where AppendEventJSON
// writes \u0008 and \u000c, the same string.
func TestAppendEventJSONBytes(t *testing.T) {
	for _, tt := range eventJSONCases() {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			if err := enc.Encode(&tt.e); err != nil {
				t.Fatal(err)
			}
			want := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
			got := AppendEventJSON(nil, &tt.e)
			got = bytes.ReplaceAll(got, []byte(`\u0008`), []byte(`\b`))
			got = bytes.ReplaceAll(got, []byte(`\u000c`), []byte(`\f`))
			if !bytes.Equal(got, want) {
				t.Errorf("AppendEventJSON =\n%s\nencoding/json =\n%s", got, want)
			}
		})
	}
}

func keys(m map[string]any) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func TestAppendEventJSONAppends(t *testing.T) {
	e := sampleEvent()
	e.Origin = Origin{Node: "VMSYS1"} // the comma before the first origin field is removed in place
	prefix := []byte(`{"prefix":true,"event":`)
	b := AppendEventJSON(append([]byte(nil), prefix...), &e)
	if !bytes.HasPrefix(b, prefix) {
		t.Fatalf("prefix overwritten: %s", b)
	}
	if want := AppendEventJSON(nil, &e); !bytes.Equal(b[len(prefix):], want) {
		t.Errorf("appended %s\nwant     %s", b[len(prefix):], want)
	}
}

func TestAppendEventJSONAllocs(t *testing.T) {
	for _, e := range []Event{sampleEvent(), withSD(sampleSD())} {
		buf := make([]byte, 0, 4096)
		allocs := testing.AllocsPerRun(100, func() {
			buf = AppendEventJSON(buf[:0], &e)
		})
		if allocs != 0 {
			t.Errorf("AppendEventJSON into a big enough buffer, %d SD elements: %v allocations, want 0", len(e.SD), allocs)
		}
	}
}

func TestAppendEventFrame(t *testing.T) {
	for _, tt := range eventJSONCases() {
		t.Run(tt.name, func(t *testing.T) {
			b := AppendEventFrame([]byte("x\n"), &tt.e)
			if !bytes.HasPrefix(b, []byte("x\n")) {
				t.Fatalf("prefix overwritten: %q", b)
			}
			b = b[2:]
			if bytes.IndexByte(b, '\n') != len(b)-1 {
				t.Fatalf("AppendEventFrame = %q, want exactly one line", b)
			}
			var f Frame
			if err := Decode(b[:len(b)-1], &f); err != nil {
				t.Fatalf("Decode(%s): %v", b, err)
			}
			want, _ := stdEvent(t, &tt.e)
			if f.Type != TypeEvent || f.Event == nil {
				t.Fatalf("Decode = %+v, want an event frame", f)
			}
			if !eventsEqual(*f.Event, want) {
				t.Errorf("event = %+v\nwant    %+v", *f.Event, want)
			}
			if g := (Frame{Type: TypeEvent, Event: f.Event}); !framesEqual(f, g) {
				t.Errorf("frame has fields other than type and event: %+v", f)
			}

			// And through a Reader, whole and byte by byte.
			for _, feed := range feeds {
				r := NewReader(feed.wrap(bytes.NewReader(b)), 0)
				var rf Frame
				if err := r.Next(&rf); err != nil {
					t.Fatalf("%s: Next: %v", feed.name, err)
				}
				if !framesEqual(rf, f) {
					t.Errorf("%s: Next = %+v, want %+v", feed.name, rf, f)
				}
			}
		})
	}
}

func TestAppendLineFrame(t *testing.T) {
	tests := []struct {
		name string
		id   ID
		line string
		want string // the line as it decodes
	}{
		{"simple", ID{Ms: 1740830400123, Seq: 7}, "Mar  1 12:00:00 lnx01 sshd[4711]: hello", ""},
		{"zero ID and empty line", ID{}, "", ""},
		{"quotes and control", ID{Ms: 1}, "a \"quoted\" \\ line\n\twith\x00control\x1f", ""},
		{"separators", ID{Ms: 2}, "a\u2028b\u2029c", ""},
		{"invalid UTF-8", ID{Ms: 3}, "bad \xff byte", "bad \ufffd byte"},
		{"non-ASCII", ID{Ms: 4}, "Grüße 日本語", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.want
			if want == "" {
				want = tt.line
			}
			b := AppendLineFrame(nil, tt.id, tt.line)
			if bytes.IndexByte(b, '\n') != len(b)-1 {
				t.Fatalf("AppendLineFrame = %q, want exactly one line", b)
			}
			var f Frame
			if err := Decode(b[:len(b)-1], &f); err != nil {
				t.Fatalf("Decode(%s): %v", b, err)
			}
			if wantF := (Frame{Type: TypeEvent, ID: tt.id.String(), Line: want}); !reflect.DeepEqual(f, wantF) {
				t.Errorf("Decode = %+v, want %+v", f, wantF)
			}
			id, err := ParseID(f.ID)
			if err != nil || id != tt.id {
				t.Errorf("ParseID(%q) = %v, %v; want %v", f.ID, id, err, tt.id)
			}
		})
	}
}

func BenchmarkAppendEventJSON(b *testing.B) {
	e := sampleEvent()
	b.ReportAllocs()
	var buf []byte
	for b.Loop() {
		buf = AppendEventJSON(buf[:0], &e)
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkAppendEventJSONSD is BenchmarkAppendEventJSON with sampleSD.
func BenchmarkAppendEventJSONSD(b *testing.B) {
	e := withSD(sampleSD())
	b.ReportAllocs()
	var buf []byte
	for b.Loop() {
		buf = AppendEventJSON(buf[:0], &e)
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkJSONMarshalEvent(b *testing.B) {
	e := sampleEvent()
	b.ReportAllocs()
	var buf []byte
	for b.Loop() {
		var err error
		if buf, err = json.Marshal(&e); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(buf)))
}

// appendTimeCases are times appendTime must write as the library does:
// the edges of its fast path (years 1 and 9999, leap days, a zone that
// takes a time over a year's end) and past them, zones with odd offsets.
func appendTimeCases() []time.Time {
	zones := []*time.Location{time.UTC, time.FixedZone("", 0), time.FixedZone("IST", 5*3600+30*60),
		time.FixedZone("LMT", -75), time.FixedZone("X", 23*3600+59*60+59), time.FixedZone("Y", -86399),
		time.FixedZone("Z", 86400), time.FixedZone("W", -14*3600)}
	if ny, err := time.LoadLocation("America/New_York"); err == nil {
		zones = append(zones, ny)
	}
	var ts []time.Time
	for _, z := range zones {
		for _, d := range []time.Time{
			time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(0, 12, 31, 23, 59, 59, 999999999, time.UTC),
			time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
			time.Date(-1, 6, 1, 0, 0, 0, 1, time.UTC), time.Date(2024, 2, 29, 12, 0, 0, 100, time.UTC),
			time.Date(2000, 2, 29, 23, 59, 59, 120000000, time.UTC), time.Date(1900, 3, 1, 0, 0, 0, 0, time.UTC),
			time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(1969, 12, 31, 23, 59, 59, 1, time.UTC),
			time.Date(2026, 12, 31, 23, 30, 0, 500, time.UTC), time.Date(2100, 1, 1, 0, 0, 0, 10, time.UTC),
		} {
			ts = append(ts, d.In(z))
		}
	}
	return ts
}

func TestAppendTime(t *testing.T) {
	check := func(tm time.Time) {
		t.Helper()
		if got, want := appendTime([]byte("x"), tm), tm.AppendFormat([]byte("x"), time.RFC3339Nano); !bytes.Equal(got, want) {
			t.Errorf("appendTime(%v) = %s, want %s", tm, got[1:], want[1:])
		}
	}
	for _, tm := range appendTimeCases() {
		check(tm)
	}
	// Every day of four centuries, at a time of day that moves.
	start := time.Date(1899, 12, 25, 0, 0, 0, 0, time.UTC)
	for d := range 4 * 146097 {
		check(start.Add(time.Duration(d)*24*time.Hour + time.Duration(d%86400)*time.Second + time.Duration(d)*1001))
	}
}

// FuzzAppendTime: appendTime writes what time.RFC3339Nano does, for any
// instant and zone offset.
func FuzzAppendTime(f *testing.F) {
	for _, tm := range appendTimeCases() {
		_, off := tm.Zone()
		f.Add(tm.Unix(), int64(tm.Nanosecond()), int32(off))
	}
	f.Fuzz(func(t *testing.T, sec, nsec int64, offset int32) {
		for _, tm := range []time.Time{time.Unix(sec, nsec).UTC(), time.Unix(sec, nsec).In(time.FixedZone("F", int(offset)))} {
			if got, want := appendTime(nil, tm), tm.AppendFormat(nil, time.RFC3339Nano); !bytes.Equal(got, want) {
				t.Fatalf("appendTime(%d, %d, offset %d) = %s, want %s", sec, nsec, offset, got, want)
			}
		}
	})
}

// FuzzAppendEventJSONParts: an event whose strings are parts of one
// buffer, its raw message one window of it (as the syslog parser makes
// them, with the other fields inside raw, and, here, also ones that run
// past either end of it or lie outside it), encodes to valid JSON and to
// the same bytes as when every string is scanned: the parts of a raw
// message that needs no escaping, copied without a scan of their own,
// come out as the scan writes them.
func FuzzAppendEventJSONParts(f *testing.F) {
	for _, s := range []string{
		`<13>1 2026-11-22T02:50:57.069805+00:00 lnx01.example.com myapp 12345 ID47 - An application event`,
		`<30>1 2026-12-07T08:00:00.000001Z host app 1 LOAD - c=0 s=1 xxxxxxxx`,
		`<13>Nov 22 02:50:57 lnx01 myapp[12345]: a "quoted" word and a \ backslash`,
		"<13>1 - h a p m - text with a tab\there and \xc3\xa9 and \xff and \u2028 and \u0085 and DEL\x7f",
		"\"quote before\" <13>1 - plain raw message - plain text \\ backslash after",
	} {
		f.Add(s, uint8(4), uint8(len(s)-8), uint8(6), uint8(20), uint8(30))
	}
	// A plain raw message inside a buffer that goes on with a quote and a
	// backslash, and an app field from inside raw to the buffer's end.
	edge := `xx<13>1 h a - plain message body"\end`
	f.Add(edge, uint8(2), uint8(strings.IndexByte(edge, '"')), uint8(15), uint8(len(edge)), uint8(9))
	f.Fuzz(func(t *testing.T, buf string, r0, r1, a, b, c uint8) {
		at := func(x uint8) int { return int(x) % (len(buf) + 1) }
		cut := func(x, y uint8) string { // a part of buf, in memory
			i, j := at(x), at(y)
			return buf[min(i, j):max(i, j)]
		}
		e := sampleEvent()
		e.Raw, e.Text, e.App, e.Origin.Host, e.MsgID = cut(r0, r1), cut(c, 255), cut(a, b), cut(b, c), cut(a, c)
		e.ProcID, e.Origin.System, e.User = cut(b, b+3), cut(r0, c), cut(a, r1)
		got := AppendEventJSON(nil, &e)
		if !json.Valid(got) {
			t.Fatalf("invalid JSON: %s", got)
		}
		want := appendEventJSONAfterID(append(append([]byte(nil), `{"id":"`...), e.ID.String()...), &e, rawText{})
		if !bytes.Equal(got, want) {
			t.Fatalf("with the parts copied:\n%s\nevery string scanned:\n%s", got, want)
		}
	})
}
