package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/commands"
)

// inboxLoop reads the region's inbox from the last entry present when it
// started, starting a run for each run entry and cancelling runs for
// cancel entries.
func (c *Cluster) inboxLoop() {
	defer c.wg.Done()
	key := c.keys.inbox(c.cfg.Region)
	last := ""
	for c.ctx.Err() == nil {
		if last == "" {
			ctx, cancel := c.opContext(c.ctx)
			msgs, err := c.rdb.XRevRangeN(ctx, key, "+", "-", 1).Result()
			cancel()
			c.note(err)
			if err != nil {
				c.pause(retryPause)
				continue
			}
			last = "0-0"
			if len(msgs) > 0 {
				last = msgs[0].ID
			}
			close(c.inboxReady)
			c.Touch() // announce now that requests will be read
		}
		ctx, cancel := context.WithTimeout(c.ctx, readBlock+c.cfg.Timeout)
		streams, err := c.rdb.XRead(ctx, &redis.XReadArgs{Streams: []string{key, last}, Count: 100, Block: readBlock}).Result()
		cancel()
		if c.ctx.Err() != nil {
			return
		}
		c.note(err)
		if err != nil {
			if !errors.Is(err, redis.Nil) {
				c.pause(retryPause)
			}
			continue
		}
		for _, s := range streams {
			if len(s.Messages) == 0 {
				continue
			}
			// The cancels first: a run whose cancel came in the same read
			// (this region was behind) is then never started.
			for _, m := range s.Messages {
				if m.Values["type"] == typeCancel {
					c.handleInbox(m)
				}
			}
			for _, m := range s.Messages {
				if m.Values["type"] != typeCancel {
					c.handleInbox(m)
				}
			}
			last = s.Messages[len(s.Messages)-1].ID
		}
	}
}

// handleInbox acts on one inbox entry, if it verifies: see the package
// doc, "Signed entries".
func (c *Cluster) handleInbox(m redis.XMessage) {
	key := c.keys.inbox(c.cfg.Region)
	if err := c.signer.verify(domainInbox, key, nil, m.Values); err != nil {
		c.reject(key, m, err)
		return
	}
	e, err := decodeInbox(m.Values)
	if err != nil {
		// Signed with the key, so from a region: one of another version?
		c.log.WithError(err).WithField("entry", m.ID).Warn("inbox entry ignored")
		return
	}
	now := time.Now()
	if err := c.admit(e, now); err != nil {
		if errors.Is(err, errAbandoned) {
			c.log.WithError(err).WithFields(logrus.Fields{"id": e.Run.ID, "fid": e.FID, "from": e.Run.From, "target": e.Run.Target}).
				Info("forwarded command not run")
			return
		}
		c.reject(key, m, err)
		return
	}
	if e.Type == typeCancel {
		c.mu.Lock()
		r, ok := c.runs[e.FID]
		c.mu.Unlock()
		switch {
		case !ok:
			if _, seen := c.accepted[e.FID]; !seen {
				// Not received yet (this region is behind, or the run
				// entry was held back): it must not start when it comes.
				c.rememberCancel(e.Cancel, now)
			}
		case r.from != e.Cancel.From:
			c.reject(key, m, fmt.Errorf("%w: region %s cancels a command region %s forwarded", ErrRejected, e.Cancel.From, r.from))
		default:
			r.cancel(commands.ErrCancelled)
		}
		return
	}
	ctx, cancel := context.WithCancelCause(c.ctx)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		cancel(nil)
		return
	}
	if _, dup := c.runs[e.FID]; dup {
		c.mu.Unlock()
		cancel(nil)
		return
	}
	c.runs[e.FID] = inRun{cancel: cancel, from: e.Run.From}
	c.wg.Add(1)
	c.mu.Unlock()
	go c.serve(ctx, cancel, e.Run)
}

// inRun is a run forwarded here.
type inRun struct {
	cancel context.CancelCauseFunc
	from   string // the forwarding region, the only one that may cancel it
}

