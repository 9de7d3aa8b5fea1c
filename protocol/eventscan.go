package protocol

import (
	"encoding/binary"
	"math/bits"
	"strings"
	"unicode/utf8"
)

// scanEventObject reports whether obj is what SplitEventFrame passes: one
// valid JSON object, in valid UTF-8, with no control character (C1
// included) or U+2028/U+2029 anywhere in it unescaped, and exactly one
// member at its top level whose key encoding/json would take for "id". It
// reads obj once, without allocating (unless its nesting is deeper than
// 64; a key is unescaped only when it is short enough to be "id"):
// `zbridge tail --format json` runs it on every event it passes through.
//
// It is one loop over a state and a stack of the open arrays and objects,
// with the position in a local variable, rather than a recursive descent:
// that measured about twice as fast on an event frame.
func scanEventObject(b []byte) bool {
	if len(b) == 0 || b[0] != '{' {
		return false
	}
	var stackBuf [64]byte
	stack := append(stackBuf[:0], '{') // the open containers, '{' or '['
	ids := 0                           // top-level keys that decode as "id"
	i := 1
	state := scanObjectStart
	for {
		// Spaces, the only whitespace allowed: tabs and line ends, whitespace
		// to JSON, are control characters, which SplitEventFrame passes nowhere.
		for i < len(b) && b[i] == ' ' {
			i++
		}
		if i >= len(b) {
			return false
		}
		switch state {
		case scanObjectStart: // after '{': a key or '}'
			if b[i] == '}' {
				i++
				stack = stack[:len(stack)-1]
				state = scanAfterValue
				continue
			}
			fallthrough
		case scanKey:
			if b[i] != '"' {
				return false
			}
			end, escaped, ok := scanString(b, i+1)
			if !ok {
				return false
			}
			if len(stack) == 1 && isIDKey(b[i+1:end], escaped) {
				ids++
			}
			i = end + 1
			for i < len(b) && b[i] == ' ' {
				i++
			}
			if i >= len(b) || b[i] != ':' {
				return false
			}
			i++
			state = scanValue
		case scanArrayStart: // after '[': a value or ']'
			if b[i] == ']' {
				i++
				stack = stack[:len(stack)-1]
				state = scanAfterValue
				continue
			}
			state = scanValue
		case scanValue:
			switch c := b[i]; {
			case c == '"':
				end, _, ok := scanString(b, i+1)
				if !ok {
					return false
				}
				i = end + 1
			case c == '{' || c == '[':
				if len(stack) >= maxScanDepth {
					return false
				}
				stack = append(stack, c)
				i++
				if c == '{' {
					state = scanObjectStart
				} else {
					state = scanArrayStart
				}
				continue
			case c == 't':
				if i = scanLiteral(b, i, "true"); i < 0 {
					return false
				}
			case c == 'f':
				if i = scanLiteral(b, i, "false"); i < 0 {
					return false
				}
			case c == 'n':
				if i = scanLiteral(b, i, "null"); i < 0 {
					return false
				}
			case c == '-' || c >= '0' && c <= '9':
				if i = scanNumber(b, i); i < 0 {
					return false
				}
			default:
				return false
			}
			state = scanAfterValue
		case scanAfterValue: // ',' or the end of the open container
			top := stack[len(stack)-1]
			switch c := b[i]; {
			case c == ',':
				i++
				if top == '{' {
					state = scanKey
				} else {
					state = scanValue
				}
			case c == '}' && top == '{' || c == ']' && top == '[':
				i++
				stack = stack[:len(stack)-1]
				if len(stack) == 0 {
					return i == len(b) && ids == 1
				}
			default:
				return false
			}
		}
	}
}

// The states of scanEventObject: what it expects next.
const (
	scanObjectStart = iota // a key or '}'
	scanKey                // a key (after ',')
	scanArrayStart         // a value or ']'
	scanValue              // a value (after ':' or ',')
	scanAfterValue         // ',' or the end of the open container
)

// maxScanDepth bounds the nesting of arrays and objects scanEventObject
// accepts: encoding/json's bound, so that it accepts what json.Valid does.
const maxScanDepth = 10000

// isIDKey reports whether the scanned key body k (escaped: it holds a
// backslash) is one encoding/json takes for "id": equal to it in any
// case, escapes undone.
func isIDKey(k []byte, escaped bool) bool {
	if !escaped {
		// Only "i" and "I" fold to "i", only "d" and "D" to "d": a key
		// that equals "id" in any case is two ASCII bytes.
		return len(k) == 2 && k[0]|0x20 == 'i' && k[1]|0x20 == 'd'
	}
	if len(k) > 16 {
		return false
	}
	u, ok := unescapeShort(k)
	return ok && strings.EqualFold(string(u), "id")
}

// scanLiteral returns the index after lit at b[i:], or -1.
func scanLiteral(b []byte, i int, lit string) int {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return -1
	}
	return i + len(lit)
}

// scanNumber returns the index after the JSON number at b[i:], or -1:
// -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func scanNumber(b []byte, i int) int {
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
		return -1
	}
	if i < len(b) && b[i] == '.' {
		i++
		start := i
		for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		}
		if i == start {
			return -1
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
			return -1
		}
	}
	return i
}

// plainBytes has the high bit set of the lowest byte of x (little-endian)
// that a JSON string body cannot hold as it is (a quote, backslash or
// control character) or that is not ASCII, and of no byte below it; bytes
// above it may be set too, so the lowest set bit and whether any is set are
// exact. None is set when x has no such byte.
//
// Each term is negative (its high bit set) only in such a byte or above
// one: in a byte of printable ASCII other than '"' and '\\', c-0x20,
// (c^'"')-1 and (c^'\\')-1 are all in 0..0x7e, so none of the subtractions
// borrows into the byte above; the first such byte is negative in one of
// them (c < 0x20, c == '"', c == '\\') or has its own high bit set (c >=
// 0x80). Half the operations of testing each condition exactly
// (hasLess, hasZero): this loop is most of what `zbridge tail` spends on
// an event.
func plainBytes(x uint64) uint64 {
	return x | (x - 0x2020202020202020) |
		((x ^ 0x2222222222222222) - 0x0101010101010101) |
		((x ^ 0x5c5c5c5c5c5c5c5c) - 0x0101010101010101)
}

// scanString scans the body of the JSON string that starts at b[i] (after
// its quote): end is the index of its closing quote; escaped says it holds
// an escape.
func scanString(b []byte, i int) (end int, escaped, ok bool) {
	for {
		// Eight bytes at a time while none needs a look (see plainBytes);
		// then on to the first that does, which the switch below takes.
		for i+8 <= len(b) {
			if m := plainBytes(binary.LittleEndian.Uint64(b[i:])) & 0x8080808080808080; m != 0 {
				i += bits.TrailingZeros64(m) / 8 // exact for the lowest byte
				break
			}
			i += 8
		}
		if i >= len(b) {
			return 0, false, false
		}
		c := b[i]
		switch {
		case c == '"':
			return i, escaped, true
		case c == '\\':
			escaped = true
			if i+1 >= len(b) {
				return 0, false, false
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) || !isHex4(b[i+2:i+6]) {
					return 0, false, false
				}
				i += 6
			default:
				return 0, false, false
			}
		case c < 0x20:
			return 0, false, false
		case c < utf8.RuneSelf:
			i++
		default:
			r, n := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && n <= 1 || r >= 0x80 && r <= 0x9f || r == 0x2028 || r == 0x2029 {
				return 0, false, false
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
