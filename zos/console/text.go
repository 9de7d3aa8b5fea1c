package console

import (
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/racingmars/go3270"

	"github.com/zbridge/zbridge/protocol"
)

// What a character the terminal cannot show is shown as.
const (
	ctlShown = '.' // a control character (tab, CR and LF show as a blank)
	subShown = '?' // a character the terminal's code page lacks
)

// charset says how one terminal shows text: every rune it keeps encodes,
// in the terminal's code page, to one byte from 0x40 to 0xFE that decodes
// back to it, so that it takes one cell and can never be read by the
// terminal as a 3270 order (0x00-0x3F) or a telnet IAC (0xFF). It is
// immutable once made, so safe for concurrent use.
type charset struct {
	cp   go3270.Codepage
	low  [256]rune         // what each rune below 256 is shown as
	high map[rune]struct{} // the runes from 256 up that are shown as they are
}

func newCharset(cp go3270.Codepage) *charset {
	cs := &charset{cp: cp, high: make(map[rune]struct{})}
	for r := range rune(len(cs.low)) {
		cs.low[r] = cs.check(r)
	}
	// A rune that takes one byte of the code page decodes from it: the
	// code page's 191 showable bytes hold every rune it can show.
	for b := 0x40; b < 0xFF; b++ {
		for _, r := range cp.Decode([]byte{byte(b)}) {
			if int(r) >= len(cs.low) && cs.check(r) == r {
				cs.high[r] = struct{}{}
			}
		}
	}
	return cs
}

// check works out what r is shown as.
func (cs *charset) check(r rune) rune {
	switch {
	case r == '\t' || r == '\n' || r == '\r':
		return ' '
	case unicode.IsControl(r):
		return ctlShown
	case r == utf8.RuneError || !utf8.ValidRune(r):
		return subShown
	}
	e := cs.cp.Encode(string(r))
	if len(e) != 1 || e[0] < 0x40 || e[0] == 0xFF {
		return subShown
	}
	d, n := utf8.DecodeRuneInString(cs.cp.Decode(e))
	if d != r || n == 0 {
		return subShown
	}
	return r
}

// show returns what r is shown as.
func (cs *charset) show(r rune) rune {
	if r >= 0 && int(r) < len(cs.low) {
		return cs.low[r]
	}
	if _, ok := cs.high[r]; ok {
		return r
	}
	return subShown
}

// clean returns s as the terminal shows it: one rune a cell, invalid
// UTF-8 and characters it lacks as '?', control characters as '.'.
func (cs *charset) clean(s string) []rune {
	out := make([]rune, 0, len(s))
	for _, r := range s { // an invalid byte comes as utf8.RuneError
		out = append(out, cs.show(r))
	}
	return out
}

// cleanString is clean as a string.
func (cs *charset) cleanString(s string) string { return string(cs.clean(s)) }

// fit cuts or pads r with blanks to exactly w cells.
func fit(r []rune, w int) string {
	if w <= 0 {
		return ""
	}
	if len(r) >= w {
		return string(r[:w])
	}
	return string(r) + strings.Repeat(" ", w-len(r))
}

// cut returns s cut to at most n runes.
func cut(s string, n int) string {
	for i := range s {
		if n == 0 {
			return s[:i]
		}
		n--
	}
	return s
}

// fitString is fit for a string already clean.
func fitString(s string, w int) string { return fit([]rune(s), w) }

// wrap cuts clean text into lines of at most width cells: the first uses
// the whole width, each continuation is indented by indent blanks. A line
// breaks at the last blank in its second half, else at the width. At most
// maxLines lines are made; text beyond them is left off and the last line
// ends in "...".
func wrap(text []rune, width, indent, maxLines int) []string {
	if width <= indent || maxLines <= 0 {
		return nil
	}
	var lines []string
	rest := text
	for first := true; ; first = false {
		prefix, room := "", width
		if !first {
			prefix, room = strings.Repeat(" ", indent), width-indent
			for len(rest) > 0 && rest[0] == ' ' {
				rest = rest[1:]
			}
		}
		if len(rest) <= room {
			return append(lines, prefix+strings.TrimRight(string(rest), " "))
		}
		if len(lines) == maxLines-1 {
			cut := rest[:room-3]
			return append(lines, prefix+string(cut)+"...")
		}
		cut := room
		for i := room; i > room/2; i-- {
			if rest[i] == ' ' {
				cut = i
				break
			}
		}
		lines = append(lines, prefix+strings.TrimRight(string(rest[:cut]), " "))
		rest = rest[cut:]
	}
}

// style is how a line of the log area is shown.
type style struct {
	color go3270.Color
	hl    go3270.Highlight
}

