package tn3270

import (
	"strings"

	"github.com/racingmars/go3270"
)

// Pos is a screen position, 0-based.
type Pos struct {
	Row, Col int
}

// Field is one field of a formatted screen: its attribute position and the
// character positions that follow it, up to the next attribute.
type Field struct {
	// Attr is the field attribute.
	Attr Attr
	// Addr is the buffer address of the attribute (row*cols + col).
	Addr int
	// Pos is the position of the attribute; the field's first character
	// is at the next position (which may be on the next row).
	Pos Pos
	// Len is the number of character positions.
	Len int
	// Color and Highlight are the field's extended attributes (zero:
	// default).
	Color     go3270.Color
	Highlight go3270.Highlight
	// Text is the field's content, nulls as blanks. It holds the content
	// of hidden fields too (such as a password typed in), which the
	// screen rows do not show: do not log it.
	Text string
}

// Screen is a snapshot of a 3270 screen. It does not change when the
// terminal does; its methods return copies.
type Screen struct {
	// Seq counts the host writes (Write, Erase/Write, Erase/Write
	// Alternate, Erase All Unprotected, and structured fields that write)
	// processed up to this snapshot. Local changes (typing, CLEAR) do not
	// increase it.
	Seq uint64
	// Cursor is the cursor position.
	Cursor Pos
	// KeyboardLocked reports that input is refused until the host writes:
	// an AID has been sent and not yet answered by a write that restores
	// the keyboard, or the first screen has not come yet.
	KeyboardLocked bool
	// Alarm: the last host write asked for the alarm to sound.
	Alarm bool
	// Alternate: the screen is at the alternate size (Erase/Write
	// Alternate), else at the default 24x80.
	Alternate bool
	// Fields lists the fields in buffer order; nil on an unformatted
	// screen.
	Fields []Field

	nrows, ncols int
	rows         []string
	cells        []Cell
}

// Size returns the number of rows and columns.
func (s Screen) Size() (rows, cols int) { return s.nrows, s.ncols }

// Rows returns the text of each row, exactly as s3270's Ascii() shows it:
// one string of cols characters per row, with field attribute positions,
// nulls and the content of hidden fields as blanks.
func (s Screen) Rows() []string { return append([]string(nil), s.rows...) }

// Row returns the text of row i (0-based), or "" if there is no such row.
func (s Screen) Row(i int) string {
	if i < 0 || i >= len(s.rows) {
		return ""
	}
	return s.rows[i]
}

// String returns the rows joined by newlines.
func (s Screen) String() string { return strings.Join(s.rows, "\n") }

// Cell returns the cell at a position (the zero Cell outside the screen).
func (s Screen) Cell(row, col int) Cell {
	if row < 0 || row >= s.nrows || col < 0 || col >= s.ncols {
		return Cell{}
	}
	return s.cells[row*s.ncols+col]
}

// Formatted reports whether the screen has fields.
func (s Screen) Formatted() bool { return len(s.Fields) > 0 }

// FieldAt returns the field holding a position (its attribute or one of
// its characters). ok is false on an unformatted screen or outside it.
func (s Screen) FieldAt(row, col int) (f Field, ok bool) {
	if len(s.Fields) == 0 || row < 0 || row >= s.nrows || col < 0 || col >= s.ncols {
		return Field{}, false
	}
	addr := row*s.ncols + col
	// The field holding addr is the last one whose attribute is at or
	// before addr; before the first attribute, the last field (wrapping).
	i := len(s.Fields) - 1
	for j, f := range s.Fields {
		if f.Addr > addr {
			break
		}
		i = j
	}
	return s.Fields[i], true
}
