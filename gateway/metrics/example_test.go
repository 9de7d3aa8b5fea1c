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
		func(emit func(float64, ...string)) {
			emit(1, "agent", "VMSYS1")
			emit(0, "agent", "VMSYS2")
		})

	frames.Inc()
	logons.With("ok").Inc()

	// A server would serve reg.Handler() at /metrics.
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
}