// The styles of the console's own lines.
var (
	echoStyle   = style{color: go3270.White}     // a command as typed
	outputStyle = style{color: go3270.Turquoise} // a command's output
	infoStyle   = style{color: go3270.White}     // ZBR310I RC=0, ZBR312I
	warnStyle   = style{color: go3270.Yellow}    // ZBR310I RC other than 0
	errorStyle  = style{color: go3270.Red}       // ZBR311E, ZBR313E
	actionStyle = style{color: go3270.Red, hl: go3270.ReverseVideo}
)

// eventStyle colours an event by its severity; an action message (an ID
// whose type letter is A) is shown in reverse video red whatever its
// severity, as MCS consoles highlight them.
func eventStyle(e *protocol.Event) style {
	id := e.MsgID
	if id == "" {
		id, _, _ = strings.Cut(e.Text, " ")
	}
	if isAction(id) {
		return actionStyle
	}
	switch {
	case e.Severity <= protocol.SevErr:
		return style{color: go3270.Red}
	case e.Severity == protocol.SevWarning:
		return style{color: go3270.Yellow}
	case e.Severity <= protocol.SevInfo:
		return style{color: go3270.Green}
	}
	return style{color: go3270.Blue}
}

// isAction reports whether id is a message ID of type A (action): a digit
// and then A at its end, as in IEA404A or ZBR101A.
func isAction(id string) bool {
	n := len(id)
	return n >= 3 && id[n-1] == 'A' && id[n-2] >= '0' && id[n-2] <= '9'
}

// Columns of a log line: HH:MM:SS ORIGIN MSGID TEXT.
const (
	timeWidth   = 8
	originWidth = 8
	msgIDWidth  = 10
	// contIndent is how far continuation lines are indented: past the time.
	contIndent = timeWidth + 1
	// maxWrap is the most lines one event or output line takes; the rest
	// of a longer one is left off (the region's other ports have it whole).
	maxWrap = 32
)

// eventText is an event's line: its UTC time, origin (system, else host),
// message ID (blank when it has none) and text (without the ID when the
// text starts with it, as the region's messages do).
func eventText(e *protocol.Event) string {
	t := e.Time
	if t.IsZero() {
		t = e.Received
	}
	origin := e.Origin.System
	if origin == "" {
		origin = e.Origin.Host
	}
	if origin == "" {
		origin = "-"
	}
	var b strings.Builder
	b.WriteString(t.UTC().Format("15:04:05"))
	b.WriteByte(' ')
	pad(&b, origin, originWidth)
	b.WriteByte(' ')
	pad(&b, e.MsgID, msgIDWidth)
	b.WriteByte(' ')
	// The region's own messages start with their ID, which the column
	// already shows.
	text := e.Text
	if e.MsgID != "" {
		text = strings.TrimPrefix(text, e.MsgID+" ")
	}
	b.WriteString(text)
	return b.String()
}

// consoleText is a console line (an echo, output, a console message):
// the time now and the text.
func consoleText(now time.Time, text string) string {
	return now.UTC().Format("15:04:05") + " " + text
}

func pad(b *strings.Builder, s string, w int) {
	b.WriteString(s)
	if n := utf8.RuneCountInString(s); n < w {
		b.WriteString(strings.Repeat(" ", w-n))
	}
}

// logLine is one row's worth of the log area.
type logLine struct {
	text  string // clean, at most the log width
	style style
	event bool // from the tail, which a filter change clears; else a console line
}

// scrollback keeps the last max lines of the log area in a ring. Line i
// (counting every line ever added from 0) is kept while i >= oldest().
type scrollback struct {
	max   int
	buf   []logLine // grows to max, then line i is at buf[i%max]
	total int       // lines ever added
}

func (sb *scrollback) add(l logLine) {
	if len(sb.buf) < sb.max {
		sb.buf = append(sb.buf, l)
	} else {
		sb.buf[sb.total%sb.max] = l
	}
	sb.total++
}

// oldest is the number of the oldest line kept.
func (sb *scrollback) oldest() int { return max(0, sb.total-sb.max) }

// at returns line i, which must be kept.
func (sb *scrollback) at(i int) logLine { return sb.buf[i%sb.max] }

// dropEvents forgets the lines from the tail, keeping the console's own
// in order; the lines are numbered again from 0.
func (sb *scrollback) dropEvents() {
	var keep []logLine
	for i := sb.oldest(); i < sb.total; i++ {
		if l := sb.at(i); !l.event {
			keep = append(keep, l)
		}
	}
	*sb = scrollback{max: sb.max, buf: make([]logLine, 0, min(sb.max, max(len(keep), 64)))}
	for _, l := range keep {
		sb.add(l)
	}
}
