//go:build !lean

package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zbridge/zbridge/gateway/auth"
	"github.com/zbridge/zbridge/internal/peer"
)

// consoleEnv is a region named ZBR1 with its 3270 console, a z/VM
// simulator with its agent, and a Linux agent lx1, with clients and roles:
// the operator "op" may use the console, see every event, echo on lx1,
// QUERY on VMSYS1 and SERVERS and AGENTS on the region.
type consoleEnv struct {
	r       *testRegion
	console string
	udp     bool // logger sends over UDP (SYSLOG over TCP is TLS)
}

// log sends text to SYSLOG with logger.
func (e *consoleEnv) log(t *testing.T, text string) {
	t.Helper()
	if !e.udp {
		peer.RunLogger(t, e.r.syslog, "--tag", "e2etest", text)
		return
	}
	host, port, _ := net.SplitHostPort(e.r.syslog)
	c := exec.Command(peer.Require(t, "logger"), "--server", host, "--port", port, "--udp", "--rfc5424",
		"--tag", "e2etest", text)
	if out, err := runOutput(t, c); err != nil {
		t.Fatalf("logger: %v\n%s", err, out)
	}
}

func startConsoleEnv(t *testing.T, tlsArgs ...string) *consoleEnv {
	t.Helper()
	z := startZVMSim(t)
	a := newAgentEnv(t)
	lx1 := a.startAgent(t, "lx1", zbridgeBin, "")
	hash, err := auth.Hash("op-secret")
	if err != nil {
		t.Fatal(err)
	}
	agentHash, err := auth.Hash("agent-secret")
	if err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(a.dir, "zbridge.toml")
	if err := os.WriteFile(config, []byte(`
[[client]]
name = "op"
secret-hash = "`+hash+`"
roles = ["operator"]
[[client]]
name = "VMSYS1"
secret-hash = "`+agentHash+`"
roles = ["agent"]
[[role]]
name = "agent"
vmmon = ["VMSYS1"]
[[role]]
name = "operator"
ports = ["console"]
events = ["origin=*"]
  [[role.target]]
  pattern = "linux:lx1"
  commands = ["echo **"]
  [[role.target]]
  pattern = "zvm:VMSYS1"
  commands = ["QUERY **"]
  [[role.target]]
  pattern = "region"
  commands = ["SERVERS", "AGENTS"]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	agentSecret := filepath.Join(a.dir, "agent.secret")
	if err := os.WriteFile(agentSecret, []byte("agent-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := &consoleEnv{console: peer.Addr(peer.FreePort(t))}
	args := a.regionArgs("--name", "ZBR1", "--config", config, "--console", e.console, "--linux", "lx1="+lx1)
	e.r = startRegion(t, append(args, tlsArgs...)...)
	peer.WaitTCP(t, e.console, 60*time.Second)
	agentArgs := []string{"vmagent", "--vmmon", e.r.vmmon, "--system", "VMSYS1", "--secret-file", agentSecret,
		"--tn3270", z.sim, "--user", "OPERATOR", "--password-file", z.pwFile, "--spool", z.spool}
	if i := slices.Index(tlsArgs, "--tls-cert"); i >= 0 {
		agentArgs = append(agentArgs, "--vmmon-tls", "--vmmon-ca", tlsArgs[i+1])
	}
	peer.Start(t, peer.Command{Name: "vmagent", Path: zbridgeBin, Args: agentArgs})
	return e
}

// logOn connects s3270 to the console (L: for TLS) and logs on as op,
// after one refused try with a wrong secret.
func logOn(t *testing.T, s *peer.S3270, host string) {
	t.Helper()
	s.Must("Connect(" + host + ")")
	s.WaitText(60*time.Second, "CLIENT ===>")
	s.Must(`String("op")`)
	s.Must("Tab()")
	s.Must(`String("wrong-secret")`)
	s.Must("Enter()")
	rows := s.WaitText(60*time.Second, "ZBR314E LOGON REFUSED")
	if screen := strings.Join(rows, "\n"); strings.Contains(screen, "wrong-secret") {
		t.Fatalf("the logon panel shows the secret:\n%s", screen)
	}
	s.Must("EraseEOF()") // the cursor is on the secret field, the client's name kept
	s.Must(`String("op-secret")`)
	s.Must("Enter()")
	s.WaitText(60*time.Second, "COMMAND ===>")
}

// consoleCommand types line on the command line and waits for what ends its
// answer (ZBR310I or ZBR311E); it returns the screen then.
func consoleCommand(t *testing.T, s *peer.S3270, line, end string) []string {
	t.Helper()
	s.Must(`String("` + line + `")`)
	s.Must("Enter()")
	return s.WaitScreen(90*time.Second, fmt.Sprintf("%s after %q", end, line), func(rows []string) bool {
		echo := -1
		for i, r := range rows {
			if strings.Contains(r, "==> "+line) {
				echo = i
			}
			if echo >= 0 && i > echo && strings.Contains(r, end) {
				return true
			}
		}
		return false
	})
}

// rowsAfter returns the screen's rows after the last echo of line, up to
// the status line.
func rowsAfter(rows []string, line string) []string {
	echo := -1
	for i, r := range rows {
		if strings.Contains(r, "==> "+line) {
			echo = i
		}
	}
	if echo < 0 {
		return nil
	}
	return rows[echo+1:]
}

func hasRow(rows []string, re string) bool {
	m := regexp.MustCompile(re)
	for _, r := range rows {
		if m.MatchString(r) {
			return true
		}
	}
	return false
}

// TestConsole drives the region's 3270 console with s3270, the real
// terminal: the logon (a wrong secret refused, without showing it), a
// syslog message sent with logger in the log area, a Linux command and a
// CP command with their output and rc, F ZBR1,SERVERS answered with the
// ID'd server list, a refused command with its reason, PF7/PF8 holding
// and resuming the log, and PF3.
func TestConsole(t *testing.T) {
	e2e(t)
	e := startConsoleEnv(t)
	s := peer.StartS3270(t, "-model", "3278-2")
	logOn(t, s, e.console)
	consoleFlow(t, e, s)
}

// TestConsoleTLS is TestConsole with the region's certificate: the
// console speaks TLS as every other listener does (s3270 checks the
// certificate). SYSLOG over TCP is TLS then too, which logger cannot
// speak: its messages go over UDP.
func TestConsoleTLS(t *testing.T) {
	e2e(t)
	cert := newTLSFiles(t, "localhost")
	e := startConsoleEnv(t, "--tls-cert", cert.cert, "--tls-key", cert.key)
	e.udp = true
	s := peer.StartS3270(t, "-model", "3278-2", "-cafile", cert.ca, "-accepthostname", "localhost")
	logOn(t, s, "L:"+e.console)
	consoleFlow(t, e, s)
}

func consoleFlow(t *testing.T, e *consoleEnv, s *peer.S3270) {
	t.Helper()
	// The log area: the region's own messages, then a syslog message.
	s.WaitScreen(60*time.Second, "ZBR301I", func(rows []string) bool {
		return hasRow(rows, `ZBR301I\s+CONSOLE LOGON BY op FROM 127\.0\.0\.1:`)
	})
	e.log(t, "hello from logger on the console")
	rows := s.WaitText(60*time.Second, "hello from logger on the console")
	if !hasRow(rows, `^\d\d:\d\d:\d\d \S+\s+.*hello from logger on the console`) {
		t.Errorf("the syslog message's row lacks its time and origin:\n%s", strings.Join(rows, "\n"))
	}

	// A Linux command: its output and rc 0 under it.
	rows = consoleCommand(t, s, "linux:lx1 echo hi", "ZBR31")
	after := rowsAfter(rows, "linux:lx1 echo hi")
	if !hasRow(after, `\bhi\s*$`) || !hasRow(after, `ZBR310I COMMAND \S+ ENDED RC=0`) {
		t.Fatalf("linux:lx1 echo hi: no hi and rc 0 under it:\n%s", strings.Join(rows, "\n"))
	}

	// A CP command on the simulator (the agent may still be logging on:
	// not-connected is retried).
	deadline := time.Now().Add(90 * time.Second)
	for {
		rows = consoleCommand(t, s, "zvm:VMSYS1 QUERY TIME", "ZBR31")
		after = rowsAfter(rows, "zvm:VMSYS1 QUERY TIME")
		if hasRow(after, `ZBR310I COMMAND \S+ ENDED RC=0`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("zvm:VMSYS1 QUERY TIME never ran:\n%s", strings.Join(rows, "\n"))
		}
		time.Sleep(time.Second)
	}
	if !hasRow(after, `TIME IS \d\d:\d\d:\d\d`) {
		t.Fatalf("QUERY TIME: no time line:\n%s", strings.Join(rows, "\n"))
	}

	// F ZBR1,SERVERS: the ID'd server list.
	rows = consoleCommand(t, s, "F ZBR1,SERVERS", "ZBR31")
	after = rowsAfter(rows, "F ZBR1,SERVERS")
	for _, re := range []string{`ZBR010I REGION ZBR1 SERVERS`, `SYSLOG\s+127\.0\.0\.1:`, `CONSOLE\s+127\.0\.0\.1:\d+\s+1 operators`,
		`ZBR310I COMMAND \S+ ENDED RC=0`} {
		if !hasRow(after, re) {
			t.Errorf("F ZBR1,SERVERS: no row matching %s:\n%s", re, strings.Join(rows, "\n"))
		}
	}

	t.Logf("the console after F ZBR1,SERVERS:\n%s", strings.Join(rows, "\n"))

	// A command the role does not grant: refused, with the reason.
	rows = consoleCommand(t, s, "linux:lx1 cat /etc/shadow", "ZBR311E")
	if !hasRow(rowsAfter(rows, "linux:lx1 cat /etc/shadow"), `ZBR311E COMMAND NOT RUN: not-permitted: client op may not run`) {
		t.Errorf("the refusal does not say why:\n%s", strings.Join(rows, "\n"))
	}

	// PF7 holds the log; new events do not move it but are counted; PF8
	// back to the bottom resumes it and shows them.
	s.Must("PF(7)")
	s.WaitText(30*time.Second, "HELD")
	for i := range 3 {
		e.log(t, fmt.Sprintf("while held %d", i))
	}
	rows = s.WaitText(60*time.Second, "MORE +")
	if hasRow(rows, "while held") {
		t.Errorf("a held log area moved to show new events:\n%s", strings.Join(rows, "\n"))
	}
	for range 20 {
		s.Must("PF(8)")
		if rows = s.Screen(); hasRow(rows, "LIVE") {
			break
		}
	}
	rows = s.WaitText(30*time.Second, "while held 2")
	if !hasRow(rows, "while held 0") || !hasRow(rows, "LIVE") {
		t.Errorf("after PF8 the log is not live with the new events:\n%s", strings.Join(rows, "\n"))
	}

	// PF3 ends the session: the region says so.
	s.Must("PF(3)")
	waitLog(t, e.r, "ZBR302I CONSOLE LOGOFF BY op")
}

// waitLog waits until the region's log has text.
func waitLog(t *testing.T, r *testRegion, text string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(r.Log(), text) {
		if time.Now().After(deadline) {
			t.Fatalf("the region never logged %q", text)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
