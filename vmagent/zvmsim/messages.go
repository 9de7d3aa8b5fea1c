package zvmsim

import (
	"fmt"
	"strings"
	"time"
)

// The text of every line CP writes in the simulator, in one place, each
// with where its format comes from. "CP Commands" is z/VM 7.3 CP Commands
// and Utilities Reference (SC24-6268), "CP Messages" is z/VM 7.3 CP
// Messages and Codes (GC24-6270). Where a format was checked against real
// console output published elsewhere, that is named too; where it was a
// guess, the comment says so (the package documentation lists the guesses).

// cpLevel is the level the simulator claims: CP Commands, QUERY CPLEVEL,
// response "z/VM Version 7 Release 3.0, service level 2301 (64-bit)";
// the same layout appears in real output quoted by IBM's ibm_zos_core
// Ansible collection ("z/VM Version 7 Release 2.0, service level 2101
// (64-bit)") and by Rick Troth's uft ("... Release 3.0, service level 2401").
const (
	cpLevel          = "z/VM Version 7 Release 3.0, service level 2301 (64-bit)"
	cpGeneratedStamp = "03/01/23 10:00:00"
)

// Date and time layouts: CP's default DATEFORMAT is SHORTDATE (mm/dd/yy);
// times are hh:mm:ss and the zone is the system's time zone ID.
const (
	layoutDate = "01/02/06"
	layoutTime = "15:04:05"
)

func zone(t time.Time) string { return t.Format("MST") }

// stamp is "hh:mm:ss zone weekday mm/dd/yy", the form LOGON AT, LOGOFF AT,
// RECONNECTED AT, DISCONNECT AT and QUERY TIME share.
func stamp(t time.Time) string {
	return fmt.Sprintf("%s %s %s %s", t.Format(layoutTime), zone(t),
		strings.ToUpper(t.Weekday().String()), t.Format(layoutDate))
}

// logonBanner is what LOGON writes before LOGON AT (CP Commands, LOGON;
// the banner and FILES line as z/VM 6 and 7 write them). The simulator's
// users have no reader, printer or punch files and the system no logmsg.
func logonBanner() []string {
	return []string{
		cpLevel + ",",
		"built on IBM Virtualization Technology",
		"There is no logmsg data",
		"FILES:   NO RDR,   NO PRT,   NO PUN",
	}
}

// CP Commands, LOGON, responses: "LOGON AT hh:mm:ss zone weekday mm/dd/yy"
// and, for a disconnected user, "RECONNECTED AT ...".
func msgLogonAt(t time.Time) string       { return "LOGON AT " + stamp(t) }
func msgReconnectedAt(t time.Time) string { return "RECONNECTED AT " + stamp(t) }

// CP Commands, LOGOFF and DISCONNECT responses.
func msgLogoffAt(t time.Time) string     { return "LOGOFF AT " + stamp(t) }
func msgDisconnectAt(t time.Time) string { return "DISCONNECT AT " + stamp(t) }

// CP Messages, HCP050E. z/VM 6 and later word it "LOGON unsuccessful--
// incorrect userid and/or password" (the text tessia-baselib matches on real
// systems; older releases said "incorrect password"). CP gives the same
// message for an unknown userid, so as not to tell which one was wrong.
const msgLogonBad = "HCPLGA050E LOGON unsuccessful--incorrect userid and/or password"

// CP Messages, HCP054E, "Already logged on": the userid is logged on and
// connected to another terminal. (Text as tessia-baselib lists it; real
// systems may append where the user is logged on — not simulated.)
const msgAlreadyLoggedOn = "HCPLGA054E Already logged on"

// CP Messages, HCP015E, for a command other than LOGON typed on the logo
// screen's COMMAND line (text as tessia-baselib lists it).
func msgNotBeforeLogon(cmd string) string {
	return "HCPCFC015E Command not valid before LOGON: " + cmd
}

// CP Messages, HCP001E "Unknown CP command: command". CP also gives it for
// a command the user's privilege class does not include.
func msgUnknownCommand(cmd string) string { return "HCPCMD001E Unknown CP command: " + cmd }

// CP Messages, HCP003E "Invalid option - option" and HCP026E "Operand
// missing or invalid". The module part (HCPCQU for QUERY, HCPMSG for MSG,
// and so on) is a guess: real CP names the module that issued it.
func msgInvalidOption(module, opt string) string {
	return "HCP" + module + "003E Invalid option - " + opt
}
func msgOperandMissing(module string) string {
	return "HCP" + module + "026E Operand missing or invalid"
}

// CP Messages, HCP045E "userid not logged on" and HCP057I "userid not
// receiving; disconnected" (MSG and WARNING to a user without a console).
func msgNotLoggedOn(module, user string) string {
	return fmt.Sprintf("HCP%s045E %s not logged on", module, user)
}
func msgNotReceiving(module, user string) string {
	return fmt.Sprintf("HCP%s057I %s not receiving; disconnected", module, user)
}

