package relp

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Limits of the frame grammar (SPEC.md).
const (
	// MaxTxnr is the largest transaction number; the one after it is 1.
	MaxTxnr = 999_999_999
	// MaxDataLen is the largest DATALEN the grammar can express (9 digits).
	MaxDataLen = 999_999_999
	// MaxCommandLen is the longest command name.
	MaxCommandLen = 32
	// DefaultMaxData is librelp's default maximum DATALEN (128 KiB), used
	// by NewReader when it is given 0.
	DefaultMaxData = 128 << 10

	maxNumberLen = 9
	// maxHeader is the longest header: TXNR SP COMMAND SP DATALEN SP.
	maxHeader = maxNumberLen + 1 + MaxCommandLen + 1 + maxNumberLen + 1
	// minBuffer is the smallest buffer a Reader works with.
	minBuffer = 64
)

// The commands of RELP version 1, as librelp speaks them. Txnr 0 carries
// hints, which are never answered; serverclose is the only one.
const (
	CmdOpen        = "open"        // client: start of a session, data: offers
	CmdSyslog      = "syslog"      // client: one syslog message
	CmdClose       = "close"       // client: end of a session, no data
	CmdRsp         = "rsp"         // server: the response to a command, same txnr
	CmdServerClose = "serverclose" // server hint (txnr 0): the server closes
	CmdStartTLS    = "starttls"    // in the specification only: librelp never sends it
)

// Frame is one RELP frame: TXNR SP COMMAND SP DATALEN [SP DATA] LF.
type Frame struct {
	// Txnr is the transaction number, 0 to MaxTxnr; 0 marks a hint.
	Txnr int
	// Command is 1 to MaxCommandLen ASCII letters.
	Command string
	// Data is the frame's data, DATALEN bytes; nil when DATALEN is 0. A
	// Frame returned by Reader.ReadFrame holds a slice of the Reader's
	// buffer: it is valid until the next ReadFrame.
	Data []byte
}

// NextTxnr returns the transaction number that follows txnr: txnr+1, or 1
// after MaxTxnr (librelp's relpEngineNextTXNR).
func NextTxnr(txnr int) int {
	if txnr >= MaxTxnr {
		return 1
	}
	return txnr + 1
}

// A Reader reads RELP frames from a buffered stream. It does no I/O policy:
// deadlines and the buffer's size are its caller's. It is not safe for
// concurrent use.
type Reader struct {
	br      *bufio.Reader
	maxData int
	off     int64  // stream offset of the next frame
	buf     []byte // data of a frame larger than br's buffer
	err     error  // sticky: every ReadFrame after an error returns it
}

// NewReader returns a Reader of frames from br whose DATALEN is at most
// maxData (DefaultMaxData when maxData is 0; at most MaxDataLen). The
// buffer should be larger than most frames (64 KiB, say); one smaller than
// 64 bytes is wrapped in one of 64. A frame
// whose data fits in br's buffer is returned as a slice of it; a larger one
// is copied into a buffer of the Reader's own, which grows to the largest
// frame read.
func NewReader(br *bufio.Reader, maxData int) *Reader {
	if maxData <= 0 {
		maxData = DefaultMaxData
	}
	// A header must fit in the buffer; NewReaderSize returns br itself
	// when it is large enough.
	br = bufio.NewReaderSize(br, minBuffer)
	return &Reader{br: br, maxData: min(maxData, MaxDataLen)}
}

// Offset returns the stream offset of the next frame: the bytes of the
// frames read so far.
func (r *Reader) Offset() int64 { return r.off }

// MaxData returns the largest DATALEN the Reader accepts.
func (r *Reader) MaxData() int { return r.maxData }

// ReadFrame reads the next frame. At the end of the stream between frames
// it returns io.EOF. Otherwise every error wraps ErrMalformed, ErrTooLarge,
// ErrTruncated (with the read error too, if any) or, when the stream fails
// between frames, the read error; it says at what stream offset. After an
// error the stream cannot be resynchronised: every later ReadFrame returns
// the same error.
func (r *Reader) ReadFrame() (Frame, error) {
	if r.err != nil {
		return Frame{}, r.err
	}
	f, err := r.readFrame()
	if err != nil {
		r.err = err
	}
	return f, err
}

