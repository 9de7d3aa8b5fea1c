package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// jsonDecode is what Decode did before decodeFrameJSON: encoding/json alone.
func jsonDecode(b []byte) (Frame, error) {
	var f Frame
	err := json.Unmarshal(b, &f)
	return f, err
}

// containerFields are Frame's containers: the field of each JSON key, and
// the frame type that carries it.
var containerFields = []struct{ key, field, carrier string }{
	{"options", "Options", TypeLogon},
	{"filter", "Filter", TypeSubscribe},
	{"ids", "IDs", TypeAck},
	{"event", "Event", TypeEvent},
	{"events", "Events", TypeEvents},
}

// jsonDecodeCarried is what Decode reads, without its limits, by
// encoding/json alone: the frame, with the containers its type does not
// carry skipped as unknown fields are (each shadowed by a json.RawMessage
// in a struct that embeds Frame).
func jsonDecodeCarried(b []byte) (Frame, error) {
	var t struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(b, &t); err != nil {
		return Frame{}, err
	}
	fields := []reflect.StructField{{Name: "Frame", Type: reflect.TypeFor[*Frame](), Anonymous: true}}
	for _, c := range containerFields {
		if c.carrier != t.Type {
			fields = append(fields, reflect.StructField{Name: "Skip" + c.field, Type: reflect.TypeFor[json.RawMessage](),
				Tag: reflect.StructTag(`json:"` + c.key + `"`)})
		}
	}
	var f Frame
	v := reflect.New(reflect.StructOf(fields))
	v.Elem().Field(0).Set(reflect.ValueOf(&f))
	err := json.Unmarshal(b, v.Interface())
	return f, err
}

// checkFast fails t unless decodeFast takes b and gives exactly what
// encoding/json gives, the containers its type does not carry left out.
func checkFast(t *testing.T, b []byte) {
	t.Helper()
	var fast Frame
	if err := decodeFast(b, &fast); err != nil {
		t.Errorf("%s: %v", b, err)
		return
	}
	slow, err := jsonDecodeCarried(b)
	if err != nil {
		t.Errorf("%s: decodeFrameJSON took what encoding/json refuses: %v", b, err)
		return
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Errorf("%s:\ndecodeFrameJSON %#v\nencoding/json   %#v", b, fast, slow)
	}
}

// TestDecodeFrameJSON checks that every frame a session writes, as
// AppendFrame and as encoding/json write it, is read without encoding/json
// and to what encoding/json reads.
func TestDecodeFrameJSON(t *testing.T) {
	for _, f := range encFrames() {
		b, err := AppendFrame(nil, f)
		if err != nil {
			t.Fatal(err)
		}
		checkFast(t, bytes.TrimSuffix(b, []byte("\n")))
		j, err := json.Marshal(f) // escapes <, > and & as \u003c and so on
		if err != nil {
			t.Fatal(err)
		}
		checkFast(t, j)
	}
	for _, in := range []string{
		`{"type":"heartbeat"}`,
		`{"type":"reply","req":18446744073709551615}`,
		` { "type" : "reply" ,` + "\t\r\n" + `"req" : 7 } `,
		`{"req":7,"type":"reply","rc":-0,"duration_ms":-9223372036854775808}`,
		`{"type":"output","text":"a\"b\\c\/d\b\f\n\r\t\u0000\u00e9\u20ac\ud83d\ude00"}`,
		`{"type":"output","text":"lone \ud800 and \udc00 and \ud800\u0041 and \ud800\ud800\udc00"}`,
		`{"type":"output","text":"` + "bad \xff utf-8 \xed\xa0\x80 and \xe2\x82" + `"}`,
		`{"type":"output","text":"` + "raw \u2028 \u0085 é \U0001F600" + `"}`,
		`{"type":"output","data":""}`,
		`{"type":"output","data":"/w` + `\r\n` + `A="}`,
		`{"type":"ack","ids":[]}`,
		`{"type":"ack","ids":[ "a" , "b\n" ]}`,
		`{"type":"command","timeout":1e-7}`,
		`{"type":"command","timeout":-0}`,
		`{"type":"command","timeout":12345678901234567890123}`,
		`{"type":"accept","limits":{}}`,
		`{"type":"accept","limits":{"max_frame":1048576,"heartbeat":30}}`,
		`{"type":"reply","error":{}}`,
		`{"type":"reply","error":{"message":"m","code":"c"},"eol":false,"truncated":true}`,
		`{"type":"logon","options":{"format":"lx"}}`,
		`{"type":"logon","options":{}}`,
		`{"type":"subscribe","filter":{"origin":"lnx*","sd":[{"id":"a","param":"b","glob":"c"}],"Source":["syslog"]}}`,
		`{"type":"event","event":{"id":"1-2","sd":{"a":{"b":["1","2"]}}}}`,
		`{"type":"events","events":[],"seq":3}`,
		`{"type":"events","events":[null,{"text":"a"}],"seq":3}`,
		`{"events":[{"text":"a"}],"type":"events"}`,
		`{"type":"ack","ids":[null,"a"]}`,
		`{"type":"heartbeat","events":[{"text":1}],"filter":[],"options":"x","event":0,"ids":{"a":[]}}`,
		`{"type":"heartbeat","events":` + strings.Repeat("[", maxScanDepth-1) + strings.Repeat("]", maxScanDepth-1) + `}`,
	} {
		checkFast(t, []byte(in))
	}
}

