package zos

// The z/OS hardcopy log (SYSLOG, or OPERLOG printed in SYSLOG form): one
// line per record, a multi-line message (WTO) as a first line and
// continuation lines tied together by a line ID. ParseHardcopy reads one
// line (its doc gives the layout and its sources); HardcopyJoiner joins
// lines into messages as they arrive (the syslog path, where z/OS's syslogd
// sends each line as its own message); HardcopyReader does the same over an
// io.Reader (a saved log file).

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Errors of the hardcopy parser; HardcopyError and HardcopyLineError wrap
// them.
var (
	// ErrHardcopyLayout: the line is not a hardcopy log line (no record
	// type, system name, date and time where they belong).
	ErrHardcopyLayout = errors.New("zos: not a hardcopy log line")
	// ErrHardcopyDate: the date is not yyddd or yyyyddd, or no such day.
	ErrHardcopyDate = errors.New("zos: bad hardcopy date")
	// ErrHardcopyTime: the time is not hh:mm:ss.th.
	ErrHardcopyTime = errors.New("zos: bad hardcopy time")
	// ErrHardcopyOrphan: a continuation line whose first line was not
	// seen (or whose message already ended).
	ErrHardcopyOrphan = errors.New("zos: continuation line of a message not seen")
	// ErrHardcopyTooLong: a line longer than MaxHardcopyLine bytes.
	ErrHardcopyTooLong = errors.New("zos: hardcopy line too long")
)

// HardcopyError is a line the parser rejected: Err is one of the sentinels
// above, Col the 1-based column of the line (after its leading blanks are
// counted) where the parser stopped.
type HardcopyError struct {
	Err    error
	Col    int
	Detail string
}

func (e *HardcopyError) Error() string {
	if e.Detail == "" {
		return fmt.Sprintf("%v [col %d]", e.Err, e.Col)
	}
	return fmt.Sprintf("%v: %s [col %d]", e.Err, e.Detail, e.Col)
}

func (e *HardcopyError) Unwrap() error { return e.Err }

// HardcopyLine is one line of the hardcopy log as ParseHardcopy read it.
// Its fields are substrings of the line; Text has its trailing blanks
// removed. A continuation line (Continuation reports it) has no System,
// Date, Clock or Ident.
type HardcopyLine struct {
	// Type is the record type (column 1): 'N', 'W', 'M', 'L', 'D', 'E',
	// 'S', 'O' or 'X'; 0 for a line printed without columns 1-10.
	Type byte
	// Request is the request type (column 2): ' ', 'C', 'R' or another
	// letter as read; 0 when Type is 0.
	Request byte
	// Routing is the routing-code column (3-9) as read, "" when blank.
	Routing string
	// System is the system name.
	System string
	// Date is the date as printed: yyddd (HCFORMAT(YEAR)) or yyyyddd
	// (HCFORMAT(CENTURY)).
	Date string
	// Clock is the time as printed, hh:mm:ss.th (or hh:mm:ss).
	Clock string
	// Ident is the job ID, console name, INTERNAL or INSTREAM of a first
	// line, "" when blank.
	Ident string
	// LineID is a continuation line's multi-line message ID ("lid").
	LineID string
	// Flags are the MPF and message flags, 8 hex digits, "" when blank.
	Flags string
	// Text is the message text from column 56 (the special-character
	// column) when that holds a character, else from 57.
	Text string

	year, yday, hour, min, sec, hund int
}

// Continuation reports whether l is a continuation line (L, D, E, S).
func (l HardcopyLine) Continuation() bool { return isContinuationType(l.Type) }

// Time returns the instant of a first line's date and time read as wall
// clock time in loc (the system's local time zone; nil means UTC), in UTC.
// It is the zero time for a continuation line. A wall clock time that
// loc skips or repeats (daylight saving changes) is resolved as time.Date
// resolves it.
func (l HardcopyLine) Time(loc *time.Location) time.Time {
	if l.Date == "" {
		return time.Time{}
	}
	if loc == nil {
		loc = time.UTC
	}
	return time.Date(l.year, time.January, l.yday, l.hour, l.min, l.sec, l.hund*10_000_000, loc).UTC()
}

