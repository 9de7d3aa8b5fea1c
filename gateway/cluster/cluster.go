package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/commands"
)

// Defaults and fixed intervals (see the package doc).
const (
	DefaultPrefix  = "zbridge"
	DefaultTTL     = 15 * time.Second
	DefaultTimeout = 2 * time.Second

	// commandMargin is added to a command's timeout for the life of its
	// command key and output stream.
	commandMargin = 30 * time.Second
	// deadlineGrace is how long a forwarder waits past its deadline for
	// the holder's own timeout answer.
	deadlineGrace = 2 * time.Second
	// readBlock bounds one blocking read of an output stream or inbox.
	readBlock = 500 * time.Millisecond
	// inboxMaxLen is the approximate length an inbox is trimmed to.
	inboxMaxLen = 10000
	// forgetAfter is how long an index member lives without being written.
	forgetAfter = time.Hour
	// retryPause is the pause between attempts while Redis fails.
	retryPause = 200 * time.Millisecond
	// maxAbandoned bounds the command keys kept for deletion once Redis
	// answers again (see Cluster.abandoned).
	maxAbandoned = 10000
	// maxCancelled bounds the cancels remembered for runs not received
	// (see Cluster.cancelled).
	maxCancelled = 10000
)

// Addrs are the addresses a region's clients connect to, as announced.
type Addrs struct {
	Commands string `json:"commands,omitempty"`
	UnsolMsg string `json:"unsolmsg,omitempty"`
	HTTP     string `json:"http,omitempty"`
}

// Region is a region as it announces itself.
type Region struct {
	Name string `json:"name"`
	// Instance identifies the process: it changes when the region restarts.
	Instance string `json:"instance"`
	Addrs
	Started time.Time `json:"started"`
	// Seen is when the region last announced itself.
	Seen time.Time `json:"seen"`
	// Alive says the announcement has not expired. A region that is not
	// alive has only Name and Seen set.
	Alive bool `json:"-"`
}

// Agent is an agent a region holds: a Linux system it reaches over SSH,
// or a z/VM agent connected to its VMMON.
type Agent struct {
	Kind   commands.Kind `json:"kind"` // commands.KindLinux or commands.KindZVM
	Name   string        `json:"name"`
	Addr   string        `json:"addr,omitempty"` // IP or host:port; linux:ADDR= targets match it
	State  string        `json:"state"`
	Since  time.Time     `json:"since"`
	Detail string        `json:"detail,omitempty"`
	// Static says the region was configured with this name (--linux); a
	// name it learned (from a syslog sender) is not. A learned name is
	// announced only while no other region holds it, and never over
	// another region's static name; a static one takes a name over from
	// another region's learned one.
	Static bool `json:"static,omitempty"`
	// Region holds the agent; the package sets it.
	Region string `json:"region"`
}

// RunFunc runs a request, as commands.Router.Run does.
type RunFunc func(ctx context.Context, req *commands.Request, out func(commands.Output)) (commands.Result, error)

// Config configures a Cluster.
type Config struct {
	// Client is the shared Redis (required). The Cluster does not close it.
	Client redis.UniversalClient
	// Prefix names the key space, used as {Prefix} (default "zbridge").
	Prefix string
	// Region is this region's name (required).
	Region string
	// Key is the cluster key (required, at least MinKeySize bytes), the
	// same in every region: it signs the entries that carry authority
	// between regions (see the package doc). LoadKey reads it from a file.
	// New copies it.
	Key []byte
	// Addrs are announced for operators and clients.
	Addrs Addrs
	// TTL is how long an announcement lives; it is refreshed every TTL/3
	// (default 15s, at least 1s).
	TTL time.Duration
	// Timeout bounds each Redis round trip that is not a blocking read,
	// and how long Redis may fail before a command waiting on it fails
	// (default 2s).
	Timeout time.Duration
	// LocalAgents lists the agents this region holds; it is called at
	// every refresh and must not block. Nil means none.
	LocalAgents func() []Agent
	// Run runs a request forwarded from another region: the region's
	// Router.Run (required).
	Run RunFunc
	// Logger receives the cluster's log (required).
	Logger logrus.FieldLogger
}

// Stats are the cluster's counters since New.
type Stats struct {
	ForwardedOut uint64 // commands sent to another region
	ForwardedIn  uint64 // commands run for another region
	PeersLost    uint64 // times a live peer region stopped announcing
	Rejected     uint64 // stream entries refused: see RejectedEntries
}

