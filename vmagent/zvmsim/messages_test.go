package zvmsim

import (
	"slices"
	"testing"
	"time"
)

// The formats against real console output published elsewhere (see the
// comments in messages.go).
func TestMessagesMatchRealOutput(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{noticeLogoff("", "LINUX2", 31, "MAINT"), "USER DSC   LOGOFF AS  LINUX2   USERS = 31    FORCED BY MAINT"},
		{noticeAutoLogon("LINUX2", 32), "AUTO LOGON  ***       LINUX2   USERS = 32"},
		{noticeLogoff("L0004", "MAINT", 5, ""), "GRAF L0004 LOGOFF AS  MAINT    USERS = 5"},
		{noticeLogon("L0004", "MAINT", 6), "GRAF L0004 LOGON  AS  MAINT    USERS = 6"},
		{msgUnknownCommand("XYZ"), "HCPCMD001E Unknown CP command: XYZ"},
		{msgFrom("MSG", testTime, "OPERATOR", "text"), "13:02:41 * MSG FROM OPERATOR: text"},
		{msgFrom("WNG", testTime, "MAINT", "text"), "13:02:41 * WNG FROM MAINT   : text"},
		{queryUsers(3, 0, 1), "    3 USERS,     0 DIALED,     1 NET"},
		{msgLogonAt(testTime), "LOGON AT 13:02:41 EST WEDNESDAY 03/11/26"},
	} {
		if tc.got != tc.want {
			t.Errorf("got  %q\nwant %q", tc.got, tc.want)
		}
	}
	names := queryNames([]nameEntry{
		{"LCLEF02", "DSC"}, {"LTROTH1", "DSC"}, {"LSTAGE1", "DSC"}, {"MAINT", "L0004"}, {"OPERATOR", "DSC"},
	}, true)
	want := []string{
		"LCLEF02  - DSC , LTROTH1  - DSC , LSTAGE1  - DSC , MAINT    - L0004",
		"OPERATOR - DSC",
		"VSM     - TCPIP",
	}
	if !slices.Equal(names, want) {
		t.Errorf("queryNames:\n%q\nwant\n%q", names, want)
	}
	ipl := time.Date(2024, 6, 4, 19, 18, 57, 0, time.FixedZone("CES", 3600))
	if got := queryCPLevel(ipl); !slices.Equal(got, []string{
		"z/VM Version 7 Release 3.0, service level 2301 (64-bit)",
		"Generated at 03/01/23 10:00:00 CES",
		"IPL at 06/04/24 19:18:57 CES",
	}) {
		t.Errorf("queryCPLevel: %q", got)
	}
	if got := queryTime(testTime.Add(3723*time.Second), testTime); !slices.Equal(got, []string{
		"TIME IS 14:04:44 EST WEDNESDAY 03/11/26",
		"CONNECT= 01:02:03 VIRTCPU= 000:00.00 TOTCPU= 000:00.00",
	}) {
		t.Errorf("queryTime: %q", got)
	}
}

func TestAbbrev(t *testing.T) {
	for _, tc := range []struct {
		word, full string
		min        int
		want       bool
	}{
		{"Q", "QUERY", 1, true},
		{"QUERY", "QUERY", 1, true},
		{"QUERYX", "QUERY", 1, false},
		{"CPLEV", "CPLEVEL", 5, true},
		{"CPLE", "CPLEVEL", 5, false},
		{"", "QUERY", 0, true},
		{"QX", "QUERY", 1, false},
	} {
		if got := abbrev(tc.word, tc.full, tc.min); got != tc.want {
			t.Errorf("abbrev(%q, %q, %d) = %v", tc.word, tc.full, tc.min, got)
		}
	}
}

func TestRestAfter(t *testing.T) {
	for _, tc := range []struct {
		s    string
		n    int
		want string
	}{
		{"MSG * hello  world ", 2, "hello  world "},
		{"  MSG   *   x", 2, "x"},
		{"MSG *", 2, ""},
		{"MSG", 2, ""},
		{"CP Q TIME", 1, "Q TIME"},
	} {
		if got := restAfter(tc.s, tc.n); got != tc.want {
			t.Errorf("restAfter(%q, %d) = %q, want %q", tc.s, tc.n, got, tc.want)
		}
	}
}
