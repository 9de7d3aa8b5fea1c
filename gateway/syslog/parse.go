package syslog

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	gosyslog "github.com/leodido/go-syslog/v4"
	"github.com/leodido/go-syslog/v4/rfc3164"
	"github.com/leodido/go-syslog/v4/rfc5424"

	"github.com/zbridge/zbridge/protocol"
)

// maxSlab is the most events (and origin timestamps) a Parser allocates at
// once. A slab stays in memory while any of its events is retained, so a
// Parser starts with slabs of one and doubles them as it parses more: a
// connection that sends one message holds one event's memory, a busy one
// allocates 128 at a time (events are trimmed in arrival order, so a busy
// connection's slabs are freed whole).
const maxSlab = 128

// Time fill markers (protocol.Event.TimeFilled).
const (
	filledYearZone = "year,zone"
	filledAll      = "all"
)

// A Parser turns syslog messages into events. It holds one RFC 5424 and one
// RFC 3164 machine of github.com/leodido/go-syslog (both in best-effort mode)
// and allocates events in slabs. A Parser is not safe for concurrent use:
// the server keeps one per connection (and one for each packet listener).
type Parser struct {
	loc   *time.Location
	m5424 gosyslog.Machine
	m3164 gosyslog.Machine

	addr    netip.Addr
	addrStr string // addr as text, "" when unknown

	scratch []byte // RFC 3164 input with a fractional second cut out
	events  []protocol.Event
	times   []time.Time
	slab    int // size of the last events slab
	tslab   int // size of the last times slab
}

// NewParser returns a Parser. loc is the zone assumed for RFC 3164
// timestamps, which carry none (nil means UTC).
func NewParser(loc *time.Location) *Parser {
	if loc == nil {
		loc = time.UTC
	}
	return &Parser{
		loc:   loc,
		m5424: rfc5424.NewMachine(rfc5424.WithBestEffort()),
		m3164: rfc3164.NewMachine(
			rfc3164.WithBestEffort(),
			rfc3164.WithRFC3339(),          // rsyslog's RSYSLOG_ForwardFormat
			rfc3164.WithSecondFractions(),  // "Jan  2 15:04:05.000"
			rfc3164.WithLenientDay(),       // "Jan 02", as some devices write
			rfc3164.WithEmbeddedNewlines(), // octet counting carries them
		),
	}
}

// SetSender sets the address the following messages came from: it becomes
// Origin.Addr, and Origin.Host when a message names no host. The zero Addr
// means unknown.
func (p *Parser) SetSender(addr netip.Addr) {
	addr = addr.Unmap()
	if addr == p.addr && (p.addrStr != "") == addr.IsValid() {
		return
	}
	p.addr, p.addrStr = addr, ""
	if addr.IsValid() {
		p.addrStr = addr.String()
	}
}

// Parse returns the event for one syslog message (a frame without its
// framing, or a datagram), received at the given time. It always returns an
// event: one that does not parse has Parsed false, ParseError set (the
// parser's message, with the column) and Text the whole message; the fields
// the parser could read before the error are kept. Raw is the frame as given.
//
// RFC 5424 is recognised by the version after the PRI ("<PRI>1 "); anything
// else goes to the RFC 3164 parser. Trailing LF, CR and NUL bytes are not
// part of the message (rsyslog drops a trailing LF on reception too). A
// UTF-8 BOM at the start of MSG is dropped from Text.
func (p *Parser) Parse(frame []byte, received time.Time) *protocol.Event {
	ev := p.event()
	p.parse(ev, frame, received)
	return ev
}

// ParseIncomplete returns the event for bytes that are not a whole message:
// the stream ended inside a frame, or the frame was too large and only its
// beginning was kept. The bytes are parsed as far as they go, but the event
// has Parsed false and ParseError starting with cause's text.
func (p *Parser) ParseIncomplete(frame []byte, received time.Time, cause error) *protocol.Event {
	ev := p.event()
	p.parse(ev, frame, received)
	ev.Parsed = false
	if ev.ParseError == "" {
		ev.ParseError = cause.Error()
	} else {
		ev.ParseError = cause.Error() + "; " + ev.ParseError
	}
	ev.Text = trimEnd(ev.Raw)
	return ev
}

