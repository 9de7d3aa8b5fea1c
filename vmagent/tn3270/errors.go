package tn3270

import (
	"errors"
	"fmt"
)

// Sentinel errors. Errors returned by this package wrap one of these (test
// with errors.Is); the text of the wrapping error says where and why.
var (
	// ErrBadDataStream: the host sent a 3270 record this terminal cannot
	// accept (unknown command or order, truncated order, address outside
	// the buffer, ...). The session ends. The error is a *DataStreamError
	// carrying the offset in the record.
	ErrBadDataStream = errors.New("tn3270: bad 3270 data stream")

	// ErrTelnet: the host broke the telnet protocol (oversized record or
	// subnegotiation). The session ends.
	ErrTelnet = errors.New("tn3270: telnet protocol error")

	// ErrClosed: the session has ended, by Close or because the connection
	// or the data stream failed (see Client.Err for why).
	ErrClosed = errors.New("tn3270: session closed")

	// ErrDisconnected: the host closed the connection. The error says
	// what the host wrote last if that was plain text (a refusal).
	ErrDisconnected = errors.New("tn3270: host closed the connection")

	// ErrBadConfig: a Config value is out of range.
	ErrBadConfig = errors.New("tn3270: bad configuration")

	// ErrKeyboardLocked: input was refused because the keyboard is locked:
	// an AID was sent and the host has not yet restored the keyboard, or the
	// host has not written the first screen yet.
	ErrKeyboardLocked = errors.New("tn3270: keyboard locked")

	// ErrProtected: input was aimed at a protected field or a field
	// attribute position.
	ErrProtected = errors.New("tn3270: protected field")

	// ErrFieldOverflow: the text does not fit in the rest of the field.
	ErrFieldOverflow = errors.New("tn3270: text does not fit in field")

	// ErrNumeric: a character other than 0-9, '.' or '-' was typed into a
	// numeric field.
	ErrNumeric = errors.New("tn3270: numeric field")

	// ErrBadInput: the text holds characters that cannot be typed (control
	// characters, or characters missing from the codepage).
	ErrBadInput = errors.New("tn3270: character cannot be typed")

	// ErrBadPosition: a row or column outside the screen.
	ErrBadPosition = errors.New("tn3270: position outside the screen")

	// ErrNoField: there is no field at the position (the screen is
	// unformatted).
	ErrNoField = errors.New("tn3270: no field at position")

	// ErrBadAID: the AID is not one a 3270 keyboard sends (Enter, Clear,
	// PA1-PA3, PF1-PF24).
	ErrBadAID = errors.New("tn3270: not a keyboard AID")
)

// DataStreamError describes a 3270 record that could not be processed.
// It wraps ErrBadDataStream.
type DataStreamError struct {
	// Offset is the index in the record of the byte that could not be
	// processed (the command, order or parameter).
	Offset int
	// Reason says what was wrong with it.
	Reason string
}

func (e *DataStreamError) Error() string {
	return fmt.Sprintf("%v: at offset %d: %s", ErrBadDataStream, e.Offset, e.Reason)
}

// Unwrap returns ErrBadDataStream.
func (e *DataStreamError) Unwrap() error { return ErrBadDataStream }

func badStream(off int, format string, args ...any) error {
	return &DataStreamError{Offset: off, Reason: fmt.Sprintf(format, args...)}
}
