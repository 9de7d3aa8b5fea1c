package cmdpattern

import (
	"errors"
	"fmt"
)

// Errors of this package.
var (
	// ErrPattern is wrapped by every *PatternError.
	ErrPattern = errors.New("cmdpattern: invalid pattern")
	// ErrShellSyntax is wrapped by a *SplitError for a command line that
	// uses shell syntax (expansion, redirection, control operators,
	// globbing, comments, assignments, reserved words): /bin/sh would do
	// more with it than split words.
	ErrShellSyntax = errors.New("cmdpattern: shell syntax")
	// ErrBadCommand is wrapped by a *SplitError for a command line that is
	// malformed: empty, an unterminated quote, a trailing backslash, a NUL
	// byte.
	ErrBadCommand = errors.New("cmdpattern: malformed command line")
	// ErrCPLineEdit is wrapped by a *SplitError for a CP command line
	// holding one of CP's logical line editing characters (CPSpecial).
	ErrCPLineEdit = errors.New("cmdpattern: CP line editing character")
)

// PatternError reports why Compile refused a pattern. It wraps ErrPattern.
type PatternError struct {
	Offset int    // byte offset in the pattern
	Msg    string // what is wrong there
}

func (e *PatternError) Error() string {
	return fmt.Sprintf("%v at offset %d: %s", ErrPattern, e.Offset, e.Msg)
}

func (e *PatternError) Unwrap() error { return ErrPattern }

// SplitError reports why Split or SplitCP refused a command line. It wraps
// Kind: ErrShellSyntax, ErrBadCommand or ErrCPLineEdit.
type SplitError struct {
	Offset int    // byte offset in the command line
	Kind   error  // ErrShellSyntax, ErrBadCommand or ErrCPLineEdit
	Detail string // what was found there, e.g. `unquoted "|"`
}

func (e *SplitError) Error() string {
	return fmt.Sprintf("%v at offset %d: %s", e.Kind, e.Offset, e.Detail)
}

func (e *SplitError) Unwrap() error { return e.Kind }
