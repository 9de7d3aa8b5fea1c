package vmagent

// The console scraper: the agent's z/VM side. It logs on to a z/VM console
// through TN3270, turns each new console line into events and types the
// CP commands the region sends (the Console the Agent uses).
//
// # How lines are tracked
//
// CP writes console lines into the output area (rows 0..N-3) from the top
// down; rows already written do not change until the screen is cleared
// (CLEAR, PA2, or the MORE... delay running out). The scraper keeps the
// rows it has consumed since the screen was last cleared and consumes only
// the rows after them, so repeated identical lines are each taken once.
// A row is taken once a written row follows it or it is written itself;
// a full screen (MORE... or HOLDING) is taken whole and then cleared with
// CLEAR, which shows the next screen at once. If a consumed row changes,
// CP cleared the screen itself (the MORE... delay) and the scraper starts
// again from row 0.
//
// # How rows become lines
//
// A console line longer than the output width (the columns before the
// input area's attribute: 79 on a 24x80 CP screen) goes on over the
// following rows from column 0. A row is never taken as a line of its own
// before the scraper has decided whether it continues the line above it;
// a continuation row is appended to the line it continues (with one blank:
// CP breaks a line at a blank, which it drops) and never parsed alone.
// Without this, any user could forge console lines: the continuation of a
// long MSG text would read as a line of its own, a CP message with any ID
// and severity, a message from another user or a logon notice.
//
// How CP splits a long line was not found in IBM's documentation; the one
// real split at hand (an HCPCLS6056I message in the zvm-bootcamp
// workshop's XAUTOLOG transcript) breaks the line at the last blank that
// fits in 79 columns, as the simulator does (vmagent/zvmsim, splitLine).
// The rules cover that and a break at the width itself:
//
//   - A message from a user (MSG, WNG or SMSG FROM, whose text the sender
//     chose) is continued by the next row when its last row was written
//     to the last column of the output width, or when the next row's first
//     word (with any blanks before it) would not have fit after what was
//     written of it. "Written" counts blanks the host wrote and not the
//     nulls after the text, so a sender cannot end a row with blanks to
//     make his next words look like a new line. This assumes CP leaves
//     the rest of a row null, as a 3270 host writing a line does and the
//     simulator does: a host that padded every row with blanks would have
//     every message from a user swallow the rows after it (failing
//     closed).
//   - Any other line (CP's own, whose text no user chooses) is continued
//     when its last row's text fills the output width, unless the next row
//     starts a message from a user.
//   - CP writes a line in one screen write, so a line is complete once the
//     screen is no longer full; only a line at the bottom of a full screen
//     waits for the next screen.
//
// # How a command's response is delimited
//
// The command is typed followed by "#CP ZBxxxxxxxxxx" (# is CP's default
// logical line end, ScraperConfig.LineEnd): an unknown command whose name
// is "ZB" and ten random characters, new for every command. CP answers it
// with "HCPCMD001E Unknown CP command: ZBxxxxxxxxxx" right after the
// command's own output, so the response is every line between the
// command's echo and that line, however many MORE... screens it spans and
// whatever arrives afterwards. The echo is recognised only as the typed
// line split into rows as CP splits lines (every row but the last ends at
// the width, or at a blank before a word that would not have fit; the
// last row holds the whole rest), so a row that merely starts like the
// command is not taken for its echo; the marker only as a CP message
// holding it. No other user can guess the marker, so no one else can write
// the echo's last row or the marker line, and a row holding a recent
// marker is never an event. Lines that come between the ENTER and the echo
// are held back and become events once the echo is seen; if CP does not
// echo the command within ScraperConfig.EchoTimeout (or the marker does
// not come within 5 minutes), they are dropped, the command fails with
// ErrResponseLost and the session is ended and logged on again, since
// what follows on the console could no longer be told apart from the
// command's output. Lines after the marker, and messages from users
// (MSG/WNG/SMSG FROM) anywhere, are unsolicited: they become events and
// stay out of the response. The echo, the response and the marker are not
// events: the response goes to the command's caller. While a guest has the
// console (VM READ, RUNNING) the line starts with #CP so that CP takes it;
// NOT ACCEPTED makes the scraper wait (RetryDelay) and type it again.

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/racingmars/go3270"
	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/commands"
	"github.com/zbridge/zbridge/protocol"
	"github.com/zbridge/zbridge/vmagent/tn3270"
)

// Status area words (the last row, from column 60).
const (
	StatusCPRead      = "CP READ"
	StatusVMRead      = "VM READ"
	StatusRunning     = "RUNNING"
	StatusMore        = "MORE..."
	StatusHolding     = "HOLDING"
	StatusNotAccepted = "NOT ACCEPTED"
)

