package tn3270

import (
	"strings"
	"testing"
)

// fullScreenEW is a full 24x80 Erase/Write as a host sends it: every row
// an SBA, a field attribute and 79 characters of text.
func fullScreenEW() []byte {
	rec := []byte{cmdEW, 0xC3}
	line := ebc(strings.Repeat("HCPMSG123I The quick brown fox jumps over the lazy dog. ", 2)[:79])
	for r := range 24 {
		attr := faProt
		if r%6 == 5 {
			attr = faUnprot
		}
		rec = append(rec, sba(r, 0)...)
		rec = append(rec, ordSF, attr)
		rec = append(rec, line...)
	}
	return append(rec, sba(22, 1)...)
}

// BenchmarkParseDataStream measures the decoder alone on a full-screen
// Erase/Write.
func BenchmarkParseDataStream(b *testing.B) {
	rec := fullScreenEW()
	buf, _ := NewBuffer(2, nil)
	b.SetBytes(int64(len(rec)))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if _, err := ParseDataStream(buf, rec); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkScreenUpdate measures what a Client does for each host write:
// telnet decoding, parsing and the screen snapshot.
func BenchmarkScreenUpdate(b *testing.B) {
	framed := appendRecord(nil, fullScreenEW())
	buf, _ := NewBuffer(2, nil)
	d := telnetDecoder{maxRecord: DefaultMaxRecord}
	h := &bufferHandler{b: buf}
	b.SetBytes(int64(len(framed)))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if err := d.feed(framed, h); err != nil {
			b.Fatal(err)
		}
		_ = buf.Snapshot()
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
}
