package protocol

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
)

// encFrames are frames of every kind a session sends, with every field
// appendFrameJSON writes set somewhere.
func encFrames() []*Frame {
	rc0, rc2 := 0, -2
	return []*Frame{
		{Type: TypeLogon, Req: 1, Client: "OPSAUTO", Secret: "s3cr\"et\\", Version: Version, Heartbeat: 30},
		{Type: TypeAccept, Req: 1, Session: "ZBR1-commands-7", Version: 1,
			Limits: &Limits{Heartbeat: 30, IdleTimeout: 90, MaxFrame: 1 << 20}},
		{Type: TypeRefuse, Req: 1, Reason: RefuseBusy, Message: "too many <sessions> & more", RetryAfter: 10},
		{Type: TypeCommand, Req: 2, ID: "cli-4c97dd02b18e", Target: "linux:web1", Command: `grep -c "a b" /var/log/x && echo ok`, Timeout: 2.5},
		{Type: TypeCommand, Req: 3, Target: "zvm:ZVM1", Command: "Q N", Timeout: 1e-7},
		{Type: TypeCommand, Req: 4, Target: "region", Command: "SERVERS", Timeout: 1e21},
		{Type: TypeOutput, Req: 2, ID: "cli-1", Stream: "stdout", Text: "up 3 days,\tload 0.1\u2028\x01", EOL: true},
		{Type: TypeOutput, Req: 2, ID: "cli-1", Stream: "stderr", Data: []byte{0xff, 0xfe, 0, 'a'}},
		{Type: TypeReply, Req: 2, ID: "cli-1", RC: &rc0, DurationMS: 41},
		{Type: TypeReply, Req: 2, ID: "cli-1", RC: &rc2, Signal: "KILL", Truncated: true, DurationMS: 60000},
		{Type: TypeReply, Req: 6, ID: "ops-18", Error: &Error{Code: "busy", Message: "8 commands already in flight"}, RetryAfter: 1},
		{Type: TypeReply, Req: 2, After: "1700000000000-3"},
		{Type: TypeSubscribe, Req: 2, After: "0", Format: "lx", Subscription: "auto1", Group: "g\xff"},
		{Type: TypeAck, Req: 7, IDs: []string{"1700000000000-3", "1700000000000-4"}},
		{Type: TypeCancel, Req: 8, ID: "ops-17"},
		{Type: TypeBye, Reason: ByeBehind, ResumeAfter: "1700000000000-3", Message: "fell behind"},
		{Type: TypeEvent, ID: "1700000000000-0", Line: "<13>1 2023-11-14T22:13:20Z lnx1 app - - - hi"},
		{Type: TypeReply, Req: 9, Seq: 1 << 40},
		{Type: TypeHeartbeat, Req: 1<<64 - 1},
		{Type: "t\x00y\u2029pe"},
	}
}

// TestAppendFrameJSON checks that the frames a session sends are written
// without encoding/json, and decode to what encoding/json's bytes decode
// to.
func TestAppendFrameJSON(t *testing.T) {
	for _, f := range encFrames() {
		got, ok := appendFrameJSON(nil, f)
		if !ok {
			t.Errorf("%s frame %+v: left to encoding/json", f.Type, *f)
			continue
		}
		checkSameFrame(t, f, got)
	}
}

// TestAppendFrameJSONFallback checks that the frames appendFrameJSON
// leaves to encoding/json are written by it.
func TestAppendFrameJSONFallback(t *testing.T) {
	e := sampleEvent()
	for _, f := range []*Frame{
		{Type: TypeLogon, Client: "c", Options: map[string]string{"format": "lx"}},
		{Type: TypeSubscribe, Filter: &Filter{Origin: "lnx*"}},
		{Type: TypeEvent, Event: &e},
		{Type: TypeEvents, Events: []*Event{&e}, Seq: 3},
	} {
		if _, ok := appendFrameJSON(nil, f); ok {
			t.Errorf("%s frame written without encoding/json", f.Type)
		}
		b, err := AppendFrame(nil, f)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(f)
		if !bytes.Equal(b, append(want, '\n')) {
			t.Errorf("AppendFrame = %s, want encoding/json's %s", b, want)
		}
	}
	for _, v := range []float64{math.Inf(1), math.NaN()} {
		if _, err := AppendFrame(nil, &Frame{Type: TypeCommand, Timeout: v}); err == nil {
			t.Errorf("timeout %v: no error", v)
		}
	}
}

