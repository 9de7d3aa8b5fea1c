package acceptloop

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
)

// Defaults of ReserveConfig.
const (
	// DefaultSpares is how many spare descriptors a Reserve holds to
	// accept and refuse connections with once the process has run out.
	DefaultSpares = 4
	// MinReserve and MaxReserve bound DefaultReserve.
	MinReserve = 16
	MaxReserve = 1024
)

// DefaultReserve is the reserve for a descriptor limit: a fiftieth of it,
// at least MinReserve and at most MaxReserve (400 of the limit 20,000).
func DefaultReserve(limit int) int { return max(MinReserve, min(limit/50, MaxReserve)) }

// ReserveConfig configures a Reserve.
type ReserveConfig struct {
	// Reserve is how many descriptors, below the process's limit
	// (RLIMIT_NOFILE), accepted connections may not take: they are kept
	// for the process's own work (its files, the connections it dials, its
	// status port, the refusals). 0 means DefaultReserve of the limit;
	// negative means none (connections may take every descriptor, and are
	// refused only once accept fails for want of one).
	Reserve int
	// Spares is how many descriptors are held open (on /dev/null) to
	// accept and refuse a connection when accept fails for want of a
	// descriptor (EMFILE, ENFILE): one is closed, the connection accepted
	// and refused, and the spare opened again once the connection is
	// closed. 0 means DefaultSpares; negative means none.
	Spares int
	// Logger receives the refusals, with component and listen set by
	// the listener. Nil discards them.
	Logger logrus.FieldLogger
}

// A Reserve is a process's descriptor budget for the connections its
// servers accept. A server hands its listener to Reserve.Listener, whose
// Accept returns only connections within the budget and passes the others
// to the server's refusal, which tells the client why (a refuse frame with
// reason busy on the session ports) instead of leaving it in the kernel's
// backlog, where a client waits for an answer that never comes.
//
// A connection is past the budget when its descriptor is numbered at or
// above limit minus Reserve: the kernel gives a new descriptor the lowest
// free number, so every lower-numbered one is in use. This costs one
// getrlimit per connection, where counting the open descriptors would cost
// a directory read. When accept fails for want of a descriptor even so
// (something else took the reserve), a spare is closed to accept the
// connection, which is then refused, and opened again once the refusal is
// done; only while every spare is in use does the connection wait in the
// backlog, for the accept loop's back-off. While a spare is missing and
// cannot be opened again, the process is taken to be out of descriptors:
// a connection accepted then (with the descriptor a refusal freed, before
// its spare was opened again) is refused in the same way.
//
// Its methods are safe for concurrent use.
type Reserve struct {
	reserve int // configured; 0: DefaultReserve of the limit, negative: none
	want    int // spares wanted
	log     logrus.FieldLogger

	mu      sync.Mutex // guards the following fields
	spares  []int      // open spare descriptors
	closed  bool
	refused map[string]*[2]uint64 // by listener name: [past the budget, accepted with a spare]

	lastLog atomic.Int64 // unix ns of the last refusal logged at warning level
}

// NewReserve opens the spares of cfg and returns the Reserve. It fails
// when the descriptor limit cannot be read or no spare can be opened.
func NewReserve(cfg ReserveConfig) (*Reserve, error) {
	log := cfg.Logger
	if log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		log = l
	}
	want := cfg.Spares
	switch {
	case want == 0:
		want = DefaultSpares
	case want < 0:
		want = 0
	}
	r := &Reserve{reserve: cfg.Reserve, want: want, log: log, refused: map[string]*[2]uint64{}}
	if _, err := DescriptorLimit(); err != nil {
		return nil, err
	}
	r.mu.Lock()
	err := r.refillLocked()
	r.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("acceptloop: opening spare descriptors: %w", err)
	}
	return r, nil
}

// DescriptorLimit returns the process's soft RLIMIT_NOFILE (at most 1<<30).
func DescriptorLimit() (int, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, fmt.Errorf("acceptloop: getrlimit(RLIMIT_NOFILE): %w", err)
	}
	if rl.Cur > 1<<30 {
		return 1 << 30, nil
	}
	return int(rl.Cur), nil
}

