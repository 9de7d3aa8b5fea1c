//go:build !lean

package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/zbridge/zbridge/gateway/auth"
	"github.com/zbridge/zbridge/internal/peer"
)

// BenchmarkCmdVsSSH times whole processes, as a user or a script runs
// them: `zbridge cmd linux:X -- true` with the lean build (lean.go, the
// client a host that runs scripts installs) and with the full one,
// beside `ssh HOST true` over an OpenSSH ControlMaster connection already
// up, run in turn (the order rotating) so that all see the same load. It
// reports the p50 and p99 of each in milliseconds (zbridge- the lean
// build, full- the full one), ratio-p50, p50(lean) / p50(ssh), and
// full-ratio-p50:
//
//	go test -run '^$' -bench CmdVsSSH -benchtime 300x ./cmd/zbridge/
//
// The full zbridge is the binary built from this tree (TestMain's, or one
// built into the benchmark's temporary directory under -short), or the one
// $ZBRIDGE_BENCH_BIN names, to time another build the same way; the lean
// one is built from this tree with CGO_ENABLED=0. The full one runs a region
// process (`zbridge region --config`, with a client "bench" whose secret
// is hashed with the package auth's argon2id parameters and a role that
// may run `true` on linux:X; an on-disk store, no audit log) and a Linux
// agent process (`zbridge linuxagent`, default policy) on loopback ports.
// Each `zbridge cmd` is a new process that reads its secret from
// --secret-file, dials COMMANDS, logs on, runs the command, logs off and
// exits, as a script calling it does.
//
// The ssh side gets OpenSSH's own recipe for many short commands: one
// master connection (ssh -M, ControlPath) to a loopback sshd the benchmark
// starts on a port of its own (public-key authentication, StrictModes on,
// no PAM), and each `ssh -o ControlMaster=no ... true` a new process
// that runs its command over the master. sshd runs the command with the
// login user's shell, so the user is chosen for ssh to be measured rather
// than start-up files: when the benchmark runs as root (as in CI) it logs
// in as the ordinary user zbridge-bench, which .ci/run creates with bash
// and empty .bashrc and .profile (root's own ~/.bashrc costs ~95 ms here);
// as any other user it logs in as itself, and skips, saying which file,
// unless that user's start-up files are empty or absent. The
// authorized_keys file sshd reads lies in a directory the benchmark
// makes in that user's home and removes at the end (StrictModes wants its
// path owned by root or the user and writable by no one else, which rules
// out /tmp).
//
// Both sides skip (or fail under ZBRIDGE_REQUIRE_PEERS=1) when sshd or
// ssh is missing, or when running as root without zbridge-bench.
func BenchmarkCmdVsSSH(b *testing.B) {
	// The ssh side first: it may skip.
	clientKey, clientLine := benchKeyPair(b, b.TempDir(), "client_key")
	sshArgv := append(peer.SSHControlMaster(b, clientKey, clientLine), "true")

	// The zbridge side.
	bin := benchBinary(b)
	dir := b.TempDir()
	regionKey, regionAuth := benchKeyPair(b, dir, "region_key")
	agentAuth := filepath.Join(dir, "agent_authorized_keys")
	writeBenchFile(b, agentAuth, regionAuth, 0o600)
	agentAddr := peer.Addr(peer.FreePort(b))
	agentArgs := []string{"linuxagent", "--listen", agentAddr, "--authorized-keys", agentAuth,
		"--host-key", filepath.Join(dir, "agent_host_key"), "--name", "X"}
	if os.Geteuid() == 0 {
		agentArgs = append(agentArgs, "--allow-root")
	}
	peer.Start(b, peer.Command{Name: "linuxagent", Path: bin, Args: agentArgs, Ready: peer.TCPReady(agentAddr)})

	const secret = "bench-secret-6b1f0c2a9e"
	hash, err := auth.Hash(secret)
	if err != nil {
		b.Fatal(err)
	}
	config := filepath.Join(dir, "zbridge.toml")
	writeBenchFile(b, config, fmt.Sprintf(`[[client]]
name = "bench"
secret-hash = %q
roles = ["bench"]

[[role]]
name = "bench"
ports = ["commands"]
  [[role.target]]
  pattern = "linux:X"
  commands = ["true"]
`, hash), 0o600)
	secretFile := filepath.Join(dir, "bench.secret")
	writeBenchFile(b, secretFile, secret+"\n", 0o600)
	commandsAddr := peer.Addr(peer.FreePort(b))
	peer.Start(b, peer.Command{Name: "region", Path: bin, Args: []string{"region", "--name", "BENCH",
		"--config", config, "--commands", commandsAddr, "--syslog", "", "--syslog-udp", "", "--unsolmsg", "",
		"--vmmon", "", "--http", "", "--data-dir", filepath.Join(dir, "data"),
		"--ssh-key", regionKey, "--known-hosts", filepath.Join(dir, "known_hosts"), "--accept-new-host-keys",
		"--linux", "X=" + agentAddr}, Ready: peer.TCPReady(commandsAddr)})
	cmdArgs := []string{"cmd", "--commands", commandsAddr, "--client", "bench", "--secret-file", secretFile,
		"linux:X", "--", "true"}
	// The client as a host that runs scripts installs it: the lean build
	// (lean.go); beside it the full build, which a host with the region
	// or an agent has.
	leanArgv := append([]string{buildLean(b, b.TempDir())}, cmdArgs...)
	zbridgeArgv := append([]string{bin}, cmdArgs...)

	run := func(argv []string) (time.Duration, error) {
		var out bytes.Buffer
		c := exec.Command(argv[0], argv[1:]...)
		c.Stdout, c.Stderr = &out, &out
		start := time.Now()
		err := c.Run()
		took := time.Since(start)
		if err == nil && out.Len() > 0 {
			err = errors.New("output where none was expected")
		}
		if err != nil {
			return took, fmt.Errorf("%s: %w: %q", argv[0], err, out.String())
		}
		return took, nil
	}
	// Until the region's connection to the agent is up; then a few runs
	// of each unmeasured, as the first logon of a client hashes its secret
	// (later ones find it in the region's cache for auth.CacheTTL).
	deadline := time.Now().Add(time.Minute)
	for {
		_, err := run(zbridgeArgv)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	argvs := [3][]string{leanArgv, sshArgv, zbridgeArgv}
	for range 3 {
		for _, argv := range argvs {
			if _, err := run(argv); err != nil {
				b.Fatal(err)
			}
		}
	}

	var ds [3][]time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := range 3 {
			side := (i + j) % 3 // each side first, second and last in turn
			d, err := run(argvs[side])
			if err != nil {
				b.Fatal(err)
			}
			ds[side] = append(ds[side], d)
		}
	}
	b.StopTimer()
	lp50, lp99 := percentiles(ds[0])
	sp50, sp99 := percentiles(ds[1])
	zp50, zp99 := percentiles(ds[2])
	b.ReportMetric(lp50, "zbridge-p50-ms")
	b.ReportMetric(lp99, "zbridge-p99-ms")
	b.ReportMetric(zp50, "full-p50-ms")
	b.ReportMetric(zp99, "full-p99-ms")
	b.ReportMetric(sp50, "ssh-p50-ms")
	b.ReportMetric(sp99, "ssh-p99-ms")
	b.ReportMetric(lp50/sp50, "ratio-p50")
	b.ReportMetric(zp50/sp50, "full-ratio-p50")
	b.ReportMetric(0, "ns/op")
}

