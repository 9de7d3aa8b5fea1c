package acceptloop

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// waitTimeout bounds every wait for something that should happen soon; it
// is generous for a loaded machine running -race.
const waitTimeout = 20 * time.Second

func listen(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// dialFrom connects to addr from the loopback address src (127.0.0.2 is a
// second source: Linux routes all of 127/8 to lo).
func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: waitTimeout}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

type accepted struct {
	c net.Conn
	a *Admission
}

// serve runs lp.Serve(l) with a handler that passes what it is given on a
// channel, and returns the channel and what Serve returned, to wait for.
func serve(t *testing.T, lp *Loop, l net.Listener) (<-chan accepted, <-chan error) {
	t.Helper()
	got := make(chan accepted, 100)
	served := make(chan error, 1)
	go func() {
		served <- lp.Serve(l, func(c net.Conn, a *Admission) { got <- accepted{c, a} })
	}()
	t.Cleanup(func() {
		lp.Stop()
		if err := waitErr(t, served); !errors.Is(err, ErrStopped) {
			t.Errorf("Serve returned %v, want ErrStopped", err)
		}
		for {
			select {
			case a := <-got:
				a.c.Close()
			default:
				return
			}
		}
	})
	return got, served
}

func waitErr(t *testing.T, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(waitTimeout):
		t.Fatal("Serve did not return")
		return nil
	}
}

func next(t *testing.T, got <-chan accepted) accepted {
	t.Helper()
	select {
	case a := <-got:
		t.Cleanup(func() { a.c.Close() })
		return a
	case <-time.After(waitTimeout):
		t.Fatal("no connection handed over")
		return accepted{}
	}
}

func TestPerAddr(t *testing.T) {
	lp := New(Config{MaxPerAddr: 2})
	l1, l2 := listen(t), listen(t)
	got1, _ := serve(t, lp, l1)
	got2, _ := serve(t, lp, l2)
	one, two := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")

	tests := []struct {
		name      string
		src       string
		l         net.Listener
		got       <-chan accepted
		wantOver  bool
		wantCount int
	}{
		{"first", "127.0.0.1", l1, got1, false, 1},
		{"second, other listener", "127.0.0.1", l2, got2, false, 2},
		{"third: over", "127.0.0.1", l1, got1, true, 2},
		{"other address", "127.0.0.2", l2, got2, false, 1},
	}
	var first *Admission
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dialFrom(t, tt.src, tt.l.Addr().String())
			a := next(t, tt.got).a
			if a.Addr != netip.MustParseAddr(tt.src) || a.Over != tt.wantOver || a.Count != tt.wantCount {
				t.Errorf("admission %s over=%v count=%d, want %s over=%v count=%d",
					a.Addr, a.Over, a.Count, tt.src, tt.wantOver, tt.wantCount)
			}
			if first == nil {
				first = a
			}
			if a.Over {
				a.Release() // does nothing
			}
		})
	}
	if n := lp.Count(one); n != 2 {
		t.Fatalf("Count(%s) = %d, want 2", one, n)
	}
	// Released twice, counted once: there is room for one more.
	first.Release()
	first.Release()
	if n := lp.Count(one); n != 1 {
		t.Fatalf("Count(%s) after Release = %d, want 1", one, n)
	}
	dialFrom(t, "127.0.0.1", l1.Addr().String())
	if a := next(t, got1).a; a.Over || a.Count != 2 {
		t.Errorf("after a release: over=%v count=%d, want admitted as the second", a.Over, a.Count)
	}
	if n := lp.Count(two); n != 1 {
		t.Errorf("Count(%s) = %d, want 1", two, n)
	}
}

// faultyListener wraps a real listener: its Accept fails with EMFILE (an
// error that passes) while fail is positive or forever, counting the calls.
type faultyListener struct {
	net.Listener
	forever bool
	calls   chan int // the number of each call, when it returns

	mu        sync.Mutex
	fail      int
	n         int
	stopping  bool // set by the test before it stops the loop
	lateCalls int  // Accept calls begun after stopping was set
}

func (l *faultyListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	l.n++
	n := l.n
	if l.stopping {
		l.lateCalls++
	}
	failing := l.forever || l.fail > 0
	if l.fail > 0 {
		l.fail--
	}
	l.mu.Unlock()
	if failing {
		select {
		case l.calls <- n:
		default:
		}
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

func TestRetryableErrorsPass(t *testing.T) {
	l := &faultyListener{Listener: listen(t), fail: 3, calls: make(chan int, 10)}
	lp := New(Config{})
	got, _ := serve(t, lp, l)
	dialFrom(t, "127.0.0.1", l.Addr().String())
	if a := next(t, got); a.a.Addr != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("admission addr %s", a.a.Addr)
	}
	if len(l.calls) != 3 {
		t.Errorf("%d failed Accepts, want 3", len(l.calls))
	}
}

// TestStopInterruptsBackoff: Stop ends Serve during a back-off wait, without
// a further Accept (a sleeping loop would Accept once more after waking).
func TestStopInterruptsBackoff(t *testing.T) {
	l := &faultyListener{Listener: listen(t), forever: true, calls: make(chan int, 1)}
	lp := New(Config{})
	served := make(chan error, 1)
	go func() { served <- lp.Serve(l, func(c net.Conn, a *Admission) { c.Close() }) }()
	// After 7 failures the wait is 320 ms: Stop comes during it.
	deadline := time.After(waitTimeout)
	for n := 0; n < 7; {
		select {
		case n = <-l.calls:
		case <-deadline:
			t.Fatal("Accept was not retried")
		}
	}
	l.mu.Lock()
	l.stopping = true
	l.mu.Unlock()
	lp.Stop()
	if err := waitErr(t, served); !errors.Is(err, ErrStopped) {
		t.Fatalf("Serve = %v, want ErrStopped", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lateCalls != 0 {
		t.Errorf("%d Accept calls after Stop: the back-off was not interrupted", l.lateCalls)
	}
}

func TestServeAfterStop(t *testing.T) {
	lp := New(Config{})
	lp.Stop()
	lp.Stop() // harmless
	l := listen(t)
	var called atomic.Bool
	if err := lp.Serve(l, func(c net.Conn, a *Admission) { called.Store(true) }); !errors.Is(err, ErrStopped) {
		t.Fatalf("Serve after Stop = %v, want ErrStopped", err)
	}
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept on the listener after Serve: %v, want it closed", err)
	}
	if called.Load() {
		t.Error("handler called after Stop")
	}
}

func TestNonRetryableError(t *testing.T) {
	l := listen(t)
	lp := New(Config{})
	l.Close() // Accept fails with net.ErrClosed, which does not pass
	if err := lp.Serve(l, func(c net.Conn, a *Admission) {}); !errors.Is(err, net.ErrClosed) || errors.Is(err, ErrStopped) {
		t.Fatalf("Serve = %v, want net.ErrClosed wrapped", err)
	}
}
