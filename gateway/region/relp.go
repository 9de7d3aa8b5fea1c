package region

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/zbridge/zbridge/gateway/store"
	"github.com/zbridge/zbridge/gateway/syslog"
	"github.com/zbridge/zbridge/protocol"
)

// relpSink turns the syslog messages of RELP sessions into events, like
// SYSLOG over TCP, and returns only once the store has made them durable
// (store.Sync: an fsync under the on-disk store's batch policy; with
// Redis, Redis and its MinReplicas replicas have them), so that RELP
// acknowledges nothing a crash or power loss could take. While the store
// is degraded (Redis unreachable, or its replicas not acknowledging; the
// on-disk store after a write failed) it takes nothing: the messages
// would only be held in the region's memory, and each time the sender
// sent them again another copy would be. Its error leaves them
// unacknowledged, and the sender (librelp) keeps them and sends them
// again after it reconnects.
type relpSink struct {
	r       *Region
	parsers sync.Pool // of *syslog.Parser: a parser serves one Deliver at a time

	mu    sync.Mutex        // guards hosts
	hosts map[string]string // the host each session (by remote address) last named
}

// maxRELPHosts bounds relpSink.hosts; when it is full it starts again.
const maxRELPHosts = 4096

func newRELPSink(r *Region) *relpSink {
	return &relpSink{r: r, parsers: sync.Pool{New: func() any { return syslog.NewParser(nil) }},
		hosts: make(map[string]string)}
}

// newHost reports whether the session at from names host for the first
// time, so that the name is learned once a session, as SYSLOG learns it
// once a connection (and a refused claim is logged once, not per batch).
func (k *relpSink) newHost(from net.Addr, host string) bool {
	key := from.String()
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.hosts[key] == host {
		return false
	}
	if len(k.hosts) >= maxRELPHosts {
		clear(k.hosts)
	}
	k.hosts[key] = host
	return true
}

// Deliver implements relp.Sink.
func (k *relpSink) Deliver(ctx context.Context, from net.Addr, msgs [][]byte) error {
	if len(msgs) == 0 {
		return nil
	}
	if hr, ok := k.r.store.(store.HealthReporter); ok {
		if h := hr.Health(); h.Degraded {
			return fmt.Errorf("%w: %s", errStoreDegraded, h.Reason)
		}
	}
	var addr netip.Addr
	if ta, ok := from.(*net.TCPAddr); ok {
		addr = ta.AddrPort().Addr().Unmap()
	}
	p := k.parsers.Get().(*syslog.Parser)
	p.SetSender(addr)
	now := time.Now()
	evs := make([]*protocol.Event, len(msgs))
	for i, m := range msgs {
		evs[i] = p.Parse(m, now) // copies m: the server reuses it
	}
	k.parsers.Put(p)
	// A RELP sender is a TCP sender: its messages name its host as
	// SYSLOG's do (learnFrom keeps the same bounds on what it may claim).
	if host := evs[0].Origin.Host; k.newHost(from, host) {
		k.r.onSender(host, addr)
	}
	// Events flood control holds back are acknowledged too: a summary
	// accounts for them (package flood).
	if err := k.r.intake().Append(ctx, evs); err != nil {
		return fmt.Errorf("storing %d events: %w", len(evs), err)
	}
	// With Redis this fails while the events are only in the store's
	// buffer: Redis went away, or the replicas did not acknowledge them,
	// between the check above and the Append.
	if err := store.Sync(ctx, k.r.store); err != nil {
		return fmt.Errorf("syncing %d events: %w", len(evs), err)
	}
	return nil
}

// errStoreDegraded is relpSink.Deliver's error while the store is degraded.
var errStoreDegraded = errors.New("region: store degraded; RELP messages refused until it recovers")
