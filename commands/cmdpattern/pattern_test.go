package cmdpattern

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// matchCases are patterns, commands (split on blanks, or given as words)
// and whether they match.
var matchCases = []struct {
	name    string
	pattern string
	opts    Options
	cmd     string   // split with Fields
	words   []string // used instead of cmd when set
	want    bool
}{
	{"literal", "uname -a", Options{}, "uname -a", nil, true},
	{"literal other argument", "uname -a", Options{}, "uname -r", nil, false},
	{"literal fewer words", "uname -a", Options{}, "uname", nil, false},
	{"literal more words", "uname -a", Options{}, "uname -a -r", nil, false},
	{"blanks in pattern", "  uname \t -a  ", Options{}, "uname -a", nil, true},
	{"case matters", "uname", Options{}, "UNAME", nil, false},
	{"question", "uname -?", Options{}, "uname -s", nil, true},
	{"question one character", "uname -?", Options{}, "uname -sr", nil, false},
	{"question multibyte", "echo ?", Options{}, "echo é", nil, true},
	{"question empty", "echo a?", Options{}, "echo a", nil, false},
	{"star one word", "systemctl status *", Options{}, "systemctl status sshd.service", nil, true},
	{"star empty", "ls -l /tmp/*", Options{}, "ls -l /tmp/", nil, true},
	{"star needs a word", "systemctl status *", Options{}, "systemctl status", nil, false},
	{"star never spans words", "echo *", Options{}, "echo a; rm -rf /", nil, false},
	{"star never spans two words", "cat /var/log/*", Options{}, "cat /var/log/syslog /etc/shadow", nil, false},
	{"star spans slashes", "cat /var/log/*", Options{}, "cat /var/log/apt/history.log", nil, true},
	{"star inside word", "cat /var/log/*.log", Options{}, "cat /var/log/kern.log", nil, true},
	{"star inside word suffix", "cat /var/log/*.log", Options{}, "cat /var/log/kern.log.1", nil, false},
	{"stars", "x a*b*c", Options{}, "x aXbYbZc", nil, true},
	{"stars no", "x a*b*c", Options{}, "x aXbYbZ", nil, false},
	{"run of stars", "x a***c", Options{}, "x abc", nil, true},
	{"star question", "x *?", Options{}, "x ", []string{"x", ""}, false},
	{"star question one", "x *?", Options{}, "", []string{"x", "a"}, true},
	{"word with a blank", "echo a b", Options{}, "", []string{"echo", "a b"}, false},
	{"star matches a word with a blank", "echo *", Options{}, "", []string{"echo", "a b"}, true},
	{"star matches an empty word", "echo *", Options{}, "", []string{"echo", ""}, true},
	{"any words none", "systemctl status **", Options{}, "systemctl status", nil, true},
	{"any words one", "systemctl status **", Options{}, "systemctl status sshd", nil, true},
	{"any words many", "systemctl status **", Options{}, "systemctl status a b c --no-pager", nil, true},
	{"any words not the prefix", "systemctl status **", Options{}, "systemctl restart sshd", nil, false},
	{"any words middle", "tar ** -f *.tar", Options{}, "tar -c -v -f x.tar", nil, true},
	{"any words middle none", "tar ** -f *.tar", Options{}, "tar -f x.tar", nil, true},
	{"any words middle wrong end", "tar ** -f *.tar", Options{}, "tar -c -f x.tar -C /", nil, false},
	{"any words only", "**", Options{}, "anything at all", nil, true},
	{"any words twice", "a ** b ** c", Options{}, "a x b y b c", nil, true},
	{"any words twice no", "a ** b ** c", Options{}, "a x c b", nil, false},
	{"three stars is a star", "echo ***", Options{}, "echo a b", nil, false},
	{"dotdot star", "cat /var/log/*", Options{}, "cat /var/log/../../etc/shadow", nil, false},
	{"dotdot alone", "cat *", Options{}, "cat ..", nil, false},
	{"dotdot first", "cat *", Options{}, "cat ../x", nil, false},
	{"dotdot last", "cat /var/log/*", Options{}, "cat /var/log/x/..", nil, false},
	{"dotdot question", "cd ??", Options{}, "cd ..", nil, false},
	{"dotdot any words", "ls **", Options{}, "ls -l ..", nil, false},
	{"dotdot any words later", "ls ** x", Options{}, "ls ../a x", nil, false},
	{"dotdot literal", "cd ..", Options{}, "cd ..", nil, true},
	{"dotdot literal path", "cat /srv/../etc/motd", Options{}, "cat /srv/../etc/motd", nil, true},
	{"dots not dotdot", "cat /var/log/*", Options{}, "cat /var/log/x..y", nil, true},
	{"three dots", "cat /var/log/*", Options{}, "cat /var/log/.../x", nil, true},
	{"dot", "cat /var/log/*", Options{}, "cat /var/log/./x", nil, true},
	{"fold", "QUERY NAMES", Options{Fold: true}, "query Names", nil, true},
	{"fold star", "QUERY *", Options{Fold: true}, "query names", nil, true},
	{"fold literal in star word", "X A*Z", Options{Fold: true}, "x abcz", nil, true},
	{"fold unicode", "echo STRASSE-Ä", Options{Fold: true}, "echo strasse-ä", nil, true},
	{"fold kelvin", "echo K*", Options{Fold: true}, "echo \u212Aelvin", nil, true},
	{"no fold", "QUERY NAMES", Options{}, "query names", nil, false},
	{"abbrev", "SET PRIVCLASS **", Options{Fold: true, Abbrev: true}, "set priv x", nil, true},
	{"abbrev full", "FORCE", Options{Fold: true, Abbrev: true}, "FORCE", nil, true},
	{"abbrev longer", "FORCE", Options{Fold: true, Abbrev: true}, "FORCEX", nil, false},
	{"abbrev empty", "FORCE *", Options{Abbrev: true}, "", []string{"", "x"}, false},
	{"abbrev not prefix", "FORCE", Options{Fold: true, Abbrev: true}, "FOCE", nil, false},
	{"abbrev no fold", "FORCE", Options{Abbrev: true}, "FOR", nil, true},
	{"abbrev no fold case", "FORCE", Options{Abbrev: true}, "for", nil, false},
	{"abbrev dotdot", "cat ../x", Options{Abbrev: true}, "cat ..", nil, false},
	{"invalid utf8 star", "echo *", Options{}, "", []string{"echo", "\xff\xfe"}, true},
	{"invalid utf8 question", "echo ?", Options{}, "", []string{"echo", "\xff"}, true},
	{"invalid utf8 is not U+FFFD", "echo \uFFFD", Options{Fold: true}, "", []string{"echo", "\xff"}, false},
	{"invalid utf8 is not U+FFFD in star word", "echo *\uFFFD", Options{}, "", []string{"echo", "a\xff"}, false},
	{"U+FFFD", "echo *\uFFFD", Options{}, "", []string{"echo", "a\uFFFD"}, true},
	{"empty command", "**", Options{}, "", []string{}, true},
	{"empty command literal", "ls", Options{}, "", []string{}, false},
}