func (p *Parser) parse(ev *protocol.Event, frame []byte, received time.Time) {
	received = received.UTC()
	in := trimEnd(frame)
	n := len(in)
	raw := string(frame) // the one copy; Text is a substring of it

	ev.Received = received
	ev.Source = protocol.SourceSyslog
	ev.Raw = raw
	ev.Origin.Addr = p.addrStr
	ev.Facility, ev.Severity = protocol.FacUser, protocol.SevNotice // RFC 3164 4.3.3: PRI 13

	var (
		msg     gosyslog.Message
		err     error
		is5424  = isRFC5424(in)
		rfc3339 bool          // an RFC 3164 message with an RFC 3339 timestamp
		frac    time.Duration // fractional second cut out of it
	)
	if is5424 {
		msg, err = p.m5424.Parse(in)
	} else {
		msg, rfc3339, frac, err = p.parse3164(in)
	}
	var b *gosyslog.Base
	switch m := msg.(type) {
	case *rfc5424.SyslogMessage:
		if m != nil {
			b = &m.Base
		}
	case *rfc3164.SyslogMessage:
		if m != nil {
			b = &m.Base
		}
	}

	host := p.addrStr
	text, textOK := "", is5424 // RFC 5424 MSG is optional; RFC 3164 MSG is not
	if b != nil {
		// A priority the machine read part of ("<189 Feb …", no '>') is no
		// priority: the message keeps user.notice, as one without any.
		if b.Facility != nil && b.Severity != nil && wellFormedPRI(in) {
			ev.Facility, ev.Severity = protocol.Facility(*b.Facility), protocol.Severity(*b.Severity)
		}
		if b.Hostname != nil {
			host = *b.Hostname
		}
		ev.App = deref(b.Appname)
		ev.ProcID = deref(b.ProcID)
		ev.MsgID = deref(b.MsgID)
		if b.Timestamp != nil {
			t := *b.Timestamp
			switch {
			case !is5424 && !rfc3339:
				t = p.fillYearZone(t, received)
				ev.TimeFilled = filledYearZone
			case frac > 0:
				t = t.Add(frac)
			}
			ot := p.time()
			*ot = t
			ev.OriginTime = ot
			ev.Time = t.UTC()
		}
		if b.Message != nil {
			m := *b.Message
			textOK = len(m) <= n && raw[n-len(m):n] == m
			if textOK {
				text = raw[n-len(m) : n]
			}
		}
		if !is5424 && err == nil && textOK && b.Appname != nil {
			// go-syslog's RFC 3164 machine gives an empty MSG a piece of
			// the tag ("app[1]: " → "1]: ") and keeps a tag whose colon has
			// no space after it in MSG ("app:x" → "app:x"): MSG is what
			// follows the tag, its colon and one space, as rsyslog reads it.
			if at, ok := afterTag(in, deref(b.Hostname), *b.Appname, deref(b.ProcID)); ok {
				text, textOK = raw[at:n], true
			}
		}
	}
	if ev.OriginTime == nil {
		ev.Time = received
		ev.TimeFilled = filledAll
	}
	ev.Origin.Host, ev.Origin.System = host, host

	switch {
	case err != nil:
		ev.ParseError = err.Error()
	case b == nil || !textOK:
		// go-syslog's RFC 3164 machine can stop on a byte its grammar has
		// no error action for (a control character in MSG) and then reports
		// no error and no message: say where it stopped.
		ev.ParseError = stoppedError(in, is5424)
	default:
		ev.Parsed = true
		ev.Text = strings.TrimPrefix(text, "\ufeff")
		return
	}
	ev.Text = raw[:n]
}

// parse3164 runs the RFC 3164 machine. go-syslog's RFC 3164 grammar accepts
// an RFC 3339 timestamp only without fractional seconds, while rsyslog's
// RSYSLOG_ForwardFormat sends microseconds: the fraction is cut out of a
// copy of the input, the copy parsed, and the fraction returned to be added
// to the timestamp (error columns are moved back to the input's).
func (p *Parser) parse3164(in []byte) (msg gosyslog.Message, rfc3339 bool, frac time.Duration, err error) {
	pos := 0
	if i := indexByte(in[:min(len(in), 5)], '>'); i > 0 && in[0] == '<' {
		pos = i + 1
		for pos < len(in) && in[pos] == ' ' {
			pos++
		}
	}
	rfc3339 = pos > 0 && pos < len(in) && isDigit(in[pos])
	// 2006-01-02T15:04:05.999999...
	dot := pos + 19
	if !rfc3339 || len(in) <= dot+1 || in[pos+10] != 'T' || in[dot] != '.' || !isDigit(in[dot+1]) {
		msg, err = p.m3164.Parse(in)
		return msg, rfc3339, 0, err
	}
	end := dot + 1
	scale := time.Duration(1e8)
	for ; end < len(in) && isDigit(in[end]); end++ {
		frac += time.Duration(in[end]-'0') * scale
		scale /= 10
	}
	p.scratch = append(append(p.scratch[:0], in[:dot]...), in[end:]...)
	msg, err = p.m3164.Parse(p.scratch)
	if err != nil {
		err = shiftColumn(err, dot, end-dot)
	}
	return msg, true, frac, err
}