// admit checks a verified inbox entry against replay: it must come from
// another region, have been sent within MaxEntryAge of now, and a run must
// be for this process and not have been admitted before. A run whose
// forwarder gave up on it (its deadline passed more than DeadlineSkew ago,
// or its forwarder's cancel came first) is refused with an error wrapping
// errAbandoned: the unsigned command key, which anyone who can write to
// Redis can set again, is not evidence that the forwarder still waits. It
// records the runs it admits. Called by the inbox loop only.
func (c *Cluster) admit(e inboxEntry, now time.Time) error {
	if e.from() == c.cfg.Region {
		return fmt.Errorf("%w: it claims to come from this region", ErrRejected)
	}
	if d := now.Sub(e.sent()); d > MaxEntryAge || d < -MaxEntryAge {
		when := d.Round(time.Millisecond).String() + " ago"
		if d < 0 {
			when = (-d).Round(time.Millisecond).String() + " in the future"
		}
		return fmt.Errorf("%w: sent %s by its signed time, more than %v from now: replayed, or the regions' clocks disagree",
			ErrRejected, when, MaxEntryAge)
	}
	if e.Type != typeRun {
		return nil
	}
	if e.Run.ToInstance != c.instance {
		return fmt.Errorf("%w: sent to another process of this region (instance %q)", ErrRejected, clip(e.Run.ToInstance, maxLoggedField))
	}
	if _, seen := c.accepted[e.FID]; seen {
		// Or go-redis sent the XADD again after a network error: either
		// way, the command was received once and runs once.
		return fmt.Errorf("%w: a second copy of a command already received (a replay)", ErrRejected)
	}
	if dl := e.Run.Deadline; !dl.IsZero() && now.Sub(dl) > DeadlineSkew {
		return fmt.Errorf("%w: its deadline passed %v ago", errAbandoned, now.Sub(dl).Round(time.Millisecond))
	}
	if cm, ok := c.cancelled[e.FID]; ok && cm.From == e.Run.From {
		return fmt.Errorf("%w: region %s cancelled it before it arrived", errAbandoned, cm.From)
	}
	if now.Sub(c.lastPruned) > MaxEntryAge {
		c.prune(now)
	}
	c.accepted[e.FID] = e.Run.Sent
	return nil
}

// prune forgets the accepted runs and remembered cancels sent more than
// MaxEntryAge ago. Called by the inbox loop only.
func (c *Cluster) prune(now time.Time) {
	for fid, sent := range c.accepted {
		if now.Sub(sent) > MaxEntryAge {
			delete(c.accepted, fid)
		}
	}
	for fid, m := range c.cancelled {
		if now.Sub(m.Sent) > MaxEntryAge {
			delete(c.cancelled, fid)
		}
	}
	c.lastPruned = now
}

// rememberCancel records a cancel for a run this process has not received,
// so that admit refuses the run if it comes later. At most maxCancelled are
// kept: when full, the oldest is forgotten. Called by the inbox loop only.
func (c *Cluster) rememberCancel(m cancelMsg, now time.Time) {
	if len(c.cancelled) >= maxCancelled {
		c.prune(now)
	}
	if len(c.cancelled) >= maxCancelled {
		oldest := ""
		for fid, o := range c.cancelled {
			if oldest == "" || o.Sent.Before(c.cancelled[oldest].Sent) {
				oldest = fid
			}
		}
		delete(c.cancelled, oldest)
	}
	c.cancelled[m.FID] = m
}

// reject counts and logs a stream entry refused, logging at most one every
// rejectLogEvery, with the number not logged since the last one (unlogged).
// The fields logged are the entry's claims, not established facts, and as
// long as whoever wrote them chose: each is cut to maxLoggedField bytes.
func (c *Cluster) reject(stream string, m redis.XMessage, why error) {
	c.rejected.Add(1)
	unlogged, ok := c.rejectLog.allow(time.Now())
	if !ok {
		return
	}
	f := fields(m.Values)
	log := c.log.WithError(why).WithFields(logrus.Fields{"stream": stream, "entry": clip(m.ID, maxLoggedField),
		"type": clip(f.str("type"), maxLoggedField)})
	for _, name := range []string{"fid", "via", "target", "command", "requester", "n"} {
		if v := f.str(name); v != "" {
			log = log.WithField(name, clip(v, maxLoggedField))
		}
	}
	if unlogged > 0 {
		log = log.WithField("unlogged", unlogged)
	}
	log.Warn("stream entry refused: it is not a genuine entry of a region of the cluster")
}

// maxLoggedField bounds each field of a refused entry that is logged.
const maxLoggedField = 200

// rejectLogEvery is how often a refused entry is logged at most.
const rejectLogEvery = time.Minute

// clip returns s if it has at most n bytes, else its first n bytes or
// fewer, cut at a rune boundary, and its length.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && i > n-(utf8.UTFMax-1) && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "… (" + strconv.Itoa(len(s)) + " bytes)"
}

// logLimiter lets one log line through every interval at most, and counts
// those it held back.
type logLimiter struct {
	every time.Duration

	mu   sync.Mutex // guards the following fields
	last time.Time  // when a line was last let through; zero: never
	held uint64     // lines held back since
}

