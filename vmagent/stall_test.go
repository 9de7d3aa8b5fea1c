package vmagent

import (
	"bytes"
	"context"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestServeStopsOnStalledHost: a man in the middle of the plain TN3270
// session (or a hostile host) lets the agent log on, then stops reading
// from it and sends Read Buffer commands until the agent's TN3270
// goroutine is stuck writing the answers. A CP command then waits on the
// console; Serve must still return once its context is cancelled.
func TestServeStopsOnStalledHost(t *testing.T) {
	if testing.Short() {
		t.Skip("stalls a console session for seconds: not in -short")
	}
	_, simAddr := startConsoleSim(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	stall := make(chan struct{})
	release := make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(release)
	wg.Add(1)
	go func() { // the man in the middle
		defer wg.Done()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		s, err := net.Dial("tcp", simAddr)
		if err != nil {
			return
		}
		defer s.Close()
		wg.Add(1)
		go func() { defer wg.Done(); io.Copy(s, c) }() // client to host, until the stall
		buf := make([]byte, 32<<10)
		for { // host to client, record by record so that the stall falls between records
			s.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			if n, _ := s.Read(buf); n > 0 {
				c.Write(buf[:n])
			}
			select {
			case <-stall:
				// Nothing reaches the host any more, and nothing reads
				// from the agent; Read Buffer commands go to it.
				s.Close()
				rb := bytes.Repeat([]byte{0xF2, 0xFF, 0xEF}, 1000)
				c.SetWriteDeadline(time.Now().Add(20 * time.Second))
				for range 200 {
					if _, err := c.Write(rb); err != nil {
						break
					}
				}
				<-release
				return
			case <-release:
				return
			default:
			}
		}
	}()

	evs := &eventLog{}
	sc, err := NewScraper(ScraperConfig{Addr: ln.Addr().String(), User: "OPERATOR", Password: consolePassword, System: "VMSYS1",
		Publish: evs.add, Logger: quiet(), ReconnectMin: 50 * time.Millisecond, ReconnectMax: 200 * time.Millisecond,
		LogonTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- sc.Serve(ctx) }()
	rctx, rcancel := context.WithTimeout(ctx, 20*time.Second)
	defer rcancel()
	if err := sc.Ready(rctx); err != nil {
		t.Fatal(err)
	}
	close(stall)
	waitTN3270ReaderBlocked(t)

	qctx, qcancel := context.WithTimeout(ctx, 2*time.Second)
	_, err = sc.Run(qctx, "QUERY TIME", nil)
	qcancel()
	if err == nil {
		t.Fatal("QUERY TIME completed through a stalled host")
	}
	cancel()
	select {
	case <-errc:
	case <-time.After(20 * time.Second):
		t.Fatal("Serve still running 20 s after its context was cancelled")
	}
}

// waitTN3270ReaderBlocked waits until the TN3270 client's goroutine is
// blocked writing to its connection.
func waitTN3270ReaderBlocked(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		for _, g := range strings.Split(string(buf[:n]), "\n\n") {
			if strings.Contains(g, "tn3270.(*Client).readLoop") && strings.Contains(g, "internal/poll.(*FD).Write") {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the TN3270 client's goroutine never blocked writing")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
