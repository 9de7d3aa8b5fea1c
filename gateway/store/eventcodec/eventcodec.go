// Package eventcodec is the binary form of an event that the embedded store
// keeps: in diskstore's journal, and in memstore's compact retention of the
// events older than its cache. An event takes about its text's length and
// a few dozen bytes, in one pointer-free slice.
//
// The form is diskstore's journal format (see its package doc): changing
// it changes the files regions have written, so it only grows, with a
// flag for what is new.
package eventcodec

import (
	"encoding/binary"
	"fmt"
	"time"
	"unsafe"

	"github.com/zbridge/zbridge/protocol"
)

// Event flags.
const (
	flagParsed     = 1 << iota // Parsed
	flagOriginTime             // OriginTime set; its time and zone offset follow
	flagNoTime                 // Time is the zero time
	flagNoReceived             // Received is the zero time
	flagTextInRaw              // Text is a part of Raw: its offset and length stand in its place
	flagSD                     // SD follows the event's last string (records before SD was kept lack it)
)

// MinEvent is the fewest bytes an encoded event takes: two ID varints,
// flags, facility, severity, 14 string lengths.
const MinEvent = 2 + 3 + 14

// AppendEvent appends an event: ID, flags, times, facility and severity,
// then its strings, then its structured data when it has any: the number
// of elements, and for each its SD-ID, the number of its parameters and
// each parameter's name and value. An event without structured data is
// written exactly as before structured data was kept, so journals of
// either version replay.
func AppendEvent(b []byte, e *protocol.Event) []byte {
	b = AppendID(b, e.ID)
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
		b = AppendTime(b, e.Received)
	}
	if !e.Time.IsZero() {
		b = AppendTime(b, e.Time)
	}
	if e.OriginTime != nil {
		b = AppendTime(b, *e.OriginTime)
		_, off := e.OriginTime.Zone()
		b = binary.AppendVarint(b, int64(off))
	}
	for _, s := range [...]string{e.TimeFilled, e.Origin.System, e.Origin.Host, e.Origin.Node, e.Origin.Addr,
		string(e.Source), e.MsgID, e.App, e.ProcID, e.Type, e.User} {
		b = AppendString(b, s)
	}
	if textInRaw {
		b = binary.AppendUvarint(b, uint64(textOff))
		b = binary.AppendUvarint(b, uint64(len(e.Text)))
	} else {
		b = AppendString(b, e.Text)
	}
	b = AppendString(b, e.Raw)
	b = AppendString(b, e.ParseError)
	if len(e.SD) > 0 {
		b = binary.AppendUvarint(b, uint64(len(e.SD)))
		for _, el := range e.SD {
			b = AppendString(b, el.ID)
			b = binary.AppendUvarint(b, uint64(len(el.Params)))
			for _, p := range el.Params {
				b = AppendString(b, p.Name)
				b = AppendString(b, p.Value)
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

// Event reads an event written by AppendEvent into e.
func (d *Decoder) Event(e *protocol.Event) {
	e.ID = d.ID()
	flags, fac, sev := d.Byte(), d.Byte(), d.Byte()
	e.Parsed = flags&flagParsed != 0
	e.Facility, e.Severity = protocol.Facility(fac), protocol.Severity(sev)
	if flags&flagNoReceived == 0 {
		e.Received = d.Time()
	}
	if flags&flagNoTime == 0 {
		e.Time = d.Time()
	}
	if flags&flagOriginTime != 0 {
		t := d.Time()
		off := d.Varint()
		if off < -24*3600 || off > 24*3600 {
			d.Fail("zone offset %d", off)
			return
		}
		if off != 0 {
			t = t.In(time.FixedZone("", int(off)))
		}
		e.OriginTime = &t
	}
	e.TimeFilled = d.String()
	e.Origin.System = d.String()
	e.Origin.Host = d.String()
	e.Origin.Node = d.String()
	e.Origin.Addr = d.String()
	e.Source = protocol.Source(d.String())
	e.MsgID = d.String()
	e.App = d.String()
	e.ProcID = d.String()
	e.Type = d.String()
	e.User = d.String()
	var off, n uint64
	if flags&flagTextInRaw != 0 {
		off, n = d.Uvarint(), d.Uvarint()
	} else {
		e.Text = d.String()
	}
	e.Raw = d.String()
	e.ParseError = d.String()
	if flags&flagSD != 0 {
		e.SD = d.sd()
	}
	if flags&flagTextInRaw != 0 && d.err == nil {
		if off > uint64(len(e.Raw)) || n > uint64(len(e.Raw))-off {
			d.Fail("text at %d+%d outside a raw of %d bytes", off, n, len(e.Raw))
			return
		}
		e.Text = e.Raw[off : off+n]
	}
}

// sd reads an event's structured data (see AppendEvent).
func (d *Decoder) sd() protocol.StructuredData {
	n := d.Count(2) // an ID's length and a parameter count at least
	if n == 0 {
		return nil
	}
	sd := make(protocol.StructuredData, n)
	for i := range sd {
		sd[i].ID = d.String()
		if np := d.Count(2); np > 0 { // two lengths at least
			sd[i].Params = make([]protocol.SDParam, np)
			for j := range sd[i].Params {
				sd[i].Params[j] = protocol.SDParam{Name: d.String(), Value: d.String()}
			}
		}
	}
	if d.err != nil {
		return nil
	}
	return sd
}

// AppendString appends s, its length first.
func AppendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// AppendID appends id.
func AppendID(b []byte, id protocol.ID) []byte {
	return binary.AppendUvarint(binary.AppendUvarint(b, id.Ms), id.Seq)
}

// AppendIDs appends ids, their number first.
func AppendIDs(b []byte, ids []protocol.ID) []byte {
	b = binary.AppendUvarint(b, uint64(len(ids)))
	for _, id := range ids {
		b = AppendID(b, id)
	}
	return b
}

// AppendTime appends a time as seconds since the Unix epoch and
// nanoseconds, which holds every time a time.Time does.
func AppendTime(b []byte, t time.Time) []byte {
	return binary.AppendUvarint(binary.AppendVarint(b, t.Unix()), uint64(t.Nanosecond()))
}

// A Decoder reads what the Append functions wrote. The first error sticks:
// every read after it returns zero values. The strings it returns are
// parts of its input.
type Decoder struct {
	s       string
	err     error
	corrupt error
}

// NewDecoder returns a Decoder reading s, whose errors wrap corrupt.
func NewDecoder(s string, corrupt error) *Decoder { return &Decoder{s: s, corrupt: corrupt} }

// Err returns the first error, or nil.
func (d *Decoder) Err() error { return d.err }

// Rest returns what is left to read.
func (d *Decoder) Rest() string { return d.s }

// Fail records an error (if none yet) and ends the input.
func (d *Decoder) Fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: "+format, append([]any{d.corrupt}, args...)...)
	}
	d.s = ""
}

// Uvarint reads an unsigned varint.
func (d *Decoder) Uvarint() uint64 {
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
	d.Fail("bad varint")
	return 0
}

// Varint reads a signed varint.
func (d *Decoder) Varint() int64 {
	u := d.Uvarint()
	x := int64(u >> 1)
	if u&1 != 0 {
		x = ^x
	}
	return x
}

// Byte reads a byte.
func (d *Decoder) Byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.s) == 0 {
		d.Fail("record ends early")
		return 0
	}
	c := d.s[0]
	d.s = d.s[1:]
	return c
}