// CP Messages, HCP053E "userid not in CP directory" (XAUTOLOG) and HCP054E
// for XAUTOLOG of a logged-on user; module HCPCLS as in the real
// HCPCLS6056I below.
func msgNotInDirectory(user string) string { return "HCPCLS053E " + user + " not in CP directory" }
func msgXautologAlready(user string) string {
	return "HCPCLS054E Already logged on " + user
}

// QUERY TIME (CP Commands, QUERY TIME, response; the first line is message
// HCP6001I in CP Messages). CP writes command responses without the
// message-ID header, so the line on the console starts with TIME IS, as in
// IBM's examples and in real output ("TIME IS 16:45:28 EDT FRIDAY
// 2025-05-30" quoted by uft, with DATEFORMAT ISODATE).
func queryTime(now, logon time.Time) []string {
	d := now.Sub(logon)
	if d < 0 {
		d = 0
	}
	s := int(d / time.Second)
	return []string{
		"TIME IS " + stamp(now),
		fmt.Sprintf("CONNECT= %02d:%02d:%02d VIRTCPU= 000:00.00 TOTCPU= 000:00.00", s/3600, s/60%60, s%60),
	}
}

// QUERY CPLEVEL (CP Commands, QUERY CPLEVEL): the level, when the CP module
// was generated and when the system was IPLed.
func queryCPLevel(ipl time.Time) []string {
	return []string{
		cpLevel,
		"Generated at " + cpGeneratedStamp + " " + zone(ipl),
		"IPL at " + ipl.Format(layoutDate) + " " + ipl.Format(layoutTime) + " " + zone(ipl),
	}
}

// nameEntry is one QUERY NAMES entry: a userid and where it is (DSC, or
// the logical device of its terminal).
type nameEntry struct{ user, where string }

// queryNames formats QUERY NAMES (CP Commands, QUERY NAMES): entries
// "userid - terminal" separated by " , ", four to a line, the userid padded
// to eight, as in real output ("LCLEF02  - DSC , LTROTH1  - DSC , ..."
// quoted by uft). vsm adds the line real systems end with when users are
// connected through TCP/IP's TN3270 server ("VSM     - TCPIP").
func queryNames(entries []nameEntry, vsm bool) []string {
	var lines []string
	for i := 0; i < len(entries); i += 4 {
		var parts []string
		for _, e := range entries[i:min(i+4, len(entries))] {
			parts = append(parts, fmt.Sprintf("%-8s - %s", e.user, e.where))
		}
		lines = append(lines, strings.Join(parts, " , "))
	}
	if vsm {
		lines = append(lines, "VSM     - TCPIP")
	}
	return lines
}

// queryUsers formats QUERY USERS (CP Commands, QUERY USERS): counts of
// logged-on users, users dialed to a virtual machine, and users of the
// network (VSM). The column widths are a guess.
func queryUsers(users, dialed, net int) string {
	return fmt.Sprintf("%5d USERS, %5d DIALED, %5d NET", users, dialed, net)
}

// queryUserid formats QUERY USERID (CP Commands): "userid AT sysname".
func queryUserid(user, system string) string { return user + " AT " + system }

// msgFrom formats a message from a user as the receiver sees it (CP
// Commands, MESSAGE and WARNING): the time, an asterisk, "MSG FROM" or
// "WNG FROM", the sender padded to eight, a colon and the text — the
// layout of REFERENCE.md "13:02:41 * MSG FROM OPERATOR: text". The
// padding of shorter userids is a guess from VM/370-era output.
func msgFrom(kind string, t time.Time, from, text string) string {
	return fmt.Sprintf("%s * %s FROM %-8s: %s", t.Format(layoutTime), kind, from, text)
}

// Logon and logoff notices. The layout comes from real z/VM output (the
// zvm-bootcamp workshop's FORCE and XAUTOLOG transcripts):
//
//	USER DSC   LOGOFF AS  LINUX2   USERS = 31    FORCED BY MAINT
//	AUTO LOGON  ***       LINUX2   USERS = 32
//
// "GRAF Lnnnn LOGON  AS ..." for a terminal logon follows the same columns
// (device class, device, action, userid) and is a guess.
func noticeAutoLogon(user string, users int) string {
	return fmt.Sprintf("AUTO LOGON  ***       %-8s USERS = %d", user, users)
}
func noticeLogon(term, user string, users int) string {
	return fmt.Sprintf("GRAF %-5s LOGON  AS  %-8s USERS = %d", term, user, users)
}
func noticeLogoff(term, user string, users int, forcedBy string) string {
	class, dev := "GRAF", term
	if term == "" {
		class, dev = "USER", "DSC"
	}
	s := fmt.Sprintf("%-4s %-5s LOGOFF AS  %-8s USERS = %d", class, dev, user, users)
	if forcedBy != "" {
		s += "    FORCED BY " + forcedBy
	}
	return s
}

// XAUTOLOG (CP Commands, XAUTOLOG): "Command accepted" at once; when the
// logon completes, AUTO LOGON and, for a user whose directory entry IPLs
// a system, HCPCLS6056I (text as in the zvm-bootcamp transcript).
const msgCommandAccepted = "Command accepted"

func msgXautologInfo(user string) string {
	return "HCPCLS6056I XAUTOLOG information for " + user +
		": The IPL command is verified by the IPL command processor."
}
