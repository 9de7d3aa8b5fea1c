package peer

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"
)

// StartRedis starts redis-server on a free 127.0.0.1 port with no
// persistence (no RDB snapshots, no append-only file) and a private working
// directory, and waits until it answers PING. It returns the address to
// connect to. p.Restart brings it back on the same address after p.Stop or
// p.Kill, empty.
func StartRedis(t testing.TB) (addr string, p *Process) {
	t.Helper()
	path := Require(t, "redis-server")
	port := FreePort(t)
	addr = Addr(port)
	dir := t.TempDir()
	p = Start(t, Command{
		Name: "redis-server",
		Path: path,
		Args: []string{
			"--bind", Loopback,
			"--port", strconv.Itoa(port),
			"--save", "",
			"--appendonly", "no",
			"--dir", dir,
			"--daemonize", "no",
			"--protected-mode", "yes",
			"--logfile", "",
		},
		Dir:   dir,
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
