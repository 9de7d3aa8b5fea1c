package console

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/racingmars/go3270"
	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/protocol"
	"github.com/zbridge/zbridge/zos"
)

// The log screen's layout: rows from the terminal's size.
const (
	logTop    = 2  // the first row of the log area
	filterCol = 11 // the filter field's attribute, after "FILTER ===>"
	cmdCol    = 12 // the command field's attribute, after "COMMAND ===>"
	legend    = "PF3=END PF5=AGENTS PF7=UP PF8=DOWN PF12=RETRIEVE ENTER=RUN"
)

const (
	// minUpdateGap is the least time between two unsolicited writes of a
	// session: at most 10 a second, however fast events arrive.
	minUpdateGap = 100 * time.Millisecond
	// historyDepth is how many commands PF12 retrieves.
	historyDepth = 10
	// agentsTimeout bounds Operator.Agents.
	agentsTimeout = 30 * time.Second
)

// Which screen the terminal shows: the updater writes only to the log
// screen.
const (
	modeLog = iota
	modeOther
)

// row is what one protected row of the log screen shows.
type row struct {
	text string
	st   style
}

// session is one operator's console, from logon to its end. Its
// goroutine (the connection's) runs the screens and reads the terminal;
// the updater writes the log area as it changes; the tail and the
// command in flight add lines. See the package doc.
type session struct {
	srv     *Server
	t       *terminal
	op      Operator
	client  string
	title   string
	log     logrus.FieldLogger
	logRows int

	ctx    context.Context // cancelled when the session ends
	cancel context.CancelFunc
	done   chan struct{}  // closed when the session ends (end)
	notify chan struct{}  // 1-buffered: the log area or status changed
	wg     sync.WaitGroup // the updater, tail and command goroutines

	// drawMu is held while a screen is built from the state and written,
	// so that the terminal gets the screens in the order of the states
	// they show; a full screen's holder lets go once it is written,
	// before it waits for the answer.
	drawMu sync.Mutex
	mode   int   // guarded by drawMu: modeLog or modeOther
	drawn  []row // guarded by drawMu: what the log screen's rows show now; nil when unknown

	mu      sync.Mutex // guards the following fields
	reason  string     // why the session ended; "" while it runs
	sb      scrollback
	held    bool   // PF7 froze the view
	top     int    // when held: the line shown first
	heldEnd int    // when held: lines from this one on arrived since PF7 or PF8 and are not shown
	heldNew int    // lines added since the view was held
	tailGen int    // the tail whose events are taken
	running string // the command in flight

	// Used by the session's goroutine only.
	filterText string
	tailStop   context.CancelFunc
	tailDone   chan struct{}
	history    []string  // newest first
	retrieve   int       // the history entry PF12 shows next
	cmdField   string    // what the command field shows next
	idleAt     time.Time // the read deadline armRead set

	lost atomic.Bool // the connection failed: no last screen
}

func newSession(s *Server, t *terminal, op Operator, client string, log logrus.FieldLogger) *session {
	if c := op.Client(); c != "" {
		client = c
	}
	ctx, cancel := context.WithCancel(s.ctx)
	return &session{
		srv:     s,
		t:       t,
		op:      op,
		client:  client,
		title:   titleText(s.cfg.Backend.Name(), "CONSOLE") + "  CLIENT " + client,
		log:     log,
		logRows: t.rows - 5,
		ctx:     ctx,
		cancel:  cancel,
		done:    make(chan struct{}),
		notify:  make(chan struct{}, 1),
		sb:      scrollback{max: s.cfg.Scrollback},
	}
}

// run serves the session to its end and returns why it ended. It closes
// the Operator, once, after every goroutine of the session has returned.
func (ss *session) run() string {
	ss.wg.Add(1)
	go ss.updater()
	ss.startTail(nil)
	reason := ss.loop()
	ss.end(reason) // the first reason is kept
	ss.stopTail()
	ss.wg.Wait()
	if err := ss.op.Close(); err != nil {
		ss.log.WithError(err).Warn("closing the operator's session failed")
	}
	reason = ss.endReason()
	if !ss.lost.Load() {
		ss.t.endScreen(ss.srv.cfg.Backend.Name(), reason)
	}
	return reason
}

