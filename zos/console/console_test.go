package console

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/racingmars/go3270"

	"github.com/zbridge/zbridge/internal/leakcheck"
	"github.com/zbridge/zbridge/internal/peer"
	"github.com/zbridge/zbridge/protocol"
)

const (
	client1 = "OPER1"
	secret1 = "s3cr3t-Pa55"
)

// loggedOn starts a terminal with o and logs OPER1 on.
func loggedOn(t *testing.T, ts *testServer, o termOpts) *term {
	t.Helper()
	tm := startTerm(t, ts.addr, o)
	tm.logon(client1, secret1)
	tm.waitText("COMMAND ===>")
	return tm
}

// text returns row r right-trimmed; the title row (whose column 0 is its
// attribute) trimmed on the left too.
func text(scr []string, r int) string {
	if r < 0 || r >= len(scr) {
		return ""
	}
	if r == 0 {
		return strings.TrimSpace(scr[r])
	}
	return strings.TrimRight(scr[r], " ")
}

// rowAttrs returns the attributes (c0=.., 41=.., 42=..) of the field that
// starts row r, as s3270 holds them: its attribute is the last column of
// row r-1.
func (tm *term) rowAttrs(r int) map[string]string {
	tm.t.Helper()
	attrs := tm.FieldAttrs(r-1, tm.Status().Cols-1)
	if attrs == nil {
		tm.t.Fatalf("row %d ends with no field attribute", r-1)
	}
	return attrs
}

func TestLogon(t *testing.T) {
	leakcheck.Check(t)
	ts := startServer(t, Config{})
	tm := startTerm(t, ts.addr, termOpts{})
	scr := tm.waitText("CLIENT ===>")
	if !hasText("ZBRIDGE ZBR1 CONSOLE")(scr) || !hasText("SECRET ===>")(scr) || !hasText("PF3=END")(scr) {
		t.Fatalf("logon panel:\n%s", peer.DumpScreen(scr))
	}

	// The secret field shows nothing of what is typed.
	tm.Type(client1)
	tm.Must("Tab()")
	tm.Type("wrong-secret")
	if scr := tm.Screen(); hasText("wrong-secret")(scr) {
		t.Fatalf("the secret is shown as typed:\n%s", peer.DumpScreen(scr))
	}
	tm.key("Enter()")
	scr = tm.waitText("ZBR314E LOGON REFUSED: bad client name or secret")
	if hasText("wrong-secret")(scr) {
		t.Fatalf("the secret is written back:\n%s", peer.DumpScreen(scr))
	}
	if !hasText("CLIENT ===> " + client1)(scr) {
		t.Errorf("the client name is not kept:\n%s", peer.DumpScreen(scr))
	}

	// A refusal for load says so; it is not a failed logon for the throttle.
	tm.logon("BUSY", "x")
	tm.waitText("ZBR314E LOGON REFUSED: console: the region is busy")

	tm.logon(client1, secret1)
	scr = tm.waitText("LIVE")
	want := map[int]string{
		0:  "ZBRIDGE ZBR1 CONSOLE  CLIENT OPER1",
		1:  "FILTER ===>",
		22: "COMMAND ===>",
		23: "PF3=END PF5=AGENTS PF7=UP PF8=DOWN PF12=RETRIEVE ENTER=RUN",
	}
	for r, w := range want {
		if !strings.HasPrefix(text(scr, r), w) {
			t.Errorf("row %d = %q, want it to start %q", r, text(scr, r), w)
		}
	}
	if !strings.HasSuffix(text(scr, 0), " UTC") {
		t.Errorf("no clock in the title: %q", text(scr, 0))
	}
	if st := tm.Status(); st.CursorRow != 22 || st.CursorCol != 13 {
		t.Errorf("cursor not on the command line: status %q", st.Line)
	}
	st := ts.Stats()
	if st.Active != 1 || st.Accepted != 1 || st.Failed != 2 || st.Pending != 0 {
		t.Errorf("stats %+v, want 1 active, 1 accepted, 2 failed", st)
	}
	if n := ts.b.logons.Load(); n != 3 {
		t.Errorf("Backend.Logon called %d times, want 3", n)
	}
}

