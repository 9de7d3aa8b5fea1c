package framing

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
)

// Frames as real peers send them (util-linux logger 2.38, syslog-ng 3.38).
const (
	loggerOctet5424 = `105 <13>1 2026-11-22T02:50:57.069805+00:00 vm myapp - ID47 [timeQuality tzKnown="1" isSynced="0"] hello world`
	loggerLF5424    = "<13>1 2026-11-22T02:50:57.071676+00:00 vm myapp - - [timeQuality tzKnown=\"1\" isSynced=\"0\"] hello LF\n"
	loggerOctet3164 = `47 <13>Nov 22 02:50:57 vm myapp[17933]: hello 3164`
	loggerLF3164    = "<13>Nov 22 02:50:57 vm myapp: hello 3164 LF\n"
	syslogNGOctet   = "115 <13>1 2026-11-22T02:51:12+00:00 localhost myapp - ID47 [timeQuality tzKnown=\"1\" isSynced=\"0\"] hello from syslog-ng\n" +
		"117 <13>1 2026-11-22T02:51:12+00:00 localhost myapp - - [timeQuality tzKnown=\"1\" isSynced=\"0\"][zb@32473 k=\"v w\"] with sd\n"
)

// octet frames s with RFC 6587 octet counting.
func octet(s ...string) string {
	var b strings.Builder
	for _, f := range s {
		b.WriteString(strconv.Itoa(len(f)))
		b.WriteByte(' ')
		b.WriteString(f)
	}
	return b.String()
}

type result struct {
	frames  []string
	partial string // bytes returned with the error
	err     error  // io.EOF at a clean end
}

func scanAll(sc *Scanner) result {
	var res result
	for {
		f, err := sc.Next()
		if err != nil {
			res.partial, res.err = string(f), err
			return res
		}
		if len(f) == 0 {
			res.frames = append(res.frames, "<EMPTY FRAME>")
		}
		res.frames = append(res.frames, string(f))
		if len(res.frames) > 1e6 {
			res.err = errors.New("runaway scanner")
			return res
		}
	}
}

var errBroken = errors.New("broken pipe (test)")

