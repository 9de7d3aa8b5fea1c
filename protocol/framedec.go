package protocol

import (
	"bytes"
	"encoding/base64"
	"strconv"
	"unicode/utf8"
)

// decodeFrameJSON decodes the JSON object b into f, which is zero, without
// reflection, and reports whether it did. It is Decode's fast path: in a
// new process encoding/json spends ~0.6 ms building its decoder for Frame
// before the first frame (measured on the shared VM, against ~1.3 µs for
// the next), which a `zbridge cmd` pays on its accept; and the region
// decodes every frame its sessions send.
//
// A container (options, filter, ids, event, events) it does not decode
// but finds: it checks that its value is JSON and puts where it is in
// spans, for Decode to decode once the frame's type is known (the type
// may come after it).
//
// It takes only what it reads exactly as encoding/json does, and leaves
// the rest to it (false; f is then partly set and the caller resets it):
//   - a key not spelled as Frame's JSON names are (encoding/json also
//     matches them in any case, and skips unknown keys), a key with an
//     escape, and a key that comes twice (encoding/json merges or
//     overwrites);
//   - null as a value;
//   - a number its field cannot hold, or one with a fraction or an
//     exponent for an integer field, and data that is not base64 (all
//     errors to encoding/json);
//   - anything that is not JSON.
//
// Whatever it takes decodes to the same Frame with encoding/json, bar the
// containers its type does not carry (FuzzDecodeFrameJSON);
// TestDecodeFrameJSONFields fails when Frame gets a field this does not
// know.
func decodeFrameJSON(b []byte, f *Frame, spans *containerSpans) bool {
	d := frameDecoder{b: b}
	d.space()
	return d.object(func(k []byte) (uint64, bool) { return d.field(f, spans, k) }) && d.end()
}

// containerSpans are where a frame's containers are in it: the value of
// container c is b[spans[c].start:spans[c].end]; end is 0 for one it does
// not hold.
type containerSpans [numContainers]struct{ start, end int }

// container finds the value of the container c, checks that it is JSON,
// and notes where it is.
func (d *frameDecoder) container(spans *containerSpans, c container) bool {
	if d.i < len(d.b) && d.b[d.i] == 'n' {
		return false // null, left to encoding/json as every null is
	}
	// The frame's object is one level of nesting: encoding/json takes
	// 10000 in all (maxScanDepth).
	end := scanJSON(d.b, d.i, maxScanDepth-1)
	if end < 0 {
		return false
	}
	spans[c].start, spans[c].end = d.i, end
	d.i = end
	return true
}

// frameDecoder reads b from i on.
type frameDecoder struct {
	b []byte
	i int
}

// field decodes the value of the member k into f, and returns a bit of
// its own for the field, to find a key that comes twice.
func (d *frameDecoder) field(f *Frame, spans *containerSpans, k []byte) (bit uint64, ok bool) {
	switch string(k) {
	case "type":
		f.Type, ok = d.frameType()
		return 1 << 0, ok
	case "req":
		f.Req, ok = d.uint()
		return 1 << 1, ok
	case "client":
		f.Client, ok = d.string()
		return 1 << 2, ok
	case "secret":
		var s string
		s, ok = d.string()
		f.Secret = Secret(s)
		return 1 << 3, ok
	case "version":
		f.Version, ok = d.int()
		return 1 << 4, ok
	case "heartbeat":
		f.Heartbeat, ok = d.int()
		return 1 << 5, ok
	case "session":
		f.Session, ok = d.string()
		return 1 << 6, ok
	case "limits":
		f.Limits, ok = d.limits()
		return 1 << 7, ok
	case "reason":
		f.Reason, ok = d.string()
		return 1 << 8, ok
	case "message":
		f.Message, ok = d.string()
		return 1 << 9, ok
	case "retry_after":
		f.RetryAfter, ok = d.int()
		return 1 << 10, ok
	case "resume_after":
		f.ResumeAfter, ok = d.string()
		return 1 << 11, ok
	case "error":
		f.Error, ok = d.error()
		return 1 << 12, ok
	case "after":
		f.After, ok = d.string()
		return 1 << 13, ok
	case "format":
		f.Format, ok = d.string()
		return 1 << 14, ok
	case "subscription":
		f.Subscription, ok = d.string()
		return 1 << 15, ok
	case "group":
		f.Group, ok = d.string()
		return 1 << 16, ok
	case "ids":
		return 1 << 17, d.container(spans, containerIDs)
	case "id":
		f.ID, ok = d.string()
		return 1 << 18, ok
	case "line":
		f.Line, ok = d.string()
		return 1 << 19, ok
	case "target":
		f.Target, ok = d.string()
		return 1 << 20, ok
	case "command":
		f.Command, ok = d.string()
		return 1 << 21, ok
	case "timeout":
		f.Timeout, ok = d.float()
		return 1 << 22, ok
	case "stream":
		f.Stream, ok = d.string()
		return 1 << 23, ok
	case "text":
		f.Text, ok = d.string()
		return 1 << 24, ok
	case "data":
		f.Data, ok = d.base64()
		return 1 << 25, ok
	case "eol":
		f.EOL, ok = d.bool()
		return 1 << 26, ok
	case "rc":
		var rc int
		rc, ok = d.int()
		f.RC = &rc
		return 1 << 27, ok
	case "signal":
		f.Signal, ok = d.string()
		return 1 << 28, ok
	case "truncated":
		f.Truncated, ok = d.bool()
		return 1 << 29, ok
	case "duration_ms":
		f.DurationMS, ok = d.intBits(64)
		return 1 << 30, ok
	case "seq":
		f.Seq, ok = d.uint()
		return 1 << 31, ok
	case "options":
		return 1 << 32, d.container(spans, containerOptions)
	case "filter":
		return 1 << 33, d.container(spans, containerFilter)
	case "event":
		return 1 << 34, d.container(spans, containerEvent)
	case "events":
		return 1 << 35, d.container(spans, containerEvents)
	}
	return 0, false // a key Frame does not spell so
}

