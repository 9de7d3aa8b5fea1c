package agentproto

import (
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"
)

// CheckCommand returns a *FieldError if line is longer than MaxCommand.
// Its syntax is the agent's business (its policy and SplitCommand).
func CheckCommand(line string) error {
	if len(line) > MaxCommand {
		return &FieldError{Field: "command", Kind: ErrTooLong, Len: len(line), Max: MaxCommand}
	}
	return nil
}

// CheckCommandID returns a *FieldError unless id is 1 to MaxCommandID
// printable ASCII characters without spaces.
func CheckCommandID(id string) error {
	const field = "command ID"
	switch {
	case id == "":
		return &FieldError{Field: field, Kind: ErrInvalid, Detail: "no characters"}
	case len(id) > MaxCommandID:
		return &FieldError{Field: field, Kind: ErrTooLong, Len: len(id), Max: MaxCommandID}
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c > '~' {
			return &FieldError{Field: field, Kind: ErrInvalid, Len: len(id),
				Detail: fmt.Sprintf("%s at offset %d; it may hold only printable ASCII characters, no spaces", byteName(c), i)}
		}
	}
	return nil
}

// CheckClient returns a *FieldError unless name is 1 to MaxClient bytes of
// UTF-8 without control characters.
func CheckClient(name string) error {
	const field = "client name"
	switch {
	case name == "":
		return &FieldError{Field: field, Kind: ErrInvalid, Detail: "no characters"}
	case len(name) > MaxClient:
		return &FieldError{Field: field, Kind: ErrTooLong, Len: len(name), Max: MaxClient}
	}
	for i, r := range name {
		switch {
		case r == utf8.RuneError && !validAt(name, i):
			return &FieldError{Field: field, Kind: ErrInvalid, Len: len(name), Detail: fmt.Sprintf("a byte that is not UTF-8 at offset %d", i)}
		case unicode.IsControl(r):
			return &FieldError{Field: field, Kind: ErrInvalid, Len: len(name), Detail: fmt.Sprintf("a control character (%U) at offset %d", r, i)}
		}
	}
	return nil
}

// validAt reports whether s holds a valid encoding at offset i (of U+FFFD
// itself, when range yielded utf8.RuneError there).
func validAt(s string, i int) bool {
	_, size := utf8.DecodeRuneInString(s[i:])
	return size == 3
}

// byteName names an ASCII byte for an error message.
func byteName(c byte) string {
	switch {
	case c == ' ':
		return "a space"
	case c < ' ' || c == 0x7f:
		return fmt.Sprintf("a control character (0x%02x)", c)
	default:
		return fmt.Sprintf("a non-ASCII byte (0x%02x)", c)
	}
}

// FormatTimeout returns the value of EnvTimeout for a time limit d > 0:
// whole seconds, rounded up.
func FormatTimeout(d time.Duration) string {
	return strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10)
}

// ParseTimeout parses a value of EnvTimeout: seconds, a positive decimal
// number (such as "30" or "0.5"). The result is at least a millisecond;
// values too large for a time.Duration give the largest one (callers cap
// it by their own maximum).
func ParseTimeout(s string) (time.Duration, error) {
	f, err := strconv.ParseFloat(s, 64)
	switch {
	case err != nil, !(f > 0), math.IsInf(f, 0):
		return 0, fmt.Errorf("%w: %q is not a positive number of seconds", ErrTimeout, s)
	case f >= float64(math.MaxInt64)/float64(time.Second):
		return time.Duration(math.MaxInt64), nil
	}
	return max(time.Duration(f*float64(time.Second)), time.Millisecond), nil
}
