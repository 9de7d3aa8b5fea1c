package acceptretry

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

func TestRetryable(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"EMFILE", &net.OpError{Op: "accept", Err: os.NewSyscallError("accept4", syscall.EMFILE)}, true},
		{"ENFILE", fmt.Errorf("wrapped: %w", syscall.ENFILE), true},
		{"ECONNABORTED", &net.OpError{Op: "accept", Err: os.NewSyscallError("accept4", syscall.ECONNABORTED)}, true},
		{"timeout", os.ErrDeadlineExceeded, true},
		{"closed", net.ErrClosed, false},
		{"EOF", io.EOF, false},
		{"other", errors.New("boom"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Retryable(tc.err); got != tc.want {
				t.Errorf("Retryable(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	var b Backoff
	want := []time.Duration{5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond}
	for i, w := range want {
		if got := b.Next(); got != w {
			t.Fatalf("wait %d = %v, want %v", i, got, w)
		}
	}
	for i := 0; i < 20; i++ {
		b.Next()
	}
	if got := b.Next(); got != time.Second {
		t.Fatalf("wait capped at %v, want 1s", got)
	}
	b.Reset()
	if got := b.Next(); got != 5*time.Millisecond {
		t.Fatalf("after Reset: %v", got)
	}
}
