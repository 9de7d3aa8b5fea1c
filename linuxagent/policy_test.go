package linuxagent

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const samplePolicy = `# Read-only diagnostics.
timeout 30s
max-timeout 5m
output-cap 256KiB

allow uname
allow uname -?
allow df -h
allow systemctl status *
allow echo *
	deny	 rm *
default deny
shell no
`

func TestParsePolicy(t *testing.T) {
	p, err := ParsePolicy(strings.NewReader(samplePolicy))
	if err != nil {
		t.Fatal(err)
	}
	want := &Policy{
		Rules: []Rule{
			{Allow, "uname", 6}, {Allow, "uname -?", 7}, {Allow, "df -h", 8},
			{Allow, "systemctl status *", 9}, {Allow, "echo *", 10}, {Deny, "rm *", 11},
		},
		Default: Deny, Timeout: 30 * time.Second, MaxTimeout: 5 * time.Minute, OutputCap: 256 << 10,
	}
	if !policyEqual(p, want) {
		t.Fatalf("ParsePolicy = %+v, want %+v", p, want)
	}
	for i, r := range p.Rules {
		if r.Line != want.Rules[i].Line {
			t.Errorf("rule %d on line %d, want %d", i, r.Line, want.Rules[i].Line)
		}
	}
	for _, tt := range []struct {
		subject string
		want    Action
		line    int // 0: the default
	}{
		{"uname", Allow, 6},
		{"uname -a", Allow, 7},
		{"uname -ab", Deny, 0},
		{"unamex", Deny, 0},
		{"df -h", Allow, 8},
		{"df -h /", Deny, 0},
		{"systemctl status sshd.service", Allow, 9},
		{"systemctl status", Deny, 0},
		{"echo a; rm -rf /", Deny, 0}, // * matches one word, not five
		{"rm -rf /", Deny, 11},
		{"/bin/rm -rf /", Deny, 0},
		{"id", Deny, 0},
	} {
		got, rule := p.Decide(tt.subject)
		line := 0
		if rule != nil {
			line = rule.Line
		}
		if got != tt.want || line != tt.line {
			t.Errorf("Decide(%q) = %v by line %d, want %v by line %d", tt.subject, got, line, tt.want, tt.line)
		}
	}
}

func TestParsePolicyDefaults(t *testing.T) {
	p, err := ParsePolicy(strings.NewReader("# nothing\n\n"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Default != Deny || p.Shell || p.Timeout != 0 || p.MaxTimeout != 0 || p.OutputCap != 0 || len(p.Rules) != 0 {
		t.Errorf("empty policy = %+v: want default deny, no shell, limits unset", p)
	}
	if a, _ := DefaultPolicy().Decide("anything at all"); a != Allow {
		t.Error("DefaultPolicy denies")
	}
	if a, _ := (&Policy{}).Decide("x"); a != Deny {
		t.Error("the zero Policy allows: it must fail closed")
	}
	p, err = ParsePolicy(strings.NewReader("shell yes\ndefault allow\noutput-cap 10\ntimeout 1h\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !p.Shell || p.Default != Allow || p.OutputCap != 10 || p.Timeout != time.Hour {
		t.Errorf("got %+v", p)
	}
}

func TestParsePolicyErrors(t *testing.T) {
	for _, tt := range []struct {
		name, text string
		line       int
		msg        string
	}{
		{"unknown directive", "allow ls\nalow ls\n", 2, `unknown directive "alow"`},
		{"allow without pattern", "\n\nallow\n", 3, "allow needs a pattern"},
		{"deny blank pattern", "deny   \t\n", 1, "deny needs a pattern"},
		{"trailing backslash", "allow ls \\\n", 1, "backslash at offset 3"},
		{"backslash escape", "allow echo \\*\n", 1, "patterns have no quoting"},
		{"control character", "allow ls\x01\n", 1, "control character"},
		{"too many words", "deny" + strings.Repeat(" x", 65) + "\n", 1, "more than 64 words"},
		{"shell value", "shell maybe\n", 1, `want yes or no`},
		{"default value", "default permit\n", 1, "want allow or deny"},
		{"timeout unit", "timeout 30\n", 1, "positive duration"},
		{"timeout negative", "timeout -5s\n", 1, "positive duration"},
		{"timeout zero", "timeout 0s\n", 1, "positive duration"},
		{"max-timeout bad", "max-timeout soon\n", 1, "positive duration"},
		{"timeout over max", "max-timeout 1m\n# x\ntimeout 2m\n", 3, "longer than max-timeout"},
		{"duplicate", "timeout 1s\nshell no\ntimeout 2s\n", 3, "given twice (first on line 1)"},
		{"output-cap unit", "output-cap 1MB/s\n", 1, "output-cap"},
		{"output-cap zero", "output-cap 0\n", 1, "positive whole number"},
		{"output-cap negative", "output-cap -1KiB\n", 1, "positive whole number"},
		{"output-cap huge", "output-cap 9999999GiB\n", 1, "up to 1TiB"},
		{"output-cap fraction", "output-cap 1.5MiB\n", 1, "positive whole number"},
		{"shell without value", "shell\n", 1, "shell needs a value"},
		{"bad utf8", "allow \xff\n", 1, "UTF-8"},
		{"nul", "allow a\x00b\n", 1, "NUL"},
		{"long line", "allow " + strings.Repeat("x", maxPolicyLine) + "\n", 1, "longer than"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePolicy(strings.NewReader(tt.text))
			var pe *PolicyError
			if !errors.As(err, &pe) || !errors.Is(err, ErrPolicy) {
				t.Fatalf("ParsePolicy(%q) = %v, want a *PolicyError wrapping ErrPolicy", tt.text, err)
			}
			if pe.Line != tt.line || !strings.Contains(pe.Msg, tt.msg) {
				t.Errorf("error %q: want line %d and %q", err, tt.line, tt.msg)
			}
		})
	}
}

func TestLoadPolicy(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "policy")
	os.WriteFile(path, []byte("allow ls\nbogus\n"), 0o644)
	_, err := LoadPolicy(path)
	if err == nil || !strings.Contains(err.Error(), path+":2:") {
		t.Errorf("LoadPolicy = %v, want an error naming %s:2", err, path)
	}
	if _, err := LoadPolicy(filepath.Join(dir, "missing")); !errors.Is(err, ErrPolicy) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadPolicy(missing) = %v", err)
	}
	os.WriteFile(path, []byte(samplePolicy), 0o644)
	if p, err := LoadPolicy(path); err != nil || len(p.Rules) != 6 {
		t.Errorf("LoadPolicy = %+v, %v", p, err)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"1": 1, "1B": 1, "1KiB": 1024, "1 MiB": 1 << 20, "3GiB": 3 << 30, "1kB": 1000, "2KB": 2000,
		"5MB": 5e6, "1GB": 1e9, "1024GiB": 1 << 40,
	} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, n := range []int64{1, 1023, 1024, 1 << 20, 3 << 30, 1<<20 + 1} {
		if got, err := parseSize(formatSize(n)); err != nil || got != n {
			t.Errorf("parseSize(formatSize(%d) = %q) = %d, %v", n, formatSize(n), got, err)
		}
	}
}

