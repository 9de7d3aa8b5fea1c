package vmmon_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/gateway/session"
	"github.com/zbridge/zbridge/gateway/store"
	"github.com/zbridge/zbridge/gateway/store/memstore"
	"github.com/zbridge/zbridge/gateway/vmmon"
	"github.com/zbridge/zbridge/protocol"
)

// serve starts a VMMON server over st; cleanup closes it.
func serve(t *testing.T, st store.Store) string {
	t.Helper()
	l := logrus.New()
	l.SetOutput(io.Discard)
	s, err := vmmon.New(vmmon.Config{Store: st, Logger: l, Session: sessionConfig()})
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
	return ln.Addr().String()
}

// agent is a raw VMMON session: the frames a z/VM agent sends.
type agent struct {
	c  net.Conn
	br *bufio.Reader
}

func logon(t *testing.T, addr, system, spool string) *agent {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	a := &agent{c: c, br: bufio.NewReader(c)}
	a.send(t, protocol.Frame{Type: protocol.TypeLogon, Req: 1, Client: system, Version: protocol.Version,
		Options: map[string]string{"kind": "zvm-agent", "spool": spool}})
	if f := a.read(t); f.Type != protocol.TypeAccept {
		t.Fatalf("logon answered %+v", f)
	}
	return a
}

func (a *agent) send(t *testing.T, f protocol.Frame) {
	t.Helper()
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	a.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := a.c.Write(append(b, '\n')); err != nil {
		t.Fatal(err)
	}
}

func (a *agent) read(t *testing.T) protocol.Frame {
	t.Helper()
	a.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		line, err := a.br.ReadBytes('\n')
		if err != nil {
			t.Fatal(err)
		}
		var f protocol.Frame
		if err := json.Unmarshal(line, &f); err != nil {
			t.Fatal(err)
		}
		if f.Type != protocol.TypeHeartbeat {
			return f
		}
	}
}

// events sends the events with sequences first.. and returns the region's
// stored mark from the reply.
func (a *agent) events(t *testing.T, req uint64, first uint64, texts ...string) uint64 {
	t.Helper()
	var evs []*protocol.Event
	for _, x := range texts {
		evs = append(evs, &protocol.Event{Source: protocol.SourceZVMConsole, Text: x, Severity: protocol.SevInfo})
	}
	a.send(t, protocol.Frame{Type: protocol.TypeEvents, Req: req, Seq: first, Events: evs})
	f := a.read(t)
	if f.Type != protocol.TypeReply || f.Error != nil {
		t.Fatalf("events answered %+v", f)
	}
	return f.Seq
}

func texts(t *testing.T, st store.Store) []string {
	t.Helper()
	evs, _, err := st.Read(context.Background(), protocol.ID{}, 1000, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		out = append(out, e.Text)
	}
	return out
}

// TestSpoolMarkSharedThroughStore: the mark of what an agent's spool has
// had stored is kept in the store, so a second VMMON server over the same
// store (a restarted region, or another region on one Redis) does not store
// a replayed batch again but does store what follows it.
func TestSpoolMarkSharedThroughStore(t *testing.T) {
	st := memstore.New(memstore.Config{})
	defer st.Close()

	a := logon(t, serve(t, st), "VMSYS1", "spool-1")
	if mark := a.events(t, 2, 1, "one", "two", "three"); mark != 3 {
		t.Fatalf("mark after 3 events = %d", mark)
	}
	a.c.Close() // the agent did not see the acknowledgement: it replays

	b := logon(t, serve(t, st), "VMSYS1", "spool-1")
	if mark := b.events(t, 2, 1, "one", "two", "three", "four"); mark != 4 {
		t.Fatalf("mark after the replay plus one = %d", mark)
	}
	if got, want := fmt.Sprint(texts(t, st)), fmt.Sprint([]string{"one", "two", "three", "four"}); got != want {
		t.Fatalf("stored %s, want %s", got, want)
	}

	// Another spool (the agent started over with a new one) is numbered
	// afresh.
	c := logon(t, serve(t, st), "VMSYS1", "spool-2")
	if mark := c.events(t, 2, 1, "five"); mark != 1 {
		t.Fatalf("mark of a new spool = %d", mark)
	}
	if n := len(texts(t, st)); n != 5 {
		t.Fatalf("%d events stored, want 5", n)
	}
}

func sessionConfig() session.Config { return session.Config{Region: "TEST"} }

