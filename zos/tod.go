package zos

// Time values
//
// This file turns the time stamps the mainframe side writes into time.Time
// and back, so that the region can normalise an event's time field:
//
//   - STCK: the 8-byte TOD clock value, TODTime and TimeTOD. Bit 51 is one
//     microsecond (4096 units a microsecond) and 0 is 1900-01-01 00:00:00;
//     the value wraps at 2042-09-17T23:53:47.370496Z.
//   - STCKE: the 16-byte extended TOD value, ETOD, ETODTime and TimeETOD.
//     Its epoch index byte carries it past 2042.
//   - Windows FILETIME: 100-ns intervals since 1601-01-01 UTC, FileTimeTime
//     and TimeFileTime.
//   - Unix seconds, milliseconds, microseconds and nanoseconds: ParseUnix.
//   - z/OS Julian dates, yyddd and yyyyddd: ParseJulian.
//
// ParseTimeValue reads any of them from text by a TimeKind, the name a
// configuration gives.
//
// # Leap seconds
//
// A TOD clock set to count leap seconds (an STP timing network given a
// leap-second offset) runs ahead of UTC by them: UTC = TOD − LSO, the offset
// z/OS keeps in CVTLSO in TOD units (27 seconds since 2017-01-01). On a
// clock that does not, LSO is 0. The conversions take it as a TODDelta:
// 27*TODSecond, or CVTLSO as read. It must be the offset in force when the
// value was stored: nothing here keeps a table of past leap seconds, as
// z/OS's STCKCONV keeps none. Local time is UTC plus CVTLDTO
// (TODDelta.Zone).
//
// # Below the nanosecond
//
// One TOD unit is 1/4096 µs, about 0.244 ns. TODTime and ETODTime truncate
// to the nanosecond (towards 1900, as z/OS's own conversions truncate);
// TimeTOD and TimeETOD return the earliest value that converts back to the
// same time, so TODTime(TimeTOD(t)) == t for every t in range, and
// TimeTOD(TODTime(x)) is x less at most 4 units.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strings"
	"time"
)

// Errors of the time functions. (They belong in an errors.go when this
// package grows one.)
var (
	// ErrTimeRange is wrapped by TimeTOD, TimeETOD and TimeFileTime when a
	// time does not fit the format.
	ErrTimeRange = errors.New("zos: time out of the format's range")

	// ErrTimeSyntax is wrapped by every *TimeSyntaxError.
	ErrTimeSyntax = errors.New("zos: malformed time value")
)

// A TimeSyntaxError reports text that is not a time value of its kind, as
//
//	zos: malformed time value: stck "D1E0D667 B40000Z0": col 16: "Z" is not a hex digit
//
// It wraps ErrTimeSyntax.
type TimeSyntaxError struct {
	Kind   TimeKind // the kind being parsed
	Text   string   // the text, cut to its first 40 bytes
	Col    int      // 1-based byte column of the fault; 0 when the text as a whole is wrong
	Reason string
}

func (e *TimeSyntaxError) Error() string {
	if e.Col == 0 {
		return fmt.Sprintf("%v: %s %q: %s", ErrTimeSyntax, e.Kind, e.Text, e.Reason)
	}
	return fmt.Sprintf("%v: %s %q: col %d: %s", ErrTimeSyntax, e.Kind, e.Text, e.Col, e.Reason)
}

func (e *TimeSyntaxError) Unwrap() error { return ErrTimeSyntax }

func timeSyntaxError(kind TimeKind, s string, col int, reason string) error {
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return &TimeSyntaxError{Kind: kind, Text: s, Col: col, Reason: reason}
}

// A TODDelta is a signed span of TOD clock units, 1/4096 µs each: the form
// of z/OS's leap-second offset (CVTLSO) and local date and time offset
// (CVTLDTO).
type TODDelta int64

// TOD clock spans and well-known values.
const (
	TODMicrosecond TODDelta = 4096
	TODSecond               = 1_000_000 * TODMicrosecond

	// TODUnixEpoch is the TOD clock value of 1970-01-01T00:00:00Z on a
	// clock with no leap-second offset.
	TODUnixEpoch uint64 = 0x7D91048BCA000000

	// FileTimeUnixEpoch is the FILETIME of 1970-01-01T00:00:00Z.
	FileTimeUnixEpoch uint64 = 116444736000000000
)

