package vmagent

// The CP command policy: which of the region's commands the agent types
// on the console. See Policy.

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/zbridge/zbridge/commands"
	"github.com/zbridge/zbridge/commands/cmdpattern"
	"github.com/zbridge/zbridge/commands/policyfile"
)

// ErrPolicy is wrapped by every *PolicyError. (It belongs in an errors.go
// once vmagent has one.)
var ErrPolicy = errors.New("vmagent: invalid policy")

// PolicyError reports a policy line (or a rule built in Go) that cannot
// be used. It wraps ErrPolicy.
type PolicyError struct {
	File string // the file name, when the policy came from LoadPolicy
	Line int    // 1-based line number; 0 for a rule built in Go
	Msg  string
}

func (e *PolicyError) Error() string {
	switch {
	case e.File != "":
		return fmt.Sprintf("vmagent: policy %s:%d: %s", e.File, e.Line, e.Msg)
	case e.Line > 0:
		return fmt.Sprintf("vmagent: policy line %d: %s", e.Line, e.Msg)
	}
	return "vmagent: policy: " + e.Msg
}

func (e *PolicyError) Unwrap() error { return ErrPolicy }

// Action is what a policy rule does with a command it matches.
type Action int

// Actions. The zero Action is Deny, so a Policy literal fails closed.
const (
	Deny Action = iota
	Allow
)

func (a Action) String() string {
	if a == Allow {
		return "allow"
	}
	return "deny"
}

// Rule is one allow or deny line of a policy.
type Rule struct {
	Action  Action
	Pattern string // a cmdpattern pattern; see Policy
	Line    int    // line in the policy file; 0 for a rule built in Go
}

// maxPolicyLine bounds one line of a policy file: policyfile.MaxLine.
const maxPolicyLine = policyfile.MaxLine

// Policy decides which CP commands the agent types on the console. A nil
// *Policy in Config types every command (see the package documentation).
//
// A command is read as CP reads it, by cmdpattern.SplitCP: it is refused
// outright, before any rule is tried, when it holds a character outside
// printable ASCII, one of CP's line editing characters
// (cmdpattern.CPSpecial: # would make it several commands, "#CP" an
// escape; @ and " would make CP read it otherwise than written) or one of
// Special; it is split on blanks, a leading CP word dropped, and its
// command name written in full when it is an abbreviation or synonym CP
// takes for one of cmdpattern.CPCommands ("Q" is QUERY, "MSG" MESSAGE).
// The rules are tried in order on those words and the first that matches
// decides; Default decides a command none matches.
//
// Patterns are cmdpattern CP patterns, matched without regard to case,
// their first word taken in full as a command name is (so "allow Q **" is
// "allow QUERY **"). In a deny rule a literal word also matches every
// abbreviation of it ("deny SIGNAL **" denies "SIG SHUTDOWN", "deny SET
// PRIVCLASS **" denies "SET PRIV ..."), since CP takes abbreviations of
// names and operands cmdpattern.CPCommands does not list: deny rules err
// towards denying (so "deny SETKEY **" denies "SET ..." too: put allow
// rules that must win before it). Allow rules match words as written:
// "allow QUERY NAMES" does not allow "Q NAM"; "allow QUERY **" does.
//
// What a deny-list policy cannot see: commands that run other commands
// (AT sysname CMD ..., SEND CP userid ..., XAUTOLOG userid CMD ...), and a
// TERMINAL or SET LINEDIT command that changes the line editing characters
// refused. An allow list ending in "default deny" is the safe form.
type Policy struct {
	// Rules are tried in order; the first whose Pattern matches the
	// command decides.
	Rules []Rule
	// Default decides a command no rule matches. The zero value is Deny.
	Default Action
	// Special are characters refused besides cmdpattern.CPSpecial, for a
	// console whose TERMINAL LINEND, CHARDEL, ESCAPE or LINEDEL differ from
	// CP's defaults, or whose codepage puts them elsewhere.
	Special string

	// compiled are Rules' patterns, compiled by ParsePolicy and clone;
	// Decide compiles a rule's pattern itself when it is missing here or
	// the rule was changed since.
	compiled []compiledRule
}

// compiledRule is a Rule's Pattern compiled.
type compiledRule struct {
	src    string              // the Pattern compiled
	action Action              // the Action it was compiled for (deny rules take abbreviations)
	pat    *cmdpattern.Pattern // nil when src is unusable
}

// Decision is what a Policy decided about a CP command.
type Decision struct {
	Action Action
	// Rule is the rule that decided; nil for the default or a refusal.
	Rule *Rule
	// Words are the command as the rules saw it: split on blanks, a
	// leading CP dropped, the command name in full and upper case.
	Words []string
	// Refused says why the command was refused before any rule was tried
	// (cmdpattern.SplitCP refused it: a line editing or non-printable
	// character, an empty command); empty otherwise.
	Refused string
}

// Decide returns what the policy does with the CP command cmd. A nil
// Policy allows every command.
func (p *Policy) Decide(cmd string) Decision {
	if p == nil {
		return Decision{Action: Allow}
	}
	words, err := cmdpattern.SplitCP(cmd, p.Special)
	if err != nil {
		var se *cmdpattern.SplitError
		if errors.As(err, &se) {
			return Decision{Action: Deny, Refused: fmt.Sprintf("%s at offset %d", se.Detail, se.Offset)}
		}
		return Decision{Action: Deny, Refused: err.Error()}
	}
	for i := range p.Rules {
		r := &p.Rules[i]
		var c compiledRule
		if i < len(p.compiled) && p.compiled[i].src == r.Pattern && p.compiled[i].action == r.Action {
			c = p.compiled[i]
		} else {
			c = p.compileRule(*r)
		}
		// A rule that cannot be used fails closed: as a deny rule it
		// matches every command, as an allow rule none.
		if (c.pat == nil && r.Action == Deny) || (c.pat != nil && c.pat.Match(words)) {
			return Decision{Action: r.Action, Rule: r, Words: words}
		}
	}
	return Decision{Action: p.Default, Words: words}
}