// ScraperConfig configures a Scraper.
type ScraperConfig struct {
	Addr     string // the TN3270 server, host:port (required)
	User     string // the z/VM userid to log on as (required)
	Password string // its password (required; never logged)
	// System is the z/VM system name for the events' origin; empty means
	// the name the status area shows.
	System string
	// Publish receives the events, in console order (Spool.Add, say);
	// required. It is called from the scraper's goroutine.
	Publish func(evs ...*protocol.Event) error
	Logger  logrus.FieldLogger // required
	// Terminal configures the TN3270 client (model, codepage).
	Terminal tn3270.Config
	// ReconnectMin and ReconnectMax bound the backoff between sessions
	// (defaults 500ms and 30s).
	ReconnectMin, ReconnectMax time.Duration
	// LogonTimeout bounds connecting and logging on (default 30s).
	LogonTimeout time.Duration
	// RetryDelay is the wait before a command refused with NOT ACCEPTED is
	// typed again (default 500ms).
	RetryDelay time.Duration
	// EchoTimeout bounds the wait for CP's echo of a command (default
	// 30s). Without the echo, what follows on the console cannot be told
	// apart from the command's output: the command fails with
	// ErrResponseLost, what came after it is dropped and the session is
	// ended (and logged on again).
	EchoTimeout time.Duration
	// LineEnd is the console's logical line end character (CP TERMINAL
	// LINEND), which the scraper uses to add its end-of-response marker
	// and the #CP escape; default "#".
	LineEnd string
}

// LogonError is a logon CP refused (HCPLGA050E bad userid or password,
// HCPLGA054E already logged on, ...). Serve returns it: trying again
// would not help.
type LogonError struct {
	MsgID   string // the HCP message ID
	Message string // CP's message line
}

func (e *LogonError) Error() string {
	return "vmagent: z/VM logon refused: " + e.Message
}

// ErrLoggedOff: the console went back to the logon screen (LOGOFF,
// DISCONNECT or FORCE); the scraper logs on again.
var ErrLoggedOff = errors.New("vmagent: the console was logged off")

// ErrResponseLost: a command's output could not be told apart from what
// followed it on the console (CP did not echo the command within
// ScraperConfig.EchoTimeout, or its end marker did not come). The command
// fails with it; the scraper drops what came after the command, ends the
// session and logs on again.
var ErrResponseLost = errors.New("vmagent: a command's response could not be delimited on the console")

// Scraper is a z/VM console over TN3270: Serve keeps it logged on and
// publishes its lines as events; Run (the Console interface) types CP
// commands on it, one at a time.
type Scraper struct {
	cfg  ScraperConfig
	log  logrus.FieldLogger
	reqs chan *cmdReq

	runMu sync.Mutex // one command at a time

	mu       sync.Mutex // guards the following fields
	ready    chan struct{}
	loggedOn bool
	serving  bool
	done     chan struct{} // closed when Serve returns
	err      error         // why Serve returned
}

var _ Console = (*Scraper)(nil)

// NewScraper returns a scraper for cfg; Serve runs it.
func NewScraper(cfg ScraperConfig) (*Scraper, error) {
	switch {
	case cfg.Addr == "":
		return nil, errors.New("vmagent: scraper: Addr is required")
	case cfg.User == "" || cfg.Password == "":
		return nil, errors.New("vmagent: scraper: User and Password are required")
	case cfg.Publish == nil:
		return nil, errors.New("vmagent: scraper: Publish is required")
	case cfg.Logger == nil:
		return nil, errors.New("vmagent: scraper: Logger is required")
	}
	cfg.User = strings.ToUpper(strings.TrimSpace(cfg.User))
	cfg.System = strings.ToUpper(strings.TrimSpace(cfg.System))
	if cfg.ReconnectMin <= 0 {
		cfg.ReconnectMin = 500 * time.Millisecond
	}
	if cfg.ReconnectMax <= 0 {
		cfg.ReconnectMax = 30 * time.Second
	}
	if cfg.LogonTimeout <= 0 {
		cfg.LogonTimeout = 30 * time.Second
	}
	if cfg.RetryDelay <= 0 {
		cfg.RetryDelay = 500 * time.Millisecond
	}
	if cfg.EchoTimeout <= 0 {
		cfg.EchoTimeout = 30 * time.Second
	}
	if cfg.LineEnd == "" {
		cfg.LineEnd = "#"
	}
	return &Scraper{
		cfg:   cfg,
		log:   cfg.Logger.WithFields(logrus.Fields{"component": "console", "tn3270": cfg.Addr, "user": cfg.User}),
		reqs:  make(chan *cmdReq),
		ready: make(chan struct{}),
		done:  make(chan struct{}),
	}, nil
}