// String reads a string written by AppendString.
func (d *Decoder) String() string {
	n := d.Uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.s)) {
		d.Fail("string of %d bytes, %d left", n, len(d.s))
		return ""
	}
	s := d.s[:n]
	d.s = d.s[n:]
	return s
}

// ID reads an ID written by AppendID.
func (d *Decoder) ID() protocol.ID {
	return protocol.ID{Ms: d.Uvarint(), Seq: d.Uvarint()}
}

// IDs reads what AppendIDs wrote.
func (d *Decoder) IDs() []protocol.ID {
	n := d.Count(2)
	if n == 0 {
		return nil
	}
	ids := make([]protocol.ID, n)
	for i := range ids {
		ids[i] = d.ID()
	}
	return ids
}

// Time reads a time written by AppendTime, in UTC.
func (d *Decoder) Time() time.Time {
	sec, nsec := d.Varint(), d.Uvarint()
	if nsec >= 1e9 {
		d.Fail("%d nanoseconds", nsec)
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}

// Count reads a number of items that take at least min bytes each, so that
// damage cannot make the decoder allocate more than the record holds.
func (d *Decoder) Count(min int) int {
	n := d.Uvarint()
	if d.err == nil && n > uint64(len(d.s)/min) {
		d.Fail("%d items in %d bytes", n, len(d.s))
		return 0
	}
	return int(n)
}
