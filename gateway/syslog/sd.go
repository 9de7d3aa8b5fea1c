package syslog

import (
	"strings"

	"github.com/zbridge/zbridge/protocol"
)

// structuredData returns the STRUCTURED-DATA of an RFC 5424 message, in
// being one whole message ("<PRI>VERSION SP TIMESTAMP SP HOSTNAME SP
// APP-NAME SP PROCID SP MSGID SP STRUCTURED-DATA [SP MSG]", its trailing
// LF removed): the elements in message order, the parameters of each in
// element order, the escapes `\"`, `\\` and `\]` of the values undone. It
// returns nil and true for the NILVALUE "-", and false when the structured
// data is malformed.
//
// The structured data starts after the sixth space (the header fields
// cannot hold one; an empty field, two spaces in a row, makes the message
// malformed) and ends at the end of in or at the space before MSG. It is
// read as RFC 5424 section 6.3 has it, with two exceptions that lose
// nothing a sender meant: a backslash before a character other than '"',
// '\' and ']' is kept with it (section 6.3.3 says so), and a ']' that is
// not escaped in a value is taken as part of the value (the value ends at
// the first '"' that is not escaped, so the ']' is not ambiguous). Values
// are kept as sent, also when they are not valid UTF-8. Malformed are: a
// name (SD-ID or PARAM-NAME) that is not 1 to 32 printable US-ASCII
// characters but '=', space, ']' and '"'; anything but one space between
// an SD-ID and a parameter or between parameters; a value not in double
// quotes or not closed; an element not closed; anything but a space after
// the last element; and an SD-ID that occurs twice (section 6.3.2).
//
// The names and the values without escapes are substrings of one copy of
// the structured data; the elements and the parameters are allocated
// together, once their number is known.
func structuredData(in []byte) ([]protocol.SDElement, bool) {
	start, ok := sdStart(in)
	if !ok {
		return nil, false
	}
	rest := in[start:]
	if len(rest) > 0 && rest[0] == '-' {
		if len(rest) == 1 || rest[1] == ' ' {
			return nil, true
		}
		return nil, false
	}
	end, elems, params, ok := scanSD(rest, nil)
	if !ok {
		return nil, false
	}
	fill := sdFill{
		elems:  make([]protocol.SDElement, 0, elems),
		params: make([]protocol.SDParam, 0, params),
	}
	if _, _, _, ok := scanSD(string(rest[:end]), &fill); !ok {
		return nil, false // cannot happen: the same bytes scanned again
	}
	if hasDuplicateID(fill.elems) {
		return nil, false
	}
	return fill.elems, true
}

// sdStart returns where the STRUCTURED-DATA field starts: after the sixth
// space of in, each field before it not empty.
func sdStart(in []byte) (int, bool) {
	if len(in) == 0 || in[0] != '<' {
		return 0, false
	}
	fields, at := 0, 0
	for i, c := range in {
		if c != ' ' {
			continue
		}
		if i == at {
			return 0, false // an empty header field
		}
		fields++
		at = i + 1
		if fields == 6 {
			return at, true
		}
	}
	return 0, false
}

// sdFill builds the elements, into slices big enough for them all.
type sdFill struct {
	elems  []protocol.SDElement
	params []protocol.SDParam
}

func (f *sdFill) element(id string) {
	f.elems = append(f.elems, protocol.SDElement{ID: id})
}

func (f *sdFill) param(name, value string, escaped bool) {
	if escaped {
		value = unescapeSD(value)
	}
	f.params = append(f.params, protocol.SDParam{Name: name, Value: value})
	// An element's parameters are the part of params after those of the
	// elements before it; its capacity ends there, so that appending to
	// one element's parameters cannot overwrite the next one's.
	el := &f.elems[len(f.elems)-1]
	n := len(el.Params) + 1
	el.Params = f.params[len(f.params)-n : len(f.params) : len(f.params)]
}

