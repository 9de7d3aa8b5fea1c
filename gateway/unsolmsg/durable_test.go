package unsolmsg_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/gateway/store"
	"github.com/zbridge/zbridge/gateway/store/memstore"
	"github.com/zbridge/zbridge/gateway/unsolmsg"
	"github.com/zbridge/zbridge/protocol"
	"github.com/zbridge/zbridge/protocol/client"
)

// startOn starts an UNSOLMSG server over st (which the caller closes) and
// returns its address; cleanup closes the server.
func startOn(t *testing.T, st store.Store, claimAfter time.Duration) string {
	t.Helper()
	l := logrus.New()
	l.SetOutput(io.Discard)
	srv, err := unsolmsg.New(unsolmsg.Config{Store: st, Logger: l, GroupClaimAfter: claimAfter, TakeoverCheck: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, unsolmsg.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

func subscribeWith(t *testing.T, c *client.Conn, s client.Subscription) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	after, err := c.SubscribeWith(ctx, s)
	if err != nil {
		t.Fatalf("subscribe %+v: %v", s, err)
	}
	return after
}

func appendTo(t *testing.T, st store.Store, evs []*protocol.Event) {
	t.Helper()
	if err := st.Append(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
}

// TestDurableSubscription: a durable subscriber that acknowledged some
// events and went away gets, on a new session with the same name, exactly
// the events after the last it acknowledged, including those that arrived
// while it was away; a subscriber that never acknowledged anything misses
// nothing either.
func TestDurableSubscription(t *testing.T) {
	st := memstore.New(memstore.Config{})
	defer st.Close()
	addr := startOn(t, st, 0)

	c := dial(t, addr)
	subscribeWith(t, c, client.Subscription{Name: "ops-auto"})
	first := syslogEvents(10, "a")
	appendTo(t, st, first)
	for i := 0; i < 10; i++ {
		e := nextEvent(t, c)
		sameEvent(t, e, first[i])
	}
	// Handled the first six: ack the sixth (the newest stands for all).
	if err := c.Ack(first[5].ID.String()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the ack to be recorded", func() bool {
		id, ok, _ := st.Position(context.Background(), "unsolmsg:tester:ops-auto")
		return ok && id == first[5].ID
	})
	c.Close()

	more := syslogEvents(5, "b")
	appendTo(t, st, more)

	c2 := dial(t, addr)
	after := subscribeWith(t, c2, client.Subscription{Name: "ops-auto", After: "0"}) // after is ignored on resume
	if after != first[5].ID.String() {
		t.Fatalf("resumed after %s, want %s", after, first[5].ID)
	}
	expectEvents(t, c2, append(append([]*protocol.Event{}, first[6:]...), more...))

	// A new name with no ack before it disconnects still resumes where
	// it started.
	c3 := dial(t, addr)
	start := subscribeWith(t, c3, client.Subscription{Name: "fresh"})
	c3.Close()
	late := syslogEvents(3, "c")
	appendTo(t, st, late)
	c4 := dial(t, addr)
	if got := subscribeWith(t, c4, client.Subscription{Name: "fresh"}); got != start {
		t.Fatalf("fresh subscription resumed after %s, want its start %s", got, start)
	}
	expectEvents(t, c4, late)
}

// TestAckErrors: an ack outside a durable or group subscription, or with a
// bad ID, is answered with an error and the session goes on.
func TestAckErrors(t *testing.T) {
	st := memstore.New(memstore.Config{})
	defer st.Close()
	addr := startOn(t, st, 0)
	c := dial(t, addr)
	subscribe(t, c, nil, "", "json")
	// The error reply to an ack outside a durable subscription is not
	// shown by the client; the session goes on.
	if err := c.Ack("1-0"); err != nil {
		t.Fatal(err)
	}
	if err := c.Ack("not-an-id"); err != nil {
		t.Fatal(err)
	}
	evs := syslogEvents(1, "x")
	appendTo(t, st, evs)
	sameEvent(t, nextEvent(t, c), evs[0])

	c2 := dial(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if _, err := c2.SubscribeWith(ctx, client.Subscription{Name: "a", Group: "b"}); err == nil {
		t.Fatal("subscription and group together accepted")
	}
	if _, err := c2.SubscribeWith(ctx, client.Subscription{Name: "bad name!"}); err == nil {
		t.Fatal("bad subscription name accepted")
	}
}

// TestAckNotSent: an ack naming an event this subscription was never sent
// (an ID past every event stored) is refused with bad-request and does not
// move the position; an ack of what was sent, or of what was stored before
// a resumed session began (received by an earlier session), is recorded.
func TestAckNotSent(t *testing.T) {
	st := memstore.New(memstore.Config{})
	defer st.Close()
	addr := startOn(t, st, 0)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	position := func() protocol.ID {
		t.Helper()
		id, ok, err := st.Position(ctx, "unsolmsg:tester:auto")
		if err != nil || !ok {
			t.Fatalf("Position: %v, %v", ok, err)
		}
		return id
	}

	c := dial(t, addr)
	start, err := protocol.ParseID(subscribeWith(t, c, client.Subscription{Name: "auto"}))
	if err != nil {
		t.Fatal(err)
	}
	sent := syslogEvents(3, "keep")
	appendTo(t, st, sent)
	for i := range sent {
		sameEvent(t, nextEvent(t, c), sent[i])
	}
	future := protocol.ID{Ms: sent[2].ID.Ms + 1_000_000}
	var re *client.ReplyError
	if err := c.AckWait(ctx, sent[0].ID.String(), future.String()); !errors.As(err, &re) || re.Code != protocol.ErrCodeBadRequest {
		t.Fatalf("ack of an ID never sent: %v, want a bad-request reply", err)
	}
	if got := position(); got != start {
		t.Fatalf("position %v after a refused ack, want the start %v", got, start)
	}
	if err := c.AckWait(ctx, sent[1].ID.String()); err != nil {
		t.Fatalf("ack of a sent event: %v", err)
	}
	if got := position(); got != sent[1].ID {
		t.Fatalf("position %v, want %v", got, sent[1].ID)
	}
	c.Close()

	// A new session of the same subscription may ack what the last one
	// received (stored before it subscribed), before it is sent again;
	// not an event after every one stored.
	c2 := dial(t, addr)
	subscribeWith(t, c2, client.Subscription{Name: "auto"})
	if err := c2.AckWait(ctx, future.String()); !errors.As(err, &re) || re.Code != protocol.ErrCodeBadRequest {
		t.Fatalf("resumed session, ack of an ID never sent: %v, want a bad-request reply", err)
	}
	if err := c2.AckWait(ctx, sent[2].ID.String()); err != nil {
		t.Fatalf("resumed session acking what the last one received: %v", err)
	}
	if got := position(); got != sent[2].ID {
		t.Fatalf("position %v, want %v", got, sent[2].ID)
	}
	// The session goes on: the event after the ack arrives.
	late := syslogEvents(1, "late")
	appendTo(t, st, late)
	sameEvent(t, nextEvent(t, c2), sent[2])
	sameEvent(t, nextEvent(t, c2), late[0])
}

// TestDurableTakeover: a durable subscription has one session at a time.
// A second session of the name, on another server over the same store (as
// on another region sharing Redis), takes it over: the first ends with bye
// replaced, the second gets the events, and acks of the first no longer
// matter to anyone. Subscribing again takes it back.
func TestDurableTakeover(t *testing.T) {
	st := memstore.New(memstore.Config{})
	defer st.Close()
	addrA, addrB := startOn(t, st, 0), startOn(t, st, 0)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()

	first := dial(t, addrA)
	subscribeWith(t, first, client.Subscription{Name: "auto"})
	evs := syslogEvents(2, "a")
	appendTo(t, st, evs)
	sameEvent(t, nextEvent(t, first), evs[0])

	second := dial(t, addrB)
	subscribeWith(t, second, client.Subscription{Name: "auto"})
	// first gets what is left and then the bye.
	var bye *client.ByeError
	for {
		f, err := first.Next(ctx)
		if errors.As(err, &bye) {
			break
		}
		if err != nil {
			t.Fatalf("first session: %v, want bye %s", err, protocol.ByeReplaced)
		}
		if f.Type == protocol.TypeEvent && f.Event.Text != evs[1].Text {
			t.Fatalf("first session got %+v", f.Event)
		}
	}
	if bye.Reason != protocol.ByeReplaced {
		t.Fatalf("first session ended %+v, want reason %s", bye, protocol.ByeReplaced)
	}
	more := syslogEvents(3, "b")
	appendTo(t, st, more)
	expectEvents(t, second, append(append([]*protocol.Event{}, evs...), more...))

	// The first comes back (on the same server as the second): now the
	// second is replaced.
	third := dial(t, addrB)
	subscribeWith(t, third, client.Subscription{Name: "auto"})
	for {
		_, err := second.Next(ctx)
		if errors.As(err, &bye) {
			break
		}
		if err != nil {
			t.Fatalf("second session: %v, want bye %s", err, protocol.ByeReplaced)
		}
	}
	if bye.Reason != protocol.ByeReplaced {
		t.Fatalf("second session ended %+v, want reason %s", bye, protocol.ByeReplaced)
	}
	// A group of the same name is another thing: not replaced.
	g := dial(t, addrA)
	subscribeWith(t, g, client.Subscription{Group: "auto"})
	late := syslogEvents(1, "c")
	appendTo(t, st, late)
	sameEvent(t, nextEvent(t, g), late[0])
}

// TestGroupNewOnEmptyStore: a new group subscribed without after starts at
// the newest event when the subscribe is answered, also on an empty store:
// an event appended right after the reply reaches the member (it used to be
// skipped when the group was created by the member's first read, after it).
func TestGroupNewOnEmptyStore(t *testing.T) {
	for i := range 30 {
		st := memstore.New(memstore.Config{})
		addr := startOn(t, st, 0)
		c := dial(t, addr)
		subscribeWith(t, c, client.Subscription{Group: fmt.Sprint("g", i)})
		evs := syslogEvents(1, "first")
		appendTo(t, st, evs)
		sameEvent(t, nextEvent(t, c), evs[0])
		c.Close()
		st.Close()
	}
}

// TestGroupShares: two members of a group together get every event exactly
// once, each some; a member that dies holding unacknowledged events has
// them delivered to the other after the claim timeout.
func TestGroupShares(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out a group claim timeout (seconds); runs without -short")
	}
	st := memstore.New(memstore.Config{})
	defer st.Close()
	// Long enough that no event is reclaimed from a live member that is
	// merely slow (a loaded machine), short enough for the orphan part.
	const claim = 3 * time.Second
	addr := startOn(t, st, claim)

	var mu sync.Mutex
	got := map[protocol.ID]int{}
	per := [2]int{}
	members := make([]*client.Conn, 2)
	for i := range members {
		members[i] = dial(t, addr)
		subscribeWith(t, members[i], client.Subscription{Group: "auto"})
	}
	const n = 400
	var wg sync.WaitGroup
	for i, c := range members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				f, err := c.Next(ctx)
				cancel()
				if err != nil {
					return // quiet for 2s: the test's events are all out
				}
				if f.Type != protocol.TypeEvent {
					continue
				}
				mu.Lock()
				got[f.Event.ID]++
				per[i]++
				mu.Unlock()
				if err := c.Ack(f.Event.ID.String()); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for b := 0; b < n/20; b++ {
		appendTo(t, st, syslogEvents(20, "g"))
		time.Sleep(2 * time.Millisecond)
	}
	wg.Wait()
	if len(got) != n {
		t.Fatalf("the group got %d distinct events, want %d", len(got), n)
	}
	for id, k := range got {
		if k != 1 {
			t.Fatalf("event %s delivered %d times to a group whose members both lived", id, k)
		}
	}
	if per[0] == 0 || per[1] == 0 {
		t.Fatalf("shares %v: one member got nothing", per)
	}

	for _, c := range members {
		c.Close()
	}

	// A member takes events and dies without acking them: after the claim
	// timeout, and not before, they go to the other member.
	a := dial(t, addr)
	subscribeWith(t, a, client.Subscription{Group: "solo"})
	orphans := syslogEvents(10, "orphan")
	appendTo(t, st, orphans)
	for i := range orphans {
		sameEvent(t, nextEvent(t, a), orphans[i])
	}
	b := dial(t, addr)
	subscribeWith(t, b, client.Subscription{Group: "solo"})
	ctx, cancel := context.WithTimeout(context.Background(), claim/2)
	if f, err := b.Next(ctx); err == nil {
		t.Fatalf("the second member got %+v while the first held it within the claim timeout", f)
	}
	cancel()
	a.Close()
	expectEvents(t, b, orphans)
}

// TestGroupNewAfterZero: a new group subscribed with after "0" starts with
// every retained event, as after "0" means everywhere else; it does not
// start at the newest.
func TestGroupNewAfterZero(t *testing.T) {
	st := memstore.New(memstore.Config{})
	defer st.Close()
	addr := startOn(t, st, 0)
	old := syslogEvents(3, "retained")
	appendTo(t, st, old)
	c := dial(t, addr)
	subscribeWith(t, c, client.Subscription{Group: "from-start", After: "0"})
	expectEvents(t, c, old)
}
