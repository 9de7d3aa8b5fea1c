package protocol

import (
	"fmt"
	"strconv"
	"strings"
)

// Severity is a syslog severity (RFC 5424 section 6.2.1): 0 is the most
// severe (emerg), 7 the least (debug). Its text form is the short name.
type Severity uint8

// The syslog severities.
const (
	SevEmerg Severity = iota
	SevAlert
	SevCrit
	SevErr
	SevWarning
	SevNotice
	SevInfo
	SevDebug
)

var severityNames = [...]string{"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"}

// String returns the short name ("err", "warning", ...).
func (s Severity) String() string {
	if int(s) < len(severityNames) {
		return severityNames[s]
	}
	return strconv.Itoa(int(s))
}

// ParseSeverity accepts a name (also "error", "warn", "crit", "emergency",
// "panic", "critical", "informational") or a number 0-7.
func ParseSeverity(s string) (Severity, error) {
	l := strings.ToLower(strings.TrimSpace(s))
	for i, n := range severityNames {
		if l == n {
			return Severity(i), nil
		}
	}
	switch l {
	case "emergency", "panic":
		return SevEmerg, nil
	case "critical":
		return SevCrit, nil
	case "error":
		return SevErr, nil
	case "warn":
		return SevWarning, nil
	case "informational":
		return SevInfo, nil
	}
	if n, err := strconv.Atoi(l); err == nil && n >= 0 && n <= 7 {
		return Severity(n), nil
	}
	return 0, fmt.Errorf("%w: %q", ErrBadSeverity, s)
}

// MarshalText implements encoding.TextMarshaler.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Facility is a syslog facility (RFC 5424 section 6.2.1), 0-23. Its text form
// is the conventional name.
type Facility uint8

// Facilities the region itself uses.
const (
	FacKern   Facility = 0
	FacUser   Facility = 1
	FacDaemon Facility = 3
	FacLocal0 Facility = 16
)

var facilityNames = [...]string{
	"kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news",
	"uucp", "cron", "authpriv", "ftp", "ntp", "security", "console", "clock",
	"local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
}

// String returns the facility name ("daemon", "local3", ...).
func (f Facility) String() string {
	if int(f) < len(facilityNames) {
		return facilityNames[f]
	}
	return strconv.Itoa(int(f))
}

// ParseFacility accepts a name or a number 0-23.
func ParseFacility(s string) (Facility, error) {
	l := strings.ToLower(strings.TrimSpace(s))
	for i, n := range facilityNames {
		if l == n {
			return Facility(i), nil
		}
	}
	if n, err := strconv.Atoi(l); err == nil && n >= 0 && n < len(facilityNames) {
		return Facility(n), nil
	}
	return 0, fmt.Errorf("%w: %q", ErrBadFacility, s)
}

// MarshalText implements encoding.TextMarshaler.
func (f Facility) MarshalText() ([]byte, error) { return []byte(f.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (f *Facility) UnmarshalText(b []byte) error {
	v, err := ParseFacility(string(b))
	if err != nil {
		return err
	}
	*f = v
	return nil
}