func TestScanner(t *testing.T) {
	big := strings.Repeat("x", 100000)
	tests := []struct {
		name    string
		in      string
		readErr error // returned by the reader after in, instead of io.EOF
		max     int
		mode    Mode
		frames  []string
		err     error  // sentinel; io.EOF for a clean end
		errText string // substring of the error
		partial string // bytes returned with the error (whole-input feed)
	}{
		{name: "empty stream", in: "", mode: ModeUnknown, err: io.EOF},
		{name: "octet one", in: "5 hello", mode: ModeOctetCounting, frames: []string{"hello"}, err: io.EOF},
		{name: "octet two", in: "5 hello5 world", mode: ModeOctetCounting, frames: []string{"hello", "world"}, err: io.EOF},
		{name: "octet newline inside", in: octet("<13>1 - h a - - - line one\nline two"), mode: ModeOctetCounting,
			frames: []string{"<13>1 - h a - - - line one\nline two"}, err: io.EOF},
		{name: "octet NUL and CR inside", in: octet("a\x00b\r\n"), mode: ModeOctetCounting, frames: []string{"a\x00b\r\n"}, err: io.EOF},
		{name: "logger rfc5424 octet", in: loggerOctet5424, mode: ModeOctetCounting, frames: []string{loggerOctet5424[4:]}, err: io.EOF},
		{name: "logger rfc3164 octet", in: loggerOctet3164, mode: ModeOctetCounting, frames: []string{loggerOctet3164[3:]}, err: io.EOF},
		{name: "syslog-ng octet with trailing LF in frame", in: syslogNGOctet, mode: ModeOctetCounting,
			frames: []string{
				"<13>1 2026-11-22T02:51:12+00:00 localhost myapp - ID47 [timeQuality tzKnown=\"1\" isSynced=\"0\"] hello from syslog-ng\n",
				"<13>1 2026-11-22T02:51:12+00:00 localhost myapp - - [timeQuality tzKnown=\"1\" isSynced=\"0\"][zb@32473 k=\"v w\"] with sd\n",
			}, err: io.EOF},
		{name: "octet exactly max", in: "5 abcde", max: 5, mode: ModeOctetCounting, frames: []string{"abcde"}, err: io.EOF},
		{name: "octet larger than 64KiB buffer", in: octet(big, "after"), mode: ModeOctetCounting, frames: []string{big, "after"}, err: io.EOF},
		{name: "octet count over max", in: "5 hello6 abcdef", max: 5, mode: ModeOctetCounting, frames: []string{"hello"},
			err: ErrFrameTooLarge, errText: "octet count 6 exceeds 5 at offset 7", partial: "abcde"},
		{name: "octet count leading zero", in: "05 hello", mode: ModeOctetCounting,
			err: ErrBadCount, errText: "count starts with 0 at offset 0", partial: "05 hello"},
		{name: "octet line ends between frames skipped", in: "5 hello\n5 world\r\n\x005 again\n", mode: ModeOctetCounting,
			frames: []string{"hello", "world", "again"}, err: io.EOF},
		{name: "octet garbage between frames", in: "5 hello\nx5 world", mode: ModeOctetCounting, frames: []string{"hello"},
			err: ErrBadCount, errText: `expecting a digit, found 'x' at offset 8`, partial: "x5 world"},
		{name: "octet count too long", in: "1234567890 x", mode: ModeOctetCounting,
			err: ErrBadCount, errText: "count longer than 9 digits at offset 9", partial: "1234567890 x"},
		{name: "octet no space", in: "5xhello", mode: ModeOctetCounting,
			err: ErrBadCount, errText: "expecting a digit or a space, found 'x' at offset 1", partial: "5xhello"},
		{name: "octet ends inside frame", in: "5 hello10 hel", mode: ModeOctetCounting, frames: []string{"hello"},
			err: ErrPartialFrame, errText: "6 bytes at offset 7", partial: "hel"},
		{name: "octet ends inside count", in: "5 hello12", mode: ModeOctetCounting, frames: []string{"hello"},
			err: ErrPartialFrame, errText: "2 bytes at offset 7", partial: "12"},
		{name: "octet read error inside frame", in: "10 hel", readErr: errBroken, mode: ModeOctetCounting,
			err: errBroken, errText: "stream ended inside a frame: 6 bytes at offset 0: broken pipe", partial: "hel"},
		{name: "octet read error between frames", in: "5 hello", readErr: errBroken, mode: ModeOctetCounting, frames: []string{"hello"},
			err: errBroken, errText: "framing: read at offset 7: broken pipe"},
		{name: "lf two", in: "<13>a\n<13>b\n", mode: ModeNonTransparent, frames: []string{"<13>a", "<13>b"}, err: io.EOF},
		{name: "lf crlf", in: "<13>a\r\n<13>b\r\n", mode: ModeNonTransparent, frames: []string{"<13>a", "<13>b"}, err: io.EOF},
		{name: "lf NUL terminator", in: "<13>a\x00<13>b\n", mode: ModeNonTransparent, frames: []string{"<13>a", "<13>b"}, err: io.EOF},
		{name: "lf CR NUL terminator", in: "<13>a\r\x00", mode: ModeNonTransparent, frames: []string{"<13>a"}, err: io.EOF},
		{name: "lf empty lines skipped", in: "\n\r\n<13>a\n\n\x00\r\n", mode: ModeNonTransparent, frames: []string{"<13>a"}, err: io.EOF},
		{name: "lf newline splits message", in: "<13>line one\nline two\n", mode: ModeNonTransparent,
			frames: []string{"<13>line one", "line two"}, err: io.EOF},
		{name: "lf garbage first byte", in: "hello there\n", mode: ModeNonTransparent, frames: []string{"hello there"}, err: io.EOF},
		{name: "lf digit inside later frame", in: "<13>a\n5 not a count\n", mode: ModeNonTransparent,
			frames: []string{"<13>a", "5 not a count"}, err: io.EOF},
		{name: "logger rfc5424 lf", in: loggerLF5424 + loggerLF3164, mode: ModeNonTransparent,
			frames: []string{strings.TrimSuffix(loggerLF5424, "\n"), strings.TrimSuffix(loggerLF3164, "\n")}, err: io.EOF},
		{name: "lf exactly max", in: "abcde\nabcde\r\n", max: 5, mode: ModeNonTransparent, frames: []string{"abcde", "abcde"}, err: io.EOF},
		{name: "lf longer than max", in: "abc\nabcdef\nabc\n", max: 5, mode: ModeNonTransparent, frames: []string{"abc"},
			err: ErrFrameTooLarge, errText: "line longer than 5 bytes at offset 4", partial: "abcde"},
		{name: "lf longer than max unterminated", in: "abcdefgh", max: 5, mode: ModeNonTransparent,
			err: ErrFrameTooLarge, errText: "line longer than 5 bytes at offset 0", partial: "abcde"},
		{name: "lf larger than 64KiB buffer", in: "<1>" + big + "\n<2>\n", mode: ModeNonTransparent, frames: []string{"<1>" + big, "<2>"}, err: io.EOF},
		{name: "lf ends inside frame", in: "<13>a\n<13>b", mode: ModeNonTransparent, frames: []string{"<13>a"},
			err: ErrPartialFrame, errText: "5 bytes at offset 6", partial: "<13>b"},
		{name: "lf ends after CR at max", in: "abcde\r", max: 5, mode: ModeNonTransparent,
			err: ErrPartialFrame, errText: "6 bytes at offset 0", partial: "abcde"},
	}
	feeds := []struct {
		name string
		wrap func(io.Reader) io.Reader
	}{
		{"whole", func(r io.Reader) io.Reader { return r }},
		{"byte by byte", iotest.OneByteReader},
		{"half", iotest.HalfReader},
		{"data with EOF", iotest.DataErrReader},
	}
	for _, tt := range tests {
		for _, feed := range feeds {
			t.Run(tt.name+"/"+feed.name, func(t *testing.T) {
				var r io.Reader = strings.NewReader(tt.in)
				if tt.readErr != nil {
					r = io.MultiReader(r, iotest.ErrReader(tt.readErr))
				}
				sc := NewScanner(feed.wrap(r), tt.max)
				res := scanAll(sc)
				if fmt.Sprint(res.frames) != fmt.Sprint(tt.frames) || len(res.frames) != len(tt.frames) {
					t.Errorf("frames = %q, want %q", res.frames, tt.frames)
				}
				if !errors.Is(res.err, tt.err) {
					t.Errorf("err = %v, want %v", res.err, tt.err)
				}
				if tt.errText != "" && (res.err == nil || !strings.Contains(res.err.Error(), tt.errText)) {
					t.Errorf("err = %v, want it to contain %q", res.err, tt.errText)
				}
				// Bytes come with the error; for an octet count over the
				// limit or a bad count they are what happened to be
				// buffered: a prefix of what the whole feed gives.
				if errors.Is(tt.err, ErrBadCount) || errors.Is(tt.err, ErrFrameTooLarge) && sc.Mode() == ModeOctetCounting {
					if !strings.HasPrefix(tt.partial, res.partial) {
						t.Errorf("bytes with error = %q, want a prefix of %q", res.partial, tt.partial)
					}
				} else if res.partial != tt.partial {
					t.Errorf("bytes with error = %q, want %q", res.partial, tt.partial)
				}
				if sc.Mode() != tt.mode {
					t.Errorf("mode = %v, want %v", sc.Mode(), tt.mode)
				}
				// The error sticks.
				if f, err := sc.Next(); f != nil || err != res.err {
					t.Errorf("Next after the end = %q, %v; want nil, %v", f, err, res.err)
				}
			})
		}
	}
}