func TestLogArea(t *testing.T) {
	leakcheck.Check(t)
	ts := startServer(t, Config{})
	long := strings.Repeat("word ", 30) + "end"
	host := ev("12:00:02", "", "", "disk almost full", protocol.SevWarning)
	host.Origin.Host = "web1"
	for _, e := range []*protocol.Event{
		ev("12:00:01", "VMSYS1", "HCPMSG001I", "hello world", protocol.SevInfo),
		host,
		ev("12:00:03", "lnx01", "kernel", "oops", protocol.SevErr),
		ev("12:00:04", "MVS1", "IEA404A", "SEVERE WAIT", protocol.SevInfo),
		ev("12:00:05", "lnx01", "", "debugging", protocol.SevDebug),
		ev("12:00:06", "lnx01", "", "ctl \x1b[31mred\x00 \xff"+"end", protocol.SevNotice),
		ev("12:00:07", "lnx01", "LONG", long, protocol.SevInfo),
	} {
		ts.b.push(e)
	}
	tm := loggedOn(t, ts, termOpts{})
	scr := tm.waitText("word end") // the last event's last line: one draw adds all its lines
	want := []string{
		"12:00:01 VMSYS1   HCPMSG001I hello world",
		"12:00:02 web1                disk almost full",
		"12:00:03 lnx01    kernel     oops",
		"12:00:04 MVS1     IEA404A    SEVERE WAIT",
		"12:00:05 lnx01               debugging",
		"12:00:06 lnx01               ctl .[31mred. ?end",
	}
	for i, w := range want {
		if got := text(scr, 2+i); got != w {
			t.Errorf("row %d = %q, want %q", 2+i, got, w)
		}
	}
	// The long event wraps at the width, the rest indented under the text.
	wrapped := []string{text(scr, 8), text(scr, 9), text(scr, 10)}
	if !strings.HasPrefix(wrapped[0], "12:00:07 lnx01    LONG       word word") {
		t.Errorf("wrapped event starts %q", wrapped[0])
	}
	for i, l := range wrapped {
		if len(l) > 79 || i > 0 && !strings.HasPrefix(l, strings.Repeat(" ", contIndent)+"word") {
			t.Errorf("wrapped event, line %d: %q", i, l)
		}
	}
	if got := strings.Join(strings.Fields(strings.Join(wrapped, " ")), " "); !strings.HasSuffix(got, "LONG "+long) {
		t.Errorf("the wrapped event lost text: %q", got)
	}

	// Colours by severity; an action message in reverse video.
	for r, w := range map[int][2]string{
		2: {"f4", ""},   // info: green
		3: {"f6", ""},   // warning: yellow
		4: {"f2", ""},   // err: red
		5: {"f2", "f2"}, // action: red, reverse video
		6: {"f1", ""},   // debug: blue
	} {
		a := tm.rowAttrs(r)
		if a["42"] != w[0] || a["41"] != w[1] {
			t.Errorf("row %d: attributes %v, want colour %s highlight %q", r, a, w[0], w[1])
		}
	}

	// A new event appears without a key pressed, at the bottom.
	ts.b.push(ev("12:00:08", "VMSYS1", "HCPMSG002I", "unsolicited", protocol.SevInfo))
	scr = tm.waitText("unsolicited")
	if r := rowOf(scr, "unsolicited"); r != 11 || text(scr, 11) != "12:00:08 VMSYS1   HCPMSG002I unsolicited" {
		t.Errorf("new event on row %d: %q\n%s", r, text(scr, r), peer.DumpScreen(scr))
	}
}

// eventN is the numbered test event n.
func eventN(n int) *protocol.Event {
	return ev("13:00:00", "VMSYS1", "HCPTST001I", fmt.Sprintf("event %02d", n), protocol.SevInfo)
}

func TestScrollHold(t *testing.T) {
	leakcheck.Check(t)
	ts := startServer(t, Config{})
	for n := 1; n <= 50; n++ {
		ts.b.push(eventN(n))
	}
	tm := loggedOn(t, ts, termOpts{})
	scr := tm.waitText("event 50")
	if text(scr, 2) != "13:00:00 VMSYS1   HCPTST001I event 32" || !strings.HasSuffix(text(scr, 20), "event 50") {
		t.Fatalf("live view:\n%s", peer.DumpScreen(scr))
	}

	tm.key("PF(7)")
	scr = tm.waitText("HELD")
	if !strings.HasSuffix(text(scr, 2), "event 13") || !strings.HasSuffix(text(scr, 20), "event 31") ||
		text(scr, 21) != "HELD  LINES 13-31 OF 50  MORE +0" {
		t.Fatalf("after PF7:\n%s", peer.DumpScreen(scr))
	}
	// New events while held: the view stays, the status counts them.
	for n := 51; n <= 53; n++ {
		ts.b.push(eventN(n))
	}
	scr = tm.waitText("MORE +3")
	if !strings.HasSuffix(text(scr, 2), "event 13") || hasText("event 53")(scr) {
		t.Fatalf("the held view moved:\n%s", peer.DumpScreen(scr))
	}
	tm.key("PF(7)")
	scr = tm.waitText("LINES 1-19 OF 53")
	if !strings.HasSuffix(text(scr, 2), "event 01") {
		t.Fatalf("after the second PF7:\n%s", peer.DumpScreen(scr))
	}
	tm.key("PF(8)")
	scr = tm.waitText("LINES 20-38 OF 53")
	if !strings.HasSuffix(text(scr, 2), "event 20") {
		t.Fatalf("after PF8:\n%s", peer.DumpScreen(scr))
	}
	tm.key("PF(8)") // onto the newest page: live again
	scr = tm.waitText("LIVE")
	if !strings.HasSuffix(text(scr, 20), "event 53") {
		t.Fatalf("after PF8 to the bottom:\n%s", peer.DumpScreen(scr))
	}
	ts.b.push(eventN(54))
	scr = tm.waitText("event 54")
	if !strings.HasSuffix(text(scr, 20), "event 54") {
		t.Fatalf("live again, a new event:\n%s", peer.DumpScreen(scr))
	}
}

