package zvmsim

import (
	"errors"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/racingmars/go3270"
	"github.com/sirupsen/logrus"
)

// The logo screen's fields (see drawLogo).
const (
	useridRow   = 14
	passwordRow = 15
	messageRow  = 21
	commandRow  = 22
	fieldCol    = 14 // attribute column of the three input fields
	useridLen   = 8
	passwordLen = 32
)

var (
	useridAddr   = addr(useridRow, fieldCol+1)
	passwordAddr = addr(passwordRow, fieldCol+1)
	commandAddr  = addr(commandRow, fieldCol+1)
)

// logo is the top of the logo screen, after z/VM's "z/VM ONLINE" screen.
var logo = []string{
	" z/VM ONLINE",
	"",
	"          ______      __  __ __  ___",
	"         |___  /     / /  \\ \\ \\ / / |\\/|",
	"            / /     / /    \\ \\ V /  |  |",
	"           / /__   / /      \\ \\ /   |  |",
	"          /_____| /_/        \\_/    |  |",
	"",
	"                  zbridge z/VM console simulator",
	"",
	"",
	" Fill in your USERID and PASSWORD and press ENTER",
	" (Your password will not appear when you type it)",
}

// event is something another goroutine hands a session: console lines
// (msg: from a user, see console.write) or a kick (the user was forced
// off).
type event struct {
	lines []string
	msg   bool
	kick  bool
}

// endReason says why a console loop ended.
type endReason int

const (
	endGone       endReason = iota // the terminal went away: disconnect the user
	endQuit                        // the simulator is shutting down
	endLogoff                      // LOGOFF: back to the logo screen
	endDisconnect                  // DISCONNECT: back to the logo screen
	endForced                      // FORCE by another user: back to the logo screen
)

// session is one terminal connection: the logo screen, then the console
// of the user logged on at it, then the logo screen again after LOGOFF.
// One goroutine runs it (run); another reads records (readLoop).
type session struct {
	sim  *Sim
	conn net.Conn
	log  logrus.FieldLogger
	term string // logical device, as QUERY NAMES shows it
	cp   go3270.Codepage
	recs chan []byte   // records from readLoop; closed when reading ends
	done chan struct{} // closed when run is over, so readLoop stops sending

	readErr error // why readLoop ended; written by readLoop, read by run only after recs is closed

	mu     sync.Mutex // guards the following fields
	inbox  []event
	notify chan struct{} // capacity 1: there is something in inbox

	// Owned by the run goroutine.
	endErr    error // why the connection ended, for the log
	user      string
	cons      *console
	shown     shownScreen
	moreTimer *time.Timer
	spinTimer *time.Timer
	typeahead []string // input held while RUNNING (at most one line)
}

// shownScreen is what the terminal shows of a console, to write only the
// differences; valid is false when the next write must be a full screen.
type shownScreen struct {
	valid  bool
	rows   [outputRows]string
	status string
}

// post hands ev to the session. It never blocks and may be called with
// Sim.mu held.
func (ss *session) post(ev event) {
	ss.mu.Lock()
	ss.inbox = append(ss.inbox, ev)
	ss.mu.Unlock()
	select {
	case ss.notify <- struct{}{}:
	default:
	}
}

func (ss *session) takeInbox() []event {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	evs := ss.inbox
	ss.inbox = nil
	return evs
}

// serveConn runs one terminal connection to its end. It owns the
// connection and the reader goroutine, and waits for it.
func (s *Sim) serveConn(conn net.Conn) {
	defer s.wg.Done()
	defer s.untrack(conn)
	defer conn.Close()
	log := s.log.WithField("remote", conn.RemoteAddr().String())

	// go3270 clears the read deadline part way through the negotiation;
	// a silent client is still caught by the first read, and Close closes
	// the connection in any case.
	_ = conn.SetDeadline(time.Now().Add(s.cfg.NegotiateTimeout))
	dev, err := go3270.NegotiateTelnet(conn)
	if err != nil {
		log.WithError(err).Info("telnet negotiation failed")
		return
	}
	_ = conn.SetDeadline(time.Time{})
	if !s.established(conn) {
		return
	}
	cp := dev.Codepage()
	if cp == nil {
		cp = go3270.Codepage037()
	}
	ss := &session{
		sim:    s,
		conn:   conn,
		term:   s.newDevice(),
		cp:     cp,
		recs:   make(chan []byte),
		done:   make(chan struct{}),
		notify: make(chan struct{}, 1),
	}
	ss.log = log.WithField("terminal", ss.term)
	ss.log.WithField("type", dev.TerminalType()).Info("terminal connected")

	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		ss.readLoop()
	}()
	ss.run()
	close(ss.done)
	conn.Close()
	<-readerDone
}

