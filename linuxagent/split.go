package linuxagent

import (
	"errors"

	"github.com/zbridge/zbridge/commands/cmdpattern"
)

// SplitCommand splits a command line into argv as cmdpattern.Split does
// (POSIX shell quoting; a refusal of every line /bin/sh would do more
// with than split words), so that the agent runs, and its policy judges,
// exactly the argv the region judged when it split the line with
// cmdpattern.Split. A refusal is a *SplitError wrapping ErrShellSyntax or
// ErrBadCommand.
func SplitCommand(line string) ([]string, error) {
	argv, err := cmdpattern.Split(line)
	if err == nil {
		return argv, nil
	}
	var se *cmdpattern.SplitError
	if !errors.As(err, &se) {
		return nil, err
	}
	kind := ErrBadCommand
	if se.Kind == cmdpattern.ErrShellSyntax {
		kind = ErrShellSyntax
	}
	return nil, &SplitError{Offset: se.Offset, Kind: kind, Detail: se.Detail}
}

// QuoteCommand returns a command line that SplitCommand (and /bin/sh)
// split into exactly argv; it is cmdpattern.Quote.
func QuoteCommand(argv ...string) string { return cmdpattern.Quote(argv...) }
