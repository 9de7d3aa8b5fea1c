package unsolmsg_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/zbridge/zbridge/gateway/store/memstore"
	"github.com/zbridge/zbridge/protocol"
	"github.com/zbridge/zbridge/protocol/client"
)

// TestAckTellsNoID: a durable subscriber learns from the answers to its
// acks no ID of an event it was not sent: an ack refused does not name the
// newest ID the region has, and an ack of an event the subscriber's stream
// passed over (one it may not see, stored after the last it was sent) is
// refused as one never stored would be. (Before, the refusal named the
// newest ID, audit records' included, and the stream counted as sent
// every event it read.)
func TestAckTellsNoID(t *testing.T) {
	st := memstore.New(memstore.Config{})
	defer st.Close()
	a := &policyAccess{}
	a.p.Store(newPolicy(t, `
[[role]]
name = "web"
ports = ["unsolmsg"]
events = ["source=syslog,origin=web*"]
[[role]]
name = "admin"
ports = ["unsolmsg"]
events = ["severity=debug", "source=audit"]
[[client]]
name = "web"
secret-hash = "@H@"
roles = ["web"]
`))
	addr := startAccess(t, st, a)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()

	web := dialAs(t, addr, "web")
	start := subscribeWith(t, web, client.Subscription{Name: "spy"})
	seen := syslogEvent("web1", "for web")
	secret := &protocol.Event{Source: protocol.SourceAudit, MsgID: "AUDIT", Severity: protocol.SevInfo,
		Text: "client boss ran a command", Parsed: true}
	appendTo(t, st, []*protocol.Event{seen, secret, syslogEvent("db1", "db")}) // read by the stream together
	sameEvent(t, nextEvent(t, web), seen)

	newest := func() string {
		s, err := st.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return s.Last.String()
	}()
	var re *client.ReplyError
	if err := web.AckWait(ctx, "99999999999999-0"); !errors.As(err, &re) || re.Code != protocol.ErrCodeBadRequest {
		t.Fatalf("ack of an ID past every event: %v, want a bad-request reply", err)
	}
	if strings.Contains(re.Message, newest) || strings.Contains(re.Message, secret.ID.String()) {
		t.Errorf("the refusal names an ID the client was not sent: %q (newest %s, audit record %s)", re.Message, newest, secret.ID)
	}
	if err := web.AckWait(ctx, secret.ID.String()); !errors.As(err, &re) || re.Code != protocol.ErrCodeBadRequest {
		t.Fatalf("ack of the audit record passed over: %v, want a bad-request reply (as for an ID never stored)", err)
	}
	if pos, _, err := st.Position(ctx, "unsolmsg:web:spy"); err != nil || pos.String() != start {
		t.Fatalf("position %v (%v) after refused acks, want its start %s", pos, err, start)
	}
	if err := web.AckWait(ctx, seen.ID.String()); err != nil {
		t.Fatalf("ack of the event sent: %v", err)
	}
}