const (
	todSec          = int64(TODSecond)
	unix1900        = 2208988800  // seconds from 1900-01-01 to 1970-01-01
	fileTimeUnixSec = 11644473600 // seconds from 1601-01-01 to 1970-01-01
	maxSec          = 1 << 41     // beyond every time the formats here hold, with any offset
)

// Duration returns d as a time.Duration, truncated towards zero to the
// nanosecond. It never overflows: a TODDelta spans at most ±71 years.
func (d TODDelta) Duration() time.Duration {
	return time.Duration(d/512*125 + d%512*125/512)
}

// Zone returns a fixed time zone d east of UTC, parts of a second dropped,
// for d read as CVTLDTO: TODTime(tod, lso).In(ldto.Zone()) is the local
// time z/OS gives for tod.
func (d TODDelta) Zone() *time.Location {
	return time.FixedZone("", int(int64(d)/todSec))
}

// splitDelta returns d as whole seconds and a remainder in [0, TODSecond).
func splitDelta(d TODDelta) (sec, rem int64) {
	sec, rem = int64(d)/todSec, int64(d)%todSec
	if rem < 0 {
		rem += todSec
		sec--
	}
	return sec, rem
}

// todTime converts a 72-bit TOD value (hi: the epoch index, lo: clock bits
// 0-63) with ext (clock bits 64-103), less lso, to a time, truncated to the
// nanosecond.
func todTime(hi, lo, ext uint64, lso TODDelta) time.Time {
	q, r := bits.Div64(hi, lo, uint64(todSec)) // hi < 256 < todSec: no panic
	ls, lr := splitDelta(lso)
	sec, rem := int64(q)-ls, int64(r)-lr
	if rem < 0 {
		rem += todSec
		sec--
	}
	// ns = floor((rem·2^40 + ext) · 1000/4096 / 2^40), without overflow.
	a := uint64(rem) * 125
	ns := a>>9 + ((a&511)<<40+ext*125)>>49
	return time.Unix(sec-unix1900, int64(ns)).UTC()
}

// todUnits returns the earliest 72-bit TOD value (hi holds bits above 64)
// that todTime maps to t given lso, and false if t is before 1900 (after the
// offset) or needs more than 72 bits.
func todUnits(t time.Time, lso TODDelta) (hi, lo uint64, ok bool) {
	sec := t.Unix()
	if sec > maxSec || sec < -maxSec {
		return 0, 0, false
	}
	ls, lr := splitDelta(lso)
	sec += unix1900 + ls
	rem := (int64(t.Nanosecond())*512+124)/125 + lr // ceil(ns·4096/1000)
	if rem >= todSec {
		rem -= todSec
		sec++
	}
	if sec < 0 {
		return 0, 0, false
	}
	hi, lo = bits.Mul64(uint64(sec), uint64(todSec))
	var carry uint64
	lo, carry = bits.Add64(lo, uint64(rem), 0)
	hi += carry
	return hi, lo, hi < 256
}

// TODTime returns the time of the 8-byte TOD value tod (as STCK stores it)
// less the leap-second offset lso, in UTC, truncated to the nanosecond. A
// value below lso gives a time before 1900.
func TODTime(tod uint64, lso TODDelta) time.Time {
	return todTime(0, tod, 0, lso)
}

// TimeTOD returns the earliest 8-byte TOD value that TODTime maps to t with
// the same lso. It fails, wrapping ErrTimeRange, unless t+lso is at or after
// 1900-01-01T00:00:00Z and before 2042-09-17T23:53:47.370496Z, where STCK
// wraps.
func TimeTOD(t time.Time, lso TODDelta) (uint64, error) {
	hi, lo, ok := todUnits(t, lso)
	if !ok || hi != 0 {
		return 0, fmt.Errorf("%w: %s does not fit an 8-byte TOD value (1900-01-01 to 2042-09-17T23:53:47.370496Z)",
			ErrTimeRange, t.Format(time.RFC3339Nano))
	}
	return lo, nil
}

