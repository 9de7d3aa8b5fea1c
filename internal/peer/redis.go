package peer

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisOptions configure [StartRedisOpts].
type RedisOptions struct {
	// AppendOnly turns on the append-only file (appendonly yes), synced
	// every second (appendfsync everysec), so that what the server
	// acknowledged survives p.Stop, p.Kill and p.Restart: a killed server
	// keeps every write it made to the file, which the kernel holds even if
	// the process dies before the next fsync. Off, the server starts empty
	// after every restart.
	AppendOnly bool
}

// StartRedis starts redis-server on a free 127.0.0.1 port with no
// persistence (no RDB snapshots, no append-only file) and a private working
// directory, and waits until it answers PING. It returns the address to
// connect to. p.Restart brings it back on the same address after p.Stop or
// p.Kill, empty.
func StartRedis(t testing.TB) (addr string, p *Process) {
	t.Helper()
	return StartRedisOpts(t, RedisOptions{})
}

// StartRedisOpts is [StartRedis] with options. With AppendOnly,
// p.Restart brings the server back with the data it had written to its
// append-only file.
func StartRedisOpts(t testing.TB, o RedisOptions) (addr string, p *Process) {
	t.Helper()
	quietClientOnce.Do(func() { redis.SetLogger(quietClient{}) })
	path := Require(t, "redis-server")
	port := FreePort(t)
	addr = Addr(port)
	dir := t.TempDir()
	aof := "no"
	if o.AppendOnly {
		aof = "yes"
	}
	p = Start(t, Command{
		Name: "redis-server",
		Path: path,
		Args: []string{
			"--bind", Loopback,
			"--port", strconv.Itoa(port),
			"--save", "",
			"--appendonly", aof,
			"--appendfsync", "everysec",
			"--dir", dir,
			"--daemonize", "no",
			"--protected-mode", "yes",
			"--logfile", "",
		},
		Dir: dir,
		// A server loading its append-only file answers PING with
		// -LOADING, which RedisPing does not take for ready.
		Ready: func(ctx context.Context) error { return RedisPing(ctx, addr) },
	})
	return addr, p
}

// RedisPing sends PING to the Redis server at addr in RESP, by hand, and
// returns nil if it answers +PONG.
func RedisPing(ctx context.Context, addr string) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(5 * time.Second)
	}
	if err := c.SetDeadline(deadline); err != nil {
		return err
	}
	if _, err := c.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("redis PING: answered %q", line)
	}
	return nil
}

// quietClient drops go-redis's own log lines ("failed to dial after 5
// attempts"), which the tests that stop Redis provoke by the hundred and
// which go to stderr outside any test's log. The tests check the errors
// the code under test reports instead.
type quietClient struct{}

func (quietClient) Printf(context.Context, string, ...any) {}

var quietClientOnce sync.Once
