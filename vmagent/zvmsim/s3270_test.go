package zvmsim

import (
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zbridge/zbridge/internal/peer"
)

// terminal is a real 3270 terminal, s3270 -model 3278-2 ([peer.S3270]),
// connected to the simulator, with the steps of CP's console.
type terminal struct {
	*peer.S3270
	t testing.TB
}

// waitTimeout bounds a wait for a screen.
const waitTimeout = 10 * time.Second

// startTerminal starts s3270 and connects it to the simulator at addr.
func startTerminal(t testing.TB, addr string) *terminal {
	t.Helper()
	tm := &terminal{S3270: peer.StartS3270(t, "-model", "3278-2"), t: t}
	tm.Must("Connect(" + addr + ")")
	return tm
}

// waitFor polls the screen, which must have CP's 24 rows, until ok holds
// for it, and returns it.
func (tm *terminal) waitFor(what string, ok func(scr []string) bool) []string {
	tm.t.Helper()
	return tm.WaitScreen(waitTimeout, what, func(scr []string) bool {
		if len(scr) != screenRows {
			tm.t.Fatalf("Ascii() gave %d rows, want %d: %q", len(scr), screenRows, scr)
		}
		return ok(scr)
	})
}

// command types a CP command in the input area and presses ENTER.
func (tm *terminal) command(s string) {
	tm.t.Helper()
	tm.Type(s)
	tm.Must("Enter()")
}

// logon logs on at the logo screen.
func (tm *terminal) logon(user, password string) {
	tm.t.Helper()
	tm.waitFor("the logo screen", hasText("USERID   ===>"))
	tm.Type(user)
	tm.Must("Tab()")
	tm.Type(password)
	tm.Must("Enter()")
}

// statusOf returns the status text of a screen (row 23 from column 60).
func statusOf(scr []string) string {
	return strings.TrimSpace(scr[statusRow][statusCol : statusCol+statusWidth])
}

func hasText(s string) func([]string) bool {
	return func(scr []string) bool { return strings.Contains(strings.Join(scr, "\n"), s) }
}

func hasStatus(st string) func([]string) bool {
	return func(scr []string) bool { return statusOf(scr) == st }
}

func all(preds ...func([]string) bool) func([]string) bool {
	return func(scr []string) bool {
		for _, p := range preds {
			if !p(scr) {
				return false
			}
		}
		return true
	}
}

// outputRowsOf returns the output area rows of a screen, right-trimmed.
func outputRowsOf(scr []string) []string {
	var rows []string
	for _, r := range scr[:outputRows] {
		rows = append(rows, strings.TrimRight(r, " "))
	}
	return rows
}

