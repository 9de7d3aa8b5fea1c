package memstore

import (
	"errors"
	"sort"
	"time"

	"github.com/zbridge/zbridge/gateway/store/eventcodec"
	"github.com/zbridge/zbridge/protocol"
)

// DefaultCacheEvents is Config.CacheEvents's default: the newest events
// kept as they came, which live subscribers read. At a few hundred bytes
// an event it is tens of megabytes, a few seconds of a busy region's
// traffic.
const DefaultCacheEvents = 65536

// errDamaged is wrapped by the error of an event the cold part cannot
// decode.
var errDamaged = errors.New("memstore: damaged event")

// retained is a Store's retained events in ID order: the newest (at most
// cacheMax) as the events appended, the older encoded (eventcodec) in
// chunks outside the Go heap (see chunk_unix.go): however many events
// retention holds, the garbage collector scans only the cache, and trimming
// gives the chunks back for reuse instead of leaving garbage. An event read
// from the older part is decoded afresh for each reader.
//
// Positions are indexes over both: 0 is the oldest retained event, the
// cold part first. The Store's lock guards a retained.
type retained struct {
	cacheMax int

	hot     []*protocol.Event // hot[head:] are the newest events
	hotJSON [][]byte          // hotJSON[i] is hot[i]'s JSON after its ID, or nil
	head    int

	cold    coldIndex // the older events, in ID order
	chunks  []chunk   // chunks[i] is chunk number chunkBase+i
	base    int
	spare   []chunk // emptied chunks kept for reuse
	scratch []byte  // an event being encoded
}

// coldEntry is an encoded event's place, and what trimming needs of it
// without decoding it. It holds no pointer.
type coldEntry struct {
	id       protocol.ID
	recvSec  int64 // Received: seconds since the Unix epoch,
	recvNsec int32 // and nanoseconds;
	hasRecv  bool  // false for the zero time
	size     int64 // the event's Size()
	chunk    int   // chunk number
	off, n   int   // its bytes in the chunk
}

// chunkSize is the size of a chunk; an event larger than it gets a chunk
// of its own.
const chunkSize = 4 << 20

// maxSpare is how many emptied chunks are kept for reuse.
const maxSpare = 2

// len returns the number of retained events.
func (r *retained) len() int { return r.cold.len() + len(r.hot) - r.head }

func (r *retained) coldLen() int { return r.cold.len() }

// id returns the ID of the event at position i.
func (r *retained) id(i int) protocol.ID {
	if k := r.coldLen(); i < k {
		return r.cold.at(i).id
	} else {
		return r.hot[r.head+i-k].ID
	}
}

// oldest returns the oldest event's ID, receive time and Size; ok is
// false when none is retained.
func (r *retained) oldest() (id protocol.ID, received time.Time, size int64, ok bool) {
	if r.coldLen() > 0 {
		e := r.cold.at(0)
		if e.hasRecv {
			received = time.Unix(e.recvSec, int64(e.recvNsec))
		}
		return e.id, received, e.size, true
	}
	if r.head < len(r.hot) {
		e := r.hot[r.head]
		return e.ID, e.Received, int64(e.Size()), true
	}
	return protocol.ID{}, time.Time{}, 0, false
}

// newest returns the newest event's ID; ok is false when none is retained.
func (r *retained) newest() (protocol.ID, bool) {
	if n := r.len(); n > 0 {
		return r.id(n - 1), true
	}
	return protocol.ID{}, false
}

// after returns the position of the first event whose ID is after id.
func (r *retained) after(id protocol.ID) int {
	k := r.coldLen()
	if k > 0 && id.Less(r.cold.last().id) {
		return sort.Search(k, func(i int) bool { return id.Less(r.cold.at(i).id) })
	}
	hot := r.hot[r.head:]
	return k + sort.Search(len(hot), func(i int) bool { return id.Less(hot[i].ID) })
}

// find returns the position of the event with ID id, or -1.
func (r *retained) find(id protocol.ID) int {
	i := r.after(id) - 1
	if i >= 0 && r.id(i) == id {
		return i
	}
	return -1
}

// at returns the event at position i: the appended event if it is in the
// cache, else a copy decoded from its chunk.
func (r *retained) at(i int) *protocol.Event {
	k := r.coldLen()
	if i >= k {
		return r.hot[r.head+i-k]
	}
	c := r.cold.at(i)
	b := r.chunks[c.chunk-r.base].b[c.off : c.off+c.n]
	e := new(protocol.Event)
	d := eventcodec.NewDecoder(string(b), errDamaged) // one allocation: its strings are parts of it
	d.Event(e)
	if d.Err() != nil {
		// Written by this process a moment ago: only a bug gets here.
		// The event is reported rather than lost in silence.
		return &protocol.Event{ID: c.id, Source: protocol.SourceRegion, Text: "memstore: " + d.Err().Error(),
			ParseError: d.Err().Error()}
	}
	return e
}

