package cluster_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/zbridge/zbridge/commands"
	"github.com/zbridge/zbridge/gateway/cluster"
)

// failHook fails the next n commands whose first two words start with
// name and key (lower case), without sending them.
type failHook struct {
	name, key string
	n         atomic.Int32
}

func (h *failHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *failHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (h *failHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		args := cmd.Args()
		if len(args) >= 2 && strings.ToLower(cmd.Name()) == h.name {
			if k, _ := args[1].(string); strings.Contains(k, h.key) && h.n.Add(-1) >= 0 {
				err := errors.New("injected failure")
				cmd.SetErr(err)
				return err
			}
		}
		return next(ctx, cmd)
	}
}

// TestRunCheckFails checks that a holder that cannot tell whether the
// forwarder still waits (a Redis error on the command key) answers the
// forwarder rather than dropping the request: the forwarder would
// otherwise wait out the command's whole timeout for nothing.
func TestRunCheckFails(t *testing.T) {
	rdb, _ := startRedis(t)
	hook := &failHook{name: "exists", key: ":command:"}
	rdbA := redis.NewClient(&redis.Options{Addr: rdb.Options().Addr, ContextTimeoutEnabled: true,
		DialTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second})
	rdbA.AddHook(hook)
	t.Cleanup(func() { rdbA.Close() })
	newRegion(t, rdbA, "A", []cluster.Agent{linux("web1", "10.1.0.1:7022")})
	b := newRegion(t, rdb, "B", nil)
	waitHolder(t, b, "linux:web1", "A")

	hook.n.Store(1)
	// Waited out, the timeout would end the test's wait first; the
	// failure's message says why the command did not run.
	got := b.run(t.Context(), t, &commands.Request{Target: mustTarget(t, "linux:web1"), Command: "echo rc=0", Timeout: 10 * time.Minute})
	ce := wantError(t, got.err, commands.CodeFailed)
	if !strings.Contains(ce.Message, "region A could not start the command") {
		t.Errorf("message %q", ce.Message)
	}
}
