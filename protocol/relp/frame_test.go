package relp

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

// captures returns the recorded sessions in testdata by file name.
func captures(t testing.TB) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "*.[cs]2[cs]"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no captures in testdata (%v)", err)
	}
	m := make(map[string][]byte)
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		m[filepath.Base(p)] = data
	}
	return m
}

// readAll reads every frame from r (copying their data) until an error,
// which it returns (nil for io.EOF).
func readAll(r io.Reader, size, maxData int) ([]Frame, error) {
	rd := NewReader(bufio.NewReaderSize(r, size), maxData)
	var frames []Frame
	for {
		f, err := rd.ReadFrame()
		if err == io.EOF {
			return frames, nil
		}
		if err != nil {
			return frames, err
		}
		f.Data = slices.Clone(f.Data)
		frames = append(frames, f)
	}
}

func TestReadCapturedSession(t *testing.T) {
	data := captures(t)["omrelp-session.c2s"]
	frames, err := readAll(bytes.NewReader(data), 4096, 0)
	if err != nil {
		t.Fatal(err)
	}
	var cmds []string
	for i, f := range frames {
		if f.Txnr != i+1 {
			t.Errorf("frame %d: txnr %d", i, f.Txnr)
		}
		cmds = append(cmds, f.Command)
	}
	want := []string{"open", "syslog", "syslog", "syslog", "syslog", "syslog", "syslog", "close"}
	if !slices.Equal(cmds, want) {
		t.Fatalf("commands %v, want %v", cmds, want)
	}
	offers, err := ParseOffers(frames[0].Data)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := FindOffer(offers, OfferVersion); !slices.Equal(v.Values, []string{"0"}) {
		t.Errorf("librelp 1.11 relp_version %v, want [0]", v.Values)
	}
	if c, _ := FindOffer(offers, OfferCommands); !slices.Equal(c.Values, []string{"syslog"}) {
		t.Errorf("commands %v", c.Values)
	}
	if got := string(frames[2].Data); got != "<14>1 2026-12-06T08:00:01Z host1 app 100 ID2 - line one\nline two\n" {
		t.Errorf("message with a newline: %q", got)
	}
	if n := len(frames[4].Data); n != 3046 {
		t.Errorf("long message: %d bytes", n)
	}
	if frames[7].Data != nil {
		t.Errorf("close data %q, want nil", frames[7].Data)
	}
}