// Serve keeps the console logged on until ctx ends, reconnecting (a new
// TN3270 session and logon) with backoff when the session drops. It
// returns ctx's error, or a *LogonError at once when CP refuses the logon.
// Call it once.
func (s *Scraper) Serve(ctx context.Context) error {
	s.mu.Lock()
	if s.serving {
		s.mu.Unlock()
		return errors.New("vmagent: scraper: Serve called twice")
	}
	s.serving = true
	s.mu.Unlock()
	err := s.serve(ctx)
	s.mu.Lock()
	s.err = err
	close(s.done)
	s.mu.Unlock()
	return err
}

func (s *Scraper) serve(ctx context.Context) error {
	wait := s.cfg.ReconnectMin
	for {
		start := time.Now()
		err := s.session(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var le *LogonError
		if errors.As(err, &le) {
			s.log.WithField("msgid", le.MsgID).Error(le.Error())
			return err
		}
		if time.Since(start) > s.cfg.ReconnectMax {
			wait = s.cfg.ReconnectMin
		}
		d := wait/2 + rand.N(wait/2+1)
		s.log.WithError(err).Warnf("console session ended; reconnecting in %v", d.Round(time.Millisecond))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
		}
		wait = min(2*wait, s.cfg.ReconnectMax)
	}
}

// Ready waits until the console is logged on. It returns Serve's error if
// Serve has returned, or ctx's.
func (s *Scraper) Ready(ctx context.Context) error {
	for {
		s.mu.Lock()
		ready, done, on, err := s.ready, s.done, s.loggedOn, s.err
		s.mu.Unlock()
		if on {
			return nil
		}
		select {
		case <-done:
			if err == nil {
				err = errors.New("vmagent: scraper stopped")
			}
			return err
		case <-ctx.Done():
			return ctx.Err()
		case <-ready:
		}
	}
}

func (s *Scraper) setLoggedOn(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.loggedOn == on {
		return
	}
	s.loggedOn = on
	if on {
		close(s.ready)
	} else {
		s.ready = make(chan struct{})
	}
}

// cmdReq is a command handed to the session goroutine.
type cmdReq struct {
	ctx context.Context
	cmd string
	res chan cmdResult // buffered: the session never blocks on it
}

type cmdResult struct {
	lines []string
	rc    int
	err   error
	end   error // the session must end: the console's state is unknown
}

// Run types cmd on the console (Console interface), waits for CP's whole
// response and calls out with each line of it, in order. rc is 1 when a
// response line is an HCP error message (ID ending in E), else 0. A
// command waits for the console to be logged on, within ctx.
func (s *Scraper) Run(ctx context.Context, cmd string, out func(line string)) (int, error) {
	cmd = strings.TrimSpace(cmd)
	switch {
	case cmd == "":
		return 0, &commands.Error{Code: commands.CodeBadRequest, Message: "empty CP command"}
	case len(cmd) > protocol.MaxCPCommand:
		return 0, &commands.Error{Code: commands.CodeBadRequest,
			Message: fmt.Sprintf("CP commands are at most %d characters", protocol.MaxCPCommand)}
	case strings.Contains(cmd, s.cfg.LineEnd):
		// The console would split the line into several commands.
		return 0, &commands.Error{Code: commands.CodeBadRequest,
			Message: fmt.Sprintf("the command contains the console's line-end character %q: send one CP command at a time", s.cfg.LineEnd)}
	}
	s.runMu.Lock()
	defer s.runMu.Unlock()
	req := &cmdReq{ctx: ctx, cmd: cmd, res: make(chan cmdResult, 1)}
	select {
	case s.reqs <- req:
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-s.done:
		return 0, &commands.Error{Code: commands.CodeNotConnected, Message: "the z/VM console is not logged on"}
	}
	var r cmdResult
	select {
	case r = <-req.res:
	case <-ctx.Done():
		// The console goes on collecting the response (and throws it
		// away) so that it does not turn into console events.
		return 0, ctx.Err()
	}
	if out != nil {
		for _, l := range r.lines {
			out(l)
		}
	}
	return r.rc, r.err
}

// consoleSession is one TN3270 session: dial, logon, then scrape and run
// commands until it ends.
type consoleSession struct {
	s       *Scraper
	cl      *tn3270.Client
	system  string
	seen    []string // output rows consumed since the screen was last cleared
	sink    rowSink  // where consumed rows go; nil: events
	events  joiner   // assembles the lines that become events
	markers []string // the markers of recent commands (markerKey)
}

