package protocol

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Filter selects events for a subscriber. An empty filter selects all. All
// set conditions must hold.
type Filter struct {
	// Origin is a glob (* and ?, ASCII case-insensitive) that must match the
	// origin's system, host or node.
	Origin string `json:"origin,omitempty"`
	// Source lists the source kinds wanted; empty means all. At most
	// MaxFilterSources.
	Source []Source `json:"source,omitempty"`
	// MsgID is a glob that must match the message ID.
	MsgID string `json:"msgid,omitempty"`
	// App is a glob that must match the application (syslog APP-NAME).
	App string `json:"app,omitempty"`
	// Type is a glob that must match the event type (a z/VM event's
	// LOGON, LOGOFF; a console message's MSG, WNG; an availability
	// record's UP, DOWN).
	Type string `json:"type,omitempty"`
	// Addr is a network (CIDR, or one address) the address the event
	// arrived from (Origin.Addr) must be in: the one field of a syslog
	// event its sender does not write (UDP's can be forged, TCP's not).
	Addr string `json:"addr,omitempty"`
	// Severity, when set, is the least severe severity wanted: "warning"
	// selects emerg through warning.
	Severity *Severity `json:"severity,omitempty"`
	// SD lists conditions on the event's structured data (Event.SD), all
	// of which must hold; at most MaxSDTerms.
	SD []SDTerm `json:"sd,omitempty"`
}

// SDTerm is a condition on an event's structured data: the event has an
// element with SD-ID ID that has a parameter named Param, one of whose
// values matches Glob. ID and Param are compared exactly (RFC 5424 names
// are case-sensitive) and must be SD-NAMEs; Glob is a glob as the filter's
// others ("*" holds for every event that has the parameter, "" for an empty
// value). In JSON: {"id":"origin","param":"ip","glob":"192.0.2.*"}. The
// command-line form is sd.ID.PARAM=GLOB (see ParseFilter).
type SDTerm struct {
	ID    string `json:"id"`
	Param string `json:"param"`
	Glob  string `json:"glob"`
}

// Match reports whether the term holds for sd.
func (t *SDTerm) Match(sd []SDElement) bool {
	for _, el := range sd {
		if el.ID != t.ID {
			continue
		}
		for _, p := range el.Params {
			if p.Name == t.Param && Glob(t.Glob, p.Value) {
				return true
			}
		}
	}
	return false
}

// String returns the command-line form of the term.
func (t *SDTerm) String() string { return "sd." + t.ID + "." + t.Param + "=" + t.Glob }

// Limits on the globs of a Filter (Origin, MsgID, each SDTerm's Glob) and
// on its SD terms, which Validate checks.
// Glob takes time linear in the length of the name it matches whatever the
// pattern; the limits keep the constant small (each star can cost a search
// a table of its own) and say plainly where a client's pattern is out of
// all reason.
const (
	MaxGlobLen   = 256 // bytes in one glob
	MaxGlobStars = 16  // stars in one glob
	// MaxSDTerms is the most structured-data terms in one filter: each
	// costs a look through an event's structured data.
	MaxSDTerms = 16
	// MaxFilterSources is the most source kinds one filter lists: there
	// are seven, each of which need be listed once.
	MaxFilterSources = 16
)

