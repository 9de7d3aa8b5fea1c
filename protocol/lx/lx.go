// Package lx formats events in the text layout of the CA Mainframe
// Connector, which client automation products already match on:
//
//	LXLOG001I <linux-name> <z/VM-host> <facility> <severity> <text>   syslog, agent and region events
//	LXMSG001I <z/VM-node> <msg-type> <userid> <text>                  z/VM console messages
//	LXEVT001I <z/VM-node> <userid> <event-type>                       z/VM events
//
// A field that is not known is written as "-" so that the columns stay
// where a matching rule expects them. Line ends and other control
// characters in the text become spaces: each event is exactly one line.
package lx

import (
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
func Format(e *protocol.Event) string { return string(Append(nil, e)) }

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
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c == 0x7f {
			c = '_'
		}
		b = append(b, c)
	}
	return b
}

// text appends a space and s with control characters made spaces.
func text(b []byte, s string) []byte {
	b = append(b, ' ')
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < ' ' || c == 0x7f {
			c = ' '
		}
		b = append(b, c)
	}
	return b
}