// end ends the session for reason, unless it has ended: the first reason
// is kept. It cancels the session's context (the tail, the command in
// flight) and interrupts the read of the session's goroutine.
func (ss *session) end(reason string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.reason != "" {
		return
	}
	ss.reason = reason
	close(ss.done)
	ss.cancel()
	ss.t.conn.SetReadDeadline(time.Unix(1, 0))
}

func (ss *session) endReason() string {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.reason
}

// armRead sets the idle deadline for the next read, unless the session
// has ended; with end, under mu, so that end's interruption is never
// undone.
func (ss *session) armRead() bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.reason != "" {
		return false
	}
	ss.idleAt = time.Now().Add(ss.srv.cfg.IdleTimeout)
	ss.t.conn.SetReadDeadline(ss.idleAt)
	return true
}

// fail ends the session because the connection failed: it gets no last
// screen.
func (ss *session) fail(reason string) {
	ss.lost.Store(true)
	ss.end(reason)
}

// readFailed returns why the session ends after a failed screen.
func (ss *session) readFailed(err error) string {
	if r := ss.endReason(); r != "" {
		return r
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() && !time.Now().Before(ss.idleAt) {
		return fmt.Sprintf("no key pressed for %v", ss.srv.cfg.IdleTimeout)
	}
	ss.fail("the connection failed: " + err.Error()) // a write timeout too
	return ss.endReason()
}

// loop shows the log screen and acts on each key until the session ends.
func (ss *session) loop() string {
	for {
		resp, err := ss.showLog()
		if err != nil {
			return ss.readFailed(err)
		}
		switch resp.AID {
		case go3270.AIDEnter:
			ss.enter(resp.Values)
		case go3270.AIDPF3:
			return reasonPF3
		case go3270.AIDPF5:
			ss.cmdField = resp.Values["cmd"]
			if err := ss.agents(); err != nil {
				return ss.readFailed(err)
			}
		case go3270.AIDPF7:
			ss.cmdField = resp.Values["cmd"]
			ss.scroll(-1)
		case go3270.AIDPF8:
			ss.cmdField = resp.Values["cmd"]
			ss.scroll(+1)
		case go3270.AIDPF12:
			if len(ss.history) > 0 {
				ss.cmdField = ss.history[ss.retrieve%len(ss.history)]
				ss.retrieve++
			}
		case go3270.AIDClear, go3270.AIDPA1, go3270.AIDPA2, go3270.AIDPA3:
			// The terminal sent no fields: the screen again as it was.
		default:
			ss.cmdField = resp.Values["cmd"]
		}
	}
}

// showLog writes the whole log screen and waits for a key.
func (ss *session) showLog() (go3270.Response, error) {
	if !ss.armRead() {
		return go3270.Response{}, errEnded
	}
	t := ss.t
	ss.drawMu.Lock()
	ss.mode = modeLog
	rows := ss.rowsNow()
	ss.drawn = rows
	cmd := []rune(t.input(ss.cmdField, t.inputLen(cmdCol)))
	values := map[string]string{
		"filter": t.input(ss.filterText, t.inputLen(filterCol)),
		"cmd":    string(cmd),
	}
	opts := t.opts()
	opts.CursorRow, opts.CursorCol = t.rows-2, min(cmdCol+1+len(cmd), t.cols-2)
	unlocked := false
	opts.PostSendCallback = func(any) error {
		unlocked = true
		ss.drawMu.Unlock()
		return nil
	}
	t.conn.budget()
	resp, err := go3270.ShowScreenOpts(ss.logScreen(rows), values, t.conn, opts)
	if !unlocked {
		ss.drawMu.Unlock()
	}
	return resp, err
}

// logScreen is the whole log screen showing rows.
func (ss *session) logScreen(rows []row) go3270.Screen {
	t := ss.t
	turq := style{color: go3270.Turquoise}
	scr := go3270.Screen{
		t.row(0, rows[0].text, rows[0].st),
		t.label(1, "FILTER ===>", turq),
		t.inputField(1, filterCol, "filter", go3270.Green),
	}
	for r := logTop; r < logTop+ss.logRows; r++ {
		scr = append(scr, t.row(r, rows[r].text, rows[r].st))
	}
	st := t.rows - 3
	return append(scr,
		t.row(st, rows[st].text, rows[st].st),
		t.label(t.rows-2, "COMMAND ===>", turq),
		t.inputField(t.rows-2, cmdCol, "cmd", go3270.White),
		t.row(t.rows-1, legend, style{color: go3270.Blue}),
	)
}

// rowsNow returns what the protected rows of the log screen show now:
// the title, the log area and the status row (the other rows are zero).
func (ss *session) rowsNow() []row {
	rows := make([]row, ss.t.rows)
	rows[0] = row{withClock(ss.t.cs, ss.title, time.Now(), ss.t.width(0)), style{color: go3270.White}}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	first, end := ss.viewLocked()
	for i := range ss.logRows {
		if n := first + i; n < end {
			l := ss.sb.at(n)
			rows[logTop+i] = row{l.text, l.style}
		}
	}
	status, st := ss.statusLocked(first, end)
	rows[ss.t.rows-3] = row{status, st}
	return rows
}

// firstLocked returns the number of the first line in view.
func (ss *session) firstLocked() int {
	oldest := ss.sb.oldest()
	live := max(oldest, ss.sb.total-ss.logRows)
	if !ss.held {
		return live
	}
	return min(max(ss.top, oldest), live)
}

// viewLocked returns the lines in view: from first up to end. A held view
// ends where it ended at its last move, unless the ring has dropped those
// lines: it shows the oldest page kept then.
func (ss *session) viewLocked() (first, end int) {
	first, end = ss.firstLocked(), ss.sb.total
	if ss.held {
		if ss.heldEnd > first {
			end = min(end, ss.heldEnd)
		} else {
			end = min(end, first+ss.logRows)
		}
	}
	return first, min(end, first+ss.logRows)
}

// statusLocked returns the status row: LIVE, or HELD with where the view
// (first to end) is and how many lines arrived since it was held; the
// command in flight.
func (ss *session) statusLocked(first, end int) (string, style) {
	var b strings.Builder
	st := style{color: go3270.Turquoise, hl: go3270.ReverseVideo}
	if ss.held {
		oldest := ss.sb.oldest()
		b.WriteString("HELD  ")
		if end > first {
			fmt.Fprintf(&b, "LINES %d-%d OF %d  ", first-oldest+1, end-oldest, ss.sb.total-oldest)
		}
		fmt.Fprintf(&b, "MORE +%d", ss.heldNew)
		st.color = go3270.Yellow
	} else {
		b.WriteString("LIVE")
	}
	if ss.running != "" {
		b.WriteString("  RUNNING: " + ss.running)
	}
	return b.String(), st
}

// scroll moves the view a page back (dir < 0), holding it, or forward;
// forward onto the newest page makes it live again. A held view shows
// the lines there were at its last move, even where it has room for more.
func (ss *session) scroll(dir int) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	first := ss.firstLocked()
	oldest := ss.sb.oldest()
	live := max(oldest, ss.sb.total-ss.logRows)
	if dir < 0 {
		if !ss.held {
			ss.held, ss.heldNew = true, 0
		}
		ss.top, ss.heldEnd = max(oldest, first-ss.logRows), ss.sb.total
		return
	}
	if !ss.held {
		return
	}
	if first+ss.logRows >= live {
		ss.held = false
		return
	}
	ss.top, ss.heldEnd = first+ss.logRows, ss.sb.total
}

