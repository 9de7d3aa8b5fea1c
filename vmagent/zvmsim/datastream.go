package zvmsim

import (
	"bufio"
	"bytes"
	"fmt"
	"io"

	"github.com/racingmars/go3270"
)

// The 3270 data stream pieces the simulator writes and reads, after the IBM
// 3270 Data Stream Programmer's Reference (GA23-0059): outbound Write and
// Erase/Write with SBA, SF and IC orders, 12-bit buffer addresses (a 24x80
// screen needs no more), and the inbound Read Modified reply (AID, cursor
// address, then SBA + data for each modified field) or the short read that
// CLEAR and the PA keys send (the AID alone).

// Outbound commands (the non-SNA, TN3270 codes).
const (
	cmdWrite      = 0xF1
	cmdEraseWrite = 0xF5
)

// Orders.
const (
	orderSF  = 0x1D // Start Field: the next byte is a field attribute
	orderSBA = 0x11 // Set Buffer Address: two address bytes follow
	orderIC  = 0x13 // Insert Cursor at the current buffer address
)

// Write Control Character bits (before the I/O code translation).
const (
	wccResetMDT        = 0x01
	wccKeyboardRestore = 0x02
)

// Field attribute bits (before the I/O code translation).
const (
	attrProtected   = 0x20
	attrIntensified = 0x08
	attrNonDisplay  = 0x0C
)

// Telnet bytes (RFC 854, RFC 885 for EOR).
const (
	telnetIAC  = 0xFF
	telnetEOR  = 0xEF
	telnetSB   = 0xFA
	telnetSE   = 0xF0
	telnetWILL = 0xFB
	telnetDONT = 0xFE
)

// Screen geometry of a 3278 model 2, the size every screen here is written
// in (Erase/Write always selects the default 24x80 partition).
const (
	screenRows = 24
	screenCols = 80
	screenSize = screenRows * screenCols
)

// ioCodes translates a 6-bit value into the graphic "I/O code" that 3270
// buffer addresses, attributes and WCCs are sent as (GA23-0059, figure
// "Buffer address, attribute and WCC codes").
var ioCodes = [64]byte{
	0x40, 0xC1, 0xC2, 0xC3, 0xC4, 0xC5, 0xC6, 0xC7,
	0xC8, 0xC9, 0x4A, 0x4B, 0x4C, 0x4D, 0x4E, 0x4F,
	0x50, 0xD1, 0xD2, 0xD3, 0xD4, 0xD5, 0xD6, 0xD7,
	0xD8, 0xD9, 0x5A, 0x5B, 0x5C, 0x5D, 0x5E, 0x5F,
	0x60, 0x61, 0xE2, 0xE3, 0xE4, 0xE5, 0xE6, 0xE7,
	0xE8, 0xE9, 0x6A, 0x6B, 0x6C, 0x6D, 0x6E, 0x6F,
	0xF0, 0xF1, 0xF2, 0xF3, 0xF4, 0xF5, 0xF6, 0xF7,
	0xF8, 0xF9, 0x7A, 0x7B, 0x7C, 0x7D, 0x7E, 0x7F,
}

// addr returns the buffer address of row, col on the 24x80 screen.
func addr(row, col int) int { return row*screenCols + col }

// decodeAddr decodes a two-byte buffer address: 14-bit when the two high
// bits of the first byte are 00, otherwise 12-bit (6 bits in each byte).
func decodeAddr(b0, b1 byte) int {
	if b0&0xC0 == 0 {
		return int(b0&0x3F)<<8 | int(b1)
	}
	return int(b0&0x3F)<<6 | int(b1&0x3F)
}

// dsWriter builds one outbound 3270 record. Text goes through the
// terminal's codepage; nothing here is global.
type dsWriter struct {
	cp  go3270.Codepage
	buf bytes.Buffer
}

func newDSWriter(cp go3270.Codepage, cmd, wcc byte) *dsWriter {
	w := &dsWriter{cp: cp}
	w.buf.WriteByte(cmd)
	w.buf.WriteByte(ioCodes[wcc&0x3F])
	return w
}

// sba sets the buffer address to row, col (12-bit form).
func (w *dsWriter) sba(row, col int) *dsWriter {
	a := addr(row, col)
	w.buf.WriteByte(orderSBA)
	w.buf.WriteByte(ioCodes[(a>>6)&0x3F])
	w.buf.WriteByte(ioCodes[a&0x3F])
	return w
}

// sf starts a field with the given attribute at the current address.
func (w *dsWriter) sf(attr byte) *dsWriter {
	w.buf.WriteByte(orderSF)
	w.buf.WriteByte(ioCodes[attr&0x3F])
	return w
}

// ic puts the cursor at the current address.
func (w *dsWriter) ic() *dsWriter {
	w.buf.WriteByte(orderIC)
	return w
}

// text writes s at the current address, translated to EBCDIC.
func (w *dsWriter) text(s string) *dsWriter {
	if s != "" {
		w.buf.Write(w.cp.Encode(s))
	}
	return w
}

// nulls writes n nulls (X'00') from the current address.
func (w *dsWriter) nulls(n int) *dsWriter {
	for range max(n, 0) {
		w.buf.WriteByte(0x00)
	}
	return w
}

