package syslog

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/gateway/syslog/framing"
	"github.com/zbridge/zbridge/internal/acceptloop"
	"github.com/zbridge/zbridge/internal/acceptretry"
	"github.com/zbridge/zbridge/internal/tlsconf"
	"github.com/zbridge/zbridge/protocol"
)

// Appender takes events in batches; gateway/store.Store satisfies it.
// Append must not keep the slice evs after it returns (the server reuses
// it); it may keep the events, which the server does not touch again.
type Appender interface {
	Append(ctx context.Context, evs []*protocol.Event) error
}

// MaxMaxFrame is the largest Config.MaxFrame allowed: 64 MiB, hundreds of
// times rsyslog's default, far below what the stores' encodings of one
// event can hold (memstore keeps its lengths under 2 GiB).
const MaxMaxFrame = 64 << 20

// Defaults of Config.
const (
	DefaultMaxFrame    = framing.DefaultMaxFrame // rsyslog imtcp's MaxFrameSize
	DefaultMaxSessions = 200                     // rsyslog imtcp's MaxSessions
	DefaultReadTimeout = 5 * time.Minute
	DefaultBatchSize   = 256
	// DefaultMaxSessionsPerAddr is the default of Config.MaxSessionsPerAddr.
	DefaultMaxSessionsPerAddr = 32
	// DefaultHandshakeTimeout is the default of Config.HandshakeTimeout.
	DefaultHandshakeTimeout = 10 * time.Second
	// DefaultCoalesce is the default of Config.Coalesce.
	DefaultCoalesce = 500 * time.Microsecond
	// MaxCoalesce is the longest Config.Coalesce allowed: beyond a few
	// milliseconds a hold saves no more, and one under way is not cut
	// short by Close (Shutdown's draining reads are not held).
	MaxCoalesce = 20 * time.Millisecond
)

const (
	// drainWindow is how long Shutdown lets a connection go on reading:
	// long enough to read what the kernel has already received (and
	// acknowledged to the sender), short enough not to hold shutdown.
	drainWindow = 100 * time.Millisecond
	// udpLinger is how long a UDP batch waits for more datagrams before it
	// is appended.
	udpLinger = time.Millisecond
	// maxDatagram is the largest UDP payload.
	maxDatagram = 65535
)

// Config configures a Server. New copies it.
type Config struct {
	// Appender receives the events, in batches, in the order each
	// connection delivered them. Required.
	Appender Appender
	// Logger receives the server's log, with component=syslog added, and
	// remote=ADDR for what concerns one connection. Required.
	Logger logrus.FieldLogger
	// MaxFrame is the largest message in bytes (default 200000, rsyslog
	// imtcp's MaxFrameSize). A TCP frame over it ends its connection; a
	// larger datagram is kept truncated. Either way the event says so.
	MaxFrame int
	// MaxSessions is how many TCP/TLS connections are served at once
	// (default 200, like rsyslog imtcp). A connection over it is closed at once.
	MaxSessions int
	// MaxSessionsPerAddr is how many of them may come from one source IP
	// address (default 32), so that one host cannot take all MaxSessions. A
	// connection over it is closed at once. Raise it for a relay that opens
	// many connections, or for senders behind one NAT address.
	MaxSessionsPerAddr int
	// ReadTimeout is how long a connection may stay silent before it is
	// closed (default 5 minutes), and also how long a frame may take to
	// arrive from its first byte: a sender that trickles a frame byte by
	// byte is closed too (what it sent of the frame is kept as an event).
	// It bounds the writes a read makes as well (crypto/tls answers a TLS
	// 1.3 key update from inside Read): a TLS sender that asks for them
	// and does not read its answers is closed at the same time.
	ReadTimeout time.Duration
	// HandshakeTimeout bounds the TLS handshake of a new connection
	// (default 10 seconds); a client that does not complete it is closed.
	HandshakeTimeout time.Duration
	// TLSConfig, when set, makes Serve speak syslog over TLS (RFC 5425):
	// each connection is a tls.Server over the accepted one (and its
	// Coalesce hold). New clones it and makes TLS 1.2 the minimum; it must
	// provide a certificate.
	TLSConfig *tls.Config
	// BatchSize is the most events of a batch (default 256). A TCP or TLS
	// batch holds the events parsed from one read, so fewer when the read
	// held fewer, and is handed to one Append; but while an Append is in
	// progress, the connection's batches parsed meanwhile wait and go to the
	// next Append together (up to 8192 events), so that an Appender with a
	// cost per call (a round trip) keeps up with a busy connection. A UDP
	// Append takes at most BatchSize events.
	BatchSize int
	// Coalesce is how long a TCP or TLS connection's reads are held apart
	// once the region has caught up with its sender (default 500µs, at
	// most MaxCoalesce; negative: not held). A read that finds less
	// waiting than both half the room it has and 32 KiB is followed by
	// the next only Coalesce after it, so that what a busy sender sends
	// meanwhile is read, parsed, appended and sent to the subscribers as
	// one batch instead of many small ones: each batch costs system calls
	// and wake-ups, whatever its size. A message
	// waits at most about Coalesce more (up to a millisecond more when the
	// process is otherwise idle: the Go runtime's timers then have that
	// resolution). A sender that keeps the reads full is never held. The
	// hold is beneath TLS, on the connection's bytes, not its records.
	Coalesce time.Duration
	// OnSender, when set, is called once per TCP or TLS connection with the
	// host name of the connection's first message (its HOSTNAME, or the
	// sender's address when it names none) and the sender's address. It is
	// never called for UDP datagrams: their source address can be forged,
	// so they must not teach the region where a host is. It is called on the
	// connection's goroutine, before that message is appended: it must not
	// block for long.
	OnSender func(host string, addr netip.Addr)
	// Location is the zone assumed for RFC 3164 timestamps, which carry
	// none (nil means UTC). Pass time.Local to use the region's zone.
	Location *time.Location
}

