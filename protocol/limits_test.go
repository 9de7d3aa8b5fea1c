package protocol

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

// repeatFrame returns head, item n times separated by commas, and tail.
// An item with a %x in it is formatted with its index.
func repeatFrame(head, item, tail string, n int) []byte {
	return buildFrame(head, item, tail, func(i, _ int) bool { return i < n })
}

// fillFrame is repeatFrame with as many items as fit in size bytes.
func fillFrame(size int, head, item, tail string) []byte {
	return buildFrame(head, item, tail, func(_, length int) bool { return length <= size })
}

// buildFrame returns head, items separated by commas, and tail: item i
// while more(i, the length with it) holds.
func buildFrame(head, item, tail string, more func(i, length int) bool) []byte {
	b := []byte(head)
	for i := 0; ; i++ {
		n := len(b)
		if i > 0 {
			b = append(b, ',')
		}
		if strings.Contains(item, "%x") {
			b = fmt.Appendf(b, item, i)
		} else {
			b = append(b, item...)
		}
		if !more(i, len(b)+len(tail)) {
			b = b[:n]
			break
		}
	}
	return append(b, tail...)
}

// slowly rewrites a frame so that Decode's fast path gives it to
// encoding/json: an unknown key first.
func slowly(b []byte) []byte {
	return append([]byte(`{"unknown":0,`), b[1:]...)
}

// decodeAllocated decodes b and returns what the decode allocated in all,
// in bytes.
func decodeAllocated(b []byte) (Frame, error, uint64) {
	var f Frame
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	err := Decode(b, &f)
	runtime.ReadMemStats(&m1)
	return f, err, m1.TotalAlloc - m0.TotalAlloc
}

// TestDecodeAmplification: a frame of the largest size a session takes,
// full of small elements of a container that decode to large structs (an
// event is some 400 bytes, from the 3 of "{},"), allocates at most a few
// times its own size while it is decoded: a container the frame's type
// does not carry is not built, one over its limit is refused before it is
// built, and what is built is built without waste. Structured data may
// take up to 12 times: a parameter is 32 bytes, from the 3 of `"",`.
func TestDecodeAmplification(t *testing.T) {
	if testing.Short() {
		t.Skip("decodes megabyte frames: not in -short")
	}
	const mib = DefaultMaxFrame
	const logon = 16 << 10 // the session's limit before logon
	tests := []struct {
		name    string
		frame   []byte
		wantErr bool // ErrOverLimit
		factor  int  // the most allocated, in multiples of the frame's size
		check   func(*Frame) bool
	}{
		{name: "events on a heartbeat", frame: fillFrame(mib, `{"type":"heartbeat","req":1,"events":[`, `{}`, `]}`),
			factor: 1, check: func(f *Frame) bool { return f.Events == nil && f.Type == TypeHeartbeat && f.Req == 1 }},
		{name: "events after a heartbeat's type", frame: fillFrame(mib, `{"events":[`, `{}`, `],"type":"heartbeat"}`),
			factor: 1, check: func(f *Frame) bool { return f.Events == nil }},
		{name: "events on a logon", frame: fillFrame(logon, `{"type":"logon","req":1,"client":"c","version":1,"events":[`, `{}`, `]}`),
			factor: 1, check: func(f *Frame) bool { return f.Events == nil && f.Client == "c" }},
		{name: "too many events", frame: fillFrame(mib, `{"type":"events","req":1,"seq":1,"events":[`, `{}`, `]}`),
			wantErr: true, factor: 1},
		{name: "sd of an event in events", frame: fillFrame(mib, `{"type":"events","req":1,"seq":1,"events":[{"sd":{"a":{"b":[`, `""`, `]}}}]}`),
			factor: 12, check: func(f *Frame) bool { return len(f.Events) == 1 && len(f.Events[0].SD) == 1 }},
		{name: "sd array repeated apart", frame: fillFrame(mib, `{"type":"event","event":{"sd":{"a":{"c":"","b":[`, `""`, `],"c":""}}}}`),
			factor: 12, check: func(f *Frame) bool {
				return f.Event != nil && len(f.Event.SD) == 1 && f.Event.SD[0].Params[1].Name == "c"
			}},
		{name: "sd names alternating", frame: fillFrame(mib, `{"type":"event","event":{"sd":{"a":{`, `"b":"","c":""`, `}}}}`),
			factor: 8, check: func(f *Frame) bool {
				return f.Event != nil && len(f.Event.SD) == 1 && f.Event.SD[0].Params[1].Name == "b"
			}},
		{name: "sd params of an event", frame: fillFrame(mib, `{"type":"event","event":{"sd":{"a":{`, `"%x":""`, `}}}}`),
			factor: 8, check: func(f *Frame) bool { return f.Event != nil && len(f.Event.SD) == 1 }},
		{name: "sd params repeated apart", frame: fillFrame(mib, `{"type":"event","event":{"sd":{"a":{`, `"%x":""`, `,"0":"x"}}}}`),
			factor: 12, check: func(f *Frame) bool {
				return f.Event != nil && len(f.Event.SD) == 1 && f.Event.SD[0].Params[1].Value == "x"
			}},
		{name: "sd elements of an event", frame: fillFrame(mib, `{"type":"event","event":{"sd":{`, `"%x":{}`, `}}}`),
			factor: 8, check: func(f *Frame) bool { return f.Event != nil && len(f.Event.SD) > 100000 }},
		{name: "event on a heartbeat", frame: fillFrame(mib, `{"type":"heartbeat","event":{"sd":{"a":{"b":[`, `""`, `]}}}}`),
			factor: 1, check: func(f *Frame) bool { return f.Event == nil }},
		{name: "filter sd on a heartbeat", frame: fillFrame(mib, `{"type":"heartbeat","filter":{"sd":[`, `{}`, `]}}`),
			factor: 1, check: func(f *Frame) bool { return f.Filter == nil }},
		{name: "too many filter sd terms", frame: fillFrame(mib, `{"type":"subscribe","req":1,"filter":{"sd":[`, `{}`, `]}}`),
			wantErr: true, factor: 1},
		{name: "too many filter sources", frame: fillFrame(mib, `{"type":"subscribe","req":1,"filter":{"source":[`, `""`, `]}}`),
			wantErr: true, factor: 1},
		{name: "options on a heartbeat", frame: fillFrame(mib, `{"type":"heartbeat","options":{`, `"%x":""`, `}}`),
			factor: 1, check: func(f *Frame) bool { return f.Options == nil }},
		{name: "too many options", frame: fillFrame(logon, `{"type":"logon","req":1,"client":"c","version":1,"options":{`, `"%x":""`, `}}`),
			wantErr: true, factor: 1},
		{name: "ids on a heartbeat", frame: fillFrame(mib, `{"type":"heartbeat","ids":[`, `""`, `]}`),
			factor: 1, check: func(f *Frame) bool { return f.IDs == nil }},
		{name: "ids of an ack", frame: fillFrame(mib, `{"type":"ack","ids":[`, `""`, `]}`),
			factor: 8, check: func(f *Frame) bool { return len(f.IDs) > 300000 }},
	}
	for _, tt := range tests {
		for _, path := range []string{"fast", "slow"} {
			t.Run(tt.name+"/"+path, func(t *testing.T) {
				b := tt.frame
				if path == "slow" {
					b = slowly(b)
				}
				f, err, n := decodeAllocated(b)
				switch {
				case tt.wantErr && (!errors.Is(err, ErrOverLimit) || !errors.Is(err, ErrMalformed)):
					t.Errorf("error %v, want ErrOverLimit and ErrMalformed", err)
				case !tt.wantErr && err != nil:
					t.Errorf("error %v", err)
				case !tt.wantErr && !tt.check(&f):
					t.Errorf("decoded as %.300v", fmt.Sprintf("%+v", f))
				}
				t.Logf("%d bytes, %d allocated (%.2f times)", len(b), n, float64(n)/float64(len(b)))
				if max := uint64(tt.factor * len(b)); n > max {
					t.Errorf("a frame of %d bytes allocated %d (%.1f times its size), want at most %d times",
						len(b), n, float64(n)/float64(len(b)), tt.factor)
				}
			})
		}
	}
}

