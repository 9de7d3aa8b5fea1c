package zvmsim

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"testing"
	"testing/iotest"

	"github.com/racingmars/go3270"
)

func TestBufferAddresses(t *testing.T) {
	cp := go3270.Codepage037()
	for a := 0; a < screenSize; a++ {
		w := newDSWriter(cp, cmdWrite, 0)
		w.sba(a/screenCols, a%screenCols)
		b := w.buf.Bytes()
		if len(b) != 5 || b[2] != orderSBA {
			t.Fatalf("sba(%d) = % x", a, b)
		}
		if got := decodeAddr(b[3], b[4]); got != a {
			t.Fatalf("address %d encodes to % x, decodes to %d", a, b[3:], got)
		}
	}
	// 14-bit addresses: high bits 00.
	if got := decodeAddr(0x07, 0x7F); got != 0x77F {
		t.Errorf("14-bit decode = %#x", got)
	}
}

func TestRecordFraming(t *testing.T) {
	w := newDSWriter(go3270.Codepage037(), cmdWrite, wccKeyboardRestore)
	w.buf.WriteByte(0xFF)
	rec := w.record()
	want := []byte{cmdWrite, ioCodes[wccKeyboardRestore], 0xFF, 0xFF, telnetIAC, telnetEOR}
	if !bytes.Equal(rec, want) {
		t.Errorf("record = % x, want % x", rec, want)
	}
}

// stream is an inbound byte stream with telnet commands mixed in, and the
// records it holds.
var (
	stream = []byte{
		0x7D, 0x5B, 0x60, orderSBA, 0x5B, 0x60, 0xD8, 0x40, telnetIAC, telnetIAC, telnetIAC, telnetEOR,
		telnetIAC, telnetWILL, 0x18, // negotiation after the fact: ignored
		telnetIAC, telnetSB, 0x18, 0x00, 'I', 'B', 'M', telnetIAC, telnetSE,
		telnetIAC, 0xF1, // NOP
		0x6D, telnetIAC, telnetEOR,
	}
	streamRecords = [][]byte{
		{0x7D, 0x5B, 0x60, orderSBA, 0x5B, 0x60, 0xD8, 0x40, 0xFF},
		{0x6D},
	}
)

func readAll(r io.Reader) ([][]byte, error) {
	rr := newRecordReader(r)
	var recs [][]byte
	for {
		rec, err := rr.next()
		if err != nil {
			return recs, err
		}
		recs = append(recs, rec)
	}
}

func TestRecordReader(t *testing.T) {
	for name, r := range map[string]io.Reader{
		"whole":        bytes.NewReader(stream),
		"byte by byte": iotest.OneByteReader(bytes.NewReader(stream)),
	} {
		t.Run(name, func(t *testing.T) {
			recs, err := readAll(r)
			if err != io.EOF {
				t.Errorf("err = %v, want EOF", err)
			}
			if !slices.EqualFunc(recs, streamRecords, bytes.Equal) {
				t.Errorf("records % x, want % x", recs, streamRecords)
			}
		})
	}
}

func TestRecordReaderLimits(t *testing.T) {
	_, err := readAll(bytes.NewReader(bytes.Repeat([]byte{0x40}, maxRecord+1)))
	if !errors.Is(err, ErrDatastream) {
		t.Errorf("oversized record: err = %v", err)
	}
	_, err = readAll(bytes.NewReader(append([]byte{telnetIAC, telnetSB}, bytes.Repeat([]byte{0x40}, maxRecord+2)...)))
	if !errors.Is(err, ErrDatastream) {
		t.Errorf("endless subnegotiation: err = %v", err)
	}
	// A record cut off by the end of the stream is no record.
	recs, err := readAll(bytes.NewReader([]byte{0x7D, 0x40, 0x40, telnetIAC}))
	if len(recs) != 0 || err != io.EOF {
		t.Errorf("cut record: %q, %v", recs, err)
	}
}

func TestParseInbound(t *testing.T) {
	cp := go3270.Codepage037()
	enter := []byte{0x7D, 0x5B, 0x60, orderSBA, 0x5B, 0x60}
	enter = append(enter, cp.Encode("q time")...)
	enter = append(enter, orderSBA, 0xC1, 0xC1) // an empty modified field at 65
	in, err := parseInbound(enter)
	if err != nil {
		t.Fatal(err)
	}
	if in.aid != go3270.AIDEnter || in.cursor != inputAddr {
		t.Errorf("aid %#x cursor %d", in.aid, in.cursor)
	}
	if got := in.fieldText(cp, inputAddr); got != "q time" {
		t.Errorf("input field %q", got)
	}
	if _, ok := in.fields[65]; !ok {
		t.Error("the empty field is missing")
	}
	if got := in.fieldText(cp, 100); got != "" {
		t.Errorf("unmodified field %q", got)
	}
	clear, err := parseInbound([]byte{0x6D})
	if err != nil || clear.aid != go3270.AIDClear || clear.cursor != -1 {
		t.Errorf("short read: %+v, %v", clear, err)
	}
	for name, rec := range map[string][]byte{
		"empty":          {},
		"cursor cut":     {0x7D, 0x5B},
		"SBA cut":        {0x7D, 0x5B, 0x60, orderSBA, 0x5B},
		"cursor off":     {0x7D, 0x3F, 0xFF},
		"SBA off screen": {0x7D, 0x40, 0x40, orderSBA, 0x3F, 0xFF},
	} {
		if _, err := parseInbound(rec); !errors.Is(err, ErrDatastream) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func FuzzParseInbound(f *testing.F) {
	f.Add([]byte{0x7D, 0x5B, 0x60, orderSBA, 0x5B, 0x60, 0xD8, 0x40, 0xE3})
	f.Add([]byte{0x6D})
	f.Add([]byte{0x6E})
	f.Add([]byte{0xF3, 0x40, 0x40, 0xC1, orderSBA})
	f.Fuzz(func(t *testing.T, rec []byte) {
		in, err := parseInbound(rec)
		if err != nil {
			return
		}
		if in.cursor >= screenSize {
			t.Fatalf("cursor %d", in.cursor)
		}
		for a := range in.fields {
			if a >= screenSize {
				t.Fatalf("field at %d", a)
			}
			_ = in.fieldText(go3270.Codepage037(), a)
		}
	})
}

func FuzzRecordReader(f *testing.F) {
	f.Add(stream)
	f.Add([]byte{telnetIAC, telnetSB, telnetIAC})
	f.Fuzz(func(t *testing.T, data []byte) {
		whole, errWhole := readAll(bytes.NewReader(data))
		split, errSplit := readAll(iotest.OneByteReader(bytes.NewReader(data)))
		if !slices.EqualFunc(whole, split, bytes.Equal) || (errWhole == io.EOF) != (errSplit == io.EOF) {
			t.Fatalf("whole %q %v, byte by byte %q %v", whole, errWhole, split, errSplit)
		}
		for _, r := range whole {
			if len(r) > maxRecord {
				t.Fatalf("record of %d bytes", len(r))
			}
		}
	})
}
