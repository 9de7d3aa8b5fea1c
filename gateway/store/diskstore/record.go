package diskstore

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"maps"
	"math"
	"slices"

	"github.com/zbridge/zbridge/gateway/store/eventcodec"
	"github.com/zbridge/zbridge/gateway/store/memstore"
	"github.com/zbridge/zbridge/protocol"
)

// A record on disk (see the package doc, "File format"):
//
//	u32 length of the payload, little-endian
//	u32 CRC-32C of the kind byte and the payload, little-endian
//	u8  kind (memstore.ChangeKind)
//	    payload
const (
	recordHeader = 9
	// maxRecord is the longest payload the length field holds. Store.Append
	// splits batches far below it; a checkpoint that would not fit stops
	// the journal rather than write a record it could not read back.
	maxRecord = math.MaxUint32
)

// syncMark is the kind of a sync mark: not a change of the store but the
// journal's note, written after each fsync of a segment, that the bytes of
// the segment before an offset were then on stable storage (see the
// package doc, "Sync marks"). Its payload is that offset and the mark's
// own, as unsigned varints. It is far from memstore's change kinds, which
// count up from 1.
const syncMark byte = 0xff

// maxSyncMark is the longest a sync mark record is: its header and two
// varints.
const maxSyncMark = recordHeader + 2*binary.MaxVarintLen64

// castagnoli returns the CRC-32C table. The hash/crc32 package builds it at
// the first call and returns the same one after; a package-level variable
// would build it when any zbridge command starts.
func castagnoli() *crc32.Table { return crc32.MakeTable(crc32.Castagnoli) }

// appendRecord appends c's record to b.
func appendRecord(b []byte, c *memstore.Change) []byte {
	start := len(b)
	b = append(b, 0, 0, 0, 0, 0, 0, 0, 0, byte(c.Kind))
	switch c.Kind {
	case memstore.ChangeEvents:
		b = binary.AppendUvarint(b, uint64(len(c.Events)))
		for i, e := range c.Events {
			if c.Encoded != nil {
				b = append(b, c.Encoded[i]...) // the store's encoding
			} else {
				b = eventcodec.AppendEvent(b, e)
			}
		}
		b = eventcodec.AppendString(b, c.Name)
		b = eventcodec.AppendID(b, c.ID)
	case memstore.ChangePosition, memstore.ChangeGroupCreate:
		b = eventcodec.AppendString(b, c.Name)
		b = eventcodec.AppendID(b, c.ID)
	case memstore.ChangeTrim:
		b = eventcodec.AppendID(b, c.ID)
	case memstore.ChangeGroupDeliver:
		b = eventcodec.AppendString(b, c.Name)
		b = eventcodec.AppendString(b, c.Consumer)
		b = eventcodec.AppendTime(b, c.At)
		b = eventcodec.AppendID(b, c.ID)
		b = eventcodec.AppendIDs(b, c.IDs)
	case memstore.ChangeGroupAck:
		b = eventcodec.AppendString(b, c.Name)
		b = eventcodec.AppendIDs(b, c.IDs)
	case memstore.ChangeGroupDelete:
		b = eventcodec.AppendString(b, c.Name)
	case memstore.ChangeCheckpoint:
		b = appendState(b, c.State)
	}
	return sealRecord(b, start)
}

// sealRecord fills in the header of the record that starts at b[start:]
// and runs to the end of b: the payload's length and the checksum.
func sealRecord(b []byte, start int) []byte {
	payload := len(b) - start - recordHeader
	binary.LittleEndian.PutUint32(b[start:], uint32(payload))
	binary.LittleEndian.PutUint32(b[start+4:], crc32.Checksum(b[start+8:], castagnoli()))
	return b
}

// appendSyncMark appends a sync mark that says the bytes of its segment
// before synced were on stable storage; at is the offset it is written at.
func appendSyncMark(b []byte, synced, at int64) []byte {
	start := len(b)
	b = append(b, 0, 0, 0, 0, 0, 0, 0, 0, syncMark)
	b = binary.AppendUvarint(b, uint64(synced))
	b = binary.AppendUvarint(b, uint64(at))
	return sealRecord(b, start)
}

// parseSyncMark reads a sync mark from the start of b, which may hold more
// after it: what it says, and whether it is a whole sync mark whose
// checksum holds.
func parseSyncMark(b []byte) (synced, at int64, ok bool) {
	if len(b) < recordHeader || b[8] != syncMark {
		return 0, 0, false
	}
	size := recordSize(b)
	if size < 2 || size > maxSyncMark-recordHeader || len(b) < recordHeader+size || !checksumOK(b[:recordHeader+size]) {
		return 0, 0, false
	}
	d := eventcodec.NewDecoder(string(b[recordHeader:recordHeader+size]), ErrCorrupt)
	s, a := d.Uvarint(), d.Uvarint()
	if d.Err() != nil || len(d.Rest()) != 0 || s > math.MaxInt64 || a > math.MaxInt64 {
		return 0, 0, false
	}
	return int64(s), int64(a), true
}

// recordSize reads a record's header: the payload's length.
func recordSize(h []byte) int { return int(binary.LittleEndian.Uint32(h)) }

// checksumOK reports whether a whole record's checksum matches.
func checksumOK(rec []byte) bool {
	return crc32.Checksum(rec[8:], castagnoli()) == binary.LittleEndian.Uint32(rec[4:])
}

