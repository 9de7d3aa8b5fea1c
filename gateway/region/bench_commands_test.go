package region

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
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
		argv := append(peer.SSHControlMaster(b, keyFile, string(line)), "true")
		ds := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			start := time.Now()
			if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil || len(out) > 0 {
				b.Fatalf("ssh: %v: %q", err, out)
			}
			ds = append(ds, time.Since(start))
		}
		reportLatency(b, ds, "")
	})
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