// consecutive reports whether lines appear on consecutive rows of scr, in
// order, each row ending with its line.
func consecutive(scr []string, lines ...string) bool {
	for r := range scr {
		ok := true
		for i, l := range lines {
			if r+i >= len(scr) || !strings.HasSuffix(text(scr, r+i), l) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func TestCommands(t *testing.T) {
	leakcheck.Check(t)
	ts := startServer(t, Config{})
	tm := loggedOn(t, ts, termOpts{})

	tm.command("linux:web1 echo hi there")
	scr := tm.waitFor("the command's output", func(scr []string) bool {
		return consecutive(scr, "OPER1 ==> linux:web1 echo hi there", "hi there", "ZBR310I COMMAND C1 ENDED RC=0")
	})
	if text(scr, 22) != "COMMAND ===>" {
		t.Errorf("the command line is not cleared: %q", text(scr, 22))
	}
	tm.key("Clear()") // the screen again
	scr = tm.waitText("COMMAND ===>")
	if !consecutive(scr, "OPER1 ==> linux:web1 echo hi there", "hi there") || !hasText("LIVE")(scr) {
		t.Errorf("after CLEAR:\n%s", peer.DumpScreen(scr))
	}
	tm.command("linux:web1 rc 3 TERM")
	tm.waitFor("RC=3", func(scr []string) bool {
		return consecutive(scr, "OPER1 ==> linux:web1 rc 3 TERM", "ZBR310I COMMAND C2 ENDED RC=3 SIGNAL=TERM TRUNCATED")
	})
	tm.command("linux:web1 rm -rf /")
	tm.waitFor("the refusal", func(scr []string) bool {
		return consecutive(scr, "OPER1 ==> linux:web1 rm -rf /",
			"ZBR311E COMMAND NOT RUN: not permitted for OPER1")
	})

	// PF12 retrieves the last commands, newest first.
	for _, want := range []string{"linux:web1 rm -rf /", "linux:web1 rc 3 TERM", "linux:web1 echo hi there"} {
		tm.key("PF(12)")
		if scr := tm.Screen(); text(scr, 22) != "COMMAND ===> "+want {
			t.Fatalf("after PF12: %q, want %q", text(scr, 22), want)
		}
	}
	tm.key("Enter()") // runs the retrieved command again
	tm.waitText("ZBR310I COMMAND C4 ENDED RC=0")

	// One command at a time: a second is refused while one runs; the log
	// and the keyboard go on meanwhile.
	tm.command("linux:web1 wait")
	tm.waitText("RUNNING: linux:web1 wait")
	ts.b.push(ev("14:00:00", "VMSYS1", "HCPMSG003I", "while it runs", protocol.SevInfo))
	tm.waitText("while it runs")
	tm.command("linux:web1 echo second")
	tm.waitText("ZBR311E COMMAND NOT RUN: a command is running (linux:web1 wait)")
	close(ts.b.release)
	scr = tm.waitFor("the waiting command's end", func(scr []string) bool {
		return consecutive(scr, "released", "ZBR310I COMMAND C5 ENDED RC=0") && hasText("LIVE")(scr)
	})
	if hasText("RUNNING")(scr) {
		t.Errorf("the status still shows the command:\n%s", peer.DumpScreen(scr))
	}
	want := []string{"linux:web1 echo hi there", "linux:web1 rc 3 TERM", "linux:web1 rm -rf /",
		"linux:web1 echo hi there", "linux:web1 wait"}
	if got := ts.b.received(); !slices.Equal(got, want) {
		t.Errorf("the region received %q, want %q", got, want)
	}
}

func TestFilter(t *testing.T) {
	leakcheck.Check(t)
	ts := startServer(t, Config{})
	ts.b.push(ev("15:00:01", "VMSYS1", "", "vm one", protocol.SevInfo))
	ts.b.push(ev("15:00:02", "lnx01", "", "linux one", protocol.SevInfo))
	ts.b.push(ev("15:00:03", "lnx02", "", "linux two", protocol.SevWarning))
	tm := loggedOn(t, ts, termOpts{})
	tm.waitText("linux two")
	tm.command("linux:web1 echo kept")
	tm.waitText("ZBR310I COMMAND C1 ENDED RC=0")

	setFilter := func(f string) {
		t.Helper()
		tm.Must("BackTab()") // from the command line to the filter line
		tm.Must("EraseEOF()")
		tm.Type(f)
		tm.key("Enter()")
	}
	setFilter("origin=lnx*")
	scr := tm.waitText("ZBR312I FILTER SET: origin=lnx*")
	scr = tm.waitFor("the filtered log", func(scr []string) bool {
		return hasText("linux one")(scr) && hasText("linux two")(scr)
	})
	if hasText("vm one")(scr) || !hasText("OPER1 ==> linux:web1 echo kept")(scr) {
		t.Errorf("after the filter, the log area shows:\n%s", peer.DumpScreen(scr))
	}
	if text(scr, 1) != "FILTER ===> origin=lnx*" {
		t.Errorf("filter line %q", text(scr, 1))
	}
	ts.b.push(ev("15:00:04", "VMSYS1", "", "vm two", protocol.SevInfo))
	ts.b.push(ev("15:00:05", "lnx03", "", "linux three", protocol.SevInfo))
	scr = tm.waitText("linux three")
	if hasText("vm two")(scr) {
		t.Errorf("an event the filter excludes is shown:\n%s", peer.DumpScreen(scr))
	}

	// A bad filter: the one in force stays.
	setFilter("bogus=1")
	scr = tm.waitText(`ZBR313E FILTER NOT SET: bad filter: unknown key "bogus"`)
	if text(scr, 1) != "FILTER ===> origin=lnx*" {
		t.Errorf("after a bad filter, the filter line is %q", text(scr, 1))
	}
	op := ts.b.op(t, 0)
	if n := op.tails.Load(); n != 2 {
		t.Errorf("%d tails, want 2 (a bad filter restarts nothing)", n)
	}

	setFilter("")
	scr = tm.waitText("ZBR312I FILTER SET: ALL")
	tm.waitFor("every event", func(scr []string) bool { return hasText("vm one")(scr) && hasText("vm two")(scr) })
}

func TestAgentsPanel(t *testing.T) {
	leakcheck.Check(t)
	ts := startServer(t, Config{})
	since := time.Date(2025, 3, 14, 9, 30, 0, 0, time.UTC)
	ts.b.agents = []Agent{
		{Name: "web1", Kind: "linux", Addr: "192.0.2.10:22", State: "connected", Since: since, LastHeartbeat: time.Now().Add(-5 * time.Second), Region: "ZBR1"},
		{Name: "VMSYS1", Kind: "zvm", Addr: "192.0.2.20:51234", State: "connected", Since: since, Region: "ZBR2"},
	}
	tm := loggedOn(t, ts, termOpts{})
	tm.key("PF(5)")
	scr := tm.waitText("AGENTS: 2")
	if got := strings.Fields(text(scr, 2)); !slices.Equal(got, []string{"NAME", "KIND", "STATE", "ADDRESS", "SINCE", "LAST-HB", "REGION"}) {
		t.Errorf("header %q", text(scr, 2))
	}
	if got := strings.Fields(text(scr, 3)); len(got) != 8 || got[0] != "web1" || got[1] != "linux" || got[3] != "192.0.2.10:22" ||
		got[4] != "03-14" || got[5] != "09:30" || !strings.HasSuffix(got[6], "s") || got[7] != "ZBR1" {
		t.Errorf("row 3 %q", text(scr, 3))
	}
	if got := strings.Fields(text(scr, 4)); len(got) != 8 || got[0] != "VMSYS1" || got[6] != "-" || got[7] != "ZBR2" {
		t.Errorf("row 4 %q", text(scr, 4))
	}
	// The log's updates do not write over the panel.
	ts.b.push(ev("16:00:00", "VMSYS1", "", "not on the panel", protocol.SevInfo))
	time.Sleep(3 * minUpdateGap)
	if scr := tm.Screen(); hasText("not on the panel")(scr) || !hasText("AGENTS: 2")(scr) {
		t.Fatalf("the panel was written over:\n%s", peer.DumpScreen(scr))
	}
	// A refusal is a message line.
	ts.b.mu.Lock()
	ts.b.agentsErr = errors.New("not permitted: the roles of OPER1 do not grant AGENTS")
	ts.b.mu.Unlock()
	tm.key("Enter()")
	tm.waitText("ZBR311E COMMAND NOT RUN: not permitted: the roles of OPER1 do not grant AGENTS")
	tm.key("PF(3)")
	scr = tm.waitText("not on the panel")
	if !hasText("LIVE")(scr) {
		t.Errorf("PF3 did not go back to the log:\n%s", peer.DumpScreen(scr))
	}
	tm.key("PF(5)")
	tm.waitText("ZBR311E")
	tm.key("PF(5)")
	tm.waitText("COMMAND ===>")
}

func TestPF3(t *testing.T) {
	leakcheck.Check(t)
	ts := startServer(t, Config{})
	tm := loggedOn(t, ts, termOpts{})
	ts.waitStats(t, "one session", func(st Stats) bool { return st.Active == 1 })
	tm.Must("PF(3)")
	tm.waitDisconnected()
	ts.waitStats(t, "no session", func(st Stats) bool { return st.Active == 0 })
	if n := ts.b.op(t, 0).closed.Load(); n != 1 {
		t.Errorf("Operator.Close called %d times, want 1", n)
	}
	if !strings.Contains(ts.log.String(), "logged off (PF3)") {
		t.Errorf("the log does not say why the session ended")
	}
}

func TestModels(t *testing.T) {
	leakcheck.Check(t)
	t.Run("3278-4", func(t *testing.T) {
		ts := startServer(t, Config{})
		for n := 1; n <= 50; n++ {
			ts.b.push(eventN(n))
		}
		tm := loggedOn(t, ts, termOpts{model: "3278-4"})
		scr := tm.waitText("event 50")
		if st := tm.Status(); st.Rows != 43 || st.Cols != 80 || len(scr) != 43 {
			t.Fatalf("s3270 is %dx%d", st.Rows, st.Cols)
		}
		if !strings.HasSuffix(text(scr, 2), "event 13") || !strings.HasSuffix(text(scr, 39), "event 50") ||
			text(scr, 40) != "LIVE" || !strings.HasPrefix(text(scr, 41), "COMMAND ===>") ||
			!strings.HasPrefix(text(scr, 42), "PF3=END") {
			t.Fatalf("model 4 layout:\n%s", peer.DumpScreen(scr))
		}
		tm.key("PF(7)")
		tm.waitText("HELD  LINES 1-38 OF 50")
	})
	t.Run("3278-5", func(t *testing.T) {
		ts := startServer(t, Config{})
		long := strings.Repeat("abcdefghi ", 20)
		ts.b.push(ev("17:00:00", "VMSYS1", "HCPLNG001I", long, protocol.SevInfo))
		tm := loggedOn(t, ts, termOpts{model: "3278-5"})
		scr := tm.waitText("HCPLNG001I")
		if st := tm.Status(); st.Rows != 27 || st.Cols != 132 || len(scr) != 27 {
			t.Fatalf("s3270 is %dx%d", st.Rows, st.Cols)
		}
		if n := len(text(scr, 2)); n <= 79 || n > 131 {
			t.Errorf("the first line of the event is %d wide, want the 131 of the row: %q", n, text(scr, 2))
		}
		if !strings.HasPrefix(text(scr, 3), strings.Repeat(" ", contIndent)+"abcdefghi") ||
			text(scr, 24) != "LIVE" || !strings.HasPrefix(text(scr, 26), "PF3=END") ||
			!strings.HasSuffix(text(scr, 0), " UTC") || len(scr[0]) != 132 || len(strings.TrimRight(scr[0], " ")) != 131 {
			t.Errorf("model 5 layout:\n%s", peer.DumpScreen(scr))
		}
	})
}

// TestCodepages runs two terminals with different code pages at once: each
// must see the same text, and what each types must reach the region as
// typed.
func TestCodepages(t *testing.T) {
	leakcheck.Check(t)
	ts := startServer(t, Config{})
	const special = "[a] |b| !c! @d {e} #f $g"
	ts.b.push(ev("18:00:00", "VMSYS1", "HCPCHR001I", special, protocol.SevInfo))
	var terms []*term
	// Not cp037: x3270 reports CPGID 37 for it and for its default
	// (bracket, which is what go3270 then assumes), so no host can tell
	// them apart.
	for _, cp := range []string{"cp1047", "cp1141", ""} {
		tm := loggedOn(t, ts, termOpts{codepage: cp})
		terms = append(terms, tm)
	}
	for i, tm := range terms {
		scr := tm.waitText("HCPCHR001I")
		if got := text(scr, 2); got != "18:00:00 VMSYS1   HCPCHR001I "+special {
			t.Errorf("terminal %d: %q", i, got)
		}
		tm.command("linux:web1 echo " + special)
		tm.waitFor("the echo", func(scr []string) bool {
			return consecutive(scr, "OPER1 ==> linux:web1 echo "+special, special)
		})
	}
	for _, got := range ts.b.received() {
		if got != "linux:web1 echo "+special {
			t.Errorf("the region received %q", got)
		}
	}
	if !strings.Contains(ts.log.String(), "codepage=1141") {
		t.Errorf("the server did not see code page 1141")
	}
}

func TestTLS(t *testing.T) {
	leakcheck.Check(t)
	ca := peer.NewTLSCA(t)
	ts := startServer(t, Config{TLSConfig: &tls.Config{Certificates: []tls.Certificate{ca.ServerPair(t)}}})
	ts.b.push(ev("19:00:00", "VMSYS1", "HCPTLS001I", "over tls", protocol.SevInfo))
	tm := loggedOn(t, ts, termOpts{caFile: ca.File})
	tm.waitText("HCPTLS001I over tls")
	ts.b.push(ev("19:00:01", "VMSYS1", "HCPTLS002I", "still over tls", protocol.SevInfo))
	tm.waitText("still over tls")

	// A plain TCP client is not served.
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte{0xff, 0xfb, 0x18, 0xff, 0xfd, 0x19, 0xff, 0xfb, 0x19}) // telnet, not a TLS record
	c.SetReadDeadline(time.Now().Add(waitTimeout))
	if _, err := io.ReadAll(c); err != nil {
		t.Errorf("a plain connection was not closed: %v", err)
	}
}

// readUntilClosed reads c until the server closes it.
func readUntilClosed(t *testing.T, c net.Conn) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(waitTimeout))
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("the server did not close the connection: %v (read %x)", err, b)
	}
	return b
}

