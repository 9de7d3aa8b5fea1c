package cluster

import (
	"fmt"
	"strconv"
	"time"

	"github.com/zbridge/zbridge/commands"
)

// The stream entries and their fields (see the package doc). Values are
// strings; data is binary. The entries' values methods give the fields
// without mac, which signer.sign adds.
const (
	typeRun    = "run"
	typeCancel = "cancel"
	typeOut    = "out"
	typeResult = "result"
	typeError  = "error"
)

// runMsg is a type=run inbox entry: a request forwarded from region From.
type runMsg struct {
	FID       string
	ID        string
	Target    string
	Command   string
	Timeout   time.Duration // ms on the wire
	Deadline  time.Time     // Unix ms on the wire; zero: none
	Requester string
	From      string
	// FromInstance is the forwarding process's instance.
	FromInstance string
	// ToInstance is the instance of the holder the request is for: a
	// request is not run by another process of the holder's region.
	ToInstance string
	// Sent is when the forwarder sent the request (Unix ms on the wire).
	Sent time.Time
}

func (m runMsg) values() []string {
	var dl int64
	if !m.Deadline.IsZero() {
		dl = m.Deadline.UnixMilli()
	}
	return []string{"type", typeRun, "fid", m.FID, "id", m.ID, "target", m.Target, "command", m.Command,
		"timeout", itoa(m.Timeout.Milliseconds()), "deadline", itoa(dl), "requester", m.Requester,
		"via", m.From, "instance", m.FromInstance, "to", m.ToInstance, "sent", itoa(m.Sent.UnixMilli())}
}

// cancelMsg is a type=cancel inbox entry: region From stops waiting for
// the command it forwarded as FID.
type cancelMsg struct {
	FID  string
	From string
	Sent time.Time // Unix ms on the wire
}

func (m cancelMsg) values() []string {
	return []string{"type", typeCancel, "fid", m.FID, "via", m.From, "sent", itoa(m.Sent.UnixMilli())}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// inboxEntry is a decoded inbox entry: a run (Run set) or a cancel
// (Cancel set).
type inboxEntry struct {
	Type   string
	FID    string
	Run    runMsg
	Cancel cancelMsg
}

// from returns the region the entry says it comes from.
func (e inboxEntry) from() string {
	if e.Type == typeRun {
		return e.Run.From
	}
	return e.Cancel.From
}

// sent returns when the entry says it was sent.
func (e inboxEntry) sent() time.Time {
	if e.Type == typeRun {
		return e.Run.Sent
	}
	return e.Cancel.Sent
}

func decodeInbox(v map[string]any) (inboxEntry, error) {
	f := fields(v)
	e := inboxEntry{Type: f.str("type"), FID: f.str("fid")}
	if e.FID == "" {
		return e, fmt.Errorf("%w: inbox entry without fid", ErrBadEntry)
	}
	from, sent := f.str("via"), time.UnixMilli(f.int("sent"))
	switch e.Type {
	case typeCancel:
		e.Cancel = cancelMsg{FID: e.FID, From: from, Sent: sent}
	case typeRun:
		e.Run = runMsg{FID: e.FID, ID: f.str("id"), Target: f.str("target"), Command: f.str("command"),
			Requester: f.str("requester"), From: from, FromInstance: f.str("instance"),
			ToInstance: f.str("to"), Sent: sent}
		e.Run.Timeout = time.Duration(f.int("timeout")) * time.Millisecond
		if dl := f.int("deadline"); dl > 0 {
			e.Run.Deadline = time.UnixMilli(dl)
		}
	default:
		return e, fmt.Errorf("%w: inbox entry of type %q", ErrBadEntry, e.Type)
	}
	if from == "" && f.err == nil {
		f.err = fmt.Errorf("%w: %s entry without via", ErrBadEntry, e.Type)
	}
	return e, f.err
}

// outEntry is one entry of an output stream: a piece of output, or the
// end (Type result or error).
type outEntry struct {
	N    uint64
	Type string
	Out  commands.Output
	Res  commands.Result
	Err  *commands.Error // type=error
}

func (e outEntry) values() []string {
	v := []string{"n", strconv.FormatUint(e.N, 10), "type", e.Type}
	switch e.Type {
	case typeOut:
		eol := "0"
		if e.Out.EOL {
			eol = "1"
		}
		return append(v, "stream", itoa(int64(e.Out.Stream)), "data", string(e.Out.Data), "eol", eol)
	case typeError:
		v = append(v, "code", e.Err.Code, "message", e.Err.Message, "retry", itoa(int64(e.Err.RetryAfter)))
	}
	trunc := "0"
	if e.Res.Truncated {
		trunc = "1"
	}
	return append(v, "rc", itoa(int64(e.Res.RC)), "signal", e.Res.Signal, "truncated", trunc,
		"duration", itoa(e.Res.Duration.Nanoseconds()))
}

func decodeOut(v map[string]any) (outEntry, error) {
	f := fields(v)
	e := outEntry{N: f.uint("n"), Type: f.str("type")}
	if e.N == 0 && f.err == nil {
		f.err = fmt.Errorf("%w: output entry without n", ErrBadEntry)
	}
	switch e.Type {
	case typeOut:
		e.Out = commands.Output{Stream: commands.Stream(f.int("stream")), Data: []byte(f.str("data")), EOL: f.str("eol") == "1"}
		if e.Out.Stream != commands.Stdout && e.Out.Stream != commands.Stderr && f.err == nil {
			f.err = fmt.Errorf("%w: output entry of stream %d", ErrBadEntry, e.Out.Stream)
		}
		return e, f.err
	case typeError:
		e.Err = &commands.Error{Code: f.str("code"), Message: f.str("message"), RetryAfter: int(f.int("retry"))}
		if e.Err.Code == "" && f.err == nil {
			f.err = fmt.Errorf("%w: error entry without code", ErrBadEntry)
		}
	case typeResult:
	default:
		return e, fmt.Errorf("%w: output entry of type %q", ErrBadEntry, e.Type)
	}
	e.Res = commands.Result{RC: int(f.int("rc")), Signal: f.str("signal"), Truncated: f.str("truncated") == "1",
		Duration: time.Duration(f.int("duration"))}
	return e, f.err
}

// fieldReader reads the fields of a stream entry, keeping the first error.
type fieldReader struct {
	v   map[string]any
	err error
}

func fields(v map[string]any) *fieldReader { return &fieldReader{v: v} }

func (f *fieldReader) str(name string) string {
	switch x := f.v[name].(type) {
	case string:
		return x
	case nil:
		return ""
	default:
		if f.err == nil {
			f.err = fmt.Errorf("%w: field %s is a %T", ErrBadEntry, name, x)
		}
		return ""
	}
}

func (f *fieldReader) uint(name string) uint64 {
	s := f.str(name)
	if s == "" {
		return 0
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil && f.err == nil {
		f.err = fmt.Errorf("%w: field %s: %w", ErrBadEntry, name, err)
	}
	return n
}

func (f *fieldReader) int(name string) int64 {
	s := f.str(name)
	if s == "" {
		return 0
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil && f.err == nil {
		f.err = fmt.Errorf("%w: field %s: %w", ErrBadEntry, name, err)
	}
	return n
}