// refillLocked opens spares until there are as many as wanted; it stops at
// the first failure, which it returns.
func (r *Reserve) refillLocked() error {
	for !r.closed && len(r.spares) < r.want {
		fd, err := syscall.Open(os.DevNull, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open %s: %w", os.DevNull, err)
		}
		r.spares = append(r.spares, fd)
	}
	return nil
}

// refill opens what spares are missing, if it can.
func (r *Reserve) refill() {
	r.mu.Lock()
	r.refillLocked()
	r.mu.Unlock()
}

// full reports whether every spare wanted is held.
func (r *Reserve) full() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed || len(r.spares) >= r.want
}

// takeSpare closes a spare, so that its descriptor is free for an accept,
// and reports whether there was one.
func (r *Reserve) takeSpare() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.spares) == 0 {
		return false
	}
	fd := r.spares[len(r.spares)-1]
	r.spares = r.spares[:len(r.spares)-1]
	syscall.Close(fd)
	return true
}

// Close closes the spares. A Reserve's listeners go on accepting, with no
// spares. Close is safe to call more than once.
func (r *Reserve) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	for _, fd := range r.spares {
		syscall.Close(fd)
	}
	r.spares = nil
	return nil
}

// reserveFor returns the reserve for limit.
func (r *Reserve) reserveFor(limit int) int {
	switch {
	case r.reserve < 0:
		return 0
	case r.reserve == 0:
		return DefaultReserve(limit)
	}
	return min(r.reserve, limit)
}

// ReserveStatus is what Status reports.
type ReserveStatus struct {
	// Limit is the process's descriptor limit (soft RLIMIT_NOFILE);
	// Reserved how many of them connections may not take, and Budget the
	// rest (Limit - Reserved): a connection accepted with a descriptor
	// numbered Budget or above is refused.
	Limit, Reserved, Budget int
	// Spares is how many spare descriptors are held now (of
	// SparesWanted): fewer while refusals made with them are in progress,
	// or when they could not be opened again.
	Spares, SparesWanted int
	// Refused counts, by listener name, the connections refused past the
	// budget; Exhausted those that accept could take only with a spare.
	Refused, Exhausted map[string]uint64
}

// Status reports the budget and the refusals so far. It opens the spares
// that are missing first, if it can.
func (r *Reserve) Status() ReserveStatus {
	limit, _ := DescriptorLimit()
	st := ReserveStatus{Limit: limit, Reserved: r.reserveFor(limit),
		Refused: map[string]uint64{}, Exhausted: map[string]uint64{}}
	st.Budget = st.Limit - st.Reserved
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refillLocked()
	st.Spares, st.SparesWanted = len(r.spares), r.want
	for name, n := range r.refused {
		st.Refused[name], st.Exhausted[name] = n[0], n[1]
	}
	return st
}

// OpenDescriptors counts the process's open descriptors in /proc/self/fd:
// the limit when there is no descriptor left to read it with, -1 when it
// cannot tell (no /proc). It reads a directory: for status pages and
// metrics, not for every connection.
func OpenDescriptors() int {
	f, err := os.Open("/proc/self/fd")
	if errors.Is(err, syscall.EMFILE) {
		if limit, err := DescriptorLimit(); err == nil {
			return limit
		}
	}
	if err != nil {
		return -1
	}
	defer f.Close()
	n := 0
	for {
		names, err := f.Readdirnames(1024)
		n += len(names)
		if errors.Is(err, io.EOF) {
			return n - 1 // the directory's own descriptor
		}
		if err != nil {
			return -1
		}
	}
}

// ListenerConfig says what a Reserve's listener does with the connections
// it refuses.
type ListenerConfig struct {
	// Name labels the listener's refusals in Status and the log ("unsolmsg").
	Name string
	// Refuse takes each connection refused, and a sentence for the client
	// saying why ("the region is out of file descriptors ..."). It is
	// called on the goroutine that called Accept, so it must not block:
	// it closes c at once, or hands it to a goroutine that writes the
	// refusal and closes it. It must close c: a connection accepted with
	// a spare gives the spare back when it is closed.
	Refuse func(c net.Conn, why string)
	// Server names the server in the reasons given to Refuse and logged
	// ("the agent"); default "the region".
	Server string
	// UseReserve lets this listener's connections take the reserved
	// descriptors (a status port, so that an operator can see why the
	// others are refused): they are refused only once accept fails for
	// want of a descriptor.
	UseReserve bool
}

