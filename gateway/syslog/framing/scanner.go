// Package framing splits a syslog byte stream (TCP, or TLS per RFC 5425)
// into frames. It knows the two framings of RFC 6587 and nothing of the
// syslog message format; it does no I/O policy (deadlines, limits on
// connections) and starts no goroutines. SPEC.md beside this file describes
// the frames it accepts.
//
// The framing is detected once per stream, from its first byte: a digit
// selects octet counting ("LEN SP MSG"), anything else (normally "<", the
// start of a PRI) selects non-transparent framing, where a frame ends at LF
// or NUL and a CR before the terminator is dropped.
package framing

import (
	"bytes"
	"fmt"
	"io"
)

// DefaultMaxFrame is the frame size limit used when none is given: the
// default MaxFrameSize of rsyslog's imtcp.
const DefaultMaxFrame = 200000

const (
	readSize       = 64 << 10 // the buffer a Scanner starts with
	minRead        = 4 << 10  // compact the buffer rather than read less than this
	maxCountDigits = 9        // an octet count of more digits is malformed
	headroom       = 16       // buffer space beyond the max frame: count, SP, CR, LF
)

// Mode is the framing of a stream.
type Mode uint8

// The framings. A Scanner's mode is ModeUnknown until it has seen the
// stream's first byte.
const (
	ModeUnknown        Mode = iota
	ModeOctetCounting       // RFC 6587 section 3.4.1: "LEN SP MSG"
	ModeNonTransparent      // RFC 6587 section 3.4.2: MSG LF (here also MSG NUL)
)

// String returns "unknown", "octet-counting" or "non-transparent".
func (m Mode) String() string {
	switch m {
	case ModeOctetCounting:
		return "octet-counting"
	case ModeNonTransparent:
		return "non-transparent"
	}
	return "unknown"
}

// span locates a frame in the buffer: its bytes are buf[fs:fe] and the
// stream continues at buf[adv].
type span struct{ fs, fe, adv int }

// A Scanner reads frames from a stream. Frames are returned as slices of the
// Scanner's buffer: no allocation per frame once the buffer has grown to the
// largest frame seen. A Scanner is not safe for concurrent use.
type Scanner struct {
	r     io.Reader
	max   int
	limit int // largest buffer ever needed: max + headroom

	buf        []byte
	start, end int   // buf[start:end] is read but not consumed
	off        int64 // stream offset of buf[start]
	scanned    int   // non-transparent: buf[start:scanned] holds no terminator
	mode       Mode

	readErr error // the reader's error, reported once buffered frames are used up
	err     error // sticky: returned by every Next after the first error

	have    bool // Buffered located the next frame:
	pending span // this one
}

// NewScanner returns a Scanner that reads from r, with frames of at most
// maxFrame bytes (DefaultMaxFrame if maxFrame <= 0). Its buffer starts at
// 64 KiB (less when maxFrame is small) and grows to hold the largest frame.
func NewScanner(r io.Reader, maxFrame int) *Scanner {
	if maxFrame <= 0 {
		maxFrame = DefaultMaxFrame
	}
	s := &Scanner{r: r, max: maxFrame, limit: maxFrame + headroom}
	s.buf = make([]byte, min(readSize, s.limit))
	return s
}

// Mode reports the stream's framing; ModeUnknown until the first byte is read.
func (s *Scanner) Mode() Mode { return s.mode }

// MaxFrame reports the frame size limit.
func (s *Scanner) MaxFrame() int { return s.max }

// Offset reports how many bytes of the stream have been consumed: the
// offset at which the next frame (or its octet count) starts.
func (s *Scanner) Offset() int64 { return s.off }