// Cluster is a region's membership of a shared Redis. Its methods are safe
// for concurrent use.
type Cluster struct {
	cfg      Config
	rdb      redis.UniversalClient
	log      logrus.FieldLogger
	keys     keys
	signer   signer
	instance string
	started  time.Time

	// ctx lives until Close, which cancels it with errClosing: it stops
	// the loops and the runs forwarded here.
	ctx    context.Context
	cancel context.CancelCauseFunc

	touch      chan struct{} // wakes the refresh loop; capacity 1
	inboxReady chan struct{} // closed once the inbox loop knows where to start

	seq                                            atomic.Uint64 // forwarding IDs
	forwardedOut, forwardedIn, peersLost, rejected atomic.Uint64
	health                                         atomic.Pointer[healthState]
	rejectLog                                      logLimiter // for reject

	mu       sync.Mutex // guards the following fields
	running  bool       // Start was called
	closed   bool
	closeErr error
	runs     map[string]inRun // forwarded here, by FID
	wg       sync.WaitGroup   // loops, runs, forwards; Add under mu while !closed
	// abandoned are the command keys of forwarded commands this region
	// stopped waiting for while Redis could not be reached, by FID, with
	// when they expire by themselves: the refresh loop deletes them once
	// Redis answers (after a Sentinel failover, the new master has them),
	// so that their holders stop the runs nobody waits for.
	abandoned map[string]time.Time

	// Owned by the refresh loop (and Close, after the loop ended).
	peers     map[string]peerState
	announced map[string]bool // agent index members written at the last refresh
	everWrote bool            // the region's key was written at least once

	// Owned by the inbox loop: the FIDs of the run entries accepted, with
	// their send times, for MaxEntryAge past the send time (a replay of one
	// is refused; after that, it is stale); the cancels received for runs
	// not received (yet), by FID, for MaxEntryAge past their send time, at
	// most maxCancelled (the run, sent before its cancel, is stale by
	// then); and when both were last pruned.
	accepted   map[string]time.Time
	cancelled  map[string]cancelMsg
	lastPruned time.Time
}

type healthState struct{ err error }

type peerState struct {
	alive    bool
	instance string
}

