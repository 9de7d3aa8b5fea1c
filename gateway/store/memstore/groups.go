package memstore

import (
	"container/heap"
	"context"
	"slices"
	"time"

	"github.com/zbridge/zbridge/gateway/store"
	"github.com/zbridge/zbridge/protocol"
)

// DefaultGroupTTL is how long a consumer group nothing reads is kept
// (Config.GroupTTL).
const DefaultGroupTTL = 7 * 24 * time.Hour

// group is a consumer group's state: its cursor and its pending entries,
// each of which is in entries, in byAt (the order they were delivered or
// last claimed in: the idle ones first) and in byID (ID order).
type group struct {
	name    string
	cursor  protocol.ID // the last event delivered to the group, or where it starts
	entries map[protocol.ID]*pending
	byAt    atList
	byID    idList
	// read is when the group was last read (or created, or replayed):
	// GroupTTL counts from it.
	read time.Time
	lru  links[group] // its place in Store.groupLRU
	// heapIdx is the group's place in Store.trimHeap, -1 when it has no
	// entries.
	heapIdx int
}

// pending is an event delivered to a consumer of a group and not yet
// acknowledged.
type pending struct {
	id       protocol.ID
	consumer string
	at       time.Time // when delivered or last claimed
	// Its places in the group's lists (group.byAt and group.byID).
	atLinks, idLinks links[pending]
}

// links are an element's place in one intrusive list.
type links[T any] struct{ prev, next *T }

// linker says which of an element's links a list threads through.
type linker[T any] interface{ links(*T) *links[T] }

// list is a doubly linked list of T threaded through the links L gives,
// so that one element can be in several lists and leave any of them at
// once.
type list[T any, L linker[T]] struct{ head, tail *T }

func (l *list[T, L]) pushBack(e *T) {
	var k L
	n := k.links(e)
	n.prev, n.next = l.tail, nil
	if l.tail != nil {
		k.links(l.tail).next = e
	} else {
		l.head = e
	}
	l.tail = e
}

func (l *list[T, L]) remove(e *T) {
	var k L
	n := k.links(e)
	if n.prev != nil {
		k.links(n.prev).next = n.next
	} else {
		l.head = n.next
	}
	if n.next != nil {
		k.links(n.next).prev = n.prev
	} else {
		l.tail = n.prev
	}
	n.prev, n.next = nil, nil
}

// The lists: a group's entries in the order they were delivered or
// claimed (group.byAt); in ID order (group.byID: entries are added in ID
// order only, a delivery's events coming after every pending one, so it
// stays sorted by adding at the back); the store's groups in the order
// they were last read, least recently first, so that those past GroupTTL
// are at the head (Store.groupLRU).
type (
	byAtLinks  struct{}
	byIDLinks  struct{}
	byLRULinks struct{}
	atList     = list[pending, byAtLinks]
	idList     = list[pending, byIDLinks]
	groupLRU   = list[group, byLRULinks]
)

func (byAtLinks) links(p *pending) *links[pending] { return &p.atLinks }
func (byIDLinks) links(p *pending) *links[pending] { return &p.idLinks }
func (byLRULinks) links(g *group) *links[group]    { return &g.lru }

// trimHeap holds the groups that have entries, the one whose oldest entry
// has the lowest ID first: retention trims the oldest events, so the
// entries it makes stale are found without looking at any group that has
// none (container/heap).
type trimHeap []*group

func (h trimHeap) Len() int           { return len(h) }
func (h trimHeap) Less(i, j int) bool { return h[i].byID.head.id.Less(h[j].byID.head.id) }
func (h trimHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx, h[j].heapIdx = i, j
}
func (h *trimHeap) Push(x any) {
	g := x.(*group)
	g.heapIdx = len(*h)
	*h = append(*h, g)
}
func (h *trimHeap) Pop() any {
	old := *h
	g := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	g.heapIdx = -1
	return g
}

// newGroupLocked adds the group name with its cursor at cursor, read at
// now.
func (s *Store) newGroupLocked(name string, cursor protocol.ID, now time.Time) *group {
	g := &group{name: name, cursor: cursor, entries: make(map[protocol.ID]*pending), read: now, heapIdx: -1}
	s.groups[name] = g
	s.groupLRU.pushBack(g)
	return g
}

