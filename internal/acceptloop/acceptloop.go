// Package acceptloop is the one accept loop of zbridge's servers (the
// session servers UNSOLMSG, COMMANDS and VMMON, SYSLOG, the z/VM simulator,
// the Linux agent), after nats-server's
// acceptConnections: accept, ride out the errors that pass
// (acceptretry.Retryable) with a back-off that Stop interrupts, count the
// connections of each source address, and hand each connection to the
// server.
//
// A server makes one Loop and passes every listener it serves to
// Loop.Serve: the listeners share the per-address counts and the stop
// signal. The loop does no I/O on the connections and starts no goroutines:
// the server's handler, called on Serve's goroutine, starts the goroutine
// that serves (or refuses) the connection, owns it and waits for it.
//
// A [Reserve] is the process's descriptor budget, shared by its servers:
// a listener wrapped by [Reserve.Listener] hands the connections past the
// budget, and those accept could take only with a spare descriptor once
// the process ran out, to the server to refuse in its own words, so that
// a client is told "busy" rather than left waiting in the kernel's
// backlog. Loop applies no budget by itself: the server (or whoever opens
// its listener) wraps the listener before Serve.
package acceptloop

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/internal/acceptretry"
)

// ErrStopped is returned by Serve after Stop.
var ErrStopped = errors.New("acceptloop: stopped")

// Config configures a Loop.
type Config struct {
	// MaxPerAddr is the most connections from one source IP address served
	// at once, over all the loop's listeners (the port is not part of the
	// address; an IPv4-mapped IPv6 address counts as the IPv4 one). A
	// connection beyond it is still handed to the server, marked Over, for
	// the server to refuse in its own words. 0 means no limit.
	MaxPerAddr int
	// Logger receives accept errors, with listen=ADDR. Nil discards them.
	Logger logrus.FieldLogger
}

// Handler takes an accepted connection. It is called on Serve's goroutine,
// one connection at a time, so it must not block: it starts a goroutine
// for the connection. Unless a.Over, it must call a.Release once it is done
// with the connection (closed it).
type Handler func(c net.Conn, a *Admission)

// Admission is what the loop decided about a connection's source address.
type Admission struct {
	// Addr is the source IP address; the zero Addr when the connection's
	// remote address is not an IP address (it is then never over a limit).
	Addr netip.Addr
	// Count is how many connections from Addr are served now, this one
	// included unless it is Over.
	Count int
	// Over reports that Addr already had MaxPerAddr connections: the
	// connection is not counted and the server should refuse it.
	Over bool

	lp       *Loop
	released atomic.Bool
}

// Release gives back the connection's place in its address's count. It is
// safe to call more than once, and does nothing for a connection that is
// Over.
func (a *Admission) Release() {
	if a.Over || a.lp == nil || !a.released.CompareAndSwap(false, true) {
		return
	}
	a.lp.release(a.Addr)
}

// A Loop accepts connections on a server's listeners. Create it with New;
// its methods are safe for concurrent use.
type Loop struct {
	cfg  Config
	log  logrus.FieldLogger
	stop chan struct{} // closed by Stop

	mu        sync.Mutex // guards the following fields
	stopped   bool
	listeners map[net.Listener]struct{}
	perAddr   map[netip.Addr]int // connections admitted and not yet released
}

// New returns a Loop with cfg.
func New(cfg Config) *Loop {
	log := cfg.Logger
	if log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		log = l
	}
	return &Loop{
		cfg:       cfg,
		log:       log,
		stop:      make(chan struct{}),
		listeners: make(map[net.Listener]struct{}),
		perAddr:   make(map[netip.Addr]int),
	}
}

// Serve accepts connections on l and hands each to h until Stop is called
// or Accept fails with an error that does not pass. An error that passes
// (out of file descriptors, an aborted connection, a timeout) is logged and
// Accept is tried again after a back-off of 5 ms doubling to 1 s, which
// Stop cuts short. Serve always returns a non-nil error and closes l:
// ErrStopped after Stop (at once if Stop came before), else the Accept
// error, wrapped.
func (lp *Loop) Serve(l net.Listener, h Handler) error {
	lp.mu.Lock()
	if lp.stopped {
		lp.mu.Unlock()
		l.Close()
		return ErrStopped
	}
	lp.listeners[l] = struct{}{}
	lp.mu.Unlock()
	defer func() {
		lp.mu.Lock()
		delete(lp.listeners, l)
		lp.mu.Unlock()
		l.Close()
	}()
	log := lp.log.WithField("listen", l.Addr().String())
	var backoff acceptretry.Backoff
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		c, err := l.Accept()
		if err != nil {
			if lp.isStopped() {
				return ErrStopped
			}
			if !acceptretry.Retryable(err) {
				return fmt.Errorf("accept: %w", err)
			}
			d := backoff.Next()
			log.WithError(err).Warnf("accept failed; retrying in %v", d)
			if timer == nil {
				timer = time.NewTimer(d)
			} else {
				timer.Reset(d)
			}
			select {
			case <-lp.stop:
				return ErrStopped
			case <-timer.C:
			}
			if lp.isStopped() { // both were ready: Stop wins
				return ErrStopped
			}
			continue
		}
		backoff.Reset()
		h(c, lp.admit(c))
	}
}

// admit counts c against its source address.
func (lp *Loop) admit(c net.Conn) *Admission {
	a := &Admission{Addr: addrOf(c.RemoteAddr()), lp: lp}
	if !a.Addr.IsValid() {
		a.released.Store(true) // not counted: nothing to release
		return a
	}
	lp.mu.Lock()
	defer lp.mu.Unlock()
	n := lp.perAddr[a.Addr]
	if lp.cfg.MaxPerAddr > 0 && n >= lp.cfg.MaxPerAddr {
		a.Over, a.Count = true, n
		return a
	}
	lp.perAddr[a.Addr] = n + 1
	a.Count = n + 1
	return a
}

func (lp *Loop) release(addr netip.Addr) {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	if n := lp.perAddr[addr]; n > 1 {
		lp.perAddr[addr] = n - 1
	} else {
		delete(lp.perAddr, addr)
	}
}

// Count reports how many connections from addr are counted now.
func (lp *Loop) Count(addr netip.Addr) int {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	return lp.perAddr[addr.Unmap()]
}

// Stop makes every Serve return ErrStopped: it closes the listeners and
// cuts short the back-off waits; a Serve called later returns at once. The
// connections already handed over are the server's to end. Stop is safe to
// call more than once.
func (lp *Loop) Stop() {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	if lp.stopped {
		return
	}
	lp.stopped = true
	close(lp.stop)
	for l := range lp.listeners {
		l.Close()
	}
}

func (lp *Loop) isStopped() bool {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	return lp.stopped
}

// addrOf returns the IP address of a TCP address (IPv4-mapped addresses
// unmapped), or the zero Addr.
func addrOf(a net.Addr) netip.Addr {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.AddrPort().Addr().Unmap()
	case nil:
		return netip.Addr{}
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}