// FormatTOD returns tod as STCK values appear in dumps and SMF: 16
// upper-case hex digits.
func FormatTOD(tod uint64) string {
	return fmt.Sprintf("%016X", tod)
}

// ParseTOD reads an 8-byte TOD value as 16 hex digits, in either case,
// optionally grouped by spaces, in X'…' or after 0x: "D1E0D667B4000000",
// "D1E0D667 B4000000", "X'D1E0D667B4000000'", "0xd1e0d667b4000000".
// Blanks around it are ignored. Errors are *TimeSyntaxError.
func ParseTOD(s string) (uint64, error) {
	var b [8]byte
	if err := parseTODHex(KindSTCK, s, b[:]); err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint64(b[:]), nil
}

// An ETOD is the 16 bytes STORE CLOCK EXTENDED (STCKE) stores: byte 0 the
// TOD epoch index, bytes 1-13 the 104-bit TOD clock (bytes 1-8 the value
// STCK stores), bytes 14-15 the TOD programmable field.
type ETOD [16]byte

// EpochIndex returns the TOD epoch index: 0 until STCK wraps at
// 2042-09-17T23:53:47.370496Z, then 1, and so on.
func (e ETOD) EpochIndex() byte { return e[0] }

// TOD returns clock bits 0-63, the value STCK would have stored.
func (e ETOD) TOD() uint64 { return binary.BigEndian.Uint64(e[1:9]) }

// ProgrammableField returns the TOD programmable field, bytes 14-15.
func (e ETOD) ProgrammableField() uint16 { return binary.BigEndian.Uint16(e[14:]) }

// String returns e as 32 upper-case hex digits.
func (e ETOD) String() string { return fmt.Sprintf("%X", e[:]) }

// ETODTime returns the time of e less the leap-second offset lso, in UTC,
// truncated to the nanosecond. The programmable field plays no part.
func ETODTime(e ETOD, lso TODDelta) time.Time {
	ext := uint64(e[9])<<32 | uint64(binary.BigEndian.Uint32(e[10:14]))
	return todTime(uint64(e[0]), e.TOD(), ext, lso)
}

// TimeETOD returns the earliest ETOD that ETODTime maps to t with the same
// lso, its clock bits past 63 and its programmable field zero. It fails,
// wrapping ErrTimeRange, unless t+lso is at or after 1900-01-01T00:00:00Z
// and before 38434-08-17T21:30:06.846976Z, where epoch index 255 ends.
func TimeETOD(t time.Time, lso TODDelta) (ETOD, error) {
	var e ETOD
	hi, lo, ok := todUnits(t, lso)
	if !ok {
		return e, fmt.Errorf("%w: %s does not fit a 16-byte extended TOD value (1900 to epoch index 255)",
			ErrTimeRange, t.Format(time.RFC3339Nano))
	}
	e[0] = byte(hi)
	binary.BigEndian.PutUint64(e[1:9], lo)
	return e, nil
}

// ParseETOD reads an ETOD as 32 hex digits, written as ParseTOD takes 16.
// Errors are *TimeSyntaxError.
func ParseETOD(s string) (ETOD, error) {
	var e ETOD
	err := parseTODHex(KindSTCKE, s, e[:])
	return e, err
}

// parseTODHex reads 2·len(dst) hex digits into dst, for ParseTOD and
// ParseETOD.
func parseTODHex(kind TimeKind, s string, dst []byte) error {
	in, off := trimTimeBlanks(s)
	if todHexPrefix(in) > 0 {
		if in[1] == '\'' {
			if len(in) < 3 || in[len(in)-1] != '\'' {
				return timeSyntaxError(kind, s, off+1, "X' without its closing quote")
			}
			in = in[:len(in)-1]
		}
		in, off = in[2:], off+2
	}
	want, n := 2*len(dst), 0
	for i := 0; i < len(in); i++ {
		c := in[i]
		if c == ' ' {
			continue
		}
		v, ok := hexValue(c)
		if !ok {
			return timeSyntaxError(kind, s, off+i+1, fmt.Sprintf("%q is not a hex digit", in[i:i+1]))
		}
		if n == want {
			return timeSyntaxError(kind, s, off+i+1, fmt.Sprintf("more than %d hex digits", want))
		}
		if n%2 == 0 {
			dst[n/2] = v << 4
		} else {
			dst[n/2] |= v
		}
		n++
	}
	if n < want {
		return timeSyntaxError(kind, s, 0, fmt.Sprintf("%d hex digits, want %d", n, want))
	}
	return nil
}

