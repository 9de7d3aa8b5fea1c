package tn3270

import (
	"errors"
	"io"
	"net"
	"sync"
	"testing"

	"github.com/racingmars/go3270"
)

// testHost is a TN3270 server for tests, built on go3270: each connection
// is negotiated with go3270.NegotiateTelnet and then handed to serve. It
// listens on 127.0.0.1 and stops (listener, connections, goroutines) when
// the test ends.
type testHost struct {
	t    testing.TB
	ln   net.Listener
	addr string
	wg   sync.WaitGroup

	mu    sync.Mutex // guards the following fields
	conns map[net.Conn]bool
	devs  []go3270.DevInfo // what each connection negotiated
}

// serveFunc serves one negotiated connection. Returning io.EOF or a
// closed-connection error is not a failure.
type serveFunc func(conn net.Conn, dev go3270.DevInfo) error

func startHost(t testing.TB, serve serveFunc) *testHost {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &testHost{t: t, ln: ln, addr: ln.Addr().String(), conns: map[net.Conn]bool{}}
	h.wg.Add(1)
	go h.acceptLoop(serve)
	t.Cleanup(h.stop)
	return h
}

func (h *testHost) acceptLoop(serve serveFunc) {
	defer h.wg.Done()
	for {
		conn, err := h.ln.Accept()
		if err != nil {
			return
		}
		h.mu.Lock()
		h.conns[conn] = true
		h.mu.Unlock()
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			defer func() {
				conn.Close()
				h.mu.Lock()
				delete(h.conns, conn)
				h.mu.Unlock()
			}()
			dev, err := go3270.NegotiateTelnet(conn)
			if err != nil {
				if !isClosed(err) {
					h.t.Errorf("test host: NegotiateTelnet: %v", err)
				}
				return
			}
			h.mu.Lock()
			h.devs = append(h.devs, dev)
			h.mu.Unlock()
			if err := serve(conn, dev); err != nil && !isClosed(err) {
				h.t.Errorf("test host: %v", err)
			}
		}()
	}
}

func (h *testHost) devInfos() []go3270.DevInfo {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]go3270.DevInfo(nil), h.devs...)
}

func (h *testHost) stop() {
	h.ln.Close()
	h.mu.Lock()
	for c := range h.conns {
		c.Close()
	}
	h.mu.Unlock()
	h.wg.Wait()
}

func isClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, io.ErrUnexpectedEOF) || isReset(err)
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op)
}

// drain reads from conn until the peer closes it.
func drain(conn net.Conn) error {
	_, err := io.Copy(io.Discard, conn)
	return err
}
