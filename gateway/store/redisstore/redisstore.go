package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/gateway/store"
	"github.com/zbridge/zbridge/protocol"
)

// Defaults for Config.
const (
	DefaultPrefix       = "zbridge"
	DefaultMaxEvents    = 1_000_000
	DefaultMaxBytes     = 512 << 20
	DefaultSessionTTL   = 60 * time.Second
	DefaultCacheEvents  = 200_000
	DefaultCacheBytes   = 128 << 20
	DefaultBufferEvents = 1_000_000
	DefaultBufferBytes  = 256 << 20
	DefaultTailBlock    = time.Second
	DefaultGroupTTL     = 7 * 24 * time.Hour
	DefaultGroupSweep   = time.Minute
)

// Config configures a Store.
type Config struct {
	// Client is the Redis client (required). The caller owns it and closes
	// it after Close; ParseURL and redis.NewUniversalClient make one for a
	// single server, Sentinel or Cluster.
	Client redis.UniversalClient
	// Prefix is the hash tag in every key, "{Prefix}:...": DefaultPrefix if
	// empty. Stores with the same prefix on the same Redis share all state,
	// as the regions of one installation should.
	Prefix string

	// Retention of the event stream, applied on each append. MaxEvents is
	// the most events kept (DefaultMaxEvents if 0, no limit if negative);
	// MaxBytes the most bytes, as estimated by protocol.Event.Size
	// (DefaultMaxBytes if 0, no limit if negative), applied as a count from
	// the mean event size this process has seen and so approximate; MaxAge
	// drops events older than that (by their IDs) if positive. All three
	// trim approximately (Redis "~"): Redis may keep somewhat more.
	MaxEvents int
	MaxBytes  int64
	MaxAge    time.Duration

	// SessionTTL is how long a session record outlives the last refresh by
	// the Store that put it (DefaultSessionTTL if 0). The Store refreshes
	// its own sessions every SessionTTL/3, so those of a region that dies
	// expire within SessionTTL.
	SessionTTL time.Duration

	// CacheEvents and CacheBytes bound the in-process tail cache, the copy
	// of the newest events reads are served from (DefaultCacheEvents and
	// DefaultCacheBytes if 0).
	CacheEvents int
	CacheBytes  int64

	// BufferEvents and BufferBytes bound the events accepted while Redis is
	// unreachable and not yet written (DefaultBufferEvents and
	// DefaultBufferBytes if 0). Appends beyond them are dropped.
	BufferEvents int
	BufferBytes  int64

	// TailBlock is how long one blocking read of the tail waits for new
	// events (DefaultTailBlock if 0). Close waits for the read in flight,
	// so it also bounds how long Close takes while Redis answers; when
	// Redis hangs (a network partition), go-redis gives a blocking read
	// 10 seconds more than that before it fails.
	TailBlock time.Duration

	// MinReplicas is how many replicas must have an append before it
	// counts as written (Redis WAIT after the write, on the master of the
	// store's keys). An append Redis took but that fewer replicas
	// acknowledged within ReplicaTimeout is kept in the write buffer, the
	// Store degraded, as when Redis is unreachable, and written again (it
	// is found written, and not added twice) until the replicas have it.
	// That way an acknowledged append survives the master's failure and
	// a failover to a replica. 0 means DefaultMinReplicas(Client): 1 for a
	// Sentinel client, none otherwise; negative means none.
	//
	// A Sentinel deployment with MinReplicas 1 needs two replicas for
	// appends to go on being written after one failover: the new master
	// then has the other one.
	MinReplicas int
	// ReplicaTimeout bounds the wait for MinReplicas
	// (DefaultReplicaTimeout if 0).
	ReplicaTimeout time.Duration

	// GroupTTL is how long a consumer group that nothing reads is kept
	// (DefaultGroupTTL if 0; negative: for ever): then the group is
	// destroyed (XGROUP DESTROY), with its pending entries and its read
	// records. Reads are timed by Redis's clock. GroupSweep is how often
	// the Store looks for such groups, and drops from every group's
	// pending list the entries of events retention removed
	// (DefaultGroupSweep if 0).
	GroupTTL   time.Duration
	GroupSweep time.Duration

	// Logger receives the store's warnings (required).
	Logger logrus.FieldLogger
	// Now is the clock (time.Now if nil): Received times, provisional IDs
	// and MaxAge use it.
	Now func() time.Time
}