// deleteGroupLocked removes g from the store.
func (s *Store) deleteGroupLocked(g *group) {
	delete(s.groups, g.name)
	s.groupLRU.remove(g)
	if g.heapIdx >= 0 {
		heap.Remove(&s.trimHeap, g.heapIdx)
	}
}

// expireGroupsLocked deletes the groups nothing read for GroupTTL, and
// records their deletion. Its cost is one look at the least recently read
// group when none is due.
func (s *Store) expireGroupsLocked(now time.Time) {
	if s.groupTTL <= 0 {
		return
	}
	for g := s.groupLRU.head; g != nil && now.Sub(g.read) >= s.groupTTL; g = s.groupLRU.head {
		s.deleteGroupLocked(g)
		s.recordLocked(&Change{Kind: ChangeGroupDelete, Name: g.name})
	}
}

// addPendingLocked adds an entry to g for the event id, delivered to
// consumer at at. id must be after every entry g has.
func (s *Store) addPendingLocked(g *group, id protocol.ID, consumer string, at time.Time) {
	p := &pending{id: id, consumer: consumer, at: at}
	g.entries[id] = p
	g.byAt.pushBack(p)
	g.byID.pushBack(p)
	if g.heapIdx < 0 {
		heap.Push(&s.trimHeap, g)
	}
}

// unlink removes p from g's entries and lists, leaving g's place in the
// trim heap to the caller.
func (g *group) unlink(p *pending) {
	delete(g.entries, p.id)
	g.byAt.remove(p)
	g.byID.remove(p)
}

// removePendingLocked removes the entry p of g.
func (s *Store) removePendingLocked(g *group, p *pending) {
	oldest := g.byID.head == p
	g.unlink(p)
	if oldest {
		s.fixTrimHeapLocked(g)
	}
}

// fixTrimHeapLocked puts g in its place in the trim heap after its oldest
// entry changed (or out of it, when it has none).
func (s *Store) fixTrimHeapLocked(g *group) {
	switch {
	case g.byID.head == nil && g.heapIdx >= 0:
		heap.Remove(&s.trimHeap, g.heapIdx)
	case g.byID.head != nil && g.heapIdx < 0:
		heap.Push(&s.trimHeap, g)
	case g.byID.head != nil:
		heap.Fix(&s.trimHeap, g.heapIdx)
	}
}

// dropTrimmedLocked drops, from every group, the entries for events
// retention trimmed (those through s.trimmed): a group holds entries only
// for retained events, whether or not it is read again. It looks only at
// the groups that have such entries.
func (s *Store) dropTrimmedLocked() {
	for len(s.trimHeap) > 0 && !s.trimmed.Less(s.trimHeap[0].byID.head.id) {
		g := s.trimHeap[0]
		for p := g.byID.head; p != nil && !s.trimmed.Less(p.id); p = g.byID.head {
			g.unlink(p)
		}
		s.fixTrimHeapLocked(g)
	}
}

// claim makes p consumer's, claimed at now: it moves to the back of
// the order of delivery.
func (g *group) claim(p *pending, consumer string, now time.Time) {
	p.consumer, p.at = consumer, now
	g.byAt.remove(p)
	g.byAt.pushBack(p)
}

