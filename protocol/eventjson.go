package protocol

import (
	"math/bits"
	"time"
	"unicode/utf8"
	"unsafe"
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
	// Most of an event's strings (text, host, app, ...) are parts of its
	// raw message (the syslog parser cuts them out of one copy of it). Raw
	// is scanned once; when none of its bytes needs escaping, neither does
	// any part of it, which is then copied without a scan of its own.
	return appendEventJSONAfterID(b, e, rawText{s: e.Raw, plain: plainString(e.Raw)})
}

// appendEventJSONAfterID is AppendEventJSONAfterID with e's raw message
// given; with the zero rawText, every string is scanned.
func appendEventJSONAfterID(b []byte, e *Event, raw rawText) []byte {
	b = append(b, `","received":"`...)
	recv := len(b)
	b = appendTime(b, e.Received)
	recvEnd := len(b)
	b = append(b, '"')
	if e.OriginTime != nil {
		b = append(b, `,"origin_time":"`...)
		b = appendTime(b, *e.OriginTime)
		b = append(b, '"')
	}
	b = append(b, `,"time":"`...)
	if e.Time == e.Received {
		// When the message gives no time of its own: the same text again.
		b = append(b, b[recv:recvEnd]...)
	} else {
		b = appendTime(b, e.Time)
	}
	b = append(b, '"')
	b = raw.appendOptField(b, `,"time_filled":`, e.TimeFilled)
	b = append(b, `,"origin":{`...)
	first := len(b)
	b = raw.appendOptField(b, `,"system":`, e.Origin.System)
	b = raw.appendOptField(b, `,"host":`, e.Origin.Host)
	b = raw.appendOptField(b, `,"node":`, e.Origin.Node)
	b = raw.appendOptField(b, `,"addr":`, e.Origin.Addr)
	if len(b) > first { // drop the comma before the first origin field
		copy(b[first:], b[first+1:])
		b = b[:len(b)-1]
	}
	b = append(b, `},"source":`...)
	b = appendString(b, string(e.Source))
	b = raw.appendOptField(b, `,"msgid":`, e.MsgID)
	b = raw.appendOptField(b, `,"app":`, e.App)
	b = raw.appendOptField(b, `,"procid":`, e.ProcID)
	if len(e.SD) > 0 {
		b = append(b, `,"sd":`...)
		b = appendSDJSON(b, e.SD)
	}
	b = append(b, `,"facility":"`...)
	b = append(b, e.Facility.String()...)
	b = append(b, `","severity":"`...)
	b = append(b, e.Severity.String()...)
	b = append(b, '"')
	b = raw.appendOptField(b, `,"type":`, e.Type)
	b = raw.appendOptField(b, `,"user":`, e.User)
	b = append(b, `,"text":`...)
	b = raw.appendString(b, e.Text)
	b = raw.appendOptField(b, `,"raw":`, e.Raw)
	if e.Parsed {
		b = append(b, `,"parsed":true`...)
	} else {
		b = append(b, `,"parsed":false`...)
	}
	b = raw.appendOptField(b, `,"parse_error":`, e.ParseError)
	return append(b, '}')
}

// rawText is an event's raw message, and whether it holds no byte that a
// JSON string must escape (plainString).
type rawText struct {
	s     string
	plain bool
}

// appendString appends s as appendString does; when s is a part of a
// plain raw message in memory (not only equal to one), without looking at
// its bytes. Only addresses are compared: nothing is read through them.
func (r rawText) appendString(b []byte, s string) []byte {
	if r.plain && len(s) > 0 {
		p, q := uintptr(unsafe.Pointer(unsafe.StringData(r.s))), uintptr(unsafe.Pointer(unsafe.StringData(s)))
		if len(s) <= len(r.s) && q >= p && q-p <= uintptr(len(r.s)-len(s)) {
			b = append(b, '"')
			b = append(b, s...)
			return append(b, '"')
		}
	}
	return appendString(b, s)
}

func (r rawText) appendOptField(b []byte, key, v string) []byte {
	if v == "" {
		return b
	}
	b = append(b, key...)
	return r.appendString(b, v)
}

