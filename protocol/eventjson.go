package protocol

import (
	"time"
	"unicode/utf8"
)

// AppendEventJSON appends e as a JSON object to b. It writes the same object
// encoding/json writes for an Event (bar HTML escaping, which it does not do)
// without reflection or allocation: events are the region's hot path.
func AppendEventJSON(b []byte, e *Event) []byte {
	b = append(b, `{"id":"`...)
	b = e.ID.Append(b)
	b = append(b, `","received":"`...)
	b = e.Received.AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	if e.OriginTime != nil {
		b = append(b, `,"origin_time":"`...)
		b = e.OriginTime.AppendFormat(b, time.RFC3339Nano)
		b = append(b, '"')
	}
	b = append(b, `,"time":"`...)
	b = e.Time.AppendFormat(b, time.RFC3339Nano)
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

func appendOptField(b []byte, key, v string) []byte {
	if v == "" {
		return b
	}
	b = append(b, key...)
	return appendString(b, v)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD, as
// encoding/json does; U+2028 and U+2029 are escaped so the output is safe to
// embed in JavaScript, also as encoding/json does.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
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
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
