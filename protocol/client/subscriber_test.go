package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/gateway/store/memstore"
	"github.com/zbridge/zbridge/gateway/unsolmsg"
	"github.com/zbridge/zbridge/protocol"
	"github.com/zbridge/zbridge/protocol/client"
)

// TestSubscriberFailoverBeforeFirstEvent: a plain subscription (new events
// only) whose region goes away before any event was handled resumes on the
// next region after where its first stream started, not at that region's
// newest event: an event stored while it was failing over is handled.
func TestSubscriberFailoverBeforeFirstEvent(t *testing.T) {
	t.Parallel() // it waits for the failover
	st := memstore.New(memstore.Config{})
	defer st.Close()
	log := logrus.New()
	log.SetOutput(io.Discard)
	subscribed := &msgHook{msg: "subscribed", seen: make(chan struct{})}
	log.AddHook(subscribed)
	newSrv := func() *unsolmsg.Server {
		srv, err := unsolmsg.New(unsolmsg.Config{Store: st, Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		return srv
	}
	a, b := newSrv(), newSrv()
	lnA, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// B's listener is open but not yet served: the tail's logon there
	// waits until the test serves it.
	lnB, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	doneA, doneB := make(chan error, 1), make(chan error, 1)
	go func() { doneA <- a.Serve(lnA) }()
	defer func() { a.Close(); <-doneA }()

	var handled []string
	var failovers strings.Builder
	sub := &client.Subscriber{Configs: []client.Config{{Addr: lnA.Addr().String(), Client: "t"}, {Addr: lnB.Addr().String(), Client: "t"}},
		Subscription: client.Subscription{Format: "json"},
		Handle: func(f *protocol.Frame) error {
			handled = append(handled, f.Event.Text)
			return client.ErrStop
		},
		OnFailover: func(addr string, err error, next string) { fmt.Fprintf(&failovers, "%s: %v; %s\n", addr, err, next) }}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	runDone := make(chan error, 1)
	go func() { runDone <- sub.Run(ctx) }()

	// Wait until the tail is subscribed on A, then take A away.
	select {
	case <-subscribed.seen:
	case <-time.After(30 * time.Second):
		t.Fatal("the subscriber did not subscribe on A")
	}
	time.Sleep(100 * time.Millisecond) // the subscribe's reply has been read
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	a.Shutdown(sctx)
	scancel()

	// An event arrives while the tail fails over, then B starts serving.
	ev := &protocol.Event{Source: protocol.SourceRegion, Severity: protocol.SevInfo, Text: "while failing over", Parsed: true}
	if err := st.Append(context.Background(), []*protocol.Event{ev}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	go func() { doneB <- b.Serve(lnB) }()
	defer func() { b.Close(); <-doneB }()

	select {
	case err := <-runDone:
		if err != nil {
			t.Fatalf("Run: %v (failovers %q)", err, failovers.String())
		}
	case <-time.After(5 * time.Second):
		cancel()
		err := <-runDone
		t.Fatalf("the event stored during the failover was not handled (Run: %v; failovers %q)", err, failovers.String())
	}
	if len(handled) != 1 || handled[0] != "while failing over" {
		t.Fatalf("handled %q", handled)
	}
	if !strings.Contains(failovers.String(), lnB.Addr().String()) {
		t.Errorf("OnFailover said %q, want the next address", failovers.String())
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatal("timed out")
	}
}

// TestSubscriberReplacedStops: a durable subscription S that a newer
// session takes over stops with the region's bye replaced, rather than
// failing over and taking it back (two subscribers would take it from each
// other in turn).
func TestSubscriberReplacedStops(t *testing.T) {
	t.Parallel() // its servers are its own
	st := memstore.New(memstore.Config{})
	defer st.Close()
	log := logrus.New()
	log.SetOutput(io.Discard)
	srv, err := unsolmsg.New(unsolmsg.Config{Store: st, Logger: log, TakeoverCheck: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	defer func() { srv.Close(); <-done }()

	var failovers strings.Builder
	cfg := client.Config{Addr: ln.Addr().String(), Client: "t"}
	sub := &client.Subscriber{Configs: []client.Config{cfg}, Subscription: client.Subscription{Format: "json", Name: "S"},
		Handle:     func(*protocol.Frame) error { return nil },
		OnFailover: func(addr string, err error, next string) { fmt.Fprintf(&failovers, "%s: %v; %s\n", addr, err, next) }}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	runDone := make(chan error, 1)
	go func() { runDone <- sub.Run(ctx) }()
	// Subscribed: its claim on S is recorded.
	for deadline := time.Now().Add(30 * time.Second); ; {
		if _, ok, _ := st.Position(ctx, "unsolmsg-claim:t:S"); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the subscriber did not subscribe")
		}
		time.Sleep(10 * time.Millisecond)
	}

	other, err := client.Dial(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.SubscribeWith(ctx, client.Subscription{Name: "S"}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-runDone:
		var bye *client.ByeError
		if !errors.As(err, &bye) || bye.Reason != protocol.ByeReplaced {
			t.Fatalf("Run ended with %v, want bye %s", err, protocol.ByeReplaced)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the replaced subscriber did not stop; failovers: %s", failovers.String())
	}
	// The newer session keeps the subscription.
	time.Sleep(200 * time.Millisecond)
	if ss := srv.Sessions(); len(ss) != 1 {
		t.Fatalf("%d sessions after the subscriber stopped, want the newer one only", len(ss))
	}
}

// msgHook is a logrus hook that closes seen when msg is first logged.
type msgHook struct {
	msg  string
	once sync.Once
	seen chan struct{}
}

func (h *msgHook) Levels() []logrus.Level { return logrus.AllLevels }

func (h *msgHook) Fire(e *logrus.Entry) error {
	if e.Message == h.msg {
		h.once.Do(func() { close(h.seen) })
	}
	return nil
}
