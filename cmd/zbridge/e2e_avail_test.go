//go:build !lean

package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zbridge/zbridge/internal/peer"
	"github.com/zbridge/zbridge/protocol"
)

// availConfig is the region config of TestAvailability: a rule on z/VM
// guest events, rules on a syslog message, a heartbeat on the Linux
// agent's link and a probe of a process on that system.
const availConfig = `
[[availability.rule]]
name = "guest-logon"
events = "source=zvm-event,type=LOGON"
component = "{system}/{user}"
status = "UP"
[[availability.rule]]
name = "guest-logoff"
events = "source=zvm-event,type=LOGOFF"
component = "{system}/{user}"
status = "DOWN"
[[availability.rule]]
name = "svc-started"
events = "source=syslog,app=e2eavail"
text = 'service (?P<svc>\S+) started'
component = "{host}.{svc}"
status = "UP"
change = "SVCUP"
[[availability.rule]]
name = "svc-stopped"
events = "source=syslog,app=e2eavail"
text = 'service (?P<svc>\S+) stopped'
component = "{host}.{svc}"
status = "DOWN"
change = "SVCDOWN"
[[availability.rule]]
name = "sysplex-join"
events = "msgid=IXC418I"
text = 'SYSTEM (?P<sys>\S+) IS NOW ACTIVE'
component = "{sys}"
status = "UP"
[[availability.heartbeat]]
name = "lx1-link"
agent = "linux:lx1"
component = "lx1.agent"
interval = "8s"
[[availability.probe]]
name = "target-process"
target = "linux:lx1"
command = "pgrep -f zbridge-probe-target"
component = "lx1.probe-target"
interval = "1s"
timeout = "5s"
`