// String returns l in canonical columns (HCFORMAT(YEAR) or CENTURY as its
// Date has 5 or 7 digits; a continuation line's line ID right-aligned in
// columns 38-45). ParseHardcopy(l.String()) returns l again.
func (l HardcopyLine) String() string {
	var b strings.Builder
	pad := func(s string, n int) {
		b.WriteString(s)
		for i := len(s); i < n; i++ {
			b.WriteByte(' ')
		}
	}
	if l.Type != 0 {
		b.WriteByte(l.Type)
		b.WriteByte(l.Request)
		if l.Continuation() {
			pad("", 43-len(l.LineID))
			b.WriteString(l.LineID)
			b.WriteByte(' ')
			pad(l.Flags, 8)
			b.WriteString("  ")
			b.WriteString(l.Text)
			return strings.TrimRight(b.String(), " ")
		}
		pad(l.Routing, 7)
		b.WriteByte(' ')
	}
	pad(l.System, 8)
	b.WriteByte(' ')
	b.WriteString(l.Date)
	b.WriteByte(' ')
	b.WriteString(l.Clock)
	b.WriteByte(' ')
	pad(l.Ident, 8)
	b.WriteByte(' ')
	pad(l.Flags, 8)
	b.WriteString("  ")
	b.WriteString(l.Text)
	return strings.TrimRight(b.String(), " ")
}

// ParseHardcopy parses one line of the hardcopy log. A first line in
// HCFORMAT(YEAR) form looks like this:
//
//	N 0000000 VBT1     22121 21:20:22.25 STC05049 00000090  HZS0344I THE LOGGER ...
//
// Its columns, counted from 1, are:
//
//   - 1: record type: N single-line message, W single-line message with a
//     reply (WTOR), M first line of a multi-line message, L label line, D
//     data line, E data/end line, S continuation of the previous line, O
//     LOG command input, X non-hardcopy or LOG command source;
//   - 2: request type: blank, C a command, R a command response (other
//     letters are kept as read);
//   - 3-9: routing codes (hex), 10 blank;
//   - 11-18: system name, 19 blank;
//   - 20-24: date yyddd, 25 blank; with HCFORMAT(CENTURY) 20-26 yyyyddd and
//     everything after it two columns to the right (a two-digit year is
//     read as ParseJulian reads it);
//   - 26-36: time hh:mm:ss.th, the system's local time, 37 blank;
//   - 38-45: ident: the job ID of the issuer when column 2 is blank; when it
//     is C or R, a job ID, the console name, INTERNAL (a command from a
//     program or the system) or INSTREAM (from the input stream); blank
//     when unknown; 46 blank;
//   - 47-54: MPF and message flags (8 hex digits, offset 46 of IHAHCLOG's
//     record), 55 blank;
//   - 56: a special character (such as '*' for an action message), usually
//     blank;
//   - 57 on: the message: reply ID and message ID on the first line only,
//     then its text. A multi-line message's first line ends with its line
//     ID.
//
// A continuation line (L, D, E, S) leaves the system, date and time blank
// and has the line ID right-aligned in the ident columns:
//
//	D                                         602 00000290  ALLOCATED NEW FOR ...
//
// Sources: z/OS MVS Planning: Operations, "SYSLOG records" (the record and
// request types and the fields,
// https://www.ibm.com/docs/en/zos/3.1.0?topic=automation-syslog-records),
// the same book on the MPF flags at offset 46 of the SYSLOG record that
// IHAHCLOG maps
// (https://www.ibm.com/support/knowledgecenter/SSLTBW_2.1.0/com.ibm.zos.v2r1.ieag300/iea3g377.htm),
// CONSOLxx HARDCOPY HCFORMAT(YEAR|CENTURY) for the 2- or 4-digit year, and
// the real lines in testdata/hardcopy, each file naming its source.
//
// The parser does not count absolute columns, so that both date forms, a
// line printed without columns 1-10 (system name first; Type 0) and a line
// with a carriage-control blank in front read alike: the system name, date
// and time are blank-separated words, and the ident, flags and text are at
// their offsets from the end of the time, where the flags must be 8 hex
// digits or blank (or, in a line whose blanks were collapsed, the first or
// second word after the time). It does not guess: a line that fits no
// layout is an error, not a line with made-up fields.
//
// It accepts blanks before and after the line, a trailing CR, both date
// forms, a line without columns 1-10 (system name first) and blank flags;
// it rejects anything else, and a line break inside the line, with a
// *HardcopyError. It does not panic on any input.
func ParseHardcopy(line string) (HardcopyLine, error) {
	s := strings.TrimRight(line, " \r\n")
	lead := len(s)
	s = strings.TrimLeft(s, " ")
	lead -= len(s) // columns before s, for error positions
	if s == "" {
		return HardcopyLine{}, &HardcopyError{Err: ErrHardcopyLayout, Col: lead + 1, Detail: "blank line"}
	}
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return HardcopyLine{}, &HardcopyError{Err: ErrHardcopyLayout, Col: lead + i + 1, Detail: "a line break inside the line"}
	}
	var l HardcopyLine
	var err error
	if len(s) >= 2 && isRecordType(s[0]) && isRequestType(s[1]) {
		if isContinuationType(s[0]) {
			if l, err = parseContinuation(s); err == nil {
				return l, nil
			}
		} else if len(s) >= 10 && s[9] == ' ' && isRouting(s[2:9]) {
			if l, err = parseBody(s, 10); err == nil {
				l.Type, l.Request = s[0], s[1]
				l.Routing = strings.Trim(s[2:9], " ")
				return l, nil
			}
		}
	}
	// A line without columns 1-10: the system name comes first.
	l, err2 := parseBody(s, 0)
	if err2 == nil {
		return l, nil
	}
	// Report the reading that got further into the line.
	he, _ := err.(*HardcopyError)
	he2 := err2.(*HardcopyError)
	if he == nil || he2.Col > he.Col {
		he = he2
	}
	he.Col += lead
	return HardcopyLine{}, he
}