func TestGlobMatch(t *testing.T) {
	for _, tt := range []struct {
		pattern, s string
		want       bool
	}{
		{"", "", true},
		{"", "a", false},
		{"*", "", true},
		{"*", "anything / at all", true},
		{"a*", "a", true},
		{"a*c", "abbbc", true},
		{"a*c", "abbbcd", false},
		{"a*b*c", "aXbYbZc", true},
		{"?", "é", true},
		{"??", "é", false},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{`\*`, "*", true},
		{`\*`, "a", false},
		{`a\?`, "a?", true},
		{`\\`, `\`, true},
		{"ls -l *", "ls -l /tmp", true},
		{"ls -l *", "ls -l", false},
		{"*x*y*z*", strings.Repeat("x", 200) + "y", false},
		{strings.Repeat("*a", 30), strings.Repeat("a", 29), false},
	} {
		if got := globMatch(tt.pattern, tt.s); got != tt.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", tt.pattern, tt.s, got, tt.want)
		}
	}
}

// policyEqual reports whether two policies are equal, ignoring rules' Line.
func policyEqual(a, b *Policy) bool {
	if a.Default != b.Default || a.Shell != b.Shell || a.Timeout != b.Timeout ||
		a.MaxTimeout != b.MaxTimeout || a.OutputCap != b.OutputCap || len(a.Rules) != len(b.Rules) {
		return false
	}
	for i := range a.Rules {
		if a.Rules[i].Action != b.Rules[i].Action || a.Rules[i].Pattern != b.Rules[i].Pattern {
			return false
		}
	}
	return true
}

func FuzzParsePolicy(f *testing.F) {
	f.Add(samplePolicy)
	f.Add("shell yes\ndefault allow\n")
	f.Add("timeout 1h30m\nmax-timeout 2h\noutput-cap 1 MiB\n")
	f.Add("allow systemctl status **\ndeny cat /var/log/../*\n")
	f.Add("allow\tls -l\r\ndeny *\r\n")
	f.Fuzz(func(t *testing.T, text string) {
		p, err := ParsePolicy(strings.NewReader(text))
		if err != nil {
			var pe *PolicyError
			if !errors.As(err, &pe) || pe.Line < 1 {
				t.Fatalf("ParsePolicy(%q): %v is not a *PolicyError with a line", text, err)
			}
			return
		}
		// Round trip: the canonical form parses to the same policy.
		again, err := ParsePolicy(strings.NewReader(p.String()))
		if err != nil {
			t.Fatalf("ParsePolicy(%q) ok, but its String %q: %v", text, p.String(), err)
		}
		if !policyEqual(p, again) {
			t.Fatalf("round trip of %q: %+v became %+v", text, p, again)
		}
		p.Decide(text) // must not panic or hang
		p.DecideArgv(strings.Fields(text))
	})
}

// TestPolicyHoles shows each way a command got past an allow rule of the
// whole-line matcher policies had before word patterns (globMatch, kept
// for authorized_keys): the old matcher allowed the command (checked
// here, so that the test shows the hole), the policy now does not.
func TestPolicyHoles(t *testing.T) {
	for _, tt := range []struct {
		name, rule string
		argv       []string // the command as SplitCommand gives it
		shell      bool     // the policy says "shell yes": the subject is the line
	}{
		{"dotdot escapes the directory", "cat /var/log/*", []string{"cat", "/var/log/../../etc/shadow"}, false},
		{"dotdot at the end", "ls -l /srv/*", []string{"ls", "-l", "/srv/x/.."}, false},
		{"star spans a second argument", "cat /var/log/*", []string{"cat", "/var/log/syslog", "/etc/shadow"}, false},
		{"star spans options", "systemctl status *", []string{"systemctl", "status", "sshd", "--root=/"}, false},
		{"question marks span a blank", "cat /tmp/???", []string{"cat", "/tmp/a", "b"}, false},
		{"star spans a second shell command", "systemctl status *", []string{"systemctl status sshd; reboot"}, true},
		{"star spans a pipe", "echo *", []string{"echo x | sh"}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := mustPolicy(t, "allow "+tt.rule+"\n")
			p.Shell = tt.shell
			subject := strings.Join(tt.argv, " ")
			if !globMatch(tt.rule, subject) {
				t.Fatalf("the old matcher did not allow %q by %q either: no hole shown", subject, tt.rule)
			}
			if a, r := p.Decide(subject); a != Deny || r != nil {
				t.Errorf("Decide(%q) = %v by %+v, want the default deny", subject, a, r)
			}
			if !tt.shell {
				if a, r := p.DecideArgv(tt.argv); a != Deny || r != nil {
					t.Errorf("DecideArgv(%q) = %v by %+v, want the default deny", tt.argv, a, r)
				}
			}
		})
	}
	// An argument holding a blank matched two pattern words: DecideArgv
	// sees argv's words as they are (Decide of the joined argv cannot).
	p := mustPolicy(t, "allow echo a b\n")
	if a, _ := p.DecideArgv([]string{"echo", "a b"}); a != Deny {
		t.Error(`DecideArgv(["echo" "a b"]) allowed by "echo a b": one argument matched two pattern words`)
	}
	if a, _ := p.DecideArgv([]string{"echo", "a", "b"}); a != Allow {
		t.Error(`DecideArgv(["echo" "a" "b"]) not allowed by "echo a b"`)
	}
}

// TestPolicyDenyKeepsDenying: deny rules written for the whole-line
// matcher deny at least what they denied, though word patterns match less:
// a deny rule matches word by word or as a whole-line glob.
func TestPolicyDenyKeepsDenying(t *testing.T) {
	for _, tt := range []struct {
		rule, subject string
		shell         bool
	}{
		{"rm *", "rm -rf /nonexistent", false},
		{"*", "cat /etc/passwd", false},
		{"*reboot*", "echo x; reboot", true},
		{"cat /etc/*", "cat /etc/../etc/shadow", false},
		{"systemctl * sshd", "systemctl stop --now sshd", false},
		{"rm **", "rm", false}, // ** matches no word; the glob "rm **" would not
	} {
		p := mustPolicy(t, "default allow\ndeny "+tt.rule+"\n")
		p.Shell = tt.shell
		if a, r := p.Decide(tt.subject); a != Deny || r == nil || r.Line != 2 {
			t.Errorf("deny %s: Decide(%q) = %v by %+v, want deny by line 2", tt.rule, tt.subject, a, r)
		}
		if !tt.shell {
			if a, _ := p.DecideArgv(strings.Fields(tt.subject)); a != Deny {
				t.Errorf("deny %s: DecideArgv(%q) = %v, want deny", tt.rule, tt.subject, a)
			}
		}
	}
}

// TestPolicyRulesChanged: a rule changed or added after ParsePolicy is
// matched as it is now, and one whose pattern does not compile fails
// closed.
func TestPolicyRulesChanged(t *testing.T) {
	p := mustPolicy(t, "allow ls\n")
	p.Rules[0].Pattern = "id"
	if a, _ := p.Decide("ls"); a != Deny {
		t.Error("the old pattern still allows ls")
	}
	if a, _ := p.Decide("id"); a != Allow {
		t.Error("the new pattern does not allow id")
	}
	p = mustPolicy(t, "default allow\nallow rm *\n")
	p.Rules[0].Action = Deny
	if a, _ := p.Decide("rm -rf /"); a != Deny {
		t.Error("a rule turned from allow to deny does not deny as a whole-line glob")
	}
	bad := strings.Repeat("x ", 65)
	p = &Policy{Rules: []Rule{{Allow, bad, 0}}, Default: Allow}
	if a, r := p.Decide("x"); a != Allow || r != nil {
		t.Errorf("an allow rule that does not compile matched: %v by %+v", a, r)
	}
	p = &Policy{Rules: []Rule{{Deny, bad, 0}, {Allow, "**", 0}}}
	if a, r := p.Decide("ls"); a != Deny || r != &p.Rules[0] {
		t.Errorf("a deny rule that does not compile did not deny: %v by %+v", a, r)
	}
}