func (s *Scraper) session(ctx context.Context) error {
	dctx, cancel := context.WithTimeout(ctx, s.cfg.LogonTimeout)
	defer cancel()
	tcfg := s.cfg.Terminal
	if tcfg.Logger == nil {
		tcfg.Logger = s.log
	}
	cl, err := tn3270.Dial(dctx, s.cfg.Addr, tcfg)
	if err != nil {
		return err
	}
	defer cl.Close()
	// Whatever the session waits for (a host that stopped reading, say),
	// it ends when ctx does.
	closed := make(chan struct{})
	stop := context.AfterFunc(ctx, func() { cl.Close(); close(closed) })
	defer func() {
		if !stop() {
			<-closed
		}
	}()
	st := &consoleSession{s: s, cl: cl, system: s.cfg.System}
	st.events.emit = st.event
	if err := st.logon(dctx); err != nil {
		return err
	}
	s.log.Info("logged on to the z/VM console")
	s.setLoggedOn(true)
	defer s.setLoggedOn(false)
	return st.loop(ctx)
}

// logon fills in the logo screen's userid and password and waits for CP's
// answer.
func (st *consoleSession) logon(ctx context.Context) error {
	cl, cfg := st.cl, st.s.cfg
	scr, err := cl.WaitFor(ctx, func(s tn3270.Screen) bool { return !s.KeyboardLocked && isLogonScreen(s) })
	if err != nil {
		return fmt.Errorf("vmagent: waiting for the logon screen: %w", err)
	}
	var user, pass *tn3270.Field
	for i := range scr.Fields {
		f := &scr.Fields[i]
		if f.Attr.Protected() {
			continue
		}
		if f.Attr.Hidden() {
			if pass == nil {
				pass = f
			}
		} else if user == nil && pass == nil {
			user = f
		}
	}
	if user == nil || pass == nil {
		return errors.New("vmagent: no userid and password fields on the logon screen")
	}
	if err := cl.SetField(user.Pos.Row, user.Pos.Col, cfg.User); err != nil {
		return fmt.Errorf("vmagent: typing the userid: %w", err)
	}
	if err := cl.SetField(pass.Pos.Row, pass.Pos.Col, cfg.Password); err != nil {
		return fmt.Errorf("vmagent: typing the password: %w", err) // the error never holds the text
	}
	seq := cl.Screen().Seq
	if err := cl.SendAID(ctx, go3270.AIDEnter); err != nil {
		return fmt.Errorf("vmagent: logon: %w", err)
	}
	for {
		scr, err := cl.WaitUpdate(ctx, seq)
		if err != nil {
			return fmt.Errorf("vmagent: waiting for the logon to complete: %w", err)
		}
		seq = scr.Seq
		if scr.KeyboardLocked {
			continue
		}
		rows := scr.Rows()
		for _, r := range rows {
			if id := CPMessageID(r); id != "" && strings.HasSuffix(id, "E") {
				return &LogonError{MsgID: id, Message: strings.TrimSpace(r)}
			}
		}
		if isLogonScreen(scr) {
			continue
		}
		for _, r := range rows {
			if strings.Contains(r, "LOGON AT") || strings.Contains(r, "RECONNECTED AT") {
				if st.system == "" {
					st.system = systemName(scr)
				}
				return nil
			}
		}
	}
}

// isLogonScreen reports a screen with a hidden input field: the logo
// screen's password.
func isLogonScreen(s tn3270.Screen) bool {
	for _, f := range s.Fields {
		if !f.Attr.Protected() && f.Attr.Hidden() {
			return true
		}
	}
	return false
}

// status returns the status area's word(s): the last row from column 60.
func status(s tn3270.Screen) string {
	rows, _ := s.Size()
	last := s.Row(rows - 1)
	if len(last) <= 60 {
		return ""
	}
	t := strings.TrimSpace(last[60:])
	for _, w := range []string{StatusNotAccepted, StatusCPRead, StatusVMRead, StatusRunning, StatusMore, StatusHolding} {
		if strings.HasPrefix(t, w) {
			return w
		}
	}
	return t
}

// systemName returns the system name from the status area (column 70 on).
func systemName(s tn3270.Screen) string {
	rows, _ := s.Size()
	last := s.Row(rows - 1)
	if len(last) <= 70 {
		return ""
	}
	f := strings.Fields(last[70:])
	if len(f) == 0 {
		return ""
	}
	return f[len(f)-1]
}

