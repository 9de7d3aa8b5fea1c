package protocol

import (
	"math/bits"
	"time"
	"unicode/utf8"
)

// AppendEventJSON appends e as a JSON object to b. It writes the same object
// encoding/json writes for an Event (bar HTML escaping, which it does not do,
// and C1 controls, which it escapes; see appendString) without reflection or
// allocation: events are the region's hot path.
func AppendEventJSON(b []byte, e *Event) []byte {
	b = append(b, `{"id":"`...)
	b = e.ID.Append(b)
	return AppendEventJSONAfterID(b, e)
}

// AppendEventJSONAfterID appends the part of e's JSON object after its ID
// (from the quote that closes the ID): what a store encodes once for all
// the subscribers of an event (AppendPreparedEventFrame) before it has
// given the event its ID.
func AppendEventJSONAfterID(b []byte, e *Event) []byte {
	b = append(b, `","received":"`...)
	b = appendTime(b, e.Received)
	b = append(b, '"')
	if e.OriginTime != nil {
		b = append(b, `,"origin_time":"`...)
		b = appendTime(b, *e.OriginTime)
		b = append(b, '"')
	}
	b = append(b, `,"time":"`...)
	b = appendTime(b, e.Time)
	b = append(b, '"')
	b = appendOptField(b, `,"time_filled":`, e.TimeFilled)
	b = append(b, `,"origin":{`...)
	first := len(b)
	b = appendOptField(b, `,"system":`, e.Origin.System)
	b = appendOptField(b, `,"host":`, e.Origin.Host)
	b = appendOptField(b, `,"node":`, e.Origin.Node)
	b = appendOptField(b, `,"addr":`, e.Origin.Addr)
	if len(b) > first { // drop the comma before the first origin field
		copy(b[first:], b[first+1:])
		b = b[:len(b)-1]
	}
	b = append(b, `},"source":`...)
	b = appendString(b, string(e.Source))
	b = appendOptField(b, `,"msgid":`, e.MsgID)
	b = appendOptField(b, `,"app":`, e.App)
	b = appendOptField(b, `,"procid":`, e.ProcID)
	if len(e.SD) > 0 {
		b = append(b, `,"sd":`...)
		b = appendSDJSON(b, e.SD)
	}
	b = append(b, `,"facility":"`...)
	b = append(b, e.Facility.String()...)
	b = append(b, `","severity":"`...)
	b = append(b, e.Severity.String()...)
	b = append(b, '"')
	b = appendOptField(b, `,"type":`, e.Type)
	b = appendOptField(b, `,"user":`, e.User)
	b = append(b, `,"text":`...)
	b = appendString(b, e.Text)
	b = appendOptField(b, `,"raw":`, e.Raw)
	if e.Parsed {
		b = append(b, `,"parsed":true`...)
	} else {
		b = append(b, `,"parsed":false`...)
	}
	b = appendOptField(b, `,"parse_error":`, e.ParseError)
	return append(b, '}')
}

// appendTime appends t as time.RFC3339Nano does: a fast path for UTC
// times of years 0-9999, the library for the rest.
func appendTime(b []byte, t time.Time) []byte {
	if t.Location() != time.UTC {
		return t.AppendFormat(b, time.RFC3339Nano)
	}
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(b, time.RFC3339Nano)
	}
	hour, min, sec := t.Clock()
	b = append(b, byte('0'+year/1000), byte('0'+year/100%10), byte('0'+year/10%10), byte('0'+year%10), '-',
		byte('0'+month/10), byte('0'+month%10), '-', byte('0'+day/10), byte('0'+day%10), 'T',
		byte('0'+hour/10), byte('0'+hour%10), ':', byte('0'+min/10), byte('0'+min%10), ':',
		byte('0'+sec/10), byte('0'+sec%10))
	if ns := t.Nanosecond(); ns != 0 {
		var frac [10]byte
		frac[0] = '.'
		for i := 9; i >= 1; i-- {
			frac[i] = byte('0' + ns%10)
			ns /= 10
		}
		n := 10
		for frac[n-1] == '0' {
			n--
		}
		b = append(b, frac[:n]...)
	}
	return append(b, 'Z')
}

func appendOptField(b []byte, key, v string) []byte {
	if v == "" {
		return b
	}
	b = append(b, key...)
	return appendString(b, v)
}

// hasZero has the high bit of each byte of x that is zero set (and maybe
// others above a zero byte: only "any" is exact).
func hasZero(x uint64) uint64 { return (x - 0x0101010101010101) & ^x & 0x8080808080808080 }

// hasLess is non-zero in the high bits when some byte of x is below n (n <= 128).
func hasLess(x uint64, n uint64) uint64 {
	return (x - 0x0101010101010101*n) & ^x & 0x8080808080808080
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD, as
// encoding/json does; U+2028 and U+2029 are escaped so the output is safe to
// embed in JavaScript, also as encoding/json does. Unlike encoding/json it
// also escapes the C1 controls (U+0080-U+009F: a terminal that shows the
// JSON may take U+009B for CSI and U+0085 for a line end), so that the
// output holds no control character but DEL; the string is the same.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		// Skip eight bytes at a time while none needs escaping (see
		// plainBytes); then on to the first that may.
		for i+8 <= len(s) {
			x := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
				uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
			if m := plainBytes(x) & 0x8080808080808080; m != 0 {
				i += bits.TrailingZeros64(m) / 8 // exact for the lowest byte
				break
			}
			i += 8
		}
		if i >= len(s) {
			break
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' || r <= 0x9f {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', hexDigits[r>>12], hexDigits[r>>8&0xF], hexDigits[r>>4&0xF], hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
