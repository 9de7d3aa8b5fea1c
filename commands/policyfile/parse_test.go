package policyfile

import (
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
)

// linuxPolicy is a policy file of the Linux agent, as its operators write
// them: comments, blank lines, a tab-indented rule, directives out of
// order.
const linuxPolicy = `# Read-only diagnostics.
timeout 30s
max-timeout 5m
output-cap 256KiB

allow uname
allow uname -?
allow systemctl status *
	deny	 rm *
default deny
shell no
`

// vmPolicy is a CP command policy of the z/VM agent.
const vmPolicy = `# The operator's read-only view, and two guests it may restart.
allow QUERY **
	allow	 MSG OPERATOR **
deny FORCE LINUX01
allow FORCE LINUX0?
default deny
special %
`

// recorder is a Syntax with the directives seen recorded as "name=value@line".
type recorder struct {
	got []string
}

func (rec *recorder) syntax(names ...string) Syntax {
	s := Syntax{}
	for _, name := range names {
		s.Directives = append(s.Directives, Directive{Name: name, Set: func(value string, line int) error {
			if value == "bad" {
				return fmt.Errorf("%s %q: want good", name, value)
			}
			rec.got = append(rec.got, fmt.Sprintf("%s=%s@%d", name, value, line))
			return nil
		}})
	}
	return s
}