// New validates cfg and returns a Cluster; Start starts its loops.
func New(cfg Config) (*Cluster, error) {
	if cfg.Client == nil {
		return nil, fmt.Errorf("%w: Client is required", ErrConfig)
	}
	if cfg.Logger == nil {
		return nil, fmt.Errorf("%w: Logger is required", ErrConfig)
	}
	if cfg.Run == nil {
		return nil, fmt.Errorf("%w: Run is required", ErrConfig)
	}
	if cfg.Region == "" || strings.ContainsFunc(cfg.Region, isSpaceOrControl) {
		return nil, fmt.Errorf("%w: Region %q: a name without blanks is required", ErrConfig, cfg.Region)
	}
	if len(cfg.Key) < MinKeySize {
		return nil, fmt.Errorf("%w: Key has %d bytes: a cluster key of at least %d bytes is required (see LoadKey)",
			ErrConfig, len(cfg.Key), MinKeySize)
	}
	cfg.Key = bytes.Clone(cfg.Key)
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if strings.ContainsAny(cfg.Prefix, "{}") || strings.ContainsFunc(cfg.Prefix, isSpaceOrControl) {
		return nil, fmt.Errorf("%w: Prefix %q: no braces or blanks allowed", ErrConfig, cfg.Prefix)
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.TTL < time.Second {
		return nil, fmt.Errorf("%w: TTL %v is under 1s", ErrConfig, cfg.TTL)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	var id [8]byte
	_, _ = rand.Read(id[:]) // never fails
	ctx, cancel := context.WithCancelCause(context.Background())
	return &Cluster{
		cfg:        cfg,
		rdb:        cfg.Client,
		log:        cfg.Logger,
		keys:       keys{"{" + cfg.Prefix + "}"},
		signer:     signer{cfg.Key},
		instance:   hex.EncodeToString(id[:]),
		started:    time.Now(),
		ctx:        ctx,
		cancel:     cancel,
		touch:      make(chan struct{}, 1),
		inboxReady: make(chan struct{}),
		rejectLog:  logLimiter{every: rejectLogEvery},
		runs:       map[string]inRun{},
		abandoned:  map[string]time.Time{},
		peers:      map[string]peerState{},
		announced:  map[string]bool{},
		accepted:   map[string]time.Time{},
		cancelled:  map[string]cancelMsg{},
	}, nil
}

func isSpaceOrControl(r rune) bool { return r <= ' ' || r == 0x7f }

// keys names the package's Redis keys.
type keys struct{ p string } // "{prefix}"

func (k keys) region(name string) string { return k.p + ":region:" + name }
func (k keys) regions() string           { return k.p + ":regions" }
func (k keys) agents() string            { return k.p + ":agents" }
func (k keys) agent(member string) string {
	return k.p + ":agent:" + member
}
func (k keys) inbox(region string) string { return k.p + ":inbox:" + region }
func (k keys) command(fid string) string  { return k.p + ":command:" + fid }
func (k keys) output(fid string) string   { return k.p + ":output:" + fid }

// agentMember is an agent's member of the agents index, KIND:NAME, or ""
// for an agent that cannot be announced.
func agentMember(kind commands.Kind, name string) string {
	if kind != commands.KindLinux && kind != commands.KindZVM || name == "" {
		return ""
	}
	if kind == commands.KindZVM {
		name = strings.ToUpper(name)
	} else {
		name = strings.ToLower(name) // learned Linux names are kept in lower case
	}
	return string(kind) + ":" + name
}

// Start starts the refresh and inbox loops. It does nothing after the
// first call or after Close.
func (c *Cluster) Start() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running || c.closed {
		return
	}
	c.running = true
	c.wg.Add(2)
	go c.refreshLoop()
	go c.inboxLoop()
}

// Close stops the loops, cancels the commands forwarded here (their
// forwarders are told the region shut down), makes the commands this region
// forwarded fail, waits for all of them, and then withdraws the region's
// announcement and its agents. It returns an error if the withdrawal
// failed; calling it again returns the same.
func (c *Cluster) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return c.closeErr
	}
	c.closed = true
	running := c.running
	c.mu.Unlock()

	c.cancel(errClosing)
	c.wg.Wait()
	var err error
	if running {
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.Timeout)
		err = c.withdraw(ctx)
		cancel()
		if err != nil {
			err = fmt.Errorf("cluster: close: withdraw region %s: %w", c.cfg.Region, err)
		}
	}
	c.mu.Lock()
	c.closeErr = err
	c.mu.Unlock()
	return err
}

// enter registers a goroutine with the WaitGroup, unless Close began.
func (c *Cluster) enter() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.wg.Add(1)
	return true
}

// Touch makes the refresh loop announce the region and its agents now,
// as when an agent has just connected. It does not block.
func (c *Cluster) Touch() {
	select {
	case c.touch <- struct{}{}:
	default:
	}
}

// Health returns nil if the last Redis round trip worked (or none was made
// yet), else its error.
func (c *Cluster) Health() error {
	if h := c.health.Load(); h != nil {
		return h.err
	}
	return nil
}

// Stats returns the counters.
func (c *Cluster) Stats() Stats {
	return Stats{ForwardedOut: c.forwardedOut.Load(), ForwardedIn: c.forwardedIn.Load(), PeersLost: c.peersLost.Load(),
		Rejected: c.rejected.Load()}
}

// RejectedEntries returns how many stream entries the region has refused
// since New: inbox entries and entries of its forwarded commands' output
// streams that were not signed with the cluster key, were stale or
// replayed, or claimed to come from this region. They are logged at warn,
// one a minute at most (see the package doc, "Signed entries").
// Anything above zero means that something other than a region of the
// cluster writes to its streams, or that a region's key or clock is wrong
// (or, rarely, that a forwarder's XADD was sent twice after a network
// error: the second copy counts as a replay).
func (c *Cluster) RejectedEntries() uint64 { return c.rejected.Load() }

// Name returns the region's name.
func (c *Cluster) Name() string { return c.cfg.Region }

// note records the outcome of a Redis round trip for Health, logging when
// Redis becomes unreachable and when it answers again.
func (c *Cluster) note(err error) {
	if err == nil || errors.Is(err, redis.Nil) {
		if old := c.health.Swap(nil); old != nil {
			c.log.Info("redis answers again")
		}
		return
	}
	if errors.Is(err, context.Canceled) {
		return // someone stopped waiting; says nothing about Redis
	}
	if old := c.health.Swap(&healthState{fmt.Errorf("cluster: redis: %w", err)}); old == nil {
		c.log.WithError(err).Warn("redis unreachable: cross-region routing is unavailable")
	}
}