// parseBody parses s[at:], which starts with the system name.
func parseBody(s string, at int) (HardcopyLine, error) {
	var l HardcopyLine
	i := at
	word := func() (string, int) {
		w, end := nextWord(s, i)
		i = end
		return w, end - len(w)
	}
	sys, col := word()
	if !isSystemName(sys) {
		return l, &HardcopyError{Err: ErrHardcopyLayout, Col: col + 1, Detail: "no system name"}
	}
	date, col := word()
	if err := l.setDate(date); err != nil {
		return l, &HardcopyError{Err: err, Col: col + 1, Detail: fmt.Sprintf("%q", date)}
	}
	clock, col := word()
	if err := l.setClock(clock); err != nil {
		return l, &HardcopyError{Err: err, Col: col + 1, Detail: fmt.Sprintf("%q", clock)}
	}
	l.System, l.Date, l.Clock = sys, date, clock
	// r starts with the blank after the time: ident at 1-8, flags at
	// 10-17, the special character at 19, the text from 20.
	r := s[i:]
	if ident, flags, text, ok := fixedColumns(r); ok {
		l.Ident, l.Flags, l.Text = ident, flags, text
		return l, nil
	}
	// Collapsed blanks: [ident] flags text, as words.
	w1, e1 := nextWord(r, 0)
	w2, e2 := nextWord(r, e1)
	switch {
	case isFlags(w1):
		l.Flags, r = w1, r[e1:]
	case len(w1) <= 8 && isFlags(w2):
		l.Ident, l.Flags, r = w1, w2, r[e2:]
	default:
		return HardcopyLine{}, &HardcopyError{Err: ErrHardcopyLayout, Col: i + 2, Detail: "no message flags after the time"}
	}
	l.Text = strings.TrimLeft(r, " ")
	return l, nil
}

// nextWord returns the blank-delimited word of s at or after from, and the
// offset just after it.
func nextWord(s string, from int) (string, int) {
	i := from
	for i < len(s) && s[i] == ' ' {
		i++
	}
	start := i
	for i < len(s) && s[i] != ' ' {
		i++
	}
	return s[start:i], i
}

