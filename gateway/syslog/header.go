package syslog

import (
	"fmt"
	"net/netip"
	"strconv"
)

// This file reads syslog headers as rsyslog 8 does with its default
// settings: its RFC 5424 parser (pmrfc5424), and for everything else its
// RFC 3164 parser (pmrfc3164) with its two timestamp readers. The rules are
// rsyslog's observable behaviour, written down in PARSING.md and held to
// the real rsyslogd by TestRsyslogAgreement over the corpus in
// testdata/corpus. Where zbridge reads a message differently on purpose,
// the function says so.

// Limits that rsyslog has too (CONF_HOSTNAME_MAXSIZE, CONF_TAG_MAXSIZE),
// and one for the RFC 5424 header fields, which rsyslog does not hold to
// RFC 5424's 255, 48, 128 and 32 bytes (a 37-byte MSGID is common enough):
// 255, the longest of them, so that no header field can take a frame's
// 200 KB into the region's tables (flood control's, learned names).
const (
	maxHostname  = 511
	maxTag       = 510
	maxField5424 = 255
)

// A stamp is a timestamp as read, before a zone or year is supplied.
type stamp struct {
	year, month, day   int // year 0: not given (RFC 3164)
	hour, minute, sec  int
	nsec               int
	offset             int  // seconds east of UTC, when zoned
	zoned              bool // an RFC 3339 timestamp, with its zone
	utc                bool // zoned with "Z"
	yearGiven, rfc3339 bool
}

// readPRI reads the priority: "<", one to three digits, ">", the value at
// most 191. It returns the value and the offset after '>'. A message that
// does not start with '<' has none (pri -1, n 0, ok true), as rsyslog
// allows; one that starts with '<' but is not a priority is refused (ok
// false). rsyslog reads "<>" as priority 0 (kern.emerg); zbridge refuses
// it: an emergency claimed by an empty priority would page an operator.
func readPRI(in []byte) (pri, n int, ok bool) {
	if len(in) == 0 || in[0] != '<' {
		return -1, 0, true
	}
	i := 1
	for i < len(in) && i <= 3 && isDigit(in[i]) {
		pri = pri*10 + int(in[i]-'0')
		i++
	}
	if i == 1 || i >= len(in) || in[i] != '>' || pri > 191 {
		return -1, 0, false
	}
	return pri, i + 1, true
}

// digits reads a run of decimal digits at in[i:], as rsyslog's
// srSLMGParseInt32 does: no digits is 0. The value saturates at 1e9 (so
// that a long run fails every range check instead of overflowing).
func digits(in []byte, i int) (v, next int) {
	for ; i < len(in) && isDigit(in[i]); i++ {
		if v < 1e9 {
			v = v*10 + int(in[i]-'0')
		}
	}
	return v, i
}

// fraction reads the digits of a fractional second at in[i:] as
// nanoseconds: the first nine digits count, more are read and ignored.
func fraction(in []byte, i int) (nsec, next int) {
	scale := int(1e8)
	for ; i < len(in) && isDigit(in[i]); i++ {
		nsec += int(in[i]-'0') * scale
		scale /= 10
	}
	return nsec, i
}

