// Package tcpalive sets the kernel's TCP keepalive and user timeout on the
// long-lived, mostly idle connections between a region and its Linux
// agents, and on the connections a region accepts (Listener).
//
// A dead peer host or a broken path is found by the kernel: after a
// connection's idle time without a segment from the peer it sends a probe,
// then one every interval, and once nothing came from the peer for the
// user timeout (TCP_USER_TIMEOUT) with a probe unanswered, or data sent
// went unacknowledged for as long, it resets the connection, so that the
// next read fails (ETIMEDOUT). That takes no system call, no wakeup and
// no encryption in the process: at ten thousand agent connections an SSH
// keepalive request a minute each, batched on a grid, was still more than
// half of an idle region's CPU. What the kernel cannot see is a peer
// process that is there but hung without its socket filling (stopped with
// nothing sent to it): an SSH keepalive, sent much less often, finds that
// (agentssh.Config.KeepAlive, linuxagent.Config.KeepAlive).
//
// With idle time I (Config's argument), a connection's own idle time is
// drawn at random from I to 2I, in whole seconds, it probes every I/3, and
// its user timeout is 3.5I: a dead peer is found 3.5I after it last sent
// anything (at the next probe or retransmission after that, up to I/3
// later), whether the connection was idle or had data in flight, after
// five probes at least. The user timeout also ends a connection whose peer
// keeps its receive window closed that long: over SSH, whose peers read
// all the time and pace channels by SSH's own windows, a peer that stopped.
//
// The idle times are spread because the kernel runs the keepalive timers
// that fall due together in one go (its timer wheel rounds a timer due 32 s
// to 4.5 minutes ahead up to a multiple of 4 s, one 4 to 32 s ahead to 512
// ms, with HZ=1000), and connections made together fall due together: ten
// thousand probes sent at once overflow the queues on their way (the
// loopback device's backlog holds net.core.netdev_max_backlog, 1000
// packets; /proc/net/softnet_stat counts the drops), and a connection
// whose probes are dropped is ended though its peer is alive. On these
// machines, of 7,000 loopback connections made within a second, all
// probing after 10 s idle and ending after three probes 3 s apart, 679
// were ended within 90 s (TcpExtTCPAbortOnTimeout); with each one's idle
// time drawn from 10 to 20 s, none were.
package tcpalive

import (
	"fmt"
	"math/rand/v2"
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// probes is the keepalive count: unused while a user timeout is set (it
// ends the connection instead), kept for a kernel without one.
const probes = 3

// Settings are a connection's keepalive and user timeout.
type Settings struct {
	net.KeepAliveConfig
	UserTimeout time.Duration // TCP_USER_TIMEOUT; zero: the kernel's retransmission limits
}

// Config returns the settings for a connection with idle time idle (see
// the package doc): its own idle time is drawn from idle to twice it.
// Negative idle turns keepalive off and leaves the user timeout unset.
func Config(idle time.Duration) Settings {
	if idle < 0 {
		return Settings{KeepAliveConfig: net.KeepAliveConfig{Enable: false, Idle: -1, Interval: -1, Count: -1}}
	}
	// The kernel counts keepalive times in whole seconds, one at least.
	idle = max(idle.Truncate(time.Second), time.Second)
	spread := time.Duration(rand.N(int64(idle/time.Second))) * time.Second
	return Settings{
		KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: idle + spread,
			Interval: max(idle/3, time.Second).Truncate(time.Second), Count: probes},
		UserTimeout: idle * 7 / 2,
	}
}

// Dialer returns a dialer whose connections have Config(idle).
func Dialer(idle time.Duration) *net.Dialer {
	s := Config(idle)
	d := &net.Dialer{KeepAliveConfig: s.KeepAliveConfig}
	if !s.Enable {
		d.KeepAlive = -1
	}
	if s.UserTimeout > 0 {
		d.Control = func(_, _ string, raw syscall.RawConn) error { return setUserTimeout(raw, s.UserTimeout) }
	}
	return d
}