// Stats are the server's counters since New.
type Stats struct {
	Connections   uint64 // TCP/TLS connections accepted, refused ones included
	Refused       uint64 // connections closed at once: MaxSessions, or MaxSessionsPerAddr from the address, were open
	Active        int    // connections being served now
	Frames        uint64 // messages received (frames and datagrams); each became an event
	ParseFailures uint64 // events with Parsed false, incomplete frames included
	Oversize      uint64 // frames and datagrams larger than MaxFrame
	FramingErrors uint64 // connections ended by a malformed octet count
	Bytes         uint64 // bytes read: TCP payload (after TLS) and datagrams
	Reads         uint64 // reads of TCP and TLS connections that returned bytes: of TLS's records, handshakes included
	Datagrams     uint64 // UDP datagrams received
	AppendErrors  uint64 // batches the Appender failed to take
}

// counters are the atomic form of Stats.
type counters struct {
	connections, refused, frames, parseFailures, oversize,
	framingErrors, bytes, reads, datagrams, appendErrors atomic.Uint64
}

// A Server receives syslog messages over TCP, TLS and UDP and hands them,
// as events, to an Appender. Create it with New; its methods are safe for
// concurrent use.
type Server struct {
	cfg     Config
	log     logrus.FieldLogger
	ctx     context.Context // the Appender's context, cancelled by Close
	cancel  context.CancelFunc
	running atomic.Int64 // goroutines counted in wg, for Shutdown to poll
	wg      sync.WaitGroup
	stats   counters
	loop    *acceptloop.Loop // every TCP/TLS listener's accept loop

	mu          sync.Mutex // guards the following fields
	shutdown    bool       // Shutdown or Close was called: start nothing new
	packetConns map[net.PacketConn]struct{}
	conns       map[*conn]struct{}
}

