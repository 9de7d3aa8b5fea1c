package linuxagent

import (
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/zbridge/zbridge/internal/peer"
	"github.com/zbridge/zbridge/internal/testparallel"
	"github.com/zbridge/zbridge/protocol/agentproto"
)

// buildTimeout bounds one build of the zbridge binary; a first build for
// s390x compiles the standard library for it (about a minute here).
const buildTimeout = 8 * time.Minute

// builds caches the zbridge binaries built during one test run, one per
// GOARCH, in a directory TestMain removes.
var builds struct {
	mu   sync.Mutex // guards the following fields
	dir  string
	bins map[string]string
	errs map[string]error
}

func TestMain(m *testing.M) {
	testparallel.Raise(8) // the parallel tests wait for keepalives and timeouts
	code := m.Run()
	builds.mu.Lock()
	if builds.dir != "" {
		os.RemoveAll(builds.dir)
	}
	builds.mu.Unlock()
	os.Exit(code)
}

// buildZbridge builds ./cmd/zbridge for linux/goarch with CGO_ENABLED=0,
// once per test run, and returns the binary's path.
func buildZbridge(t *testing.T, goarch string) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		peer.Missing(t, "go toolchain not in PATH: %v", err)
	}
	builds.mu.Lock()
	defer builds.mu.Unlock()
	if bin, ok := builds.bins[goarch]; ok {
		return bin
	}
	if err, ok := builds.errs[goarch]; ok {
		t.Fatalf("building zbridge for %s failed earlier in this run: %v", goarch, err)
	}
	if builds.dir == "" {
		if builds.dir, err = os.MkdirTemp("", "zbridge-linuxagent-test-"); err != nil {
			t.Fatal(err)
		}
		builds.bins, builds.errs = map[string]string{}, map[string]error{}
	}
	bin := filepath.Join(builds.dir, "zbridge-linux-"+goarch)
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", bin, "./cmd/zbridge")
	cmd.Dir = ".." // the module root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		builds.errs[goarch] = fmt.Errorf("%v\n%s", err, out)
		t.Fatalf("CGO_ENABLED=0 GOOS=linux GOARCH=%s go build ./cmd/zbridge: %v", goarch, builds.errs[goarch])
	}
	t.Logf("built zbridge for linux/%s in %v", goarch, time.Since(start).Round(time.Millisecond))
	builds.bins[goarch] = bin
	return bin
}

// agentFiles are the files a `zbridge linuxagent` process is given.
type agentFiles struct {
	dir, authFile, hostKey string
	client                 *userKey
}