// appendRange appends the events at positions i to j-1 to dst, and if
// json is not nil their prepared JSON (nil for the cold ones) to json.
func (r *retained) appendRange(dst []*protocol.Event, json [][]byte, i, j int) ([]*protocol.Event, [][]byte) {
	for ; i < j && i < r.coldLen(); i++ {
		dst = append(dst, r.at(i))
		if json != nil {
			json = append(json, nil)
		}
	}
	if i < j {
		k := r.coldLen()
		dst = append(dst, r.hot[r.head+i-k:r.head+j-k]...)
		if json != nil {
			json = append(json, r.hotJSON[r.head+i-k:r.head+j-k]...)
		}
	}
	return dst, json
}

// push appends events, newer than every retained one, with their
// prepared JSON (json[i] for evs[i]; json may be nil), and moves the
// oldest of the cache beyond cacheMax to the cold part.
func (r *retained) push(evs []*protocol.Event, json [][]byte) {
	r.hot = append(r.hot, evs...)
	if json != nil {
		r.hotJSON = append(r.hotJSON, json...)
	} else {
		r.hotJSON = append(r.hotJSON, make([][]byte, len(evs))...)
	}
	for len(r.hot)-r.head > r.cacheMax {
		r.spill(r.hot[r.head])
		r.hot[r.head], r.hotJSON[r.head] = nil, nil
		r.head++
	}
	r.compactHot()
}

// spill encodes e at the end of the cold part.
func (r *retained) spill(e *protocol.Event) {
	r.scratch = eventcodec.AppendEvent(r.scratch[:0], e)
	n := len(r.scratch)
	last := len(r.chunks) - 1
	if last < 0 || len(r.chunks[last].b)-r.chunks[last].used < n {
		r.chunks = append(r.chunks, r.newChunk(n))
		last++
	}
	c := &r.chunks[last]
	copy(c.b[c.used:], r.scratch)
	ce := coldEntry{id: e.ID, size: int64(e.Size()), chunk: r.base + last, off: c.used, n: n}
	if !e.Received.IsZero() {
		ce.recvSec, ce.recvNsec, ce.hasRecv = e.Received.Unix(), int32(e.Received.Nanosecond()), true
	}
	r.cold.push(ce)
	c.used += n
	if cap(r.scratch) > chunkSize {
		r.scratch = nil // one huge event: do not keep its buffer
	}
}

// newChunk returns an empty chunk that holds n bytes at least: a spare
// one if it does.
func (r *retained) newChunk(n int) chunk {
	if n <= chunkSize && len(r.spare) > 0 {
		c := r.spare[len(r.spare)-1]
		r.spare = r.spare[:len(r.spare)-1]
		c.used = 0
		return c
	}
	return allocChunk(max(n, chunkSize))
}

// dropOldest removes the oldest retained event.
func (r *retained) dropOldest() {
	if r.coldLen() == 0 {
		r.hot[r.head], r.hotJSON[r.head] = nil, nil
		r.head++
		r.compactHot()
		return
	}
	r.cold.popFront()
	// Release the chunks no retained entry is in any more.
	for len(r.chunks) > 0 && (r.coldLen() == 0 || r.cold.at(0).chunk > r.base) {
		if r.coldLen() == 0 && len(r.chunks) == 1 && len(r.chunks[0].b) == chunkSize {
			r.chunks[0].used = 0 // the only chunk: reuse it as it is
			break
		}
		c := r.chunks[0]
		r.chunks[0] = chunk{}
		r.chunks = r.chunks[1:]
		r.base++
		if len(c.b) == chunkSize && len(r.spare) < maxSpare {
			r.spare = append(r.spare, c)
		} else {
			c.free()
		}
	}
}

// compactHot lets the cache's array go of events it no longer holds.
func (r *retained) compactHot() {
	if r.head > 0 && r.head >= len(r.hot)/2 && r.head >= 1024 || r.head == len(r.hot) {
		k := copy(r.hot, r.hot[r.head:])
		clear(r.hot[k:])
		r.hot = r.hot[:k]
		copy(r.hotJSON, r.hotJSON[r.head:])
		clear(r.hotJSON[k:])
		r.hotJSON = r.hotJSON[:k]
		r.head = 0
	}
}

// release frees every chunk: the Store is closed.
func (r *retained) release() {
	for _, c := range r.chunks {
		c.free()
	}
	for _, c := range r.spare {
		c.free()
	}
	r.chunks, r.spare = nil, nil
	r.cold.reset()
	r.hot, r.hotJSON, r.head = nil, nil, 0
}
