package auth

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// MaxConcurrentChecks is how many checks of one [Clients] may hash at once.
// Each takes the memory its hash names (19 MiB for those [Hash] makes), so a
// logon flood costs at most this many times that.
const MaxConcurrentChecks = 4

// maxLineLen bounds a line of the clients file; a valid line is under 200
// bytes.
const maxLineLen = 4096

// An Authenticator checks a client's name and secret.
type Authenticator interface {
	// Authenticate returns nil if secret is name's secret, an error wrapping
	// ErrBadCredentials if it is not or name is unknown, and an error
	// wrapping ctx.Err() if ctx ended first.
	Authenticate(ctx context.Context, name, secret string) error
}

var _ Authenticator = (*Clients)(nil)

// Clients is the set of clients from a clients file. Make one with [Load] or
// [Parse]. It is safe for concurrent use, also while it reloads.
type Clients struct {
	path string        // the file Load read; "" if made by Parse
	sem  chan struct{} // MaxConcurrentChecks slots, kept across reloads

	// derive computes a key for a secret; deriveKey except in tests, which
	// count the calls.
	derive func(secret []byte, h *phc) []byte
	// now is time.Now except in tests of the cache's expiry.
	now func() time.Time

	reloadMu sync.Mutex // serialises Reload, so the newest read wins
	tab      atomic.Pointer[table]
}

// table is one reading of the clients file. It is never modified.
type table struct {
	clients  map[string]*phc
	dummy    *phc // hashed against for unknown names
	warnings []error
	// cache remembers the checks that succeeded against this reading, so
	// that a reading of the file (a refresh) starts with none.
	cache *logonCache
}

func newClients(path string, t *table) *Clients {
	c := &Clients{
		path:   path,
		sem:    make(chan struct{}, MaxConcurrentChecks),
		derive: deriveKey,
		now:    time.Now,
	}
	c.tab.Store(t)
	return c
}

// Load reads the clients file at path. The file format is described in the
// package documentation. A file accessible by group or other loads, with a
// warning in [Clients.Warnings].
func Load(path string) (*Clients, error) {
	t, err := load(path)
	if err != nil {
		return nil, err
	}
	return newClients(path, t), nil
}

// Parse reads a clients file from r. Clients made by Parse cannot
// [Clients.Reload].
func Parse(r io.Reader) (*Clients, error) {
	t, err := parse(r)
	if err != nil {
		return nil, err
	}
	return newClients("", t), nil
}

// Reload reads the file c was loaded from again and, if it parses, replaces
// c's clients with its clients; checks already under way finish against the
// old set. On error c keeps its clients. Reload returns ErrNoFile if c was
// made by [Parse].
func (c *Clients) Reload() error {
	if c.path == "" {
		return ErrNoFile
	}
	c.reloadMu.Lock()
	defer c.reloadMu.Unlock()
	t, err := load(c.path)
	if err != nil {
		return err
	}
	c.tab.Store(t)
	return nil
}

// Len returns the number of clients.
func (c *Clients) Len() int { return len(c.tab.Load().clients) }

