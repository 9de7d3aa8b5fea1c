package agentssh

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/zbridge/zbridge/internal/peer"
)

// fixture holds what the tests against a real sshd share: the region's key,
// the authorized_keys and known_hosts files, and the log.
type fixture struct {
	t          testing.TB
	dir        string
	sshd       string // path of sshd
	keygen     string // path of ssh-keygen
	user       string // the user running the test, who logs in
	keyPath    string // the region's private key
	signer     ssh.Signer
	authKeys   string
	knownHosts string
	logs       *syncBuffer // everything every pool of the fixture logged
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{
		t:      t,
		dir:    t.TempDir(),
		sshd:   peer.Require(t, "sshd"),
		keygen: peer.Require(t, "ssh-keygen"),
		logs:   &syncBuffer{},
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	f.user = u.Username
	f.keyPath = filepath.Join(f.dir, "region_ed25519")
	pub := f.genKey("ed25519", f.keyPath, "")
	if f.signer, err = LoadSigner(f.keyPath); err != nil {
		t.Fatal(err)
	}
	f.authKeys = filepath.Join(f.dir, "authorized_keys")
	if err := os.WriteFile(f.authKeys, ssh.MarshalAuthorizedKey(pub), 0o600); err != nil {
		t.Fatal(err)
	}
	f.knownHosts = filepath.Join(f.dir, "known_hosts")
	if err := os.WriteFile(f.knownHosts, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// genKey makes a new key pair at path (replacing any) with ssh-keygen and
// returns its public key.
func (f *fixture) genKey(keyType, path, passphrase string) ssh.PublicKey {
	f.t.Helper()
	os.Remove(path)
	os.Remove(path + ".pub")
	args := []string{"-q", "-t", keyType, "-N", passphrase, "-C", "zbridge-test", "-f", path}
	if keyType == "rsa" {
		args = append(args, "-b", "2048") // the default 3072 takes seconds
	}
	out, err := exec.Command(f.keygen, args...).CombinedOutput()
	if err != nil {
		f.t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	data, err := os.ReadFile(path + ".pub")
	if err != nil {
		f.t.Fatal(err)
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(data)
	if err != nil {
		f.t.Fatal(err)
	}
	return pub
}

// startSSHD starts sshd on 127.0.0.1:port with the host key at hostKey and
// the fixture's authorized_keys, plus any extra configuration lines.
func (f *fixture) startSSHD(port int, hostKey string, extra ...string) *peer.Process {
	f.t.Helper()
	conf := filepath.Join(f.dir, fmt.Sprintf("sshd_config.%d", port))
	lines := []string{
		"ListenAddress " + peer.Loopback,
		fmt.Sprintf("Port %d", port),
		"HostKey " + hostKey,
		"PidFile " + filepath.Join(f.dir, fmt.Sprintf("sshd.%d.pid", port)),
		"AuthorizedKeysFile " + f.authKeys,
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"UsePAM no",
		"StrictModes no",
		"AllowUsers " + f.user,
	}
	if os.Geteuid() == 0 {
		lines = append(lines, "PermitRootLogin prohibit-password")
	}
	lines = append(lines, extra...)
	if err := os.WriteFile(conf, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		f.t.Fatal(err)
	}
	// The privilege separation directory; only root can make it, and only
	// root needs it.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil && os.Geteuid() == 0 {
		f.t.Fatal(err)
	}
	return peer.Start(f.t, peer.Command{
		Name:  fmt.Sprintf("sshd-%d", port),
		Path:  f.sshd,
		Args:  []string{"-D", "-e", "-f", conf},
		Ready: peer.TCPReady(peer.Addr(port)),
	})
}

// pin records key as addr's host key in the fixture's known_hosts.
// pinnedSSHD starts sshd (with extra config lines) on a free loopback port
// with a new ed25519 host key, pinned in the fixture's known_hosts, and
// returns its address.
func (f *fixture) pinnedSSHD(extra ...string) (string, *peer.Process) {
	f.t.Helper()
	port := peer.FreePort(f.t)
	addr := peer.Addr(port)
	hostKey := filepath.Join(f.dir, "host_ed25519")
	f.pin(addr, f.genKey("ed25519", hostKey, ""))
	return addr, f.startSSHD(port, hostKey, extra...)
}

func (f *fixture) pin(addr string, key ssh.PublicKey) {
	f.t.Helper()
	kh, err := os.OpenFile(f.knownHosts, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		f.t.Fatal(err)
	}
	defer kh.Close()
	if _, err := kh.WriteString(knownhosts.Line([]string{addr}, key) + "\n"); err != nil {
		f.t.Fatal(err)
	}
}

// config returns a Config for the fixture, with short backoffs.
func (f *fixture) config() Config {
	return Config{
		Signer:         f.signer,
		User:           f.user,
		KnownHostsFile: f.knownHosts,
		DialTimeout:    5 * time.Second,
		ReconnectMin:   50 * time.Millisecond,
		ReconnectMax:   500 * time.Millisecond,
		Logger:         f.logger(),
	}
}

// newPool makes a pool from the fixture's config changed by mod, closed
// when the test ends.
func (f *fixture) newPool(mod func(*Config)) *Pool {
	f.t.Helper()
	cfg := f.config()
	if mod != nil {
		mod(&cfg)
	}
	p, err := New(cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { p.Close() })
	return p
}

// logger logs at debug level to the test log and to f.logs.
func (f *fixture) logger() logrus.FieldLogger {
	l := logrus.New()
	l.SetLevel(logrus.DebugLevel)
	l.SetOutput(&testWriter{t: f.t, also: f.logs})
	return l
}

// testWriter writes each log entry to the test log and a buffer.
type testWriter struct {
	t    testing.TB
	also *syncBuffer
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.also.Write(p)
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitHost waits until the named host's info satisfies ok, failing the test
// after timeout.
func waitHost(t testing.TB, p *Pool, name string, timeout time.Duration, what string, ok func(HostInfo) bool) HostInfo {
	t.Helper()
	// timeout is what the case needs on an idle machine; a loaded one gets
	// a generous floor (this waits for a state, it does not time it).
	deadline := time.Now().Add(max(timeout, 30*time.Second))
	for {
		var info HostInfo
		for _, hi := range p.Hosts() {
			if hi.Name == name {
				info = hi
			}
		}
		if info.Name != "" && ok(info) {
			return info
		}
		if time.Now().After(deadline) {
			t.Fatalf("host %s not %s after %v: %+v", name, what, timeout, info)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func waitConnected(t testing.TB, p *Pool, name string) HostInfo {
	t.Helper()
	return waitHost(t, p, name, 10*time.Second, "connected", func(hi HostInfo) bool { return hi.State == StateConnected })
}

// capture collects a command's output.
type capture struct {
	mu   sync.Mutex // guards outs
	outs []Output
}

func (c *capture) add(o Output) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.outs = append(c.outs, o)
}

// stream returns what the command wrote to the stream, newlines restored.
func (c *capture) stream(n int) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b []byte
	for _, o := range c.outs {
		if o.Stream == n {
			b = append(b, o.Data...)
			if o.EOL {
				b = append(b, '\n')
			}
		}
	}
	return b
}

// lines returns the Data of each Output of the stream.
func (c *capture) lines(n int) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var lines []string
	for _, o := range c.outs {
		if o.Stream == n {
			lines = append(lines, string(o.Data))
		}
	}
	return lines
}

// checkLeaks makes the test fail, when it ends, if goroutines of this
// package or of x/crypto/ssh are left (other than the tests' own). Call it
// first, so that it runs after every other cleanup; the tests do not run in
// parallel, so every pool is closed by then.
func checkLeaks(t testing.TB) {
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for {
			leaked := leakedGoroutines()
			if len(leaked) == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("%d goroutines left after Close:\n%s", len(leaked), strings.Join(leaked, "\n\n"))
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

func leakedGoroutines() []string {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var leaked []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		ours := strings.Contains(g, "gateway/agentssh.") || strings.Contains(g, "golang.org/x/crypto/ssh")
		if ours && !strings.Contains(g, "_test.go") {
			leaked = append(leaked, g)
		}
	}
	return leaked
}

// killProcess kills the process with the given command line, if there is
// one: a command sshd could not stop.
func killProcess(cmdline string) {
	dirs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, d := range dirs {
		data, err := os.ReadFile(d)
		if err == nil && strings.TrimSuffix(string(data), "\x00") == cmdline {
			var pid int
			if _, err := fmt.Sscan(filepath.Base(filepath.Dir(d)), &pid); err == nil {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
}

// processGone waits until no process has the given command line (arguments
// joined by NUL, as in /proc/PID/cmdline), reporting whether it happened
// within timeout.
func processGone(cmdline string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		found := false
		dirs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
		for _, d := range dirs {
			data, err := os.ReadFile(d)
			if err == nil && strings.TrimSuffix(string(data), "\x00") == cmdline {
				found = true
				break
			}
		}
		if !found {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// errorIs fails the test unless err wraps every one of wants.
func errorIs(t testing.TB, err error, wants ...error) {
	t.Helper()
	for _, want := range wants {
		if !errors.Is(err, want) {
			t.Fatalf("error %v; want one wrapping %v", err, want)
		}
	}
}

// quietLogger logs warnings and worse to the standard error, for
// benchmarks, where the test log would cost more than what is measured.
func quietLogger() logrus.FieldLogger {
	l := logrus.New()
	l.SetLevel(logrus.WarnLevel)
	return l
}
