package commands

import (
	"fmt"
	"net/netip"
	"strings"
)

// Kind is the kind of system a command goes to.
type Kind string

// The target kinds.
const (
	KindLinux  Kind = "linux"  // a Linux system, through its agent or sshd
	KindZVM    Kind = "zvm"    // a z/VM system, through its z/VM agent on VMMON
	KindRegion Kind = "region" // the region itself: operator commands
)

// Target names where a command goes. Its text forms:
//
//	linux:NAME         a Linux system by name (as its syslog daemon or --linux named it)
//	linux:NAME=NAME    the same, in the CA form
//	linux:ADDR=IP      a Linux system by address
//	zvm:SYSTEM         a z/VM system by name
//	region             the region's own operator commands
//
// A Linux target may add ",NODE=VMHOST" to say which z/VM host it runs
// under, as CA's connector allows; it must then match.
type Target struct {
	Kind Kind
	Name string     // system name; empty when Addr is set
	Addr netip.Addr // linux:ADDR=
	Node string     // NODE=, optional
}

// ParseTarget parses the text form of a target.
func ParseTarget(s string) (Target, error) {
	s = strings.TrimSpace(s)
	if strings.EqualFold(s, "region") {
		return Target{Kind: KindRegion}, nil
	}
	kind, rest, ok := strings.Cut(s, ":")
	if !ok || rest == "" {
		return Target{}, fmt.Errorf("%w: %q (linux:NAME, linux:ADDR=IP, zvm:SYSTEM or region)", ErrBadTarget, s)
	}
	t := Target{Kind: Kind(strings.ToLower(kind))}
	switch t.Kind {
	case KindLinux, KindZVM:
	default:
		return Target{}, fmt.Errorf("%w: unknown kind %q in %q (linux, zvm, region)", ErrBadTarget, kind, s)
	}
	for i, part := range strings.Split(rest, ",") {
		key, val, hasEq := strings.Cut(part, "=")
		if !hasEq {
			if i != 0 {
				return Target{}, fmt.Errorf("%w: %q: expected KEY=VALUE after a comma", ErrBadTarget, part)
			}
			t.Name = part
			continue
		}
		switch strings.ToUpper(key) {
		case "NAME":
			t.Name = val
		case "ADDR":
			if t.Kind != KindLinux {
				return Target{}, fmt.Errorf("%w: ADDR= is for linux targets", ErrBadTarget)
			}
			a, err := netip.ParseAddr(val)
			if err != nil {
				return Target{}, fmt.Errorf("%w: ADDR=%q: %w", ErrBadTarget, val, err)
			}
			t.Addr = a.Unmap()
		case "NODE":
			t.Node = val
		default:
			return Target{}, fmt.Errorf("%w: unknown key %q (NAME, ADDR, NODE)", ErrBadTarget, key)
		}
	}
	if t.Name == "" && !t.Addr.IsValid() {
		return Target{}, fmt.Errorf("%w: %q names no system", ErrBadTarget, s)
	}
	if t.Name != "" && t.Addr.IsValid() {
		return Target{}, fmt.Errorf("%w: %q has both a name and an address", ErrBadTarget, s)
	}
	// Names are ASCII, compared without case as ASCII: Unicode case
	// mapping (ſ to S, İ to i) must not reach a system a pattern does not
	// grant.
	switch {
	case t.Kind == KindLinux && t.Name != "" && !validLinuxName(t.Name):
		return Target{}, fmt.Errorf("%w: Linux name %q: 1 to %d ASCII letters, digits, '.', '-' and '_'", ErrBadTarget, t.Name, maxLinuxName)
	case t.Kind == KindZVM && !validZVMName(t.Name):
		return Target{}, fmt.Errorf("%w: z/VM system %q: 1 to 8 of A-Z 0-9 @ # $", ErrBadTarget, t.Name)
	case t.Node != "" && !validZVMName(t.Node):
		return Target{}, fmt.Errorf("%w: NODE=%q: a z/VM system, 1 to 8 of A-Z 0-9 @ # $", ErrBadTarget, t.Node)
	}
	return t, nil
}

// maxLinuxName is the longest Linux system name: a DNS name's.
const maxLinuxName = 253

// validLinuxName reports whether s is a Linux system name: 1 to 253 ASCII
// letters, digits, '.', '-' and '_' (a host name, and what --linux and the
// agents accept).
func validLinuxName(s string) bool {
	if s == "" || len(s) > maxLinuxName {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// validZVMName reports whether s is a z/VM system name, in either case: 1
// to 8 of A-Z 0-9 @ # $.
func validZVMName(s string) bool {
	if s == "" || len(s) > 8 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '@' || c == '#' || c == '$') {
			return false
		}
	}
	return true
}

// String returns the text form.
func (t Target) String() string {
	if t.Kind == KindRegion {
		return "region"
	}
	s := string(t.Kind) + ":"
	switch {
	case t.Addr.IsValid():
		s += "ADDR=" + t.Addr.String()
	default:
		s += t.Name
	}
	if t.Node != "" {
		s += ",NODE=" + t.Node
	}
	return s
}
