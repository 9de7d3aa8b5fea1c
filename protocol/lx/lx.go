// Package lx formats events in the text layout of the CA Mainframe
// Connector, which client automation products already match on:
//
//	LXLOG001I <linux-name> <z/VM-host> <facility> <severity> <text>   syslog, agent and region events
//	LXMSG001I <z/VM-node> <msg-type> <userid> <text>                  z/VM console messages
//	LXEVT001I <z/VM-node> <userid> <event-type>                       z/VM events
//
// A field that is not known is written as "-" so that the columns stay
// where a matching rule expects them.
//
// # Escaping
//
// The fields come from whoever sent the event (a syslog sender picks its
// host name, app name and text), and a line must neither act on the
// terminal or program that shows it nor pass for more than one line: each
// event is exactly one line, and a text holding "\nLXLOG001I ..." does not
// start a second, forged one. So every field is escaped (AppendEscaped):
//
//	\                                           \\
//	tab, line feed, carriage return             \t \n \r
//	other C0 controls (0x00-0x1F), DEL (0x7F)   \xHH, as \x1b
//	a byte that is not valid UTF-8              \xHH, as \xff
//	C1 controls (U+0080-U+009F, NEL U+0085),
//	line and paragraph separators (U+2028,
//	U+2029), bidirectional embeddings,
//	overrides and isolates (U+202A-U+202E,
//	U+2066-U+2069)                              \uHHHH, as \u2028
//
// Everything else, other UTF-8 included, is written as it is. The escaping
// is reversible: \x stands for a byte (a control, or one of invalid UTF-8)
// and \u for a character, and a backslash in the field is always doubled.
// In the words before the text (names, types) a blank becomes "_" and
// other Unicode white space is escaped too, so that the words stay
// separated by exactly one blank.
package lx

import (
	"unicode"
	"unicode/utf8"

	"github.com/zbridge/zbridge/protocol"
)

// Message IDs of the layouts.
const (
	IDLog   = "LXLOG001I"
	IDMsg   = "LXMSG001I"
	IDEvent = "LXEVT001I"
)

// Append appends e's line (without a line end) to b.
func Append(b []byte, e *protocol.Event) []byte {
	switch e.Source {
	case protocol.SourceZVMConsole:
		b = append(b, IDMsg...)
		b = word(b, first(e.Origin.Node, e.Origin.System))
		b = word(b, first(e.Type, "CP"))
		b = word(b, e.User)
		return text(b, e.Text)
	case protocol.SourceZVMEvent:
		b = append(b, IDEvent...)
		b = word(b, first(e.Origin.Node, e.Origin.System))
		b = word(b, e.User)
		return word(b, e.Type)
	default:
		b = append(b, IDLog...)
		b = word(b, first(e.Origin.Host, e.Origin.System))
		b = word(b, e.Origin.Node)
		b = word(b, e.Facility.String())
		b = word(b, e.Severity.String())
		return text(b, e.Text)
	}
}

// Format returns e's line.
func Format(e *protocol.Event) string { return string(Append(make([]byte, 0, 256), e)) }

func first(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// word appends a space and s as one blank-free word ("-" when empty).
func word(b []byte, s string) []byte {
	b = append(b, ' ')
	if s == "" {
		return append(b, '-')
	}
	return appendEscaped(b, s, true)
}

// text appends a space and s, escaped.
func text(b []byte, s string) []byte {
	b = append(b, ' ')
	return appendEscaped(b, s, false)
}

// AppendEscaped appends s to b escaped as the package doc says: the result
// holds no control character (C0, DEL, C1), no line or paragraph
// separator, no bidirectional control and no invalid UTF-8, and a program
// can recover s from it exactly.
func AppendEscaped(b []byte, s string) []byte { return appendEscaped(b, s, false) }

// NeedsEscape reports whether AppendEscaped would change s other than by
// doubling its backslashes: whether s holds a character it escapes.
func NeedsEscape(s string) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < ' ' || c == 0x7f {
				return true
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || escapedRune(r, false) {
			return true
		}
		i += size
	}
	return false
}

const hexDigits = "0123456789abcdef"

// appendEscaped appends s escaped; inWord also makes blanks "_" and
// escapes other white space.
func appendEscaped(b []byte, s string, inWord bool) []byte {
	start := 0 // s[start:i] is still to be copied as it is
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c > ' ' && c != '\\' && c != 0x7f || c == ' ' && !inWord {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case ' ':
				b = append(b, '_')
			case '\\':
				b = append(b, '\\', '\\')
			case '\t':
				b = append(b, '\\', 't')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			default:
				b = append(b, '\\', 'x', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'x', hexDigits[c>>4], hexDigits[c&0xf])
		case escapedRune(r, inWord):
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', hexDigits[r>>12&0xf], hexDigits[r>>8&0xf], hexDigits[r>>4&0xf], hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	return append(b, s[start:]...)
}

// escapedRune reports whether the non-ASCII rune r is written \uHHHH
// (all such runes are below U+10000).
func escapedRune(r rune, inWord bool) bool {
	switch {
	case r >= 0x80 && r <= 0x9f, // C1 controls
		r == '\u2028', r == '\u2029', // line and paragraph separators
		r >= '\u202a' && r <= '\u202e', // bidirectional embeddings and overrides
		r >= '\u2066' && r <= '\u2069': // bidirectional isolates
		return true
	}
	return inWord && unicode.IsSpace(r)
}
