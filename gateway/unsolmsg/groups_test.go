package unsolmsg_test

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/gateway/store"
	"github.com/zbridge/zbridge/gateway/store/memstore"
	"github.com/zbridge/zbridge/gateway/unsolmsg"
	"github.com/zbridge/zbridge/protocol"
	"github.com/zbridge/zbridge/protocol/client"
)

// startConfig serves UNSOLMSG on loopback with cfg (its Logger set here);
// cleanup closes the server.
func startConfig(t *testing.T, cfg unsolmsg.Config) string {
	t.Helper()
	l := logrus.New()
	l.SetOutput(io.Discard)
	cfg.Logger = l
	srv, err := unsolmsg.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return ln.Addr().String()
}

// noEventFor fails the test if c is sent an event within d. (A check that
// something does not happen: on a slow machine it may pass when it should
// not, never the other way round.)
func noEventFor(t *testing.T, c *client.Conn, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if f, err := c.Next(ctx); err == nil {
		t.Fatalf("got %+v, want nothing for %v", f, d)
	} else if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next: %v, want nothing for %v", err, d)
	}
}

// ackWait acknowledges evs and fails the test if the region refuses.
func ackWait(t *testing.T, c *client.Conn, evs []*protocol.Event) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	ids := make([]string, len(evs))
	for i, e := range evs {
		ids[i] = e.ID.String()
	}
	if err := c.AckWait(ctx, ids...); err != nil {
		t.Fatalf("ack: %v", err)
	}
}

// pending returns what st holds pending for group.
func pending(t *testing.T, st store.Store, group string) int {
	t.Helper()
	info, ok, err := st.(store.GroupInspector).GroupInfo(context.Background(), group)
	if err != nil || !ok {
		t.Fatalf("GroupInfo(%q): %v, %v", group, ok, err)
	}
	return info.Pending
}