func TestParse(t *testing.T) {
	for _, tt := range []struct {
		name, text string
		syntax     []string // the Syntax's directives
		rules      []Rule
		allow      bool     // File.DefaultAllow
		set        []string // the directives' Set calls
	}{
		{"empty", "", nil, nil, false, nil},
		{"comments and blanks", "# a\n\n   \n\t# b\n", nil, nil, false, nil},
		{"linux", linuxPolicy, []string{"shell", "timeout", "max-timeout", "output-cap"},
			[]Rule{{true, "uname", 6}, {true, "uname -?", 7}, {true, "systemctl status *", 8}, {false, "rm *", 9}},
			false, []string{"timeout=30s@2", "max-timeout=5m@3", "output-cap=256KiB@4", "shell=no@11"}},
		{"vm", vmPolicy, []string{"special"},
			[]Rule{{true, "QUERY **", 2}, {true, "MSG OPERATOR **", 3}, {false, "FORCE LINUX01", 4}, {true, "FORCE LINUX0?", 5}},
			false, []string{"special=%@7"}},
		{"default allow", "default allow\n", nil, nil, true, nil},
		{"default deny", "default   deny  \n", nil, nil, false, nil},
		{"CRLF", "allow ls -l\r\ndefault allow\r\n", nil, []Rule{{true, "ls -l", 1}}, true, nil},
		{"tab before space", "deny\tx y\n", nil, []Rule{{false, "x y", 1}}, false, nil},
		{"hash inside a line", "allow echo #x\n", nil, []Rule{{true, "echo #x", 1}}, false, nil},
		{"no final newline", "allow ls", nil, []Rule{{true, "ls", 1}}, false, nil},
		{"value with blanks", "x  a  b \n", []string{"x"}, nil, false, []string{"x=a  b@1"}},
		{"not UTF-8 unless strict", "# \xff\nallow \xff\n", nil, []Rule{{true, "\xff", 2}}, false, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, reader := range []struct {
				name string
				wrap func(io.Reader) io.Reader
			}{{"whole", func(r io.Reader) io.Reader { return r }}, {"byte by byte", iotest.OneByteReader}} {
				var rec recorder
				f, err := Parse(reader.wrap(strings.NewReader(tt.text)), rec.syntax(tt.syntax...))
				if err != nil {
					t.Fatalf("%s: %v", reader.name, err)
				}
				if !reflect.DeepEqual(f.Rules, tt.rules) || f.DefaultAllow != tt.allow || !reflect.DeepEqual(rec.got, tt.set) {
					t.Errorf("%s: Parse = %+v, set %q; want rules %+v, default allow %v, set %q",
						reader.name, f, rec.got, tt.rules, tt.allow, tt.set)
				}
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	errPattern := errors.New(`pattern "bad": no`)
	for _, tt := range []struct {
		name, text string
		strict     bool
		line       int
		msg        string // Error.Msg, in full
		wraps      error  // what the error wraps, if anything
	}{
		{"unknown directive", "allow ls\nalow ls\n", false, 2, `unknown directive "alow" (want allow, deny, default, shell, special)`, nil},
		{"directive case", "Allow ls\n", false, 1, `unknown directive "Allow" (want allow, deny, default, shell, special)`, nil},
		{"allow without pattern", "\n\nallow\n", false, 3, "allow needs a pattern", nil},
		{"deny blank pattern", "deny   \t\n", false, 1, "deny needs a pattern", nil},
		{"pattern refused", "allow ok\ndeny bad\n", false, 2, `pattern "bad": no`, errPattern},
		{"default value", "default permit\n", false, 1, `default "permit": want allow or deny`, nil},
		{"default without value", "default\n", false, 1, "default needs a value", nil},
		{"default twice", "default deny\n\ndefault allow\n", false, 3, "default given twice (first on line 1)", nil},
		{"twice before value", "shell yes\nshell\n", false, 2, "shell given twice (first on line 1)", nil},
		{"directive twice", "shell a\nspecial b\nshell c\n", false, 3, "shell given twice (first on line 1)", nil},
		{"directive without value", "special \t \n", false, 1, "special needs a value", nil},
		{"directive value refused", "shell bad\n", false, 1, `shell "bad": want good`, nil},
		{"bad UTF-8", "allow \xff\n", true, 1, "not valid UTF-8", nil},
		{"bad UTF-8 in a comment", "# \xff\n", true, 1, "not valid UTF-8", nil},
		{"NUL", "allow ok\nallow a\x00b\n", true, 2, "NUL byte", nil},
		{"long line", "allow ok\nallow " + strings.Repeat("x", MaxLine) + "\n", false, 2, fmt.Sprintf("line longer than %d bytes", MaxLine), nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var rec recorder
			s := rec.syntax("shell", "special")
			s.StrictText = tt.strict
			s.CheckRule = func(r Rule) error {
				if r.Pattern == "bad" {
					return errPattern
				}
				return nil
			}
			f, err := Parse(strings.NewReader(tt.text), s)
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("Parse(%q) = %+v, %v; want an *Error", tt.text, f, err)
			}
			if pe.Line != tt.line || pe.Msg != tt.msg {
				t.Errorf("Parse(%q): line %d %q, want line %d %q", tt.text, pe.Line, pe.Msg, tt.line, tt.msg)
			}
			if want := "policyfile: line " + strconv.Itoa(tt.line) + ": " + tt.msg; err.Error() != want {
				t.Errorf("Error() = %q, want %q", err, want)
			}
			if tt.wraps != nil && !errors.Is(err, tt.wraps) {
				t.Errorf("%v does not wrap %v", err, tt.wraps)
			}
		})
	}
}

// TestParseReadError: an error of the reader that is not a long line is
// returned as it is, after the lines before it were read.
func TestParseReadError(t *testing.T) {
	r := io.MultiReader(strings.NewReader("allow ls\n"), iotest.ErrReader(io.ErrUnexpectedEOF))
	if _, err := Parse(r, Syntax{}); err != io.ErrUnexpectedEOF {
		t.Errorf("Parse = %v, want %v", err, io.ErrUnexpectedEOF)
	}
}

// format writes f's rules and default in the policy file format.
func format(f *File) string {
	var b strings.Builder
	if f.DefaultAllow {
		b.WriteString("default allow\n")
	}
	for _, r := range f.Rules {
		action := "deny"
		if r.Allow {
			action = "allow"
		}
		fmt.Fprintf(&b, "%s %s\n", action, r.Pattern)
	}
	return b.String()
}

func FuzzParse(f *testing.F) {
	f.Add(linuxPolicy, true)
	f.Add(vmPolicy, false)
	f.Add("allow\tls -l\r\ndeny *\r\ndefault allow\r\n", false)
	f.Add("shell yes\nshell no\n", false)
	f.Fuzz(func(t *testing.T, text string, strict bool) {
		var rec recorder
		s := rec.syntax("shell", "timeout", "max-timeout", "output-cap", "special")
		s.StrictText = strict
		file, err := Parse(strings.NewReader(text), s)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) || pe.Line < 1 || pe.Msg == "" {
				t.Fatalf("Parse(%q): %v is not an *Error with a line", text, err)
			}
			return
		}
		last := 0
		for _, r := range file.Rules {
			if r.Pattern == "" || r.Pattern != strings.TrimSpace(r.Pattern) || r.Line <= last {
				t.Fatalf("Parse(%q): rule %+v", text, r)
			}
			last = r.Line
		}
		// Round trip: the rules and default written out read the same.
		again, err := Parse(strings.NewReader(format(file)), Syntax{StrictText: strict})
		if err != nil {
			t.Fatalf("Parse(%q) ok, but %q: %v", text, format(file), err)
		}
		if len(again.Rules) != len(file.Rules) || again.DefaultAllow != file.DefaultAllow {
			t.Fatalf("round trip of %q: %+v became %+v", text, file, again)
		}
		for i, r := range again.Rules {
			if r.Allow != file.Rules[i].Allow || r.Pattern != file.Rules[i].Pattern {
				t.Fatalf("round trip of %q: %+v became %+v", text, file, again)
			}
		}
	})
}