// startSim starts a simulator on a loopback port, closed at the end of the
// test.
func startSim(t testing.TB, cfg Config) (*Sim, string) {
	t.Helper()
	if cfg.System == "" {
		cfg.System = "VMSYS1"
	}
	if cfg.Password == "" {
		cfg.Password = testPassword
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-served; err != ErrServerClosed {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return s, l.Addr().String()
}

const testPassword = "s3cr3t"

// testClock is the time CP shows in these tests: a Wednesday in EST.
var testTime = time.Date(2026, 3, 11, 13, 2, 41, 0, time.FixedZone("EST", -5*3600))

func testClock() time.Time { return testTime }

// rowsWith returns the output rows containing s.
func rowsWith(scr []string, s string) []string {
	var out []string
	for _, r := range outputRowsOf(scr) {
		if strings.Contains(r, s) {
			out = append(out, r)
		}
	}
	return out
}

// loggedOn starts a terminal and logs user on to the console (CP READ).
func loggedOn(t *testing.T, addr, user string) *terminal {
	t.Helper()
	tm := startTerminal(t, addr)
	tm.logon(user, testPassword)
	tm.waitFor(user+" logged on", all(hasText("LOGON AT "), hasStatus(statusCPRead)))
	return tm
}

func TestS3270LogonSuccess(t *testing.T) {
	_, addr := startSim(t, Config{Clock: testClock})
	tm := startTerminal(t, addr)
	scr := tm.waitFor("the logo screen", hasText("USERID   ===>"))
	if !strings.Contains(scr[0], "z/VM ONLINE") || statusOf(scr) != statusRunning ||
		strings.TrimSpace(scr[statusRow][sysnameCol:]) != "VMSYS1" {
		t.Errorf("logo screen:\n%s", peer.DumpScreen(scr))
	}
	tm.logon("operator", testPassword)
	scr = tm.waitFor("the console", all(hasText("LOGON AT "), hasStatus(statusCPRead)))
	want := []string{
		"z/VM Version 7 Release 3.0, service level 2301 (64-bit),",
		"built on IBM Virtualization Technology",
		"There is no logmsg data",
		"FILES:   NO RDR,   NO PRT,   NO PUN",
		"LOGON AT 13:02:41 EST WEDNESDAY 03/11/26",
	}
	got := outputRowsOf(scr)
	for i, w := range want {
		if got[i] != w {
			t.Errorf("row %d = %q, want %q", i, got[i], w)
		}
	}
	if sys := strings.TrimSpace(scr[statusRow][70:]); sys != "VMSYS1" {
		t.Errorf("system name in columns 70..79 = %q", sys)
	}
	// The password never appears on the screen.
	if strings.Contains(strings.Join(scr, ""), testPassword) {
		t.Error("the password is on the screen")
	}
}

func TestS3270LogonFailure(t *testing.T) {
	_, addr := startSim(t, Config{})
	tm := startTerminal(t, addr)
	for _, c := range []struct{ user, password string }{
		{"OPERATOR", "wrong"},
		{"NOSUCH", testPassword}, // same message: CP does not say which was wrong
	} {
		tm.logon(c.user, c.password)
		scr := tm.waitFor("HCPLGA050E", hasText(msgLogonBad))
		if !strings.Contains(strings.Join(scr, "\n"), "USERID   ===>") || statusOf(scr) != statusRunning {
			t.Errorf("%s/%s: not the logo screen again:\n%s", c.user, c.password, peer.DumpScreen(scr))
		}
		if strings.Contains(strings.Join(scr, ""), c.password) && c.password != testPassword {
			t.Error("the password is on the screen")
		}
	}
	// The COMMAND line takes LOGON too; other commands are refused.
	tm.Must("MoveCursor(22,15)")
	tm.Type("query time")
	tm.Must("Enter()")
	tm.waitFor("HCPCFC015E", hasText("HCPCFC015E Command not valid before LOGON: QUERY"))
	tm.Must("MoveCursor(22,15)")
	tm.Type("logon maint " + testPassword)
	tm.Must("Enter()")
	tm.waitFor("MAINT's console", all(hasText("LOGON AT "), hasStatus(statusCPRead)))
}

func TestS3270AlreadyLoggedOnAndReconnect(t *testing.T) {
	s, addr := startSim(t, Config{Clock: testClock})
	first := loggedOn(t, addr, "MAINT")
	second := startTerminal(t, addr)
	second.logon("MAINT", testPassword)
	second.waitFor("HCPLGA054E", hasText(msgAlreadyLoggedOn))

	first.command("disconnect")
	first.waitFor("the logo screen after DISCONNECT", hasText("USERID   ===>"))
	second.logon("MAINT", testPassword)
	scr := second.waitFor("RECONNECTED AT", all(hasText("RECONNECTED AT 13:02:41 EST WEDNESDAY 03/11/26"), hasStatus(statusCPRead)))
	if strings.Contains(strings.Join(scr, "\n"), "LOGON AT") {
		t.Errorf("a reconnect shows LOGON AT:\n%s", peer.DumpScreen(scr))
	}
	// A terminal that goes away leaves the user disconnected too.
	second.Must("Disconnect()")
	waitDisconnected(t, s, "MAINT")
	third := startTerminal(t, addr)
	third.logon("maint", testPassword)
	third.waitFor("RECONNECTED AT", hasText("RECONNECTED AT "))
}

func TestS3270QueryTime(t *testing.T) {
	_, addr := startSim(t, Config{Clock: testClock})
	tm := loggedOn(t, addr, "OPERATOR")
	tm.command("q time")
	scr := tm.waitFor("the time", all(hasText("CONNECT= "), hasStatus(statusCPRead)))
	got := outputRowsOf(scr)[5:8]
	want := []string{
		"q time",
		"TIME IS 13:02:41 EST WEDNESDAY 03/11/26",
		"CONNECT= 00:00:00 VIRTCPU= 000:00.00 TOTCPU= 000:00.00",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("rows 5..7:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// #CP, the line end and other queries.
	tm.command("#CP QUERY USERID#cp q cplevel")
	scr = tm.waitFor("QUERY USERID and CPLEVEL", hasText("IPL at 03/11/26 13:02:41 EST"))
	for _, w := range []string{"OPERATOR AT VMSYS1", cpLevel, "Generated at 03/01/23 10:00:00 EST"} {
		if !slices.Contains(outputRowsOf(scr), w) {
			t.Errorf("no row %q:\n%s", w, peer.DumpScreen(scr))
		}
	}
	tm.command("q users")
	tm.waitFor("QUERY USERS", hasText("    1 USERS,     0 DIALED,     1 NET"))
}

func TestS3270UnknownCommand(t *testing.T) {
	_, addr := startSim(t, Config{})
	tm := loggedOn(t, addr, "OPERATOR")
	tm.command("frobnicate all")
	scr := tm.waitFor("HCPCMD001E", hasText("HCPCMD001E Unknown CP command: FROBNICATE"))
	if len(rowsWith(scr, "frobnicate all")) != 1 {
		t.Errorf("the input line is not echoed:\n%s", peer.DumpScreen(scr))
	}
	// A guest may not use the operator's commands.
	guest := loggedOn(t, startSimAddr(t), "LINUX01")
	guest.command("force operator")
	guest.waitFor("HCPCMD001E for FORCE", hasText("HCPCMD001E Unknown CP command: FORCE"))
}

// startSimAddr starts another simulator and returns its address.
func startSimAddr(t *testing.T) string {
	_, addr := startSim(t, Config{})
	return addr
}

// collectLongout reads LONGOUT rows from the screen, adding them to seen.
func collectLongout(scr []string, seen *[]string) {
	for _, r := range outputRowsOf(scr) {
		if strings.HasPrefix(r, "LONGOUT LINE") {
			*seen = append(*seen, r)
		}
	}
}

func checkLongout(t *testing.T, seen []string, n int) {
	t.Helper()
	if len(seen) != n {
		t.Errorf("saw %d LONGOUT lines, want %d: %q", len(seen), n, seen)
	}
	for i, r := range seen {
		if want := fmt.Sprintf("LONGOUT LINE %05d OF %05d", i+1, n); r != want {
			t.Errorf("line %d is %q, want %q", i+1, r, want)
			break
		}
	}
}

func TestS3270LongoutClear(t *testing.T) {
	_, addr := startSim(t, Config{MoreDelay: time.Minute})
	tm := loggedOn(t, addr, "OPERATOR")
	tm.command("LONGOUT 60")
	// 5 logon rows, the echo and 16 lines; then 22 and 22.
	var seen []string
	scr := tm.waitFor("MORE... (1)", all(hasStatus(statusMore), hasText("LONGOUT LINE 00016 OF")))
	collectLongout(scr, &seen)
	tm.Must("Clear()")
	scr = tm.waitFor("MORE... (2)", all(hasStatus(statusMore), hasText("LONGOUT LINE 00038 OF")))
	collectLongout(scr, &seen)
	tm.Must("Clear()")
	scr = tm.waitFor("CP READ (3)", all(hasStatus(statusCPRead), hasText("LONGOUT LINE 00060 OF")))
	collectLongout(scr, &seen)
	checkLongout(t, seen, 60)
	if got := outputRowsOf(scr)[0]; got != "LONGOUT LINE 00039 OF 00060" {
		t.Errorf("third screen starts with %q", got)
	}
}

func TestS3270MoreDelay(t *testing.T) {
	const delay = time.Second
	_, addr := startSim(t, Config{MoreDelay: delay})
	tm := loggedOn(t, addr, "OPERATOR")
	tm.command("longout 30")
	start := time.Now()
	var seen []string
	scr := tm.waitFor("MORE...", hasStatus(statusMore))
	collectLongout(scr, &seen)
	scr = tm.waitFor("the next screen by itself", all(hasStatus(statusCPRead), hasText("LONGOUT LINE 00030 OF")))
	if el := time.Since(start); el < delay-100*time.Millisecond {
		t.Errorf("the screen cleared after %v, before the MORE... delay %v", el, delay)
	}
	collectLongout(scr, &seen)
	checkLongout(t, seen, 30)
}

func TestS3270HoldingEnterPA2Clear(t *testing.T) {
	const delay = 1500 * time.Millisecond
	_, addr := startSim(t, Config{MoreDelay: delay})
	tm := loggedOn(t, addr, "OPERATOR")
	tm.command("LONGOUT 80")
	tm.waitFor("MORE...", hasStatus(statusMore))
	tm.Must("Enter()")
	tm.waitFor("HOLDING after ENTER", hasStatus(statusHolding))
	time.Sleep(delay + 500*time.Millisecond)
	scr := tm.waitFor("still HOLDING after the delay", hasStatus(statusHolding))
	if len(rowsWith(scr, "LONGOUT LINE 00016 OF")) != 1 {
		t.Fatalf("the held screen changed:\n%s", peer.DumpScreen(scr))
	}
	tm.Must("PA(2)")
	tm.waitFor("the next screen after PA2", all(hasText("LONGOUT LINE 00038 OF"), hasStatus(statusMore)))
	tm.Must("Enter()")
	tm.waitFor("HOLDING again", hasStatus(statusHolding))
	tm.Must("Clear()")
	scr = tm.waitFor("the next screen after CLEAR", hasText("LONGOUT LINE 00060 OF"))
	if outputRowsOf(scr)[0] != "LONGOUT LINE 00039 OF 00080" {
		t.Errorf("after CLEAR:\n%s", peer.DumpScreen(scr))
	}
}

func TestS3270Msg(t *testing.T) {
	_, addr := startSim(t, Config{Clock: testClock})
	op := loggedOn(t, addr, "OPERATOR")
	op.command("MSG * hello  There")
	scr := op.waitFor("the message", hasText("13:02:41 * MSG FROM OPERATOR: hello  There"))
	if statusOf(scr) != statusCPRead {
		t.Errorf("status %q after a message that fits", statusOf(scr))
	}
	maint := loggedOn(t, addr, "MAINT")
	maint.command("m operator from maint")
	op.waitFor("MSG FROM MAINT", hasText("13:02:41 * MSG FROM MAINT   : from maint"))
	maint.command("warning operator going down")
	op.waitFor("WNG FROM MAINT", hasText("13:02:41 * WNG FROM MAINT   : going down"))
	op.command("msg linux01 anyone there")
	op.waitFor("HCPMSG045E", hasText("HCPMSG045E LINUX01 not logged on"))
}

func TestS3270MessageMakesFullScreenHold(t *testing.T) {
	const delay = time.Second
	s, addr := startSim(t, Config{Clock: testClock, MoreDelay: delay})
	tm := loggedOn(t, addr, "OPERATOR")
	tm.command("longout 16") // 5 + 1 + 16: the screen is exactly full
	tm.waitFor("a full screen", all(hasText("LONGOUT LINE 00016 OF"), hasStatus(statusCPRead)))
	if err := s.Message("MAINT", "OPERATOR", "are you there"); err != nil {
		t.Fatal(err)
	}
	tm.waitFor("HOLDING", hasStatus(statusHolding))
	time.Sleep(delay + 300*time.Millisecond) // past the MORE... delay: HOLDING stays
	tm.waitFor("still HOLDING", hasStatus(statusHolding))
	tm.Must("Clear()")
	scr := tm.waitFor("the message", all(hasStatus(statusCPRead), hasText("MSG FROM MAINT")))
	if got := outputRowsOf(scr)[0]; got != "13:02:41 * MSG FROM MAINT   : are you there" {
		t.Errorf("row 0 = %q", got)
	}
	// During MORE..., an arriving message turns it to HOLDING.
	tm.command("longout 30")
	tm.waitFor("MORE...", hasStatus(statusMore))
	if err := s.Warning("OPERATOR", "OPERATOR", "shutdown soon"); err != nil {
		t.Fatal(err)
	}
	tm.waitFor("HOLDING", hasStatus(statusHolding))
}

func TestS3270XautologForce(t *testing.T) {
	_, addr := startSim(t, Config{Clock: testClock})
	tm := loggedOn(t, addr, "OPERATOR")
	tm.command("q names")
	scr := tm.waitFor("QUERY NAMES", hasText("OPERATOR - L0004"))
	if len(rowsWith(scr, "LINUX01")) != 0 {
		t.Fatalf("LINUX01 logged on already:\n%s", peer.DumpScreen(scr))
	}
	tm.command("xautolog linux01")
	scr = tm.waitFor("AUTO LOGON", hasText("AUTO LOGON  ***       LINUX01  USERS = 2"))
	for _, w := range []string{msgCommandAccepted, "HCPCLS6056I XAUTOLOG information for LINUX01: The IPL command is verified by", "the IPL command processor."} {
		if !slices.Contains(outputRowsOf(scr), w) {
			t.Errorf("no row %q:\n%s", w, peer.DumpScreen(scr))
		}
	}
	tm.Must("Clear()")
	tm.command("q nam")
	tm.waitFor("LINUX01 in QUERY NAMES", hasText("LINUX01  - DSC , OPERATOR - L0004"))
	tm.command("xautolog linux01")
	tm.waitFor("HCPCLS054E", hasText("HCPCLS054E Already logged on LINUX01"))
	tm.command("force linux01")
	tm.waitFor("the logoff notice", hasText("USER DSC   LOGOFF AS  LINUX01  USERS = 1    FORCED BY OPERATOR"))
	tm.Must("Clear()")
	tm.command("q names")
	scr = tm.waitFor("QUERY NAMES", hasText("OPERATOR - L0004"))
	if len(rowsWith(scr, "LINUX01")) != 0 {
		t.Errorf("LINUX01 still logged on:\n%s", peer.DumpScreen(scr))
	}
	tm.command("force linux01")
	tm.waitFor("HCPCFX045E", hasText("HCPCFX045E LINUX01 not logged on"))

	// FORCE of a connected user sends its terminal back to the logo screen;
	// the operator sees the user's logon and logoff.
	guest := loggedOn(t, addr, "LINUX02")
	tm.waitFor("the logon notice", hasText("GRAF L0005 LOGON  AS  LINUX02  USERS = 2"))
	tm.command("force linux02")
	tm.waitFor("the logoff notice", hasText("GRAF L0005 LOGOFF AS  LINUX02  USERS = 1    FORCED BY OPERATOR"))
	guest.waitFor("the logo screen", hasText("USERID   ===>"))
}

func TestS3270Inject(t *testing.T) {
	s, addr := startSim(t, Config{MoreDelay: time.Minute})
	tm := loggedOn(t, addr, "OPERATOR")
	if err := s.Inject("HCPMID9999I Something happened"); err != nil {
		t.Fatal(err)
	}
	tm.waitFor("the injected line", hasText("HCPMID9999I Something happened"))
	if err := s.InjectMany(40, "INJECTED %03d"); err != nil {
		t.Fatal(err)
	}
	// 5 logon rows and the first line, then 16, 22 and 2 lines.
	var seen []string
	for _, want := range []string{"INJECTED 016", "INJECTED 038", "INJECTED 040"} {
		scr := tm.waitFor(want, hasText(want))
		for _, r := range outputRowsOf(scr) {
			if strings.HasPrefix(r, "INJECTED") {
				seen = append(seen, r)
			}
		}
		if want != "INJECTED 040" {
			if st := statusOf(scr); st != statusMore {
				t.Errorf("status %q at %s", st, want)
			}
			tm.Must("Clear()")
		}
	}
	if len(seen) != 40 || seen[0] != "INJECTED 001" || seen[39] != "INJECTED 040" {
		t.Errorf("injected lines seen: %q", seen)
	}
	if err := s.InjectTo("MAINT", "x"); err == nil {
		t.Error("InjectTo a user not logged on succeeded")
	}
}

func TestS3270SpinNotAccepted(t *testing.T) {
	_, addr := startSim(t, Config{})
	tm := loggedOn(t, addr, "OPERATOR")
	tm.command("spin 3")
	tm.waitFor("RUNNING", hasStatus(statusRunning))
	tm.command("q userid")
	tm.waitFor("the type-ahead echoed", hasText("q userid"))
	tm.command("q users")
	scr := tm.waitFor("NOT ACCEPTED", hasStatus(statusNotAccepted))
	if len(rowsWith(scr, "q users")) != 0 {
		t.Errorf("input that was not accepted is echoed:\n%s", peer.DumpScreen(scr))
	}
	tm.command("#cp q cplevel")
	tm.waitFor("CP answers while RUNNING", all(hasText(cpLevel), hasStatus(statusRunning)))
	tm.waitFor("the type-ahead run", all(hasText("OPERATOR AT VMSYS1"), hasStatus(statusCPRead)))
}

func TestS3270Logoff(t *testing.T) {
	s, addr := startSim(t, Config{})
	tm := loggedOn(t, addr, "MAINT")
	tm.command("logoff")
	tm.waitFor("the logo screen", hasText("USERID   ===>"))
	if got := s.LoggedOn(); len(got) != 0 {
		t.Errorf("logged on after LOGOFF: %q", got)
	}
	tm.logon("MAINT", testPassword)
	tm.waitFor("a new logon", hasText("LOGON AT"))
}

// waitDisconnected waits until user is logged on without a terminal.
func waitDisconnected(t *testing.T, s *Sim, user string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.mu.Lock()
		u := s.users[user]
		dsc := u != nil && u.sess == nil
		s.mu.Unlock()
		if dsc {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not disconnected", user)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