// allow reports whether a line may be logged at now and, if so, how many
// were held back since the last one.
func (l *logLimiter) allow(now time.Time) (held uint64, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.IsZero() && now.Sub(l.last) < l.every {
		l.held++
		return 0, false
	}
	held, l.last, l.held = l.held, now, 0
	return held, true
}

// serve runs a forwarded request and writes its output and end to the
// output stream.
func (c *Cluster) serve(ctx context.Context, cancel context.CancelCauseFunc, m runMsg) {
	defer c.wg.Done()
	defer func() {
		cancel(nil)
		c.mu.Lock()
		delete(c.runs, m.FID)
		c.mu.Unlock()
	}()
	log := c.log.WithFields(logrus.Fields{"id": m.ID, "from": m.From, "target": m.Target})

	// Run nothing for a forwarder that stopped waiting, or when the
	// output could not be delivered anyway. The command key is only ever a
	// reason to stop: anyone who can write to Redis can set it again, so
	// its presence says nothing (admit checked the signed deadline and the
	// cancels instead).
	octx, ocancel := c.opContext(ctx)
	n, err := c.rdb.Exists(octx, c.keys.command(m.FID)).Result()
	ocancel()
	c.note(err)
	if err == nil && n == 0 {
		log.Debug("forwarded command dropped: its forwarder no longer waits for it")
		return
	}
	if err != nil {
		// The forwarder may well be waiting: tell it, rather than leave
		// it waiting out the command's timeout. The writer retries for
		// Timeout; if Redis stays down, the forwarder fails by itself.
		msg := fmt.Sprintf("cross-region routing unavailable: region %s could not start the command: %v", c.cfg.Region, err)
		if errors.Is(context.Cause(ctx), errClosing) {
			msg = fmt.Sprintf("region %s shut down before the command could run", c.cfg.Region)
		}
		log.WithError(err).Debug("forwarded command not run: checking its forwarder failed")
		w := c.newWriter(m.FID, m.ID, commandMargin+m.Timeout, cancel)
		w.end(commands.Result{}, &commands.Error{Code: commands.CodeFailed, Message: msg})
		w.wait()
		return
	}
	c.forwardedIn.Add(1)
	ttl := commandMargin
	if m.Timeout > 0 {
		ttl += m.Timeout
		// A backstop; the Router's own timeout ends the run before it.
		var stop context.CancelFunc
		ctx, stop = context.WithTimeout(ctx, m.Timeout+commandMargin)
		defer stop()
	}
	if !m.Deadline.IsZero() {
		// The forwarder stops waiting deadlineGrace after its deadline:
		// the run stops then too (with DeadlineSkew for the clocks), even
		// if its cancel was lost and its command key kept. The Router's
		// own timeout, started a little after the forwarder's, ends it
		// well before, unless the run started late.
		var stop context.CancelFunc
		ctx, stop = context.WithDeadline(ctx, m.Deadline.Add(deadlineGrace+DeadlineSkew))
		defer stop()
	}
	watched := make(chan struct{})
	go func() { // waited for below
		defer close(watched)
		c.watchForwarder(ctx, cancel, m, log)
	}()
	w := c.newWriter(m.FID, m.ID, ttl, cancel)

	var res commands.Result
	tgt, err := commands.ParseTarget(m.Target)
	if err != nil {
		err = &commands.Error{Code: commands.CodeBadRequest, Message: err.Error()}
	} else {
		log.Debug("running a command forwarded from another region")
		req := &commands.Request{ID: m.ID, Target: tgt, Command: m.Command, Timeout: m.Timeout,
			Requester: m.Requester, Via: m.From}
		res, err = c.cfg.Run(ctx, req, w.out)
	}
	if err != nil && errors.Is(context.Cause(ctx), errClosing) {
		err = &commands.Error{Code: commands.CodeFailed,
			Message: fmt.Sprintf("region %s shut down while the command was running", c.cfg.Region)}
	}
	w.end(res, err)
	w.wait()
	cancel(nil)
	<-watched
}