func TestPreLogonLimits(t *testing.T) {
	leakcheck.Check(t)
	t.Run("MaxPerAddr", func(t *testing.T) {
		ts := startServer(t, Config{MaxPerAddr: 2, LogonTimeout: time.Minute})
		var conns []net.Conn
		for range 2 {
			c, err := net.Dial("tcp", ts.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			conns = append(conns, c)
			// The server starts the negotiation: IAC DO TERMINAL-TYPE.
			buf := make([]byte, 3)
			c.SetReadDeadline(time.Now().Add(waitTimeout))
			if _, err := io.ReadFull(c, buf); err != nil || buf[0] != 0xff || buf[1] != 0xfd || buf[2] != 0x18 {
				t.Fatalf("read %x, %v; want IAC DO TERMINAL-TYPE", buf, err)
			}
		}
		c, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if b := readUntilClosed(t, c); len(b) != 0 {
			t.Errorf("the connection over MaxPerAddr got %x", b)
		}
		if st := ts.Stats(); st.Refused != 1 {
			t.Errorf("stats %+v, want 1 refused", st)
		}
		// One leaves: its place is free again.
		conns[0].Close()
		ts.waitStats(t, "one connection pending", func(st Stats) bool { return st.Pending == 1 })
		c, err = net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		buf := make([]byte, 3)
		c.SetReadDeadline(time.Now().Add(waitTimeout))
		if _, err := io.ReadFull(c, buf); err != nil || buf[0] != 0xff {
			t.Errorf("a new connection got %x, %v; want the negotiation", buf, err)
		}
	})
	t.Run("never negotiates", func(t *testing.T) {
		ts := startServer(t, Config{LogonTimeout: 300 * time.Millisecond})
		c, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if b := readUntilClosed(t, c); !bytes.Equal(b, []byte{0xff, 0xfd, 0x18}) {
			t.Errorf("read %x; want IAC DO TERMINAL-TYPE, then the close", b)
		}
		ts.waitStats(t, "no connection pending", func(st Stats) bool { return st.Pending == 0 })
	})
	t.Run("MaxPending", func(t *testing.T) {
		ts := startServer(t, Config{MaxPending: 1, LogonTimeout: time.Minute})
		c1, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c1.Close()
		ts.waitStats(t, "one pending", func(st Stats) bool { return st.Pending == 1 })
		c2, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c2.Close()
		if b := readUntilClosed(t, c2); len(b) != 0 {
			t.Errorf("the connection over MaxPending got %x", b)
		}
	})
	t.Run("flood after negotiation", func(t *testing.T) {
		// A peer that negotiates and then sends without end, never an
		// AID: cut off at maxInbound, not buffered, while another
		// terminal is served.
		ts := startServer(t, Config{LogonTimeout: time.Minute})
		tm := startTerm(t, ts.addr, termOpts{})
		tm.waitText("CLIENT ===>")
		c, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		negotiate(t, c, "IBM-3278-2", []byte{0x88})
		junk := bytes.Repeat([]byte{0x40}, 4096)
		for range 2 * maxInbound / len(junk) {
			if _, err := c.Write(junk); err != nil {
				break // closed by the server
			}
		}
		c.SetReadDeadline(time.Now().Add(waitTimeout))
		_, err = io.ReadAll(c)
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatal("the flooding connection was not closed")
		}
		if !strings.Contains(ts.log.String(), errInboundTooLarge.Error()) {
			t.Errorf("the log does not say why the connection was closed")
		}
		tm.logon(client1, secret1)
		tm.waitText("LIVE")
	})
}