// loop scrapes the console and runs commands until the session ends.
func (st *consoleSession) loop(ctx context.Context) error {
	cl := st.cl
	upd := make(chan struct{}, 1)
	var wg sync.WaitGroup
	defer wg.Wait()
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	wg.Add(1)
	go func() { // ticks upd at every host write
		defer wg.Done()
		var seq uint64
		for {
			scr, err := cl.WaitUpdate(wctx, seq)
			if err != nil {
				return
			}
			seq = scr.Seq
			select {
			case upd <- struct{}{}:
			default:
			}
		}
	}()
	for {
		if _, err := st.consume(ctx); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-cl.Done():
			return cl.Err()
		case <-upd:
		case req := <-st.s.reqs:
			r := st.run(ctx, req)
			req.res <- r
			if r.end != nil {
				return r.end
			}
			if r.err != nil && !errors.As(r.err, new(*commands.Error)) && req.ctx.Err() == nil {
				return r.err // the session failed under the command
			}
		}
	}
}

// consume takes the output rows not yet consumed, clearing full screens
// (MORE..., HOLDING) until the console flows. It returns the sequence of
// the last screen it read.
func (st *consoleSession) consume(ctx context.Context) (uint64, error) {
	cl := st.cl
	for {
		scr, err := cl.WaitFor(ctx, func(s tn3270.Screen) bool { return !s.KeyboardLocked })
		if err != nil {
			return 0, err
		}
		if isLogonScreen(scr) {
			return 0, ErrLoggedOff
		}
		nrows, _ := scr.Size()
		width := outputWidth(scr)
		out := scr.Rows()[:max(nrows-2, 0)]
		ext := make([]int, len(out))
		for i := range out {
			out[i] = strings.TrimRight(out[i], " ")
			ext[i] = rowExtent(scr, i, width)
		}
		for i, r := range st.seen {
			if i >= len(out) || out[i] != r { // CP cleared the screen itself
				st.seen = st.seen[:0]
				break
			}
		}
		stat := status(scr)
		full := stat == StatusMore || stat == StatusHolding
		last := len(out) - 1
		if !full {
			for last >= 0 && out[last] == "" && ext[last] == 0 {
				last--
			}
		}
		for i := len(st.seen); i <= last; i++ {
			st.seen = append(st.seen, out[i])
			st.row(outRow{text: out[i], ext: ext[i], width: width})
		}
		if !full {
			// CP writes a line in one screen write: the last line on a
			// screen that is not full is complete.
			st.flush()
			return scr.Seq, nil
		}
		if err := cl.SendAID(ctx, go3270.AIDClear); err != nil {
			return 0, err
		}
		st.seen = st.seen[:0]
	}
}

// outputWidth returns the number of columns a console line uses on a row
// of the output area: the screen's width, less the last column when the
// input area's attribute takes it on the last output row (as on CP's
// 24x80 screen, where lines are 79 characters wide).
func outputWidth(s tn3270.Screen) int {
	nrows, ncols := s.Size()
	for _, f := range s.Fields {
		if !f.Attr.Protected() && !f.Attr.Hidden() { // the input area
			if f.Pos.Row == nrows-3 && f.Pos.Col > 0 {
				return f.Pos.Col
			}
			break
		}
	}
	return ncols
}

// rowExtent returns how far the host wrote on a row of the output area:
// one past the last position (before width) holding a character, blanks
// included, nulls not.
func rowExtent(s tn3270.Screen, row, width int) int {
	for c := width - 1; c >= 0; c-- {
		if cell := s.Cell(row, c); !cell.Field && cell.Char != 0 {
			return c + 1
		}
	}
	return 0
}

// outRow is a row of the output area as the scraper takes it.
type outRow struct {
	text  string // the row, trailing blanks removed
	ext   int    // how far the host wrote on it (rowExtent)
	width int    // the output width
}

// rowSink takes the rows consumed while a command runs.
type rowSink interface {
	row(r outRow)
	flush() // the screen flows: the line being assembled is complete
}

// row hands a consumed row to the command being run, or to the events.
func (st *consoleSession) row(r outRow) {
	if st.sink != nil {
		st.sink.row(r)
		return
	}
	st.eventRow(r)
}

// eventRow takes a row for the events: a row holding a command's marker
// (an echo, CP's answer to the marker) is never one.
func (st *consoleSession) eventRow(r outRow) {
	if st.ours(r.text) {
		st.events.flush()
		return
	}
	st.events.add(r)
}

// flush completes the line being assembled.
func (st *consoleSession) flush() {
	if st.sink != nil {
		st.sink.flush()
		return
	}
	st.events.flush()
}

