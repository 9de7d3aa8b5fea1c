// Package throttle counts failures (failed logons) per key, such as a
// source address or a client name, and says when a key must wait before it
// may try again: after MaxFailures failures, each further failure blocks the
// key for a delay that doubles, from Block up to MaxBlock. A success
// forgets the key. A key is also forgotten once it has neither failed nor
// been blocked for Window.
//
// The table has a fixed capacity: when it is full, the key that failed
// least recently is forgotten to make room. Its memory is therefore
// bounded, whatever an attacker sends: Capacity times about 200 bytes plus
// the key's own size (a string key's bytes).
package throttle

import (
	"container/list"
	"errors"
	"sync"
	"time"
)

// Config configures a Table. New rejects zero or negative fields.
type Config struct {
	// MaxFailures is how many failures a key may have before it is
	// blocked: the MaxFailures-th failure blocks it for Block.
	MaxFailures int
	// Window is how long a key is remembered after its last failure and
	// the end of its last block.
	Window time.Duration
	// Block is the first block; it doubles with each further failure, up
	// to MaxBlock.
	Block, MaxBlock time.Duration
	// Capacity is the most keys remembered.
	Capacity int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Table counts failures per key. Its methods are safe for concurrent use.
type Table[K comparable] struct {
	cfg Config

	mu      sync.Mutex // guards the following fields
	entries map[K]*list.Element
	lru     list.List // of *entry[K]; front: the most recent failure
}

type entry[K comparable] struct {
	key   K
	fails int
	last  time.Time // the last failure
	until time.Time // blocked before this time
}

// New returns an empty table.
func New[K comparable](cfg Config) (*Table[K], error) {
	if cfg.MaxFailures <= 0 || cfg.Window <= 0 || cfg.Block <= 0 || cfg.MaxBlock < cfg.Block || cfg.Capacity <= 0 {
		return nil, errors.New("throttle: MaxFailures, Window, Block and Capacity must be positive, MaxBlock at least Block")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Table[K]{cfg: cfg, entries: make(map[K]*list.Element)}, nil
}

// expired reports whether e is to be forgotten at now: no failure and no
// block for a whole Window.
func (t *Table[K]) expired(e *entry[K], now time.Time) bool {
	end := e.last
	if e.until.After(end) {
		end = e.until
	}
	return now.Sub(end) >= t.cfg.Window
}

// Wait reports how long key must wait before it may try again: 0 when it
// is not blocked.
func (t *Table[K]) Wait(key K) time.Duration {
	now := t.cfg.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	el, ok := t.entries[key]
	if !ok {
		return 0
	}
	e := el.Value.(*entry[K])
	if t.expired(e, now) {
		t.removeLocked(el)
		return 0
	}
	return max(e.until.Sub(now), 0)
}

// Failure records a failure of key and returns for how long key is now
// blocked (0 when it is not).
func (t *Table[K]) Failure(key K) time.Duration {
	now := t.cfg.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	var e *entry[K]
	if el, ok := t.entries[key]; ok {
		e = el.Value.(*entry[K])
		if t.expired(e, now) {
			*e = entry[K]{key: key}
		}
		t.lru.MoveToFront(el)
	} else {
		for len(t.entries) >= t.cfg.Capacity {
			t.removeLocked(t.lru.Back())
		}
		e = &entry[K]{key: key}
		t.entries[key] = t.lru.PushFront(e)
	}
	e.fails++
	e.last = now
	if e.fails < t.cfg.MaxFailures {
		return 0
	}
	block := t.cfg.MaxBlock
	if n := e.fails - t.cfg.MaxFailures; n < 32 {
		block = min(t.cfg.Block<<n, t.cfg.MaxBlock)
		if block <= 0 { // overflowed
			block = t.cfg.MaxBlock
		}
	}
	e.until = now.Add(block)
	return block
}

// Success forgets key.
func (t *Table[K]) Success(key K) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if el, ok := t.entries[key]; ok {
		t.removeLocked(el)
	}
}

// Len reports how many keys are remembered (at most Capacity).
func (t *Table[K]) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.entries)
}

func (t *Table[K]) removeLocked(el *list.Element) {
	delete(t.entries, el.Value.(*entry[K]).key)
	t.lru.Remove(el)
}
