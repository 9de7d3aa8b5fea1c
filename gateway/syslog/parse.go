package syslog

import (
	"net/netip"
	"strings"
	"time"

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
	filledZone     = "zone"
	filledAll      = "all"
)

// A Parser turns syslog messages into events, reading them as rsyslog does
// (see header.go), and allocates events in slabs. A Parser is not safe for
// concurrent use: the server keeps one per connection (and one for each
// packet listener).
type Parser struct {
	loc *time.Location

	addr    netip.Addr
	addrStr string // addr as text, "" when unknown

	zoneOff int            // the offset of the last zone made
	zone    *time.Location // nil until one is made

	events []protocol.Event
	times  []time.Time
	slab   int // size of the last events slab
	tslab  int // size of the last times slab
}

// NewParser returns a Parser. loc is the zone assumed for RFC 3164
// timestamps, which carry none (nil means UTC).
func NewParser(loc *time.Location) *Parser {
	if loc == nil {
		loc = time.UTC
	}
	return &Parser{loc: loc}
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
// event: one that does not parse has Parsed false, ParseError set (what was
// expected, with the column) and Text the whole message; the fields read
// before the error are kept. Raw is the frame as given.
//
// RFC 5424 is recognised by "<PRI>1 "; anything else is read as RFC 3164,
// which rsyslog reads every message as. Trailing LF, CR and NUL bytes are
// not part of the message (rsyslog drops a trailing LF on reception too). A
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
	raw := string(frame) // the one copy; every field is a substring of it

	ev.Received = received
	ev.Source = protocol.SourceSyslog
	ev.Raw = raw
	ev.Origin.Addr = p.addrStr
	ev.Origin.Host, ev.Origin.System = p.addrStr, p.addrStr
	ev.Facility, ev.Severity = protocol.FacUser, protocol.SevNotice // RFC 3164 4.3.3: PRI 13
	ev.Time, ev.TimeFilled = received, filledAll

	field := func(b [2]int) string { return raw[b[0]:b[1]] }
	setHost := func(b [2]int) {
		if b[1] > b[0] {
			ev.Origin.Host = field(b)
			ev.Origin.System = ev.Origin.Host
		}
	}
	fail := func(err error) {
		ev.ParseError = err.Error()
		ev.Text = raw[:n]
	}

	pri, i, ok := readPRI(in)
	if !ok {
		// rsyslog reads nothing more either: the whole message is MSG.
		fail(&errorAt{"expecting a priority value within angle brackets", 0})
		return
	}
	if pri >= 0 {
		ev.Facility, ev.Severity = protocol.Facility(pri>>3), protocol.Severity(pri&7)
	}

	if pri >= 0 && isRFC5424(in) {
		h, err := readHeader5424(in, i+2)
		if h.hasTime {
			p.setTime(ev, h.ts, received)
		}
		setHost(h.host)
		ev.App, ev.ProcID, ev.MsgID = field(h.app), field(h.procID), field(h.msgID)
		if err != nil {
			fail(err)
			return
		}
		if h.sd[1] > h.sd[0] {
			// Structured data that reads as elements but breaks RFC 5424's
			// stricter rules (a name too long, an SD-ID twice) stays in Raw
			// only: rsyslog relays such a message too.
			ev.SD, _ = structuredData(in)
			ev.SD = disown(ev.SD)
		}
		ev.Parsed = true
		ev.Text = strings.TrimPrefix(raw[h.msg:n], "\ufeff")
		return
	}

	h := readHeader3164(in, i)
	if pri < 0 && !h.hasTime {
		// Neither priority nor timestamp: rsyslog would take the first
		// word for a hostname and the second for a tag; zbridge keeps the
		// line whole, as rsyslog's detect.headerless option does.
		fail(&errorAt{"no priority and no timestamp: not a syslog header", 0})
		return
	}
	if h.hasTime {
		p.setTime(ev, h.ts, received)
	}
	setHost(h.host)
	tag := in[h.tag[0]:h.tag[1]]
	ev.App = raw[h.tag[0] : h.tag[0]+programName(tag)]
	if s, e, ok := procID(tag); ok {
		ev.ProcID = raw[h.tag[0]+s : h.tag[0]+e]
	}
	msg := h.msg
	if msg < n && in[msg] == ' ' { // rsyslog's MSG keeps the space after the tag
		msg++
	}
	ev.Parsed = true
	ev.Text = strings.TrimPrefix(raw[msg:n], "\ufeff")
}