// event publishes a console line.
func (st *consoleSession) event(l string) {
	if strings.TrimSpace(l) == "" || st.ours(l) {
		return
	}
	if err := st.s.cfg.Publish(ConsoleEvents(st.system, l, time.Now())...); err != nil {
		st.s.log.WithError(err).Error("could not publish a console event")
	}
}

// joiner assembles console lines from output rows, joining the rows that
// continue a line (see "How rows become lines" above). It emits a line
// when a row comes that does not continue it, or at flush.
type joiner struct {
	emit func(line string)
	line []byte
	open bool   // a line is being assembled
	user bool   // it is a message from a user
	last outRow // its last row
}

func (j *joiner) add(r outRow) {
	if j.open && j.continues(r) {
		// CP broke the line at a blank and dropped it; what was written
		// of the row before it (blanks included) is part of the line.
		if len(j.line) < maxLine {
			j.line = append(j.line, j.last.text...)
			for range max(j.last.ext-len(j.last.text), 0) {
				j.line = append(j.line, ' ')
			}
			j.line = append(j.line, ' ')
		}
		j.last = r
		return
	}
	j.flush()
	j.open, j.user, j.last = true, IsUnsolicited(r.text), r
}

// maxLine bounds what a joiner keeps of one line: far more than any line
// CP writes (a MSG is at most an input line); the rest of a longer one (a
// host writing full rows without end) is dropped, never parsed alone.
const maxLine = 16 << 10

// continues reports whether r continues the line being assembled.
func (j *joiner) continues(r outRow) bool {
	if !j.user {
		// CP's own line: its text is CP's, so only a row filled to the
		// width is continued, and never by a message from a user.
		return len(j.last.text) >= r.width && !IsUnsolicited(r.text)
	}
	// A message from a user: the sender chose where its rows break.
	if j.last.ext >= r.width {
		return true
	}
	return j.last.ext+1+leadingWord(r.text) > r.width
}

// leadingWord returns the length of s's first word with the blanks before
// it.
func leadingWord(s string) int {
	t := strings.TrimLeft(s, " ")
	if i := strings.IndexByte(t, ' '); i >= 0 {
		t = t[:i]
	}
	return len(s) - len(strings.TrimLeft(s, " ")) + len(t)
}

// flush emits the line being assembled, if any.
func (j *joiner) flush() {
	if !j.open {
		return
	}
	j.line = append(j.line, j.last.text...)
	l := string(j.line)
	j.line, j.open, j.user, j.last = j.line[:0], false, false, outRow{}
	j.emit(l)
}

// collector splits the rows consumed while a command runs into its echo,
// its response and unsolicited lines.
type collector struct {
	st    *consoleSession
	typed string
	token string
	phase int      // 0 before the echo, 1 the response, 2 after the marker
	echo  []outRow // rows that may be the start of the echo
	pre   joiner   // lines before the echo
	held  []string // their lines, published once the echo is seen
	resp  joiner   // lines of the response
	lines []string
	rc    int
}

func newCollector(st *consoleSession, typed, token string) *collector {
	c := &collector{st: st, typed: typed, token: token}
	c.pre.emit = func(l string) { c.held = append(c.held, l) }
	c.resp.emit = c.response
	return c
}

func (c *collector) row(r outRow) {
	switch c.phase {
	case 0:
		c.echo = append(c.echo, r)
		c.matchEcho()
	case 1:
		switch {
		case isMarker(r.text, c.token):
			c.resp.flush()
			c.phase = 2
		case hasMarker(r.text, c.token):
			c.resp.flush() // the agent's own: no part of anything
		default:
			c.resp.add(r)
		}
	default:
		c.st.eventRow(r)
	}
}

// matchEcho decides about the rows held as a possible echo: while they are
// the start of the echo they wait; once they are the whole echo, the
// response begins; a row that cannot start it is a line before the echo.
func (c *collector) matchEcho() {
	for len(c.echo) > 0 {
		switch echoMatch(c.echo, c.typed) {
		case echoStart:
			return
		case echoWhole:
			c.echo = nil
			c.phase = 1
			c.release()
			return
		}
		c.pre.add(c.echo[0])
		c.echo = c.echo[1:]
	}
}

// release publishes the lines that came before the echo: CP has shown
// where the command's output begins (or refused the line).
func (c *collector) release() {
	for _, r := range c.echo {
		c.pre.add(r)
	}
	c.echo = nil
	c.pre.flush()
	for _, l := range c.held {
		c.st.event(l)
	}
	c.held = nil
}

