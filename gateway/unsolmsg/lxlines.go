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
// pay for the keeping and gain nothing.
type lxLines struct {
	subs atomic.Int32 // lx subscriptions streaming

	mu    sync.Mutex
	lines map[protocol.ID][]byte
	ring  []protocol.ID // the IDs in lines, oldest first from next
	next  int
}

// lxKept is how many events' lines lxLines keeps: more than a read of the
// store returns at once (Config.Batch), so that subscribers a batch or so
// apart share them.
const lxKept = 8192

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
	q, ok := c.lines[e.ID]
	c.mu.Unlock()
	if ok {
		return q
	}
	q = quotedLX(e)
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.lines[e.ID]; ok {
		return q // another subscriber put it meanwhile
	}
	if c.lines == nil {
		c.lines = make(map[protocol.ID][]byte, lxKept)
		c.ring = make([]protocol.ID, 0, lxKept)
	}
	if len(c.ring) < lxKept {
		c.ring = append(c.ring, e.ID)
	} else {
		delete(c.lines, c.ring[c.next])
		c.ring[c.next] = e.ID
		c.next = (c.next + 1) % lxKept
	}
	c.lines[e.ID] = q
	return q
}

// quotedLX formats e's lx line and quotes it.
func quotedLX(e *protocol.Event) []byte {
	return protocol.AppendJSONString(nil, lx.Format(e))
}
