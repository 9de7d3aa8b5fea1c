package protocol

import (
	"bytes"
	"encoding/json"
	"math/bits"
	"testing"
	"unicode/utf8"
)

// TestSplitEventFrame: an event frame as the region writes it passes
// through whole, with its ID; anything else is left to Decode.
func TestSplitEventFrame(t *testing.T) {
	e := sampleEvent()
	e.Text = "ESC \x1b, C1 \u009b, LS \u2028, bad \xff, quote \" and DEL \x7f" // all escaped by the encoder
	line := AppendEventFrame(nil, &e)
	obj, id, ok := SplitEventFrame(line)
	if !ok {
		t.Fatalf("SplitEventFrame(%s) refused the encoder's own frame", line)
	}
	if want := AppendEventJSON(nil, &e); !bytes.Equal(obj, want) {
		t.Errorf("object\n%s\nwant\n%s", obj, want)
	}
	if id != e.ID {
		t.Errorf("ID %v, want %v", id, e.ID)
	}
	for name, frame := range map[string]string{
		"lx frame":         `{"type":"event","id":"1-0","line":"x"}`,
		"keys reordered":   `{"event":{"id":"1-0","text":"x"},"type":"event"}`,
		"no id first":      `{"type":"event","event":{"text":"x","id":"1-0"}}`,
		"bad id":           `{"type":"event","event":{"id":"x-0","text":"x"}}`,
		"more after":       `{"type":"event","event":{"id":"1-0"},"req":1}`,
		"raw control":      "{\"type\":\"event\",\"event\":{\"id\":\"1-0\",\"text\":\"\x1b[2J\"}}",
		"raw C1":           "{\"type\":\"event\",\"event\":{\"id\":\"1-0\",\"text\":\"\u009b2J\"}}",
		"raw LS":           "{\"type\":\"event\",\"event\":{\"id\":\"1-0\",\"text\":\"a\u2028b\"}}",
		"invalid UTF-8":    "{\"type\":\"event\",\"event\":{\"id\":\"1-0\",\"text\":\"\xff\"}}",
		"invalid JSON":     `{"type":"event","event":{"id":"1-0","text":"x"}}}`,
		"unclosed string":  `{"type":"event","event":{"id":"1-0","text":"x}}`,
		"heartbeat":        `{"type":"heartbeat","req":9}`,
		"empty":            ``,
		"prefix only":      `{"type":"event","event":{"id":"`,
		"object not event": `{"type":"event","event":{"id":"1-0"},"x":{}}`,
		"id twice":         `{"type":"event","event":{"id":"1-0","text":"x","id":"9-0"}}`,
		"ID after":         `{"type":"event","event":{"id":"1-0","sd":{"a":{"id":"x"}},"ID":"9-0"}}`,
		"escaped id after": `{"type":"event","event":{"id":"1-0","text":"\"id\"","\u0069D":"9-0"}}`,
	} {
		if obj, _, ok := SplitEventFrame([]byte(frame)); ok {
			t.Errorf("%s: %s passed as %s", name, frame, obj)
		}
	}
}

