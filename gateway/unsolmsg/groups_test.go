package unsolmsg_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/zbridge/zbridge/gateway/store/memstore"
	"github.com/zbridge/zbridge/protocol"
	"github.com/zbridge/zbridge/protocol/client"
)

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