// decodeRecord decodes one whole record (header and payload). The
// events' strings share one copy of the payload.
func decodeRecord(rec []byte) (*memstore.Change, error) {
	if len(rec) < recordHeader {
		return nil, fmt.Errorf("%w: record of %d bytes", ErrCorrupt, len(rec))
	}
	if n := recordSize(rec); len(rec) != recordHeader+n {
		return nil, fmt.Errorf("%w: record of %d bytes, header says %d", ErrCorrupt, len(rec), recordHeader+n)
	}
	if !checksumOK(rec) {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	d := eventcodec.NewDecoder(string(rec[recordHeader:]), ErrCorrupt)
	c := &memstore.Change{Kind: memstore.ChangeKind(rec[8])}
	switch c.Kind {
	case memstore.ChangeEvents:
		n := d.Count(eventcodec.MinEvent)
		switch {
		case n == 0 && d.Err() == nil:
			d.Fail("an events record without events")
		case n > maxRecordEvents:
			d.Fail("%d events in a record, more than the %d one holds", n, maxRecordEvents)
		}
		c.Events = decodeEvents(d, n)
		c.Name = d.String()
		c.ID = d.ID()
	case memstore.ChangePosition, memstore.ChangeGroupCreate:
		c.Name = d.String()
		c.ID = d.ID()
	case memstore.ChangeTrim:
		c.ID = d.ID()
	case memstore.ChangeGroupDeliver:
		c.Name = d.String()
		c.Consumer = d.String()
		c.At = d.Time()
		c.ID = d.ID()
		c.IDs = d.IDs()
	case memstore.ChangeGroupAck:
		c.Name = d.String()
		c.IDs = d.IDs()
	case memstore.ChangeGroupDelete:
		c.Name = d.String()
	case memstore.ChangeCheckpoint:
		c.State = decodeState(d)
	default:
		d.Fail("record kind %d", c.Kind)
	}
	if d.Err() == nil && len(d.Rest()) != 0 {
		d.Fail("%d bytes after the record's data", len(d.Rest()))
	}
	if d.Err() != nil {
		return nil, d.Err()
	}
	return c, nil
}

// maxRecordEvents is the most events one record holds, so that the events
// of a damaged or crafted record cost at most about 64 MiB of memory when
// decoded (an event takes about 340 bytes in memory and may take 19 on
// disk): Append splits a batch at maxAppendBytes by protocol.Event.Size,
// which counts 400 bytes an event and more, and at this count too, and
// AppendMarked refuses more (VMMON sends at most protocol.MaxBatch).
const maxRecordEvents = maxAppendBytes / 400

// eventSlab is how many events decodeEvents allocates at once.
const eventSlab = 1024

// decodeEvents reads n events (at most maxRecordEvents). They are
// allocated eventSlab at a time as they decode, so that damage stops the
// decoder before it allocates much more than what decoded, and never
// copied; their IDs must rise, as memstore gave them.
func decodeEvents(d *eventcodec.Decoder, n int) []*protocol.Event {
	if d.Err() != nil {
		return nil
	}
	evs := make([]*protocol.Event, 0, n)
	var slab []protocol.Event
	for i := 0; i < n && d.Err() == nil; i++ {
		if len(slab) == 0 {
			slab = make([]protocol.Event, min(n-i, eventSlab))
		}
		e := &slab[0]
		slab = slab[1:]
		d.Event(e)
		if i > 0 && d.Err() == nil && !evs[i-1].ID.Less(e.ID) {
			d.Fail("event %d: ID %s not after %s", i, e.ID, evs[i-1].ID)
		}
		evs = append(evs, e)
	}
	return evs
}

// appendState appends a checkpoint's state: born, last, trimmed, the
// positions, then the groups, each with its pending entries; names in
// sorted order so that a state always encodes the same way.
func appendState(b []byte, st *memstore.State) []byte {
	b = eventcodec.AppendID(b, st.Born)
	b = eventcodec.AppendID(b, st.Last)
	b = eventcodec.AppendID(b, st.Trimmed)
	b = binary.AppendUvarint(b, uint64(len(st.Positions)))
	for _, name := range sortedKeys(st.Positions) {
		b = eventcodec.AppendString(b, name)
		b = eventcodec.AppendID(b, st.Positions[name])
	}
	b = binary.AppendUvarint(b, uint64(len(st.Groups)))
	for _, name := range sortedKeys(st.Groups) {
		g := st.Groups[name]
		b = eventcodec.AppendString(b, name)
		b = eventcodec.AppendID(b, g.Cursor)
		b = binary.AppendUvarint(b, uint64(len(g.Pending)))
		for _, p := range g.Pending {
			b = eventcodec.AppendID(b, p.ID)
			b = eventcodec.AppendString(b, p.Consumer)
			b = eventcodec.AppendTime(b, p.At)
		}
	}
	return b
}

// decodeState reads what appendState wrote.
func decodeState(d *eventcodec.Decoder) *memstore.State {
	st := &memstore.State{Born: d.ID(), Last: d.ID(), Trimmed: d.ID(),
		Positions: make(map[string]protocol.ID), Groups: make(map[string]memstore.GroupState)}
	for n := d.Count(3); n > 0; n-- {
		name := d.String()
		st.Positions[name] = d.ID()
	}
	for n := d.Count(4); n > 0; n-- {
		name := d.String()
		g := memstore.GroupState{Cursor: d.ID()}
		np := d.Count(4)
		g.Pending = make([]memstore.Pending, 0, np)
		for ; np > 0; np-- {
			g.Pending = append(g.Pending, memstore.Pending{ID: d.ID(), Consumer: d.String(), At: d.Time()})
		}
		st.Groups[name] = g
	}
	return st
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
