package console

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/racingmars/go3270"

	"github.com/zbridge/zbridge/protocol"
)

// codepages are every code page go3270 knows.
var codepages = []func() go3270.Codepage{
	go3270.CodepageBracket, go3270.Codepage037, go3270.Codepage273, go3270.Codepage275,
	go3270.Codepage277, go3270.Codepage278, go3270.Codepage280, go3270.Codepage284,
	go3270.Codepage285, go3270.Codepage297, go3270.Codepage424, go3270.Codepage500,
	go3270.Codepage803, go3270.Codepage870, go3270.Codepage871, go3270.Codepage875,
	go3270.Codepage880, go3270.Codepage924, go3270.Codepage1026, go3270.Codepage1047,
	go3270.Codepage1140, go3270.Codepage1141, go3270.Codepage1142, go3270.Codepage1143,
	go3270.Codepage1144, go3270.Codepage1145, go3270.Codepage1146, go3270.Codepage1147,
	go3270.Codepage1148, go3270.Codepage1149, go3270.Codepage1160,
}

// checkShowable fails unless every rune of s takes one cell on cp: one
// byte from 0x40 to 0xFE (never a 3270 order or a telnet IAC) that
// decodes back to it.
func checkShowable(t *testing.T, cp go3270.Codepage, s string) {
	t.Helper()
	e := cp.Encode(s)
	if len(e) != utf8.RuneCountInString(s) {
		t.Fatalf("%s: %q encodes to %d bytes for %d runes", cp.ID(), s, len(e), utf8.RuneCountInString(s))
	}
	for i, b := range e {
		if b < 0x40 || b == 0xff {
			t.Fatalf("%s: %q encodes byte %d to %#x", cp.ID(), s, i, b)
		}
	}
	if d := cp.Decode(e); d != s {
		t.Fatalf("%s: %q comes back as %q", cp.ID(), s, d)
	}
}

func TestCharset(t *testing.T) {
	for _, f := range codepages {
		cp := f()
		cs := newCharset(cp)
		var all []rune
		for r := rune(0); r < 0x3000; r++ {
			all = append(all, r)
		}
		shown := string(cs.clean(string(all)))
		checkShowable(t, cp, shown)
		if cs.show('a') != 'a' { // 803 (Hebrew) has no small letters
			continue
		}
		if got := string(cs.clean("a\tb\nc\x1b\x00d\xffe\u200bf")); got != "a b c..d?e?f" {
			t.Errorf("%s: clean = %q", cp.ID(), got)
		}
	}
	for cp, s := range map[go3270.Codepage]string{go3270.Codepage1141(): "€ äöü ß", go3270.Codepage880(): "Жж", go3270.Codepage875(): "Ωω"} {
		if got := string(newCharset(cp).clean(s)); got != s {
			t.Errorf("%s: clean(%q) = %q", cp.ID(), s, got)
		}
	}
	// The characters that differ between code pages are kept where the
	// code page has them.
	for _, f := range []func() go3270.Codepage{go3270.Codepage037, go3270.Codepage1047, go3270.Codepage1141, go3270.CodepageBracket} {
		if got := string(newCharset(f()).clean("[]|!@{}#$")); got != "[]|!@{}#$" {
			t.Errorf("%s: %q", f().ID(), got)
		}
	}
}

func TestWrap(t *testing.T) {
	for _, tc := range []struct {
		name   string
		text   string
		width  int
		max    int
		want   []string
		indent int
	}{
		{"fits", "short line", 20, 4, []string{"short line"}, 2},
		{"exact", "0123456789", 10, 4, []string{"0123456789"}, 2},
		{"at a blank", "aaaa bbbb cccc", 10, 4, []string{"aaaa bbbb", "  cccc"}, 2},
		{"blanks dropped at the break", "aaaaaaa     bbbb", 10, 4, []string{"aaaaaaa", "  bbbb"}, 2},
		{"long word cut", "0123456789abcdefghij", 10, 4, []string{"0123456789", "  abcdefgh", "  ij"}, 2},
		{"blank early: cut at the width", "a bcdefghijklmnop", 10, 4, []string{"a bcdefghi", "  jklmnop"}, 2},
		{"cut short", strings.Repeat("x", 100), 10, 3, []string{"xxxxxxxxxx", "  xxxxxxxx", "  xxxxx..."}, 2},
		{"empty", "", 10, 3, []string{""}, 2},
		{"trailing blanks", "abc   ", 10, 3, []string{"abc"}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := wrap([]rune(tc.text), tc.width, tc.indent, tc.max)
			if !slices.Equal(got, tc.want) {
				t.Errorf("wrap(%q, %d) = %q, want %q", tc.text, tc.width, got, tc.want)
			}
		})
	}
}

