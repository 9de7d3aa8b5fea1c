package zvmsim

import "strings"

// The CP console layout on a 24x80 screen (see the package documentation):
// the output area is rows 0..21, the input area starts at row 22 column 0
// (its field attribute sits in the last position of row 21) and runs to
// the status area, which starts at row 23 column 60; the system name is at
// row 23 column 72.
const (
	outputRows     = 22
	lineWidth      = 79 // columns a console line uses; longer lines are split
	inputAttrAddr  = 21*screenCols + 79
	inputAddr      = inputAttrAddr + 1 // row 22, column 0
	statusAttrCol  = 59
	statusCol      = 60
	statusWidth    = 12 // room for NOT ACCEPTED
	sysnameCol     = 72
	statusRow      = 23
	inputCursorRow = 22
)

// Status area texts, as CP writes them (z/VM: CP Commands and Utilities
// Reference, TERMINAL MORE and the "screen status area" notes; the same
// words appear in the z/VM CMS User's Guide).
const (
	statusCPRead      = "CP READ"
	statusRunning     = "RUNNING"
	statusMore        = "MORE..."
	statusHolding     = "HOLDING"
	statusNotAccepted = "NOT ACCEPTED"
)

// holdState is where the console stands with respect to a full screen.
type holdState int

const (
	// flowing: new lines go onto the screen while there is room.
	flowing holdState = iota
	// moreWait: the screen is full and output is waiting (MORE...); the
	// screen is cleared when the MORE delay passes, or at once on CLEAR or
	// PA2; ENTER makes it holding.
	moreWait
	// holding: the screen is full and held (HOLDING) until CLEAR or PA2.
	holding
)

// pendingRow is a screen row waiting for room; msg marks rows of a message
// from a user (MSG, WNG), which make a full screen hold.
type pendingRow struct {
	text string
	msg  bool
}

// console is the state machine of one CP console: what the output area
// shows, what waits to be shown, and the status. It does no I/O and keeps
// no time: the session that owns it arms the MORE timer when
// [console.wantsTimer] says so and calls [console.clearScreen] when it
// fires. Not safe for concurrent use; one session goroutine owns it.
type console struct {
	rows        []string // the output area, at most outputRows rows
	pending     []pendingRow
	hold        holdState
	running     bool // the virtual machine runs (RUNNING)
	notAccepted bool // the last input was not accepted (until the next key)
}

// write adds console lines, splitting each into screen rows. msg marks a
// message from a user: arriving while the screen is full it puts the
// screen in HOLDING instead of MORE... (see the package documentation).
func (c *console) write(msg bool, lines ...string) {
	for _, l := range lines {
		for _, r := range splitLine(l) {
			c.pending = append(c.pending, pendingRow{text: r, msg: msg})
		}
	}
	if msg && c.hold == moreWait && len(c.pending) > 0 {
		c.hold = holding
	}
	c.flush()
}

// flush moves waiting rows onto the screen while it is flowing and has
// room, then decides between MORE... and HOLDING if rows are left over.
func (c *console) flush() {
	if c.hold != flowing {
		return
	}
	for len(c.pending) > 0 && len(c.rows) < outputRows {
		c.rows = append(c.rows, c.pending[0].text)
		c.pending = c.pending[1:]
	}
	if len(c.pending) == 0 {
		c.pending = nil
		return
	}
	c.hold = moreWait
	for _, p := range c.pending {
		if p.msg {
			c.hold = holding
			break
		}
	}
}

// clearScreen empties the output area and shows the next screen of
// waiting output: CLEAR, PA2, or the end of the MORE... delay.
func (c *console) clearScreen() {
	c.rows = nil
	c.hold = flowing
	c.flush()
}

// enter records an ENTER: during MORE... it makes the screen HOLDING.
func (c *console) enter() {
	if c.hold == moreWait {
		c.hold = holding
	}
}

// wantsTimer reports whether the MORE... delay should be running.
func (c *console) wantsTimer() bool { return c.hold == moreWait }

// status is the text of the status area.
func (c *console) status() string {
	switch {
	case c.notAccepted:
		return statusNotAccepted
	case c.hold == moreWait:
		return statusMore
	case c.hold == holding:
		return statusHolding
	case c.running:
		return statusRunning
	default:
		return statusCPRead
	}
}

// splitLine splits a console line into rows of at most lineWidth
// characters, at the last blank that fits when there is one (the blank is
// dropped; the blanks before it stay on the row, as the sender wrote
// them), or at lineWidth characters when there is none. This is the split
// real z/VM made of an HCPCLS6056I message in the zvm-bootcamp workshop's
// XAUTOLOG transcript (TestSplitLine); IBM's documentation does not say how
// CP splits, and keeping the blanks is a guess. Control characters become
// blanks. An empty line is one empty row.
func splitLine(s string) []string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7F {
			return ' '
		}
		return r
	}, s)
	rs := []rune(s)
	var rows []string
	for len(rs) > lineWidth {
		cut := -1
		for i := lineWidth; i > 0; i-- {
			if rs[i] == ' ' {
				cut = i
				break
			}
		}
		if cut > 0 {
			rows = append(rows, string(rs[:cut]))
			rs = rs[cut+1:]
		} else {
			rows = append(rows, string(rs[:lineWidth]))
			rs = rs[lineWidth:]
		}
	}
	return append(rows, string(rs))
}
