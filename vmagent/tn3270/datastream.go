package tn3270

import (
	"github.com/racingmars/go3270"
)

// 3270 commands (GA23-0059 "Commands"), in the form used on local channel
// attachment and the form used by SNA; a host may send either.
const (
	cmdW     = 0xF1
	cmdEW    = 0xF5
	cmdEWA   = 0x7E
	cmdEAU   = 0x6F
	cmdWSF   = 0xF3
	cmdRB    = 0xF2
	cmdRM    = 0xF6
	cmdRMA   = 0x6E
	snaW     = 0x01
	snaRB    = 0x02
	snaNOP   = 0x03
	snaEW    = 0x05
	snaRM    = 0x06
	snaEWA   = 0x0D
	snaRMA   = 0x0E
	snaEAU   = 0x0F
	snaWSF   = 0x11
	aidQuery = 0x88 // the AID of a Query Reply
)

// Write control character bits.
const (
	wccReset           = 0x40
	wccSoundAlarm      = 0x04
	wccKeyboardRestore = 0x02
	wccResetMDT        = 0x01
)

// Orders.
const (
	ordPT  = 0x05 // program tab
	ordGE  = 0x08 // graphic escape
	ordSBA = 0x11 // set buffer address
	ordEUA = 0x12 // erase unprotected to address
	ordIC  = 0x13 // insert cursor
	ordSF  = 0x1D // start field
	ordSA  = 0x28 // set attribute
	ordSFE = 0x29 // start field extended
	ordMF  = 0x2C // modify field
	ordRA  = 0x3C // repeat to address
)

// isFormatControl reports whether c is a format control order (or null),
// which a 3270 stores in the buffer like a character.
func isFormatControl(c byte) bool {
	switch c {
	case 0x00, // NUL
		0x0C, // FF
		0x0D, // CR
		0x0E, // SO
		0x0F, // SI
		0x15, // NL
		0x19, // EM
		0x1C, // DUP
		0x1E, // FM
		0x25, // LF
		0x3F, // SUB
		0xFF: // EO
		return true
	}
	return false
}

// Extended attribute types (SFE, MF, SA).
const (
	xaAll          = 0x00
	xaHighlighting = 0x41
	xaForeground   = 0x42
	xaCharset      = 0x43
	xa3270         = 0xC0
	csAPL          = 0xF1 // the character set ID of the graphic escape set
)

// Structured field IDs (outbound).
const (
	sfReadPartition = 0x01
	sfEraseReset    = 0x03
	sfSetReplyMode  = 0x09
	sfOutbound3270  = 0x40
)

// Read Partition types.
const (
	rpQuery     = 0x02
	rpQueryList = 0x03
	rpRMA       = 0x6E
	rpRB        = 0xF2
	rpRM        = 0xF6
)

// ParseDataStream applies one 3270 record from the host (telnet framing
// removed) to b, as the terminal would, and returns the inbound record the
// host asked for, if any: a Query Reply, or the answer to a Read Buffer,
// Read Modified or Read Modified All command. It does no I/O.
//
// A record the terminal cannot accept returns a *DataStreamError (wrapping
// ErrBadDataStream) with the offset of the offending byte; b keeps whatever
// the record changed before that point and stays consistent. An empty
// record does nothing.
func ParseDataStream(b *Buffer, record []byte) (reply []byte, err error) {
	if len(record) == 0 {
		return nil, nil
	}
	switch record[0] {
	case cmdW, snaW:
		b.writes++
		return nil, b.write(record, 0)
	case cmdEW, snaEW:
		b.writes++
		b.erase(false)
		return nil, b.write(record, 0)
	case cmdEWA, snaEWA:
		b.writes++
		b.erase(true)
		return nil, b.write(record, 0)
	case cmdEAU, snaEAU:
		b.writes++
		b.eraseAllUnprotected()
		return nil, nil
	case cmdWSF, snaWSF:
		return b.writeStructuredField(record)
	case cmdRB, snaRB:
		return b.readBuffer(b.aid), nil
	case cmdRM, snaRM:
		return b.readModified(b.aid, false), nil
	case cmdRMA, snaRMA:
		return b.readModified(b.aid, true), nil
	case snaNOP:
		return nil, nil
	}
	return nil, badStream(0, "unknown command 0x%02X", record[0])
}

