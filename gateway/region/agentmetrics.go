package region

import (
	"github.com/zbridge/zbridge/gateway/agentssh"
	"github.com/zbridge/zbridge/gateway/metrics"
)

// registerAgentMetrics registers the metrics of the SSH connections to
// Linux agents: the hosts in each state and the dials, paced by
// Config.AgentDials (a handshake storm shows as dial timeouts).
func (r *Region) registerAgentMetrics() {
	stats := func(f func(agentssh.Stats) float64) func() float64 {
		return func() float64 {
			if r.linux == nil {
				return 0
			}
			return f(r.linux.pool.Stats())
		}
	}
	reg := r.reg
	reg.Collect("zbridge_linux_agents", "Linux systems the region keeps an SSH connection to, by state: connecting, connected, down.",
		metrics.TypeGauge, []string{"state"}, func(emit func(float64, ...string)) {
			var st agentssh.Stats
			if r.linux != nil {
				st = r.linux.pool.Stats()
			}
			emit(float64(st.Connecting), agentssh.StateConnecting.String())
			emit(float64(st.Connected), agentssh.StateConnected.String())
			emit(float64(st.Down), agentssh.StateDown.String())
		})
	reg.NewCounterFunc("zbridge_agent_dials_total", "SSH connection attempts to Linux systems (TCP connect and handshake).",
		stats(func(s agentssh.Stats) float64 { return float64(s.Dials) }))
	reg.NewCounterFunc("zbridge_agent_dial_failures_total",
		"SSH connection attempts to Linux systems that failed (connect, handshake or host key), timeouts included.",
		stats(func(s agentssh.Stats) float64 { return float64(s.DialFailures) }))
	reg.NewCounterFunc("zbridge_agent_dial_timeouts_total",
		"SSH connection attempts to Linux systems that ran past the dial timeout.",
		stats(func(s agentssh.Stats) float64 { return float64(s.DialTimeouts) }))
	reg.NewCounterFunc("zbridge_agent_keepalives_total",
		"SSH keepalives sent to Linux systems (to a connection silent for --agent-keepalive, an idle one every other interval; to half of them at their first check).",
		stats(func(s agentssh.Stats) float64 { return float64(s.KeepAlives) }))
	reg.NewGaugeFunc("zbridge_agent_dials_in_progress", "SSH connection attempts to Linux systems under way (at most the dial limit).",
		stats(func(s agentssh.Stats) float64 { return float64(s.DialsInProgress) }))
	reg.NewGaugeFunc("zbridge_agent_dials_waiting", "Linux systems waiting for a turn to dial.",
		stats(func(s agentssh.Stats) float64 { return float64(s.DialsWaiting) }))
}
