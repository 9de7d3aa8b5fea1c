package protocol

import (
	"strings"
	"unicode/utf8"
)

// scanEventObject reports whether obj is what SplitEventFrame passes: one
// valid JSON object, in valid UTF-8, with no control character (C1
// included) or U+2028/U+2029 anywhere in it unescaped, and exactly one
// member at its top level whose key encoding/json would take for "id". It
// reads obj once, without allocating (a key is unescaped only when it is
// short enough to be "id"): `zbridge tail --format json` runs it on every
// event it passes through.
func scanEventObject(obj []byte) bool {
	s := eventScanner{b: obj}
	if !s.object(0) || s.i != len(obj) {
		return false
	}
	return s.ids == 1
}

// maxScanDepth bounds the nesting of arrays and objects scanEventObject
// accepts: encoding/json's bound, so that it accepts what json.Valid does.
const maxScanDepth = 10000

type eventScanner struct {
	b   []byte
	i   int
	ids int // top-level keys that decode as "id"
}

// space skips spaces. Tabs and line ends, whitespace to JSON, are
// control characters, which SplitEventFrame passes nowhere.
func (s *eventScanner) space() {
	for s.i < len(s.b) && s.b[s.i] == ' ' {
		s.i++
	}
}

// value scans the value at s.i (after space).
func (s *eventScanner) value(depth int) bool {
	if s.i >= len(s.b) {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '"':
		_, ok := s.str(false)
		return ok
	case c == '{':
		return s.object(depth + 1)
	case c == '[':
		return s.array(depth + 1)
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		return s.number()
	}
	return false
}

func (s *eventScanner) literal(lit string) bool {
	if len(s.b)-s.i < len(lit) {
		return false
	}
	for k := 0; k < len(lit); k++ {
		if s.b[s.i+k] != lit[k] {
			return false
		}
	}
	s.i += len(lit)
	return true
}

// object scans the object at s.i ('{'); at depth 0 it counts the keys
// that decode as "id".
func (s *eventScanner) object(depth int) bool {
	if depth >= maxScanDepth || s.i >= len(s.b) || s.b[s.i] != '{' {
		return false
	}
	s.i++
	s.space()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return true
	}
	for {
		if s.i >= len(s.b) || s.b[s.i] != '"' {
			return false
		}
		isID, ok := s.str(depth == 0)
		if !ok {
			return false
		}
		if isID {
			s.ids++
		}
		s.space()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return false
		}
		s.i++
		s.space()
		if !s.value(depth) {
			return false
		}
		s.space()
		if s.i >= len(s.b) {
			return false
		}
		switch s.b[s.i] {
		case ',':
			s.i++
			s.space()
		case '}':
			s.i++
			return true
		default:
			return false
		}
	}
}

func (s *eventScanner) array(depth int) bool {
	if depth >= maxScanDepth {
		return false
	}
	s.i++ // '['
	s.space()
	if s.i < len(s.b) && s.b[s.i] == ']' {
		s.i++
		return true
	}
	for {
		if !s.value(depth) {
			return false
		}
		s.space()
		if s.i >= len(s.b) {
			return false
		}
		switch s.b[s.i] {
		case ',':
			s.i++
			s.space()
		case ']':
			s.i++
			return true
		default:
			return false
		}
	}
}

// number scans a JSON number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *eventScanner) number() bool {
	b, i := s.b, s.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i++; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		}
	default:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		start := i
		for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		}
		if i == start {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		start := i
		for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		}
		if i == start {
			return false
		}
	}
	s.i = i
	return true
}

// str scans the string at s.i (a quote). With key set it also reports
// whether the string, escapes undone, equals "id" in any case, as
// encoding/json matches a key to a field.
func (s *eventScanner) str(key bool) (isID, ok bool) {
	b := s.b
	start := s.i + 1
	i := start
	escaped := false
	for {
		// Eight bytes at a time while none needs a look: no quote,
		// backslash, control character or non-ASCII byte. (appendString's
		// loop, written out again: a generic one for strings and byte
		// slices measured 10-20% slower in both.)
		for i+8 <= len(b) {
			x := uint64(b[i]) | uint64(b[i+1])<<8 | uint64(b[i+2])<<16 | uint64(b[i+3])<<24 |
				uint64(b[i+4])<<32 | uint64(b[i+5])<<40 | uint64(b[i+6])<<48 | uint64(b[i+7])<<56
			if (x|hasLess(x, 0x20)|hasZero(x^0x2222222222222222)|hasZero(x^0x5c5c5c5c5c5c5c5c))&0x8080808080808080 != 0 {
				break
			}
			i += 8
		}
		if i >= len(b) {
			return false, false
		}
		c := b[i]
		switch {
		case c == '"':
			s.i = i + 1
			if key && i-start <= 16 {
				k := b[start:i]
				if escaped {
					u, ok := unescapeShort(k)
					if !ok {
						return false, false
					}
					k = u
				}
				isID = strings.EqualFold(string(k), "id")
			}
			return isID, true
		case c == '\\':
			escaped = true
			if i+1 >= len(b) {
				return false, false
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) || !isHex4(b[i+2:i+6]) {
					return false, false
				}
				i += 6
			default:
				return false, false
			}
		case c < 0x20:
			return false, false
		case c < utf8.RuneSelf:
			i++
		default:
			r, n := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && n <= 1 || r >= 0x80 && r <= 0x9f || r == 0x2028 || r == 0x2029 {
				return false, false
			}
			i += n
		}
	}
}

func isHex4(h []byte) bool {
	for _, c := range h {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// unescapeShort undoes the escapes of a short, already scanned JSON string
// body (at most 16 bytes), as encoding/json does: a \u escape of a lone
// surrogate becomes U+FFFD, a pair one rune.
func unescapeShort(k []byte) ([]byte, bool) {
	var buf [64]byte
	out := buf[:0]
	for i := 0; i < len(k); {
		if k[i] != '\\' {
			out = append(out, k[i])
			i++
			continue
		}
		switch e := k[i+1]; e {
		case 'u':
			r := rune(hexVal(k[i+2 : i+6]))
			i += 6
			if r >= 0xd800 && r < 0xdc00 && i+6 <= len(k) && k[i] == '\\' && k[i+1] == 'u' {
				if r2 := rune(hexVal(k[i+2 : i+6])); r2 >= 0xdc00 && r2 < 0xe000 {
					r = (r-0xd800)<<10 + (r2 - 0xdc00) + 0x10000
					i += 6
				} else {
					r = utf8.RuneError
				}
			} else if r >= 0xd800 && r < 0xe000 {
				r = utf8.RuneError
			}
			out = utf8.AppendRune(out, r)
		case 'b':
			out, i = append(out, '\b'), i+2
		case 'f':
			out, i = append(out, '\f'), i+2
		case 'n':
			out, i = append(out, '\n'), i+2
		case 'r':
			out, i = append(out, '\r'), i+2
		case 't':
			out, i = append(out, '\t'), i+2
		default: // " \ /
			out, i = append(out, e), i+2
		}
	}
	return out, true
}

func hexVal(h []byte) uint32 {
	var v uint32
	for _, c := range h {
		v <<= 4
		switch {
		case c >= '0' && c <= '9':
			v |= uint32(c - '0')
		case c >= 'a' && c <= 'f':
			v |= uint32(c - 'a' + 10)
		default:
			v |= uint32(c - 'A' + 10)
		}
	}
	return v
}