// limits decodes a Limits object.
func (d *frameDecoder) limits() (*Limits, bool) {
	l := new(Limits)
	return l, d.object(func(k []byte) (uint64, bool) {
		var ok bool
		switch string(k) {
		case "heartbeat":
			l.Heartbeat, ok = d.int()
			return 1 << 0, ok
		case "idle_timeout":
			l.IdleTimeout, ok = d.int()
			return 1 << 1, ok
		case "lifetime":
			l.Lifetime, ok = d.int()
			return 1 << 2, ok
		case "max_frame":
			l.MaxFrame, ok = d.int()
			return 1 << 3, ok
		}
		return 0, false
	})
}

// error decodes an Error object.
func (d *frameDecoder) error() (*Error, bool) {
	e := new(Error)
	return e, d.object(func(k []byte) (uint64, bool) {
		var ok bool
		switch string(k) {
		case "code":
			e.Code, ok = d.string()
			return 1 << 0, ok
		case "message":
			e.Message, ok = d.string()
			return 1 << 1, ok
		}
		return 0, false
	})
}

// object reads an object whose members member decodes, each key at most
// once.
func (d *frameDecoder) object(member func(k []byte) (bit uint64, ok bool)) bool {
	if !d.next('{') {
		return false
	}
	d.space()
	if d.next('}') {
		return true
	}
	var seen uint64
	for {
		d.space()
		k, ok := d.key()
		if !ok {
			return false
		}
		d.space()
		if !d.next(':') {
			return false
		}
		d.space()
		bit, ok := member(k)
		if !ok || seen&bit != 0 {
			return false
		}
		seen |= bit
		d.space()
		switch {
		case d.next(','):
		case d.next('}'):
			return true
		default:
			return false
		}
	}
}

// strings reads an array of strings, into a slice made for n of them; an
// empty one is an empty slice, not nil, as encoding/json makes it.
func (d *frameDecoder) strings(n int) ([]string, bool) {
	if !d.next('[') {
		return nil, false
	}
	ss := make([]string, 0, n)
	d.space()
	if d.next(']') {
		return ss, true
	}
	for {
		d.space()
		s, ok := d.string()
		if !ok {
			return nil, false
		}
		ss = append(ss, s)
		d.space()
		switch {
		case d.next(','):
		case d.next(']'):
			return ss, true
		default:
			return nil, false
		}
	}
}

// frameType reads a frame's type: one of this package's, without making
// a string of it, or any other as string does.
func (d *frameDecoder) frameType() (string, bool) {
	if d.i < len(d.b) && d.b[d.i] == '"' {
		if n := bytes.IndexByte(d.b[d.i+1:], '"'); n >= 0 {
			if t := knownType(d.b[d.i+1 : d.i+1+n]); t != "" {
				d.i += n + 2
				return t, true
			}
		}
	}
	return d.string()
}

// knownType returns the type constant b spells, or "".
func knownType(b []byte) string {
	switch string(b) {
	case TypeLogon:
		return TypeLogon
	case TypeHeartbeat:
		return TypeHeartbeat
	case TypeLogoff:
		return TypeLogoff
	case TypeSubscribe:
		return TypeSubscribe
	case TypeCommand:
		return TypeCommand
	case TypeCancel:
		return TypeCancel
	case TypeEvents:
		return TypeEvents
	case TypeAck:
		return TypeAck
	case TypeAccept:
		return TypeAccept
	case TypeRefuse:
		return TypeRefuse
	case TypeReply:
		return TypeReply
	case TypeEvent:
		return TypeEvent
	case TypeOutput:
		return TypeOutput
	case TypeNotice:
		return TypeNotice
	case TypeBye:
		return TypeBye
	}
	return ""
}

// key reads a key: a string without escapes. Frame's names have none, and
// a key that has one is left to encoding/json.
func (d *frameDecoder) key() ([]byte, bool) {
	if !d.next('"') {
		return nil, false
	}
	start := d.i
	for d.i < len(d.b) {
		switch c := d.b[d.i]; {
		case c == '"':
			d.i++
			return d.b[start : d.i-1], true
		case c == '\\' || c < 0x20:
			return nil, false
		}
		d.i++
	}
	return nil, false
}

