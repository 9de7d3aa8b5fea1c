//go:build !lean

package main

// End-to-end tests of COMMANDS: `zbridge cmd` → region → Linux agent
// (`zbridge linuxagent`, also built for s390x under qemu) or a stock
// OpenSSH sshd, with real keys, known_hosts and processes.

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/zbridge/zbridge/internal/peer"
)

// writeKey writes a new ed25519 private key (OpenSSH format, mode 0600)
// and returns its path and authorized_keys line.
func writeKey(t *testing.T, dir, name string) (path, authorized string) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	blk, err := ssh.MarshalPrivateKey(priv, name)
	if err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(blk), 0o600); err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return path, string(ssh.MarshalAuthorizedKey(signer.PublicKey()))
}

// agentEnv is a region with an SSH key and the files an agent needs.
type agentEnv struct {
	dir            string
	regionKey      string
	authorizedKeys string // file holding the region's public key
	knownHosts     string
}

func newAgentEnv(t *testing.T) *agentEnv {
	t.Helper()
	e := &agentEnv{dir: t.TempDir()}
	var line string
	e.regionKey, line = writeKey(t, e.dir, "region_key")
	e.authorizedKeys = filepath.Join(e.dir, "authorized_keys")
	if err := os.WriteFile(e.authorizedKeys, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	e.knownHosts = filepath.Join(e.dir, "known_hosts")
	return e
}

// startAgent runs `zbridge linuxagent` (bin may be the s390x build, run
// under qemu when emulator is set) on a free loopback port.
func (e *agentEnv) startAgent(t *testing.T, name string, bin, emulator string, extra ...string) string {
	t.Helper()
	addr := peer.Addr(peer.FreePort(t))
	args := append([]string{"linuxagent", "--listen", addr, "--authorized-keys", e.authorizedKeys,
		"--host-key", filepath.Join(e.dir, name+"_host_key"), "--name", name}, extra...)
	if os.Geteuid() == 0 {
		// CI runs the tests as root; the agent refuses root unless told.
		args = append(args, "--allow-root")
	}
	path := bin
	if emulator != "" {
		args = append([]string{bin}, args...)
		path = emulator
	}
	peer.Start(t, peer.Command{Name: "linuxagent-" + name, Path: path, Args: args, Ready: peer.TCPReady(addr),
		ReadyTimeout: 60 * time.Second})
	return addr
}

func (e *agentEnv) regionArgs(extra ...string) []string {
	return append([]string{"--ssh-key", e.regionKey, "--known-hosts", e.knownHosts, "--accept-new-host-keys"}, extra...)
}

// cmdResult is a finished `zbridge cmd`.
type cmdResult struct {
	code           int
	stdout, stderr string
}

func runCmdProc(t *testing.T, r *testRegion, args ...string) cmdResult {
	t.Helper()
	c := exec.Command(zbridgeBin, append([]string{"cmd", "--commands", r.commands}, args...)...)
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	err := runWithin(t, c, 120*time.Second)
	res := cmdResult{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		res.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("zbridge cmd: %v", err)
	}
	return res
}

// waitConnected waits until `zbridge cmd` on target succeeds.
func waitConnected(t *testing.T, r *testRegion, target string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var last cmdResult
	for time.Now().Before(deadline) {
		last = runCmdProc(t, r, target, "--", "true")
		if last.code == 0 {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s never became reachable: exit %d, %s", target, last.code, last.stderr)
}

func TestCommandsThroughAgent(t *testing.T) {
	e2e(t)
	e := newAgentEnv(t)
	policy := filepath.Join(e.dir, "policy")
	os.WriteFile(policy, []byte("shell yes\ndefault allow\noutput-cap 1MiB\n"), 0o644)
	agent := e.startAgent(t, "web1", zbridgeBin, "", "--policy", policy)
	r := startRegion(t, e.regionArgs("--linux", "web1="+agent, "--linux", "down1="+peer.Addr(peer.FreePort(t)),
		"--max-per-target", "1")...)
	waitConnected(t, r, "linux:web1")

	t.Run("StdoutAndRC", func(t *testing.T) {
		res := runCmdProc(t, r, "linux:web1", "--", "echo", "hello world")
		if res.code != 0 || res.stdout != "hello world\n" {
			t.Fatalf("exit %d stdout %q stderr %q", res.code, res.stdout, res.stderr)
		}
	})
	t.Run("StderrAndReturnCode", func(t *testing.T) {
		res := runCmdProc(t, r, "linux:web1", "--", "sh", "-c", "echo out1; echo err1 >&2; echo out2; exit 7")
		if res.code != 7 || res.stdout != "out1\nout2\n" || res.stderr != "err1\n" {
			t.Fatalf("exit %d stdout %q stderr %q", res.code, res.stdout, res.stderr)
		}
	})
	t.Run("MultiLineInOrder", func(t *testing.T) {
		res := runCmdProc(t, r, "linux:web1", "--", "seq", "1", "5000")
		var want strings.Builder
		for i := 1; i <= 5000; i++ {
			fmt.Fprintf(&want, "%d\n", i)
		}
		if res.code != 0 || res.stdout != want.String() {
			t.Fatalf("exit %d, %d bytes of stdout (want %d)", res.code, len(res.stdout), want.Len())
		}
	})
	t.Run("BinarySafe", func(t *testing.T) {
		all := make([]byte, 0, 512)
		for i := 0; i < 256; i++ {
			all = append(all, byte(i))
		}
		all = append(all, all...)
		f := filepath.Join(t.TempDir(), "bytes")
		os.WriteFile(f, all, 0o644)
		os.Chmod(filepath.Dir(f), 0o755)
		res := runCmdProc(t, r, "linux:web1", "--", "cat", f)
		if res.code != 0 || res.stdout != string(all) {
			t.Fatalf("exit %d: got %d bytes, want the %d bytes of the file byte for byte", res.code, len(res.stdout), len(all))
		}
		js := runCmdProc(t, r, "--json", "linux:web1", "--", "cat", f)
		var resp jsonResponse
		if err := json.Unmarshal([]byte(js.stdout), &resp); err != nil {
			t.Fatalf("--json output: %v\n%s", err, js.stdout)
		}
		var got []byte
		for _, l := range resp.Lines {
			got = append(got, l.Data...)
			got = append(got, l.Text...)
			if l.EOL {
				got = append(got, '\n')
			}
		}
		if !bytes.Equal(got, all) || resp.RC == nil || *resp.RC != 0 {
			t.Fatalf("--json lines rebuild %d bytes (want %d), rc %v", len(got), len(all), resp.RC)
		}
	})
	t.Run("OutputCapped", func(t *testing.T) {
		res := runCmdProc(t, r, "--json", "linux:web1", "--", "head", "-c", "10000000", "/dev/zero")
		var resp jsonResponse
		if err := json.Unmarshal([]byte(res.stdout), &resp); err != nil {
			t.Fatalf("--json output: %v", err)
		}
		n := 0
		for _, l := range resp.Lines {
			n += len(l.Data) + len(l.Text)
		}
		if !resp.Truncated || n > 1<<20 || n == 0 {
			t.Fatalf("10 MB output: truncated=%v, %d bytes delivered; want truncated and at most 1 MiB", resp.Truncated, n)
		}
	})
	t.Run("TimeoutKillsProcessTree", func(t *testing.T) {
		// A child in the background and one in the foreground: both must go.
		res := runCmdProc(t, r, "--timeout", "1s", "linux:web1", "--", "sh", "-c", "sleep 3001 & sleep 3002; echo never")
		if res.code != exitNotRun || !strings.Contains(res.stderr, "timeout") {
			t.Fatalf("exit %d stderr %q; want %d and a timeout", res.code, res.stderr, exitNotRun)
		}
		waitNoProcess(t, "sleep 3001")
		waitNoProcess(t, "sleep 3002")
	})
	t.Run("Cancelled", func(t *testing.T) {
		c := exec.Command(zbridgeBin, "cmd", "--commands", r.commands, "linux:web1", "--", "sh", "-c", "exec sleep 3003")
		var errb bytes.Buffer
		c.Stderr = &errb
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		waitProcess(t, "sleep 3003")
		c.Process.Signal(syscall.SIGINT)
		done := make(chan error, 1)
		go func() { done <- c.Wait() }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			c.Process.Kill()
			t.Fatal("zbridge cmd did not end after SIGINT")
		}
		if !strings.Contains(errb.String(), "cancelled") {
			t.Errorf("stderr %q; want the command reported cancelled", errb.String())
		}
		waitNoProcess(t, "sleep 3003")
	})
	t.Run("UnknownTarget", func(t *testing.T) {
		res := runCmdProc(t, r, "linux:nosuch", "--", "true")
		if res.code != exitNotRun || !strings.Contains(res.stderr, "unknown-target") || !strings.Contains(res.stderr, "wait until the Linux system has connected") {
			t.Fatalf("exit %d stderr %q", res.code, res.stderr)
		}
	})
	t.Run("NotConnected", func(t *testing.T) {
		res := runCmdProc(t, r, "linux:down1", "--", "true")
		if res.code != exitNotRun || !strings.Contains(res.stderr, "not-connected") {
			t.Fatalf("exit %d stderr %q", res.code, res.stderr)
		}
	})
	t.Run("Busy", func(t *testing.T) {
		c := exec.Command(zbridgeBin, "cmd", "--commands", r.commands, "linux:web1", "--", "sh", "-c", "exec sleep 3004")
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { c.Process.Signal(syscall.SIGINT); c.Wait() }()
		waitProcess(t, "sleep 3004")
		res := runCmdProc(t, r, "linux:web1", "--", "true")
		if res.code != exitNotRun || !strings.Contains(res.stderr, "busy") || !strings.Contains(res.stderr, "retry after") {
			t.Fatalf("exit %d stderr %q; want busy with a retry time", res.code, res.stderr)
		}
	})
	t.Run("Agents", func(t *testing.T) {
		c := exec.Command(zbridgeBin, "agents", "--commands", r.commands)
		out, err := c.Output()
		if err != nil {
			t.Fatalf("zbridge agents: %v", err)
		}
		s := string(out)
		if !strings.Contains(s, "web1") || !strings.Contains(s, "connected") || !strings.Contains(s, "down1") {
			t.Fatalf("AGENTS:\n%s", s)
		}
	})
}

// procsMatching lists the PIDs whose command line starts with s (the
// program itself, not a shell or client that names it in an argument).
func procsMatching(s string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	self := os.Getpid()
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		stat, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if strings.Contains(string(stat), ") Z ") { // a zombie is gone but for its parent's wait
			continue
		}
		if strings.HasPrefix(strings.ReplaceAll(string(b), "\x00", " "), s) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func waitNoProcess(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if len(procsMatching(s)) == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("a process %q is still running (pids %v): orphan left behind", s, procsMatching(s))
}

func waitProcess(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if len(procsMatching(s)) > 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("process %q never started", s)
}

func TestAgentFromSyslogConnection(t *testing.T) {
	e2e(t)
	e := newAgentEnv(t)
	agentPort := peer.FreePort(t)
	// The agent listens on the region's agent port, on loopback, where the
	// syslog sender below connects from.
	addr := peer.Addr(agentPort)
	args := []string{"linuxagent", "--listen", addr, "--authorized-keys", e.authorizedKeys, "--host-key", filepath.Join(e.dir, "host_key")}
	if os.Geteuid() == 0 {
		args = append(args, "--allow-root")
	}
	peer.Start(t, peer.Command{Name: "linuxagent", Path: zbridgeBin, Args: args, Ready: peer.TCPReady(addr)})
	r := startRegion(t, e.regionArgs("--agent-port", strconv.Itoa(agentPort))...)
	host, port, _ := net.SplitHostPort(r.syslog)
	out, err := exec.Command(peer.Require(t, "logger"), "--server", host, "--port", port, "--tcp", "--octet-count",
		"--rfc5424", "-t", "autoagent", "hello from a new host").CombinedOutput()
	if err != nil {
		t.Fatalf("logger: %v: %s", err, out)
	}
	evs := tailEvents(t, "--unsolmsg", r.unsolmsg, "--after", "0", "--format", "json", "--count", "1", "--timeout", "30s")
	name := evs[0].Origin.Host
	waitConnected(t, r, "linux:"+name)
	res := runCmdProc(t, r, "linux:"+name, "--", "echo", "auto")
	if res.code != 0 || res.stdout != "auto\n" {
		t.Fatalf("exit %d stdout %q stderr %q", res.code, res.stdout, res.stderr)
	}
	res = runCmdProc(t, r, "linux:ADDR=127.0.0.1", "--", "echo", "by address")
	if res.code != 0 || res.stdout != "by address\n" {
		t.Fatalf("by address: exit %d stdout %q stderr %q", res.code, res.stdout, res.stderr)
	}
	agents, _ := exec.Command(zbridgeBin, "agents", "--commands", r.commands).Output()
	if !strings.Contains(string(agents), name) {
		t.Fatalf("AGENTS does not list %s:\n%s", name, agents)
	}
}

// startSSHD runs OpenSSH sshd on a free loopback port, authorizing key
// line for the user running the test.
func startSSHD(t *testing.T, authorized string) string {
	t.Helper()
	sshd := peer.Require(t, "sshd")
	keygen := peer.Require(t, "ssh-keygen")
	dir := t.TempDir()
	hostKey := filepath.Join(dir, "ssh_host_ed25519_key")
	if out, err := exec.Command(keygen, "-q", "-t", "ed25519", "-N", "", "-f", hostKey).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	ak := filepath.Join(dir, "authorized_keys")
	os.WriteFile(ak, []byte(authorized), 0o600)
	port := peer.FreePort(t)
	conf := filepath.Join(dir, "sshd_config")
	os.WriteFile(conf, []byte(fmt.Sprintf(`ListenAddress 127.0.0.1
Port %d
HostKey %s
PidFile %s
AuthorizedKeysFile %s
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
MaxSessions 64
`, port, hostKey, filepath.Join(dir, "sshd.pid"), ak)), 0o600)
	os.MkdirAll("/run/sshd", 0o755)
	addr := peer.Addr(port)
	peer.Start(t, peer.Command{Name: "sshd", Path: sshd, Args: []string{"-D", "-e", "-f", conf}, Ready: peer.TCPReady(addr)})
	return addr
}

func TestAgentlessSSHD(t *testing.T) {
	e2e(t)
	e := newAgentEnv(t)
	line, _ := os.ReadFile(e.authorizedKeys)
	addr := startSSHD(t, string(line))
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	r := startRegion(t, e.regionArgs("--ssh-user", u.Username, "--linux", "plain1="+addr)...)
	waitConnected(t, r, "linux:plain1")
	res := runCmdProc(t, r, "linux:plain1", "--", "sh", "-c", "echo agentless; echo warn >&2; exit 4")
	if res.code != 4 || res.stdout != "agentless\n" || res.stderr != "warn\n" {
		t.Fatalf("exit %d stdout %q stderr %q", res.code, res.stdout, res.stderr)
	}
	kh, _ := os.ReadFile(e.knownHosts)
	if !strings.Contains(string(kh), strings.TrimPrefix(addr, "127.0.0.1")) {
		t.Errorf("accept-new did not record the sshd host key in known_hosts:\n%s", kh)
	}
}

var (
	s390xOnce sync.Once
	s390xBin  string
	s390xErr  error
)

func TestAgentOnS390x(t *testing.T) {
	e2e(t)
	qemu := peer.Require(t, "qemu-s390x-static")
	s390xOnce.Do(func() {
		// In the e2e binary's folder, which TestMain removes: the build
		// serves every run of this test (-count).
		s390xBin = filepath.Join(filepath.Dir(zbridgeBin), "zbridge-s390x")
		c := peer.GoBuild([]string{"GOOS=linux", "GOARCH=s390x", "CGO_ENABLED=0"}, "-o", s390xBin, ".")
		if out, err := c.CombinedOutput(); err != nil {
			s390xErr = fmt.Errorf("%v: %s", err, out)
		}
	})
	if s390xErr != nil {
		t.Fatalf("building for s390x: %v", s390xErr)
	}
	e := newAgentEnv(t)
	agent := e.startAgent(t, "lnxz01", s390xBin, qemu)
	r := startRegion(t, e.regionArgs("--linux", "lnxz01="+agent)...)
	waitConnected(t, r, "linux:lnxz01")
	// qemu-user runs the agent as s390x; the programs it starts are this
	// host's own, so the agent's own report of its platform is the check.
	res := runCmdProc(t, r, "linux:lnxz01", "--", "sh", "-c", "echo big-endian agent; exit 2")
	if res.code != 2 || res.stdout != "big-endian agent\n" {
		t.Fatalf("exit %d stdout %q stderr %q", res.code, res.stdout, res.stderr)
	}
	agents, err := exec.Command(zbridgeBin, "agents", "--commands", r.commands).Output()
	if err != nil || !strings.Contains(string(agents), "linux/s390x") {
		t.Fatalf("AGENTS should show the agent on linux/s390x (%v):\n%s", err, agents)
	}
}