// checkSameFrame fails t unless got (appendFrameJSON's bytes for f) is one
// valid JSON object that decodes to what encoding/json's bytes for f do.
func checkSameFrame(t *testing.T, f *Frame, got []byte) {
	t.Helper()
	want, err := json.Marshal(f)
	if err != nil {
		t.Fatalf("encoding/json: %v", err)
	}
	if !json.Valid(got) || bytes.ContainsAny(got, "\n\r") {
		t.Fatalf("not one line of valid JSON: %q", got)
	}
	var a, b Frame
	if err := json.Unmarshal(got, &a); err != nil {
		t.Fatalf("decode %s: %v", got, err)
	}
	if err := json.Unmarshal(want, &b); err != nil {
		t.Fatalf("decode %s: %v", want, err)
	}
	if !framesEqual(a, b) {
		t.Fatalf("decoded differently\nfast:          %s\nencoding/json: %s", got, want)
	}
	// The same keys in the same order: a reader keyed on either sees one form.
	if objectKeys(t, got) != objectKeys(t, want) {
		t.Fatalf("keys differ\nfast:          %s\nencoding/json: %s", got, want)
	}
}

// objectKeys returns the top-level keys of the JSON object b, in order.
func objectKeys(t *testing.T, b []byte) string {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	if _, err := d.Token(); err != nil { // {
		t.Fatal(err)
	}
	var ks []string
	for d.More() {
		k, err := d.Token()
		if err != nil {
			t.Fatal(err)
		}
		ks = append(ks, k.(string))
		var v json.RawMessage
		if err := d.Decode(&v); err != nil {
			t.Fatal(err)
		}
	}
	return strings.Join(ks, ",")
}

// FuzzAppendFrame checks that every frame Decode accepts is written by
// AppendFrame as bytes that decode to what encoding/json's do.
func FuzzAppendFrame(f *testing.F) {
	for _, fr := range encFrames() {
		b, _ := json.Marshal(fr)
		f.Add(b)
	}
	f.Add([]byte(`{"type":"command","timeout":-0.000001,"data":""}`))
	f.Add([]byte(`{"type":"reply","rc":0,"eol":false,"truncated":false,"ids":[]}`))
	f.Add([]byte(`{"type":"accept","limits":{}}`))
	f.Add([]byte(`{"type":"reply","error":{}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var fr Frame
		if err := Decode(data, &fr); err != nil {
			return
		}
		got, err := AppendFrame(nil, &fr)
		if err != nil {
			if _, jerr := json.Marshal(&fr); jerr == nil {
				t.Fatalf("AppendFrame: %v; encoding/json wrote it", err)
			}
			return
		}
		checkSameFrame(t, &fr, bytes.TrimSuffix(got, []byte("\n")))
	})
}

// BenchmarkAppendFrame measures writing a command's output line and its
// reply, the frames COMMANDS sends most.
func BenchmarkAppendFrame(b *testing.B) {
	rc := 0
	out := &Frame{Type: TypeOutput, Req: 2, ID: "cli-4c97dd02b18e", Stream: "stdout", Text: "Filesystem     1K-blocks    Used Available Use% Mounted on", EOL: true}
	reply := &Frame{Type: TypeReply, Req: 2, ID: "cli-4c97dd02b18e", RC: &rc, DurationMS: 41}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = AppendFrame(buf[:0], out)
		buf, _ = AppendFrame(buf, reply)
	}
}

// TestAppendFrameJSONFields fails when Frame has a field appendFrameJSON
// neither writes nor leaves to encoding/json: it would be dropped from
// every frame. Add the field there, then here.
func TestAppendFrameJSONFields(t *testing.T) {
	known := map[string]bool{
		// written by appendFrameJSON
		"Type": true, "Req": true, "Client": true, "Secret": true, "Version": true, "Heartbeat": true,
		"Session": true, "Limits": true, "Reason": true, "Message": true, "RetryAfter": true,
		"ResumeAfter": true, "Error": true, "After": true, "Format": true, "Subscription": true,
		"Group": true, "IDs": true, "ID": true, "Line": true, "Target": true, "Command": true,
		"Timeout": true, "Stream": true, "Text": true, "Data": true, "EOL": true, "RC": true,
		"Signal": true, "Truncated": true, "DurationMS": true, "Seq": true,
		// left to encoding/json when set
		"Options": true, "Filter": true, "Event": true, "Events": true,
		// not on the wire (json:"-")
		"EventJSON": true, "EventID": true,
	}
	typ := reflect.TypeOf(Frame{})
	for i := 0; i < typ.NumField(); i++ {
		if f := typ.Field(i); !known[f.Name] {
			t.Errorf("Frame.%s (json %q): appendFrameJSON does not know it", f.Name, f.Tag.Get("json"))
		}
	}
	for _, typ := range []reflect.Type{reflect.TypeOf(Limits{}), reflect.TypeOf(Error{})} {
		want := map[string]int{"Limits": 4, "Error": 2}[typ.Name()]
		if typ.NumField() != want {
			t.Errorf("%s has %d fields; appendFrameJSON writes %d", typ.Name(), typ.NumField(), want)
		}
	}
}
