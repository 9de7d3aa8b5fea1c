package linuxagent

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/zbridge/zbridge/internal/tcpalive"
	"github.com/zbridge/zbridge/protocol/agentproto"
)

func TestRunResults(t *testing.T) {
	a := startAgent(t, nil)
	c := a.dial(t, a.client.signer)
	home := homeDir()
	for _, tt := range []struct {
		name, line   string
		stdout       string
		stderrHas    string
		status       int
		errCode      string
		wantPID      bool
		outputBytes  int64
		messageHas   string
		stderrExact  bool
		stdoutPrefix bool
	}{
		{name: "echo", line: "echo hello world", stdout: "hello world\n", status: 0, wantPID: true, outputBytes: 12},
		{name: "quoted args", line: `printf '%s|' 'a b' "c\"d" e\ f`, stdout: `a b|c"d|e f|`, wantPID: true, outputBytes: 12},
		{name: "false", line: "false", status: 1, wantPID: true},
		{name: "stderr and status", line: "ls /nonexistent-zbridge-test", stderrHas: "nonexistent-zbridge-test", status: 2, wantPID: true},
		{name: "exit via sh", line: `sh -c 'echo out; echo err >&2; exit 3'`, stdout: "out\n", stderrHas: "err\n", status: 3, wantPID: true, outputBytes: 8},
		{name: "absolute path", line: "/bin/echo x", stdout: "x\n", wantPID: true, outputBytes: 2},
		{name: "stdin is /dev/null", line: "cat", wantPID: true},
		{name: "working directory", line: "pwd", stdout: home + "\n", wantPID: true, outputBytes: int64(len(home) + 1)},
		{name: "not found", line: "no-such-program-zbridge arg", status: 127, errCode: agentproto.CodeNotFound,
			stderrHas: "zbridge-agent: not found: no-such-program-zbridge\n", messageHas: "not found"},
		{name: "not found path", line: "/no/such/program", status: 127, errCode: agentproto.CodeNotFound, stderrHas: "zbridge-agent: not found: /no/such/program"},
		{name: "not executable", line: "/etc/passwd", status: 126, errCode: agentproto.CodeCannotExecute, stderrHas: "zbridge-agent: cannot execute /etc/passwd"},
		{name: "directory", line: "/etc", status: 126, errCode: agentproto.CodeCannotExecute, stderrHas: "is a directory"},
		{name: "pipe refused", line: "ls | wc -l", status: 126, errCode: agentproto.CodeNotPermitted,
			stderrHas: `zbridge-agent: not permitted: shell syntax (unquoted "|" at offset 3); policy does not allow sh -c` + "\n"},
		{name: "expansion refused", line: `echo "$HOME"`, status: 126, errCode: agentproto.CodeNotPermitted, stderrHas: "policy does not allow sh -c"},
		{name: "glob refused", line: "ls /etc/*.conf", status: 126, errCode: agentproto.CodeNotPermitted, stderrHas: "pathname expansion"},
		{name: "unterminated quote", line: "echo 'abc", status: 2, errCode: agentproto.CodeBadCommand, stderrHas: "zbridge-agent: malformed command line: unterminated single quote"},
		{name: "empty", line: "   ", status: 2, errCode: agentproto.CodeBadCommand, stderrHas: "empty command"},
		{name: "longest line", line: "echo " + strings.Repeat("x", agentproto.MaxCommand-5), stdout: strings.Repeat("x", agentproto.MaxCommand-5) + "\n",
			wantPID: true, outputBytes: agentproto.MaxCommand - 4},
		{name: "line too long", line: "echo " + strings.Repeat("x", agentproto.MaxCommand-4), status: 2, errCode: agentproto.CodeBadCommand,
			stderrHas: "zbridge-agent: command is 65153 bytes; the most a Linux agent takes is 65152\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := runCommand(t, c, tt.line, nil)
			if string(r.stdout) != tt.stdout {
				t.Errorf("stdout = %q, want %q", r.stdout, tt.stdout)
			}
			if !strings.Contains(string(r.stderr), tt.stderrHas) {
				t.Errorf("stderr = %q, want it to hold %q", r.stderr, tt.stderrHas)
			}
			if r.exitStatus != tt.status || r.exitSignal != "" {
				t.Errorf("exit-status %d, exit-signal %q; want status %d", r.exitStatus, r.exitSignal, tt.status)
			}
			if want := []string{agentproto.ResultRequest, "exit-status"}; !slices.Equal(r.requests, want) {
				t.Errorf("requests %q, want %q", r.requests, want)
			}
			res := r.result
			if res == nil {
				t.Fatal("no result")
			}
			if res.ExitStatus != tt.status || res.Error != tt.errCode || res.TimedOut || res.Truncated ||
				res.Agent != "test-agent" || res.Platform != runtime.GOOS+"/"+runtime.GOARCH || res.TimeoutMS != DefaultTimeout.Milliseconds() {
				t.Errorf("result %+v: want exit %d, error %q, agent test-agent, platform %s/%s", res, tt.status, tt.errCode, runtime.GOOS, runtime.GOARCH)
			}
			if (res.PID != 0) != tt.wantPID {
				t.Errorf("result pid %d, want one: %v", res.PID, tt.wantPID)
			}
			if tt.outputBytes != 0 && res.OutputBytes != tt.outputBytes {
				t.Errorf("result output_bytes %d, want %d", res.OutputBytes, tt.outputBytes)
			}
			if tt.errCode != "" && (res.Message == "" || !strings.Contains(string(r.stderr), "zbridge-agent: "+res.Message+"\n")) {
				t.Errorf("message %q: want it, and on stderr (%q)", res.Message, r.stderr)
			}
			if !strings.Contains(res.Message, tt.messageHas) {
				t.Errorf("message %q, want %q in it", res.Message, tt.messageHas)
			}
		})
	}
	// Each command is logged with who ran it and how it ended.
	log := a.log.String()
	for _, want := range []string{`command="echo hello world"`, "exit_status=0", `command="echo xxx`, "... (65153 bytes)", "key=\"" + ssh.FingerprintSHA256(a.client.signer.PublicKey()) + "\"", "user=zbridge", "duration=", `error=not-permitted`} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q", want)
		}
	}
}

