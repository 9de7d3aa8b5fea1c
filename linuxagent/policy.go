package linuxagent

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/zbridge/zbridge/commands/cmdpattern"
	"github.com/zbridge/zbridge/commands/policyfile"
)

// Defaults of a Policy (and of Config) when nothing sets them.
const (
	DefaultTimeout    = 60 * time.Second
	DefaultMaxTimeout = 10 * time.Minute
	DefaultOutputCap  = 1 << 20 // 1 MiB
)

// maxPolicyLine bounds one line of a policy file: policyfile.MaxLine.
const maxPolicyLine = policyfile.MaxLine

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
	Action Action
	// Pattern is a cmdpattern pattern, matched word by word: * any run of
	// characters within one word, ? one character, ** any number of whole
	// words. A deny rule also matches as a whole-line cmdpattern.Glob. See
	// the package documentation.
	Pattern string
	Line    int // line in the policy file; 0 for a rule built in Go
}

// Policy decides which commands the agent runs and how. See the package
// documentation for the file format. A nil *Policy in Config means
// DefaultPolicy.
type Policy struct {
	// Rules are tried in order; the first whose Pattern matches the
	// command decides.
	Rules []Rule
	// Default decides a command no rule matches. The zero value is Deny.
	Default Action
	// Shell runs every command line as `/bin/sh -c LINE`, matching rules
	// against the line as written, split on blanks; otherwise the line is
	// split into argv (SplitCommand), run directly, and rules match argv.
	Shell bool
	// Timeout is a command's time limit when the region asks for none; 0
	// means Config.Timeout.
	Timeout time.Duration
	// MaxTimeout caps the time limit the region may ask for; 0 means
	// DefaultMaxTimeout, or Timeout if that is longer.
	MaxTimeout time.Duration
	// OutputCap is how many bytes of standard output and error together a
	// command may send; 0 means Config.OutputCap.
	OutputCap int64

	// compiled are Rules' patterns, compiled by ParsePolicy and clone;
	// Decide compiles a rule's pattern itself when it is missing here or
	// the rule was changed since.
	compiled []compiledRule
}

// compiledRule is a Rule's Pattern compiled.
type compiledRule struct {
	src    string              // the Pattern compiled
	action Action              // the Action it was compiled for
	pat    *cmdpattern.Pattern // nil when src does not compile
	glob   *cmdpattern.Glob    // deny rules: src as a whole-line glob
}

// DefaultPolicy is the policy of an agent given none: every command is
// allowed, none runs through the shell, the limits are Config's.
func DefaultPolicy() *Policy { return &Policy{Default: Allow} }

// clone returns a deep copy of p, its patterns compiled.
func (p *Policy) clone() *Policy {
	q := *p
	q.Rules = append([]Rule(nil), p.Rules...)
	q.compile()
	return &q
}

// compile compiles the rules' patterns into p.compiled.
func (p *Policy) compile() {
	p.compiled = make([]compiledRule, len(p.Rules))
	for i, r := range p.Rules {
		p.compiled[i] = compileRule(r)
	}
}

func compileRule(r Rule) compiledRule {
	c := compiledRule{src: r.Pattern, action: r.Action}
	if checkGlob(r.Pattern) == nil {
		c.pat, _ = cmdpattern.Compile(r.Pattern, cmdpattern.Options{})
		if r.Action == Deny {
			c.glob, _ = cmdpattern.CompileGlob(r.Pattern, cmdpattern.Options{})
		}
	}
	return c
}

// DecideArgv returns the action for a command line split into argv by
// SplitCommand (a policy without "shell yes"), and the rule that decided it
// (nil for the default). Allow rules match argv word by word; deny rules
// match word by word or, as a whole-line glob, argv joined by single
// spaces.
func (p *Policy) DecideArgv(argv []string) (Action, *Rule) {
	return p.decide(argv, strings.Join(argv, " "))
}