// TestDecodeFrameJSONFallback checks that what decodeFrameJSON cannot read
// exactly as encoding/json does is left to it, and that Decode still reads
// it so.
func TestDecodeFrameJSONFallback(t *testing.T) {
	for _, in := range []string{
		`{"Type":"logon"}`,                          // encoding/json matches keys in any case
		`{"typ\u0065":"logon"}`,                     // an escape in a key
		`{"type":"logon","unknown":[1,{"a":null}]}`, // an unknown key, skipped by encoding/json
		`{"type":"logon","client":"a","client":"b"}`,
		`{"type":"accept","limits":{"heartbeat":1},"limits":{"lifetime":2}}`, // merged by encoding/json
		`{"type":"accept","limits":{"heartbeat":1,"heartbeat":2}}`,
		`{"type":"reply","rc":null}`,
		`{"type":"logon","client":null}`,
		`{"type":"reply","ids":null}`,
		`{"type":"events","events":null}`,
		`{"type":"events","events":[{"text":"a","user":"u"}],"events":[{"text":"b"}]}`, // merged by encoding/json
		`{"type":"ack","ids":["a","b"],"ids":[null]}`,
		`{"type":"subscribe","filter":{"origin":"a"},"filter":{"app":"b"}}`,
	} {
		var fast Frame
		if decodeFrameJSON([]byte(in), &fast, new(containerSpans)) {
			t.Errorf("%s: decodeFrameJSON took it", in)
		}
		var got Frame
		err := Decode([]byte(in), &got)
		want, werr := jsonDecode([]byte(in))
		if (err == nil) != (werr == nil) || err == nil && !reflect.DeepEqual(got, want) {
			t.Errorf("%s: Decode %#v, %v; encoding/json %#v, %v", in, got, err, want, werr)
		}
	}
	// Not JSON, or not what the field holds: refused by both.
	for _, in := range []string{
		`{"type":"reply","req":-1}`,
		`{"type":"reply","req":1.5}`,
		`{"type":"reply","req":1e3}`,
		`{"type":"reply","req":18446744073709551616}`,
		`{"type":"reply","rc":9223372036854775808}`,
		`{"type":"reply","req":07}`,
		`{"type":"command","timeout":1e999}`,
		`{"type":"output","data":"not base64"}`,
		`{"type":"reply","eol":"true"}`,
		`{"type":"reply","text":"` + "a\tb" + `"}`,
		`{"type":"reply","text":"\x"}`,
		`{"type":"reply","text":"\u12"}`,
		`{"type":"reply"}x`,
		`{"type":"reply",}`,
		`{"type":"reply"`,
		`[]`,
		``,
		`{"type":"heartbeat","events":[{]}`,
		`{"type":"heartbeat","events":[1,]}`,
		`{"type":"heartbeat","filter":{"a":1,}}`,
		`{"type":"heartbeat","options":{"a"}}`,
		`{"type":"heartbeat","ids":["` + "\x01" + `"]}`,
		`{"type":"heartbeat","events":"\x"}`,
		`{"type":"heartbeat","events":01}`,
		`{"type":"heartbeat","events":` + strings.Repeat("[", maxScanDepth) + strings.Repeat("]", maxScanDepth) + `}`,
	} {
		var fast Frame
		if decodeFrameJSON([]byte(in), &fast, new(containerSpans)) {
			t.Errorf("%s: decodeFrameJSON took it", in)
		}
		if _, err := jsonDecode([]byte(in)); err == nil {
			t.Errorf("%s: encoding/json took it", in)
		}
		var f Frame
		if err := Decode([]byte(in), &f); err == nil {
			t.Errorf("%s: Decode took it: %#v", in, f)
		}
	}
}