// TestLogNamesClient checks that the agent's line for a command names the
// client the region ran it for and the command ID, and that the client
// name goes no further: not into the command's environment, not into the
// result.
func TestLogNamesClient(t *testing.T) {
	a := startAgent(t, nil)
	c := a.dial(t, a.client.signer)
	r := runCommand(t, c, "env", map[string]string{agentproto.EnvCommandID: "CMD-7", agentproto.EnvClient: "ops desk (Zürich)"})
	if r.exitStatus != 0 || strings.Contains(string(r.stdout), "Zürich") || r.result.CommandID != "CMD-7" {
		t.Errorf("status %d, environment %q, result %+v", r.exitStatus, r.stdout, r.result)
	}
	var line string
	for _, l := range strings.Split(a.log.String(), "\n") {
		if strings.Contains(l, "command finished") {
			line = l
		}
	}
	for _, want := range []string{`client="ops desk (Zürich)"`, "command_id=CMD-7", `command=env`, "user=zbridge"} {
		if !strings.Contains(line, want) {
			t.Errorf("log line %q lacks %q", line, want)
		}
	}
}

func TestCleanEnvironment(t *testing.T) {
	t.Setenv("ZBRIDGE_TEST_SECRET", "agent-environment-must-not-leak")
	a := startAgent(t, nil)
	c := a.dial(t, a.client.signer)
	r := runCommand(t, c, "env", map[string]string{agentproto.EnvCommandID: "cmd-42"})
	got := strings.Split(strings.TrimSpace(string(r.stdout)), "\n")
	slices.Sort(got)
	want := []string{"HOME=" + homeDir(), "LANG=C.UTF-8", "PATH=/usr/local/bin:/usr/bin:/bin", "ZBRIDGE_COMMAND_ID=cmd-42"}
	if !slices.Equal(got, want) {
		t.Errorf("environment %q, want exactly %q", got, want)
	}
	if r.result.CommandID != "cmd-42" {
		t.Errorf("result command_id %q", r.result.CommandID)
	}
	// Without a command ID, none is set.
	r = runCommand(t, c, "env", nil)
	if strings.Contains(string(r.stdout), "ZBRIDGE") || r.result.CommandID != "" {
		t.Errorf("environment %q, result %+v: want no command ID", r.stdout, r.result)
	}
}

func TestPolicyEnforced(t *testing.T) {
	a := startAgent(t, func(c *Config) {
		c.Policy = mustPolicy(t, "allow echo *\nallow id\ndeny rm *\n")
	})
	c := a.dial(t, a.client.signer)
	r := runCommand(t, c, "echo allowed", nil)
	if string(r.stdout) != "allowed\n" || r.exitStatus != 0 {
		t.Errorf("allowed command: %q, %d", r.stdout, r.exitStatus)
	}
	// Quoting does not dodge a rule: the subject is argv, not the text.
	for _, line := range []string{"rm -rf /nonexistent-zbridge", `'rm' -rf /nonexistent-zbridge`, `r\m -rf /nonexistent-zbridge`} {
		r = runCommand(t, c, line, nil)
		want := `zbridge-agent: not permitted: "rm -rf /nonexistent-zbridge" is denied by the policy (line 3)` + "\n"
		if r.exitStatus != 126 || string(r.stderr) != want || r.result.Error != agentproto.CodeNotPermitted {
			t.Errorf("%s: status %d, stderr %q, result %+v; want 126 and %q", line, r.exitStatus, r.stderr, r.result, want)
		}
	}
	r = runCommand(t, c, "uname -a", nil)
	if r.exitStatus != 126 || !strings.Contains(string(r.stderr), `not permitted: no policy rule allows "uname -a"`) {
		t.Errorf("unmatched command: status %d, stderr %q", r.exitStatus, r.stderr)
	}
}

func TestShellPolicy(t *testing.T) {
	a := startAgent(t, func(c *Config) { c.Policy = mustPolicy(t, "shell yes\ndefault allow\ndeny *reboot*\n") })
	c := a.dial(t, a.client.signer)
	r := runCommand(t, c, `echo $((1+2)) | tr 3 x; echo "$LANG" >&2; exit 3`, nil)
	if string(r.stdout) != "x\n" || string(r.stderr) != "C.UTF-8\n" || r.exitStatus != 3 {
		t.Errorf("stdout %q, stderr %q, status %d", r.stdout, r.stderr, r.exitStatus)
	}
	if r := runCommand(t, c, "  echo x; reboot  ", nil); r.exitStatus != 126 || !strings.Contains(string(r.stderr), `"echo x; reboot" is denied by the policy (line 3)`) {
		t.Errorf("denied shell line: status %d, stderr %q", r.exitStatus, r.stderr)
	}
}

