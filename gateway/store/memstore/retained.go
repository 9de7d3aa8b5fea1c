package memstore

import (
	"errors"
	"sort"
	"time"

	"github.com/zbridge/zbridge/gateway/store/eventcodec"
	"github.com/zbridge/zbridge/protocol"
)

// DefaultCacheEvents is Config.CacheEvents's default: the newest events
// kept as they came, which subscribers that keep up read. The garbage
// collector traces every pointer of these events at each collection (some
// ten an event), and a collection's length is what the relay's tail
// latency follows, so the cache is a few batches: at half a million events
// a second, 16 ms of traffic; a quiet region's last seconds or minutes.
const DefaultCacheEvents = 8192

// DefaultJSONEvents is Config.JSONEvents's default: the newest events
// whose prepared JSON is kept, in the cache and, beyond it, outside the Go
// heap with the encoded events. A subscriber that falls behind the cache
// by less than this decodes each event it reads but does not encode its
// JSON again.
const DefaultJSONEvents = 65536

// errDamaged is wrapped by the error of an event the cold part cannot
// decode.
var errDamaged = errors.New("memstore: damaged event")

// retained is a Store's retained events in ID order: the newest (at most
// cacheMax) as the events appended, the older encoded (eventcodec) in
// chunks outside the Go heap (see chunk_unix.go): however many events
// retention holds, the garbage collector scans only the cache, and trimming
// gives the chunks back for reuse instead of leaving garbage. An event read
// from the older part is decoded afresh for each reader. With a journal,
// an appended event is encoded once, when it has its ID (encodeEvents): the
// journal records those bytes, the cache keeps them beside the event
// (hotEnc), and the cold part copies them when the event leaves the cache.
//
// The prepared JSON of the newest jsonMax events is kept too: the cache's
// beside its events (hotJSON), the older ones' in chunks of their own
// (jsonChunks), the "warm" part, given up as the window moves on. A read
// copies the warm JSON out of its chunk, which the next append may reuse.
//
// Positions are indexes over both: 0 is the oldest retained event, the
// cold part first. The Store's lock guards a retained.
type retained struct {
	cacheMax int
	jsonMax  int

	hot     []*protocol.Event // hot[head:] are the newest events
	hotJSON [][]byte          // hotJSON[i] is hot[i]'s JSON after its ID, or nil
	hotEnc  [][]byte          // hotEnc[i] is hot[i] encoded (eventcodec), or nil
	head    int

	cold       coldIndex // the older events, in ID order
	chunks     chunkRing // the cold events, encoded
	jsonChunks chunkRing // the warm events' JSON
	warm       int       // the newest warm cold entries have their JSON in jsonChunks
	scratch    []byte    // an event being encoded
}

// coldEntry is an encoded event's place, and what trimming needs of it
// without decoding it. It holds no pointer.
type coldEntry struct {
	id       protocol.ID
	recvSec  int64 // Received: seconds since the Unix epoch,
	recvNsec int32 // and nanoseconds;
	hasRecv  bool  // false for the zero time
	audit    bool  // an audit record (SourceAudit): never read light
	size     int64 // the event's Size()
	chunk    int64 // chunk number in retained.chunks
	off, n   int32 // its bytes in the chunk
	// Its JSON's place in retained.jsonChunks, while it is warm and has
	// JSON (jn > 0). Without JSON, jchunk is the JSON chunk that was the
	// last when it spilled: the JSON of every newer event is in that chunk
	// or a later one.
	jchunk   int64
	joff, jn int32
}

// chunkSize is the size of a chunk; an event larger than it gets a chunk
// of its own. (Frames are bounded far below 2 GiB, which offsets in a
// chunk must stay under.)
const chunkSize = 4 << 20

// maxSpare is how many emptied chunks a chunkRing keeps for reuse.
const maxSpare = 2

// chunkRing is a queue of chunks, each numbered: bytes are put at the
// back and chunks released at the front, in order.
type chunkRing struct {
	chunks []chunk // chunks[i] is chunk number base+i
	base   int64
	spare  []chunk // emptied chunks kept for reuse
}

// put copies b to the back of the ring and returns where it is.
func (r *chunkRing) put(b []byte) (num int64, off int32) {
	n := len(b)
	last := len(r.chunks) - 1
	if last < 0 || len(r.chunks[last].b)-r.chunks[last].used < n {
		r.chunks = append(r.chunks, r.newChunk(n))
		last++
	}
	c := &r.chunks[last]
	off = int32(c.used)
	copy(c.b[c.used:], b)
	c.used += n
	return r.base + int64(last), off
}

// get returns the n bytes at off in chunk num: memory the ring reuses once
// the chunk is released.
func (r *chunkRing) get(num int64, off, n int32) []byte {
	return r.chunks[num-r.base].b[off : off+n]
}

// lastNum returns the number of the back chunk (base-1 when there is
// none): bytes put from now on go in it or in a later one.
func (r *chunkRing) lastNum() int64 { return r.base + int64(len(r.chunks)) - 1 }