// watchForwarder stops a forwarded run, every TTL/3, when nobody waits for
// its output any more: the forwarder deleted the command key, its region
// stopped announcing or restarted, or Redis has failed for longer than
// Timeout (the forwarder gives up then too). It returns when ctx ends.
func (c *Cluster) watchForwarder(ctx context.Context, stop context.CancelCauseFunc, m runMsg, log logrus.FieldLogger) {
	t := time.NewTicker(c.cfg.TTL / 3)
	defer t.Stop()
	var failingSince time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		octx, cancel := c.opContext(ctx)
		pipe := c.rdb.Pipeline()
		exists := pipe.Exists(octx, c.keys.command(m.FID))
		get := pipe.Get(octx, c.keys.region(m.From))
		_, err := pipe.Exec(octx)
		cancel()
		if errors.Is(err, redis.Nil) {
			err = nil
		}
		if ctx.Err() != nil {
			return
		}
		c.note(err)
		var why error
		switch {
		case err != nil:
			if failingSince.IsZero() {
				failingSince = time.Now()
			} else if time.Since(failingSince) > c.cfg.Timeout {
				why = fmt.Errorf("%w: %w", errForwarderLost, err)
			}
		case exists.Val() == 0:
			why = fmt.Errorf("%w: region %s no longer waits for it", errForwarderLost, m.From)
		case errors.Is(get.Err(), redis.Nil):
			why = fmt.Errorf("%w: region %s stopped announcing", errForwarderLost, m.From)
		default:
			failingSince = time.Time{}
			var r Region
			if json.Unmarshal([]byte(get.Val()), &r) == nil && m.FromInstance != "" && r.Instance != m.FromInstance {
				why = fmt.Errorf("%w: region %s restarted", errForwarderLost, m.From)
			}
		}
		if why != nil {
			log.WithError(why).Info("stopping a forwarded command")
			stop(why)
			return
		}
	}
}

// writer writes a run's output stream from a goroutine of its own, in
// pipelines, so that the executor is not held up by each round trip.
type writer struct {
	c    *Cluster
	key  string
	id   string // the client's command ID, which the entries' MACs bind
	ttl  time.Duration
	stop context.CancelCauseFunc // stops the run when output cannot be written

	n    uint64        // last sequence number given; used by out and end only
	ch   chan []string // entries to write
	dead chan struct{} // closed when the writer gave up
	done chan struct{} // closed when the writer goroutine has returned
}

func (c *Cluster) newWriter(fid, id string, ttl time.Duration, stop context.CancelCauseFunc) *writer {
	w := &writer{c: c, key: c.keys.output(fid), id: id, ttl: ttl, stop: stop,
		ch: make(chan []string, 256), dead: make(chan struct{}), done: make(chan struct{})}
	go w.loop() // waited for by serve, through wait
	return w
}

func (w *writer) out(o commands.Output) {
	w.n++
	w.send(outEntry{N: w.n, Type: typeOut, Out: o})
}

// end writes the run's end and closes the stream of entries.
func (w *writer) end(res commands.Result, err error) {
	w.n++
	e := outEntry{N: w.n, Type: typeResult, Res: res}
	if err != nil {
		var ce *commands.Error
		if !errors.As(err, &ce) {
			ce = &commands.Error{Code: commands.CodeFailed, Message: err.Error()}
		}
		e.Type, e.Err = typeError, ce
	}
	w.send(e)
	close(w.ch)
}

func (w *writer) send(e outEntry) {
	select {
	case <-w.dead: // nobody will read it
		return
	default:
	}
	v := w.c.signer.sign(domainOut, w.key, []string{w.c.cfg.Region, w.id}, e.values())
	select {
	case w.ch <- v:
	case <-w.dead:
	}
}

// wait waits for the writer goroutine, after end.
func (w *writer) wait() { <-w.done }

func (w *writer) loop() {
	defer close(w.done)
	for v := range w.ch {
		batch := [][]string{v}
	drain:
		for len(batch) < 64 {
			select {
			case v, ok := <-w.ch:
				if !ok {
					break drain
				}
				batch = append(batch, v)
			default:
				break drain
			}
		}
		if !w.write(batch) {
			close(w.dead)
			w.stop(errOutputLost)
			for range w.ch {
			}
			return
		}
	}
}

// write adds the entries, retrying for up to the cluster's Timeout. A
// retried XADD may add an entry twice; the reader skips it by its number.
func (w *writer) write(batch [][]string) bool {
	start := time.Now()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), w.c.cfg.Timeout)
		pipe := w.c.rdb.Pipeline()
		for _, v := range batch {
			pipe.XAdd(ctx, &redis.XAddArgs{Stream: w.key, Values: v})
		}
		pipe.Expire(ctx, w.key, w.ttl)
		_, err := pipe.Exec(ctx)
		cancel()
		w.c.note(err)
		if err == nil {
			return true
		}
		if time.Since(start) > w.c.cfg.Timeout {
			w.c.log.WithError(err).WithField("stream", w.key).Warn("output of a forwarded command could not be written: stopping it")
			return false
		}
		time.Sleep(retryPause)
	}
}