// FuzzWrap checks that whatever an event holds, the lines made of it fit
// the row, are safe to send in the terminal's code page and lose no text
// but what a line cut short says it left off.
func FuzzWrap(f *testing.F) {
	for _, s := range []string{
		"HCPMSG001I hello world",
		"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - 'su root' failed for lonvick on /dev/pts/8",
		"ctl \x1b[31mred\x00 \xff\xfe end",
		strings.Repeat("word ", 200),
		strings.Repeat("x", 1000),
		"日本語のテキスト und Umlaute äöü ß € [] {} | ! @",
		"\t\tindented\r\n",
	} {
		f.Add(s, uint8(79))
		f.Add(s, uint8(131))
	}
	cps := []go3270.Codepage{go3270.Codepage1047(), go3270.Codepage1141(), go3270.CodepageBracket()}
	f.Fuzz(func(t *testing.T, s string, w uint8) {
		width := max(int(w), contIndent+4)
		for _, cp := range cps {
			cs := newCharset(cp)
			text := cs.clean(s)
			lines := wrap(text, width, contIndent, maxWrap)
			if len(lines) == 0 || len(lines) > maxWrap {
				t.Fatalf("%d lines", len(lines))
			}
			var got []string
			for i, l := range lines {
				if n := utf8.RuneCountInString(l); n > width {
					t.Fatalf("line %d is %d wide, more than %d", i, n, width)
				}
				if i > 0 && !strings.HasPrefix(l, strings.Repeat(" ", contIndent)) {
					t.Fatalf("continuation %d not indented: %q", i, l)
				}
				checkShowable(t, cp, l)
				got = append(got, strings.Fields(l)...)
			}
			want := strings.Fields(string(text))
			joined, all := strings.Join(got, ""), strings.Join(want, "")
			if strings.HasSuffix(lines[len(lines)-1], "...") {
				joined = strings.TrimSuffix(joined, "...")
				if !strings.HasPrefix(all, joined) {
					t.Fatalf("cut-short lines are not a prefix of the text:\n%q\n%q", joined, all)
				}
			} else if joined != all {
				t.Fatalf("wrapping changed the text:\n%q\n%q", joined, all)
			}
		}
	})
}

func TestCut(t *testing.T) {
	for _, tc := range []struct {
		s    string
		n    int
		want string
	}{{"abc", 5, "abc"}, {"abc", 3, "abc"}, {"abcd", 3, "abc"}, {"äöüß", 2, "äö"}, {"abc", 0, ""}, {"", 2, ""}} {
		if got := cut(tc.s, tc.n); got != tc.want {
			t.Errorf("cut(%q, %d) = %q, want %q", tc.s, tc.n, got, tc.want)
		}
	}
}

func TestScrollback(t *testing.T) {
	sb := scrollback{max: 5}
	for i := range 12 {
		sb.add(logLine{text: string(rune('a' + i)), event: i%3 != 0})
	}
	if sb.oldest() != 7 || sb.total != 12 {
		t.Fatalf("oldest %d total %d", sb.oldest(), sb.total)
	}
	var kept string
	for i := sb.oldest(); i < sb.total; i++ {
		kept += sb.at(i).text
	}
	if kept != "hijkl" {
		t.Errorf("kept %q", kept)
	}
	sb.dropEvents() // the console's own lines: 9 (j)
	if sb.total != 1 || sb.at(0).text != "j" {
		t.Errorf("after dropEvents: total %d, first %q", sb.total, sb.at(0).text)
	}
}

func TestScroll(t *testing.T) {
	ss := &session{logRows: 5, sb: scrollback{max: 20}}
	add := func(n int) {
		for range n {
			ss.appendLocked([]logLine{{text: "x"}})
		}
	}
	view := func() (int, bool, int) { return ss.firstLocked(), ss.held, ss.heldNew }
	add(12)
	if f, held, _ := view(); f != 7 || held {
		t.Fatalf("live: first %d held %v", f, held)
	}
	ss.scroll(+1) // PF8 while live: nothing
	if f, held, _ := view(); f != 7 || held {
		t.Fatalf("PF8 live: first %d held %v", f, held)
	}
	ss.scroll(-1)
	if f, held, _ := view(); f != 2 || !held {
		t.Fatalf("PF7: first %d held %v", f, held)
	}
	add(3)
	if f, _, n := view(); f != 2 || n != 3 {
		t.Fatalf("held, 3 new: first %d new %d", f, n)
	}
	if s, _ := ss.statusLocked(ss.viewLocked()); s != "HELD  LINES 3-7 OF 15  MORE +3" {
		t.Errorf("status %q", s)
	}
	ss.scroll(-1)
	if f, _, _ := view(); f != 0 {
		t.Fatalf("PF7 at the top: first %d", f)
	}
	// The ring drops the lines in view: the view follows the oldest kept.
	add(10)
	if f, _, _ := view(); f != ss.sb.oldest() || f != 5 {
		t.Fatalf("evicted while held: first %d, oldest %d", f, ss.sb.oldest())
	}
	if f, e := ss.viewLocked(); f != 5 || e != 10 {
		t.Fatalf("evicted while held: view %d-%d, want the oldest page 5-10", f, e)
	}
	ss.scroll(+1)
	ss.scroll(+1)
	if f, held, _ := view(); f != 15 || !held {
		t.Fatalf("two PF8: first %d held %v", f, held)
	}
	ss.scroll(+1) // onto the newest page
	if f, held, _ := view(); f != 20 || held {
		t.Fatalf("PF8 to the bottom: first %d held %v", f, held)
	}
	ss.running = "linux:web1 sleep 5"
	if s, _ := ss.statusLocked(ss.viewLocked()); s != "LIVE  RUNNING: linux:web1 sleep 5" {
		t.Errorf("status %q", s)
	}
}

