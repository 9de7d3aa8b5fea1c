package protocol

import "errors"

// Errors returned by the decoders in this package.
var (
	ErrFrameTooLarge = errors.New("protocol: frame too large")
	ErrMalformed     = errors.New("protocol: malformed frame")
	ErrPartialFrame  = errors.New("protocol: connection ended inside a frame")
	ErrBadID         = errors.New("protocol: bad event ID")
	ErrBadSeverity   = errors.New("protocol: bad severity")
	ErrBadFacility   = errors.New("protocol: bad facility")
	ErrBadFilter     = errors.New("protocol: bad filter")
	// ErrOverLimit: a frame whose container holds more elements than its
	// limit allows (MaxBatch events, MaxSDTerms filter terms,
	// MaxFilterSources source kinds, MaxOptions options). Decode returns
	// it wrapped with ErrMalformed, before it builds the container.
	ErrOverLimit = errors.New("protocol: over a limit")
	// ErrBadSD: JSON that is not structured data in the form
	// StructuredData documents.
	ErrBadSD = errors.New("protocol: bad structured data")
)

// Errors of Decode's ways, not returned as they are: errNotFast says
// decodeFast left a frame to decodeSlow; errNoType is a frame without a
// type (ErrMalformed).
var (
	errNotFast = errors.New("protocol: not read without encoding/json")
	errNoType  = errors.New(`no "type"`)
)