// FuzzSplitEventFrame: what SplitEventFrame passes is valid UTF-8 JSON
// with no control character, C1 control or line separator, as safe to
// print as the encoder's output, with a non-zero ID; and a frame Decode
// reads is the same event frame with the same ID. (Decode also refuses an
// event whose fields do not read, a bad time or a text that is an object,
// which passing through leaves to the JSON's reader: only a broken or
// hostile region sends those.)
func FuzzSplitEventFrame(f *testing.F) {
	e := sampleEvent()
	f.Add(AppendEventFrame(nil, &e))
	unparsed := Event{ID: ID{Ms: 1}, Source: SourceSyslog, Text: "\xff\xfegarbage\x1b\u009b", Raw: "\xff\xfegarbage", ParseError: "no PRI"}
	f.Add(AppendEventFrame(nil, &unparsed))
	f.Add([]byte(`{"type":"event","event":{"id":"1-2","received":"2024-01-01T00:00:00Z"}}`))
	f.Add([]byte(`{"type":"event","event":{"id":"1-2"},"event":{"id":"3-4"}}`))
	f.Add([]byte(`{"type":"event","event":{"id":"1-2","ID":"3-4"}}`))
	f.Add([]byte(`{"type":"event","event":{"id":"1-2","sd":{"x":{"id":"1"}},"\u0049d":"3-4","text":"\"id\":"}}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		obj, id, ok := SplitEventFrame(line)
		if !ok {
			return
		}
		if !utf8.Valid(obj) || !json.Valid(obj) {
			t.Fatalf("passed %q: not valid UTF-8 JSON", obj)
		}
		for i, c := range obj {
			if c < 0x20 || c == 0xc2 && i+1 < len(obj) && obj[i+1] >= 0x80 && obj[i+1] <= 0x9f ||
				bytes.HasPrefix(obj[i:], []byte("\u2028")) || bytes.HasPrefix(obj[i:], []byte("\u2029")) {
				t.Fatalf("passed %q with a raw control character or separator at %d", obj, i)
			}
		}
		if id.IsZero() {
			t.Fatalf("passed %q with the zero ID", line)
		}
		var fr Frame
		if err := Decode(line, &fr); err != nil {
			return
		}
		if fr.Type != TypeEvent || fr.Event == nil {
			t.Fatalf("passed %q as event %v; Decode reads type %q event %+v", line, id, fr.Type, fr.Event)
		}
		if fr.Event.ID != id {
			t.Fatalf("passed %q as event %v; Decode reads event %v", line, id, fr.Event.ID)
		}
	})
}

// TestPreparedEventFrame: an event's frame from its JSON prepared before
// it had its ID is the frame AppendEventFrame writes.
func TestPreparedEventFrame(t *testing.T) {
	e := sampleEvent()
	want := AppendEventFrame(nil, &e)
	p := e
	p.ID = ID{}
	rest := AppendEventJSONAfterID(nil, &p)
	if got := AppendPreparedEventFrame(nil, e.ID, rest); !bytes.Equal(got, want) {
		t.Errorf("prepared frame\n%s\nwant\n%s", got, want)
	}
}

// FuzzSplitEventFrameReference: the one-pass scanner passes exactly what
// the passes it replaced did (splitEventFrameReference), with the same
// object and ID.
func FuzzSplitEventFrameReference(f *testing.F) {
	e := sampleEvent()
	f.Add(AppendEventFrame(nil, &e))
	e.Text = "ESC \x1b, C1 \u009b, LS \u2028, bad \xff, quote \" and DEL \x7f, \u00e9\U0001F600"
	f.Add(AppendEventFrame(nil, &e))
	for _, s := range []string{
		`{"type":"event","event":{"id":"1-2","received":"2024-01-01T00:00:00Z"}}`,
		`{"type":"event","event":{"id":"1-2","ID":"3-4"}}`,
		`{"type":"event","event":{"id":"1-2","sd":{"x":{"id":"1"}},"\u0049d":"3-4","text":"\"id\":"}}`,
		`{"type":"event","event":{"id":"1-2", "n":[1,-0.5e+3,true,false,null,{"a":[]}],"\u0069\u0064x":1}}`,
		`{"type":"event","event":{"id":"1-2","k":"\ud800\udc00\u2028\u0000"}}`,
		"{\"type\":\"event\",\"event\":{\"id\":\"1-2\",\t\"a\":1}}",
		`{"type":"event","event":{"id":"1-2","a":01}}`,
		`{"type":"event","event":{"id":"1-2","a":1.}}`,
		`{"type":"event","event":{"id":"1-2","a":"` + "\xc2\x85" + `"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		obj, id, ok := SplitEventFrame(line)
		robj, rid, rok := splitEventFrameReference(line)
		if ok != rok || id != rid || !bytes.Equal(obj, robj) {
			t.Fatalf("%q: SplitEventFrame %v %v %q; the reference %v %v %q", line, ok, id, obj, rok, rid, robj)
		}
	})
}

// BenchmarkSplitEventFrame splits the frame of a typical syslog event.
func BenchmarkSplitEventFrame(b *testing.B) {
	e := sampleEvent()
	line := AppendEventFrame(nil, &e)
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, ok := SplitEventFrame(line); !ok {
			b.Fatal("not split")
		}
	}
}

// TestPlainBytes checks plainBytes against a byte at a time: the lowest
// byte it flags is the first a JSON string body cannot hold as it is, and
// it flags none when there is none. The words are of bytes on both sides
// of each boundary (control characters, '"', '\\', DEL, non-ASCII).
func TestPlainBytes(t *testing.T) {
	alphabet := []byte{0, 1, 0x1f, 0x20, 0x21, '"', 0x23, 0x5b, '\\', 0x5d, 'a', 0x7e, 0x7f, 0x80, 0xc3, 0xff}
	needsLook := func(c byte) bool { return c < 0x20 || c >= 0x80 || c == '"' || c == '\\' }
	var w [8]byte
	for n := uint64(0); n < 1<<20; n++ {
		x := n * 0x9e3779b97f4a7c15 // every nibble pattern, spread
		for k := range w {
			w[k] = alphabet[x>>(4*k)&15]
		}
		want := -1
		for k, c := range w {
			if needsLook(c) {
				want = k
				break
			}
		}
		got := -1
		if m := plainBytes(load64(string(w[:]))) & 0x8080808080808080; m != 0 {
			got = bits.TrailingZeros64(m) / 8
		}
		if got != want {
			t.Fatalf("% x: plainBytes flags byte %d first, want %d", w, got, want)
		}
	}
}