// drop forgets what came after the ENTER: CP did not echo the command, so
// nothing after it can be told apart from its output.
func (c *collector) drop() int {
	n := len(c.held) + len(c.echo)
	if c.pre.open {
		n++
	}
	c.held, c.echo = nil, nil
	c.pre = joiner{emit: c.pre.emit}
	return n
}

func (c *collector) flush() {
	switch c.phase {
	case 0:
		// CP writes a line in one screen write: rows that are only the
		// start of the echo on a screen that flows are not the echo.
		for len(c.echo) > 0 {
			c.pre.add(c.echo[0])
			c.echo = c.echo[1:]
		}
		c.pre.flush()
	case 1:
		c.resp.flush()
	default:
		c.st.events.flush()
	}
}

// response takes a line of the response: a message from a user in it is
// an event.
func (c *collector) response(l string) {
	t := strings.TrimSpace(l)
	switch {
	case IsUnsolicited(t):
		c.st.event(l)
	default:
		c.lines = append(c.lines, strings.TrimRight(l, " "))
		if isCPError(t) {
			c.rc = 1
		}
	}
}

// echoState is how far rows go as a command's echo.
type echoState int

const (
	echoNot   echoState = iota // not the echo
	echoStart                  // the start of it
	echoWhole                  // all of it
)

// echoMatch reports whether rows are the typed line as CP echoes it: the
// line split into rows as CP splits lines ("How rows become lines"). Each
// row holds the next characters of the line as the host wrote them
// (blanks included); every row but the last ends at the output width, or
// at a blank (which CP drops) before a word that would not have fit on the
// row; the last row holds the whole rest. A short row that is a prefix of
// the line is not its start unless the line breaks there.
func echoMatch(rows []outRow, typed string) echoState {
	rem := typed
	afterFull := false // the row before filled the width: a blank may have been dropped
	for i, r := range rows {
		w := r.width
		body := r.text + strings.Repeat(" ", max(r.ext-len(r.text), 0))
		if afterFull && !strings.HasPrefix(rem, body) && strings.HasPrefix(rem, " ") {
			rem = rem[1:]
		}
		if r.text == strings.TrimRight(rem, " ") {
			if i == len(rows)-1 {
				return echoWhole
			}
			return echoNot
		}
		if r.text == "" || len(body) > w || !strings.HasPrefix(rem, body) {
			return echoNot
		}
		rest := rem[len(body):]
		switch {
		case len(body) == w:
			rem, afterFull = rest, true
		case rest[0] == ' ' && len(body)+1+leadingWord(rest[1:]) > w:
			rem, afterFull = rest[1:], false
		default:
			return echoNot
		}
	}
	return echoStart
}

// newMarker returns a new end-of-response marker: "ZB" (no CP command
// starts with it) and ten random characters (A-Z, 2-7), 50 bits no other
// user can guess.
func newMarker() string { return "ZB" + crand.Text()[:10] }

// markerKey is the part of a marker looked for on the console: its first
// eight characters, in case CP shortens an unknown command's name in
// HCP001E.
func markerKey(token string) string { return token[:8] }

// hasMarker reports whether a console row holds the marker.
func hasMarker(text, token string) bool { return strings.Contains(text, markerKey(token)) }

// isMarker reports whether a console row is CP's answer to the marker.
func isMarker(text, token string) bool { return CPMessageID(text) != "" && hasMarker(text, token) }

// ours reports whether a console row holds the marker of one of the
// session's recent commands: such a row is never an event.
func (st *consoleSession) ours(text string) bool {
	for _, k := range st.markers {
		if strings.Contains(text, k) {
			return true
		}
	}
	return false
}

// remember notes a command's marker for ours.
func (st *consoleSession) remember(token string) {
	if len(st.markers) == maxMarkers {
		st.markers = st.markers[1:]
	}
	st.markers = append(st.markers, markerKey(token))
}

// maxMarkers is how many recent commands' markers ours knows.
const maxMarkers = 16

// maxCollect bounds the collection of one command's response.
const maxCollect = 5 * time.Minute

