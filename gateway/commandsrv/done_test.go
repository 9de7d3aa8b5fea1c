package commandsrv_test

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/zbridge/zbridge/commands"
	"github.com/zbridge/zbridge/gateway/commandsrv"
)

// TestDone: Config.Done is told of every command handed to the Guard, run
// or refused by it, with its time and error, after the reply; commands
// answered before the Guard are not.
func TestDone(t *testing.T) {
	var mu sync.Mutex
	var done []string
	took := map[string]time.Duration{}
	g := &recordingGuard{}
	start := time.Now()
	ts := startServer(t, commandsrv.Config{Guard: g, Done: func(req *commands.Request, d time.Duration, err error) {
		outcome := "ok"
		var ce *commands.Error
		if errors.As(err, &ce) {
			outcome = ce.Code
		} else if err != nil {
			outcome = err.Error()
		}
		mu.Lock()
		line := fmt.Sprintf("%s %s %s", req.Target.Kind, req.Command, outcome)
		done = append(done, line)
		took[line] = d
		mu.Unlock()
	}})
	c := ts.logon(t)
	for _, tc := range []struct{ id, target, command string }{
		{"a", "linux:local", "sleep 0.05"},
		{"b", "linux:local", "echo forbidden"},
		{"c", "mvs:SYS1", "D A"},
		{"d", "linux:local", "exit 3"},
	} {
		c.reply(c.command(tc.id, tc.target, tc.command))
	}
	// Done runs after each reply is sent, so a command's call may come
	// after the next command's: the calls are compared as a set.
	want := []string{"linux echo forbidden not-permitted", "linux exit 3 ok", "linux sleep 0.05 ok"}
	waitFor(t, "Done's calls", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Equal(slices.Sorted(slices.Values(done)), want)
	})
	mu.Lock()
	defer mu.Unlock()
	if d := took["linux sleep 0.05 ok"]; d < 50*time.Millisecond || d > time.Since(start) {
		t.Errorf("sleep 0.05 took %v", d)
	}
}
