package protocol

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// DefaultMaxFrame is the frame size limit when none is negotiated: 1 MiB.
const DefaultMaxFrame = 1 << 20

// keepLine is the most of a large frame's buffer a Reader keeps for the
// next one.
const keepLine = 64 << 10

// Reader reads frames: JSON objects, one a line, each line at most a set
// number of bytes (the newline not counted; a CR before it is dropped).
type Reader struct {
	br   *bufio.Reader
	max  int
	line []byte // holds a frame that spans buffer refills
	// resume says line holds the start of a frame whose read was
	// interrupted by an error (a deadline): the next call continues it.
	resume bool
	n      int64 // bytes consumed, for error offsets
}

// NewReader returns a Reader of frames of at most maxFrame bytes
// (DefaultMaxFrame if maxFrame <= 0).
func NewReader(r io.Reader, maxFrame int) *Reader {
	return NewReaderSize(r, maxFrame, 0)
}

// NewReaderSize is NewReader with a read buffer of size bytes (64 KiB if
// size <= 0; at most one frame's worth): a reader of a stream at full rate
// makes fewer, larger reads with a larger one.
func NewReaderSize(r io.Reader, maxFrame, size int) *Reader {
	if maxFrame <= 0 {
		maxFrame = DefaultMaxFrame
	}
	if size <= 0 {
		size = 64 << 10
	}
	if maxFrame+1 < size {
		size = maxFrame + 1
	}
	if size < 16 {
		size = 16
	}
	return &Reader{br: bufio.NewReaderSize(r, size), max: maxFrame}
}

// SetMaxFrame changes the limit, e.g. to the one negotiated at logon.
func (r *Reader) SetMaxFrame(n int) { r.max = n }

// ReadLine returns the next frame's bytes, without the line end. The slice is
// valid until the next call. It returns io.EOF at a clean end of input,
// ErrPartialFrame when input ends inside a frame, and ErrFrameTooLarge
// when a frame exceeds the limit (the reader is then unusable).
func (r *Reader) ReadLine() ([]byte, error) {
	if !r.resume {
		// A frame that spanned refills grew line to its size: kept, a
		// connection's one large frame (up to the limit, a MiB) would be
		// held as long as the connection lasts.
		if cap(r.line) > keepLine {
			r.line = nil
		}
		r.line = r.line[:0]
	}
	r.resume = false
	for {
		chunk, err := r.br.ReadSlice('\n')
		r.n += int64(len(chunk))
		if len(r.line)+len(chunk) > r.max { // may be too large: count without the line end
			if n := r.frameLen(chunk); n > r.max {
				return nil, fmt.Errorf("%w: more than %d bytes at offset %d", ErrFrameTooLarge, r.max, r.n-int64(len(chunk)+len(r.line)))
			}
		}
		switch {
		case err == nil:
			var out []byte
			if len(r.line) == 0 {
				out = chunk
			} else {
				r.line = append(r.line, chunk...)
				out = r.line
			}
			out = out[:len(out)-1]
			if len(out) > 0 && out[len(out)-1] == '\r' {
				out = out[:len(out)-1]
			}
			return out, nil
		case errors.Is(err, bufio.ErrBufferFull):
			r.line = append(r.line, chunk...)
		case errors.Is(err, io.EOF):
			if len(r.line)+len(chunk) == 0 {
				return nil, io.EOF
			}
			return nil, fmt.Errorf("%w (%d bytes read of an unterminated frame)", ErrPartialFrame, len(r.line)+len(chunk))
		default:
			// A read error such as a deadline: keep what was read of the
			// frame, so that a later call carries on where this one stopped.
			r.line = append(r.line, chunk...)
			r.resume = true
			return nil, err
		}
	}
}

// HasFrame reports whether the next frame is already read in whole and
// is not a blank line: ReadLine, Next or Decode of it will not read from
// the connection (or wait for it). A client that receives a stream sets
// its read deadline only when it has to wait.
func (r *Reader) HasFrame() bool {
	n := r.br.Buffered()
	if r.resume || n == 0 {
		return false
	}
	b, _ := r.br.Peek(n) // what is buffered: no read
	end := bytes.IndexByte(b, '\n')
	return end >= 0 && len(bytes.TrimSpace(b[:end])) > 0
}

