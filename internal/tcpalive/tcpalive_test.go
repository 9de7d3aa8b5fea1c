package tcpalive

import (
	"net"
	"testing"
	"time"
)

// pair returns both ends of a loopback TCP connection, the dialled one
// from d.
func pair(t *testing.T, d *net.Dialer) (dialled, accepted net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			t.Error(err)
		}
		got <- c
	}()
	dialled, err = d.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dialled.Close() })
	accepted = <-got
	if accepted == nil {
		t.FailNow()
	}
	t.Cleanup(func() { accepted.Close() })
	return dialled, accepted
}

// TestKernelSettings reads back from the kernel what Dialer and Set gave a
// connection's socket.
func TestKernelSettings(t *testing.T) {
	for _, tc := range []struct {
		idle time.Duration
		want Settings // Idle: the least
	}{
		{time.Minute, Settings{net.KeepAliveConfig{Enable: true, Idle: time.Minute, Interval: 20 * time.Second, Count: 3}, 210 * time.Second}},
		{9 * time.Second, Settings{net.KeepAliveConfig{Enable: true, Idle: 9 * time.Second, Interval: 3 * time.Second, Count: 3}, 31500 * time.Millisecond}},
		{1500 * time.Millisecond, Settings{net.KeepAliveConfig{Enable: true, Idle: time.Second, Interval: time.Second, Count: 3}, 3500 * time.Millisecond}},
		{-1, Settings{KeepAliveConfig: net.KeepAliveConfig{Enable: false}}},
	} {
		if c := Config(tc.idle); tc.want.Enable && (c.Interval != tc.want.Interval || c.UserTimeout != tc.want.UserTimeout) {
			t.Errorf("Config(%v) = %+v, want %+v", tc.idle, c, tc.want)
		}
		dialled, accepted := pair(t, Dialer(tc.idle))
		got, err := Get(dialled)
		if err != nil {
			t.Fatal(err)
		}
		if msg := Check(got, tc.idle); msg != "" {
			t.Errorf("dialled with idle %v: %s", tc.idle, msg)
		}
		// Go's listener turns on its own keepalive (15 s) on accepted
		// connections; Set replaces it.
		if err := Set(accepted, tc.idle); err != nil {
			t.Fatal(err)
		}
		if got, err = Get(accepted); err != nil {
			t.Fatal(err)
		}
		if msg := Check(got, tc.idle); msg != "" {
			t.Errorf("accepted, set with idle %v: %s", tc.idle, msg)
		}
	}
}

// TestCheckCatches: Check reports Go's own keepalive, which a connection
// not given Config has, as a difference.
func TestCheckCatches(t *testing.T) {
	dialled, _ := pair(t, &net.Dialer{})
	got, err := Get(dialled)
	if err != nil {
		t.Fatal(err)
	}
	if msg := Check(got, time.Minute); msg == "" {
		t.Errorf("Check(%+v) found nothing", got)
	}
}

// TestSpread: connections made together are given idle times spread over
// the range, so that their probes do not fall due together.
func TestSpread(t *testing.T) {
	seen := map[time.Duration]int{}
	for range 200 {
		cfg := Config(time.Minute)
		if cfg.Idle < time.Minute || cfg.Idle >= 2*time.Minute || cfg.Idle%time.Second != 0 {
			t.Fatalf("idle %v, want whole seconds from 1m to under 2m", cfg.Idle)
		}
		seen[cfg.Idle]++
	}
	// 60 values, 200 draws: fewer than 30 distinct would be a broken spread
	// (the chance of it with a uniform draw is far below one in a billion).
	if len(seen) < 30 {
		t.Errorf("200 connections got %d distinct idle times: %v", len(seen), seen)
	}
}

// TestSetOther leaves a connection that is not TCP as it is.
func TestSetOther(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if err := Set(a, time.Minute); err != nil {
		t.Fatalf("Set on a pipe: %v", err)
	}
	if _, err := Get(a); err == nil {
		t.Error("Get on a pipe: no error")
	}
}

// TestListener: the connections a wrapped listener accepts have the
// settings of Config, not Go's own 15 s keepalive.
func TestListener(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var failures []error
	l := Listener(inner, 2*time.Minute, func(err error) { failures = append(failures, err) })
	defer l.Close()
	for range 3 {
		d, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		c, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		got, err := Get(c)
		if err != nil {
			t.Fatal(err)
		}
		if msg := Check(got, 2*time.Minute); msg != "" {
			t.Errorf("accepted: %s", msg)
		}
	}
	if len(failures) > 0 {
		t.Errorf("settings failed: %v", failures)
	}
}