// TestDecodeFrameJSONFields fails when Frame has a field that
// decodeFrameJSON does not read: a frame with only that field set (and its
// type: the one that carries it, for a container), as AppendFrame writes
// it, must be read by decodeFast and to the same Frame. Add the field
// there (to containerFields, if it is a container), then to leftToJSON
// here if only encoding/json is to read it.
func TestDecodeFrameJSONFields(t *testing.T) {
	leftToJSON := map[string]bool{}
	e := sampleEvent()
	e.Time, e.Received, e.OriginTime = e.Time.UTC(), e.Received.UTC(), nil // as decoded: UTC
	samples := map[string]any{
		"Options": map[string]string{"x\"y": "z"},
		"Filter":  &Filter{Origin: "lnx*", Source: []Source{SourceSyslog}, SD: []SDTerm{{ID: "a", Param: "b", Glob: "c"}}},
		"Event":   &e,
		"Events":  []*Event{&e, &e},
	}
	carrier := map[string]string{}
	for _, c := range containerFields {
		carrier[c.field] = c.carrier
	}
	typ := reflect.TypeOf(Frame{})
	for i := 0; i < typ.NumField(); i++ {
		sf := typ.Field(i)
		if leftToJSON[sf.Name] || sf.Tag.Get("json") == "-" || sf.Name == "Type" {
			continue
		}
		var f Frame
		f.Type = TypeReply
		if c, ok := carrier[sf.Name]; ok {
			f.Type = c
		}
		if v, ok := samples[sf.Name]; ok {
			reflect.ValueOf(&f).Elem().Field(i).Set(reflect.ValueOf(v))
		} else {
			fillSample(t, reflect.ValueOf(&f).Elem().Field(i))
		}
		b, err := AppendFrame(nil, &f)
		if err != nil {
			t.Fatal(err)
		}
		b = bytes.TrimSuffix(b, []byte("\n"))
		var fast Frame
		if err := decodeFast(b, &fast); err != nil {
			t.Errorf("Frame.%s: %s: %v", sf.Name, b, err)
			continue
		}
		if !framesEqual(fast, f) {
			t.Errorf("Frame.%s: %s read as %#v, want %#v", sf.Name, b, fast, f)
		}
	}
}

// fillSample sets v, and every field of a struct it points to, to a value
// that is not zero.
func fillSample(t *testing.T, v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		v.SetString("x\"y")
	case reflect.Int, reflect.Int64:
		v.SetInt(-7)
	case reflect.Uint64:
		v.SetUint(7)
	case reflect.Float64:
		v.SetFloat(2.5)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fillSample(t, v.Elem())
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			fillSample(t, v.Field(i))
		}
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		for i := 0; i < 2; i++ {
			fillSample(t, v.Index(i))
		}
	case reflect.Uint8:
		v.SetUint(0xfe)
	default:
		t.Fatalf("no sample for a %s", v.Type())
	}
}