// opContext bounds one round trip.
func (c *Cluster) opContext(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(parent, c.cfg.Timeout)
}

// pause waits d, or less if the cluster closes; it reports whether it
// waited the full time.
func (c *Cluster) pause(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.ctx.Done():
		return false
	}
}

// refreshLoop announces the region and its agents every TTL/3, or at once
// on Touch, and watches the peers.
func (c *Cluster) refreshLoop() {
	defer c.wg.Done()
	t := time.NewTicker(c.cfg.TTL / 3)
	defer t.Stop()
	for {
		c.refresh()
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		case <-c.touch:
		}
	}
}

func (c *Cluster) refresh() {
	ctx, cancel := c.opContext(c.ctx)
	defer cancel()
	select {
	case <-c.inboxReady:
		err := c.announce(ctx)
		c.note(err)
		if err != nil {
			return
		}
	default:
		// Peers may not send requests before the inbox loop reads them.
	}
	c.deleteAbandoned(ctx)
	regions, err := c.Regions(ctx)
	if err != nil {
		return
	}
	c.watchPeers(regions)
}

// abandon records the command key of a forwarded command this region
// stopped waiting for but could not delete, for deleteAbandoned.
func (c *Cluster) abandon(fid string, expires time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.abandoned) < maxAbandoned {
		c.abandoned[fid] = expires
	}
}

// deleteAbandoned deletes the command keys (and output streams) that
// abandon recorded, those not expired by now.
func (c *Cluster) deleteAbandoned(ctx context.Context) {
	now := time.Now()
	c.mu.Lock()
	var keys, fids []string
	for fid, expires := range c.abandoned {
		if now.After(expires) {
			delete(c.abandoned, fid)
			continue
		}
		fids = append(fids, fid)
		keys = append(keys, c.keys.command(fid), c.keys.output(fid))
	}
	c.mu.Unlock()
	if len(keys) == 0 {
		return
	}
	pipe := c.rdb.Pipeline()
	for i := 0; i < len(keys); i += 2 {
		pipe.Del(ctx, keys[i], keys[i+1])
	}
	_, err := pipe.Exec(ctx)
	c.note(err)
	if err != nil {
		return
	}
	c.mu.Lock()
	for _, fid := range fids {
		delete(c.abandoned, fid)
	}
	c.mu.Unlock()
	c.log.WithField("commands", len(fids)).Info("deleted the keys of forwarded commands given up while redis was unreachable; their holders stop them")
}

// announce writes the region's key and its agents' keys, in one pipeline,
// and deletes the keys of agents it no longer holds.
func (c *Cluster) announce(ctx context.Context) error {
	var agents []Agent
	if c.cfg.LocalAgents != nil {
		agents = c.cfg.LocalAgents()
	}
	now := time.Now()
	reg, _ := json.Marshal(Region{Name: c.cfg.Region, Instance: c.instance, Addrs: c.cfg.Addrs, Started: c.started, Seen: now})
	score := float64(now.UnixMilli())
	pipe := c.rdb.Pipeline()
	pipe.Set(ctx, c.keys.region(c.cfg.Region), reg, c.cfg.TTL)
	pipe.ZAdd(ctx, c.keys.regions(), redis.Z{Score: score, Member: c.cfg.Region})
	members := map[string]bool{}
	for _, a := range agents {
		m := agentMember(a.Kind, a.Name)
		if m == "" || members[m] {
			continue
		}
		members[m] = true
		a.Region = c.cfg.Region
		if a.Kind == commands.KindZVM {
			a.Name = strings.ToUpper(a.Name)
		}
		b, _ := json.Marshal(a)
		static := "0"
		if a.Static || a.Kind == commands.KindZVM { // a z/VM system's agent proved its name at logon
			static = "1"
		}
		pipe.Eval(ctx, claimAgentScript, []string{c.keys.agent(m)}, b, c.cfg.Region, static, c.cfg.TTL.Milliseconds())
		pipe.ZAdd(ctx, c.keys.agents(), redis.Z{Score: score, Member: m})
	}
	for m := range c.announced {
		if !members[m] {
			pipe.Eval(ctx, deleteIfScript, []string{c.keys.agent(m)}, "region", c.cfg.Region)
		}
	}
	old := "(" + strconv.FormatInt(now.Add(-forgetAfter).UnixMilli(), 10)
	pipe.ZRemRangeByScore(ctx, c.keys.regions(), "-inf", old)
	pipe.ZRemRangeByScore(ctx, c.keys.agents(), "-inf", old)
	if _, err := pipe.Exec(ctx); err != nil {
		return err
	}
	c.announced, c.everWrote = members, true
	return nil
}

