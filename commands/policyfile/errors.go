package policyfile

import "fmt"

// Error reports a line of a policy file that cannot be used.
type Error struct {
	Line int    // 1-based line number
	Msg  string // what is wrong with the line, without the line number
	Err  error  // the Syntax function's error Msg comes from, if any
}

func (e *Error) Error() string {
	return fmt.Sprintf("policyfile: line %d: %s", e.Line, e.Msg)
}

// Unwrap returns the error of the Syntax function that refused the line,
// or nil when Parse itself refused it.
func (e *Error) Unwrap() error { return e.Err }
