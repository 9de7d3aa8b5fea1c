package linuxagent

import (
	"encoding/json"
	"fmt"

	"golang.org/x/crypto/ssh"
)

// ResultRequest is the type of the channel request the agent sends on a
// session channel after a command's output and before exit-status or
// exit-signal; want-reply is false. Its payload is one SSH string (uint32
// length, then the bytes) holding a JSON Result. See the package
// documentation.
const ResultRequest = "zbridge-result@zbridge"

// Error codes of Result.Error.
const (
	// ErrorNotPermitted: the policy refused the command, or the session
	// asked for something the agent never allows (a pty). Exit status 126.
	ErrorNotPermitted = "not-permitted"
	// ErrorNotFound: the program does not exist. Exit status 127.
	ErrorNotFound = "not-found"
	// ErrorCannotExecute: the program exists but could not be started
	// (not executable, bad format, out of resources). Exit status 126.
	ErrorCannotExecute = "cannot-execute"
	// ErrorBadCommand: the command line is malformed (empty, an
	// unterminated quote, a NUL byte). Exit status 2, as /bin/sh gives a
	// syntax error.
	ErrorBadCommand = "bad-command"
)

// Exit statuses the agent itself reports, as /bin/sh does.
const (
	ExitBadCommand    = 2
	ExitNotPermitted  = 126
	ExitCannotExecute = 126
	ExitNotFound      = 127
)

// Result is what the agent tells the region about one command, in the
// ResultRequest channel request.
type Result struct {
	// CommandID is the ZBRIDGE_COMMAND_ID the region sent, if any.
	CommandID string `json:"command_id,omitempty"`
	// ExitStatus is the command's exit status; -1 when it was killed by
	// a signal (see Signal). For a command the agent refused, the status
	// it reported (see Error).
	ExitStatus int `json:"exit_status"`
	// Signal names the signal that killed the command, as in exit-signal
	// ("TERM", "KILL", ...); empty when it exited.
	Signal string `json:"signal,omitempty"`
	// TimedOut: the command ran out of time and was terminated.
	TimedOut bool `json:"timed_out"`
	// Truncated: the command's output went over the cap; what was over was
	// not sent and the command was terminated.
	Truncated bool `json:"truncated"`
	// Error is empty when the command ran, else one of the Error* codes.
	Error string `json:"error,omitempty"`
	// Message explains Error, TimedOut or Truncated in a sentence.
	Message string `json:"message,omitempty"`
	// OutputBytes counts the bytes of output sent to the region (standard
	// output and error together), at most the cap.
	OutputBytes int64 `json:"output_bytes"`
	// DurationMS is how long the command ran, in milliseconds.
	DurationMS int64 `json:"duration_ms"`
	// TimeoutMS is the time limit the command ran under, in milliseconds.
	TimeoutMS int64 `json:"timeout_ms,omitempty"`
	// PID is the command's process ID, which is also its process group
	// ID; 0 when it was never started.
	PID int `json:"pid,omitempty"`
	// Agent is the agent's name (Config.Name).
	Agent string `json:"agent"`
	// Platform is the agent's GOOS/GOARCH, e.g. "linux/s390x".
	Platform string `json:"platform"`
}

// MarshalResultPayload encodes r as the payload of a ResultRequest.
func MarshalResultPayload(r *Result) []byte {
	data, err := json.Marshal(r)
	if err != nil {
		// A Result holds only strings, numbers and booleans.
		panic("linuxagent: marshal Result: " + err.Error())
	}
	return ssh.Marshal(struct{ JSON string }{string(data)})
}

// ParseResultPayload decodes the payload of a ResultRequest. Unknown JSON
// fields are ignored, so that newer agents may add some.
func ParseResultPayload(payload []byte) (*Result, error) {
	var msg struct{ JSON string }
	if err := ssh.Unmarshal(payload, &msg); err != nil {
		return nil, fmt.Errorf("linuxagent: %s payload: %w", ResultRequest, err)
	}
	var r Result
	if err := json.Unmarshal([]byte(msg.JSON), &r); err != nil {
		return nil, fmt.Errorf("linuxagent: %s payload: %w", ResultRequest, err)
	}
	return &r, nil
}
