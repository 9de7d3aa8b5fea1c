package protocol

import (
	"fmt"
	"io"
)

// Version is the protocol version this package speaks. A LOGON names the
// version the client speaks; the server refuses versions it does not know.
const Version = 1

// MaxCPCommand is the longest CP command a VMMON command frame may carry:
// the longest command line z/VM's CP takes (its input limit, as vmcp
// documents it too). The region refuses a longer one before it reaches an
// agent, and the z/VM agent before it types it.
const MaxCPCommand = 240

// Limits on a frame's containers, which Decode checks before it builds
// them (see SPEC.md, "Framing"): a frame over one is ErrOverLimit. The
// filter's are MaxSDTerms and MaxFilterSources.
const (
	// MaxBatch is the most events one events frame carries (a z/VM
	// agent's batch).
	MaxBatch = 1000
	// MaxOptions is the most members a logon's options has.
	MaxOptions = 16
)

// Frame types. See SPEC.md for each frame's fields.
const (
	// Client to server.
	TypeLogon     = "logon"
	TypeHeartbeat = "heartbeat" // either direction; answered by a reply
	TypeLogoff    = "logoff"
	TypeSubscribe = "subscribe" // UNSOLMSG
	TypeCommand   = "command"   // COMMANDS: run a command; answered by a reply after its output
	TypeCancel    = "cancel"    // COMMANDS: cancel a command in flight
	TypeEvents    = "events"    // VMMON: a batch of events from a z/VM agent
	TypeAck       = "ack"       // UNSOLMSG: events handled (durable subscriptions and groups); no reply unless req is set

	// Server to client.
	TypeAccept = "accept"
	TypeRefuse = "refuse"
	TypeReply  = "reply"  // the response to every request other than logon
	TypeEvent  = "event"  // UNSOLMSG: one event
	TypeOutput = "output" // COMMANDS: a line of a command's output
	TypeNotice = "notice"
	TypeBye    = "bye" // the server ends the session, with a reason
)

// Refusal reasons in a refuse frame.
const (
	RefuseAuth       = "auth"
	RefuseVersion    = "version"
	RefuseBusy       = "busy"
	RefuseBadRequest = "bad-request"
	RefuseInUse      = "in-use" // VMMON: that system already has an agent session
	// RefuseNotPermitted: the credentials are good but no role of the
	// client grants this port (or, on VMMON, this system name).
	RefuseNotPermitted = "not-permitted"
)

// Reasons in a bye frame.
const (
	ByeLogoff        = "logoff"       // the client logged off
	ByeIdle          = "idle-timeout" // nothing from the client for the idle timeout
	ByeLifetime      = "lifetime"     // the session reached its maximum lifetime
	ByeShutdown      = "shutdown"     // the region is shutting down
	ByeBehind        = "behind"       // the client fell behind; resume_after says from where
	ByeReplaced      = "replaced"     // a newer session took over the durable subscription
	ByeFrameTooLarge = "frame-too-large"
	ByeBadFrame      = "bad-frame" // a frame that is not valid JSON or lacks a type
	ByeRevoked       = "revoked"   // the client's access was withdrawn (config refreshed)
)

// Error codes in a reply's error.
const (
	ErrCodeBadRequest  = "bad-request"
	ErrCodeUnknownType = "unknown-type"
	ErrCodeState       = "state" // the request does not fit the session's state
	ErrCodeInternal    = "internal"
	// ErrCodeNotPermitted: no role of the client grants the request; the
	// message names the grant that is missing.
	ErrCodeNotPermitted = "not-permitted"
)

// Secret is a credential. It prints as "[redacted]" so that a frame logged by
// mistake does not leak it; it marshals to JSON as itself.
type Secret string

// String implements fmt.Stringer, hiding the secret.
func (Secret) String() string { return "[redacted]" }

// GoString implements fmt.GoStringer, hiding the secret.
func (Secret) GoString() string { return `"[redacted]"` }

// Format implements fmt.Formatter, hiding the secret under every verb: without
// it a verb that does not fit a string (%d) prints the secret as "%!d(...)".
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		io.WriteString(f, s.GoString())
		return
	}
	io.WriteString(f, s.String())
}

// Error is the error a reply carries.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Limits are what the server grants a session at logon. Durations are in
// whole seconds; zero means no limit.
type Limits struct {
	Heartbeat   int `json:"heartbeat"`    // seconds between heartbeats when idle
	IdleTimeout int `json:"idle_timeout"` // the session ends after this long with nothing from the client
	Lifetime    int `json:"lifetime"`     // the session ends after this long in any case (0: none)
	MaxFrame    int `json:"max_frame"`    // largest frame, in bytes, either side accepts
}

