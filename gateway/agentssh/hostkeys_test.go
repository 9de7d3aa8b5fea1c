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
		want := knownhosts.Line([]string{"lx1" + NameSuffix, addr}, key1) + "\n"
		if got := readKnown(t); got != want {
			t.Errorf("known_hosts %q, want %q", got, want)
		}
		if !strings.HasPrefix(want, "lx1@zbridge,[127.0.0.1]:") {
			t.Errorf("line %q lacks the name,[host]:port form", want)
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
		if got := readKnown(t); !strings.HasPrefix(got, "# cleared\nlx1@zbridge,[127.0.0.1]:") || strings.Count(got, "\n") != 2 {
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
	conns := sshd.Descendants()
	sshd.Stop()
	peer.SignalAll(t, conns, syscall.SIGKILL)
	sshd.Restart()
}

// TestHostKeyPinnedToName checks that a host key is pinned to the host's
// name, not only to its address: with accept-new, a name already pinned
// gets no new key by being added at a new address, and a name that moves
// must bring its key. Three sshds: 1 and 3 share a host key, 2 has its own.
func TestHostKeyPinnedToName(t *testing.T) {
	checkLeaks(t)
	f := newFixture(t)
	key1File := filepath.Join(f.dir, "host_key1")
	key2File := filepath.Join(f.dir, "host_key2")
	key1 := f.genKey("ed25519", key1File, "")
	key2 := f.genKey("ed25519", key2File, "")
	var addrs [4]string
	for i, file := range map[int]string{1: key1File, 2: key2File, 3: key1File} {
		port := peer.FreePort(t)
		addrs[i] = peer.Addr(port)
		f.startSSHD(port, file)
	}
	readKnown := func(t *testing.T) string {
		t.Helper()
		data, err := os.ReadFile(f.knownHosts)
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	line := func(name, addr string, key ssh.PublicKey) string {
		return knownhosts.Line([]string{name + NameSuffix, addr}, key) + "\n"
	}
	refused := func(t *testing.T, p *Pool, name string, key ssh.PublicKey) {
		t.Helper()
		fp := ssh.FingerprintSHA256(key)
		waitHost(t, p, name, 10*time.Second, "refused as a mismatch", func(hi HostInfo) bool {
			return hi.State == StateDown && errors.Is(hi.LastError, ErrHostKeyMismatch) && hi.HostKeyFingerprint == fp
		})
		_, err := p.Run(t.Context(), name, Command{Line: "true"}, nil)
		errorIs(t, err, ErrNotConnected, ErrHostKeyMismatch)
	}

	p := f.newPool(func(c *Config) { c.AcceptNew = true })
	t.Run("first key of a name recorded", func(t *testing.T) {
		p.Add("lx1", addrs[1])
		waitConnected(t, p, "lx1")
		if got, want := readKnown(t), line("lx1", addrs[1], key1); got != want {
			t.Fatalf("known_hosts %q, want %q", got, want)
		}
	})
	t.Run("new address with another key refused despite accept-new", func(t *testing.T) {
		before := readKnown(t)
		p.Add("lx1", addrs[2])
		refused(t, p, "lx1", key2)
		if got := readKnown(t); got != before {
			t.Errorf("known_hosts changed from %q to %q", before, got)
		}
		if !strings.Contains(f.logs.String(), "HOST KEY CHANGED") {
			t.Error("the refusal was not logged")
		}
	})
	t.Run("names compared case-insensitively", func(t *testing.T) {
		p.Add("LX1", addrs[2])
		refused(t, p, "LX1", key2)
		p.Remove("LX1")
	})
	t.Run("a name that moves with its key", func(t *testing.T) {
		p.Add("lx1", addrs[3])
		waitConnected(t, p, "lx1")
		want := line("lx1", addrs[1], key1) + line("lx1", addrs[3], key1)
		if got := readKnown(t); got != want {
			t.Errorf("known_hosts %q, want %q", got, want)
		}
	})
	t.Run("a new name at a new address", func(t *testing.T) {
		p.Add("lx2", addrs[2])
		waitConnected(t, p, "lx2")
		if got := readKnown(t); !strings.HasSuffix(got, line("lx2", addrs[2], key2)) {
			t.Errorf("known_hosts %q lacks lx2's line", got)
		}
	})
	t.Run("strict mode holds names to their pins", func(t *testing.T) {
		strict := f.newPool(nil)
		strict.Add("lx1", addrs[3])
		waitConnected(t, strict, "lx1")
		strict.Add("lx2", addrs[1]) // lx2 is pinned to key2; sshd 1 has key1
		refused(t, strict, "lx2", key1)
	})
	t.Run("a name pinned by the operator alone", func(t *testing.T) {
		kh, err := os.OpenFile(f.knownHosts, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		kh.WriteString("lx9" + NameSuffix + " " + string(ssh.MarshalAuthorizedKey(key2)))
		kh.Close()
		before := readKnown(t)
		p.Add("lx9", addrs[1]) // key1, and addrs[1] holds key1 for lx1
		refused(t, p, "lx9", key1)
		if got := readKnown(t); got != before {
			t.Errorf("known_hosts changed from %q to %q", before, got)
		}
		p.Add("lx9", addrs[2])
		waitConnected(t, p, "lx9")
	})
}

// TestHostKeyAddressPins checks known_hosts lines that pin an address only,
// as OpenSSH and earlier versions write them: a name without a pin of its
// own must present the address's key, and accept-new then pins the name.
func TestHostKeyAddressPins(t *testing.T) {
	checkLeaks(t)
	f := newFixture(t)
	key1File := filepath.Join(f.dir, "host_key1")
	key2File := filepath.Join(f.dir, "host_key2")
	key1 := f.genKey("ed25519", key1File, "")
	key2 := f.genKey("ed25519", key2File, "")
	port1, port2 := peer.FreePort(t), peer.FreePort(t)
	addr1, addr2 := peer.Addr(port1), peer.Addr(port2)
	f.startSSHD(port1, key1File)
	f.startSSHD(port2, key2File)
	f.pin(addr1, key1)
	f.pin(addr2, key1) // not sshd 2's key
	p := f.newPool(func(c *Config) { c.AcceptNew = true })

	p.Add("old", addr1)
	waitConnected(t, p, "old")
	data, _ := os.ReadFile(f.knownHosts)
	if want := knownhosts.Line([]string{"old" + NameSuffix, addr1}, key1) + "\n"; !strings.HasSuffix(string(data), want) {
		t.Errorf("known_hosts %q: the name was not pinned (want it to end with %q)", data, want)
	}
	p.Add("other", addr2)
	waitHost(t, p, "other", 10*time.Second, "refused", func(hi HostInfo) bool {
		return hi.State == StateDown && errors.Is(hi.LastError, ErrHostKeyMismatch) &&
			hi.HostKeyFingerprint == ssh.FingerprintSHA256(key2)
	})
}

// TestCheckName checks which names can be pinned, and that a host added
// under another is refused without touching known_hosts.
func TestCheckName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"web1", true}, {"LNXWEB1", true}, {"web-1.example.com", true}, {"lx_1", true}, {"10.0.0.5", true},
		{strings.Repeat("a", 253), true},
		{"", false}, {strings.Repeat("a", 254), false}, {"web*", false}, {"a,b", false}, {"!web", false},
		{"web 1", false}, {"::1", false}, {"[web]:22", false}, {"web@zbridge", false}, {"#web", false},
		{"|1|hash", false}, {"wéb", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := CheckName(tc.name); (err == nil) != tc.ok {
				t.Errorf("CheckName(%q) = %v, want ok=%v", tc.name, err, tc.ok)
			}
		})
	}
	t.Run("pool refuses to pin", func(t *testing.T) {
		checkLeaks(t)
		f := newFixture(t)
		port := peer.FreePort(t)
		hostKey := filepath.Join(f.dir, "host_key")
		f.genKey("ed25519", hostKey, "")
		f.startSSHD(port, hostKey)
		p := f.newPool(func(c *Config) { c.AcceptNew = true })
		p.Add("web*", peer.Addr(port))
		waitHost(t, p, "web*", 10*time.Second, "refused", func(hi HostInfo) bool {
			return hi.State == StateDown && errors.Is(hi.LastError, ErrHostKeyUnknown)
		})
		if data, _ := os.ReadFile(f.knownHosts); len(data) != 0 {
			t.Errorf("known_hosts %q, want it empty", data)
		}
	})
}
