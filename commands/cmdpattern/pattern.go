package cmdpattern

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits of a pattern: Compile refuses a longer one. They bound the work
// of one Match to about len(command) × (MaxWords + MaxPatternLen/64) steps.
const (
	MaxPatternLen = 4096 // bytes
	MaxWords      = 64   // words
)

// Options change how a pattern matches.
type Options struct {
	// Fold makes matching case-insensitive (Unicode simple case folding),
	// as CP commands are; Linux commands are not.
	Fold bool
	// Abbrev lets a literal pattern word (one without * or ?) match any
	// non-empty prefix of itself as well, as CP takes abbreviations of
	// command names and operands ("deny SET PRIVCLASS **" then matches
	// "SET PRIV ..."). It makes a pattern match more: use it for patterns
	// that deny, never for ones that allow.
	Abbrev bool
	// CP makes the pattern a CP command pattern, matched against SplitCP's
	// words: its first word is read as SplitCP reads a command name (a
	// leading CP dropped, an abbreviation written in full: "Q **" is
	// "QUERY **"), and it may hold only printable ASCII without CPSpecial.
	// CP patterns want Fold too.
	CP bool
}

// Pattern is a compiled command pattern. It is immutable and safe for
// concurrent use.
type Pattern struct {
	words    []string // as written
	items    []item
	opts     Options
	anyWords bool // some item is **
	minWords int  // items other than **
	maxNW    int  // the largest wordMatcher.nw
}

// item is one word of a pattern.
type item struct {
	any     bool         // the word **: zero or more whole words
	literal string       // the word, when it has no wildcard
	word    *wordMatcher // the word's matcher, when it has one
}

// Compile parses a pattern: a command line split into words on runs of
// spaces and tabs. In a word, * matches any run of characters (none
// included) within that one word, ? matches one character, and every
// other character matches itself (there is no quoting: no pattern word
// can hold a blank, and * and ? are always wildcards). A word that is
// exactly ** matches zero or more whole words.
//
// A pattern must be valid UTF-8 without control characters, hold 1 to
// MaxWords words and at most MaxPatternLen bytes. An error is a
// *PatternError giving the offset.
func Compile(pattern string, opts Options) (*Pattern, error) {
	if len(pattern) > MaxPatternLen {
		return nil, &PatternError{Offset: MaxPatternLen, Msg: fmt.Sprintf("pattern longer than %d bytes", MaxPatternLen)}
	}
	if err := checkChars(pattern); err != nil {
		return nil, err
	}
	words := Fields(pattern)
	if opts.CP {
		var err error
		if words, err = cpPattern(pattern); err != nil {
			return nil, err
		}
	}
	p := &Pattern{opts: opts}
	off := 0 // where the word is in pattern (CP may have rewritten the first)
	for _, w := range words {
		if i := strings.Index(pattern[off:], w); i >= 0 {
			off += i
		}
		if len(p.words) == MaxWords {
			return nil, &PatternError{Offset: off, Msg: fmt.Sprintf("more than %d words", MaxWords)}
		}
		p.words = append(p.words, w)
		if strings.HasPrefix(pattern[off:], w) {
			off += len(w)
		}
		switch {
		case w == "**":
			p.items = append(p.items, item{any: true})
			p.anyWords = true
			continue
		case strings.ContainsAny(w, "*?"):
			m := compileWord(w, opts.Fold)
			p.maxNW = max(p.maxNW, m.nw)
			p.items = append(p.items, item{word: m})
		default:
			p.items = append(p.items, item{literal: w})
		}
		p.minWords++
	}
	if len(p.words) == 0 {
		return nil, &PatternError{Offset: 0, Msg: "empty pattern"}
	}
	return p, nil
}

// MustCompile is Compile for patterns known to be valid; it panics on an
// error.
func MustCompile(pattern string, opts Options) *Pattern {
	p, err := Compile(pattern, opts)
	if err != nil {
		panic(err)
	}
	return p
}

// String returns the pattern's words joined by single spaces (a CP
// pattern's command name in full): Compile of it gives an equal pattern.
func (p *Pattern) String() string { return strings.Join(p.words, " ") }