// TestHeldShort holds a log shorter than a page: the lines that arrive
// later are not shown in its empty rows until PF8.
func TestHeldShort(t *testing.T) {
	cs := newCharset(go3270.Codepage1047())
	ss := &session{logRows: 5, sb: scrollback{max: 20}, t: &terminal{rows: 10, cols: 80, cs: cs}}
	for _, l := range []string{"one", "two"} {
		ss.appendLocked([]logLine{{text: l}})
	}
	shown := func() []string {
		var out []string
		for _, r := range ss.rowsNow()[logTop : logTop+ss.logRows] {
			out = append(out, r.text)
		}
		return out
	}
	ss.scroll(-1)
	ss.appendLocked([]logLine{{text: "three"}})
	if got := shown(); !slices.Equal(got, []string{"one", "two", "", "", ""}) {
		t.Errorf("held: %q", got)
	}
	if got := ss.rowsNow()[ss.t.rows-3].text; got != "HELD  LINES 1-2 OF 3  MORE +1" {
		t.Errorf("status %q", got)
	}
	ss.scroll(+1)
	if got := shown(); !slices.Equal(got, []string{"one", "two", "three", "", ""}) || ss.held {
		t.Errorf("after PF8: %q, held %v", got, ss.held)
	}
	ss.scroll(-1) // nothing before: held where it is
	if got := ss.rowsNow()[ss.t.rows-3].text; got != "HELD  LINES 1-3 OF 3  MORE +0" {
		t.Errorf("status %q", got)
	}
}

func TestEventText(t *testing.T) {
	e := ev("01:02:03", "VMSYS1", "HCPMSG001I", "text", protocol.SevInfo)
	if got := eventText(e); got != "01:02:03 VMSYS1   HCPMSG001I text" {
		t.Errorf("%q", got)
	}
	e = ev("01:02:03", "ZBR1", "ZBR001I", "ZBR001I REGION ZBR1 STARTED: NONE", protocol.SevInfo)
	if got := eventText(e); got != "01:02:03 ZBR1     ZBR001I    REGION ZBR1 STARTED: NONE" {
		t.Errorf("a region message's ID shown twice, or not at all: %q", got)
	}
	e = &protocol.Event{Received: time.Date(2025, 1, 1, 23, 59, 58, 0, time.FixedZone("X", 3600)), Text: "no origin"}
	if got := eventText(e); got != "22:59:58 -                   no origin" {
		t.Errorf("%q", got)
	}
	for id, want := range map[string]bool{"IEA404A": true, "ZBR101A": true, "HCPMSG001I": false, "DATA": false, "A": false, "": false} {
		if isAction(id) != want {
			t.Errorf("isAction(%q) = %v", id, !want)
		}
	}
	// An action message's ID may only be in its text.
	e = ev("01:02:03", "MVS1", "", "IEA404A SEVERE WAIT", protocol.SevInfo)
	if eventStyle(e) != actionStyle {
		t.Errorf("an action message in the text is not highlighted")
	}
}

func TestAgentColumns(t *testing.T) {
	for _, width := range []int{79, 131, 159} {
		w := agentColumns(width)
		sum := len(w) - 1
		for _, n := range w {
			sum += n
		}
		if sum != width {
			t.Errorf("width %d: columns %v take %d", width, w, sum)
		}
	}
	now := time.Now()
	for d, want := range map[time.Duration]string{3 * time.Second: "3s", 5 * time.Minute: "5m", 3 * time.Hour: "3h", 72 * time.Hour: "3d"} {
		if got := age(now, now.Add(-d)); got != want {
			t.Errorf("age(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestThrottleAddr(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1":                   "192.0.2.1",
		"2001:db8:1:2:3:4:5:6":        "2001:db8:1:2::",
		"2001:db8:1:2:ffff:4:5:6":     "2001:db8:1:2::",
		"::ffff:192.0.2.1":            "::ffff:192.0.2.1",
		"2001:db8:1:3::1":             "2001:db8:1:3::",
		"fe80::1234:5678:9abc:def0%1": "fe80::",
	} {
		if got := throttleAddr(netip.MustParseAddr(in)); got.String() != want {
			t.Errorf("throttleAddr(%s) = %s, want %s", in, got, want)
		}
	}
}
