package tn3270

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/racingmars/go3270"
)

// Attr is a 3270 field attribute: the six significant bits of the attribute
// byte (GA23-0059, "Field Attributes"). The bits not defined here are
// reserved.
type Attr byte

// Field attribute bits.
const (
	// AttrProtected: the operator cannot type into the field.
	AttrProtected Attr = 0x20
	// AttrNumeric: only digits, '.' and '-' may be typed (with
	// AttrProtected: the cursor skips the field).
	AttrNumeric Attr = 0x10
	// AttrDisplayMask selects the two display bits: 00 normal, 01 normal
	// and pen-detectable, 10 intensified, 11 nondisplay (hidden).
	AttrDisplayMask Attr = 0x0C
	AttrDetectable  Attr = 0x04
	AttrIntensified Attr = 0x08
	AttrHidden      Attr = 0x0C
	// AttrModified is the modified data tag (MDT): the field is sent to
	// the host on Read Modified.
	AttrModified Attr = 0x01
)

// Protected reports whether the field is protected.
func (a Attr) Protected() bool { return a&AttrProtected != 0 }

// Numeric reports whether the field is numeric-only.
func (a Attr) Numeric() bool { return a&AttrNumeric != 0 }

// Autoskip reports whether the field is protected and numeric: the cursor
// skips over it.
func (a Attr) Autoskip() bool { return a&(AttrProtected|AttrNumeric) == AttrProtected|AttrNumeric }

// Hidden reports whether the field is nondisplay (such as a password).
func (a Attr) Hidden() bool { return a&AttrDisplayMask == AttrHidden }

// Intensified reports whether the field is displayed intensified.
func (a Attr) Intensified() bool { return a&AttrDisplayMask == AttrIntensified }

// Modified reports whether the modified data tag is set.
func (a Attr) Modified() bool { return a&AttrModified != 0 }

func (a Attr) String() string {
	var parts []string
	if a.Protected() {
		parts = append(parts, "protected")
	} else {
		parts = append(parts, "unprotected")
	}
	if a.Numeric() {
		parts = append(parts, "numeric")
	}
	switch a & AttrDisplayMask {
	case AttrIntensified:
		parts = append(parts, "intensified")
	case AttrHidden:
		parts = append(parts, "hidden")
	}
	if a.Modified() {
		parts = append(parts, "modified")
	}
	return strings.Join(parts, ",")
}

// Cell is one position of the 3270 buffer: either a character or a field
// attribute.
type Cell struct {
	// Char is the EBCDIC code of the character; 0 is a null. Unused when
	// Field is set.
	Char byte
	// GE: Char is from the graphic escape character set (CP310).
	GE bool
	// Field: the position holds a field attribute, which the screen shows
	// as a blank.
	Field bool
	// Attr is the field attribute when Field is set.
	Attr Attr
	// Color and Highlight are the extended attributes: of the field when
	// Field is set, else of the character (set by SA). Zero is the default.
	Color     go3270.Color
	Highlight go3270.Highlight
}

// Model dimensions (rows, columns) of the IBM 3278 models 2 to 5: the
// alternate screen size. The default size is always 24x80.
var modelSizes = map[int][2]int{
	2: {24, 80},
	3: {32, 80},
	4: {43, 80},
	5: {27, 132},
}

// Buffer is a 3270 terminal's state: the presentation space (cells, fields,
// cursor) and the keyboard. The host changes it through [ParseDataStream];
// the client types into it. A Buffer is not safe for concurrent use; a
// [Client] guards its own.
type Buffer struct {
	cp         go3270.Codepage
	model      int
	altRows    int
	altCols    int
	rows, cols int  // current size: 24x80 or altRows x altCols
	alt        bool // the alternate size is in use
	cells      []Cell
	nfa        int // number of cells with Field set
	cursor     int
	aid        go3270.AID // last AID sent; AIDNone after a keyboard restore
	// awaitingFirst: no host write since the connection started.
	awaitingFirst bool
	// inhibited: an AID was sent and no keyboard restore came since.
	inhibited bool
	alarm     bool   // the last write asked to sound the alarm
	writes    uint64 // host writes processed

	glyph   [256]rune // display of each EBCDIC code
	geGlyph [256]rune // display of each graphic escape code
}