// fixedColumns reads the ident, flags and text at their offsets in r (which
// starts with the blank after the time).
func fixedColumns(r string) (ident, flags, text string, ok bool) {
	if r == "" {
		return "", "", "", true
	}
	at := func(from, to int) string {
		if from >= len(r) {
			return ""
		}
		return r[from:min(to, len(r))]
	}
	if r[0] != ' ' {
		return "", "", "", false
	}
	ident = strings.Trim(at(1, 9), " ")
	if len(r) > 9 && r[9] != ' ' {
		return "", "", "", false
	}
	f := at(10, 18)
	switch {
	case strings.Trim(f, " ") == "":
		f = ""
	case !isFlags(f):
		return "", "", "", false
	}
	if len(r) > 18 && r[18] != ' ' {
		return "", "", "", false
	}
	text = at(19, len(r))
	if text != "" && text[0] == ' ' {
		text = text[1:]
	}
	return ident, f, text, true
}

// parseContinuation parses a continuation line (s[0] is L, D, E or S):
// blanks, the line ID, the flags, the text.
func parseContinuation(s string) (HardcopyLine, error) {
	l := HardcopyLine{Type: s[0], Request: s[1]}
	i := 2
	if i < len(s) && s[i] != ' ' {
		return l, &HardcopyError{Err: ErrHardcopyLayout, Col: i + 1, Detail: "no blank after the record type"}
	}
	for i < len(s) && s[i] == ' ' {
		i++
	}
	start := i
	for i < len(s) && s[i] != ' ' {
		i++
	}
	first := s[start:i]
	r := s[i:]
	switch {
	case isLineID(first) && len(r) >= 9 && r[0] == ' ' && isFlags(r[1:9]) && (len(r) == 9 || r[9] == ' '):
		l.LineID, l.Flags, r = first, r[1:9], r[9:]
	case isFlags(first) && (r == "" || r[0] == ' '):
		l.Flags = first
	default:
		return HardcopyLine{}, &HardcopyError{Err: ErrHardcopyLayout, Col: start + 1, Detail: "no line ID and flags on a continuation line"}
	}
	// r starts with the blank after the flags; then the special
	// character column, then the text.
	if len(r) >= 2 {
		r = r[1:]
		if r[0] == ' ' {
			r = r[1:]
		}
		l.Text = r
	}
	return l, nil
}

// setDate reads yyddd or yyyyddd as ParseJulian does: a two-digit year in
// Language Environment's default century window (the 100 years starting 80
// years before the current year), so that the package reads one date one
// way. A four-digit year before 1900 (before the TOD clock's epoch) is
// refused.
func (l *HardcopyLine) setDate(d string) error {
	if (len(d) != 5 && len(d) != 7) || !allDigits(d) || len(d) == 7 && atoi(d[:4]) < 1900 {
		return ErrHardcopyDate
	}
	t, err := ParseJulian(d, time.Time{})
	if err != nil {
		return ErrHardcopyDate
	}
	l.year, l.yday = t.Year(), t.YearDay()
	return nil
}

func (l *HardcopyLine) setClock(c string) error {
	if (len(c) != 11 && len(c) != 8) || c[2] != ':' || c[5] != ':' || !allDigits(c[:2]) || !allDigits(c[3:5]) || !allDigits(c[6:8]) {
		return ErrHardcopyTime
	}
	h, m, sec := atoi(c[:2]), atoi(c[3:5]), atoi(c[6:8])
	hund := 0
	if len(c) == 11 {
		if c[8] != '.' || !allDigits(c[9:]) {
			return ErrHardcopyTime
		}
		hund = atoi(c[9:])
	}
	if h > 23 || m > 59 || sec > 59 {
		return ErrHardcopyTime
	}
	l.hour, l.min, l.sec, l.hund = h, m, sec, hund
	return nil
}

func isRecordType(c byte) bool { return strings.IndexByte("NWMLDESOX", c) >= 0 }

func isContinuationType(c byte) bool { return c != 0 && strings.IndexByte("LDES", c) >= 0 }

func isRequestType(c byte) bool { return c == ' ' || 'A' <= c && c <= 'Z' }

// isRouting reports whether s is a routing-code column: hex digits or
// blank.
func isRouting(s string) bool {
	return strings.Trim(s, " ") == "" || isHex(s)
}

