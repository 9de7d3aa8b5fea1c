package tn3270

import (
	"fmt"
	"strconv"
	"unicode"

	"github.com/racingmars/go3270"
)

// Query Reply codes (QCODEs) this terminal answers, in the order it sends
// them.
const (
	qrSummary           = 0x80
	qrUsableArea        = 0x81
	qrCharacterSets     = 0x85
	qrColor             = 0x86
	qrHighlighting      = 0x87
	qrReplyModes        = 0x88
	qrImplicitPartition = 0xA6
	qrNull              = 0xFF
)

var supportedQCodes = []byte{
	qrSummary, qrUsableArea, qrImplicitPartition, qrCharacterSets,
	qrColor, qrHighlighting, qrReplyModes,
}

// queryReply returns the Query Reply record answering a Read Partition
// Query (want nil: every reply) or Query List (want: the QCODEs asked for).
// The replies follow GA23-0059 "Query Reply" and match those x3270 sends
// for the same features.
func (b *Buffer) queryReply(want []byte) []byte {
	rec := []byte{aidQuery}
	any := false
	for _, q := range supportedQCodes {
		if want != nil && !containsByte(want, q) {
			continue
		}
		rec = b.appendQueryReply(rec, q)
		any = true
	}
	if !any {
		rec = append(rec, 0x00, 0x04, 0x81, qrNull)
	}
	return rec
}

func containsByte(s []byte, c byte) bool {
	for _, x := range s {
		if x == c {
			return true
		}
	}
	return false
}

// appendQueryReply appends one Query Reply structured field: length, 0x81,
// QCODE, data.
func (b *Buffer) appendQueryReply(rec []byte, q byte) []byte {
	start := len(rec)
	rec = append(rec, 0, 0, 0x81, q)
	be16 := func(v int) { rec = append(rec, byte(v>>8), byte(v)) }
	switch q {
	case qrSummary:
		rec = append(rec, supportedQCodes...)
	case qrUsableArea:
		rec = append(rec,
			0x01, // 12/14-bit addressing
			0x00) // no variable cells, no matrix character
		be16(b.altCols)
		be16(b.altRows)
		rec = append(rec, 0x01) // units: millimetres
		be16(1)                 // Xr: 1/4 mm a pel
		be16(4)
		be16(1) // Yr
		be16(4)
		rec = append(rec, 9, 16) // character cell: 9x16 pels
		be16(b.altRows * b.altCols)
	case qrImplicitPartition:
		rec = append(rec, 0x00, 0x00, // flags
			0x0B, // length of the self-defining parameter
			0x01, // implicit partition sizes
			0x00)
		be16(80) // default width and height
		be16(24)
		be16(b.altCols) // alternate width and height
		be16(b.altRows)
	case qrCharacterSets:
		gcsgid, cpgid := b.charsetIDs()
		rec = append(rec,
			0x82,  // graphic escape supported; CGCSGIDs present
			0x00,  // flags
			9, 16, // default character cell
			0, 0, 0, 0, // no load PS formats
			0x07, // descriptor length
			// Set 0: the base set.
			0x00, 0x10, 0x00, byte(gcsgid>>8), byte(gcsgid), byte(cpgid>>8), byte(cpgid),
			// Set 1: the graphic escape set, CP310 (GCSGID 963), LCID 0xF1.
			0x01, 0x00, csAPL, 0x03, 0xC3, 0x01, 0x36)
	case qrColor:
		rec = append(rec, 0x00, 8, // 8 colour pairs
			0x00, byte(go3270.Green)) // default shows green
		for c := byte(go3270.Blue); c <= byte(go3270.White); c++ {
			rec = append(rec, c, c)
		}
	case qrHighlighting:
		rec = append(rec, 5,
			0x00, 0xF0, // default: normal
			0xF1, 0xF1, // blink
			0xF2, 0xF2, // reverse video
			0xF4, 0xF4, // underscore
			0xF8, 0xF8) // intensify
	case qrReplyModes:
		rec = append(rec, 0x00) // field mode only
	}
	n := len(rec) - start
	rec[start], rec[start+1] = byte(n>>8), byte(n)
	return rec
}

// charsetIDs returns the graphic character set and code page IDs of the
// buffer's codepage for the Character Sets query reply.
func (b *Buffer) charsetIDs() (gcsgid, cpgid int) {
	cpgid, err := strconv.Atoi(b.cp.ID())
	if err != nil || cpgid <= 0 || cpgid > 0xFFFF {
		cpgid = 37 // "bracket" and other unnumbered pages are CP037 variants
	}
	gcsgid = 697 // Latin-1
	if cpgid >= 1140 && cpgid <= 1149 || cpgid == 924 {
		gcsgid = 695 // Latin-1 with the euro sign
	}
	return gcsgid, cpgid
}

// isShortRead reports whether aid is one whose Read Modified carries the
// AID alone.
func isShortRead(aid go3270.AID) bool {
	switch aid {
	case go3270.AIDClear, go3270.AIDPA1, go3270.AIDPA2, go3270.AIDPA3:
		return true
	}
	return false
}

