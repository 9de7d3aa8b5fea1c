package tn3270

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/racingmars/go3270"
)

var welcomeScreen = go3270.Screen{
	{Row: 0, Col: 0, Content: "WELCOME"},
	{Row: 1, Col: 0, Name: "user"},
	{Row: 3, Col: 0, Content: "Command ===>"},
	{Row: 3, Col: 13, Name: "cmd", Write: true},
	{Row: 3, Col: 79, Autoskip: true},
	{Row: 23, Col: 0, Content: "PF3=Exit"},
}

// TestGo3270Session runs a session against a go3270 server: negotiation,
// the login screen's text, typing into its fields and ENTER (the values
// arrive in go3270's Response), then PF3, CLEAR and PA1.
func TestGo3270Session(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cp := go3270.Codepage037()
	responses := make(chan go3270.Response, 8)
	next := make(chan struct{}, 1)
	host := startHost(t, func(conn net.Conn, dev go3270.DevInfo) error {
		resp, err := go3270.HandleScreen(loginScreen, go3270.Rules{
			"userid": {Validator: go3270.NonBlank},
		}, nil, []go3270.AID{go3270.AIDEnter}, []go3270.AID{go3270.AIDPF3, go3270.AIDClear},
			"errmsg", 4, 14, conn, dev.Codepage())
		if err != nil {
			return err
		}
		responses <- resp
		for range 3 {
			select { // the test looks at the screen before the next one
			case <-next:
			case <-ctx.Done():
				return ctx.Err()
			}
			resp, err := go3270.ShowScreenOpts(welcomeScreen, map[string]string{"user": "Hello " + resp.Values["userid"]},
				conn, go3270.ScreenOpts{Codepage: cp, CursorRow: 3, CursorCol: 14})
			if err != nil {
				return err
			}
			responses <- resp
		}
		return drain(conn)
	})

	c, err := Dial(ctx, host.addr, Config{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := c.WaitFor(ctx, func(s Screen) bool { return strings.Contains(s.String(), "CP READ") && !s.KeyboardLocked })
	if err != nil {
		t.Fatal(err)
	}

	// Negotiation, as go3270 saw it.
	devs := host.devInfos()
	if len(devs) != 1 {
		t.Fatalf("%d negotiated connections, want 1", len(devs))
	}
	dev := devs[0]
	if got := dev.TerminalType(); got != "IBM-3278-2-E" {
		t.Errorf("terminal type %q", got)
	}
	if r, c := dev.AltDimensions(); r != 24 || c != 80 {
		t.Errorf("alternate size %dx%d from the Usable Area query reply, want 24x80", r, c)
	}
	if dev.Codepage() == nil || dev.Codepage().ID() != "037" {
		t.Errorf("codepage from the Character Sets query reply: %v, want 037", dev.Codepage())
	}
	if !dev.SupportsGE() {
		t.Errorf("graphic escape not seen in the Character Sets query reply")
	}

	// The screen, as s3270 showed it (golden).
	want, err := readGolden("testdata/login.golden")
	if err != nil {
		t.Fatal(err)
	}
	if !equalRows(s.Rows(), want) {
		t.Errorf("login screen differs from s3270's (testdata/login.golden):\n%s", diffRows(want, s.Rows()))
	}
	if s.Cursor != (Pos{4, 14}) {
		t.Errorf("cursor at %v, want {4 14}", s.Cursor)
	}
	if len(s.Fields) != 14 {
		t.Errorf("%d fields, want 14", len(s.Fields))
	}
	if f, ok := s.FieldAt(5, 16); !ok || !f.Attr.Hidden() || f.Attr.Protected() || f.Text[:6] != "SECRET" {
		t.Errorf("password field: %+v %v", f, ok)
	}
	if f, _ := s.FieldAt(4, 13); f.Highlight != go3270.Underscore || f.Color != go3270.Turquoise {
		t.Errorf("userid field attributes: %+v", f)
	}

	// Input errors leave the screen alone.
	for _, tc := range []struct {
		name string
		do   func() error
		want error
	}{
		{"too long", func() error { return c.Type("123456789") }, ErrFieldOverflow},
		{"protected", func() error { return c.SetField(0, 30, "x") }, ErrProtected},
		{"numeric", func() error { return c.SetField(7, 14, "12a") }, ErrNumeric},
		{"control", func() error { return c.Type("a\tb") }, ErrBadInput},
		{"outside", func() error { return c.MoveCursor(24, 0) }, ErrBadPosition},
		{"not an AID", func() error { return c.SendAID(ctx, go3270.AIDNone) }, ErrBadAID},
	} {
		if err := tc.do(); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
	if got := c.Screen(); !equalRows(got.Rows(), want) || got.Cursor != s.Cursor {
		t.Errorf("a refused input changed the screen:\n%s", got)
	}

	// Type the userid at the cursor, set the other fields, press ENTER.
	if err := c.Type("alice"); err != nil {
		t.Fatal(err)
	}
	if err := c.SetField(5, 13, "s3cret"); err != nil {
		t.Fatal(err)
	}
	if err := c.SetField(7, 15, "1234"); err != nil {
		t.Fatal(err)
	}
	if got := c.Screen().Cursor; got != (Pos{7, 18}) {
		t.Errorf("cursor after SetField at %v, want {7 18}", got)
	}
	if err := c.SendAID(ctx, go3270.AIDEnter); err != nil {
		t.Fatal(err)
	}
	if err := c.Type("x"); !errors.Is(err, ErrKeyboardLocked) {
		t.Errorf("Type after ENTER: %v, want ErrKeyboardLocked", err)
	}
	if err := c.SendAID(ctx, go3270.AIDEnter); !errors.Is(err, ErrKeyboardLocked) {
		t.Errorf("second ENTER: %v, want ErrKeyboardLocked", err)
	}
	resp := receive(ctx, t, responses)
	if resp.AID != go3270.AIDEnter || resp.Row != 7 || resp.Col != 18 {
		t.Errorf("response AID %s at %d,%d; want Enter at 7,18", go3270.AIDtoString(resp.AID), resp.Row, resp.Col)
	}
	for name, want := range map[string]string{"userid": "alice", "password": "s3cret", "account": "1234"} {
		if got := resp.Values[name]; got != want {
			t.Errorf("go3270 got %s=%q, want %q (all: %q)", name, got, want, resp.Values)
		}
	}

	// PF3, CLEAR and PA1 on the next screens.
	for _, aid := range []go3270.AID{go3270.AIDPF3, go3270.AIDClear, go3270.AIDPA1} {
		next <- struct{}{}
		s, err := c.WaitFor(ctx, func(s Screen) bool { return strings.Contains(s.String(), "Hello alice") && !s.KeyboardLocked })
		if err != nil {
			t.Fatal(err)
		}
		if err := c.SendAID(ctx, aid); err != nil {
			t.Fatal(err)
		}
		if aid == go3270.AIDClear {
			after := c.Screen()
			if strings.TrimSpace(after.String()) != "" || after.Cursor != (Pos{}) || after.Seq != s.Seq {
				t.Errorf("CLEAR did not clear the screen locally (seq %d, was %d):\n%s", after.Seq, s.Seq, after)
			}
		}
		if resp := receive(ctx, t, responses); resp.AID != aid {
			t.Errorf("go3270 got AID %s, want %s", go3270.AIDtoString(resp.AID), go3270.AIDtoString(aid))
		}
	}
}

func receive(ctx context.Context, t *testing.T, ch <-chan go3270.Response) go3270.Response {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-ctx.Done():
		t.Fatal("no response reached the go3270 server")
		return go3270.Response{}
	}
}

// TestModel5 negotiates a 3278 model 5 and checks that go3270's Erase/Write
// Alternate gives a 27x132 screen.
func TestModel5(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	host := startHost(t, func(conn net.Conn, dev go3270.DevInfo) error {
		_, err := go3270.ShowScreenOpts(go3270.Screen{
			{Row: 26, Col: 119, Content: "BOTTOM RIGHT"},
			{Row: 10, Col: 100, Name: "in", Write: true},
			{Row: 10, Col: 110, Autoskip: true},
		}, nil, conn, go3270.ScreenOpts{AltScreen: dev, Codepage: dev.Codepage(), CursorRow: 10, CursorCol: 101})
		if err != nil {
			return err
		}
		return drain(conn)
	})
	c, err := Dial(ctx, host.addr, Config{Model: 5})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := c.WaitFor(ctx, hasMarker("BOTTOM RIGHT"))
	if err != nil {
		t.Fatalf("%v\n%s", err, c.Screen())
	}
	if r, cols := s.Size(); r != 27 || cols != 132 || !s.Alternate {
		t.Errorf("size %dx%d alternate=%v, want 27x132 alternate", r, cols, s.Alternate)
	}
	if got := s.Row(26)[120:]; got != "BOTTOM RIGHT" {
		t.Errorf("row 26 ends %q", got)
	}
	if s.Cursor != (Pos{10, 101}) {
		t.Errorf("cursor %v", s.Cursor)
	}
	if dev := host.devInfos()[0]; dev.TerminalType() != "IBM-3278-5-E" {
		t.Errorf("terminal type %q", dev.TerminalType())
	}
}

// rawHost serves one connection: it negotiates with go3270, then sends the
// records and runs then (if set) with the connection.
func rawHost(t *testing.T, recs [][]byte, then func(net.Conn) error) *testHost {
	return startHost(t, func(conn net.Conn, _ go3270.DevInfo) error {
		for _, r := range recs {
			if _, err := conn.Write(appendRecord(nil, r)); err != nil {
				return err
			}
		}
		if then != nil {
			return then(conn)
		}
		return drain(conn)
	})
}

// TestBadDataStreamEndsSession checks that a record the terminal cannot
// accept ends the session with an error that says what and where.
func TestBadDataStreamEndsSession(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	good := cat([]byte{cmdEW, 0xC3}, sba(0, 0), ebc("GOOD SCREEN"))
	bad := cat([]byte{cmdW, 0xC3}, sba(1, 0), ebc("abc"), []byte{ordSBA, 0x7F, 0x7F}) // 4095 > 1919
	host := rawHost(t, [][]byte{good, bad}, nil)
	c, err := Dial(ctx, host.addr, Config{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case <-c.Done():
	case <-ctx.Done():
		t.Fatal("session did not end")
	}
	err = c.Err()
	var dse *DataStreamError
	if !errors.Is(err, ErrBadDataStream) || !errors.As(err, &dse) || dse.Offset != 8 {
		t.Fatalf("Err() = %v, want a DataStreamError at offset 8", err)
	}
	if !strings.Contains(err.Error(), "SBA to address 4095 outside the 24x80 buffer") {
		t.Errorf("error text %q", err)
	}
	_, err = c.WaitUpdate(ctx, c.Screen().Seq)
	if !errors.Is(err, ErrClosed) || !errors.Is(err, ErrBadDataStream) {
		t.Errorf("WaitUpdate after the failure: %v", err)
	}
	if err := c.Type("x"); !errors.Is(err, ErrClosed) {
		t.Errorf("Type after the failure: %v", err)
	}
	// What was written before the bad order stays on the screen.
	if s := c.Screen(); !strings.HasPrefix(s.Row(0), "GOOD SCREEN") || !strings.HasPrefix(s.Row(1), "abc") {
		t.Errorf("screen after the failure:\n%s", s)
	}
}

// TestHostCloses checks the error when the host hangs up, with the plain
// text it sent last (as Hercules does when it has no free device).
func TestHostCloses(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	served := make(chan struct{})
	go func() {
		defer close(served)
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		conn.Write([]byte("Connection rejected, no available 3270 device\r\n"))
		conn.Close()
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, ln.Addr().String(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	<-served
	<-c.Done()
	if err := c.Err(); !errors.Is(err, ErrDisconnected) || !strings.Contains(err.Error(), "no available 3270 device") {
		t.Errorf("Err() = %v", err)
	}
}

// TestHostReads checks the answers to the host's Read Buffer and Read
// Modified commands, and that a host offering TN3270E is refused cleanly.
func TestHostReads(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	screen := cat([]byte{cmdEW, 0xC3}, sba(0, 0), []byte{ordSF, faProt}, ebc("AB"),
		[]byte{ordSF, faUnprot}, ebc("cd"), sba(0, 10), []byte{ordSF, faProt}, sba(0, 5), []byte{ordIC})
	got := make(chan [][]byte, 1)
	tn3270e := make(chan []byte, 1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	typed := make(chan struct{})
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		// Offer TN3270E first; the client must refuse it.
		conn.Write([]byte{tnIAC, tnDO, optTN3270E})
		answer := make([]byte, 3)
		if _, err := conn.Read(answer); err != nil {
			return
		}
		tn3270e <- answer
		if _, err := go3270.NegotiateTelnet(conn); err != nil {
			return
		}
		conn.Write(appendRecord(nil, screen))
		<-typed
		var replies [][]byte
		for _, cmd := range []byte{cmdRB, cmdRM, snaRMA} {
			conn.Write(appendRecord(nil, []byte{cmd}))
			r, err := readInbound(conn)
			if err != nil {
				return
			}
			replies = append(replies, r)
		}
		got <- replies
		drain(conn)
	}()

	c, err := Dial(ctx, ln.Addr().String(), Config{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if a := <-tn3270e; string(a) != string([]byte{tnIAC, tnWONT, optTN3270E}) {
		t.Errorf("answer to DO TN3270E: % X, want IAC WONT TN3270E", a)
	}
	if _, err := c.WaitFor(ctx, func(s Screen) bool { return s.Formatted() && !s.KeyboardLocked }); err != nil {
		t.Fatal(err)
	}
	if err := c.Type("X"); err != nil {
		t.Fatal(err)
	}
	close(typed)
	var replies [][]byte
	select {
	case replies = <-got:
	case <-ctx.Done():
		t.Fatal("no replies")
	}
	cur := addr12(0, 6) // after typing X over the d at (0,5)
	wantRB := cat([]byte{byte(go3270.AIDNone)}, cur, []byte{ordSF, faProt}, ebc("AB"),
		[]byte{ordSF, faUnprotMDT}, ebc("cX"), make([]byte, 4), []byte{ordSF, faProt}, make([]byte, 1920-11))
	wantRM := cat([]byte{byte(go3270.AIDNone)}, cur, sba(0, 4), ebc("cX"))
	for i, want := range [][]byte{wantRB, wantRM, wantRM} {
		if string(replies[i]) != string(want) {
			t.Errorf("reply %d:\n got % X\nwant % X", i, head(replies[i]), head(want))
		}
	}
}

func head(p []byte) []byte { return p[:min(len(p), 40)] }

// readInbound reads one record (to IAC EOR) from conn, unescaping IAC IAC.
func readInbound(conn net.Conn) ([]byte, error) {
	var d telnetDecoder
	d.maxRecord = DefaultMaxRecord
	h := &oneRecord{}
	p := make([]byte, 1)
	for h.rec == nil {
		if _, err := conn.Read(p); err != nil {
			return nil, err
		}
		if err := d.feed(p, h); err != nil {
			return nil, err
		}
	}
	return h.rec, nil
}

type oneRecord struct{ rec []byte }

func (h *oneRecord) record(rec []byte) error     { h.rec = append([]byte{}, rec...); return nil }
func (h *oneRecord) command(cmd, opt byte) error { return nil }
func (h *oneRecord) subneg(data []byte) error    { return nil }

// TestWaitUpdate checks the update sequence and the waits on it.
func TestWaitUpdate(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	next := make(chan struct{})
	host := rawHost(t, [][]byte{cat([]byte{cmdEW, 0xC3}, ebc("one"))}, func(conn net.Conn) error {
		<-next
		if _, err := conn.Write(appendRecord(nil, cat([]byte{cmdW, 0xC3}, ebc(" two")))); err != nil {
			return err
		}
		return drain(conn)
	})
	c, err := Dial(ctx, host.addr, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := c.WaitFor(ctx, hasMarker("one"))
	if err != nil {
		t.Fatal(err)
	}
	// go3270's negotiation wrote twice (EWA, then WSF query which does
	// not count); "one" is the next.
	if s.Seq != 2 {
		t.Errorf("Seq = %d after the first screen, want 2", s.Seq)
	}
	short, cancelShort := context.WithTimeout(ctx, 50*time.Millisecond)
	if _, err := c.WaitUpdate(short, s.Seq); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitUpdate with no write: %v", err)
	}
	cancelShort()
	if err := c.MoveCursor(0, 3); err != nil {
		t.Fatal(err)
	}
	if err := c.Type("typed"); err != nil {
		t.Fatal(err)
	}
	if got := c.Screen(); got.Seq != s.Seq || !strings.HasPrefix(got.Row(0), "onetyped") {
		t.Errorf("after typing: seq %d, row 0 %q", got.Seq, got.Row(0))
	}
	close(next)
	s2, err := c.WaitUpdate(ctx, s.Seq)
	if err != nil {
		t.Fatal(err)
	}
	if s2.Seq != s.Seq+1 || !strings.HasPrefix(s2.Row(0), "onetyped two") {
		t.Errorf("after the write: seq %d, row 0 %q", s2.Seq, s2.Row(0))
	}
	// Data before errors: a later Seq is returned even once closed.
	c.Close()
	if got, err := c.WaitUpdate(ctx, s.Seq); err != nil || got.Seq != s2.Seq {
		t.Errorf("WaitUpdate(old seq) after Close = %d, %v", got.Seq, err)
	}
	if _, err := c.WaitUpdate(ctx, s2.Seq); !errors.Is(err, ErrClosed) {
		t.Errorf("WaitUpdate after Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestConfig checks configuration validation.
func TestConfig(t *testing.T) {
	for _, cfg := range []Config{
		{Model: 1}, {Model: 6}, {TerminalType: "IBM 3278"}, {TerminalType: strings.Repeat("X", 41)}, {MaxRecord: -1},
	} {
		if _, err := Dial(t.Context(), "127.0.0.1:1", cfg); !errors.Is(err, ErrBadConfig) {
			t.Errorf("Dial with %+v: %v, want ErrBadConfig", cfg, err)
		}
	}
}

// TestCloseWaitsForReader checks that Close waits for the client's
// goroutine, over a connection that never says anything.
func TestCloseWaitsForReader(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	c, err := New(a, Config{})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	select {
	case <-c.Done():
	default:
		t.Fatal("Close returned before the reader goroutine ended")
	}
	// A reader that has closed done may still be returning; other
	// tests' clients too. None may stay.
	deadline := time.Now().Add(2 * time.Second)
	for countGoroutines("(*Client).readLoop") != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d readLoop goroutines left", countGoroutines("(*Client).readLoop"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if c.Err() != ErrClosed {
		t.Errorf("Err() = %v", c.Err())
	}
}
