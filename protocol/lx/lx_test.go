package lx

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/zbridge/zbridge/protocol"
)

func TestFormat(t *testing.T) {
	tests := []struct {
		name string
		e    protocol.Event
		want string
	}{
		{"Syslog", protocol.Event{Source: protocol.SourceSyslog, Origin: protocol.Origin{Host: "LINUX113", System: "LINUX113", Node: "ZVM002"},
			Facility: protocol.FacDaemon, Severity: protocol.SevErr, Text: "sshd[42]: session opened"},
			"LXLOG001I LINUX113 ZVM002 daemon err sshd[42]: session opened"},
		{"SyslogNoNode", protocol.Event{Source: protocol.SourceSyslog, Origin: protocol.Origin{Host: "lnx1"},
			Facility: protocol.FacUser, Severity: protocol.SevNotice, Text: "two\nlines\tand tab"},
			`LXLOG001I lnx1 - user notice two\nlines\tand tab`},
		{"ConsoleMsg", protocol.Event{Source: protocol.SourceZVMConsole, Origin: protocol.Origin{System: "VMSYS1", Node: "ZVM002"},
			Type: "MSG", User: "POLLGEN", Text: "NMVM0001 00:34:49 Hello"},
			"LXMSG001I ZVM002 MSG POLLGEN NMVM0001 00:34:49 Hello"},
		{"ConsoleCP", protocol.Event{Source: protocol.SourceZVMConsole, Origin: protocol.Origin{System: "VMSYS1"},
			Text: "HCPMID6001I TIME IS 13:02:41"},
			"LXMSG001I VMSYS1 CP - HCPMID6001I TIME IS 13:02:41"},
		{"Event", protocol.Event{Source: protocol.SourceZVMEvent, Origin: protocol.Origin{Node: "ZVM002"},
			User: "LINUX113", Type: "RUNNABLESTATEENABLED"},
			"LXEVT001I ZVM002 LINUX113 RUNNABLESTATEENABLED"},
		{"BlankInWord", protocol.Event{Source: protocol.SourceRegion, Origin: protocol.Origin{System: "my region"},
			Facility: protocol.FacDaemon, Severity: protocol.SevInfo, Text: "started"},
			"LXLOG001I my_region - daemon info started"},
		// What a syslog sender can put in the fields.
		{"ForgedLine", syslogText("a\nLXLOG001I LINUX113 ZVM002 auth crit forged\r\n"),
			`LXLOG001I lnx1 - user notice a\nLXLOG001I LINUX113 ZVM002 auth crit forged\r\n`},
		{"TitleEscape", syslogText("\x1b]0;pwned\x07"), `LXLOG001I lnx1 - user notice \x1b]0;pwned\x07`},
		{"ClearScreen", syslogText("\x1b[2J\x1b[H"), `LXLOG001I lnx1 - user notice \x1b[2J\x1b[H`},
		{"C1", syslogText("nel\u0085csi\u009b31m"), `LXLOG001I lnx1 - user notice nel\u0085csi\u009b31m`},
		{"Separators", syslogText("a\u2028b\u2029c"), `LXLOG001I lnx1 - user notice a\u2028b\u2029c`},
		{"Bidi", syslogText("x\u202eevil\u2066y\u2069"), `LXLOG001I lnx1 - user notice x\u202eevil\u2066y\u2069`},
		{"InvalidUTF8", syslogText("bad \xff\xfe \xc3 and \xe2\x80 cut; raw C1 byte \x85"),
			`LXLOG001I lnx1 - user notice bad \xff\xfe \xc3 and \xe2\x80 cut; raw C1 byte \x85`},
		{"Backslash", syslogText(`C:\path\x1b is text`), `LXLOG001I lnx1 - user notice C:\\path\\x1b is text`},
		{"DelAndNUL", syslogText("\x7f\x00"), `LXLOG001I lnx1 - user notice \x7f\x00`},
		{"UTF8Kept", syslogText("Grüße, 日本語, 🎉"), "LXLOG001I lnx1 - user notice Grüße, 日本語, 🎉"},
		{"HostileHost", protocol.Event{Source: protocol.SourceSyslog, Origin: protocol.Origin{Host: "h\x1b[2J\nLXLOG001I", Node: "N\u00a0D\u2028"},
			Facility: protocol.FacUser, Severity: protocol.SevNotice, Text: "t"},
			`LXLOG001I h\x1b[2J\nLXLOG001I N\u00a0D\u2028 user notice t`},
		{"HostileUserAndType", protocol.Event{Source: protocol.SourceZVMConsole, Origin: protocol.Origin{System: "VM\tSYS"},
			Type: "M S\x85G", User: "U\u3000\\", Text: "x"},
			`LXMSG001I VM\tSYS M_S\x85G U\u3000\\ x`},
		{"HostileEvent", protocol.Event{Source: protocol.SourceZVMEvent, Origin: protocol.Origin{Node: "Z"},
			User: "L\r\n", Type: "LOGON\u0085LXEVT001I"},
			`LXEVT001I Z L\r\n LOGON\u0085LXEVT001I`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Format(&tc.e); got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

// TestFormatIgnoresSD: the lx layouts have no place for structured data:
// an event renders the same line with it as without it, whatever it holds.
func TestFormatIgnoresSD(t *testing.T) {
	sd := protocol.StructuredData{
		{ID: "exampleSDID@32473", Params: []protocol.SDParam{{Name: "iut", Value: "3"}, {Name: "eventSource", Value: "Application"}}},
		{ID: "origin", Params: []protocol.SDParam{{Name: "ip", Value: "192.0.2.1"}, {Name: "ip", Value: "192.0.2.129"}}},
		{ID: "x@1", Params: []protocol.SDParam{{Name: "forged", Value: "\nLXLOG001I X Y auth crit forged\n"}}},
	}
	for _, e := range []protocol.Event{
		{Source: protocol.SourceSyslog, Origin: protocol.Origin{Host: "LINUX113", System: "LINUX113", Node: "ZVM002"},
			Facility: protocol.FacDaemon, Severity: protocol.SevErr, App: "evntslog", MsgID: "ID47",
			Text: "An application event log entry...", Raw: `<27>1 - LINUX113 evntslog - ID47 [exampleSDID@32473 iut="3"] An application event log entry...`},
		syslogText("a"),
		{Source: protocol.SourceZVMConsole, Origin: protocol.Origin{System: "VMSYS1"}, Text: "HCPMID6001I TIME IS 13:02:41"},
		{Source: protocol.SourceZVMEvent, Origin: protocol.Origin{Node: "ZVM002"}, User: "LINUX113", Type: "LOGON"},
	} {
		without := Format(&e)
		e.SD = sd
		if with := Format(&e); with != without {
			t.Errorf("with structured data %q\nwithout             %q", with, without)
		}
	}
}

func syslogText(text string) protocol.Event {
	return protocol.Event{Source: protocol.SourceSyslog, Origin: protocol.Origin{Host: "lnx1"},
		Facility: protocol.FacUser, Severity: protocol.SevNotice, Text: text}
}

func TestAppendEscaped(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"plain text", "plain text"},
		{`\`, `\\`},
		{"\t\n\r", `\t\n\r`},
		{"\x00\x01\x1b\x1f\x7f", `\x00\x01\x1b\x1f\x7f`},
		{"\u0080\u0085\u009f\u00a0", `\u0080\u0085\u009f` + "\u00a0"}, // NBSP is kept in the text
		{"\u2028\u2029", `\u2028\u2029`},
		{"\u202a\u202e\u2066\u2069\u2067", `\u202a\u202e\u2066\u2069\u2067`},
		{"\u200e\u2030", "\u200e\u2030"}, // left-to-right mark, per mille: kept
		{"\xff\xc2", `\xff\xc2`},
		{"\xc2\x85", `\u0085`},           // U+0085 encoded, unlike the byte \x85
		{"\xed\xa0\x80", `\xed\xa0\x80`}, // a UTF-16 surrogate is not UTF-8
		{"\ufffd", "\ufffd"},
		{"é\x1bé", `é\x1bé`},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.in), func(t *testing.T) {
			if got := string(AppendEscaped([]byte("pre:"), tt.in)); got != "pre:"+tt.want {
				t.Errorf("AppendEscaped(%q) = %q, want %q", tt.in, got, "pre:"+tt.want)
			}
			if back, err := unescape(tt.want); err != nil || back != tt.in {
				t.Errorf("unescape(%q) = %q, %v; want %q", tt.want, back, err, tt.in)
			}
			if got, want := NeedsEscape(tt.in), tt.want != strings.ReplaceAll(tt.in, `\`, `\\`); got != want {
				t.Errorf("NeedsEscape(%q) = %v, want %v", tt.in, got, want)
			}
		})
	}
}

// unescape reverses AppendEscaped, as a program reading the lines would.
func unescape(s string) (string, error) {
	var b []byte
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b = append(b, s[i])
			continue
		}
		if i+1 >= len(s) {
			return "", fmt.Errorf("a lone backslash at the end")
		}
		i++
		switch s[i] {
		case '\\':
			b = append(b, '\\')
		case 't':
			b = append(b, '\t')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 'x', 'u':
			n := 2
			if s[i] == 'u' {
				n = 4
			}
			if i+n >= len(s) {
				return "", fmt.Errorf("a short \\%c at %d", s[i], i)
			}
			v, err := strconv.ParseUint(s[i+1:i+1+n], 16, 32)
			if err != nil {
				return "", fmt.Errorf("at %d: %w", i, err)
			}
			if s[i] == 'x' {
				b = append(b, byte(v))
			} else {
				b = utf8.AppendRune(b, rune(v))
			}
			i += n
		default:
			return "", fmt.Errorf("unknown escape \\%c at %d", s[i], i)
		}
	}
	return string(b), nil
}

// checkSafe fails unless line is one safe line: valid UTF-8 without
// control characters, line or paragraph separators or bidi controls.
func checkSafe(t *testing.T, line string) {
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

// FuzzFormat checks that every event makes one safe line whose words stay
// in their columns and whose text and words give back the event's fields.
func FuzzFormat(f *testing.F) {
	f.Add("syslog", "LINUX113", "ZVM002", "", "", "sshd[42]: session opened")
	f.Add("syslog", "lnx1", "", "", "", "a\nLXLOG001I fake line\r\n")
	f.Add("syslog", "h\x1b]0;pwned\x07", "n\u2028", "", "", "\x1b[2J\x85\u0085\u2029\xff\\")
	f.Add("zvm-console", "", "VMSYS1", "MSG", "OPERATOR", "NMVM0001 00:34:49 Hello")
	f.Add("zvm-console", "", "VM SYS", "M\tS G", "U\u00a0SER", "x\u202ey")
	f.Add("zvm-event", "", "ZVM002", "LOGON", "LINUX113", "")
	f.Add("zvm-event", "", "Z\x7f", "LOG\nON", "L\u3000X", "")
	f.Add("region", "", "", "", "", "")
	f.Fuzz(func(t *testing.T, source, host, node, typ, user, text string) {
		e := protocol.Event{Source: protocol.Source(source), Origin: protocol.Origin{Host: host, System: host, Node: node},
			Type: typ, User: user, Text: text, Facility: protocol.FacDaemon, Severity: protocol.SevErr}
		line := Format(&e)
		checkSafe(t, line)
		if strings.ContainsAny(line, "\n\r\x85") {
			t.Fatalf("line end in %q", line)
		}
		var words []string // want, before unescaping
		var wantText *string
		switch e.Source {
		case protocol.SourceZVMConsole:
			words, wantText = []string{IDMsg, first(node, host), first(typ, "CP"), user}, &text
		case protocol.SourceZVMEvent:
			words = []string{IDEvent, first(node, host), user, typ}
		default:
			words, wantText = []string{IDLog, host, node, "daemon", "err"}, &text
		}
		n := len(words)
		if wantText != nil {
			n++
		}
		parts := strings.SplitN(line, " ", n)
		if len(parts) != n {
			t.Fatalf("%q has %d columns, want %d", line, len(parts), n)
		}
		for i, w := range words {
			got := parts[i]
			if wantText == nil && i == len(words)-1 && strings.Contains(got, " ") {
				t.Fatalf("last word %q of %q holds a blank", got, line)
			}
			if w == "" {
				if got != "-" {
					t.Errorf("empty word %d is %q in %q, want -", i, got, line)
				}
				continue
			}
			back, err := unescape(got)
			if err != nil {
				t.Fatalf("word %d %q of %q: %v", i, got, line, err)
			}
			if want := strings.ReplaceAll(w, " ", "_"); back != want {
				t.Errorf("word %d of %q unescapes to %q, want %q", i, line, back, want)
			}
		}
		if wantText != nil {
			back, err := unescape(parts[n-1])
			if err != nil || back != *wantText {
				t.Errorf("text of %q unescapes to %q, %v; want %q", line, back, err, *wantText)
			}
		}
	})
}