// Listener returns l with the budget applied: Accept returns the
// connections within it and hands the others to cfg.Refuse. Accept
// returns an error only when l's Accept does and no spare is left to
// accept with (or for another reason than a want of descriptors): the
// accept loop backs off then, and tries again.
func (r *Reserve) Listener(l net.Listener, cfg ListenerConfig) net.Listener {
	if cfg.Server == "" {
		cfg.Server = "the region"
	}
	return &reserveListener{Listener: l, r: r, cfg: cfg,
		log: r.log.WithFields(logrus.Fields{"component": cfg.Name, "listen": l.Addr().String()})}
}

type reserveListener struct {
	net.Listener
	r   *Reserve
	cfg ListenerConfig
	log logrus.FieldLogger
}

func (l *reserveListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if !errors.Is(err, syscall.EMFILE) && !errors.Is(err, syscall.ENFILE) || !l.r.takeSpare() {
				return nil, err
			}
			// A descriptor is free now: take the connection waiting in
			// the backlog, to refuse it.
			c, err = l.Listener.Accept()
			if err != nil {
				l.r.refill()
				return nil, err
			}
			l.refuse(&spareConn{Conn: c, r: l.r}, 1, exhaustedReason(l.cfg.Server))
			continue
		}
		if !l.r.full() {
			// A spare is missing: the descriptor this connection got may be
			// one a refusal freed before its spare was opened again (or
			// could be), and the process is still out of descriptors.
			// Refused as one accepted with a spare, unless the spares can
			// be filled now.
			l.r.refill()
			if !l.r.full() {
				l.refuse(&spareConn{Conn: c, r: l.r}, 1, exhaustedReason(l.cfg.Server))
				continue
			}
		}
		if l.cfg.UseReserve {
			return c, nil
		}
		limit, err := DescriptorLimit()
		if err != nil {
			return c, nil
		}
		reserved := l.r.reserveFor(limit)
		if reserved == 0 {
			return c, nil
		}
		fd, ok := descriptor(c)
		if !ok || fd < limit-reserved {
			return c, nil
		}
		l.refuse(c, 0, fmt.Sprintf(
			"%s is at its connection limit: the %d file descriptors it gives connections are in use "+
				"(its limit is %d, and %d are kept for its own work); try again later",
			l.cfg.Server, limit-reserved, limit, reserved))
	}
}

// exhaustedReason is the reason given to a connection accepted with a
// spare.
func exhaustedReason(server string) string {
	limit, _ := DescriptorLimit()
	return fmt.Sprintf("%s is out of file descriptors (its limit is %d); try again later", server, limit)
}

// refuse counts, logs and hands c to cfg.Refuse. kind is 0 past the
// budget, 1 accepted with a spare.
func (l *reserveListener) refuse(c net.Conn, kind int, why string) {
	l.r.mu.Lock()
	n := l.r.refused[l.cfg.Name]
	if n == nil {
		n = new([2]uint64)
		l.r.refused[l.cfg.Name] = n
	}
	n[kind]++
	total := n[0] + n[1]
	l.r.mu.Unlock()
	// At warning level at most once a second: refusals come in floods.
	entry := l.log.WithFields(logrus.Fields{"remote": c.RemoteAddr().String(), "refused": total})
	now := time.Now().UnixNano()
	if last := l.r.lastLog.Load(); now-last >= int64(time.Second) && l.r.lastLog.CompareAndSwap(last, now) {
		entry.Warn("connection refused: " + why)
	} else {
		entry.Debug("connection refused: " + why)
	}
	if l.cfg.Refuse == nil {
		c.Close()
		return
	}
	l.cfg.Refuse(c, why)
}

// descriptor returns the number of c's descriptor.
func descriptor(c net.Conn) (int, bool) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0, false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return 0, false
	}
	fd := -1
	if err := raw.Control(func(d uintptr) { fd = int(d) }); err != nil || fd < 0 {
		return 0, false
	}
	return fd, true
}

// spareConn is a connection accepted with a spare descriptor: closing it
// opens the spare again.
type spareConn struct {
	net.Conn
	r    *Reserve
	once sync.Once
}

func (c *spareConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.r.refill)
	return err
}
