package linuxagent

import (
	"errors"
	"fmt"
)

// Errors of this package.
var (
	// ErrServerClosed is returned by Serve after Shutdown or Close.
	ErrServerClosed = errors.New("linuxagent: server closed")
	// ErrConfig wraps what is wrong with a Config given to New.
	ErrConfig = errors.New("linuxagent: invalid config")
	// ErrHostKey wraps a host key file that cannot be used: unreadable,
	// not a private key, or readable by group or other.
	ErrHostKey = errors.New("linuxagent: unusable host key")
	// ErrAuthorizedKeys wraps an authorized_keys file that cannot be read,
	// or that others could change (an *UnsafeFileError).
	ErrAuthorizedKeys = errors.New("linuxagent: unusable authorized_keys")
	// ErrUnsafeFile is wrapped by every *UnsafeFileError.
	ErrUnsafeFile = errors.New("linuxagent: file others could change")
	// ErrRunAsRoot is returned by Hardening.Apply when the agent runs as
	// root and Hardening.AllowRoot is not set.
	ErrRunAsRoot = errors.New("linuxagent: refusing to run as root")
	// ErrPolicy is wrapped by every *PolicyError.
	ErrPolicy = errors.New("linuxagent: invalid policy")
	// ErrShellSyntax is wrapped by a *SplitError for a command line that
	// uses shell syntax (expansion, redirection, control operators,
	// globbing, comments, assignments, reserved words) while the policy
	// does not run commands through /bin/sh.
	ErrShellSyntax = errors.New("shell syntax")
	// ErrBadCommand is wrapped by a *SplitError for a command line that is
	// malformed: empty, an unterminated quote, a NUL byte.
	ErrBadCommand = errors.New("malformed command line")
)

// SplitError reports why SplitCommand refused a command line. It wraps
// ErrShellSyntax or ErrBadCommand.
type SplitError struct {
	Offset int    // byte offset in the command line
	Kind   error  // ErrShellSyntax or ErrBadCommand
	Detail string // what was found there, e.g. `unquoted "|"`
}

func (e *SplitError) Error() string {
	return fmt.Sprintf("%v at offset %d: %s", e.Kind, e.Offset, e.Detail)
}

func (e *SplitError) Unwrap() error { return e.Kind }

// PolicyError reports a line of a policy file that could not be parsed.
// It wraps ErrPolicy.
type PolicyError struct {
	File string // the file name, when the policy came from LoadPolicy
	Line int    // 1-based line number
	Msg  string
}

func (e *PolicyError) Error() string {
	if e.File != "" {
		return fmt.Sprintf("linuxagent: policy %s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("linuxagent: policy line %d: %s", e.Line, e.Msg)
}

func (e *PolicyError) Unwrap() error { return ErrPolicy }
