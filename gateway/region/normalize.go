package region

import (
	"container/heap"
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
// line of a multi-line message gets the message ID and system of its first
// line, matched by the line ID among the first lines that came from the
// same address and named the same host (see firstLines); `zbridge zoslog`
// joins the lines of a saved log into one event per message.
type normalizer struct {
	next     syslog.Appender
	fields   []TimeField
	opts     zos.TimeOptions
	hardcopy bool
	loc      *time.Location

	mu    sync.Mutex // guards first
	first firstLines
}

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
// after the message's own elements, as zbridge zoslog sends them: rules can
// then tell a system's own messages from those a job wrote (a WTO can say
// anything). Only the region writes hardcopy@zbridge: the syslog parser
// keeps a sender's as hardcopy@claimed. The columns are what the line says,
// so they are z/OS's only for lines from the z/OS system's address.
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
	// The host is what the line claims; the address is the sender's own.
	key := firstKey{addr: e.Origin.Addr, host: e.Origin.Host}
	var first multiline
	if l.Continuation() {
		key.lineID = l.LineID
		n.mu.Lock()
		first = n.first.get(key)
		n.mu.Unlock()
		if first.system != "" {
			e.Origin.System = first.system
		}
	} else {
		first.msgid, _, _ = zos.HardcopyMsgID(l.Text)
		first.system = l.System
		if i := strings.LastIndexByte(l.Text, ' '); i >= 0 && isDigits(l.Text[i+1:]) {
			key.lineID = l.Text[i+1:] // a multi-line message's line ID ends its first line
			n.mu.Lock()
			n.first.put(key, first)
			n.mu.Unlock()
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

// Bounds of firstLines: the first lines of multi-line messages remembered
// at most (each at most ~700 bytes with its key: a host name of up to 511,
// an address, a line ID of up to 8, a message ID and a system name; ~150 for
// a usual one), and at most from one sender address.
//
// An address's share is a quarter of the table, 1024 first lines, so that
// fewer than four addresses cannot fill it. A continuation line finds its
// message's first line as long as fewer than 1024 multi-line messages from
// the same address started after it. z/OS writes a message's lines within
// moments of each other (zbridge zoslog's zos.HardcopyJoiner keeps 64
// messages open per system for the same reason), so that is ample for one
// system, and for a forwarder sending a sysplex's OPERLOG. A first line is
// kept past its message's end line, so that a line arriving late still
// finds it.
const (
	maxFirstLines        = 4096
	maxFirstLinesPerAddr = maxFirstLines / 4
)

// firstKey is where firstLines keeps a first line: the sender's address
// (Origin.Addr, from the socket), the host the line claims and the line
// ID. The address is part of the key so that a sender cannot, by claiming
// a z/OS system's host name and a line ID, decide which message the
// system's own continuation lines belong to.
type firstKey struct{ addr, host, lineID string }

// firstLines remembers the first lines of multi-line messages, at most
// maxFirstLinesPerAddr from one address and maxFirstLines in all. An
// address past its share drops its own oldest. When the table is full, the
// first line dropped is the oldest of the address holding the most (of
// those holding as many, the one whose oldest is oldest), so one address
// cannot push out another's: it takes the place of its own first lines
// unless the other holds more than it. Fewer than maxFirstLines /
// maxFirstLinesPerAddr addresses never fill the table, and an address that
// holds fewer than its fair share (maxFirstLines over the number of
// addresses holding any) loses none of its first lines to others. The addresses are
// those of TCP, TLS and RELP senders, or forged ones of UDP datagrams: a
// forger who spoofs thousands of addresses can push everyone's out (and,
// spoofing the z/OS system's own, send its continuation lines anyway).
//
// The strings kept are copies: a first line does not keep its event's
// memory (a frame of up to MaxFrame bytes) alive. Every operation takes
// O(log addresses). The zero value is empty and ready; it is not safe for
// concurrent use.
type firstLines struct {
	lines map[firstKey]multiline
	addrs map[string]*addrLines
	most  addrHeap // the addresses holding first lines, most first
	seq   uint64   // the number of first lines put
}

// addrLines is what firstLines holds for one address.
type addrLines struct {
	addr  string
	keys  []firstKey // the address's first lines, oldest first
	seqs  []uint64   // when each was put
	index int        // in firstLines.most
}

// get returns the first line kept under k, or the zero multiline.
func (f *firstLines) get(k firstKey) multiline { return f.lines[k] }

// put keeps first under k. A key already kept (a line ID used again) takes
// the new first line in the old one's place in the order.
func (f *firstLines) put(k firstKey, first multiline) {
	first = multiline{strings.Clone(first.msgid), strings.Clone(first.system)}
	if _, ok := f.lines[k]; ok {
		f.lines[k] = first
		return
	}
	if f.lines == nil {
		f.lines, f.addrs = map[firstKey]multiline{}, map[string]*addrLines{}
	}
	a := f.addrs[k.addr]
	switch {
	case a != nil && len(a.keys) >= maxFirstLinesPerAddr:
		f.dropOldest(a)
	case len(f.lines) >= maxFirstLines:
		f.dropOldest(f.most[0])
	}
	if a = f.addrs[k.addr]; a == nil { // (dropOldest forgets an address left with none)
		a = &addrLines{addr: strings.Clone(k.addr)}
		f.addrs[a.addr] = a
		heap.Push(&f.most, a)
	}
	k = firstKey{addr: a.addr, host: strings.Clone(k.host), lineID: strings.Clone(k.lineID)}
	f.seq++
	a.keys, a.seqs = append(a.keys, k), append(a.seqs, f.seq)
	f.lines[k] = first
	heap.Fix(&f.most, a.index)
}

// dropOldest forgets a's oldest first line, and a when it has no more.
func (f *firstLines) dropOldest(a *addrLines) {
	delete(f.lines, a.keys[0])
	a.keys[0] = firstKey{} // not keeping its strings until the slice moves
	a.keys, a.seqs = a.keys[1:], a.seqs[1:]
	if len(a.keys) == 0 {
		heap.Remove(&f.most, a.index)
		delete(f.addrs, a.addr)
		return
	}
	heap.Fix(&f.most, a.index)
}

// addrHeap orders addresses by the first lines they hold, most first, and
// among those holding as many, by their oldest, oldest first.
type addrHeap []*addrLines

func (h addrHeap) Len() int { return len(h) }
func (h addrHeap) Less(i, j int) bool {
	if len(h[i].keys) != len(h[j].keys) {
		return len(h[i].keys) > len(h[j].keys)
	}
	return oldest(h[i]) < oldest(h[j])
}
func (h addrHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *addrHeap) Push(x any) {
	a := x.(*addrLines)
	a.index = len(*h)
	*h = append(*h, a)
}
func (h *addrHeap) Pop() any {
	old := *h
	a := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return a
}

// oldest is when a's oldest first line was put (none: 0).
func oldest(a *addrLines) uint64 {
	if len(a.seqs) == 0 {
		return 0
	}
	return a.seqs[0]
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