// New checks cfg, fills in its defaults and returns a Server.
func New(cfg Config) (*Server, error) {
	switch {
	case cfg.Appender == nil:
		return nil, fmt.Errorf("%w: no Appender", ErrConfig)
	case cfg.Logger == nil:
		return nil, fmt.Errorf("%w: no Logger", ErrConfig)
	case cfg.MaxFrame < 0, cfg.MaxSessions < 0, cfg.MaxSessionsPerAddr < 0, cfg.ReadTimeout < 0,
		cfg.HandshakeTimeout < 0, cfg.BatchSize < 0:
		return nil, fmt.Errorf("%w: negative MaxFrame, MaxSessions, MaxSessionsPerAddr, ReadTimeout, HandshakeTimeout or BatchSize", ErrConfig)
	case cfg.MaxFrame > MaxMaxFrame:
		return nil, fmt.Errorf("%w: MaxFrame %d above the most allowed, %d", ErrConfig, cfg.MaxFrame, MaxMaxFrame)
	case cfg.Coalesce > MaxCoalesce:
		return nil, fmt.Errorf("%w: Coalesce %v above the most allowed, %v", ErrConfig, cfg.Coalesce, MaxCoalesce)
	}
	if cfg.MaxFrame == 0 {
		cfg.MaxFrame = DefaultMaxFrame
	}
	if cfg.MaxSessions == 0 {
		cfg.MaxSessions = DefaultMaxSessions
	}
	if cfg.MaxSessionsPerAddr == 0 {
		cfg.MaxSessionsPerAddr = DefaultMaxSessionsPerAddr
	}
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = DefaultReadTimeout
	}
	if cfg.HandshakeTimeout == 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.Coalesce == 0 {
		cfg.Coalesce = DefaultCoalesce
	}
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	if cfg.TLSConfig != nil {
		tc := cfg.TLSConfig.Clone()
		if tc.MinVersion == 0 {
			tc.MinVersion = tls.VersionTLS12
		}
		if tc.MinVersion < tls.VersionTLS12 {
			return nil, fmt.Errorf("%w: TLSConfig.MinVersion below TLS 1.2", ErrConfig)
		}
		if len(tc.Certificates) == 0 && tc.GetCertificate == nil && tc.GetConfigForClient == nil {
			return nil, fmt.Errorf("%w: TLSConfig has no certificate", ErrConfig)
		}
		cfg.TLSConfig = tc
	}
	ctx, cancel := context.WithCancel(context.Background())
	log := cfg.Logger.WithField("component", "syslog")
	return &Server{
		cfg:         cfg,
		log:         log,
		ctx:         ctx,
		cancel:      cancel,
		loop:        acceptloop.New(acceptloop.Config{MaxPerAddr: cfg.MaxSessionsPerAddr, Logger: log}),
		packetConns: make(map[net.PacketConn]struct{}),
		conns:       make(map[*conn]struct{}),
	}, nil
}

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	active := len(s.conns)
	s.mu.Unlock()
	c := &s.stats
	return Stats{
		Connections:   c.connections.Load(),
		Refused:       c.refused.Load(),
		Active:        active,
		Frames:        c.frames.Load(),
		ParseFailures: c.parseFailures.Load(),
		Oversize:      c.oversize.Load(),
		FramingErrors: c.framingErrors.Load(),
		Bytes:         c.bytes.Load(),
		Reads:         c.reads.Load(),
		Datagrams:     c.datagrams.Load(),
		AppendErrors:  c.appendErrors.Load(),
	}
}

// startLocked counts a goroutine (or a Serve call) that Shutdown and Close
// wait for. It reports false once shutdown has begun.
func (s *Server) startLocked() bool {
	if s.shutdown {
		return false
	}
	s.wg.Add(1)
	s.running.Add(1)
	return true
}

func (s *Server) finished() {
	s.running.Add(-1)
	s.wg.Done()
}

// Serve accepts connections on l and serves each on its own goroutine: TCP,
// or TLS when Config.TLSConfig is set. Each connection may use octet
// counting or LF framing (detected from its first byte). Serve always
// returns a non-nil error and closes l; after Shutdown or Close the error
// is ErrServerClosed.
func (s *Server) Serve(l net.Listener) error {
	transport := "tcp"
	if s.cfg.TLSConfig != nil {
		transport = "tls" // each connection is wrapped in accept, above its coalescing
	}
	s.mu.Lock()
	if !s.startLocked() {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	s.mu.Unlock()
	defer s.finished()

	log := s.log.WithFields(logrus.Fields{"listen": l.Addr().String(), "transport": transport})
	log.Info("serving syslog")
	err := s.loop.Serve(l, func(nc net.Conn, a *acceptloop.Admission) { s.accept(nc, a, log) })
	if errors.Is(err, acceptloop.ErrStopped) {
		return ErrServerClosed
	}
	return fmt.Errorf("syslog: %w", err)
}

// accept starts serving nc, or closes it at once when MaxSessions, or
// MaxSessionsPerAddr from its address, are open.
func (s *Server) accept(nc net.Conn, a *acceptloop.Admission, log logrus.FieldLogger) {
	s.stats.connections.Add(1)
	remote := addrPortOf(nc.RemoteAddr())
	clog := log.WithField("remote", remote.String())

	s.mu.Lock()
	if s.shutdown {
		s.mu.Unlock()
		nc.Close()
		a.Release()
		return
	}
	switch {
	case a.Over:
		s.mu.Unlock()
		s.stats.refused.Add(1)
		clog.WithError(ErrTooManySessions).Warnf("connection refused: %d sessions open from %s", a.Count, a.Addr)
		nc.Close()
		return
	case len(s.conns) >= s.cfg.MaxSessions:
		s.mu.Unlock()
		s.stats.refused.Add(1)
		clog.WithError(ErrTooManySessions).Warnf("connection refused: %d sessions open", s.cfg.MaxSessions)
		nc.Close()
		a.Release()
		return
	}
	c := &conn{remote: remote, log: clog, adm: a, raw: &coalescing{Conn: nc, reads: &s.stats.reads}}
	c.nc = c.raw
	if s.cfg.TLSConfig != nil {
		c.nc, c.tls = tls.Server(c.raw, s.cfg.TLSConfig), true
	}
	s.conns[c] = struct{}{}
	s.startLocked()
	s.mu.Unlock()
	go s.serveConn(c)
}

func (s *Server) shuttingDown() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.shutdown
}

