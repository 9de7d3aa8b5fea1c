package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/commands"
)

// executor forwards the requests for targets another region holds.
type executor struct {
	c     *Cluster
	kind  commands.Kind
	local commands.Executor
	has   func(commands.Target) bool
}

var _ commands.Executor = executor{}

// Executor returns the executor for targets of the kind: it runs a request
// with local when has(target) is true, when the request was forwarded here
// (req.Via is set), or when no live region holds the target; otherwise it
// forwards the request to the region that holds it (see the package doc).
// A nil has holds nothing.
// When Redis cannot be reached, a request that is not local fails with
// commands.CodeFailed within Config.Timeout.
func (c *Cluster) Executor(kind commands.Kind, local commands.Executor, has func(commands.Target) bool) commands.Executor {
	return executor{c: c, kind: kind, local: local, has: has}
}

// Run implements commands.Executor.
func (e executor) Run(ctx context.Context, req *commands.Request, out func(commands.Output)) (commands.Result, error) {
	if req.Via != "" || req.Target.Kind != e.kind || e.kind == commands.KindRegion || e.has != nil && e.has(req.Target) {
		return e.local.Run(ctx, req, out)
	}
	lctx, cancel := e.c.opContext(ctx)
	holder, ok, err := e.c.locate(lctx, req.Target)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return commands.Result{}, ctx.Err()
		}
		return commands.Result{}, unavailable(err)
	}
	if !ok || holder.Name == e.c.cfg.Region {
		return e.local.Run(ctx, req, out)
	}
	return e.c.forward(ctx, holder, req, out)
}

func unavailable(err error) *commands.Error {
	return &commands.Error{Code: commands.CodeFailed, Message: "cross-region routing unavailable: " + err.Error()}
}

// commandRecord is the JSON of {P}:command:FID.
type commandRecord struct {
	FID       string    `json:"fid"`
	ID        string    `json:"id"`
	Target    string    `json:"target"`
	Command   string    `json:"command"`
	Requester string    `json:"requester,omitempty"`
	From      string    `json:"from"`
	To        string    `json:"to"`
	Started   time.Time `json:"started"`
	Deadline  time.Time `json:"deadline,omitzero"`
}

// forward sends req to the holder's inbox and relays what comes back.
func (c *Cluster) forward(ctx context.Context, holder Region, req *commands.Request, out func(commands.Output)) (commands.Result, error) {
	if !c.enter() {
		return commands.Result{}, &commands.Error{Code: commands.CodeFailed,
			Message: fmt.Sprintf("cross-region routing is stopped: region %s is shutting down", c.cfg.Region)}
	}
	defer c.wg.Done()
	fid := c.cfg.Region + "." + c.instance + "." + strconv.FormatUint(c.seq.Add(1), 10)
	now := time.Now()
	deadline, _ := ctx.Deadline()
	life := req.Timeout
	if !deadline.IsZero() {
		life = max(life, deadline.Sub(now))
	}
	if life <= 0 {
		life = time.Hour
	}
	life += commandMargin
	rec, _ := json.Marshal(commandRecord{FID: fid, ID: req.ID, Target: req.Target.String(), Command: req.Command,
		Requester: req.Requester, From: c.cfg.Region, To: holder.Name, Started: now, Deadline: deadline})
	msg := runMsg{FID: fid, ID: req.ID, Target: req.Target.String(), Command: req.Command, Timeout: req.Timeout,
		Deadline: deadline, Requester: req.Requester, From: c.cfg.Region, FromInstance: c.instance,
		ToInstance: holder.Instance, Sent: now}
	inbox := c.keys.inbox(holder.Name)

	sctx, cancel := c.opContext(context.WithoutCancel(ctx))
	// No DEL of the output stream first: fid is new (this process's
	// instance and count), and a DEL sent again by a go-redis retry could
	// remove output the holder had already written.
	pipe := c.rdb.Pipeline()
	pipe.Set(sctx, c.keys.command(fid), rec, life)
	pipe.XAdd(sctx, &redis.XAddArgs{Stream: inbox, MaxLen: inboxMaxLen, Approx: true,
		Values: c.signer.sign(domainInbox, inbox, nil, msg.values())})
	_, err := pipe.Exec(sctx)
	cancel()
	c.note(err)
	if err != nil {
		return commands.Result{}, unavailable(fmt.Errorf("sending the command to region %s: %w", holder.Name, err))
	}
	c.forwardedOut.Add(1)
	log := c.log.WithFields(logrus.Fields{"id": req.ID, "target": req.Target.String(), "to": holder.Name, "fid": fid})
	log.Debug("command forwarded")
	defer func() {
		dctx, cancel := c.opContext(context.Background())
		err := c.rdb.Del(dctx, c.keys.command(fid), c.keys.output(fid)).Err()
		cancel()
		c.note(err)
		if err != nil {
			// The holder would run on until the command's timeout once
			// Redis is back with the key (a Sentinel failover keeps it).
			c.abandon(fid, now.Add(life))
		}
	}()

	// A cancelled command is cancelled at the holder at once; the holder's
	// answer then wakes the read below.
	cancelled := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(cancelled)
		if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			c.sendCancel(holder.Name, fid)
		}
	})
	defer func() {
		if !stop() {
			<-cancelled
		}
	}()
	res, err := c.await(ctx, holder, fid, req.ID, out)
	if err != nil {
		log.WithError(err).Debug("forwarded command ended")
	}
	return res, err
}

