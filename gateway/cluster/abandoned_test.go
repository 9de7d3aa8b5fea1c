package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/zbridge/zbridge/commands"
	"github.com/zbridge/zbridge/gateway/cluster"
)

// notRunMsg is what a holder logs for a run its forwarder gave up on
// before it arrived.
const notRunMsg = "forwarded command not run"

// lagHook makes a client's XREADs fail while lag is set: the inbox loop
// of a region using it falls behind, as when its Redis connection stalls.
type lagHook struct {
	lag     *atomic.Bool
	refused *atomic.Int64 // XREADs failed
}

func (h lagHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h lagHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (h lagHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "xread" && h.lag.Load() {
			h.refused.Add(1)
			err := errors.New("test: inbox loop held back")
			cmd.SetErr(err)
			return err
		}
		return next(ctx, cmd)
	}
}

// behind is a region whose inbox loop the test can hold back.
type behind struct {
	*region
	lag lagHook
}

// holdBack stops the region reading its inbox, and returns once it has
// stopped: a read that began before has ended when the next one fails.
func (r behind) holdBack(t *testing.T) {
	t.Helper()
	n := r.lag.refused.Load()
	r.lag.lag.Store(true)
	waitFor(t, r.name+" stops reading its inbox", func() error {
		if r.lag.refused.Load() <= n {
			return errors.New("no read refused yet")
		}
		return nil
	})
}

func (r behind) release() { r.lag.lag.Store(false) }

// inboxEntry waits until the inbox of region to holds an entry of the type
// for the forwarded command cmd (a cancel by its fid), and returns it and
// its ID.
func inboxEntry(t *testing.T, rdb redis.UniversalClient, to, typ, cmd string) (string, entry) {
	t.Helper()
	stream := "{zbridge}:inbox:" + to
	var id string
	var found entry
	waitFor(t, fmt.Sprintf("a %s entry for %q in %s", typ, cmd, stream), func() error {
		msgs, err := rdb.XRange(t.Context(), stream, "-", "+").Result()
		if err != nil {
			return err
		}
		fid := ""
		for _, m := range msgs {
			if m.Values["type"] == "run" && m.Values["command"] == cmd {
				fid, _ = m.Values["fid"].(string)
			}
			if m.Values["type"] == typ && fid != "" && m.Values["fid"] == fid {
				id, found = m.ID, entry(m.Values)
				return nil
			}
		}
		return errors.New("none yet")
	})
	return id, found
}

// neverRuns checks that r does not run cmd within a generous window: a run
// wrongly admitted starts within milliseconds of its entry being read.
func neverRuns(t *testing.T, r *region, cmd string) {
	t.Helper()
	const window = 3 * time.Second
	for end := time.Now().Add(window); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if reqs := r.ran(cmd); len(reqs) != 0 {
			t.Fatalf("%s ran %q, which its client was told had ended: %+v", r.name, cmd, reqs)
		}
	}
}

