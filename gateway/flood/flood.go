package flood

import (
	"context"
	"fmt"
	"hash/maphash"
	"math"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/protocol"
)

// Appender takes events in batches: gateway/store.Store and
// gateway/syslog.Appender have this method, and so does Limiter.
type Appender interface {
	Append(ctx context.Context, evs []*protocol.Event) error
}

// Defaults of DefaultConfig (see the package doc for why these numbers).
const (
	DefaultRate            = 1000 // events/s per source, sustained
	DefaultBurst           = 2000
	DefaultMsgIDRate       = 500 // events/s per (source, message ID), sustained
	DefaultMsgIDBurst      = 1000
	DefaultAddrRate        = 4 * DefaultRate // events/s per sender address, sustained
	DefaultAddrBurst       = 4 * DefaultBurst
	DefaultInterval        = 10 * time.Second
	DefaultMaxHostsPerAddr = 256
	DefaultMaxSources      = 8192
	DefaultMaxMsgIDs       = 16
	DefaultIdleTimeout     = 10 * time.Minute
)

// SummaryMsgID is the message ID of the summary events, and the first word
// of their text.
const SummaryMsgID = "ZBR101E"

// Overflow is the host (and, for the table's overflow, the address) of the
// sources that share an overflow bucket, in summaries and in [SourceStats].
const Overflow = "*"

const (
	numShards = 16
	// maxRun is the most events counted under one hold of a shard's mutex.
	maxRun = 64
	// maxText is how much of the first and last text held back a summary
	// quotes, in bytes.
	maxText = 120
	// maxName is how much of a claimed host name (and of an address) is
	// kept as a key and quoted in summaries, in bytes: RFC 5424's longest
	// HOSTNAME. maxID is the same for a message ID: its longest APP-NAME
	// (an MSGID is at most 32). Longer names are cut, and names that share
	// the first maxName (maxID) bytes share a bucket.
	maxName = 255
	maxID   = 48
	// maxPending is how many summaries the store failed to take are kept
	// for the next try.
	maxPending = 4096
	// topIDs is how many message IDs a summary names with their counts.
	topIDs = 5
	// evictScan is how many of a full shard's least recently used sources
	// are looked at for one with nothing to summarise.
	evictScan = 8
	// maxPooled is the largest filtered batch whose slice goes back to
	// the pool.
	maxPooled = 16384
)

