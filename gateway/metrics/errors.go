package metrics

import "errors"

// ErrInvalidSample is wrapped by the error [Registry.WriteTo] returns when a
// [Registry.Collect] callback emitted a sample with bad labels.
var ErrInvalidSample = errors.New("metrics: invalid sample")