// NewBuffer returns the buffer of an IBM 3278 model (2 to 5; 0 means 2)
// using codepage cp (nil means CP037), cleared, at the default 24x80 size,
// keyboard locked until the first host write.
func NewBuffer(model int, cp go3270.Codepage) (*Buffer, error) {
	if model == 0 {
		model = 2
	}
	size, ok := modelSizes[model]
	if !ok {
		return nil, fmt.Errorf("%w: model %d (want 2 to 5)", ErrBadConfig, model)
	}
	if cp == nil {
		cp = go3270.Codepage037()
	}
	b := &Buffer{
		cp:            cp,
		model:         model,
		altRows:       size[0],
		altCols:       size[1],
		rows:          24,
		cols:          80,
		aid:           go3270.AIDNone,
		awaitingFirst: true,
	}
	b.cells = make([]Cell, max(24*80, b.altRows*b.altCols))[:24*80]
	b.glyph, b.geGlyph = glyphTables(cp)
	return b, nil
}

// glyphTables returns how each EBCDIC code (and each graphic escape code)
// shows on the screen in codepage cp, the way s3270's Ascii() shows it:
// nulls, controls and undefined codes as blanks; the format controls DUP,
// FM, SUB and EO as x3270 draws them.
func glyphTables(cp go3270.Codepage) (plain, ge [256]rune) {
	for i := range 256 {
		r, n := utf8.DecodeRuneInString(cp.Decode([]byte{byte(i)}))
		if n == 0 || r == utf8.RuneError || r < 0x20 || (r >= 0x7F && r < 0xA0) {
			r = ' '
		}
		plain[i] = r
	}
	plain[ordGE] = ' '
	plain[0x1C] = '*' // DUP
	plain[0x1E] = ';' // FM
	plain[0x3F] = '■' // SUB
	plain[0xFF] = '●' // EO
	for i := range ge {
		ge[i] = ' '
	}
	for i, r := range []rune(x3270GE) {
		ge[0x40+i] = r
	}
	return plain, ge
}

// x3270GE is how x3270 (and so s3270's Ascii()) shows the graphic escape
// character set, CP310, codes 0x40 to 0xFE. It differs from go3270's CP310
// table (which Codepage.Decode uses) in some 30 places, such as 0x70 (⋄,
// not ◊), 0xAD ([) and 0xC0 ({); the screen text follows x3270 because the
// tests hold it to s3270's. Typing a CP310 character uses the codepage's
// encoder, where the two agree.
const x3270GE = "" +
	"                                " + // 0x40
	"                ⋄∧¨⌻⍸⍷⊢⊣∨       " + // 0x60
	"∼  ⎸⎹│    ↑↓≤⌈⌊→⎕▌▐▀▄■    ⊃⊂¤○±←" + // 0x80
	"¯°─•      ∩∪⊥[≥∘⍺∊⍳⍴⍵ ×\\÷ ∇∆⊤]≠∣" + // 0xA0
	"{⁼+∎└┌├┴§ ⍲⍱⌷⌽⍂⍉}⁾-┼┘┐┤┬¶ ⌶!⍒⍋⍞⍝" + // 0xC0
	"≡₁ʂʃ⍤⍥⍪€  ⌿⍀∵⊖⌹⍕⁰¹²³⁴⁵⁶⁷⁸⁹ ⍫⍙⍟⍎" // 0xE0

// Size returns the current screen size.
func (b *Buffer) Size() (rows, cols int) { return b.rows, b.cols }

func (b *Buffer) size() int { return b.rows * b.cols }

func (b *Buffer) inc(addr int) int {
	addr++
	if addr == len(b.cells) {
		return 0
	}
	return addr
}

// locked reports whether the keyboard is locked.
func (b *Buffer) locked() bool { return b.awaitingFirst || b.inhibited }

// erase clears the buffer and selects the default or alternate size, as
// Erase/Write and Erase/Write Alternate do.
func (b *Buffer) erase(alt bool) {
	if alt {
		b.rows, b.cols = b.altRows, b.altCols
	} else {
		b.rows, b.cols = 24, 80
	}
	b.alt = alt
	b.cells = b.cells[:b.rows*b.cols]
	b.clear()
}

// clear sets every position to null, removes all fields and homes the
// cursor.
func (b *Buffer) clear() {
	clear(b.cells)
	b.nfa = 0
	b.cursor = 0
}

func (b *Buffer) putChar(addr int, ch byte, ge bool, color go3270.Color, hl go3270.Highlight) {
	c := &b.cells[addr]
	if c.Field {
		b.nfa--
	}
	*c = Cell{Char: ch, GE: ge, Color: color, Highlight: hl}
}

func (b *Buffer) startField(addr int, a Attr, color go3270.Color, hl go3270.Highlight) {
	c := &b.cells[addr]
	if !c.Field {
		b.nfa++
	}
	*c = Cell{Field: true, Attr: a & 0x3F, Color: color, Highlight: hl}
}