// Validate reports a filter that can never be used: an unknown source kind
// or more than MaxFilterSources of them, a severity out of range, a glob
// longer than MaxGlobLen bytes or with more than MaxGlobStars stars, more
// than MaxSDTerms structured-data terms, or one whose ID or parameter is
// not an SD-NAME.
func (f *Filter) Validate() error {
	if f == nil {
		return nil
	}
	if err := checkGlob("origin", f.Origin); err != nil {
		return err
	}
	if err := checkGlob("msgid", f.MsgID); err != nil {
		return err
	}
	if err := checkGlob("app", f.App); err != nil {
		return err
	}
	if err := checkGlob("type", f.Type); err != nil {
		return err
	}
	if f.Addr != "" {
		if _, err := parseAddrTerm(f.Addr); err != nil {
			return fmt.Errorf("%w: addr %q: %w", ErrBadFilter, f.Addr, err)
		}
	}
	if len(f.Source) > MaxFilterSources {
		return fmt.Errorf("%w: %d source kinds (at most %d)", ErrBadFilter, len(f.Source), MaxFilterSources)
	}
	for _, s := range f.Source {
		if !s.Valid() {
			return fmt.Errorf("%w: unknown source kind %q", ErrBadFilter, s)
		}
	}
	if f.Severity != nil && *f.Severity > SevDebug {
		return fmt.Errorf("%w: severity %d out of range", ErrBadFilter, *f.Severity)
	}
	if len(f.SD) > MaxSDTerms {
		return fmt.Errorf("%w: %d sd terms (at most %d)", ErrBadFilter, len(f.SD), MaxSDTerms)
	}
	for i := range f.SD {
		t := &f.SD[i]
		if !ValidSDName(t.ID) {
			return fmt.Errorf("%w: sd term %d: SD-ID %q is not 1 to %d printable ASCII characters but '=', ']' and '\"'",
				ErrBadFilter, i+1, t.ID, MaxSDName)
		}
		if !ValidSDName(t.Param) {
			return fmt.Errorf("%w: sd term %d: parameter name %q is not 1 to %d printable ASCII characters but '=', ']' and '\"'",
				ErrBadFilter, i+1, t.Param, MaxSDName)
		}
		if err := checkGlob("sd."+t.ID+"."+t.Param, t.Glob); err != nil {
			return err
		}
	}
	return nil
}

// checkGlob checks the glob of the filter's key against the limits.
func checkGlob(key, pattern string) error {
	if len(pattern) > MaxGlobLen {
		return fmt.Errorf("%w: %s glob of %d bytes (at most %d)", ErrBadFilter, key, len(pattern), MaxGlobLen)
	}
	if n := strings.Count(pattern, "*"); n > MaxGlobStars {
		return fmt.Errorf("%w: %s glob with %d stars (at most %d)", ErrBadFilter, key, n, MaxGlobStars)
	}
	return nil
}

// MatchesAll reports whether f matches every event, whatever the event
// holds, without looking at it: it has no condition, or only ones every
// event meets (severity debug, the least severe there is; a glob that is a
// lone "*"). A nil filter matches all.
func (f *Filter) MatchesAll() bool {
	if f == nil {
		return true
	}
	anything := func(glob string) bool { return glob == "" || glob == "*" }
	return anything(f.Origin) && anything(f.MsgID) && anything(f.App) && anything(f.Type) && len(f.Source) == 0 && f.Addr == "" &&
		(f.Severity == nil || *f.Severity >= SevDebug) && len(f.SD) == 0
}