// conn is one TCP or TLS connection.
type conn struct {
	nc     net.Conn    // raw, or a TLS server connection over it
	raw    *coalescing // the accepted connection
	tls    bool        // nc is TLS's
	remote netip.AddrPort
	log    logrus.FieldLogger
	adm    *acceptloop.Admission // its place in the per-address count

	// frameTimedOut: the connection ended because a frame was not complete
	// ReadTimeout after its first byte. Set by the reading goroutine before
	// it hands over its last job; read after that job is received.
	frameTimedOut bool

	mu         sync.Mutex // guards the following fields and the setting of nc's deadline
	draining   bool       // Shutdown: read for drainWindow more, then stop
	drainArmed bool       // a read since draining began has set the drain deadline
}

// drain makes the connection read only what arrives within drainWindow: it
// cuts short a read in progress, a write TLS makes inside it included, and
// the next read (which may come later, if the connection is busy
// appending) gets a window of its own.
func (c *conn) drain() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.draining {
		c.draining = true
		c.nc.SetDeadline(time.Now().Add(drainWindow))
	}
}

// connReader reads from a connection for its Scanner, with the deadline
// (unless the connection is draining): ReadTimeout from now while no byte
// of the next frame has arrived, ReadTimeout from the first byte of the
// frame once one has, so that a frame trickled byte by byte does not keep
// the connection forever. It counts bytes.
//
// The deadline is the write deadline too. The server writes nothing after
// the handshake, but crypto/tls does, from inside Read: its answer to a
// TLS 1.3 KeyUpdate that requests one. A sender that keeps requesting
// them (a few at a time, between frames, under crypto/tls's limit on
// records without data) and never reads fills the socket's buffers, and
// that write would then wait forever, holding the connection past
// ReadTimeout and Shutdown until its ctx ends
// (TestServerTLSKeyUpdateNotRead).
type connReader struct {
	c       *conn
	timeout time.Duration
	bytes   *atomic.Uint64

	// Used by the reading goroutine only.
	read       int64     // bytes read from the connection
	lastRead   time.Time // when the last read that returned bytes returned
	frameStart time.Time // when the first byte of the unfinished frame arrived; zero when none has
}

func (r *connReader) Read(p []byte) (int, error) {
	c := r.c
	c.mu.Lock()
	draining := c.draining
	switch {
	case !draining && r.frameStart.IsZero():
		c.nc.SetDeadline(time.Now().Add(r.timeout))
	case !draining:
		c.nc.SetDeadline(r.frameStart.Add(r.timeout))
	case !c.drainArmed:
		c.drainArmed = true
		c.nc.SetDeadline(time.Now().Add(drainWindow))
	}
	c.mu.Unlock()
	if draining {
		c.raw.hold = 0 // what the kernel holds is read at once (the reading goroutine's field)
	}
	n, err := c.nc.Read(p)
	if c.tls && err == nil && n > 0 && n < tlsGather {
		n += r.readBuffered(p[n:min(len(p), tlsGather)])
	}
	r.bytes.Add(uint64(n))
	if n > 0 {
		r.read += int64(n)
		r.lastRead = time.Now()
		if r.frameStart.IsZero() {
			r.frameStart = r.lastRead
		}
	}
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		c.mu.Lock()
		draining = c.draining
		c.mu.Unlock()
		switch {
		case draining:
			err = ErrShutdown
		case !r.frameStart.IsZero():
			c.frameTimedOut = true
			err = fmt.Errorf("frame not complete %v after its first byte: %w", r.timeout, err)
		}
	}
	return n, err
}

