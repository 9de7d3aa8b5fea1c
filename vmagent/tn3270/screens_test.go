package tn3270

import (
	"fmt"
	"net"
	"strings"

	"github.com/racingmars/go3270"
)

// A testScreen is a screen a test host shows: a go3270 screen, or raw 3270
// records written after go3270's negotiation (for orders go3270 does not
// produce). Every screen ends with a marker on its last write, so that a
// terminal can tell it has the whole screen.
type testScreen struct {
	name   string
	marker string
	// A go3270 screen, shown with ShowScreenOpts; before is shown first
	// (an Erase/Write) when the test is of a Write over it.
	before *go3270.Screen
	screen go3270.Screen
	cursor Pos
	noClr  bool // show screen with NoClear (a Write, not an Erase/Write)
	// Or raw records, sent each with IAC EOR.
	raw [][]byte
}

// show writes the screen to conn.
func (s testScreen) show(conn net.Conn) error {
	cp := go3270.Codepage037()
	if s.raw != nil {
		for _, rec := range s.raw {
			if _, err := conn.Write(appendRecord(nil, rec)); err != nil {
				return err
			}
		}
		return nil
	}
	if s.before != nil {
		if _, err := go3270.ShowScreenOpts(*s.before, nil, conn, go3270.ScreenOpts{
			Codepage: cp, NoResponse: true,
		}); err != nil {
			return err
		}
	}
	_, err := go3270.ShowScreenOpts(s.screen, nil, conn, go3270.ScreenOpts{
		Codepage: cp, NoResponse: true, NoClear: s.noClr,
		CursorRow: s.cursor.Row, CursorCol: s.cursor.Col,
	})
	return err
}

var loginScreen = go3270.Screen{
	{Row: 0, Col: 27, Intense: true, Color: go3270.White, Content: "ZBRIDGE TEST SYSTEM"},
	{Row: 2, Col: 0, Content: "Enter your userid and password, then press ENTER."},
	{Row: 4, Col: 0, Content: "Userid  ===>"},
	{Row: 4, Col: 13, Name: "userid", Write: true, Highlighting: go3270.Underscore, Color: go3270.Turquoise},
	{Row: 4, Col: 22, Autoskip: true},
	{Row: 5, Col: 0, Content: "Password ==>"},
	{Row: 5, Col: 13, Name: "password", Write: true, Hidden: true, Content: "SECRET"},
	{Row: 5, Col: 22, Autoskip: true},
	{Row: 7, Col: 0, Content: "Account ===>"},
	{Row: 7, Col: 13, Name: "account", Write: true, NumericOnly: true, Content: "0042"},
	{Row: 7, Col: 20, Autoskip: true},
	{Row: 21, Col: 0, Name: "errmsg", Color: go3270.Red, Intense: true},
	{Row: 22, Col: 0, Content: "PF3=Exit  CLEAR=Cancel", Color: go3270.Blue},
	{Row: 23, Col: 60, Content: "VMSYS1   CP READ", Color: go3270.Yellow},
}

var colourScreen = go3270.Screen{
	{Row: 0, Col: 30, Content: "COLOURS AND WRAPS", Intense: true},
	{Row: 2, Col: 0, Content: "plain "},
	{Row: 2, Col: 7, AttributeOnly: true, Color: go3270.Red},
	{Row: 2, Col: 7, PositionOnly: true, Content: "red "},
	{Row: 2, Col: 11, AttributeOnly: true, Color: go3270.Green, Highlighting: go3270.ReverseVideo},
	{Row: 2, Col: 11, PositionOnly: true, Content: "green-reverse"},
	{Row: 2, Col: 24, AttributeOnly: true},
	{Row: 2, Col: 24, PositionOnly: true, Content: " back to default"},
	{Row: 4, Col: 0, Content: "blinking", Highlighting: go3270.Blink, Color: go3270.Pink},
	{Row: 5, Col: 0, Content: "intense protected", Intense: true},
	{Row: 6, Col: 0, Content: "hidden protected, never shown", Hidden: true},
	{Row: 6, Col: 40, Content: "shown again"},
	// A field that runs over the end of row 10 into row 11.
	{Row: 10, Col: 66, Content: "this text runs over the end of the row", Color: go3270.Turquoise},
	{Row: 11, Col: 40, Content: "after the wrap"},
	{Row: 14, Col: 5, Name: "in1", Write: true, Content: "unprotected", Highlighting: go3270.Underscore},
	{Row: 14, Col: 30, Autoskip: true, Content: "autoskip"},
	// A hidden field whose attribute is the last position: its text wraps
	// to the start of the buffer and, hidden, shows nowhere; the start of
	// row 0 up to the first attribute belongs to it.
	{Row: 23, Col: 10, Content: "END-OF-SCREEN colours"},
	{Row: 23, Col: 79, Hidden: true, Content: "WRAPPED HIDDEN"},
}