func TestTimeoutKillsProcessGroup(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out a command timeout: not in -short")
	}
	a := startAgent(t, func(c *Config) {
		c.Policy = mustPolicy(t, "default allow\ntimeout 1s\nmax-timeout 3s\n")
		c.KillGrace = 300 * time.Millisecond
	})
	c := a.dial(t, a.client.signer)

	t.Run("grandchildren", func(t *testing.T) {
		start := time.Now()
		r := runCommand(t, c, `sh -c 'sh -c "sleep 1000 & sleep 1000" & sleep 1000'`, nil)
		if d := time.Since(start); d < time.Second {
			t.Errorf("command took %v, want at least the 1 s timeout", d)
		}
		if !r.result.TimedOut || r.result.PID == 0 || r.exitSignal != "TERM" || r.result.Signal != "TERM" || r.result.ExitStatus != -1 {
			t.Errorf("result %+v, exit-signal %q: want timed out by TERM", r.result, r.exitSignal)
		}
		if want := []string{agentproto.ResultRequest, "exit-signal"}; !slices.Equal(r.requests, want) {
			t.Errorf("requests %q, want %q", r.requests, want)
		}
		if !strings.Contains(string(r.stderr), "zbridge-agent: timed out after 1s") {
			t.Errorf("stderr %q", r.stderr)
		}
		// Reported only once the whole group is gone.
		if live := liveGroupMembers(t, r.result.PID); len(live) > 0 {
			t.Errorf("process group %d still has live members: %q", r.result.PID, live)
		}
	})
	t.Run("ignores SIGTERM", func(t *testing.T) {
		r := runCommand(t, c, `sh -c 'trap "" TERM; sleep 1000 & sleep 1000'`, nil)
		if !r.result.TimedOut || r.exitSignal != "KILL" {
			t.Errorf("result %+v, exit-signal %q: want timed out by KILL after the grace", r.result, r.exitSignal)
		}
		if live := liveGroupMembers(t, r.result.PID); len(live) > 0 {
			t.Errorf("process group %d still has live members: %q", r.result.PID, live)
		}
	})
	t.Run("region asks for less", func(t *testing.T) {
		r := runCommand(t, c, "sleep 1000", map[string]string{agentproto.EnvTimeout: "0.2"})
		if !r.result.TimedOut || r.result.TimeoutMS != 200 {
			t.Errorf("result %+v: want a 200 ms timeout", r.result)
		}
	})
	t.Run("region asks for more than the max", func(t *testing.T) {
		r := runCommand(t, c, "true", map[string]string{agentproto.EnvTimeout: "86400"})
		if r.result.TimeoutMS != 3000 {
			t.Errorf("timeout_ms %d, want the policy's max-timeout 3000", r.result.TimeoutMS)
		}
	})
	t.Run("leftovers killed at exit", func(t *testing.T) {
		r := runCommand(t, c, `sh -c 'sleep 1000 >/dev/null 2>&1 & echo started'`, nil)
		if string(r.stdout) != "started\n" || r.exitStatus != 0 || r.result.TimedOut {
			t.Errorf("stdout %q, status %d, result %+v", r.stdout, r.exitStatus, r.result)
		}
		if live := liveGroupMembers(t, r.result.PID); len(live) > 0 {
			t.Errorf("background job of a finished command survives: %q", live)
		}
	})
}

func TestOutputCap(t *testing.T) {
	a := startAgent(t, func(c *Config) { c.OutputCap = 100000 })
	c := a.dial(t, a.client.signer)
	r := runCommand(t, c, "head -c 10000000 /dev/zero", nil)
	if len(r.stdout) != 100000 || !bytes.Equal(r.stdout, make([]byte, 100000)) {
		t.Errorf("got %d bytes, want exactly the cap, 100000 zero bytes", len(r.stdout))
	}
	if !r.result.Truncated || r.result.OutputBytes != 100000 || r.result.TimedOut {
		t.Errorf("result %+v: want truncated at 100000", r.result)
	}
	if !strings.Contains(string(r.stderr), "zbridge-agent: output truncated at 100000 bytes") {
		t.Errorf("stderr %q", r.stderr)
	}
	if live := liveGroupMembers(t, r.result.PID); len(live) > 0 {
		t.Errorf("truncated command survives: %q", live)
	}

	// The cap counts standard output and error together.
	a = startAgent(t, func(c *Config) { c.Policy = mustPolicy(t, "default allow\noutput-cap 10\n") })
	c = a.dial(t, a.client.signer)
	r = runCommand(t, c, `sh -c 'printf 12345678; printf abcdefgh >&2; sleep 1000'`, nil)
	note := "zbridge-agent: output truncated at 10 bytes"
	cmdStderr, _, _ := strings.Cut(string(r.stderr), note)
	if n := len(r.stdout) + len(cmdStderr); n != 10 || !r.result.Truncated || r.result.OutputBytes != 10 {
		t.Errorf("stdout %q + stderr %q = %d bytes, result %+v; want 10 and truncated", r.stdout, r.stderr, n, r.result)
	}

	// Just under the cap is not truncated.
	r = runCommand(t, c, `printf 0123456789`, nil)
	if string(r.stdout) != "0123456789" || r.result.Truncated {
		t.Errorf("stdout %q, result %+v: want all 10 bytes, not truncated", r.stdout, r.result)
	}
}

// startSleeper opens a session running a command that prints its process
// group ID and then sleeps with a background grandchild, and returns the
// channel and the group ID.
func startSleeper(t *testing.T, c *ssh.Client) (ssh.Channel, int) {
	t.Helper()
	ch, reqs, err := c.OpenChannel("session", nil)
	if err != nil {
		t.Fatal(err)
	}
	go ssh.DiscardRequests(reqs)
	if ok, err := ch.SendRequest("exec", true, ssh.Marshal(struct{ Command string }{
		`sh -c 'echo $$; sh -c "sleep 1000 & sleep 1000" & sleep 1000'`})); !ok || err != nil {
		t.Fatalf("exec: %v %v", ok, err)
	}
	line, err := bufio.NewReader(ch).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	pgid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the grandchildren to start", func() bool { return len(liveGroupMembers(t, pgid)) >= 4 })
	return ch, pgid
}

// TestCommandOwnSession: a command leads a session of its own (and so its
// own process group), without the agent's controlling terminal.
func TestCommandOwnSession(t *testing.T) {
	a := startAgent(t, func(c *Config) { c.Policy = mustPolicy(t, "default allow\n") })
	c := a.dial(t, a.client.signer)
	r := runCommand(t, c, "cat /proc/self/stat", nil)
	// pid (comm) state ppid pgrp session tty_nr ...
	stat := string(r.stdout)
	rest := stat[strings.LastIndexByte(stat, ')')+2:]
	f := strings.Fields(rest)
	if r.exitStatus != 0 || len(f) < 5 {
		t.Fatalf("cat /proc/self/stat: exit %d, %q", r.exitStatus, stat)
	}
	pid := strings.Fields(stat)[0]
	if f[2] != pid || f[3] != pid || f[4] != "0" {
		t.Errorf("pid %s: process group %s, session %s, tty %s; want its own group and session, no terminal", pid, f[2], f[3], f[4])
	}
}

