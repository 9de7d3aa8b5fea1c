package protocol

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
)

// SDElement is one SD-ELEMENT of an RFC 5424 message's STRUCTURED-DATA:
// its SD-ID and its parameters in the order the message gives them.
type SDElement struct {
	ID     string
	Params []SDParam
}

// SDParam is one SD-PARAM: a PARAM-NAME and its PARAM-VALUE with the
// escapes undone (`\"`, `\\` and `\]` read as `"`, `\` and `]`; a backslash
// before any other character is kept, RFC 5424 section 6.3.3). A name may
// come more than once in one element (RFC 5424 allows it, e.g. the origin
// element's ip).
type SDParam struct {
	Name, Value string
}

// StructuredData is an event's structured data: the SD-ELEMENTs in message
// order. It is a []SDElement with the JSON encoding below (encoding/json
// would write a list of objects with ID and Params keys).
//
// # JSON
//
// One object, a key for each element (its SD-ID) in element order; its
// value an object, a key for each parameter name in the order the names
// first occur in the element, whose value is a string, or, for a name the
// element gives more than once, an array of its values in element order:
//
//	{"exampleSDID@32473":{"iut":"3","eventSource":"Application"},
//	 "origin":{"ip":["192.0.2.1","192.0.2.129"],"software":"rsyslogd"}}
//
// StructuredData → JSON → StructuredData gives the same elements, except
// that the values of a repeated name come back together at its first
// place: [origin ip="a" x="b" ip="c"] comes back as ip="a" ip="c" x="b"
// (the order of the names and the order of each name's values are kept;
// the order between values of different names is not, which nothing in
// RFC 5424 gives a meaning). So structured data read from JSON encodes to
// JSON that reads back the same, and JSON that this encoding wrote reads
// back and encodes to the same bytes. Read from other JSON, a key repeated
// in one element's object is taken as the name's further values (as if in
// an array) and a one-element array as a single value. An SD-ID that
// occurs twice (RFC 5424 forbids it; the syslog parser rejects such
// structured data) is written as two keys of the same name and read back
// as two elements. The disk store's journal keeps the exact order.
type StructuredData []SDElement

// MaxSDName is the most bytes in an SD-NAME (an SD-ID or a PARAM-NAME).
const MaxSDName = 32

// ValidSDName reports whether s is an SD-NAME of RFC 5424 (section 6.3):
// 1 to 32 printable US-ASCII characters but '=', space, ']' and '"'.
func ValidSDName(s string) bool {
	if len(s) == 0 || len(s) > MaxSDName {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !IsSDNameByte(s[i]) {
			return false
		}
	}
	return true
}

// IsSDNameByte reports whether c may be part of an SD-NAME.
func IsSDNameByte(c byte) bool {
	return c > ' ' && c < 0x7f && c != '=' && c != ']' && c != '"'
}

// AppendStructuredData appends sd in its RFC 5424 form: "-" when it has no
// element, else each element as [SD-ID SP NAME="VALUE" ...], with '"', '\'
// and ']' in values escaped. Names are written as they are: they are
// valid SD-NAMEs when sd came from the syslog parser.
func AppendStructuredData(b []byte, sd []SDElement) []byte {
	if len(sd) == 0 {
		return append(b, '-')
	}
	for _, el := range sd {
		b = append(b, '[')
		b = append(b, el.ID...)
		for _, p := range el.Params {
			b = append(b, ' ')
			b = append(b, p.Name...)
			b = append(b, '=', '"')
			for i := 0; i < len(p.Value); i++ {
				switch c := p.Value[i]; c {
				case '"', '\\', ']':
					b = append(b, '\\', c)
				default:
					b = append(b, c)
				}
			}
			b = append(b, '"')
		}
		b = append(b, ']')
	}
	return b
}

// Size is an estimate of the memory sd holds (for Event.Size).
func (sd StructuredData) Size() int {
	n := 0
	for _, el := range sd {
		n += 40 + len(el.ID) // an SDElement is 40 bytes
		for _, p := range el.Params {
			n += 32 + len(p.Name) + len(p.Value)
		}
	}
	return n
}

// Get returns the values of the parameter name of the element id, in
// element order (every element with that ID, should there be several).
func (sd StructuredData) Get(id, name string) []string {
	var vs []string
	for _, el := range sd {
		if el.ID != id {
			continue
		}
		for _, p := range el.Params {
			if p.Name == name {
				vs = append(vs, p.Value)
			}
		}
	}
	return vs
}

// MarshalJSON implements json.Marshaler (see StructuredData, "JSON").
func (sd StructuredData) MarshalJSON() ([]byte, error) {
	return appendSDJSON(nil, sd), nil
}

// smallElement is the most parameters of an element for which
// appendSDJSON finds repeated names by comparing each name with those
// before it; a larger element uses a map, so that the time stays linear.
const smallElement = 16