// Match reports whether the command words match the pattern, word for
// word.
//
// A command word with a ".." path element ("..", "../x", "a/../b",
// "a/..") is never matched by a pattern word with a wildcard, nor by **:
// only a literal pattern word equal to it matches it. So "cat /var/log/*"
// does not match "cat /var/log/../../etc/shadow", and "ls **" does not
// match "ls ..".
//
// Match takes time linear in the length of the words (times at most
// MaxWords + MaxPatternLen/64), whatever the pattern: it never backtracks.
func (p *Pattern) Match(words []string) bool {
	k := len(p.items)
	if len(words) < p.minWords || (!p.anyWords && len(words) != k) {
		return false
	}
	var buf []uint64
	if p.maxNW > 0 {
		buf = make([]uint64, 2*p.maxNW)
	}
	// States 0..k: state j means the first j items matched the words so
	// far; an NFA run over the words, as wordMatcher runs over characters.
	cur, next := make([]bool, k+1), make([]bool, k+1)
	cur[0] = true
	p.closure(cur)
	for _, w := range words {
		unsafe := hasDotDot(w)
		clear(next)
		alive := false
		for j := range p.items {
			it := &p.items[j]
			if it.any {
				if cur[j+1] && !unsafe { // ** takes one more word
					next[j+1], alive = true, true
				}
				continue
			}
			if cur[j] && p.matchWord(it, w, unsafe, buf) {
				next[j+1], alive = true, true
			}
		}
		if !alive {
			return false
		}
		p.closure(next)
		cur, next = next, cur
	}
	return cur[k]
}

// closure adds the states reached through ** matching no word.
func (p *Pattern) closure(states []bool) {
	for j := range p.items {
		if states[j] && p.items[j].any {
			states[j+1] = true
		}
	}
}

// matchWord reports whether one command word matches one pattern word.
func (p *Pattern) matchWord(it *item, w string, unsafe bool, buf []uint64) bool {
	if it.word != nil {
		return !unsafe && it.word.match(w, buf)
	}
	return matchLiteral(it.literal, w, p.opts.Fold, p.opts.Abbrev && !unsafe)
}

// matchLiteral reports whether w equals lit or, with prefix, is a
// non-empty prefix of it.
func matchLiteral(lit, w string, fold, prefix bool) bool {
	if !fold {
		if prefix {
			return w != "" && strings.HasPrefix(lit, w) && (len(w) == len(lit) || utf8.RuneStart(lit[len(w)]))
		}
		return w == lit
	}
	i, j := 0, 0
	for i < len(lit) && j < len(w) {
		a, n := decodeRune(lit, i)
		b, m := decodeRune(w, j)
		if foldRune(a) != foldRune(b) {
			return false
		}
		i, j = i+n, j+m
	}
	if j < len(w) {
		return false // w is longer
	}
	return i == len(lit) || (prefix && j > 0)
}

// Fields splits s into words on runs of spaces and tabs, as Compile
// splits a pattern. It is how CP splits a command line; a Linux command
// line is split by Split.
func Fields(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == '\t' })
}

// hasDotDot reports whether a word has a ".." path element.
func hasDotDot(w string) bool {
	if !strings.Contains(w, "..") {
		return false
	}
	for {
		el, rest, more := strings.Cut(w, "/")
		if el == ".." {
			return true
		}
		if !more {
			return false
		}
		w = rest
	}
}

// invalidBase + b stands for an invalid UTF-8 byte b in a command word:
// no pattern character equals it, while ? and * match it.
const invalidBase = unicode.MaxRune + 1

// decodeRune returns the character at s[i] and its length in bytes; an
// invalid byte is one character of its own.
func decodeRune(s string, i int) (rune, int) {
	c := s[i]
	if c < utf8.RuneSelf {
		return rune(c), 1
	}
	r, n := utf8.DecodeRuneInString(s[i:])
	if r == utf8.RuneError && n == 1 {
		return invalidBase + rune(c), 1
	}
	return r, n
}

// foldRune returns the smallest character of r's simple case-folding
// orbit: foldRune(a) == foldRune(b) exactly when strings.EqualFold would
// take a and b as equal.
func foldRune(r rune) rune {
	if r < utf8.RuneSelf {
		if 'a' <= r && r <= 'z' {
			r -= 'a' - 'A'
		}
		return r
	}
	if r > unicode.MaxRune {
		return r
	}
	low := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		low = min(low, f)
	}
	return low
}