// isSystemName reports whether s can be a z/OS system name: 1 to 8
// upper-case letters, digits and national characters ($ # @).
func isSystemName(s string) bool {
	if len(s) < 1 || len(s) > 8 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '$' || c == '#' || c == '@') {
			return false
		}
	}
	return true
}

func isFlags(s string) bool { return len(s) == 8 && isHex(s) }

func isLineID(s string) bool { return len(s) >= 1 && len(s) <= 8 && allDigits(s) }

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'A' <= c && c <= 'F' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return s != ""
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func atoi(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n
}

// HardcopyRecord is one message of the hardcopy log: a single-line record,
// or a multi-line message's first line and its continuation lines joined.
type HardcopyRecord struct {
	// Type and Request are the record and request type of the first line
	// (Type 0 for a line printed without columns 1-10).
	Type, Request byte
	// Routing and Flags are the first line's routing codes and flags.
	Routing, Flags string
	// System is the system name.
	System string
	// Time is the first line's date and time in UTC, read as wall clock
	// time in the joiner's Location.
	Time time.Time
	// Date and Clock are the first line's date and time as printed.
	Date, Clock string
	// Ident is the first line's ident column as read; JobID is it when it
	// has the form of a JES job ID (JOB, STC or TSU and 5 digits, or J, S
	// or T and 7 digits); Console is it when it is not a job ID and the
	// line is a command or a response (request type C or R): a console
	// name, INTERNAL or INSTREAM.
	Ident, JobID, Console string
	// MsgID is the message ID: the first word of the text when it has the
	// form of one (see HardcopyMsgID), else "".
	MsgID string
	// ReplyID is a WTOR's reply ID (the number before the message ID).
	ReplyID string
	// Action reports an action message or WTOR: the text starts with '*' or
	// '@', or the record type is W.
	Action bool
	// Text is the message: the first line's text, without its leading
	// blanks and without the line ID a multi-line message's first line
	// ends with, then each continuation line's text after a "\n".
	Text string
	// Lines is the number of lines joined (1 for a single-line record).
	Lines int
	// LineID is a multi-line message's line ID, "" for a single line.
	LineID string
	// Complete is false for a multi-line message whose end line never came:
	// flushed, pushed out by MaxOpen, or cut at MaxLines.
	Complete bool
}

// HardcopyConfig configures a HardcopyJoiner. The zero value is usable:
// NewHardcopyJoiner takes the defaults of DefaultHardcopyConfig for zero
// fields.
type HardcopyConfig struct {
	// Location is the system's local time zone, in which the log's times
	// are read (z/OS writes local time); nil means UTC.
	Location *time.Location
	// MaxOpen is the most multi-line messages waiting for their end line at
	// once; beyond it the oldest is given out incomplete.
	MaxOpen int
	// MaxLines is the most lines of one message; a message reaching it is
	// given out incomplete and its further lines are orphans.
	MaxLines int
}

// DefaultHardcopyConfig returns the configuration zero fields take: UTC,
// 64 messages open, 10000 lines a message.
func DefaultHardcopyConfig() HardcopyConfig {
	return HardcopyConfig{Location: time.UTC, MaxOpen: 64, MaxLines: 10000}
}

// MaxHardcopyLine is the longest line HardcopyReader takes, in bytes; a
// longer one is skipped with ErrHardcopyTooLong.
const MaxHardcopyLine = 64 << 10

// HardcopyJoiner joins hardcopy lines into records as they arrive, one at a
// time: a single-line record is given out at once, a multi-line message
// when its end line (E) comes. Continuation lines find their message by
// line ID, so the lines of messages may be interleaved (as they were before
// the z/OS console restructure); a continuation line without a line ID (S)
// goes to the message the previous line went to. Lines of different
// systems must go to different joiners: continuation lines do not name
// their system. A HardcopyJoiner is not safe for concurrent use.
type HardcopyJoiner struct {
	cfg  HardcopyConfig
	open []*openRecord // oldest first
	last *openRecord   // the open message the previous line went to
}

type openRecord struct {
	rec       HardcopyRecord
	text      strings.Builder
	confirmed bool   // LineID seen on a continuation line
	tail      string // the first line's last word when it is a number
}