// addr12 is the 12-bit buffer address of row, col on a 24x80 screen.
func addr12(row, col int) []byte {
	codes := []byte{0x40, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0x4a, 0x4b, 0x4c, 0x4d, 0x4e, 0x4f,
		0x50, 0xd1, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0x5a, 0x5b, 0x5c, 0x5d, 0x5e, 0x5f,
		0x60, 0x61, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0x6a, 0x6b, 0x6c, 0x6d, 0x6e, 0x6f,
		0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0x7a, 0x7b, 0x7c, 0x7d, 0x7e, 0x7f}
	a := row*80 + col
	return []byte{codes[a>>6], codes[a&0x3f]}
}

// readRecord reads one 3270 record from r, up to IAC EOR, IAC IAC undone.
func readRecord(t *testing.T, r *bufio.Reader) []byte {
	t.Helper()
	var rec []byte
	for {
		b, err := r.ReadByte()
		if err != nil {
			t.Fatalf("reading a record: %v (so far %x)", err, rec)
		}
		if b != 0xff {
			rec = append(rec, b)
			continue
		}
		switch c, _ := r.ReadByte(); c {
		case 0xff:
			rec = append(rec, 0xff)
		case 0xef:
			return rec
		}
	}
}

// negotiate plays a minimal TN3270 terminal on c up to the first screen
// (the logon panel), which it returns: it agrees to every option, says it
// is termType and answers the query with reply (AID 0x88, the structured
// fields, without IAC EOR).
func negotiate(t *testing.T, c net.Conn, termType string, reply []byte) []byte {
	t.Helper()
	const iac, sb, se, will, do, eor = 0xff, 0xfa, 0xf0, 0xfb, 0xfd, 0xef
	c.SetReadDeadline(time.Now().Add(waitTimeout))
	defer c.SetReadDeadline(time.Time{})
	r := bufio.NewReader(c)
	var rec []byte
	for {
		b, err := r.ReadByte()
		if err != nil {
			t.Fatalf("negotiation: %v", err)
		}
		if b != iac {
			rec = append(rec, b)
			continue
		}
		cmd, err := r.ReadByte()
		if err != nil {
			t.Fatalf("negotiation: %v", err)
		}
		switch cmd {
		case iac:
			rec = append(rec, iac)
		case do, will:
			opt, _ := r.ReadByte()
			reply := byte(will)
			if cmd == will {
				reply = do
			}
			c.Write([]byte{iac, reply, opt})
		case sb: // TERMINAL-TYPE SEND IAC SE
			for {
				x, err := r.ReadByte()
				if err != nil {
					t.Fatalf("negotiation: %v", err)
				}
				if x == se {
					break
				}
			}
			c.Write(append(append([]byte{iac, sb, 0x18, 0x00}, termType...), iac, se))
		case eor:
			switch {
			case len(rec) > 0 && rec[0] == 0xf3: // the query
				c.Write(append(reply, iac, eor))
			case len(rec) > 16: // the first screen
				return rec
			}
			rec = rec[:0]
		}
	}
}

