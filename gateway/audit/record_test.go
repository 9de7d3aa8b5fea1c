package audit_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/zbridge/zbridge/commands"
	"github.com/zbridge/zbridge/gateway/audit"
	"github.com/zbridge/zbridge/protocol"
)

func TestOutcomeOf(t *testing.T) {
	for code, want := range map[string]audit.Outcome{
		"":                        audit.OutcomeOK,
		commands.CodeNotPermitted: audit.OutcomeRefused,
		protocol.RefuseAuth:       audit.OutcomeRefused,
		commands.CodeTimeout:      audit.OutcomeTimeout,
		commands.CodeBusy:         audit.OutcomeBusy,
		commands.CodeCancelled:    audit.OutcomeCancelled,
		commands.CodeFailed:       audit.OutcomeFailed,
		commands.CodeNotFound:     audit.OutcomeNotFound,
		commands.CodeUnknown:      audit.OutcomeUnknown,
		commands.CodeNotConnected: audit.OutcomeNotConnected,
		commands.CodeBadRequest:   audit.OutcomeBadRequest,
		protocol.RefuseInUse:      "in-use",
	} {
		if got := audit.OutcomeOf(code); got != want {
			t.Errorf("OutcomeOf(%q) = %q, want %q", code, got, want)
		}
	}
}

func TestSetResult(t *testing.T) {
	for _, tc := range []struct {
		name string
		res  commands.Result
		err  error
		want audit.Record
	}{
		{"ran", commands.Result{RC: 3, Duration: 1500 * time.Millisecond}, nil,
			audit.Record{Outcome: audit.OutcomeOK, RC: intp(3), DurationMs: 1500}},
		{"killed", commands.Result{RC: 137, Signal: "KILL", Truncated: true, Duration: time.Second}, nil,
			audit.Record{Outcome: audit.OutcomeOK, RC: intp(137), Signal: "KILL", Truncated: true, DurationMs: 1000}},
		{"refused by the agent", commands.Result{Duration: 2 * time.Millisecond},
			&commands.Error{Code: commands.CodeNotPermitted, Message: "policy denies rm"},
			audit.Record{Outcome: audit.OutcomeRefused, Code: "not-permitted", Message: "policy denies rm", DurationMs: 2}},
		{"timeout, wrapped", commands.Result{Duration: time.Minute},
			fmt.Errorf("run: %w", &commands.Error{Code: commands.CodeTimeout, Message: "ran past 1m0s"}),
			audit.Record{Outcome: audit.OutcomeTimeout, Code: "timeout", Message: "ran past 1m0s", DurationMs: 60000}},
		{"other error", commands.Result{}, errors.New("internal detail"),
			audit.Record{Outcome: audit.OutcomeFailed, Code: "failed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r audit.Record
			r.SetResult(tc.res, tc.err)
			if !reflect.DeepEqual(r, tc.want) {
				t.Errorf("got %+v\nwant %+v", r, tc.want)
			}
		})
	}
}

