// Package availability is the region's availability ledger: it turns what
// the region sees — messages that say a system is up or down, heartbeats,
// probes it runs — into status records in the common layout of IBM's
// availability measurement paper ("Finding and Collecting Availability
// Measurement Data"): component, UP or DOWN, time, change identifier
// (protocol.StatusRecord). The store keeps the records apart from the
// event stream (store.Ledger), and each is also published as an event
// (source=availability) for automation to act on; package
// gateway/availability/report turns them into reports.
//
// A record is written for each change only: a component's status
// repeated (DOWN, DOWN) writes nothing, and a flapping one (UP, DOWN, UP,
// DOWN) writes every change, in the order the ledger saw them. The
// ledger's state (each component's last status) is read back from the
// store's records at start, and its position in the event stream is kept
// in the store (a durable position), so that a restart neither misses
// nor repeats events.
//
// Three sources, configured in the [availability] table of the region's
// config file (see Spec):
//
//   - rules: an event matching a filter and a regular expression on its
//     text sets a component's status (IXC418I → SYSA UP; a z/VM LOGOFF →
//     VMSYS1/LINUX01 DOWN);
//   - heartbeats: events matching a filter, or an agent's link to the
//     region while it is connected (checked every Tick), are beats; a
//     component whose beat is missing for its interval is DOWN
//     (heartbeat-lost) from the moment the interval ran out, UP
//     (heartbeat) at the next beat;
//   - probes: a command run on a target every interval; UP when it ends
//     with the expected return code (and output), DOWN otherwise
//     (probe-failed, probe-timeout). A probe that cannot run (its target
//     not connected) writes nothing: what it probes may be fine, and an
//     agent heartbeat says whether the target is reachable.
//
// With several regions sharing Redis, run the ledger on one of them
// (--availability on that one only): each ledger keeps its own state, and
// two would write each change twice.
package availability

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/gateway/store"
	"github.com/zbridge/zbridge/protocol"
)

// ErrProbeTimeout is wrapped by Config.Probe's error when the command
// ran out of time (DOWN, probe-timeout); any other error means it could
// not run, which records nothing.
var ErrProbeTimeout = errors.New("availability: the probe timed out")

// MaxComponents bounds the components the ledger tracks: templates fill
// names from events, and a sender must not be able to grow the ledger
// without end. A record for a new component beyond it is dropped (and
// logged).
const MaxComponents = 10000

// DefaultMaxComponentsPerSender is how many components the events of one
// sender address may add (Spec.MaxComponentsPerSender): a template filled
// from what a syslog line claims ({host}) lets a sender name components
// at will, and without a share of its own one sender rotating host names
// would fill the ledger, for good (its state is read back at a restart),
// and no other sender's new component would be recorded.
const DefaultMaxComponentsPerSender = 1000

// capLogEvery is how often a component refused for a cap is logged.
const capLogEvery = time.Minute

// appendTimeout bounds one store append of a record.
const appendTimeout = 10 * time.Second

// maxFuture is how far past the time the region received it an event's
// own time may lie for a rule's record; beyond it the receipt time is used.
const maxFuture = time.Minute

// Agent is an agent's link to the region, for agent heartbeats: the
// region watches each link with its own heartbeats (VMMON's, SSH
// keepalives) and says whether it is connected now; a connected link is a
// beat.
type Agent struct {
	Target    string // zvm:SYSTEM or linux:NAME
	Connected bool
}

// Config configures a Ledger.
type Config struct {
	// Spec holds the rules, heartbeats and probes; nil: none (the ledger
	// still reports the state its records hold).
	Spec *Spec
	// Store holds the events the ledger reads and, as a store.Ledger,
	// its records. Required.
	Store store.Store
	// Agents lists the agents' links (agent heartbeats); nil: none.
	Agents func() []Agent
	// Probe runs a probe's command on its target and returns its return
	// code and output, or an error when it did not run to its end.
	// Required when the spec has probes.
	Probe func(ctx context.Context, target, command string, timeout time.Duration) (rc int, output string, err error)
	// Publish, when set, is called with each record once it is stored
	// (the region issues it as an event).
	Publish func(ctx context.Context, rec protocol.StatusRecord)
	// Position names the ledger's durable position in the event stream
	// (default "availability").
	Position string
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Tick is how often heartbeats are checked and probes started
	// (default 1s).
	Tick   time.Duration
	Logger logrus.FieldLogger // required
}