// fieldAddr returns the address of the attribute of the field holding addr
// (addr itself when it is an attribute), or -1 if the screen has no fields.
func (b *Buffer) fieldAddr(addr int) int {
	if b.nfa == 0 {
		return -1
	}
	for a := addr; ; {
		if b.cells[a].Field {
			return a
		}
		if a == 0 {
			a = len(b.cells)
		}
		a--
	}
}

// attrAt returns the attribute governing addr; an unformatted screen counts
// as one unprotected, modified field.
func (b *Buffer) attrAt(addr int) Attr {
	fa := b.fieldAddr(addr)
	if fa < 0 {
		return AttrModified
	}
	return b.cells[fa].Attr
}

// nextUnprotected returns the first character position of the next
// unprotected field of non-zero length after addr, or 0 if there is none
// (the rule of x3270's next_unprotected).
func (b *Buffer) nextUnprotected(addr0 int) int {
	next := addr0
	for {
		addr := next
		next = b.inc(next)
		if b.cells[addr].Field && !b.cells[addr].Attr.Protected() && !b.cells[next].Field {
			return next
		}
		if next == addr0 {
			return 0
		}
	}
}

// resetMDT clears the modified data tag of every field.
func (b *Buffer) resetMDT() {
	if b.nfa == 0 {
		return
	}
	for i := range b.cells {
		if b.cells[i].Field {
			b.cells[i].Attr &^= AttrModified
		}
	}
}

// Snapshot returns a copy of the screen as it is now.
func (b *Buffer) Snapshot() Screen {
	s := Screen{
		Seq:            b.writes,
		Cursor:         Pos{b.cursor / b.cols, b.cursor % b.cols},
		KeyboardLocked: b.locked(),
		Alarm:          b.alarm,
		Alternate:      b.alt,
		nrows:          b.rows,
		ncols:          b.cols,
		cells:          append([]Cell(nil), b.cells...),
	}
	s.rows = b.render()
	s.Fields = b.fields()
	return s
}

// render returns the screen text, one string per row, the way s3270's
// Ascii() shows it: field attribute positions, nulls and the characters of
// hidden fields as blanks.
func (b *Buffer) render() []string {
	hidden := false
	if fa := b.fieldAddr(len(b.cells) - 1); fa >= 0 {
		hidden = b.cells[fa].Attr.Hidden()
	}
	text := make([]byte, 0, len(b.cells)+len(b.cells)/4)
	ends := make([]int, b.rows)
	for addr, c := range b.cells {
		switch {
		case c.Field:
			hidden = c.Attr.Hidden()
			text = append(text, ' ')
		case hidden:
			text = append(text, ' ')
		default:
			text = b.appendText(text, addr)
		}
		if (addr+1)%b.cols == 0 {
			ends[addr/b.cols] = len(text)
		}
	}
	// One string for the screen; the rows are slices of it.
	all := string(text)
	rows := make([]string, b.rows)
	start := 0
	for r, end := range ends {
		rows[r], start = all[start:end], end
	}
	return rows
}

// fields lists the fields in buffer order, starting with the first
// attribute from address 0.
func (b *Buffer) fields() []Field {
	if b.nfa == 0 {
		return nil
	}
	fs := make([]Field, 0, b.nfa)
	text := make([]byte, 0, len(b.cells)+len(b.cells)/4)
	var ends []int
	for addr, c := range b.cells {
		if !c.Field {
			continue
		}
		f := Field{
			Attr:      c.Attr,
			Addr:      addr,
			Pos:       Pos{addr / b.cols, addr % b.cols},
			Color:     c.Color,
			Highlight: c.Highlight,
		}
		for a := b.inc(addr); !b.cells[a].Field; a = b.inc(a) {
			f.Len++
			text = b.appendText(text, a)
		}
		ends = append(ends, len(text))
		fs = append(fs, f)
	}
	all := string(text)
	start := 0
	for i, end := range ends {
		fs[i].Text, start = all[start:end], end
	}
	return fs
}

// appendText appends the display text of the character at addr (a null as
// a blank) to dst.
func (b *Buffer) appendText(dst []byte, addr int) []byte {
	c := b.cells[addr]
	r := b.glyph[c.Char]
	if c.GE {
		r = b.geGlyph[c.Char]
	}
	if r < utf8.RuneSelf {
		return append(dst, byte(r))
	}
	return utf8.AppendRune(dst, r)
}
