package unsolmsg_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/gateway/session"
	"github.com/zbridge/zbridge/gateway/store"
	"github.com/zbridge/zbridge/gateway/store/memstore"
	"github.com/zbridge/zbridge/gateway/unsolmsg"
	"github.com/zbridge/zbridge/protocol"
	"github.com/zbridge/zbridge/protocol/client"
)

// testAccess: client "blind" may not subscribe; "web" sees events from
// hosts web*; groups named SHARED* are shared.
type testAccess struct{}

func (testAccess) Subscribe(sess *session.Session, f *protocol.Frame) error {
	if sess.Client == "blind" {
		return fmt.Errorf("client blind may not subscribe: no role grants events")
	}
	return nil
}

func (testAccess) Visible(client string, e *protocol.Event) bool {
	return client != "web" || strings.HasPrefix(e.Origin.System, "web")
}

func (testAccess) GroupKey(client, group string) string {
	if strings.HasPrefix(group, "SHARED") {
		return group
	}
	return client + ":" + group
}

func startWithAccess(t *testing.T, st store.Store) string {
	t.Helper()
	return startAccess(t, st, testAccess{})
}

// startAccess serves UNSOLMSG on loopback from st with Access a.
func startAccess(t *testing.T, st store.Store, a unsolmsg.Access) string {
	t.Helper()
	l := logrus.New()
	l.SetOutput(io.Discard)
	srv, err := unsolmsg.New(unsolmsg.Config{Store: st, Logger: l, TakeoverCheck: 100 * time.Millisecond, Access: a})
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

func dialAs(t *testing.T, addr, name string) *client.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	c, err := client.Dial(ctx, client.Config{Addr: addr, Client: name})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestSubscriptionNotTakenOver: a durable subscription name belongs to the
// client that made it: another client subscribing with the same name gets
// its own subscription, and the first keeps its session and its position.
// (Before names were per client, the second took the first's over: the
// first ended with bye replaced and the second resumed at its position.)
func TestSubscriptionNotTakenOver(t *testing.T) {
	st := memstore.New(memstore.Config{})
	defer st.Close()
	addr := startOn(t, st, 0)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()

	owner := dialAs(t, addr, "owner")
	subscribeWith(t, owner, client.Subscription{Name: "AUTO", After: "0"})
	evs := syslogEvents(3, "a")
	appendTo(t, st, evs)
	for i := range evs {
		sameEvent(t, nextEvent(t, owner), evs[i])
	}
	if err := owner.AckWait(ctx, evs[1].ID.String()); err != nil {
		t.Fatal(err)
	}

	thief := dialAs(t, addr, "thief")
	after := subscribeWith(t, thief, client.Subscription{Name: "AUTO"})
	if after == evs[1].ID.String() {
		t.Fatalf("the other client resumed at the owner's position %s", after)
	}
	more := syslogEvents(1, "b")
	appendTo(t, st, more)
	sameEvent(t, nextEvent(t, thief), more[0])
	// The owner was not replaced: it gets the new event too, well after
	// its takeover check would have run.
	sameEvent(t, nextEvent(t, owner), more[0])
	time.Sleep(300 * time.Millisecond) // three takeover checks
	late := syslogEvents(1, "c")
	appendTo(t, st, late)
	if f, err := owner.Next(ctx); err != nil || f.Type != protocol.TypeEvent || f.Event.Text != late[0].Text {
		var bye *client.ByeError
		if errors.As(err, &bye) {
			t.Fatalf("the owner's session ended: %+v", bye)
		}
		t.Fatalf("owner got %+v, %v", f, err)
	}
	pos, ok, err := st.Position(ctx, "unsolmsg:owner:AUTO")
	if err != nil || !ok || pos != evs[1].ID {
		t.Errorf("owner's position %v %v %v, want %v", pos, ok, err, evs[1].ID)
	}
}

// TestGroupsPerClient: a group name is the client's own unless shared.
func TestGroupsPerClient(t *testing.T) {
	st := memstore.New(memstore.Config{})
	defer st.Close()
	addr := startWithAccess(t, st)
	a := dialAs(t, addr, "a")
	b := dialAs(t, addr, "b")
	subscribeWith(t, a, client.Subscription{Group: "OPS", After: "0"})
	subscribeWith(t, b, client.Subscription{Group: "OPS", After: "0"})
	evs := syslogEvents(4, "g")
	appendTo(t, st, evs)
	// Not shared: each client's group gets every event.
	expectEvents(t, a, evs)
	expectEvents(t, b, evs)
}

// TestVisibility: a subscriber sees only what its client may see, and a
// client refused subscribing is answered not-permitted.
func TestVisibility(t *testing.T) {
	st := memstore.New(memstore.Config{})
	defer st.Close()
	addr := startWithAccess(t, st)
	web := dialAs(t, addr, "web")
	subscribeWith(t, web, client.Subscription{})
	appendTo(t, st, []*protocol.Event{syslogEvent("db1", "secret db"), syslogEvent("web1", "web ok")})
	if e := nextEvent(t, web); e.Text != "web ok" {
		t.Errorf("web got %q", e.Text)
	}

	blind := dialAs(t, addr, "blind")
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	_, err := blind.SubscribeWith(ctx, client.Subscription{})
	var re *client.ReplyError
	if !errors.As(err, &re) || re.Code != protocol.ErrCodeNotPermitted || !strings.Contains(re.Message, "no role grants events") {
		t.Fatalf("blind subscribe: %v", err)
	}
}
