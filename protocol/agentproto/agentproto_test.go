package agentproto

import (
	"encoding/binary"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

// sshMaxPacket is the largest packet x/crypto/ssh and OpenSSH read.
const sshMaxPacket = 256 << 10

func TestLimits(t *testing.T) {
	if MaxCommand+MaxCommandID+MaxClient != MaxExec {
		t.Errorf("MaxCommand %d + MaxCommandID %d + MaxClient %d != MaxExec %d", MaxCommand, MaxCommandID, MaxClient, MaxExec)
	}
	// The exec request of the longest command, with its channel request
	// header (type, channel, name, want-reply) and the packet's own
	// overhead (length, padding, MAC), must fit in a packet with room to
	// spare.
	if n := MaxCommand + 4 + 1 + 4 + 4 + len("exec") + 1 + 4 + 1 + 255 + 64; n > sshMaxPacket/2 {
		t.Errorf("an exec request of MaxCommand takes %d bytes, over half of an SSH packet (%d)", n, sshMaxPacket)
	}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name    string
		check   func(string) error
		value   string
		kind    error  // nil: valid
		message string // part of the error text
	}{
		{"command empty", CheckCommand, "", nil, ""},
		{"command longest", CheckCommand, strings.Repeat("x", MaxCommand), nil, ""},
		{"command one over", CheckCommand, strings.Repeat("x", MaxCommand+1), ErrTooLong, "command is 65153 bytes; the most a Linux agent takes is 65152"},
		{"command 300 KB", CheckCommand, strings.Repeat("x", 300<<10), ErrTooLong, "command is 307200 bytes"},
		{"id", CheckCommandID, "CMD-42/a_b.c", nil, ""},
		{"id longest", CheckCommandID, strings.Repeat("i", MaxCommandID), nil, ""},
		{"id empty", CheckCommandID, "", ErrInvalid, "command ID has no characters"},
		{"id too long", CheckCommandID, strings.Repeat("i", MaxCommandID+1), ErrTooLong, "command ID is 129 bytes; the most a Linux agent takes is 128"},
		{"id space", CheckCommandID, "a b", ErrInvalid, "a space at offset 1"},
		{"id control", CheckCommandID, "ab\n", ErrInvalid, "a control character (0x0a) at offset 2"},
		{"id DEL", CheckCommandID, "\x7f", ErrInvalid, "a control character (0x7f) at offset 0"},
		{"id non-ASCII", CheckCommandID, "é", ErrInvalid, "a non-ASCII byte (0xc3) at offset 0"},
		{"client", CheckClient, "ops team (Zürich)", nil, ""},
		{"client U+FFFD", CheckClient, "a\uFFFDb", nil, ""},
		{"client longest", CheckClient, strings.Repeat("c", MaxClient), nil, ""},
		{"client empty", CheckClient, "", ErrInvalid, "client name has no characters"},
		{"client too long", CheckClient, strings.Repeat("c", MaxClient+1), ErrTooLong, "client name is 257 bytes; the most a Linux agent takes is 256"},
		{"client newline", CheckClient, "ops\nfake=1", ErrInvalid, "a control character (U+000A) at offset 3"},
		{"client C1", CheckClient, "ops\u0085", ErrInvalid, "a control character (U+0085) at offset 3"},
		{"client not UTF-8", CheckClient, "ops\xff", ErrInvalid, "a byte that is not UTF-8 at offset 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.check(tt.value)
			if tt.kind == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var fe *FieldError
			if !errors.Is(err, tt.kind) || !errors.As(err, &fe) {
				t.Fatalf("error %v, want a *FieldError wrapping %v", err, tt.kind)
			}
			if !strings.Contains(err.Error(), tt.message) {
				t.Errorf("error %q, want it to say %q", err, tt.message)
			}
			if fe.Len != len(tt.value) {
				t.Errorf("Len %d, want %d", fe.Len, len(tt.value))
			}
		})
	}
}