func hexValue(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func isDecDigit(c byte) bool { return '0' <= c && c <= '9' }

// trimTimeBlanks returns s without the spaces and tabs around it, and the
// offset of what is left in s.
func trimTimeBlanks(s string) (string, int) {
	t := strings.TrimLeft(s, " \t")
	off := len(s) - len(t)
	return strings.TrimRight(t, " \t"), off
}

// FileTimeTime returns the time of the Windows FILETIME ft, 100-ns intervals
// since 1601-01-01T00:00:00Z, in UTC. Every uint64 is taken, although
// Windows rejects values from 0x8000000000000000 up.
func FileTimeTime(ft uint64) time.Time {
	return time.Unix(int64(ft/1e7)-fileTimeUnixSec, int64(ft%1e7)*100).UTC()
}

// TimeFileTime returns the FILETIME of t, truncated to 100 ns (towards
// 1601), so that FileTimeTime(TimeFileTime(t)) is t less under 100 ns. It
// fails, wrapping ErrTimeRange, before 1601 and past the uint64 range (year
// 60056).
func TimeFileTime(t time.Time) (uint64, error) {
	sec := t.Unix()
	if sec >= -fileTimeUnixSec && sec <= maxSec {
		hi, lo := bits.Mul64(uint64(sec+fileTimeUnixSec), 1e7)
		lo, carry := bits.Add64(lo, uint64(t.Nanosecond()/100), 0)
		if hi == 0 && carry == 0 {
			return lo, nil
		}
	}
	return 0, fmt.Errorf("%w: %s does not fit a FILETIME (1601 to 60056)", ErrTimeRange, t.Format(time.RFC3339Nano))
}

// ParseFileTime reads a FILETIME as decimal digits ("116444736000000000"), or
// as 1 to 16 hex digits after 0x ("0x019DB1DED53E8000"). Bare hex digits are
// not taken, as they may be read as decimal. Blanks around it are ignored.
// Errors are *TimeSyntaxError.
func ParseFileTime(s string) (uint64, error) {
	in, off := trimTimeBlanks(s)
	base, digits := uint64(10), "decimal"
	if len(in) >= 2 && in[0] == '0' && (in[1] == 'x' || in[1] == 'X') {
		in, off, base, digits = in[2:], off+2, 16, "hex"
	}
	if in == "" {
		return 0, timeSyntaxError(KindFileTime, s, 0, "no digits")
	}
	var v uint64
	for i := 0; i < len(in); i++ {
		d, ok := hexValue(in[i])
		if !ok || d >= byte(base) {
			return 0, timeSyntaxError(KindFileTime, s, off+i+1, fmt.Sprintf("%q is not a %s digit", in[i:i+1], digits))
		}
		if v > (math.MaxUint64-uint64(d))/base {
			return 0, timeSyntaxError(KindFileTime, s, off+i+1, "value beyond 64 bits")
		}
		v = v*base + uint64(d)
	}
	return v, nil
}

// ParseUnix reads a Unix time, counted from 1970-01-01T00:00:00Z in unit
// (time.Second, time.Millisecond, time.Microsecond or time.Nanosecond), as
// decimal digits with an optional sign and fractional part: "1700000000",
// "1700000000.123456", "-1.5". Digits past the nanosecond are dropped; an
// exponent is not taken. Blanks around it are ignored. The time is in UTC.
//
// Unit 0 guesses the unit by the magnitude of the integer part:
//
//	below 1e11  seconds       (dates to the year 5138)
//	below 1e14  milliseconds  (1973-03-03 to 5138)
//	below 1e17  microseconds  (1973-03-03 to 5138)
//	from 1e17   nanoseconds   (1973-03-03 to 2262)
//
// so a millisecond, microsecond or nanosecond time before 1973-03-03 is
// misread; name the unit for those. Syntax errors are *TimeSyntaxError.
func ParseUnix(s string, unit time.Duration) (time.Time, error) {
	kind, ok := unixKind(unit)
	if !ok {
		return time.Time{}, fmt.Errorf("zos: Unix time unit %v is not s, ms, µs, ns or 0 to guess", unit)
	}
	in, off := trimTimeBlanks(s)
	i, neg := 0, false
	if i < len(in) && (in[i] == '+' || in[i] == '-') {
		neg = in[i] == '-'
		i++
	}
	var whole uint64
	start := i
	for ; i < len(in) && isDecDigit(in[i]); i++ {
		d := uint64(in[i] - '0')
		if whole > (math.MaxInt64-d)/10 {
			return time.Time{}, timeSyntaxError(kind, s, off+start+1, "value out of range")
		}
		whole = whole*10 + d
	}
	if i == start {
		return time.Time{}, timeSyntaxError(kind, s, off+i+1, "want a digit")
	}
	var frac int64 // billionths of a unit
	if i < len(in) && in[i] == '.' {
		i++
		start, scale := i, int64(1e8)
		for ; i < len(in) && isDecDigit(in[i]); i++ {
			frac += int64(in[i]-'0') * scale
			scale /= 10
		}
		if i == start {
			return time.Time{}, timeSyntaxError(kind, s, off+i+1, "want a digit after the point")
		}
	}
	if i < len(in) {
		return time.Time{}, timeSyntaxError(kind, s, off+i+1, fmt.Sprintf("unexpected %q", in[i:i+1]))
	}
	if unit == 0 {
		unit = guessUnixUnit(whole)
	}
	n := int64(whole)
	var sec, ns int64
	switch unit {
	case time.Second:
		sec, ns = n, frac
	case time.Millisecond:
		sec, ns = n/1e3, n%1e3*1e6+frac/1e3
	case time.Microsecond:
		sec, ns = n/1e6, n%1e6*1e3+frac/1e6
	default:
		sec, ns = n/1e9, n%1e9
	}
	if neg {
		sec, ns = -sec, -ns
	}
	return time.Unix(sec, ns).UTC(), nil
}

// unixKind returns the TimeKind of a ParseUnix unit.
func unixKind(unit time.Duration) (TimeKind, bool) {
	switch unit {
	case 0:
		return KindUnix, true
	case time.Second:
		return KindUnixS, true
	case time.Millisecond:
		return KindUnixMS, true
	case time.Microsecond:
		return KindUnixUS, true
	case time.Nanosecond:
		return KindUnixNS, true
	}
	return "", false
}

// guessUnixUnit picks the unit of a Unix time by its integer part (see
// ParseUnix).
func guessUnixUnit(whole uint64) time.Duration {
	switch {
	case whole < 1e11:
		return time.Second
	case whole < 1e14:
		return time.Millisecond
	case whole < 1e17:
		return time.Microsecond
	}
	return time.Nanosecond
}

// ParseJulian reads a z/OS Julian date, year and day of the year, as
//
//	yyyyddd   "2019253", SYSLOG's date under HCFORMAT(CENTURY)
//	yyddd     "19253", under HCFORMAT(YEAR)
//	yyyy.ddd  "2019.253", as DISPLAY T shows it
//	yy.ddd    "19.253"
//	0cyydddF  "0119253F", SMF's packed date in hex: century c 0 is 19yy, 1 20yy
//
// and returns the start of that day in UTC. The day must be 001 to 365, or
// 366 in a leap year. Blanks around it are ignored.
//
// A two-digit year is put in Language Environment's default century window:
// the 100 years starting 80 years before ref's year (CEESCEN 80), so with
// ref in 2025 "45" is 1945 and "44" is 2044. A zero ref is the current
// time. Errors are *TimeSyntaxError.
func ParseJulian(s string, ref time.Time) (time.Time, error) {
	in, off := trimTimeBlanks(s)
	end, century := len(in), -1
	if end == 8 && strings.IndexByte("FfCc", in[7]) >= 0 {
		if in[0] != '0' {
			return time.Time{}, timeSyntaxError(KindJulian, s, off+1, "a packed date starts with 0")
		}
		end = 7
	}
	dot := -1
	for i := 0; i < end; i++ {
		switch {
		case isDecDigit(in[i]):
		case in[i] == '.' && dot < 0 && end == len(in):
			dot = i
		default:
			return time.Time{}, timeSyntaxError(KindJulian, s, off+i+1, fmt.Sprintf("unexpected %q", in[i:i+1]))
		}
	}
	var ys, ds string
	switch {
	case dot >= 0:
		ys, ds = in[:dot], in[dot+1:]
	case end < len(in):
		century, ys, ds = int(in[1]-'0'), in[2:4], in[4:7]
	case end == 5 || end == 7:
		ys, ds = in[:end-3], in[end-3:]
	}
	if (len(ys) != 2 && len(ys) != 4) || len(ds) != 3 {
		return time.Time{}, timeSyntaxError(KindJulian, s, 0, "want yyyyddd, yyddd, yyyy.ddd, yy.ddd or 0cyydddF")
	}
	year, day := julianAtoi(ys), julianAtoi(ds)
	switch {
	case century >= 0:
		year += 1900 + 100*century
	case len(ys) == 2:
		if ref.IsZero() {
			ref = time.Now()
		}
		start := ref.Year() - 80
		year = start + ((year-start)%100+100)%100
	}
	days := 365
	if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
		days = 366
	}
	if day < 1 || day > days {
		return time.Time{}, timeSyntaxError(KindJulian, s, 0, fmt.Sprintf("day %03d is not in %d's 001 to %d", day, year, days))
	}
	return time.Date(year, 1, day, 0, 0, 0, 0, time.UTC), nil
}