// Next returns the next frame, without its framing. The slice is valid until
// the next call to Next. Empty lines under non-transparent framing are
// skipped; octet counting cannot express an empty frame (RFC 6587 requires
// a non-zero count), so Next never returns an empty frame with a nil error.
//
// At a clean end of the stream Next returns io.EOF. Other errors wrap one of
// the package's sentinels and say at which stream offset the problem is; with
// them Next returns what it received of the offending frame, so that the
// caller can keep it (a raw event):
//   - ErrPartialFrame: the stream ended, or the reader failed (that error is
//     wrapped too), inside a frame; the bytes are those received of the
//     frame (its MSG part once the octet count has been read).
//   - ErrFrameTooLarge: the octet count exceeds the limit (the bytes are
//     those of the MSG already buffered, at most the limit), or a line is
//     longer than the limit (the bytes are its first MaxFrame bytes).
//     Lines are never delivered truncated as if they were whole frames.
//   - ErrBadCount: the bytes buffered from the bad header on (at most the limit).
//
// A reader error met between frames is returned wrapped. After any error,
// every later call returns the same error and no bytes.
func (s *Scanner) Next() ([]byte, error) {
	if s.have {
		s.have = false
		sp := s.pending
		s.consume(sp.adv)
		return s.buf[sp.fs:sp.fe], nil
	}
	if s.err != nil {
		return nil, s.err
	}
	for {
		sp, ok, need, err := s.find()
		if err != nil {
			s.err = err
			return s.buf[sp.fs:sp.fe], err
		}
		if ok {
			s.consume(sp.adv)
			return s.buf[sp.fs:sp.fe], nil
		}
		if s.readErr != nil {
			return s.finish()
		}
		s.fill(need)
	}
}

// Buffered reports whether a complete frame is already in the buffer, so
// that the next call to Next returns it without reading. A server uses it to
// gather the frames of one read into one batch.
func (s *Scanner) Buffered() bool {
	if s.have {
		return true
	}
	if s.err != nil {
		return false
	}
	sp, ok, _, err := s.find()
	if err != nil || !ok {
		return false // Next finds the same error, or reads
	}
	s.have, s.pending = true, sp
	return true
}

// find locates the next complete frame in buf[start:end] without reading.
// It reports ok and the frame; or need, the number of bytes from start it
// must have to go on; or an error and the span of the offending bytes.
func (s *Scanner) find() (sp span, ok bool, need int, err error) {
	if s.start == s.end {
		return span{}, false, 1, nil
	}
	if s.mode == ModeUnknown {
		if c := s.buf[s.start]; c >= '0' && c <= '9' {
			s.mode = ModeOctetCounting
		} else {
			s.mode = ModeNonTransparent
		}
	}
	if s.mode == ModeOctetCounting {
		return s.findCounted()
	}
	return s.findLine()
}

func (s *Scanner) findCounted() (span, bool, int, error) {
	// Line ends between frames are not part of any frame: some senders
	// end every octet-counted frame with LF as well. Skip them.
	for s.start < s.end && (s.buf[s.start] == '\n' || s.buf[s.start] == '\r' || s.buf[s.start] == 0) {
		s.start++
		s.off++
	}
	b := s.buf[s.start:s.end]
	n := 0
	for i, c := range b {
		switch {
		case c == ' ' && i > 0:
			fs := s.start + i + 1
			if n > s.max {
				return span{fs: fs, fe: min(s.end, fs+s.max)}, false, 0,
					fmt.Errorf("%w: octet count %d exceeds %d at offset %d", ErrFrameTooLarge, n, s.max, s.off)
			}
			if s.end-fs >= n {
				return span{fs: fs, fe: fs + n, adv: fs + n}, true, 0, nil
			}
			return span{}, false, i + 1 + n, nil
		case c == '0' && i == 0:
			return s.badCount("count starts with 0", 0)
		case c >= '0' && c <= '9':
			if i >= maxCountDigits {
				return s.badCount(fmt.Sprintf("count longer than %d digits", maxCountDigits), i)
			}
			n = n*10 + int(c-'0')
		case i == 0:
			return s.badCount(fmt.Sprintf("expecting a digit, found %q", c), i)
		default:
			return s.badCount(fmt.Sprintf("expecting a digit or a space, found %q", c), i)
		}
	}
	return span{}, false, len(b) + 1, nil
}

func (s *Scanner) badCount(what string, i int) (span, bool, int, error) {
	return span{fs: s.start, fe: min(s.end, s.start+s.max)}, false, 0,
		fmt.Errorf("%w: %s at offset %d", ErrBadCount, what, s.off+int64(i))
}

