//go:build !lean

package main

// End-to-end tests of the z/VM side: `zbridge zvmsim` (a simulated z/VM
// console over TN3270) ← `zbridge vmagent` → region VMMON, with
// `zbridge cmd zvm:…` and `zbridge tail` as the clients.

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zbridge/zbridge/internal/peer"
	"github.com/zbridge/zbridge/protocol"
)

// zvmEnv is a simulator and an agent for system VMSYS1.
type zvmEnv struct {
	sim, spool, pwFile string
}

func startZVMSim(t *testing.T) *zvmEnv {
	t.Helper()
	dir := t.TempDir()
	e := &zvmEnv{sim: peer.Addr(peer.FreePort(t)), spool: filepath.Join(dir, "spool"), pwFile: filepath.Join(dir, "pw")}
	os.WriteFile(e.pwFile, []byte("zvmpass1\n"), 0o600)
	peer.Start(t, peer.Command{Name: "zvmsim", Path: zbridgeBin, Args: []string{"zvmsim", "--listen", e.sim,
		"--system", "VMSYS1", "--password-file", e.pwFile, "--more-delay", "2s"}, Ready: peer.TCPReady(e.sim)})
	return e
}

func (e *zvmEnv) startAgent(t *testing.T, vmmon string) *peer.Process {
	t.Helper()
	return peer.Start(t, peer.Command{Name: "vmagent", Path: zbridgeBin, Args: []string{"vmagent", "--vmmon", vmmon,
		"--system", "VMSYS1", "--tn3270", e.sim, "--user", "OPERATOR", "--password-file", e.pwFile,
		"--spool", e.spool, "--log-level", "debug", "--names-interval", "500ms"}})
}

func TestZVMFlow(t *testing.T) {
	e2e(t)
	e := startZVMSim(t)
	r := startRegion(t)
	agent := e.startAgent(t, r.vmmon)
	waitZVM(t, r)

	t.Run("QueryTime", func(t *testing.T) {
		res := runCmdProc(t, r, "zvm:VMSYS1", "--", "QUERY", "TIME")
		if res.code != 0 || !strings.Contains(res.stdout, "TIME IS") {
			t.Fatalf("exit %d stdout %q stderr %q", res.code, res.stdout, res.stderr)
		}
	})
	t.Run("LongOutputAcrossMoreScreens", func(t *testing.T) {
		res := runCmdProc(t, r, "zvm:VMSYS1", "--", "LONGOUT", "60")
		lines := strings.Split(strings.TrimRight(res.stdout, "\n"), "\n")
		if res.code != 0 || len(lines) != 60 {
			t.Fatalf("exit %d, %d lines (want 60): %q", res.code, len(lines), res.stdout)
		}
		for i := 1; i < len(lines); i++ {
			if lines[i] == lines[i-1] {
				t.Fatalf("line %d repeats: %q", i, lines[i])
			}
		}
	})
	t.Run("CPErrorIsNonZero", func(t *testing.T) {
		res := runCmdProc(t, r, "zvm:VMSYS1", "--", "NOSUCHCMD")
		if res.code == 0 || !strings.Contains(res.stdout, "HCPCMD001E") {
			t.Fatalf("exit %d stdout %q", res.code, res.stdout)
		}
	})
	t.Run("MessageReachesSubscriberOnce", func(t *testing.T) {
		tp := startTail(t, "--unsolmsg", r.unsolmsg, "--after", "0", "--format", "json",
			"--filter", "source=zvm-console", "--timeout", "60s")
		res := runCmdProc(t, r, "zvm:VMSYS1", "--", "MSG", "*", "hello from the e2e test")
		if res.code != 0 {
			t.Fatalf("MSG: exit %d %q", res.code, res.stderr)
		}
		deadline := time.Now().Add(30 * time.Second)
		for !strings.Contains(tp.stdout.String(), "hello from the e2e test") && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		time.Sleep(time.Second) // a duplicate would come right behind
		tp.cmd.Process.Signal(syscall.SIGINT)
		tp.wait(t, 30*time.Second)
		n := 0
		for _, ev := range tp.events(t) {
			if strings.Contains(ev.Text, "hello from the e2e test") {
				n++
				if ev.Type != "MSG" || ev.User != "OPERATOR" || ev.Origin.System != "VMSYS1" || ev.Source != protocol.SourceZVMConsole {
					t.Errorf("MSG event: %+v", ev)
				}
			}
		}
		if n != 1 {
			t.Fatalf("the message arrived %d times, want once:\n%s", n, tp.stdout.String())
		}
	})
	t.Run("GuestLogonAndLogoffOnce", func(t *testing.T) {
		// XAUTOLOG and FORCE are announced on the console; the QUERY NAMES
		// poll (every 500 ms here) sees the same changes and must not
		// report them again.
		tp := startTail(t, "--unsolmsg", r.unsolmsg, "--after", "0", "--format", "json",
			"--filter", "source=zvm-event", "--timeout", "60s")
		for _, c := range [][]string{{"XAUTOLOG", "LINUX02"}, {"FORCE", "LINUX02"}} {
			if res := runCmdProc(t, r, append([]string{"zvm:VMSYS1", "--"}, c...)...); res.code != 0 {
				t.Fatalf("%v: exit %d %q %q", c, res.code, res.stdout, res.stderr)
			}
			time.Sleep(2 * time.Second) // several polls
		}
		tp.cmd.Process.Signal(syscall.SIGINT)
		tp.wait(t, 30*time.Second)
		seen := map[string]int{}
		for _, ev := range tp.events(t) {
			if ev.User == "LINUX02" {
				seen[ev.Type]++
			}
		}
		if seen["LOGON"] != 1 || seen["LOGOFF"] != 1 {
			t.Fatalf("LINUX02 events %v, want one LOGON and one LOGOFF:\n%s", seen, tp.stdout.String())
		}
	})
	t.Run("SecondAgentRefused", func(t *testing.T) {
		p := peer.Start(t, peer.Command{Name: "vmagent2", Path: zbridgeBin, Args: []string{"vmagent", "--vmmon", r.vmmon,
			"--system", "VMSYS1", "--tn3270", e.sim, "--user", "MAINT", "--password-file", e.pwFile,
			"--spool", t.TempDir()}})
		deadline := time.Now().Add(30 * time.Second)
		for !strings.Contains(p.Log(), "in-use") && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		if !strings.Contains(p.Log(), "in-use") {
			t.Fatalf("a second agent for VMSYS1 was not refused in-use:\n%s", p.Log())
		}
	})
	_ = agent
}

