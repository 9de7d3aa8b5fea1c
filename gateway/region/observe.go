package region

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/zbridge/zbridge/commands"
	"github.com/zbridge/zbridge/gateway/metrics"
	"github.com/zbridge/zbridge/gateway/relp"
	"github.com/zbridge/zbridge/gateway/session"
	"github.com/zbridge/zbridge/gateway/store"
	"github.com/zbridge/zbridge/gateway/syslog"
	"github.com/zbridge/zbridge/gateway/unsolmsg"
)

func (r *Region) registerMetrics() {
	reg := r.reg
	stream := func(f func(s *streamStats) float64) func() float64 {
		return func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			st, err := r.store.Stats(ctx)
			if err != nil {
				return 0
			}
			return f(&streamStats{st.Count, st.Bytes, st.Appended})
		}
	}
	reg.NewCounterFunc("zbridge_events_appended_total", "Events the region received and stored.",
		stream(func(s *streamStats) float64 { return float64(s.appended) }))
	reg.NewGaugeFunc("zbridge_events_retained", "Events held in the store's retention.",
		stream(func(s *streamStats) float64 { return float64(s.count) }))
	reg.NewGaugeFunc("zbridge_events_retained_bytes", "Estimated bytes held in the store's retention.",
		stream(func(s *streamStats) float64 { return float64(s.bytes) }))
	reg.NewCounterFunc("zbridge_unsolmsg_events_sent_total", "Events sent to UNSOLMSG subscribers.",
		func() float64 { return float64(r.unsol.EventsSent()) })
	reg.Collect("zbridge_sessions", "Sessions logged on, by server.", metrics.TypeGauge, []string{"server"},
		func(emit func(float64, ...string)) {
			emit(float64(r.unsol.Stats().Active), "unsolmsg")
			emit(float64(r.cmds.Stats().Active), "commands")
			emit(float64(r.vmmon.Stats().Active), "vmmon")
		})
	reg.Collect("zbridge_sessions_refused_total", "Logons refused, by server and reason.", metrics.TypeCounter,
		[]string{"server", "reason"}, func(emit func(float64, ...string)) {
			for server, st := range r.sessionStats() {
				for reason, n := range st.Refused {
					emit(float64(n), server, reason)
				}
			}
		})
	reg.Collect("zbridge_sessions_ended_total", "Sessions ended, by server and reason.", metrics.TypeCounter,
		[]string{"server", "reason"}, func(emit func(float64, ...string)) {
			for server, st := range r.sessionStats() {
				for reason, n := range st.Ended {
					emit(float64(n), server, reason)
				}
			}
		})
	// The process's CPU, memory and file descriptors, and the Go
	// runtime's goroutines, heap and GC (process_*, go_*).
	reg.RegisterProcessMetrics()
	reg.RegisterGoMetrics()
	r.registerSyslogMetrics()
	r.registerRELPMetrics()
	r.registerLearnMetrics()
}

// registerLearnMetrics counts the Linux target names learned from syslog
// senders and the claims refused (see linuxAgents).
func (r *Region) registerLearnMetrics() {
	r.reg.Collect("zbridge_learned_name_conflicts_total",
		"Claims to a Linux target name by a syslog sender that were refused, by reason: static (a --linux target's), "+
			"learned (held by another address), cap-total, cap-addr (too many names), invalid.",
		metrics.TypeCounter, []string{"reason"}, func(emit func(float64, ...string)) {
			var counts map[string]uint64
			if r.linux != nil {
				counts = r.linux.conflictCounts()
			}
			for _, reason := range refusalReasons() {
				emit(float64(counts[reason]), reason)
			}
		})
	r.reg.NewGaugeFunc("zbridge_learned_names", "Linux target names learned from syslog senders and held now.",
		func() float64 {
			if r.linux == nil {
				return 0
			}
			return float64(r.linux.learnedCount())
		})
}

