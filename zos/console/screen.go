package console

import (
	"time"

	"github.com/racingmars/go3270"

	"github.com/zbridge/zbridge/zos"
)

// The smallest terminal served: a 3278 model 2.
const minRows, minCols = 24, 80

// Why sessions end, as the last screen and the log say.
const (
	reasonStopping = "the region is stopping"
	reasonPF3      = "logged off (PF3)"
)

// terminal is one connected terminal: its connection, size and code page.
// Every screen is written with its DevInfo as the alternate screen and its
// own code page: nothing here is global.
type terminal struct {
	conn       *termConn
	dev        go3270.DevInfo
	cp         go3270.Codepage
	cs         *charset
	rows, cols int
}

// opts returns the options every screen of t is written with.
func (t *terminal) opts() go3270.ScreenOpts {
	return go3270.ScreenOpts{AltScreen: t.dev, Codepage: t.cp}
}

// The columns of a row: a row's text starts in column 0 and ends before
// its last column, which holds the attribute of the next row's first
// field (so that rows line up flush left, as SDSF's do). Row 0's own
// attribute is its column 0: its text takes columns 1 to cols-2.

// row returns a protected field that fills row r with s, clean, cut or
// padded to the row's width: writing it overwrites everything the row
// showed.
func (t *terminal) row(r int, s string, st style) go3270.Field {
	f := t.label(r, "", st)
	f.Content = fit(t.cs.clean(s), t.width(r))
	return f
}

// label returns a protected field holding s at the start of row r.
func (t *terminal) label(r int, s string, st style) go3270.Field {
	f := go3270.Field{Row: r - 1, Col: t.cols - 1, Content: string(t.cs.clean(s)), Color: st.color, Highlighting: st.hl}
	if r == 0 {
		f.Row, f.Col = 0, 0
	}
	return f
}

// width is how many cells of row r hold text.
func (t *terminal) width(r int) int {
	if r == 0 {
		return t.cols - 2
	}
	return t.cols - 1
}

// inputField returns an input field whose attribute is at row r, column
// c: it takes the rest of the row, inputLen(c) cells.
func (t *terminal) inputField(r, c int, name string, color go3270.Color) go3270.Field {
	return go3270.Field{Row: r, Col: c, Write: true, Name: name, Color: color, Highlighting: go3270.Underscore}
}

// inputLen is the length of an input field whose attribute is in column
// c and which ends before the row's last column.
func (t *terminal) inputLen(c int) int { return t.cols - 2 - c }

// input returns the value for an input field of n cells: clean and cut,
// never padded (blanks would be sent back as typed).
func (t *terminal) input(s string, n int) string {
	r := t.cs.clean(s)
	if len(r) > n {
		r = r[:n]
	}
	return string(r)
}

// show writes scr to a cleared screen with the cursor at crow, ccol and
// waits for the operator's answer.
func (t *terminal) show(scr go3270.Screen, values map[string]string, crow, ccol int) (go3270.Response, error) {
	t.conn.budget()
	opts := t.opts()
	opts.CursorRow, opts.CursorCol = crow, ccol
	return go3270.ShowScreenOpts(scr, values, t.conn, opts)
}

// write writes scr to a cleared screen and does not wait.
func (t *terminal) write(scr go3270.Screen, values map[string]string) error {
	opts := t.opts()
	opts.NoResponse = true
	_, err := go3270.ShowScreenOpts(scr, values, t.conn, opts)
	return err
}

// titleText is the left part of a screen's title row.
func titleText(region, what string) string { return "ZBRIDGE " + region + " " + what }

// withClock puts the time (UTC, to the minute) at the right end of a
// title of w cells.
func withClock(cs *charset, title string, now time.Time, w int) string {
	clock := []rune("  " + now.UTC().Format("2006-01-02 15:04") + " UTC")
	left := cs.clean(title)
	if len(left)+len(clock) > w {
		left = left[:max(0, w-len(clock))]
	}
	return fit(left, w-len(clock)) + string(clock)
}

// endScreen tells the operator the session ended and why. It does not
// wait for an answer; the caller closes the connection.
func (t *terminal) endScreen(region, reason string) {
	scr := go3270.Screen{
		t.row(0, withClock(t.cs, titleText(region, "CONSOLE"), time.Now(), t.width(0)), style{color: go3270.White}),
		t.row(2, "SESSION ENDED: "+reason, style{color: go3270.Yellow}),
	}
	t.write(scr, nil)
}

// tooSmall refuses a terminal smaller than 24x80, written to the default
// 24x80 screen every 3270 has.
func (t *terminal) tooSmall(region string) {
	opts := go3270.ScreenOpts{Codepage: t.cp, NoResponse: true}
	msg := zos.Must("ZBR314E").Format("the console needs a terminal of at least 24 rows and 80 columns")
	scr := go3270.Screen{
		{Row: 0, Col: 0, Content: string(t.cs.clean(titleText(region, "CONSOLE")))},
		{Row: 2, Col: 0, Content: string(t.cs.clean(msg))},
	}
	go3270.ShowScreenOpts(scr, nil, t.conn, opts)
}
