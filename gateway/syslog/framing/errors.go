package framing

import "errors"

// Errors returned by Scanner.Next. They are wrapped with the stream offset
// and a sentence; test for them with errors.Is.
var (
	// ErrFrameTooLarge: a frame (its octet count, or an LF-terminated line)
	// exceeds the scanner's maximum frame size.
	ErrFrameTooLarge = errors.New("framing: frame too large")
	// ErrBadCount: an octet-counting header is malformed (not digits, no
	// space after the count, a leading zero, or a count of more than 9 digits).
	ErrBadCount = errors.New("framing: malformed octet count")
	// ErrPartialFrame: the stream ended (EOF or a read error) inside a frame.
	// Next returns the bytes received of that frame along with it.
	ErrPartialFrame = errors.New("framing: stream ended inside a frame")
)