func TestForgedLogon(t *testing.T) {
	// A datastream no terminal sends: the client and secret fields far
	// longer than the panel's. Refused without asking the region.
	leakcheck.Check(t)
	ts := startServer(t, Config{})
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	negotiate(t, c, "IBM-3278-2", []byte{0x88})
	long := bytes.Repeat([]byte{0xc1}, 2000) // EBCDIC A
	// ENTER, the cursor and the client field at 5,12; the secret at 7,12.
	in := append([]byte{0x7d}, addr12(5, 12)...)
	in = append(append(append(in, 0x11), addr12(5, 12)...), long...)
	in = append(append(append(in, 0x11), addr12(7, 12)...), long...)
	in = append(in, long...)
	in = append(in, 0xff, 0xef)
	if _, err := c.Write(in); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(waitTimeout))
	rec := readRecord(t, bufio.NewReader(c))
	if got := go3270.Codepage1047().Decode(rec); !strings.Contains(got, "ZBR314E LOGON REFUSED: the client name or the secret is too long") {
		t.Errorf("the panel after a forged logon reads %q", got)
	}
	if n := ts.b.logons.Load(); n != 0 {
		t.Errorf("Backend.Logon called %d times", n)
	}
	if st := ts.Stats(); st.Failed != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestCoalescing floods a session with events and counts the unsolicited