// readLoop passes each inbound record to run until the connection ends.
func (ss *session) readLoop() {
	rr := newRecordReader(ss.conn)
	for {
		rec, err := rr.next()
		if err != nil {
			ss.readErr = err
			close(ss.recs)
			return
		}
		select {
		case ss.recs <- rec:
		case <-ss.done:
			return
		}
	}
}

// run alternates between the logo screen and a user's console.
func (ss *session) run() {
	defer ss.stopTimers()
	for {
		user, res, err := ss.logonScreen()
		if err != nil {
			ss.logEnd(err)
			return
		}
		ss.user = user
		ss.log.WithFields(logrus.Fields{"user": user, "reconnect": res == logonReconnect}).Info("logged on")
		why := ss.consoleLoop(res)
		switch why {
		case endGone:
			ss.sim.detach(user, ss)
			ss.log.WithField("user", user).Info("terminal gone; user disconnected")
			ss.logEnd(ss.endErr)
			return
		case endQuit:
			ss.sim.detach(user, ss)
			return
		case endLogoff:
			ss.log.WithField("user", user).Info("logged off")
		case endDisconnect:
			ss.sim.detach(user, ss)
			ss.log.WithField("user", user).Info("disconnected")
		case endForced:
			ss.log.WithField("user", user).Info("forced off")
		}
		ss.user, ss.cons = "", nil
		ss.stopTimers()
		ss.typeahead = nil
		ss.takeInbox()
	}
}

func (ss *session) logEnd(err error) {
	switch {
	case err == nil, errors.Is(err, net.ErrClosed):
		ss.log.Debug("session ended")
	case errors.Is(err, ErrDatastream):
		ss.log.WithError(err).Warn("session ended: bad data stream")
	default:
		ss.log.WithError(err).Info("session ended")
	}
}

// errQuit ends a session because the simulator shuts down.
var errQuit = errors.New("zvmsim: shutting down")

// nextRecord waits for the next inbound record.
func (ss *session) nextRecord() ([]byte, error) {
	select {
	case rec, ok := <-ss.recs:
		if !ok {
			return nil, ss.readErr
		}
		return rec, nil
	case <-ss.sim.quit:
		return nil, errQuit
	}
}

// write sends one record within the write timeout.
func (ss *session) write(rec []byte) error {
	_ = ss.conn.SetWriteDeadline(time.Now().Add(ss.sim.cfg.WriteTimeout))
	_, err := ss.conn.Write(rec)
	return err
}

// logonScreen shows the logo screen until a LOGON succeeds.
func (ss *session) logonScreen() (string, logonResult, error) {
	msg := ""
	for {
		if err := ss.drawLogo(msg); err != nil {
			return "", 0, err
		}
		msg = ""
		rec, err := ss.nextRecord()
		if err != nil {
			return "", 0, err
		}
		in, err := parseInbound(rec)
		if err != nil {
			return "", 0, err
		}
		if in.aid != go3270.AIDEnter {
			continue // CLEAR, PA and PF keys: show the logo screen again
		}
		user := strings.ToUpper(strings.TrimSpace(in.fieldText(ss.cp, useridAddr)))
		password := strings.TrimSpace(in.fieldText(ss.cp, passwordAddr))
		if cmd := strings.Fields(in.fieldText(ss.cp, commandAddr)); len(cmd) > 0 {
			// The COMMAND line takes LOGON userid [password] (CP Commands,
			// LOGON); any other command is refused before LOGON.
			verb := strings.ToUpper(cmd[0])
			if !abbrev(verb, "LOGON", 1) && !abbrev(verb, "LOGIN", 4) {
				msg = msgNotBeforeLogon(verb)
				continue
			}
			if len(cmd) > 1 {
				user = strings.ToUpper(cmd[1])
			}
			if len(cmd) > 2 {
				password = cmd[2]
			}
		}
		if user == "" {
			continue
		}
		switch res := ss.sim.logon(user, password, ss); res {
		case logonBad:
			ss.log.WithField("user", user).Info("logon refused: bad userid or password")
			msg = msgLogonBad
		case logonAlready:
			ss.log.WithField("user", user).Info("logon refused: already logged on")
			msg = msgAlreadyLoggedOn
		default:
			return user, res, nil
		}
	}
}

