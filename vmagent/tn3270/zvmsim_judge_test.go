package tn3270

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/racingmars/go3270"

	"github.com/zbridge/zbridge/vmagent/zvmsim"
)

// The z/VM console layout the simulator writes (zvmsim's package
// documentation): the status text at row 23 from column 60 (12 wide, room
// for NOT ACCEPTED), the system name from column 72.
const (
	judgeStatusRow   = 23
	judgeStatusCol   = 60
	judgeStatusWidth = 12
	judgeSysnameCol  = 72
	judgeSystem      = "VMSYS1"
	judgePassword    = "s3cr3t"
)

// judgeTime is the time both simulators' CP shows.
var judgeTime = time.Date(2026, 3, 11, 13, 2, 41, 0, time.FixedZone("EST", -5*3600))

// startJudgeSim starts a z/VM console simulator on a loopback port, closed
// at the end of the test.
func startJudgeSim(t *testing.T) (*zvmsim.Sim, string) {
	t.Helper()
	sim, err := zvmsim.New(zvmsim.Config{
		System:   judgeSystem,
		Password: judgePassword,
		// MORE... must stay put while both terminals are looked at.
		MoreDelay: time.Minute,
		Clock:     func() time.Time { return judgeTime },
	})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- sim.Serve(l) }()
	t.Cleanup(func() {
		sim.Close()
		if err := <-served; err != zvmsim.ErrServerClosed {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return sim, l.Addr().String()
}

// judgeStatus returns the status area text of a screen: row 23 from
// column 60, blanks trimmed.
func judgeStatus(rows []string) string {
	if len(rows) <= judgeStatusRow || len(rows[judgeStatusRow]) < judgeStatusCol+judgeStatusWidth {
		return ""
	}
	return strings.TrimSpace(rows[judgeStatusRow][judgeStatusCol : judgeStatusCol+judgeStatusWidth])
}

// snapshot returns s3270's screen, cursor and whether its keyboard is
// locked (the first field of its status line: U unlocked, L locked, E
// error).
func (s *s3270) snapshot(ctx context.Context) ([]string, Pos, bool, error) {
	r, err := s.do(ctx, "Ascii()")
	if err != nil {
		return nil, Pos{}, false, err
	}
	f := strings.Fields(r.status)
	if len(f) < 10 {
		return nil, Pos{}, false, fmt.Errorf("s3270: odd status line %q", r.status)
	}
	var cur Pos
	fmt.Sscan(f[8], &cur.Row)
	fmt.Sscan(f[9], &cur.Col)
	return r.data, cur, f[0] != "U", nil
}

// TestZVMSimAgainstS3270 checks our screen model against s3270 on the
// states of a z/VM console that the z/VM agent reads: the logo screen,
// CP READ, a command's output, MORE..., HOLDING after ENTER and HOLDING
// after a message on a full screen.
//
// A userid's console can be connected to one terminal only (a second
// LOGON is "HCPLGA054E Already logged on"; a reconnect after DISCONNECT
// shows RECONNECTED AT instead of the logon banner and discards what was
// on the screen), so the two terminals cannot look at one console.
// Instead each gets its own simulator, configured alike and with a fixed
// clock, and both log on as OPERATOR and press the same keys. The
// simulator's output then depends only on the keys: LOGON AT, TIME IS,
// CONNECT= and the MSG time stamp come from the fixed clock, the terminal
// is L0004 on both, and nobody else is logged on. So the whole screen is
// compared, all 24 rows with the input and status areas, plus the cursor
// and the keyboard lock; nothing is excluded. On top, each state's status
// text (and a few rows) must be the one the simulator documents.
func TestZVMSimAgainstS3270(t *testing.T) {
	s := startS3270(t) // peer.Require: skipped, or failed under ZBRIDGE_REQUIRE_PEERS=1
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()

	oursSim, oursAddr := startJudgeSim(t)
	theirSim, theirAddr := startJudgeSim(t)

	c, err := Dial(ctx, oursAddr, Config{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := s.do(ctx, fmt.Sprintf("Connect(%s)", theirAddr)); err != nil {
		t.Fatal(err)
	}

	typ := func(text string) step {
		return step{
			ours:   func() error { return c.Type(text) },
			theirs: []string{`String("` + text + `")`},
		}
	}
	// A userid of 8 fills its field: typed key by key, as keyActions
	// explains (String() pastes, and a paste would go on in the next row).
	typeKeys := func(text string) step {
		return step{
			ours:   func() error { return c.Type(text) },
			theirs: keyActions(`String("` + text + `")`),
		}
	}
	tab := step{ours: c.Tab, theirs: []string{"Tab()"}}
	aid := func(a go3270.AID, action string) step {
		return step{
			ours:   func() error { return c.SendAID(ctx, a) },
			theirs: []string{action},
		}
	}
	enter := aid(go3270.AIDEnter, "Enter()")
	clear := aid(go3270.AIDClear, "Clear()")
	message := func(from, text string) step {
		return step{
			ours: func() error { return oursSim.Message(from, "OPERATOR", text) },
			host: func() error { return theirSim.Message(from, "OPERATOR", text) },
		}
	}
	command := func(cmd string) []step { return []step{typ(cmd), enter} }

	states := []struct {
		name   string
		steps  []step
		marker string // a text the screen shows in this state
		status string
		rows   map[int]string // rows that must read so (right-trimmed)
		cursor Pos
	}{
		{
			name:   "logo screen",
			marker: "USERID   ===>",
			status: "RUNNING",
			rows: map[int]string{0: " z/VM ONLINE", 14: " USERID   ===>", 15: " PASSWORD ===>",
				22: " COMMAND  ===>"},
			cursor: Pos{14, 15},
		},
		{
			// The password is in a non-display field: blank on both.
			name:   "logo screen, userid and password typed",
			steps:  []step{typeKeys("OPERATOR"), tab, typ(judgePassword)},
			marker: "USERID   ===> OPERATOR",
			status: "RUNNING",
			cursor: Pos{15, 15 + len(judgePassword)},
		},
		{
			name:   "logged on, CP READ",
			steps:  []step{enter},
			marker: "LOGON AT 13:02:41 EST WEDNESDAY 03/11/26",
			status: "CP READ",
			rows: map[int]string{
				2: "There is no logmsg data",
				3: "FILES:   NO RDR,   NO PRT,   NO PUN",
				4: "LOGON AT 13:02:41 EST WEDNESDAY 03/11/26",
			},
			cursor: Pos{22, 0},
		},
		{
			name:   "QUERY TIME",
			steps:  command("query time"),
			marker: "CONNECT= ",
			status: "CP READ",
			rows: map[int]string{
				5: "query time",
				6: "TIME IS 13:02:41 EST WEDNESDAY 03/11/26",
				7: "CONNECT= 00:00:00 VIRTCPU= 000:00.00 TOTCPU= 000:00.00",
			},
			cursor: Pos{22, 0},
		},
		{
			// 8 rows so far, the echo and 13 lines fill the 22 output rows.
			name:   "LONGOUT 60, MORE...",
			steps:  command("longout 60"),
			marker: "LONGOUT LINE 00013 OF 00060",
			status: "MORE...",
			rows:   map[int]string{8: "longout 60", 9: "LONGOUT LINE 00001 OF 00060", 21: "LONGOUT LINE 00013 OF 00060"},
			cursor: Pos{22, 0},
		},
		{
			name:   "ENTER in MORE..., HOLDING",
			steps:  []step{enter},
			marker: "LONGOUT LINE 00013 OF 00060",
			status: "HOLDING",
			rows:   map[int]string{21: "LONGOUT LINE 00013 OF 00060"},
			cursor: Pos{22, 0},
		},
		{
			name:   "CLEAR in HOLDING, the next screen",
			steps:  []step{clear},
			marker: "LONGOUT LINE 00035 OF 00060",
			status: "MORE...",
			rows:   map[int]string{0: "LONGOUT LINE 00014 OF 00060", 21: "LONGOUT LINE 00035 OF 00060"},
			cursor: Pos{22, 0},
		},
		{
			name:   "CLEAR twice more, the last screen",
			steps:  []step{clear, clear},
			marker: "LONGOUT LINE 00060 OF 00060",
			status: "CP READ",
			rows:   map[int]string{0: "LONGOUT LINE 00058 OF 00060", 2: "LONGOUT LINE 00060 OF 00060", 3: ""},
			cursor: Pos{22, 0},
		},
		{
			// After CLEAR the echo and 21 lines fill the screen exactly.
			name:   "a full screen, CP READ",
			steps:  append([]step{clear}, command("longout 21")...),
			marker: "LONGOUT LINE 00021 OF 00021",
			status: "CP READ",
			rows:   map[int]string{0: "longout 21", 21: "LONGOUT LINE 00021 OF 00021"},
			cursor: Pos{22, 0},
		},
		{
			// The message does not fit: HOLDING, the screen unchanged.
			name:   "a message on the full screen, HOLDING",
			steps:  []step{message("MAINT", "are you there")},
			marker: "LONGOUT LINE 00021 OF 00021",
			status: "HOLDING",
			rows:   map[int]string{0: "longout 21", 21: "LONGOUT LINE 00021 OF 00021"},
			cursor: Pos{22, 0},
		},
		{
			name:   "CLEAR in HOLDING, the message",
			steps:  []step{clear},
			marker: "MSG FROM MAINT",
			status: "CP READ",
			rows:   map[int]string{0: "13:02:41 * MSG FROM MAINT   : are you there", 1: ""},
			cursor: Pos{22, 0},
		},
	}

	for _, st := range states {
		for _, sp := range st.steps {
			if err := sp.ours(); err != nil {
				t.Fatalf("%s: our client: %v\n%s", st.name, err, c.Screen())
			}
			for _, a := range sp.theirs {
				if _, err := s.do(ctx, a); err != nil {
					t.Fatalf("%s: %v", st.name, err)
				}
			}
			if sp.host != nil {
				if err := sp.host(); err != nil {
					t.Fatalf("%s: s3270's simulator: %v", st.name, err)
				}
			}
			if sp.isAID() {
				// The next key waits for the answer, which unlocks
				// the keyboard; s3270's keyboard is checked below.
				if _, err := c.WaitFor(ctx, func(s Screen) bool { return !s.KeyboardLocked }); err != nil {
					t.Fatalf("%s: our client: keyboard stays locked: %v", st.name, err)
				}
				if _, err := s.do(ctx, "Wait(10,Unlock)"); err != nil {
					t.Fatalf("%s: %v", st.name, err)
				}
			}
		}

		ready := func(rows []string) bool {
			return containsLine(rows, st.marker) && judgeStatus(rows) == st.status
		}
		ourScreen, err := c.WaitFor(ctx, func(s Screen) bool { return ready(s.Rows()) })
		if err != nil {
			t.Fatalf("%s: our client: %v; screen:\n%s", st.name, err, c.Screen())
		}
		if _, _, err := s.waitScreen(ctx, ready); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		theirs, theirCursor, theirLocked, err := s.snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ours := ourScreen.Rows()

		if !equalRows(ours, theirs) {
			t.Errorf("%s: screen differs from s3270's:\n%s", st.name, diffRows(theirs, ours))
		}
		if ourScreen.Cursor != theirCursor {
			t.Errorf("%s: cursor at %v, s3270 has it at %v", st.name, ourScreen.Cursor, theirCursor)
		}
		if ourScreen.KeyboardLocked != theirLocked {
			t.Errorf("%s: keyboard locked %v, s3270's %v", st.name, ourScreen.KeyboardLocked, theirLocked)
		}

		// Both right, not only alike.
		for name, rows := range map[string][]string{"our client": ours, "s3270": theirs} {
			if got := judgeStatus(rows); got != st.status {
				t.Errorf("%s: %s: status %q, want %q", st.name, name, got, st.status)
			}
			if got := strings.TrimSpace(rows[judgeStatusRow][judgeSysnameCol:]); got != judgeSystem {
				t.Errorf("%s: %s: system name %q, want %q", st.name, name, got, judgeSystem)
			}
			for i, want := range st.rows {
				if got := strings.TrimRight(rows[i], " "); got != want {
					t.Errorf("%s: %s: row %d = %q, want %q", st.name, name, i, got, want)
				}
			}
			if strings.Contains(strings.Join(rows, "\n"), judgePassword) {
				t.Errorf("%s: %s: the password is on the screen", st.name, name)
			}
		}
		if ourScreen.Cursor != st.cursor {
			t.Errorf("%s: cursor at %v, want %v", st.name, ourScreen.Cursor, st.cursor)
		}
		if t.Failed() {
			t.FailNow() // later states build on this one
		}
	}
}

// step is one thing done to both terminals: ours on our client, theirs as
// s3270 actions, host on s3270's simulator (for what comes from the host
// side, such as a message; ours then does it on our client's simulator).
type step struct {
	ours   func() error
	theirs []string
	host   func() error
}

// isAID reports whether the step presses an attention key.
func (sp step) isAID() bool {
	if len(sp.theirs) != 1 {
		return false
	}
	switch sp.theirs[0] {
	case "Enter()", "Clear()":
		return true
	}
	return false
}
