//go:build !lean

package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/zbridge/zbridge/protocol"
)

// hostileEvent is a syslog event whose every field a sender chose.
func hostileEvent(host, app, procid, msgid, text string) *protocol.Event {
	return &protocol.Event{Time: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), Source: protocol.SourceSyslog,
		Origin: protocol.Origin{Host: host, System: host}, App: app, ProcID: procid, MsgID: msgid, Text: text,
		Facility: protocol.Facility(4), Severity: protocol.SevCrit, Parsed: true}
}

// checkOneSafeLine fails unless line is valid UTF-8 with no control
// character (C0, DEL, C1), line or paragraph separator or bidi control.
func checkOneSafeLine(t *testing.T, line string) {
	t.Helper()
	if !utf8.ValidString(line) {
		t.Fatalf("invalid UTF-8 in %q", line)
	}
	for i, r := range line {
		if r < ' ' || r >= 0x7f && r <= 0x9f || r == '\u2028' || r == '\u2029' ||
			r >= '\u202a' && r <= '\u202e' || r >= '\u2066' && r <= '\u2069' {
			t.Fatalf("%U at %d in %q", r, i, line)
		}
	}
}

// TestTailTextEscapes: what a syslog sender puts in an event's fields is
// escaped in the text layout: no terminal escape, no line end, no invalid
// UTF-8 reaches the terminal, and each event is one line.
func TestTailTextEscapes(t *testing.T) {
	const at = "2026-03-01T12:00:00Z "
	tests := []struct {
		name string
		e    *protocol.Event
		want string
	}{
		{"plain", hostileEvent("lnx01", "sshd", "42", "", "session opened"),
			at + `lnx01 auth.crit sshd[42]: session opened`},
		{"title", hostileEvent("lnx01", "app", "", "", "\x1b]0;pwned\x07"),
			at + `lnx01 auth.crit app: \x1b]0;pwned\x07`},
		{"clear screen", hostileEvent("lnx01", "app", "", "", "\x1b[2J\x1b[H"),
			at + `lnx01 auth.crit app: \x1b[2J\x1b[H`},
		{"forged line", hostileEvent("lnx01", "app", "", "", "a\nLXLOG001I fake\r\n2026-03-01T12:00:01Z lnx02 auth.crit su: root"),
			at + `lnx01 auth.crit app: a\nLXLOG001I fake\r\n2026-03-01T12:00:01Z lnx02 auth.crit su: root`},
		{"separators", hostileEvent("lnx01", "app", "", "", "a\u2028b\u2029c"),
			at + `lnx01 auth.crit app: a\u2028b\u2029c`},
		{"C1", hostileEvent("lnx01", "app", "", "", "nel\x85 NEL\u0085 CSI\u009b2J"),
			at + `lnx01 auth.crit app: nel\x85 NEL\u0085 CSI\u009b2J`},
		{"invalid UTF-8", hostileEvent("lnx01", "app", "", "", "bad \xff\xfe \xc3"),
			at + `lnx01 auth.crit app: bad \xff\xfe \xc3`},
		{"backslash", hostileEvent("lnx01", "app", "", "", `C:\x1b`),
			at + `lnx01 auth.crit app: C:\\x1b`},
		{"tab and DEL", hostileEvent("lnx01", "app", "", "", "a\tb\x7f"),
			at + `lnx01 auth.crit app: a\tb\x7f`},
		{"every field", hostileEvent("h\x1b[31m", "a\npp", "1\u2028", "ID\x07", "t"),
			at + `h\x1b[31m auth.crit a\npp[1\u2028]: ID\x07 t`},
		{"unparsed", func() *protocol.Event {
			e := hostileEvent("", "", "", "", "\x00\x1b[2J")
			e.Parsed, e.ParseError, e.Origin.Host = false, "stopped at \x1b [col 3]", ""
			return e
		}(), at + ` auth.crit \x00\x1b[2J [unparsed: stopped at \x1b [col 3]]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(appendText(nil, tt.e))
			if got != tt.want {
				t.Errorf("appendText =\n%q\nwant\n%q", got, tt.want)
			}
			checkOneSafeLine(t, got)
		})
	}
}

// TestTailLineEscapes: a line in the lx layout from the region is written
// as it came when it is safe, and escaped whole when it is not (a region
// that does not escape).
func TestTailLineEscapes(t *testing.T) {
	tests := []struct{ in, want string }{
		{`LXLOG001I lnx01 - auth crit a\nLXLOG001I fake C:\\dir`, `LXLOG001I lnx01 - auth crit a\nLXLOG001I fake C:\\dir`},
		{"LXLOG001I lnx01 - auth crit a\nLXLOG001I fake", `LXLOG001I lnx01 - auth crit a\nLXLOG001I fake`},
		{"LXLOG001I lnx01 - auth crit \x1b]0;pwned\x07 \u2028 \x85 \\", `LXLOG001I lnx01 - auth crit \x1b]0;pwned\x07 \u2028 \x85 \\`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got := string(appendLine(nil, tt.in))
			if got != tt.want {
				t.Errorf("appendLine(%q) = %q, want %q", tt.in, got, tt.want)
			}
			checkOneSafeLine(t, got)
		})
	}
}

// TestTailJSONEscapes: `tail --format json` writes no raw control
// character (C0, C1), separator or invalid UTF-8 either; the JSON decodes
// to the same text (invalid UTF-8 as U+FFFD, as encoding/json has it).
func TestTailJSONEscapes(t *testing.T) {
	for _, text := range []string{"\x1b]0;pwned\x07", "\x1b[2J", "a\nLXLOG001I fake", "\u2028\u2029", "\u0085\u009b", "bad \xff", "\x7f"} {
		t.Run(text, func(t *testing.T) {
			e := hostileEvent("h\u0085", "a\x1b", "", "", text)
			line := string(protocol.AppendEventJSON(nil, e))
			for i, r := range line {
				if r < ' ' || r >= 0x80 && r <= 0x9f || r == '\u2028' || r == '\u2029' || r == utf8.RuneError {
					t.Fatalf("%U at %d in %s", r, i, line)
				}
			}
			var back protocol.Event
			if err := json.Unmarshal([]byte(line), &back); err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			if want := strings.ToValidUTF8(text, "\ufffd"); back.Text != want || back.Origin.Host != "h\u0085" || back.App != "a\x1b" {
				t.Errorf("decoded text %q host %q app %q, want %q h\\u0085 a\\x1b", back.Text, back.Origin.Host, back.App, want)
			}
		})
	}
}

// FuzzTailText checks that every event makes one line in the text layout
// with no control character or line end.
func FuzzTailText(f *testing.F) {
	f.Add("lnx01", "sshd", "42", "ID47", "session opened", "", true)
	f.Add("h\x1b[31m", "a\npp", "1\u2028", "ID\x07", "\x1b]0;pwned\x07\x1b[2J", "", true)
	f.Add("", "", "", "", "a\nLXLOG001I fake\r\n\u2028\u2029\x85\u0085\xff", "stopped at \x1b", false)
	f.Fuzz(func(t *testing.T, host, app, procid, msgid, text, parseError string, parsed bool) {
		e := hostileEvent(host, app, procid, msgid, text)
		e.Parsed, e.ParseError = parsed, parseError
		checkOneSafeLine(t, string(appendText(nil, e)))
		checkOneSafeLine(t, string(appendLine(nil, text)))
	})
}

// TestTailHostileSyslog sends a region syslog messages holding terminal
// escapes, line ends, separators and invalid UTF-8, and reads them back
// with `zbridge tail` in each layout: one safe line per event.
func TestTailHostileSyslog(t *testing.T) {
	e2e(t)
	r := startRegion(t)
	texts := []string{"\x1b]0;pwned\x07", "\x1b[2J", "a\nLXLOG001I fake", "x\u2028y", "nel\x85 \u0085", "bad \xff\xfe"}
	var data strings.Builder
	for _, s := range texts {
		data.WriteString(octet(msg5424("lnxhostile", s)))
	}
	data.WriteString(octet("\x1b[2J\x00 no PRI"))
	sendSyslog(t, r.syslog, data.String())
	n := len(texts) + 1
	for _, format := range []string{"text", "lx", "json"} {
		t.Run(format, func(t *testing.T) {
			tp := startTail(t, "--unsolmsg", r.unsolmsg, "--after", "0", "--format", format,
				"--count", fmt.Sprint(n), "--timeout", "60s")
			if code := tp.wait(t, 90*time.Second); code != 0 {
				t.Fatalf("tail exited %d: %s", code, tp.stderr.String())
			}
			out := tp.stdout.String()
			lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			if len(lines) != n {
				t.Fatalf("%d lines for %d events:\n%s", len(lines), n, out)
			}
			for _, l := range lines {
				if format == "json" {
					l = strings.ReplaceAll(l, "\x7f", "") // JSON has DEL as it is, as encoding/json
				}
				checkOneSafeLine(t, l)
			}
			if want := `a\nLXLOG001I fake`; !strings.Contains(out, want) {
				t.Errorf("no %s in\n%s", want, out)
			}
		})
	}
}
