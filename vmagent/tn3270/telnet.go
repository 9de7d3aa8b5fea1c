package tn3270

import (
	"bytes"
	"fmt"
)

// Telnet commands (RFC 854) and options.
const (
	tnSE   = 240
	tnNOP  = 241
	tnEOR  = 239 // end of record (RFC 885)
	tnSB   = 250
	tnWILL = 251
	tnWONT = 252
	tnDO   = 253
	tnDONT = 254
	tnIAC  = 255

	optBinary       = 0  // RFC 856
	optTerminalType = 24 // RFC 1091
	optEOR          = 25 // RFC 885
	optTN3270E      = 40 // RFC 2355: refused

	ttIS   = 0
	ttSEND = 1
)

// maxSubneg bounds a subnegotiation: the only one this client reads is
// TERMINAL-TYPE SEND, a few bytes long.
const maxSubneg = 1024

// telnetHandler receives what telnetDecoder finds in the byte stream.
type telnetHandler interface {
	// record is called with each 3270 record (ended by IAC EOR), IAC IAC
	// unescaped. The slice is reused after the call returns.
	record(rec []byte) error
	// command is called for WILL, WONT, DO and DONT.
	command(cmd, opt byte) error
	// subneg is called with the bytes between IAC SB and IAC SE, IAC IAC
	// unescaped.
	subneg(data []byte) error
}

type telnetState int

const (
	tsData   telnetState = iota
	tsIAC                // after IAC
	tsOption             // after IAC WILL/WONT/DO/DONT
	tsSB                 // in a subnegotiation
	tsSBIAC              // IAC in a subnegotiation
)

// telnetDecoder splits a telnet byte stream into 3270 records, option
// commands and subnegotiations. It does no I/O; it keeps its state between
// calls to feed, so the stream may arrive in pieces of any size.
type telnetDecoder struct {
	maxRecord int
	state     telnetState
	cmd       byte
	rec       []byte
	sb        []byte
}

// feed decodes p, calling h for each complete item. It stops at the first
// error from h or from the stream.
func (d *telnetDecoder) feed(p []byte, h telnetHandler) error {
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch d.state {
		case tsData:
			if c == tnIAC {
				d.state = tsIAC
				continue
			}
			// Take the data up to the next IAC in one piece.
			n := bytes.IndexByte(p[i:], tnIAC)
			if n < 0 {
				n = len(p) - i
			}
			if len(d.rec)+n > d.maxRecord {
				return fmt.Errorf("%w: record longer than %d bytes without IAC EOR", ErrTelnet, d.maxRecord)
			}
			d.rec = append(d.rec, p[i:i+n]...)
			i += n - 1
		case tsIAC:
			d.state = tsData
			switch c {
			case tnIAC:
				if err := d.addData(c); err != nil {
					return err
				}
			case tnEOR:
				err := h.record(d.rec)
				d.rec = d.rec[:0]
				if err != nil {
					return err
				}
			case tnWILL, tnWONT, tnDO, tnDONT:
				d.cmd = c
				d.state = tsOption
			case tnSB:
				d.sb = d.sb[:0]
				d.state = tsSB
			default:
				// NOP, GA, AYT, ... carry nothing for a 3270 session.
			}
		case tsOption:
			d.state = tsData
			if err := h.command(d.cmd, c); err != nil {
				return err
			}
		case tsSB:
			if c == tnIAC {
				d.state = tsSBIAC
				continue
			}
			if err := d.addSubneg(c); err != nil {
				return err
			}
		case tsSBIAC:
			switch c {
			case tnSE:
				d.state = tsData
				if err := h.subneg(d.sb); err != nil {
					return err
				}
			case tnIAC:
				d.state = tsSB
				if err := d.addSubneg(c); err != nil {
					return err
				}
			default:
				return fmt.Errorf("%w: IAC 0x%02X inside a subnegotiation", ErrTelnet, c)
			}
		}
	}
	return nil
}

func (d *telnetDecoder) addData(c byte) error {
	if len(d.rec) >= d.maxRecord {
		return fmt.Errorf("%w: record longer than %d bytes without IAC EOR", ErrTelnet, d.maxRecord)
	}
	d.rec = append(d.rec, c)
	return nil
}

func (d *telnetDecoder) addSubneg(c byte) error {
	if len(d.sb) >= maxSubneg {
		return fmt.Errorf("%w: subnegotiation longer than %d bytes", ErrTelnet, maxSubneg)
	}
	d.sb = append(d.sb, c)
	return nil
}

// pending returns the bytes of an unfinished record.
func (d *telnetDecoder) pending() []byte { return d.rec }

// negotiator keeps the state of the telnet options (a simple form of the
// RFC 1143 rules: answer a request only when it changes the state, so that
// no two sides loop) and decides the answers.
type negotiator struct {
	termType string
	us       [256]bool // options enabled on our side (we WILL)
	him      [256]bool // options enabled on the host's side (he WILL)
}

// answer returns the reply to the host's command cmd for option opt, or nil
// if none is due. This terminal agrees to TERMINAL-TYPE, BINARY and EOR on
// its side and BINARY and EOR on the host's, and refuses every other
// option, TN3270E included.
func (n *negotiator) answer(cmd, opt byte) []byte {
	switch cmd {
	case tnDO:
		switch opt {
		case optTerminalType, optBinary, optEOR:
			if n.us[opt] {
				return nil
			}
			n.us[opt] = true
			return []byte{tnIAC, tnWILL, opt}
		}
		return []byte{tnIAC, tnWONT, opt}
	case tnDONT:
		if !n.us[opt] {
			return nil
		}
		n.us[opt] = false
		return []byte{tnIAC, tnWONT, opt}
	case tnWILL:
		switch opt {
		case optBinary, optEOR:
			if n.him[opt] {
				return nil
			}
			n.him[opt] = true
			return []byte{tnIAC, tnDO, opt}
		}
		return []byte{tnIAC, tnDONT, opt}
	case tnWONT:
		if !n.him[opt] {
			return nil
		}
		n.him[opt] = false
		return []byte{tnIAC, tnDONT, opt}
	}
	return nil
}

// subneg returns the reply to a subnegotiation, or nil: TERMINAL-TYPE SEND
// is answered with the terminal type, once TERMINAL-TYPE is agreed.
func (n *negotiator) subneg(data []byte) []byte {
	if len(data) >= 2 && data[0] == optTerminalType && data[1] == ttSEND && n.us[optTerminalType] {
		out := []byte{tnIAC, tnSB, optTerminalType, ttIS}
		out = append(out, n.termType...)
		return append(out, tnIAC, tnSE)
	}
	return nil
}

// in3270 reports whether the session is in 3270 mode: BINARY and EOR
// both ways.
func (n *negotiator) in3270() bool {
	return n.us[optBinary] && n.him[optBinary] && n.us[optEOR] && n.him[optEOR]
}

// appendRecord appends rec to dst as a telnet 3270 record: every 0xFF
// doubled, then IAC EOR.
func appendRecord(dst, rec []byte) []byte {
	for _, c := range rec {
		if c == tnIAC {
			dst = append(dst, tnIAC)
		}
		dst = append(dst, c)
	}
	return append(dst, tnIAC, tnEOR)
}