// writes its terminal gets: at most one every minUpdateGap, the last one
// showing the last event.
func TestCoalescing(t *testing.T) {
	leakcheck.Check(t)
	ts := startServer(t, Config{})
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	negotiate(t, c, "IBM-3278-2", []byte{0x88})
	cp := go3270.Codepage1047()
	// ENTER with the client (at 5,12) and the secret (at 7,12).
	in := append([]byte{0x7d}, addr12(5, 12)...)
	in = append(append(append(in, 0x11), addr12(5, 12)...), cp.Encode(client1)...)
	in = append(append(append(in, 0x11), addr12(7, 12)...), cp.Encode(secret1)...)
	in = append(in, 0xff, 0xef)
	if _, err := c.Write(in); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(waitTimeout))
	r := bufio.NewReader(c)
	for { // up to the log screen
		if strings.Contains(cp.Decode(readRecord(t, r)), "COMMAND ===>") {
			break
		}
	}

	const n = 3000
	start := time.Now()
	var pushed sync.WaitGroup
	pushed.Add(1)
	go func() {
		defer pushed.Done()
		for i := 1; i <= n; i++ {
			ts.b.push(ev("20:00:00", "VMSYS1", "HCPFLD001I", fmt.Sprintf("flood %04d", i), protocol.SevInfo))
			if i%100 == 0 {
				time.Sleep(20 * time.Millisecond)
			}
		}
	}()
	writes := 0
	for {
		rec := readRecord(t, r)
		if len(rec) == 0 || rec[0] != cmdWrite {
			t.Fatalf("an unsolicited record that is not a Write: %x", rec)
		}
		if rec[1] != wccNone {
			t.Errorf("an unsolicited write with WCC %#x", rec[1])
		}
		writes++
		if strings.Contains(cp.Decode(rec), fmt.Sprintf("flood %04d", n)) {
			break
		}
	}
	elapsed := time.Since(start)
	pushed.Wait()
	if most := int(elapsed/minUpdateGap) + 2; writes > most {
		t.Errorf("%d writes in %v for %d events; at most %d expected", writes, elapsed, n, most)
	}
	t.Logf("%d events, %d writes in %v", n, writes, elapsed)
}