// TestSpoolMarkAfterFailBack: an agent that moves from region A to B and
// back to A does not have A store again what B stored: A reads the mark
// from the store when the agent comes back, not only the first time it
// saw the spool.
func TestSpoolMarkAfterFailBack(t *testing.T) {
	st := memstore.New(memstore.Config{})
	defer st.Close()
	addrA, addrB := serve(t, st), serve(t, st)

	a := logon(t, addrA, "VMSYS1", "spool-1")
	if mark := a.events(t, 2, 1, "one", "two"); mark != 2 {
		t.Fatalf("mark on A = %d", mark)
	}
	a.c.Close()
	b := logon(t, addrB, "VMSYS1", "spool-1")
	if mark := b.events(t, 2, 3, "three", "four"); mark != 4 {
		t.Fatalf("mark on B = %d", mark)
	}
	b.c.Close() // the agent did not see B's acknowledgement: it replays on A

	var a2 *agent
	for i := 0; ; i++ { // A may not have seen the first session end yet
		c, err := net.DialTimeout("tcp", addrA, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		x := &agent{c: c, br: bufio.NewReader(c)}
		x.send(t, protocol.Frame{Type: protocol.TypeLogon, Req: 1, Client: "VMSYS1", Version: protocol.Version,
			Options: map[string]string{"kind": "zvm-agent", "spool": "spool-1"}})
		if f := x.read(t); f.Type == protocol.TypeAccept {
			a2 = x
			t.Cleanup(func() { c.Close() })
			break
		}
		c.Close()
		if i > 100 {
			t.Fatal("A does not take the agent back")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if mark := a2.events(t, 2, 3, "three", "four", "five"); mark != 5 {
		t.Fatalf("mark on A again = %d", mark)
	}
	if got, want := fmt.Sprint(texts(t, st)), fmt.Sprint([]string{"one", "two", "three", "four", "five"}); got != want {
		t.Fatalf("stored %s, want %s", got, want)
	}
}

// positionFails is a store whose Position fails while fail is set, as a
// Redis-backed store's does while Redis is down.
type positionFails struct {
	store.Store
	fail atomic.Bool
}

func (s *positionFails) Position(ctx context.Context, name string) (protocol.ID, bool, error) {
	if s.fail.Load() {
		return protocol.ID{}, false, errors.New("redis store: position: connection refused")
	}
	return s.Store.Position(ctx, name)
}

// TestSpoolMarkUnreadable: while the stored mark cannot be read (Redis
// down), an agent's events are still stored and acknowledged, with the
// region's own mark; the stored mark is read with a later batch once it can
// be, and a replay is then dropped.
func TestSpoolMarkUnreadable(t *testing.T) {
	mem := memstore.New(memstore.Config{})
	defer mem.Close()
	st := &positionFails{Store: mem}
	addr := serve(t, st)

	// Another region stored 1..2 before this one saw the spool.
	if err := store.AppendMarked(context.Background(), mem, []*protocol.Event{
		{Source: protocol.SourceZVMConsole, Text: "one"}, {Source: protocol.SourceZVMConsole, Text: "two"},
	}, "vmmon:VMSYS1/spool-1", protocol.ID{Ms: 2}); err != nil {
		t.Fatal(err)
	}
	st.fail.Store(true)
	a := logon(t, addr, "VMSYS1", "spool-1")
	if mark := a.events(t, 2, 3, "three"); mark != 3 {
		t.Fatalf("mark with the stored one unreadable = %d, want 3", mark)
	}
	st.fail.Store(false)
	// The agent replays from 1 (it lost the acknowledgements): the stored
	// mark, now read, says 3.
	if mark := a.events(t, 3, 1, "one", "two", "three", "four"); mark != 4 {
		t.Fatalf("mark after the replay = %d, want 4", mark)
	}
	if got, want := fmt.Sprint(texts(t, mem)), fmt.Sprint([]string{"one", "two", "three", "four"}); got != want {
		t.Fatalf("stored %s, want %s", got, want)
	}
}

// syncFails is a store whose Sync fails while fail is set, as the Redis
// store's does while the events are held only in its buffer (Redis down).
type syncFails struct {
	store.Store
	fail atomic.Bool
}

func (s *syncFails) Sync(ctx context.Context) error {
	if s.fail.Load() {
		return errors.New("redisstore: sync: redis unavailable: 2 events held only in this process's memory")
	}
	return store.Sync(ctx, s.Store)
}

// TestUnsyncedNotAcknowledged: a batch the store took but cannot say is
// durable (Sync fails: Redis down) is answered with an error, so that the
// agent keeps its spool; sent again, until the store has it, it is not
// stored twice.
func TestUnsyncedNotAcknowledged(t *testing.T) {
	mem := memstore.New(memstore.Config{})
	defer mem.Close()
	st := &syncFails{Store: mem}
	addr := serve(t, st)
	st.fail.Store(true)
	a := logon(t, addr, "VMSYS1", "spool-1")
	for req := range uint64(2) {
		a.send(t, protocol.Frame{Type: protocol.TypeEvents, Req: 2 + req, Seq: 1, Events: []*protocol.Event{
			{Source: protocol.SourceZVMConsole, Text: "one", Severity: protocol.SevInfo},
			{Source: protocol.SourceZVMConsole, Text: "two", Severity: protocol.SevInfo},
		}})
		if f := a.read(t); f.Type != protocol.TypeReply || f.Error == nil {
			t.Fatalf("events the store could not make durable answered %+v, want an error", f)
		}
	}
	st.fail.Store(false)
	if mark := a.events(t, 4, 1, "one", "two", "three"); mark != 3 {
		t.Fatalf("mark once the store syncs = %d, want 3", mark)
	}
	if got, want := fmt.Sprint(texts(t, mem)), fmt.Sprint([]string{"one", "two", "three"}); got != want {
		t.Fatalf("stored %s, want %s", got, want)
	}
}

// TestMaxBatch: a batch is at most the protocol's, which the frame decoder
// enforces; a config that asks for more is refused.
func TestMaxBatch(t *testing.T) {
	l := logrus.New()
	l.SetOutput(io.Discard)
	for _, n := range []int{0, 1, protocol.MaxBatch} {
		if _, err := vmmon.New(vmmon.Config{Store: memstore.New(memstore.Config{}), Logger: l, MaxBatch: n}); err != nil {
			t.Errorf("MaxBatch %d: %v", n, err)
		}
	}
	if _, err := vmmon.New(vmmon.Config{Store: memstore.New(memstore.Config{}), Logger: l, MaxBatch: protocol.MaxBatch + 1}); err == nil {
		t.Errorf("MaxBatch %d taken", protocol.MaxBatch+1)
	}
}