// Names returns the client names, sorted.
func (c *Clients) Names() []string {
	t := c.tab.Load()
	out := make([]string, 0, len(t.clients))
	for n := range t.clients {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Has reports whether a client called name is in the file.
func (c *Clients) Has(name string) bool {
	_, ok := c.tab.Load().clients[name]
	return ok
}

// SameSecret reports whether name has the same hashed secret in c and in
// other (false when either lacks name): a client whose secret changed
// between two readings of a file is told apart from one that kept it.
func (c *Clients) SameSecret(other *Clients, name string) bool {
	a, ok1 := c.tab.Load().clients[name]
	b, ok2 := other.tab.Load().clients[name]
	return ok1 && ok2 && a.params == b.params && bytes.Equal(a.salt, b.salt) && bytes.Equal(a.key, b.key)
}

// Warnings returns the warnings from the last successful load, such as an
// error wrapping [ErrFilePermissions]. They are meant for the operator's log.
func (c *Clients) Warnings() []error {
	return append([]error(nil), c.tab.Load().warnings...)
}

// Check reports whether secret is the secret of the client called name.
// A name and secret that checked right less than [CacheTTL] ago, against
// the same reading of the file, are accepted from the cache at once (see
// the package documentation); any other check hashes, and takes the same
// time whether or not name exists: for an unknown name it hashes secret
// against a dummy hash. An empty secret is refused at once. Check waits
// while [MaxConcurrentChecks] others hash; if ctx ends first it returns
// false and ctx.Err().
func (c *Clients) Check(ctx context.Context, name, secret string) (bool, error) {
	t := c.tab.Load()
	h, known := t.clients[name]
	if !known {
		h = t.dummy
	}
	if secret == "" {
		return false, nil
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	tag := t.cache.tag(name, secret)
	if known && t.cache.hit(tag, c.now()) {
		return true, nil
	}
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	defer func() { <-c.sem }()
	// A check of the same secret may have finished while this one waited
	// for a slot (a burst of logons of one client).
	if known && t.cache.hit(tag, c.now()) {
		return true, nil
	}
	ok := verify(c.derive, h, secret) && known
	if ok {
		t.cache.add(tag, c.now())
	}
	return ok, nil
}

// Authenticate implements [Authenticator] with [Clients.Check].
func (c *Clients) Authenticate(ctx context.Context, name, secret string) error {
	ok, err := c.Check(ctx, name, secret)
	if err != nil {
		return fmt.Errorf("auth: authenticate: %w", err)
	}
	if !ok {
		return ErrBadCredentials
	}
	return nil
}

func load(path string) (*table, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("auth: load clients: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("auth: load clients: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("auth: load clients: %s is not a regular file", path)
	}
	t, err := parse(f)
	if err != nil {
		if pe, ok := errors.AsType[*ParseError](err); ok {
			pe.Path = path
			return nil, pe
		}
		return nil, err
	}
	// Permission bits mean nothing on Windows.
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		t.warnings = append(t.warnings,
			fmt.Errorf("%w: %s has mode %#o, want 0600 or stricter", ErrFilePermissions, path, perm))
	}
	return t, nil
}

func parse(r io.Reader) (*table, error) {
	t := &table{clients: make(map[string]*phc), cache: newLogonCache()}
	lineOf := make(map[string]int)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 512), maxLineLen)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Bytes()
		if n == 1 {
			line = bytes.TrimPrefix(line, []byte("\uFEFF")) // a byte-order mark from an editor
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		nameB, hashB, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return nil, &ParseError{Line: n, Err: ErrSyntax}
		}
		name := string(bytes.TrimSpace(nameB))
		if !validName(name) {
			return nil, &ParseError{Line: n, Err: ErrBadName}
		}
		if first, dup := lineOf[name]; dup {
			return nil, &ParseError{Line: n, Err: fmt.Errorf("%w (first on line %d)", ErrDuplicateName, first)}
		}
		h, err := parsePHC(string(bytes.TrimSpace(hashB)))
		if err != nil {
			return nil, &ParseError{Line: n, Err: err}
		}
		t.clients[name] = h
		lineOf[name] = n
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, &ParseError{Line: n + 1, Err: ErrLineTooLong}
		}
		return nil, fmt.Errorf("auth: read clients: %w", err)
	}
	t.dummy = dummyFor(t.clients)
	return t, nil
}

// dummyFor returns a hash with the parameters most of clients' hashes share
// (the package's parameters for an empty file; the costlier on a tie), with a
// random salt and key that no secret hashes to in practice. Hashing against
// it costs what hashing against a typical client's hash costs; a client with
// other parameters is told apart by timing only from those clients, not
// from unknown names.
func dummyFor(clients map[string]*phc) *phc {
	type shape struct {
		params
		saltLen, keyLen int
	}
	best := shape{params{hashMemoryKiB, hashTime, hashThreads}, hashSaltLen, hashKeyLen}
	count := make(map[shape]int)
	for _, h := range clients {
		count[shape{h.params, len(h.salt), len(h.key)}]++
	}
	costlier := func(a, b shape) bool {
		if a.memory != b.memory {
			return a.memory > b.memory
		}
		if a.time != b.time {
			return a.time > b.time
		}
		if a.threads != b.threads {
			return a.threads > b.threads
		}
		if a.keyLen != b.keyLen {
			return a.keyLen > b.keyLen
		}
		return a.saltLen > b.saltLen
	}
	for s, n := range count {
		if n > count[best] || n == count[best] && costlier(s, best) {
			best = s
		}
	}
	h := &phc{params: best.params, salt: make([]byte, best.saltLen), key: make([]byte, best.keyLen)}
	rand.Read(h.salt)
	rand.Read(h.key)
	return h
}

func validName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '.', c == '_', c == '@', c == '-':
		default:
			return false
		}
	}
	return true
}
