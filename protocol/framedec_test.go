package protocol

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// jsonDecode is what Decode did before decodeFrameJSON: encoding/json alone.
func jsonDecode(b []byte) (Frame, error) {
	var f Frame
	err := json.Unmarshal(b, &f)
	return f, err
}

// checkFast fails t unless decodeFrameJSON takes b and gives exactly what
// encoding/json gives.
func checkFast(t *testing.T, b []byte) {
	t.Helper()
	var fast Frame
	if !decodeFrameJSON(b, &fast) {
		t.Errorf("%s: left to encoding/json", b)
		return
	}
	slow, err := jsonDecode(b)
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
		`{}`,
		`{"type":""}`,
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
		`{"type":"logon","options":{"format":"lx"}}`,
		`{"type":"subscribe","filter":{"origin":"lnx*"}}`,
		`{"type":"event","event":{"id":"1-2"}}`,
		`{"type":"events","events":[],"seq":3}`,
		`{"type":"reply","ids":null}`,
	} {
		var fast Frame
		if decodeFrameJSON([]byte(in), &fast) {
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
	} {
		var fast Frame
		if decodeFrameJSON([]byte(in), &fast) {
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
// type), as AppendFrame writes it, must be read without encoding/json and
// to the same Frame. Add the field there, then to leftToJSON here if only
// encoding/json is to read it.
func TestDecodeFrameJSONFields(t *testing.T) {
	leftToJSON := map[string]bool{"Options": true, "Filter": true, "Event": true, "Events": true}
	typ := reflect.TypeOf(Frame{})
	for i := 0; i < typ.NumField(); i++ {
		sf := typ.Field(i)
		if leftToJSON[sf.Name] || sf.Tag.Get("json") == "-" || sf.Name == "Type" {
			continue
		}
		var f Frame
		f.Type = TypeReply
		fillSample(t, reflect.ValueOf(&f).Elem().Field(i))
		b, err := AppendFrame(nil, &f)
		if err != nil {
			t.Fatal(err)
		}
		b = bytes.TrimSuffix(b, []byte("\n"))
		var fast Frame
		if !decodeFrameJSON(b, &fast) {
			t.Errorf("Frame.%s: %s left to encoding/json", sf.Name, b)
			continue
		}
		if !reflect.DeepEqual(fast, f) {
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

// FuzzDecodeFrameJSON checks Decode's fast path against encoding/json:
// whatever decodeFrameJSON takes, encoding/json reads as the same frame;
// every frame encoding/json reads that has no options, filter or events,
// as AppendFrame writes it, decodeFrameJSON takes; and a frame
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
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var fast Frame
		took := decodeFrameJSON(data, &fast)
		slow, err := jsonDecode(data)
		if took {
			if err != nil {
				t.Fatalf("decodeFrameJSON took %q, which encoding/json refuses: %v", data, err)
			}
			if !reflect.DeepEqual(fast, slow) {
				t.Fatalf("%q:\ndecodeFrameJSON %#v\nencoding/json   %#v", data, fast, slow)
			}
		}
		if err == nil && len(slow.Options) == 0 && slow.Filter == nil && slow.Event == nil && slow.Events == nil {
			b, err := AppendFrame(nil, &slow)
			if err != nil {
				return // a timeout encoding/json will not write either
			}
			b = bytes.TrimSuffix(b, []byte("\n"))
			var again Frame
			if !decodeFrameJSON(b, &again) {
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
		want, err := AppendFrame(nil, &Frame{Type: typ, Req: req})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(bare, want) {
			t.Fatalf("AppendBareFrame(%q, %d) = %s, AppendFrame %s", typ, req, bare, want)
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