// FuzzDecodeFrameJSON checks Decode's two ways against each other and
// against encoding/json: whatever decodeFast takes, decodeSlow reads as
// the same frame (or refuses, and for the same reason); what decodeSlow
// reads, encoding/json reads the same, the containers the frame's type
// does not carry skipped (jsonDecodeCarried), unless a container is over
// its limit; every frame encoding/json reads without containers, as
// AppendFrame writes it, decodeFrameJSON takes; and a frame
// AppendBareFrame writes is what AppendFrame writes.
func FuzzDecodeFrameJSON(f *testing.F) {
	for _, fr := range encFrames() {
		b, _ := json.Marshal(fr)
		f.Add(b)
		b, _ = AppendFrame(nil, fr)
		f.Add(bytes.TrimSuffix(b, []byte("\n")))
	}
	for _, seed := range []string{
		`{"type":"heartbeat","req":9}`,
		`{"type":"accept","session":"ZBR1-commands-7","limits":{"heartbeat":30,"idle_timeout":90,"lifetime":0,"max_frame":1048576}}`,
		`{"type":"reply","req":2,"id":"cli-1","rc":0,"duration_ms":2}`,
		`{"type":"output","text":"lone \ud800 and \udc00 and \ud800\u0041 and \ud800\ud800\udc00"}`,
		`{"type":"output","text":"` + "bad \xff utf-8 \xed\xa0\x80" + `"}`,
		`{"Type":"logon","Client":"a"}`,
		`{"type":"accept","limits":{"heartbeat":1},"limits":{"lifetime":2}}`,
		`{"type":"reply","rc":null,"req":1.5}`,
		`{"type":"output","data":"/w` + `\r\n` + `A="}`,
		`{"type":"ack","ids":[ "a" , "b\n" ]}`,
		`{"type":"logon","options":{"kind":"zvm-agent","spool":"s1"}}`,
		`{"type":"subscribe","filter":{"origin":"lnx*","source":["syslog"],"sd":[{"id":"a","param":"b","glob":"*"}]}}`,
		`{"type":"event","event":{"id":"1-2","sd":{"a":{"b":["1","2"],"c":"3","b":"4"}}}}`,
		`{"events":[{"text":"a"},null],"type":"events","seq":1}`,
		`{"type":"heartbeat","events":[{}],"filter":{"sd":[]},"options":{"a":"b"},"event":{},"ids":[""]}`,
		`{"type":"heartbeat","events":[{"text":1}],"options":"x"}`,
		// Over the limits, and the same on a type that does not carry them.
		string(repeatFrame(`{"type":"events","events":[`, `{}`, `]}`, MaxBatch+1)),
		string(repeatFrame(`{"type":"heartbeat","events":[`, `{}`, `]}`, MaxBatch+1)),
		string(repeatFrame(`{"type":"subscribe","filter":{"sd":[`, `{}`, `]}}`, MaxSDTerms+1)),
		string(repeatFrame(`{"type":"subscribe","filter":{"Source":[`, `""`, `]}}`, MaxFilterSources+1)),
		string(repeatFrame(`{"type":"logon","options":{`, `"%x":""`, `}}`, MaxOptions+1)),
		string(repeatFrame(`{"type":"reply","options":{`, `"%x":""`, `}}`, MaxOptions+1)),
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var fast, slow Frame
		fastErr := decodeFast(data, &fast)
		slowErr := decodeSlow(data, &slow)
		if slowErr == nil && slow.Type == "" {
			slowErr = errNoType
		}
		if !errors.Is(fastErr, errNotFast) {
			if (fastErr == nil) != (slowErr == nil) || errors.Is(fastErr, ErrOverLimit) != errors.Is(slowErr, ErrOverLimit) {
				t.Fatalf("%q: decodeFast: %v; decodeSlow: %v", data, fastErr, slowErr)
			}
			if fastErr == nil && !reflect.DeepEqual(fast, slow) {
				t.Fatalf("%q:\ndecodeFast %#v\ndecodeSlow %#v", data, fast, slow)
			}
		}
		want, err := jsonDecodeCarried(data)
		if err == nil && want.Type == "" {
			err = errNoType
		}
		if !errors.Is(slowErr, ErrOverLimit) {
			if (slowErr == nil) != (err == nil) {
				t.Fatalf("%q: decodeSlow: %v; encoding/json: %v", data, slowErr, err)
			}
			if slowErr == nil && !reflect.DeepEqual(slow, want) {
				t.Fatalf("%q:\ndecodeSlow    %#v\nencoding/json %#v", data, slow, want)
			}
		}
		if slowErr == nil && len(slow.Options) == 0 && slow.Filter == nil && slow.Event == nil && slow.Events == nil && slow.IDs == nil {
			b, err := AppendFrame(nil, &slow)
			if err != nil {
				return // a timeout encoding/json will not write either
			}
			b = bytes.TrimSuffix(b, []byte("\n"))
			var again Frame
			if !decodeFrameJSON(b, &again, new(containerSpans)) {
				t.Fatalf("%s (AppendFrame of %q): left to encoding/json", b, data)
			}
			if want, _ := jsonDecode(b); !reflect.DeepEqual(again, want) {
				t.Fatalf("%s:\ndecodeFrameJSON %#v\nencoding/json   %#v", b, again, want)
			}
		}

		// AppendBareFrame of any type and number: the bytes AppendFrame
		// writes.
		typ, req := string(data[:min(len(data), 40)]), uint64(len(data))*0x9e3779b97f4a7c15
		bare := AppendBareFrame(nil, typ, req)
		want2, err := AppendFrame(nil, &Frame{Type: typ, Req: req})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(bare, want2) {
			t.Fatalf("AppendBareFrame(%q, %d) = %s, AppendFrame %s", typ, req, bare, want2)
		}
	})
}

