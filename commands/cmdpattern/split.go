package cmdpattern

import (
	"strings"
)

// isReservedWord reports whether w is a word /bin/sh treats as syntax in
// a command's first position (POSIX XCU 2.4).
func isReservedWord(w string) bool {
	switch w {
	case "!", "{", "}", "case", "do", "done", "elif", "else", "esac", "fi", "for", "if", "then", "until", "while":
		return true
	}
	return false
}

// Split splits a command line into argv (words to match a Pattern
// against, and to run) the way a POSIX shell splits words when nothing is
// expanded: blanks (space, tab) separate
// words; single quotes keep everything literally; double quotes keep
// everything literally except that a backslash escapes $ ` " \ and
// newline; a backslash outside quotes keeps the next character literally;
// backslash-newline is removed.
//
// It refuses (with a *SplitError wrapping ErrShellSyntax) every command
// line for which /bin/sh would do anything else, so that an accepted line
// runs with exactly the argv `/bin/sh -c LINE` would have given it: the
// unquoted characters | & ; < > ( ) $ ` and newline; $ and ` inside double
// quotes; the glob characters * and ? and a bracket expression [...]; a #
// or ~ starting a word; a first word that is a variable assignment
// (NAME=...) or a reserved word (if, for, !, { ...). An empty line, an
// unterminated quote, a trailing backslash or a NUL byte is refused with
// ErrBadCommand.
func Split(line string) ([]string, error) {
	var (
		argv      []string
		word      strings.Builder
		inWord    bool
		wordStart int  // offset where the current word's source text starts
		bracket   bool // the current word has an unquoted '['
	)
	syntax := func(off int, detail string) error {
		return &SplitError{Offset: off, Kind: ErrShellSyntax, Detail: detail}
	}
	bad := func(off int, detail string) error {
		return &SplitError{Offset: off, Kind: ErrBadCommand, Detail: detail}
	}
	begin := func(i int) {
		if !inWord {
			inWord, wordStart, bracket = true, i, false
		}
	}
	// end finishes the current word, whose source text is line[wordStart:i].
	end := func(i int) error {
		if !inWord {
			return nil
		}
		if len(argv) == 0 {
			// The word's source text, line continuations removed: what
			// /bin/sh would look at for a reserved word or assignment.
			src := strings.ReplaceAll(line[wordStart:i], "\\\n", "")
			if isReservedWord(src) {
				return syntax(wordStart, "reserved word "+quoteDetail(src))
			}
			if isAssignment(src) {
				return syntax(wordStart, "variable assignment "+quoteDetail(src))
			}
		}
		argv = append(argv, word.String())
		word.Reset()
		inWord = false
		return nil
	}
	for i := 0; i < len(line); {
		c := line[i]
		switch {
		case c == 0:
			return nil, bad(i, "NUL byte")
		case c == ' ' || c == '\t':
			if err := end(i); err != nil {
				return nil, err
			}
			i++
		case c == '\\':
			if i+1 == len(line) {
				return nil, bad(i, "trailing backslash")
			}
			if line[i+1] == '\n' { // line continuation: removed
				i += 2
				continue
			}
			if line[i+1] == 0 {
				return nil, bad(i+1, "NUL byte")
			}
			begin(i)
			word.WriteByte(line[i+1])
			i += 2
		case c == '\'':
			begin(i)
			j := strings.IndexByte(line[i+1:], '\'')
			if j < 0 {
				return nil, bad(i, "unterminated single quote")
			}
			s := line[i+1 : i+1+j]
			if k := strings.IndexByte(s, 0); k >= 0 {
				return nil, bad(i+1+k, "NUL byte")
			}
			word.WriteString(s)
			i += j + 2
		case c == '"':
			begin(i)
			j := i + 1
			for {
				if j == len(line) {
					return nil, bad(i, "unterminated double quote")
				}
				d := line[j]
				if d == '"' {
					break
				}
				switch d {
				case 0:
					return nil, bad(j, "NUL byte")
				case '$', '`':
					return nil, syntax(j, quoteDetail(string(d))+" inside double quotes (expansion)")
				case '\\':
					if j+1 == len(line) {
						return nil, bad(i, "unterminated double quote")
					}
					switch e := line[j+1]; e {
					case '$', '`', '"', '\\':
						word.WriteByte(e)
						j += 2
					case '\n':
						j += 2
					default:
						word.WriteByte('\\')
						j++
					}
					continue
				}
				word.WriteByte(d)
				j++
			}
			i = j + 1
		case strings.IndexByte("|&;<>()$`\n", c) >= 0:
			return nil, syntax(i, "unquoted "+quoteDetail(string(c)))
		case c == '*' || c == '?':
			return nil, syntax(i, "unquoted "+quoteDetail(string(c))+" (pathname expansion)")
		case (c == '#' || c == '~') && !inWord:
			what := "comment"
			if c == '~' {
				what = "tilde expansion"
			}
			return nil, syntax(i, quoteDetail(string(c))+" starting a word ("+what+")")
		default:
			begin(i)
			if c == '[' {
				bracket = true
			} else if c == ']' && bracket {
				return nil, syntax(i, "unquoted bracket expression [...] (pathname expansion)")
			}
			word.WriteByte(c)
			i++
		}
	}
	if err := end(len(line)); err != nil {
		return nil, err
	}
	if len(argv) == 0 {
		return nil, bad(0, "empty command")
	}
	return argv, nil
}

// isAssignment reports whether a word's source text starts with NAME=,
// which /bin/sh takes as a variable assignment in a command's first words.
func isAssignment(src string) bool {
	eq := strings.IndexByte(src, '=')
	if eq <= 0 {
		return false
	}
	for i := 0; i < eq; i++ {
		c := src[i]
		letter := c == '_' || (c|0x20 >= 'a' && c|0x20 <= 'z')
		if !letter && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}

func quoteDetail(s string) string { return `"` + s + `"` }

// Quote returns a command line that Split, and every POSIX shell and fish,
// split into exactly argv: words made only of safe characters are left as
// they are, others are single-quoted, with each ' and \ written outside
// the quotes as \' and \\ (inside single quotes fish reads \' and \\ as
// escapes, POSIX shells do not: outside them all read both alike). It is
// what a client should use to build a command line from arguments, and
// what the region sends a stock sshd, which runs it with the user's login
// shell. An argument must not contain a NUL byte; Split refuses such a
// line.
func Quote(argv ...string) string {
	var b strings.Builder
	for i, a := range argv {
		if i > 0 {
			b.WriteByte(' ')
		}
		// A word starting with = is quoted too: zsh expands =cmd to a path.
		if a != "" && isSafeWord(a) && a[0] != '=' && !(i == 0 && (isReservedWord(a) || strings.Contains(a, "="))) {
			b.WriteString(a)
			continue
		}
		if a == "" {
			b.WriteString("''")
			continue
		}
		for a != "" {
			n := strings.IndexAny(a, `'\`)
			if n < 0 {
				n = len(a)
			}
			if n > 0 {
				b.WriteByte('\'')
				b.WriteString(a[:n])
				b.WriteByte('\'')
			}
			if n < len(a) {
				b.WriteByte('\\')
				b.WriteByte(a[n])
				n++
			}
			a = a[n:]
		}
	}
	return b.String()
}

// isSafeWord reports whether s needs no quoting: every byte is in
// [A-Za-z0-9_@+=:,./-]. (Not %: fish expands %self.)
func isSafeWord(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("_@+=:,./-", c) >= 0:
		default:
			return false
		}
	}
	return true
}
