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
	lines map[string]multiline // host + "\x00" + line ID → the first line
	order []string             // keys of lines, oldest first
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

// readTime takes e's time from the first configured field it carries:
// the first such parameter, whether it reads or not. A value that does not
// read, or gives a time out of reason (see saneTime), leaves the time as
// it was and says why in ParseError.
func (n *normalizer) readTime(e *protocol.Event) {
	if len(n.fields) == 0 || len(e.SD) == 0 {
		return
	}
	for _, f := range n.fields {
		v, ok := sdParam(e.SD, f.SDID, f.Param)
		if !ok {
			continue
		}
		t, err := zos.ParseTimeValue(f.Kind, v, n.opts)
		if err == nil {
			err = saneTime(t, e.Received)
		}
		if err != nil {
			e.ParseError = joinErr(e.ParseError, fmt.Sprintf("sd %s %s: %v", f.SDID, f.Param, err))
			return
		}
		t = t.UTC()
		e.OriginTime, e.Time, e.TimeFilled = &t, t, ""
		return
	}
}

// sdParam returns the first value of the parameter in the element.
func sdParam(sd protocol.StructuredData, id, param string) (string, bool) {
	for _, el := range sd {
		if el.ID != id {
			continue
		}
		for _, p := range el.Params {
			if p.Name == param {
				return p.Value, true
			}
		}
	}
	return "", false
}

// maxFuture is how far after its receipt an event's own time may be:
// clocks differ, but an event from next week is a bad value (or a forged
// one), and a time beyond year 9999 cannot even be written in JSON.
const maxFuture = 24 * time.Hour

// saneTime refuses a time before 1900 or more than maxFuture after
// received (now, when received is zero).
func saneTime(t, received time.Time) error {
	if received.IsZero() {
		received = time.Now()
	}
	switch {
	case t.Year() < 1900:
		return fmt.Errorf("time %s is before 1900", t.UTC().Format(time.RFC3339))
	case t.After(received.Add(maxFuture)):
		return fmt.Errorf("time %s is more than %v after the event was received", t.UTC().Format(time.RFC3339), maxFuture)
	}
	return nil
}

// maxParseError bounds what the normalizer adds to an event's ParseError.
const maxParseError = 1024

func joinErr(a, b string) string {
	if a != "" {
		b = a + "; " + b
	}
	if len(b) > maxParseError {
		b = strings.ToValidUTF8(b[:maxParseError], "")
	}
	return b
}

// readHardcopy reads e's text as a hardcopy log line, if it is one. The
// line's columns that say who issued it (record and request type, routing
// codes, job ID or console, flags) go into the SD element hardcopy@zbridge,
// as zbridge zoslog sends them: rules can then tell a system's own messages
// from those a job wrote (a WTO can say anything).
func (n *normalizer) readHardcopy(e *protocol.Event) {
	// A hardcopy line is at least its columns long and starts with a
	// record type or a blank: most syslog text is turned away here, for
	// nothing.
	if len(e.Text) < 40 || strings.IndexByte("NWMLDESOX ", e.Text[0]) < 0 {
		return
	}
	l, err := zos.ParseHardcopy(e.Text)
	if err != nil {
		return
	}
	key := e.Origin.Host + "\x00"
	var first multiline
	if l.Continuation() {
		n.mu.Lock()
		first = n.lines[key+l.LineID]
		n.mu.Unlock()
		if first.system != "" {
			e.Origin.System = first.system
		}
	} else {
		first.msgid, _, _ = zos.HardcopyMsgID(l.Text)
		first.system = l.System
		if i := strings.LastIndexByte(l.Text, ' '); i >= 0 && isDigits(l.Text[i+1:]) {
			n.remember(key+l.Text[i+1:], first) // a multi-line message's line ID ends its first line
		}
		if l.System != "" {
			e.Origin.System = l.System
		}
		t := l.Time(n.loc)
		if err := saneTime(t, e.Received); err != nil {
			e.ParseError = joinErr(e.ParseError, "hardcopy: "+err.Error())
		} else if !t.IsZero() {
			orig := t.In(n.loc)
			e.OriginTime, e.Time, e.TimeFilled = &orig, t, ""
		}
	}
	if e.MsgID == "" && first.msgid != "" {
		e.MsgID = first.msgid
	}
	params := []protocol.SDParam{{Name: "type", Value: string(rune(l.Type))}}
	add := func(name, v string) {
		if v != "" {
			params = append(params, protocol.SDParam{Name: name, Value: v})
		}
	}
	if l.Request != 0 && l.Request != ' ' {
		add("request", string(rune(l.Request)))
	}
	add("routing", l.Routing)
	add("ident", l.Ident)
	add("flags", l.Flags)
	add("line", l.LineID)
	e.SD = append(e.SD, protocol.SDElement{ID: "hardcopy@zbridge", Params: params})
	e.Text = l.Text
}

// multiline is what the normalizer keeps of a multi-line message's first
// line for its continuation lines.
type multiline struct{ msgid, system string }

func (n *normalizer) remember(key string, first multiline) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.lines == nil {
		n.lines = map[string]multiline{}
	}
	if _, ok := n.lines[key]; !ok {
		n.order = append(n.order, key)
	}
	n.lines[key] = first
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