// write performs the WCC and orders of a Write, Erase/Write or Erase/Write
// Alternate command at rec[0] (the erase already done). base is the offset
// of rec in the record, for errors.
//
// The rules follow GA23-0059 and, where it leaves room, x3270's ctlr_write:
// the write starts at the cursor address; PT nulls the rest of the field
// when it follows data; RA and EUA to their own start address cover the
// whole buffer.
//
// One departure, by choice: characters wrap from the last position to the
// first as on a 3270, but a field attribute (SF, SFE) written after the
// write has wrapped is refused. A host that means it would have used SBA;
// what it signals in practice is a data stream whose addresses were
// misread, which would otherwise lay fields over the screen silently.
func (b *Buffer) write(rec []byte, base int) error {
	if len(rec) < 2 {
		return badStream(base+len(rec), "write command without a WCC")
	}
	wcc := rec[1]
	if wcc&wccResetMDT != 0 {
		b.resetMDT()
	}
	var (
		size    = b.size()
		addr    = b.cursor
		ic      = -1
		color   go3270.Color
		hl      go3270.Highlight
		ge      bool // SA character set: graphic escape
		lastCmd = true
		lastZPT = false
		wrapped = false
	)
	// advance moves to the next position, wrapping at the end.
	advance := func(addr int) (int, bool) {
		if addr++; addr == size {
			return 0, true
		}
		return addr, false
	}
	// need checks that the order at i has n parameter bytes.
	need := func(i, n int, what string) error {
		if i+n >= len(rec) {
			return badStream(base+i, "%s runs past the end of the record", what)
		}
		return nil
	}
	var err error
loop:
	for i := 2; i < len(rec); {
		c := rec[i]
		switch c {
		case ordSF:
			if err = need(i, 1, "SF"); err != nil {
				break loop
			}
			if wrapped {
				err = badStream(base+i, "SF at address %d after the write wrapped past the end of the buffer", addr)
				break loop
			}
			b.startField(addr, Attr(rec[i+1]), 0, 0)
			addr, wrapped = advance(addr)
			i += 2
			lastCmd, lastZPT = true, false

		case ordSFE:
			if err = need(i, 1, "SFE"); err != nil {
				break loop
			}
			n := int(rec[i+1])
			if err = need(i, 1+2*n, "SFE"); err != nil {
				break loop
			}
			if wrapped {
				err = badStream(base+i, "SFE at address %d after the write wrapped past the end of the buffer", addr)
				break loop
			}
			var (
				fa   Attr
				fcol go3270.Color
				fhl  go3270.Highlight
			)
			for j := i + 2; j < i+2+2*n; j += 2 {
				switch rec[j] {
				case xa3270:
					fa = Attr(rec[j+1])
				case xaForeground:
					fcol = go3270.Color(rec[j+1])
				case xaHighlighting:
					fhl = go3270.Highlight(rec[j+1])
				}
			}
			b.startField(addr, fa, fcol, fhl)
			addr, wrapped = advance(addr)
			i += 2 + 2*n
			lastCmd, lastZPT = true, false

		case ordSBA:
			if err = need(i, 2, "SBA"); err != nil {
				break loop
			}
			a := decodeAddr(rec[i+1], rec[i+2])
			if a >= size {
				err = badStream(base+i, "SBA to address %d outside the %dx%d buffer", a, b.rows, b.cols)
				break loop
			}
			addr, wrapped = a, false
			i += 3
			lastCmd, lastZPT = true, false

		case ordIC:
			ic = addr
			i++
			lastCmd, lastZPT = true, false

		case ordPT:
			i++
			if c := b.cells[addr]; c.Field && !c.Attr.Protected() {
				addr = b.inc(addr)
				lastCmd, lastZPT = true, false
				break
			}
			next := b.nextUnprotected(addr)
			if next < addr {
				next = 0
			}
			if !lastCmd || lastZPT {
				for addr != next && !b.cells[addr].Field {
					b.putChar(addr, 0, false, 0, 0)
					addr = b.inc(addr)
				}
				if next == 0 {
					lastZPT = true
				}
			} else {
				lastZPT = false
			}
			addr, wrapped = next, false
			lastCmd = true

		case ordRA:
			if err = need(i, 3, "RA"); err != nil {
				break loop
			}
			stop := decodeAddr(rec[i+1], rec[i+2])
			j, rge := i+3, ge
			if rec[j] == ordGE {
				if err = need(j, 1, "RA"); err != nil {
					break loop
				}
				j, rge = j+1, true
			}
			if stop >= size {
				err = badStream(base+i, "RA to address %d outside the %dx%d buffer", stop, b.rows, b.cols)
				break loop
			}
			ch := rec[j]
			for {
				b.putChar(addr, ch, rge, color, hl)
				addr = b.inc(addr)
				if addr == stop {
					break
				}
			}
			wrapped = false
			i = j + 1
			lastCmd, lastZPT = true, false

		case ordEUA:
			if err = need(i, 2, "EUA"); err != nil {
				break loop
			}
			stop := decodeAddr(rec[i+1], rec[i+2])
			if stop >= size {
				err = badStream(base+i, "EUA to address %d outside the %dx%d buffer", stop, b.rows, b.cols)
				break loop
			}
			prot := b.attrAt(addr).Protected()
			for {
				if c := b.cells[addr]; c.Field {
					prot = c.Attr.Protected()
				} else if !prot {
					b.putChar(addr, 0, false, 0, 0)
				}
				addr = b.inc(addr)
				if addr == stop {
					break
				}
			}
			wrapped = false
			i += 3
			lastCmd, lastZPT = true, false

		case ordGE:
			if err = need(i, 1, "GE"); err != nil {
				break loop
			}
			b.putChar(addr, rec[i+1], true, color, hl)
			addr, wrapped = advance(addr)
			i += 2
			lastCmd, lastZPT = false, false

		case ordMF:
			if err = need(i, 1, "MF"); err != nil {
				break loop
			}
			n := int(rec[i+1])
			if err = need(i, 1+2*n, "MF"); err != nil {
				break loop
			}
			if c := &b.cells[addr]; c.Field {
				for j := i + 2; j < i+2+2*n; j += 2 {
					switch rec[j] {
					case xa3270:
						c.Attr = Attr(rec[j+1]) & 0x3F
					case xaForeground:
						c.Color = go3270.Color(rec[j+1])
					case xaHighlighting:
						c.Highlight = go3270.Highlight(rec[j+1])
					}
				}
				addr, wrapped = advance(addr)
			}
			i += 2 + 2*n
			lastCmd, lastZPT = true, false

		case ordSA:
			if err = need(i, 2, "SA"); err != nil {
				break loop
			}
			switch v := rec[i+2]; rec[i+1] {
			case xaAll:
				color, hl, ge = 0, 0, false
			case xaForeground:
				color = go3270.Color(v)
			case xaHighlighting:
				hl = go3270.Highlight(v)
			case xaCharset:
				ge = v == csAPL
			}
			i += 3
			lastCmd, lastZPT = true, false

		default:
			if c >= 0x40 && c != 0xFF {
				// A run of graphic characters: most of a write.
				for ; i < len(rec) && rec[i] >= 0x40 && rec[i] != 0xFF; i++ {
					if b.cells[addr].Field {
						b.nfa--
					}
					b.cells[addr] = Cell{Char: rec[i], GE: ge, Color: color, Highlight: hl}
					if addr++; addr == size {
						addr, wrapped = 0, true
					}
				}
				lastCmd, lastZPT = false, false
				break
			}
			if !isFormatControl(c) {
				err = badStream(base+i, "unknown order 0x%02X", c)
				break loop
			}
			b.putChar(addr, c, ge, color, hl)
			addr, wrapped = advance(addr)
			i++
			// As x3270: a format control counts as an order for PT,
			// a null or a graphic character as data.
			lastCmd = c != 0 && c < 0x40 || c == 0xFF
			lastZPT = false
		}
	}
	if ic >= 0 {
		b.cursor = ic
	}
	b.awaitingFirst = false
	if wcc&wccKeyboardRestore != 0 {
		b.inhibited = false
		b.aid = go3270.AIDNone
	}
	b.alarm = wcc&wccSoundAlarm != 0
	return err
}

