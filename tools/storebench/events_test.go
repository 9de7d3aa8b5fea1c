package storebench

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/zbridge/zbridge/protocol"
)

// The events: syslog events as the region's parser makes them from RFC 5424
// input, with a Text of 200 bytes and a Raw of the same size, and IDs rising
// as the region assigns them (milliseconds, and a sequence within each).

const (
	ringSize = 1024 // distinct event bodies; IDs are new for every event
	textLen  = 200
	baseMs   = 1_790_000_000_000 // 2026-09
	perMs    = 512               // events per millisecond of ID
)

var zone0 = time.FixedZone("", 0) // what the parser gives for "+00:00"

// source hands out events with rising IDs. The bodies come from a ring of
// ringSize prepared events; fill sets the ID (and times) of each before it
// is handed out, so a ring slot must not be handed out again while the
// previous use is still being encoded (batches are far smaller than the
// ring).
type source struct {
	ring []protocol.Event
	n    uint64 // events handed out
}

func newSource() *source {
	s := &source{ring: make([]protocol.Event, ringSize)}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range s.ring {
		host := "lnx" + strconv.Itoa(10+i%37) + ".example.com"
		text := logText(rng, textLen)
		raw := "<13>1 2026-11-22T02:50:57.069805+00:00 " + host + " myapp 12345 ID47 - " + text
		raw = raw[:textLen]
		s.ring[i] = protocol.Event{
			TimeFilled: "",
			Origin:     protocol.Origin{System: host, Host: host, Addr: "10.1.2." + strconv.Itoa(i%250)},
			Source:     protocol.SourceSyslog,
			MsgID:      "ID47",
			App:        "myapp",
			ProcID:     strconv.Itoa(1000 + i),
			Facility:   protocol.FacUser,
			Severity:   protocol.SevNotice,
			Text:       text,
			Raw:        raw,
			Parsed:     true,
		}
		ot := time.Date(2026, 11, 22, 2, 50, 57, 69805000, zone0)
		s.ring[i].OriginTime = &ot
	}
	return s
}

// logWords are what logText makes a message of.
var logWords = strings.Fields(`connection from accepted closed reset timeout session user
	opened for by uid gid pam_unix sshd cron job started finished failed error warning
	disk device mounted unmounted filesystem read write retry after seconds request
	response status code service unit reloaded configuration changed backup complete
	queue length exceeded threshold memory usage cpu load high low interface link up
	down address port protocol tcp udp received sent bytes packets dropped checksum
	database transaction committed rolled back lock wait deadlock detected query slow
	certificate expires in days renewed token invalid authentication succeeded denied`)

// logText makes a message of n bytes: words, numbers, hex identifiers and
// addresses, so that it compresses about as much as real log text does
// (block compressors get roughly 2-3x on it), not more.
func logText(rng *rand.Rand, n int) string {
	var b []byte
	for len(b) < n {
		switch rng.IntN(8) {
		case 0:
			b = strconv.AppendUint(b, rng.Uint64N(100000), 10)
		case 1:
			b = strconv.AppendUint(b, rng.Uint64(), 16)
		case 2:
			b = fmt.Appendf(b, "10.%d.%d.%d:%d", rng.IntN(256), rng.IntN(256), rng.IntN(256), rng.IntN(65536))
		default:
			b = append(b, logWords[rng.IntN(len(logWords))]...)
		}
		b = append(b, ' ')
	}
	return string(b[:n])
}

// idOf is the ID of the n-th event handed out.
func idOf(n uint64) protocol.ID { return protocol.ID{Ms: baseMs + n/perMs, Seq: n % perMs} }

// fill points evs at the next len(evs) events.
func (s *source) fill(evs []*protocol.Event) {
	for i := range evs {
		e := &s.ring[s.n%ringSize]
		e.ID = idOf(s.n)
		e.Received = time.UnixMilli(int64(e.ID.Ms)).UTC()
		e.Time = e.Received
		evs[i] = e
		s.n++
	}
}

// key is the 16-byte big-endian form of an ID: keys sort as IDs do.
type key [16]byte

func keyOf(id protocol.ID) (k key) {
	binary.BigEndian.PutUint64(k[:8], id.Ms)
	binary.BigEndian.PutUint64(k[8:], id.Seq)
	return k
}

