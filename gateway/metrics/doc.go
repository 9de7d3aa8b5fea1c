// Package metrics is the registry a program's components count in, served to
// Prometheus. It is a thin layer over the official client library,
// github.com/prometheus/client_golang: the metrics are its types, and the
// exposition (text, protobuf or OpenMetrics, as the scraper negotiates,
// compressed if asked) is its promhttp handler's.
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
// one gauge per connected agent. [Registry.MustRegister] adds collectors
// made elsewhere, such as the Go runtime and process collectors.
// [DurationBuckets] are the buckets for latencies, from 100 µs to a minute.
//
// Registration panics on an invalid metric or label name, an unknown type,
// or a name registered twice, as the client's MustRegister does: names are
// constants in the program, so these are programming errors that the first
// test run finds. Names must follow the classic rules ([a-zA-Z_:][a-zA-Z0-9_:]*
// for metrics, no colon and no leading "__" for labels), which every
// scraper reads unquoted, though the client would accept any UTF-8. A
// sample that a [Registry.Collect] callback emits at scrape time with bad
// labels is left out, and the scrape reports the error after serving the
// rest.
//
// A Registry has no package-level default (the client's
// prometheus.DefaultRegisterer is not used): each program makes its own and
// passes it to the components that count. All methods are safe for
// concurrent use.
package metrics
