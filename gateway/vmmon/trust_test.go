package vmmon_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/gateway/store/memstore"
	"github.com/zbridge/zbridge/gateway/vmmon"
	"github.com/zbridge/zbridge/protocol"
)

// TestForgedOrigin: an agent's events carry the system it logged on as and
// the address it connected from, whatever origin its frames claim.
func TestForgedOrigin(t *testing.T) {
	st := memstore.New(memstore.Config{})
	addr := serve(t, st)
	a := logon(t, addr, "VMSYS1", "s1")
	forged := &protocol.Event{Source: protocol.SourceZVMConsole, Text: "HCPMSG I am VMSYS2", Severity: protocol.SevInfo,
		Origin: protocol.Origin{System: "VMSYS2", Node: "VMSYS2", Host: "vmsys2.example", Addr: "10.9.9.9"},
		// Structured data is RFC 5424's: an agent's would meet roles' sd filters.
		SD: protocol.StructuredData{{ID: "zbr@1", Params: []protocol.SDParam{{Name: "role", Value: "ops"}}}}}
	a.send(t, protocol.Frame{Type: protocol.TypeEvents, Req: 2, Seq: 1, Events: []*protocol.Event{forged}})
	if f := a.read(t); f.Type != protocol.TypeReply || f.Error != nil {
		t.Fatalf("events answered %+v", f)
	}
	evs, _, err := st.Read(context.Background(), protocol.ID{}, 10, nil)
	if err != nil || len(evs) != 1 {
		t.Fatalf("stored %d events, %v", len(evs), err)
	}
	want := protocol.Origin{System: "VMSYS1", Addr: "127.0.0.1"}
	if evs[0].Origin != want {
		t.Errorf("stored origin %+v, want %+v", evs[0].Origin, want)
	}
	if evs[0].SD != nil {
		t.Errorf("stored structured data %+v from an agent, want none", evs[0].SD)
	}
}

// TestPermit: a VMMON logon must be permitted for the system it names.
func TestPermit(t *testing.T) {
	l := logrus.New()
	l.SetOutput(io.Discard)
	s, err := vmmon.New(vmmon.Config{Store: memstore.New(memstore.Config{}), Logger: l, Session: sessionConfig(),
		Permit: func(client, system string) error {
			if client == "agent1" && system == "VMSYS1" {
				return nil
			}
			return fmt.Errorf("client %s may not log on to VMMON as system %s", client, system)
		}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() { s.Close(); <-done })

	try := func(client, system string) protocol.Frame {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		a := &agent{c: c, br: bufio.NewReader(c)}
		opts := map[string]string{"kind": "zvm-agent", "spool": "x"}
		if system != "" {
			opts[vmmon.SystemOption] = system
		}
		a.send(t, protocol.Frame{Type: protocol.TypeLogon, Req: 1, Client: client, Version: protocol.Version, Options: opts})
		return a.read(t)
	}
	if f := try("agent1", "VMSYS1"); f.Type != protocol.TypeAccept {
		t.Errorf("permitted logon answered %+v", f)
	}
	for _, c := range []struct{ client, system string }{{"agent1", "VMSYS2"}, {"VMSYS1", ""}, {"agent2", "VMSYS1"}} {
		f := try(c.client, c.system)
		if f.Type != protocol.TypeRefuse || f.Reason != protocol.RefuseNotPermitted || !strings.Contains(f.Message, "may not log on") {
			t.Errorf("logon of %s as %q answered %+v", c.client, c.system, f)
		}
	}
	if f := try("agent1", "NOT A NAME"); f.Type != protocol.TypeRefuse || f.Reason != protocol.RefuseBadRequest {
		t.Errorf("a bad system name answered %+v", f)
	}
}

// TestRecheck: an agent whose permission was withdrawn is ended with bye
// revoked; one still permitted keeps its session.
func TestRecheck(t *testing.T) {
	l := logrus.New()
	l.SetOutput(io.Discard)
	var allowed atomic.Value
	allowed.Store("VMSYS1 VMSYS2")
	s, err := vmmon.New(vmmon.Config{Store: memstore.New(memstore.Config{}), Logger: l, Session: sessionConfig(),
		Permit: func(client, system string) error {
			if strings.Contains(allowed.Load().(string), system) {
				return nil
			}
			return fmt.Errorf("client %s may not log on to VMMON as system %s", client, system)
		}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() { s.Close(); <-done })
	one := logon(t, ln.Addr().String(), "VMSYS1", "a")
	two := logon(t, ln.Addr().String(), "VMSYS2", "b")
	allowed.Store("VMSYS1")
	if n := s.Recheck(); n != 1 {
		t.Fatalf("Recheck ended %d sessions, want 1", n)
	}
	if f := two.read(t); f.Type != protocol.TypeBye || f.Reason != protocol.ByeRevoked {
		t.Fatalf("VMSYS2 got %+v, want bye revoked", f)
	}
	if mark := one.events(t, 2, 1, "still here"); mark != 1 {
		t.Errorf("VMSYS1's events after the recheck: mark %d", mark)
	}
}

// TestBadSpoolID: the spool option names the store's marks, so it is
// bounded in length and characters.
func TestBadSpoolID(t *testing.T) {
	addr := serve(t, memstore.New(memstore.Config{}))
	for _, spool := range []string{strings.Repeat("x", 65), "a/b", "white space", "\x1b[2J"} {
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		a := &agent{c: c, br: bufio.NewReader(c)}
		a.send(t, protocol.Frame{Type: protocol.TypeLogon, Req: 1, Client: "VMSYS1", Version: protocol.Version,
			Options: map[string]string{"kind": "zvm-agent", "spool": spool}})
		if f := a.read(t); f.Type != protocol.TypeRefuse || f.Reason != protocol.RefuseBadRequest {
			t.Errorf("spool %q: got %+v, want refuse bad-request", spool, f)
		}
		c.Close()
	}
}