// BenchmarkDecode measures reading the frames a `zbridge cmd` reads (the
// accept, an output line, the reply) and the command the region reads,
// with Decode and with encoding/json alone.
func BenchmarkDecode(b *testing.B) {
	frames := [][]byte{
		[]byte(`{"type":"accept","req":1,"session":"ZBR1-commands-7","limits":{"heartbeat":30,"idle_timeout":90,"lifetime":0,"max_frame":1048576}}`),
		[]byte(`{"type":"command","req":2,"id":"cli-4c97dd02b18e","target":"linux:web1","command":"df -k /var","timeout":30}`),
		[]byte(`{"type":"output","req":2,"id":"cli-4c97dd02b18e","stream":"stdout","text":"Filesystem     1K-blocks    Used Available Use% Mounted on","eol":true}`),
		[]byte(`{"type":"reply","req":2,"id":"cli-4c97dd02b18e","rc":0,"duration_ms":41}`),
	}
	b.Run("Decode", func(b *testing.B) {
		var f Frame
		b.ReportAllocs()
		for b.Loop() {
			for _, fr := range frames {
				if err := Decode(fr, &f); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		var f Frame
		b.ReportAllocs()
		for b.Loop() {
			for _, fr := range frames {
				f = Frame{}
				if err := json.Unmarshal(fr, &f); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

// BenchmarkDecodeContainers measures reading the frames that carry
// containers: a logon with options, a subscribe with a filter, an ack, an
// event (as a `zbridge tail` without --format json reads it) and a z/VM
// agent's batch of events.
func BenchmarkDecodeContainers(b *testing.B) {
	e := withSD(sampleSD())
	evs := make([]*Event, 500) // the z/VM agent's batch
	for i := range evs {
		ev := sampleEvent()
		ev.Source, ev.Raw = SourceZVMConsole, ""
		evs[i] = &ev
	}
	batch, err := AppendFrame(nil, &Frame{Type: TypeEvents, Req: 9, Seq: 1, Events: evs})
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name  string
		frame []byte
	}{
		{"logon", []byte(`{"type":"logon","req":1,"client":"VMSYS1","secret":"s3cret","version":1,"heartbeat":30,"options":{"kind":"zvm-agent","spool":"spool-1"}}`)},
		{"subscribe", []byte(`{"type":"subscribe","req":2,"filter":{"origin":"lnx*","source":["syslog","region"],"severity":"warning","sd":[{"id":"origin","param":"ip","glob":"192.0.2.*"}]},"after":"0","format":"json"}`)},
		{"ack", []byte(`{"type":"ack","ids":["1740830400123-7","1740830400123-8"]}`)},
		{"event", bytes.TrimSuffix(AppendEventFrame(nil, &e), []byte("\n"))},
		{"events", bytes.TrimSuffix(batch, []byte("\n"))},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var f Frame
			b.SetBytes(int64(len(bc.frame)))
			b.ReportAllocs()
			for b.Loop() {
				if err := Decode(bc.frame, &f); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
