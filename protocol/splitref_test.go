package protocol

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"
)

// splitEventFrameReference is SplitEventFrame as it was before its one-pass
// scanner (eventscan.go): a control-character pass, utf8.Valid,
// json.Valid and a walk for the ID keys. FuzzSplitEventFrameReference
// holds the two to the same answers.
func splitEventFrameReference(line []byte) (obj []byte, id ID, ok bool) {
	line = bytes.TrimRight(line, "\r\n")
	const idStart = eventFramePrefix + `{"id":"`
	if !bytes.HasPrefix(line, []byte(idStart)) || !bytes.HasSuffix(line, []byte("}}")) {
		return nil, ID{}, false
	}
	rest := line[len(idStart):]
	end := bytes.IndexByte(rest, '"')
	if end < 0 {
		return nil, ID{}, false
	}
	id, err := ParseID(string(rest[:end]))
	if err != nil || id.IsZero() {
		return nil, ID{}, false
	}
	obj = line[len(eventFramePrefix) : len(line)-1]
	for i, c := range obj {
		switch {
		case c < 0x20:
			return nil, ID{}, false
		case c == 0xc2 && i+1 < len(obj) && obj[i+1] >= 0x80 && obj[i+1] <= 0x9f: // C1
			return nil, ID{}, false
		case c == 0xe2 && i+2 < len(obj) && obj[i+1] == 0x80 && (obj[i+2] == 0xa8 || obj[i+2] == 0xa9):
			return nil, ID{}, false
		}
	}
	if !utf8.Valid(obj) || !json.Valid(obj) || refIDKeys(obj) != 1 {
		return nil, ID{}, false
	}
	return obj, id, true
}

// idKeys counts the members of the valid JSON object obj whose key
// encoding/json would take for an event's "id" (case-insensitively, escapes
// undone): an object with more than one would decode to another ID than
// the first, which SplitEventFrame reads.
func refIDKeys(obj []byte) int {
	n := 0
	i := 1 // after '{'
	for i < len(obj) {
		i = refSkipSpace(obj, i)
		if i >= len(obj) || obj[i] != '"' {
			break // '}': the end
		}
		key, end := refJSONString(obj, i)
		if strings.EqualFold(key, "id") {
			n++
		}
		i = refSkipSpace(obj, end)
		i = refSkipValue(obj, refSkipSpace(obj, i+1)) // after ':'
		i = refSkipSpace(obj, i)
		if i < len(obj) && obj[i] == ',' {
			i++
		}
	}
	return n
}

func refSkipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// jsonString returns the value of the JSON string at b[i] (a quote),
// escapes undone, and the index after its closing quote. b is valid JSON.
func refJSONString(b []byte, i int) (string, int) {
	var sb strings.Builder
	for i++; i < len(b) && b[i] != '"'; i++ {
		if b[i] != '\\' {
			sb.WriteByte(b[i])
			continue
		}
		i++
		if i < len(b) && b[i] == 'u' && i+4 < len(b) {
			if r, err := strconv.ParseUint(string(b[i+1:i+5]), 16, 32); err == nil {
				sb.WriteRune(rune(r))
			}
			i += 4
		} else if i < len(b) {
			sb.WriteByte(b[i])
		}
	}
	return sb.String(), i + 1
}

// skipValue returns the index after the JSON value at b[i]. b is valid JSON.
func refSkipValue(b []byte, i int) int {
	depth := 0
	for i < len(b) {
		switch b[i] {
		case '"':
			_, i = refJSONString(b, i)
			if depth == 0 {
				return i
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return i
			}
			if depth--; depth == 0 {
				return i + 1
			}
		case ',':
			if depth == 0 {
				return i
			}
		}
		i++
	}
	return i
}
