package redisstore

import (
	"sort"

	"github.com/zbridge/zbridge/protocol"
)

// tailCache is the in-process copy of the newest part of the event stream: a
// contiguous run, every stream entry after base through the newest, oldest
// first. It is bounded by a count and by bytes (protocol.Event.Size) and
// trimmed from the old end, base moving up to the last entry trimmed. An
// invalid cache (base unknown: before the first look at the stream, or
// after the stream was found to differ from the run) holds nothing and
// serves nothing. The Store's mutex guards it.
type tailCache struct {
	maxEvents int
	maxBytes  int64

	valid bool
	base  protocol.ID
	evs   []*protocol.Event // evs[head:] are the run
	head  int
	bytes int64
}

// reset empties the cache and makes it valid from base: the caller knows
// the stream has no entry after base (yet).
func (c *tailCache) reset(base protocol.ID) {
	c.clear()
	c.valid, c.base = true, base
}

// invalidate empties the cache and makes it invalid.
func (c *tailCache) invalidate() {
	c.clear()
	c.valid, c.base = false, protocol.ID{}
}

func (c *tailCache) clear() {
	clear(c.evs)
	c.evs, c.head, c.bytes = c.evs[:0], 0, 0
}

// len returns the number of events held.
func (c *tailCache) len() int { return len(c.evs) - c.head }

// newest returns the ID of the newest event held, or base when empty.
func (c *tailCache) newest() protocol.ID {
	if n := len(c.evs); n > c.head {
		return c.evs[n-1].ID
	}
	return c.base
}

// oldest returns the oldest event held, or nil.
func (c *tailCache) oldest() *protocol.Event {
	if c.len() == 0 {
		return nil
	}
	return c.evs[c.head]
}

// covers reports whether the cache holds every stream entry after `after`
// (as far as the stream is known).
func (c *tailCache) covers(after protocol.ID) bool {
	return c.valid && !after.Less(c.base)
}

// add appends events that directly follow the newest held in the stream,
// their IDs rising and after newest(), then trims the old end.
func (c *tailCache) add(evs []*protocol.Event) {
	if !c.valid {
		return
	}
	for _, e := range evs {
		c.bytes += int64(e.Size())
	}
	c.evs = append(c.evs, evs...)
	c.trim()
}

func (c *tailCache) trim() {
	for n := c.len(); n > 0 && (n > c.maxEvents || c.bytes > c.maxBytes); n-- {
		e := c.evs[c.head]
		c.bytes -= int64(e.Size())
		c.base = e.ID
		c.evs[c.head] = nil
		c.head++
	}
	// Compact when the dead prefix is at least half the slice.
	if c.head > 0 && (c.head == len(c.evs) || c.head >= len(c.evs)/2 && c.head >= 1024) {
		k := copy(c.evs, c.evs[c.head:])
		clear(c.evs[k:])
		c.evs = c.evs[:k]
		c.head = 0
	}
}

// dropBefore removes the events before id (retention by age), moving base.
func (c *tailCache) dropBefore(id protocol.ID) {
	for c.len() > 0 && c.evs[c.head].ID.Less(id) {
		e := c.evs[c.head]
		c.bytes -= int64(e.Size())
		c.base = e.ID
		c.evs[c.head] = nil
		c.head++
	}
	c.trim()
}

// read appends to dst up to max (no limit if max <= 0) events after
// `after`, which the cache must cover.
func (c *tailCache) read(after protocol.ID, max int, dst []*protocol.Event) []*protocol.Event {
	live := c.evs[c.head:]
	i := sort.Search(len(live), func(i int) bool { return after.Less(live[i].ID) })
	end := len(live)
	if max > 0 && end-i > max {
		end = i + max
	}
	return append(dst, live[i:end]...)
}

// dropAfter removes the events after id (provisional events that Redis
// did not take as they were): the run then ends at id, or the cache becomes
// invalid if id is before its base.
func (c *tailCache) dropAfter(id protocol.ID) {
	if !c.valid {
		return
	}
	if id.Less(c.base) {
		c.invalidate()
		return
	}
	live := c.evs[c.head:]
	i := sort.Search(len(live), func(i int) bool { return id.Less(live[i].ID) })
	for _, e := range live[i:] {
		c.bytes -= int64(e.Size())
	}
	clear(live[i:])
	c.evs = c.evs[:c.head+i]
}
