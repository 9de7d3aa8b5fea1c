package syslog

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/zbridge/zbridge/internal/leakcheck"
	"github.com/zbridge/zbridge/protocol"
)

// TestRealLogger has util-linux logger(1) send to the server over every
// transport and framing it offers. Without logger the test is skipped,
// unless ZBRIDGE_REQUIRE_PEERS=1, which makes it fail.
func TestRealLogger(t *testing.T) {
	path, err := exec.LookPath("logger")
	if err == nil {
		var help []byte
		help, err = exec.Command(path, "--help").CombinedOutput()
		if err == nil && !strings.Contains(string(help), "--octet-count") {
			err = exec.ErrNotFound // not util-linux's logger
		}
	}
	if err != nil {
		if os.Getenv("ZBRIDGE_REQUIRE_PEERS") == "1" {
			t.Fatalf("util-linux logger is required (ZBRIDGE_REQUIRE_PEERS=1): %v", err)
		}
		t.Skipf("util-linux logger not available (%v); set ZBRIDGE_REQUIRE_PEERS=1 to fail instead", err)
	}
	leakcheck.Check(t)
	// logger writes RFC 3164 timestamps in local time.
	ts := startServer(t, false, func(c *Config) { c.Location = time.Local })
	_, port, _ := net.SplitHostPort(ts.tcp)
	_, uport, _ := net.SplitHostPort(ts.udp)
	hostname, _ := os.Hostname()

	tests := []struct {
		name       string
		args       []string
		udp        bool
		host       string // "" means the machine's host name
		msgID      string
		fac        protocol.Facility
		sev        protocol.Severity
		timeFilled string
	}{
		{name: "tcp rfc5424 octet-count", args: []string{"--tcp", "--rfc5424", "--octet-count"}, fac: protocol.FacUser, sev: protocol.SevNotice},
		{name: "tcp rfc5424 lf", args: []string{"--tcp", "--rfc5424"}, fac: protocol.FacUser, sev: protocol.SevNotice},
		{name: "tcp rfc3164 octet-count", args: []string{"--tcp", "--rfc3164", "--octet-count"}, fac: protocol.FacUser, sev: protocol.SevNotice, timeFilled: "year,zone"},
		{name: "tcp rfc3164 lf", args: []string{"--tcp", "--rfc3164"}, fac: protocol.FacUser, sev: protocol.SevNotice, timeFilled: "year,zone"},
		{name: "udp rfc5424", args: []string{"--udp", "--rfc5424"}, udp: true, fac: protocol.FacUser, sev: protocol.SevNotice},
		{name: "udp rfc3164", args: []string{"--udp", "--rfc3164"}, udp: true, fac: protocol.FacUser, sev: protocol.SevNotice, timeFilled: "year,zone"},
		{name: "tcp rfc5424 structured data msgid priority", args: []string{"--tcp", "--rfc5424", "--octet-count",
			"--sd-id", "zb@32473", "--sd-param", `k="v w"`, "--msgid", "ID47", "-p", "local3.warning"},
			msgID: "ID47", fac: 19, sev: protocol.SevWarning},
		{name: "tcp rfc5424 notime nohost", args: []string{"--tcp", "--rfc5424=notime,nohost", "--octet-count"},
			host: "127.0.0.1", fac: protocol.FacUser, sev: protocol.SevNotice, timeFilled: "all"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := "zbridge logger test " + tt.name
			p := port
			if tt.udp {
				p = uport
			}
			args := append([]string{"--server", "127.0.0.1", "--port", p, "-t", "zbtest", "--id=4242"}, tt.args...)
			args = append(args, text)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if out, err := exec.CommandContext(ctx, path, args...).CombinedOutput(); err != nil {
				t.Fatalf("logger %s: %v\n%s", strings.Join(args, " "), err, out)
			}
			evs := ts.rec.wait(t, i+1)
			ev := evs[i]
			t.Logf("raw: %q", ev.Raw)
			if !ev.Parsed || ev.Text != text || ev.App != "zbtest" || ev.ProcID != "4242" || ev.MsgID != tt.msgID {
				t.Errorf("parsed=%v err=%q text=%q app=%q procid=%q msgid=%q", ev.Parsed, ev.ParseError, ev.Text, ev.App, ev.ProcID, ev.MsgID)
			}
			if ev.Facility != tt.fac || ev.Severity != tt.sev {
				t.Errorf("facility.severity = %v.%v, want %v.%v", ev.Facility, ev.Severity, tt.fac, tt.sev)
			}
			if tt.host != "" {
				if ev.Origin.Host != tt.host {
					t.Errorf("host = %q, want %q", ev.Origin.Host, tt.host)
				}
			} else if short, _, _ := strings.Cut(hostname, "."); ev.Origin.Host != hostname && ev.Origin.Host != short {
				t.Errorf("host = %q, want %q", ev.Origin.Host, hostname)
			}
			if ev.Origin.Addr != "127.0.0.1" || ev.TimeFilled != tt.timeFilled {
				t.Errorf("addr = %q, time filled = %q; want 127.0.0.1, %q", ev.Origin.Addr, ev.TimeFilled, tt.timeFilled)
			}
			if d := ev.Time.Sub(ev.Received); d < -time.Minute || d > time.Minute {
				t.Errorf("time %v is %v away from the receive time", ev.Time, d)
			}
		})
	}
}
