package tlsconf

import (
	"errors"
	"strings"
	"testing"
)

// TestExplainHandshake: the error crypto/tls gives for an unencrypted
// alert gets the explanation and keeps its cause; others are unchanged.
// TestSyslogTLSTrust (cmd/zbridge) sees the real one, from syslog-ng.
func TestExplainHandshake(t *testing.T) {
	cause := errors.New("local error: tls: bad record MAC")
	got := ExplainHandshake(cause)
	if !strings.HasPrefix(got.Error(), cause.Error()+" (") || !strings.Contains(got.Error(), "refused the server's certificate") {
		t.Errorf("ExplainHandshake(%q) = %q", cause, got)
	}
	if !errors.Is(got, cause) {
		t.Error("the explained error does not wrap its cause")
	}
	other := errors.New("remote error: tls: bad certificate")
	if got := ExplainHandshake(other); got != other {
		t.Errorf("ExplainHandshake(%q) = %q, want it unchanged", other, got)
	}
	if ExplainHandshake(nil) != nil {
		t.Error("ExplainHandshake(nil) is not nil")
	}
}