// tlsGather: a TLS read that returned less (one record) is followed by
// readBuffered up to this much. Not more: a job of four full records
// (64 KiB) left the parsing goroutines idle while the reading one
// decrypted them, and records of 16 KiB went 25–35% slower
// (BenchmarkServerTLS).
const tlsGather = 16 << 10

// readBuffered reads into p what TLS holds already of the records after
// the one a read returned, without waiting for more. A TLS read returns
// one record: a sender that writes each message as a record of its own
// would otherwise have each parsed and appended alone (BenchmarkServerTLS).
// An error here is left for the next Read, which TLS returns it to again
// (crypto/tls keeps a connection's read errors, but for timeouts).
func (r *connReader) readBuffered(p []byte) int {
	c := r.c
	c.raw.bufferedOnly = true
	defer func() { c.raw.bufferedOnly = false }()
	n := 0
	for n < len(p) {
		m, err := c.nc.Read(p[n:])
		n += m
		if err != nil || m == 0 {
			break
		}
	}
	return n
}

// frameDone is told, after the Scanner returned a frame, how much of the
// stream it has consumed. What was read beyond it belongs to the next
// frames, and arrived with the last read.
func (r *connReader) frameDone(consumed int64) {
	if r.read > consumed {
		r.frameStart = r.lastRead
	} else {
		r.frameStart = time.Time{}
	}
}

// Bounds of a connection's pipeline. At most maxParseWorkers parsers; a job
// is sent on once it holds maxJobBytes; up to queuedPerWorker*workers jobs
// are read ahead, waiting in order. The jobs of the Append in progress were
// taken from order, so a connection holds at most about
// 2*(queuedPerWorker*workers+2) jobs of frames (plus one frame of up to
// MaxFrame): 9 MiB with 4 workers. The queue is that deep so that what is
// read during a slow Append (a store's round trip of a few ms) fits in it
// and goes to the next one. One Append takes at most maxAppendEvents events
// or maxAppendBytes of frames, but always a whole job.
const (
	maxParseWorkers = 4
	maxJobBytes     = 256 << 10
	queuedPerWorker = 4
	maxAppendEvents = 8192
	maxAppendBytes  = 4 << 20
)

// parseJob is a batch of frames from one connection, parsed by a worker
// and appended in the order it was read.
type parseJob struct {
	buf      []byte      // the frames' bytes, one after another
	ends     []int       // where each frame ends in buf
	received []time.Time // when each frame was read
	evs      []*protocol.Event
	failures uint64 // events in evs with Parsed false

	// The last job of a connection carries what ended it and what was
	// received of an unfinished frame.
	err     error
	partial []byte
	offset  int64

	done chan struct{} // closed by the worker
}

// size is what the job holds of frames, in bytes.
func (j *parseJob) size() int { return len(j.buf) + len(j.partial) }

// parsed reports, without waiting, whether a worker has parsed j.
func (j *parseJob) parsed() bool {
	select {
	case <-j.done:
		return true
	default:
		return false
	}
}

func (j *parseJob) reset() {
	j.buf, j.ends, j.received = j.buf[:0], j.ends[:0], j.received[:0]
	clear(j.evs)
	j.evs, j.failures, j.err, j.partial, j.offset = j.evs[:0], 0, nil, nil, 0
	j.done = make(chan struct{})
}

// parse turns the job's frames into events with p.
func (j *parseJob) parse(p *Parser) {
	start := 0
	for i, end := range j.ends {
		ev := p.Parse(j.buf[start:end], j.received[i])
		j.evs = append(j.evs, ev)
		if !ev.Parsed {
			j.failures++
		}
		start = end
	}
	if len(j.partial) > 0 {
		ev := p.ParseIncomplete(j.partial, time.Now(), j.err)
		j.evs = append(j.evs, ev)
		if !ev.Parsed {
			j.failures++
		}
	}
	close(j.done)
}

