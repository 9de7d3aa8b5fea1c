package session_test

import (
	"runtime"
	"strings"
	"testing"

	"github.com/zbridge/zbridge/gateway/session"
	"github.com/zbridge/zbridge/protocol"
)

// liveHeap returns the bytes of the heap in use after a collection.
func liveHeap() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// TestIdleSessionHoldsNoFrame: a session waiting for its next frame holds
// nothing decoded of its last. Each session sends a frame of the largest
// size that decodes to some 11 MB (an events frame whose event has 1 MiB
// of `"",` in its structured data) and waits with it answered; the live
// heap may grow by what the sessions' readers keep (a frame's bytes
// each), not by what their frames decoded to.
func TestIdleSessionHoldsNoFrame(t *testing.T) {
	ts := startServer(t, session.Config{})
	const sessions = 4
	head, tail := `{"type":"events","req":7,"seq":1,"events":[{"sd":{"a":{"b":[`, `]}}}]}`
	n := (protocol.DefaultMaxFrame - len(head) - len(tail) - 2) / 3
	frame := head + strings.Repeat(`"",`, n) + `""` + tail + "\n"
	before := liveHeap()
	for i := 0; i < sessions; i++ {
		c, _ := logon(t, ts.addr, nil)
		c.write(frame)
		if f := c.nextNotHeartbeat(); f.Type != protocol.TypeReply || f.Req != 7 || f.Error == nil {
			t.Fatalf("got %+v, want the echo handler's unknown-type reply to req 7", f)
		}
	}
	grown := liveHeap() - before
	t.Logf("%d sessions that each read a frame of %d bytes: the live heap grew by %.1f MB", sessions, len(frame), float64(grown)/1e6)
	if limit := int64(sessions * 2 * protocol.DefaultMaxFrame); grown > limit {
		t.Errorf("the live heap grew by %d bytes, more than %d (two frames' bytes a session)", grown, limit)
	}
}