func TestEvent(t *testing.T) {
	base := audit.Record{Time: time.Date(2025, 3, 1, 8, 30, 0, 123e6, time.UTC), Region: "ZBR1",
		Kind: audit.KindCommand, Phase: audit.PhaseEnd, Client: "OPSAUTO", Remote: "10.1.2.3:50312",
		Session: "ZBR1-7", Server: "commands", Target: "linux:web1", ID: "ops-17"}
	for _, tc := range []struct {
		name string
		edit func(*audit.Record)
		sev  protocol.Severity
		text string
	}{
		{"ok", func(r *audit.Record) {
			r.Outcome, r.RC, r.DurationMs, r.OutputBytes, r.Command = audit.OutcomeOK, intp(0), 41, 120, "uptime -p"
		}, protocol.SevInfo,
			`command end client=OPSAUTO remote=10.1.2.3:50312 session=ZBR1-7 server=commands target=linux:web1 id=ops-17 outcome=ok rc=0 duration_ms=41 output_bytes=120 cmd="uptime -p"`},
		{"refused", func(r *audit.Record) {
			r.Outcome, r.Code, r.Message, r.Rule, r.Command = audit.OutcomeRefused, "not-permitted",
				"client OPSAUTO may not run \"rm -rf /\" on linux:web1", "no command pattern matches", "rm -rf /\nid=x"
		}, protocol.SevWarning,
			`command end client=OPSAUTO remote=10.1.2.3:50312 session=ZBR1-7 server=commands target=linux:web1 id=ops-17 outcome=refused code=not-permitted duration_ms=0 output_bytes=0 rule="no command pattern matches" message="client OPSAUTO may not run \"rm -rf /\" on linux:web1" cmd="rm -rf /\nid=x"`},
		{"timeout", func(r *audit.Record) {
			r.Outcome, r.Code, r.DurationMs, r.Via = audit.OutcomeTimeout, "timeout", 60000, "ZBR2"
		}, protocol.SevNotice,
			`command end client=OPSAUTO remote=10.1.2.3:50312 session=ZBR1-7 server=commands via=ZBR2 target=linux:web1 id=ops-17 outcome=timeout duration_ms=60000 output_bytes=0`},
		{"start", func(r *audit.Record) {
			r.Phase, r.Command, r.Client = audit.PhaseStart, "QUERY NAMES", "a=b c"
		}, protocol.SevInfo,
			`command start client="a=b c" remote=10.1.2.3:50312 session=ZBR1-7 server=commands target=linux:web1 id=ops-17 cmd="QUERY NAMES"`},
		{"logon refused", func(r *audit.Record) {
			*r = audit.Record{Time: r.Time, Region: "ZBR1", Kind: audit.KindLogon, Client: "MALLORY\u2028x",
				Remote: "[::1]:4000", Server: "vmmon", Outcome: audit.OutcomeRefused, Code: "auth"}
		}, protocol.SevWarning,
			`logon client="MALLORY\u2028x" remote=[::1]:4000 server=vmmon outcome=refused code=auth`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := base
			tc.edit(&r)
			ev := r.Event()
			if ev.Source != protocol.SourceAudit || ev.Origin.System != "ZBR1" || ev.MsgID != "AUDIT" ||
				ev.Type != string(r.Kind) || !ev.Time.Equal(r.Time) || !ev.Received.Equal(r.Time) ||
				!ev.Parsed || ev.Facility.String() != "authpriv" {
				t.Errorf("event %+v", ev)
			}
			if ev.Severity != tc.sev {
				t.Errorf("severity %v, want %v", ev.Severity, tc.sev)
			}
			if ev.Text != tc.text {
				t.Errorf("text\n got %s\nwant %s", ev.Text, tc.text)
			}
			var back audit.Record
			if err := json.Unmarshal([]byte(ev.Raw), &back); err != nil || !reflect.DeepEqual(back, r) {
				t.Errorf("raw %s decodes to %+v (%v), want %+v", ev.Raw, back, err, r)
			}
			// The event is a valid event of the protocol: it survives its
			// JSON form.
			b, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			var e2 protocol.Event
			if err := json.Unmarshal(b, &e2); err != nil || e2.Text != ev.Text || e2.Source != protocol.SourceAudit {
				t.Errorf("event JSON %s: %v", b, err)
			}
		})
	}
}

// FuzzRecordLine checks that any record encodes as one line (no newline,
// no raw U+2028 or U+2029) that decodes to the same record, and that its
// event text is one line too.
func FuzzRecordLine(f *testing.F) {
	f.Add("uptime", "OPSAUTO", "role ops: linux:* uptime")
	f.Add("cd /tmp && ls > x 2>&1 <y", "a\"b", "")
	f.Add("line\nbreak\r\u2028\u2029\x00\x1f\x7f", "é日本", "\\")
	f.Add("\xff\xfe bad utf-8", "<script>", "&amp;")
	f.Fuzz(func(t *testing.T, command, client, rule string) {
		r := audit.Record{Time: time.Date(2025, 3, 1, 8, 30, 0, 0, time.UTC), Region: "ZBR1",
			Kind: audit.KindCommand, Phase: audit.PhaseStart, Client: client, Command: command, Rule: rule}
		line, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.ContainsAny(line, "\n\r\u2028\u2029") {
			t.Fatalf("line holds a line end: %q", line)
		}
		var back audit.Record
		if err := json.Unmarshal(line, &back); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		if utf8.ValidString(command) && utf8.ValidString(client) && utf8.ValidString(rule) {
			if !reflect.DeepEqual(back, r) {
				t.Fatalf("%s decodes to %+v, want %+v", line, back, r)
			}
		} else if back.Command != string([]rune(command)) { // each invalid byte becomes U+FFFD
			t.Fatalf("command %q came back as %q", command, back.Command)
		}
		if text := r.Event().Text; strings.ContainsAny(text, "\n\r\u2028\u2029") {
			t.Fatalf("event text holds a line end: %q", text)
		}
	})
}