// NewHardcopyJoiner returns a joiner with cfg, its zero fields taken from
// DefaultHardcopyConfig.
func NewHardcopyJoiner(cfg HardcopyConfig) (*HardcopyJoiner, error) {
	def := DefaultHardcopyConfig()
	if cfg.Location == nil {
		cfg.Location = def.Location
	}
	if cfg.MaxOpen == 0 {
		cfg.MaxOpen = def.MaxOpen
	}
	if cfg.MaxLines == 0 {
		cfg.MaxLines = def.MaxLines
	}
	if cfg.MaxOpen < 0 || cfg.MaxLines < 0 {
		return nil, fmt.Errorf("zos: hardcopy joiner: MaxOpen %d and MaxLines %d must not be negative", cfg.MaxOpen, cfg.MaxLines)
	}
	return &HardcopyJoiner{cfg: cfg}, nil
}

// Add parses line and adds it, returning the records it completes (none,
// one, or more when it pushes an old message out). A line that does not
// parse, or a continuation line of no open message, returns an error and
// joins nothing (a continuation line without a line ID after it is then an
// orphan too).
func (j *HardcopyJoiner) Add(line string) ([]HardcopyRecord, error) {
	l, err := ParseHardcopy(line)
	if err != nil {
		return nil, err
	}
	return j.AddLine(l)
}

// AddLine adds a parsed line (see Add).
func (j *HardcopyJoiner) AddLine(l HardcopyLine) ([]HardcopyRecord, error) {
	if !l.Continuation() {
		return j.first(l), nil
	}
	o := j.find(l)
	if o == nil {
		j.last = nil
		id := l.LineID
		if id == "" {
			id = "none"
		}
		return nil, fmt.Errorf("%w (record type %c, line ID %s)", ErrHardcopyOrphan, l.Type, id)
	}
	if !o.confirmed && l.LineID != "" {
		o.confirmed = true
		o.rec.LineID = l.LineID
		if o.tail == l.LineID {
			o.rec.Text = strings.TrimRight(strings.TrimSuffix(o.rec.Text, l.LineID), " ")
			o.setMsgID()
		}
	}
	o.text.WriteByte('\n')
	o.text.WriteString(l.Text)
	o.rec.Lines++
	j.last = o
	switch {
	case l.Type == 'E':
		return []HardcopyRecord{j.close(o, true)}, nil
	case o.rec.Lines >= j.cfg.MaxLines:
		return []HardcopyRecord{j.close(o, false)}, nil
	}
	return nil, nil
}

// first starts a record with a first line.
func (j *HardcopyJoiner) first(l HardcopyLine) []HardcopyRecord {
	o := &openRecord{rec: HardcopyRecord{
		Type: l.Type, Request: l.Request, Routing: l.Routing, Flags: l.Flags,
		System: l.System, Time: l.Time(j.cfg.Location), Date: l.Date, Clock: l.Clock,
		Ident: l.Ident, Text: strings.TrimLeft(l.Text, " "), Lines: 1,
	}}
	r := &o.rec
	if isJobID(r.Ident) {
		r.JobID = r.Ident
	} else if r.Request == 'C' || r.Request == 'R' {
		r.Console = r.Ident
	}
	o.setMsgID()
	if l.Type != 'M' {
		j.last = nil
		r.Complete = true
		return []HardcopyRecord{o.finish()}
	}
	if k := strings.LastIndexByte(r.Text, ' '); isLineID(r.Text[k+1:]) {
		o.tail = r.Text[k+1:]
	}
	var out []HardcopyRecord
	// A new message with the line ID of an open one from the same system:
	// the line ID was reused, the old message will get no more lines.
	for _, p := range j.open {
		if p.confirmed && p.rec.LineID == o.tail && p.rec.System == r.System {
			out = append(out, j.close(p, false))
			break
		}
	}
	if len(j.open) >= j.cfg.MaxOpen {
		out = append(out, j.close(j.open[0], false))
	}
	j.open = append(j.open, o)
	j.last = o
	if j.cfg.MaxLines <= 1 {
		out = append(out, j.close(o, false))
	}
	return out
}