// Store is the Redis implementation of store.Store. See the package
// documentation.
type Store struct {
	rdb       redis.UniversalClient
	log       logrus.FieldLogger
	now       func() time.Time
	maxEvents int64 // 0: no limit
	maxBytes  int64 // 0: no limit
	maxAge    time.Duration
	ttl       time.Duration
	block     time.Duration
	groupTTL  time.Duration // 0: for ever
	sweep     time.Duration
	bufEvents int
	bufBytes  int64
	writer    string // this Store's name in the writer records

	minReplicas    int // replicas an append waits for; 0: none
	replicaTimeout time.Duration

	// Keys.
	kEvents, kBorn, kTrimmed, kWriter, kSessions string
	kGroups                                      string
	kStatus, kStatusWriter                       string
	prefix                                       string

	statusCalls atomic.Uint64 // AppendStatus script calls made: the last one's number
	groupCalls  atomic.Uint64 // GroupRead tokens made: the last one's number

	ctx    context.Context // canceled by Close: background work
	cancel context.CancelFunc
	wg     sync.WaitGroup // the Store's goroutines
	done   chan struct{}  // closed by Close

	flushWake chan struct{} // buffered 1: the flusher has work
	tailWake  chan struct{} // buffered 1: the tail may go on

	// Counters, and the mean event size for MaxBytes and Stats.
	nAppended  atomic.Uint64
	sizeSum    atomic.Int64
	sizeN      atomic.Int64
	cacheHits  atomic.Uint64 // Reads served by the cache
	cacheMiss  atomic.Uint64 // Reads that went to Redis
	fallbacks  atomic.Uint64 // buffered events Redis took under a new ID
	reconciled atomic.Uint64 // buffered events found already written
	behind     atomic.Uint64 // times retention removed entries before the tail fetched them

	mu       sync.Mutex // guards the following fields
	closed   bool
	cache    tailCache
	gen      uint64        // changes when the cache is reset or the mode changes
	notify   chan struct{} // closed and replaced when the cache grows
	last     protocol.ID   // newest event known to be in the stream (or buffered)
	top      protocol.ID   // newest ID known to be given out, by Redis or provisionally
	born     protocol.ID   // when the stream began; zero until known
	seq      uint64        // last batch number given out
	inflight int           // appends waiting for Redis
	appended chan struct{} // closed and replaced when an append in flight ends
	orphans  map[protocol.ID]orphan
	stats    store.StreamStats // the last read from Redis, for degraded mode
	degraded bool
	reason   string
	buf      []*batch // degraded: accepted, not yet written, oldest first
	bufN     int      // events in buf
	bufSize  int64    // their Size()
	dropped  uint64
	floor    uint64      // degraded: lowest millisecond for provisional IDs
	expect   protocol.ID // degraded: the newest cached entry known to be in Redis
	dirty    bool        // degraded: the cache may differ from Redis beyond expect
	logDrop  bool        // degraded: the first drop was logged
	// degraded: provisional IDs were given. Until then appends in flight
	// when Redis went away may still succeed, and are cached as usual.
	provisional bool
	// degraded: the cache lacked entries Redis has when the first
	// provisional ID was given; buffered events are then kept out of it
	// (live readers would skip what is missing) until Redis is back.
	hidden bool
	// For Sync (see there): batches are numbered in the order they enter
	// buf, and leave it from the front, in that order.
	bufOut   uint64        // batches that ever left buf, written or refused
	refused  uint64        // buffered batches Redis ever refused for good (dropped from buf)
	flushing bool          // the flusher is writing buf to a Redis that answered
	flushed  chan struct{} // closed and replaced when buf shrinks or flushing ends

	sessMu sync.Mutex        // serializes session writes; guards mine
	mine   map[string][]byte // this Store's sessions, as written

	groupMu sync.Mutex               // guards janitor, pruneAt and unread
	janitor map[string]time.Time     // when each group's consumers were last tidied
	pruneAt int                      // janitor's size at which its old entries are dropped
	unread  map[groupConsumer]string // token of a group read that failed (see GroupRead)

	writeErr atomic.Bool // an append error was logged since the last success
}