// newRelayLatency registers the histogram of relay latency that UNSOLMSG
// observes: from an event's Received time to the write that sent it to a
// subscriber.
func (r *Region) newRelayLatency() unsolmsg.Observer {
	return r.reg.NewHistogram("zbridge_relay_latency_seconds",
		"Seconds from an event's receipt by a region to its write to an UNSOLMSG subscriber, once per subscriber sent it "+
			"(an event a subscriber resumes from far back counts with its age).",
		metrics.DurationBuckets())
}

// newCommandDuration registers the histogram of COMMANDS requests' times,
// by target kind and outcome, and returns the commandsrv.Config.Done that
// observes it. A command another region forwarded here is in that region's
// histogram, not this one's.
func (r *Region) newCommandDuration() func(*commands.Request, time.Duration, error) {
	h := r.reg.NewHistogramVec("zbridge_command_duration_seconds",
		"Seconds from a COMMANDS request to its reply sent, by target kind (linux, zvm, region) and outcome "+
			"(ok: it ran to its end, whatever its return code; else the error code, such as timeout or not-permitted).",
		metrics.DurationBuckets(), "kind", "outcome")
	return func(req *commands.Request, took time.Duration, err error) {
		h.WithLabelValues(string(req.Target.Kind), commandOutcome(err)).Observe(took.Seconds())
	}
}

// commandOutcome is the outcome label of a command that ended with err:
// "ok", its error code, or "other" for a code this region does not know
// (an agent's own), which would otherwise make label values without bound.
func commandOutcome(err error) string {
	if err == nil {
		return "ok"
	}
	var ce *commands.Error
	if !errors.As(err, &ce) {
		return commands.CodeFailed
	}
	switch ce.Code {
	case commands.CodeBadRequest, commands.CodeUnknown, commands.CodeNotConnected, commands.CodeNotPermitted,
		commands.CodeTimeout, commands.CodeBusy, commands.CodeCancelled, commands.CodeFailed, commands.CodeNotFound:
		return ce.Code
	}
	return "other"
}

func (r *Region) sessionStats() map[string]session.Stats {
	return map[string]session.Stats{"unsolmsg": r.unsol.Stats(), "commands": r.cmds.Stats(), "vmmon": r.vmmon.Stats()}
}

type streamStats struct {
	count, bytes int64
	appended     uint64
}

// healthz answers with a JSON status: 200 and "ok" when all is well, 200
// and "degraded" with the reasons while the region serves without Redis
// (live events still flow; what must be written to Redis is buffered), 503
// when it cannot read its store at all; 503 and "starting" until Start has
// issued ZBR001I (the servers listen, the cluster is joined), 503 and
// "stopping" once Shutdown or Close has begun (its listeners are closing:
// a load balancer should send nothing more).
func (r *Region) healthz(w http.ResponseWriter, req *http.Request) {
	body := map[string]any{"region": r.cfg.Name, "status": "ok"}
	code := http.StatusOK
	if phase := r.phase(); phase != "" {
		body["status"] = phase
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		json.NewEncoder(w).Encode(body)
		return
	}
	degraded, reasons, sh := r.health()
	if degraded {
		body["status"] = "degraded"
		body["reasons"] = reasons
	}
	if _, ok := r.store.(store.HealthReporter); ok {
		body["buffered_events"] = sh.Buffered
		body["dropped_events"] = sh.Dropped
	}
	ctx, cancel := context.WithTimeout(req.Context(), 2*time.Second)
	defer cancel()
	if st, err := r.store.Stats(ctx); err != nil {
		if !degraded {
			body["status"] = "unavailable"
			code = http.StatusServiceUnavailable
		}
		body["error"] = err.Error()
	} else {
		body["events_retained"] = st.Count
		body["last_event_id"] = st.Last.String()
	}
	body["unsolmsg_sessions"] = r.unsol.Stats().Active
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(body)
}