func TestTimeout(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{time.Second, "1"}, {time.Millisecond, "1"}, {29500 * time.Millisecond, "30"}, {10 * time.Minute, "600"},
	} {
		if got := FormatTimeout(tt.d); got != tt.want {
			t.Errorf("FormatTimeout(%v) = %q, want %q", tt.d, got, tt.want)
		}
		if back, err := ParseTimeout(tt.want); err != nil || back < tt.d {
			t.Errorf("ParseTimeout(%q) = %v, %v; want at least %v", tt.want, back, err, tt.d)
		}
	}
	for _, tt := range []struct {
		in   string
		want time.Duration
	}{
		{"30", 30 * time.Second}, {"0.25", 250 * time.Millisecond}, {"0.0000001", time.Millisecond},
		{"1e300", math.MaxInt64}, {"9223372036.854775807", math.MaxInt64},
	} {
		if got, err := ParseTimeout(tt.in); err != nil || got != tt.want {
			t.Errorf("ParseTimeout(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "soon", "0", "-1", "NaN", "Inf", "+Inf", "1s"} {
		if got, err := ParseTimeout(bad); !errors.Is(err, ErrTimeout) {
			t.Errorf("ParseTimeout(%q) = %v, %v; want an error wrapping ErrTimeout", bad, got, err)
		}
	}
}

// lengthOf returns the length field of an SSH string holding s.
func lengthOf(s string) []byte { return binary.BigEndian.AppendUint32(nil, uint32(len(s))) }

// payload encodes s as an SSH string, as the agent sends its result.
func payload(s string) []byte { return append(lengthOf(s), s...) }

func TestParseResultPayload(t *testing.T) {
	tests := []struct {
		name    string
		payload []byte
		want    Result
		wantErr string
	}{
		{"all fields", payload(`{"command_id":"c-1","exit_status":-1,"signal":"TERM","timed_out":true,"truncated":true,` +
			`"error":"not-permitted","message":"rm is not allowed","output_bytes":7,"duration_ms":8,"timeout_ms":9,` +
			`"pid":10,"agent":"lx","platform":"linux/s390x"}`),
			Result{CommandID: "c-1", ExitStatus: -1, Signal: "TERM", TimedOut: true, Truncated: true, Error: CodeNotPermitted,
				Message: "rm is not allowed", OutputBytes: 7, DurationMS: 8, TimeoutMS: 9, PID: 10, Agent: "lx", Platform: "linux/s390x"}, ""},
		{"no fields", payload(`{}`), Result{}, ""},
		{"unknown fields", payload(`{"exit_reason":"x","truncated":true,"nested":{"a":[1]}}`), Result{Truncated: true}, ""},
		{"trailing bytes", append(payload(`{"error":"e"}`), 0, 0, 0, 0), Result{Error: "e"}, ""},
		{"empty", nil, Result{}, "shorter than a string length"},
		{"short length", []byte{0, 0, 1}, Result{}, "shorter than a string length"},
		{"length too large", append(lengthOf("{}}"), "{}"...), Result{}, "exceeds"},
		{"not JSON", payload(`{"truncated":tru}`), Result{}, "JSON at offset 21"},
		{"not an object", payload(`[1]`), Result{}, "JSON"},
		{"wrong type", payload(`{"truncated":"yes"}`), Result{}, "JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseResultPayload(tt.payload)
			if tt.wantErr != "" {
				if !errors.Is(err, ErrPayload) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one wrapping ErrPayload saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || *got != tt.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

// TestResultPayloadPrefixes feeds every proper prefix of a payload: each
// must fail cleanly, and the whole must decode to what was encoded.
func TestResultPayloadPrefixes(t *testing.T) {
	r := Result{CommandID: "c-42", ExitStatus: 3, Message: "x", OutputBytes: 12, Agent: "lx", Platform: "linux/amd64"}
	p := MarshalResultPayload(&r)
	for i := range len(p) {
		if got, err := ParseResultPayload(p[:i]); !errors.Is(err, ErrPayload) {
			t.Fatalf("prefix of %d bytes: %+v, %v; want ErrPayload", i, got, err)
		}
	}
	if got, err := ParseResultPayload(p); err != nil || !reflect.DeepEqual(*got, r) {
		t.Fatalf("round trip: %+v, %v; want %+v", got, err, r)
	}
}

// FuzzParseResultPayload checks that any payload decodes or fails without
// panicking, and that what decodes encodes and decodes to the same.
func FuzzParseResultPayload(f *testing.F) {
	f.Add(MarshalResultPayload(&Result{CommandID: "c-42", ExitStatus: -1, Signal: "TERM", TimedOut: true,
		Message: "timed out after 30s; the command's process group was terminated", PID: 4711, Agent: "lnx01", Platform: "linux/s390x"}))
	f.Add(payload(`{"truncated":true,"timed_out":false,"error":"not-permitted","message":"..."}`))
	f.Add(payload(`{}`))
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, '{'})
	f.Fuzz(func(t *testing.T, p []byte) {
		r, err := ParseResultPayload(p)
		if err != nil {
			return
		}
		again, err := ParseResultPayload(MarshalResultPayload(r))
		if err != nil || *again != *r {
			t.Fatalf("round trip of %+v: %+v, %v", r, again, err)
		}
	})
}