// read3339 reads an RFC 3339 timestamp at in[i:], and the space after it
// when there is more: "2006-01-02T15:04:05[.frac](Z|±hh:mm)". As rsyslog,
// it takes fields of any number of digits ("2003-9-1T1:0:0Z") and requires
// the zone. It returns the offset after the space.
func read3339(in []byte, i int) (st stamp, next int, ok bool) {
	st.rfc3339, st.yearGiven, st.zoned = true, true, true
	field := func(v *int, lo, hi int, sep byte) bool {
		start := i
		*v, i = digits(in, i)
		if i == start || *v < lo || *v > hi {
			return false
		}
		if sep != 0 {
			if i >= len(in) || in[i] != sep {
				return false
			}
			i++
		}
		return true
	}
	if !field(&st.year, 0, 9999, '-') || !field(&st.month, 1, 12, '-') || !field(&st.day, 1, 31, 'T') ||
		!field(&st.hour, 0, 23, ':') || !field(&st.minute, 0, 59, ':') || !field(&st.sec, 0, 60, 0) {
		return st, i, false
	}
	if i < len(in) && in[i] == '.' {
		st.nsec, i = fraction(in, i+1)
	}
	if i >= len(in) {
		return st, i, false
	}
	switch c := in[i]; c {
	case 'Z', 'z':
		st.utc = true
		i++
	case '+', '-':
		i++
		var h, m int
		if !field(&h, 0, 23, ':') || !field(&m, 0, 59, 0) {
			return st, i, false
		}
		st.offset = h*3600 + m*60
		if c == '-' {
			st.offset = -st.offset
		}
	default:
		return st, i, false
	}
	if i < len(in) {
		if in[i] != ' ' {
			return st, i, false
		}
		i++
	}
	return st, i, true
}

// month returns the number of the month whose three letters, lower-cased,
// are a, b, c, or 0.
func month(a, b, c byte) int {
	switch string([]byte{a, b, c}) {
	case "jan":
		return 1
	case "feb":
		return 2
	case "mar":
		return 3
	case "apr":
		return 4
	case "may":
		return 5
	case "jun":
		return 6
	case "jul":
		return 7
	case "aug":
		return 8
	case "sep":
		return 9
	case "oct":
		return 10
	case "nov":
		return 11
	case "dec":
		return 12
	}
	return 0
}

// read3164 reads an RFC 3164 timestamp at in[i:] as rsyslog does, and the
// space after it when there is more: optionally a year of four digits and a
// space ("1990 Oct 22 10:52:01", RFC 3164's own example of a device's
// timestamp), a month of any case ("Aug", "AUG"), one or two spaces, a day
// of any width, optionally a year ("Apr 15 2007 21:28:13", as Cisco devices
// send), the time, optionally a fraction (".123") and a colon after it. It
// returns the offset after the space.
func read3164(in []byte, i int) (st stamp, next int, ok bool) {
	if len(in)-i >= 5 && isDigit(in[i]) && isDigit(in[i+1]) && isDigit(in[i+2]) && isDigit(in[i+3]) && in[i+4] == ' ' {
		st.year, _ = digits(in[:i+4], i)
		st.yearGiven = true
		i += 5
	}
	if len(in)-i < 4 {
		return st, i, false
	}
	st.month = month(lower(in[i]), lower(in[i+1]), lower(in[i+2]))
	if st.month == 0 || in[i+3] != ' ' {
		return st, i, false
	}
	i += 4
	if i < len(in) && in[i] == ' ' {
		i++
	}
	start := i
	if st.day, i = digits(in, i); i == start || st.day < 1 || st.day > 31 || i >= len(in) || in[i] != ' ' {
		return st, i, false
	}
	i++
	st.hour, i = digits(in, i)
	if st.hour > 1970 && st.hour < 2100 && !st.yearGiven { // a year
		st.year, st.yearGiven = st.hour, true
		if i >= len(in) || in[i] != ' ' {
			return st, i, false
		}
		st.hour, i = digits(in, i+1)
	}
	if st.hour > 23 || i >= len(in) || in[i] != ':' {
		return st, i, false
	}
	if st.minute, i = digits(in, i+1); st.minute > 59 || i >= len(in) || in[i] != ':' {
		return st, i, false
	}
	if st.sec, i = digits(in, i+1); st.sec > 60 {
		return st, i, false
	}
	if i < len(in) && in[i] == '.' {
		st.nsec, i = fraction(in, i+1)
	}
	if i < len(in) && in[i] == ':' {
		i++
	}
	if i < len(in) {
		if in[i] != ' ' {
			return st, i, false
		}
		i++
	}
	return st, i, true
}