// find returns the open message a continuation line belongs to, or nil.
func (j *HardcopyJoiner) find(l HardcopyLine) *openRecord {
	if l.LineID == "" {
		return j.last // S (or a line ID missing): the previous line's message
	}
	if j.last != nil && j.last.confirmed && j.last.rec.LineID == l.LineID {
		return j.last
	}
	for i := len(j.open) - 1; i >= 0; i-- {
		if o := j.open[i]; o.confirmed && o.rec.LineID == l.LineID {
			return o
		}
	}
	// The first continuation line: the newest message whose first line
	// ends with this line ID, else the message whose first line came just
	// before, if that line does not end with another number (a line ID).
	for i := len(j.open) - 1; i >= 0; i-- {
		if o := j.open[i]; !o.confirmed && o.tail == l.LineID {
			return o
		}
	}
	if j.last != nil && !j.last.confirmed && j.last.rec.Lines == 1 && j.last.tail == "" {
		return j.last
	}
	return nil
}

// close removes o from the open messages and returns its record.
func (j *HardcopyJoiner) close(o *openRecord, complete bool) HardcopyRecord {
	for i, p := range j.open {
		if p == o {
			j.open = append(j.open[:i], j.open[i+1:]...)
			break
		}
	}
	if j.last == o {
		j.last = nil
	}
	o.rec.Complete = complete
	return o.finish()
}

func (o *openRecord) finish() HardcopyRecord {
	r := o.rec
	r.Text += o.text.String()
	return r
}

func (o *openRecord) setMsgID() {
	o.rec.MsgID, o.rec.ReplyID, o.rec.Action = HardcopyMsgID(o.rec.Text)
	if o.rec.Type == 'W' {
		o.rec.Action = true
	}
}

// Flush gives out the messages still waiting for their end line, oldest
// first, as incomplete records. A reader calls it at the end of its input;
// a live feed when its source has been quiet for a while.
func (j *HardcopyJoiner) Flush() []HardcopyRecord {
	var out []HardcopyRecord
	for len(j.open) > 0 {
		out = append(out, j.close(j.open[0], false))
	}
	j.last = nil
	return out
}

// Open returns the number of messages waiting for their end line.
func (j *HardcopyJoiner) Open() int { return len(j.open) }

// HardcopyMsgID returns the message ID a hardcopy message text starts with,
// the reply ID before it and whether the text is marked as an action
// message. A leading '*' or '@' marks an action message or WTOR; a leading
// '-' or '+' (command echo, CICS) is skipped. A first word of 1 to 4 digits
// is a reply ID when a message ID follows it (or the text is marked). A message
// ID is an optional '$', 3 to 5 letters or national characters, 3 to 5
// digits and an optional type letter: IEF403I, $HASP373, IXC418I, HZS0344I,
// CSQ9022I, DFHSI1517. Anything else (a command echo such as "D A,L") has
// no message ID.
func HardcopyMsgID(text string) (msgid, replyID string, action bool) {
	t := strings.TrimLeft(text, " ")
	if t != "" && (t[0] == '*' || t[0] == '@') {
		action = true
		t = t[1:]
	} else if t != "" && (t[0] == '-' || t[0] == '+') {
		t = t[1:]
	}
	w, end := nextWord(t, 0)
	if len(w) <= 4 && allDigits(w) {
		if id, _ := nextWord(t, end); isMsgID(id) {
			return id, w, action
		}
		if action {
			return "", w, action
		}
	}
	if isMsgID(w) {
		return w, "", action
	}
	return "", "", action
}

// isMsgID reports whether w has the form of a z/OS message ID (see
// HardcopyMsgID).
func isMsgID(w string) bool {
	w = strings.TrimPrefix(w, "$")
	i := 0
	for i < len(w) && ('A' <= w[i] && w[i] <= 'Z' || w[i] == '$' || w[i] == '#' || w[i] == '@') {
		i++
	}
	if i < 3 || i > 5 {
		return false
	}
	d := i
	for i < len(w) && '0' <= w[i] && w[i] <= '9' {
		i++
	}
	if i-d < 3 || i-d > 5 {
		return false
	}
	if i < len(w) && 'A' <= w[i] && w[i] <= 'Z' {
		i++
	}
	return i == len(w)
}

