package diskstore

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"maps"
	"math"
	"slices"
	"time"
	"unsafe"

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

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// appendRecord appends c's record to b.
func appendRecord(b []byte, c *memstore.Change) []byte {
	start := len(b)
	b = append(b, 0, 0, 0, 0, 0, 0, 0, 0, byte(c.Kind))
	switch c.Kind {
	case memstore.ChangeEvents:
		b = binary.AppendUvarint(b, uint64(len(c.Events)))
		for _, e := range c.Events {
			b = appendEvent(b, e)
		}
		b = appendString(b, c.Name)
		b = appendID(b, c.ID)
	case memstore.ChangePosition, memstore.ChangeGroupCreate:
		b = appendString(b, c.Name)
		b = appendID(b, c.ID)
	case memstore.ChangeTrim:
		b = appendID(b, c.ID)
	case memstore.ChangeGroupDeliver:
		b = appendString(b, c.Name)
		b = appendString(b, c.Consumer)
		b = appendTime(b, c.At)
		b = appendID(b, c.ID)
		b = appendIDs(b, c.IDs)
	case memstore.ChangeGroupAck:
		b = appendString(b, c.Name)
		b = appendIDs(b, c.IDs)
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
	binary.LittleEndian.PutUint32(b[start+4:], crc32.Checksum(b[start+8:], castagnoli))
	return b
}

// recordSize reads a record's header: the payload's length.
func recordSize(h []byte) int { return int(binary.LittleEndian.Uint32(h)) }

// checksumOK reports whether a whole record's checksum matches.
func checksumOK(rec []byte) bool {
	return crc32.Checksum(rec[8:], castagnoli) == binary.LittleEndian.Uint32(rec[4:])
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
	d := decoder{s: string(rec[recordHeader:])}
	c := &memstore.Change{Kind: memstore.ChangeKind(rec[8])}
	switch c.Kind {
	case memstore.ChangeEvents:
		n := d.count(minEvent)
		if n == 0 && d.err == nil {
			d.fail("an events record without events")
		}
		// The events are allocated together, but no more at once than
		// the input can hold, whatever its count says.
		evs := make([]protocol.Event, 0, min(n, 1024))
		for i := 0; i < n && d.err == nil; i++ {
			evs = append(evs, protocol.Event{})
			d.event(&evs[len(evs)-1])
		}
		c.Events = make([]*protocol.Event, len(evs))
		for i := range evs {
			c.Events[i] = &evs[i]
		}
		c.Name = d.string()
		c.ID = d.id()
	case memstore.ChangePosition, memstore.ChangeGroupCreate:
		c.Name = d.string()
		c.ID = d.id()
	case memstore.ChangeTrim:
		c.ID = d.id()
	case memstore.ChangeGroupDeliver:
		c.Name = d.string()
		c.Consumer = d.string()
		c.At = d.time()
		c.ID = d.id()
		c.IDs = d.ids()
	case memstore.ChangeGroupAck:
		c.Name = d.string()
		c.IDs = d.ids()
	case memstore.ChangeCheckpoint:
		c.State = d.state()
	default:
		d.fail("record kind %d", c.Kind)
	}
	if d.err == nil && len(d.s) != 0 {
		d.fail("%d bytes after the record's data", len(d.s))
	}
	if d.err != nil {
		return nil, d.err
	}
	return c, nil
}

// Event flags.
const (
	flagParsed     = 1 << iota // Parsed
	flagOriginTime             // OriginTime set; its time and zone offset follow
	flagNoTime                 // Time is the zero time
	flagNoReceived             // Received is the zero time
	flagTextInRaw              // Text is a part of Raw: its offset and length stand in its place
	flagSD                     // SD follows the event's last string (records before SD was kept lack it)
)

// minEvent is the fewest bytes an encoded event takes: two ID varints,
// flags, facility, severity, 14 string lengths.
const minEvent = 2 + 3 + 14

// appendEvent appends an event: ID, flags, times, facility and severity,
// then its strings, then its structured data when it has any: the number
// of elements, and for each its SD-ID, the number of its parameters and
// each parameter's name and value. An event without structured data is
// written exactly as before structured data was kept, so journals of
// either version replay.
func appendEvent(b []byte, e *protocol.Event) []byte {
	b = appendID(b, e.ID)
	var flags byte
	if e.Parsed {
		flags |= flagParsed
	}
	if e.OriginTime != nil {
		flags |= flagOriginTime
	}
	if e.Time.IsZero() {
		flags |= flagNoTime
	}
	if e.Received.IsZero() {
		flags |= flagNoReceived
	}
	// The syslog parser's Text is a substring of Raw: written once.
	textOff, textInRaw := substringOffset(e.Raw, e.Text)
	if textInRaw {
		flags |= flagTextInRaw
	}
	if len(e.SD) > 0 {
		flags |= flagSD
	}
	b = append(b, flags, byte(e.Facility), byte(e.Severity))
	if !e.Received.IsZero() {
		b = appendTime(b, e.Received)
	}
	if !e.Time.IsZero() {
		b = appendTime(b, e.Time)
	}
	if e.OriginTime != nil {
		b = appendTime(b, *e.OriginTime)
		_, off := e.OriginTime.Zone()
		b = binary.AppendVarint(b, int64(off))
	}
	for _, s := range [...]string{e.TimeFilled, e.Origin.System, e.Origin.Host, e.Origin.Node, e.Origin.Addr,
		string(e.Source), e.MsgID, e.App, e.ProcID, e.Type, e.User} {
		b = appendString(b, s)
	}
	if textInRaw {
		b = binary.AppendUvarint(b, uint64(textOff))
		b = binary.AppendUvarint(b, uint64(len(e.Text)))
	} else {
		b = appendString(b, e.Text)
	}
	b = appendString(b, e.Raw)
	b = appendString(b, e.ParseError)
	if len(e.SD) > 0 {
		b = binary.AppendUvarint(b, uint64(len(e.SD)))
		for _, el := range e.SD {
			b = appendString(b, el.ID)
			b = binary.AppendUvarint(b, uint64(len(el.Params)))
			for _, p := range el.Params {
				b = appendString(b, p.Name)
				b = appendString(b, p.Value)
			}
		}
	}
	return b
}

// substringOffset reports whether sub is a part of s in memory (not only
// equal to one) and where it starts. It compares addresses only: nothing
// is read through them.
func substringOffset(s, sub string) (int, bool) {
	if len(sub) == 0 || len(sub) > len(s) {
		return 0, false
	}
	p, q := uintptr(unsafe.Pointer(unsafe.StringData(s))), uintptr(unsafe.Pointer(unsafe.StringData(sub)))
	if q < p || q-p > uintptr(len(s)-len(sub)) {
		return 0, false
	}
	return int(q - p), true
}

func (d *decoder) event(e *protocol.Event) {
	e.ID = d.id()
	flags, fac, sev := d.byte(), d.byte(), d.byte()
	e.Parsed = flags&flagParsed != 0
	e.Facility, e.Severity = protocol.Facility(fac), protocol.Severity(sev)
	if flags&flagNoReceived == 0 {
		e.Received = d.time()
	}
	if flags&flagNoTime == 0 {
		e.Time = d.time()
	}
	if flags&flagOriginTime != 0 {
		t := d.time()
		off := d.varint()
		if off < -24*3600 || off > 24*3600 {
			d.fail("zone offset %d", off)
			return
		}
		if off != 0 {
			t = t.In(time.FixedZone("", int(off)))
		}
		e.OriginTime = &t
	}
	e.TimeFilled = d.string()
	e.Origin.System = d.string()
	e.Origin.Host = d.string()
	e.Origin.Node = d.string()
	e.Origin.Addr = d.string()
	e.Source = protocol.Source(d.string())
	e.MsgID = d.string()
	e.App = d.string()
	e.ProcID = d.string()
	e.Type = d.string()
	e.User = d.string()
	var off, n uint64
	if flags&flagTextInRaw != 0 {
		off, n = d.uvarint(), d.uvarint()
	} else {
		e.Text = d.string()
	}
	e.Raw = d.string()
	e.ParseError = d.string()
	if flags&flagSD != 0 {
		e.SD = d.sd()
	}
	if flags&flagTextInRaw != 0 && d.err == nil {
		if off > uint64(len(e.Raw)) || n > uint64(len(e.Raw))-off {
			d.fail("text at %d+%d outside a raw of %d bytes", off, n, len(e.Raw))
			return
		}
		e.Text = e.Raw[off : off+n]
	}
}

// sd reads an event's structured data (see appendEvent).
func (d *decoder) sd() protocol.StructuredData {
	n := d.count(2) // an ID's length and a parameter count at least
	if n == 0 {
		return nil
	}
	sd := make(protocol.StructuredData, n)
	for i := range sd {
		sd[i].ID = d.string()
		if np := d.count(2); np > 0 { // two lengths at least
			sd[i].Params = make([]protocol.SDParam, np)
			for j := range sd[i].Params {
				sd[i].Params[j] = protocol.SDParam{Name: d.string(), Value: d.string()}
			}
		}
	}
	if d.err != nil {
		return nil
	}
	return sd
}

// appendState appends a checkpoint's state: born, last, trimmed, the
// positions, then the groups, each with its pending entries; names in
// sorted order so that a state always encodes the same way.
func appendState(b []byte, st *memstore.State) []byte {
	b = appendID(b, st.Born)
	b = appendID(b, st.Last)
	b = appendID(b, st.Trimmed)
	b = binary.AppendUvarint(b, uint64(len(st.Positions)))
	for _, name := range sortedKeys(st.Positions) {
		b = appendString(b, name)
		b = appendID(b, st.Positions[name])
	}
	b = binary.AppendUvarint(b, uint64(len(st.Groups)))
	for _, name := range sortedKeys(st.Groups) {
		g := st.Groups[name]
		b = appendString(b, name)
		b = appendID(b, g.Cursor)
		b = binary.AppendUvarint(b, uint64(len(g.Pending)))
		for _, p := range g.Pending {
			b = appendID(b, p.ID)
			b = appendString(b, p.Consumer)
			b = appendTime(b, p.At)
		}
	}
	return b
}

func (d *decoder) state() *memstore.State {
	st := &memstore.State{Born: d.id(), Last: d.id(), Trimmed: d.id(),
		Positions: make(map[string]protocol.ID), Groups: make(map[string]memstore.GroupState)}
	for n := d.count(3); n > 0; n-- {
		name := d.string()
		st.Positions[name] = d.id()
	}
	for n := d.count(4); n > 0; n-- {
		name := d.string()
		g := memstore.GroupState{Cursor: d.id()}
		np := d.count(4)
		g.Pending = make([]memstore.Pending, 0, np)
		for ; np > 0; np-- {
			g.Pending = append(g.Pending, memstore.Pending{ID: d.id(), Consumer: d.string(), At: d.time()})
		}
		st.Groups[name] = g
	}
	return st
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendID(b []byte, id protocol.ID) []byte {
	return binary.AppendUvarint(binary.AppendUvarint(b, id.Ms), id.Seq)
}

func appendIDs(b []byte, ids []protocol.ID) []byte {
	b = binary.AppendUvarint(b, uint64(len(ids)))
	for _, id := range ids {
		b = appendID(b, id)
	}
	return b
}

// appendTime appends a time as seconds since the Unix epoch and
// nanoseconds, which holds every time a time.Time does.
func appendTime(b []byte, t time.Time) []byte {
	return binary.AppendUvarint(binary.AppendVarint(b, t.Unix()), uint64(t.Nanosecond()))
}

// decoder reads a payload. The first error sticks: every read after it
// returns zero values.
type decoder struct {
	s   string
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
	}
	d.s = ""
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	var v uint64
	for i := 0; i < len(d.s) && i < binary.MaxVarintLen64; i++ {
		c := d.s[i]
		if i == binary.MaxVarintLen64-1 && c > 1 {
			break
		}
		v |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			d.s = d.s[i+1:]
			return v
		}
	}
	d.fail("bad varint")
	return 0
}

