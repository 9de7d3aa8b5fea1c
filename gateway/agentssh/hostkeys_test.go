package agentssh

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/zbridge/zbridge/internal/peer"
)

// TestHostKeys checks known_hosts handling against a real sshd: unknown keys
// refused, accept-new recording them, changed keys refused in every mode.
func TestHostKeys(t *testing.T) {
	checkLeaks(t)
	f := newFixture(t)
	port := peer.FreePort(t)
	addr := peer.Addr(port)
	hostKey := filepath.Join(f.dir, "host_key")
	key1 := f.genKey("ed25519", hostKey, "")
	sshd := f.startSSHD(port, hostKey)

	readKnown := func(t *testing.T) string {
		t.Helper()
		data, err := os.ReadFile(f.knownHosts)
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	down := func(hi HostInfo) bool { return hi.State == StateDown }
	runErr := func(t *testing.T, p *Pool) error {
		t.Helper()
		_, err := p.Run(t.Context(), "lx1", Command{Line: "true"}, nil)
		return err
	}

	t.Run("unknown refused", func(t *testing.T) {
		p := f.newPool(nil)
		defer p.Close()
		p.Add("lx1", addr)
		info := waitHost(t, p, "lx1", 5*time.Second, "down", down)
		if !errors.Is(info.LastError, ErrHostKeyUnknown) || errors.Is(info.LastError, ErrHostKeyMismatch) {
			t.Errorf("last error %v, want ErrHostKeyUnknown", info.LastError)
		}
		if want := ssh.FingerprintSHA256(key1); info.HostKeyFingerprint != want {
			t.Errorf("fingerprint %q, want %q", info.HostKeyFingerprint, want)
		}
		err := runErr(t, p)
		errorIs(t, err, ErrNotConnected, ErrHostKeyUnknown)
		if got := readKnown(t); got != "" {
			t.Errorf("known_hosts changed: %q", got)
		}
	})

	// The pool of accept-new mode stays for the subtests that follow.
	p := f.newPool(func(c *Config) { c.AcceptNew = true })
	t.Run("accept-new records", func(t *testing.T) {
		p.Add("lx1", addr)
		waitConnected(t, p, "lx1")
		if err := runErr(t, p); err != nil {
			t.Fatal(err)
		}
		want := knownhosts.Line([]string{addr}, key1) + "\n"
		if got := readKnown(t); got != want {
			t.Errorf("known_hosts %q, want %q", got, want)
		}
		if !strings.HasPrefix(want, "[127.0.0.1]:") {
			t.Errorf("line %q lacks the [host]:port form", want)
		}
		// A second pool, strict, now trusts the recorded key.
		strict := f.newPool(nil)
		defer strict.Close()
		strict.Add("lx1", addr)
		waitConnected(t, strict, "lx1")
	})

	for _, keyType := range []string{"ed25519", "ecdsa"} {
		t.Run("changed "+keyType+" key refused", func(t *testing.T) {
			before := readKnown(t)
			key := f.genKey(keyType, hostKey, "")
			reboot(t, sshd)
			fp := ssh.FingerprintSHA256(key)
			waitHost(t, p, "lx1", 5*time.Second, "refusing the new key", func(hi HostInfo) bool {
				return hi.State == StateDown && errors.Is(hi.LastError, ErrHostKeyMismatch) &&
					hi.HostKeyFingerprint == fp && strings.Contains(hi.LastError.Error(), fp)
			})
			errorIs(t, runErr(t, p), ErrNotConnected, ErrHostKeyMismatch)
			if got := readKnown(t); got != before {
				t.Errorf("known_hosts changed from %q to %q", before, got)
			}
			if !strings.Contains(f.logs.String(), "HOST KEY CHANGED") {
				t.Error("the mismatch was not logged")
			}
		})
	}

	t.Run("operator removes the stale entry", func(t *testing.T) {
		// The file is re-read when it changes: with the old line gone,
		// accept-new records the new key.
		if err := os.WriteFile(f.knownHosts, []byte("# cleared\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		info := waitConnected(t, p, "lx1")
		if info.LastError == nil {
			t.Error("the last error was forgotten")
		}
		if err := runErr(t, p); err != nil {
			t.Fatal(err)
		}
		if got := readKnown(t); !strings.HasPrefix(got, "# cleared\n[127.0.0.1]:") || strings.Count(got, "\n") != 2 {
			t.Errorf("known_hosts %q", got)
		}
	})

	t.Run("revoked", func(t *testing.T) {
		data, err := os.ReadFile(hostKey + ".pub")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f.knownHosts, append([]byte("@revoked * "), data...), 0o600); err != nil {
			t.Fatal(err)
		}
		reboot(t, sshd)
		waitHost(t, p, "lx1", 5*time.Second, "refusing the revoked key", func(hi HostInfo) bool {
			return hi.State == StateDown && errors.Is(hi.LastError, ErrHostKeyMismatch) &&
				strings.Contains(hi.LastError.Error(), "@revoked")
		})
	})
}

// TestHostKeyAlgorithms checks that the key types recorded for a host are
// asked for first: sshd holds an RSA and an ed25519 key, known_hosts only
// the RSA one, which x/crypto would not pick by itself.
func TestHostKeyAlgorithms(t *testing.T) {
	checkLeaks(t)
	f := newFixture(t)
	port := peer.FreePort(t)
	addr := peer.Addr(port)
	rsaKey := filepath.Join(f.dir, "host_rsa")
	edKey := filepath.Join(f.dir, "host_ed25519")
	rsaPub := f.genKey("rsa", rsaKey, "")
	f.genKey("ed25519", edKey, "")
	f.startSSHD(port, edKey, "HostKey "+rsaKey)
	f.pin(addr, rsaPub)
	p := f.newPool(nil)
	p.Add("lx1", addr)
	info := waitConnected(t, p, "lx1")
	if want := ssh.FingerprintSHA256(rsaPub); info.HostKeyFingerprint != want {
		t.Errorf("fingerprint %s, want the RSA key's %s", info.HostKeyFingerprint, want)
	}
}

// reboot restarts sshd after killing the processes serving its connections,
// as a reboot of the host would: a restart of sshd alone keeps them.
func reboot(t *testing.T, sshd *peer.Process) {
	t.Helper()
	conns := sessions(t, sshd)
	sshd.Stop()
	signalAll(t, conns, syscall.SIGKILL)
	sshd.Restart()
}