func TestReadCapturedAnswers(t *testing.T) {
	frames, err := readAll(bytes.NewReader(captures(t)["imrelp-session.s2c"]), 4096, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(frames) != 9 {
		t.Fatalf("%d frames, want 9", len(frames))
	}
	open, err := ParseResponse(frames[0].Data)
	if err != nil || open.Code != StatusOK || open.Text != "OK" {
		t.Fatalf("open rsp %+v, %v", open, err)
	}
	offers, err := ParseOffers(open.Body)
	if err != nil || len(offers) != 3 {
		t.Fatalf("offers %v, %v", offers, err)
	}
	// librelp answers close with an empty rsp, then the serverclose hint.
	if f := frames[7]; f.Command != CmdRsp || f.Txnr != 8 || f.Data != nil {
		t.Errorf("close rsp %+v", f)
	}
	if _, err := ParseResponse(frames[7].Data); !errors.Is(err, ErrBadResponse) {
		t.Errorf("empty rsp parsed: %v", err)
	}
	if f := frames[8]; f.Command != CmdServerClose || f.Txnr != 0 || f.Data != nil {
		t.Errorf("serverclose %+v", f)
	}
}

// TestReadByteByByte feeds every capture one byte per Read, and in halves,
// and gets the frames a whole read gets.
func TestReadByteByByte(t *testing.T) {
	for name, data := range captures(t) {
		whole, err := readAll(bytes.NewReader(data), 64<<10, 0)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, tc := range []struct {
			name string
			r    io.Reader
			size int
		}{
			{"one-byte", iotest.OneByteReader(bytes.NewReader(data)), 64 << 10},
			{"one-byte-small-buffer", iotest.OneByteReader(bytes.NewReader(data)), 16},
			{"half", iotest.HalfReader(bytes.NewReader(data)), 64 << 10},
			{"data-err", iotest.DataErrReader(bytes.NewReader(data)), 128},
		} {
			t.Run(name+"/"+tc.name, func(t *testing.T) {
				got, err := readAll(tc.r, tc.size, 0)
				if err != nil {
					t.Fatal(err)
				}
				if !framesEqual(got, whole) {
					t.Fatalf("got %d frames, want %d: %v", len(got), len(whole), got)
				}
			})
		}
	}
}

func framesEqual(a, b []Frame) bool {
	return slices.EqualFunc(a, b, func(x, y Frame) bool {
		return x.Txnr == y.Txnr && x.Command == y.Command && bytes.Equal(x.Data, y.Data)
	})
}

func TestReadMalformed(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		max    int
		frames int   // well-formed frames before the error
		err    error // wrapped
		offset string
	}{
		{"empty stream", "", 0, 0, nil, ""},
		{"letter txnr", "a syslog 1 x\n", 0, 0, ErrMalformed, "offset 0"},
		{"negative txnr", "-1 syslog 1 x\n", 0, 0, ErrMalformed, "offset 0"},
		{"txnr 10 digits", "1234567890 syslog 1 x\n", 0, 0, ErrMalformed, "offset 9"},
		{"txnr then letter", "12x syslog 1 x\n", 0, 0, ErrMalformed, "offset 2"},
		{"leading space", " 1 syslog 1 x\n", 0, 0, ErrMalformed, "offset 0"},
		{"two spaces", "1  syslog 1 x\n", 0, 0, ErrMalformed, "offset 2"},
		{"command with digit", "1 sys1og 1 x\n", 0, 0, ErrMalformed, "offset 5"},
		{"command 33 letters", "1 " + strings.Repeat("a", 33) + " 1 x\n", 0, 0, ErrMalformed, "offset 34"},
		{"command then LF", "1 close\n", 0, 0, ErrMalformed, "offset 7"},
		{"non-digit datalen", "1 syslog x x\n", 0, 0, ErrMalformed, "offset 9"},
		{"negative datalen", "1 syslog -1 x\n", 0, 0, ErrMalformed, "offset 9"},
		{"datalen 10 digits", "1 syslog 1234567890 x\n", 0, 0, ErrMalformed, "offset 18"},
		{"datalen then letter", "1 syslog 1x x\n", 0, 0, ErrMalformed, "offset 10"},
		{"datalen 0 then space", "1 close 0 \n", 0, 0, ErrMalformed, "offset 9"},
		{"datalen then LF", "1 syslog 3\nabc\n", 0, 0, ErrMalformed, "offset 10"},
		{"datalen too small", "1 syslog 3 abcd\n", 0, 0, ErrMalformed, "offset 14"},
		{"datalen too large", "1 syslog 5 abc\n2 syslog 1 x\n", 0, 0, ErrMalformed, "offset 16"},
		{"datalen past the end", "1 syslog 5 abc\n", 0, 0, ErrTruncated, "offset 11"},
		{"CRLF trailer", "1 syslog 3 abc\r\n", 0, 0, ErrMalformed, "offset 14"},
		{"missing trailer at EOF", "1 syslog 3 abc", 0, 0, ErrTruncated, "offset 11"},
		{"EOF in header", "1 sysl", 0, 0, ErrTruncated, "offset 0"},
		{"EOF after datalen", "1 syslog 3", 0, 0, ErrTruncated, "offset 0"},
		{"too big", "1 syslog 11 hello world\n", 10, 0, ErrTooLarge, "offset 9"},
		{"too big after good", "1 syslog 1 x\n2 syslog 999999999 ", 100, 1, ErrTooLarge, "offset 22"},
		{"bad after good", "1 close 0\n2 rsp 0\nx", 0, 2, ErrMalformed, "offset 18"},
		{"leading zeros", "007 syslog 003 abc\n", 0, 1, nil, ""},
		{"max txnr", "999999999 syslog 1 x\n", 0, 1, nil, ""},
		{"hint", "0 serverclose 0\n", 0, 1, nil, ""},
		{"32-letter command", "1 " + strings.Repeat("Z", 32) + " 0\n", 0, 1, nil, ""},
	}
	for _, tc := range tests {
		for _, feed := range []string{"whole", "byte-by-byte"} {
			t.Run(tc.name+"/"+feed, func(t *testing.T) {
				var r io.Reader = strings.NewReader(tc.in)
				if feed == "byte-by-byte" {
					r = iotest.OneByteReader(r)
				}
				frames, err := readAll(r, 4096, tc.max)
				if len(frames) != tc.frames {
					t.Errorf("%d frames before the error, want %d", len(frames), tc.frames)
				}
				if tc.err == nil {
					if err != nil {
						t.Fatalf("error %v", err)
					}
					return
				}
				if !errors.Is(err, tc.err) {
					t.Fatalf("error %v, want %v", err, tc.err)
				}
				if !strings.Contains(err.Error(), tc.offset) {
					t.Errorf("error %q does not say %q", err, tc.offset)
				}
			})
		}
	}
}