// waitZVM waits until a CP command through the region answers.
func waitZVM(t *testing.T, r *testRegion) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var last cmdResult
	for time.Now().Before(deadline) {
		last = runCmdProc(t, r, "zvm:VMSYS1", "--", "QUERY", "TIME")
		if last.code == 0 {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("zvm:VMSYS1 never answered: exit %d, %s %s", last.code, last.stdout, last.stderr)
}

// sendMessages logs MAINT on to the simulator with the real s3270 and sends
// OPERATOR the messages, one CP MSG each.
func sendMessages(t *testing.T, e *zvmEnv, texts []string) {
	t.Helper()
	s3270 := peer.Require(t, "s3270")
	script := []string{"Connect(" + e.sim + ")", "Wait(15,InputField)", `String("MAINT")`, "Tab()",
		`String("zvmpass1")`, "Enter()", "Wait(15,Unlock)"}
	for _, m := range texts {
		script = append(script, `String("MSG OPERATOR `+m+`")`, "Enter()", "Wait(15,Unlock)")
	}
	script = append(script, `String("LOGOFF")`, "Enter()", "Wait(5,Unlock)", "Disconnect()", "Quit()")
	c := exec.Command(s3270, "-model", "3278-2")
	c.Stdin = strings.NewReader(strings.Join(script, "\n") + "\n")
	if out, err := runOutput(t, c); err != nil {
		t.Fatalf("s3270: %v\n%s", err, out)
	}
}

func runOutput(t *testing.T, c *exec.Cmd) ([]byte, error) {
	t.Helper()
	var b bytes.Buffer
	c.Stdout, c.Stderr = &b, &b
	err := runWithin(t, c, 120*time.Second)
	return b.Bytes(), err
}

// TestZVMSpoolAcrossRegionRestart: the region, on the default embedded
// store kept on disk, is killed while console messages keep arriving; a
// region started on the same VMMON address and data directory has every
// one of them, those stored before the kill and those from the agent's
// spool, once and in order.
func TestZVMSpoolAcrossRegionRestart(t *testing.T) {
	e2e(t)
	e := startZVMSim(t)
	dir := t.TempDir()
	a := startRegion(t, "--data-dir", dir)
	e.startAgent(t, a.vmmon)
	waitZVM(t, a)
	msg := func(from, to int) []string {
		var m []string
		for i := from; i < to; i++ {
			m = append(m, fmt.Sprintf("spooltest line %03d", i))
		}
		return m
	}
	count := func(evs []protocol.Event) []string {
		var got []string
		for _, ev := range evs {
			if strings.Contains(ev.Text, "spooltest line") {
				got = append(got, ev.Text[strings.Index(ev.Text, "spooltest line"):])
			}
		}
		return got
	}
	// collect subscribes to a region and returns the test's lines once n
	// have come (and a second more, for any duplicate right behind).
	collect := func(r *testRegion, n int) []string {
		tp := startTail(t, "--unsolmsg", r.unsolmsg, "--after", "0", "--format", "json", "--timeout", "90s", "--filter", "source=zvm-console")
		deadline := time.Now().Add(60 * time.Second)
		for len(count(tp.events(t))) < n && time.Now().Before(deadline) {
			time.Sleep(200 * time.Millisecond)
		}
		time.Sleep(time.Second)
		tp.cmd.Process.Signal(syscall.SIGINT)
		tp.wait(t, 30*time.Second)
		return count(tp.events(t))
	}
	sendMessages(t, e, msg(0, 10))
	before := collect(a, 10)
	a.Kill() // SIGKILL: no drain
	<-a.Done()
	sendMessages(t, e, msg(10, 40)) // while the region is away: into the spool
	b := startRegion(t, "--vmmon", a.vmmon, "--data-dir", dir)
	all := collect(b, 40)
	want := msg(0, 40)
	if fmt.Sprint(before) != fmt.Sprint(want[:10]) {
		t.Fatalf("console lines before the kill:\n got %d %q\nwant %q", len(before), before, want[:10])
	}
	if fmt.Sprint(all) != fmt.Sprint(want) {
		t.Fatalf("console lines after the restart on the same data directory:\n got %d %q\nwant %d %q", len(all), all, len(want), want)
	}
}
