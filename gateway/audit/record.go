package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/zbridge/zbridge/commands"
	"github.com/zbridge/zbridge/protocol"
)

// Kind is what a record is about.
type Kind string

// The kinds of record.
const (
	KindCommand   Kind = "command"   // a command, from COMMANDS or forwarded by another region
	KindLogon     Kind = "logon"     // a logon to any port, accepted or refused
	KindSubscribe Kind = "subscribe" // an UNSOLMSG subscription, accepted or refused
	KindRefresh   Kind = "refresh"   // a session's access checked again after the config was read again
)

// Phase says where in its life a command was when its record was written.
type Phase string

// The phases of a command.
const (
	// PhaseStart: the command is about to be handed to its target. The
	// record is on disk before the command starts.
	PhaseStart Phase = "start"
	// PhaseEnd: the command ended, or was answered without being started
	// (refused, busy, bad request). Every command has exactly one end record.
	PhaseEnd Phase = "end"
)

// Outcome is how a command, logon or subscription ended, in one word a
// program can filter on. It is "ok", "refused", or — for a command that
// did not run to its end for another reason — the commands package's
// error code (commands/errors.go).
type Outcome string

// The outcomes.
const (
	// OutcomeOK: the command ran to its end (whatever its return code),
	// the logon or subscription was accepted, the session was kept.
	OutcomeOK Outcome = "ok"
	// OutcomeRefused: policy or credentials refused it: the region's roles
	// or the agent's policy (code not-permitted), or a bad client name or
	// secret (code auth).
	OutcomeRefused Outcome = "refused"

	OutcomeBadRequest   Outcome = commands.CodeBadRequest
	OutcomeUnknown      Outcome = commands.CodeUnknown
	OutcomeNotConnected Outcome = commands.CodeNotConnected
	OutcomeTimeout      Outcome = commands.CodeTimeout
	OutcomeBusy         Outcome = commands.CodeBusy
	OutcomeCancelled    Outcome = commands.CodeCancelled
	OutcomeFailed       Outcome = commands.CodeFailed
	OutcomeNotFound     Outcome = commands.CodeNotFound
)

// OutcomeOf returns the outcome for an error code: a commands code
// (commands/errors.go) or a protocol refusal reason. The empty code is
// OutcomeOK; not-permitted and auth are OutcomeRefused; any other code is
// its own outcome.
func OutcomeOf(code string) Outcome {
	switch code {
	case "":
		return OutcomeOK
	case commands.CodeNotPermitted, protocol.RefuseAuth: // protocol.RefuseNotPermitted is the same word
		return OutcomeRefused
	}
	return Outcome(code)
}

// Record is one line of the audit log. Fields that are empty are left out
// of the line, except time, region and kind. There is no field for a secret:
// a record cannot carry one.
type Record struct {
	// Time is when it happened. Write fills it in with the current time
	// when it is zero, and keeps it in UTC with millisecond precision
	// (RFC 3339, three fractional digits, "Z").
	Time time.Time `json:"time"`
	// Region is the region that wrote the record; Write sets it to
	// Config.Region.
	Region string `json:"region"`
	Kind   Kind   `json:"kind"`
	// Phase is set on command records only.
	Phase Phase `json:"phase,omitempty"`

	// Client is the name the client logged on with (for a refused logon:
	// the name it claimed). Remote is its address, host:port. Session is
	// the session's ID. Server is the port's name: unsolmsg, commands,
	// vmmon.
	Client  string `json:"client,omitempty"`
	Remote  string `json:"remote,omitempty"`
	Session string `json:"session,omitempty"`
	Server  string `json:"server,omitempty"`

	// Target and Command are the command's target and text as the client
	// gave them; ID is the command's ID. A subscribe record holds the
	// subscription's filter (or name) in Command.
	Target  string `json:"target,omitempty"`
	Command string `json:"command,omitempty"`
	ID      string `json:"id,omitempty"`

	// Outcome is empty in a start record and set in every other one. Code
	// is the precise code when Outcome is not ok (a commands error code or
	// a protocol refusal reason), Message the sentence the client was given.
	Outcome Outcome `json:"outcome,omitempty"`
	Code    string  `json:"code,omitempty"`
	Message string  `json:"message,omitempty"`

	// RC is the command's return code, when it ran to its end; Signal the
	// signal that ended it, Truncated that output beyond the cap was cut.
	RC        *int   `json:"rc,omitempty"`
	Signal    string `json:"signal,omitempty"`
	Truncated bool   `json:"truncated,omitempty"`
	// DurationMs is how long the command ran and OutputBytes how many
	// bytes of output (stdout and stderr) it sent; absent means 0.
	DurationMs  int64 `json:"duration_ms,omitempty"`
	OutputBytes int64 `json:"output_bytes,omitempty"`

	// Rule is the grant that allowed it ("role ops: linux:web* uptime") or,
	// when refused, what was missing.
	Rule string `json:"rule,omitempty"`
	// Via is the region that forwarded the command to this one.
	Via string `json:"via,omitempty"`
}