// string reads a string as encoding/json decodes it: escapes undone, a \u
// escape of a lone surrogate and each byte of invalid UTF-8 as U+FFFD. A
// control character in it is not JSON.
func (d *frameDecoder) string() (string, bool) {
	if !d.next('"') {
		return "", false
	}
	start := d.i
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			return string(d.b[start : d.i-1]), true
		case c == '\\' || c < 0x20:
			return d.unquote(start)
		case c < utf8.RuneSelf:
			d.i++
		default:
			r, n := utf8.DecodeRune(d.b[d.i:])
			if r == utf8.RuneError && n == 1 {
				return d.unquote(start)
			}
			d.i += n
		}
	}
	return "", false
}

// unquote carries on string's work from start, the first byte of the
// string's body, building the string.
func (d *frameDecoder) unquote(start int) (string, bool) {
	out := append(make([]byte, 0, d.i-start+16), d.b[start:d.i]...)
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			return string(out), true
		case c < 0x20:
			return "", false
		case c == '\\':
			if d.i+1 >= len(d.b) {
				return "", false
			}
			switch e := d.b[d.i+1]; e {
			case '"', '\\', '/':
				out = append(out, e)
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				r, ok := d.hex4(d.i + 2)
				if !ok {
					return "", false
				}
				d.i += 6
				if r >= 0xd800 && r < 0xe000 {
					// A surrogate: with a low one after a high one, a pair;
					// else U+FFFD, and what follows is read on its own.
					if r2, ok := d.hex4(d.i + 2); ok && r < 0xdc00 && d.b[d.i] == '\\' && d.b[d.i+1] == 'u' && r2 >= 0xdc00 && r2 < 0xe000 {
						r = (r-0xd800)<<10 + (r2 - 0xdc00) + 0x10000
						d.i += 6
					} else {
						r = utf8.RuneError
					}
				}
				out = utf8.AppendRune(out, r)
				continue
			default:
				return "", false
			}
			d.i += 2
		case c < utf8.RuneSelf:
			out = append(out, c)
			d.i++
		default:
			r, n := utf8.DecodeRune(d.b[d.i:])
			out = utf8.AppendRune(out, r) // U+FFFD for a byte of invalid UTF-8
			d.i += n
		}
	}
	return "", false
}

// hex4 returns the value of the four hex digits at b[i:].
func (d *frameDecoder) hex4(i int) (rune, bool) {
	if i+4 > len(d.b) || !isHex4(d.b[i:i+4]) {
		return 0, false
	}
	return rune(hexVal(d.b[i : i+4])), true
}

// number returns the JSON number at i, and whether it is an integer (no
// fraction or exponent).
func (d *frameDecoder) number() (num []byte, integer, ok bool) {
	end := scanNumber(d.b, d.i)
	if end < 0 {
		return nil, false, false
	}
	num = d.b[d.i:end]
	d.i = end
	integer = true
	for _, c := range num {
		if c == '.' || c == 'e' || c == 'E' {
			integer = false
		}
	}
	return num, integer, true
}

// int reads an integer that fits an int.
func (d *frameDecoder) int() (int, bool) {
	n, ok := d.intBits(strconv.IntSize)
	return int(n), ok
}

// intBits reads an integer that fits a signed integer of bits bits.
func (d *frameDecoder) intBits(bits int) (int64, bool) {
	num, integer, ok := d.number()
	if !ok || !integer {
		return 0, false
	}
	n, err := strconv.ParseInt(string(num), 10, bits)
	return n, err == nil
}

// uint reads a non-negative integer that fits a uint64.
func (d *frameDecoder) uint() (uint64, bool) {
	num, integer, ok := d.number()
	if !ok || !integer {
		return 0, false
	}
	n, err := strconv.ParseUint(string(num), 10, 64)
	return n, err == nil
}

// float reads a number into a float64.
func (d *frameDecoder) float() (float64, bool) {
	num, _, ok := d.number()
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseFloat(string(num), 64)
	return v, err == nil
}

// bool reads true or false.
func (d *frameDecoder) bool() (bool, bool) {
	if i := scanLiteral(d.b, d.i, "true"); i > 0 {
		d.i = i
		return true, true
	}
	if i := scanLiteral(d.b, d.i, "false"); i > 0 {
		d.i = i
		return false, true
	}
	return false, false
}

// base64 reads a string of standard, padded base64, as encoding/json reads
// a []byte (which skips line ends in it).
func (d *frameDecoder) base64() ([]byte, bool) {
	s, ok := d.string()
	if !ok {
		return nil, false
	}
	out := make([]byte, base64.StdEncoding.DecodedLen(len(s)))
	n, err := base64.StdEncoding.Decode(out, []byte(s))
	return out[:n], err == nil
}

// next consumes c if it is the next byte.
func (d *frameDecoder) next(c byte) bool {
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

// space skips JSON whitespace.
func (d *frameDecoder) space() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// end reports whether nothing but whitespace is left.
func (d *frameDecoder) end() bool {
	d.space()
	return d.i == len(d.b)
}