// TestDecodeLimits: each container takes up to its limit and refuses one
// more, saying which limit, on both of Decode's paths.
func TestDecodeLimits(t *testing.T) {
	tests := []struct {
		name       string
		head, item string
		tail       string
		limit      int
		errText    string
	}{
		{"events", `{"type":"events","req":1,"seq":1,"events":[`, `{"text":"x"}`, `]}`, MaxBatch, "more than 1000 events"},
		{"filter sd", `{"type":"subscribe","req":1,"filter":{"sd":[`, `{"id":"a","param":"b","glob":"*"}`, `]}}`, MaxSDTerms, "more than 16 sd terms"},
		{"filter source", `{"type":"subscribe","req":1,"filter":{"source":[`, `"syslog"`, `]}}`, MaxFilterSources, "more than 16 source kinds"},
		{"options", `{"type":"logon","req":1,"options":{`, `"k%x":"v"`, `}}`, MaxOptions, "more than 16 options"},
	}
	for _, tt := range tests {
		for _, path := range []string{"fast", "slow"} {
			t.Run(tt.name+"/"+path, func(t *testing.T) {
				at, over := repeatFrame(tt.head, tt.item, tt.tail, tt.limit), repeatFrame(tt.head, tt.item, tt.tail, tt.limit+1)
				if path == "slow" {
					at, over = slowly(at), slowly(over)
				}
				var f Frame
				if err := Decode(at, &f); err != nil {
					t.Errorf("%d: %v", tt.limit, err)
				}
				err := Decode(over, &f)
				if !errors.Is(err, ErrOverLimit) || !errors.Is(err, ErrMalformed) {
					t.Fatalf("%d: error %v, want ErrOverLimit and ErrMalformed", tt.limit+1, err)
				}
				if !strings.Contains(err.Error(), tt.errText) {
					t.Errorf("error %q does not say %q", err, tt.errText)
				}
				if path == "fast" && !strings.Contains(err.Error(), "at offset ") {
					t.Errorf("error %q does not say where", err)
				}
			})
		}
	}
	// A key that encoding/json takes for the field is counted as the field.
	for _, in := range []string{
		string(repeatFrame(`{"type":"subscribe","filter":{"SD":[`, `{}`, `]}}`, MaxSDTerms+1)),
		string(repeatFrame(`{"type":"subscribe","filter":{"\u0073d":[`, `{}`, `]}}`, MaxSDTerms+1)),
		string(repeatFrame(`{"type":"subscribe","filter":{"ſd":[`, `{}`, `]}}`, MaxSDTerms+1)), // ſ folds to s
		string(repeatFrame(`{"type":"subscribe","filter":{"sd":[],"sd":[`, `{}`, `]}}`, MaxSDTerms+1)),
		string(repeatFrame(`{"type":"subscribe","filter":{"SOURCE":[`, `""`, `]}}`, MaxFilterSources+1)),
		string(repeatFrame(`{"type":"events","Events":[`, `{}`, `]}`, MaxBatch+1)),
		string(repeatFrame(`{"type":"logon","OPTIONS":{`, `"a":""`, `}}`, MaxOptions+1)),
		// Options merge: two objects of options may not hold more than one.
		string(repeatFrame(`{"type":"logon","options":{"a":"","b":""},"options":{`, `"%x":""`, `}}`, MaxOptions-1)),
	} {
		var f Frame
		if err := Decode([]byte(in), &f); !errors.Is(err, ErrOverLimit) {
			t.Errorf("%.60s...: error %v, want ErrOverLimit", in, err)
		}
		var js Frame
		if err := json.Unmarshal([]byte(in), &js); err != nil {
			t.Errorf("%.60s...: encoding/json: %v", in, err)
		}
	}
}

