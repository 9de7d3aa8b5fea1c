package auth

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// cheapHash returns a PHC string for secret with small parameters, to keep
// tests that do not care about the cost fast.
func cheapHash(t testing.TB, secret string, p params) string {
	t.Helper()
	h := &phc{params: p, salt: make([]byte, 16), key: make([]byte, 32)}
	rand.Read(h.salt)
	h.key = deriveKey([]byte(secret), h)
	return h.String()
}

var cheap = params{memory: 64, time: 1, threads: 1}

func mustParse(t testing.TB, file string) *Clients {
	t.Helper()
	c, err := Parse(strings.NewReader(file))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return c
}

func TestHashRoundTrip(t *testing.T) {
	s, err := Hash("s3cret")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("Hash = %q, want OWASP parameters", s)
	}
	h, err := parsePHC(s)
	if err != nil {
		t.Fatalf("parsePHC(Hash()): %v", err)
	}
	if len(h.salt) != 16 || len(h.key) != 32 {
		t.Errorf("salt %d bytes, key %d bytes; want 16, 32", len(h.salt), len(h.key))
	}
	if h.String() != s {
		t.Errorf("String() = %q, want %q", h.String(), s)
	}
	if !verify(deriveKey, h, "s3cret") {
		t.Error("right secret does not verify")
	}
	if verify(deriveKey, h, "s3cret ") {
		t.Error("wrong secret verifies")
	}
	s2, _ := Hash("s3cret")
	if s2 == s {
		t.Error("two hashes of one secret are equal: salt not random")
	}
	if _, err := Hash(""); !errors.Is(err, ErrEmptySecret) {
		t.Errorf("Hash(\"\") error = %v, want ErrEmptySecret", err)
	}
}

// TestKnownAnswer checks verification against the argon2id test vector of
// the reference implementation (password "password", salt "somesalt").
func TestKnownAnswer(t *testing.T) {
	c := mustParse(t, "ref:$argon2id$v=19$m=64,t=2,p=2$c29tZXNhbHQ$NQrDciL0Nsy1wJcvHr079rlYvyBxhBNi\n")
	for _, tc := range []struct {
		secret string
		want   bool
	}{{"password", true}, {"Password", false}} {
		ok, err := c.Check(context.Background(), "ref", tc.secret)
		if err != nil || ok != tc.want {
			t.Errorf("Check(ref, %q) = %v, %v; want %v", tc.secret, ok, err, tc.want)
		}
	}
}

