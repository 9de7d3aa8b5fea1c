package unsolmsg_test

import (
	"testing"

	"github.com/zbridge/zbridge/gateway/session"
	"github.com/zbridge/zbridge/gateway/store/memstore"
	"github.com/zbridge/zbridge/protocol/client"
)

// TestIdleSubscribersHoldNoBatch: a subscriber that has been sent all
// there is gives its batch back before it waits, in each kind of stream
// (JSON, lx, a group member), and takes one again for new events; an ended
// one holds none either. (A member that holds as many unacknowledged
// events as it may, waiting for acks, gives its batch back too.)
func TestIdleSubscribersHoldNoBatch(t *testing.T) {
	ts := newServer(t, memstore.Config{}, session.Config{})
	plain, lx, member := dial(t, ts.addr), dial(t, ts.addr), dial(t, ts.addr)
	subscribe(t, plain, nil, "", "")
	subscribe(t, lx, nil, "", "lx")
	subscribeWith(t, member, client.Subscription{Group: "ops"})
	for round := range 3 {
		evs := syslogEvents(700, "round") // more than a batch (512)
		ts.append(t, evs...)
		expectEvents(t, plain, evs)
		for range evs {
			next(t, lx)
		}
		for range evs { // acknowledged as they come: a member holds 2×Batch at most
			if err := member.Ack(nextEvent(t, member).ID.String()); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, "the idle streams to give their batches back", func() bool { return ts.srv.BatchesLent() == 0 })
		if round == 2 {
			plain.Close()
			lx.Close()
			member.Close()
		}
	}
	ts.close(t)
	if n := ts.srv.BatchesLent(); n != 0 {
		t.Fatalf("%d batches held after Close, want 0", n)
	}
}
