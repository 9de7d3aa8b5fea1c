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
	// ErrBadSD: JSON that is not structured data in the form
	// StructuredData documents.
	ErrBadSD = errors.New("protocol: bad structured data")
)