// header3164 is what read3164Header finds in an RFC 3164 message: every
// part is optional, and rsyslog reads every message as one.
type header3164 struct {
	ts        stamp
	hasTime   bool
	host, tag [2]int // bounds in the message; empty when absent
	msg       int    // where MSG starts (its leading space included)
}

// readHeader3164 reads what follows the priority (at in[i:]) as rsyslog's
// pmrfc3164 does: a timestamp (RFC 3339, else RFC 3164, else RFC 3164
// after one space), a hostname (letters, digits, '.', '_', '-', ending in a
// letter or digit and followed by a space, or ending the message), a tag
// (up to a colon, which it includes, or a space, which it does not), and
// the rest is MSG.
//
// One difference on purpose: an IPv6 address followed by a space is a
// hostname too. rsyslog takes it for a tag (it stops at the first ':'),
// although an rsyslog relay writes a sender's IPv6 address as the HOSTNAME
// of what it forwards when it has no name for it.
func readHeader3164(in []byte, i int) header3164 {
	var h header3164
	var next int
	if h.ts, next, h.hasTime = read3339(in, i); h.hasTime {
		i = next
	} else if h.ts, next, h.hasTime = read3164(in, i); h.hasTime {
		i = next
	} else if i < len(in) && in[i] == ' ' {
		if h.ts, next, h.hasTime = read3164(in, i+1); h.hasTime {
			i = next
		}
	}
	j := i
	for j < len(in) && j-i < maxHostname && isHostChar(in[j]) {
		j++
	}
	switch {
	case j == len(in):
		h.host = [2]int{i, j}
		i = j
	case j > i && isAlnum(in[j-1]) && in[j] == ' ':
		h.host = [2]int{i, j}
		i = j + 1
	default:
		if k, ok := ipv6Host(in, i); ok {
			h.host = [2]int{i, k}
			i = k + 1
		}
	}
	j = i
	for j < len(in) && j-i < maxTag && in[j] != ':' && in[j] != ' ' {
		j++
	}
	if j < len(in) && in[j] == ':' {
		j++
	}
	h.tag = [2]int{i, j}
	h.msg = j
	return h
}

// ipv6Host reports whether in[i:] starts with an IPv6 address followed by
// a space, and where the address ends.
func ipv6Host(in []byte, i int) (end int, ok bool) {
	for end = i; end < len(in) && end-i < 64 && in[end] != ' '; end++ {
	}
	if end == len(in) || in[end] != ' ' || end-i < 2 {
		return 0, false
	}
	a, err := netip.ParseAddr(string(in[i:end]))
	// No zone: "fe80::1%eth0" would carry any bytes but a space into the
	// host name.
	return end, err == nil && a.Is6() && !a.Is4In6() && a.Zone() == ""
}

// programName is the app name rsyslog derives from a tag: up to the first
// ':', '[' or '/', or a byte that is not printable ASCII.
func programName(tag []byte) int {
	i := 0
	for i < len(tag) && tag[i] >= 0x20 && tag[i] < 0x7f && tag[i] != ':' && tag[i] != '[' && tag[i] != '/' {
		i++
	}
	return i
}

// procID finds the process ID rsyslog derives from a tag: what is between
// its first '[' and the next ']'. ok is false when there is no such pair.
func procID(tag []byte) (start, end int, ok bool) {
	start = indexByte(tag, '[')
	if start < 0 {
		return 0, 0, false
	}
	start++
	end = indexByte(tag[start:], ']')
	if end < 0 {
		return 0, 0, false
	}
	return start, start + end, true
}

// header5424 is what readHeader5424 finds in an RFC 5424 message.
type header5424 struct {
	ts                         stamp
	hasTime                    bool
	host, app, procID, msgID   [2]int // empty for NILVALUE
	sd                         [2]int // the STRUCTURED-DATA field; empty for NILVALUE
	msg                        int    // where MSG starts (after the space)
	hostNil, appNil, procIDNil bool
}

