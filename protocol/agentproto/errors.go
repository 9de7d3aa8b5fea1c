package agentproto

import (
	"errors"
	"fmt"
)

// Errors of this package.
var (
	// ErrTooLong is wrapped by a *FieldError for a value over its limit.
	ErrTooLong = errors.New("agentproto: value too long")
	// ErrInvalid is wrapped by a *FieldError for a value with characters
	// the contract does not allow, or an empty one.
	ErrInvalid = errors.New("agentproto: invalid value")
	// ErrPayload is wrapped by ParseResultPayload's errors.
	ErrPayload = errors.New("agentproto: malformed result payload")
	// ErrTimeout is wrapped by ParseTimeout's errors.
	ErrTimeout = errors.New("agentproto: invalid timeout")
)

// A FieldError is a command line, command ID or client name the contract
// does not allow. Its text is a sentence for the person who sent the
// value, such as "command is 307200 bytes; the most a Linux agent takes
// is 65152". It wraps ErrTooLong or ErrInvalid.
type FieldError struct {
	Field  string // "command", "command ID" or "client name"
	Kind   error  // ErrTooLong or ErrInvalid
	Len    int    // the value's length in bytes
	Max    int    // the most allowed, with ErrTooLong
	Detail string // what is wrong, with ErrInvalid: "a space at offset 3"
}

func (e *FieldError) Error() string {
	if e.Kind == ErrTooLong {
		return fmt.Sprintf("%s is %d bytes; the most a Linux agent takes is %d", e.Field, e.Len, e.Max)
	}
	return fmt.Sprintf("%s has %s", e.Field, e.Detail)
}

func (e *FieldError) Unwrap() error { return e.Kind }
