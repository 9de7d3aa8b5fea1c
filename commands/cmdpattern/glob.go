package cmdpattern

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Glob is a pattern matched against a whole line as one string: * matches
// any run of characters, blanks and slashes included, ? matches one
// character, every other character (a blank too) matches itself, and
// there is no ".." rule. It is how the Linux agent's policy matched before
// word patterns; its deny rules still match this way as well, so that a
// deny rule written then refuses at least what it always did. Allow rules
// must use Pattern: "echo *" as a Glob allows "echo a; rm -rf /" under a
// shell and "cat /var/log/*" allows "cat /var/log/../../etc/shadow".
//
// Like Pattern, a Glob is immutable, safe for concurrent use, and matches
// in time linear in the line's length, whatever the pattern.
type Glob struct {
	src string
	m   *wordMatcher
}

// CompileGlob compiles a Glob. The pattern must be valid UTF-8 without
// control characters other than tab, and at most MaxPatternLen bytes. An
// error is a *PatternError.
func CompileGlob(pattern string, opts Options) (*Glob, error) {
	if len(pattern) > MaxPatternLen {
		return nil, &PatternError{Offset: MaxPatternLen, Msg: fmt.Sprintf("pattern longer than %d bytes", MaxPatternLen)}
	}
	if err := checkChars(pattern); err != nil {
		return nil, err
	}
	return &Glob{src: pattern, m: compileWord(pattern, opts.Fold)}, nil
}

// String returns the pattern as given to CompileGlob.
func (g *Glob) String() string { return g.src }

// Match reports whether the whole of s matches the glob.
func (g *Glob) Match(s string) bool {
	return g.m.match(s, make([]uint64, 2*g.m.nw))
}

// checkChars reports the first byte of a pattern that is not valid UTF-8
// or is a control character other than tab.
func checkChars(pattern string) error {
	for i, r := range pattern {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(pattern[i:], "\uFFFD"):
			return &PatternError{Offset: i, Msg: "not valid UTF-8"}
		case r == '\t':
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			return &PatternError{Offset: i, Msg: fmt.Sprintf("control character %U", r)}
		}
	}
	return nil
}