// Listener wraps l so that each TCP connection it accepts is given
// Config(idle) (Set); a connection whose settings cannot be set is
// returned all the same, as the kernel and Go left it, and failed (if not
// nil) is told why.
func Listener(l net.Listener, idle time.Duration, failed func(error)) net.Listener {
	return &listener{Listener: l, idle: idle, failed: failed}
}

type listener struct {
	net.Listener
	idle   time.Duration
	failed func(error)
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if err := Set(c, l.idle); err != nil && l.failed != nil {
		l.failed(fmt.Errorf("%s: %w", c.RemoteAddr(), err))
	}
	return c, nil
}

// Set gives c, an accepted TCP connection, Config(idle). Connections of
// other kinds (a net.Pipe in tests, a Unix socket) are left as they are.
func Set(c net.Conn, idle time.Duration) error {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return nil
	}
	s := Config(idle)
	if err := tc.SetKeepAliveConfig(s.KeepAliveConfig); err != nil {
		return fmt.Errorf("tcp keepalive: %w", err)
	}
	if s.UserTimeout > 0 {
		raw, err := tc.SyscallConn()
		if err != nil {
			return fmt.Errorf("tcp user timeout: %w", err)
		}
		return setUserTimeout(raw, s.UserTimeout)
	}
	return nil
}

func setUserTimeout(raw syscall.RawConn, d time.Duration) error {
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(d/time.Millisecond))
	}); err != nil {
		return fmt.Errorf("tcp user timeout: %w", err)
	}
	if serr != nil {
		return fmt.Errorf("tcp user timeout: setsockopt: %w", serr)
	}
	return nil
}

// Get returns the settings the kernel has for c, a TCP connection: Enable
// from SO_KEEPALIVE, the rest from TCP_KEEPIDLE, TCP_KEEPINTVL,
// TCP_KEEPCNT and TCP_USER_TIMEOUT.
func Get(c net.Conn) (Settings, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return Settings{}, fmt.Errorf("tcp keepalive: %T has no socket", c)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return Settings{}, fmt.Errorf("tcp keepalive: %w", err)
	}
	var on, idle, intvl, cnt, user int
	var serr error
	get := func(fd uintptr, level, opt int) int {
		v, err := unix.GetsockoptInt(int(fd), level, opt)
		if err != nil && serr == nil {
			serr = err
		}
		return v
	}
	if err := raw.Control(func(fd uintptr) {
		on = get(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE)
		idle = get(fd, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE)
		intvl = get(fd, unix.IPPROTO_TCP, unix.TCP_KEEPINTVL)
		cnt = get(fd, unix.IPPROTO_TCP, unix.TCP_KEEPCNT)
		user = get(fd, unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT)
	}); err != nil {
		return Settings{}, fmt.Errorf("tcp keepalive: %w", err)
	}
	if serr != nil {
		return Settings{}, fmt.Errorf("tcp keepalive: getsockopt: %w", serr)
	}
	return Settings{
		KeepAliveConfig: net.KeepAliveConfig{Enable: on != 0, Idle: time.Duration(idle) * time.Second,
			Interval: time.Duration(intvl) * time.Second, Count: cnt},
		UserTimeout: time.Duration(user) * time.Millisecond,
	}, nil
}

// Check reports how got, a connection's settings read back with Get,
// differ from Config(idle), or "" if they do not: for tests.
func Check(got Settings, idle time.Duration) string {
	want := Config(idle)
	switch {
	case got.Enable != want.Enable:
		return fmt.Sprintf("keepalive on %v, want %v", got.Enable, want.Enable)
	case !want.Enable:
		return ""
	case got.Idle < idle.Truncate(time.Second) || got.Idle >= max(2*idle.Truncate(time.Second), idle.Truncate(time.Second)+time.Second) || got.Idle%time.Second != 0:
		return fmt.Sprintf("idle %v, want whole seconds from %v to under twice that", got.Idle, idle)
	case got.Interval != want.Interval || got.Count != want.Count || got.UserTimeout != want.UserTimeout:
		return fmt.Sprintf("interval %v, count %d, user timeout %v; want %v, %d, %v",
			got.Interval, got.Count, got.UserTimeout, want.Interval, want.Count, want.UserTimeout)
	}
	return ""
}