// record returns the record telnet-framed: 0xFF doubled, IAC EOR at the end.
func (w *dsWriter) record() []byte {
	raw := w.buf.Bytes()
	out := make([]byte, 0, len(raw)+8)
	for _, b := range raw {
		out = append(out, b)
		if b == telnetIAC {
			out = append(out, telnetIAC)
		}
	}
	return append(out, telnetIAC, telnetEOR)
}

// maxRecord bounds an inbound record. A Read Modified reply from a 24x80
// screen is at most a few thousand bytes; anything far larger is not a
// 3270 terminal talking.
const maxRecord = 16 << 10

// recordReader splits the inbound telnet byte stream into 3270 records,
// removing telnet commands: IAC IAC is a data 0xFF, IAC EOR ends a record,
// option negotiation and subnegotiation after the initial negotiation are
// ignored.
type recordReader struct {
	r   *bufio.Reader
	max int
	off int64 // bytes consumed, for error messages
}

func newRecordReader(r io.Reader) *recordReader {
	return &recordReader{r: bufio.NewReader(r), max: maxRecord}
}

func (rr *recordReader) readByte() (byte, error) {
	b, err := rr.r.ReadByte()
	if err == nil {
		rr.off++
	}
	return b, err
}

// next returns the next record (without IAC EOR).
func (rr *recordReader) next() ([]byte, error) {
	var rec []byte
	for {
		b, err := rr.readByte()
		if err != nil {
			return nil, err
		}
		if b != telnetIAC {
			if len(rec) >= rr.max {
				return nil, fmt.Errorf("%w: record longer than %d bytes at stream offset %d", ErrDatastream, rr.max, rr.off)
			}
			rec = append(rec, b)
			continue
		}
		cmd, err := rr.readByte()
		if err != nil {
			return nil, err
		}
		switch {
		case cmd == telnetIAC:
			if len(rec) >= rr.max {
				return nil, fmt.Errorf("%w: record longer than %d bytes at stream offset %d", ErrDatastream, rr.max, rr.off)
			}
			rec = append(rec, telnetIAC)
		case cmd == telnetEOR:
			return rec, nil
		case cmd == telnetSB:
			if err := rr.skipSubnegotiation(); err != nil {
				return nil, err
			}
		case cmd >= telnetWILL && cmd <= telnetDONT:
			if _, err := rr.readByte(); err != nil { // the option
				return nil, err
			}
		default:
			// NOP, GA and the other two-byte commands: nothing to do.
		}
	}
}

// skipSubnegotiation consumes bytes up to IAC SE.
func (rr *recordReader) skipSubnegotiation() error {
	for n := 0; ; n++ {
		if n > rr.max {
			return fmt.Errorf("%w: unterminated telnet subnegotiation at stream offset %d", ErrDatastream, rr.off)
		}
		b, err := rr.readByte()
		if err != nil {
			return err
		}
		if b != telnetIAC {
			continue
		}
		b, err = rr.readByte()
		if err != nil {
			return err
		}
		if b == telnetSE {
			return nil
		}
	}
}

// inbound is a decoded inbound record.
type inbound struct {
	aid    go3270.AID
	cursor int            // buffer address of the cursor; -1 on a short read
	fields map[int][]byte // first data address of each modified field → its bytes (EBCDIC)
}

// parseInbound decodes a Read Modified reply or a short read. It never
// panics; a malformed record is an error that says at which offset.
func parseInbound(rec []byte) (inbound, error) {
	in := inbound{cursor: -1}
	if len(rec) == 0 {
		return in, fmt.Errorf("%w: empty inbound record", ErrDatastream)
	}
	in.aid = go3270.AID(rec[0])
	if len(rec) == 1 {
		return in, nil // short read: CLEAR, PA1-3 (or an AID sent alone)
	}
	if len(rec) < 3 {
		return in, fmt.Errorf("%w: inbound record of %d bytes: cursor address cut off at offset 1", ErrDatastream, len(rec))
	}
	in.cursor = decodeAddr(rec[1], rec[2])
	if in.cursor >= screenSize {
		return in, fmt.Errorf("%w: cursor address %d outside the 24x80 screen at offset 1", ErrDatastream, in.cursor)
	}
	in.fields = make(map[int][]byte)
	field := -1 // data before any SBA (unformatted screens) is kept under -1
	for i := 3; i < len(rec); {
		if rec[i] == orderSBA {
			if i+2 >= len(rec) {
				return in, fmt.Errorf("%w: SBA address cut off at offset %d", ErrDatastream, i)
			}
			field = decodeAddr(rec[i+1], rec[i+2])
			if field >= screenSize {
				return in, fmt.Errorf("%w: SBA address %d outside the 24x80 screen at offset %d", ErrDatastream, field, i)
			}
			if _, ok := in.fields[field]; !ok {
				in.fields[field] = []byte{}
			}
			i += 3
			continue
		}
		in.fields[field] = append(in.fields[field], rec[i])
		i++
	}
	return in, nil
}

// fieldText returns the decoded text of the field whose first data position
// is at a, with nulls removed, or "" when the field was not modified.
func (in inbound) fieldText(cp go3270.Codepage, a int) string {
	data, ok := in.fields[a]
	if !ok {
		return ""
	}
	clean := make([]byte, 0, len(data))
	for _, b := range data {
		if b != 0x00 {
			clean = append(clean, b)
		}
	}
	return cp.Decode(clean)
}