// sendCancel tells the holder to stop a forwarded command.
func (c *Cluster) sendCancel(holder, fid string) {
	ctx, cancel := c.opContext(context.Background())
	defer cancel()
	inbox := c.keys.inbox(holder)
	msg := cancelMsg{FID: fid, From: c.cfg.Region, Sent: time.Now()}
	err := c.rdb.XAdd(ctx, &redis.XAddArgs{Stream: inbox, MaxLen: inboxMaxLen, Approx: true,
		Values: c.signer.sign(domainInbox, inbox, nil, msg.values())}).Err()
	c.note(err)
	if err != nil {
		c.log.WithError(err).WithFields(logrus.Fields{"fid": fid, "to": holder}).Warn("could not cancel a forwarded command")
	}
}

// await reads the output stream of a forwarded command until its end. It
// skips the entries that are not signed by the holder for this command
// (see the package doc, "Signed entries"); id is the client's command ID.
func (c *Cluster) await(ctx context.Context, holder Region, fid, id string, out func(commands.Output)) (commands.Result, error) {
	key := c.keys.output(fid)
	bind := []string{holder.Name, id}
	last, want := "0-0", uint64(1)
	checkEvery := c.cfg.TTL / 3
	nextCheck := time.Now().Add(checkEvery)
	var graceEnd, failingSince time.Time
	fail := func(format string, args ...any) (commands.Result, error) {
		c.sendCancel(holder.Name, fid)
		return commands.Result{}, &commands.Error{Code: commands.CodeFailed, Message: fmt.Sprintf(format, args...)}
	}
	for {
		now := time.Now()
		if err := ctx.Err(); err != nil {
			if !errors.Is(err, context.DeadlineExceeded) {
				return commands.Result{}, err // cancelled at the holder by the AfterFunc
			}
			if graceEnd.IsZero() {
				graceEnd = now.Add(deadlineGrace)
			} else if now.After(graceEnd) {
				c.sendCancel(holder.Name, fid)
				return commands.Result{}, err
			}
		}
		if c.ctx.Err() != nil {
			return fail("region %s is shutting down", c.cfg.Region)
		}
		var err error
		if now.After(nextCheck) {
			nextCheck = now.Add(checkEvery)
			var r Region
			var ok bool
			rctx, cancel := c.opContext(context.Background())
			r, ok, err = c.region(rctx, holder.Name)
			cancel()
			switch {
			case err == nil && !ok:
				return fail("region %s stopped announcing while the command was in flight", holder.Name)
			case err == nil && r.Instance != holder.Instance:
				return fail("region %s restarted while the command was in flight", holder.Name)
			}
		}
		var streams []redis.XStream
		if err == nil {
			rctx, cancel := context.WithTimeout(context.Background(), readBlock+c.cfg.Timeout)
			streams, err = c.rdb.XRead(rctx, &redis.XReadArgs{Streams: []string{key, last}, Count: 256, Block: readBlock}).Result()
			cancel()
			c.note(err)
			if errors.Is(err, redis.Nil) {
				err = nil
			}
		}
		if err != nil {
			if failingSince.IsZero() {
				failingSince = now
			} else if now.Sub(failingSince) > c.cfg.Timeout {
				return fail("cross-region routing unavailable: waiting for region %s: %v", holder.Name, err)
			}
			c.pause(retryPause)
			continue
		}
		failingSince = time.Time{}
		for _, s := range streams {
			for _, m := range s.Messages {
				last = m.ID
				if err := c.signer.verify(domainOut, key, bind, m.Values); err != nil {
					c.reject(key, m, err)
					continue
				}
				e, err := decodeOut(m.Values)
				if err != nil {
					return fail("region %s answered with a bad entry: %v", holder.Name, err)
				}
				switch {
				case e.N < want:
					continue // written twice by a retry
				case e.N > want:
					return fail("output from region %s was lost (entry %d, want %d)", holder.Name, e.N, want)
				}
				want++
				switch e.Type {
				case typeOut:
					out(e.Out)
				case typeResult:
					return e.Res, nil
				case typeError:
					if err := ctx.Err(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
						// The holder's answer to our own cancel: the local
						// router says why (client gone or cancelled by ID).
						return e.Res, err
					}
					return e.Res, e.Err
				}
			}
		}
	}
}
