package protocol

import (
	"fmt"
	"strings"
)

// Filter selects events for a subscriber. An empty filter selects all. All
// set conditions must hold.
type Filter struct {
	// Origin is a glob (* and ?, ASCII case-insensitive) that must match the
	// origin's system, host or node.
	Origin string `json:"origin,omitempty"`
	// Source lists the source kinds wanted; empty means all.
	Source []Source `json:"source,omitempty"`
	// MsgID is a glob that must match the message ID.
	MsgID string `json:"msgid,omitempty"`
	// Severity, when set, is the least severe severity wanted: "warning"
	// selects emerg through warning.
	Severity *Severity `json:"severity,omitempty"`
}

// Validate reports a filter that can never be used: an unknown source kind
// or a severity out of range.
func (f *Filter) Validate() error {
	if f == nil {
		return nil
	}
	for _, s := range f.Source {
		if !s.Valid() {
			return fmt.Errorf("%w: unknown source kind %q", ErrBadFilter, s)
		}
	}
	if f.Severity != nil && *f.Severity > SevDebug {
		return fmt.Errorf("%w: severity %d out of range", ErrBadFilter, *f.Severity)
	}
	return nil
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
	if f.Origin != "" && !Glob(f.Origin, e.Origin.System) && !Glob(f.Origin, e.Origin.Host) &&
		!Glob(f.Origin, e.Origin.Node) {
		return false
	}
	return true
}

// ParseFilter parses the command-line form of a filter: comma-separated
// key=value terms, keys origin, source, msgid and severity; several source
// kinds are separated by "|". Example: "origin=lnx*,source=syslog|region,severity=warning".
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
		switch strings.ToLower(k) {
		case "origin":
			f.Origin = v
		case "msgid":
			f.MsgID = v
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
			return nil, fmt.Errorf("%w: unknown key %q (origin, source, msgid, severity)", ErrBadFilter, k)
		}
	}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	return f, nil
}

// Glob reports whether name matches pattern, where * matches any run of
// characters and ? any one byte, ignoring ASCII case.
func Glob(pattern, name string) bool {
	// Iterative matcher with single backtrack point for the last star.
	p, n := 0, 0
	star, mark := -1, 0
	for n < len(name) {
		// A star first: a '*' in the pattern is never a literal, even
		// against a '*' in the name.
		if p < len(pattern) && pattern[p] == '*' {
			star, mark = p, n
			p++
			continue
		}
		if p < len(pattern) && (pattern[p] == '?' || foldEq(pattern[p], name[n])) {
			p++
			n++
			continue
		}
		if star >= 0 {
			p = star + 1
			mark++
			n = mark
			continue
		}
		return false
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
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