// codec is one value encoding.
type codec struct {
	name   string
	encode func(b []byte, e *protocol.Event) []byte
	// decode decodes p into e; d is the decoder's state, reused.
	decode func(d *decoder, p []byte, e *protocol.Event) error
}

var codecs = []codec{
	{"json", protocol.AppendEventJSON, decodeJSON},
	{"bin", appendEventBin, decodeBin},
}

func codecNamed(name string) codec {
	for _, c := range codecs {
		if c.name == name {
			return c
		}
	}
	panic("no codec " + name)
}

// decodeJSON decodes with encoding/json: the main module has no JSON
// decoder of its own for events (Redis's store uses encoding/json too).
func decodeJSON(_ *decoder, p []byte, e *protocol.Event) error {
	*e = protocol.Event{}
	return json.Unmarshal(p, e)
}

// The binary encoding: fixed-width ID, varint times, three bytes of small
// fields, then every string as a uvarint length and its bytes.
//
//	ms u64be | seq u64be | received varint ns | time varint ns |
//	flags byte (1: origin time, 2: parsed) | facility byte | severity byte |
//	[origin time varint ns | zone offset varint s] |
//	14 × (uvarint len | bytes): time_filled system host node addr source
//	msgid app procid type user text raw parse_error
func appendEventBin(b []byte, e *protocol.Event) []byte {
	b = binary.BigEndian.AppendUint64(b, e.ID.Ms)
	b = binary.BigEndian.AppendUint64(b, e.ID.Seq)
	b = binary.AppendVarint(b, e.Received.UnixNano())
	b = binary.AppendVarint(b, e.Time.UnixNano())
	var flags byte
	if e.OriginTime != nil {
		flags |= 1
	}
	if e.Parsed {
		flags |= 2
	}
	b = append(b, flags, byte(e.Facility), byte(e.Severity))
	if e.OriginTime != nil {
		b = binary.AppendVarint(b, e.OriginTime.UnixNano())
		_, off := e.OriginTime.Zone()
		b = binary.AppendVarint(b, int64(off))
	}
	for _, s := range [...]string{e.TimeFilled, e.Origin.System, e.Origin.Host, e.Origin.Node,
		e.Origin.Addr, string(e.Source), e.MsgID, e.App, e.ProcID, e.Type, e.User, e.Text, e.Raw,
		e.ParseError} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

// decoder keeps what decodeBin reuses between events.
type decoder struct {
	zoneOff int
	zone    *time.Location
}

var errShort = errors.New("binary event: short record")

// decodeBin decodes a record made by appendEventBin. The strings share one
// allocation: the record's copy.
func decodeBin(d *decoder, p []byte, e *protocol.Event) error {
	if len(p) < 16+3 {
		return errShort
	}
	all := string(p)
	*e = protocol.Event{}
	e.ID.Ms = binary.BigEndian.Uint64(p)
	e.ID.Seq = binary.BigEndian.Uint64(p[8:])
	i := 16
	varint := func() int64 {
		v, n := binary.Varint(p[i:])
		if n <= 0 {
			i = -1
			return 0
		}
		i += n
		return v
	}
	e.Received = time.Unix(0, varint()).UTC()
	if i < 0 {
		return errShort
	}
	e.Time = time.Unix(0, varint()).UTC()
	if i < 0 || i+3 > len(p) {
		return errShort
	}
	flags := p[i]
	e.Facility, e.Severity = protocol.Facility(p[i+1]), protocol.Severity(p[i+2])
	e.Parsed = flags&2 != 0
	i += 3
	if flags&1 != 0 {
		ns := varint()
		if i < 0 {
			return errShort
		}
		off := int(varint())
		if i < 0 {
			return errShort
		}
		if d.zone == nil || d.zoneOff != off {
			d.zone, d.zoneOff = time.FixedZone("", off), off
		}
		t := time.Unix(0, ns).In(d.zone)
		e.OriginTime = &t
	}
	for _, dst := range [...]*string{&e.TimeFilled, &e.Origin.System, &e.Origin.Host, &e.Origin.Node,
		&e.Origin.Addr, (*string)(&e.Source), &e.MsgID, &e.App, &e.ProcID, &e.Type, &e.User, &e.Text,
		&e.Raw, &e.ParseError} {
		l, n := binary.Uvarint(p[i:])
		if n <= 0 || uint64(len(p)-i-n) < l {
			return errShort
		}
		i += n
		*dst = all[i : i+int(l)]
		i += int(l)
	}
	return nil
}
