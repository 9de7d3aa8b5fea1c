package policyfile

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// MaxLine bounds one line of a policy file, in bytes.
const MaxLine = 64 << 10

// Rule is one allow or deny line of a policy file.
type Rule struct {
	Allow   bool   // true for an allow line, false for a deny line
	Pattern string // the argument, surrounding blanks removed; never empty
	Line    int    // 1-based line number
}

// File is what Parse read from a policy file besides the Syntax's own
// directives.
type File struct {
	Rules        []Rule // the allow and deny lines, in file order
	DefaultAllow bool   // "default allow" was given; false for "default deny" or none
}

// Directive is one directive an agent adds to allow, deny and default.
type Directive struct {
	// Name is the directive as written at the start of a line: not
	// allow, deny or default, and without blanks.
	Name string
	// Set reads the directive's value (never empty) given on line line;
	// it must not be nil. Its error's text is the line's message, e.g. `shell "maybe": want
	// yes or no`.
	Set func(value string, line int) error
}

// Syntax is one agent's policy file format: the directives it adds, and
// how it checks rules and text.
type Syntax struct {
	// Directives are the directives besides allow, deny and default, each
	// of which may be given once. An unknown directive's error lists them
	// in this order, after allow, deny and default.
	Directives []Directive
	// CheckRule, if not nil, checks an allow or deny rule's pattern. Its
	// error's text is the line's message, e.g. `pattern "ls \\": ...`.
	CheckRule func(Rule) error
	// StrictText refuses a line, a comment included, that is not valid
	// UTF-8 or holds a NUL byte.
	StrictText bool
}

// Parse reads a policy file in the format described in the package
// documentation, calling s's functions for its rules and its own
// directives in file order. A line that cannot be used, or one longer than
// MaxLine, makes Parse stop with an *Error; any other read error is
// returned as r gave it.
func Parse(r io.Reader, s Syntax) (*File, error) {
	p := parser{syntax: s, file: &File{}, seen: map[string]int{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), MaxLine)
	line := 0
	for sc.Scan() {
		line++
		if err := p.line(line, sc.Text()); err != nil {
			return nil, err
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, &Error{Line: line + 1, Msg: fmt.Sprintf("line longer than %d bytes", MaxLine)}
		}
		return nil, err
	}
	return p.file, nil
}

// parser is the state of one Parse.
type parser struct {
	syntax Syntax
	file   *File
	seen   map[string]int // directive → the line it was given on, for those given once
}

// line reads line number n, whose text is text.
func (p *parser) line(n int, text string) error {
	fail := func(format string, args ...any) error {
		return &Error{Line: n, Msg: fmt.Sprintf(format, args...)}
	}
	failWith := func(err error) error {
		return &Error{Line: n, Msg: err.Error(), Err: err}
	}
	text = strings.TrimRight(text, "\r")
	if p.syntax.StrictText {
		if !utf8.ValidString(text) {
			return fail("not valid UTF-8")
		}
		if strings.IndexByte(text, 0) >= 0 {
			return fail("NUL byte")
		}
	}
	text = strings.TrimSpace(text)
	if text == "" || text[0] == '#' {
		return nil
	}
	name, arg, _ := strings.Cut(text, " ")
	if d, a, ok := strings.Cut(text, "\t"); ok && len(d) < len(name) {
		name, arg = d, a
	}
	arg = strings.TrimSpace(arg)

	if name == "allow" || name == "deny" {
		if arg == "" {
			return fail("%s needs a pattern", name)
		}
		rule := Rule{Allow: name == "allow", Pattern: arg, Line: n}
		if p.syntax.CheckRule != nil {
			if err := p.syntax.CheckRule(rule); err != nil {
				return failWith(err)
			}
		}
		p.file.Rules = append(p.file.Rules, rule)
		return nil
	}

	d, known := p.syntax.directive(name)
	if !known {
		return fail("unknown directive %q (want %s)", name, p.syntax.names())
	}
	if first, dup := p.seen[name]; dup {
		return fail("%s given twice (first on line %d)", name, first)
	}
	p.seen[name] = n
	if arg == "" {
		return fail("%s needs a value", name)
	}
	if name != "default" {
		if err := d.Set(arg, n); err != nil {
			return failWith(err)
		}
		return nil
	}
	switch arg {
	case "allow":
		p.file.DefaultAllow = true
	case "deny":
		p.file.DefaultAllow = false
	default:
		return fail("default %q: want allow or deny", arg)
	}
	return nil
}

// directive returns the directive of s named name, and whether name is
// one s reads besides allow and deny: default (a zero Directive) or one of
// s.Directives.
func (s Syntax) directive(name string) (Directive, bool) {
	if name == "default" {
		return Directive{}, true
	}
	for _, d := range s.Directives {
		if d.Name == name {
			return d, true
		}
	}
	return Directive{}, false
}

// names lists the directives s reads, for an unknown directive's error.
func (s Syntax) names() string {
	var b strings.Builder
	b.WriteString("allow, deny, default")
	for _, d := range s.Directives {
		b.WriteString(", ")
		b.WriteString(d.Name)
	}
	return b.String()
}
