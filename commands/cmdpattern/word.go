package cmdpattern

// wordMatcher matches one command word against one pattern word with
// wildcards, by running the pattern's NFA over the word's characters with
// its state set as a bit vector (shift-and, as agrep does): one pass, no
// backtracking, ⌈(m+1)/64⌉ machine words of work per character for a
// pattern word of m tokens.
//
// The tokens are the pattern word's characters, with each run of stars
// taken as one. State j (bit j) means "the first j tokens matched the
// characters so far"; state m accepts. A literal or ? token j moves state j
// to j+1 on a character it matches; a star token j lets state j reach j+1
// at once (an empty run) and state j+1 stay on any character.
type wordMatcher struct {
	m    int               // tokens
	nw   int               // uint64s in a state set
	fold bool              // literals are folded (foldRune)
	init []uint64          // the state set before the first character
	any  []uint64          // bit j+1 for each ? token j
	lit  map[rune][]uint64 // bit j+1 for each literal token j, by character
	loop []uint64          // bit j+1 for each star token j
	star []uint64          // bit j for each star token j
}

// compileWord compiles a pattern word holding * or ?.
func compileWord(w string, fold bool) *wordMatcher {
	type token struct {
		kind byte // '*', '?' or 'l' (literal)
		r    rune
	}
	var toks []token
	for _, r := range w {
		switch {
		case r == '*' && len(toks) > 0 && toks[len(toks)-1].kind == '*':
		case r == '*' || r == '?':
			toks = append(toks, token{kind: byte(r)})
		default:
			if fold {
				r = foldRune(r)
			}
			toks = append(toks, token{kind: 'l', r: r})
		}
	}
	m := &wordMatcher{m: len(toks), nw: len(toks)/64 + 1, fold: fold, lit: map[rune][]uint64{}}
	bits := func() []uint64 { return make([]uint64, m.nw) }
	set := func(v []uint64, j int) { v[j/64] |= 1 << (j % 64) }
	m.init, m.any, m.loop, m.star = bits(), bits(), bits(), bits()
	for j, t := range toks {
		switch t.kind {
		case '*':
			set(m.loop, j+1)
			set(m.star, j)
		case '?':
			set(m.any, j+1)
		default:
			v := m.lit[t.r]
			if v == nil {
				v = bits()
				m.lit[t.r] = v
			}
			set(v, j+1)
		}
	}
	set(m.init, 0)
	m.closure(m.init)
	return m
}

// closure adds to d the states reached by empty star runs. Star tokens are
// never adjacent, so one step is enough.
func (m *wordMatcher) closure(d []uint64) {
	var carry uint64
	for k := range d {
		e := d[k] & m.star[k]
		d[k] |= e<<1 | carry
		carry = e >> 63
	}
}

// match reports whether the word w matches. buf has room for two state
// sets.
func (m *wordMatcher) match(w string, buf []uint64) bool {
	nw := m.nw
	cur, next := buf[:nw], buf[nw:2*nw]
	copy(cur, m.init)
	anyb, loop, star := m.any[:nw], m.loop[:nw], m.star[:nw]
	for i := 0; i < len(w); {
		r, n := decodeRune(w, i)
		i += n
		if m.fold {
			r = foldRune(r)
		}
		lit := m.lit[r]
		if lit == nil {
			lit = anyb // no literal token is r: only ? tokens move
		}
		lit = lit[:nw]
		// next = ((cur << 1) & (any | lit)) | (cur & loop), then the
		// closure over empty star runs, in one pass.
		var carry, ecarry, alive uint64
		for k := range cur {
			c := cur[k]
			v := (c<<1|carry)&(anyb[k]|lit[k]) | c&loop[k]
			carry = c >> 63
			e := v & star[k]
			v |= e<<1 | ecarry
			ecarry = e >> 63
			next[k] = v
			alive |= v
		}
		if alive == 0 {
			return false
		}
		cur, next = next, cur
	}
	return cur[m.m/64]&(1<<(m.m%64)) != 0
}
