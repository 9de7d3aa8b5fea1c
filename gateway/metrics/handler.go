package metrics

import (
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// Logger is where a [Registry.Handler] reports a scrape that failed in
// part; a logrus.FieldLogger is one.
type Logger interface {
	Println(v ...any)
}

// handlerMetrics are the counts every Handler of a registry shares.
type handlerMetrics struct {
	gathering, encoding *Counter
}

// Handler returns an http.Handler that serves r's metrics in the text
// format 0.0.4 (Content-Type [ContentType]), gzip-compressed when the
// request's Accept-Encoding allows it. It does not negotiate the protobuf
// or OpenMetrics formats: Prometheus asks for them first but takes the text
// format from any target. A scrape in which some collector failed still
// serves the rest (what failed is left out), and is counted in
// promhttp_metric_handler_errors_total{cause="gathering"} (the name the
// Prometheus client's handler gave it, kept for dashboards); one whose
// response could not be written, in cause="encoding". The error is logged
// to log unless log is nil (an untyped nil: a nil *logrus.Logger would be
// called). Calling Handler again returns another handler sharing those
// counts.
func (r *Registry) Handler(log Logger) http.Handler {
	r.handlerOnce.Do(func() {
		v := r.NewCounterVec("promhttp_metric_handler_errors_total",
			"Scrapes of /metrics that failed in part, by cause: gathering (a collector failed; the rest was served) "+
				"or encoding (the response could not be written).", "cause")
		r.handler = &handlerMetrics{gathering: v.WithLabelValues("gathering"), encoding: v.WithLabelValues("encoding")}
	})
	return &handler{r: r, m: r.handler, log: log}
}

type handler struct {
	r   *Registry
	m   *handlerMetrics
	log Logger
}

func (h *handler) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	w.Header().Set("Content-Type", ContentType)
	w.Header().Add("Vary", "Accept-Encoding")
	var out io.Writer = w
	var zw *gzip.Writer
	if acceptsGzip(req.Header) {
		w.Header().Set("Content-Encoding", "gzip")
		zw = gzip.NewWriter(w)
		out = zw
	}
	ds, ss, gatherErr := h.r.gather()
	var b []byte
	for _, d := range ds {
		b = appendFamily(b, d, ss[d])
	}
	_, err := out.Write(b)
	if zw != nil {
		if cerr := zw.Close(); err == nil {
			err = cerr
		}
	}
	if gatherErr != nil {
		h.m.gathering.Inc()
		h.logf("metrics: a scrape left out what failed: %v", gatherErr)
	}
	if err != nil {
		h.m.encoding.Inc()
		h.logf("metrics: writing a scrape: %v", err)
	}
}

func (h *handler) logf(format string, args ...any) {
	if h.log != nil {
		h.log.Println(fmt.Sprintf(format, args...))
	}
}

// acceptsGzip reports whether the Accept-Encoding lines of h name gzip with
// a quality above zero (RFC 9110 §12.5.3).
func acceptsGzip(h http.Header) bool {
	for _, line := range h.Values("Accept-Encoding") {
		for item := range strings.SplitSeq(line, ",") {
			coding, params, _ := strings.Cut(item, ";")
			if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
				continue
			}
			for p := range strings.SplitSeq(params, ";") {
				name, value, _ := strings.Cut(p, "=")
				if strings.EqualFold(strings.TrimSpace(name), "q") {
					q, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
					return err == nil && q > 0
				}
			}
			return true
		}
	}
	return false
}
