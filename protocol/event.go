package protocol

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// ID identifies an event. The region assigns it on arrival; IDs compare in
// arrival order. Its text form is "MS-SEQ" (milliseconds since the Unix epoch
// of the region's clock, and a sequence number within that millisecond), the
// same form as a Redis stream entry ID, so the embedded store and Redis agree.
// The zero ID sorts before every event and means "from the beginning".
type ID struct {
	Ms  uint64
	Seq uint64
}

// String returns the "MS-SEQ" text form.
func (id ID) String() string { return string(id.Append(nil)) }

// Append appends the text form of id to b.
func (id ID) Append(b []byte) []byte {
	b = strconv.AppendUint(b, id.Ms, 10)
	b = append(b, '-')
	return strconv.AppendUint(b, id.Seq, 10)
}

// IsZero reports whether id is the zero ID.
func (id ID) IsZero() bool { return id.Ms == 0 && id.Seq == 0 }

// Compare returns -1, 0 or +1 as id sorts before, with or after o.
func (id ID) Compare(o ID) int {
	switch {
	case id.Ms < o.Ms:
		return -1
	case id.Ms > o.Ms:
		return 1
	case id.Seq < o.Seq:
		return -1
	case id.Seq > o.Seq:
		return 1
	}
	return 0
}

// Less reports whether id sorts before o.
func (id ID) Less(o ID) bool { return id.Compare(o) < 0 }

// ParseID parses the "MS-SEQ" text form. "0" and "" parse as the zero ID; a
// bare "MS" means "MS-0".
func ParseID(s string) (ID, error) {
	if s == "" || s == "0" {
		return ID{}, nil
	}
	ms, seq, found := strings.Cut(s, "-")
	var id ID
	var err error
	if id.Ms, err = strconv.ParseUint(ms, 10, 64); err != nil {
		return ID{}, fmt.Errorf("%w: %q", ErrBadID, s)
	}
	if found {
		if id.Seq, err = strconv.ParseUint(seq, 10, 64); err != nil {
			return ID{}, fmt.Errorf("%w: %q", ErrBadID, s)
		}
	}
	return id, nil
}

// parseIDBytes is ParseID of string(b), without allocating: ok is false
// where ParseID fails.
func parseIDBytes(b []byte) (id ID, ok bool) {
	if len(b) == 0 || len(b) == 1 && b[0] == '0' {
		return ID{}, true
	}
	ms, seq, found := bytes.Cut(b, []byte{'-'})
	if id.Ms, ok = parseUint64(ms); !ok {
		return ID{}, false
	}
	if found {
		if id.Seq, ok = parseUint64(seq); !ok {
			return ID{}, false
		}
	}
	return id, true
}

// parseUint64 is strconv.ParseUint(string(b), 10, 64) without allocating.
func parseUint64(b []byte) (uint64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		if n > (math.MaxUint64-9)/10 && (n > math.MaxUint64/10 || n*10 > math.MaxUint64-uint64(c-'0')) {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, true
}

// MarshalText implements encoding.TextMarshaler.
func (id ID) MarshalText() ([]byte, error) { return id.Append(nil), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (id *ID) UnmarshalText(b []byte) error {
	v, err := ParseID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// Source is the kind of thing an event came from.
type Source string

// The source kinds of the event model.
const (
	SourceSyslog     Source = "syslog"      // a Linux syslog daemon through SYSLOG
	SourceZVMConsole Source = "zvm-console" // a line scraped from a z/VM console
	SourceZVMEvent   Source = "zvm-event"   // a z/VM event (guest logon/logoff, ...)
	SourceAgent      Source = "agent"       // an agent about itself
	SourceRegion     Source = "region"      // the region about itself
	SourceAudit      Source = "audit"       // an audit record (a command, a refused logon)
	// SourceAvailability is a component's status change, written by the
	// region's availability ledger (its StatusRecord in the SD element
	// status@zbridge).
	SourceAvailability Source = "availability"
)

// Valid reports whether s is one of the defined source kinds.
func (s Source) Valid() bool {
	switch s {
	case SourceSyslog, SourceZVMConsole, SourceZVMEvent, SourceAgent, SourceRegion, SourceAudit, SourceAvailability:
		return true
	}
	return false
}

// Origin says where an event came from.
type Origin struct {
	// System is the system the event is about: a z/VM system name for z/VM
	// sources, the region name for region events, the host name for syslog.
	System string `json:"system,omitempty"`
	// Host is the host name the sender gave (syslog HOSTNAME).
	Host string `json:"host,omitempty"`
	// Node is the z/VM node (VM host) when known.
	Node string `json:"node,omitempty"`
	// Addr is the network address the event arrived from, without port.
	Addr string `json:"addr,omitempty"`
}

// Event is the one record for every unsolicited thing the region relays.
// Nothing is dropped because it did not parse: such an event has Parsed false,
// ParseError set, Text holding the raw text and defaults for the rest.
type Event struct {
	ID ID `json:"id"`
	// Received is when the region received the event, in UTC.
	Received time.Time `json:"received"`
	// OriginTime is the origin's own timestamp, in the origin's zone, when it
	// gave one. For RFC 3164 input, the year and zone it lacked are filled in
	// from the receive time and TimeFilled says so.
	OriginTime *time.Time `json:"origin_time,omitempty"`
	// Time is the normalised UTC time: OriginTime in UTC, or Received when the
	// origin gave no timestamp.
	Time time.Time `json:"time"`
	// TimeFilled lists what of Time was not given by the origin and was taken
	// from the receive time: "year", "zone", or "all" (no usable timestamp).
	TimeFilled string `json:"time_filled,omitempty"`

	Origin Origin `json:"origin"`
	Source Source `json:"source"`
	MsgID  string `json:"msgid,omitempty"`
	App    string `json:"app,omitempty"`
	ProcID string `json:"procid,omitempty"`
	// SD is an RFC 5424 message's STRUCTURED-DATA: its elements in
	// message order, each with its parameters in element order, escapes
	// undone. Nil for the NILVALUE "-", for other sources, and when the
	// structured data is malformed (it is then only in Raw). Its JSON form
	// is an object of objects (see StructuredData). SD-IDs ending in
	// "@zbridge" are the region's own: a sender's element with one is
	// renamed to end in "@claimed" (see package gateway/syslog).
	SD       StructuredData `json:"sd,omitempty"`
	Facility Facility       `json:"facility"`
	Severity Severity       `json:"severity"`
	// Type is the event type for zvm-event sources (LOGON, LOGOFF, ...) and
	// the message type for console messages (MSG, WNG, SMSG, CP).
	Type string `json:"type,omitempty"`
	// User is the z/VM user the event is about or from, when there is one.
	User string `json:"user,omitempty"`
	Text string `json:"text"`
	// Raw is the input exactly as received (framing removed).
	Raw        string `json:"raw,omitempty"`
	Parsed     bool   `json:"parsed"`
	ParseError string `json:"parse_error,omitempty"`
}

// Size is an estimate of the memory an event holds, used for retention by
// bytes: the struct and its origin time (about 380 bytes on 64-bit
// platforms, with allocation rounding), its strings and its structured
// data.
func (e *Event) Size() int {
	return 400 + len(e.Origin.System) + len(e.Origin.Host) + len(e.Origin.Node) +
		len(e.Origin.Addr) + len(e.MsgID) + len(e.App) + len(e.ProcID) + len(e.Type) +
		len(e.User) + len(e.Text) + len(e.Raw) + len(e.ParseError) + len(e.TimeFilled) +
		e.SD.Size()
}