// TestAvailability runs the availability ledger against real peers: the
// z/VM simulator's XAUTOLOG and FORCE of a guest, a logger line matching
// a rule, the Linux agent stopped for longer than its heartbeat interval
// and started again, and a probe whose process is killed and started
// again. Each yields its UP/DOWN records, in order, across a restart of
// the region (the records are on disk with the events); zbridge report
// over the window gives the figures this test computes from the records
// itself.
func TestAvailability(t *testing.T) {
	e2e(t)
	start := time.Now().UTC()
	z := startZVMSim(t)
	a := newAgentEnv(t)
	lxAddr := peer.Addr(peer.FreePort(t))
	lxArgs := []string{"linuxagent", "--listen", lxAddr, "--authorized-keys", a.authorizedKeys,
		"--host-key", filepath.Join(a.dir, "lx1_host_key"), "--name", "lx1"}
	if os.Geteuid() == 0 {
		lxArgs = append(lxArgs, "--allow-root")
	}
	lx := peer.Start(t, peer.Command{Name: "linuxagent-lx1", Path: zbridgeBin, Args: lxArgs, Ready: peer.TCPReady(lxAddr)})
	config := filepath.Join(a.dir, "zbridge.toml")
	if err := os.WriteFile(config, []byte(availConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	r := startRegion(t, a.regionArgs("--config", config, "--linux", "lx1="+lxAddr)...)
	z.startAgent(t, r.vmmon)
	waitZVM(t, r)
	waitConnected(t, r, "linux:lx1")

	// The probe's process, a copy of sleep with a name of its own.
	bin := filepath.Join(t.TempDir(), "zbridge-probe-target")
	copyFile(t, "/bin/sleep", bin)
	var target *exec.Cmd
	startTarget := func() {
		target = exec.Command(bin, "600")
		if err := target.Start(); err != nil {
			t.Fatal(err)
		}
	}
	stopTarget := func() { target.Process.Kill(); target.Wait() }
	startTarget()
	t.Cleanup(func() { stopTarget() })

	want := []string{"lx1.agent UP heartbeat", "lx1.probe-target UP probe-ok"}
	waitAvail(t, r, want...)

	// A guest logs on and is forced off.
	for _, c := range [][]string{{"XAUTOLOG", "LINUX02"}, {"FORCE", "LINUX02"}} {
		if res := runCmdProc(t, r, append([]string{"zvm:VMSYS1", "--"}, c...)...); res.code != 0 {
			t.Fatalf("%v: exit %d %q %q", c, res.code, res.stdout, res.stderr)
		}
	}
	want = append(want, "VMSYS1/LINUX02 UP LOGON", "VMSYS1/LINUX02 DOWN LOGOFF")
	waitAvail(t, r, want...)

	// A service's messages, sent with logger.
	peer.RunLogger(t, r.syslog, "--tag", "e2eavail", "service web started")
	want = append(want, hostName(t)+".web UP SVCUP")
	waitAvail(t, r, want...)

	// A z/OS hardcopy log line, as z/OS syslogd forwards it: the region
	// reads its message ID, and the rule on it applies.
	peer.RunLogger(t, r.syslog, "--tag", "SYSLOG",
		"N 0000000 SYSA     26340 10:00:00.00          00000290  IXC418I SYSTEM SYSA IS NOW ACTIVE IN SYSPLEX PLEX1")
	want = append(want, "SYSA UP IXC418I")
	waitAvail(t, r, want...)

	// The region restarts: the records are kept, and the ledger goes on.
	r.Restart()
	waitAvail(t, r, want...)
	peer.RunLogger(t, r.syslog, "--tag", "e2eavail", "service web stopped")
	want = append(want, hostName(t)+".web DOWN SVCDOWN")
	waitAvail(t, r, want...)

	// The probe's process killed, then started again.
	stopTarget()
	want = append(want, "lx1.probe-target DOWN probe-failed")
	waitAvail(t, r, want...)
	startTarget()
	want = append(want, "lx1.probe-target UP probe-ok")
	waitAvail(t, r, want...)

	// The Linux agent stopped for longer than its heartbeat interval, and
	// started again. The probe cannot run meanwhile, which says nothing
	// about the process: its component keeps its status.
	lx.Stop()
	want = append(want, "lx1.agent DOWN heartbeat-lost")
	waitAvail(t, r, want...)
	lx.Restart()
	want = append(want, "lx1.agent UP heartbeat")
	recs := waitAvail(t, r, want...)
	end := time.Now().UTC() // before the report runs: its own now does not cut the period

	// The report over the window, against the figures computed here.
	res := runReportProc(t, r, "--from", start.Format(time.RFC3339Nano), "--to", end.Format(time.RFC3339Nano), "--format", "csv")
	rows, err := csv.NewReader(strings.NewReader(res)).ReadAll()
	if err != nil || len(rows) < 2 {
		t.Fatalf("report CSV: %v\n%s", err, res)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	for _, h := range []string{"component", "availability_pct", "outages", "down_s"} {
		if _, ok := col[h]; !ok {
			t.Fatalf("the report CSV has no column %q: %q", h, rows[0])
		}
	}
	got := map[string][]string{}
	for _, row := range rows[1:] {
		got[row[col["component"]]] = row
	}
	for comp, w := range expectedFigures(recs, start, end) {
		row, ok := got[comp]
		if !ok {
			t.Errorf("the report lacks %s:\n%s", comp, res)
			continue
		}
		pct, _ := strconv.ParseFloat(row[col["availability_pct"]], 64)
		outages, _ := strconv.Atoi(row[col["outages"]])
		down, _ := strconv.ParseFloat(row[col["down_s"]], 64)
		if outages != w.outages || abs(down-w.down.Seconds()) > 0.01 || abs(pct-w.pct) > 0.01 {
			t.Errorf("%s: report %.4f%%, %d outages, %.3fs down; computed here %.4f%%, %d outages, %.3fs down",
				comp, pct, outages, down, w.pct, w.outages, w.down.Seconds())
		}
	}
	text := runReportProc(t, r, "--from", start.Format(time.RFC3339Nano), "--to", end.Format(time.RFC3339Nano))
	t.Logf("report:\n%s", text)
	if dir := os.Getenv("ZBRIDGE_REPORT_SAMPLE"); dir != "" {
		// The README's sample report and picture come from here
		// (tools/reportshot/shot.sh).
		html := runReportProc(t, r, "--from", start.Format(time.RFC3339Nano), "--to", end.Format(time.RFC3339Nano), "--format", "html")
		for name, b := range map[string]string{"report.txt": text, "report.html": html, "config.toml": availConfig} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(b), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestReadmeQuotesAvailConfig: the README's availability section quotes the
// config of TestAvailability exactly; the sample report beneath it is the
// one this test writes with ZBRIDGE_REPORT_SAMPLE (tools/reportshot).
func TestReadmeQuotesAvailConfig(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "```toml"+availConfig+"```\n") {
		t.Error("README does not quote availConfig (cmd/zbridge/e2e_avail_test.go) exactly")
	}
}

func abs(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

// hostName is the host name logger puts in its messages.
func hostName(t *testing.T) string {
	t.Helper()
	h, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// figures are a component's availability over a window.
type figures struct {
	pct     float64
	outages int
	down    time.Duration
}

// expectedFigures computes each component's availability over [from, to)
// from its records, independently of package report: monitored from its
// first record, or from `from` when that record is older; an outage from
// each DOWN to the next UP (or to). (No outage of this test begins before
// `from`.)
func expectedFigures(recs []protocol.StatusRecord, from, to time.Time) map[string]figures {
	type comp struct {
		first, downSince time.Time
		down             time.Duration
		outages          int
		isDown           bool
	}
	cs := map[string]*comp{}
	for _, r := range recs { // in order: the test's records are in time order
		c := cs[r.Component]
		if c == nil {
			c = &comp{first: r.Time}
			cs[r.Component] = c
		}
		switch {
		case r.Status == protocol.StatusDown && !c.isDown:
			c.isDown, c.downSince = true, r.Time
			c.outages++
		case r.Status == protocol.StatusUp && c.isDown:
			c.isDown = false
			c.down += r.Time.Sub(c.downSince)
		}
	}
	out := map[string]figures{}
	for name, c := range cs {
		if c.isDown {
			c.down += to.Sub(c.downSince)
		}
		if c.first.Before(from) {
			c.first = from
		}
		monitored := to.Sub(c.first)
		out[name] = figures{pct: 100 * float64(monitored-c.down) / float64(monitored), outages: c.outages, down: c.down}
	}
	return out
}

// runReportProc runs zbridge report against r and returns its output.
func runReportProc(t *testing.T, r *testRegion, args ...string) string {
	t.Helper()
	c := exec.Command(zbridgeBin, append([]string{"report", "--commands", r.commands}, args...)...)
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	if err := runWithin(t, c, 120*time.Second); err != nil {
		t.Fatalf("zbridge report: %v\n%s", err, errb.String())
	}
	return out.String()
}

// availRecords reads the region's status records with AVAIL RECORDS.
func availRecords(t *testing.T, r *testRegion) []protocol.StatusRecord {
	t.Helper()
	res := runCmdProc(t, r, "region", "--", "AVAIL", "RECORDS", "AFTER", "0", "MAX", "1000")
	if res.code != 0 {
		t.Fatalf("AVAIL RECORDS: exit %d %s %s", res.code, res.stdout, res.stderr)
	}
	lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
	var recs []protocol.StatusRecord
	for _, l := range lines[1:] {
		var rec protocol.StatusRecord
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("AVAIL RECORDS line %q: %v", l, err)
		}
		recs = append(recs, rec)
	}
	return recs
}

func describe(recs []protocol.StatusRecord) []string {
	var out []string
	for _, r := range recs {
		out = append(out, fmt.Sprintf("%s %s %s", r.Component, r.Status, r.Change))
	}
	return out
}

// waitAvail waits until the region's records are want, in order.
func waitAvail(t *testing.T, r *testRegion, want ...string) []protocol.StatusRecord {
	t.Helper()
	return waitAvailMatch(t, r, want, func(got []string) bool { return strings.Join(got, "\n") == strings.Join(want, "\n") })
}

func waitAvailMatch(t *testing.T, r *testRegion, want []string, ok func([]string) bool) []protocol.StatusRecord {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		recs := availRecords(t, r)
		got := describe(recs)
		if ok(got) {
			return recs
		}
		if time.Now().After(deadline) {
			t.Fatalf("status records:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		time.Sleep(300 * time.Millisecond)
	}
}