// fieldNames5424 names the HOSTNAME, APP-NAME, PROCID and MSGID fields in
// errors: with an article, and without.
var fieldNames5424 = [4][2]string{{"a hostname", "hostname"}, {"an app name", "app name"}, {"a procid", "procid"}, {"a msgid", "msgid"}}

// errorAt is a header error with the column where reading stopped.
type errorAt struct {
	what string
	col  int
}

func (e *errorAt) Error() string { return fmt.Sprintf("syslog: %s [col %d]", e.what, e.col) }

// readHeader5424 reads an RFC 5424 header after "<PRI>1 " (at in[i:]) as
// rsyslog's pmrfc5424 does: TIMESTAMP (NILVALUE or RFC 3339), HOSTNAME,
// APP-NAME, PROCID and MSGID (each a run of non-space bytes; rsyslog does
// not hold them to RFC 5424's lengths, and zbridge only to maxField5424), and
// STRUCTURED-DATA (NILVALUE or SD-ELEMENTs); MSG is what follows the space
// after it. A header field longer than maxField5424 is an error. The
// fields read before an error are returned with it.
func readHeader5424(in []byte, i int) (h header5424, err *errorAt) {
	if i+1 < len(in) && in[i] == '-' && in[i+1] == ' ' {
		i += 2
	} else {
		var next int
		if h.ts, next, h.hasTime = read3339(in, i); !h.hasTime {
			return h, &errorAt{"RFC 5424: expecting a timestamp (RFC 3339) or '-'", i}
		}
		i = next
	}
	for k := range fieldNames5424 {
		j := i
		for j < len(in) && in[j] != ' ' {
			j++
		}
		if j == len(in) || j == i {
			return h, &errorAt{"RFC 5424: expecting " + fieldNames5424[k][0] + " or '-' and a space", j}
		}
		if j-i > maxField5424 {
			return h, &errorAt{"RFC 5424: " + fieldNames5424[k][1] + " of " + strconv.Itoa(j-i) +
				" bytes (at most " + strconv.Itoa(maxField5424) + ")", i}
		}
		if j-i != 1 || in[i] != '-' {
			*[...]*[2]int{&h.host, &h.app, &h.procID, &h.msgID}[k] = [2]int{i, j}
		}
		i = j + 1
	}
	switch {
	case i < len(in) && in[i] == '-':
		i++
	case i < len(in) && in[i] == '[':
		end, ok := skipSD(in, i)
		if !ok {
			return h, &errorAt{"RFC 5424: malformed structured data", end}
		}
		h.sd = [2]int{i, end}
		i = end
	default:
		return h, &errorAt{"RFC 5424: expecting structured data or '-'", i}
	}
	switch {
	case i == len(in):
		h.msg = i
	case in[i] == ' ':
		h.msg = i + 1
	default:
		return h, &errorAt{"RFC 5424: expecting a space after the structured data", i}
	}
	return h, nil
}

// skipSD finds the end of the SD-ELEMENTs at in[i:] (in[i] is '['): each
// "[" SD-ID *(SP PARAM-NAME "=" QUOTED-VALUE) "]", values with '"', '\' and
// ']' escaped by a backslash. It checks the shape only; names and values
// are read by structuredData. ok false gives where it stopped.
func skipSD(in []byte, i int) (end int, ok bool) {
	for i < len(in) && in[i] == '[' {
		i++
		quoted := false
		for {
			if i >= len(in) {
				return i, false
			}
			c := in[i]
			switch {
			case quoted && c == '\\':
				i++ // the next byte, whatever it is, is in the value
			case c == '"':
				quoted = !quoted
			case !quoted && c == ']':
				goto element
			case !quoted && (c == '[' || c < 0x20):
				return i, false
			}
			i++
		}
	element:
		i++
	}
	return i, true
}

func isAlnum(c byte) bool { return isDigit(c) || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

func isHostChar(c byte) bool { return isAlnum(c) || c == '.' || c == '_' || c == '-' }

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
