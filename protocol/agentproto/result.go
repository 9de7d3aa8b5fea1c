package agentproto

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
)

// Result is what the agent tells the region about one command, in the
// ResultRequest channel request.
type Result struct {
	// CommandID is the EnvCommandID the region sent, if any.
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
	// Truncated: the command's output went over the agent's cap; what was
	// over was not sent and the command was terminated.
	Truncated bool `json:"truncated"`
	// Error is empty when the command ran, else one of the Code* reason
	// codes.
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
	// Agent is the agent's name.
	Agent string `json:"agent"`
	// Platform is the agent's GOOS/GOARCH, e.g. "linux/s390x".
	Platform string `json:"platform"`
}

// MarshalResultPayload encodes r as the payload of a ResultRequest: an SSH
// string (uint32 big-endian length, then the bytes) holding r as JSON.
func MarshalResultPayload(r *Result) []byte {
	data, err := json.Marshal(r)
	if err != nil {
		// A Result holds only strings, numbers and booleans.
		panic("agentproto: marshal Result: " + err.Error())
	}
	return append(binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(data)), uint32(len(data))), data...)
}

// ParseResultPayload decodes the payload of a ResultRequest. Unknown JSON
// fields are ignored, and so are bytes after the SSH string, so that newer
// agents may add to either. Its errors wrap ErrPayload and give the byte
// offset in the payload where it went wrong.
func ParseResultPayload(payload []byte) (*Result, error) {
	if len(payload) < 4 {
		return nil, fmt.Errorf("%w: %d bytes is shorter than a string length", ErrPayload, len(payload))
	}
	n := binary.BigEndian.Uint32(payload)
	if uint64(n) > uint64(len(payload)-4) {
		return nil, fmt.Errorf("%w: string length %d at offset 0 exceeds the %d bytes that follow", ErrPayload, n, len(payload)-4)
	}
	var r Result
	if err := json.Unmarshal(payload[4:4+n], &r); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("%w: JSON at offset %d: %w", ErrPayload, 4+se.Offset, err)
		}
		return nil, fmt.Errorf("%w: JSON: %w", ErrPayload, err)
	}
	return &r, nil
}