// GroupRead implements store.Store. A max of zero or less means no limit,
// as for Read. Its cost is that of the entries it returns (it looks at
// one more idle candidate than it claims), whatever the group holds.
func (s *Store) GroupRead(ctx context.Context, name, consumer string, start protocol.ID, claimAfter time.Duration,
	max int, dst []*protocol.Event) ([]*protocol.Event, protocol.ID, error) {
	if err := ctx.Err(); err != nil {
		return dst, protocol.ID{}, err
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return dst, protocol.ID{}, store.ErrClosed
	}
	g := s.groups[name]
	if g == nil {
		cursor := start
		if start.IsZero() {
			cursor = s.last
		}
		g = s.newGroupLocked(name, cursor, now)
		s.recordLocked(&Change{Kind: ChangeGroupCreate, Name: name, ID: g.cursor})
	} else {
		g.read = now
		s.groupLRU.remove(g)
		s.groupLRU.pushBack(g)
	}
	s.expireGroupsLocked(now)
	n := 0
	full := func() bool { return max > 0 && n >= max }

	// Claim the entries left unacknowledged too long: the front of the
	// order of delivery, up to the first that is not idle (or the last
	// that was there before this read claimed any: a claimAfter of zero
	// finds the claimed idle too). Every entry's event is retained, as
	// trimming drops the entries of the events it trims.
	var claimed []protocol.ID
	first := len(dst)
	if last := g.byAt.tail; last != nil {
		for p := g.byAt.head; p != nil && !full() && now.Sub(p.at) >= claimAfter; {
			next := p.atLinks.next
			if j := s.evs.find(p.id); j < 0 {
				s.removePendingLocked(g, p) // not reached while the invariant above holds
			} else {
				g.claim(p, consumer, now)
				dst = append(dst, s.evs.at(j))
				if s.journal != nil {
					claimed = append(claimed, p.id)
				}
				n++
			}
			if p == last {
				break
			}
			p = next
		}
	}
	// Claimed in the order they were delivered, given in ID order.
	slices.SortFunc(dst[first:], func(a, b *protocol.Event) int { return a.ID.Compare(b.ID) })

	// Deliver the events after the cursor. Their IDs are after every
	// pending one, so adding them at the back keeps byID in ID order.
	for i := s.evs.after(g.cursor); i < s.evs.len() && !full(); i++ {
		e := s.evs.at(i)
		s.addPendingLocked(g, e.ID, consumer, now)
		g.cursor = e.ID
		dst = append(dst, e)
		n++
	}
	if n > 0 {
		s.recordLocked(&Change{Kind: ChangeGroupDeliver, Name: name, Consumer: consumer, At: now,
			IDs: claimed, ID: g.cursor})
	}
	return dst, s.last, nil
}

// GroupAck implements store.Store: a lookup for each ID. The journal
// records the IDs it acknowledged.
func (s *Store) GroupAck(ctx context.Context, name, consumer string, ids []protocol.ID) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, store.ErrClosed
	}
	g := s.groups[name]
	if g == nil {
		return 0, nil
	}
	var acked []protocol.ID
	for _, id := range ids {
		if p := g.entries[id]; p != nil && p.consumer == consumer {
			s.removePendingLocked(g, p)
			acked = append(acked, id)
		}
	}
	if len(acked) > 0 {
		s.recordLocked(&Change{Kind: ChangeGroupAck, Name: name, IDs: acked})
	}
	return len(acked), nil
}

// GroupInfo implements store.GroupInspector.
func (s *Store) GroupInfo(ctx context.Context, name string) (store.GroupInfo, bool, error) {
	if err := ctx.Err(); err != nil {
		return store.GroupInfo{}, false, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return store.GroupInfo{}, false, store.ErrClosed
	}
	g := s.groups[name]
	if g == nil {
		return store.GroupInfo{}, false, nil
	}
	return store.GroupInfo{Pending: len(g.entries)}, true, nil
}

// state returns g's state for a checkpoint: its entries in ID
// order.
func (g *group) state() GroupState {
	gs := GroupState{Cursor: g.cursor, Pending: make([]Pending, 0, len(g.entries))}
	for p := g.byID.head; p != nil; p = p.idLinks.next {
		gs.Pending = append(gs.Pending, Pending{ID: p.id, Consumer: p.consumer, At: p.at})
	}
	return gs
}

// restoreGroupLocked adds the group name as a checkpoint holds it, read
// at now; its entries are ordered by the time they were delivered, the
// same times by ID.
func (s *Store) restoreGroupLocked(name string, gs GroupState, now time.Time) {
	g := s.newGroupLocked(name, gs.Cursor, now)
	if len(gs.Pending) == 0 {
		return
	}
	ps := make([]*pending, 0, len(gs.Pending))
	for _, x := range gs.Pending {
		if g.entries[x.ID] != nil || g.byID.tail != nil && !g.byID.tail.id.Less(x.ID) {
			continue // not in ID order: not written by a store
		}
		p := &pending{id: x.ID, consumer: x.Consumer, at: x.At}
		g.entries[x.ID] = p
		g.byID.pushBack(p)
		ps = append(ps, p)
	}
	slices.SortStableFunc(ps, func(a, b *pending) int { return a.at.Compare(b.at) })
	for _, p := range ps {
		g.byAt.pushBack(p)
	}
	s.fixTrimHeapLocked(g)
}

// clearGroupsLocked removes every group.
func (s *Store) clearGroupsLocked() {
	clear(s.groups)
	s.groupLRU = groupLRU{}
	for _, g := range s.trimHeap {
		g.heapIdx = -1
	}
	clear(s.trimHeap)
	s.trimHeap = s.trimHeap[:0]
}