// frameLen returns the length of the frame in r.line and chunk without its
// line end: the LF, and one CR before it. A chunk with no LF yet may end in
// the CR of a CR LF, so that CR is not counted either; the length is then a
// lower bound.
func (r *Reader) frameLen(chunk []byte) int {
	n := len(r.line) + len(chunk)
	if len(chunk) > 0 && chunk[len(chunk)-1] == '\n' {
		n--
	}
	if n > 0 {
		last := n - 1
		c := byte(0)
		if last < len(r.line) {
			c = r.line[last]
		} else {
			c = chunk[last-len(r.line)]
		}
		if c == '\r' {
			n--
		}
	}
	return n
}

// Next reads and decodes the next frame into f (which it resets first).
// Blank lines are skipped.
func (r *Reader) Next(f *Frame) error {
	for {
		line, err := r.ReadLine()
		if err != nil {
			return err
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		return Decode(line, f)
	}
}

// Decode decodes one frame's bytes into f, which it resets first. A frame
// that is not a JSON object or has no type is ErrMalformed; so is one with
// a container over its limit (ErrOverLimit too), found before the
// container is built. A container the frame's type does not carry (events
// on a heartbeat) is not decoded (see SPEC.md). On an error f is reset.
//
// Most frames are read without encoding/json (decodeFrameJSON), their
// containers with it; those in a form decodeFrameJSON does not take go
// through it in whole (decodeSlow).
func Decode(b []byte, f *Frame) error {
	*f = Frame{}
	err := decodeFast(b, f)
	if errors.Is(err, errNotFast) {
		*f = Frame{}
		err = decodeSlow(b, f)
		var se *json.SyntaxError
		if errors.As(err, &se) {
			err = fmt.Errorf("%s at offset %d", se.Error(), se.Offset)
		}
		if err == nil && f.Type == "" {
			err = errNoType
		}
	}
	if err != nil {
		*f = Frame{}
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return nil
}

// decodeFast decodes b into f, which is zero, with decodeFrameJSON and its
// containers with encoding/json; errNotFast when decodeFrameJSON leaves
// b to decodeSlow.
func decodeFast(b []byte, f *Frame) error {
	var spans containerSpans
	if !decodeFrameJSON(b, f, &spans) {
		return errNotFast
	}
	if f.Type == "" {
		return errNoType
	}
	for c, s := range spans {
		if s.end > 0 {
			if err := container(c).decode(f, b[s.start:s.end], s.start); err != nil {
				return err
			}
		}
	}
	return nil
}

// maxBareType is the longest type AppendBareFrame writes itself.
const maxBareType = 32

// bareTypeByte reports whether c may be in a type AppendBareFrame writes
// itself: one encoding/json writes as itself.
func bareTypeByte(c byte) bool {
	return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}

// AppendBareFrame appends the wire form of a frame with nothing but a type
// and a request number (a heartbeat, a reply without a result): the bytes
// AppendFrame writes for it, without its reflection.
func AppendBareFrame(b []byte, typ string, req uint64) []byte {
	bare := len(typ) > 0 && len(typ) <= maxBareType
	for i := 0; bare && i < len(typ); i++ {
		bare = bareTypeByte(typ[i])
	}
	if !bare {
		b, _ = AppendFrame(b, &Frame{Type: typ, Req: req}) // a string and a number always encode
		return b
	}
	b = append(b, `{"type":"`...)
	b = append(b, typ...)
	b = append(b, '"')
	if req != 0 {
		b = append(b, `,"req":`...)
		b = strconv.AppendUint(b, req, 10)
	}
	return append(b, "}\n"...)
}

// eventFramePrefix is how AppendEventFrame starts a frame, up to the event
// object, which starts with its ID.
const eventFramePrefix = `{"type":"event","event":`

// SplitEventFrame returns the event object of an event frame in the form
// AppendEventFrame writes, and the event's ID, without decoding the rest:
// a reader that passes events on as JSON (zbridge tail --format json)
// need not decode and encode each one again. ok is false for a frame of
// any other form, which Decode reads, and for an object that is not valid
// JSON or that holds a character the region's encoder always escapes (a
// control character, C1 included, U+2028/U+2029, or invalid UTF-8), or
// that has another member Decode would take for its ID: what passes is as
// safe to print as what the encoder writes, and has the ID Decode would
// read. Its other members are not checked as Decode checks them (a
// hostile region could send a text that is an object): the JSON's reader
// reads them. obj is a part of line.
func SplitEventFrame(line []byte) (obj []byte, id ID, ok bool) {
	for len(line) > 0 && (line[len(line)-1] == '\n' || line[len(line)-1] == '\r') {
		line = line[:len(line)-1] // bytes.TrimRight, without building its set each time
	}
	const idStart = eventFramePrefix + `{"id":"`
	if !bytes.HasPrefix(line, []byte(idStart)) || !bytes.HasSuffix(line, []byte("}}")) {
		return nil, ID{}, false
	}
	rest := line[len(idStart):]
	end := bytes.IndexByte(rest, '"')
	if end < 0 {
		return nil, ID{}, false
	}
	id, ok = parseIDBytes(rest[:end])
	if !ok || id.IsZero() {
		return nil, ID{}, false
	}
	obj = line[len(eventFramePrefix) : len(line)-1]
	if !scanEventObject(obj) {
		return nil, ID{}, false
	}
	return obj, id, true
}

// AppendFrame appends f's wire form (JSON and a newline) to b. Event
// streams use AppendEventFrame, which writes the same JSON faster. Most
// frames are written without encoding/json (appendFrameJSON); those with
// options, a filter or events go through it.
func AppendFrame(b []byte, f *Frame) ([]byte, error) {
	if out, ok := appendFrameJSON(b, f); ok {
		return append(out, '\n'), nil
	}
	j, err := json.Marshal(f)
	if err != nil {
		return b, fmt.Errorf("protocol: encode %s frame: %w", f.Type, err)
	}
	b = append(b, j...)
	return append(b, '\n'), nil
}

// AppendPreparedEventFrame appends the event frame of the event with ID id
// whose JSON after its ID is rest (AppendEventJSONAfterID): the same bytes
// as AppendEventFrame, for each subscriber of an event encoded once.
func AppendPreparedEventFrame(b []byte, id ID, rest []byte) []byte {
	b = append(b, eventFramePrefix...)
	b = append(b, `{"id":"`...)
	b = id.Append(b)
	b = append(b, rest...)
	return append(b, "}\n"...)
}

// AppendEventFrame appends the wire form of an event frame in JSON format.
// It is the fast path of AppendFrame; the result decodes to the same Frame.
func AppendEventFrame(b []byte, e *Event) []byte {
	b = append(b, eventFramePrefix...)
	b = AppendEventJSON(b, e)
	return append(b, "}\n"...)
}

// AppendLineFrame appends the wire form of an event frame in a text format:
// the event's ID and its formatted line.
func AppendLineFrame(b []byte, id ID, line string) []byte {
	return AppendQuotedLineFrame(b, id, appendString(nil, line))
}

// AppendQuotedLineFrame is AppendLineFrame with the line already quoted
// (AppendJSONString): a line quoted once serves every subscriber.
func AppendQuotedLineFrame(b []byte, id ID, quoted []byte) []byte {
	b = append(b, `{"type":"event","id":"`...)
	b = id.Append(b)
	b = append(b, `","line":`...)
	b = append(b, quoted...)
	return append(b, "}\n"...)
}

// AppendJSONString appends s as a JSON string, quoted and escaped as event
// frames are (see AppendEventJSON).
func AppendJSONString(b []byte, s string) []byte { return appendString(b, s) }

// Buffered returns the number of bytes read from the connection and not
// yet returned as frames.
func (r *Reader) Buffered() int { return r.br.Buffered() }