// updater writes the log area, the status row and the title (its clock)
// to the terminal as they change, while the terminal shows the log screen
// and waits for a key: only protected rows, each written whole, never
// more often than every minUpdateGap. It ends the session when a write
// fails.
func (ss *session) updater() {
	defer ss.wg.Done()
	untilMinute := func() time.Duration { return time.Until(time.Now().Truncate(time.Minute).Add(time.Minute)) }
	clock := time.NewTimer(untilMinute())
	defer clock.Stop()
	gap := time.NewTimer(0)
	defer gap.Stop()
	<-gap.C
	var last time.Time
	for {
		select {
		case <-ss.done:
			return
		case <-ss.notify:
		case <-clock.C:
			clock.Reset(untilMinute())
		}
		if wait := time.Until(last.Add(minUpdateGap)); wait > 0 {
			gap.Reset(wait)
			select {
			case <-ss.done:
				return
			case <-gap.C:
			}
		}
		select { // this write shows what a change during the wait made
		case <-ss.notify:
		default:
		}
		if err := ss.draw(); err != nil {
			ss.fail("writing to the terminal failed: " + err.Error())
			return
		}
		last = time.Now()
	}
}

// draw writes the rows of the log screen that changed since they were
// last written, if the terminal shows the log screen.
func (ss *session) draw() error {
	ss.drawMu.Lock()
	defer ss.drawMu.Unlock()
	if ss.mode != modeLog || ss.drawn == nil {
		return nil
	}
	rows := ss.rowsNow()
	var scr go3270.Screen
	for r, rw := range rows {
		if rw != ss.drawn[r] {
			scr = append(scr, ss.t.row(r, rw.text, rw.st))
		}
	}
	ss.drawn = rows
	if len(scr) == 0 {
		return nil
	}
	opts := ss.t.opts()
	opts.NoClear, opts.NoResponse = true, true
	_, err := go3270.ShowScreenOpts(scr, nil, quietConn{ss.t.conn}, opts)
	return err
}