func TestMatch(t *testing.T) {
	for _, tt := range matchCases {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Compile(tt.pattern, tt.opts)
			if err != nil {
				t.Fatalf("Compile(%q): %v", tt.pattern, err)
			}
			words := tt.words
			if words == nil {
				words = Fields(tt.cmd)
			}
			if got := p.Match(words); got != tt.want {
				t.Errorf("Compile(%q, %+v).Match(%q) = %v, want %v", tt.pattern, tt.opts, words, got, tt.want)
			}
			if got := refMatch(Fields(tt.pattern), words, tt.opts); got != tt.want {
				t.Errorf("the reference matcher says %v: the table or the reference is wrong", got)
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	for _, tt := range []struct {
		name, pattern string
		offset        int
		msg           string
	}{
		{"empty", "", 0, "empty pattern"},
		{"blank", " \t ", 0, "empty pattern"},
		{"too long", strings.Repeat("a", MaxPatternLen+1), MaxPatternLen, "longer than"},
		{"too many words", strings.Repeat("a ", MaxWords) + "b", 2 * MaxWords, "more than 64 words"},
		{"newline", "ls\n-l", 2, "control character"},
		{"nul", "ls \x00", 3, "control character"},
		{"del", "ls \x7f", 3, "control character"},
		{"c1", "ls \u0085", 3, "control character"},
		{"invalid utf8", "ls \xff", 3, "UTF-8"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Compile(tt.pattern, Options{})
			var pe *PatternError
			if !errors.As(err, &pe) || !errors.Is(err, ErrPattern) {
				t.Fatalf("Compile(%q) = %v, %v; want a *PatternError", tt.pattern, p, err)
			}
			if pe.Offset != tt.offset || !strings.Contains(pe.Msg, tt.msg) {
				t.Errorf("error %q: want offset %d and %q", err, tt.offset, tt.msg)
			}
		})
	}
	// The limits themselves are fine.
	if _, err := Compile(strings.Repeat("a", MaxPatternLen), Options{}); err != nil {
		t.Errorf("a pattern of MaxPatternLen bytes: %v", err)
	}
	if _, err := Compile(strings.TrimSpace(strings.Repeat("a ", MaxWords)), Options{}); err != nil {
		t.Errorf("a pattern of MaxWords words: %v", err)
	}
}

func TestString(t *testing.T) {
	for in, want := range map[string]string{
		"ls":                         "ls",
		"  systemctl\t status  **  ": "systemctl status **",
		"a*b ?":                      "a*b ?",
	} {
		p := MustCompile(in, Options{})
		if got := p.String(); got != want {
			t.Errorf("Compile(%q).String() = %q, want %q", in, got, want)
		}
	}
}

func TestMustCompilePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("MustCompile of an empty pattern did not panic")
		}
	}()
	MustCompile("", Options{})
}