// julianAtoi returns the value of s, a few decimal digits.
func julianAtoi(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n
}

// A TimeKind names a form of time value for ParseTimeValue, as a
// configuration gives it.
type TimeKind string

// The time kinds.
const (
	KindSTCK     TimeKind = "stck"     // ParseTOD, then TODTime
	KindSTCKE    TimeKind = "stcke"    // ParseETOD, then ETODTime
	KindFileTime TimeKind = "filetime" // ParseFileTime, then FileTimeTime
	KindUnix     TimeKind = "unix"     // ParseUnix, unit guessed by magnitude
	KindUnixS    TimeKind = "unix-s"   // ParseUnix in seconds
	KindUnixMS   TimeKind = "unix-ms"  // ParseUnix in milliseconds
	KindUnixUS   TimeKind = "unix-us"  // ParseUnix in microseconds
	KindUnixNS   TimeKind = "unix-ns"  // ParseUnix in nanoseconds
	KindJulian   TimeKind = "julian"   // ParseJulian
	KindRFC3339  TimeKind = "rfc3339"  // time.RFC3339Nano
	KindAuto     TimeKind = "auto"     // guessed from the text's shape, see ParseTimeValue
)

var timeKinds = []TimeKind{KindSTCK, KindSTCKE, KindFileTime, KindUnix, KindUnixS, KindUnixMS,
	KindUnixUS, KindUnixNS, KindJulian, KindRFC3339, KindAuto}