// claimAgentScript writes an agent's entry KEYS[1] (ARGV[1], for ARGV[4]
// ms) for region ARGV[2] unless another region holds the name: a static
// name (ARGV[3] = "1") takes it from another region's learned one, a
// learned name never takes it from anyone. Returns 1 when written.
const claimAgentScript = `
local v = redis.call('GET', KEYS[1])
if v then
  local ok, d = pcall(cjson.decode, v)
  if ok and type(d) == 'table' and d['region'] ~= ARGV[2] then
    if d['static'] or ARGV[3] ~= '1' then return 0 end
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[4])
return 1
`

// deleteIfScript deletes KEYS[1] if it holds a JSON object whose field
// ARGV[1] is ARGV[2]: a key of this region (or process), not one another
// region has written since.
const deleteIfScript = `
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local ok, d = pcall(cjson.decode, v)
if ok and type(d) == 'table' and d[ARGV[1]] == ARGV[2] then
	return redis.call('DEL', KEYS[1])
end
return 0`

// withdraw deletes the region's announcement and its agents' keys.
func (c *Cluster) withdraw(ctx context.Context) error {
	pipe := c.rdb.Pipeline()
	pipe.Eval(ctx, deleteIfScript, []string{c.keys.region(c.cfg.Region)}, "instance", c.instance)
	for m := range c.announced {
		pipe.Eval(ctx, deleteIfScript, []string{c.keys.agent(m)}, "region", c.cfg.Region)
	}
	_, err := pipe.Exec(ctx)
	if err == nil {
		c.log.Info("region withdrawn from the cluster")
	}
	return err
}

// watchPeers logs peers that appear, stop announcing, come back or
// restart, and another process announcing this region's name.
func (c *Cluster) watchPeers(regions []Region) {
	seen := map[string]bool{}
	for _, r := range regions {
		seen[r.Name] = true
		prev, known := c.peers[r.Name]
		c.peers[r.Name] = peerState{alive: r.Alive, instance: r.Instance}
		log := c.log.WithField("peer", r.Name)
		if r.Name == c.cfg.Region {
			// Before the first announcement, the key may still be this
			// region's previous process's.
			if c.everWrote && r.Alive && r.Instance != c.instance && r.Instance != prev.instance {
				log.WithField("instance", r.Instance).Error("another process announces this region's name")
			}
			continue
		}
		switch {
		case r.Alive && !known:
			log.WithField("commands", r.Commands).Info("region joined the cluster")
		case r.Alive && !prev.alive:
			log.Info("region announces itself again")
		case r.Alive && prev.instance != r.Instance:
			log.Warn("region restarted: the commands it was running for this one are lost")
		case !r.Alive && known && prev.alive:
			c.lost(r.Name)
		}
	}
	for name, p := range c.peers {
		if !seen[name] {
			delete(c.peers, name)
			if p.alive && name != c.cfg.Region {
				c.lost(name)
			}
		}
	}
}

func (c *Cluster) lost(name string) {
	c.peersLost.Add(1)
	c.log.WithField("peer", name).Warn("region stopped announcing")
}