// TimeFormat is the layout of a record's time: RFC 3339 in UTC with
// milliseconds.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// SetResult fills in how a command ended from what commands.Router.Run
// returned: Outcome, and RC, Signal and Truncated when it ran to its end,
// or Code and Message from a *commands.Error. Another error is recorded as
// OutcomeFailed without a message (the region gives clients a
// *commands.Error). DurationMs is set from res.Duration.
func (r *Record) SetResult(res commands.Result, err error) {
	r.DurationMs = res.Duration.Milliseconds()
	var ce *commands.Error
	switch {
	case err == nil:
		rc := res.RC
		r.Outcome, r.Code, r.Message = OutcomeOK, "", ""
		r.RC, r.Signal, r.Truncated = &rc, res.Signal, res.Truncated
	case errors.As(err, &ce):
		r.Outcome, r.Code, r.Message = OutcomeOf(ce.Code), ce.Code, ce.Message
	default:
		r.Outcome, r.Code, r.Message = OutcomeFailed, commands.CodeFailed, ""
	}
}

// MarshalJSON encodes r as one line of the audit log, without the newline:
// the time in TimeFormat, and nothing escaped beyond what JSON requires
// (plus U+2028 and U+2029, which encoding/json always escapes, so that no
// reader takes them for line ends). Invalid UTF-8 is replaced by U+FFFD.
func (r Record) MarshalJSON() ([]byte, error) {
	return r.appendJSON(nil)
}

func (r Record) appendJSON(dst []byte) ([]byte, error) {
	// plain has Record's fields but not its methods; the outer Time field,
	// being shallower, takes the place of the embedded one.
	type plain Record
	v := struct {
		Time string `json:"time"`
		plain
	}{r.Time.UTC().Format(TimeFormat), plain(r)}
	buf := bytes.NewBuffer(dst)
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(&v); err != nil {
		return dst, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// auditFacility is syslog's authpriv: security messages that may hold
// private details, such as a command line.
const auditFacility protocol.Facility = 10

// Event returns r as an event of source audit, as the region publishes it
// to UNSOLMSG subscribers whose roles grant source=audit. Origin.System is
// the region, Time (and Received) the record's time, MsgID "AUDIT", Type
// the record's kind, Facility authpriv. Severity is warning for a refusal,
// notice for another outcome that is not ok, and info otherwise. Text is a
// one-line summary ("command end client=OPSAUTO target=linux:web1
// outcome=ok rc=0 … cmd=\"uptime\"") and Raw the record's JSON, as in the
// audit log.
func (r Record) Event() *protocol.Event {
	sev := protocol.SevInfo
	switch r.Outcome {
	case "", OutcomeOK:
	case OutcomeRefused:
		sev = protocol.SevWarning
	default:
		sev = protocol.SevNotice
	}
	raw, _ := r.appendJSON(nil) // encoding strings and numbers cannot fail
	return &protocol.Event{
		Received: r.Time,
		Time:     r.Time,
		Origin:   protocol.Origin{System: r.Region},
		Source:   protocol.SourceAudit,
		MsgID:    "AUDIT",
		Facility: auditFacility,
		Severity: sev,
		Type:     string(r.Kind),
		Text:     r.summary(),
		Raw:      string(raw),
		Parsed:   true,
	}
}

// summary is the event text: the kind and phase, then key=value pairs of
// the fields that are set, the command text last.
func (r Record) summary() string {
	var b strings.Builder
	b.WriteString(string(r.Kind))
	if r.Phase != "" {
		b.WriteByte(' ')
		b.WriteString(string(r.Phase))
	}
	kv := func(k, v string) {
		if v == "" {
			return
		}
		b.WriteByte(' ')
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(quoteIfNeeded(v))
	}
	kv("client", r.Client)
	kv("remote", r.Remote)
	kv("session", r.Session)
	kv("server", r.Server)
	kv("via", r.Via)
	kv("target", r.Target)
	kv("id", r.ID)
	kv("outcome", string(r.Outcome))
	if r.Code != string(r.Outcome) {
		kv("code", r.Code)
	}
	if r.RC != nil {
		kv("rc", strconv.Itoa(*r.RC))
	}
	kv("signal", r.Signal)
	if r.Truncated {
		kv("truncated", "true")
	}
	if r.Phase == PhaseEnd {
		kv("duration_ms", strconv.FormatInt(r.DurationMs, 10))
		kv("output_bytes", strconv.FormatInt(r.OutputBytes, 10))
	}
	kv("rule", r.Rule)
	kv("message", r.Message)
	if r.Command != "" {
		b.WriteString(" cmd=")
		b.WriteString(strconv.Quote(r.Command))
	}
	return b.String()
}

// quoteIfNeeded returns v as it is when it is a run of printable
// characters without spaces, quotes, backslashes or '=', and quoted as a Go
// string otherwise, so that a value cannot pose as another key.
func quoteIfNeeded(v string) string {
	if !utf8.ValidString(v) {
		return strconv.Quote(v)
	}
	for _, c := range v {
		if c <= ' ' || c == '"' || c == '\\' || c == '=' || c == 0x7f ||
			!strconv.IsPrint(c) {
			return strconv.Quote(v)
		}
	}
	return v
}