// Decide returns the action for a command whose subject is subject, and
// the rule that decided it (nil for the default). The subject is split
// into words on blanks (cmdpattern.Fields) for the rules to match: with
// "shell yes" the subject is the command line as written; without it,
// DecideArgv judges argv itself, while Decide of argv joined by single
// spaces cannot tell an argument holding a blank from two arguments.
func (p *Policy) Decide(subject string) (Action, *Rule) {
	return p.decide(cmdpattern.Fields(subject), subject)
}

// decide tries the rules in order on a command's words and, for deny
// rules' whole-line globs, its subject. A rule whose pattern does not
// compile fails closed: as a deny rule it matches every command, as an
// allow rule none.
func (p *Policy) decide(words []string, subject string) (Action, *Rule) {
	for i := range p.Rules {
		r := &p.Rules[i]
		var c compiledRule
		if i < len(p.compiled) && p.compiled[i].src == r.Pattern && p.compiled[i].action == r.Action {
			c = p.compiled[i]
		} else {
			c = compileRule(*r)
		}
		var match bool
		switch {
		case c.pat == nil:
			match = r.Action == Deny
		case c.pat.Match(words):
			match = true
		case r.Action == Deny:
			match = c.glob == nil || c.glob.Match(subject)
		}
		if match {
			return r.Action, r
		}
	}
	return p.Default, nil
}

// String returns p in the policy file format; ParsePolicy of it gives a
// policy equal to p but for the rules' Line numbers.
func (p *Policy) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "shell %s\n", map[bool]string{true: "yes", false: "no"}[p.Shell])
	if p.Timeout > 0 {
		fmt.Fprintf(&b, "timeout %s\n", p.Timeout)
	}
	if p.MaxTimeout > 0 {
		fmt.Fprintf(&b, "max-timeout %s\n", p.MaxTimeout)
	}
	if p.OutputCap > 0 {
		fmt.Fprintf(&b, "output-cap %s\n", formatSize(p.OutputCap))
	}
	fmt.Fprintf(&b, "default %s\n", p.Default)
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
	if pe, ok := err.(*PolicyError); ok {
		pe.File = path
	}
	return p, err
}

// ParsePolicy parses a policy in the file format described in the package
// documentation. A parse error is a *PolicyError giving the line.
func ParsePolicy(r io.Reader) (*Policy, error) {
	p := &Policy{Default: Deny}
	timeoutLine := 0
	// duration reads the value of directive name and sets it.
	duration := func(name string, set func(time.Duration, int)) func(string, int) error {
		return func(arg string, line int) error {
			d, err := time.ParseDuration(arg)
			if err != nil || d <= 0 {
				return fmt.Errorf("%s %q: want a positive duration such as 30s, 10m or 1h30m", name, arg)
			}
			set(d, line)
			return nil
		}
	}
	f, err := policyfile.Parse(r, policyfile.Syntax{
		Directives: []policyfile.Directive{
			{Name: "shell", Set: func(arg string, _ int) error {
				switch arg {
				case "yes":
					p.Shell = true
				case "no":
					p.Shell = false
				default:
					return fmt.Errorf("shell %q: want yes or no", arg)
				}
				return nil
			}},
			{Name: "timeout", Set: duration("timeout", func(d time.Duration, line int) { p.Timeout, timeoutLine = d, line })},
			{Name: "max-timeout", Set: duration("max-timeout", func(d time.Duration, _ int) { p.MaxTimeout = d })},
			{Name: "output-cap", Set: func(arg string, _ int) error {
				n, err := parseSize(arg)
				if err != nil {
					return fmt.Errorf("output-cap %q: %w", arg, err)
				}
				p.OutputCap = n
				return nil
			}},
		},
		CheckRule: func(r policyfile.Rule) error {
			if err := checkGlob(r.Pattern); err != nil {
				return fmt.Errorf("pattern %q: %w", r.Pattern, err)
			}
			return nil
		},
		StrictText: true,
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
		a := Deny
		if r.Allow {
			a = Allow
		}
		p.Rules = append(p.Rules, Rule{Action: a, Pattern: r.Pattern, Line: r.Line})
	}
	if p.Timeout > 0 && p.MaxTimeout > 0 && p.Timeout > p.MaxTimeout {
		return nil, &PolicyError{Line: timeoutLine, Msg: fmt.Sprintf("timeout %s is longer than max-timeout %s", p.Timeout, p.MaxTimeout)}
	}
	p.compile()
	return p, nil
}

// sizeUnits are the suffixes output-cap accepts.
var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"kB", 1000}, {"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000},
	{"B", 1}, {"", 1},
}