// eraseAllUnprotected performs Erase All Unprotected: nulls in every
// unprotected field, their MDTs reset, the cursor to the first unprotected
// field, the keyboard restored (x3270's ctlr_erase_all_unprotected).
func (b *Buffer) eraseAllUnprotected() {
	b.awaitingFirst = false
	b.inhibited = false
	b.aid = go3270.AIDNone
	b.alarm = false
	if b.nfa == 0 {
		b.clear()
		return
	}
	first := b.firstFieldAddr()
	addr, found := first, false
	for {
		if a := b.cells[addr].Attr; !a.Protected() {
			b.cells[addr].Attr = a &^ AttrModified
			for {
				addr = b.inc(addr)
				if !found {
					b.cursor, found = addr, true
				}
				if b.cells[addr].Field {
					break
				}
				b.putChar(addr, 0, false, 0, 0)
			}
		} else {
			for {
				addr = b.inc(addr)
				if b.cells[addr].Field {
					break
				}
			}
		}
		if addr == first {
			break
		}
	}
	if !found {
		b.cursor = 0
	}
}

// firstFieldAddr returns the address of the first attribute in buffer
// order; the buffer must be formatted.
func (b *Buffer) firstFieldAddr() int {
	for i, c := range b.cells {
		if c.Field {
			return i
		}
	}
	return -1
}