func TestCheck(t *testing.T) {
	real, err := Hash("opensesame")
	if err != nil {
		t.Fatal(err)
	}
	file := "# clients\n" +
		"OPSAUTO:" + real + "\n" +
		"agent-1:" + cheapHash(t, "agentsecret", cheap) + "\n" +
		// Other parameters than Hash's still verify.
		"jane.doe@ops:" + cheapHash(t, "pw", params{memory: 256, time: 3, threads: 2}) + "\n"
	c := mustParse(t, file)
	if c.Len() != 3 {
		t.Fatalf("Len = %d, want 3", c.Len())
	}
	ctx := context.Background()
	done, cancel := context.WithCancel(ctx)
	cancel()
	if ok, err := c.Check(done, "OPSAUTO", "opensesame"); ok || !errors.Is(err, context.Canceled) {
		t.Errorf("Check with ended context = %v, %v; want false, context.Canceled", ok, err)
	}
	for _, tc := range []struct {
		name, user, secret string
		want               bool
	}{
		{"right", "OPSAUTO", "opensesame", true},
		{"other params", "jane.doe@ops", "pw", true},
		{"cheap params", "agent-1", "agentsecret", true},
		{"wrong secret", "OPSAUTO", "opensesamE", false},
		{"another client's secret", "OPSAUTO", "agentsecret", false},
		{"unknown name", "NOBODY", "opensesame", false},
		{"name case matters", "opsauto", "opensesame", false},
		{"empty secret", "OPSAUTO", "", false},
		{"empty name", "", "opensesame", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, err := c.Check(ctx, tc.user, tc.secret)
			if err != nil || ok != tc.want {
				t.Errorf("Check = %v, %v; want %v, nil", ok, err, tc.want)
			}
			err = c.Authenticate(ctx, tc.user, tc.secret)
			if tc.want {
				if err != nil {
					t.Errorf("Authenticate = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrBadCredentials) {
				t.Fatalf("Authenticate = %v, want ErrBadCredentials", err)
			}
			if tc.secret != "" && strings.Contains(err.Error(), tc.secret) {
				t.Errorf("error %q holds the secret", err)
			}
		})
	}
}

// countingDerive replaces c's key derivation with one that records which
// hashes it was asked to derive against.
func countingDerive(c *Clients) *[]*phc {
	var mu sync.Mutex
	var seen []*phc
	c.derive = func(secret []byte, h *phc) []byte {
		mu.Lock()
		seen = append(seen, h)
		mu.Unlock()
		return deriveKey(secret, h)
	}
	return &seen
}

// TestUnknownNameHashes checks the structure behind timing independence: an
// unknown name costs one key derivation, against a dummy with the
// parameters the file's clients use, just as a known name does.
func TestUnknownNameHashes(t *testing.T) {
	other := params{memory: 128, time: 2, threads: 1}
	file := "a:" + cheapHash(t, "x", other) + "\n" +
		"b:" + cheapHash(t, "y", other) + "\n" +
		"c:" + cheapHash(t, "z", cheap) + "\n"
	c := mustParse(t, file)
	seen := countingDerive(c)
	ctx := context.Background()

	if ok, _ := c.Check(ctx, "a", "wrong"); ok {
		t.Fatal("wrong secret accepted")
	}
	if ok, _ := c.Check(ctx, "nobody", "x"); ok {
		t.Fatal("unknown name accepted")
	}
	if len(*seen) != 2 {
		t.Fatalf("%d derivations for one known and one unknown name, want 2", len(*seen))
	}
	known, dummy := (*seen)[0], (*seen)[1]
	if known != c.tab.Load().clients["a"] {
		t.Error("known name not hashed against its own hash")
	}
	if dummy != c.tab.Load().dummy {
		t.Error("unknown name not hashed against the dummy")
	}
	if dummy.params != other || len(dummy.salt) != len(known.salt) || len(dummy.key) != len(known.key) {
		t.Errorf("dummy shape %+v salt %d key %d, want the majority's %+v salt %d key %d",
			dummy.params, len(dummy.salt), len(dummy.key), other, len(known.salt), len(known.key))
	}

	// An empty file still has a dummy, with Hash's parameters.
	empty := mustParse(t, "")
	d := empty.tab.Load().dummy
	if d == nil || d.params != (params{hashMemoryKiB, hashTime, hashThreads}) {
		t.Errorf("empty file dummy = %+v, want Hash's parameters", d)
	}
	seen = countingDerive(empty)
	empty.Check(ctx, "nobody", "x")
	if len(*seen) != 1 {
		t.Errorf("unknown name in empty file: %d derivations, want 1", len(*seen))
	}
}

func TestCheckBoundsConcurrency(t *testing.T) {
	c := mustParse(t, "a:"+cheapHash(t, "x", cheap)+"\n")
	release := make(chan struct{})
	var running, peak atomic.Int32
	c.derive = func(secret []byte, h *phc) []byte {
		n := running.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		<-release
		running.Add(-1)
		return deriveKey(secret, h)
	}
	var wg sync.WaitGroup
	for range MaxConcurrentChecks * 3 {
		wg.Go(func() {
			if ok, err := c.Check(context.Background(), "a", "x"); !ok || err != nil {
				t.Errorf("Check = %v, %v", ok, err)
			}
		})
	}
	// Wait until the slots are full, then check that a further Check gives
	// up when its context ends.
	for running.Load() < MaxConcurrentChecks {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	ok, err := c.Check(ctx, "a", "x")
	if ok || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Check while full = %v, %v; want false, DeadlineExceeded", ok, err)
	}
	if err := c.Authenticate(ctx, "a", "x"); !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrBadCredentials) {
		t.Errorf("Authenticate while full = %v, want DeadlineExceeded", err)
	}
	close(release)
	wg.Wait()
	if p := peak.Load(); p != MaxConcurrentChecks {
		t.Errorf("peak concurrent derivations = %d, want %d", p, MaxConcurrentChecks)
	}
}