// TestMatchLongWordAcrossMachineWords checks patterns of more than 64
// tokens, whose state sets span several uint64s (carries between them).
func TestMatchLongWordAcrossMachineWords(t *testing.T) {
	for _, n := range []int{62, 63, 64, 65, 127, 128, 129, 300} {
		lit := strings.Repeat("ab", n/2) + strings.Repeat("c", n%2)
		for _, tt := range []struct {
			pattern, word string
			want          bool
		}{
			{lit + "*", lit, true},
			{lit + "*", lit + "zz", true},
			{"*" + lit, "zz" + lit, true},
			{"*" + lit, "zz" + lit + "z", false},
			{lit[:len(lit)/2] + "*" + lit[len(lit)/2:], lit[:len(lit)/2] + "xyz" + lit[len(lit)/2:], true},
			{strings.Repeat("?", n) + "*", strings.Repeat("x", n), true},
			{strings.Repeat("?", n) + "*", strings.Repeat("x", n-1), false},
			{strings.Repeat("*?", n), strings.Repeat("x", n), true},
			{strings.Repeat("*?", n), strings.Repeat("x", n-1), false},
		} {
			p := MustCompile("x "+tt.pattern, Options{})
			if got := p.Match([]string{"x", tt.word}); got != tt.want {
				t.Errorf("n=%d: %q against %q = %v, want %v", n, tt.pattern, tt.word, got, tt.want)
			}
		}
	}
}