// serveConn reads frames from c until the stream ends, an error, or
// shutdown, appending their events in batches. Parsing is the costly part,
// so one connection's batches are parsed by several workers at once (one
// per CPU) and appended in the order they were read: a single busy sender,
// such as a relay forwarding a whole site, is not held to one CPU.
func (s *Server) serveConn(c *conn) {
	defer func() {
		if c.raw.writeTimedOut.Load() {
			// The sender does not read what TLS writes: crypto/tls's
			// Close would wait 5 s more to send it a close_notify.
			c.raw.Close()
		} else {
			c.nc.Close()
		}
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.adm.Release()
		s.finished()
	}()
	c.log.Debug("connection open")
	if tc, ok := c.nc.(*tls.Conn); ok {
		// Bounded by HandshakeTimeout, cut short by Close (s.ctx) and by
		// Shutdown (the drain deadline on the connection).
		ctx, cancel := context.WithTimeout(s.ctx, s.cfg.HandshakeTimeout)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			c.log.WithError(tlsconf.ExplainHandshake(err)).Warn("TLS handshake failed; connection closed")
			return
		}
	}
	if s.cfg.Coalesce > 0 {
		// Not during the handshake, whose reads are each awaited, nor
		// for the first read after it.
		c.raw.hold, c.raw.caughtUp = s.cfg.Coalesce, false
	}

	addr := c.remote.Addr()
	workers := min(max(1, runtime.GOMAXPROCS(0)), maxParseWorkers)
	queued := queuedPerWorker * workers
	jobs := make(chan *parseJob)
	order := make(chan *parseJob, queued)
	free := make(chan *parseJob, 2*queued+2) // recycled jobs, as many as may be in flight
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := NewParser(s.cfg.Location)
			p.SetSender(addr)
			for j := range jobs {
				j.parse(p)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(jobs)
		defer close(order)
		s.readFrames(c, jobs, order, free)
	}()

	a := committer{s: s, c: c, order: order, free: free, notify: s.cfg.OnSender, b: batcher{s: s, log: c.log}}
	for a.gather() {
		a.commit()
		a.recycle()
	}
	wg.Wait()
}

// committer appends a connection's jobs in the order they were read, with
// group commit: it takes the next job together with the jobs behind it that
// are parsed already and appends all their events at once. While a slow
// Append (a store's round trip) is in flight the reader and the workers go
// on, and the next Append carries all that piled up meanwhile, so a busy
// connection is not held to one job per round trip. When the Appender keeps
// up, there is nothing behind the job and it is appended alone, at once.
type committer struct {
	s      *Server
	c      *conn
	order  <-chan *parseJob
	free   chan<- *parseJob
	notify func(host string, addr netip.Addr) // OnSender, until it has been called
	b      batcher

	group  []*parseJob // the jobs of the next Append, in order
	held   *parseJob   // taken from order but not fit to join group: it heads the next one
	failed bool        // an Append failed: what is left is dropped
}

// gather waits for the next job to be parsed and puts it in a.group with
// the jobs queued behind it that are parsed already, without waiting for
// more, up to maxAppendEvents and maxAppendBytes. A job that ended the
// connection starts a group of its own, so that its error is logged after
// the events before it were appended (see commit). gather reports false
// when order is closed and every job has been through it.
func (a *committer) gather() bool {
	j := a.held
	a.held = nil
	if j == nil {
		var ok bool
		if j, ok = <-a.order; !ok {
			return false
		}
	}
	<-j.done
	a.group = append(a.group[:0], j)
	events, size := len(j.evs), j.size()
	for {
		var next *parseJob
		select {
		case next = <-a.order: // nil once order is closed; the next gather sees it
		default:
		}
		if next == nil {
			return true
		}
		// parsed first: the worker owns next.evs until then.
		if !next.parsed() || next.err != nil ||
			events+len(next.evs) > maxAppendEvents || size+next.size() > maxAppendBytes {
			a.held = next
			return true
		}
		a.group = append(a.group, next)
		events += len(next.evs)
		size += next.size()
	}
}

// commit appends the group's events in one Append, unless an Append of the
// connection failed before. It calls OnSender before the connection's first
// event is appended. When the group is the connection's last job, it logs
// what ended the connection before appending the job's events (the events
// read before it went in earlier Appends). An Append error stops the
// reading: the jobs already read are dropped.
func (a *committer) commit() {
	if a.failed {
		return
	}
	for _, j := range a.group {
		a.b.evs = append(a.b.evs, j.evs...)
		a.b.failures += j.failures
	}
	if a.notify != nil && len(a.b.evs) > 0 {
		a.notify(a.b.evs[0].Origin.Host, a.c.remote.Addr())
		a.notify = nil
	}
	if last := a.group[len(a.group)-1]; last.err != nil {
		a.s.logEnd(a.c, last.offset, last.err)
	}
	if err := a.b.flush(); err != nil {
		a.failed = true
		a.c.nc.Close()
	}
}