// poke tells the updater that the log area or the status changed.
func (ss *session) poke() {
	select {
	case ss.notify <- struct{}{}:
	default:
	}
}

// lines cuts text into log lines of the terminal's width.
func (ss *session) lines(text string, st style, event bool) []logLine {
	// No more is shown than maxWrap rows hold.
	w := wrap(ss.t.cs.clean(cut(text, maxWrap*ss.t.cols)), ss.t.cols-1, contIndent, maxWrap)
	out := make([]logLine, len(w))
	for i, l := range w {
		out[i] = logLine{text: l, style: st, event: event}
	}
	return out
}

func (ss *session) appendLocked(ls []logLine) {
	for _, l := range ls {
		ss.sb.add(l)
	}
	if ss.held {
		ss.heldNew += len(ls)
	}
}

// addEvent adds an event from the tail numbered gen, unless a newer tail
// has replaced it.
func (ss *session) addEvent(gen int, e *protocol.Event) {
	ls := ss.lines(eventText(e), eventStyle(e), true)
	ss.mu.Lock()
	ok := gen == ss.tailGen
	if ok {
		ss.appendLocked(ls)
	}
	ss.mu.Unlock()
	if ok {
		ss.poke()
	}
}

// addConsole adds one of the console's own lines, with the time now.
func (ss *session) addConsole(text string, st style) {
	ls := ss.lines(consoleText(time.Now(), text), st, false)
	ss.mu.Lock()
	ss.appendLocked(ls)
	ss.mu.Unlock()
	ss.poke()
}