// writeStructuredField processes the structured fields of a WSF record.
func (b *Buffer) writeStructuredField(rec []byte) (reply []byte, err error) {
	for i := 1; i < len(rec); {
		if len(rec)-i < 3 {
			return reply, badStream(i, "structured field header runs past the end of the record")
		}
		n := int(rec[i])<<8 | int(rec[i+1])
		if n == 0 {
			n = len(rec) - i
		}
		if n < 3 || i+n > len(rec) {
			return reply, badStream(i, "structured field length %d does not fit the %d bytes left", n, len(rec)-i)
		}
		sf := rec[i : i+n]
		r, err := b.structuredField(sf, i)
		if err != nil {
			return reply, err
		}
		if reply == nil {
			reply = r
		}
		i += n
	}
	return reply, nil
}

// structuredField processes one structured field sf (length, ID, data) at
// offset base of the record.
func (b *Buffer) structuredField(sf []byte, base int) ([]byte, error) {
	switch sf[2] {
	case sfReadPartition:
		if len(sf) < 5 {
			return nil, badStream(base, "Read Partition of %d bytes, want at least 5", len(sf))
		}
		pid, typ := sf[3], sf[4]
		switch typ {
		case rpQuery:
			if pid != 0xFF {
				return nil, badStream(base+3, "Read Partition Query for partition 0x%02X, want 0xFF", pid)
			}
			return b.queryReply(nil), nil
		case rpQueryList:
			if pid != 0xFF {
				return nil, badStream(base+3, "Read Partition Query List for partition 0x%02X, want 0xFF", pid)
			}
			if len(sf) < 6 {
				return nil, badStream(base, "Read Partition Query List without a request type")
			}
			if sf[5]&0xC0 == 0 { // a list of QCODEs
				return b.queryReply(sf[6:]), nil
			}
			return b.queryReply(nil), nil // equivalent+list, or all
		case rpRB, rpRM, rpRMA:
			if pid != 0x00 {
				return nil, badStream(base+3, "read from partition 0x%02X; only the implicit partition 0 exists", pid)
			}
			switch typ {
			case rpRB:
				return b.readBuffer(b.aid), nil
			case rpRM:
				return b.readModified(b.aid, false), nil
			default:
				return b.readModified(b.aid, true), nil
			}
		}
		return nil, badStream(base+4, "unknown Read Partition type 0x%02X", typ)

	case sfEraseReset:
		if len(sf) < 4 {
			return nil, badStream(base, "Erase/Reset without its flags")
		}
		b.writes++
		b.erase(sf[3]&0x80 != 0)
		return nil, nil

	case sfSetReplyMode:
		// Replies stay in field mode, the only mode the Query Reply
		// offers; a request for another is ignored, as by x3270 for the
		// modes it does not know.
		return nil, nil

	case sfOutbound3270:
		if len(sf) < 5 {
			return nil, badStream(base, "Outbound 3270DS without a command")
		}
		if sf[3] != 0x00 {
			return nil, badStream(base+3, "Outbound 3270DS for partition 0x%02X; only the implicit partition 0 exists", sf[3])
		}
		cmd := sf[4:]
		switch cmd[0] {
		case snaW, cmdW:
			b.writes++
			if len(cmd) > 1 {
				return nil, b.write(cmd, base+4)
			}
		case snaEW, cmdEW, snaEWA, cmdEWA:
			// In a structured field the erase keeps the partition's size
			// (x3270's outbound_ds).
			b.writes++
			b.erase(b.alt)
			if len(cmd) > 1 {
				return nil, b.write(cmd, base+4)
			}
		case snaEAU, cmdEAU:
			b.writes++
			b.eraseAllUnprotected()
		default:
			return nil, badStream(base+4, "unknown command 0x%02X in Outbound 3270DS", cmd[0])
		}
		return nil, nil
	}
	// Structured fields for features this terminal does not have (such
	// as file transfer or load programmed symbols) are ignored, as x3270
	// ignores those it does not support.
	return nil, nil
}