func (r *Reader) readFrame() (Frame, error) {
	// The header: peek at what is buffered, and at one byte more while it
	// is not complete.
	var h header
	want := 1
	for {
		p, err := r.br.Peek(want)
		if len(p) < want {
			switch {
			case len(p) == 0 && err == io.EOF:
				return Frame{}, io.EOF
			case len(p) == 0:
				return Frame{}, fmt.Errorf("relp: read at offset %d: %w", r.off, err)
			case err == io.EOF:
				return Frame{}, fmt.Errorf("%w: %d bytes of a header at offset %d: %w", ErrTruncated, len(p), r.off, io.ErrUnexpectedEOF)
			default:
				return Frame{}, fmt.Errorf("%w: %d bytes of a header at offset %d: %w", ErrTruncated, len(p), r.off, err)
			}
		}
		p, _ = r.br.Peek(min(r.br.Buffered(), maxHeader))
		var n int
		h, n, err = parseHeader(p, r.maxData)
		if err == errShort {
			want = n + 1
			continue
		}
		if err != nil {
			return Frame{}, fmt.Errorf("%w at offset %d", err, r.off+int64(n))
		}
		r.br.Discard(n)
		break
	}

	f := Frame{Txnr: h.txnr, Command: h.command}
	start := r.off
	r.off += int64(h.size)
	if h.dataLen == 0 {
		return f, nil // the header ended with the trailer
	}
	dataOff := start + int64(h.size-h.dataLen-1)
	var data []byte
	var err error
	if h.dataLen+1 <= r.br.Size() {
		data, err = r.br.Peek(h.dataLen + 1)
		if err == nil {
			r.br.Discard(h.dataLen + 1)
		}
	} else {
		if cap(r.buf) < h.dataLen+1 {
			r.buf = make([]byte, h.dataLen+1)
		}
		var n int
		n, err = io.ReadFull(r.br, r.buf[:h.dataLen+1])
		data = r.buf[:n]
	}
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = io.ErrUnexpectedEOF
		}
		return Frame{}, fmt.Errorf("%w: %d of %d data bytes and trailer at offset %d: %w",
			ErrTruncated, len(data), h.dataLen+1, dataOff, err)
	}
	if c := data[h.dataLen]; c != '\n' {
		return Frame{}, fmt.Errorf("%w: trailer at offset %d is %q, want LF (DATALEN %d does not match the data?)",
			ErrMalformed, dataOff+int64(h.dataLen), c, h.dataLen)
	}
	f.Data = data[:h.dataLen:h.dataLen]
	return f, nil
}

// Buffered reports whether the next ReadFrame returns without reading from
// the stream: the next frame is complete in the buffer (or the next bytes
// are already known to be malformed). A frame larger than the buffer is
// never reported buffered.
func (r *Reader) Buffered() bool {
	if r.err != nil {
		return true
	}
	n := r.br.Buffered()
	if n == 0 {
		return false
	}
	p, _ := r.br.Peek(min(n, maxHeader))
	h, _, err := parseHeader(p, r.maxData)
	switch {
	case err == errShort:
		return false
	case err != nil:
		return true
	}
	return h.size <= n
}

// header is a parsed frame header.
type header struct {
	txnr    int
	command string
	dataLen int
	size    int // of the whole frame: header, data and trailer
}

// errShort tells that p ends before the header does.
var errShort = errors.New("short header")