// Match reports whether e passes the filter. A nil filter matches all.
func (f *Filter) Match(e *Event) bool {
	if f == nil {
		return true
	}
	if f.Severity != nil && e.Severity > *f.Severity {
		return false
	}
	if len(f.Source) > 0 {
		ok := false
		for _, s := range f.Source {
			if s == e.Source {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if f.MsgID != "" && !Glob(f.MsgID, e.MsgID) {
		return false
	}
	if f.App != "" && !Glob(f.App, e.App) {
		return false
	}
	if f.Type != "" && !Glob(f.Type, e.Type) {
		return false
	}
	if f.Addr != "" {
		p, err := parseAddrTerm(f.Addr)
		a, aerr := netip.ParseAddr(e.Origin.Addr)
		if err != nil || aerr != nil || !p.Contains(a.Unmap()) {
			return false
		}
	}
	if f.Origin != "" && !Glob(f.Origin, e.Origin.System) && !Glob(f.Origin, e.Origin.Host) &&
		!Glob(f.Origin, e.Origin.Node) {
		return false
	}
	for i := range f.SD {
		if !f.SD[i].Match(e.SD) {
			return false
		}
	}
	return true
}

// ParseFilter parses the command-line form of a filter: comma-separated
// key=value terms, keys origin, source, msgid, app, type, addr, severity
// and sd.ID.PARAM;
// several source kinds are separated by "|". Example:
// "origin=lnx*,source=syslog|region,severity=warning".
//
// A key sd.ID.PARAM (the "sd." in any case, ID and PARAM as they are: they
// are case-sensitive) adds an SDTerm with the value as its glob, e.g.
// "sd.exampleSDID@32473.eventSource=App*"; each sd key adds a term, all
// must hold. The key is split at its last '.': an SD-ID may hold dots
// ("origin@32473.1.2"), a parameter name that holds one can only be asked
// for in the JSON form. The key ends at the first '=', which an SD-NAME
// cannot hold; a glob cannot hold ',', which separates the terms.
func ParseFilter(s string) (*Filter, error) {
	f := &Filter{}
	if strings.TrimSpace(s) == "" {
		return f, nil
	}
	for _, term := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(term), "=")
		if !ok {
			return nil, fmt.Errorf("%w: term %q is not key=value", ErrBadFilter, term)
		}
		if len(k) > 3 && strings.EqualFold(k[:3], "sd.") {
			name := k[3:]
			dot := strings.LastIndexByte(name, '.')
			if dot < 0 {
				return nil, fmt.Errorf("%w: key %q is not sd.ID.PARAM", ErrBadFilter, k)
			}
			f.SD = append(f.SD, SDTerm{ID: name[:dot], Param: name[dot+1:], Glob: v})
			continue
		}
		switch strings.ToLower(k) {
		case "origin":
			f.Origin = v
		case "msgid":
			f.MsgID = v
		case "app":
			f.App = v
		case "type":
			f.Type = v
		case "addr":
			f.Addr = v
		case "source":
			for _, src := range strings.Split(v, "|") {
				f.Source = append(f.Source, Source(strings.ToLower(src)))
			}
		case "severity":
			sev, err := ParseSeverity(v)
			if err != nil {
				return nil, fmt.Errorf("%w: %w", ErrBadFilter, err)
			}
			f.Severity = &sev
		default:
			return nil, fmt.Errorf("%w: unknown key %q (origin, source, msgid, app, type, addr, severity, sd.ID.PARAM)", ErrBadFilter, k)
		}
	}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	return f, nil
}

// parseAddrTerm reads an addr term: a CIDR, or one address.
func parseAddrTerm(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, errors.New("not a CIDR or an address")
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// Glob reports whether name matches pattern, where * matches any run of
// characters and ? any one byte, ignoring ASCII case.
//
// Glob does not backtrack. The run of the pattern before its first star
// must begin the name and the run after its last star must end it (one
// comparison each); every run between two stars is matched where it first
// can be after the run before it (a later match only leaves the runs after
// it less room), found in one pass over the rest of the name by the
// shift-and algorithm, which keeps one bit for each byte of the run (or,
// where trying the run at every offset takes at most plainSearchSteps
// comparisons, by doing that). The searches look at each byte of the name
// at most once between them, so Glob takes O(len(pattern) + len(name))
// steps, each of at most MaxGlobLen/64 word operations, for every pattern
// whose runs are at most MaxGlobLen bytes long: every pattern Validate
// accepts. A longer run (possible only by calling Glob with an unvalidated
// pattern) is searched for offset by offset: O(len(run) * len(name)).
func Glob(pattern, name string) bool {
	ok, _ := glob(pattern, name)
	return ok
}

// glob is Glob, also counting its steps: the bytes of the pattern
// compared or prepared, one for each byte of the name a search looks at
// (times the words of the search's state), one for each byte compared by a
// plain search. The tests hold it to its bound.
func glob(pattern, name string) (match bool, steps int) {
	first := strings.IndexByte(pattern, '*')
	steps = 2 * len(pattern) // the scans for stars
	if first < 0 {
		return len(pattern) == len(name) && runEq(pattern, name), steps + len(pattern)
	}
	// The run before the first star begins the name, the one after the
	// last star ends it.
	head, rest := pattern[:first], pattern[first+1:]
	last := strings.LastIndexByte(rest, '*')
	tail, middle := rest, ""
	if last >= 0 {
		tail, middle = rest[last+1:], rest[:last]
	}
	steps += len(head) + len(tail)
	end := len(name) - len(tail)
	if end < len(head) || !runEq(head, name[:len(head)]) || !runEq(tail, name[end:]) {
		return false, steps
	}
	// The runs between stars, each where it first fits after the one
	// before; all of them between head and tail.
	pos := len(head)
	for middle != "" {
		var run string
		run, middle, _ = strings.Cut(middle, "*")
		if run == "" {
			continue
		}
		i, n := findRun(run, name[pos:end])
		steps += n
		if i < 0 {
			return false, steps
		}
		pos += i + len(run)
	}
	return true, steps
}

// runEq reports whether run (a pattern without stars) matches s, of the
// same length.
func runEq(run, s string) bool {
	for i := 0; i < len(run); i++ {
		if run[i] != '?' && !foldEq(run[i], s[i]) {
			return false
		}
	}
	return true
}

// plainSearchSteps is the most steps a byte-by-byte search may take before
// the shift-and search, which first builds a table, is the cheaper one.
const plainSearchSteps = 256

// findRun returns the index of the first match of run (a pattern without
// stars, not empty) in s, or -1, and the steps taken.
func findRun(run, s string) (index, steps int) {
	m := len(run)
	switch {
	case m > len(s):
		return -1, 0
	case (len(s)-m+1)*m <= plainSearchSteps || m > MaxGlobLen:
		return findPlain(run, s)
	case m <= 64:
		return findShiftAnd1(run, s)
	}
	return findShiftAnd4(run, s)
}

// findPlain tries run at each offset of s in turn: (len(s)-len(run)+1)*len(run)
// steps at most.
func findPlain(run, s string) (index, steps int) {
	for i := 0; i+len(run) <= len(s); i++ {
		j := 0
		for j < len(run) && (run[j] == '?' || foldEq(run[j], s[i+j])) {
			j++
		}
		steps += min(j+1, len(run))
		if j == len(run) {
			return i, steps
		}
	}
	return -1, steps
}

// findShiftAnd1 is the shift-and search for a run of at most 64 bytes: bit
// j of state is set after the byte s[i] when run[:j+1] matches the bytes
// of s ending at i. One step for each byte of s looked at.
func findShiftAnd1(run string, s string) (index, steps int) {
	var masks [256]uint64 // bit j set in masks[c]: run[j] matches byte c
	var any uint64        // the ? positions
	for j := 0; j < len(run); j++ {
		c := run[j]
		if c == '?' {
			any |= 1 << j
			continue
		}
		masks[c] |= 1 << j
		if o := otherCase(c); o != c {
			masks[o] |= 1 << j
		}
	}
	found := uint64(1) << (len(run) - 1)
	var state uint64
	for i := 0; i < len(s); i++ {
		state = (state<<1 | 1) & (masks[s[i]] | any)
		if state&found != 0 {
			return i + 1 - len(run), len(run) + i + 1
		}
	}
	return -1, len(run) + len(s)
}

// findShiftAnd4 is findShiftAnd1 for runs of 65 to MaxGlobLen (256) bytes:
// the state is four words, word 0 holding bits 0-63. Four steps for each
// byte of s looked at.
func findShiftAnd4(run string, s string) (index, steps int) {
	var masks [256][4]uint64
	var any [4]uint64
	for j := 0; j < len(run); j++ {
		w, bit := j/64, uint64(1)<<(j%64)
		c := run[j]
		if c == '?' {
			any[w] |= bit
			continue
		}
		masks[c][w] |= bit
		if o := otherCase(c); o != c {
			masks[o][w] |= bit
		}
	}
	fw, fbit := (len(run)-1)/64, uint64(1)<<((len(run)-1)%64)
	var st [4]uint64
	for i := 0; i < len(s); i++ {
		mk := &masks[s[i]]
		st[3] = (st[3]<<1 | st[2]>>63) & (mk[3] | any[3])
		st[2] = (st[2]<<1 | st[1]>>63) & (mk[2] | any[2])
		st[1] = (st[1]<<1 | st[0]>>63) & (mk[1] | any[1])
		st[0] = (st[0]<<1 | 1) & (mk[0] | any[0])
		if st[fw]&fbit != 0 {
			return i + 1 - len(run), len(run) + 4*(i+1)
		}
	}
	return -1, len(run) + 4*len(s)
}

// otherCase returns c's other ASCII case, or c.
func otherCase(c byte) byte {
	switch {
	case 'a' <= c && c <= 'z':
		return c - ('a' - 'A')
	case 'A' <= c && c <= 'Z':
		return c + ('a' - 'A')
	}
	return c
}

func foldEq(a, b byte) bool {
	if a == b {
		return true
	}
	if 'A' <= a && a <= 'Z' {
		a += 'a' - 'A'
	}
	if 'A' <= b && b <= 'Z' {
		b += 'a' - 'A'
	}
	return a == b
}
