package client_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/gateway/store/memstore"
	"github.com/zbridge/zbridge/gateway/unsolmsg"
	"github.com/zbridge/zbridge/protocol"
	"github.com/zbridge/zbridge/protocol/client"
)

// TestSubscriberRawEvents reads events as the region sent them (RawEvents,
// as `zbridge tail --format json` does): each frame's EventJSON is the
// event's object, its EventID the event's ID, for thousands of events that
// cross the read buffer's refills; Handle keeps nothing, so a frame reused
// or a buffer overwritten too early shows as a wrong object. Halfway, the
// region that serves them goes away, and the subscriber resumes on the
// other after the last event it handled (its position is the raw frame's
// EventID): every event once, in order.
func TestSubscriberRawEvents(t *testing.T) {
	// Its servers are its own.
	t.Parallel()
	const n = 20000 // ~10 MB: more than the socket buffers hold when the region goes away
	st := memstore.New(memstore.Config{})
	defer st.Close()
	texts := make([]string, n)
	for i := range texts {
		// Escapes, non-ASCII and a length that varies, so that frames end
		// anywhere in the buffer.
		texts[i] = fmt.Sprintf(`event %d "quoted" \ Grüße %s`, i, strings.Repeat("x", i%700))
		ev := &protocol.Event{Source: protocol.SourceSyslog, Severity: protocol.SevWarning, Text: texts[i], Parsed: true,
			Origin: protocol.Origin{System: "lnx01", Host: "lnx01"}}
		if err := st.Append(context.Background(), []*protocol.Event{ev}); err != nil {
			t.Fatal(err)
		}
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	serve := func() (*unsolmsg.Server, string, chan error) {
		srv, err := unsolmsg.New(unsolmsg.Config{Store: st, Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- srv.Serve(ln) }()
		return srv, ln.Addr().String(), done
	}
	a, addrA, doneA := serve()
	defer func() { a.Close(); <-doneA }()
	b, addrB, doneB := serve()
	defer func() { b.Close(); <-doneB }()

	var got []string
	var last protocol.ID
	var failovers int
	sub := &client.Subscriber{
		Configs:      []client.Config{{Addr: addrA, Client: "t"}, {Addr: addrB, Client: "t"}},
		Subscription: client.Subscription{After: "0", Format: "json"},
		RawEvents:    true,
		Handle: func(f *protocol.Frame) error {
			if f.Event != nil || f.EventJSON == nil || f.ID != "" {
				return fmt.Errorf("event %d: not a raw frame: Event %v, EventJSON %q, ID %q", len(got), f.Event, f.EventJSON, f.ID)
			}
			var e protocol.Event
			if err := json.Unmarshal(f.EventJSON, &e); err != nil {
				return fmt.Errorf("event %d: %w: %q", len(got), err, f.EventJSON)
			}
			if e.ID != f.EventID || !last.Less(e.ID) {
				return fmt.Errorf("event %d: ID %v, EventID %v, after %v", len(got), e.ID, f.EventID, last)
			}
			last = e.ID
			got = append(got, e.Text)
			if len(got) == n/2 {
				a.Close() // the subscriber fails over to b, resuming after this event
			}
			if len(got) == n {
				return client.ErrStop
			}
			return nil
		},
		OnFailover: func(string, error, string) { failovers++ },
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := sub.Run(ctx); err != nil {
		t.Fatalf("Run after %d events: %v", len(got), err)
	}
	if failovers == 0 {
		t.Error("the subscriber did not fail over: the test did not test the resume")
	}
	for i, text := range got {
		if text != texts[i] {
			t.Fatalf("event %d: %q, want %q", i, text, texts[i])
		}
	}
}