func TestCancelKillsProcessGroup(t *testing.T) {
	a := startAgent(t, nil)
	t.Run("channel closed", func(t *testing.T) {
		c := a.dial(t, a.client.signer)
		ch, pgid := startSleeper(t, c)
		ch.Close()
		waitFor(t, "the process group to be gone", func() bool { return len(liveGroupMembers(t, pgid)) == 0 })
		waitFor(t, "the cancellation to be logged", func() bool { return strings.Contains(a.log.String(), "command cancelled") })
	})
	t.Run("connection dropped", func(t *testing.T) {
		c := a.dial(t, a.client.signer)
		_, pgid := startSleeper(t, c)
		c.Close()
		waitFor(t, "the process group to be gone", func() bool { return len(liveGroupMembers(t, pgid)) == 0 })
	})
	// The agent goes on serving.
	c := a.dial(t, a.client.signer)
	if r := runCommand(t, c, "echo still here", nil); string(r.stdout) != "still here\n" {
		t.Errorf("after cancellations: %q", r.stdout)
	}
}

func TestMaxSessions(t *testing.T) {
	a := startAgent(t, func(c *Config) { c.MaxSessions = 2 })
	c1 := a.dial(t, a.client.signer)
	c2 := a.dial(t, a.client.signer)
	ch1, reqs1, err := c1.OpenChannel("session", nil)
	if err != nil {
		t.Fatal(err)
	}
	go ssh.DiscardRequests(reqs1)
	ch2, reqs2, err := c2.OpenChannel("session", nil)
	if err != nil {
		t.Fatal(err)
	}
	go ssh.DiscardRequests(reqs2)
	defer ch2.Close()
	for _, c := range []*ssh.Client{c1, c2} {
		_, _, err = c.OpenChannel("session", nil)
		var oce *ssh.OpenChannelError
		if !errors.As(err, &oce) || oce.Reason != ssh.ResourceShortage || oce.Message != "busy" {
			t.Errorf("third session: %v, want ResourceShortage busy", err)
		}
	}
	ch1.Close()
	waitFor(t, "a session slot to free up", func() bool {
		ch, reqs, err := c1.OpenChannel("session", nil)
		if err != nil {
			return false
		}
		go ssh.DiscardRequests(reqs)
		r := execOn(t, ch, reqs, "echo again")
		return string(r.stdout) == "again\n"
	})
}