// shiftColumn moves the " [col N]" at the end of a go-syslog error by add
// when N >= at.
func shiftColumn(err error, at, add int) error {
	s := err.Error()
	i := strings.LastIndex(s, " [col ")
	if i < 0 || !strings.HasSuffix(s, "]") {
		return err
	}
	col, e := strconv.Atoi(s[i+len(" [col ") : len(s)-1])
	if e != nil || col < at {
		return err
	}
	return errors.New(s[:i] + " [col " + strconv.Itoa(col+add) + "]")
}

// wellFormedPRI reports whether in starts with "<" one to three digits
// and ">".
func wellFormedPRI(in []byte) bool {
	i := 1
	for i < len(in) && i <= 3 && isDigit(in[i]) {
		i++
	}
	return len(in) > 0 && in[0] == '<' && i > 1 && i < len(in) && in[i] == '>'
}

// afterTag returns where MSG starts in an RFC 3164 message whose tag was
// read as app (with procid, when there is one): after the first "app"
// that follows the host name, its "[procid]", a colon and one space.
func afterTag(in []byte, host, app, procid string) (int, bool) {
	start := 0
	if host != "" {
		i := bytes.Index(in, []byte(host+" "))
		if i < 0 {
			return 0, false
		}
		start = i + len(host) + 1
	}
	i := bytes.Index(in[start:], []byte(app))
	if app == "" || i < 0 {
		return 0, false
	}
	at := start + i + len(app)
	if procid != "" {
		tag := "[" + procid + "]"
		if !bytes.HasPrefix(in[at:], []byte(tag)) {
			return 0, false
		}
		at += len(tag)
	}
	if at >= len(in) || in[at] != ':' {
		return 0, false
	}
	at++
	if at < len(in) && in[at] == ' ' {
		at++
	}
	return at, true
}

// stoppedError describes a parse that ended with neither a message nor an
// error, at the first byte the grammars do not accept in MSG.
func stoppedError(in []byte, is5424 bool) string {
	format := "RFC 3164"
	if is5424 {
		format = "RFC 5424"
	}
	for i, c := range in {
		if c < 0x20 && c != '\t' && c != '\n' && c != '\r' || c == 0x7f {
			return fmt.Sprintf("syslog: %s parser stopped at control character %#02x [col %d]", format, c, i)
		}
	}
	return fmt.Sprintf("syslog: %s parser returned no message [col %d]", format, len(in))
}

// fillYearZone gives an RFC 3164 timestamp (month, day and time only) the
// year of the receive time and the parser's zone. Around New Year the year
// is moved: a date more than a day ahead of the receive time is taken to be
// from the year before (a December message received in January), and a
// date in the next year no more than a day ahead of it from the next year (a
// sender whose clock is a little ahead at midnight on December 31).
func (p *Parser) fillYearZone(t, received time.Time) time.Time {
	year := received.In(p.loc).Year()
	at := func(y int) time.Time {
		// Feb 29 in a year that has none becomes Mar 1 (time.Date normalises).
		return time.Date(y, t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), p.loc)
	}
	c := at(year)
	switch {
	case c.Sub(received) > 24*time.Hour:
		c = at(year - 1)
	case t.Month() == time.January && received.In(p.loc).Month() == time.December:
		if next := at(year + 1); next.Sub(received) <= 24*time.Hour {
			c = next
		}
	}
	return c
}

func (p *Parser) event() *protocol.Event {
	if len(p.events) == 0 {
		p.slab = min(max(1, 2*p.slab), maxSlab)
		p.events = make([]protocol.Event, p.slab)
	}
	ev := &p.events[0]
	p.events = p.events[1:]
	return ev
}

func (p *Parser) time() *time.Time {
	if len(p.times) == 0 {
		p.tslab = min(max(1, 2*p.tslab), maxSlab)
		p.times = make([]time.Time, p.tslab)
	}
	t := &p.times[0]
	p.times = p.times[1:]
	return t
}

// isRFC5424 reports whether in starts "<PRI>VERSION SP", VERSION being
// 1 to 3 digits not starting with 0 (RFC 5424 section 6).
func isRFC5424(in []byte) bool {
	if len(in) < 4 || in[0] != '<' {
		return false
	}
	i := 1
	for i < len(in) && i <= 3 && isDigit(in[i]) {
		i++
	}
	if i == 1 || i >= len(in) || in[i] != '>' {
		return false
	}
	i++
	j := i
	for j < len(in) && j-i < 3 && isDigit(in[j]) {
		j++
	}
	return j > i && in[i] != '0' && j < len(in) && in[j] == ' '
}

// trimEnd drops trailing LF, CR and NUL bytes.
func trimEnd[T ~string | ~[]byte](b T) T {
	for len(b) > 0 {
		switch b[len(b)-1] {
		case '\n', '\r', 0:
			b = b[:len(b)-1]
		default:
			return b
		}
	}
	return b
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