func (r *Region) registerSyslogMetrics() {
	st := func(f func(s syslog.Stats) float64) func() float64 {
		return func() float64 { return f(r.syslog.Stats()) }
	}
	reg := r.reg
	reg.NewCounterFunc("zbridge_syslog_connections_total", "SYSLOG TCP/TLS connections accepted, refused ones included.",
		st(func(s syslog.Stats) float64 { return float64(s.Connections) }))
	reg.NewCounterFunc("zbridge_syslog_connections_refused_total", "SYSLOG connections closed at once: the session limit was reached.",
		st(func(s syslog.Stats) float64 { return float64(s.Refused) }))
	reg.NewGaugeFunc("zbridge_syslog_connections", "SYSLOG connections being served.",
		st(func(s syslog.Stats) float64 { return float64(s.Active) }))
	reg.NewCounterFunc("zbridge_syslog_messages_total", "Syslog messages received (each became an event).",
		st(func(s syslog.Stats) float64 { return float64(s.Frames) }))
	reg.NewCounterFunc("zbridge_syslog_parse_failures_total", "Syslog messages relayed raw because they did not parse.",
		st(func(s syslog.Stats) float64 { return float64(s.ParseFailures) }))
	reg.NewCounterFunc("zbridge_syslog_oversize_total", "Syslog frames or datagrams larger than the frame limit.",
		st(func(s syslog.Stats) float64 { return float64(s.Oversize) }))
	reg.NewCounterFunc("zbridge_syslog_framing_errors_total", "SYSLOG connections ended by a malformed octet count.",
		st(func(s syslog.Stats) float64 { return float64(s.FramingErrors) }))
	reg.NewCounterFunc("zbridge_syslog_bytes_total", "Bytes of syslog received.",
		st(func(s syslog.Stats) float64 { return float64(s.Bytes) }))
	reg.NewCounterFunc("zbridge_syslog_reads_total", "Reads of SYSLOG TCP and TLS connections that returned bytes (of TLS, its records, handshakes included): over plain TCP, bytes over reads is the average read, which --syslog-coalesce makes larger.",
		st(func(s syslog.Stats) float64 { return float64(s.Reads) }))
	reg.NewCounterFunc("zbridge_syslog_datagrams_total", "Syslog UDP datagrams received.",
		st(func(s syslog.Stats) float64 { return float64(s.Datagrams) }))
	reg.NewCounterFunc("zbridge_syslog_append_errors_total", "Batches of syslog events the store failed to take.",
		st(func(s syslog.Stats) float64 { return float64(s.AppendErrors) }))
}

// registerRELPMetrics counts the RELP intake, when it is on.
func (r *Region) registerRELPMetrics() {
	if r.relp == nil {
		return
	}
	st := func(f func(s relp.Stats) float64) func() float64 {
		return func() float64 { return f(r.relp.Stats()) }
	}
	reg := r.reg
	reg.NewCounterFunc("zbridge_relp_sessions_total", "RELP connections accepted, refused ones included.",
		st(func(s relp.Stats) float64 { return float64(s.Sessions) }))
	reg.NewGaugeFunc("zbridge_relp_sessions", "RELP sessions being served.",
		st(func(s relp.Stats) float64 { return float64(s.Active) }))
	reg.NewCounterFunc("zbridge_relp_messages_total", "Syslog messages received over RELP, stored, synced and acknowledged.",
		st(func(s relp.Stats) float64 { return float64(s.Messages) }))
	reg.NewCounterFunc("zbridge_relp_deliver_errors_total", "Batches of RELP messages the store could not take or sync (not acknowledged: the sender sends them again).",
		st(func(s relp.Stats) float64 { return float64(s.DeliverErrors) }))
	reg.NewCounterFunc("zbridge_relp_protocol_errors_total", "RELP sessions ended by a malformed or oversized frame.",
		st(func(s relp.Stats) float64 { return float64(s.ProtocolErrors) }))
}

// phase is "starting" before Start has issued ZBR001I, "stopping" once
// Shutdown or Close has begun, and "" while the region runs.
func (r *Region) phase() string {
	select {
	case <-r.quit:
		return "stopping"
	default:
	}
	if !r.started.Load() {
		return "starting"
	}
	return ""
}