// drawLogo writes the logo screen with msg on its message line.
func (ss *session) drawLogo(msg string) error {
	w := newDSWriter(ss.cp, cmdEraseWrite, wccResetMDT|wccKeyboardRestore)
	for i, l := range logo {
		if l != "" {
			w.sba(i, 0).text(l)
		}
	}
	w.sba(useridRow, 1).text("USERID   ===>")
	w.sba(useridRow, fieldCol).sf(0)
	w.sba(useridRow, fieldCol+1+useridLen).sf(attrProtected)
	w.sba(passwordRow, 1).text("PASSWORD ===>")
	w.sba(passwordRow, fieldCol).sf(attrNonDisplay)
	w.sba(passwordRow, fieldCol+1+passwordLen).sf(attrProtected)
	w.sba(messageRow, 0).sf(attrProtected | attrIntensified)
	if msg != "" {
		w.text(" " + msg)
	}
	w.sba(commandRow, 0).sf(attrProtected)
	w.text("COMMAND  ===>") // columns 1-13: the field starts at fieldCol
	w.sba(commandRow, fieldCol).sf(0)
	w.sba(commandRow, 79).sf(attrProtected)
	w.sba(statusRow, statusAttrCol).sf(attrProtected)
	w.text(statusRunning)
	w.sba(statusRow, sysnameCol).text(ss.sim.cfg.System)
	w.sba(useridRow, fieldCol+1).ic()
	return ss.write(w.record())
}

// consoleLoop runs the console of ss.user until it ends.
func (ss *session) consoleLoop(res logonResult) endReason {
	ss.cons = &console{}
	ss.shown = shownScreen{}
	now := ss.sim.now()
	if res == logonReconnect {
		ss.cons.write(false, msgReconnectedAt(now))
	} else {
		ss.cons.write(false, append(logonBanner(), msgLogonAt(now))...)
	}
	for {
		forced := false
		for _, ev := range ss.takeInbox() {
			if ev.kick {
				forced = true
				continue
			}
			ss.cons.write(ev.msg, ev.lines...)
		}
		if forced {
			return endForced
		}
		ss.syncTimers()
		if err := ss.render(); err != nil {
			ss.endErr = err
			return endGone
		}
		var moreC, spinC <-chan time.Time
		if ss.moreTimer != nil {
			moreC = ss.moreTimer.C
		}
		if ss.spinTimer != nil {
			spinC = ss.spinTimer.C
		}
		select {
		case rec, ok := <-ss.recs:
			if !ok {
				ss.endErr = ss.readErr
				return endGone
			}
			in, err := parseInbound(rec)
			if err != nil {
				ss.endErr = err
				return endGone
			}
			if why, end := ss.key(in); end {
				return why
			}
		case <-ss.notify:
		case <-moreC:
			ss.moreTimer = nil
			ss.cons.clearScreen()
		case <-spinC:
			ss.spinTimer = nil
			ss.cons.running = false
			held := ss.typeahead
			ss.typeahead = nil
			for _, line := range held {
				if why, end := ss.execLine(line); end {
					return why
				}
			}
		case <-ss.sim.quit:
			return endQuit
		}
	}
}

// key handles an AID from the console. It reports whether the console
// ends, and why.
func (ss *session) key(in inbound) (endReason, bool) {
	c := ss.cons
	c.notAccepted = false
	ss.shown.valid = false // the keyboard is locked: redraw, which restores it
	switch in.aid {
	case go3270.AIDEnter:
		c.enter()
		return ss.input(strings.TrimRight(in.fieldText(ss.cp, inputAddr), " "))
	case go3270.AIDClear, go3270.AIDPA2:
		// CLEAR erases the terminal's buffer itself; both show the next
		// screen of waiting output at once and release MORE... and HOLDING.
		c.clearScreen()
	default:
		// PA1, PA3 and PF keys have no CP function here.
	}
	return 0, false
}