// isJobID reports whether s has the form of a JES job ID: JOB, STC or TSU
// and 5 digits, or J, S or T and 7 digits.
func isJobID(s string) bool {
	switch {
	case len(s) == 8 && (strings.HasPrefix(s, "JOB") || strings.HasPrefix(s, "STC") || strings.HasPrefix(s, "TSU")):
		return allDigits(s[3:])
	case len(s) == 8 && (s[0] == 'J' || s[0] == 'S' || s[0] == 'T'):
		return allDigits(s[1:])
	}
	return false
}

// HardcopyLineError is a line HardcopyReader skipped: its number (from 1),
// its text and why.
type HardcopyLineError struct {
	Line int
	Text string
	Err  error
}

func (e *HardcopyLineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }

func (e *HardcopyLineError) Unwrap() error { return e.Err }

// HardcopyReader reads hardcopy records from a saved log: one line a line
// (LF or CRLF), blank lines ignored, a UTF-8 byte order mark at the start
// dropped.
type HardcopyReader struct {
	r       *bufio.Reader
	j       *HardcopyJoiner
	line    int
	pending []HardcopyRecord
	eof     bool
	err     error
}

// NewHardcopyReader returns a reader of r joining lines as a
// HardcopyJoiner with cfg does.
func NewHardcopyReader(r io.Reader, cfg HardcopyConfig) (*HardcopyReader, error) {
	j, err := NewHardcopyJoiner(cfg)
	if err != nil {
		return nil, err
	}
	return &HardcopyReader{r: bufio.NewReaderSize(r, 64<<10), j: j}, nil
}

// Next returns the next record. A line it skips (it does not parse, is a
// continuation of no message, or is longer than MaxHardcopyLine) returns a
// *HardcopyLineError, after which Next may be called again; at the end of
// the input, after the messages left open (Complete false), it returns
// io.EOF; a read error is returned as it is, and again on every later call.
func (h *HardcopyReader) Next() (HardcopyRecord, error) {
	for {
		if len(h.pending) > 0 {
			r := h.pending[0]
			h.pending = h.pending[1:]
			return r, nil
		}
		if h.err != nil {
			return HardcopyRecord{}, h.err
		}
		if h.eof {
			return HardcopyRecord{}, io.EOF
		}
		line, tooLong, err := h.readLine()
		if err == io.EOF {
			h.eof = true
			h.pending = h.j.Flush()
			if line == "" {
				continue
			}
		} else if err != nil {
			h.err = err
			continue
		}
		h.line++
		if h.line == 1 {
			line = strings.TrimPrefix(line, "\ufeff")
		}
		if tooLong {
			return HardcopyRecord{}, &HardcopyLineError{Line: h.line, Text: line[:min(len(line), 80)], Err: ErrHardcopyTooLong}
		}
		if strings.TrimSpace(line) == "" {
			continue
		}
		recs, err := h.j.Add(line)
		h.pending = append(h.pending, recs...)
		if err != nil {
			return HardcopyRecord{}, &HardcopyLineError{Line: h.line, Text: line, Err: err}
		}
	}
}

// readLine reads a line without its LF (or CRLF). A line longer than
// MaxHardcopyLine is read to its end and returned cut, with tooLong.
func (h *HardcopyReader) readLine() (line string, tooLong bool, err error) {
	var b []byte
	for {
		frag, e := h.r.ReadSlice('\n')
		if len(b)+len(frag) > MaxHardcopyLine+2 {
			tooLong = true
			if len(b) < MaxHardcopyLine {
				b = append(b, frag[:MaxHardcopyLine-len(b)]...)
			}
		} else {
			b = append(b, frag...)
		}
		if e == bufio.ErrBufferFull {
			continue
		}
		if e == nil || e == io.EOF {
			if e == io.EOF && len(b) > 0 {
				e = nil // the last line had no LF; EOF comes on the next call
			}
			s := strings.TrimSuffix(string(b), "\n")
			return strings.TrimSuffix(s, "\r"), tooLong, e
		}
		return "", false, e
	}
}