func TestReadTruncatedWrapsReadError(t *testing.T) {
	boom := errors.New("boom")
	r := io.MultiReader(strings.NewReader("1 syslog 10 abc"), iotest.ErrReader(boom))
	_, err := readAll(r, 4096, 0)
	if !errors.Is(err, ErrTruncated) || !errors.Is(err, boom) {
		t.Fatalf("error %v, want ErrTruncated and the read error", err)
	}
	// Between frames the read error alone.
	r = io.MultiReader(strings.NewReader("1 close 0\n"), iotest.ErrReader(boom))
	_, err = readAll(r, 4096, 0)
	if errors.Is(err, ErrTruncated) || !errors.Is(err, boom) {
		t.Fatalf("error %v, want the read error alone", err)
	}
}

func TestReadErrorIsSticky(t *testing.T) {
	rd := NewReader(bufio.NewReader(strings.NewReader("x\n1 close 0\n")), 0)
	_, err1 := rd.ReadFrame()
	_, err2 := rd.ReadFrame()
	if err1 == nil || err1 != err2 {
		t.Fatalf("errors %v then %v", err1, err2)
	}
	if !rd.Buffered() {
		t.Error("Buffered false after an error: the next ReadFrame does not block")
	}
}

// TestLargeFrame reads a frame larger than the bufio buffer.
func TestLargeFrame(t *testing.T) {
	msg := bytes.Repeat([]byte("0123456789"), 10000)
	in := AppendFrame(nil, Frame{Txnr: 1, Command: CmdSyslog, Data: msg})
	in = AppendFrame(in, Frame{Txnr: 2, Command: CmdClose})
	for _, r := range []io.Reader{bytes.NewReader(in), iotest.OneByteReader(bytes.NewReader(in))} {
		frames, err := readAll(r, 4096, 200000)
		if err != nil || len(frames) != 2 || !bytes.Equal(frames[0].Data, msg) {
			t.Fatalf("%d frames, %v", len(frames), err)
		}
	}
}

// stepReader returns its chunks one per Read, then EOF, counting Reads.
type stepReader struct {
	chunks []string
	reads  int
}

func (r *stepReader) Read(p []byte) (int, error) {
	r.reads++
	if len(r.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.chunks[0])
	r.chunks[0] = r.chunks[0][n:]
	if r.chunks[0] == "" {
		r.chunks = r.chunks[1:]
	}
	return n, nil
}