func (s *Scanner) findLine() (span, bool, int, error) {
	for s.start < s.end {
		from := max(s.scanned, s.start)
		t := indexTerm(s.buf[from:s.end])
		if t < 0 {
			s.scanned = s.end
			pending := s.end - s.start
			// The frame is longer than max unless its (max+1)th byte is a CR
			// that the terminator will follow.
			if pending > s.max+1 || (pending == s.max+1 && s.buf[s.end-1] != '\r') {
				return span{fs: s.start, fe: s.start + s.max}, false, 0, s.lineTooLarge()
			}
			return span{}, false, pending + 1, nil
		}
		t += from
		fe := t
		if fe > s.start && s.buf[fe-1] == '\r' {
			fe--
		}
		if fe == s.start { // an empty line: skip it
			s.consume(t + 1)
			continue
		}
		if fe-s.start > s.max {
			return span{fs: s.start, fe: s.start + s.max}, false, 0, s.lineTooLarge()
		}
		return span{fs: s.start, fe: fe, adv: t + 1}, true, 0, nil
	}
	return span{}, false, 1, nil
}

func (s *Scanner) lineTooLarge() error {
	return fmt.Errorf("%w: line longer than %d bytes at offset %d", ErrFrameTooLarge, s.max, s.off)
}

// indexTerm returns the index of the first LF or NUL in b, or -1.
func indexTerm(b []byte) int {
	i := bytes.IndexByte(b, '\n')
	lim := b
	if i >= 0 {
		lim = b[:i]
	}
	if j := bytes.IndexByte(lim, 0); j >= 0 {
		return j
	}
	return i
}

// consume advances the stream to buf[to].
func (s *Scanner) consume(to int) {
	s.off += int64(to - s.start)
	s.start = to
	if s.start == s.end { // empty: read into the front next time
		s.start, s.end, s.scanned = 0, 0, 0
	}
}

// finish reports the end of the stream (s.readErr is set) with no complete
// frame buffered.
func (s *Scanner) finish() ([]byte, error) {
	pending := s.end - s.start
	if pending == 0 {
		if s.readErr == io.EOF {
			s.err = io.EOF
		} else {
			s.err = fmt.Errorf("framing: read at offset %d: %w", s.off, s.readErr)
		}
		return nil, s.err
	}
	fs, fe := s.start, s.end
	switch s.mode {
	case ModeOctetCounting: // the MSG part, once the count has been read
		hdr := s.buf[s.start:min(s.end, s.start+maxCountDigits+1)]
		if i := bytes.IndexByte(hdr, ' '); i > 0 {
			fs = s.start + i + 1
		}
	case ModeNonTransparent:
		if s.buf[fe-1] == '\r' {
			fe--
		}
	}
	fe = min(fe, fs+s.max)
	if s.readErr == io.EOF {
		s.err = fmt.Errorf("%w: %d bytes at offset %d", ErrPartialFrame, pending, s.off)
	} else {
		s.err = fmt.Errorf("%w: %d bytes at offset %d: %w", ErrPartialFrame, pending, s.off, s.readErr)
	}
	return s.buf[fs:fe], s.err
}

// fill reads once into the buffer, first making room for need bytes from
// start (growing the buffer up to the limit, or moving the unconsumed bytes
// to the front).
func (s *Scanner) fill(need int) {
	switch {
	case need > len(s.buf):
		size := min(max(need, 2*len(s.buf)), max(need, s.limit))
		nb := make([]byte, size)
		s.shift(nb)
		s.buf = nb
	case need > len(s.buf)-s.start, s.start > 0 && len(s.buf)-s.end < minRead:
		s.shift(s.buf)
	}
	for range 100 {
		n, err := s.r.Read(s.buf[s.end:])
		if n < 0 || n > len(s.buf)-s.end {
			s.readErr = fmt.Errorf("framing: reader returned invalid count %d", n)
			return
		}
		s.end += n
		if err != nil {
			s.readErr = err
			return
		}
		if n > 0 {
			return
		}
	}
	s.readErr = io.ErrNoProgress
}

// shift moves the unconsumed bytes to the front of dst (which may be s.buf).
func (s *Scanner) shift(dst []byte) {
	n := copy(dst, s.buf[s.start:s.end])
	s.scanned = max(s.scanned-s.start, 0)
	s.start, s.end = 0, n
}