var overlayBefore = go3270.Screen{
	{Row: 0, Col: 0, Content: "FIRST SCREEN TITLE, PARTLY OVERWRITTEN"},
	{Row: 3, Col: 0, Content: "line three stays"},
	{Row: 5, Col: 0, Content: "line five is replaced by a longer one"},
	{Row: 8, Col: 10, Name: "f", Write: true, Content: "typed"},
	{Row: 8, Col: 40},
}

var overlayScreen = go3270.Screen{
	{Row: 0, Col: 0, Content: "SECOND"},
	{Row: 5, Col: 0, Content: "LINE FIVE, NEW"},
	{Row: 12, Col: 0, Content: "a new line twelve"},
	{Row: 23, Col: 0, Content: "END-OF-SCREEN overlay"},
}

// sba returns an SBA order to (row, col) of a 24x80 screen, 12-bit.
func sba(row, col int) []byte {
	return appendAddr([]byte{ordSBA}, row*80+col, 1920)
}

// sba14 returns an SBA order to (row, col) with a 14-bit address.
func sba14(row, col int) []byte {
	return append([]byte{ordSBA}, addr14(row, col)...)
}

// addr14 returns the 14-bit address of (row, col).
func addr14(row, col int) []byte {
	a := row*80 + col
	return []byte{byte(a >> 8), byte(a)}
}

// addr12 returns the 12-bit address of (row, col).
func addr12(row, col int) []byte { return appendAddr(nil, row*80+col, 1920) }

// ebc encodes s in CP037.
func ebc(s string) []byte { return go3270.Codepage037().Encode(s) }

// cat concatenates byte slices.
func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// Field attribute bytes (in code table form, as hosts send them).
var (
	faProt      = codeTable[0x20]
	faUnprot    = codeTable[0x00]
	faUnprotMDT = codeTable[0x01]
	faProtInt   = codeTable[0x28]
	faHidden    = codeTable[0x2C]
	faUnprHid   = codeTable[0x0C]
	faNumeric   = codeTable[0x10]
	faSkip      = codeTable[0x30]
)

// ordersRecord exercises the orders go3270 does not send: RA (with wrap),
// EUA, PT, MF, SA, GE, format controls, 14-bit addresses, IC.
var ordersRecord = cat(
	[]byte{cmdEW, 0xC3},
	sba(0, 10), []byte{ordSF, faProtInt}, ebc("ORDERS TEST"),
	// RA: a row of stars, and RA of a null.
	sba(1, 0), []byte{ordSF, faProt}, []byte{ordRA}, addr12(1, 40), ebc("*"),
	[]byte{ordRA}, addr12(1, 50), []byte{0x00}, ebc("after-null-RA"),
	// EUA: nulls the unprotected positions from (3,3) to (3,60), not the
	// protected field between.
	sba(3, 0), []byte{ordSF, faUnprot}, ebc("ABCDEFGHIJ"),
	[]byte{ordSF, faProt}, ebc("PROTECTED"),
	[]byte{ordSF, faUnprot}, ebc("KLMNOPQRSTUVWXYZ"),
	[]byte{ordSF, faProt}, ebc("END"),
	sba(3, 4), []byte{ordEUA}, addr12(3, 40),
	// PT after data nulls the rest of the field and goes to the next
	// unprotected field; PT right after an order only moves.
	sba(5, 0), []byte{ordSF, faUnprot}, ebc("XXXXXXXXXXXXXXXXXXXX"),
	[]byte{ordSF, faProt}, ebc("P1"), []byte{ordSF, faUnprot}, ebc("YYYYYYYYYY"),
	[]byte{ordSF, faProt}, ebc("P2"),
	sba(5, 1), ebc("ab"), []byte{ordPT}, ebc("cd"), []byte{ordPT},
	// MF: the field at (7,0) becomes protected and hidden.
	sba(7, 0), []byte{ordSF, faUnprot}, ebc("MF makes this hidden"),
	[]byte{ordSF, faProt}, ebc("MF leaves this"),
	sba(7, 0), []byte{ordMF, 2, xa3270, faHidden, xaForeground, byte(go3270.Red)},
	// SA: character attributes, then reset; a SFE with colour.
	sba(9, 0), []byte{ordSA, xaForeground, byte(go3270.Red)}, ebc("red"),
	[]byte{ordSA, xaHighlighting, byte(go3270.Blink)}, ebc("blink"),
	[]byte{ordSA, xaAll, 0x00}, ebc("plain"),
	[]byte{ordSFE, 2, xa3270, faProt, xaForeground, byte(go3270.Yellow)}, ebc("sfe yellow"),
	// 14-bit addresses.
	sba14(11, 5), ebc("fourteen-bit SBA"),
	[]byte{ordRA}, addr14(11, 40), ebc("="),
	// Format controls are stored like characters: DUP, FM, FF, NUL, SUB.
	sba(13, 0), ebc("controls:"), []byte{0x1C, 0x1E, 0x0C, 0x00, 0x3F}, ebc(":end"),
	// A field numeric and one unprotected-hidden with content.
	sba(15, 0), []byte{ordSF, faNumeric}, ebc("12345"), []byte{ordSF, faUnprHid}, ebc("hide me"),
	[]byte{ordSF, faSkip}, ebc("skip"),
	// RA wrapping from the end of the buffer to (0,5).
	sba(23, 30), []byte{ordSF, faProt}, ebc("END-OF-SCREEN orders"),
	sba(23, 70), []byte{ordRA}, addr12(0, 5), ebc("-"),
	// The cursor.
	sba(15, 8), []byte{ordIC},
)

