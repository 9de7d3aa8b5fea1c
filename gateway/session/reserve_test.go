package session_test

import (
	"crypto/tls"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/zbridge/zbridge/gateway/session"
	"github.com/zbridge/zbridge/internal/acceptloop"
	"github.com/zbridge/zbridge/protocol"
)

// TestDescriptorBudget checks that a connection past the descriptor budget
// (Config.Reserve) is refused busy, with retry_after and the reason, over
// TCP and over TLS (the refusal completes the handshake), counted and
// reported. The budget is set below the descriptors in use, so that every connection
// is past it: the limit itself is not lowered (TestFDLimit of package
// region does that, in a child process).
func TestDescriptorBudget(t *testing.T) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	for _, useTLS := range []bool{false, true} {
		name := "tcp"
		if useTLS {
			name = "tls"
		}
		t.Run(name, func(t *testing.T) {
			reserve, err := acceptloop.NewReserve(acceptloop.ReserveConfig{Reserve: int(rl.Cur) - 3})
			if err != nil {
				t.Fatal(err)
			}
			defer reserve.Close()
			var mu sync.Mutex
			var refusals []session.Refusal
			cfg := session.Config{Reserve: reserve, OnRefuse: func(r session.Refusal) {
				mu.Lock()
				refusals = append(refusals, r)
				mu.Unlock()
			}}
			if useTLS {
				cfg.TLSConfig = testTLS(t)
			}
			ts := startServer(t, cfg)
			c := dialRaw(t, ts.addr)
			if useTLS {
				tc := tls.Client(c.nc, &tls.Config{InsecureSkipVerify: true})
				c.nc, c.r = tc, protocol.NewReader(tc, 0)
			}
			c.send(logonFrame("tester"))
			f := c.next()
			if f.Type != protocol.TypeRefuse || f.Reason != protocol.RefuseBusy || f.RetryAfter <= 0 ||
				!strings.Contains(f.Message, "connection limit") {
				t.Fatalf("logon past the budget answered %+v, want refused busy with retry_after: connection limit", f)
			}
			c.expectClosed()
			if n := ts.srv.Stats().Refused[protocol.RefuseBusy]; n != 1 {
				t.Errorf("Stats counts %d busy refusals, want 1", n)
			}
			mu.Lock()
			got := append([]session.Refusal(nil), refusals...)
			mu.Unlock()
			if len(got) != 1 || got[0].Reason != protocol.RefuseBusy || got[0].Message != f.Message {
				t.Errorf("OnRefuse got %+v, want the refusal", got)
			}
			if st := reserve.Status(); st.Refused["test"] != 1 {
				t.Errorf("the reserve counts %v refusals, want 1 for test", st.Refused)
			}
		})
	}
}