// Check returns nil if the policy allows cmd, else the error the region
// is answered with: code not-permitted and a sentence naming the rule that
// denied the command or the rule it lacks (bad-request for an empty
// command). A nil Policy allows every command.
func (p *Policy) Check(cmd string) *commands.Error {
	d := p.Decide(cmd)
	if d.Action == Allow {
		return nil
	}
	subject := strings.Join(d.Words, " ")
	var msg string
	switch {
	case strings.TrimSpace(cmd) == "":
		return &commands.Error{Code: commands.CodeBadRequest, Message: "empty CP command"}
	case d.Refused != "":
		msg = d.Refused
	case d.Rule == nil:
		msg = fmt.Sprintf("no policy rule allows %q", subject)
	case d.Rule.Line > 0:
		msg = fmt.Sprintf("%q is denied by the policy (line %d)", subject, d.Rule.Line)
	default:
		msg = fmt.Sprintf("%q is denied by the policy", subject)
	}
	return &commands.Error{Code: commands.CodeNotPermitted, Message: "not permitted: " + msg}
}

// compileRule compiles a rule's pattern with its first word taken in full.
func (p *Policy) compileRule(r Rule) compiledRule {
	pat, _ := compilePattern(r)
	return compiledRule{src: r.Pattern, action: r.Action, pat: pat}
}

// compilePattern compiles a rule's pattern as a CP pattern, with
// abbreviations for a deny rule, or says why it cannot be used.
func compilePattern(r Rule) (*cmdpattern.Pattern, error) {
	pat, err := cmdpattern.Compile(r.Pattern, cmdpattern.Options{Fold: true, CP: true, Abbrev: r.Action == Deny})
	if err != nil {
		return nil, fmt.Errorf("pattern %q: %w", r.Pattern, err)
	}
	return pat, nil
}

// clone returns a copy of p with its patterns compiled, or a
// *PolicyError for the first rule that cannot be used or a bad Special.
func (p *Policy) clone() (*Policy, error) {
	q := *p
	q.Rules = append([]Rule(nil), p.Rules...)
	if err := checkSpecial(q.Special); err != nil {
		return nil, &PolicyError{Msg: err.Error()}
	}
	q.compiled = make([]compiledRule, len(q.Rules))
	for i, r := range q.Rules {
		pat, err := compilePattern(r)
		if err != nil {
			return nil, &PolicyError{Line: r.Line, Msg: err.Error()}
		}
		q.compiled[i] = compiledRule{src: r.Pattern, action: r.Action, pat: pat}
	}
	return &q, nil
}

// checkSpecial reports a Special that is not printable ASCII without
// blanks.
func checkSpecial(s string) error {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c > 0x7e {
			return fmt.Errorf("special %q: want printable ASCII characters without blanks", s)
		}
	}
	return nil
}

// String returns p in the policy file format; ParsePolicy of it gives a
// policy equal to p but for the rules' Line numbers.
func (p *Policy) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "default %s\n", p.Default)
	if p.Special != "" {
		fmt.Fprintf(&b, "special %s\n", p.Special)
	}
	for _, r := range p.Rules {
		fmt.Fprintf(&b, "%s %s\n", r.Action, r.Pattern)
	}
	return b.String()
}

// LoadPolicy reads and parses a policy file. Errors name the file and line.
func LoadPolicy(path string) (*Policy, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPolicy, err)
	}
	defer f.Close()
	p, err := ParsePolicy(f)
	var pe *PolicyError
	if errors.As(err, &pe) {
		pe.File = path
	}
	return p, err
}

// ParsePolicy parses a CP command policy. The format is the Linux agent's
// (package linuxagent; package commands/policyfile reads both), with fewer
// directives and no check that lines are UTF-8: blank lines and lines
// whose first non-blank character is # are ignored; each other line is a
// directive and its argument, separated by blanks:
//
//	allow PATTERN       type the commands PATTERN matches
//	deny PATTERN        refuse the commands PATTERN matches
//	default allow|deny  for commands no rule matches; default: deny
//	special CHARS       characters to refuse besides # @ " (once)
//
// A parse error is a *PolicyError giving the line.
func ParsePolicy(r io.Reader) (*Policy, error) {
	p := &Policy{Default: Deny}
	f, err := policyfile.Parse(r, policyfile.Syntax{
		Directives: []policyfile.Directive{
			{Name: "special", Set: func(arg string, _ int) error {
				if err := checkSpecial(arg); err != nil {
					return err
				}
				p.Special = arg
				return nil
			}},
		},
		CheckRule: func(r policyfile.Rule) error {
			_, err := compilePattern(rule(r))
			return err
		},
	})
	var le *policyfile.Error
	switch {
	case errors.As(err, &le):
		return nil, &PolicyError{Line: le.Line, Msg: le.Msg}
	case err != nil:
		return nil, fmt.Errorf("%w: %w", ErrPolicy, err)
	}
	if f.DefaultAllow {
		p.Default = Allow
	}
	for _, r := range f.Rules {
		p.Rules = append(p.Rules, rule(r))
	}
	return p.clone()
}

// rule returns the Rule of a policy file's allow or deny line.
func rule(r policyfile.Rule) Rule {
	if r.Allow {
		return Rule{Action: Allow, Pattern: r.Pattern, Line: r.Line}
	}
	return Rule{Action: Deny, Pattern: r.Pattern, Line: r.Line}
}