// scanSD reads the elements at the start of s and returns where they end
// (len(s), or the space before MSG) and how many elements and parameters
// it read. It hands them to fill when fill is not nil.
func scanSD[T ~string | ~[]byte](s T, fill *sdFill) (end, elems, params int, ok bool) {
	i := 0
	for {
		if i >= len(s) || s[i] != '[' {
			return 0, 0, 0, false
		}
		i++
		n := sdName(s[i:])
		if n == 0 || i+n >= len(s) {
			return 0, 0, 0, false
		}
		if elems++; fill != nil {
			fill.element(string(s[i : i+n]))
		}
		i += n
		for s[i] == ' ' {
			i++
			n := sdName(s[i:])
			if n == 0 || i+n+1 >= len(s) || s[i+n] != '=' || s[i+n+1] != '"' {
				return 0, 0, 0, false
			}
			name := s[i : i+n]
			i += n + 2
			start, escaped := i, false
			for i < len(s) && s[i] != '"' {
				if s[i] == '\\' && i+1 < len(s) {
					if c := s[i+1]; c == '"' || c == '\\' || c == ']' {
						escaped = true
						i++
					}
				}
				i++
			}
			if i+1 >= len(s) { // no closing quote, or nothing after it
				return 0, 0, 0, false
			}
			if params++; fill != nil {
				fill.param(string(name), string(s[start:i]), escaped)
			}
			i++
		}
		if s[i] != ']' {
			return 0, 0, 0, false
		}
		i++
		if i == len(s) || s[i] == ' ' {
			return i, elems, params, true
		}
	}
}

// sdName returns the length of the SD-NAME at the start of s: 0 when there
// is none, or when it is longer than protocol.MaxSDName.
func sdName[T ~string | ~[]byte](s T) int {
	n := 0
	for n < len(s) && protocol.IsSDNameByte(s[n]) {
		n++
		if n > protocol.MaxSDName {
			return 0
		}
	}
	return n
}

// unescapeSD undoes the escapes `\"`, `\\` and `\]` of a value; a
// backslash before another character stays.
func unescapeSD(v string) string {
	var b strings.Builder
	b.Grow(len(v))
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '\\' && i+1 < len(v) {
			if next := v[i+1]; next == '"' || next == '\\' || next == ']' {
				c = next
				i++
			}
		}
		b.WriteByte(c)
	}
	return b.String()
}

// hasDuplicateID reports whether two elements have the same SD-ID.
func hasDuplicateID(elems []protocol.SDElement) bool {
	if len(elems) <= 8 {
		for i := 1; i < len(elems); i++ {
			for j := 0; j < i; j++ {
				if elems[i].ID == elems[j].ID {
					return true
				}
			}
		}
		return false
	}
	seen := make(map[string]struct{}, len(elems))
	for _, el := range elems {
		if _, ok := seen[el.ID]; ok {
			return true
		}
		seen[el.ID] = struct{}{}
	}
	return false
}

// The SD-IDs ending in regionSuffix are the region's own: it writes
// hardcopy@zbridge (the columns of a z/OS hardcopy line it read) and
// status@zbridge (an availability record), and rules take such an element
// for what the region read or decided. A sender's element with such an ID
// is kept under the ID with claimedSuffix in its place (hardcopy@zbridge
// becomes hardcopy@claimed, the same length, so still an SD-NAME): what the
// sender wrote stays in the event for anyone who wants it, but nothing
// that asks for the region's element finds it.
const (
	regionSuffix  = "@zbridge"
	claimedSuffix = "@claimed"
)

// disown renames, in place, the elements of sd whose SD-ID the region owns
// (see regionSuffix) and returns sd. When a renamed SD-ID is then another
// element's too (the sender sent both x@zbridge and x@claimed), it returns
// nil: the structured data is malformed, as any with an SD-ID twice, and is
// only in Raw.
func disown(sd []protocol.SDElement) []protocol.SDElement {
	renamed := false
	for i := range sd {
		if name, ok := strings.CutSuffix(sd[i].ID, regionSuffix); ok {
			sd[i].ID = name + claimedSuffix
			renamed = true
		}
	}
	if renamed && hasDuplicateID(sd) {
		return nil
	}
	return sd
}
