package acceptloop

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// nextDescriptor returns the number the next descriptor opened will get.
func nextDescriptor(t *testing.T) int {
	t.Helper()
	fd, err := syscall.Open(os.DevNull, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	syscall.Close(fd)
	return fd
}

// refusal is a connection a Reserve's listener refused.
type refusal struct {
	c   net.Conn
	why string
}

// budgetListener wraps a loopback listener with r and runs its Accept on
// a goroutine, passing what it returns and what it refuses on channels.
func budgetListener(t *testing.T, r *Reserve, l net.Listener) (addr string, admitted <-chan net.Conn, refused <-chan refusal) {
	t.Helper()
	adm, ref := make(chan net.Conn, 100), make(chan refusal, 100)
	bl := r.Listener(l, ListenerConfig{Name: "test", Refuse: func(c net.Conn, why string) {
		ref <- refusal{c, why}
	}})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := bl.Accept()
			if err != nil {
				return
			}
			adm <- c
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		close(adm)
		close(ref)
		for c := range adm {
			c.Close()
		}
		for r := range ref {
			r.c.Close()
		}
	})
	return l.Addr().String(), adm, ref
}

// TestReserveBudget checks the descriptor-number rule: with the budget
// set just above the descriptors in use, connections are admitted until a
// connection's descriptor reaches it, refused past it with the reason, and
// admitted again once descriptors are freed.
func TestReserveBudget(t *testing.T) {
	limit, err := DescriptorLimit()
	if err != nil {
		t.Fatal(err)
	}
	l := listen(t)
	// Room for a few connections: each takes two descriptors here (the
	// client's end and the accepted one).
	budget := nextDescriptor(t) + 6
	r, err := NewReserve(ReserveConfig{Reserve: limit - budget, Spares: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	addr, admitted, refused := budgetListener(t, r, l)
	if st := r.Status(); st.Budget != budget || st.Reserved != limit-budget || st.Limit != limit {
		t.Fatalf("status %+v, want budget %d of %d", st, budget, limit)
	}

	var kept []net.Conn
	var why string
	for len(kept) < 10 && why == "" {
		dialFrom(t, "127.0.0.1", addr)
		select {
		case a := <-admitted:
			fd, _ := descriptor(a)
			if fd >= budget {
				t.Fatalf("admitted a connection with descriptor %d, past the budget %d", fd, budget)
			}
			kept = append(kept, a)
		case f := <-refused:
			fd, _ := descriptor(f.c)
			if fd < budget {
				t.Errorf("refused a connection with descriptor %d, within the budget %d", fd, budget)
			}
			why = f.why
			f.c.Close()
		case <-time.After(waitTimeout):
			t.Fatal("connection neither admitted nor refused")
		}
	}
	if len(kept) == 0 || why == "" {
		t.Fatalf("%d admitted, refusal %q: want some admitted, then one refused", len(kept), why)
	}
	if !strings.Contains(why, "connection limit") || !strings.Contains(why, strconv.Itoa(limit)) {
		t.Errorf("reason %q does not say the connection limit was reached", why)
	}
	if st := r.Status(); st.Refused["test"] != 1 || st.Exhausted["test"] != 0 {
		t.Errorf("status counts %v refused, %v exhausted; want 1 refused", st.Refused, st.Exhausted)
	}

	for _, c := range kept {
		c.Close()
	}
	dialFrom(t, "127.0.0.1", addr)
	select {
	case a := <-admitted:
		a.Close()
	case f := <-refused:
		t.Fatalf("refused after descriptors were freed: %s", f.why)
	case <-time.After(waitTimeout):
		t.Fatal("connection neither admitted nor refused")
	}
}

// TestReserveUseReserve checks that a listener allowed the reserve admits
// past the budget.
func TestReserveUseReserve(t *testing.T) {
	limit, err := DescriptorLimit()
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewReserve(ReserveConfig{Reserve: limit - 3, Spares: -1}) // every descriptor is past the budget
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	l := listen(t)
	bl := r.Listener(l, ListenerConfig{Name: "status", UseReserve: true,
		Refuse: func(c net.Conn, why string) { t.Errorf("refused: %s", why); c.Close() }})
	dialFrom(t, "127.0.0.1", l.Addr().String())
	c, err := bl.Accept()
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

// TestReserveSpares checks the spares' bookkeeping: a spare taken is opened
// again once the connection accepted with it is closed, and Close gives
// them all back.
func TestReserveSpares(t *testing.T) {
	r, err := NewReserve(ReserveConfig{Spares: 3})
	if err != nil {
		t.Fatal(err)
	}
	if st := r.Status(); st.Spares != 3 || st.SparesWanted != 3 {
		t.Fatalf("status %+v, want 3 spares", st)
	}
	if !r.takeSpare() || !r.takeSpare() {
		t.Fatal("no spare to take")
	}
	r.mu.Lock()
	held := len(r.spares)
	r.mu.Unlock()
	if held != 1 {
		t.Fatalf("%d spares held after taking two of three", held)
	}
	l := listen(t)
	c := dialFrom(t, "127.0.0.1", l.Addr().String())
	a, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	sc := &spareConn{Conn: a, r: r}
	sc.Close()
	sc.Close() // a second close opens nothing more
	c.Close()
	if st := r.Status(); st.Spares != 3 {
		t.Errorf("%d spares after the connection closed, want 3", st.Spares)
	}
	r.Close()
	r.Close()
	if st := r.Status(); st.Spares != 0 {
		t.Errorf("%d spares after Close", st.Spares)
	}
}

// TestReserveExhausted runs a listener in a child process whose descriptor
// limit is lowered and whose descriptors are all taken, and checks that a
// connection is accepted with a spare and refused with the reason rather
// than left in the backlog, more than once (the spare is opened again),
// while the descriptors stay exhausted.
func TestReserveExhausted(t *testing.T) {
	if os.Getenv("ACCEPTLOOP_EXHAUST_CHILD") == "1" {
		exhaustChild()
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestReserveExhausted$")
	cmd.Env = append(os.Environ(), "ACCEPTLOOP_EXHAUST_CHILD=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer stdin.Close()
	out := bufio.NewScanner(stdout)
	var addr string
	for out.Scan() {
		if a, ok := strings.CutPrefix(out.Text(), "LISTEN "); ok {
			addr = a
			break
		}
	}
	if addr == "" {
		t.Fatal("the child did not say where it listens")
	}
	for i := range 3 {
		c, err := net.DialTimeout("tcp", addr, waitTimeout)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(waitTimeout))
		msg, err := io.ReadAll(c)
		c.Close()
		if err != nil {
			t.Fatalf("connection %d: %v (read %q)", i, err, msg)
		}
		if !strings.Contains(string(msg), "out of file descriptors") {
			t.Fatalf("connection %d: read %q, want the refusal", i, msg)
		}
	}
	stdin.Close()
	for out.Scan() {
		if s, ok := strings.CutPrefix(out.Text(), "STATUS "); ok {
			if s != "exhausted=3 refused=0" {
				t.Errorf("child's counts: %s, want 3 exhausted", s)
			}
			return
		}
	}
	t.Error("the child did not report its counts")
}

// exhaustChild is TestReserveExhausted's child: it lowers its descriptor
// limit, listens, takes every descriptor left, prints LISTEN ADDR and
// serves until its standard input ends, then prints its counts.
func exhaustChild() {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(1)
	}
	rl := syscall.Rlimit{Cur: 64, Max: 64}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		fail(err)
	}
	r, err := NewReserve(ReserveConfig{Reserve: -1, Spares: 1})
	if err != nil {
		fail(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail(err)
	}
	bl := r.Listener(l, ListenerConfig{Name: "child", Refuse: func(c net.Conn, why string) {
		c.SetWriteDeadline(time.Now().Add(time.Second))
		io.WriteString(c, why+"\n")
		c.Close()
	}})
	var fds []int
	for {
		fd, err := syscall.Open(os.DevNull, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err != nil {
			break
		}
		fds = append(fds, fd)
	}
	go func() {
		for {
			c, err := bl.Accept()
			if err != nil {
				if strings.Contains(err.Error(), "closed") {
					return
				}
				time.Sleep(5 * time.Millisecond) // as the accept loop backs off
				continue
			}
			c.Close()
			fmt.Fprintln(os.Stderr, "child: a connection was admitted with every descriptor taken")
		}
	}()
	fmt.Printf("LISTEN %s\n", l.Addr())
	io.Copy(io.Discard, os.Stdin)
	st := r.Status()
	fmt.Printf("STATUS exhausted=%d refused=%d\n", st.Exhausted["child"], st.Refused["child"])
	for _, fd := range fds {
		syscall.Close(fd)
	}
	l.Close()
}
