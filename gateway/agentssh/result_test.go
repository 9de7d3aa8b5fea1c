package agentssh

import (
	"encoding/binary"
	"encoding/json"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// lengthOf returns the length field of an SSH string holding s.
func lengthOf(s string) []byte { return binary.BigEndian.AppendUint32(nil, uint32(len(s))) }

// agentPayload encodes s as an SSH string, as the agent sends its result.
func agentPayload(s string) []byte { return append(lengthOf(s), s...) }

func TestParseAgentResult(t *testing.T) {
	tests := []struct {
		name    string
		payload []byte
		want    agentResult
		wantErr string
	}{
		{"all fields", agentPayload(`{"truncated":true,"timed_out":true,"error":"not-permitted","message":"rm is not allowed"}`),
			agentResult{Truncated: true, TimedOut: true, Error: "not-permitted", Message: "rm is not allowed"}, ""},
		{"no fields", agentPayload(`{}`), agentResult{}, ""},
		{"unknown fields", agentPayload(`{"exit_reason":"x","truncated":true,"nested":{"a":[1]}}`), agentResult{Truncated: true}, ""},
		{"trailing bytes", append(agentPayload(`{"error":"e"}`), 0, 0, 0, 0), agentResult{Error: "e"}, ""},
		{"empty", nil, agentResult{}, "shorter than a string length"},
		{"short length", []byte{0, 0, 1}, agentResult{}, "shorter than a string length"},
		{"length too large", append(lengthOf("{}}"), "{}"...), agentResult{}, "exceeds"},
		{"not JSON", agentPayload(`{"truncated":tru}`), agentResult{}, "JSON at offset"},
		{"not an object", agentPayload(`[1]`), agentResult{}, "JSON"},
		{"wrong type", agentPayload(`{"truncated":"yes"}`), agentResult{}, "JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseAgentResult(tt.payload)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestHandleRequest(t *testing.T) {
	res := Result{ExitStatus: -1}
	reqs := []*ssh.Request{
		{Type: AgentResultRequest, Payload: agentPayload(`{"truncated":true,"error":"not-permitted","message":"no"}`)},
		{Type: "exit-status", Payload: ssh.Marshal(struct{ Status uint32 }{126})},
		{Type: "keepalive@openssh.com"},
	}
	for _, req := range reqs {
		if err := handleRequest(&res, req); err != nil {
			t.Fatalf("%s: %v", req.Type, err)
		}
	}
	want := Result{ExitStatus: 126, Truncated: true, AgentError: "not-permitted", AgentMessage: "no"}
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
		{Type: AgentResultRequest, Payload: []byte("{}")},
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

// FuzzParseAgentResult checks that any payload decodes or fails without
// panicking, and that what decodes encodes and decodes to the same.
func FuzzParseAgentResult(f *testing.F) {
	f.Add(agentPayload(`{"truncated":true,"timed_out":false,"error":"not-permitted","message":"..."}`))
	f.Add(agentPayload(`{}`))
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, '{'})
	f.Fuzz(func(t *testing.T, payload []byte) {
		r, err := parseAgentResult(payload)
		if err != nil {
			return
		}
		js, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		again, err := parseAgentResult(agentPayload(string(js)))
		if err != nil || again != r {
			t.Fatalf("round trip of %+v: %+v, %v", r, again, err)
		}
	})
}
