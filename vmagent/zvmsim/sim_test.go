package zvmsim

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestNewConfig(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no system":          {Password: "x"},
		"long system":        {System: "VMSYSTEM1", Password: "x"},
		"no password":        {System: "S"},
		"long password":      {System: "S", Password: strings.Repeat("x", passwordLen+1)},
		"bad userid":         {System: "S", Password: "x", Users: []string{"LINUX 1"}},
		"long userid":        {System: "S", Password: "x", Users: []string{"LINUX0001"}},
		"autolog unknown":    {System: "S", Password: "x", Autolog: []string{"NOBODY"}},
		"negative MoreDelay": {System: "S", Password: "x", MoreDelay: -time.Second},
	} {
		if _, err := New(cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: err = %v, want ErrConfig", name, err)
		}
	}
	users := []string{"linux9", "tcpip"}
	s, err := New(Config{System: "vmsys1", Password: "x", Users: users, Autolog: []string{"tcpip"}})
	if err != nil {
		t.Fatal(err)
	}
	users[0] = "CHANGED"
	if s.System() != "VMSYS1" || s.cfg.MoreDelay != DefaultMoreDelay || !s.dir["LINUX9"] || s.dir["CHANGED"] ||
		!s.dir[Operator] || !s.dir[Maint] {
		t.Errorf("config not copied and defaulted: %+v %v", s.cfg, s.dir)
	}
	if got := s.LoggedOn(); !slices.Equal(got, []string{"TCPIP"}) {
		t.Errorf("LoggedOn = %q", got)
	}
	d, _ := New(Config{System: "S", Password: "x"})
	for _, u := range defaultUsers() {
		if !d.dir[u] {
			t.Errorf("default user %s missing", u)
		}
	}
}