func TestRefusedRequests(t *testing.T) {
	a := startAgent(t, nil)
	c := a.dial(t, a.client.signer)

	t.Run("channel types", func(t *testing.T) {
		for typ, reason := range map[string]ssh.RejectionReason{
			"direct-tcpip":                   ssh.Prohibited,
			"direct-streamlocal@openssh.com": ssh.Prohibited,
			"x11":                            ssh.Prohibited,
			"auth-agent@openssh.com":         ssh.Prohibited,
			"tun@openssh.com":                ssh.Prohibited,
			"zbridge-bogus":                  ssh.UnknownChannelType,
		} {
			payload := ssh.Marshal(struct {
				Host       string
				Port       uint32
				OriginAddr string
				OriginPort uint32
			}{"127.0.0.1", 22, "127.0.0.1", 1234})
			_, _, err := c.OpenChannel(typ, payload)
			var oce *ssh.OpenChannelError
			if !errors.As(err, &oce) || oce.Reason != reason {
				t.Errorf("open %s: %v, want %v", typ, err, reason)
			}
		}
	})
	t.Run("global requests", func(t *testing.T) {
		for typ, want := range map[string]bool{
			"keepalive@openssh.com":           true,
			"tcpip-forward":                   false,
			"cancel-tcpip-forward":            false,
			"streamlocal-forward@openssh.com": false,
			"zbridge-bogus":                   false,
		} {
			ok, _, err := c.SendRequest(typ, true, ssh.Marshal(struct {
				Addr string
				Port uint32
			}{"127.0.0.1", 0}))
			if err != nil || ok != want {
				t.Errorf("global %s: %v, %v; want %v", typ, ok, err, want)
			}
		}
	})
	t.Run("session requests", func(t *testing.T) {
		ch, reqs, err := c.OpenChannel("session", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ch.Close()
		go ssh.DiscardRequests(reqs)
		for _, req := range []struct {
			typ     string
			payload []byte
		}{
			{"shell", nil},
			{"subsystem", ssh.Marshal(struct{ Name string }{"sftp"})},
			{"x11-req", ssh.Marshal(struct {
				Single        bool
				Proto, Cookie string
				Screen        uint32
			}{false, "MIT-MAGIC-COOKIE-1", "00", 0})},
			{"auth-agent-req@openssh.com", nil},
			{"signal", ssh.Marshal(struct{ Name string }{"TERM"})},
			{"env", ssh.Marshal(struct{ Name, Value string }{"LD_PRELOAD", "/tmp/evil.so"})},
			{"env", ssh.Marshal(struct{ Name, Value string }{"PATH", "/tmp"})},
			{"env", ssh.Marshal(struct{ Name, Value string }{agentproto.EnvTimeout, "soon"})},
			{"env", ssh.Marshal(struct{ Name, Value string }{agentproto.EnvTimeout, "-1"})},
			{"env", ssh.Marshal(struct{ Name, Value string }{agentproto.EnvTimeout, "NaN"})},
			{"env", ssh.Marshal(struct{ Name, Value string }{agentproto.EnvCommandID, "has space"})},
			{"env", ssh.Marshal(struct{ Name, Value string }{agentproto.EnvCommandID, strings.Repeat("x", 129)})},
			{"env", ssh.Marshal(struct{ Name, Value string }{agentproto.EnvClient, ""})},
			{"env", ssh.Marshal(struct{ Name, Value string }{agentproto.EnvClient, "ops\nsoon"})},
			{"env", ssh.Marshal(struct{ Name, Value string }{agentproto.EnvClient, strings.Repeat("c", agentproto.MaxClient+1)})},
			{"exec", []byte("not an ssh string")},
		} {
			if ok, err := ch.SendRequest(req.typ, true, req.payload); ok || err != nil {
				t.Errorf("%s %q: ok=%v err=%v, want refused", req.typ, req.payload, ok, err)
			}
		}
		// The channel still runs a command after all that.
		r := execOn(t, ch, reqs, "echo ok")
		if string(r.stdout) != "ok\n" {
			t.Errorf("exec after refusals: %q", r.stdout)
		}
	})
	t.Run("pty taints the session", func(t *testing.T) {
		ch, reqs, err := c.OpenChannel("session", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ch.Close()
		ok, _ := ch.SendRequest("pty-req", true, ssh.Marshal(struct {
			Term             string
			Cols, Rows, W, H uint32
			Modes            string
		}{"xterm", 80, 24, 0, 0, ""}))
		if ok {
			t.Fatal("pty-req accepted")
		}
		r := execOn(t, ch, reqs, "echo hi")
		if r.exitStatus != 126 || r.result.Error != agentproto.CodeNotPermitted || !strings.Contains(string(r.stderr), "pty") || len(r.stdout) > 0 {
			t.Errorf("exec after pty-req: status %d, stderr %q, result %+v", r.exitStatus, r.stderr, r.result)
		}
	})
	t.Run("one exec per session", func(t *testing.T) {
		ch, reqs, err := c.OpenChannel("session", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ch.Close()
		go ssh.DiscardRequests(reqs)
		exec := func(line string) bool {
			ok, err := ch.SendRequest("exec", true, ssh.Marshal(struct{ Command string }{line}))
			return ok && err == nil
		}
		if !exec("sleep 0.5") || exec("echo second") {
			t.Error("want the first exec accepted and the second refused")
		}
	})
	t.Run("no-more-sessions", func(t *testing.T) {
		c := a.dial(t, a.client.signer)
		if _, _, err := c.SendRequest("no-more-sessions@openssh.com", false, nil); err != nil {
			t.Fatal(err)
		}
		// Global requests are handled in order, apart from channel opens:
		// once a later one is answered, the first has taken effect.
		if ok, _, err := c.SendRequest("keepalive@openssh.com", true, nil); !ok || err != nil {
			t.Fatal(ok, err)
		}
		_, _, err := c.OpenChannel("session", nil)
		var oce *ssh.OpenChannelError
		if !errors.As(err, &oce) || oce.Reason != ssh.Prohibited {
			t.Errorf("session after no-more-sessions: %v", err)
		}
	})
	// Refused env values are not logged.
	if log := a.log.String(); strings.Contains(log, "evil.so") || strings.Contains(log, "soon") {
		t.Error("the log holds an env value")
	}
}

func TestAuthentication(t *testing.T) {
	a := startAgent(t, nil)
	stranger := newUserKey(t, a.dir, "stranger")
	if _, err := a.tryDial(stranger.signer); err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
		t.Errorf("unknown key: %v, want refused", err)
	}
	for name, auth := range map[string][]ssh.AuthMethod{
		"none":                 nil,
		"password":             {ssh.Password("secret")},
		"keyboard-interactive": {ssh.KeyboardInteractive(func(string, string, []string, []bool) ([]string, error) { return []string{"secret"}, nil })},
	} {
		_, err := ssh.Dial("tcp", a.addr, &ssh.ClientConfig{User: "zbridge", Auth: auth, HostKeyCallback: ssh.InsecureIgnoreHostKey()})
		if err == nil || !strings.Contains(err.Error(), "attempted methods [none") || strings.Contains(err.Error(), "password]") {
			// x/crypto reports the methods tried; only publickey is offered.
			t.Logf("%s: %v", name, err)
		}
		if err == nil {
			t.Errorf("%s authentication accepted", name)
		}
	}
	if _, err := a.tryDial(stranger.signer, a.client.signer); err != nil {
		t.Errorf("the authorized key offered second: %v", err)
	}
	if strings.Contains(a.log.String(), "secret") {
		t.Error("the log holds a password")
	}
}

func TestAuthorizedKeysReload(t *testing.T) {
	a := startAgent(t, nil)
	if _, err := a.tryDial(a.client.signer); err != nil {
		t.Fatal(err)
	}
	second := newUserKey(t, a.dir, "second")
	// Replace the file (rename, as editors and config tools do).
	tmp := a.authFile + ".new"
	os.WriteFile(tmp, second.authKey, 0o600)
	os.Rename(tmp, a.authFile)
	if _, err := a.tryDial(second.signer); err != nil {
		t.Errorf("new key after reload: %v", err)
	}
	if _, err := a.tryDial(a.client.signer); err == nil {
		t.Error("removed key still accepted")
	}
	// A missing file refuses every key, and is read again when back.
	os.Remove(a.authFile)
	if _, err := a.tryDial(second.signer); err == nil {
		t.Error("key accepted while authorized_keys is missing")
	}
	os.WriteFile(a.authFile, append(a.client.authKey, second.authKey...), 0o600)
	for _, k := range []*userKey{a.client, second} {
		if _, err := a.tryDial(k.signer); err != nil {
			t.Errorf("key after the file came back: %v", err)
		}
	}
}

func TestAuthorizedKeysFrom(t *testing.T) {
	for _, tt := range []struct {
		options string
		ok      bool
	}{
		{`from="127.0.0.1"`, true},
		{`from="127.0.0.*"`, true},
		{`from="10.0.0.0/8,127.0.0.0/8"`, true},
		{`from="10.0.0.0/8"`, false},
		{`from="!127.0.0.1,*"`, false},
		{`from="192.168.1.?"`, false},
		{`restrict,no-pty,from="127.0.0.1"`, true},
		{`no-port-forwarding,no-agent-forwarding,no-X11-forwarding,no-user-rc`, true},
		{`command="/bin/date"`, false},          // unsupported: the line is skipped
		{`environment="A=b"`, false},            // unsupported
		{`permitopen="127.0.0.1:22"`, false},    // unsupported
		{`from="host.example.com"`, false},      // host names unsupported
		{`cert-authority`, false},               // unsupported
		{`from="127.0.0.1",command="x"`, false}, // one unsupported option spoils the line
	} {
		t.Run(tt.options, func(t *testing.T) {
			a := startAgent(t, nil)
			os.WriteFile(a.authFile, append([]byte(tt.options+" "), a.client.authKey...), 0o600)
			_, err := a.tryDial(a.client.signer)
			if (err == nil) != tt.ok {
				t.Errorf("dial with %s: %v, want ok=%v", tt.options, err, tt.ok)
			}
			if !tt.ok && !strings.Contains(tt.options, "from") && !strings.Contains(a.log.String(), "not supported") {
				t.Error("an unsupported option is not logged")
			}
		})
	}
}

func TestHostKeyFile(t *testing.T) {
	dir := t.TempDir()
	logger, _ := testLogger(t)
	auth := filepath.Join(dir, "authorized_keys")
	os.WriteFile(auth, newUserKey(t, dir, "k").authKey, 0o600)
	path := filepath.Join(dir, "host_key")
	s1, err := New(Config{HostKeyFile: path, AuthorizedKeys: auth, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("generated host key: %v, mode %v; want 0600", err, fi.Mode())
	}
	if s1.HostKey().Type() != ssh.KeyAlgoED25519 {
		t.Errorf("generated key type %s", s1.HostKey().Type())
	}
	pub, err := os.ReadFile(path + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	if pk, _, _, _, err := ssh.ParseAuthorizedKey(pub); err != nil || !bytes.Equal(pk.Marshal(), s1.HostKey().Marshal()) {
		t.Errorf("%s.pub does not hold the host key: %v", path, err)
	}
	s2, err := New(Config{HostKeyFile: path, AuthorizedKeys: auth, Logger: logger})
	if err != nil || !bytes.Equal(s2.HostKey().Marshal(), s1.HostKey().Marshal()) {
		t.Fatalf("second start: %v; want the same key", err)
	}
	for _, mode := range []os.FileMode{0o640, 0o604, 0o660} {
		os.Chmod(path, mode)
		if _, err := New(Config{HostKeyFile: path, AuthorizedKeys: auth, Logger: logger}); !errors.Is(err, ErrHostKey) || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("mode %04o: %v, want ErrHostKey", mode, err)
		}
	}
	os.Chmod(path, 0o600)
	os.WriteFile(path, []byte("not a key"), 0o600)
	if _, err := New(Config{HostKeyFile: path, AuthorizedKeys: auth, Logger: logger}); !errors.Is(err, ErrHostKey) {
		t.Errorf("garbage key file: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	logger, _ := testLogger(t)
	auth := filepath.Join(dir, "authorized_keys")
	os.WriteFile(auth, newUserKey(t, dir, "k").authKey, 0o600)
	hk := newUserKey(t, dir, "hk").signer
	for name, cfg := range map[string]Config{
		"no logger":        {HostKey: hk, AuthorizedKeys: auth},
		"no keys file":     {HostKey: hk, Logger: logger},
		"no host key":      {AuthorizedKeys: auth, Logger: logger},
		"both host keys":   {HostKey: hk, HostKeyFile: filepath.Join(dir, "x"), AuthorizedKeys: auth, Logger: logger},
		"negative":         {HostKey: hk, AuthorizedKeys: auth, Logger: logger, MaxSessions: -1},
		"timeout over max": {HostKey: hk, AuthorizedKeys: auth, Logger: logger, Policy: &Policy{Timeout: time.Hour, MaxTimeout: time.Minute}},
		"bad pattern":      {HostKey: hk, AuthorizedKeys: auth, Logger: logger, Policy: &Policy{Rules: []Rule{{Allow, `x\`, 0}}}},
	} {
		if _, err := New(cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v, want ErrConfig", name, err)
		}
	}
	if _, err := New(Config{HostKey: hk, AuthorizedKeys: filepath.Join(dir, "missing"), Logger: logger}); !errors.Is(err, ErrAuthorizedKeys) {
		t.Errorf("missing authorized_keys: %v", err)
	}
}

func TestKeepAlive(t *testing.T) {
	t.Parallel() // it mostly waits; its agent is its own
	a := startAgent(t, func(c *Config) { c.KeepAlive = 100 * time.Millisecond })
	// A client that answers global requests (x/crypto's refuses them,
	// which is an answer) stays connected.
	good := a.dial(t, a.client.signer)
	// One that never answers is dropped after three intervals.
	nc, err := net.DialTimeout("tcp", a.addr, waitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	conn, _, _, err := ssh.NewClientConn(nc, a.addr, &ssh.ClientConfig{
		User: "zbridge", Auth: []ssh.AuthMethod{ssh.PublicKeys(a.client.signer)}, HostKeyCallback: ssh.FixedHostKey(a.hostKey),
	})
	if err != nil {
		t.Fatal(err)
	}
	// The request channel is never read, so no keepalive is answered.
	dropped := make(chan error, 1)
	go func() { dropped <- conn.Wait() }()
	select {
	case <-dropped:
	case <-time.After(5 * time.Second):
		t.Fatal("a silent connection was not dropped")
	}
	if r := runCommand(t, good, "echo alive", nil); string(r.stdout) != "alive\n" {
		t.Errorf("the answering connection: %q", r.stdout)
	}
}

// TestKeepAliveOnlyWhenSilent: a region that speaks (its own keepalives,
// as a zbridge region sends them) is sent no keepalive; one silent for
// three intervals is.
func TestKeepAliveOnlyWhenSilent(t *testing.T) {
	t.Parallel() // it mostly waits; its agent is its own
	const interval = 100 * time.Millisecond
	a := startAgent(t, func(c *Config) { c.KeepAlive = interval })
	nc, err := net.DialTimeout("tcp", a.addr, waitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	conn, chans, reqs, err := ssh.NewClientConn(nc, a.addr, &ssh.ClientConfig{
		User: "zbridge", Auth: []ssh.AuthMethod{ssh.PublicKeys(a.client.signer)}, HostKeyCallback: ssh.FixedHostKey(a.hostKey),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	go func() {
		for ch := range chans {
			ch.Reject(ssh.Prohibited, "no")
		}
	}()
	var got atomic.Int64
	go func() {
		for req := range reqs {
			if req.Type == "keepalive@openssh.com" {
				got.Add(1)
			}
			if req.WantReply {
				req.Reply(false, nil)
			}
		}
	}()
	// Speak every half interval for ten intervals: the agent stays quiet.
	for i := 0; i < 20; i++ {
		if _, _, err := conn.SendRequest("keepalive@openssh.com", true, nil); err != nil {
			t.Fatal(err)
		}
		time.Sleep(interval / 2)
	}
	if n := got.Load(); n != 0 {
		t.Errorf("the agent sent %d keepalives over a connection whose region spoke every half interval", n)
	}
	// Silent: the agent asks.
	waitFor(t, "a keepalive from the agent", func() bool { return got.Load() > 0 })
}

// TestKeepAliveTrickle: bytes that are not an authenticated SSH message
// do not count as the region speaking. Someone on the path who drops the
// region's traffic and trickles in one byte of a packet that never
// completes does not keep a dead connection open: the agent's keepalive
// goes unanswered and it closes the connection. (Found in review: when
// any byte read counted, this kept a connection open for as long as the
// packet length announced.)
func TestKeepAliveTrickle(t *testing.T) {
	t.Parallel() // it mostly waits; its agent is its own
	const interval = 100 * time.Millisecond
	a := startAgent(t, func(c *Config) { c.KeepAlive = interval })
	nc, err := net.DialTimeout("tcp", a.addr, waitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &ssh.ClientConfig{User: "zbridge", Auth: []ssh.AuthMethod{ssh.PublicKeys(a.client.signer)}, HostKeyCallback: ssh.FixedHostKey(a.hostKey)}
	cfg.Ciphers = []string{"aes128-gcm@openssh.com"} // its packet length is in the clear
	conn, chans, reqs, err := ssh.NewClientConn(nc, a.addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	go ssh.DiscardRequests(reqs)
	go func() {
		for ch := range chans {
			ch.Reject(ssh.Prohibited, "no")
		}
	}()
	closed := make(chan struct{})
	go func() { conn.Wait(); close(closed) }()
	nc.Write([]byte{0, 0, 0x10, 0}) // a 4 KiB packet's length, then one byte at a time
	for i := 0; i < 200; i++ {      // 100 intervals; the agent closes after about 6
		select {
		case <-closed:
			return
		case <-time.After(interval / 2):
		}
		nc.Write([]byte{0x41})
	}
	t.Errorf("the agent kept a connection whose region sent nothing authenticated for 100 keepalive intervals")
}

func TestShutdownLetsCommandsFinish(t *testing.T) {
	t.Parallel() // it mostly waits; its agent is its own
	a := startAgent(t, nil)
	c := a.dial(t, a.client.signer)
	idle := a.dial(t, a.client.signer)
	// A session that has not asked for a command does not hold Shutdown.
	idleCh, idleReqs, err := idle.OpenChannel("session", nil)
	if err != nil {
		t.Fatal(err)
	}
	go ssh.DiscardRequests(idleReqs)
	defer idleCh.Close()
	// The exec is answered before Shutdown: a session whose exec request
	// came after it is one that runs nothing, and is closed.
	done := startCommand(t, c, "sh -c 'sleep 0.5; echo finished'")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a hang check
	defer cancel()
	if err := a.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	var r *run
	select {
	case r = <-done:
	case <-time.After(2 * waitTimeout): // collectRun fails the test (and ends its goroutine) after waitTimeout
		t.Fatal("the command's answer never came")
	}
	if string(r.stdout) != "finished\n" || r.exitStatus != 0 || r.result == nil {
		t.Errorf("command during shutdown: %q, status %d, result %+v", r.stdout, r.exitStatus, r.result)
	}
	if err := idle.Wait(); err == nil {
		t.Log("idle connection closed")
	}
	if err := <-a.served; !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve = %v", err)
	}
	a.served <- ErrServerClosed // for the cleanup
	if _, err := a.tryDial(a.client.signer); err == nil {
		t.Error("connection accepted after Shutdown")
	}
}

func TestShutdownDeadlineKills(t *testing.T) {
	t.Parallel() // it mostly waits; its agent is its own
	a := startAgent(t, nil)
	c := a.dial(t, a.client.signer)
	_, pgid := startSleeper(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := a.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want DeadlineExceeded", err)
	}
	if live := liveGroupMembers(t, pgid); len(live) > 0 {
		t.Errorf("after Shutdown returned, the command's group lives: %q", live)
	}
	// Close after Shutdown, and twice, is fine.
	a.srv.Close()
	a.srv.Close()
}

func TestServeAfterClose(t *testing.T) {
	a := startAgent(t, nil)
	a.srv.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.srv.Serve(l); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve after Close = %v", err)
	}
}

func TestNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		dir := t.TempDir()
		logger, _ := testLogger(t)
		key := newUserKey(t, dir, "k")
		auth := filepath.Join(dir, "authorized_keys")
		os.WriteFile(auth, key.authKey, 0o600)
		srv, err := New(Config{HostKeyFile: filepath.Join(dir, "hk"), AuthorizedKeys: auth, Logger: logger, KeepAlive: time.Second}) // short enough to run, long enough for a loaded machine
		if err != nil {
			t.Fatal(err)
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		served := make(chan error, 1)
		go func() { served <- srv.Serve(l) }()
		a := &testAgent{srv: srv, hostKey: srv.HostKey(), addr: l.Addr().String()}
		c, err := a.tryDial(key.signer)
		if err != nil {
			t.Fatal(err)
		}
		runCommand(t, c, "echo one", nil)
		runCommand(t, c, "no-such-program", nil)
		runCommand(t, c, "ls | wc", nil)
		ch, _ := startSleeper(t, c)
		ch.Close()
		_, _ = startSleeper(t, c) // still running at Close
		c2, err := a.tryDial(key.signer)
		if err != nil {
			t.Fatal(err)
		}
		c2.OpenChannel("session", nil) // open without exec
		srv.Close()
		<-served
		c.Close()
		c2.Close()
	}()
	deadline := time.Now().Add(waitTimeout)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines before, %d after:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestEscapedProcessDoesNotHoldSession(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out an escaped process for seconds: not in -short")
	}
	a := startAgent(t, nil)
	c := a.dial(t, a.client.signer)
	// setsid -f leaves the group (and session) at once, holding the pipes.
	// The escaped process writes its pid to a file: whether its stdout is
	// still read when it gets to run is a matter of timing.
	pidFile := filepath.Join(t.TempDir(), "pid")
	r := runCommand(t, c, `setsid -f sh -c 'echo $$ > `+pidFile+`; exec sleep 600'`, nil)
	// setsid -f's child may be killed with the group before it has left
	// it (a race the agent wins on a busy machine); then nothing escaped.
	pid := 0
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		b, _ := os.ReadFile(pidFile)
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			pid = n
			break
		}
	}
	if pid != 0 {
		defer func() {
			// Only if that pid is still the escaped sleep: once it is gone,
			// its pid may be another process's (another package's peer).
			if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline"); err == nil && string(b) == "sleep\x00600\x00" {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}()
	}
	// The command was reported while what escaped it still runs (it
	// sleeps ten minutes): the session did not wait for it.
	if pid != 0 {
		if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline"); err != nil || string(b) != "sleep\x00600\x00" {
			t.Errorf("the escaped process %d was gone when the command was reported (%q, %v): the session waited for it", pid, b, err)
		}
	}
	if r.exitStatus != 0 || r.result == nil {
		t.Errorf("status %d, result %+v", r.exitStatus, r.result)
	}
	if pid != 0 && !strings.Contains(a.log.String(), "left the command's process group") {
		t.Error("the escape is not logged")
	}
}

func TestRegionNotReading(t *testing.T) {
	t.Parallel() // it mostly waits for timeouts; its agent is its own
	a := startAgent(t, func(c *Config) {
		c.OutputCap = 64 << 20
		c.Policy = mustPolicy(t, "default allow\ntimeout 1s\n")
	})
	a.srv.drainTimeout = 500 * time.Millisecond
	c := a.dial(t, a.client.signer)
	ch, reqs, err := c.OpenChannel("session", nil)
	if err != nil {
		t.Fatal(err)
	}
	go ssh.DiscardRequests(reqs)
	// Far more than the channel window; never read.
	if ok, err := ch.SendRequest("exec", true, ssh.Marshal(struct{ Command string }{"head -c 20000000 /dev/zero"})); !ok || err != nil {
		t.Fatal(ok, err)
	}
	// The command times out and the agent, after drainTimeout, gives up
	// on the output and closes the channel (which the region's SSH stack
	// acknowledges without its application reading): the slot is free
	// again and the connection still serves.
	waitFor(t, "the session to be given up", func() bool { return a.srv.activeSessions() == 0 })
	if !strings.Contains(a.log.String(), "the region takes in no output; closing the session") {
		t.Error("not logged")
	}
	if r := runCommand(t, c, "echo ok", nil); string(r.stdout) != "ok\n" {
		t.Errorf("same connection after: %q", r.stdout)
	}
}

// TestTCPKeepAlive: the agent gives the region's connection the kernel's
// keepalive and user timeout from Config.TCPKeepAlive (2 minutes by
// default), in place of the listener's own (Go's 15 s, unspread), or none.
func TestTCPKeepAlive(t *testing.T) {
	for _, tc := range []struct {
		set, want time.Duration
	}{
		{0, DefaultTCPKeepAlive},
		{6 * time.Second, 6 * time.Second},
		{-1, -1},
	} {
		a := startAgent(t, func(c *Config) { c.TCPKeepAlive = tc.set })
		a.dial(t, a.client.signer)
		a.srv.mu.Lock()
		var nc net.Conn
		for c := range a.srv.conns {
			nc = c.nc
		}
		a.srv.mu.Unlock()
		if nc == nil {
			t.Fatal("the agent has no connection")
		}
		got, err := tcpalive.Get(nc)
		if err != nil {
			t.Fatal(err)
		}
		if msg := tcpalive.Check(got, tc.want); msg != "" {
			t.Errorf("TCPKeepAlive %v: %s (the kernel has %+v)", tc.set, msg, got)
		}
	}
}

// TestLogWhenRegionStopsReading: a command's log line is written when it
// ends, also when the region has stopped reading and the agent cannot send
// it the rest (its channel window is full): the line says what ran, and
// must not wait for the region.
func TestLogWhenRegionStopsReading(t *testing.T) {
	t.Parallel() // it mostly waits for timeouts; its agent is its own
	a := startAgent(t, func(c *Config) {
		c.OutputCap = 64 << 20
		c.Policy = mustPolicy(t, "default allow\ntimeout 1s\n")
	})
	c := a.dial(t, a.client.signer)
	ch, reqs, err := c.OpenChannel("session", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	go ssh.DiscardRequests(reqs)
	// Exactly the channel's window (2 MiB), never read: the agent's note
	// that the command timed out finds no room.
	if ok, err := ch.SendRequest("exec", true, ssh.Marshal(struct{ Command string }{"sh -c 'head -c 2097152 /dev/zero; sleep 30'"})); !ok || err != nil {
		t.Fatalf("exec: %v %v", ok, err)
	}
	waitFor(t, "the command's log line", func() bool { return strings.Contains(a.log.String(), "timed_out=true") })
}