// appendSDJSON appends sd's JSON form. It allocates only for an element of
// more than smallElement parameters.
func appendSDJSON(b []byte, sd []SDElement) []byte {
	b = append(b, '{')
	for i, el := range sd {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, el.ID)
		b = append(b, ':')
		b = appendSDParamsJSON(b, el.Params)
	}
	return append(b, '}')
}

// appendSDParamsJSON appends an element's parameters as a JSON object.
func appendSDParamsJSON(b []byte, ps []SDParam) []byte {
	// next[i] is the index of the next parameter with ps[i]'s name, or -1;
	// later[i] says an earlier parameter has ps[i]'s name.
	var nextBuf [smallElement]int32
	var laterBuf [smallElement]bool
	next, later := nextBuf[:0], laterBuf[:0]
	if len(ps) > smallElement {
		next, later = make([]int32, 0, len(ps)), make([]bool, 0, len(ps))
	}
	for range ps {
		next, later = append(next, -1), append(later, false)
	}
	if len(ps) <= smallElement {
		for i := 1; i < len(ps); i++ {
			for j := i - 1; j >= 0; j-- {
				if ps[j].Name == ps[i].Name {
					next[j], later[i] = int32(i), true
					break
				}
			}
		}
	} else {
		last := make(map[string]int32, len(ps))
		for i := range ps {
			if j, ok := last[ps[i].Name]; ok {
				next[j], later[i] = int32(i), true
			}
			last[ps[i].Name] = int32(i)
		}
	}
	b = append(b, '{')
	first := true
	for i := range ps {
		if later[i] {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendString(b, ps[i].Name)
		b = append(b, ':')
		if next[i] < 0 {
			b = appendString(b, ps[i].Value)
			continue
		}
		b = append(b, '[')
		for j := int32(i); j >= 0; j = next[j] {
			if j != int32(i) {
				b = append(b, ',')
			}
			b = appendString(b, ps[j].Value)
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// UnmarshalJSON implements json.Unmarshaler (see StructuredData, "JSON").
// It keeps the order of the keys, which decoding into maps would lose. JSON
// null leaves sd as it is; an empty object makes it nil.
func (sd *StructuredData) UnmarshalJSON(data []byte) error {
	if string(bytes.TrimSpace(data)) == "null" {
		return nil
	}
	d := json.NewDecoder(bytes.NewReader(data))
	var out StructuredData
	if err := sdDelim(d, '{'); err != nil {
		return err
	}
	for d.More() {
		id, err := sdString(d)
		if err != nil {
			return err
		}
		el := SDElement{ID: id}
		if err := sdDelim(d, '{'); err != nil {
			return err
		}
		for d.More() {
			name, err := sdString(d)
			if err != nil {
				return err
			}
			tok, err := d.Token()
			if err != nil {
				return sdError(d, err)
			}
			switch v := tok.(type) {
			case string:
				el.Params = append(el.Params, SDParam{Name: name, Value: v})
			case json.Delim:
				if v != '[' {
					return fmt.Errorf("%w: %s.%s is not a string or an array of strings at offset %d", ErrBadSD, id, name, d.InputOffset())
				}
				for d.More() {
					value, err := sdString(d)
					if err != nil {
						return err
					}
					el.Params = append(el.Params, SDParam{Name: name, Value: value})
				}
				if err := sdDelim(d, ']'); err != nil {
					return err
				}
			default:
				return fmt.Errorf("%w: %s.%s is not a string or an array of strings at offset %d", ErrBadSD, id, name, d.InputOffset())
			}
		}
		if err := sdDelim(d, '}'); err != nil {
			return err
		}
		el.Params = groupParams(el.Params)
		out = append(out, el)
	}
	if err := sdDelim(d, '}'); err != nil {
		return err
	}
	if _, err := d.Token(); err != io.EOF {
		return fmt.Errorf("%w: data after the object at offset %d", ErrBadSD, d.InputOffset())
	}
	*sd = out
	return nil
}

// groupParams moves the values of a name that an object gave more than once
// (a key repeated in JSON) to the place of its first, as an array keeps
// them; ps is returned as it is when no name is repeated apart.
func groupParams(ps []SDParam) []SDParam {
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

// sdDelim reads the delimiter want.
func sdDelim(d *json.Decoder, want json.Delim) error {
	tok, err := d.Token()
	if err != nil {
		return sdError(d, err)
	}
	if tok != want {
		return fmt.Errorf("%w: want %q at offset %d", ErrBadSD, want, d.InputOffset())
	}
	return nil
}

// sdString reads a string (an object key or an array element).
func sdString(d *json.Decoder) (string, error) {
	tok, err := d.Token()
	if err != nil {
		return "", sdError(d, err)
	}
	s, ok := tok.(string)
	if !ok {
		return "", fmt.Errorf("%w: want a string at offset %d", ErrBadSD, d.InputOffset())
	}
	return s, nil
}

func sdError(d *json.Decoder, err error) error {
	return fmt.Errorf("%w: %w at offset %d", ErrBadSD, err, d.InputOffset())
}