// parseHeader parses the header at the start of p: TXNR SP COMMAND SP
// DATALEN, followed by SP when DATALEN is not 0, else by the trailer LF.
// It returns the header and its length. When p ends first, it returns
// errShort and len(p); on an error, the position of the offending byte.
func parseHeader(p []byte, maxData int) (header, int, error) {
	var h header
	i := 0
	// TXNR
	for ; i < len(p) && isDigit(p[i]); i++ {
		if i == maxNumberLen {
			return h, i, fmt.Errorf("%w: TXNR longer than %d digits", ErrMalformed, maxNumberLen)
		}
		h.txnr = h.txnr*10 + int(p[i]-'0')
	}
	if i == len(p) {
		return h, i, errShort
	}
	if i == 0 {
		return h, i, fmt.Errorf("%w: TXNR: %q is not a digit", ErrMalformed, p[i])
	}
	if p[i] != ' ' {
		return h, i, fmt.Errorf("%w: TXNR: %q is not a digit or the space after it", ErrMalformed, p[i])
	}
	i++
	// COMMAND
	cs := i
	for ; i < len(p) && isAlpha(p[i]); i++ {
		if i-cs == MaxCommandLen {
			return h, i, fmt.Errorf("%w: COMMAND longer than %d letters", ErrMalformed, MaxCommandLen)
		}
	}
	if i == len(p) {
		return h, i, errShort
	}
	if i == cs {
		return h, i, fmt.Errorf("%w: COMMAND: %q is not a letter", ErrMalformed, p[i])
	}
	if p[i] != ' ' {
		return h, i, fmt.Errorf("%w: COMMAND: %q is not a letter or the space after it", ErrMalformed, p[i])
	}
	command := p[cs:i]
	i++
	// DATALEN
	ds := i
	for ; i < len(p) && isDigit(p[i]); i++ {
		if i-ds == maxNumberLen {
			return h, i, fmt.Errorf("%w: DATALEN longer than %d digits", ErrMalformed, maxNumberLen)
		}
		h.dataLen = h.dataLen*10 + int(p[i]-'0')
	}
	if i == len(p) {
		return h, i, errShort
	}
	if i == ds {
		return h, i, fmt.Errorf("%w: DATALEN: %q is not a digit", ErrMalformed, p[i])
	}
	switch {
	case h.dataLen == 0 && p[i] != '\n':
		return h, i, fmt.Errorf("%w: DATALEN 0 must be followed by the trailer LF, not %q", ErrMalformed, p[i])
	case h.dataLen != 0 && p[i] != ' ':
		return h, i, fmt.Errorf("%w: DATALEN: %q is not a digit or the space after it", ErrMalformed, p[i])
	case h.dataLen > maxData:
		return h, ds, fmt.Errorf("%w: DATALEN %d, limit %d", ErrTooLarge, h.dataLen, maxData)
	}
	i++
	h.command = commandString(command)
	h.size = i
	if h.dataLen > 0 {
		h.size += h.dataLen + 1
	}
	return h, i, nil
}

// commandString returns the known commands without allocating.
func commandString(b []byte) string {
	switch string(b) {
	case CmdSyslog:
		return CmdSyslog
	case CmdRsp:
		return CmdRsp
	case CmdOpen:
		return CmdOpen
	case CmdClose:
		return CmdClose
	case CmdServerClose:
		return CmdServerClose
	}
	return string(b)
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// ValidFrame reports what makes f impossible to encode, or nil: a Txnr
// outside 0..MaxTxnr, a Command that is not 1 to MaxCommandLen letters.
func ValidFrame(f Frame) error {
	if f.Txnr < 0 || f.Txnr > MaxTxnr {
		return fmt.Errorf("%w: TXNR %d out of range", ErrMalformed, f.Txnr)
	}
	if len(f.Command) == 0 || len(f.Command) > MaxCommandLen {
		return fmt.Errorf("%w: COMMAND %q is not 1 to %d letters", ErrMalformed, f.Command, MaxCommandLen)
	}
	for i := 0; i < len(f.Command); i++ {
		if !isAlpha(f.Command[i]) {
			return fmt.Errorf("%w: COMMAND %q is not 1 to %d letters", ErrMalformed, f.Command, MaxCommandLen)
		}
	}
	if len(f.Data) > MaxDataLen {
		return fmt.Errorf("%w: DATALEN %d", ErrTooLarge, len(f.Data))
	}
	return nil
}

// AppendFrame appends the encoding of f to dst: "TXNR SP COMMAND SP
// DATALEN", then SP and the data unless there is none, then LF, as librelp
// writes frames. It panics if f is not valid (see ValidFrame): frames are
// built by the program, not taken from the wire.
func AppendFrame(dst []byte, f Frame) []byte {
	if err := ValidFrame(f); err != nil {
		panic(err)
	}
	dst = strconv.AppendInt(dst, int64(f.Txnr), 10)
	dst = append(dst, ' ')
	dst = append(dst, f.Command...)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, int64(len(f.Data)), 10)
	if len(f.Data) > 0 {
		dst = append(dst, ' ')
		dst = append(dst, f.Data...)
	}
	return append(dst, '\n')
}