// setTime sets the event's times from a timestamp read: an RFC 3339 one in
// its own zone, an RFC 3164 one in the parser's zone and, when it has none,
// the year of the receive time (see fillYear).
func (p *Parser) setTime(ev *protocol.Event, st stamp, received time.Time) {
	t := p.stampTime(st, received)
	if y := t.UTC().Year(); y < 1 || y > 9999 {
		// "0-1-1T0:0:0+01:00" is year 0 in UTC, "9999-12-31T23:59:59-01:00"
		// year 10000: no RFC 3339 time can say them, so no client could
		// read the event. The receive time stands instead.
		return
	}
	ot := p.time()
	*ot = t
	ev.OriginTime = ot
	ev.Time = t.UTC()
	ev.TimeFilled = ""
	switch {
	case st.rfc3339:
	case st.yearGiven:
		ev.TimeFilled = filledZone
	default:
		ev.TimeFilled = filledYearZone
	}
}

// stampTime is the time a stamp says (see setTime).
func (p *Parser) stampTime(st stamp, received time.Time) time.Time {
	switch {
	case st.rfc3339:
		loc := time.UTC
		if !st.utc {
			loc = p.fixedZone(st.offset)
		}
		return time.Date(st.year, time.Month(st.month), st.day, st.hour, st.minute, st.sec, st.nsec, loc)
	case st.yearGiven:
		return time.Date(st.year, time.Month(st.month), st.day, st.hour, st.minute, st.sec, st.nsec, p.loc)
	default:
		return p.fillYear(st, received)
	}
}

// fixedZone returns a zone at offset seconds east of UTC, reusing the last
// one made: a sender keeps its offset.
func (p *Parser) fixedZone(offset int) *time.Location {
	if p.zone == nil || p.zoneOff != offset {
		p.zone, p.zoneOff = time.FixedZone("", offset), offset
	}
	return p.zone
}

// isRFC5424 reports whether in starts "<PRI>1 ": RFC 5424's version 1, the
// only one rsyslog reads as RFC 5424 (any other goes to its RFC 3164
// parser, and so here).
func isRFC5424(in []byte) bool {
	_, i, ok := readPRI(in)
	return ok && i > 0 && i+1 < len(in) && in[i] == '1' && in[i+1] == ' '
}

// fillYear gives an RFC 3164 timestamp (month, day and time only) the
// year of the receive time and the parser's zone. Around New Year the year
// is moved: a date more than a day ahead of the receive time is taken to be
// from the year before (a December message received in January), and a
// date in the next year no more than a day ahead of it from the next year (a
// sender whose clock is a little ahead at midnight on December 31). rsyslog
// takes the receive year always (PARSING.md).
func (p *Parser) fillYear(st stamp, received time.Time) time.Time {
	year := received.In(p.loc).Year()
	at := func(y int) time.Time {
		// Feb 29 in a year that has none becomes Mar 1 (time.Date
		// normalises, as rsyslog's conversion to seconds does).
		return time.Date(y, time.Month(st.month), st.day, st.hour, st.minute, st.sec, st.nsec, p.loc)
	}
	c := at(year)
	switch {
	case c.Sub(received) > 24*time.Hour:
		c = at(year - 1)
	case st.month == 1 && received.In(p.loc).Month() == time.December:
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