// batch is events given IDs by one Append (or a part of a large one), with
// the number that makes writing them idempotent.
type batch struct {
	seq  uint64
	evs  []*protocol.Event
	mark *mark // set with the batch (AppendMarked), or nil
}

// mark is a position to set in the same step as a batch is written.
type mark struct {
	key string // the position's key
	id  protocol.ID
}

// orphan is a batch Redis took while an earlier batch of this process had
// not yet been added to the cache: it follows prev in the stream.
type orphan struct {
	evs []*protocol.Event
}

var (
	_ store.Store          = (*Store)(nil)
	_ store.HealthReporter = (*Store)(nil)
	_ store.MarkedAppender = (*Store)(nil)
	_ store.Ledger         = (*Store)(nil)
	_ store.Syncer         = (*Store)(nil)
	_ store.GroupInspector = (*Store)(nil)
)

// Key returns the Redis key "{prefix}:part1:part2...". The braces make the
// prefix a Redis Cluster hash tag: every key of one prefix is in the same
// hash slot, so scripts and transactions may use several of them.
func Key(prefix string, parts ...string) string {
	n := len(prefix) + 2
	for _, p := range parts {
		n += len(p) + 1
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteByte('{')
	b.WriteString(prefix)
	b.WriteByte('}')
	for _, p := range parts {
		b.WriteByte(':')
		b.WriteString(p)
	}
	return b.String()
}

// New returns a Store using cfg.Client. It does not fail when Redis is
// unreachable: the Store then starts degraded and connects in the
// background.
func New(cfg Config) (*Store, error) {
	if cfg.Client == nil {
		return nil, errors.New("redisstore: Config.Client is nil")
	}
	if cfg.Logger == nil {
		return nil, errors.New("redisstore: Config.Logger is nil")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if strings.ContainsAny(cfg.Prefix, "{}") {
		return nil, fmt.Errorf("redisstore: prefix %q holds a brace", cfg.Prefix)
	}
	if cfg.MaxAge < 0 || cfg.SessionTTL < 0 || cfg.TailBlock < 0 || cfg.ReplicaTimeout < 0 || cfg.GroupSweep < 0 {
		return nil, errors.New("redisstore: negative duration in Config")
	}
	switch {
	case cfg.MinReplicas == 0:
		cfg.MinReplicas = DefaultMinReplicas(cfg.Client)
	case cfg.MinReplicas < 0:
		cfg.MinReplicas = 0
	}
	if cfg.MinReplicas > 0 && !supportsWait(cfg.Client) {
		return nil, fmt.Errorf("redisstore: MinReplicas needs a single-server, Sentinel or Cluster client, not %T", cfg.Client)
	}
	var w [8]byte
	if _, err := rand.Read(w[:]); err != nil {
		return nil, fmt.Errorf("redisstore: writer name: %w", err)
	}
	s := &Store{
		rdb:       cfg.Client,
		log:       cfg.Logger,
		now:       cfg.Now,
		maxEvents: limit(int64(cfg.MaxEvents), DefaultMaxEvents),
		maxBytes:  limit(cfg.MaxBytes, DefaultMaxBytes),
		maxAge:    cfg.MaxAge,
		ttl:       or(cfg.SessionTTL, DefaultSessionTTL),
		block:     or(cfg.TailBlock, DefaultTailBlock),
		sweep:     or(cfg.GroupSweep, DefaultGroupSweep),
		bufEvents: or(cfg.BufferEvents, DefaultBufferEvents),
		bufBytes:  or(cfg.BufferBytes, DefaultBufferBytes),
		writer:    hex.EncodeToString(w[:]),

		minReplicas:    cfg.MinReplicas,
		replicaTimeout: or(cfg.ReplicaTimeout, DefaultReplicaTimeout),

		prefix:    cfg.Prefix,
		kEvents:   Key(cfg.Prefix, "events"),
		kBorn:     Key(cfg.Prefix, "born"),
		kTrimmed:  Key(cfg.Prefix, "trimmed"),
		kSessions: Key(cfg.Prefix, "sessions"),
		kGroups:   Key(cfg.Prefix, "groups"),
		done:      make(chan struct{}),
		flushWake: make(chan struct{}, 1),
		tailWake:  make(chan struct{}, 1),
		notify:    make(chan struct{}),
		appended:  make(chan struct{}),
		flushed:   make(chan struct{}),
		orphans:   make(map[protocol.ID]orphan),
		mine:      make(map[string][]byte),
		janitor:   make(map[string]time.Time),
		pruneAt:   janitorPrune,
		unread:    make(map[groupConsumer]string),
	}
	switch {
	case cfg.GroupTTL == 0:
		s.groupTTL = DefaultGroupTTL
	case cfg.GroupTTL > 0:
		s.groupTTL = cfg.GroupTTL
	}
	s.kWriter = Key(cfg.Prefix, "writer", s.writer)
	s.kStatus = Key(cfg.Prefix, "status")
	s.kStatusWriter = Key(cfg.Prefix, "status", "writer", s.writer)
	// The cache keeps no more than retention does, so that it never
	// serves what Redis trimmed.
	s.cache.maxEvents = or(cfg.CacheEvents, DefaultCacheEvents)
	if s.maxEvents > 0 {
		s.cache.maxEvents = int(min(int64(s.cache.maxEvents), s.maxEvents))
	}
	s.cache.maxBytes = or(cfg.CacheBytes, DefaultCacheBytes)
	if s.maxBytes > 0 {
		s.cache.maxBytes = min(s.cache.maxBytes, s.maxBytes)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())

	// A first look at the stream, so that a region that starts with Redis
	// up serves reads from the cache at once. Failing is not fatal.
	ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
	err := s.initTail(ctx)
	cancel()
	if err != nil {
		s.mu.Lock()
		s.enterDegradedLocked(err)
		s.mu.Unlock()
	}
	s.wg.Add(4)
	go s.tailLoop()
	go s.flushLoop()
	go s.refreshLoop()
	go s.groupLoop()
	return s, nil
}

func limit(v, def int64) int64 {
	switch {
	case v == 0:
		return def
	case v < 0:
		return 0
	}
	return v
}

func or[T int | int64 | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// Close stops the Store's goroutines and waits for them; Wait calls return
// store.ErrClosed. Events accepted while Redis was unreachable and not yet
// written are lost (and logged). It does not close the Redis client. It is
// safe to call more than once.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	s.cancel()
	s.mu.Unlock()
	s.wg.Wait()
	s.mu.Lock()
	lost := s.bufN
	s.mu.Unlock()
	if lost > 0 {
		s.log.WithField("events", lost).Error("redis store closed while redis was unreachable: events accepted but never written are lost")
	}
	return nil
}

// Health implements store.HealthReporter.
func (s *Store) Health() store.Health {
	s.mu.Lock()
	defer s.mu.Unlock()
	return store.Health{Degraded: s.degraded, Reason: s.reason, Buffered: s.bufN, Dropped: s.dropped}
}

// Counters are figures about the Store's work, for tests and metrics.
type Counters struct {
	CacheHits  uint64 // Reads served from the tail cache
	CacheMiss  uint64 // Reads that went to Redis
	Fallbacks  uint64 // buffered events Redis took only under a new ID
	Reconciled uint64 // buffered events found already in Redis, under their first ID
	Behind     uint64 // times retention removed entries before the tail fetched them
}

// Counters returns the Store's counters.
func (s *Store) Counters() Counters {
	return Counters{CacheHits: s.cacheHits.Load(), CacheMiss: s.cacheMiss.Load(),
		Fallbacks: s.fallbacks.Load(), Reconciled: s.reconciled.Load(), Behind: s.behind.Load()}
}

// wakeLocked wakes the waiters.
func (s *Store) wakeLocked() {
	close(s.notify)
	s.notify = make(chan struct{})
}

// wakeTailLocked tells a tail waiting for appends in flight that one ended.
func (s *Store) wakeTailLocked() {
	close(s.appended)
	s.appended = make(chan struct{})
}

// wakeSyncLocked tells the Syncs waiting for the flusher that the buffer
// shrank or that the flusher stopped.
func (s *Store) wakeSyncLocked() {
	close(s.flushed)
	s.flushed = make(chan struct{})
}

// signal does a non-blocking send on a wake-up channel.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// noteSize adds events to the mean event size.
func (s *Store) noteSize(evs []*protocol.Event) {
	var sum int64
	for _, e := range evs {
		sum += int64(e.Size())
	}
	s.sizeSum.Add(sum)
	s.sizeN.Add(int64(len(evs)))
}

// meanSize is the mean protocol.Event.Size of the events seen, or a guess.
func (s *Store) meanSize() int64 {
	n := s.sizeN.Load()
	if n == 0 {
		return 512
	}
	return max(1, s.sizeSum.Load()/n)
}

// unavailable reports whether err means Redis cannot be used now (as
// opposed to a request it refused): a network error, a server that is
// loading, read-only, out of memory, busy or without a master, a Cluster
// slot that moved or has no master known, or a write that not enough
// replicas acknowledged.
func unavailable(err error) bool {
	if err == nil || errors.Is(err, redis.Nil) {
		return false
	}
	if errors.Is(err, ErrNotReplicated) || errors.Is(err, errNoMaster) || isMoved(err) {
		return true
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return true // as seen by the background work, whose contexts these are
	}
	var rerr redis.Error
	if !errors.As(err, &rerr) {
		// Not an error reply: the server was not reached or did not answer.
		var nerr net.Error
		return errors.As(err, &nerr) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
			errors.Is(err, redis.ErrClosed) || errors.Is(err, redis.ErrPoolTimeout) ||
			errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE)
	}
	if redis.IsLoadingError(err) || redis.IsReadOnlyError(err) || redis.IsClusterDownError(err) ||
		redis.IsTryAgainError(err) || redis.IsMasterDownError(err) || redis.IsMaxClientsError(err) ||
		redis.IsOOMError(err) || redis.IsNoReplicasError(err) || redis.IsAuthError(err) {
		return true
	}
	msg := err.Error()
	return strings.HasPrefix(msg, "MISCONF") || strings.HasPrefix(msg, "BUSY ")
}

// noSuchKey reports whether err is the reply of XINFO STREAM for a missing key.
func noSuchKey(err error) bool {
	var rerr redis.Error
	return errors.As(err, &rerr) && strings.Contains(err.Error(), "no such key")
}

// isNoGroup reports whether err is Redis's NOGROUP reply.
func isNoGroup(err error) bool {
	var rerr redis.Error
	return errors.As(err, &rerr) && strings.HasPrefix(err.Error(), "NOGROUP")
}

// isBusyGroup reports whether err is Redis's BUSYGROUP reply.
func isBusyGroup(err error) bool {
	var rerr redis.Error
	return errors.As(err, &rerr) && strings.HasPrefix(err.Error(), "BUSYGROUP")
}

// wrap returns err wrapped for the caller: ErrUnavailable is added when
// Redis could not be used.
func wrap(op string, err error) error {
	if unavailable(err) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("redisstore: %s: %w: %w", op, ErrUnavailable, err)
	}
	return fmt.Errorf("redisstore: %s: %w", op, err)
}

// checkReachable returns store.ErrClosed after Close, and an error wrapping
// ErrUnavailable at once while the Store is degraded: operations that are
// not buffered do not wait out go-redis's dial timeouts and retries then.
func (s *Store) checkReachable(op string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return store.ErrClosed
	case s.degraded:
		return fmt.Errorf("redisstore: %s: %w", op, ErrUnavailable)
	}
	return nil
}

// checkClosed returns store.ErrClosed after Close.
func (s *Store) checkClosed() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return store.ErrClosed
	}
	return nil
}