// input handles a line typed in the input area.
func (ss *session) input(line string) (endReason, bool) {
	if strings.TrimSpace(line) == "" {
		return 0, false
	}
	if ss.cons.running && !isCPEscape(line) {
		// The virtual machine runs and has not read yet: CP keeps one line
		// of type-ahead for it and refuses more (NOT ACCEPTED).
		if len(ss.typeahead) > 0 {
			ss.cons.notAccepted = true
			return 0, false
		}
		ss.cons.write(false, line)
		ss.typeahead = append(ss.typeahead, line)
		return 0, false
	}
	ss.cons.write(false, line) // CP echoes the input line
	return ss.execLine(line)
}

// isCPEscape reports whether line starts with the #CP escape, which sends
// it to CP even while the virtual machine runs.
func isCPEscape(line string) bool {
	l := strings.ToUpper(strings.TrimSpace(line))
	return l == "#CP" || strings.HasPrefix(l, "#CP ")
}

// execLine runs the CP commands of one input line: # is the logical line
// end, and a leading CP word (from #CP) is dropped.
func (ss *session) execLine(line string) (endReason, bool) {
	for _, part := range strings.Split(line, "#") {
		f := strings.Fields(part)
		if len(f) > 0 && strings.EqualFold(f[0], "CP") {
			part = restAfter(part, 1)
			f = f[1:]
		}
		if len(f) == 0 {
			continue
		}
		if why, end := ss.command(f, part); end {
			return why, true
		}
	}
	return 0, false
}

// syncTimers starts or stops the MORE... timer as the console wants.
func (ss *session) syncTimers() {
	want := ss.cons.wantsTimer()
	switch {
	case want && ss.moreTimer == nil:
		ss.moreTimer = time.NewTimer(ss.sim.cfg.MoreDelay)
	case !want && ss.moreTimer != nil:
		ss.moreTimer.Stop()
		ss.moreTimer = nil
	}
}

func (ss *session) stopTimers() {
	if ss.moreTimer != nil {
		ss.moreTimer.Stop()
		ss.moreTimer = nil
	}
	if ss.spinTimer != nil {
		ss.spinTimer.Stop()
		ss.spinTimer = nil
	}
}

// render brings the terminal up to date with the console: a full screen
// (Erase/Write, keyboard restored, cursor at the input area) after a key,
// otherwise a Write of the changed rows and status only, which leaves
// what the user is typing alone.
func (ss *session) render() error {
	c := ss.cons
	status := c.status()
	var rows [outputRows]string
	copy(rows[:], c.rows)
	if !ss.shown.valid {
		w := newDSWriter(ss.cp, cmdEraseWrite, wccResetMDT|wccKeyboardRestore)
		w.sba(21, 79).sf(0)                               // input area
		w.sba(statusRow, statusAttrCol).sf(attrProtected) // status area, wrapping to the output area
		for i, r := range rows {
			if r != "" {
				w.sba(i, 0).text(r)
			}
		}
		w.sba(statusRow, statusCol).text(status)
		w.sba(statusRow, sysnameCol).text(ss.sim.cfg.System)
		w.sba(inputCursorRow, 0).ic()
		ss.shown = shownScreen{valid: true, rows: rows, status: status}
		return ss.write(w.record())
	}
	w := newDSWriter(ss.cp, cmdWrite, 0)
	changed := false
	for i, r := range rows {
		if r != ss.shown.rows[i] {
			// The characters of the row, then nulls over what it showed
			// before: CP writes a line's characters, not blanks after them.
			w.sba(i, 0).text(r).nulls(lineWidth - len([]rune(r)))
			changed = true
		}
	}
	if status != ss.shown.status {
		w.sba(statusRow, statusCol).text(pad(status, statusWidth))
		changed = true
	}
	if !changed {
		return nil
	}
	ss.shown.rows, ss.shown.status = rows, status
	return ss.write(w.record())
}

// pad pads s with blanks to n characters.
func pad(s string, n int) string {
	if l := len([]rune(s)); l < n {
		return s + strings.Repeat(" ", n-l)
	}
	return s
}
