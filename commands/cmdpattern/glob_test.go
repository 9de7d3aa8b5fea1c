package cmdpattern

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestGlob(t *testing.T) {
	for _, tt := range []struct {
		pattern, s string
		fold       bool
		want       bool
	}{
		{"", "", false, true},
		{"", "a", false, false},
		{"*", "", false, true},
		{"*", "anything / at all", false, true},
		{"a*", "a", false, true},
		{"a*c", "abbbc", false, true},
		{"a*c", "abbbcd", false, false},
		{"a*b*c", "aXbYbZc", false, true},
		{"?", "é", false, true},
		{"??", "é", false, false},
		{"a?c", "abc", false, true},
		{"a?c", "ac", false, false},
		{"a?c", "a c", false, true},
		{"ls -l *", "ls -l /tmp", false, true},
		{"ls -l *", "ls -l", false, false},
		{"rm *", "rm -rf /nonexistent", false, true},
		{"*reboot*", "echo x; reboot", false, true},
		{"*", "cat /etc/passwd", false, true},
		{"cat /var/log/*", "cat /var/log/../../etc/shadow", false, true}, // no ".." rule
		{"*x*y*z*", strings.Repeat("x", 200) + "y", false, false},
		{strings.Repeat("*a", 30), strings.Repeat("a", 29), false, false},
		{"REBOOT", "reboot", true, true},
		{"REBOOT", "reboot", false, false},
		{"a\tb", "a\tb", false, true},
		{"a b", "a  b", false, false},
	} {
		g, err := CompileGlob(tt.pattern, Options{Fold: tt.fold})
		if err != nil {
			t.Fatalf("CompileGlob(%q): %v", tt.pattern, err)
		}
		if got := g.Match(tt.s); got != tt.want {
			t.Errorf("CompileGlob(%q, fold %v).Match(%q) = %v, want %v", tt.pattern, tt.fold, tt.s, got, tt.want)
		}
		if got := refGlob(tt.pattern, tt.s, tt.fold); got != tt.want {
			t.Errorf("the reference says %v for %q against %q", got, tt.pattern, tt.s)
		}
		if g.String() != tt.pattern {
			t.Errorf("String() = %q, want %q", g.String(), tt.pattern)
		}
	}
}

func TestCompileGlobErrors(t *testing.T) {
	for _, pattern := range []string{strings.Repeat("*", MaxPatternLen+1), "a\nb", "\xff", "a\x00"} {
		if _, err := CompileGlob(pattern, Options{}); !errors.Is(err, ErrPattern) {
			t.Errorf("CompileGlob(%.20q) = %v, want ErrPattern", pattern, err)
		}
	}
}

func TestGlobPathological(t *testing.T) {
	long := strings.Repeat("a ", 50<<10)
	for _, pattern := range []string{
		"*" + strings.Repeat("a*", (MaxPatternLen-2)/2) + "b",
		"*" + strings.Repeat("a ", (MaxPatternLen-2)/2) + "b",
		"*" + strings.Repeat("?", MaxPatternLen-2) + "b",
	} {
		g, err := CompileGlob(pattern, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if g.Match(long) {
			t.Errorf("%.20q... matched a line without b", pattern)
		}
		if !g.Match(long + "b") {
			t.Errorf("%.20q... did not match the line ending in b", pattern)
		}
	}
}

func TestGlobAgainstReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	parts := []string{"a", "b", "A", " ", "*", "?", "é", "É", "/", "."}
	sparts := []string{"a", "b", "A", " ", "é", "É", "/", ".", "\xff"}
	gen := func(parts []string) string {
		var b strings.Builder
		for range rng.IntN(8) {
			b.WriteString(parts[rng.IntN(len(parts))])
		}
		return b.String()
	}
	for i := 0; i < 20000; i++ {
		pattern, s, fold := gen(parts), gen(sparts), rng.IntN(2) == 0
		g, err := CompileGlob(pattern, Options{Fold: fold})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := g.Match(s), refGlob(pattern, s, fold); got != want {
			t.Fatalf("CompileGlob(%q, fold %v).Match(%q) = %v, the reference says %v", pattern, fold, s, got, want)
		}
	}
}

// refGlob is refWord without the ".." rule, over a whole line.
func refGlob(pattern, s string, fold bool) bool {
	p, c := refChars(pattern), refChars(s)
	memo := map[[2]int]bool{}
	var rec func(i, j int) bool
	rec = func(i, j int) bool {
		key := [2]int{i, j}
		if v, ok := memo[key]; ok {
			return v
		}
		var v bool
		switch {
		case i == len(p):
			v = j == len(c)
		case p[i] == '*':
			v = rec(i+1, j) || (j < len(c) && rec(i, j+1))
		case j == len(c):
		case p[i] == '?':
			v = rec(i+1, j+1)
		default:
			v = refEq(p[i], c[j], fold) && rec(i+1, j+1)
		}
		memo[key] = v
		return v
	}
	return rec(0, 0)
}

func FuzzGlob(f *testing.F) {
	for _, s := range []struct{ pattern, line string }{
		{"rm *", "rm -rf /nonexistent"},
		{"*reboot*", "echo x; reboot"},
		{"*", "cat /etc/passwd"},
		{"cat /var/log/*", "cat /var/log/../../etc/shadow"},
		{"systemctl * sshd", "systemctl restart sshd"},
	} {
		f.Add(s.pattern, s.line, false)
	}
	f.Fuzz(func(t *testing.T, pattern, line string, fold bool) {
		g, err := CompileGlob(pattern, Options{Fold: fold})
		if err != nil {
			var pe *PatternError
			if !errors.As(err, &pe) || pe.Offset < 0 || pe.Offset > len(pattern) {
				t.Fatalf("CompileGlob(%q): %v is not a *PatternError with an offset in the pattern", pattern, err)
			}
			return
		}
		got := g.Match(line)
		if len(pattern) <= 64 && len(line) <= 256 {
			if want := refGlob(pattern, line, fold); got != want {
				t.Fatalf("CompileGlob(%q, fold %v).Match(%q) = %v, the reference says %v", pattern, fold, line, got, want)
			}
		}
	})
}