// Regions lists the regions of the cluster, this one included, sorted by
// name: those alive, and those that stopped announcing in the last hour.
func (c *Cluster) Regions(ctx context.Context) ([]Region, error) {
	zs, err := c.rdb.ZRangeWithScores(ctx, c.keys.regions(), 0, -1).Result()
	c.note(err)
	if err != nil || len(zs) == 0 {
		return nil, wrap("list regions", err)
	}
	names := make([]string, len(zs))
	ks := make([]string, len(zs))
	for i, z := range zs {
		names[i], _ = z.Member.(string)
		ks[i] = c.keys.region(names[i])
	}
	vals, err := c.rdb.MGet(ctx, ks...).Result()
	c.note(err)
	if err != nil {
		return nil, wrap("list regions", err)
	}
	out := make([]Region, 0, len(zs))
	for i, v := range vals {
		r := Region{Name: names[i], Seen: time.UnixMilli(int64(zs[i].Score))}
		if s, ok := v.(string); ok {
			if err := json.Unmarshal([]byte(s), &r); err != nil {
				c.log.WithError(err).WithField("peer", names[i]).Warn("unreadable region announcement")
			}
			r.Name, r.Alive = names[i], true
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b Region) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Agents lists the agents of every live region, sorted by kind and name.
func (c *Cluster) Agents(ctx context.Context) ([]Agent, error) {
	agents, _, err := c.listAgents(ctx)
	return agents, err
}

// listAgents lists the agents of live regions and the live regions.
func (c *Cluster) listAgents(ctx context.Context) ([]Agent, map[string]Region, error) {
	regions, err := c.Regions(ctx)
	if err != nil {
		return nil, nil, err
	}
	alive := map[string]Region{}
	for _, r := range regions {
		if r.Alive {
			alive[r.Name] = r
		}
	}
	members, err := c.rdb.ZRange(ctx, c.keys.agents(), 0, -1).Result()
	c.note(err)
	if err != nil || len(members) == 0 {
		return nil, alive, wrap("list agents", err)
	}
	ks := make([]string, len(members))
	for i, m := range members {
		ks[i] = c.keys.agent(m)
	}
	vals, err := c.rdb.MGet(ctx, ks...).Result()
	c.note(err)
	if err != nil {
		return nil, alive, wrap("list agents", err)
	}
	var out []Agent
	for _, v := range vals {
		s, ok := v.(string)
		if !ok {
			continue // expired
		}
		var a Agent
		if err := json.Unmarshal([]byte(s), &a); err != nil {
			continue
		}
		if _, ok := alive[a.Region]; ok {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, func(a, b Agent) int {
		return strings.Compare(string(a.Kind)+":"+a.Name, string(b.Kind)+":"+b.Name)
	})
	return out, alive, nil
}

// Lookup returns the live region that holds the target, by name, or for a
// linux:ADDR= target by the agents' addresses. ok is false when no live
// region holds it.
func (c *Cluster) Lookup(ctx context.Context, t commands.Target) (region string, ok bool, err error) {
	r, ok, err := c.locate(ctx, t)
	return r.Name, ok, err
}

func (c *Cluster) locate(ctx context.Context, t commands.Target) (Region, bool, error) {
	if t.Name == "" {
		if t.Kind != commands.KindLinux || !t.Addr.IsValid() {
			return Region{}, false, nil
		}
		agents, alive, err := c.listAgents(ctx)
		if err != nil {
			return Region{}, false, err
		}
		var found []string
		for _, a := range agents {
			if a.Kind == commands.KindLinux && addrOf(a.Addr) == t.Addr {
				found = append(found, a.Region)
			}
		}
		switch {
		case len(found) == 0:
			return Region{}, false, nil
		case slices.Contains(found, c.cfg.Region):
			return alive[c.cfg.Region], true, nil
		default:
			return alive[found[0]], true, nil
		}
	}
	m := agentMember(t.Kind, t.Name)
	if m == "" {
		return Region{}, false, nil
	}
	s, err := c.rdb.Get(ctx, c.keys.agent(m)).Result()
	c.note(err)
	if errors.Is(err, redis.Nil) {
		return Region{}, false, nil
	}
	if err != nil {
		return Region{}, false, wrap("look up "+t.String(), err)
	}
	var a Agent
	if err := json.Unmarshal([]byte(s), &a); err != nil || a.Region == "" {
		return Region{}, false, fmt.Errorf("%w: agent %s: %v", ErrBadEntry, m, err)
	}
	return c.region(ctx, a.Region)
}

// region reads a region's announcement; ok is false when it has none.
func (c *Cluster) region(ctx context.Context, name string) (Region, bool, error) {
	s, err := c.rdb.Get(ctx, c.keys.region(name)).Result()
	c.note(err)
	if errors.Is(err, redis.Nil) {
		return Region{Name: name}, false, nil
	}
	if err != nil {
		return Region{Name: name}, false, wrap("read region "+name, err)
	}
	r := Region{Name: name, Alive: true}
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		return r, true, fmt.Errorf("%w: region %s: %v", ErrBadEntry, name, err)
	}
	r.Name = name
	return r, true, nil
}

// addrOf returns the IP of an agent's address: an IP, or host:port with an
// IP host.
func addrOf(s string) netip.Addr {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap()
	}
	if host, _, err := net.SplitHostPort(s); err == nil {
		if a, err := netip.ParseAddr(host); err == nil {
			return a.Unmap()
		}
	}
	return netip.Addr{}
}

func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("cluster: %s: %w", op, err)
}