// newChunk returns an empty chunk that holds n bytes at least: a spare
// one if it does.
func (r *chunkRing) newChunk(n int) chunk {
	if n <= chunkSize && len(r.spare) > 0 {
		c := r.spare[len(r.spare)-1]
		r.spare = r.spare[:len(r.spare)-1]
		c.used = 0
		return c
	}
	return allocChunk(max(n, chunkSize))
}

// releaseBefore releases the chunks numbered below num: nothing is read
// from them any more. The only chunk, when it is released, is kept and
// emptied instead, for the next bytes.
func (r *chunkRing) releaseBefore(num int64) {
	for len(r.chunks) > 0 && r.base < num {
		if len(r.chunks) == 1 && len(r.chunks[0].b) == chunkSize {
			r.chunks[0].used = 0 // the only chunk: reuse it as it is
			return
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

// held returns the number of chunks the ring holds, spare ones included.
func (r *chunkRing) held() int { return len(r.chunks) + len(r.spare) }

// release frees every chunk.
func (r *chunkRing) release() {
	for _, c := range r.chunks {
		c.free()
	}
	for _, c := range r.spare {
		c.free()
	}
	r.chunks, r.spare = nil, nil
}

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
	e := new(protocol.Event)
	r.decode(e, c, string(r.chunks.get(c.chunk, c.off, c.n))) // one allocation: its strings are parts of it
	return e
}

// decode decodes the event of entry c, whose encoding is b, into e.
func (r *retained) decode(e *protocol.Event, c *coldEntry, b string) {
	d := eventcodec.NewDecoder(b, errDamaged)
	d.Event(e)
	if d.Err() != nil {
		// Written by this process a moment ago: only a bug gets here.
		// The event is reported rather than lost in silence.
		*e = protocol.Event{ID: c.id, Source: protocol.SourceRegion, Text: "memstore: " + d.Err().Error(),
			ParseError: d.Err().Error()}
	}
}

// appendRange appends the events at positions i to j-1 to dst, and if
// json is not nil their prepared JSON (nil where none is kept) to json.
// For a reader of JSON (json not nil: a subscriber, which lets go of the
// events once it has sent them), the cold events of the range are decoded
// into one array, with the encodings of those next to each other in a
// chunk copied into one string (at most maxRun bytes): a read allocates a
// few times, not twice an event. For any other reader (one that may keep
// an event, as the lx lines of package unsolmsg do), each cold event is
// decoded into allocations of its own, so that keeping one keeps no other.
// The warm JSON of the range is copied into one allocation. A light read
// (store.PreparedReader's ReadPreparedLight) decodes only the cold events
// that have no JSON kept, or are audit records; the others get their ID
// and Received time from their entry.
func (r *retained) appendRange(dst []*protocol.Event, json [][]byte, i, j int, light bool) ([]*protocol.Event, [][]byte) {
	if k := min(j, r.coldLen()); i < k {
		if json == nil {
			for p := i; p < k; p++ {
				dst = append(dst, r.at(p))
			}
		} else {
			dst = r.decodeRange(dst, i, k, light)
			json = r.appendWarmJSON(json, i, k)
		}
		i = k
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

// maxRun bounds the bytes of encodings that decodeRange copies into one
// string (one event larger than it gets a string of its own).
const maxRun = 64 << 10

// decodeRange appends the cold events at positions i to k-1 to dst,
// decoded into one array of events; when light, those with JSON kept and
// not audit records only with their ID and Received time.
func (r *retained) decodeRange(dst []*protocol.Event, i, k int, light bool) []*protocol.Event {
	evs := make([]protocol.Event, k-i)
	var text string     // the encodings of a run of entries, contiguous in one chunk
	var from *coldEntry // the first entry of the run
	for p := i; p < k; p++ {
		c := r.cold.at(p)
		if light && c.jn > 0 && !c.audit {
			e := &evs[p-i]
			e.ID = c.id
			if c.hasRecv {
				e.Received = time.Unix(c.recvSec, int64(c.recvNsec)).UTC()
			}
			dst = append(dst, e)
			continue
		}
		if from == nil || c.chunk != from.chunk || c.off < from.off || int(c.off+c.n-from.off) > len(text) {
			end := c.off + c.n // the run: as far as the entries stay contiguous in c's chunk
			for q := p + 1; q < k; q++ {
				d := r.cold.at(q)
				if d.chunk != c.chunk || d.off != end || d.off+d.n-c.off > maxRun || light && d.jn > 0 && !d.audit {
					break
				}
				end = d.off + d.n
			}
			text, from = string(r.chunks.get(c.chunk, c.off, end-c.off)), c
		}
		r.decode(&evs[p-i], c, text[c.off-from.off:c.off-from.off+c.n])
		dst = append(dst, &evs[p-i])
	}
	return dst
}

// appendWarmJSON appends the JSON kept for the cold positions i to k-1
// (nil for those without) to json, copied into one allocation.
func (r *retained) appendWarmJSON(json [][]byte, i, k int) [][]byte {
	i0 := max(i, r.coldLen()-r.warm) // the first warm position
	for p := i; p < min(i0, k); p++ {
		json = append(json, nil)
	}
	total := 0
	for p := i0; p < k; p++ {
		total += int(r.cold.at(p).jn)
	}
	buf := make([]byte, 0, total)
	for p := i0; p < k; p++ {
		c := r.cold.at(p)
		if c.jn == 0 {
			json = append(json, nil)
			continue
		}
		start := len(buf)
		buf = append(buf, r.jsonChunks.get(c.jchunk, c.joff, c.jn)...)
		json = append(json, buf[start:len(buf):len(buf)])
	}
	return json
}

// push appends events, newer than every retained one, with their
// prepared JSON (json[i] for evs[i]) and their encodings (enc[i]; json and
// enc may each be nil), and moves the oldest of the cache beyond cacheMax
// to the cold part, with their JSON while they are among the newest
// jsonMax.
func (r *retained) push(evs []*protocol.Event, json, enc [][]byte) {
	r.hot = append(r.hot, evs...)
	if json == nil {
		json = make([][]byte, len(evs))
	}
	r.hotJSON = append(r.hotJSON, json...)
	if enc == nil {
		enc = make([][]byte, len(evs))
	}
	r.hotEnc = append(r.hotEnc, enc...)
	spills := len(r.hot) - r.head - r.cacheMax
	for k := 0; k < spills; k++ {
		json := r.hotJSON[r.head]
		if spills-k > r.jsonMax-r.cacheMax {
			json = nil // older than the window once this push is done: not kept
		}
		r.spill(r.hot[r.head], json, r.hotEnc[r.head])
		r.hot[r.head], r.hotJSON[r.head], r.hotEnc[r.head] = nil, nil, nil
		r.head++
	}
	r.compactHot()
	r.coolWarm()
}

// spill puts e at the end of the cold part, encoded (enc, or encoded now
// when enc is nil), with its JSON if it has some and the warm part has
// room.
func (r *retained) spill(e *protocol.Event, json, enc []byte) {
	if enc == nil {
		r.scratch = eventcodec.AppendEvent(r.scratch[:0], e)
		enc = r.scratch
	}
	ce := coldEntry{id: e.ID, size: int64(e.Size()), n: int32(len(enc)), audit: e.Source == protocol.SourceAudit}
	ce.chunk, ce.off = r.chunks.put(enc)
	if !e.Received.IsZero() {
		ce.recvSec, ce.recvNsec, ce.hasRecv = e.Received.Unix(), int32(e.Received.Nanosecond()), true
	}
	ce.jchunk = r.jsonChunks.lastNum()
	if json != nil && r.jsonMax > r.cacheMax {
		ce.jchunk, ce.joff = r.jsonChunks.put(json)
		ce.jn = int32(len(json))
	}
	r.cold.push(ce)
	if r.jsonMax > r.cacheMax {
		r.warm++
	}
	if cap(r.scratch) > chunkSize {
		r.scratch = nil // one huge event: do not keep its buffer
	}
}

// coolWarm gives up the JSON of the warm entries that are no longer among
// the newest jsonMax events, and the JSON chunks no warm entry is in.
func (r *retained) coolWarm() {
	hot := len(r.hot) - r.head
	if hot+r.warm <= r.jsonMax {
		return
	}
	for r.warm > 0 && hot+r.warm > r.jsonMax {
		c := r.cold.at(r.coldLen() - r.warm)
		c.jn, c.joff = 0, 0
		r.warm--
	}
	r.releaseJSON()
}

// releaseJSON releases the JSON chunks that no warm entry is in.
func (r *retained) releaseJSON() {
	if r.warm == 0 {
		r.jsonChunks.releaseBefore(r.jsonChunks.lastNum() + 1)
		return
	}
	r.jsonChunks.releaseBefore(r.cold.at(r.coldLen() - r.warm).jchunk)
}

// dropOldest removes the oldest retained event.
func (r *retained) dropOldest() {
	if r.coldLen() == 0 {
		r.hot[r.head], r.hotJSON[r.head], r.hotEnc[r.head] = nil, nil, nil
		r.head++
		r.compactHot()
		return
	}
	if r.warm == r.coldLen() {
		r.warm-- // a warm entry goes
	}
	r.cold.popFront()
	r.releaseJSON()
	// Release the chunks no retained entry is in any more.
	if r.coldLen() == 0 {
		r.chunks.releaseBefore(r.chunks.lastNum() + 1)
	} else {
		r.chunks.releaseBefore(r.cold.at(0).chunk)
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
		copy(r.hotEnc, r.hotEnc[r.head:])
		clear(r.hotEnc[k:])
		r.hotEnc = r.hotEnc[:k]
		r.head = 0
	}
}

// release frees every chunk: the Store is closed.
func (r *retained) release() {
	r.chunks.release()
	r.jsonChunks.release()
	r.cold.reset()
	r.hot, r.hotJSON, r.hotEnc, r.head, r.warm = nil, nil, nil, 0, 0
}
