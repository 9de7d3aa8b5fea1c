package protocol

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// A frame's containers are its members whose value holds any number of
// elements that each decode to far more memory than their JSON takes: an
// event is some 400 bytes, from the 2 of "{}"; an option or an ID a
// string header or a map entry from the 3 of `"",`. Decode builds a
// container only on a frame of the type that carries it (on any other it
// is skipped as an unknown field is: checked to be JSON, and not built),
// and only after counting its elements against its limit, which counting
// allocates nothing for: what a peer can make the reader allocate stays a
// small multiple of the frame's size, whatever the frame's type.

// container is one of a frame's containers.
type container int

const (
	containerOptions container = iota
	containerFilter
	containerIDs
	containerEvent
	containerEvents
	numContainers
)

// key returns the container's JSON key.
func (c container) key() string {
	switch c {
	case containerOptions:
		return "options"
	case containerFilter:
		return "filter"
	case containerIDs:
		return "ids"
	case containerEvent:
		return "event"
	}
	return "events"
}

// carrier returns the type of the frames that carry the container (see
// SPEC.md).
func (c container) carrier() string {
	switch c {
	case containerOptions:
		return TypeLogon
	case containerFilter:
		return TypeSubscribe
	case containerIDs:
		return TypeAck
	case containerEvent:
		return TypeEvent
	}
	return TypeEvents
}

// decode decodes v, the JSON value of the container c in the frame f (v
// is valid JSON; f.Type is the frame's type), into f as encoding/json
// would: nothing when f's type does not carry c, an ErrOverLimit error
// when it holds more elements than its limit. at is v's offset in the
// frame, for errors; -1 when it is not known.
func (c container) decode(f *Frame, v []byte, at int) error {
	if f.Type != c.carrier() {
		return nil
	}
	var err error
	switch c {
	case containerOptions:
		// Counted with the options of an "options" before, which
		// encoding/json merges them with: at most MaxOptions in all.
		if _, over := countElements(v, MaxOptions-len(f.Options)); over >= 0 {
			return overLimit("options", MaxOptions, "options (the most a logon carries)", at, over)
		}
		err = json.Unmarshal(v, &f.Options)
	case containerFilter:
		if err := checkFilter(v, at); err != nil {
			return err
		}
		err = json.Unmarshal(v, &f.Filter)
	case containerIDs:
		// Counted first, so that the slice is made once: append's growth
		// would allocate some five times the slice it ends with.
		n, _ := countElements(v, -1)
		if f.IDs == nil {
			d := frameDecoder{b: v}
			if ids, ok := d.strings(n); ok && d.end() {
				f.IDs = ids
				return nil
			}
		}
		f.IDs = withRoom(f.IDs, n)
		err = json.Unmarshal(v, &f.IDs)
	case containerEvent:
		err = json.Unmarshal(v, &f.Event)
	case containerEvents:
		n, over := countElements(v, MaxBatch)
		if over >= 0 {
			return overLimit("events", MaxBatch, "events (the most one events frame carries)", at, over)
		}
		f.Events = withRoom(f.Events, n)
		err = json.Unmarshal(v, &f.Events)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", c.key(), err)
	}
	return nil
}

// withRoom returns s with room for n elements. encoding/json decodes an
// array into a slice's backing array from its start, into the elements a
// key that came before left there (a second "events" merges into the
// first's events): they are kept, up to s's capacity.
func withRoom[T any](s []T, n int) []T {
	if n == 0 || cap(s) >= n {
		return s
	}
	t := make([]T, n)
	copy(t, s[:cap(s)])
	return t[:len(s)]
}

// overLimit returns the error for a container (key) with more than limit
// elements (what), the next of which is at offset over of the container,
// which is at offset at of the frame (-1: not known).
func overLimit(key string, limit int, what string, at, over int) error {
	if at < 0 {
		return fmt.Errorf("%w: %s: more than %d %s", ErrOverLimit, key, limit, what)
	}
	return fmt.Errorf("%w: %s: more than %d %s, the next at offset %d", ErrOverLimit, key, limit, what, at+over)
}

