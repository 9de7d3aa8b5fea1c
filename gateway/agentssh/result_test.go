package agentssh

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/zbridge/zbridge/protocol/agentproto"
)

func TestHandleRequest(t *testing.T) {
	res := Result{ExitStatus: -1}
	reqs := []*ssh.Request{
		{Type: agentproto.ResultRequest, Payload: agentproto.MarshalResultPayload(&agentproto.Result{
			Truncated: true, Error: agentproto.CodeNotPermitted, Message: "no", Platform: "linux/s390x"})},
		{Type: "exit-status", Payload: ssh.Marshal(struct{ Status uint32 }{126})},
		{Type: "keepalive@openssh.com"},
	}
	for _, req := range reqs {
		if err := handleRequest(&res, req); err != nil {
			t.Fatalf("%s: %v", req.Type, err)
		}
	}
	want := Result{ExitStatus: 126, Truncated: true, AgentError: "not-permitted", AgentMessage: "no", Platform: "linux/s390x"}
	if res != want {
		t.Errorf("result %+v, want %+v", res, want)
	}

	res = Result{ExitStatus: -1}
	sig := ssh.Marshal(struct {
		Signal     string
		CoreDumped bool
		Error      string
		Lang       string
	}{"SEGV", true, "", ""})
	if err := handleRequest(&res, &ssh.Request{Type: "exit-signal", Payload: sig}); err != nil {
		t.Fatal(err)
	}
	if res.Signal != "SEGV" || res.ExitStatus != -1 {
		t.Errorf("result %+v", res)
	}

	for _, req := range []*ssh.Request{
		{Type: "exit-status", Payload: []byte{0, 1}},
		{Type: "exit-signal", Payload: []byte{0, 0, 0, 9, 'K'}},
		{Type: agentproto.ResultRequest, Payload: []byte("{}")},
	} {
		res := Result{ExitStatus: 7}
		if err := handleRequest(&res, req); err == nil || !strings.Contains(err.Error(), req.Type) {
			t.Errorf("%s %q: error %v", req.Type, req.Payload, err)
		}
		if res != (Result{ExitStatus: 7}) {
			t.Errorf("%s %q changed the result: %+v", req.Type, req.Payload, res)
		}
	}
}

// TestCheckCommand checks the Commands Run refuses before sending
// anything: each error wraps ErrBadCommand, and for a value over a limit
// of the agent contract an *agentproto.FieldError whose sentence is for
// the client.
func TestCheckCommand(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n) }
	tests := []struct {
		name string
		cmd  Command
		want string // "" for a command that may be sent
	}{
		{"plain", Command{ID: "CMD-1", Line: "uptime", Client: "ops"}, ""},
		{"no ID or client", Command{Line: "uptime"}, ""},
		{"longest everything", Command{ID: long(agentproto.MaxCommandID), Line: long(agentproto.MaxCommand), Client: long(agentproto.MaxClient)}, ""},
		{"empty line", Command{Line: ""}, "empty command line"},
		{"line too long", Command{Line: long(300 << 10)}, "command is 307200 bytes; the most a Linux agent takes is 65152"},
		{"ID too long", Command{ID: long(300 << 10), Line: "uptime"}, "command ID is 307200 bytes; the most a Linux agent takes is 128"},
		{"ID with a space", Command{ID: "my id", Line: "uptime"}, "command ID has a space at offset 2"},
		{"client too long", Command{Line: "uptime", Client: long(300 << 10)}, "client name is 307200 bytes; the most a Linux agent takes is 256"},
		{"client with a newline", Command{Line: "uptime", Client: "ops\nadmin"}, "client name has a control character"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkCommand(tt.cmd)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrBadCommand) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one wrapping ErrBadCommand saying %q", err, tt.want)
			}
			var fe *agentproto.FieldError
			if tt.cmd.Line != "" && !errors.As(err, &fe) {
				t.Errorf("error %v holds no *agentproto.FieldError", err)
			}
		})
	}
}