// writeRecord is a Write (not an erase) at the cursor, then EAU-free
// overwrite of the orders screen.
var writeRecord = cat(
	[]byte{cmdW, 0xC2}, ebc("W@cursor"), sba(20, 0), ebc("written by W"),
	sba(23, 30), []byte{ordSF, faProt}, ebc("END-OF-SCREEN write"),
)

// allCharsRecords show every EBCDIC code that can be a character (the
// graphic codes 0x40-0xFE and the format controls) on an unformatted
// screen, 32 a row.
func allCharsRecord() []byte {
	rec := cat([]byte{cmdEW, 0xC3}, sba(0, 0), ebc("ALL CHARACTERS"))
	row := 2
	var line []byte
	flush := func() {
		rec = append(rec, sba(row, 0)...)
		rec = append(rec, ebc(fmt.Sprintf("%02d:", row))...)
		rec = append(rec, line...)
		line, row = line[:0], row+1
	}
	for c := 0x40; c <= 0xFE; c++ {
		line = append(line, byte(c))
		if len(line) == 32 {
			flush()
		}
	}
	line = append(line, 0x00, 0x0C, 0x0D, 0x0E, 0x0F, 0x15, 0x19, 0x1C, 0x1E, 0x25, 0x3F, 0xFF)
	flush()
	return cat(rec, sba(23, 0), ebc("END-OF-SCREEN allchars"))
}

// geRecord shows the graphic escape (CP310) characters, with GE orders
// and with SA character set 0xF1.
func geRecord() []byte {
	rec := cat([]byte{cmdEW, 0xC3}, sba(0, 0), ebc("GRAPHIC ESCAPE"))
	row := 2
	for c := 0x40; c <= 0xFE; c++ {
		if (c-0x40)%32 == 0 {
			rec = append(rec, sba(row, 0)...)
			row++
		}
		rec = append(rec, ordGE, byte(c))
	}
	rec = cat(rec, sba(10, 0), []byte{ordSA, xaCharset, csAPL, 0x8F, 0x9F, 0xAC, 0xC5, 0xD5, ordSA, xaAll, 0}, ebc(" sa"),
		sba(11, 0), []byte{ordRA}, addr12(11, 20), []byte{ordGE, 0xA2})
	return cat(rec, sba(23, 0), ebc("END-OF-SCREEN ge"))
}

// testScreens are the screens shown to both our client and s3270.
func testScreens() []testScreen {
	return []testScreen{
		{name: "login", marker: "CP READ", screen: loginScreen, cursor: Pos{4, 14}},
		{name: "colours", marker: "END-OF-SCREEN colours", screen: colourScreen, cursor: Pos{14, 6}},
		{name: "overlay", marker: "END-OF-SCREEN overlay", before: &overlayBefore, screen: overlayScreen, noClr: true},
		{name: "orders", marker: "END-OF-SCREEN orders", raw: [][]byte{ordersRecord}},
		{name: "write", marker: "END-OF-SCREEN write", raw: [][]byte{ordersRecord, writeRecord}},
		{name: "allchars", marker: "END-OF-SCREEN allchars", raw: [][]byte{allCharsRecord()}},
		{name: "ge", marker: "END-OF-SCREEN ge", raw: [][]byte{geRecord()}},
	}
}

func screenByName(name string) testScreen {
	for _, s := range testScreens() {
		if s.name == name {
			return s
		}
	}
	panic("no test screen " + name)
}

func hasMarker(marker string) func(Screen) bool {
	return func(s Screen) bool { return strings.Contains(s.String(), marker) }
}
