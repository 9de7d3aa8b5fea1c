package relp

import "errors"

// Errors of this package. They are wrapped with the stream offset and a
// sentence saying what was wrong; test for them with errors.Is.
var (
	// ErrMalformed: a frame does not follow the grammar of SPEC.md (a
	// TXNR or DATALEN that is not 1 to 9 digits, a COMMAND that is not 1 to
	// 32 letters, a missing space, a trailer that is not LF). The stream
	// cannot be resynchronised: the session must end.
	ErrMalformed = errors.New("relp: malformed frame")
	// ErrTooLarge: a frame's DATALEN exceeds the Reader's maximum. It is
	// reported as soon as the byte after DATALEN is read, before any data.
	ErrTooLarge = errors.New("relp: frame too large")
	// ErrTruncated: the stream ended (EOF or a read error, also wrapped)
	// inside a frame.
	ErrTruncated = errors.New("relp: stream ended inside a frame")
	// ErrBadOffer: the data of an open command, or of its response, is not
	// a well-formed list of offers.
	ErrBadOffer = errors.New("relp: malformed offers")
	// ErrBadResponse: the data of a rsp frame does not start with a
	// three-digit status and a space.
	ErrBadResponse = errors.New("relp: malformed response")
)
