package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
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

// TestTailFailoverBeforeFirstEvent: a plain tail (new events only) whose
// region goes away before any event was printed resumes on the next region
// after where its first stream started, not at that region's newest event:
// an event stored while it was failing over is printed.
func TestTailFailoverBeforeFirstEvent(t *testing.T) {
	st := memstore.New(memstore.Config{})
	defer st.Close()
	log := logrus.New()
	log.SetOutput(io.Discard)
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

	var out bytes.Buffer
	var stderr bytes.Buffer
	tl := &tailer{cfgs: []client.Config{{Addr: lnA.Addr().String(), Client: "t"}, {Addr: lnB.Addr().String(), Client: "t"}},
		sub: client.Subscription{Format: "json"}, format: "json", count: 1, out: bufio.NewWriter(&out), stderr: &stderr}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	runDone := make(chan error, 1)
	go func() { runDone <- tl.run(ctx) }()

	// Wait until the tail is subscribed on A, then take A away.
	for deadline := time.Now().Add(10 * time.Second); ; {
		if ss := a.Sessions(); len(ss) == 1 && a.EventsSent() == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the tail did not subscribe on A")
		}
		time.Sleep(10 * time.Millisecond)
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
			t.Fatalf("tail: %v (stderr %q)", err, stderr.String())
		}
	case <-time.After(5 * time.Second):
		cancel()
		err := <-runDone
		t.Fatalf("the event stored during the failover was not printed (tail: %v; stderr %q)", err, stderr.String())
	}
	tl.out.Flush()
	if !strings.Contains(out.String(), "while failing over") {
		t.Fatalf("printed %q", out.String())
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatal("timed out")
	}
}