// TestDecodeContainersByType: a container is decoded on the frame types
// that carry it and on no other; elsewhere it is JSON that is skipped, as
// an unknown field is.
func TestDecodeContainersByType(t *testing.T) {
	containers := []struct {
		key, value string
		carrier    string
		get        func(*Frame) any
	}{
		{"options", `{"kind":"zvm-agent"}`, TypeLogon, func(f *Frame) any { return f.Options }},
		{"filter", `{"origin":"lnx*","sd":[{"id":"a","param":"b","glob":"c"}]}`, TypeSubscribe, func(f *Frame) any { return f.Filter }},
		{"event", `{"id":"1-2","text":"hi"}`, TypeEvent, func(f *Frame) any { return f.Event }},
		{"events", `[{"text":"a"},{"text":"b"}]`, TypeEvents, func(f *Frame) any { return f.Events }},
		{"ids", `["1-2","1-3"]`, TypeAck, func(f *Frame) any { return f.IDs }},
	}
	types := []string{TypeLogon, TypeHeartbeat, TypeLogoff, TypeSubscribe, TypeCommand, TypeCancel, TypeEvents, TypeAck,
		TypeAccept, TypeRefuse, TypeReply, TypeEvent, TypeOutput, TypeNotice, TypeBye, "frobnicate"}
	for _, c := range containers {
		for _, typ := range types {
			for _, in := range []string{
				`{"type":"` + typ + `","req":3,"` + c.key + `":` + c.value + `}`,
				`{"` + c.key + `":` + c.value + `,"req":3,"type":"` + typ + `"}`,          // the type last
				`{"x":null,"type":"` + typ + `","req":3,"` + c.key + `":` + c.value + `}`, // the slow path
			} {
				var f Frame
				if err := Decode([]byte(in), &f); err != nil {
					t.Errorf("%s: %v", in, err)
					continue
				}
				want, _ := jsonDecode([]byte(in))
				if typ != c.carrier {
					if v := reflect.ValueOf(c.get(&f)); !v.IsNil() {
						t.Errorf("%s: %s decoded on a %s frame: %+v", in, c.key, typ, v.Interface())
					}
					want = Frame{Type: typ, Req: 3}
				}
				if !framesEqual(f, want) {
					t.Errorf("%s:\nDecode        %+v\nencoding/json %+v", in, f, want)
				}
			}
			// Not JSON is refused, carried or not; JSON that does not fit
			// the field is refused where the field is decoded.
			for _, bad := range []string{`[{]`, `{"a":}`, `"x\u12"`, `tru`} {
				in := `{"type":"` + typ + `","` + c.key + `":` + bad + `}`
				var f Frame
				if err := Decode([]byte(in), &f); !errors.Is(err, ErrMalformed) {
					t.Errorf("%s: error %v, want ErrMalformed", in, err)
				}
			}
			in := `{"type":"` + typ + `","` + c.key + `":12}`
			var f Frame
			if err := Decode([]byte(in), &f); (err != nil) != (typ == c.carrier) {
				t.Errorf("%s: error %v", in, err)
			}
		}
	}
}