// TestGroupAckOnlyOwn: a member of a group may acknowledge only events
// delivered to it. Another member's ack of an event delivered to the first
// is refused, with the same answer as an ack of an ID that names nothing,
// and records nothing: once the first member dies without acknowledging
// it, the event goes to the next member after the claim timeout. (Before,
// the other member's ack took it out of the group for good.)
func TestGroupAckOnlyOwn(t *testing.T) {
	st := memstore.New(memstore.Config{})
	defer st.Close()
	addr := startOn(t, st, 300*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()

	alice := dial(t, addr)
	subscribeWith(t, alice, client.Subscription{Group: "g"})
	ev := syslogEvents(1, "for alice")
	appendTo(t, st, ev)
	sameEvent(t, nextEvent(t, alice), ev[0])

	mallory := dial(t, addr) // joins after the event was stored and delivered
	subscribeWith(t, mallory, client.Subscription{Group: "g"})
	var others, nothing *client.ReplyError
	if err := mallory.AckWait(ctx, ev[0].ID.String()); !errors.As(err, &others) || others.Code != protocol.ErrCodeBadRequest {
		t.Fatalf("ack of an event delivered to another member: %v, want a bad-request reply", err)
	}
	never := protocol.ID{Ms: ev[0].ID.Ms - 1000}
	if err := mallory.AckWait(ctx, never.String()); !errors.As(err, &nothing) || nothing.Code != protocol.ErrCodeBadRequest {
		t.Fatalf("ack of an ID that names no event: %v, want a bad-request reply", err)
	}
	if others.Message != nothing.Message {
		t.Errorf("the answers tell another member's event from none:\n %q\n %q", others.Message, nothing.Message)
	}
	mallory.Close()
	alice.Close() // dies without acknowledging

	alice2 := dial(t, addr)
	subscribeWith(t, alice2, client.Subscription{Group: "g"})
	sameEvent(t, nextEvent(t, alice2), ev[0]) // claimed after the timeout
	if err := alice2.AckWait(ctx, ev[0].ID.String()); err != nil {
		t.Fatalf("ack of the event delivered to this member: %v", err)
	}
}

// TestGroupMaxUnacked: a group member is sent at most GroupMaxUnacked
// events it has not acknowledged (2×Batch: 8 here); it is sent more as it
// acknowledges, and the group's store holds no more than that for it.
// (Before, a member that never acknowledged was sent every retained event,
// each an entry the store kept.)
func TestGroupMaxUnacked(t *testing.T) {
	if testing.Short() {
		t.Skip("streams a group past its cap: not in -short")
	}
	st := memstore.New(memstore.Config{})
	defer st.Close()
	addr := startConfig(t, unsolmsg.Config{Store: st, Batch: 4, GroupClaimAfter: time.Hour})
	c := dial(t, addr)
	subscribeWith(t, c, client.Subscription{Group: "g"})
	evs := syslogEvents(20, "w")
	appendTo(t, st, evs)
	expectEvents(t, c, evs[:8])
	noEventFor(t, c, 300*time.Millisecond)
	if n := pending(t, st, "g"); n != 8 {
		t.Fatalf("the store holds %d pending for the group, want the 8 sent", n)
	}
	ackWait(t, c, evs[:3])
	expectEvents(t, c, evs[8:11])
	noEventFor(t, c, 300*time.Millisecond)
	ackWait(t, c, evs[3:11])
	expectEvents(t, c, evs[11:19])
	ackWait(t, c, evs[11:19])
	expectEvents(t, c, evs[19:])
	ackWait(t, c, evs[19:])
	if n := pending(t, st, "g"); n != 0 {
		t.Fatalf("the store holds %d pending after every event was acknowledged", n)
	}
}

// TestGroupMaxUnackedClaims: what a member holds past the claim timeout no
// longer counts: it may go to any member that reads, and the member that
// held it reads again. Alone in its group, a member that never
// acknowledges is sent its own events again, not new ones, and the store
// holds no more than the 8 for it; another member joining gets the events
// it cannot take.
func TestGroupMaxUnackedClaims(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out claim timeouts: not in -short")
	}
	st := memstore.New(memstore.Config{})
	defer st.Close()
	addr := startConfig(t, unsolmsg.Config{Store: st, Batch: 4, GroupClaimAfter: 300 * time.Millisecond})
	c := dial(t, addr)
	subscribeWith(t, c, client.Subscription{Group: "g"})
	evs := syslogEvents(20, "c")
	appendTo(t, st, evs)
	expectEvents(t, c, evs[:8])
	expectEvents(t, c, evs[:8]) // claimed again, by the same member
	if n := pending(t, st, "g"); n != 8 {
		t.Fatalf("the store holds %d pending for the group, want 8", n)
	}
	other := dial(t, addr)
	subscribeWith(t, other, client.Subscription{Group: "g"})
	got := map[protocol.ID]bool{}
	for len(got) < len(evs) {
		e := nextEvent(t, other)
		got[e.ID] = true
		ackWait(t, other, []*protocol.Event{e})
	}
}

// TestMaxNames: a client subscribes with at most MaxNames durable
// subscription and group names (within NameWindow); one more is refused
// not-permitted, and nothing is made in the store for it; a name it used
// may be used again, and other clients count apart. (Before, a client
// could make a group or a position for every name it thought of.)
func TestMaxNames(t *testing.T) {
	st := memstore.New(memstore.Config{})
	defer st.Close()
	addr := startConfig(t, unsolmsg.Config{Store: st, MaxNames: 3})
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	for _, s := range []client.Subscription{{Group: "g1"}, {Group: "g2"}, {Name: "s1"}} {
		subscribeWith(t, dialAs(t, addr, "a"), s)
	}
	_, err := dialAs(t, addr, "a").SubscribeWith(ctx, client.Subscription{Group: "g4"})
	var re *client.ReplyError
	if !errors.As(err, &re) || re.Code != protocol.ErrCodeNotPermitted {
		t.Fatalf("a fourth name: %v, want a not-permitted reply", err)
	}
	appendTo(t, st, syslogEvents(1, "e"))
	if _, ok, err := st.GroupInfo(ctx, "g4"); err != nil || ok {
		t.Fatalf("the refused group is in the store: %v, %v", ok, err)
	}
	subscribeWith(t, dialAs(t, addr, "a"), client.Subscription{Group: "g1"}) // again: counted already
	subscribeWith(t, dialAs(t, addr, "a"), client.Subscription{})            // plain: not counted
	subscribeWith(t, dialAs(t, addr, "b"), client.Subscription{Group: "g4"}) // another client
}