// recycle hands the group's jobs back to the reader.
func (a *committer) recycle() {
	for i, j := range a.group {
		clear(j.evs) // the Appender has the events now, or they were dropped
		j.evs = j.evs[:0]
		if cap(j.buf) > 2*maxJobBytes { // one huge frame: do not keep its buffer
			j.buf = nil
		}
		select {
		case a.free <- j:
		default:
		}
		a.group[i] = nil
	}
	a.group = a.group[:0]
}

// readFrames frames c's stream into jobs, sent to the workers and, in
// order, to the appender, until the stream ends.
func (s *Server) readFrames(c *conn, jobs, order chan<- *parseJob, free chan *parseJob) {
	cr := &connReader{c: c, timeout: s.cfg.ReadTimeout, bytes: &s.stats.bytes}
	sc := framing.NewScanner(cr, s.cfg.MaxFrame)
	next := func() *parseJob {
		var j *parseJob
		select {
		case j = <-free:
		default:
			j = new(parseJob)
		}
		j.reset()
		return j
	}
	dispatch := func(j *parseJob) {
		order <- j
		jobs <- j
	}
	j := next()
	var received time.Time
	buffered := false // whether the next frame is already in the buffer
	for {
		frame, err := sc.Next()
		if !buffered {
			received = time.Now()
		}
		if err != nil {
			j.err, j.offset = err, sc.Offset()
			if len(frame) > 0 {
				j.partial = append([]byte(nil), frame...)
			}
			dispatch(j)
			return
		}
		cr.frameDone(sc.Offset())
		j.buf = append(j.buf, frame...)
		j.ends = append(j.ends, len(j.buf))
		j.received = append(j.received, received)
		buffered = sc.Buffered()
		if len(j.ends) >= s.cfg.BatchSize || len(j.buf) >= maxJobBytes || !buffered {
			dispatch(j)
			j = next()
		}
	}
}

// logEnd logs and counts the error that ended a connection.
func (s *Server) logEnd(c *conn, offset int64, err error) {
	log := c.log.WithField("offset", offset)
	switch {
	case err == io.EOF:
		log.Debug("connection closed by the sender")
	case errors.Is(err, framing.ErrFrameTooLarge):
		s.stats.oversize.Add(1)
		log.WithError(err).Warn("frame too large; what was received of it is kept, connection closed")
	case errors.Is(err, framing.ErrBadCount):
		s.stats.framingErrors.Add(1)
		log.WithError(err).Warn("malformed octet count; the rest of the buffer is kept as one event, connection closed")
	case errors.Is(err, ErrShutdown):
		log.WithError(err).Debug("connection closed for shutdown")
	case errors.Is(err, net.ErrClosed) || s.ctx.Err() != nil:
		log.Debug("connection closed by Close")
	case errors.Is(err, os.ErrDeadlineExceeded) && c.frameTimedOut:
		log.WithError(err).Warn("frame not complete in time; what was received of it is kept, connection closed")
	case errors.Is(err, os.ErrDeadlineExceeded):
		log.WithError(err).Infof("nothing received for %v; connection closed", s.cfg.ReadTimeout)
	case errors.Is(err, framing.ErrPartialFrame):
		log.WithError(err).Warn("connection ended inside a frame; what was received of it is kept")
	default:
		log.WithError(err).Info("read failed; connection closed")
	}
}

// batcher gathers events for one Append.
type batcher struct {
	s        *Server
	log      logrus.FieldLogger
	evs      []*protocol.Event
	failures uint64 // events in evs with Parsed false
}

func (b *batcher) add(ev *protocol.Event) {
	b.evs = append(b.evs, ev)
	if !ev.Parsed {
		b.failures++
	}
}

// flush appends the batch. After Close it drops it.
func (b *batcher) flush() error {
	if len(b.evs) == 0 {
		return nil
	}
	s := b.s
	s.stats.frames.Add(uint64(len(b.evs)))
	s.stats.parseFailures.Add(b.failures)
	err := s.ctx.Err()
	if err == nil {
		err = s.cfg.Appender.Append(s.ctx, b.evs)
	}
	if err != nil {
		s.stats.appendErrors.Add(1)
		if s.ctx.Err() == nil {
			b.log.WithError(err).Errorf("append of %d events failed", len(b.evs))
		}
	}
	clear(b.evs)
	b.evs, b.failures = b.evs[:0], 0
	return err
}

