package unsolmsg

import (
	"sync"
	"time"
)

// Defaults for Config.MaxNames and Config.NameWindow.
const (
	DefaultMaxNames   = 64
	DefaultNameWindow = 7 * 24 * time.Hour
)

// names counts the durable subscription and group names each client
// subscribed with (Config.MaxNames): each costs the store something kept
// (a position for ever, a group until nothing reads it for the store's
// group TTL), and a client could otherwise make as many as it can log on
// and subscribe. A name counts from a subscribe until NameWindow after the
// last session that used it ended (or, while one runs, after its
// subscribe). The count is this server's: regions sharing a store count
// apart, and a restart starts again.
type names struct {
	mu       sync.Mutex                      // guards byClient
	byClient map[string]map[string]time.Time // client → store key → last used
}

// use counts key for client at now and reports whether it may be used:
// it is counted already, or the client has fewer than max counted within
// window of now.
func (n *names) use(client, key string, now time.Time, max int, window time.Duration) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.byClient == nil {
		n.byClient = make(map[string]map[string]time.Time)
	}
	m := n.byClient[client]
	if m == nil {
		m = make(map[string]time.Time)
		n.byClient[client] = m
	}
	if _, ok := m[key]; !ok && len(m) >= max {
		for k, t := range m {
			if now.Sub(t) >= window {
				delete(m, k)
			}
		}
		if len(m) >= max {
			return false
		}
	}
	if t, ok := m[key]; !ok || t.Before(now) {
		m[key] = now
	}
	return true
}

// done marks key as used by client until now (a session that used it
// ended).
func (n *names) done(client, key string, now time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if m := n.byClient[client]; m != nil {
		if t, ok := m[key]; ok && t.Before(now) {
			m[key] = now
		}
	}
}
