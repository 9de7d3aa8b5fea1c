package agentssh

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

func newTestKey(t *testing.T) ssh.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// describe renders a callback's answer for comparison.
func describe(err error) string {
	var keyErr *knownhosts.KeyError
	var revoked *knownhosts.RevokedError
	switch {
	case err == nil:
		return "accepted"
	case errors.As(err, &revoked):
		return fmt.Sprintf("revoked %s:%d", revoked.Revoked.Filename, revoked.Revoked.Line)
	case errors.As(err, &keyErr):
		var b strings.Builder
		b.WriteString("want")
		for _, w := range keyErr.Want {
			fmt.Fprintf(&b, " %s:%d:%s", w.Filename, w.Line, ssh.FingerprintSHA256(w.Key))
		}
		return b.String()
	}
	return "error " + err.Error()
}

// TestKnownHostsIndexAgrees checks that the index answers every lookup as
// knownhosts does, for the lines it indexes, and refuses to index the
// lines it cannot answer for.
func TestKnownHostsIndexAgrees(t *testing.T) {
	k1, k2, k3, revoked := newTestKey(t), newTestKey(t), newTestKey(t), newTestKey(t)
	lines := []string{
		"# a comment",
		"",
		knownhosts.Line([]string{"web1@zbridge", "10.0.0.5:7022"}, k1),
		knownhosts.Line([]string{"web2@zbridge"}, k2),
		knownhosts.Line([]string{"10.0.0.5:7022"}, k2), // a second key for an address
		"  " + knownhosts.Line([]string{"plainhost"}, k3) + " a comment",
		"10.0.0.9:2222,10.0.0.9:2222 " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k3))), // unbracketed, twice
		"@cert-authority " + knownhosts.Line([]string{"ca.example"}, k1),
		"@revoked " + knownhosts.Line([]string{"anything"}, revoked),
		knownhosts.Line([]string{"web3@zbridge"}, revoked),
	}
	path := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	want, err := knownhosts.New(path)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	ix, indexable, err := parseKnownHosts(path, data)
	if err != nil || !indexable {
		t.Fatalf("parse: indexable %v, %v", indexable, err)
	}
	remote := addrString("10.0.0.5:7022")
	queries := []string{"[web1@zbridge]:22", "[web2@zbridge]:22", "[web3@zbridge]:22", "[nosuch@zbridge]:22",
		"10.0.0.5:7022", "[10.0.0.5]:7022", "10.0.0.5:22", "plainhost:22", "[plainhost]:22", "plainhost:2222",
		"10.0.0.9:2222", "[10.0.0.9]:2222", "ca.example:22", "", "[::1]:22"}
	for _, q := range queries {
		for i, key := range []ssh.PublicKey{k1, k2, k3, revoked, newTestKey(t)} {
			t.Run(fmt.Sprintf("%s/key%d", q, i), func(t *testing.T) {
				w, g := describe(want(q, remote, key)), describe(ix.callback(q, remote, key))
				if w != g {
					t.Errorf("index says %q, knownhosts %q", g, w)
				}
			})
		}
	}

	for _, line := range []string{
		knownhosts.Line([]string{knownhosts.HashHostname("web1@zbridge")}, k1),
		knownhosts.Line([]string{"*.example.com"}, k1),
		knownhosts.Line([]string{"web?"}, k1),
		knownhosts.Line([]string{"web1", "!web2"}, k1),
	} {
		if _, indexable, err := parseKnownHosts(path, []byte(line+"\n")); err != nil || indexable {
			t.Errorf("%q: indexable %v, error %v; want not indexable", line, indexable, err)
		}
	}
	for _, bad := range []string{"host", "host ssh-ed25519", "host ssh-ed25519 !!!", "@bogus host ssh-ed25519 AAAA",
		"host ssh-rsa " + strings.Fields(string(ssh.MarshalAuthorizedKey(k1)))[1]} {
		_, _, gotErr := parseKnownHosts(path, []byte(bad+"\n"))
		os.WriteFile(path, []byte(bad+"\n"), 0o600)
		_, wantErr := knownhosts.New(path)
		if (gotErr == nil) != (wantErr == nil) {
			t.Errorf("%q: index error %v, knownhosts error %v", bad, gotErr, wantErr)
		}
	}
}

// TestKnownHostsAppendIndexed checks that lines appended in accept-new
// mode go into the index without a re-read, and that it then answers as
// knownhosts reading the file afresh does; and that a file changed by
// someone else meanwhile is read again.
func TestKnownHostsAppendIndexed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "known_hosts")
	k1 := newTestKey(t)
	// No newline at the end: the append starts one.
	if err := os.WriteFile(path, []byte(knownhosts.Line([]string{"old@zbridge"}, k1)), 0o600); err != nil {
		t.Fatal(err)
	}
	hk, err := newHostKeys(path, true)
	if err != nil {
		t.Fatal(err)
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	var keys []ssh.PublicKey
	for i := range 20 {
		key := newTestKey(t)
		keys = append(keys, key)
		name := fmt.Sprintf("h%d", i)
		addr := fmt.Sprintf("127.0.0.1:%d", 7000+i)
		if err := hk.check(log, name, addr, addrString(addr), key); err != nil {
			t.Fatalf("accept-new %s: %v", name, err)
		}
	}
	hk.mu.Lock()
	indexed := hk.index != nil && hk.cb != nil
	hk.mu.Unlock()
	if !indexed {
		t.Fatal("after the appends the file is not indexed, or is to be read again")
	}
	want, err := knownhosts.New(path)
	if err != nil {
		t.Fatal(err)
	}
	hk.mu.Lock()
	got := hk.cb
	hk.mu.Unlock()
	for i, key := range keys {
		for _, q := range []string{fmt.Sprintf("[h%d@zbridge]:22", i), fmt.Sprintf("127.0.0.1:%d", 7000+i)} {
			for _, k := range []ssh.PublicKey{key, k1} {
				if w, g := describe(want(q, addrString(q), k)), describe(got(q, addrString(q), k)); w != g {
					t.Errorf("%s: index says %q, knownhosts %q", q, g, w)
				}
			}
		}
	}

	// Someone else pins a key for a name: seen at the next check.
	other := newTestKey(t)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(f, knownhosts.Line([]string{"pinned@zbridge"}, other))
	f.Close()
	if err := hk.check(log, "pinned", "127.0.0.1:9999", addrString("127.0.0.1:9999"), newTestKey(t)); !errors.Is(err, ErrHostKeyMismatch) {
		t.Errorf("a key other than the one pinned by another writer: %v, want ErrHostKeyMismatch", err)
	}
}