// ServePacket reads syslog datagrams (UDP, RFC 5426) from pc: each datagram
// is one message, trailing LF, CR and NUL bytes dropped. Datagrams are
// appended in batches of what arrives within a millisecond (at most
// BatchSize). An Append error is logged and the batch dropped (UDP has no
// sender to push back on). Config.OnSender is not called for datagrams.
// ServePacket always returns a non-nil error and closes pc; after Shutdown
// or Close the error is ErrServerClosed.
func (s *Server) ServePacket(pc net.PacketConn) error {
	s.mu.Lock()
	if !s.startLocked() {
		s.mu.Unlock()
		pc.Close()
		return ErrServerClosed
	}
	s.packetConns[pc] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.packetConns, pc)
		s.mu.Unlock()
		pc.Close()
		s.finished()
	}()

	log := s.log.WithFields(logrus.Fields{"listen": pc.LocalAddr().String(), "transport": "udp"})
	log.Info("serving syslog")
	buf := make([]byte, maxDatagram+1)
	p := NewParser(s.cfg.Location)
	b := batcher{s: s, log: log, evs: make([]*protocol.Event, 0, s.cfg.BatchSize)}
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() { // the linger ended
				b.flush()
				pc.SetReadDeadline(time.Time{})
				continue
			}
			b.flush()
			if s.shuttingDown() {
				return ErrServerClosed
			}
			if acceptretry.Retryable(err) {
				continue
			}
			return fmt.Errorf("syslog: read datagram: %w", err)
		}
		received := time.Now()
		s.stats.datagrams.Add(1)
		s.stats.bytes.Add(uint64(n))
		d := trimEnd(buf[:n])
		if len(d) == 0 {
			continue // nothing to keep
		}
		addr := addrPortOf(from).Addr()
		p.SetSender(addr)
		var ev *protocol.Event
		if len(d) > s.cfg.MaxFrame {
			s.stats.oversize.Add(1)
			cause := fmt.Errorf("%w: datagram of %d bytes, limit %d; truncated", framing.ErrFrameTooLarge, len(d), s.cfg.MaxFrame)
			log.WithField("remote", addr.String()).Warn(cause.Error())
			ev = p.ParseIncomplete(d[:s.cfg.MaxFrame], received, cause)
		} else {
			ev = p.Parse(d, received)
		}
		b.add(ev)
		switch {
		case len(b.evs) >= s.cfg.BatchSize:
			b.flush()
			pc.SetReadDeadline(time.Time{})
		case len(b.evs) == 1:
			pc.SetReadDeadline(received.Add(udpLinger))
		}
	}
}

// Shutdown stops the server gracefully: it closes the listeners and packet
// listeners, lets each connection read for a short while more (what the
// kernel has already received), turns what it has of an unfinished frame
// into an event, appends what it has and closes; then it waits for every
// goroutine. If ctx ends first, Shutdown returns ctx.Err() and the rest
// goes on; call Close to stop it at once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.loop.Stop()
	s.mu.Lock()
	s.shutdown = true
	for pc := range s.packetConns {
		pc.Close()
	}
	for c := range s.conns {
		c.drain()
	}
	s.mu.Unlock()

	wait := time.Millisecond
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for s.running.Load() > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
			wait = min(2*wait, 50*time.Millisecond)
			timer.Reset(wait)
		}
	}
	s.wg.Wait() // returns at once; orders what the goroutines did before this
	return nil
}

// Close stops the server at once: it closes every listener and connection,
// cancels Appends in progress, drops the events not yet appended, and waits
// for the server's goroutines to end. It is safe to call more than once.
// It closes the TCP connections beneath TLS, sending no close_notify: that
// would wait for a write TLS has in progress, and for a sender that does
// not read.
func (s *Server) Close() error {
	s.loop.Stop()
	s.mu.Lock()
	s.shutdown = true
	s.cancel()
	for pc := range s.packetConns {
		pc.Close()
	}
	for c := range s.conns {
		c.raw.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// addrPortOf returns the address and port of a TCP or UDP address, or the
// zero AddrPort.
func addrPortOf(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.TCPAddr:
		return unmap(a.AddrPort())
	case *net.UDPAddr:
		return unmap(a.AddrPort())
	case nil:
		return netip.AddrPort{}
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.AddrPort{}
	}
	return unmap(ap)
}

func unmap(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
