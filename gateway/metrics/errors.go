package metrics

import "errors"

// Errors a scrape reports (wrapped, with the family and the series) when
// a [Registry.Collect] callback emits a sample it must leave out.
var (
	// ErrLabelValues: a sample with more or fewer label values than the
	// family has label names.
	ErrLabelValues = errors.New("metrics: wrong number of label values")
	// ErrDuplicate: a sample with the same label values as one emitted
	// before in the same scrape; the first is kept.
	ErrDuplicate = errors.New("metrics: series emitted twice")
)