// UnmarshalText sets k from its name, so that a configuration file can name
// it. An unknown name is an error.
func (k *TimeKind) UnmarshalText(b []byte) error {
	for _, known := range timeKinds {
		if string(b) == string(known) {
			*k = known
			return nil
		}
	}
	return fmt.Errorf("zos: time kind %q is none of %v", b, timeKinds)
}

// TimeOptions are what ParseTimeValue needs beyond the text.
type TimeOptions struct {
	// LSO is subtracted from STCK and STCKE values: the leap-second offset
	// (CVTLSO) of a TOD clock that counts leap seconds, or zero. For a TOD
	// clock set to local time, add the local offset (CVTLDTO) to it.
	LSO TODDelta

	// Ref is the time a two-digit Julian year is read against (see
	// ParseJulian); zero is the current time.
	Ref time.Time
}

// ParseTimeValue reads s as a time value of the given kind and returns the
// time in UTC. Errors in s are *TimeSyntaxError.
//
// KindAuto guesses the kind from the text, in this order:
//
//   - julian: 5 or 7 digits, yy.ddd, yyyy.ddd, or 0cyydddF;
//   - stck or stcke: 16 or 32 hex digits written as ParseTOD takes them, if
//     they begin 0x or X' or hold a letter A-F or a space;
//   - rfc3339: a '-' after 4 leading characters;
//   - unix, its unit guessed by magnitude, for the rest.
//
// It never guesses filetime, whose decimal values overlap nanosecond Unix
// times, and it reads a TOD value of decimal digits only as a Unix time:
// name the kind for those.
func ParseTimeValue(kind TimeKind, s string, opts TimeOptions) (time.Time, error) {
	if kind == KindAuto {
		kind = guessTimeKind(s)
	}
	switch kind {
	case KindSTCK:
		tod, err := ParseTOD(s)
		if err != nil {
			return time.Time{}, err
		}
		return TODTime(tod, opts.LSO), nil
	case KindSTCKE:
		e, err := ParseETOD(s)
		if err != nil {
			return time.Time{}, err
		}
		return ETODTime(e, opts.LSO), nil
	case KindFileTime:
		ft, err := ParseFileTime(s)
		if err != nil {
			return time.Time{}, err
		}
		return FileTimeTime(ft), nil
	case KindUnix:
		return ParseUnix(s, 0)
	case KindUnixS:
		return ParseUnix(s, time.Second)
	case KindUnixMS:
		return ParseUnix(s, time.Millisecond)
	case KindUnixUS:
		return ParseUnix(s, time.Microsecond)
	case KindUnixNS:
		return ParseUnix(s, time.Nanosecond)
	case KindJulian:
		return ParseJulian(s, opts.Ref)
	case KindRFC3339:
		in, _ := trimTimeBlanks(s)
		t, err := time.Parse(time.RFC3339Nano, in)
		if err != nil {
			return time.Time{}, timeSyntaxError(kind, s, 0, "not an RFC 3339 date and time")
		}
		return t.UTC(), nil
	}
	return time.Time{}, fmt.Errorf("zos: time kind %q is none of %v", kind, timeKinds)
}