func newAgentFiles(t *testing.T) *agentFiles {
	dir := t.TempDir()
	f := &agentFiles{dir: dir, authFile: filepath.Join(dir, "authorized_keys"), hostKey: filepath.Join(dir, "host_key")}
	f.client = newUserKey(t, dir, "region_key")
	if err := os.WriteFile(f.authFile, f.client.authKey, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// hostPublicKey reads the public key the agent wrote beside its generated
// host key.
func (f *agentFiles) hostPublicKey(t *testing.T) ssh.PublicKey {
	t.Helper()
	data, err := os.ReadFile(f.hostKey + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	pk, _, _, _, err := ssh.ParseAuthorizedKey(data)
	if err != nil {
		t.Fatal(err)
	}
	return pk
}

// rootArgs returns --allow-root when the tests run as root (as CI does),
// which the agent refuses without it.
func rootArgs() []string {
	if os.Geteuid() == 0 {
		return []string{"--allow-root"}
	}
	return nil
}

// processAgent is a `zbridge linuxagent` process, reached like an
// in-process one.
func processAgent(t *testing.T, f *agentFiles, port int) *testAgent {
	t.Helper()
	return &testAgent{addr: peer.Addr(port), port: port, dir: f.dir, client: f.client, authFile: f.authFile,
		hostKey: f.hostPublicKey(t)}
}

// TestBinaryStopsOnSIGTERM runs in the full suite only (CI): it builds
// the zbridge binary, and -short keeps under its budget.
func TestBinaryStopsOnSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the zbridge binary: in the full suite only")
	}
	bin := buildZbridge(t, runtime.GOARCH)
	f := newAgentFiles(t)
	port := peer.FreePort(t)
	p := peer.Start(t, peer.Command{
		Name: "zbridge-linuxagent",
		Path: bin,
		Args: append([]string{"linuxagent", "--listen", peer.Addr(port), "--authorized-keys", f.authFile, "--host-key", f.hostKey,
			"--name", "native", "--shutdown-timeout", "10s"}, rootArgs()...),
		Ready: peer.TCPReady(peer.Addr(port)),
	})
	a := processAgent(t, f, port)
	s := newOpenSSH(t, a)
	if r := s.run(t, nil, "echo", "native"); string(r.stdout) != "native\n" {
		t.Fatalf("echo through the binary: %q, exit %d, stderr %q", r.stdout, r.code, r.stderr)
	}
	// A command running at SIGTERM finishes; then the agent exits 0.
	// The exec is answered before the signal: a session whose exec came
	// after it runs nothing, and is closed.
	done := startCommand(t, a.dial(t, f.client.signer), "sh -c 'sleep 1; echo finished'")
	// To the agent alone, as its unit's KillMode=mixed sends it. The
	// exec's answer comes before the command is started, so a signal to
	// the agent's process group could reach the child between its fork
	// and its setpgid, and end it (a CI run saw signal=TERM after 1 ms).
	if err := syscall.Kill(p.Pid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if string(r.stdout) != "finished\n" || r.exitStatus != 0 {
			t.Errorf("command running at SIGTERM: %q, status %d", r.stdout, r.exitStatus)
		}
	case <-time.After(waitTimeout):
		t.Fatal("the command did not finish")
	}
	if err := p.Wait(); err != nil {
		t.Errorf("agent exit after SIGTERM: %v; want 0\n%s", err, p.Log())
	}
	if log := p.Log(); !strings.Contains(log, "signal received; shutting down") {
		t.Errorf("log lacks the shutdown:\n%s", log)
	}
}

// TestS390x runs the agent built for linux/s390x under qemu-user and runs
// commands through it with OpenSSH. qemu-user emulates the agent process
// only: the programs it executes are the host's own, run natively (there
// is no s390x userland here, and no binfmt_misc), so `uname -m` reports
// the host's machine. That the agent itself runs as s390x is shown by the
// binary's ELF header and by the platform the agent reports in its result.
func TestS390x(t *testing.T) {
	qemu := peer.Require(t, "qemu-s390x-static")
	bin := buildZbridge(t, "s390x")
	ef, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	if ef.Machine != elf.EM_S390 || ef.Data != elf.ELFDATA2MSB || ef.Class != elf.ELFCLASS64 {
		t.Errorf("binary is %v %v %v, want 64-bit big-endian S390", ef.Class, ef.Data, ef.Machine)
	}
	ef.Close()

	f := newAgentFiles(t)
	port := peer.FreePort(t)
	p := peer.Start(t, peer.Command{
		Name: "zbridge-linuxagent-s390x",
		Path: qemu,
		Args: append([]string{bin, "linuxagent", "--listen", peer.Addr(port), "--authorized-keys", f.authFile,
			"--host-key", f.hostKey, "--name", "lnxz01", "--log-level", "debug"}, rootArgs()...),
		Ready:        peer.TCPReady(peer.Addr(port)),
		ReadyTimeout: 60 * time.Second,
	})
	a := processAgent(t, f, port)
	s := newOpenSSH(t, a)

	if r := s.run(t, nil, "echo", "hello"); string(r.stdout) != "hello\n" || r.code != 0 {
		t.Errorf("echo hello: stdout %q, exit %d, stderr %q", r.stdout, r.code, r.stderr)
	}
	hostMachine, err := exec.Command("uname", "-m").Output()
	if err != nil {
		t.Fatal(err)
	}
	r := s.run(t, nil, "uname", "-m")
	if r.code != 0 || string(r.stdout) != string(hostMachine) {
		t.Errorf("uname -m: %q, exit %d; want the host's %q (qemu-user runs the agent's children natively)", r.stdout, r.code, hostMachine)
	}
	t.Logf("uname -m through the s390x agent: %q", strings.TrimSpace(string(r.stdout)))
	if r := s.run(t, nil, "sh -c 'exit 7'"); r.code != 7 {
		t.Errorf("exit status through the s390x agent: %d", r.code)
	}

	// The agent's own platform, over a raw channel, with the result.
	c := a.dial(t, f.client.signer)
	if v := string(c.ServerVersion()); v != ServerVersion {
		t.Errorf("server version %q", v)
	}
	res := runCommand(t, c, "echo result", map[string]string{agentproto.EnvCommandID: "s390x-1"})
	if res.result == nil || res.result.Platform != "linux/s390x" || res.result.Agent != "lnxz01" || res.result.CommandID != "s390x-1" {
		t.Errorf("result %+v: want platform linux/s390x from agent lnxz01", res.result)
	}
	// A timeout still kills the whole group under emulation.
	tr := runCommand(t, c, `sh -c 'sleep 1000 & sleep 1000'`, map[string]string{agentproto.EnvTimeout: "1"})
	if tr.result == nil || !tr.result.TimedOut || tr.result.PID == 0 {
		t.Fatalf("timeout under qemu: %+v", tr.result)
	}
	if live := liveGroupMembers(t, tr.result.PID); len(live) > 0 {
		t.Errorf("process group %d outlived the timeout: %q", tr.result.PID, live)
	}
	// And SIGTERM stops it cleanly.
	// To the agent alone, as its unit's KillMode=mixed sends it. The
	// exec's answer comes before the command is started, so a signal to
	// the agent's process group could reach the child between its fork
	// and its setpgid, and end it (a CI run saw signal=TERM after 1 ms).
	if err := syscall.Kill(p.Pid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(); err != nil {
		t.Errorf("s390x agent exit after SIGTERM: %v", err)
	}
}

// TestBinaryHardening runs `zbridge linuxagent` as it is deployed and
// checks what it does to protect the system from its own circumstances:
// it refuses root without --allow-root and a policy file others could
// change, and the commands it runs inherit none of the descriptors its
// parent left open and run with no_new_privs (in this CGO_ENABLED=0 build;
// TestNoNewPrivs runs in the test binary, with cgo).
func TestBinaryHardening(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the zbridge binary: in the full suite only")
	}
	bin := buildZbridge(t, runtime.GOARCH)
	f := newAgentFiles(t)
	// agent runs the agent to its exit, which must come soon: it is one
	// that refuses to start.
	agent := func(t *testing.T, args ...string) (int, string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
		defer cancel()
		args = append([]string{"linuxagent", "--listen", peer.Addr(peer.FreePort(t)), "--authorized-keys", f.authFile,
			"--host-key", f.hostKey}, args...)
		out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("zbridge %s: %v, want a refusal\n%s", strings.Join(args, " "), err, out)
		}
		return ee.ExitCode(), string(out)
	}

	t.Run("root", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("not root here: TestCheckUser plays root")
		}
		code, out := agent(t)
		if code != 1 || !strings.Contains(out, "refusing to run as root") || !strings.Contains(out, "--allow-root") {
			t.Errorf("as root without --allow-root: exit %d, %q; want 1 and a message naming --allow-root", code, out)
		}
	})
	t.Run("unsafe policy", func(t *testing.T) {
		policy := filepath.Join(f.dir, "policy")
		if err := os.WriteFile(policy, []byte("default allow\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(policy, 0o646); err != nil {
			t.Fatal(err)
		}
		code, out := agent(t, append(rootArgs(), "--policy", policy)...)
		if want := "--policy: " + policy + " (mode 0646"; code != 2 || !strings.Contains(out, want) {
			t.Errorf("policy writable by others: exit %d, %q; want 2 and %q", code, out, want)
		}
	})
	t.Run("commands", func(t *testing.T) {
		secret := filepath.Join(f.dir, "inherited-secret")
		if err := os.WriteFile(secret, []byte("the parent's\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		sf, err := os.Open(secret)
		if err != nil {
			t.Fatal(err)
		}
		defer sf.Close()
		port := peer.FreePort(t)
		var log syncBuffer
		cmd := exec.Command(bin, append([]string{"linuxagent", "--listen", peer.Addr(port), "--authorized-keys", f.authFile,
			"--host-key", f.hostKey}, rootArgs()...)...)
		cmd.ExtraFiles = []*os.File{sf} // descriptor 3 of the agent, not close-on-exec
		cmd.Stdout, cmd.Stderr = &log, &log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		t.Cleanup(func() {
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(waitTimeout):
				cmd.Process.Kill()
				<-exited
			}
			if t.Failed() {
				t.Logf("agent log:\n%s", log.String())
			}
		})
		peer.WaitTCP(t, peer.Addr(port), 60*time.Second)
		if got, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/3", cmd.Process.Pid)); err != nil || got != secret {
			t.Fatalf("the agent's descriptor 3 is %q, %v; want %s", got, err, secret)
		}

		c := processAgent(t, f, port).dial(t, f.client.signer)
		r := runCommand(t, c, "ls -l /proc/self/fd", nil)
		if r.exitStatus != 0 || !strings.Contains(string(r.stdout), " 0 -> /dev/null") {
			t.Fatalf("ls -l /proc/self/fd: status %d, %q", r.exitStatus, r.stdout)
		}
		if strings.Contains(string(r.stdout), secret) {
			t.Errorf("the command inherited the agent's descriptor of %s:\n%s", secret, r.stdout)
		}
		r = runCommand(t, c, "grep NoNewPrivs /proc/self/status", nil)
		if got := strings.Join(strings.Fields(string(r.stdout)), " "); got != "NoNewPrivs: 1" {
			t.Errorf("a command of the CGO_ENABLED=0 agent: %q, want NoNewPrivs: 1", r.stdout)
		}
	})
}
