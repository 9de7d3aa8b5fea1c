package relp

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

func bufioOf(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }

// FuzzReader checks, for any input: no panic; reading whole and one byte
// at a time (with a small buffer) gives the same frames and the same kind
// of error; each frame encodes back (AppendFrame) to bytes that read as the
// same frame; and ParseOffers and ParseResponse do not panic on any data.
// Seeds: the sessions recorded from omrelp and imrelp (testdata), and
// malformed frames. Minimizing each new input takes long here (the fuzzer
// reports 0 execs/s meanwhile): add -fuzzminimizetime 1s for more execs.
func FuzzReader(f *testing.F) {
	for _, data := range captures(f) {
		f.Add(data)
	}
	for _, s := range []string{
		"1 syslog 3 abc\n",
		"1 close 0\n",
		"0 serverclose 0\n",
		"1 syslog 3 abcd\n",
		"1 syslog 5 abc\n",
		"1 close 0 \n",
		"a syslog 1 x\n",
		"1234567890 syslog 1 x\n",
		"1 syslog 1234567890 x\n",
		"1 syslog -1 x\n",
		"1 syslog 200000 ",
		"1 rsp 93 200 OK\nrelp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\ncommands=syslog\n",
	} {
		f.Add([]byte(s))
	}
	const maxData = 8 << 10 // above the whole read's 4 KiB buffer: both data paths
	f.Fuzz(func(t *testing.T, in []byte) {
		whole, errWhole := readAll(bytes.NewReader(in), 4096, maxData)
		bytewise, errBytewise := readAll(iotest.OneByteReader(bytes.NewReader(in)), 16, maxData)
		if !framesEqual(whole, bytewise) {
			t.Fatalf("whole read %d frames, byte by byte %d", len(whole), len(bytewise))
		}
		if kind(errWhole) != kind(errBytewise) {
			t.Fatalf("whole read: %v; byte by byte: %v", errWhole, errBytewise)
		}
		for _, fr := range whole {
			enc := AppendFrame(nil, fr)
			back, err := NewReader(bufioOf(enc), maxData).ReadFrame()
			if err != nil || back.Txnr != fr.Txnr || back.Command != fr.Command || !bytes.Equal(back.Data, fr.Data) {
				t.Fatalf("frame %+v encoded as %q read back as %+v, %v", fr, enc, back, err)
			}
			ParseOffers(fr.Data)
			if r, err := ParseResponse(fr.Data); err == nil {
				ParseOffers(r.Body)
			}
		}
	})
}

// kind classifies a Reader error for comparison.
func kind(err error) error {
	for _, e := range []error{ErrMalformed, ErrTooLarge, ErrTruncated} {
		if errors.Is(err, e) {
			return e
		}
	}
	if err == nil || err == io.EOF {
		return nil
	}
	return err
}