func TestParseFile(t *testing.T) {
	h := cheapHash(t, "x", cheap)
	file := "\uFEFF# zbridge clients\r\n" +
		"\r\n" +
		"   # indented comment\n" +
		"OPSAUTO:" + h + "\r\n" +
		"  spaced . name:x\n"[:0] + // (names cannot hold spaces)
		"\t agent_2 : " + h + "  \n" +
		"a:" + h // no final newline
	c := mustParse(t, file)
	if c.Len() != 3 {
		t.Fatalf("Len = %d, want 3", c.Len())
	}
	for _, name := range []string{"OPSAUTO", "agent_2", "a"} {
		if ok, err := c.Check(context.Background(), name, "x"); !ok || err != nil {
			t.Errorf("Check(%q) = %v, %v", name, ok, err)
		}
	}
	name64 := strings.Repeat("n", 64)
	if c := mustParse(t, name64+":"+h); c.Len() != 1 {
		t.Error("64-character name refused")
	}
}

func TestParseErrors(t *testing.T) {
	h := cheapHash(t, "x", cheap)
	ok := "good:" + h + "\n"
	for _, tc := range []struct {
		name string
		file string
		line int
		want error
	}{
		{"no colon", "# c\n" + ok + "justaname\n", 3, ErrSyntax},
		{"secret pasted as hash", ok + "bob:hunter2\n", 2, ErrMalformedHash},
		{"empty name", ":" + h + "\n", 1, ErrBadName},
		{"space in name", "bad name:" + h + "\n", 1, ErrBadName},
		{"colon in name", "a:b:" + h + "\n", 1, ErrMalformedHash},
		{"65-character name", strings.Repeat("n", 65) + ":" + h + "\n", 1, ErrBadName},
		{"non-ASCII name", "jürgen:" + h + "\n", 1, ErrBadName},
		{"duplicate", ok + "\n# x\n" + ok, 4, ErrDuplicateName},
		{"empty hash", ok + "other:\n", 2, ErrMalformedHash},
		{"line too long", ok + "other:" + h + "\nx:" + strings.Repeat("a", maxLineLen) + "\n", 3, ErrLineTooLong},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tc.file))
			pe, isPE := errors.AsType[*ParseError](err)
			if !isPE {
				t.Fatalf("Parse error = %v, want *ParseError", err)
			}
			if pe.Line != tc.line || !errors.Is(err, tc.want) {
				t.Errorf("Parse error = %v (line %d), want line %d, %v", err, pe.Line, tc.line, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "line ") {
				t.Errorf("error %q does not start with the line", err)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q quotes the line", err)
			}
		})
	}
}

