package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"time"
)

// MaxCachedLogons bounds the entries of one reading's cache of successful
// checks (see the package documentation). Only a right secret makes an
// entry, one a client, so it is reached only with more clients than this
// logging on within [CacheTTL].
const MaxCachedLogons = 1024

// CacheTTL is how long a successful check is remembered: a client whose
// check is in the cache is accepted without hashing until this long after
// the check that hashed. A hit does not extend it.
const CacheTTL = 5 * time.Minute

// tag is the HMAC-SHA256 of a client name and secret under a cache's key.
type tag [sha256.Size]byte

// logonCache remembers which name and secret pairs checked right against
// one reading of the clients file. It keeps no secret and no unkeyed hash
// of one: only HMACs under a key drawn when the file was read, which lives
// only in this process's memory.
type logonCache struct {
	key [32]byte // the HMAC key; never changed

	mu      sync.Mutex        // guards entries
	entries map[tag]time.Time // expiry of each remembered check
}

func newLogonCache() *logonCache {
	c := &logonCache{entries: make(map[tag]time.Time)}
	rand.Read(c.key[:]) // never fails (crypto/rand panics rather)
	return c
}

// tag returns the HMAC of name and secret. The name's length comes first,
// so that no other name and secret give the same input.
func (c *logonCache) tag(name, secret string) tag {
	m := hmac.New(sha256.New, c.key[:])
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(name)))
	m.Write(n[:])
	m.Write([]byte(name))
	m.Write([]byte(secret))
	var t tag
	m.Sum(t[:0])
	return t
}

// hit reports whether t was remembered and has not expired at now.
func (c *logonCache) hit(t tag, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	exp, ok := c.entries[t]
	if ok && !now.Before(exp) {
		delete(c.entries, t)
		return false
	}
	return ok
}

// add remembers t until now+CacheTTL. A full cache drops its expired
// entries first, then, if it is still full, one entry at random.
func (c *logonCache) add(t tag, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[t]; !ok && len(c.entries) >= MaxCachedLogons {
		for k, exp := range c.entries {
			if !now.Before(exp) {
				delete(c.entries, k)
			}
		}
		for k := range c.entries {
			if len(c.entries) < MaxCachedLogons {
				break
			}
			delete(c.entries, k)
		}
	}
	c.entries[t] = now.Add(CacheTTL)
}

// len returns the number of entries, expired ones included.
func (c *logonCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
