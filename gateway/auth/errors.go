package auth

import (
	"errors"
	"fmt"
)

// Errors returned by this package.
var (
	// ErrBadCredentials is what a client is told when its logon fails. It
	// never says whether the name or the secret was wrong.
	ErrBadCredentials = errors.New("auth: bad client name or secret")

	// ErrFilePermissions is wrapped by a warning from [Clients.Warnings] when
	// the clients file is accessible by group or other.
	ErrFilePermissions = errors.New("auth: clients file is accessible by group or other")

	// ErrNoFile is returned by [Clients.Reload] for Clients made by [Parse].
	ErrNoFile = errors.New("auth: clients not loaded from a file")

	// ErrEmptySecret is returned by [Hash] for an empty secret.
	ErrEmptySecret = errors.New("auth: empty secret")

	// Parse errors, wrapped in a *ParseError.
	ErrSyntax        = errors.New("auth: want NAME:HASH")
	ErrBadName       = errors.New("auth: bad client name (1-64 of A-Z a-z 0-9 . _ @ -)")
	ErrDuplicateName = errors.New("auth: duplicate client name")
	ErrMalformedHash = errors.New("auth: malformed hash")
	ErrLineTooLong   = errors.New("auth: line too long")
)

// A ParseError reports a bad line in a clients file, as
// "clients.txt:3: auth: duplicate client name (first on line 1)". Err wraps
// one of the parse error sentinels; it never holds the text of the line.
type ParseError struct {
	Path string // the file, or "" if parsed from a reader
	Line int    // 1-based
	Err  error
}

func (e *ParseError) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("line %d: %v", e.Line, e.Err)
	}
	return fmt.Sprintf("%s:%d: %v", e.Path, e.Line, e.Err)
}

func (e *ParseError) Unwrap() error { return e.Err }