// readModified returns the inbound record of a Read Modified (all: Read
// Modified All): the AID, then, unless it is a short read, the cursor
// address and, for each field with its MDT set, SBA to its first position
// and its characters with the nulls left out. On an unformatted screen all
// non-null characters follow the cursor address, without SBA.
func (b *Buffer) readModified(aid go3270.AID, all bool) []byte {
	rec := []byte{byte(aid)}
	if isShortRead(aid) && !all {
		return rec
	}
	size := b.size()
	rec = appendAddr(rec, b.cursor, size)
	if b.nfa == 0 {
		for addr := range b.cells {
			rec = b.appendChar(rec, addr, true)
		}
		return rec
	}
	first := b.firstFieldAddr()
	addr := first
	for {
		if b.cells[addr].Attr.Modified() {
			addr = b.inc(addr)
			rec = append(rec, ordSBA)
			rec = appendAddr(rec, addr, size)
			for ; !b.cells[addr].Field; addr = b.inc(addr) {
				rec = b.appendChar(rec, addr, true)
			}
		} else {
			for addr = b.inc(addr); !b.cells[addr].Field; addr = b.inc(addr) {
			}
		}
		if addr == first {
			return rec
		}
	}
}

// readBuffer returns the inbound record of a Read Buffer: the AID, the
// cursor address, then every position: SF and the attribute for a field
// attribute, else the character (nulls included).
func (b *Buffer) readBuffer(aid go3270.AID) []byte {
	rec := make([]byte, 0, 3+len(b.cells)+2*b.nfa)
	rec = append(rec, byte(aid))
	rec = appendAddr(rec, b.cursor, b.size())
	for addr, c := range b.cells {
		if c.Field {
			rec = append(rec, ordSF, codeTable[c.Attr&0x3F])
			continue
		}
		rec = b.appendChar(rec, addr, false)
	}
	return rec
}

// appendChar appends the character at addr, with a GE order before a
// graphic escape character; a null is left out if skipNull.
func (b *Buffer) appendChar(rec []byte, addr int, skipNull bool) []byte {
	c := b.cells[addr]
	if c.Char == 0 && skipNull {
		return rec
	}
	if c.GE {
		rec = append(rec, ordGE)
	}
	return append(rec, c.Char)
}

// isKeyboardAID reports whether aid is one a 3270 keyboard sends.
func isKeyboardAID(aid go3270.AID) bool {
	switch {
	case aid == go3270.AIDEnter, aid == go3270.AIDClear, isShortRead(aid):
		return true
	case aid >= go3270.AIDPF1 && aid <= go3270.AIDPF9,
		aid >= go3270.AIDPF10 && aid <= go3270.AIDPF12,
		aid >= go3270.AIDPF13 && aid <= go3270.AIDPF21,
		aid >= go3270.AIDPF22 && aid <= go3270.AIDPF24:
		return true
	}
	return false
}

// pressAID performs an AID key: CLEAR clears the screen first; the record
// to send is returned and the keyboard locks until the host restores it.
func (b *Buffer) pressAID(aid go3270.AID) ([]byte, error) {
	if !isKeyboardAID(aid) {
		return nil, fmt.Errorf("%w: 0x%02X", ErrBadAID, byte(aid))
	}
	if b.locked() {
		return nil, fmt.Errorf("send %s: %w", go3270.AIDtoString(aid), ErrKeyboardLocked)
	}
	if aid == go3270.AIDClear {
		b.clear()
	}
	rec := b.readModified(aid, false)
	b.aid = aid
	b.inhibited = true
	return rec, nil
}

// encodeInput converts text to the cells to type, refusing control
// characters and characters the codepage lacks.
func (b *Buffer) encodeInput(text string) ([]Cell, error) {
	cells := make([]Cell, 0, len(text))
	for i, r := range text {
		if !unicode.IsPrint(r) && r != ' ' {
			return nil, fmt.Errorf("%w: %U at byte %d", ErrBadInput, r, i)
		}
		e := b.cp.Encode(string(r))
		var c Cell
		switch {
		case len(e) == 1:
			c.Char = e[0]
		case len(e) == 2 && e[0] == ordGE:
			c.Char, c.GE = e[1], true
		default:
			return nil, fmt.Errorf("%w: %q at byte %d is not in codepage %s", ErrBadInput, r, i, b.cp.ID())
		}
		// The codepage substitutes 0x3F for what it cannot encode.
		if c.Char == 0x3F && !c.GE {
			return nil, fmt.Errorf("%w: %q at byte %d is not in codepage %s", ErrBadInput, r, i, b.cp.ID())
		}
		cells = append(cells, c)
	}
	return cells, nil
}

// inputStart returns the position where typing at the cursor goes: the
// cursor itself in an unprotected field, or the next position when the
// cursor is on the attribute of an unprotected field.
func (b *Buffer) inputStart(addr int) (int, error) {
	if b.nfa == 0 {
		return addr, nil
	}
	if c := b.cells[addr]; c.Field {
		if c.Attr.Protected() || b.cells[b.inc(addr)].Field {
			return 0, fmt.Errorf("%w: attribute position %s", ErrProtected, b.posString(addr))
		}
		return b.inc(addr), nil
	}
	if b.attrAt(addr).Protected() {
		return 0, fmt.Errorf("%w: position %s", ErrProtected, b.posString(addr))
	}
	return addr, nil
}