// TestAbandonedRunNotStarted checks that a holder never starts a command
// its forwarder gave up on (the client was told it timed out or was
// cancelled), even when someone who can write to Redis, without the
// cluster key, sets its command key again, drops the forwarder's cancel or
// holds the run entry back and adds it again later.
func TestAbandonedRunNotStarted(t *testing.T) {
	rdb, _ := startRedis(t)
	hook := lagHook{lag: &atomic.Bool{}, refused: &atomic.Int64{}}
	rdbA := redis.NewClient(&redis.Options{Addr: rdb.Options().Addr, ContextTimeoutEnabled: true,
		DialTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second})
	rdbA.AddHook(hook)
	t.Cleanup(func() { rdbA.Close() })
	a := behind{newRegion(t, rdbA, "A", []cluster.Agent{linux("web1", "10.1.0.1:7022")}), hook}
	b := newRegion(t, rdb, "B", []cluster.Agent{linux("web2", "10.1.0.2:7022")})
	waitHolder(t, b, "linux:web1", "A")
	ctx := t.Context()
	web1 := mustTarget(t, "linux:web1")
	const inbox = "{zbridge}:inbox:A"

	// barrier forwards a command from B to A and waits for its end: A has
	// handled every entry of its inbox before it.
	n := 0
	barrier := func(t *testing.T) {
		t.Helper()
		n++
		cmd := "echo rc=0 barrier " + strconv.Itoa(n)
		if got := b.run(ctx, t, &commands.Request{Target: web1, Command: cmd}); got.err != nil {
			t.Fatalf("%s: %v", cmd, got.err)
		}
	}
	revive := func(t *testing.T, run entry) {
		t.Helper()
		if err := rdb.Set(ctx, "{zbridge}:command:"+run["fid"].(string), `{"revived":true}`, time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
	}
	notRun := 0
	wantNotRun := func(t *testing.T) {
		t.Helper()
		notRun++
		if got := a.hook.count(notRunMsg, "<nil>"); got != notRun {
			t.Errorf("A logged %q %d times, want %d", notRunMsg, got, notRun)
		}
		if got := a.c.RejectedEntries(); got != 0 {
			t.Errorf("RejectedEntries() = %d: a genuine entry is counted as forged", got)
		}
	}

	// The control: a command A reads late, but before its deadline, runs.
	t.Run("late but in time", func(t *testing.T) {
		const cmd = "echo rc=0 late"
		a.holdBack(t)
		ch := b.runAsync(ctx, &commands.Request{ID: "late", Target: web1, Command: cmd, Requester: "ops", Timeout: 20 * time.Second})
		inboxEntry(t, rdb, "A", "run", cmd)
		time.Sleep(cluster.DeadlineSkew + 100*time.Millisecond) // later than the skew, well before the deadline
		a.release()
		if got := await(t, ch); got.err != nil || !outputEqual(got.out, echoOutput("A", cmd)) {
			t.Fatalf("Run: %v, output\n%s", got.err, fmtOutput(got.out))
		}
		if reqs := a.ran(cmd); len(reqs) != 1 || reqs[0].Requester != "ops" {
			t.Fatalf("A ran %+v, want it once for ops", reqs)
		}
	})

	// The forwarder timed out while A was behind and sent a cancel; the
	// cancel is dropped and the command key set again before A catches up.
	t.Run("timed out", func(t *testing.T) {
		const cmd = "echo rc=0 timed out"
		a.holdBack(t)
		got := b.run(ctx, t, &commands.Request{ID: "timed-out", Target: web1, Command: cmd, Requester: "ops", Timeout: time.Second})
		wantError(t, got.err, commands.CodeTimeout)
		cancelID, _ := inboxEntry(t, rdb, "A", "cancel", cmd)
		if err := rdb.XDel(ctx, inbox, cancelID).Err(); err != nil {
			t.Fatal(err)
		}
		_, run := inboxEntry(t, rdb, "A", "run", cmd)
		revive(t, run)
		a.release()
		barrier(t)
		neverRuns(t, a.region, cmd)
		wantNotRun(t)
	})

	// The client cancelled; the run entry was held back from A (deleted)
	// and is added again, with the command key, once A has read the cancel.
	t.Run("cancelled, run held back", func(t *testing.T) {
		const cmd = "echo rc=0 held back"
		a.holdBack(t)
		bctx, cancel := context.WithCancel(ctx)
		defer cancel()
		ch := b.runAsync(bctx, &commands.Request{ID: "held-back", Target: web1, Command: cmd, Requester: "ops", Timeout: time.Minute})
		runID, run := inboxEntry(t, rdb, "A", "run", cmd)
		if err := rdb.XDel(ctx, inbox, runID).Err(); err != nil {
			t.Fatal(err)
		}
		cancel()
		wantError(t, await(t, ch).err, commands.CodeCancelled)
		a.release()
		barrier(t) // A has read the cancel
		revive(t, run)
		xadd(t, rdb, inbox, run)
		barrier(t)
		neverRuns(t, a.region, cmd)
		wantNotRun(t)
	})

	// The client cancelled while A was behind: A reads the run and its
	// cancel together, the command key set again.
	t.Run("cancelled, read together", func(t *testing.T) {
		const cmd = "echo rc=0 read together"
		a.holdBack(t)
		bctx, cancel := context.WithCancel(ctx)
		defer cancel()
		ch := b.runAsync(bctx, &commands.Request{ID: "together", Target: web1, Command: cmd, Requester: "ops", Timeout: time.Minute})
		_, run := inboxEntry(t, rdb, "A", "run", cmd)
		cancel()
		wantError(t, await(t, ch).err, commands.CodeCancelled)
		inboxEntry(t, rdb, "A", "cancel", cmd)
		revive(t, run)
		a.release()
		barrier(t)
		neverRuns(t, a.region, cmd)
		wantNotRun(t)
	})
}

// TestRunStopsAfterDeadline checks that a holder stops a run once its
// forwarder has stopped waiting for it (its signed deadline, the 2s the
// forwarder waits past it, and DeadlineSkew), even when nobody cancels it
// and its command key stays: as when a run started late, its cancel was
// dropped and the key set again.
func TestRunStopsAfterDeadline(t *testing.T) {
	rdb, _ := startRedis(t)
	a, _ := twoRegions(t, rdb)
	const inbox = "{zbridge}:inbox:A"
	instA, instB := instanceOf(t, rdb, "A"), instanceOf(t, rdb, "B")
	fid := "B." + instB + ".900"
	if err := rdb.Set(t.Context(), "{zbridge}:command:"+fid, `{"fid":"`+fid+`"}`, 5*time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	deadline := time.UnixMilli(time.Now().Add(time.Second).UnixMilli())
	// The run's own timeout is a minute: only the deadline can stop it
	// within the test's wait.
	xadd(t, rdb, inbox, entry{"type": "run", "fid": fid, "id": "late-block", "target": "linux:web1", "command": "block",
		"timeout": "60000", "deadline": strconv.FormatInt(deadline.UnixMilli(), 10), "requester": "ops", "via": "B",
		"instance": instB, "to": instA, "sent": msNow(0)}.signed(testKey, "inbox", inbox))
	if id := waitID(t, a.exec.started, "A's command started"); id != "late-block" {
		t.Fatalf("started %s", id)
	}
	waitID(t, a.exec.ended, "A's command stopped")
	if stopAt := deadline.Add(2*time.Second + cluster.DeadlineSkew); time.Now().Before(stopAt) {
		t.Errorf("A stopped the command %v before its forwarder gave up", time.Until(stopAt))
	}
}
