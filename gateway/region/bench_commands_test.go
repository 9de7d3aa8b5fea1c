package region

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/ssh"

	"github.com/zbridge/zbridge/internal/peer"
	"github.com/zbridge/zbridge/linuxagent"
	"github.com/zbridge/zbridge/protocol"
	"github.com/zbridge/zbridge/protocol/client"
)

// reportLatency reports p50 and p99 of ds in milliseconds.
func reportLatency(b *testing.B, ds []time.Duration, prefix string) {
	if len(ds) == 0 {
		return
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	q := func(p float64) float64 {
		return float64(ds[min(len(ds)-1, int(p*float64(len(ds))))].Microseconds()) / 1000
	}
	b.ReportMetric(q(0.50), prefix+"p50-ms")
	b.ReportMetric(q(0.99), prefix+"p99-ms")
	b.ReportMetric(0, "ns/op")
}

// benchKey writes the region's key and an authorized_keys file for it.
func benchKey(b *testing.B, dir string) (keyFile, authFile string, line []byte) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	blk, err := ssh.MarshalPrivateKey(priv, "bench")
	if err != nil {
		b.Fatal(err)
	}
	keyFile = filepath.Join(dir, "region_key")
	os.WriteFile(keyFile, pem.EncodeToMemory(blk), 0o600)
	signer, _ := ssh.NewSignerFromKey(priv)
	line = ssh.MarshalAuthorizedKey(signer.PublicKey())
	authFile = filepath.Join(dir, "authorized_keys")
	os.WriteFile(authFile, line, 0o600)
	return keyFile, authFile, line
}