func (b *Buffer) posString(addr int) string {
	return fmt.Sprintf("row %d col %d", addr/b.cols, addr%b.cols)
}

// room returns how many positions there are from addr to the end of its
// field (to the end of the buffer on an unformatted screen).
func (b *Buffer) room(addr int) int {
	if b.nfa == 0 {
		return len(b.cells) - addr
	}
	n := 0
	for a := addr; !b.cells[a].Field; a = b.inc(a) {
		n++
	}
	return n
}

// typeText types text at the cursor, as an operator would: into the
// unprotected field at the cursor, setting its MDT. The text must fit in
// the rest of the field; nothing is typed otherwise. The cursor ends after
// the text, or at the next unprotected field when the text filled the
// field.
func (b *Buffer) typeText(text string) error {
	if b.locked() {
		return ErrKeyboardLocked
	}
	cells, err := b.encodeInput(text)
	if err != nil {
		return err
	}
	addr, err := b.inputStart(b.cursor)
	if err != nil {
		return err
	}
	if room := b.room(addr); len(cells) > room {
		return fmt.Errorf("%w: %d characters at %s, room for %d", ErrFieldOverflow, len(cells), b.posString(addr), room)
	}
	if err := b.checkNumeric(addr, cells); err != nil {
		return err
	}
	for _, c := range cells {
		b.putChar(addr, c.Char, c.GE, 0, 0)
		addr = b.inc(addr)
	}
	b.setMDT(b.cursor)
	b.cursor = b.skip(addr)
	return nil
}

// skip returns where the cursor goes after typing reaches addr: past
// attribute positions, and from an autoskip attribute to the next
// unprotected field (x3270's key_Character rule).
func (b *Buffer) skip(addr int) int {
	for n := 0; n < len(b.cells) && b.cells[addr].Field; n++ {
		if b.cells[addr].Attr.Autoskip() {
			addr = b.nextUnprotected(addr)
		} else {
			addr = b.inc(addr)
		}
	}
	return addr
}

func (b *Buffer) checkNumeric(addr int, cells []Cell) error {
	if !b.attrAt(addr).Numeric() {
		return nil
	}
	digits := b.cp.Encode("0123456789.-")
	for _, c := range cells {
		if c.GE || !containsByte(digits, c.Char) {
			return fmt.Errorf("%w: at %s", ErrNumeric, b.posString(addr))
		}
	}
	return nil
}

// setMDT sets the MDT of the field holding addr.
func (b *Buffer) setMDT(addr int) {
	if fa := b.fieldAddr(addr); fa >= 0 {
		b.cells[fa].Attr |= AttrModified
	}
}

// setField replaces the content of the unprotected field at a position
// (its attribute or any of its characters) with text, null-filled, sets its
// MDT and leaves the cursor after the text.
func (b *Buffer) setField(row, col int, text string) error {
	if b.locked() {
		return ErrKeyboardLocked
	}
	addr, err := b.addrOf(row, col)
	if err != nil {
		return err
	}
	fa := b.fieldAddr(addr)
	if fa < 0 {
		return fmt.Errorf("%w: %s (unformatted screen)", ErrNoField, b.posString(addr))
	}
	if b.cells[fa].Attr.Protected() {
		return fmt.Errorf("%w: field at %s", ErrProtected, b.posString(fa))
	}
	cells, err := b.encodeInput(text)
	if err != nil {
		return err
	}
	start := b.inc(fa)
	if room := b.room(start); len(cells) > room {
		return fmt.Errorf("%w: %d characters for the %d-position field at %s", ErrFieldOverflow, len(cells), room, b.posString(fa))
	}
	if err := b.checkNumeric(start, cells); err != nil {
		return err
	}
	a := start
	for _, c := range cells {
		b.putChar(a, c.Char, c.GE, 0, 0)
		a = b.inc(a)
	}
	b.cursor = a
	for ; !b.cells[a].Field; a = b.inc(a) {
		b.putChar(a, 0, false, 0, 0)
	}
	b.cells[fa].Attr |= AttrModified
	return nil
}

func (b *Buffer) addrOf(row, col int) (int, error) {
	if row < 0 || row >= b.rows || col < 0 || col >= b.cols {
		return 0, fmt.Errorf("%w: row %d col %d on a %dx%d screen", ErrBadPosition, row, col, b.rows, b.cols)
	}
	return row*b.cols + col, nil
}

// moveCursor puts the cursor at a position.
func (b *Buffer) moveCursor(row, col int) error {
	addr, err := b.addrOf(row, col)
	if err != nil {
		return err
	}
	b.cursor = addr
	return nil
}

// tab moves the cursor to the first position of the next unprotected
// field (to 0 when there is none, or on an unformatted screen).
func (b *Buffer) tab() {
	if b.nfa == 0 {
		b.cursor = 0
		return
	}
	b.cursor = b.nextUnprotected(b.cursor)
}
