package trust

import (
	"errors"

	"github.com/zbridge/zbridge/protocol"
)

var (
	// ErrSyntax: the config file is not valid TOML.
	ErrSyntax = errors.New("trust: config file syntax")
	// ErrUnknownKey: the config file has a key this package does not know.
	ErrUnknownKey = errors.New("trust: unknown key in config file")
	// ErrInvalid: the config file parses but says something impossible
	// (a role that does not exist, a bad pattern, a duplicate name).
	ErrInvalid = errors.New("trust: invalid config")
	// ErrWritableByOthers: group or other may write the config file.
	ErrWritableByOthers = errors.New("trust: config file is writable by group or other")
	// ErrNotPermitted: no role grants what was asked. It is wrapped by a
	// *Denial, whose text names the missing grant.
	ErrNotPermitted = errors.New("trust: not permitted")
)

// Denial is a refusal. Its Error text is a sentence for the client and the
// audit log naming the grant that was missing; it never holds a secret.
type Denial struct {
	Client string
	Reason string
}

func (d *Denial) Error() string { return d.Reason }

// Unwrap returns ErrNotPermitted.
func (d *Denial) Unwrap() error { return ErrNotPermitted }

// RefuseReason is the refusal reason a logon refused by d carries
// (protocol.RefuseNotPermitted): the credentials were good.
func (d *Denial) RefuseReason() string { return protocol.RefuseNotPermitted }
