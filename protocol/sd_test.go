package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestStructuredDataJSON(t *testing.T) {
	tests := []struct {
		name string
		sd   StructuredData
		json string
		back StructuredData // what the JSON reads back as; nil: sd
	}{
		{"rfc5424 example", StructuredData{
			{ID: "exampleSDID@32473", Params: []SDParam{{"iut", "3"}, {"eventSource", "Application"}, {"eventID", "1011"}}},
			{ID: "examplePriority@32473", Params: []SDParam{{"class", "high"}}},
		}, `{"exampleSDID@32473":{"iut":"3","eventSource":"Application","eventID":"1011"},"examplePriority@32473":{"class":"high"}}`, nil},
		{"order kept, not sorted", StructuredData{
			{ID: "z", Params: []SDParam{{"b", "1"}, {"a", "2"}}}, {ID: "a", Params: []SDParam{{"z", "3"}}},
		}, `{"z":{"b":"1","a":"2"},"a":{"z":"3"}}`, nil},
		{"repeated name", StructuredData{
			{ID: "origin", Params: []SDParam{{"ip", "192.0.2.1"}, {"ip", "192.0.2.129"}, {"software", "rsyslogd"}}},
		}, `{"origin":{"ip":["192.0.2.1","192.0.2.129"],"software":"rsyslogd"}}`, nil},
		{"repeated name between others", StructuredData{
			{ID: "origin", Params: []SDParam{{"ip", "a"}, {"x", "b"}, {"ip", "c"}, {"y", "d"}, {"x", "e"}}},
		}, `{"origin":{"ip":["a","c"],"x":["b","e"],"y":"d"}}`, StructuredData{
			{ID: "origin", Params: []SDParam{{"ip", "a"}, {"ip", "c"}, {"x", "b"}, {"x", "e"}, {"y", "d"}}},
		}},
		{"element without parameters", StructuredData{{ID: "a"}, {ID: "b", Params: []SDParam{{"v", ""}}}},
			`{"a":{},"b":{"v":""}}`, nil},
		{"escapes", StructuredData{{ID: `i"d`, Params: []SDParam{{`n\`, "say \"hi\" \\ ]\n\x01\u2028"}}}},
			`{"i\"d":{"n\\":"say \"hi\" \\ ]\n\u0001\u2028"}}`, nil},
		{"SD-ID twice", StructuredData{{ID: "a", Params: []SDParam{{"x", "1"}}}, {ID: "a", Params: []SDParam{{"x", "2"}}}},
			`{"a":{"x":"1"},"a":{"x":"2"}}`, nil},
		{"big element", bigSD(40), string(appendSDParamsJSONSlow([]byte(`{"big@32473":`), bigSD(40)[0].Params)) + "}", grouped(bigSD(40))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.sd)
			if err != nil || string(b) != tt.json {
				t.Fatalf("json.Marshal = %s, %v\nwant %s", b, err, tt.json)
			}
			if got := appendSDJSON(nil, tt.sd); string(got) != tt.json {
				t.Errorf("appendSDJSON = %s, want %s", got, tt.json)
			}
			var back StructuredData
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatalf("json.Unmarshal(%s): %v", b, err)
			}
			want := tt.back
			if want == nil {
				want = tt.sd
			}
			if !reflect.DeepEqual(back, want) {
				t.Errorf("json.Unmarshal(%s) =\n%#v\nwant\n%#v", b, back, want)
			}
			if again, _ := json.Marshal(back); string(again) != tt.json {
				t.Errorf("read back and encoded again: %s, want %s", again, tt.json)
			}
		})
	}
}

// TestBigElementJSON: the encoder's two ways of finding repeated names
// (comparing each with those before, a map for big elements) agree.
func TestBigElementJSON(t *testing.T) {
	for n := 1; n <= 3*smallElement; n++ {
		sd := bigSD(n)
		small := appendSDParamsJSONSlow(nil, sd[0].Params)
		if got := appendSDParamsJSON(nil, sd[0].Params); !bytes.Equal(got, small) {
			t.Fatalf("%d parameters: %s\nwant %s", n, got, small)
		}
	}
}

// grouped is sd with the values of each repeated name moved to its first
// place, as JSON keeps them.
func grouped(sd StructuredData) StructuredData {
	var out StructuredData
	for _, el := range sd {
		g := SDElement{ID: el.ID}
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

// appendSDParamsJSONSlow is appendSDParamsJSON written plainly.
func appendSDParamsJSONSlow(b []byte, ps []SDParam) []byte {
	b = append(b, '{')
	done := map[string]bool{}
	for _, p := range ps {
		if done[p.Name] {
			continue
		}
		done[p.Name] = true
		if len(done) > 1 {
			b = append(b, ',')
		}
		var vs []string
		for _, q := range ps {
			if q.Name == p.Name {
				vs = append(vs, q.Value)
			}
		}
		b = appendString(b, p.Name)
		b = append(b, ':')
		if len(vs) == 1 {
			b = appendString(b, vs[0])
			continue
		}
		b = append(b, '[')
		for i, v := range vs {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, v)
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

func TestStructuredDataUnmarshal(t *testing.T) {
	tests := []struct {
		name string
		json string
		want StructuredData
	}{
		{"empty object", `{}`, nil},
		{"spaces", " { \"a\" : { \"b\" : [ \"1\" , \"2\" ] } } ", StructuredData{{ID: "a", Params: []SDParam{{"b", "1"}, {"b", "2"}}}}},
		{"one-element array", `{"a":{"b":["1"]}}`, StructuredData{{ID: "a", Params: []SDParam{{"b", "1"}}}}},
		{"empty array", `{"a":{"b":[],"c":"2"}}`, StructuredData{{ID: "a", Params: []SDParam{{"c", "2"}}}}},
		{"key repeated together", `{"a":{"b":"1","b":"2","c":"3"}}`, StructuredData{{ID: "a", Params: []SDParam{{"b", "1"}, {"b", "2"}, {"c", "3"}}}}},
		{"key repeated apart", `{"a":{"b":"1","c":"3","b":["2","4"]}}`, StructuredData{{ID: "a", Params: []SDParam{{"b", "1"}, {"b", "2"}, {"b", "4"}, {"c", "3"}}}}},
		{"escapes", `{"\u0061":{"b":"\"\\\/\ud83c\udf89"}}`, StructuredData{{ID: "a", Params: []SDParam{{"b", `"\/🎉`}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got StructuredData
			if err := json.Unmarshal([]byte(tt.json), &got); err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("json.Unmarshal(%s) = %#v, %v; want %#v", tt.json, got, err, tt.want)
			}
		})
	}

	bad := []string{`[]`, `"x"`, `1`, `true`, `{"a":1}`, `{"a":[]}`, `{"a":null}`, `{"a":{"b":1}}`, `{"a":{"b":null}}`,
		`{"a":{"b":{}}}`, `{"a":{"b":[1]}}`, `{"a":{"b":["1",["2"]]}}`, `{"a":{"b":"1"}} {}`, `{"a":{"b":"1"}`, `{"a":{"b"`, ``}
	for _, in := range bad {
		var sd StructuredData
		if err := sd.UnmarshalJSON([]byte(in)); !errors.Is(err, ErrBadSD) {
			t.Errorf("UnmarshalJSON(%s) = %v, want ErrBadSD", in, err)
		}
		var e Event
		if err := json.Unmarshal([]byte(`{"sd":`+in+`}`), &e); err == nil {
			t.Errorf("json.Unmarshal of an event with sd %s: no error", in)
		}
	}

	// null leaves the value alone, as encoding/json does.
	sd := sampleSD()
	if err := json.Unmarshal([]byte(`null`), &sd); err != nil || !reflect.DeepEqual(sd, sampleSD()) {
		t.Errorf("json.Unmarshal(null) = %v, %v; want it unchanged", sd, err)
	}
}

// TestEventSDJSON: an event's structured data goes where the struct has
// it, after procid, is left out when there is none, and decodes with
// encoding/json in order.
func TestEventSDJSON(t *testing.T) {
	e := withSD(sampleSD())
	b := AppendEventJSON(nil, &e)
	want := `"procid":"4711","sd":{"exampleSDID@32473":{"iut":"3","eventSource":"Application","eventID":"1011"},` +
		`"examplePriority@32473":{"class":"high"},"origin":{"ip":["192.0.2.1","192.0.2.129"]}},"facility":"daemon"`
	if !bytes.Contains(b, []byte(want)) {
		t.Errorf("AppendEventJSON = %s\nwant it to hold %s", b, want)
	}
	var back Event
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back.SD, e.SD) {
		t.Errorf("json.Unmarshal: SD %#v, %v; want %#v", back.SD, err, e.SD)
	}
	for _, sd := range []StructuredData{nil, {}} {
		e.SD = sd
		if b := AppendEventJSON(nil, &e); bytes.Contains(b, []byte(`"sd"`)) {
			t.Errorf("SD %#v written: %s", sd, b)
		}
		if b, _ := json.Marshal(&e); bytes.Contains(b, []byte(`"sd"`)) {
			t.Errorf("SD %#v written by encoding/json: %s", sd, b)
		}
	}
}

func TestAppendStructuredData(t *testing.T) {
	tests := []struct {
		sd   StructuredData
		want string
	}{
		{nil, "-"},
		{StructuredData{}, "-"},
		{sampleSD(), `[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high"]` +
			`[origin ip="192.0.2.1" ip="192.0.2.129"]`},
		{StructuredData{{ID: "a"}}, "[a]"},
		{StructuredData{{ID: "a", Params: []SDParam{{"q", `say "hi" C:\dir a]b \z`}, {"e", ""}}}}, `[a q="say \"hi\" C:\\dir a\]b \\z" e=""]`},
	}
	for _, tt := range tests {
		if got := string(AppendStructuredData([]byte("x "), tt.sd)); got != "x "+tt.want {
			t.Errorf("AppendStructuredData(%#v) = %s, want x %s", tt.sd, got, tt.want)
		}
	}
}

func TestStructuredDataGet(t *testing.T) {
	sd := sampleSD()
	sd = append(sd, SDElement{ID: "origin", Params: []SDParam{{"ip", "::1"}}}) // an SD-ID twice
	if got := sd.Get("origin", "ip"); !reflect.DeepEqual(got, []string{"192.0.2.1", "192.0.2.129", "::1"}) {
		t.Errorf("Get(origin, ip) = %q", got)
	}
	if got := sd.Get("exampleSDID@32473", "iut"); !reflect.DeepEqual(got, []string{"3"}) {
		t.Errorf("Get(exampleSDID@32473, iut) = %q", got)
	}
	if got := sd.Get("origin", "software"); got != nil {
		t.Errorf("Get(origin, software) = %q, want nil", got)
	}
}

func TestEventSizeSD(t *testing.T) {
	e := sampleEvent()
	base := e.Size()
	e.SD = StructuredData{{ID: "abc", Params: []SDParam{{"n", "value"}, {"m", ""}}}}
	if got, want := e.Size(), base+40+3+32+1+5+32+1; got != want {
		t.Errorf("Size with SD = %d, want %d", got, want)
	}
}

func TestValidSDName(t *testing.T) {
	for s, want := range map[string]bool{
		"a": true, "exampleSDID@32473": true, "origin@32473.1.2": true, strings.Repeat("x", 32): true, "!#$%&'()*+,-./:;<>?@[\\^_`{|}~": true,
		"": false, strings.Repeat("x", 33): false, "a b": false, "a=b": false, "a]": false, `a"`: false, "é": false, "a\x7f": false, "a\t": false,
	} {
		if got := ValidSDName(s); got != want {
			t.Errorf("ValidSDName(%q) = %v, want %v", s, got, want)
		}
	}
}

// FuzzStructuredDataJSON: UnmarshalJSON does not panic, reads what the
// encoding/json Decoder it was first written with read (and refuses what
// it refused), and what it accepts encodes to JSON that reads back the
// same and encodes to the same bytes again (decode → encode → decode →
// encode).
func FuzzStructuredDataJSON(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"a":{}}`, `{"origin":{"ip":["192.0.2.1","192.0.2.129"],"software":"rsyslogd"}}`,
		`{"a":{"b":"1","c":"2","b":"3"}}`, `{"a":{"x":"1"},"a":{"x":"2"}}`, `{"a":{"b":[]}}`, `{"a":{"b":["1"]}}`,
		"{\"\\u2028\":{\"\\ud800\":\"\xff<&>\"}}", `{"a":{"b":1}}`, `null`, `[]`,
	} {
		f.Add([]byte(s))
	}
	f.Add(appendSDJSON(nil, sampleSD()))
	f.Add(appendSDJSON(nil, bigSD(40)))
	f.Add(appendSDJSON(nil, bigSD(300)))
	// Large elements whose names repeat apart: the hash table's way.
	f.Add(repeatFrame(`{"a":{"c":"","b":[`, `""`, `],"c":"x"}}`, 1000))
	f.Add(repeatFrame(`{"a":{`, `"%x":"v"`, `,"0":"w","11":""}}`, 100))
	f.Add(repeatFrame(`{`, `"%x":{"p":"","q":["",""],"p":"x"}`, `}`, 100))
	f.Fuzz(func(t *testing.T, data []byte) {
		var sd, ref StructuredData
		err := sd.UnmarshalJSON(data)
		if rerr := unmarshalSDReference(&ref, data); (err == nil) != (rerr == nil) || err == nil && !reflect.DeepEqual(sd, ref) {
			t.Fatalf("UnmarshalJSON(%q) = %#v, %v\nthe reference's: %#v, %v", data, sd, err, ref, rerr)
		}
		if err != nil {
			if !errors.Is(err, ErrBadSD) {
				t.Fatalf("UnmarshalJSON(%q) error %v is not ErrBadSD", data, err)
			}
			return
		}
		enc := appendSDJSON(nil, sd)
		if !json.Valid(enc) {
			t.Fatalf("%q: encoded as invalid JSON %s", data, enc)
		}
		var back StructuredData
		if err := json.Unmarshal(enc, &back); err != nil {
			t.Fatalf("%q: encoded as %s, which does not decode: %v", data, enc, err)
		}
		// encoding/json made the strings valid UTF-8: they read back as
		// they are.
		if !reflect.DeepEqual(back, sd) {
			t.Fatalf("%q: decoded %#v, encoded %s, decoded again %#v", data, sd, enc, back)
		}
		if again := appendSDJSON(nil, back); !bytes.Equal(again, enc) {
			t.Fatalf("%q: encoded %s, then %s", data, enc, again)
		}
	})
}

// TestGroupParams: the values of a name repeated apart move to its first
// place, in order, whatever the element's size (a list of names for a
// few, a hash table for more) and however the names repeat.
func TestGroupParams(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, size := range []int{0, 1, 2, 3, 5, smallElement, smallElement + 1, 3 * smallElement, 200, 5000} {
		for _, names := range []int{1, 2, 3, smallElement, smallElement + 1, 100, 5000} {
			for _, runLen := range []int{1, 3} {
				var el SDElement
				for len(el.Params) < size {
					name := fmt.Sprint("n", rng.IntN(names))
					for k := 0; k < runLen && len(el.Params) < size; k++ {
						el.Params = append(el.Params, SDParam{name, fmt.Sprint(len(el.Params))})
					}
				}
				want := grouped(StructuredData{el})[0].Params
				got := groupParams(slices.Clone(el.Params))
				if !slices.Equal(got, want) {
					t.Fatalf("%d parameters of %d names in runs of %d: %v\nwant %v", size, names, runLen, got, want)
				}
			}
		}
	}
}

// unmarshalSDReference is StructuredData.UnmarshalJSON as it first was,
// with encoding/json's Decoder (and, at over 100 bytes allocated for each
// byte of `"",`, unfit for a peer's frames): the reference the two-pass
// UnmarshalJSON is held to (FuzzStructuredDataJSON).
func unmarshalSDReference(sd *StructuredData, data []byte) error {
	if string(bytes.TrimSpace(data)) == "null" {
		return nil
	}
	d := json.NewDecoder(bytes.NewReader(data))
	var out StructuredData
	if err := sdDelimReference(d, '{'); err != nil {
		return err
	}
	for d.More() {
		id, err := sdStringReference(d)
		if err != nil {
			return err
		}
		el := SDElement{ID: id}
		if err := sdDelimReference(d, '{'); err != nil {
			return err
		}
		for d.More() {
			name, err := sdStringReference(d)
			if err != nil {
				return err
			}
			tok, err := d.Token()
			if err != nil {
				return sdErrorReference(d, err)
			}
			switch v := tok.(type) {
			case string:
				el.Params = append(el.Params, SDParam{Name: name, Value: v})
			case json.Delim:
				if v != '[' {
					return fmt.Errorf("%w: %s.%s is not a string or an array of strings at offset %d", ErrBadSD, id, name, d.InputOffset())
				}
				for d.More() {
					value, err := sdStringReference(d)
					if err != nil {
						return err
					}
					el.Params = append(el.Params, SDParam{Name: name, Value: value})
				}
				if err := sdDelimReference(d, ']'); err != nil {
					return err
				}
			default:
				return fmt.Errorf("%w: %s.%s is not a string or an array of strings at offset %d", ErrBadSD, id, name, d.InputOffset())
			}
		}
		if err := sdDelimReference(d, '}'); err != nil {
			return err
		}
		el.Params = groupParamsReference(el.Params)
		out = append(out, el)
	}
	if err := sdDelimReference(d, '}'); err != nil {
		return err
	}
	if _, err := d.Token(); err != io.EOF {
		return fmt.Errorf("%w: data after the object at offset %d", ErrBadSD, d.InputOffset())
	}
	*sd = out
	return nil
}

// groupParamsReference is groupParams as it first was: it moves the values of a name that an object gave more than once
// (a key repeated in JSON) to the place of its first, as an array keeps
// them; ps is returned as it is when no name is repeated apart.
func groupParamsReference(ps []SDParam) []SDParam {
	if len(ps) < 3 {
		return ps
	}
	group := make(map[string]int, len(ps)) // name → its place among the names
	var count []int                        // parameters of each name
	apart := false
	for i, p := range ps {
		g, ok := group[p.Name]
		if !ok {
			g = len(count)
			group[p.Name] = g
			count = append(count, 0)
		}
		apart = apart || ok && ps[i-1].Name != p.Name
		count[g]++
	}
	if !apart {
		return ps
	}
	at := make([]int, len(count)) // where each name's next value goes
	for g := 1; g < len(count); g++ {
		at[g] = at[g-1] + count[g-1]
	}
	out := make([]SDParam, len(ps))
	for _, p := range ps {
		g := group[p.Name]
		out[at[g]] = p
		at[g]++
	}
	return out
}

// sdDelimReference is reads the delimiter want.
func sdDelimReference(d *json.Decoder, want json.Delim) error {
	tok, err := d.Token()
	if err != nil {
		return sdErrorReference(d, err)
	}
	if tok != want {
		return fmt.Errorf("%w: want %q at offset %d", ErrBadSD, want, d.InputOffset())
	}
	return nil
}

// sdStringReference is reads a string (an object key or an array element).
func sdStringReference(d *json.Decoder) (string, error) {
	tok, err := d.Token()
	if err != nil {
		return "", sdErrorReference(d, err)
	}
	s, ok := tok.(string)
	if !ok {
		return "", fmt.Errorf("%w: want a string at offset %d", ErrBadSD, d.InputOffset())
	}
	return s, nil
}

func sdErrorReference(d *json.Decoder, err error) error {
	return fmt.Errorf("%w: %w at offset %d", ErrBadSD, err, d.InputOffset())
}