func TestTooSmall(t *testing.T) {
	leakcheck.Check(t)
	ts := startServer(t, Config{})
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Query Reply (Usable Area): 70 columns, 20 rows.
	usable := []byte{0x00, 0x14, 0x81, 0x81, 0x01, 0x00, 0x00, 70, 0x00, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	scr := negotiate(t, c, "IBM-DYNAMIC", append([]byte{0x88}, usable...))
	readUntilClosed(t, c)
	if got := go3270.Codepage1047().Decode(scr); !strings.Contains(got, "LOGON REFUSED: the console needs a terminal of at least 24 rows and 80 columns") {
		t.Errorf("the refusal screen reads %q", got)
	}
	if !strings.Contains(ts.log.String(), "size=20x70") || !strings.Contains(ts.log.String(), "terminal too small") {
		t.Errorf("the log does not say the terminal was too small")
	}
	if n := ts.b.logons.Load(); n != 0 {
		t.Errorf("Backend.Logon called %d times", n)
	}
}

func TestLogonThrottle(t *testing.T) {
	leakcheck.Check(t)
	ts := startServer(t, Config{MaxLogonFailures: 2, LogonAttempts: 3, LogonBlock: time.Minute})
	tm := startTerm(t, ts.addr, termOpts{})
	tm.logon(client1, "wrong1")
	tm.waitText("ZBR314E LOGON REFUSED: bad client name or secret")
	tm.logon(client1, "wrong2")
	tm.waitFor("the second refusal", func(scr []string) bool {
		return hasText("ZBR314E")(scr) && hasText("CLIENT ===>")(scr)
	})
	// Blocked now: the right secret is refused without asking the region,
	// and the third refusal closes the connection.
	tm.logon(client1, secret1)
	tm.waitDisconnected()
	if n := ts.b.logons.Load(); n != 2 {
		t.Errorf("Backend.Logon called %d times, want 2", n)
	}
	if !strings.Contains(ts.log.String(), "the address is blocked for failed logons") {
		t.Errorf("the log does not say the address was blocked")
	}
	// A new connection from the address is refused while the block lasts.
	tm2 := startTerm(t, ts.addr, termOpts{})
	tm2.logon(client1, secret1)
	tm2.waitText("ZBR314E LOGON REFUSED: too many failed logons from this address; try again in")
	if n := ts.b.logons.Load(); n != 2 {
		t.Errorf("Backend.Logon called %d times, want 2", n)
	}
	if st := ts.Stats(); st.Active != 0 || st.Failed != 4 {
		t.Errorf("stats %+v", st)
	}
}

// TestLogonThrottleNotClearedByOthers: another operator's logon from the
// address does not forget its failures, or anyone with a secret of their
// own could clear them between guesses at another's.
func TestLogonThrottleNotClearedByOthers(t *testing.T) {
	leakcheck.Check(t)
	ts := startServer(t, Config{MaxLogonFailures: 2, LogonAttempts: 3, LogonBlock: time.Minute})
	tm := startTerm(t, ts.addr, termOpts{})
	tm.logon(client1, "wrong1")
	tm.waitText("ZBR314E LOGON REFUSED: bad client name or secret")
	ok := startTerm(t, ts.addr, termOpts{})
	ok.logon("OPER2", "other-secret")
	ok.waitText("COMMAND ===>")
	tm.logon(client1, "wrong2") // the second failure from the address: blocked
	tm.waitFor("the second refusal", func(scr []string) bool {
		return hasText("ZBR314E")(scr) && hasText("CLIENT ===>")(scr)
	})
	tm2 := startTerm(t, ts.addr, termOpts{})
	tm2.logon("OPER2", "other-secret")
	tm2.waitText("ZBR314E LOGON REFUSED: too many failed logons from this address; try again in")
	if n := ts.b.logons.Load(); n != 3 {
		t.Errorf("Backend.Logon called %d times, want 3", n)
	}
}

// TestLogonTimeout leaves a terminal at the logon panel (or, on a slow
// machine, still negotiating): LogonTimeout closes it.
func TestMaxSessions(t *testing.T) {
	leakcheck.Check(t)
	ts := startServer(t, Config{MaxSessions: 1})
	tm1 := loggedOn(t, ts, termOpts{})
	tm2 := startTerm(t, ts.addr, termOpts{})
	tm2.logon("OPER2", "other-secret")
	tm2.waitFor("the refusal, on two rows", func(scr []string) bool { // the message wraps
		return text(scr, 10)+" "+strings.TrimSpace(text(scr, 11)) ==
			"ZBR314E LOGON REFUSED: 1 operators are logged on, the most allowed; try again later"
	})
	if n := ts.b.logons.Load(); n != 1 {
		t.Errorf("Backend.Logon called %d times, want 1", n)
	}
	tm1.Must("PF(3)")
	tm1.waitDisconnected()
	ts.waitStats(t, "no session", func(st Stats) bool { return st.Active == 0 })
	tm2.logon("OPER2", "other-secret")
	tm2.waitText("CLIENT OPER2")
}

func TestLogonTimeout(t *testing.T) {
	leakcheck.Check(t)
	ts := startServer(t, Config{LogonTimeout: 500 * time.Millisecond})
	tm := startTerm(t, ts.addr, termOpts{})
	tm.waitDisconnected()
	ts.waitStats(t, "nothing pending", func(st Stats) bool { return st.Pending == 0 })
	if st := ts.Stats(); st.Accepted != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestIdleTimeout(t *testing.T) {
	leakcheck.Check(t)
	ts := startServer(t, Config{IdleTimeout: 700 * time.Millisecond})
	tm := startTerm(t, ts.addr, termOpts{})
	tm.logon(client1, secret1) // the idle time starts with the log screen
	tm.waitDisconnected()
	if n := ts.b.op(t, 0).closed.Load(); n != 1 {
		t.Errorf("Operator.Close called %d times, want 1", n)
	}
	if !strings.Contains(ts.log.String(), "no key pressed for 700ms") {
		t.Errorf("the log does not say why the session ended")
	}
}

func TestRevoked(t *testing.T) {
	leakcheck.Check(t)
	ts := startServer(t, Config{})
	tm := loggedOn(t, ts, termOpts{})
	op := ts.b.op(t, 0)
	close(op.revoked)
	tm.waitDisconnected()
	if n := op.closed.Load(); n != 1 {
		t.Errorf("Operator.Close called %d times, want 1", n)
	}
	if !strings.Contains(ts.log.String(), "the log ended: the client's access was withdrawn") {
		t.Errorf("the log does not say why the session ended")
	}
	ts.waitStats(t, "no session", func(st Stats) bool { return st.Active == 0 })
}

func TestShutdown(t *testing.T) {
	leakcheck.Check(t)
	ts := startServer(t, Config{})
	tm1 := loggedOn(t, ts, termOpts{})
	tm1.command("linux:web1 wait") // in flight at shutdown: cancelled
	tm1.waitText("RUNNING")
	tm2 := startTerm(t, ts.addr, termOpts{})
	tm2.logon("OPER2", "other-secret")
	tm2.waitText("LIVE")
	pending, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer pending.Close()
	ts.waitStats(t, "two sessions, one pending", func(st Stats) bool { return st.Active == 2 && st.Pending == 1 })

	screens := make([][]string, 2)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := ts.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for i, tm := range []*term{tm1, tm2} {
		tm.waitDisconnected()
		screens[i] = tm.Screen() // s3270 keeps the last screen after the host disconnects
	}
	readUntilClosed(t, pending)
	for i, scr := range screens {
		if !hasText("SESSION ENDED: the region is stopping")(scr) {
			t.Errorf("terminal %d's last screen:\n%s", i, peer.DumpScreen(scr))
		}
		if n := ts.b.op(t, i).closed.Load(); n != 1 {
			t.Errorf("operator %d: Close called %d times, want 1", i, n)
		}
	}
	if st := ts.Stats(); st.Active != 0 || st.Pending != 0 {
		t.Errorf("stats after Shutdown %+v", st)
	}
	// Serve has returned ErrServerClosed (checked at cleanup); a new Serve
	// returns it at once.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.Serve(l); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve after Shutdown = %v", err)
	}
}

func TestNewConfig(t *testing.T) {
	b := newBackend()
	for name, cfg := range map[string]Config{
		"no backend":  {Logger: quietLogger()},
		"no logger":   {Backend: b},
		"negative":    {Backend: b, Logger: quietLogger(), MaxSessions: -1},
		"tls no cert": {Backend: b, Logger: quietLogger(), TLSConfig: &tls.Config{}},
		"block order": {Backend: b, Logger: quietLogger(), LogonBlock: time.Hour, MaxLogonBlock: time.Minute},
	} {
		if _, err := New(cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: New = %v, want ErrConfig", name, err)
		}
	}
	s, err := New(Config{Backend: b, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if s.cfg.MaxSessions != DefaultMaxSessions || s.cfg.MaxPerAddr != DefaultMaxPerAddr ||
		s.cfg.Scrollback != DefaultScrollback || s.cfg.IdleTimeout != DefaultIdleTimeout {
		t.Errorf("defaults not filled in: %+v", s.cfg)
	}
	s.Close()
	s.Close() // twice is fine
}