func TestBuffered(t *testing.T) {
	src := &stepReader{chunks: []string{
		"1 syslog 3 abc\n2 syslog 3 de", // a frame and part of one
		"f\n3 close 0\n",
		"4 syslog 100000 ", // larger than the buffer: never buffered
	}}
	rd := NewReader(bufio.NewReaderSize(src, 4096), 200000)
	if rd.Buffered() {
		t.Fatal("Buffered before any read")
	}
	mustRead := func(want string) {
		t.Helper()
		f, err := rd.ReadFrame()
		if err != nil || f.Command+" "+string(f.Data) != want {
			t.Fatalf("frame %+v, %v; want %q", f, err, want)
		}
	}
	mustRead("syslog abc")
	if rd.Buffered() {
		t.Error("Buffered with half a frame in the buffer")
	}
	reads := src.reads
	mustRead("syslog def")
	if src.reads == reads {
		t.Error("the second frame was read without a Read")
	}
	if !rd.Buffered() {
		t.Error("close not reported buffered")
	}
	reads = src.reads
	mustRead("close ")
	if src.reads != reads {
		t.Error("a buffered frame caused a Read")
	}
	if _, err := rd.ReadFrame(); !errors.Is(err, ErrTruncated) {
		t.Errorf("error %v, want ErrTruncated", err)
	}
}

func TestReadNoAllocs(t *testing.T) {
	var in []byte
	for i := 1; i <= 1000; i++ {
		in = AppendFrame(in, Frame{Txnr: i, Command: CmdSyslog, Data: []byte("<13>1 - host app - - - hello")})
	}
	br := bufio.NewReaderSize(bytes.NewReader(in), 64<<10)
	allocs := testing.AllocsPerRun(10, func() {
		br.Reset(bytes.NewReader(in))
		rd := Reader{br: br, maxData: DefaultMaxData}
		for {
			if _, err := rd.ReadFrame(); err != nil {
				break
			}
		}
	})
	// The io.EOF path wraps nothing; the allocations are per run, not per frame.
	if allocs > 2 {
		t.Errorf("%v allocations to read 1000 frames", allocs)
	}
}

func TestAppendFrame(t *testing.T) {
	tests := []struct {
		f    Frame
		want string
	}{
		{Frame{Txnr: 6, Command: CmdClose}, "6 close 0\n"},
		{Frame{Txnr: 0, Command: CmdServerClose}, "0 serverclose 0\n"},
		{Frame{Txnr: 2, Command: CmdSyslog, Data: []byte("a\nb")}, "2 syslog 3 a\nb\n"},
		{Frame{Txnr: MaxTxnr, Command: CmdRsp, Data: []byte("200 OK")}, "999999999 rsp 6 200 OK\n"},
	}
	for _, tc := range tests {
		if got := string(AppendFrame(nil, tc.f)); got != tc.want {
			t.Errorf("AppendFrame(%+v) = %q, want %q", tc.f, got, tc.want)
		}
	}
	for _, bad := range []Frame{
		{Txnr: -1, Command: "syslog"},
		{Txnr: MaxTxnr + 1, Command: "syslog"},
		{Txnr: 1, Command: ""},
		{Txnr: 1, Command: "sys log"},
		{Txnr: 1, Command: strings.Repeat("a", 33)},
	} {
		if ValidFrame(bad) == nil {
			t.Errorf("ValidFrame(%+v) = nil", bad)
		}
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("AppendFrame(%+v) did not panic", bad)
				}
			}()
			AppendFrame(nil, bad)
		}()
	}
}

func TestNextTxnr(t *testing.T) {
	for in, want := range map[int]int{0: 1, 1: 2, MaxTxnr - 1: MaxTxnr, MaxTxnr: 1} {
		if got := NextTxnr(in); got != want {
			t.Errorf("NextTxnr(%d) = %d, want %d", in, got, want)
		}
	}
}