// TestMatchPathological runs the patterns that make a backtracking matcher
// take time proportional to (or exponential in) pattern × command against
// 100 KB words. Match must give the right answer; how long it takes is
// BenchmarkMatchPathological's business (it is linear: no time limit is
// asserted here, the test's deadline catches a regression to exponential).
func TestMatchPathological(t *testing.T) {
	long := strings.Repeat("a", 100<<10)
	stars := "*" + strings.Repeat("a*", (MaxPatternLen-4)/2) + "b" // *a*a*...*b: with "x ", 4096 bytes
	for _, tt := range []struct {
		name, pattern string
		words         []string
		want          bool
	}{
		{"stars then b", "x " + stars, []string{"x", long}, false},
		{"stars then b matched", "x " + stars, []string{"x", long + "b"}, true},
		{"long segment after a star", "x *" + strings.Repeat("a", MaxPatternLen-5) + "b", []string{"x", long}, false},
		{"long segment matched", "x *" + strings.Repeat("a", MaxPatternLen-5) + "b", []string{"x", long + "b"}, true},
		{"questions", "x *" + strings.Repeat("?", MaxPatternLen-5) + "b", []string{"x", long}, false},
		{"any words", strings.TrimSpace(strings.Repeat("** a ", MaxWords/2)), strings.Split(strings.Repeat("a ", 10000)+"b", " "), false},
		{"any words and stars", strings.TrimSpace(strings.Repeat("** *a* ", MaxWords/2)), []string{long, long, long, long, "b"}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Compile(tt.pattern, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if got := p.Match(tt.words); got != tt.want {
				t.Errorf("Match = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestMatchAgainstReference compares Match with a plain recursive matcher
// on random patterns and commands over a small alphabet.
func TestMatchAgainstReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	patParts := []string{"a", "b", "A", "*", "?", "**", "/", "..", ".", "é", "É"}
	cmdParts := []string{"a", "b", "A", "/", "..", ".", "é", "É", "ab", "\xff"}
	word := func(parts []string, n int) string {
		var b strings.Builder
		for range n {
			b.WriteString(parts[rng.IntN(len(parts))])
		}
		return b.String()
	}
	for i := 0; i < 20000; i++ {
		var pat, cmd []string
		for range 1 + rng.IntN(4) {
			w := word(patParts, 1+rng.IntN(4))
			if rng.IntN(6) == 0 {
				w = "**"
			}
			pat = append(pat, w)
		}
		for range rng.IntN(5) {
			cmd = append(cmd, word(cmdParts, rng.IntN(5)))
		}
		opts := Options{Fold: rng.IntN(2) == 0, Abbrev: rng.IntN(3) == 0}
		p := MustCompile(strings.Join(pat, " "), opts)
		if got, want := p.Match(cmd), refMatch(pat, cmd, opts); got != want {
			t.Fatalf("Compile(%q, %+v).Match(%q) = %v, the reference says %v", strings.Join(pat, " "), opts, cmd, got, want)
		}
	}
}

// refMatch is a plain recursive matcher (exponential in the worst case,
// for tests only) written from the package documentation.
func refMatch(pat, words []string, opts Options) bool {
	memo := map[[2]int]bool{}
	var rec func(i, j int) bool
	rec = func(i, j int) bool {
		key := [2]int{i, j}
		if v, ok := memo[key]; ok {
			return v
		}
		var v bool
		switch {
		case i == len(pat):
			v = j == len(words)
		case pat[i] == "**":
			v = rec(i+1, j) || (j < len(words) && !refDotDot(words[j]) && rec(i, j+1))
		default:
			v = j < len(words) && refWord(pat[i], words[j], opts) && rec(i+1, j+1)
		}
		memo[key] = v
		return v
	}
	return rec(0, 0)
}

func refDotDot(w string) bool {
	for _, el := range strings.Split(w, "/") {
		if el == ".." {
			return true
		}
	}
	return false
}

// refChars splits s into characters, an invalid byte being one of its own
// (negative, so that it equals nothing but itself).
func refChars(s string) []rune {
	var out []rune
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			r = -1 - rune(s[i])
		}
		out = append(out, r)
		i += n
	}
	return out
}

func refEq(a, b rune, fold bool) bool {
	if a == b {
		return true
	}
	return fold && a >= 0 && b >= 0 && strings.EqualFold(string(a), string(b))
}

func refWord(pw, w string, opts Options) bool {
	p, s := refChars(pw), refChars(w)
	if !strings.ContainsAny(pw, "*?") {
		if len(s) > len(p) || (len(s) < len(p) && !(opts.Abbrev && len(s) > 0 && !refDotDot(w))) {
			return false
		}
		for i := range s {
			if !refEq(p[i], s[i], opts.Fold) {
				return false
			}
		}
		return true
	}
	if refDotDot(w) {
		return false
	}
	var rec func(i, j int) bool
	memo := map[[2]int]bool{}
	rec = func(i, j int) bool {
		key := [2]int{i, j}
		if v, ok := memo[key]; ok {
			return v
		}
		var v bool
		switch {
		case i == len(p):
			v = j == len(s)
		case p[i] == '*':
			v = rec(i+1, j) || (j < len(s) && rec(i, j+1))
		case j == len(s):
			v = false
		case p[i] == '?':
			v = rec(i+1, j+1)
		default:
			v = refEq(p[i], s[j], opts.Fold) && rec(i+1, j+1)
		}
		memo[key] = v
		return v
	}
	return rec(0, 0)
}

// fuzzSeeds are real patterns and commands: the Linux agent's and the z/VM
// agent's policies and what the region sends them.
var fuzzSeeds = []struct{ pattern, cmd string }{
	{"systemctl status **", "systemctl status sshd.service --no-pager"},
	{"cat /var/log/*", "cat /var/log/../../etc/shadow"},
	{"cat /var/log/*.log", "cat /var/log/kern.log"},
	{"uname -?", "uname -a"},
	{"df -h", "df -h /"},
	{"echo *", "echo a; rm -rf /"},
	{"journalctl -u * -n ?? --no-pager", "journalctl -u sshd -n 50 --no-pager"},
	{"QUERY **", "Q N"},
	{"QUERY NAMES", "query names"},
	{"FORCE LINUX0?", "FORCE LINUX01"},
	{"MESSAGE * **", "MSG OPERATOR backup done"},
	{"XAUTOLOG LINUX*", "XAUTOLOG LINUX02"},
	{"a ** b ** c", "a x b y b c"},
	{"*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaa"},
}

func FuzzMatch(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s.pattern, s.cmd, false, false)
		f.Add(s.pattern, s.cmd, true, true)
	}
	f.Fuzz(func(t *testing.T, pattern, cmd string, fold, abbrev bool) {
		opts := Options{Fold: fold, Abbrev: abbrev}
		p, err := Compile(pattern, opts)
		if err != nil {
			var pe *PatternError
			if !errors.As(err, &pe) || pe.Offset < 0 || pe.Offset > len(pattern) {
				t.Fatalf("Compile(%q): %v is not a *PatternError with an offset in the pattern", pattern, err)
			}
			return
		}
		words := Fields(cmd)
		got := p.Match(words)
		// Round trip: the canonical form is the same pattern.
		again, err := Compile(p.String(), opts)
		if err != nil || again.String() != p.String() || again.Match(words) != got {
			t.Fatalf("Compile(%q).String() = %q does not compile to the same pattern: %v", pattern, p.String(), err)
		}
		if len(pattern) <= 64 && len(cmd) <= 256 {
			if want := refMatch(Fields(pattern), words, opts); got != want {
				t.Fatalf("Compile(%q, %+v).Match(%q) = %v, the reference says %v", pattern, opts, words, got, want)
			}
		}
		// A word with a ".." element is matched only by an equal literal.
		if got {
			for _, w := range words {
				if refDotDot(w) && !strings.Contains(" "+p.String()+" ", " "+w+" ") && !fold {
					t.Fatalf("Compile(%q).Match(%q): the word %q was matched by a wildcard", pattern, words, w)
				}
			}
		}
	})
}