// startTail starts the tail of the events that match f (nil: all) into
// the log area. A tail that ends other than by its context ends the
// session: the Operator's contract says the session or the region ended.
func (ss *session) startTail(f *protocol.Filter) {
	ctx, cancel := context.WithCancel(ss.ctx)
	ss.mu.Lock()
	ss.tailGen++
	gen := ss.tailGen
	ss.mu.Unlock()
	done := make(chan struct{})
	ss.tailStop, ss.tailDone = cancel, done
	ss.wg.Add(1)
	go func() {
		defer ss.wg.Done()
		defer close(done)
		err := ss.op.Tail(ctx, f, ss.srv.cfg.TailBack, func(e *protocol.Event) { ss.addEvent(gen, e) })
		if ctx.Err() != nil {
			return // a new filter, or the session ended
		}
		if err == nil {
			err = errors.New("no more events")
		}
		ss.end("the log ended: " + err.Error())
	}()
}

// stopTail stops the tail and waits for it.
func (ss *session) stopTail() {
	if ss.tailStop == nil {
		return
	}
	ss.tailStop()
	<-ss.tailDone
	ss.tailStop, ss.tailDone = nil, nil
}

// enter acts on ENTER: a changed filter first, then the command line.
func (ss *session) enter(values map[string]string) {
	// A terminal sends at most a field's length; a forged datastream may
	// send more: cut to the field.
	if f := cut(values["filter"], ss.t.inputLen(filterCol)); f != ss.filterText {
		ss.setFilter(f)
	}
	line := cut(values["cmd"], ss.t.inputLen(cmdCol))
	ss.cmdField = ""
	if line == "" {
		return
	}
	ss.history = append([]string{line}, ss.history[:min(len(ss.history), historyDepth-1)]...)
	ss.retrieve = 0
	ss.mu.Lock()
	ss.held = false // the operator wants to see the answer
	running := ss.running
	if running == "" {
		ss.running = line
	}
	ss.mu.Unlock()
	ss.addConsole(ss.client+" ==> "+line, echoStyle)
	if running != "" {
		ss.addConsole(zos.Must("ZBR311E").Format("a command is running ("+running+"); enter this one when it has ended"), errorStyle)
		return
	}
	ss.wg.Add(1)
	go ss.command(line)
}

// command runs line and adds its output and its end to the log area.
func (ss *session) command(line string) {
	defer ss.wg.Done()
	res, err := ss.op.Command(ss.ctx, line, func(l string) { ss.addConsole(l, outputStyle) })
	var msg string
	st := infoStyle
	if err != nil {
		msg, st = zos.Must("ZBR311E").Format(err.Error()), errorStyle
	} else {
		rc := strconv.Itoa(res.RC)
		if res.Signal != "" {
			rc += " SIGNAL=" + res.Signal
		}
		if res.Truncated {
			rc += " TRUNCATED"
		}
		msg = zos.Must("ZBR310I").Format(res.ID, rc)
		if res.RC != 0 || res.Signal != "" {
			st = warnStyle
		}
	}
	ss.log.WithFields(logrus.Fields{"id": res.ID, "rc": res.RC}).WithError(err).Debug("command ended")
	ls := ss.lines(consoleText(time.Now(), msg), st, false)
	ss.mu.Lock()
	ss.appendLocked(ls)
	ss.running = ""
	ss.mu.Unlock()
	ss.poke()
}

// setFilter applies a new filter line: a bad one leaves the filter in
// force (ZBR313E); a good one clears the events from the log area and
// starts the tail again with it (ZBR312I).
func (ss *session) setFilter(text string) {
	f, err := protocol.ParseFilter(text)
	if err != nil {
		ss.addConsole(zos.Must("ZBR313E").Format(strings.TrimPrefix(err.Error(), "protocol: ")), errorStyle)
		return
	}
	ss.stopTail()
	ss.mu.Lock()
	ss.sb.dropEvents()
	ss.held = false
	ss.mu.Unlock()
	ss.filterText = text
	shown := text
	if strings.TrimSpace(text) == "" {
		shown, f = "ALL", nil
	}
	ss.addConsole(zos.Must("ZBR312I").Format(shown), infoStyle)
	ss.startTail(f)
}