// run types one command and collects its response.
func (st *consoleSession) run(ctx context.Context, req *cmdReq) cmdResult {
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(req.ctx, cancel)
	defer stop()
	cl, s := st.cl, st.s
	defer func() { st.sink = nil }()

	token := newMarker()
	st.remember(token)
	fail := func(err error) cmdResult {
		if req.ctx.Err() != nil {
			return cmdResult{err: req.ctx.Err()}
		}
		return cmdResult{err: err}
	}
	for {
		// Take what is on the screen first: it is not the response.
		st.sink = nil
		if _, err := st.consume(rctx); err != nil {
			return fail(err)
		}
		scr := cl.Screen()
		le := s.cfg.LineEnd
		line := req.cmd + le + "CP " + token
		if stat := status(scr); stat == StatusVMRead || stat == StatusRunning {
			line = le + "CP " + line // a guest has the console: send it to CP
		}
		var input *tn3270.Field
		for i := range scr.Fields {
			if f := &scr.Fields[i]; !f.Attr.Protected() && !f.Attr.Hidden() {
				input = f
				break
			}
		}
		if input == nil {
			return fail(errors.New("vmagent: the console has no input area"))
		}
		if len(line) > input.Len {
			return cmdResult{err: &commands.Error{Code: commands.CodeBadRequest,
				Message: fmt.Sprintf("the command is too long for the console's input area (%d characters with the agent's marker)", input.Len)}}
		}
		if err := cl.SetField(input.Pos.Row, input.Pos.Col, line); err != nil {
			if errors.Is(err, tn3270.ErrKeyboardLocked) {
				continue
			}
			return fail(err)
		}
		c := newCollector(st, line, token)
		st.sink = c
		seq := scr.Seq
		if err := cl.SendAID(rctx, go3270.AIDEnter); err != nil {
			if errors.Is(err, tn3270.ErrKeyboardLocked) {
				continue
			}
			return fail(err)
		}
		// Typed: from now on the response is collected to its marker even
		// if the caller gives up (its lines must not become console
		// events).
		stop()
		if r, again := st.collect(ctx, req, c, seq); !again {
			return r
		}
	}
}

// collect takes the echo, the response and the marker of the command just
// typed (ENTER sent after the screen numbered seq). It reports again when
// CP did not accept the line and it must be typed again. CP must echo the
// command within EchoTimeout and the marker must come within maxCollect;
// otherwise what follows on the console cannot be told apart from the
// command's output, and the result ends the session.
func (st *consoleSession) collect(ctx context.Context, req *cmdReq, c *collector, seq uint64) (r cmdResult, again bool) {
	cl, s := st.cl, st.s
	cctx, ccancel := context.WithTimeout(ctx, maxCollect)
	defer ccancel()
	ectx, ecancel := context.WithTimeout(cctx, s.cfg.EchoTimeout)
	defer ecancel()
	wctx := func() context.Context {
		if c.phase == 0 {
			return ectx
		}
		return cctx
	}
	lost := func(err error) cmdResult {
		switch {
		case ctx.Err() != nil:
		case c.phase == 0 && ectx.Err() != nil:
			err = fmt.Errorf("%w: CP did not echo the command within %v", ErrResponseLost, s.cfg.EchoTimeout)
		case cctx.Err() != nil:
			err = fmt.Errorf("%w: its end marker did not come within %v", ErrResponseLost, maxCollect)
		}
		if n := c.drop(); n > 0 {
			s.log.WithField("lines", n).Warn("console lines after a command whose echo was not seen are dropped")
		}
		if c.phase == 1 {
			c.resp.flush()
		}
		r := cmdResult{lines: c.lines, rc: c.rc, err: err, end: err}
		if req.ctx.Err() != nil {
			r.err = req.ctx.Err()
		}
		return r
	}
	scr, err := cl.WaitFor(ectx, func(s tn3270.Screen) bool { return s.Seq > seq && !s.KeyboardLocked })
	if err != nil {
		return lost(err), false
	}
	if status(scr) == StatusNotAccepted && c.phase == 0 {
		// CP did not take the line: take what the screen shows, wait,
		// and type it again.
		if _, err := st.consume(ectx); err != nil {
			return lost(err), false
		}
		if c.phase == 0 {
			c.release()
			s.log.WithField("command", req.cmd).Debug("NOT ACCEPTED; typing the command again")
			select {
			case <-ctx.Done():
				return lost(ctx.Err()), false
			case <-time.After(s.cfg.RetryDelay):
			}
			return cmdResult{}, true
		}
	}
	late := false // the echo came as the wait for it ran out
	for c.phase < 2 {
		seq, err := st.consume(wctx())
		if err == nil && c.phase < 2 {
			_, err = cl.WaitUpdate(wctx(), seq)
		}
		if err != nil {
			if !late && c.phase > 0 && errors.Is(err, context.DeadlineExceeded) && cctx.Err() == nil && cl.Err() == nil {
				late = true
				continue
			}
			return lost(err), false
		}
	}
	// The rest of the screen is unsolicited.
	st.sink = nil
	_, _ = st.consume(cctx) // a failure shows at the session's next read
	return cmdResult{lines: c.lines, rc: c.rc}, false
}