// checkFilter checks the arrays of the filter v (valid JSON) against their
// limits: sd against MaxSDTerms, source against MaxFilterSources, under
// every key encoding/json takes for them; a key that comes twice is
// checked each time.
func checkFilter(v []byte, at int) error {
	i := skipSpace(v, 0)
	if i >= len(v) || v[i] != '{' {
		return nil // null, or not an object: encoding/json says what is wrong
	}
	i = skipSpace(v, i+1)
	for i < len(v) && v[i] == '"' {
		end := closingQuote(v, i+1)
		key := v[i+1 : end]
		i = skipSpace(v, skipSpace(v, end+1)+1) // the value, after ':'
		next := skipValid(v, i)
		switch {
		case jsonKeyIs(key, "sd"):
			if _, over := countElements(v[i:next], MaxSDTerms); over >= 0 {
				return overLimit("filter.sd", MaxSDTerms, "sd terms (the most one filter has)", at, i+over)
			}
		case jsonKeyIs(key, "source"):
			if _, over := countElements(v[i:next], MaxFilterSources); over >= 0 {
				return overLimit("filter.source", MaxFilterSources, "source kinds (the most one filter lists)", at, i+over)
			}
		}
		i = skipSpace(v, next)
		if i < len(v) && v[i] == ',' {
			i = skipSpace(v, i+1)
		}
	}
	return nil
}

// jsonKeyIs reports whether encoding/json takes the key whose body (the
// JSON between its quotes) is k for a field named name (ASCII letters):
// the key, escapes undone, is name in any case, as bytes.EqualFold folds
// it ("ſ" is an "s"). Each rune that folds to an ASCII letter is at most
// three bytes, six escaped, so a longer key is not name.
func jsonKeyIs(k []byte, name string) bool {
	if bytes.IndexByte(k, '\\') < 0 {
		return len(k) <= 3*len(name) && strings.EqualFold(string(k), name)
	}
	if len(k) > 6*len(name) {
		return false
	}
	u, _ := unescapeShort(k)
	return strings.EqualFold(string(u), name)
}

// countElements counts the elements of v, valid JSON, when it is an array
// (the members, when it is an object), up to limit+1, without a limit
// when limit < 0. over is the offset in v of the element after the first
// limit, or -1 when there is none. A value of another kind has none.
func countElements(v []byte, limit int) (n, over int) {
	i := skipSpace(v, 0)
	if i >= len(v) || v[i] != '[' && v[i] != '{' {
		return 0, -1
	}
	object := v[i] == '{'
	for i = skipSpace(v, i+1); i < len(v) && v[i] != ']' && v[i] != '}'; {
		if n == limit {
			return n + 1, i
		}
		n++
		if object {
			i = skipSpace(v, closingQuote(v, i+1)+1) // at ':'
			i = skipSpace(v, i+1)
		}
		i = skipSpace(v, skipValid(v, i))
		if i < len(v) && v[i] == ',' {
			i = skipSpace(v, i+1)
		}
	}
	return n, -1
}

// skipValid returns the index after the value that starts at v[i], in
// valid JSON.
func skipValid(v []byte, i int) int {
	depth := 0
	for ; i < len(v); i++ {
		switch v[i] {
		case '"':
			i = closingQuote(v, i+1)
			if depth == 0 {
				return i + 1
			}
		case '[', '{':
			depth++
		case ']', '}':
			if depth == 0 {
				return i // the end of the container around a number or literal
			}
			if depth--; depth == 0 {
				return i + 1
			}
		case ',', ' ', '\t', '\n', '\r':
			if depth == 0 {
				return i
			}
		}
	}
	return i
}

// closingQuote returns the index of the quote that ends the string whose
// body starts at v[i], in valid JSON: the first quote after an even
// number of backslashes.
func closingQuote(v []byte, i int) int {
	for {
		j := bytes.IndexByte(v[i:], '"')
		if j < 0 {
			return len(v)
		}
		q := i + j
		k := q
		for k > 0 && v[k-1] == '\\' {
			k--
		}
		if (q-k)%2 == 0 {
			return q
		}
		i = q + 1
	}
}