func TestParsePHC(t *testing.T) {
	salt, key := "c29tZXNhbHQ", "NQrDciL0Nsy1wJcvHr079rlYvyBxhBNi"
	phcOf := func(alg, ver, ps string) string {
		return "$" + alg + "$" + ver + "$" + ps + "$" + salt + "$" + key
	}
	good := []struct {
		s    string
		want params
	}{
		{phcOf("argon2id", "v=19", "m=64,t=2,p=2"), params{64, 2, 2}},
		{phcOf("argon2id", "v=19", "m=19456,t=2,p=1"), params{19456, 2, 1}},
		{phcOf("argon2id", "v=19", "m=262144,t=16,p=16"), params{262144, 16, 16}},
	}
	for _, tc := range good {
		h, err := parsePHC(tc.s)
		if err != nil {
			t.Errorf("parsePHC(%q): %v", tc.s, err)
			continue
		}
		if h.params != tc.want || string(h.salt) != "somesalt" || len(h.key) != 24 {
			t.Errorf("parsePHC(%q) = %+v", tc.s, h)
		}
		if h.String() != tc.s {
			t.Errorf("String() = %q, want %q", h.String(), tc.s)
		}
	}

	bad := []struct {
		name, s, msg string
	}{
		{"empty", "", "want $argon2id"},
		{"no leading $", phcOf("argon2id", "v=19", "m=64,t=2,p=2")[1:], "want $argon2id"},
		{"too few fields", "$argon2id$v=19$m=64,t=2,p=2$" + key, "want $argon2id"},
		{"extra field", phcOf("argon2id", "v=19", "m=64,t=2,p=2") + "$x", "want $argon2id"},
		{"argon2i", phcOf("argon2i", "v=19", "m=64,t=2,p=2"), `"argon2i" is not argon2id`},
		{"bcrypt", "$2b$10$abcdefghijklmnopqrstuv$abcdefghijklmnopqrstuvwxyzABCDE", "want $argon2id"},
		{"version 16", phcOf("argon2id", "v=16", "m=64,t=2,p=2"), `version "v=16"`},
		{"no version", "$argon2id$m=64,t=2,p=2$" + salt + "$" + key + "$", "version"},
		{"params out of order", phcOf("argon2id", "v=19", "t=2,m=64,p=2"), "want m=N"},
		{"missing p", phcOf("argon2id", "v=19", "m=64,t=2"), "want parameters m=M,t=T,p=P"},
		{"extra param", phcOf("argon2id", "v=19", "m=64,t=2,p=2,keyid=x"), "want parameters"},
		{"m too large", phcOf("argon2id", "v=19", "m=262145,t=2,p=1"), "m=262145 out of range"},
		{"m huge", phcOf("argon2id", "v=19", "m=99999999999,t=2,p=1"), "out of range"},
		{"t zero", phcOf("argon2id", "v=19", "m=64,t=0,p=1"), "t=0 out of range"},
		{"t too large", phcOf("argon2id", "v=19", "m=64,t=17,p=1"), "t=17 out of range"},
		{"p zero", phcOf("argon2id", "v=19", "m=64,t=2,p=0"), "p=0 out of range"},
		{"p too large", phcOf("argon2id", "v=19", "m=1024,t=2,p=17"), "p=17 out of range"},
		{"m below 8p", phcOf("argon2id", "v=19", "m=15,t=2,p=2"), "less than 8*p"},
		{"hex m", phcOf("argon2id", "v=19", "m=0x40,t=2,p=2"), "decimal"},
		{"leading zero", phcOf("argon2id", "v=19", "m=064,t=2,p=2"), "leading zeros"},
		{"signed", phcOf("argon2id", "v=19", "m=+64,t=2,p=2"), "decimal"},
		{"empty m", phcOf("argon2id", "v=19", "m=,t=2,p=2"), "decimal"},
		{"padded salt", "$argon2id$v=19$m=64,t=2,p=2$c29tZXNhbHQ=$" + key, "salt is not unpadded base64"},
		{"url base64 salt", "$argon2id$v=19$m=64,t=2,p=2$c29tZX-_bHQ$" + key, "salt is not unpadded base64"},
		{"short salt", "$argon2id$v=19$m=64,t=2,p=2$c29tZQ$" + key, "salt is 4 bytes"},
		{"bad hash base64", "$argon2id$v=19$m=64,t=2,p=2$" + salt + "$" + key + "!", "hash is not unpadded base64"},
		{"short hash", "$argon2id$v=19$m=64,t=2,p=2$" + salt + "$c29tZXNhbHQ", "hash is 8 bytes"},
		{"spaces", "$argon2id$v=19$m=64, t=2, p=2$" + salt + "$" + key, "want t=N"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parsePHC(tc.s)
			if !errors.Is(err, ErrMalformedHash) {
				t.Fatalf("parsePHC error = %v, want ErrMalformedHash", err)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not say %q", err, tc.msg)
			}
			if strings.Contains(err.Error(), key) || strings.Contains(err.Error(), salt) {
				t.Errorf("error %q quotes the salt or hash", err)
			}
		})
	}
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // WriteFile's mode is masked by umask
		t.Fatal(err)
	}
}

func TestLoadAndReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "clients")
	ctx := context.Background()
	one := "a:" + cheapHash(t, "x", cheap) + "\n"
	writeFile(t, path, one, 0o600)

	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.Len() != 1 || len(c.Warnings()) != 0 {
		t.Fatalf("Len %d, warnings %v; want 1, none", c.Len(), c.Warnings())
	}

	// Reload sees new clients and the new mode.
	writeFile(t, path, one+"b:"+cheapHash(t, "y", cheap)+"\n", 0o644)
	if err := c.Reload(); err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.Check(ctx, "b", "y"); !ok || c.Len() != 2 {
		t.Fatalf("after Reload: Len %d, b accepted %v", c.Len(), ok)
	}
	w := c.Warnings()
	if len(w) != 1 || !errors.Is(w[0], ErrFilePermissions) || !strings.Contains(w[0].Error(), "0644") {
		t.Errorf("Warnings = %v, want one ErrFilePermissions naming 0644", w)
	}

	// A bad file keeps the old clients, and the error names file and line.
	writeFile(t, path, one+"broken\n", 0o600)
	err = c.Reload()
	pe, isPE := errors.AsType[*ParseError](err)
	if !isPE || pe.Path != path || pe.Line != 2 || !strings.HasPrefix(err.Error(), path+":2: ") {
		t.Errorf("Reload error = %v, want %s:2", err, path)
	}
	if ok, _ := c.Check(ctx, "b", "y"); !ok {
		t.Error("failed Reload dropped the old clients")
	}
	if _, err := Load(path); !errors.As(err, &pe) {
		t.Errorf("Load error = %v, want *ParseError", err)
	}

	if _, err := Load(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want fs.ErrNotExist", err)
	}
	if _, err := Load(dir); err == nil {
		t.Error("Load(directory) succeeded")
	}
	if err := mustParse(t, one).Reload(); !errors.Is(err, ErrNoFile) {
		t.Errorf("Reload of parsed Clients = %v, want ErrNoFile", err)
	}
}

// TestCheckDuringReload runs checks while the file is reloaded, for -race.
func TestCheckDuringReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "clients")
	writeFile(t, path, "a:"+cheapHash(t, "x", cheap)+"\n", 0o600)
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 20 {
				if ok, err := c.Check(context.Background(), "a", "x"); !ok || err != nil {
					t.Errorf("Check = %v, %v", ok, err)
				}
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			if err := c.Reload(); err != nil {
				t.Error(err)
			}
			_ = c.Len()
		}
	})
	wg.Wait()
}

// seedFile is a valid clients file; TestSeedFile checks it is.
const seedFile = "# zbridge clients\n\n" +
	"OPSAUTO:$argon2id$v=19$m=19456,t=2,p=1$5LjEf1GkBBZIi3SEMCAfwQ$aHRVMMab73nw/jdFxf465FT0w1FXxd5Vy4KvoTfxY4Q\n" +
	"agent-1 : $argon2id$v=19$m=64,t=2,p=2$c29tZXNhbHQ$NQrDciL0Nsy1wJcvHr079rlYvyBxhBNi\r\n"

func TestSeedFile(t *testing.T) {
	if c := mustParse(t, seedFile); c.Len() != 2 {
		t.Errorf("Len = %d, want 2", c.Len())
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(seedFile))
	f.Add([]byte("bad line\n"))
	f.Add([]byte("a:$argon2id$v=19$m=64,t=2,p=2$c29tZXNhbHQ$NQrDciL0Nsy1wJcvHr079rlYvyBxhBNi\na:x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(bytes.NewReader(data))
		if err != nil {
			if _, ok := errors.AsType[*ParseError](err); !ok {
				t.Fatalf("error %v is not a *ParseError", err)
			}
			return
		}
		// Decode → encode → decode gives the same clients.
		tab := c.tab.Load()
		var buf strings.Builder
		for name, h := range tab.clients {
			buf.WriteString(name + ":" + h.String() + "\n")
		}
		c2, err := Parse(strings.NewReader(buf.String()))
		if err != nil {
			t.Fatalf("reparse: %v", err)
		}
		if c2.Len() != c.Len() {
			t.Fatalf("reparse: Len %d, want %d", c2.Len(), c.Len())
		}
		for name, h := range tab.clients {
			h2 := c2.tab.Load().clients[name]
			if h2 == nil || h2.params != h.params || !bytes.Equal(h2.salt, h.salt) || !bytes.Equal(h2.key, h.key) {
				t.Fatalf("reparse: client %q changed", name)
			}
		}
	})
}
