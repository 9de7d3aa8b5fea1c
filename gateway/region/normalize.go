package region

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/zbridge/zbridge/gateway/syslog"
	"github.com/zbridge/zbridge/protocol"
	"github.com/zbridge/zbridge/zos"
)

// TimeField names a structured-data parameter that carries an event's time
// in a mainframe or other form (package zos: stck, stcke, filetime,
// unix-ms, julian, ...): the region takes the event's time from it, in
// UTC, and keeps the original (the parameter stays in the event's SD, and
// OriginTime holds the time it gives).
type TimeField struct {
	SDID, Param string
	Kind        zos.TimeKind
}

// ParseTimeField reads sd.ID.PARAM=KIND (the ID may hold dots: the key is
// split at its last one), as --time-field takes it.
func ParseTimeField(s string) (TimeField, error) {
	k, kind, ok := strings.Cut(s, "=")
	name, found := strings.CutPrefix(k, "sd.")
	dot := strings.LastIndexByte(name, '.')
	if !ok || !found || dot <= 0 || dot == len(name)-1 {
		return TimeField{}, fmt.Errorf("time field %q is not sd.ID.PARAM=KIND", s)
	}
	var f TimeField
	f.SDID, f.Param = name[:dot], name[dot+1:]
	if err := f.Kind.UnmarshalText([]byte(kind)); err != nil {
		return TimeField{}, fmt.Errorf("time field %q: %w", s, err)
	}
	return f, nil
}

// normalizer rewrites syslog events before flood control and the store:
// an event's time from a configured structured-data field, and a z/OS
// hardcopy log line sent as a message's text (z/OS syslogd forwarding
// SYSLOG or OPERLOG) into its message ID, system, time and text.
//
// On the syslog path each hardcopy line stays an event of its own: the
// region never holds an event back waiting for the next. A continuation
// line of a multi-line message gets the message ID of its first line
// (matched by the line ID, per sending host, among the last
// maxOpenMultiline first lines); `zbridge zoslog` joins the lines of a
// saved log into one event per message.
type normalizer struct {
	next     syslog.Appender
	fields   []TimeField
	opts     zos.TimeOptions
	hardcopy bool
	loc      *time.Location

	mu    sync.Mutex
	lines map[string]string // host + "\x00" + line ID → the first line's message ID
	order []string          // keys of lines, oldest first
}

// maxOpenMultiline bounds the first lines of multi-line messages the
// normalizer remembers (each ~100 bytes): a sender cannot grow it.
const maxOpenMultiline = 4096

func (n *normalizer) Append(ctx context.Context, evs []*protocol.Event) error {
	for _, e := range evs {
		if e.Source != protocol.SourceSyslog {
			continue
		}
		if n.hardcopy {
			n.readHardcopy(e)
		}
		n.readTime(e)
	}
	return n.next.Append(ctx, evs)
}

// readTime takes e's time from the first configured field it carries.
func (n *normalizer) readTime(e *protocol.Event) {
	if len(n.fields) == 0 || len(e.SD) == 0 {
		return
	}
	for _, f := range n.fields {
		for _, el := range e.SD {
			if el.ID != f.SDID {
				continue
			}
			for _, p := range el.Params {
				if p.Name != f.Param {
					continue
				}
				t, err := zos.ParseTimeValue(f.Kind, p.Value, n.opts)
				if err != nil {
					e.ParseError = joinErr(e.ParseError, fmt.Sprintf("sd %s %s: %v", f.SDID, f.Param, err))
					continue
				}
				t = t.UTC()
				e.OriginTime, e.Time, e.TimeFilled = &t, t, ""
				return
			}
		}
	}
}

func joinErr(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// readHardcopy reads e's text as a hardcopy log line, if it is one.
func (n *normalizer) readHardcopy(e *protocol.Event) {
	l, err := zos.ParseHardcopy(e.Text)
	if err != nil {
		return
	}
	msgid := ""
	key := e.Origin.Host + "\x00"
	if l.Continuation() {
		n.mu.Lock()
		msgid = n.lines[key+l.LineID]
		n.mu.Unlock()
	} else {
		msgid, _, _ = zos.HardcopyMsgID(l.Text)
		if i := strings.LastIndexByte(l.Text, ' '); i >= 0 && msgid != "" && isDigits(l.Text[i+1:]) {
			n.remember(key+l.Text[i+1:], msgid) // a multi-line message's line ID ends its first line
		}
		if l.System != "" {
			e.Origin.System = l.System
		}
		if t := l.Time(n.loc); !t.IsZero() {
			orig := t.In(n.loc)
			e.OriginTime, e.Time, e.TimeFilled = &orig, t, ""
		}
	}
	if e.MsgID == "" && msgid != "" {
		e.MsgID = msgid
	}
	e.Text = l.Text
}

func (n *normalizer) remember(key, msgid string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.lines == nil {
		n.lines = map[string]string{}
	}
	if _, ok := n.lines[key]; !ok {
		n.order = append(n.order, key)
	}
	n.lines[key] = msgid
	for len(n.order) > maxOpenMultiline {
		delete(n.lines, n.order[0])
		n.order = n.order[1:]
	}
}

func isDigits(s string) bool {
	if s == "" || len(s) > 8 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