// startAgents runs n Linux agents in this process on loopback ports.
func startAgents(b *testing.B, n int, authFile string, log logrus.FieldLogger) []LinuxTarget {
	_, hk, _ := ed25519.GenerateKey(rand.Reader)
	host, _ := ssh.NewSignerFromKey(hk)
	var targets []LinuxTarget
	for i := 0; i < n; i++ {
		a, err := linuxagent.New(linuxagent.Config{HostKey: host, AuthorizedKeys: authFile, Logger: log,
			Name: fmt.Sprintf("agent%03d", i)})
		if err != nil {
			b.Fatal(err)
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		go a.Serve(l)
		b.Cleanup(func() { a.Close() })
		targets = append(targets, LinuxTarget{Name: fmt.Sprintf("agent%03d", i), Addr: l.Addr().String()})
	}
	return targets
}

// commandRegion starts a region with COMMANDS and the given Linux targets.
func commandRegion(b *testing.B, dir, keyFile string, targets []LinuxTarget, log logrus.FieldLogger) *Region {
	r, err := New(Config{Name: "BENCH", Commands: "127.0.0.1:0", Logger: log, SSHKeyFile: keyFile,
		// A known_hosts of each run's own: the benchmark function runs more
		// than once (b.N rising) and each run's agents have a new host key.
		KnownHostsFile: filepath.Join(b.TempDir(), "known_hosts"), AcceptNewHostKeys: true, Linux: targets,
		MaxPerSession: 1024, MaxPerTarget: 16})
	if err != nil {
		b.Fatal(err)
	}
	if err := r.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Close() })
	deadline := time.Now().Add(2 * time.Minute)
	for {
		up := 0
		for _, a := range r.Agents() {
			if a.State == "connected" {
				up++
			}
		}
		if up == len(targets) {
			return r
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d agents connected", up, len(targets))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func quiet() logrus.FieldLogger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}

// BenchmarkCommandRoundTrip measures `true` through COMMANDS → region →
// Linux agent over SSH, on one logged-on session, beside OpenSSH's own
// client running `true` over an existing ControlMaster connection to a
// loopback sshd in the same run:
//
//	go test -run '^$' -bench CommandRoundTrip -benchtime 300x ./gateway/region/
//
// The ssh side measures ssh, not a shell's start-up files: sshd runs the
// command with the login user's shell, so as root (as in CI) it logs in as
// the ordinary user zbridge-bench, which .ci/run creates with bash and
// empty .bashrc and .profile (root's ~/.bashrc costs ~95 ms here); as any
// other user it logs in as itself, and skips, saying which file, unless
// that user's start-up files are empty or absent. sshd reads the
// authorized_keys file from a directory the benchmark makes in that
// user's home and removes at the end: StrictModes (on, as by default)
// wants its path owned by root or the user and writable by no one else,
// which rules out /tmp. Each ssh run is a new process, so the two sides
// differ by ssh's process start as well; cmd/zbridge's BenchmarkCmdVsSSH
// compares whole processes on both sides.
func BenchmarkCommandRoundTrip(b *testing.B) {
	dir := b.TempDir()
	keyFile, authFile, line := benchKey(b, dir)
	b.Run("zbridge", func(b *testing.B) {
		log := quiet()
		targets := startAgents(b, 1, authFile, log)
		r := commandRegion(b, dir, keyFile, targets, log)
		ctx := context.Background()
		c, err := client.Dial(ctx, client.Config{Addr: r.Addr("commands").String(), Client: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		ds := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			start := time.Now()
			reply, err := c.Command(ctx, client.CommandRequest{Target: "linux:agent000", Command: "true"}, nil)
			if err != nil || reply.RC == nil || *reply.RC != 0 {
				b.Fatalf("command: %v %+v", err, reply)
			}
			ds = append(ds, time.Since(start))
		}
		reportLatency(b, ds, "")
	})
	b.Run("ssh-controlmaster", func(b *testing.B) {
		sshBin := peer.Require(b, "ssh")
		login := benchLogin(b)
		addr := benchSSHD(b, login, line)
		host, port, _ := net.SplitHostPort(addr)
		sock := filepath.Join(b.TempDir(), "cm")
		base := []string{"-F", "/dev/null", "-i", keyFile, "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=no",
			"-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "BatchMode=yes", "-o", "ControlPath=" + sock,
			"-p", port, "-l", login.name, host}
		peer.Start(b, peer.Command{Name: "ssh-master", Path: sshBin, Args: append([]string{"-M", "-N"}, base...),
			Ready: func(ctx context.Context) error {
				if _, err := os.Stat(sock); err != nil {
					return err
				}
				return nil
			}})
		ds := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			start := time.Now()
			if out, err := exec.Command(sshBin, append(append([]string{"-o", "ControlMaster=no"}, base...), "true")...).CombinedOutput(); err != nil || len(out) > 0 {
				b.Fatalf("ssh: %v: %q", err, out)
			}
			ds = append(ds, time.Since(start))
		}
		reportLatency(b, ds, "")
	})
}

// benchSSHUser is the ordinary user .ci/run creates for the ssh side of
// the command benchmarks when they run as root.
const benchSSHUser = "zbridge-bench"

// startupFiles are the files, relative to the login user's home, that
// sshd or the user's shell reads before running a command; they must be
// empty or absent for the ssh side to measure ssh.
var startupFiles = []string{".bashrc", ".bash_profile", ".bash_login", ".profile", ".zshenv", ".ssh/rc"}

// sshLogin is the user the ssh side logs in as.
type sshLogin struct {
	name, home string
}

// benchLogin picks the user the ssh side logs in as: zbridge-bench as
// root, else the current user; either must have empty start-up files.
func benchLogin(b *testing.B) sshLogin {
	b.Helper()
	var u *user.User
	var err error
	root := os.Geteuid() == 0
	if root {
		if u, err = user.Lookup(benchSSHUser); err != nil {
			peer.Missing(b, "as root the ssh side logs in as the ordinary user %s: %v (.ci/run creates it)", benchSSHUser, err)
		}
	} else if u, err = user.Current(); err != nil {
		b.Fatal(err)
	}
	for _, f := range startupFiles {
		fi, err := os.Stat(filepath.Join(u.HomeDir, f))
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			b.Fatal(err)
		case fi.Size() > 0 && root:
			peer.Missing(b, "%s's %s is not empty: the ssh side would measure it (.ci/run empties it)", u.Username, f)
		case fi.Size() > 0:
			b.Skipf("the ssh side logs in as %s, whose %s is not empty: it would measure that file, not ssh (run as root with the user %s, see .ci/run)",
				u.Username, f, benchSSHUser)
		}
	}
	return sshLogin{name: u.Username, home: u.HomeDir}
}

// benchSSHD starts sshd on a loopback port of its own, letting l's user
// log in with the key of the authorized_keys line given.
func benchSSHD(b *testing.B, l sshLogin, authorized []byte) string {
	sshd := peer.Require(b, "sshd")
	keygen := peer.Require(b, "ssh-keygen")
	d := b.TempDir()
	hostKey := filepath.Join(d, "host_key")
	if out, err := exec.Command(keygen, "-q", "-t", "ed25519", "-N", "", "-f", hostKey).CombinedOutput(); err != nil {
		b.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	// Made by the benchmark's user (root or the login user, as
	// StrictModes allows), writable by it alone, readable by the login
	// user, whom sshd reads it as.
	akDir, err := os.MkdirTemp(l.home, ".zbridge-bench-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(akDir) })
	if err := os.Chmod(akDir, 0o755); err != nil {
		b.Fatal(err)
	}
	ak := filepath.Join(akDir, "authorized_keys")
	if err := os.WriteFile(ak, authorized, 0o644); err != nil {
		b.Fatal(err)
	}
	port := peer.FreePort(b)
	conf := filepath.Join(d, "sshd_config")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("ListenAddress 127.0.0.1\nPort %d\nHostKey %s\nPidFile %s\nAuthorizedKeysFile %s\n"+
		"AllowUsers %s\nStrictModes yes\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n",
		port, hostKey, filepath.Join(d, "pid"), ak, l.name)), 0o600); err != nil {
		b.Fatal(err)
	}
	os.MkdirAll("/run/sshd", 0o755) // its privilege-separation directory, as root
	addr := peer.Addr(port)
	peer.Start(b, peer.Command{Name: "sshd", Path: sshd, Args: []string{"-D", "-e", "-f", conf}, Ready: peer.TCPReady(addr)})
	return addr
}

// BenchmarkFanOut200 sends one command to 200 Linux agents at once through
// one COMMANDS session and waits for every reply; it reports the time for
// the whole fan-out and each command's own round trip:
//
//	go test -run '^$' -bench FanOut200 -benchtime 20x ./gateway/region/
func BenchmarkFanOut200(b *testing.B) {
	const n = 200
	dir := b.TempDir()
	keyFile, authFile, _ := benchKey(b, dir)
	log := quiet()
	targets := startAgents(b, n, authFile, log)
	r := commandRegion(b, dir, keyFile, targets, log)
	c, err := net.Dial("tcp", r.Addr("commands").String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, `{"type":"logon","req":1,"client":"bench","version":1}`+"\n")
	rd := protocol.NewReader(bufio.NewReader(c), 1<<20)
	var f protocol.Frame
	if err := rd.Next(&f); err != nil || f.Type != protocol.TypeAccept {
		b.Fatalf("logon: %v %+v", err, f)
	}
	var whole, each []time.Duration
	req := uint64(1)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		sent := map[uint64]time.Time{}
		var buf []byte
		for _, t := range targets {
			req++
			buf, _ = protocol.AppendFrame(buf, &protocol.Frame{Type: protocol.TypeCommand, Req: req, Target: "linux:" + t.Name, Command: "true"})
			sent[req] = time.Now()
		}
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
		for len(sent) > 0 {
			if err := rd.Next(&f); err != nil {
				b.Fatal(err)
			}
			if f.Type != protocol.TypeReply {
				continue
			}
			if f.Error != nil || f.RC == nil || *f.RC != 0 {
				b.Fatalf("reply: %+v %+v", f, f.Error)
			}
			each = append(each, time.Since(sent[f.Req]))
			delete(sent, f.Req)
		}
		whole = append(whole, time.Since(start))
	}
	reportLatency(b, whole, "fanout-")
	reportLatency(b, each, "cmd-")
	b.ReportMetric(float64(n), "agents")
}
