package commands

import "errors"

// Errors of this package.
var (
	ErrBadTarget = errors.New("commands: bad target")
	// ErrCancelled is the cause with which a command's context is
	// cancelled when someone asked to stop it: Cancel uses it, and so may
	// a caller of Run that cancels its context (context.WithCancelCause).
	// Run then answers CodeCancelled "cancelled by request".
	ErrCancelled = errors.New("commands: cancelled by request")
)

// Error codes a Response carries when a command did not run to its end.
// They are what a client program acts on; the sentence beside them is
// for a person.
const (
	CodeBadRequest   = "bad-request"    // the request is malformed
	CodeUnknown      = "unknown-target" // no such system is known to the region
	CodeNotConnected = "not-connected"  // the system is known but its session is down
	CodeNotPermitted = "not-permitted"  // policy refused the command
	CodeTimeout      = "timeout"        // the command ran past its timeout and was killed
	CodeBusy         = "busy"           // a concurrency limit was reached; retry after RetryAfter
	CodeCancelled    = "cancelled"      // the client cancelled or went away
	CodeFailed       = "failed"         // the command could not be run (transport or agent failure)
	CodeNotFound     = "not-found"      // the program does not exist on the target
)

// Error is a command that did not run to its end, as a Go error.
type Error struct {
	Code    string
	Message string
	// RetryAfter is set with CodeBusy, in seconds.
	RetryAfter int
}

func (e *Error) Error() string { return "commands: " + e.Code + ": " + e.Message }