// chunkReader returns its chunks one per Read.
type chunkReader struct{ chunks []string }

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.chunks[0])
	if n == len(c.chunks[0]) {
		c.chunks = c.chunks[1:]
	} else {
		c.chunks[0] = c.chunks[0][n:]
	}
	return n, nil
}

func TestScannerBuffered(t *testing.T) {
	tests := []struct {
		name   string
		chunks []string
		// want: for each frame, whether Buffered reported true before Next.
		want []bool
	}{
		{"octet whole frames per read", []string{"5 hello5 world", "3 abc"}, []bool{false, true, false}},
		{"octet frame split over reads", []string{"5 hello5 wo", "rld"}, []bool{false, false}},
		{"lf split", []string{"<1>a\n<2>b", "\n<3>c\n"}, []bool{false, false, true}},
		{"lf blank lines then frame", []string{"<1>a\n\n\n<2>b\n"}, []bool{false, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := NewScanner(&chunkReader{chunks: append([]string(nil), tt.chunks...)}, 0)
			var got []bool
			for {
				b := sc.Buffered()
				if b != sc.Buffered() {
					t.Fatal("Buffered changed between two calls")
				}
				if _, err := sc.Next(); err != nil {
					if err != io.EOF {
						t.Fatal(err)
					}
					break
				}
				got = append(got, b)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("Buffered before each frame = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestScannerSmallBuffer forces the buffer to start tiny so that frames
// move to its front and the buffer grows in the middle of frames.
func TestScannerSmallBuffer(t *testing.T) {
	frames := []string{"<13>first", strings.Repeat("y", 300), "<13>third frame", "z"}
	for _, tt := range []struct {
		name string
		in   string
	}{
		{"octet", octet(frames...)},
		{"lf", strings.Join(frames, "\n") + "\n"},
	} {
		for _, size := range []int{1, 2, 7, 16} {
			t.Run(fmt.Sprintf("%s/buf%d", tt.name, size), func(t *testing.T) {
				sc := NewScanner(iotest.HalfReader(strings.NewReader(tt.in)), 400)
				sc.buf = make([]byte, size)
				res := scanAll(sc)
				if res.err != io.EOF || fmt.Sprint(res.frames) != fmt.Sprint(frames) {
					t.Errorf("got %q, %v; want %q, EOF", res.frames, res.err, frames)
				}
				if len(sc.buf) > 400+headroom {
					t.Errorf("buffer grew to %d, beyond the limit %d", len(sc.buf), 400+headroom)
				}
			})
		}
	}
}

// loopReader serves the same bytes forever.
type loopReader struct {
	data []byte
	off  int
}

func (l *loopReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], l.data[l.off:])
		n += c
		l.off = (l.off + c) % len(l.data)
	}
	return n, nil
}

func TestScannerNoAllocs(t *testing.T) {
	msg := "<13>1 2026-11-22T02:50:57.069805+00:00 vm myapp - ID47 - a message of some length, about two hundred bytes in all, which is what a typical syslog line is."
	for _, tt := range []struct{ name, unit string }{
		{"octet", octet(msg)},
		{"lf", msg + "\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sc := NewScanner(&loopReader{data: []byte(tt.unit)}, 0)
			for range 2000 { // warm up
				sc.Next()
			}
			allocs := testing.AllocsPerRun(10000, func() {
				f, err := sc.Next()
				if err != nil || len(f) != len(msg) {
					t.Fatalf("Next = %q, %v", f, err)
				}
				sc.Buffered()
			})
			if allocs != 0 {
				t.Errorf("%v allocations per frame, want 0", allocs)
			}
		})
	}
}

func BenchmarkScanner(b *testing.B) {
	msg := strings.Repeat("m", 200)
	for _, tt := range []struct{ name, unit string }{
		{"octet", octet(msg)},
		{"lf", msg + "\n"},
	} {
		b.Run(tt.name, func(b *testing.B) {
			sc := NewScanner(&loopReader{data: bytes.Repeat([]byte(tt.unit), 100)}, 0)
			b.SetBytes(int64(len(tt.unit)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := sc.Next(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func FuzzScanner(f *testing.F) {
	f.Add([]byte(loggerOctet5424))
	f.Add([]byte(loggerOctet3164 + loggerOctet5424))
	f.Add([]byte(syslogNGOctet))
	f.Add([]byte(loggerLF5424 + loggerLF3164))
	f.Add([]byte(octet("<13>1 - h a - - - line one\nline two", "<14>x\x00y")))
	f.Add([]byte("<13>a\r\n\n<14>b\x00<15>c"))
	f.Add([]byte("5 hello\n5 world"))
	f.Add([]byte("999999999 x"))
	f.Add([]byte("12"))
	f.Add([]byte(""))
	const max = 128
	f.Fuzz(func(t *testing.T, data []byte) {
		whole := scanAll(NewScanner(bytes.NewReader(data), max))
		if whole.err == nil {
			t.Fatal("scan ended without an error")
		}
		for _, fr := range whole.frames {
			if len(fr) == 0 || len(fr) > max {
				t.Fatalf("frame of %d bytes (max %d)", len(fr), max)
			}
		}
		if len(whole.partial) > max {
			t.Fatalf("%d bytes returned with the error (max %d)", len(whole.partial), max)
		}
		// The same stream read one byte at a time gives the same frames
		// and the same error.
		one := scanAll(NewScanner(iotest.OneByteReader(bytes.NewReader(data)), max))
		if fmt.Sprintf("%q", one.frames) != fmt.Sprintf("%q", whole.frames) || one.err.Error() != whole.err.Error() {
			t.Fatalf("byte by byte: %q, %v\nwhole: %q, %v", one.frames, one.err, whole.frames, whole.err)
		}
		// Re-encoded with octet counting and scanned again, the frames
		// come back the same and the stream ends cleanly.
		again := scanAll(NewScanner(strings.NewReader(octet(whole.frames...)), max))
		if fmt.Sprintf("%q", again.frames) != fmt.Sprintf("%q", whole.frames) || again.err != io.EOF {
			t.Fatalf("re-encoded: %q, %v\noriginal: %q", again.frames, again.err, whole.frames)
		}
	})
}
