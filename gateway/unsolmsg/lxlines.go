package unsolmsg

import (
	"sync"
	"sync/atomic"

	"github.com/zbridge/zbridge/protocol"
	"github.com/zbridge/zbridge/protocol/lx"
)

// lxLines keeps the lx lines of the newest events, quoted as an lx event
// frame carries them, so that the lx subscribers of an event send the line
// one of them encoded, instead of each formatting and quoting it again
// (the store keeps each event's JSON for the JSON subscribers likewise).
// Only while two lx subscriptions or more are streaming: one alone would
// pay for the keeping and gain nothing, and the lines go when fewer than
// two are left.
//
// A line is kept with its event and served only for that event, not for
// its ID alone: an ID can name two events over a Server's life (a region
// sharing Redis assigns provisional IDs while Redis is away), and another
// event's line would show what the subscriber may not see. A line longer
// than its event's Size (an event of control characters, escaped six
// bytes for one) is not kept, and the lines kept are bounded in bytes
// (lxKeptBytes, counting each line and the Size of the event it keeps
// alive: an event the store decoded for one reader, from beyond its cache,
// is that reader's own and would otherwise be held for a 50-byte line) as
// well as in number (lxKept).
type lxLines struct {
	subs atomic.Int32 // lx subscriptions streaming

	mu    sync.Mutex
	lines map[protocol.ID]lxLine
	ring  []protocol.ID // the IDs in lines, oldest first from next
	next  int
	bytes int // of the lines kept and their events (lxLine.weight)
}

type lxLine struct {
	ev     *protocol.Event
	line   []byte
	weight int // len(line) + ev.Size()
}

// The most lines lxLines keeps, and the most bytes of them and their
// events: more than a read of the store returns at once (Config.Batch), so
// that subscribers a batch or so apart share them.
const (
	lxKept      = 8192
	lxKeptBytes = 16 << 20
)

// streaming counts an lx subscription streaming; the func it returns
// counts it gone.
func (c *lxLines) streaming() func() {
	c.subs.Add(1)
	return func() {
		if c.subs.Add(-1) < 2 {
			c.mu.Lock()
			c.lines, c.ring, c.next, c.bytes = nil, nil, 0, 0
			c.mu.Unlock()
		}
	}
}

// appendFrame appends e's lx event frame to buf.
func (c *lxLines) appendFrame(buf []byte, e *protocol.Event) []byte {
	if c.subs.Load() < 2 {
		return protocol.AppendLineFrame(buf, e.ID, lx.Format(e))
	}
	return protocol.AppendQuotedLineFrame(buf, e.ID, c.line(e))
}

// line returns e's lx line, quoted: the one kept, or one made and kept.
func (c *lxLines) line(e *protocol.Event) []byte {
	c.mu.Lock()
	l, ok := c.lines[e.ID]
	c.mu.Unlock()
	if ok && l.ev == e {
		return l.line
	}
	q := quotedLX(e)
	if len(q) > e.Size() {
		return q
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.subs.Load() < 2 {
		return q // the subscriptions went meanwhile: keep nothing
	}
	if old, ok := c.lines[e.ID]; ok {
		if old.ev == e {
			return q // another subscriber put it meanwhile
		}
		kept := lxLine{ev: e, line: q, weight: len(q) + e.Size()} // another event of that ID: this one replaces it
		c.bytes += kept.weight - old.weight
		c.lines[e.ID] = kept
		return q
	}
	if c.lines == nil {
		c.lines = make(map[protocol.ID]lxLine, lxKept)
	}
	kept := lxLine{ev: e, line: q, weight: len(q) + e.Size()}
	if kept.weight > lxKeptBytes {
		return q
	}
	for len(c.ring) > c.next && (len(c.ring)-c.next >= lxKept || c.bytes+kept.weight > lxKeptBytes) {
		c.dropOldestLocked()
	}
	c.ring = append(c.ring, e.ID)
	c.lines[e.ID] = kept
	c.bytes += kept.weight
	return q
}

// dropOldestLocked forgets the oldest line kept.
func (c *lxLines) dropOldestLocked() {
	id := c.ring[c.next]
	if l, ok := c.lines[id]; ok {
		c.bytes -= l.weight
		delete(c.lines, id)
	}
	c.next++
	if c.next >= len(c.ring)/2 { // the dropped half: move the rest down
		c.ring = append(c.ring[:0], c.ring[c.next:]...)
		c.next = 0
	}
}

// quotedLX formats e's lx line and quotes it.
func quotedLX(e *protocol.Event) []byte {
	return protocol.AppendJSONString(nil, lx.Format(e))
}