// Frame is one message on the wire: a JSON object on one line, with a type.
// Only the fields its type uses are set; see SPEC.md. Decode reads a
// container (Options, Filter, IDs, Event, Events) only on a frame of the
// type that carries it, named at the field; on any other it skips it as
// an unknown field.
type Frame struct {
	Type string `json:"type"`
	// Req numbers a request; its reply carries the same number.
	Req uint64 `json:"req,omitempty"`

	// logon
	Client    string `json:"client,omitempty"`
	Secret    Secret `json:"secret,omitempty"`
	Version   int    `json:"version,omitempty"`
	Heartbeat int    `json:"heartbeat,omitempty"`
	// Options (logon only; at most MaxOptions) are per-port options.
	Options map[string]string `json:"options,omitempty"`

	// accept
	Session string  `json:"session,omitempty"`
	Limits  *Limits `json:"limits,omitempty"`

	// refuse, bye, notice
	Reason     string `json:"reason,omitempty"`
	Message    string `json:"message,omitempty"`
	RetryAfter int    `json:"retry_after,omitempty"`
	// ResumeAfter (bye behind) is the ID of the last event the client was
	// sent; subscribing again with after set to it misses nothing.
	ResumeAfter string `json:"resume_after,omitempty"`

	// reply
	Error *Error `json:"error,omitempty"`

	// subscribe (request), and its reply: After is where the stream starts
	// (Filter: subscribe only).
	Filter *Filter `json:"filter,omitempty"`
	After  string  `json:"after,omitempty"`
	Format string  `json:"format,omitempty"`
	// Subscription names a durable subscription: the region records the
	// last event the client acknowledged and a session that subscribes
	// with the same name later (on any region sharing the store) starts
	// after it. Group names a consumer group: the sessions subscribed with
	// the same group share the events, each event going to one of them.
	Subscription string `json:"subscription,omitempty"`
	Group        string `json:"group,omitempty"`
	// IDs (ack only) are the event IDs a durable or group subscriber has
	// handled; for a durable subscription the newest stands for every
	// event before it.
	IDs []string `json:"ids,omitempty"`

	// event: Event in JSON format (event only); ID and Line in a text
	// format (lx)
	Event *Event `json:"event,omitempty"`
	// EventJSON is, instead of Event, the event object as the region
	// sent it, for a reader that passes events on without decoding them
	// (see SplitEventFrame); EventID is then the event's ID (and ID is
	// empty: its text is made only where it is needed).
	EventJSON []byte `json:"-"`
	EventID   ID     `json:"-"`
	// ID is an event's ID (lx event frames) or a command's ID (command,
	// cancel, output and the command's reply).
	ID   string `json:"id,omitempty"`
	Line string `json:"line,omitempty"`

	// command: where, what, and how long it may take in seconds.
	Target  string  `json:"target,omitempty"`
	Command string  `json:"command,omitempty"`
	Timeout float64 `json:"timeout,omitempty"`

	// output: one line of stdout or stderr. Text holds it when it is valid
	// UTF-8, Data (base64 in JSON) otherwise; EOL says the line ended
	// with a newline (a long line comes in pieces, the last with EOL).
	Stream string `json:"stream,omitempty"`
	Text   string `json:"text,omitempty"`
	Data   []byte `json:"data,omitempty"`
	EOL    bool   `json:"eol,omitempty"`

	// the reply to a command: its return code (absent when it did not
	// run), the signal that ended it, whether output was cut at the cap,
	// and how long it ran.
	RC         *int   `json:"rc,omitempty"`
	Signal     string `json:"signal,omitempty"`
	Truncated  bool   `json:"truncated,omitempty"`
	DurationMS int64  `json:"duration_ms,omitempty"`

	// events (VMMON): a batch of the agent's events (events only; at
	// most MaxBatch), the first numbered Seq (the agent's spool sequence,
	// one per event); the reply's Seq is the last sequence the region has
	// stored.
	Events []*Event `json:"events,omitempty"`
	Seq    uint64   `json:"seq,omitempty"`
}

// Reply returns a reply to the request f, with err set when err is non-nil.
func Reply(req uint64, err *Error) *Frame {
	return &Frame{Type: TypeReply, Req: req, Error: err}
}
