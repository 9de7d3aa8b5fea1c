package flood

import (
	"cmp"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/zbridge/zbridge/protocol"
)

// summary is what one source held back in one interval.
type summary struct {
	key             srcKey
	held            uint64
	by              [numReasons]uint64 // held, by the limit that held them
	firstAt, lastAt int64
	first, last     string
	ids             []idCount // most held back first
	otherIDs        int       // IDs held back beyond those in ids
	otherHeld       uint64    // and their events
}

type idCount struct {
	id   string
	held uint64
}

// facSyslog is the syslog facility "messages generated internally by
// syslogd" (RFC 5424 facility 5): the summaries are the intake's own.
const facSyslog protocol.Facility = 5

// snapshotLocked takes s's summary and starts its next interval.
func (l *Limiter) snapshotLocked(s *source) summary {
	sum := summary{key: s.key, held: s.held, by: s.by, firstAt: s.firstAt, lastAt: s.lastAt,
		first: s.first.String(), last: s.last.String()}
	for id, m := range s.ids {
		if m.held > 0 {
			sum.ids = append(sum.ids, idCount{id, m.held})
			m.held = 0
		}
	}
	if s.other.held > 0 {
		sum.ids = append(sum.ids, idCount{Overflow, s.other.held})
		s.other.held = 0
	}
	slices.SortFunc(sum.ids, func(a, b idCount) int {
		if c := cmp.Compare(b.held, a.held); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	if len(sum.ids) > topIDs {
		for _, c := range sum.ids[topIDs:] {
			sum.otherIDs++
			sum.otherHeld += c.held
		}
		sum.ids = sum.ids[:topIDs]
	}
	s.held, s.by, s.firstAt, s.lastAt = 0, [numReasons]uint64{}, 0, 0
	s.first, s.last = text{}, text{}
	return sum
}

// String returns the text kept, with "…" after it when it was cut (a
// character cut in two at the end is dropped).
func (t *text) String() string {
	s := string(t.b[:t.n])
	if !t.cut {
		return s
	}
	for i := len(s) - 1; i >= 0 && i >= len(s)-utf8.UTFMax; i-- {
		if utf8.RuneStart(s[i]) {
			if !utf8.FullRuneInString(s[i:]) {
				s = s[:i]
			}
			break
		}
	}
	return s + "…"
}

// summaryEvent makes s's event, appended at now.
func (l *Limiter) summaryEvent(s *summary, now int64) *protocol.Event {
	t := l.at(now).UTC()
	var b strings.Builder
	b.WriteString(SummaryMsgID)
	b.WriteString(" FLOOD CONTROL HELD BACK ")
	b.WriteString(strconv.FormatUint(s.held, 10))
	b.WriteString(" EVENTS FROM ")
	switch {
	case s.key.addr == Overflow:
		b.WriteString("* AT * (SOURCES BEYOND THE TABLE'S ")
		b.WriteString(strconv.Itoa(l.cfg.MaxSources))
		b.WriteString(")")
	case s.key.host == Overflow:
		b.WriteString("* (HOST NAMES BEYOND ")
		b.WriteString(strconv.Itoa(l.cfg.MaxHostsPerAddr))
		b.WriteString(" OF ONE ADDRESS OR THE TABLE'S ")
		b.WriteString(strconv.Itoa(l.cfg.MaxSources))
		b.WriteString(") AT ")
		b.WriteString(word(s.key.addr))
	default:
		b.WriteString(word(s.key.host))
		b.WriteString(" AT ")
		b.WriteString(word(s.key.addr))
	}
	b.WriteString(" BETWEEN ")
	b.WriteString(l.at(s.firstAt).UTC().Format("15:04:05.000"))
	b.WriteString(" AND ")
	b.WriteString(l.at(s.lastAt).UTC().Format("15:04:05.000"))
	b.WriteString(" UTC (LIMITS")
	sep := " "
	for _, lim := range [...]struct {
		rate  float64
		burst int
		per   string
	}{
		{l.rate, l.cfg.Burst, "HOST"},
		{l.idRate, l.cfg.MsgIDBurst, "MESSAGE ID"},
		{l.addrRate, l.cfg.AddrBurst, "ADDRESS"},
	} {
		if lim.rate > 0 {
			b.WriteString(sep)
			b.WriteString(strconv.FormatFloat(lim.rate, 'g', -1, 64))
			b.WriteString("/S BURST ")
			b.WriteString(strconv.Itoa(lim.burst))
			b.WriteString(" PER ")
			b.WriteString(lim.per)
			sep = ", "
		}
	}
	b.WriteString("); BY LIMIT")
	for _, r := range [...]struct {
		why  reason
		name string
	}{{bySource, "HOST"}, {byMsgID, "MESSAGE-ID"}, {byAddr, "ADDRESS"}} {
		if n := s.by[r.why]; n > 0 {
			b.WriteByte(' ')
			b.WriteString(r.name)
			b.WriteByte('=')
			b.WriteString(strconv.FormatUint(n, 10))
		}
	}
	b.WriteString("; TOP IDS")
	for _, c := range s.ids {
		b.WriteByte(' ')
		if c.id == "" {
			b.WriteString("-")
		} else {
			b.WriteString(word(c.id))
		}
		b.WriteByte('=')
		b.WriteString(strconv.FormatUint(c.held, 10))
	}
	if s.otherIDs > 0 {
		b.WriteString(" AND ")
		b.WriteString(strconv.Itoa(s.otherIDs))
		b.WriteString(" MORE=")
		b.WriteString(strconv.FormatUint(s.otherHeld, 10))
	}
	b.WriteString("; FIRST ")
	b.WriteString(strconv.Quote(s.first))
	b.WriteString("; LAST ")
	b.WriteString(strconv.Quote(s.last))
	host, addr := s.key.host, s.key.addr
	if addr == Overflow {
		addr = ""
	} else if p, err := netip.ParsePrefix(addr); err == nil {
		// An IPv6 /64's overflow source: its address, which an addr
		// filter on the /64 matches (the text names the /64).
		addr = p.Addr().String()
	}
	return &protocol.Event{
		Received: t,
		Time:     t,
		Origin:   protocol.Origin{System: host, Host: host, Addr: addr},
		Source:   protocol.SourceRegion,
		MsgID:    SummaryMsgID,
		Facility: facSyslog,
		Severity: protocol.SevWarning,
		Text:     b.String(),
		Parsed:   true,
	}
}

// word returns s as it is when it is printable ASCII without blanks,
// quotes, '=' or ';', else quoted: a claimed name cannot change how the
// summary reads.
func word(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c > '~' || c == '"' || c == '=' || c == ';' || c == '\\' {
			return strconv.Quote(s)
		}
	}
	if s == "" {
		return `""`
	}
	return s
}
