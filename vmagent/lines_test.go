package vmagent

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zbridge/zbridge/protocol"
)

// TestForgedConsoleLines: a user (LINUX01, class G) sends the agent's
// userid messages long enough to go on over several console rows, each
// continuation row reading like a line of its own from CP or from another
// user. Every message must come out as one MSG event from LINUX01 with
// its whole text, and nothing it holds as a CP message, a message from
// MAINT or a guest logon or logoff.
func TestForgedConsoleLines(t *testing.T) {
	if testing.Short() {
		t.Skip("sends seven MSGs through the simulator: not in -short")
	}
	sim, addr := startConsoleSim(t)
	agent := startScraper(t, addr, "OPERATOR", consolePassword)
	agent.ready(t)
	attacker := startScraper(t, addr, "LINUX01", consolePassword)
	attacker.ready(t)

	// "hh:mm:ss * MSG FROM LINUX01 : " takes 30 of the 79 columns.
	fill := func(n int) string { return strings.Repeat("x", n) }
	texts := map[string]string{
		// 49 characters fill the row; the blank after them is the break.
		"user message":  fill(49) + " 13:02:41 * MSG FROM MAINT   : FORCE LINUX02 NOW",
		"CP message":    fill(49) + " HCPABE6018S CP system error: SHUTDOWN REIPL in progress",
		"logon notice":  fill(49) + " AUTO LOGON  ***       EVILGST  USERS = 9",
		"logoff notice": fill(49) + " USER DSC   LOGOFF AS  LINUX03  USERS = 8",
		// Blanks before the break: the row's text is 70 characters, and
		// the next word would fit after it; what CP wrote (the blanks)
		// fills the row.
		"blanks before the break": fill(40) + strings.Repeat(" ", 9) + " AUTO LOGON  ***       EVILGST  USERS = 9",
		// A word that would have fit after the text, but not after the
		// blanks CP wrote.
		"short word after blanks": fill(30) + strings.Repeat(" ", 14) + " HCPABE6018S CP system error",
		// Over three rows.
		"third row": fill(49) + " " + fill(78) + " GRAF L0009 LOGON  AS  EVILGST  USERS = 9",
	}
	// One through the simulator's MSG path as another session sends it,
	// one typed on the attacker's console.
	if _, rc := attacker.run(t, "MSG OPERATOR "+texts["CP message"]); rc != 0 {
		t.Fatalf("MSG from LINUX01: rc %d", rc)
	}
	for name, text := range texts {
		if name == "CP message" {
			continue
		}
		if err := sim.Message("LINUX01", "OPERATOR", text); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	for name, text := range texts {
		agent.evs.waitCount(t, name, 1, func(e *protocol.Event) bool {
			return e.Type == "MSG" && e.User == "LINUX01" && e.Text == text
		})
	}
	for _, e := range agent.evs.all() {
		switch {
		case e.Type == "MSG" && e.User == "LINUX01":
		case e.Source == protocol.SourceZVMEvent && e.User != "LINUX01":
			t.Errorf("forged guest event: %+v", e)
		case e.User == "MAINT", e.MsgID != "", strings.Contains(e.Raw, "EVILGST"), strings.Contains(e.Raw, "xxxx"):
			t.Errorf("forged console event: %+v", e)
		}
	}
}

// row is an output row as the host wrote it: the text and how far it
// wrote (the text, and blanks after it up to ext).
func row(text string, ext int) outRow {
	return outRow{text: strings.TrimRight(text, " "), ext: max(ext, len(text)), width: 79}
}

func rows(texts ...string) []outRow {
	var rs []outRow
	for _, t := range texts {
		rs = append(rs, row(t, 0))
	}
	return rs
}

// TestJoinRowsBounded: a host writing full rows without end does not grow
// a line without bound, and none of its rows is a line of its own.
func TestJoinRowsBounded(t *testing.T) {
	var got []string
	j := joiner{emit: func(l string) { got = append(got, l) }}
	for range 10000 {
		j.add(row(strings.Repeat("x", 79), 0))
	}
	j.flush()
	if len(got) != 1 || len(got[0]) > maxLine+2*80 {
		t.Fatalf("%d lines, the first %d long", len(got), len(got[0]))
	}
}

func TestJoinRows(t *testing.T) {
	hdr := "13:02:41 * MSG FROM LINUX01 : " // 30 columns
	x := func(n int) string { return strings.Repeat("x", n) }
	for _, tc := range []struct {
		name string
		rows []outRow
		want []string
	}{
		{"separate lines", rows("LOGON AT 13:02:41 UTC", "HCPABC123W warning", hdr+"hi"),
			[]string{"LOGON AT 13:02:41 UTC", "HCPABC123W warning", hdr + "hi"}},
		{"message filling its row", rows(hdr+x(49), "HCPABE6018S forged"),
			[]string{hdr + x(49) + " HCPABE6018S forged"}},
		{"message whose next word would not fit", rows(hdr+x(40), "HCPABE6018S forged"),
			[]string{hdr + x(40) + " HCPABE6018S forged"}},
		{"message whose next word fits: a new line", rows(hdr+x(20), "HCPABE6018S CP's own"),
			[]string{hdr + x(20), "HCPABE6018S CP's own"}},
		{"blanks the host wrote count", []outRow{row(hdr+x(40), 79), row("AUTO LOGON  ***  EVIL", 0)},
			[]string{hdr + x(40) + strings.Repeat(" ", 9) + " AUTO LOGON  ***  EVIL"}},
		{"blanks before a short word", []outRow{row(hdr+x(30), 78), row("A LOGON", 0)},
			[]string{hdr + x(30) + strings.Repeat(" ", 18) + " A LOGON"}},
		{"a short word that would have fit: a new line", []outRow{row(hdr+x(30), 76), row("A LOGON", 0)},
			[]string{hdr + x(30), "A LOGON"}},
		{"a message over three rows", rows(hdr+x(49), x(79), "13:02:41 * MSG FROM MAINT   : forged"),
			[]string{hdr + x(49) + " " + x(79) + " 13:02:41 * MSG FROM MAINT   : forged"}},
		{"a message starting a row", rows(hdr+x(49), hdr+"second"),
			[]string{hdr + x(49) + " " + hdr + "second"}},
		{"CP's full line goes on", rows("HCPCLS6056I XAUTOLOG information for LINUX2: The IPL command is verified by the", "IPL command processor."),
			[]string{"HCPCLS6056I XAUTOLOG information for LINUX2: The IPL command is verified by the IPL command processor."}},
		{"CP's short line does not", rows("LINUX01  - DSC , OPERATOR - L0004 , TCPIP    - DSC , MAINT    - L0005 , AB", "LINUX02  - DSC"),
			[]string{"LINUX01  - DSC , OPERATOR - L0004 , TCPIP    - DSC , MAINT    - L0005 , AB", "LINUX02  - DSC"}},
		{"a message after CP's full line is a line", rows(x(79), hdr+"hi"),
			[]string{x(79), hdr + "hi"}},
		{"blank rows", rows("", hdr+"hi", ""), []string{"", hdr + "hi", ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			j := joiner{emit: func(l string) { got = append(got, l) }}
			for _, r := range tc.rows {
				j.add(r)
			}
			j.flush()
			if !slices.Equal(got, tc.want) {
				t.Errorf("lines\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

// TestResponseNotForged: a message from a user that arrives while a
// command's response is collected, and goes on over rows reading like
// response lines (a QUERY NAMES entry), is an event and no part of the
// response.
func TestResponseNotForged(t *testing.T) {
	var evs eventLog
	st := &consoleSession{s: &Scraper{cfg: ScraperConfig{Publish: evs.add}, log: quiet()}, system: "VMSYS1"}
	st.events.emit = st.event
	typed := "QUERY NAMES#CP ZBABCDEFGHIJ"
	c := newCollector(st, typed, "ZBABCDEFGHIJ")
	for _, r := range rows(
		typed,
		"OPERATOR - L0004 , LINUX01  - DSC",
		"13:02:41 * MSG FROM LINUX01 : "+strings.Repeat("x", 49),
		"EVILGST  - DSC , MAINT    - L0005",
		"LINUX02  - DSC",
		"HCPCMD001E Unknown CP command: ZBABCDEFGHIJ",
	) {
		c.row(r)
	}
	c.flush()
	if want := []string{"OPERATOR - L0004 , LINUX01  - DSC", "LINUX02  - DSC"}; !slices.Equal(c.lines, want) {
		t.Errorf("response %q, want %q", c.lines, want)
	}
	if names := ParseNames(c.lines); names["EVILGST"] || names["MAINT"] {
		t.Errorf("names %v", names)
	}
	if n := evs.count(func(e *protocol.Event) bool {
		return e.Type == "MSG" && e.User == "LINUX01" && strings.HasSuffix(e.Text, " EVILGST  - DSC , MAINT    - L0005")
	}); n != 1 || len(evs.all()) != 1 {
		t.Errorf("events %+v, want the message whole", evs.all())
	}
}

// TestNamesWatcherContradictedNotice: a LOGOFF notice for a user the next
// poll still lists (a forged one) does not keep the watcher from
// reporting the user's real logoff later.
func TestNamesWatcherContradictedNotice(t *testing.T) {
	t.Parallel() // it waits for the watcher's polls
	con := &namesConsole{outputs: [][]string{
		{"OPERATOR - L0004 , LINUX01  - DSC"},
		{"OPERATOR - L0004 , LINUX01  - DSC"}, // LINUX01 still there
		{"OPERATOR - L0004"},                  // LINUX01 logged off
		{"OPERATOR - L0004"},
	}}
	var mu sync.Mutex
	var got []*protocol.Event
	w := &NamesWatcher{Console: con, System: "VMSYS1", Interval: 150 * time.Millisecond, Log: quiet(),
		Publish: func(evs ...*protocol.Event) error {
			mu.Lock()
			got = append(got, evs...)
			mu.Unlock()
			return nil
		}}
	// Before the first poll: a LOGOFF notice while LINUX01 is logged on,
	// and a LOGON notice for a user that is not.
	w.Observe(&protocol.Event{Source: protocol.SourceZVMEvent, Type: "LOGOFF", User: "LINUX01"},
		&protocol.Event{Source: protocol.SourceZVMEvent, Type: "LOGON", User: "EVILGST"})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(30 * time.Second)
	for con.count() < 4 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	w.mu.Lock()
	left := len(w.reported)
	w.mu.Unlock()
	mu.Lock()
	var seen []string
	for _, e := range got {
		seen = append(seen, e.User+" "+e.Type)
	}
	mu.Unlock()
	if con.count() < 4 {
		t.Fatalf("%d polls in 30 s", con.count())
	}
	if !slices.Equal(seen, []string{"LINUX01 LOGOFF"}) {
		t.Errorf("events %q, want LINUX01 LOGOFF from the third poll", seen)
	}
	if left != 0 {
		t.Errorf("%d notices still kept", left)
	}
}