func (d *decoder) varint() int64 {
	u := d.uvarint()
	x := int64(u >> 1)
	if u&1 != 0 {
		x = ^x
	}
	return x
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.s) == 0 {
		d.fail("record ends early")
		return 0
	}
	c := d.s[0]
	d.s = d.s[1:]
	return c
}

func (d *decoder) string() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.s)) {
		d.fail("string of %d bytes, %d left", n, len(d.s))
		return ""
	}
	s := d.s[:n]
	d.s = d.s[n:]
	return s
}

func (d *decoder) id() protocol.ID {
	return protocol.ID{Ms: d.uvarint(), Seq: d.uvarint()}
}

func (d *decoder) ids() []protocol.ID {
	n := d.count(2)
	if n == 0 {
		return nil
	}
	ids := make([]protocol.ID, n)
	for i := range ids {
		ids[i] = d.id()
	}
	return ids
}

func (d *decoder) time() time.Time {
	sec, nsec := d.varint(), d.uvarint()
	if nsec >= 1e9 {
		d.fail("%d nanoseconds", nsec)
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}

// count reads a number of items that take at least min bytes each, so that
// damage cannot make the decoder allocate more than the record holds.
func (d *decoder) count(min int) int {
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.s)/min) {
		d.fail("%d items in %d bytes", n, len(d.s))
		return 0
	}
	return int(n)
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