// State is a component's current status.
type State struct {
	Component string
	Status    protocol.Status
	Since     time.Time
	Change    string
	Rule      string
}

// Ledger is the availability ledger. Create it with New; Run runs it.
type Ledger struct {
	cfg    Config
	ledger store.Ledger
	log    logrus.FieldLogger

	mu      sync.Mutex // guards the fields below, and record appends
	spec    *compiled
	state   map[string]*State
	beats   map[string]*beat // heartbeat components being watched
	nextRun map[string]time.Time
	running map[string]bool
	// The components events added, by sender (senderKey), since the
	// ledger started: a component read back at a start has no sender.
	added  map[netip.Addr]int
	capped int       // components refused for a cap since capLog
	capLog time.Time // when a refusal was last logged

	loadErr error // New could not read the state: Run reads it first
}

// beat is a heartbeat component being watched.
type beat struct {
	rule     string
	interval time.Duration
	last     time.Time
}

// New builds a ledger and reads its state back from the store's records.
func New(ctx context.Context, cfg Config) (*Ledger, error) {
	if cfg.Store == nil || cfg.Logger == nil {
		return nil, errors.New("availability: config: Store and Logger are required")
	}
	lg, ok := cfg.Store.(store.Ledger)
	if !ok {
		return nil, errors.New("availability: the store keeps no status records")
	}
	if cfg.Position == "" {
		cfg.Position = "availability"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Tick <= 0 {
		cfg.Tick = time.Second
	}
	l := &Ledger{cfg: cfg, ledger: lg, log: cfg.Logger, state: map[string]*State{}, beats: map[string]*beat{},
		nextRun: map[string]time.Time{}, running: map[string]bool{}, added: map[netip.Addr]int{}}
	if err := l.SetSpec(cfg.Spec); err != nil {
		return nil, err
	}
	if err := l.load(ctx); err != nil {
		// The store is away (Redis down): Run loads the state before it
		// starts, so the region need not wait for it.
		l.log.WithError(err).Warn("availability: the ledger's state cannot be read yet; it is read again when the ledger runs")
		l.loadErr = err
	}
	return l, nil
}

// load reads the ledger's state back from the store's records, and sets
// its position in the event stream when it has none.
func (l *Ledger) load(ctx context.Context) error {
	cfg := l.cfg
	// A new ledger starts with the events to come: its position is set
	// now, so that none stored after New is missed.
	if _, ok, err := cfg.Store.Position(ctx, cfg.Position); err != nil {
		return fmt.Errorf("availability: %w", err)
	} else if !ok {
		stats, err := cfg.Store.Stats(ctx)
		if err != nil {
			return fmt.Errorf("availability: %w", err)
		}
		if err := cfg.Store.SetPosition(ctx, cfg.Position, stats.Last); err != nil {
			return fmt.Errorf("availability: %w", err)
		}
	}
	state := map[string]*State{}
	var after uint64
	var recs []protocol.StatusRecord
	for {
		var err error
		recs, err = l.ledger.StatusRecords(ctx, after, 4096, recs[:0])
		if err != nil {
			return fmt.Errorf("availability: reading the records: %w", err)
		}
		for _, r := range recs {
			state[r.Component] = &State{Component: r.Component, Status: r.Status, Since: r.Time, Change: r.Change, Rule: r.Rule}
			after = r.Seq
		}
		if len(recs) < 4096 {
			break
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.state = state
	// Heartbeat components UP when the region stopped are watched again
	// from now: without a beat within their interval they go DOWN.
	now := cfg.Now()
	for _, st := range l.state {
		for _, h := range l.spec.heartbeats {
			if st.Rule == h.name && st.Status == protocol.StatusUp {
				l.beats[st.Component] = &beat{rule: h.name, interval: h.interval, last: now}
			}
		}
	}
	return nil
}

// SetSpec applies a new spec (a refresh of the config file): components
// keep their state; heartbeats and probes no longer configured stop.
func (l *Ledger) SetSpec(s *Spec) error {
	c := &compiled{perSender: DefaultMaxComponentsPerSender}
	if s != nil {
		var err error
		if c, err = compile(s); err != nil {
			return err
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.spec = c
	now := l.cfg.Now()
	keep := map[string]bool{}
	for _, h := range c.heartbeats {
		keep[h.name] = true
		if h.agent != "" {
			comp := h.component.parts[0]
			if b := l.beats[comp]; b == nil || b.rule != h.name {
				l.beats[comp] = &beat{rule: h.name, interval: h.interval, last: now}
			} else {
				b.interval = h.interval
			}
		}
	}
	for comp, b := range l.beats {
		if !keep[b.rule] {
			delete(l.beats, comp)
		}
	}
	for name := range l.nextRun {
		found := false
		for _, p := range c.probes {
			found = found || p.name == name
		}
		if !found {
			delete(l.nextRun, name)
		}
	}
	return nil
}

// Current returns every component's status, by component name.
func (l *Ledger) Current() []State {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]State, 0, len(l.state))
	for _, s := range l.state {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Component < out[j].Component })
	return out
}

// Run reads the event stream and watches heartbeats and probes until ctx
// ends; it returns ctx.Err(), or the store's error that stopped it. Every
// goroutine it starts has ended when it returns.
func (l *Ledger) Run(ctx context.Context) error {
	for wait := time.Second; l.loadErr != nil; wait = min(2*wait, time.Minute) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		if l.loadErr = l.load(ctx); l.loadErr == nil {
			l.log.Info("availability: the ledger's state was read")
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	errc := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		err := l.tail(ctx)
		if ctx.Err() == nil {
			errc <- err
			cancel()
		}
	}()
	t := time.NewTicker(l.cfg.Tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			select {
			case err := <-errc:
				return err
			default:
				return ctx.Err()
			}
		case <-t.C:
			l.check(ctx, &wg)
		}
	}
}

// tail applies the rules and event heartbeats to each new event.
func (l *Ledger) tail(ctx context.Context) error {
	st := l.cfg.Store
	after, _, err := st.Position(ctx, l.cfg.Position) // set by New
	if err != nil {
		return fmt.Errorf("availability: %w", err)
	}
	var evs []*protocol.Event
	for {
		evs, _, err = st.Read(ctx, after, 256, evs[:0])
		if err != nil {
			return fmt.Errorf("availability: %w", err)
		}
		if len(evs) == 0 {
			if err := st.Wait(ctx, after); err != nil {
				return err
			}
			continue
		}
		for _, e := range evs {
			l.apply(ctx, e)
			after = e.ID
		}
		if err := st.SetPosition(ctx, l.cfg.Position, after); err != nil {
			return fmt.Errorf("availability: %w", err)
		}
	}
}

// apply applies the rules and event heartbeats to e.
func (l *Ledger) apply(ctx context.Context, e *protocol.Event) {
	if e.Source == protocol.SourceAvailability {
		return // the ledger's own records
	}
	l.mu.Lock()
	spec := l.spec
	l.mu.Unlock()
	sender := senderKey(e.Origin.Addr)
	when := e.Time
	if when.IsZero() || !e.Received.IsZero() && when.After(e.Received.Add(maxFuture)) {
		when = e.Received // a time in the future is a bad clock, or a forged one
	}
	for _, r := range spec.rules {
		if r.filter != nil && !r.filter.Match(e) {
			continue
		}
		var caps map[string]string
		if r.text != nil {
			m := r.text.FindStringSubmatch(e.Text)
			if m == nil {
				continue
			}
			caps = map[string]string{}
			for i, n := range r.text.SubexpNames() {
				if n != "" {
					caps[n] = m[i]
				}
			}
		}
		comp := r.component.expand(e, caps)
		if comp == "" {
			continue
		}
		change := ""
		if !r.change.isZero() {
			change = r.change.expand(e, caps)
		}
		for _, c := range []string{change, e.MsgID, e.Type, r.name} {
			if c != "" {
				change = c
				break
			}
		}
		l.record(ctx, protocol.StatusRecord{Component: comp, Status: r.status, Time: when.UTC(), Change: change,
			Rule: r.name, Event: e.ID, Detail: e.Text}, sender)
	}
	for _, h := range spec.heartbeats {
		if h.filter == nil || !h.filter.Match(e) {
			continue
		}
		comp := h.component.expand(e, nil)
		if comp == "" {
			continue
		}
		at := e.Received
		if at.IsZero() {
			at = l.cfg.Now()
		}
		l.beat(ctx, h, comp, at, e.ID, sender)
	}
}

// senderKey is the key of an event's sender address for the components
// it may add: an IPv6 address counts as its /64, which one host or site
// usually holds whole. The zero Addr for an event without one (the
// region's own, which no sender names).
func senderKey(addr string) netip.Addr {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return netip.Addr{}
	}
	a = a.Unmap().WithZone("")
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

// beat is a heartbeat of comp at time at, from sender (zero for an
// agent's link). A component the ledger does not track (a cap refused it)
// is not watched either: the beats are bounded as the state is.
func (l *Ledger) beat(ctx context.Context, h *heartbeat, comp string, at time.Time, ev protocol.ID, sender netip.Addr) {
	l.record(ctx, protocol.StatusRecord{Component: comp, Status: protocol.StatusUp, Time: at.UTC(), Change: "heartbeat",
		Rule: h.name, Event: ev}, sender)
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.beats[comp]
	if b == nil && l.state[comp] == nil {
		return
	}
	if b == nil || b.rule != h.name {
		b = &beat{rule: h.name}
		l.beats[comp] = b
	}
	b.interval = h.interval
	if at.After(b.last) {
		b.last = at
	}
}

// check takes the agents' beats, marks components whose beat is missing
// DOWN, and starts the probes that are due.
func (l *Ledger) check(ctx context.Context, wg *sync.WaitGroup) {
	now := l.cfg.Now()
	l.mu.Lock()
	spec := l.spec
	l.mu.Unlock()
	if l.cfg.Agents != nil {
		agents := l.cfg.Agents()
		for _, h := range spec.heartbeats {
			if h.agent == "" {
				continue
			}
			for _, a := range agents {
				if strings.EqualFold(a.Target, h.agent) && a.Connected {
					l.beat(ctx, h, h.component.parts[0], now, protocol.ID{}, netip.Addr{})
				}
			}
		}
	}
	type lost struct {
		comp, rule string
		at         time.Time
	}
	var down []lost
	l.mu.Lock()
	for comp, b := range l.beats {
		if st := l.state[comp]; now.Sub(b.last) > b.interval && (st == nil || st.Status != protocol.StatusDown) {
			down = append(down, lost{comp, b.rule, b.last.Add(b.interval)})
		}
	}
	l.mu.Unlock()
	sort.Slice(down, func(i, j int) bool { return down[i].comp < down[j].comp })
	for _, d := range down {
		l.record(ctx, protocol.StatusRecord{Component: d.comp, Status: protocol.StatusDown, Time: d.at.UTC(),
			Change: "heartbeat-lost", Rule: d.rule}, netip.Addr{})
	}
	for _, p := range spec.probes {
		l.mu.Lock()
		due := !l.running[p.name] && !now.Before(l.nextRun[p.name])
		if due {
			l.running[p.name] = true
			l.nextRun[p.name] = now.Add(p.interval)
		}
		l.mu.Unlock()
		if !due {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.runProbe(ctx, p)
			l.mu.Lock()
			delete(l.running, p.name)
			l.mu.Unlock()
		}()
	}
}

// runProbe runs p once and records what it says.
func (l *Ledger) runProbe(ctx context.Context, p *probe) {
	if l.cfg.Probe == nil {
		return
	}
	rc, out, err := l.cfg.Probe(ctx, p.target, p.command, p.timeout)
	if ctx.Err() != nil {
		return // the region is stopping: the probe says nothing
	}
	rec := protocol.StatusRecord{Component: p.component, Time: l.cfg.Now().UTC(), Rule: p.name}
	switch {
	case errors.Is(err, ErrProbeTimeout):
		rec.Status, rec.Change, rec.Detail = protocol.StatusDown, "probe-timeout", err.Error()
	case err != nil:
		// It could not run (its target not connected, not known yet):
		// that says nothing about what it probes. The agent's heartbeat
		// says whether the target is reachable.
		l.log.WithError(err).WithFields(logrus.Fields{"probe": p.name, "target": p.target}).Debug("availability: the probe could not run")
		return
	case rc != p.upRC:
		rec.Status, rec.Change, rec.Detail = protocol.StatusDown, "probe-failed", rcDetail(rc, out)
	case p.upText != nil && !p.upText.MatchString(out):
		rec.Status, rec.Change, rec.Detail = protocol.StatusDown, "probe-failed", "output does not match: "+out
	default:
		rec.Status, rec.Change, rec.Detail = protocol.StatusUp, "probe-ok", out
	}
	l.record(ctx, rec, netip.Addr{})
}

// rcDetail is a failed probe's detail: its return code, and its output
// when it wrote any (no dangling ": " in a report's down: line).
func rcDetail(rc int, out string) string {
	if out == "" {
		return "rc " + strconv.Itoa(rc)
	}
	return "rc " + strconv.Itoa(rc) + ": " + out
}

// record stores rec if it changes its component's status, and publishes
// it. A record the store refuses is logged; the state is left as it was,
// so that the next observation tries again. sender is the key of the
// address of the event the record comes from (senderKey), zero for none:
// a new component is refused beyond MaxComponents, and beyond the
// sender's share (MaxComponentsPerSender).
//
// Records arrive in the order the ledger sees them, which is not always
// the order of their times. A rule's record older than its component's
// current status (a back-filled log, a late event) is stored as history:
// reports, which order records by time, place it, but it changes neither
// the current status nor publishes anything. A heartbeat's or a probe's
// record (an observation now) is never dated before the current status:
// a beat that arrives after its component was marked heartbeat-lost, but
// was received before, ends the outage at once rather than dating an UP
// before the DOWN.
func (l *Ledger) record(ctx context.Context, rec protocol.StatusRecord, sender netip.Addr) {
	if len(rec.Detail) > protocol.MaxStatusDetail {
		rec.Detail = strings.ToValidUTF8(rec.Detail[:protocol.MaxStatusDetail], "")
	}
	if len(rec.Change) > 64 {
		rec.Change = strings.ToValidUTF8(rec.Change[:64], "")
	}
	if len(rec.Component) > 256 || rec.Component == "" {
		l.log.WithField("rule", rec.Rule).Warn("availability: a component name over 256 bytes is not recorded")
		return
	}
	rule := rec.Rule != "" && l.isRule(rec.Rule)
	l.mu.Lock()
	st := l.state[rec.Component]
	history := false
	switch {
	case st == nil && len(l.state) >= MaxComponents:
		l.cappedLocked(rec, sender, "the ledger tracks the most components it may (%d)", MaxComponents)
		l.mu.Unlock()
		return
	case st == nil && sender.IsValid() && l.added[sender] >= l.spec.perSender:
		l.cappedLocked(rec, sender, "events from %s added the most components one sender may (%d, max-components-per-sender)",
			sender, l.spec.perSender)
		l.mu.Unlock()
		return
	case st != nil && rec.Time.Before(st.Since) && rule:
		history = true
	case st != nil && rec.Time.Before(st.Since):
		rec.Time = st.Since
	}
	if !history && st != nil && st.Status == rec.Status {
		l.mu.Unlock()
		return // a repeat: no change
	}
	r := rec
	actx, cancel := context.WithTimeout(ctx, appendTimeout)
	err := l.ledger.AppendStatus(actx, []*protocol.StatusRecord{&r})
	cancel()
	if err == nil && !history {
		if st == nil && sender.IsValid() {
			l.added[sender]++
		}
		l.state[r.Component] = &State{Component: r.Component, Status: r.Status, Since: r.Time, Change: r.Change, Rule: r.Rule}
	}
	l.mu.Unlock()
	if err != nil {
		if ctx.Err() == nil {
			l.log.WithError(err).WithFields(logrus.Fields{"component": rec.Component, "status": rec.Status}).
				Warn("availability: the status record could not be stored; the next observation tries again")
		}
		return
	}
	if l.cfg.Publish != nil && !history {
		l.cfg.Publish(ctx, r)
	}
}

// cappedLocked counts a new component refused for a cap, and logs it at
// most once every capLogEvery (a sender rotating names must not flood the
// log either).
func (l *Ledger) cappedLocked(rec protocol.StatusRecord, sender netip.Addr, format string, args ...any) {
	l.capped++
	now := l.cfg.Now()
	if now.Sub(l.capLog) < capLogEvery {
		return
	}
	f := logrus.Fields{"component": rec.Component, "rule": rec.Rule, "refused": l.capped}
	if sender.IsValid() {
		f["sender"] = sender.String()
	}
	l.log.WithFields(f).Warn("availability: a new component is not recorded: " + fmt.Sprintf(format, args...))
	l.capLog, l.capped = now, 0
}

// isRule reports whether name is one of the spec's rules (not a heartbeat
// or a probe).
func (l *Ledger) isRule(name string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.spec.rules {
		if r.name == name {
			return true
		}
	}
	return false
}
