//go:build !lean

package main

// End-to-end tests of the trust boundary: a region started with the
// example config file (testdata/config/zbridge.toml), real Linux agents, the
// z/VM simulator and agent, and `zbridge cmd` / `zbridge tail` as clients.

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zbridge/zbridge/gateway/auth"
	"github.com/zbridge/zbridge/internal/peer"
	"github.com/zbridge/zbridge/protocol"
	"github.com/zbridge/zbridge/protocol/client"
)

// exampleConfig copies the example config file into dir (mode 0600, as a
// site keeps it) and returns its path.
func exampleConfig(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile("../../testdata/config/zbridge.toml")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "zbridge.toml")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// rewrite replaces old by new in the file at path (which must hold old).
func rewrite(t *testing.T, path, old, new string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("%s does not hold %q", path, old)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(b), old, new, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
}

// secretFile writes a client's example secret to a file of its own.
func secretFile(t *testing.T, dir, client string) string {
	t.Helper()
	path := filepath.Join(dir, client+".secret")
	if err := os.WriteFile(path, []byte(client+"-example-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// auditLine is the part of an audit record the test looks at.
type auditLine struct {
	Kind, Phase, Client, Target, Command, Outcome, Code, Message, Rule string
	RC                                                                 *int
}

func readAudit(t *testing.T, path string) []auditLine {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []auditLine
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l auditLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		out = append(out, l)
	}
	return out
}

// findAudit returns the last end record of the command line sent by client.
func findAudit(lines []auditLine, client, target, command string) (auditLine, bool) {
	// The last: the test retries a command until its target is up, and
	// the attempts before are audited too (unknown-target).
	for i := len(lines) - 1; i >= 0; i-- {
		l := lines[i]
		if l.Kind == "command" && l.Phase == "end" && l.Client == client && l.Target == target && l.Command == command {
			return l, true
		}
	}
	return auditLine{}, false
}

func TestAuthorizationEndToEnd(t *testing.T) {
	e2e(t)
	e := newAgentEnv(t)
	web1 := e.startAgent(t, "web1", zbridgeBin, "")
	db1 := e.startAgent(t, "db1", zbridgeBin, "")
	config := exampleConfig(t, e.dir)
	auditLog := filepath.Join(e.dir, "audit.log")
	r := startRegion(t, e.regionArgs("--config", config, "--audit-log", auditLog,
		"--linux", "web1="+web1, "--linux", "db1="+db1)...)

	z := startZVMSim(t)
	peer.Start(t, peer.Command{Name: "vmagent", Path: zbridgeBin, Args: []string{"vmagent", "--vmmon", r.vmmon,
		"--system", "VMSYS1", "--secret-file", secretFile(t, e.dir, "VMSYS1"), "--tn3270", z.sim, "--user", "OPERATOR",
		"--password-file", z.pwFile, "--spool", z.spool, "--log-level", "debug"}})

	webops := []string{"--client", "webops", "--secret-file", secretFile(t, e.dir, "webops")}
	admin := []string{"--client", "admin", "--secret-file", secretFile(t, e.dir, "admin")}
	as := func(who []string, args ...string) cmdResult {
		t.Helper()
		return runCmdProc(t, r, append(append([]string{}, who...), args...)...)
	}
	// The agents and the z/VM agent are up.
	waitUntilOK := func(what string, f func() cmdResult) {
		t.Helper()
		var last cmdResult
		for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
			if last = f(); last.code == 0 {
				return
			}
		}
		t.Fatalf("%s: exit %d, %s", what, last.code, last.stderr)
	}
	waitUntilOK("uptime on web1", func() cmdResult { return as(webops, "linux:web1", "--", "uptime") })
	waitUntilOK("QUERY TIME on VMSYS1", func() cmdResult { return as(webops, "zvm:VMSYS1", "--", "QUERY", "TIME") })

	refused := func(res cmdResult, want string) {
		t.Helper()
		if res.code != 255 || !strings.Contains(res.stderr, "not-permitted") || !strings.Contains(res.stderr, want) {
			t.Errorf("want a not-permitted refusal saying %q; exit %d, stdout %q, stderr %q", want, res.code, res.stdout, res.stderr)
		}
	}
	t.Run("Refusals", func(t *testing.T) {
		refused(as(webops, "linux:web1", "--", "id"), `client webops may not run "id" on linux:web1`)
		refused(as(webops, "linux:db1", "--", "uptime"), "no role grants that target")
		refused(as(webops, "zvm:VMSYS1", "--", "FORCE", "LINUX01"), `may not run "FORCE LINUX01" on zvm:VMSYS1`)
		refused(as(webops, "region", "--", "REFRESH"), "no role grants that target")
		if res := as(admin, "linux:web1", "--", "uptime"); res.code != 255 {
			t.Errorf("admin ran uptime on web1: exit %d", res.code)
		}
	})
	t.Run("AuditLog", func(t *testing.T) {
		lines := readAudit(t, auditLog)
		for _, c := range []struct{ client, target, command, outcome string }{
			{"webops", "linux:web1", "uptime", "ok"},
			{"webops", "zvm:VMSYS1", "QUERY TIME", "ok"},
			{"webops", "linux:web1", "id", "refused"},
			{"webops", "linux:db1", "uptime", "refused"},
			{"webops", "zvm:VMSYS1", "FORCE LINUX01", "refused"},
			{"webops", "region", "REFRESH", "refused"},
		} {
			l, ok := findAudit(lines, c.client, c.target, c.command)
			if !ok || l.Outcome != c.outcome {
				t.Errorf("audit record of %s %s %q: %+v (found %v), want outcome %s", c.client, c.target, c.command, l, ok, c.outcome)
				continue
			}
			if c.outcome == "refused" && (l.Code != "not-permitted" || l.Message == "") {
				t.Errorf("refusal record %+v lacks its code or sentence", l)
			}
			if c.outcome == "ok" && (l.RC == nil || l.Rule == "") {
				t.Errorf("success record %+v lacks rc or rule", l)
			}
		}
	})
	t.Run("RefreshAppliesNewRole", func(t *testing.T) {
		refused(as(webops, "linux:web1", "--", "id"), "no command pattern")
		rewrite(t, config, `commands = ["uptime", "df -h **", "systemctl status *"]`, `commands = ["uptime", "id", "sleep *"]`)
		if res := as(admin, "region", "--", "REFRESH"); res.code != 0 || !strings.Contains(res.stdout, "config refreshed") {
			t.Fatalf("REFRESH: exit %d %q %q", res.code, res.stdout, res.stderr)
		}
		if res := as(webops, "linux:web1", "--", "id"); res.code != 0 || !strings.Contains(res.stdout, "uid=") {
			t.Fatalf("id after REFRESH: exit %d %q %q", res.code, res.stdout, res.stderr)
		}
		// A file that does not parse changes nothing, and says why.
		rewrite(t, config, `[[role]]`, `[[role]`)
		if res := as(admin, "region", "--", "REFRESH"); res.code != 255 || !strings.Contains(res.stderr, "nothing changed") {
			t.Fatalf("REFRESH of a broken file: exit %d %q %q", res.code, res.stdout, res.stderr)
		}
		if res := as(webops, "linux:web1", "--", "id"); res.code != 0 {
			t.Fatalf("id after a failed REFRESH: exit %d %q", res.code, res.stderr)
		}
		rewrite(t, config, `[[role]`, `[[role]]`)

		// A command in flight that the new roles no longer allow is
		// cancelled by the refresh.
		done := make(chan cmdResult, 1)
		go func() { done <- as(webops, "--timeout", "90s", "linux:web1", "--", "sleep", "60") }()
		waitUntilOK("sleep to be in flight", func() cmdResult {
			res := as(admin, "region", "--", "COMMANDS")
			if !strings.Contains(res.stdout, "sleep 60") {
				res.code = 1
			}
			return res
		})
		rewrite(t, config, `commands = ["uptime", "id", "sleep *"]`, `commands = ["uptime", "id"]`)
		if res := as(admin, "region", "--", "REFRESH"); res.code != 0 || !strings.Contains(res.stdout, "1 commands in flight cancelled") {
			t.Fatalf("REFRESH: exit %d %q %q", res.code, res.stdout, res.stderr)
		}
		select {
		case res := <-done:
			if res.code != 255 || !strings.Contains(res.stderr, "cancelled") {
				t.Errorf("sleep after its grant was withdrawn: exit %d %q", res.code, res.stderr)
			}
		case <-time.After(60 * time.Second):
			t.Fatal("the sleep was not cancelled by the refresh")
		}
	})
	t.Run("SIGHUPRevokes", func(t *testing.T) {
		tp := startTail(t, append([]string{"--unsolmsg", r.unsolmsg, "--timeout", "120s"}, webops...)...)
		waitSessions(t, r.http, 1)
		rewrite(t, config, `name = "webops"`, `name = "webops-retired"`)
		if err := r.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		tp.wait(t, 60*time.Second)
		if !strings.Contains(tp.stderr.String(), "revoked") {
			t.Errorf("tail ended without bye revoked: %q", tp.stderr.String())
		}
		res := as(webops, "linux:web1", "--", "uptime")
		if res.code != 255 || !strings.Contains(res.stderr, "auth") {
			t.Errorf("a removed client logged on: exit %d %q", res.code, res.stderr)
		}
		found := false
		for _, l := range readAudit(t, auditLog) {
			found = found || l.Kind == "logon" && l.Client == "webops" && l.Outcome == "refused" && l.Code == "auth"
		}
		if !found {
			t.Error("the refused logon is not in the audit log")
		}
	})
}

// TestReadmeQuotesExampleConfig: the README's Security section shows the
// example config file that TestAuthorizationEndToEnd loads, exactly.
func TestReadmeQuotesExampleConfig(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	ex, err := os.ReadFile("../../testdata/config/zbridge.toml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "```toml\n"+string(ex)+"```\n") {
		t.Error("README does not quote testdata/config/zbridge.toml exactly")
	}
}

// TestPatternGrantRunsItsWords: a line a command pattern allowed runs with
// exactly the words it was matched against, also where a login shell with
// more expansions than /bin/sh reads it: on an agentless sshd, root's
// login shell is bash, which would expand {a,b} (and so could reach
// /var/log/../../etc/shadow through cat /var/log/.{.,x}/.{.,x}/etc/shadow).
func TestPatternGrantRunsItsWords(t *testing.T) {
	e2e(t)
	e := newAgentEnv(t)
	line, _ := os.ReadFile(e.authorizedKeys)
	addr := startSSHD(t, string(line))
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	hash, err := auth.Hash("narrow-secret")
	if err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(e.dir, "narrow.toml")
	os.WriteFile(config, []byte(`
[[client]]
name = "narrow"
secret-hash = "`+hash+`"
roles = ["echo"]
[[role]]
name = "echo"
ports = ["commands"]
  [[role.target]]
  pattern = "linux:plain*"
  commands = ["echo *", "echo ** x"]
`), 0o600)
	os.WriteFile(filepath.Join(e.dir, "narrow.secret"), []byte("narrow-secret\n"), 0o600)
	r := startRegion(t, e.regionArgs("--ssh-user", u.Username, "--linux", "plain1="+addr, "--config", config)...)
	narrow := []string{"--client", "narrow", "--secret-file", filepath.Join(e.dir, "narrow.secret")}
	var res cmdResult
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if res = runCmdProc(t, r, append(narrow, "linux:plain1", "--", "echo", "ready")...); res.code == 0 {
			break
		}
	}
	if res.code != 0 || res.stdout != "ready\n" {
		t.Fatalf("echo ready: exit %d %q %q", res.code, res.stdout, res.stderr)
	}
	// The lines go as typed, through the protocol (zbridge cmd would
	// quote its arguments itself).
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, client.Config{Addr: r.commands, Client: "narrow", Secret: "narrow-secret"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, tc := range []struct{ line, want string }{
		{"echo {a,b}", "{a,b}\n"},
		{"echo =ls x", "=ls x\n"},
		{"echo 'two words' x", "two words x\n"},
	} {
		var out strings.Builder
		reply, err := c.Command(ctx, client.CommandRequest{Target: "linux:plain1", Command: tc.line}, func(f *protocol.Frame) {
			out.WriteString(f.Text)
			if f.EOL {
				out.WriteByte('\n')
			}
		})
		if err != nil || reply.RC == nil || *reply.RC != 0 || out.String() != tc.want {
			t.Errorf("%s: %v, %+v, stdout %q (want %q)", tc.line, err, reply, out.String(), tc.want)
		}
	}
}