// Config configures a Limiter. New copies it.
type Config struct {
	// Next receives the events let through and the summaries: the store.
	// Required.
	Next Appender
	// Rate is the events per second one source may send sustained, and
	// Burst how many it may send at once (the bucket's size). Rate 0
	// turns the per-source limit off; with Rate > 0, Burst must be 1 or
	// more.
	Rate  float64
	Burst int
	// MsgIDRate and MsgIDBurst are the same for one message ID of one
	// source (the MSGID, or the APP-NAME when there is none). MsgIDRate 0
	// turns that limit off.
	MsgIDRate  float64
	MsgIDBurst int
	// AddrRate and AddrBurst are the same for all the sources of one
	// sender address together, so that rotating claimed host names does
	// not multiply the per-source limit. AddrRate 0 turns that limit off;
	// on its own (Rate and MsgIDRate 0) it does not turn flood control on
	// (see Enabled).
	AddrRate  float64
	AddrBurst int
	// Interval is how often summaries are appended (default 10 s).
	Interval time.Duration
	// MaxHostsPerAddr is how many host names one address (an IPv6
	// address: its /64) has buckets for (default 256); its further names
	// share one. MaxSources bounds the sources tracked in all (default
	// 8192): when the table is full, an address with fewer sources takes
	// the place of one of an address with more (see the package doc).
	// MaxMsgIDs is how many message IDs one source has buckets for
	// (default 16); further IDs share one.
	MaxHostsPerAddr, MaxSources, MaxMsgIDs int
	// IdleTimeout: a source or message ID with nothing to summarise,
	// silent this long, is forgotten (default 10 minutes; never before
	// its bucket would have refilled).
	IdleTimeout time.Duration
	// Logger receives a warning for each summary. Required.
	Logger logrus.FieldLogger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// DefaultConfig returns the default limits, without Next and Logger.
func DefaultConfig() Config {
	return Config{
		Rate: DefaultRate, Burst: DefaultBurst, MsgIDRate: DefaultMsgIDRate, MsgIDBurst: DefaultMsgIDBurst,
		AddrRate: DefaultAddrRate, AddrBurst: DefaultAddrBurst, Interval: DefaultInterval, MaxHostsPerAddr: DefaultMaxHostsPerAddr, MaxSources: DefaultMaxSources,
		MaxMsgIDs: DefaultMaxMsgIDs, IdleTimeout: DefaultIdleTimeout,
	}
}

// Enabled reports whether c limits anything per source: Rate or MsgIDRate
// is set. The per-address limit alone does not count: it bounds what one
// address gets out of the per-source limits, and with both of them off
// (--flood-rate 0 --flood-msgid-rate 0) flood control is off.
func (c *Config) Enabled() bool { return c.Rate > 0 || c.MsgIDRate > 0 }

// Stats are a Limiter's counters.
type Stats struct {
	Suppressed uint64 // events held back since New
	Summaries  uint64 // summary events appended
	Sources    int    // sources tracked now
	// Pending is how many summaries the store failed to take, kept for
	// the next try; Dropped how many were dropped because too many were
	// pending (then the counts no longer add up, and it was logged).
	Pending int
	Dropped uint64
}

// SourceStats is one tracked source's count.
type SourceStats struct {
	Addr, Host string // Overflow for a shared bucket
	Suppressed uint64 // events held back since the source was tracked
}

// A Limiter passes events on to Config.Next within per-source limits and
// summarises what it holds back. Its methods are safe for concurrent use.
type Limiter struct {
	cfg   Config
	log   logrus.FieldLogger
	epoch time.Time // the clock's zero: times in the table are ns since it
	seed  maphash.Seed
	// The limits as floats; a rate of 0 is off.
	rate, burst, idRate, idBurst, addrRate, addrBurst float64
	perShard                                          int   // sources a shard holds at most
	idle                                              int64 // ns: IdleTimeout, at least the refill times

	shards [numShards]shard
	over   shard // holds the table's overflow source only
	addrs  addrTable
	pool   sync.Pool // of *filtered, for batches with events held back

	// gate guards closed. Append holds it for reading while it decides
	// and, for a batch with events held back, until they are counted
	// (after Next took the rest), so that Close's last Flush sees them.
	gate   sync.RWMutex
	closed bool

	flushMu sync.Mutex        // serialises Flush; guards pending
	pending []*protocol.Event // summaries the store failed to take
	nPend   atomic.Int64      // len(pending), for Stats
	sums    atomic.Uint64     // summaries appended
	dropped atomic.Uint64     // summaries dropped from pending
	stop    chan struct{}     // closed by Close: the flusher returns
	wg      sync.WaitGroup    // the flusher
	overSrc *source           // the table's overflow source, in over
}

var _ Appender = (*Limiter)(nil)

// srcKey is a source: the sender's address and the host it claims, each
// cut to maxName bytes. The overflow source of an IPv6 address's /64 has
// the /64 as its addr ("2001:db8::/64"; see addrKey).
type srcKey struct{ addr, host string }

// keyOf returns ev's source key (sharing ev's strings: clone them to keep
// them).
func keyOf(ev *protocol.Event) srcKey {
	return srcKey{cut(ev.Origin.Addr, maxName), cut(ev.Origin.Host, maxName)}
}

// idOf returns ev's message ID: its MSGID, else its APP-NAME, cut to
// maxID bytes (sharing ev's string).
func idOf(ev *protocol.Event) string {
	id := ev.MsgID
	if id == "" {
		id = ev.App
	}
	return cut(id, maxID)
}

// addrKey returns the key of addr's entry in the address table: an IPv6
// address counts as its /64, which one host or site usually holds whole
// (as the region's logon throttle counts it), so that a sender with a /64
// does not get a host limit, an address bucket and a share of the table
// for each of its addresses. Anything else is its own key.
func addrKey(addr string) string {
	a, err := netip.ParseAddr(addr)
	if err != nil || !a.Is6() || a.Is4In6() {
		return addr
	}
	p, _ := a.Prefix(64)
	return p.String()
}

// cut returns s's first n bytes (a character cut in two stays cut: the
// summaries quote what is not printable ASCII).
func cut(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// reason is why an event was held back: which bucket had no token. When
// several had none, the narrowest is named (message ID, then source, then
// address), so that a summary blames the address only for events that
// its own limits would have passed.
type reason uint8

const (
	passed reason = iota
	byMsgID
	bySource
	byAddr
	numReasons
)

// bucket is a token bucket, refilled lazily.
type bucket struct {
	tokens float64
	last   int64 // ns on the limiter's clock when tokens was computed
}

// refill adds the tokens earned since b.last, up to burst. A clock that
// went back adds nothing.
func (b *bucket) refill(now int64, rate, burst float64) {
	if d := now - b.last; d > 0 {
		b.tokens = min(burst, b.tokens+float64(d)*rate/1e9)
		b.last = now
	}
}

// msgEntry is one message ID of a source.
type msgEntry struct {
	b    bucket
	seen int64  // ns: its last event
	held uint64 // events held back since the last summary
	gone bool   // forgotten: no longer in its source's ids
}

// source is one tracked source. Its fields are guarded by its shard's mu.
type source struct {
	key        srcKey
	prev, next *source // the shard's LRU ring, most recent first
	b          bucket
	seen       int64 // ns: its last event
	ids        map[string]*msgEntry
	other      msgEntry // the message IDs beyond MaxMsgIDs
	// addr is its address's entry (its bucket is shared by the address's
	// sources in every shard); nil for the table's overflow source, whose
	// own bucket is all the sources beyond the table have.
	addr *addrEntry
	gone bool // forgotten: no longer in its shard

	// Held back since the last summary.
	held            uint64
	by              [numReasons]uint64 // held, by the limit that held them
	firstAt, lastAt int64              // ns
	first, last     text

	total uint64 // held back since it was tracked
}

// text keeps the start of a text without allocating.
type text struct {
	n   int
	cut bool
	b   [maxText]byte
}

func (t *text) set(s string) {
	t.n = copy(t.b[:], s)
	t.cut = len(s) > maxText
}

// shard is a part of the table of sources.
type shard struct {
	mu   sync.Mutex // guards the following fields and the sources in m
	m    map[srcKey]*source
	head source // the LRU ring's sentinel
	// held counts the events its sources held back, forgotten ones
	// included.
	held uint64
	// evicted holds the summaries of the sources forgotten to make room
	// while they had events held back (evictLocked), for the next Flush:
	// at most as many as the shard holds sources.
	evicted []summary
	_       [64]byte // keeps neighbouring shards' mutexes off one cache line
}

func (sh *shard) init() {
	sh.m = make(map[srcKey]*source)
	sh.head.prev, sh.head.next = &sh.head, &sh.head
}

func (sh *shard) pushFrontLocked(s *source) {
	s.prev, s.next = &sh.head, sh.head.next
	sh.head.next.prev = s
	sh.head.next = s
}

func (sh *shard) unlinkLocked(s *source) {
	s.prev.next, s.next.prev = s.next, s.prev
	s.prev, s.next = nil, nil
}

// addrEntry is one sender address (an IPv6 address's /64: see addrKey):
// its bucket, shared by all its sources, and how many sources it has. It
// lives while any source points at it.
//
// Lock order: a shard's mu, then an entry's mu (Append takes it for a
// moment twice a run of up to maxRun events at most: see take); a shard's
// mu, then the addrTable's mu (taken only when a source is made or
// forgotten); a shard's mu, then the table overflow's (over.mu, taken to
// add an evicted source's counts to its overflow source: foldLocked). An
// entry's mu and the table's mu are never held together, no shard's mu
// is taken under either, and no other mutex is taken under over.mu.
type addrEntry struct {
	addr string // cloned; the key of its overflow source (and of its IPv4 host sources) shares it

	// Written under the addrTable's mu. hosts is read without it to
	// choose a source to evict (heaviestLocked).
	hosts atomic.Int32 // host sources, counted against MaxHostsPerAddr
	refs  int          // sources pointing at it: the host sources and the address's overflow source

	mu sync.Mutex // guards b
	b  bucket
}

// addrTable holds the entries of the addresses with tracked sources.
type addrTable struct {
	mu sync.Mutex // guards m and the entries' hosts and refs
	m  map[string]*addrEntry
}

// acquire returns addr's entry, made with a full bucket of burst if addr
// has none, for one more source of it: a host source (host true) unless
// addr has max of them already, then it reports false; or the address's
// overflow source, which counts against no host limit.
func (a *addrTable) acquire(addr string, host bool, max int, now int64, burst float64) (*addrEntry, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	e := a.m[addr]
	if host && e != nil && int(e.hosts.Load()) >= max {
		return nil, false
	}
	if e == nil {
		e = &addrEntry{addr: strings.Clone(addr), b: bucket{tokens: burst, last: now}}
		a.m[e.addr] = e
	}
	if host {
		e.hosts.Add(1)
	}
	e.refs++
	return e, true
}

// release undoes an acquire, and forgets e when no source points at it.
func (a *addrTable) release(e *addrEntry, host bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if host {
		e.hosts.Add(-1)
	}
	if e.refs--; e.refs == 0 {
		delete(a.m, e.addr)
	}
}

// New checks cfg, fills in its defaults and returns a Limiter whose
// flusher runs until Close.
func New(cfg Config) (*Limiter, error) {
	bad := func(f float64) bool { return f < 0 || math.IsNaN(f) || math.IsInf(f, 0) }
	switch {
	case cfg.Next == nil:
		return nil, fmt.Errorf("%w: no Next", ErrConfig)
	case cfg.Logger == nil:
		return nil, fmt.Errorf("%w: no Logger", ErrConfig)
	case bad(cfg.Rate), bad(cfg.MsgIDRate), bad(cfg.AddrRate):
		return nil, fmt.Errorf("%w: Rate, MsgIDRate and AddrRate must be 0 (off) or a positive number", ErrConfig)
	case cfg.Rate > 0 && cfg.Burst < 1, cfg.MsgIDRate > 0 && cfg.MsgIDBurst < 1, cfg.AddrRate > 0 && cfg.AddrBurst < 1:
		return nil, fmt.Errorf("%w: a limit's burst must be 1 or more", ErrConfig)
	case cfg.Burst < 0, cfg.MsgIDBurst < 0, cfg.AddrBurst < 0, cfg.Interval < 0, cfg.MaxHostsPerAddr < 0,
		cfg.MaxSources < 0, cfg.MaxMsgIDs < 0, cfg.IdleTimeout < 0:
		return nil, fmt.Errorf("%w: negative Burst, MsgIDBurst, AddrBurst, Interval, MaxHostsPerAddr, MaxSources, MaxMsgIDs or IdleTimeout", ErrConfig)
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.MaxHostsPerAddr == 0 {
		cfg.MaxHostsPerAddr = DefaultMaxHostsPerAddr
	}
	if cfg.MaxSources == 0 {
		cfg.MaxSources = DefaultMaxSources
	}
	if cfg.MaxMsgIDs == 0 {
		cfg.MaxMsgIDs = DefaultMaxMsgIDs
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	l := &Limiter{
		cfg:       cfg,
		log:       cfg.Logger.WithField("component", "flood"),
		epoch:     cfg.Now(),
		seed:      maphash.MakeSeed(),
		rate:      cfg.Rate,
		burst:     float64(cfg.Burst),
		idRate:    cfg.MsgIDRate,
		idBurst:   float64(cfg.MsgIDBurst),
		addrRate:  cfg.AddrRate,
		addrBurst: float64(cfg.AddrBurst),
		perShard:  max(1, (cfg.MaxSources+numShards-1)/numShards),
		addrs:     addrTable{m: make(map[string]*addrEntry)},
		stop:      make(chan struct{}),
	}
	l.idle = int64(cfg.IdleTimeout)
	if l.rate > 0 {
		l.idle = max(l.idle, int64(l.burst/l.rate*1e9)+1)
	}
	if l.idRate > 0 {
		l.idle = max(l.idle, int64(l.idBurst/l.idRate*1e9)+1)
	}
	if l.addrRate > 0 {
		l.idle = max(l.idle, int64(l.addrBurst/l.addrRate*1e9)+1)
	}
	for i := range l.shards {
		l.shards[i].init()
	}
	l.over.init()
	l.overSrc = l.newSource(srcKey{Overflow, Overflow}, nil, 0)
	l.over.m[l.overSrc.key] = l.overSrc
	l.over.pushFrontLocked(l.overSrc)
	l.pool.New = func() any { return new(filtered) }
	l.wg.Add(1)
	go l.run()
	return l, nil
}

// clock returns the time in ns since the limiter's epoch.
func (l *Limiter) clock() int64 { return int64(l.cfg.Now().Sub(l.epoch)) }

// at turns a time on the limiter's clock back into a time.Time.
func (l *Limiter) at(ns int64) time.Time { return l.epoch.Add(time.Duration(ns)) }

func (l *Limiter) newSource(k srcKey, a *addrEntry, now int64) *source {
	return &source{
		key:   k,
		addr:  a,
		b:     bucket{tokens: l.burst, last: now},
		seen:  now,
		ids:   make(map[string]*msgEntry),
		other: msgEntry{b: bucket{tokens: l.idBurst, last: now}, seen: now},
	}
}

func (l *Limiter) shardOf(k srcKey) *shard {
	h := maphash.String(l.seed, k.addr)
	h = h*31 ^ maphash.String(l.seed, k.host)
	return &l.shards[h%numShards]
}

// lookup returns k's source with its shard locked: k's own; or, when
// k's address (an IPv6 address's /64) has MaxHostsPerAddr sources
// already, or when k's shard is full and no source can make room for it
// (makeRoomLocked), the overflow source of k's address; or, when that
// too finds no room, the table's overflow source. k's strings may be the
// event's: a source made keeps clones.
func (l *Limiter) lookup(k srcKey, now int64) (*shard, *source) {
	for {
		sh := l.shardOf(k)
		sh.mu.Lock()
		if s := sh.m[k]; s != nil {
			return sh, s
		}
		// The claimed host "*" is the address's overflow source, which
		// counts against no host limit; an IPv6 address's is its /64's.
		host := k.host != Overflow
		ak := addrKey(k.addr)
		if !host && ak != k.addr {
			sh.mu.Unlock()
			k.addr = ak
			continue
		}
		a, ok := l.addrs.acquire(ak, host, l.cfg.MaxHostsPerAddr, now, l.addrBurst)
		if ok {
			if l.makeRoomLocked(sh, a, host, now) {
				// Clones, not pinning the event's Raw.
				if k.addr == a.addr {
					k.addr = a.addr
				} else {
					k.addr = strings.Clone(k.addr)
				}
				k.host = strings.Clone(k.host)
				s := l.newSource(k, a, now)
				sh.m[k] = s
				sh.pushFrontLocked(s)
				return sh, s
			}
			l.addrs.release(a, host)
		}
		sh.mu.Unlock()
		if host {
			k = srcKey{ak, Overflow}
			continue
		}
		l.over.mu.Lock()
		return &l.over, l.overSrc
	}
}

// makeRoomLocked reports whether sh has room for one more source of a
// (a host source when host is true, which a counts already; else a's
// overflow source). When sh is full, it forgets the least recently used
// of its evictScan least recently used sources with nothing to
// summarise; when none of them can go, a source of the address with the
// most host sources in sh makes room (evictLocked) if that address has
// at least two more than a has without this one, so that a full table is
// shared out among the addresses, not held by the first few.
func (l *Limiter) makeRoomLocked(sh *shard, a *addrEntry, host bool, now int64) bool {
	if len(sh.m) < l.perShard {
		return true
	}
	s := sh.head.prev
	for range evictScan {
		if s == &sh.head {
			break
		}
		if s.held == 0 {
			l.forgetLocked(sh, s)
			return true
		}
		s = s.prev
	}
	has := int(a.hosts.Load())
	if host {
		has-- // the source to be made
	}
	if s := l.heaviestLocked(sh, has+2); s != nil {
		l.evictLocked(sh, s, now)
		return true
	}
	return false
}

// heaviestLocked returns the host source in sh whose address has the most
// host sources, at least min (of those, the least recently used), or nil.
// The counts are read without the address table's mutex: one that
// changes meanwhile only makes another source the one evicted.
func (l *Limiter) heaviestLocked(sh *shard, min int) *source {
	var best *source
	most := min - 1
	for s := sh.head.prev; s != &sh.head; s = s.prev {
		if s.key.host == Overflow || s.addr == nil {
			continue
		}
		if n := int(s.addr.hosts.Load()); n > most {
			best, most = s, n
			if n >= l.cfg.MaxHostsPerAddr {
				break // none has more
			}
		}
	}
	return best
}

// evictLocked forgets s to make room, first taking the summary of what it
// held back, for the next Flush, as sh.evicted; when sh has as many of
// them waiting as it holds sources, s's counts go to the table's overflow
// source instead (foldLocked), so that its summaries stay bounded. The
// events still being counted for s (by Appends that decided on it) are
// counted where their source is found then (see count).
func (l *Limiter) evictLocked(sh *shard, s *source, now int64) {
	if s.held > 0 {
		if len(sh.evicted) < l.perShard {
			sh.evicted = append(sh.evicted, l.snapshotLocked(s))
		} else {
			l.foldLocked(s, now)
		}
	}
	l.forgetLocked(sh, s)
}

// foldLocked adds what s held back since its last summary to the table's
// overflow source's next summary. s's shard is locked (not the table
// overflow's).
func (l *Limiter) foldLocked(s *source, now int64) {
	l.over.mu.Lock()
	defer l.over.mu.Unlock()
	o := l.overSrc
	if o.held == 0 {
		o.firstAt, o.lastAt, o.first, o.last = s.firstAt, s.lastAt, s.first, s.last
	} else {
		if s.firstAt < o.firstAt {
			o.firstAt, o.first = s.firstAt, s.first
		}
		if s.lastAt >= o.lastAt {
			o.lastAt, o.last = s.lastAt, s.last
		}
	}
	o.held += s.held
	for i := range s.by {
		o.by[i] += s.by[i]
	}
	for id, m := range s.ids {
		if m.held > 0 {
			l.msgIDLocked(o, id, now).held += m.held
		}
	}
	o.other.held += s.other.held
}

// forgetLocked removes s from sh.
func (l *Limiter) forgetLocked(sh *shard, s *source) {
	delete(sh.m, s.key)
	sh.unlinkLocked(s)
	s.gone = true
	if s.addr != nil {
		l.addrs.release(s.addr, s.key.host != Overflow)
	}
}

// Append passes evs on to Config.Next, less the events over their
// limits, which it counts for the next summary. A batch with nothing held
// back is passed on as it is; otherwise the events passed on are copies,
// in a slice of Append's own (see detach). Append does not modify evs and
// keeps neither the slice nor the events it holds back (it copies the
// start of their text). It returns Next's error; when every event was
// held back it returns nil without calling Next. After Close it passes
// every event on.
//
// The events held back are counted only once Next has taken the others
// (or when there were none). When Next fails, Append counts nothing of
// the batch and gives back the tokens its events took, as if it had not
// been handed in: a sender that sends it again (RELP does when it is not
// acknowledged) is counted once.
func (l *Limiter) Append(ctx context.Context, evs []*protocol.Event) error {
	l.gate.RLock()
	if l.closed {
		l.gate.RUnlock()
		return l.cfg.Next.Append(ctx, evs)
	}
	now := l.clock()
	var f *filtered // the events held back, once one was
	for i := 0; i < len(evs); {
		k := keyOf(evs[i])
		j, end := i+1, min(len(evs), i+maxRun)
		for j < end && keyOf(evs[j]) == k {
			j++
		}
		sh, s := l.lookup(k, now)
		if l.rate > 0 {
			s.b.refill(now, l.rate, l.burst)
		}
		s.seen = now
		if sh.head.next != s {
			sh.unlinkLocked(s)
			sh.pushFrontLocked(s)
		}
		a := s.addr
		if l.addrRate == 0 {
			a = nil
		}
		credit := j - i // tokens taken from the address's bucket for this run
		if a != nil {
			credit = a.take(now, l.addrRate, l.addrBurst, credit)
		}
		for x := i; x < j; x++ {
			ev := evs[x]
			m := l.msgIDLocked(s, idOf(ev), now)
			if why := l.admitLocked(s, m, credit > 0, now); why == passed {
				credit--
			} else {
				if f == nil {
					f = l.pool.Get().(*filtered)
				}
				f.held = append(f.held, heldEvent{i: x, why: why, sh: sh, s: s, m: m})
			}
		}
		sh.mu.Unlock()
		if a != nil && credit > 0 {
			a.give(credit, l.addrBurst)
		}
		i = j
	}
	if f == nil {
		l.gate.RUnlock()
		err := l.cfg.Next.Append(ctx, evs)
		if err != nil {
			l.refund(evs, nil, now)
		}
		return err
	}
	// The copies are made here, with no lock held.
	h := 0
	for i, ev := range evs {
		if h < len(f.held) && f.held[h].i == i {
			h++
			continue
		}
		f.kept = append(f.kept, detach(ev))
	}
	var err error
	if len(f.kept) > 0 {
		err = l.cfg.Next.Append(ctx, f.kept)
	}
	if err == nil {
		l.count(evs, f.held, now)
	} else {
		l.refund(evs, f.held, now)
	}
	l.gate.RUnlock()
	f.reset()
	if cap(f.kept) <= maxPooled && cap(f.held) <= maxPooled {
		l.pool.Put(f)
	}
	return err
}

// take refills a's bucket at now and takes up to n whole tokens from it,
// reporting how many. Append takes a run's tokens at once and gives back
// what its events did not use, so that the entry, shared by the address's
// sources in every shard, is locked for a moment twice a run at most.
func (a *addrEntry) take(now int64, rate, burst float64, n int) int {
	a.mu.Lock()
	a.b.refill(now, rate, burst)
	n = min(n, int(a.b.tokens))
	a.b.tokens -= float64(n)
	a.mu.Unlock()
	return n
}

// give gives n tokens back to a's bucket, up to burst.
func (a *addrEntry) give(n int, burst float64) {
	a.mu.Lock()
	a.b.tokens = min(burst, a.b.tokens+float64(n))
	a.mu.Unlock()
}

// filtered is what Append keeps of a batch with events held back.
type filtered struct {
	held []heldEvent       // in the order of the batch
	kept []*protocol.Event // copies of the others, for Next
}

// heldEvent is an event held back: its index in the batch, why, and where
// Append decided on it (to count it there unless that source or message
// ID was forgotten since).
type heldEvent struct {
	i   int
	why reason
	sh  *shard
	s   *source
	m   *msgEntry
}

func (f *filtered) reset() {
	clear(f.kept)
	clear(f.held)
	f.kept, f.held = f.kept[:0], f.held[:0]
}

// detached is an event copied out of its parser's slab.
type detached struct {
	ev protocol.Event
	t  time.Time
}

// detach returns a copy of ev in memory of its own. The syslog parser
// allocates events (and their origin times) in slabs of up to 128, and a
// slab stays in memory while any of its events does: were the store to
// keep the few events of a flood that pass, each would keep its slab of
// held-back events alive, about 50 KB for a 400-byte event. So the events
// of a batch with events held back are passed on as copies.
func detach(ev *protocol.Event) *protocol.Event {
	d := &detached{ev: *ev}
	if ev.OriginTime != nil {
		d.t = *ev.OriginTime
		d.ev.OriginTime = &d.t
	}
	return &d.ev
}

// msgIDLocked returns s's entry for message ID id (cut to maxID), made
// when s has fewer than MaxMsgIDs, else the entry its other IDs share,
// and marks it seen at now.
func (l *Limiter) msgIDLocked(s *source, id string, now int64) *msgEntry {
	m := s.ids[id]
	if m == nil {
		if len(s.ids) < l.cfg.MaxMsgIDs {
			m = &msgEntry{b: bucket{tokens: l.idBurst, last: now}}
			s.ids[strings.Clone(id)] = m // not pinning the event's Raw
		} else {
			m = &s.other
		}
	}
	m.seen = now
	return m
}

// admitLocked decides on one event of s with message ID entry m, given
// whether its address has a token for it (a token Append took from the
// address's bucket for the run, or true with no per-address limit): when
// s's bucket and m's have a token too, it takes one from each and reports
// passed (the caller takes the address's); else it takes none and
// reports why.
func (l *Limiter) admitLocked(s *source, m *msgEntry, addrToken bool, now int64) reason {
	if l.idRate > 0 {
		m.b.refill(now, l.idRate, l.idBurst)
		if m.b.tokens < 1 {
			return byMsgID
		}
	}
	if l.rate > 0 && s.b.tokens < 1 {
		return bySource
	}
	if !addrToken {
		return byAddr
	}
	if l.idRate > 0 {
		m.b.tokens--
	}
	if l.rate > 0 {
		s.b.tokens--
	}
	return passed
}

// count counts the events of evs listed in held for their sources'
// next summaries, a run of one source's at a time. A source or message
// ID forgotten since Append decided is looked up again (then made again,
// or an overflow source counts the events: the count stays exact, only
// whose it is changes).
func (l *Limiter) count(evs []*protocol.Event, held []heldEvent, now int64) {
	for i := 0; i < len(held); {
		h := held[i]
		j, end := i+1, min(len(held), i+maxRun)
		for j < end && held[j].s == h.s {
			j++
		}
		sh, s := h.sh, h.s
		sh.mu.Lock()
		if s.gone {
			sh.mu.Unlock()
			sh, s = l.lookup(keyOf(evs[h.i]), now)
		}
		if s.held == 0 {
			s.firstAt, s.lastAt = now, now
			s.first.set(evs[h.i].Text)
		}
		for _, h := range held[i:j] {
			m := h.m
			if m.gone || s != h.s {
				m = l.msgIDLocked(s, idOf(evs[h.i]), now)
			}
			m.held++
			s.by[h.why]++
		}
		n := uint64(j - i)
		s.held += n
		s.total += n
		sh.held += n
		// Appends that ran at once may count in another order than they
		// decided.
		s.firstAt, s.lastAt = min(s.firstAt, now), max(s.lastAt, now)
		s.last.set(evs[held[j-1].i].Text)
		sh.mu.Unlock()
		i = j
	}
}

// refund gives back the tokens the events of evs not listed in held took
// (up to each bucket's burst), looking each run of one source up again.
// It is best effort: a source or message ID forgotten since has a full
// bucket again anyway.
func (l *Limiter) refund(evs []*protocol.Event, held []heldEvent, now int64) {
	h := 0
	for i := 0; i < len(evs); {
		if h < len(held) && held[h].i == i {
			h, i = h+1, i+1
			continue
		}
		k := keyOf(evs[i])
		sh, s := l.lookup(k, now)
		j, n := i, 0
		for ; j < len(evs) && n < maxRun; j++ {
			if h < len(held) && held[h].i == j {
				h++
				continue
			}
			ev := evs[j]
			if j > i && keyOf(ev) != k {
				break
			}
			n++
			if l.idRate > 0 {
				m := s.ids[idOf(ev)]
				if m == nil {
					m = &s.other
				}
				m.b.tokens = min(l.idBurst, m.b.tokens+1)
			}
		}
		if l.rate > 0 {
			s.b.tokens = min(l.burst, s.b.tokens+float64(n))
		}
		a := s.addr
		sh.mu.Unlock()
		if a != nil && l.addrRate > 0 {
			a.give(n, l.addrBurst)
		}
		i = j
	}
}

// run is the flusher: it appends the summaries every Interval until Close.
func (l *Limiter) run() {
	defer l.wg.Done()
	t := time.NewTicker(l.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), l.cfg.Interval)
			if err := l.Flush(ctx); err != nil {
				l.log.WithError(err).Warn("flood control: summaries not stored; they are kept for the next try")
			}
			cancel()
		}
	}
}

// Flush appends a summary for each source that had events held back since
// its last summary, and the summaries a failed Flush kept, and forgets the
// sources and message IDs idle for IdleTimeout with nothing to summarise.
// The flusher calls it every Interval; tests may call it. When Next fails,
// the summaries are kept for the next Flush (up to 4096) and the error is
// returned.
func (l *Limiter) Flush(ctx context.Context) error {
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	now := l.clock()
	var sums []summary
	for i := range l.shards {
		sums = l.collect(&l.shards[i], now, sums)
	}
	sums = l.collect(&l.over, now, sums)
	evs := l.pending
	for i := range sums {
		evs = append(evs, l.summaryEvent(&sums[i], now))
	}
	if len(evs) == 0 {
		return nil
	}
	for i := range sums {
		s := &sums[i]
		l.log.WithFields(logrus.Fields{"host": s.key.host, "addr": s.key.addr, "held_back": s.held}).
			Warn("flood control held back events from a source; summary " + SummaryMsgID + " follows")
	}
	if err := l.cfg.Next.Append(ctx, evs); err != nil {
		if n := len(evs) - maxPending; n > 0 {
			l.dropped.Add(uint64(n))
			l.log.WithError(err).Errorf("flood control: %d summaries dropped: the store has failed to take them too long", n)
			clear(evs[:n])
			evs = evs[n:]
		}
		l.pending = evs
		l.nPend.Store(int64(len(evs)))
		return fmt.Errorf("flood: appending %d summaries: %w", len(evs), err)
	}
	l.sums.Add(uint64(len(evs)))
	l.pending = nil
	l.nPend.Store(0)
	return nil
}

// collect appends the summaries of sh's sources to sums, starting their
// next interval, and forgets what is idle.
func (l *Limiter) collect(sh *shard, now int64, sums []summary) []summary {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sums = append(sums, sh.evicted...)
	clear(sh.evicted)
	sh.evicted = sh.evicted[:0]
	for s := sh.head.prev; s != &sh.head; {
		prev := s.prev
		if s.held > 0 {
			sums = append(sums, l.snapshotLocked(s))
		} else if now-s.seen >= l.idle && s != l.overSrc {
			l.forgetLocked(sh, s)
			s = prev
			continue
		}
		for id, m := range s.ids {
			if now-m.seen >= l.idle {
				delete(s.ids, id)
				m.gone = true
			}
		}
		s = prev
	}
	return sums
}

// Close stops the flusher and appends the last summaries: call it once
// nothing more is appended (Append after Close passes every event on). It
// waits for the Appends in progress (so that what they hold back is in
// the last summaries) and for a Flush in progress, then flushes with ctx
// as it is: give it a ctx with time left (one already done makes a store
// refuse the summaries). It returns the last Flush's error; the summaries
// of a failed one stay pending, and Flush may be called to retry. Calling
// Close again does nothing.
func (l *Limiter) Close(ctx context.Context) error {
	l.gate.Lock()
	already := l.closed
	l.closed = true
	l.gate.Unlock()
	if already {
		return nil
	}
	close(l.stop)
	l.wg.Wait()
	return l.Flush(ctx)
}

// Stats returns the limiter's counters.
func (l *Limiter) Stats() Stats {
	st := Stats{Summaries: l.sums.Load(), Pending: int(l.nPend.Load()), Dropped: l.dropped.Load()}
	for _, sh := range l.allShards() {
		sh.mu.Lock()
		st.Suppressed += sh.held
		st.Sources += len(sh.m)
		sh.mu.Unlock()
	}
	return st
}

// Sources returns the tracked sources that have held back events.
func (l *Limiter) Sources() []SourceStats {
	var out []SourceStats
	for _, sh := range l.allShards() {
		sh.mu.Lock()
		for s := sh.head.next; s != &sh.head; s = s.next {
			if s.total > 0 {
				out = append(out, SourceStats{Addr: s.key.addr, Host: s.key.host, Suppressed: s.total})
			}
		}
		sh.mu.Unlock()
	}
	return out
}

func (l *Limiter) allShards() []*shard {
	all := make([]*shard, 0, numShards+1)
	for i := range l.shards {
		all = append(all, &l.shards[i])
	}
	return append(all, &l.over)
}