// maxSize bounds a size (1 TiB): beyond any sensible output cap, and far
// from overflow.
const maxSize = 1 << 40

// parseSize parses a positive byte count with an optional unit (B, KiB,
// MiB, GiB, kB/KB, MB, GB), e.g. "1MiB", "512 KiB", "65536".
func parseSize(s string) (int64, error) {
	for _, u := range sizeUnits {
		num, ok := strings.CutSuffix(s, u.suffix)
		if !ok {
			continue
		}
		num = strings.TrimSpace(num)
		if num == "" || num[0] < '0' || num[0] > '9' {
			break
		}
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil || n <= 0 || n > maxSize/u.mult {
			return 0, fmt.Errorf("want a positive whole number of bytes up to 1TiB, with an optional unit (B, KiB, MiB, GiB, kB, MB, GB)")
		}
		return n * u.mult, nil
	}
	return 0, fmt.Errorf("want a positive whole number of bytes with an optional unit (B, KiB, MiB, GiB, kB, MB, GB)")
}

// formatSize formats n for parseSize, in the largest binary unit that
// divides it.
func formatSize(n int64) string {
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n%u.mult == 0 {
			return strconv.FormatInt(n/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

// checkGlob reports a malformed rule pattern: one cmdpattern.Compile
// refuses, or one with a backslash. Patterns once had \ quote the next
// character; word patterns have no quoting, and a silent change of what
// "allow echo \*" allows would be worse than a policy file refused.
func checkGlob(pattern string) error {
	if i := strings.IndexByte(pattern, '\\'); i >= 0 {
		return fmt.Errorf("backslash at offset %d: patterns have no quoting (* and ? are always wildcards)", i)
	}
	_, err := cmdpattern.Compile(pattern, cmdpattern.Options{})
	return err
}

// globMatch reports whether s matches pattern as a whole: * matches any
// run of characters (spaces and slashes included), ? matches one
// character, \ makes the next character literal, everything else matches
// itself. It backtracks only to the last *, so it runs in O(len(pattern) ×
// len(s)) at worst. authkeys.go matches from= address patterns with it;
// policy rules use cmdpattern.
func globMatch(pattern, s string) bool {
	var (
		px, sx         int
		starPx, starSx = -1, -1
	)
	for sx < len(s) || px < len(pattern) {
		if px < len(pattern) {
			switch c := pattern[px]; c {
			case '*':
				starPx, starSx = px, sx
				px++
				continue
			case '?':
				if sx < len(s) {
					_, n := utf8.DecodeRuneInString(s[sx:])
					px++
					sx += n
					continue
				}
			default:
				lit := c
				plen := 1
				if c == '\\' && px+1 < len(pattern) {
					lit, plen = pattern[px+1], 2
				}
				if sx < len(s) && s[sx] == lit {
					px += plen
					sx++
					continue
				}
			}
		}
		// Mismatch: let the last * swallow one more character.
		if starPx < 0 || starSx >= len(s) {
			return false
		}
		_, n := utf8.DecodeRuneInString(s[starSx:])
		starSx += n
		px, sx = starPx+1, starSx
	}
	return true
}