// percentiles returns the p50 and p99 of ds in milliseconds.
func percentiles(ds []time.Duration) (p50, p99 float64) {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	q := func(p float64) float64 {
		return float64(ds[min(len(ds)-1, int(p*float64(len(ds))))].Microseconds()) / 1000
	}
	return q(0.50), q(0.99)
}

// benchBinary returns the zbridge binary: $ZBRIDGE_BENCH_BIN, or
// TestMain's, or, under -short (when TestMain builds none), one built into
// the benchmark's directory.
func benchBinary(b *testing.B) string {
	if bin := os.Getenv("ZBRIDGE_BENCH_BIN"); bin != "" {
		return bin
	}
	if zbridgeBin != "" {
		return zbridgeBin
	}
	bin := filepath.Join(b.TempDir(), "zbridge")
	if out, err := peer.GoBuild(nil, "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("building zbridge: %v\n%s", err, out)
	}
	return bin
}

func writeBenchFile(b *testing.B, path, content string, mode os.FileMode) {
	b.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		b.Fatal(err)
	}
}

// benchKeyPair writes a new ed25519 private key (OpenSSH format, mode
// 0600) and returns its path and its authorized_keys line.
func benchKeyPair(b *testing.B, dir, name string) (path, authorized string) {
	b.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	blk, err := ssh.MarshalPrivateKey(priv, name)
	if err != nil {
		b.Fatal(err)
	}
	path = filepath.Join(dir, name)
	writeBenchFile(b, path, string(pem.EncodeToMemory(blk)), 0o600)
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		b.Fatal(err)
	}
	return path, string(ssh.MarshalAuthorizedKey(signer.PublicKey()))
}
