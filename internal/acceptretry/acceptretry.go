// Package acceptretry is the one rule the project's servers follow when
// Accept (or a datagram read) fails: which errors pass, so the server
// keeps serving, and how long to wait before trying again. Stream servers
// use it through package acceptloop, whose loop also makes the wait
// interruptible by shutdown; a datagram server calls Retryable itself.
package acceptretry

import (
	"errors"
	"net"
	"syscall"
	"time"
)

// Retryable reports an error that passes: out of file descriptors or
// buffers, a connection aborted before it was accepted, or an error that
// says it is temporary or a timeout.
func Retryable(err error) bool {
	if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.ENOBUFS) {
		return true
	}
	var t interface{ Temporary() bool }
	if errors.As(err, &t) && t.Temporary() {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Backoff is the wait between retries: 5 ms, doubling to at most 1 s. The
// zero value is ready to use.
type Backoff struct{ d time.Duration }

// Next returns the next wait.
func (b *Backoff) Next() time.Duration {
	b.d = min(max(2*b.d, 5*time.Millisecond), time.Second)
	return b.d
}

// Reset starts again from the shortest wait, after a success.
func (b *Backoff) Reset() { b.d = 0 }
