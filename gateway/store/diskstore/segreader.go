package diskstore

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
)

// Reading a segment record by record holds one record at a time, not the
// file: a segment of 64 MiB (or a damaged or sparse one of any size) costs
// its largest record.
const (
	// segmentReadBuffer is the read-ahead of the replay.
	segmentReadBuffer = 1 << 20
	// checkFirst is the size beyond which a record's checksum is computed
	// reading the file before the record is read into memory: a damaged
	// length (or a sparse file) whose bytes do not check out costs nothing.
	checkFirst = 1 << 20
)

// segmentReader reads the records of a segment file in order.
type segmentReader struct {
	f    *os.File
	name string
	r    *bufio.Reader
	size int64  // the file's size
	off  int64  // where the next record starts
	buf  []byte // holds the last record read
}

// openSegment opens a segment file for reading.
func openSegment(name string) (*segmentReader, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("diskstore: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("diskstore: %w", err)
	}
	return &segmentReader{f: f, name: name, r: bufio.NewReaderSize(f, segmentReadBuffer), size: fi.Size()}, nil
}

func (sr *segmentReader) close() { sr.f.Close() }

// magic reads the file's first bytes, as many as the segment header has
// and the file holds.
func (sr *segmentReader) magic() ([]byte, error) {
	b := make([]byte, min(int64(len(segmentMagic)), sr.size))
	if _, err := io.ReadFull(sr.r, b); err != nil {
		return nil, sr.readErr(err)
	}
	sr.off = int64(len(b))
	return b, nil
}

// next reads the next record, header and payload, valid until the next
// call: io.EOF at the end of the file, errTorn for a record cut short by
// the end of the file or failing its checksum (after which the reader is
// not to be used).
func (sr *segmentReader) next() ([]byte, error) {
	left := sr.size - sr.off
	switch {
	case left == 0:
		return nil, io.EOF
	case left < recordHeader:
		return nil, errTorn
	}
	h, err := sr.r.Peek(recordHeader)
	if err != nil {
		return nil, sr.readErr(err)
	}
	n := int64(recordHeader + recordSize(h))
	if n > left {
		return nil, errTorn
	}
	if n > checkFirst {
		ok, err := sr.checksumAt(sr.off, n)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, errTorn
		}
	}
	if int64(cap(sr.buf)) < n {
		sr.buf = nil // not held while the next one is allocated
		sr.buf = make([]byte, n)
	}
	rec := sr.buf[:n]
	if _, err := io.ReadFull(sr.r, rec); err != nil {
		return nil, sr.readErr(err)
	}
	if !checksumOK(rec) {
		return nil, errTorn
	}
	sr.off += n
	return rec, nil
}

// checksumAt reports whether the record of n bytes at off checks out,
// reading it a piece at a time.
func (sr *segmentReader) checksumAt(off, n int64) (bool, error) {
	var h [recordHeader]byte
	if _, err := sr.f.ReadAt(h[:], off); err != nil {
		return false, sr.readErr(err)
	}
	sum := crc32.Update(0, castagnoli(), h[8:])
	buf := make([]byte, checkFirst)
	for at, end := off+recordHeader, off+n; at < end; {
		b := buf[:min(int64(len(buf)), end-at)]
		if _, err := sr.f.ReadAt(b, at); err != nil {
			return false, sr.readErr(err)
		}
		sum = crc32.Update(sum, castagnoli(), b)
		at += int64(len(b))
	}
	return sum == binary.LittleEndian.Uint32(h[4:]), nil
}

// readErr is the error of a read that failed: the file is shorter than it
// was when opened, or the disk failed.
func (sr *segmentReader) readErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("diskstore: %s changed while it was read", sr.name)
	}
	return fmt.Errorf("diskstore: read %s: %w", sr.name, err)
}