func TestAPIErrors(t *testing.T) {
	s, err := New(Config{System: "S", Password: "x", Autolog: []string{"LINUX01"}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, tc := range []struct {
		err  error
		want error
	}{
		{s.Inject("x"), ErrNotLoggedOn},
		{s.InjectTo("LINUX01", "x"), ErrDisconnected},
		{s.InjectTo("NOBODY", "x"), ErrNoSuchUser},
		{s.InjectMany(3, "x %d"), ErrNotLoggedOn},
		{s.Message("NOBODY", "OPERATOR", "x"), ErrNoSuchUser},
		{s.Message("MAINT", "LINUX01", "x"), ErrDisconnected},
		{s.Warning("MAINT", "LINUX02", "x"), ErrNotLoggedOn},
	} {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("err = %v, want %v", tc.err, tc.want)
		}
	}
}

func TestServeAfterClose(t *testing.T) {
	s, err := New(Config{System: "S", Password: "x"})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s.Close() // twice is fine
	if err := s.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown after Close: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(l); err != ErrServerClosed {
		t.Errorf("Serve = %v", err)
	}
	if _, err := l.Accept(); err == nil {
		t.Error("Serve left the listener open")
	}
}

// flakyListener fails its first fail Accepts with EMFILE, an error the
// accept loop rides out, then accepts for real.
type flakyListener struct {
	net.Listener
	mu   sync.Mutex
	fail int
}

func (l *flakyListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	failing := l.fail > 0
	if failing {
		l.fail--
	}
	l.mu.Unlock()
	if failing {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

// TestServeRetriesAccept: Accept errors that pass are retried, and a
// terminal is served after them; Close ends Serve with ErrServerClosed.
func TestServeRetriesAccept(t *testing.T) {
	s, err := New(Config{System: "S", Password: "x"})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(&flakyListener{Listener: ln, fail: 3}) }()
	rawTerminal(t, ln.Addr().String()) // the logo screen came
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-served:
		if err != ErrServerClosed {
			t.Errorf("Serve = %v, want ErrServerClosed", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Serve did not return after Close")
	}
}

// rawTerminal does the terminal side of go3270's TN3270 negotiation by
// hand, without answering the Read Partition Query with anything useful.
func rawTerminal(t *testing.T, addr string) (net.Conn, *recordReader) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	const ttype, eor, binary = 0x18, 0x19, 0x00
	expect := func(want ...byte) {
		t.Helper()
		got := make([]byte, len(want))
		if _, err := io.ReadFull(conn, got); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("negotiation: got % x (%v), want % x", got, err, want)
		}
	}
	send := func(b ...byte) {
		t.Helper()
		if _, err := conn.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	expect(telnetIAC, 0xFD, ttype)
	send(telnetIAC, telnetWILL, ttype)
	expect(telnetIAC, telnetSB, ttype, 1, telnetIAC, telnetSE)
	send(append(append([]byte{telnetIAC, telnetSB, ttype, 0}, "IBM-3278-2"...), telnetIAC, telnetSE)...)
	expect(telnetIAC, 0xFD, eor)
	send(telnetIAC, telnetWILL, eor)
	expect(telnetIAC, 0xFD, binary)
	send(telnetIAC, telnetWILL, binary)
	expect(telnetIAC, telnetWILL, eor)
	send(telnetIAC, 0xFD, eor)
	expect(telnetIAC, telnetWILL, binary)
	send(telnetIAC, 0xFD, binary)
	rr := newRecordReader(conn)
	for i := 0; i < 2; i++ { // Erase/Write Alternate, then the query
		if _, err := rr.next(); err != nil {
			t.Fatal(err)
		}
	}
	send(0x88, telnetIAC, telnetEOR) // a query reply with nothing in it
	logo, err := rr.next()
	if err != nil || len(logo) < 2 || logo[0] != cmdEraseWrite {
		t.Fatalf("logo screen: % x, %v", logo, err)
	}
	conn.SetDeadline(time.Time{})
	return conn, rr
}

// A bad data stream ends the session, with no panic, and the simulator
// goes on serving.
func TestBadDatastreamEndsSession(t *testing.T) {
	_, addr := startSim(t, Config{})
	for name, send := range map[string][]byte{
		"cursor cut":   {0x7D, 0x5B, telnetIAC, telnetEOR},
		"SBA off":      {0x7D, 0x40, 0x40, orderSBA, 0x3F, 0xFF, 0xFF, telnetIAC, telnetEOR},
		"huge record":  bytes.Repeat([]byte{0x40}, maxRecord+10),
		"empty record": {telnetIAC, telnetEOR},
	} {
		t.Run(name, func(t *testing.T) {
			conn, _ := rawTerminal(t, addr)
			if _, err := conn.Write(send); err != nil {
				t.Fatal(err)
			}
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.ReadAll(conn); err != nil {
				t.Errorf("the session did not end: %v", err)
			}
		})
	}
	// A good logon still works.
	conn, rr := rawTerminal(t, addr)
	rec := []byte{0x7D, 0x40, 0x40, orderSBA}
	a := useridAddr
	rec = append(rec, ioCodes[(a>>6)&0x3F], ioCodes[a&0x3F])
	rec = append(rec, 0xD6, 0xD7, 0xC5, 0xD9, 0xC1, 0xE3, 0xD6, 0xD9) // OPERATOR in EBCDIC
	a = passwordAddr
	rec = append(rec, orderSBA, ioCodes[(a>>6)&0x3F], ioCodes[a&0x3F])
	rec = append(rec, 0xA2, 0xF3, 0x83, 0x99, 0xF3, 0xA3) // s3cr3t
	rec = append(rec, telnetIAC, telnetEOR)
	if _, err := conn.Write(rec); err != nil {
		t.Fatal(err)
	}
	screen, err := rr.next()
	if err != nil || screen[0] != cmdEraseWrite || !bytes.Contains(screen, []byte{0xD3, 0xD6, 0xC7, 0xD6, 0xD5, 0x40, 0xC1, 0xE3}) { // "LOGON AT"
		t.Errorf("console after logon: % x, %v", screen, err)
	}
}

func TestShutdown(t *testing.T) {
	s, err := New(Config{System: "S", Password: testPassword})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()
	addr := l.Addr().String()

	silent, err := net.Dial("tcp", addr) // never negotiates
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	atLogo, _ := rawTerminal(t, addr)
	tm := startTerminal(t, addr)
	tm.logon("OPERATOR", testPassword)
	tm.waitFor("the console", hasStatus(statusCPRead))

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a hang check
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-served; err != ErrServerClosed {
		t.Errorf("Serve = %v", err)
	}
	for name, c := range map[string]net.Conn{"silent": silent, "at the logo screen": atLogo} {
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := io.ReadAll(c); err != nil {
			t.Errorf("%s connection not closed: %v", name, err)
		}
	}
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Error("still accepting after Shutdown")
	}
}

// zvmsimGoroutines counts goroutines running code of this package, other
// than the tests themselves.
func zvmsimGoroutines() (int, string) {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	var leaked []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "vmagent/zvmsim.(*") && !strings.Contains(g, "zvmsim.Test") {
			n++
			leaked = append(leaked, g)
		}
	}
	return n, strings.Join(leaked, "\n\n")
}

func TestNoGoroutineLeak(t *testing.T) {
	s, err := New(Config{System: "S", Password: testPassword, MoreDelay: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()
	addr := l.Addr().String()
	silent, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	rawTerminal(t, addr)
	tm := startTerminal(t, addr)
	tm.logon("OPERATOR", testPassword)
	tm.waitFor("the console", hasStatus(statusCPRead))
	tm.command("spin 10#longout 100")
	tm.waitFor("MORE...", hasStatus(statusMore))
	gone := startTerminal(t, addr)
	gone.logon("MAINT", testPassword)
	gone.waitFor("MAINT's console", hasStatus(statusCPRead))
	gone.Must("Disconnect()")

	if n, _ := zvmsimGoroutines(); n == 0 {
		t.Fatal("no simulator goroutines seen while serving: the check sees nothing")
	}
	s.Close()
	<-served
	deadline := time.Now().Add(2 * time.Second)
	for {
		n, stacks := zvmsimGoroutines()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines left after Close:\n%s", n, stacks)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
