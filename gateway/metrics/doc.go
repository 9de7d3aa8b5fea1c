// Package metrics is the registry a program's components count in, served to
// Prometheus in its text exposition format, version 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/). It is
// written here rather than taken from the Prometheus client library, whose
// packages (with protobuf, procfs, expvar and their tables built at init)
// made every zbridge command start slower, whichever it was: a program
// importing only them started with 2.5 times a Go hello-world's page
// faults (issue 14). Nothing here does any work before it is called.
//
// A [Registry] holds metric families by name. Register each at startup:
//
//	reg := metrics.NewRegistry()
//	frames := reg.NewCounter("zbridge_frames_total", "Frames received from clients.")
//	frames.Inc()
//	mux.Handle("/metrics", reg.Handler(log))
//
// The kinds are counters, gauges and histograms whose values the program
// sets ([Registry.NewCounter], [Registry.NewGauge], [Registry.NewHistogram]
// and their Vec forms, with fixed label names); counter and gauge funcs,
// read at scrape time; and [Registry.Collect], a callback that emits any
// number of labelled samples at scrape time, for sets that change, such as
// one gauge per connected agent. [Registry.RegisterGoMetrics] and
// [Registry.RegisterProcessMetrics] add the Go runtime's and the process's
// families (go_*, process_*) under the names the Prometheus client gives
// them. [DurationBuckets] are the buckets for latencies, from 100 µs to a
// minute. The methods of [Counter], [Gauge] and [Histogram], which
// components call per event, are atomic operations: no lock, no
// allocation; WithLabelValues takes a read lock, and allocates only the
// first time it is given a set of label values (or when they are longer
// than 128 bytes together).
//
// Registration panics on an invalid metric or label name, an unknown type,
// a name registered twice, or a name that one of a histogram's samples has
// (x_bucket, x_sum and x_count are taken by histogram x): names are
// constants in the program, so these are programming errors that the first
// test run finds. Names must follow the classic rules ([a-zA-Z_:][a-zA-Z0-9_:]*
// for metrics, [a-zA-Z_][a-zA-Z0-9_]* and no leading "__" for labels),
// which every scraper reads unquoted. A sample that a [Registry.Collect]
// callback emits at scrape time with bad labels is left out, and the scrape
// reports the error after serving the rest.
//
// The exposition: families sorted by name, each with its HELP line
// (backslash and line feed escaped) and TYPE line, then its series sorted
// by label values; labels sorted by name (le and quantile last), their values
// escaped (backslash, double quote, line feed); values as Go's shortest
// 'g' format, NaN, +Inf or -Inf, as the Prometheus clients write them; a
// histogram as its cumulative _bucket series with le="+Inf" last, then _sum
// and _count. A family with no series yet (a Vec no label values were used
// with) is left out. [Registry.Handler] serves only this format,
// gzip-compressed when the scraper accepts it: unlike the Prometheus
// client's handler it does not negotiate the protobuf or OpenMetrics
// formats, which Prometheus asks for first (OpenMetrics, and
// protobuf when native histograms are on) but does not need: it takes the
// text format from any target. What those formats add, exemplars and
// native histograms, this package does not have.
//
// A Registry has no package-level default: each program makes its own and
// passes it to the components that count. All methods are safe for
// concurrent use.
package metrics
