// Package groupcommit joins the Appends that several goroutines make at
// once into one Append of the next Appender: the region's SYSLOG
// connections each append their own batches, and a store's Append has a
// cost of its own beside each event's (its lock, a journal write, waking
// every subscriber), which four busy connections would otherwise pay four
// times as often as one.
//
// An Append that finds no other in flight goes through at once, alone. One
// that comes while another is in flight waits; when the one in flight
// returns, the first of those waiting takes the events of those of them
// whose context ends when its own does (the same Done channel: the SYSLOG
// server's connections share one), its own first, in the order they came,
// appends them in one Append under its context, and gives each the result;
// a caller with another context waits for an Append of its own, so that
// one caller's context ending (a RELP session closing) does not fail
// another's events. Each caller's events stay in its order and together;
// the order between callers is the order they came in. A failed Append
// fails every caller whose events were in it. A caller whose context ends
// while it waits withdraws its events, unless a group has taken them.
package groupcommit

import (
	"context"
	"sync"

	"github.com/zbridge/zbridge/protocol"
)

// Appender is what an Appender wraps (syslog.Appender, store.Store).
type Appender interface {
	Append(ctx context.Context, evs []*protocol.Event) error
}

// MaxEvents bounds the events of one joined Append: a caller that would
// take it past this waits for the next one. It is what one SYSLOG
// connection appends at most at once, so that a joined Append is never
// more than twice the largest a connection makes alone.
const MaxEvents = 8192

// Joiner joins concurrent Appends into one Append of the Appender it
// wraps. Create it with New; it is safe for concurrent use.
type Joiner struct {
	next Appender

	mu      sync.Mutex
	busy    bool      // an Append of next is in flight
	waiting []*waiter // callers queued for the next Append, in order
	spare   []*waiter // a waiting slice given back, for reuse
	pool    sync.Pool // *waiter
	evs     []*protocol.Event
}

// waiter is a caller queued for a joined Append.
type waiter struct {
	ctx  context.Context
	evs  []*protocol.Event
	done chan error // buffered: the result, or nil to lead
	lead []*waiter  // set for the leader: the group it appends
}

// New returns a Joiner appending to next.
func New(next Appender) *Joiner {
	j := &Joiner{next: next}
	j.pool.New = func() any { return &waiter{done: make(chan error, 1)} }
	return j
}

// Append appends evs through the wrapped Appender, joined with the Appends made while
// another is in flight. It returns the error of the Append its events went
// in.
func (j *Joiner) Append(ctx context.Context, evs []*protocol.Event) error {
	if len(evs) == 0 {
		return j.next.Append(ctx, evs)
	}
	j.mu.Lock()
	if !j.busy {
		j.busy = true
		j.mu.Unlock()
		err := j.next.Append(ctx, evs)
		j.handOff()
		return err
	}
	w := j.pool.Get().(*waiter)
	w.ctx, w.evs, w.lead = ctx, evs, nil
	j.waiting = append(j.waiting, w)
	j.mu.Unlock()

	var err error
	select {
	case err = <-w.done:
	case <-ctx.Done():
		// Withdrawn while still waiting: not appended. Once a group has
		// taken the events they are on their way, and the caller waits
		// for their result.
		if j.withdraw(w) {
			w.ctx, w.evs = nil, nil
			j.pool.Put(w)
			return ctx.Err()
		}
		err = <-w.done
	}
	if group := w.lead; group != nil {
		err = j.appendGroup(ctx, group)
		j.handOff()
	}
	w.ctx, w.evs, w.lead = nil, nil, nil
	j.pool.Put(w)
	return err
}

// withdraw takes w out of the callers waiting, if it is still one of
// them.
func (j *Joiner) withdraw(w *waiter) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	for i, x := range j.waiting {
		if x == w {
			last := len(j.waiting) - 1
			copy(j.waiting[i:], j.waiting[i+1:])
			j.waiting[last] = nil
			j.waiting = j.waiting[:last]
			return true
		}
	}
	return false
}

// appendGroup appends the events of group (its leader first) in one Append
// and gives the others its result.
func (j *Joiner) appendGroup(ctx context.Context, group []*waiter) error {
	all := j.evs[:0]
	for _, w := range group {
		all = append(all, w.evs...)
	}
	err := j.next.Append(ctx, all)
	clear(all)
	j.evs = all[:0]
	for _, w := range group[1:] {
		w.done <- err
	}
	j.mu.Lock()
	clear(group)
	j.spare = group[:0]
	j.mu.Unlock()
	return err
}

// handOff, after an Append of next returned, makes the first caller
// waiting the leader of the group it can take (see the package
// documentation; up to MaxEvents), or marks the Joiner idle when none is
// waiting. The callers left keep their order.
func (j *Joiner) handOff() {
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(j.waiting) == 0 {
		j.busy = false
		return
	}
	lead := j.waiting[0]
	done := lead.ctx.Done()
	group := append(j.spare[:0], lead)
	j.spare = nil // the group's until appendGroup gives it back
	events := len(lead.evs)
	left := j.waiting[:0]
	for _, w := range j.waiting[1:] {
		if w.ctx.Done() == done && events+len(w.evs) <= MaxEvents {
			group = append(group, w)
			events += len(w.evs)
		} else {
			left = append(left, w)
		}
	}
	clear(j.waiting[len(left):])
	j.waiting = left
	lead.lead = group
	lead.done <- nil
}