// guessTimeKind picks the kind of s for KindAuto (see ParseTimeValue).
func guessTimeKind(s string) TimeKind {
	in, _ := trimTimeBlanks(s)
	switch {
	case julianShape(in):
		return KindJulian
	case todHexPrefix(in) > 0 || todHexShape(in):
		digits := 0
		for i := todHexPrefix(in); i < len(in); i++ {
			if _, ok := hexValue(in[i]); ok {
				digits++
			}
		}
		if digits == 32 {
			return KindSTCKE
		}
		return KindSTCK
	case len(in) > 4 && in[4] == '-':
		return KindRFC3339
	}
	return KindUnix
}

// todHexPrefix returns the length of the 0x or X' that s starts with, or 0.
func todHexPrefix(s string) int {
	if len(s) >= 2 && (s[0] == '0' && (s[1] == 'x' || s[1] == 'X') || (s[0] == 'X' || s[0] == 'x') && s[1] == '\'') {
		return 2
	}
	return 0
}

// julianShape reports whether s is shaped as one of ParseJulian's forms.
func julianShape(s string) bool {
	digits := func(s string) bool {
		for i := 0; i < len(s); i++ {
			if !isDecDigit(s[i]) {
				return false
			}
		}
		return s != ""
	}
	switch dot := strings.IndexByte(s, '.'); {
	case dot == 2 || dot == 4:
		return len(s) == dot+4 && digits(s[:dot]) && digits(s[dot+1:])
	case len(s) == 8:
		return s[0] == '0' && digits(s[1:7]) && strings.ContainsRune("FfCc", rune(s[7]))
	}
	return (len(s) == 5 || len(s) == 7) && digits(s)
}

// todHexShape reports whether s is hex digits and spaces only, with a letter
// A-F or a space among them.
func todHexShape(s string) bool {
	marked := false
	for i := 0; i < len(s); i++ {
		switch _, ok := hexValue(s[i]); {
		case s[i] == ' ' || ok && !isDecDigit(s[i]):
			marked = true
		case !ok:
			return false
		}
	}
	return marked
}
