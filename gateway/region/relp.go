package region

import (
	"context"
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
// (store.Sync: an fsync under the on-disk store's batch policy), so that
// RELP acknowledges nothing a crash or power loss could take.
type relpSink struct {
	r       *Region
	parsers sync.Pool // of *syslog.Parser: a parser serves one Deliver at a time
}

func newRELPSink(r *Region) *relpSink {
	return &relpSink{r: r, parsers: sync.Pool{New: func() any { return syslog.NewParser(nil) }}}
}

// Deliver implements relp.Sink.
func (k *relpSink) Deliver(ctx context.Context, from net.Addr, msgs [][]byte) error {
	if len(msgs) == 0 {
		return nil
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
	// A RELP sender is a TCP sender: its first message names its host as
	// SYSLOG's do (learnFrom keeps the same bounds on what it may claim).
	k.r.onSender(evs[0].Origin.Host, addr)
	if err := k.r.store.Append(ctx, evs); err != nil {
		return fmt.Errorf("storing %d events: %w", len(evs), err)
	}
	if err := store.Sync(ctx, k.r.store); err != nil {
		return fmt.Errorf("syncing %d events: %w", len(evs), err)
	}
	return nil
}
