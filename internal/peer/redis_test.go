package peer

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// redisDo sends one command to the Redis server at addr and returns the
// first line of the reply.
func redisDo(t *testing.T, addr string, args ...string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(line, "$") && line != "$-1\r\n" {
		if line, err = r.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
	}
	return strings.TrimSuffix(line, "\r\n")
}

// TestRedisAppendOnly: with AppendOnly the data survives a kill and a
// restart; without, the server comes back empty.
func TestRedisAppendOnly(t *testing.T) {
	for _, aof := range []bool{true, false} {
		t.Run(fmt.Sprint("appendonly=", aof), func(t *testing.T) {
			addr, p := StartRedisOpts(t, RedisOptions{AppendOnly: aof})
			if got := redisDo(t, addr, "SET", "k", "v"); got != "+OK" {
				t.Fatalf("SET: %q", got)
			}
			p.Kill()
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			if RedisPing(ctx, addr) == nil {
				t.Fatal("PING answered after Kill")
			}
			p.Restart()
			want := "v"
			if !aof {
				want = "$-1"
			}
			if got := redisDo(t, addr, "GET", "k"); got != want {
				t.Fatalf("GET after kill and restart = %q, want %q", got, want)
			}
		})
	}
}
