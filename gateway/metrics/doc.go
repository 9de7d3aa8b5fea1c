// Package metrics keeps a registry of metrics and writes them in the
// Prometheus text exposition format, version 0.0.4, without a Prometheus
// client library.
//
// A [Registry] holds metric families by name. Register each at startup:
//
//	reg := metrics.NewRegistry()
//	frames := reg.NewCounter("zbridge_frames_total", "Frames received from clients.")
//	frames.Inc()
//	http.Handle("/metrics", reg.Handler())
//
// The kinds are [Counter] and [Gauge], whose values the program sets;
// counter and gauge funcs, read at scrape time; [CounterVec], counters with
// fixed label names; and [Registry.Collect], a callback that emits any number
// of labelled samples at scrape time, for sets that change, such as one
// gauge per connected agent.
//
// Registration panics on an invalid metric or label name, an unknown type,
// or a name registered twice, as the official client's MustRegister does:
// names are constants in the program, so these are programming errors that
// the first test run finds. A sample that a [Registry.Collect] callback
// emits at scrape time with bad labels is left out, and [Registry.WriteTo]
// returns an error wrapping [ErrInvalidSample] after writing the rest.
//
// Families are written sorted by name; the samples of a family are sorted by
// their labels. Help text and label values are escaped as the format
// requires, and invalid UTF-8 in them is replaced by U+FFFD. A family with
// no samples is left out. A Registry has no package-level default: each
// program makes its own and passes it to the components that count. All
// methods are safe for concurrent use.
package metrics