// load64 reads the eight bytes of w as a little-endian word: one load, and
// (w being a slice of length 8) no bounds check of its own.
func load64(w string) uint64 {
	_ = w[7]
	return uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
		uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56
}

// plainString reports whether s holds only printable ASCII other than a
// quote or a backslash (DEL included, as appendString leaves it): what a
// JSON string holds as it is.
func plainString(s string) bool {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		if plainBytes(load64(s[i:i+8]))&0x8080808080808080 != 0 {
			return false
		}
	}
	for ; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// appendTime appends t as time.RFC3339Nano does: a fast path for years
// 1-9999 in the time's own zone (most are UTC, or the fixed offset a
// syslog timestamp gave), the library for the rest.
func appendTime(b []byte, t time.Time) []byte {
	const (
		unixToInternal = (1969*365 + 1969/4 - 1969/100 + 1969/400) * 86400 // 0001-01-01 to 1970-01-01
		internalTo1e4  = (9999*365 + 9999/4 - 9999/100 + 9999/400) * 86400 // 0001-01-01 to 10000-01-01
	)
	offset := 0
	if t.Location() != time.UTC {
		if _, offset = t.Zone(); offset <= -86400 || offset >= 86400 {
			return t.AppendFormat(b, time.RFC3339Nano)
		}
	}
	// Seconds since 0001-01-01T00:00:00 in t's zone, then the civil date
	// of the day count (counted from 0000-03-01, so that a leap day ends
	// its year).
	secs := t.Unix() + int64(offset) + unixToInternal
	if secs < 0 || secs >= internalTo1e4 {
		return t.AppendFormat(b, time.RFC3339Nano)
	}
	days, sod := uint64(secs/86400), uint64(secs%86400)
	days += 306 // 0000-03-01 to 0001-01-01
	era := days / 146097
	doe := days - era*146097                               // day of the 400-year era
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365 // year of the era
	doy := doe - (365*yoe + yoe/4 - yoe/100)               // day of the year, from March
	mp := (5*doy + 2) / 153                                // month, March = 0
	day := doy - (153*mp+2)/5 + 1
	month := mp + 3
	year := yoe + era*400
	if month > 12 {
		month -= 12
		year++
	}
	hour, min, sec := sod/3600, sod/60%60, sod%60
	b = append(b, byte('0'+year/1000), byte('0'+year/100%10), byte('0'+year/10%10), byte('0'+year%10), '-',
		byte('0'+month/10), byte('0'+month%10), '-', byte('0'+day/10), byte('0'+day%10), 'T',
		byte('0'+hour/10), byte('0'+hour%10), ':', byte('0'+min/10), byte('0'+min%10), ':',
		byte('0'+sec/10), byte('0'+sec%10))
	if ns := uint32(t.Nanosecond()); ns != 0 {
		// Nine digits, two at a time, without the trailing zeros.
		var frac [10]byte
		frac[0], frac[9] = '.', byte('0'+ns%10)
		ns /= 10
		for i := 7; i >= 1; i -= 2 {
			d := ns % 100
			frac[i], frac[i+1] = digitPairs[2*d], digitPairs[2*d+1]
			ns /= 100
		}
		n := 10
		for frac[n-1] == '0' {
			n--
		}
		b = append(b, frac[:n]...)
	}
	if offset == 0 {
		return append(b, 'Z')
	}
	zone, sign := offset/60, byte('+') // minutes, truncated as the library does
	if zone < 0 {
		zone, sign = -zone, '-'
	}
	return append(b, sign, byte('0'+zone/60/10), byte('0'+zone/60%10), ':', byte('0'+zone%60/10), byte('0'+zone%60%10))
}

// digitPairs is 00, 01, ... 99.
const digitPairs = "00010203040506070809" + "10111213141516171819" + "20212223242526272829" +
	"30313233343536373839" + "40414243444546474849" + "50515253545556575859" +
	"60616263646566676869" + "70717273747576777879" + "80818283848586878889" + "90919293949596979899"

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
			if m := plainBytes(load64(s[i:i+8])) & 0x8080808080808080; m != 0 {
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
