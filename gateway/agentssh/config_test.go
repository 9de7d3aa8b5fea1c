package agentssh

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

func TestNewConfig(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name    string
		mod     func(*Config)
		wantErr string
	}{
		{"no signer", func(c *Config) { c.Signer = nil }, "Signer"},
		{"no logger", func(c *Config) { c.Logger = nil }, "Logger"},
		{"no known_hosts", func(c *Config) { c.KnownHostsFile = "" }, "KnownHostsFile"},
		{"missing known_hosts", func(c *Config) { c.KnownHostsFile = filepath.Join(f.dir, "nonesuch") }, "no such file"},
		{"negative timeout", func(c *Config) { c.DialTimeout = -time.Second }, "DialTimeout"},
		{"negative sessions", func(c *Config) { c.MaxSessionsPerHost = -1 }, "MaxSessionsPerHost"},
		{"negative cap", func(c *Config) { c.OutputCap = -1 }, "OutputCap"},
		{"backoff upside down", func(c *Config) { c.ReconnectMin, c.ReconnectMax = time.Minute, time.Second }, "ReconnectMax"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := f.config()
			tt.mod(&cfg)
			p, err := New(cfg)
			if err == nil {
				p.Close()
				t.Fatal("New succeeded")
			}
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want ErrConfig saying %q", err, tt.wantErr)
			}
		})
	}

	t.Run("defaults", func(t *testing.T) {
		cfg, err := Config{Signer: f.signer, Logger: f.logger(), KnownHostsFile: f.knownHosts}.withDefaults()
		if err != nil {
			t.Fatal(err)
		}
		if cfg.User != "zbridge" || cfg.MaxSessionsPerHost != 8 || cfg.OutputCap != 1<<20 ||
			cfg.KeepAlive != DefaultKeepAlive || cfg.ReconnectMax != DefaultReconnectMax {
			t.Errorf("defaults %+v", cfg)
		}
	})

	t.Run("accept-new creates known_hosts", func(t *testing.T) {
		cfg := f.config()
		cfg.AcceptNew = true
		cfg.KnownHostsFile = filepath.Join(f.dir, "new_known_hosts")
		p, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		p.Close()
		fi, err := os.Stat(cfg.KnownHostsFile)
		if err != nil || fi.Size() != 0 || fi.Mode().Perm() != 0o600 {
			t.Fatalf("known_hosts %v, %v", fi, err)
		}
	})
}

func TestLoadSigner(t *testing.T) {
	f := newFixture(t)
	path := filepath.Join(f.dir, "key")
	pub := f.genKey("ed25519", path, "")

	signer, err := LoadSigner(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(signer.PublicKey().Marshal()) != string(pub.Marshal()) {
		t.Error("public key differs from ssh-keygen's")
	}

	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadSigner(path); !errors.Is(err, ErrKeyFilePermissions) {
		t.Errorf("mode 0640: error %v, want ErrKeyFilePermissions", err)
	}

	if _, err := LoadSigner(filepath.Join(f.dir, "nonesuch")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: error %v", err)
	}

	garbage := filepath.Join(f.dir, "garbage")
	if err := os.WriteFile(garbage, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadSigner(garbage); err == nil {
		t.Error("garbage loaded")
	}

	locked := filepath.Join(f.dir, "locked")
	f.genKey("ed25519", locked, "secret passphrase")
	var pm *ssh.PassphraseMissingError
	if _, err := LoadSigner(locked); !errors.As(err, &pm) {
		t.Errorf("passphrase-protected key: error %v", err)
	}
}

// TestMaxDialsFor: the default bound on dials in progress is
// DefaultMaxDials, or an eighth of a lower descriptor limit (16 at least),
// so that a process under `ulimit -n 1024` keeps most of its descriptors
// for its connections (found in review: 1,024 dials could take them all).
func TestMaxDialsFor(t *testing.T) {
	for _, c := range []struct {
		limit uint64
		want  int
	}{{0, DefaultMaxDials}, {1 << 20, DefaultMaxDials}, {8 * DefaultMaxDials, DefaultMaxDials},
		{1024, 128}, {256, 32}, {64, 16}, {1, 16}} {
		if got := maxDialsFor(c.limit); got != c.want {
			t.Errorf("maxDialsFor(%d) = %d, want %d", c.limit, got, c.want)
		}
	}
}
