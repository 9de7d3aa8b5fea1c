package cmdpattern

import (
	"errors"
	"math/rand/v2"
	"os/exec"
	"reflect"
	"strings"
	"testing"

	"github.com/zbridge/zbridge/internal/peer"
)

// splitAccepted are command lines Split accepts, with their argv.
var splitAccepted = []struct {
	name, line string
	argv       []string
}{
	{"words", "echo hello world", []string{"echo", "hello", "world"}},
	{"blanks", "  echo \t a   b  ", []string{"echo", "a", "b"}},
	{"single quotes", `echo 'a b' 'c"d' '$HOME' '*' 'x|y;z'`, []string{"echo", "a b", `c"d`, "$HOME", "*", "x|y;z"}},
	{"double quotes", `echo "a b" "it's" "q\"uote" "back\\slash" "\$x" "\` + "`" + `" "keep\n"`,
		[]string{"echo", "a b", "it's", `q"uote`, `back\slash`, "$x", "`", `keep\n`}},
	{"backslash", `echo a\ b \$HOME \| \; \* \~ \#`, []string{"echo", "a b", "$HOME", "|", ";", "*", "~", "#"}},
	{"adjacent quoting", `echo a'b'"c"\d`, []string{"echo", "abcd"}},
	{"empty words", `printf '%s|' '' ""`, []string{"printf", "%s|", "", ""}},
	{"line continuation", "echo a\\\nb c", []string{"echo", "ab", "c"}},
	{"hash inside word", "echo a#b", []string{"echo", "a#b"}},
	{"tilde inside word", "echo a~b --x=~", []string{"echo", "a~b", "--x=~"}},
	{"lone brackets", "[ -f /etc/passwd ]", []string{"[", "-f", "/etc/passwd", "]"}},
	{"quoted closing bracket", `echo [a']'`, []string{"echo", "[a]"}},
	{"assignment later", "env A=b c", []string{"env", "A=b", "c"}},
	{"quoted assignment", `'A=b' c`, []string{"A=b", "c"}},
	{"quoted reserved word", `'if' x`, []string{"if", "x"}},
	{"reserved word later", "echo if then fi", []string{"echo", "if", "then", "fi"}},
	{"braces", "echo {a,b}", []string{"echo", "{a,b}"}},
	{"utf8", "echo grüße ✓", []string{"echo", "grüße", "✓"}},
	{"equals first not name", "=x y", []string{"=x", "y"}},
	{"digit name", "1A=b", []string{"1A=b"}},
	{"tab inside quotes", "echo 'a\tb'", []string{"echo", "a\tb"}},
	{"newline inside quotes", "echo 'a\nb'", []string{"echo", "a\nb"}},
}

// splitRefused are command lines Split refuses, with the error kind.
var splitRefused = []struct {
	name, line string
	kind       error
}{
	{"pipe", "ls | wc", ErrShellSyntax},
	{"and", "true && false", ErrShellSyntax},
	{"background", "sleep 1 &", ErrShellSyntax},
	{"semicolon", "echo a; echo b", ErrShellSyntax},
	{"redirect out", "echo a > /tmp/x", ErrShellSyntax},
	{"redirect in", "cat < /etc/passwd", ErrShellSyntax},
	{"subshell", "(echo a)", ErrShellSyntax},
	{"dollar", "echo $HOME", ErrShellSyntax},
	{"dollar in word", "echo a$b", ErrShellSyntax},
	{"command substitution", "echo $(id)", ErrShellSyntax},
	{"backtick", "echo `id`", ErrShellSyntax},
	{"dollar in double quotes", `echo "$HOME"`, ErrShellSyntax},
	{"backtick in double quotes", "echo \"`id`\"", ErrShellSyntax},
	{"star", "ls *.log", ErrShellSyntax},
	{"question", "ls a?", ErrShellSyntax},
	{"bracket expression", "ls [ab]", ErrShellSyntax},
	{"comment", "echo a #b", ErrShellSyntax},
	{"tilde", "ls ~", ErrShellSyntax},
	{"tilde user", "ls ~root/x", ErrShellSyntax},
	{"newline", "echo a\necho b", ErrShellSyntax},
	{"assignment", "A=b env", ErrShellSyntax},
	{"assignment quoted value", "A='b c' env", ErrShellSyntax},
	{"assignment continued", "A\\\nB=c env", ErrShellSyntax},
	{"reserved if", "if true", ErrShellSyntax},
	{"reserved bang", "! false", ErrShellSyntax},
	{"reserved brace", "{ echo; }", ErrShellSyntax},
	{"reserved continued", "whi\\\nle x", ErrShellSyntax},
	{"empty", "", ErrBadCommand},
	{"blank", " \t ", ErrBadCommand},
	{"only continuation", "\\\n", ErrBadCommand},
	{"unterminated single", "echo 'abc", ErrBadCommand},
	{"unterminated double", `echo "abc`, ErrBadCommand},
	{"unterminated escape in double", `echo "abc\`, ErrBadCommand},
	{"trailing backslash", `echo abc\`, ErrBadCommand},
	{"nul", "echo a\x00b", ErrBadCommand},
	{"nul quoted", "echo 'a\x00b'", ErrBadCommand},
	{"nul escaped", "echo \\\x00", ErrBadCommand},
}

func TestSplit(t *testing.T) {
	for _, tt := range splitAccepted {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Split(tt.line)
			if err != nil {
				t.Fatalf("Split(%q): %v", tt.line, err)
			}
			if !reflect.DeepEqual(got, tt.argv) {
				t.Errorf("Split(%q) = %q, want %q", tt.line, got, tt.argv)
			}
		})
	}
	for _, tt := range splitRefused {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Split(tt.line)
			if !errors.Is(err, tt.kind) {
				t.Fatalf("Split(%q) = %q, %v; want an error wrapping %v", tt.line, got, err, tt.kind)
			}
			var se *SplitError
			if !errors.As(err, &se) || se.Offset < 0 || se.Offset > len(tt.line) {
				t.Errorf("error %v: want a *SplitError with an offset in the line", err)
			}
		})
	}
}

// TestSplitMatchesShell checks the guarantee Split makes: an
// accepted line gives the argv /bin/sh gives it. The words go to printf,
// which prints each NUL-terminated.
func TestSplitMatchesShell(t *testing.T) {
	sh := peer.Require(t, "sh")
	for _, tt := range splitAccepted {
		t.Run(tt.name, func(t *testing.T) {
			out, err := exec.Command(sh, "-c", `printf '%s\0' `+tt.line).Output()
			if err != nil {
				t.Fatalf("sh -c %q: %v", tt.line, err)
			}
			shArgv := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
			if !reflect.DeepEqual(shArgv, tt.argv) {
				t.Errorf("sh splits %q into %q; the table (and Split) say %q", tt.line, shArgv, tt.argv)
			}
		})
	}
}

// quoteCases are argument lists that quoting has to get right.
var quoteCases = [][]string{
	{"echo", "hello"},
	{"echo", ""},
	{"printf", "%s\n", "it's", `a"b`, "$HOME", "`id`", "a b\tc", "*", "~", "#x", "[a]", "\\"},
	{"A=b", "c"},
	{"if", "then"},
	{"!"},
	{"/usr/bin/env", "X=1", "--opt=~/x"},
	{"grüße", "\x01\x7f\xff"},
	// fish reads \' and \\ inside single quotes as escapes.
	{"echo", `a\'`, "; id #"},
	{"df", "-h", `x\`, "'; id -un; #"},
	{"echo", `\\'\'`, `'`, `\`, "a'b", `it\'s`},
	{"echo", "%self", "50%", "{a,b}", "=ls", "$(id)", "a\nb", "(x)", "x;y", "a|b", "&", "<x>"},
}

func TestQuote(t *testing.T) {
	for _, argv := range quoteCases {
		line := Quote(argv...)
		got, err := Split(line)
		if err != nil || !reflect.DeepEqual(got, argv) {
			t.Errorf("Split(Quote(%q) = %q) = %q, %v", argv, line, got, err)
		}
	}
	if got := Quote("ls", "-l", "/var/log"); got != "ls -l /var/log" {
		t.Errorf("Quote of safe words = %q, want them unquoted", got)
	}
}

func FuzzSplit(f *testing.F) {
	for _, tt := range splitAccepted {
		f.Add(tt.line)
	}
	for _, tt := range splitRefused {
		f.Add(tt.line)
	}
	f.Fuzz(func(t *testing.T, line string) {
		argv, err := Split(line)
		if err != nil {
			var se *SplitError
			if !errors.As(err, &se) || !(errors.Is(err, ErrShellSyntax) || errors.Is(err, ErrBadCommand)) {
				t.Fatalf("Split(%q): error %v is not a *SplitError of a known kind", line, err)
			}
			if se.Offset < 0 || se.Offset > len(line) {
				t.Fatalf("Split(%q): offset %d out of range", line, se.Offset)
			}
			return
		}
		if len(argv) == 0 {
			t.Fatalf("Split(%q) accepted an empty argv", line)
		}
		for _, a := range argv {
			if strings.IndexByte(a, 0) >= 0 {
				t.Fatalf("Split(%q) = %q: a word holds a NUL", line, argv)
			}
		}
		// Round trip: quoting the words and splitting again gives them back.
		q := Quote(argv...)
		again, err := Split(q)
		if err != nil || !reflect.DeepEqual(again, argv) {
			t.Fatalf("Split(%q) = %q; Quote = %q; split again = %q, %v", line, argv, q, again, err)
		}
	})
}

// TestQuoteUnderShells runs Quote's lines with the shells an agentless
// host's sshd may run them with (the user's login shell, -c LINE): each
// must pass exactly the words quoted to the program.
func TestQuoteUnderShells(t *testing.T) {
	printf := peer.Require(t, "printf") // coreutils': the same program under every shell
	for _, name := range []string{"sh", "bash", "zsh", "fish"} {
		shell := peer.Require(t, name)
		t.Run(name, func(t *testing.T) {
			for _, argv := range quoteCases {
				line := Quote(append([]string{printf, `%s\0`}, argv...)...)
				out, err := exec.Command(shell, "-c", line).Output()
				if err != nil {
					t.Errorf("%s -c %q: %v", name, line, err)
					continue
				}
				got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
				if !reflect.DeepEqual(got, argv) {
					t.Errorf("%s -c %q passed %q, want %q", name, line, got, argv)
				}
			}
		})
	}
}

// TestSplitMatchesShellRandom compares Split with /bin/sh on
// random lines made of the characters quoting is about: every line it
// accepts must split as sh splits it.
func TestSplitMatchesShellRandom(t *testing.T) {
	sh := peer.Require(t, "sh")
	alphabet := []string{"a", "b", "-", "=", "'", `"`, `\`, " ", "\t", "\n", "$", "~", "#", "[", "]", "*", "é", "{", "}", "A=", "if"}
	rng := rand.New(rand.NewPCG(1, 2))
	accepted := 0
	for i := 0; i < 3000 && accepted < 400; i++ {
		var b strings.Builder
		for range 1 + rng.IntN(12) {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		line := "x " + b.String() // words after the first, as printf's arguments
		argv, err := Split(line)
		if err != nil {
			continue
		}
		accepted++
		out, err := exec.Command(sh, "-c", `printf '%s\0' `+line).Output()
		if err != nil {
			t.Fatalf("sh -c %q: %v", line, err)
		}
		shArgv := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
		if !reflect.DeepEqual(shArgv, argv) {
			t.Errorf("line %q: sh splits it into %q, Split into %q", line, shArgv, argv)
		}
	}
	if accepted < 100 {
		t.Errorf("only %d random lines accepted; the comparison proves little", accepted)
	}
}
