package unsolmsg

import (
	"sync"
	"time"

	"github.com/zbridge/zbridge/protocol"
)

// window is what a group member's session holds unacknowledged: the IDs of
// the events sent to it, each with when, until they are acknowledged or
// the hold passed (the stream's: one and a half GroupClaimAfter; past
// GroupClaimAfter the store gives such an event to any member that reads,
// and the half more lets the others, which read at least every half
// GroupClaimAfter, come first, rather than this one's read, timed to the
// expiry, taking back what it holds each time). The stream sends the session
// nothing more while the window is full (Config.GroupMaxUnacked), so that a
// member that reads without acknowledging makes the group hold no more than
// that for it: the store's entries are the group's, and it keeps them until
// they are acknowledged, claimed, trimmed or the group is forgotten.
//
// The stream goroutine adds, the request goroutine (acks) and the stream
// remove.
type window struct {
	mu sync.Mutex // guards the following fields
	// at holds each ID counted, with when it was sent.
	at map[protocol.ID]time.Time
	// order holds the IDs in the order they were sent, from head on; an
	// element whose time is not at's for its ID (acknowledged, or sent
	// again since) is stale, and skipped.
	order []sentAt
	head  int

	freed chan struct{} // buffered 1: an ack made room
}

type sentAt struct {
	id protocol.ID
	at time.Time
}

func newWindow() *window {
	return &window{at: make(map[protocol.ID]time.Time), freed: make(chan struct{}, 1)}
}

// add counts the events of evs, sent at now.
func (w *window) add(evs []*protocol.Event, now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, e := range evs {
		w.at[e.ID] = now
		w.order = append(w.order, sentAt{e.ID, now})
	}
	w.compactLocked()
}

// remove stops counting ids (acknowledged) and wakes a stream waiting for
// room.
func (w *window) remove(ids []protocol.ID) {
	w.mu.Lock()
	n := len(w.at)
	for _, id := range ids {
		delete(w.at, id)
	}
	freed := len(w.at) < n
	w.mu.Unlock()
	if freed {
		select {
		case w.freed <- struct{}{}:
		default:
		}
	}
}

// room stops counting the events sent hold or longer before now and
// returns how many more of at most max the session may be sent; when none,
// wait is how long until the oldest it holds stops counting.
func (w *window) room(now time.Time, hold time.Duration, max int) (n int, wait time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.head < len(w.order) {
		o := w.order[w.head]
		if at, ok := w.at[o.id]; ok && at.Equal(o.at) {
			if now.Sub(o.at) < hold {
				break
			}
			delete(w.at, o.id)
		}
		w.order[w.head] = sentAt{}
		w.head++
	}
	w.compactLocked()
	if n := max - len(w.at); n > 0 {
		return n, 0
	}
	return 0, hold - now.Sub(w.order[w.head].at)
}

// compactLocked lets order go of what it no longer needs: its front once
// half of it is behind head, and its stale elements once they are most of
// it (acknowledged out of order behind one held long).
func (w *window) compactLocked() {
	live := len(w.order) - w.head
	switch {
	case w.head > 64 && w.head >= live:
		n := copy(w.order, w.order[w.head:])
		clear(w.order[n:])
		w.order, w.head = w.order[:n], 0
	case live > 64 && live > 4*len(w.at):
		kept := w.order[:0]
		for _, o := range w.order[w.head:] {
			if at, ok := w.at[o.id]; ok && at.Equal(o.at) {
				kept = append(kept, o)
			}
		}
		clear(w.order[len(kept):])
		w.order, w.head = kept, 0
	default:
		return
	}
	if cap(w.order) > 1024 && cap(w.order) > 4*len(w.order) {
		w.order = append([]sentAt(nil), w.order...)
	}
}
