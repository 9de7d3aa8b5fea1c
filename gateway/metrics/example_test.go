package metrics_test

import (
	"os"

	"github.com/zbridge/zbridge/gateway/metrics"
)

func Example() {
	reg := metrics.NewRegistry()
	frames := reg.NewCounter("zbridge_frames_total", "Frames received from clients.")
	logons := reg.NewCounterVec("zbridge_logons_total", "Logons by result.", "result")
	reg.Collect("zbridge_agent_connected", "Whether each agent is connected.", metrics.TypeGauge,
		[]string{"agent"}, func(emit func(float64, ...string)) {
			emit(1, "VMSYS1")
			emit(0, "VMSYS2")
		})
	latency := reg.NewHistogram("zbridge_wait_seconds", "Time waited.", []float64{0.01, 0.1, 1})

	frames.Inc()
	logons.WithLabelValues("ok").Inc()
	latency.Observe(0.05)

	// A server would serve reg.Handler(log) at /metrics.
	reg.WriteTo(os.Stdout)
	// Output:
	// # HELP zbridge_agent_connected Whether each agent is connected.
	// # TYPE zbridge_agent_connected gauge
	// zbridge_agent_connected{agent="VMSYS1"} 1
	// zbridge_agent_connected{agent="VMSYS2"} 0
	// # HELP zbridge_frames_total Frames received from clients.
	// # TYPE zbridge_frames_total counter
	// zbridge_frames_total 1
	// # HELP zbridge_logons_total Logons by result.
	// # TYPE zbridge_logons_total counter
	// zbridge_logons_total{result="ok"} 1
	// # HELP zbridge_wait_seconds Time waited.
	// # TYPE zbridge_wait_seconds histogram
	// zbridge_wait_seconds_bucket{le="0.01"} 0
	// zbridge_wait_seconds_bucket{le="0.1"} 1
	// zbridge_wait_seconds_bucket{le="1"} 1
	// zbridge_wait_seconds_bucket{le="+Inf"} 1
	// zbridge_wait_seconds_sum 0.05
	// zbridge_wait_seconds_count 1
}