// skipSpace returns the index of the first byte at or after i that is not
// JSON whitespace.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// scanJSON returns the index after the JSON value that starts at b[i]
// (after any whitespace), or -1 when there is none: what encoding/json's
// scanner takes, nesting at most depth arrays and objects. It allocates
// only for nesting deeper than 64.
func scanJSON(b []byte, i, depth int) int {
	var stackBuf [64]byte
	stack := stackBuf[:0] // the open containers: '{' or '['
	for {
		// A value.
		i = skipSpace(b, i)
		if i >= len(b) {
			return -1
		}
		switch c := b[i]; {
		case c == '{' || c == '[':
			if len(stack) >= depth {
				return -1
			}
			i = skipSpace(b, i+1)
			if i < len(b) && b[i] == c+2 { // '}' is '{'+2, ']' is '['+2
				i++
				break
			}
			stack = append(stack, c)
			if c == '{' {
				if i = scanJSONKey(b, i); i < 0 {
					return -1
				}
			}
			continue
		case c == '"':
			i = scanJSONString(b, i+1)
		case c == 't':
			i = scanLiteral(b, i, "true")
		case c == 'f':
			i = scanLiteral(b, i, "false")
		case c == 'n':
			i = scanLiteral(b, i, "null")
		case c == '-' || '0' <= c && c <= '9':
			i = scanNumber(b, i)
		default:
			return -1
		}
		if i < 0 {
			return -1
		}
		// After a value: a comma and the next, or the ends of containers.
		for {
			if len(stack) == 0 {
				return i
			}
			i = skipSpace(b, i)
			if i >= len(b) {
				return -1
			}
			top := stack[len(stack)-1]
			if b[i] == ',' {
				i++
				if top == '{' {
					if i = scanJSONKey(b, i); i < 0 {
						return -1
					}
				}
				break
			}
			if b[i] != top+2 {
				return -1
			}
			stack = stack[:len(stack)-1]
			i++
		}
	}
}

// scanJSONKey returns the index after the key and colon of an object's
// member that start at b[i] (after any whitespace), or -1.
func scanJSONKey(b []byte, i int) int {
	i = skipSpace(b, i)
	if i >= len(b) || b[i] != '"' {
		return -1
	}
	if i = scanJSONString(b, i+1); i < 0 {
		return -1
	}
	i = skipSpace(b, i)
	if i >= len(b) || b[i] != ':' {
		return -1
	}
	return i + 1
}

// scanJSONString returns the index after the JSON string whose body starts
// at b[i], or -1: any byte but a quote, a backslash and a control
// character stands for itself (invalid UTF-8 too, which encoding/json
// reads as U+FFFD), a backslash starts an escape.
func scanJSONString(b []byte, i int) int {
	for i < len(b) {
		c := b[i]
		switch {
		case c == '"':
			return i + 1
		case c == '\\':
			if i+1 >= len(b) {
				return -1
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) || !isHex4(b[i+2:i+6]) {
					return -1
				}
				i += 6
			default:
				return -1
			}
		case c < 0x20:
			return -1
		default:
			i++
		}
	}
	return -1
}

// decodeSlow is Decode's way for the frames decodeFrameJSON leaves:
// encoding/json, in two passes. The first reads only the type; the second
// the frame, each container through decodeContainer, which knows then
// whether to build it.
func decodeSlow(b []byte, f *Frame) error {
	var t struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(b, &t); err != nil {
		return err
	}
	f.Type = t.Type
	return json.Unmarshal(b, &slowFrame{Frame: f,
		Options: decodeContainer{f, containerOptions}, Filter: decodeContainer{f, containerFilter},
		IDs: decodeContainer{f, containerIDs}, Event: decodeContainer{f, containerEvent},
		Events: decodeContainer{f, containerEvents}})
}

// slowFrame is a Frame whose containers encoding/json hands to
// decodeContainer: a field at the top shadows the embedded Frame's of the
// same key. (They are not pointers: encoding/json hands null to
// UnmarshalJSON too, which a container decodes as encoding/json does.)
type slowFrame struct {
	*Frame
	Options decodeContainer `json:"options"`
	Filter  decodeContainer `json:"filter"`
	IDs     decodeContainer `json:"ids"`
	Event   decodeContainer `json:"event"`
	Events  decodeContainer `json:"events"`
}

// decodeContainer is a json.Unmarshaler that decodes the container c of
// the frame f (container.decode).
type decodeContainer struct {
	f *Frame
	c container
}

// UnmarshalJSON implements json.Unmarshaler.
func (d *decodeContainer) UnmarshalJSON(v []byte) error { return d.c.decode(d.f, v, -1) }
