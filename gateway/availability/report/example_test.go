package report_test

import (
	"os"
	"time"

	"github.com/zbridge/zbridge/gateway/availability/report"
	"github.com/zbridge/zbridge/protocol"
)

// sampleDay is the period of the sample: Monday 2 June 2025, UTC.
var sampleDay = time.Date(2025, 6, 2, 0, 0, 0, 0, time.UTC)

// sample returns a day of a small installation's ledger, in Seq order as
// the store keeps it (heartbeat-lost records come after later events:
// their Time is when the interval ran out): a z/OS system that left the
// sysplex for 42 minutes, one that was down for maintenance over midnight,
// a Linux guest logged off for a while and then flapping on its
// heartbeat, and a web server probed from 06:00 that failed twice, the
// second time at the end of the day.
func sample() []protocol.StatusRecord {
	at := func(day int, hms string) time.Time {
		t, err := time.Parse("15:04:05", hms)
		if err != nil {
			panic(err)
		}
		return sampleDay.AddDate(0, 0, day).Add(time.Duration(t.Hour())*time.Hour +
			time.Duration(t.Minute())*time.Minute + time.Duration(t.Second())*time.Second)
	}
	ev := func(t time.Time, n uint64) protocol.ID { return protocol.ID{Ms: uint64(t.UnixMilli()) + 41, Seq: n} } // arrived 41 ms later
	var recs []protocol.StatusRecord
	add := func(r protocol.StatusRecord) {
		r.Seq = uint64(len(recs) + 1)
		recs = append(recs, r)
	}
	rule := func(comp string, st protocol.Status, t time.Time, change, rule, detail string) {
		add(protocol.StatusRecord{Component: comp, Status: st, Time: t, Change: change, Rule: rule, Event: ev(t, 0), Detail: detail})
	}
	beat := func(comp string, st protocol.Status, t time.Time, change, rule, detail string) {
		add(protocol.StatusRecord{Component: comp, Status: st, Time: t, Change: change, Rule: rule, Detail: detail})
	}
	const up, down = protocol.StatusUp, protocol.StatusDown

	rule("SYSA", up, at(-5, "06:12:40"), "IXC418I", "sysplex-join", "SYSTEM SYSA IS NOW ACTIVE IN SYSPLEX PLEX1")
	rule("SYSB", up, at(-5, "06:14:02"), "IXC418I", "sysplex-join", "SYSTEM SYSB IS NOW ACTIVE IN SYSPLEX PLEX1")
	rule("VMSYS1/LINUX01", up, at(-3, "11:02:17"), "LOGON", "guest-logon", "USER LINUX01 LOGON AT 11:02:17 UTC")
	rule("SYSB", down, at(-1, "22:10:05"), "IXC105I", "sysplex-leave", "SYSPLEX PARTITIONING HAS COMPLETED FOR SYSB - PRIMARY REASON: SYSTEM REMOVED BY SYSPLEX FAILURE MANAGEMENT")
	rule("SYSA", down, at(0, "01:58:30"), "IXC105I", "sysplex-leave", "SYSPLEX PARTITIONING HAS COMPLETED FOR SYSA - PRIMARY REASON: LOSS OF SIGNALLING CONNECTIVITY")
	rule("SYSA", up, at(0, "02:41:10"), "IXC418I", "sysplex-join", "SYSTEM SYSA IS NOW ACTIVE IN SYSPLEX PLEX1")
	rule("SYSA", up, at(0, "02:43:55"), "IXC418I", "sysplex-join", "SYSTEM SYSA IS NOW ACTIVE IN SYSPLEX PLEX1") // a repeat
	rule("SYSB", up, at(0, "03:05:00"), "IXC418I", "sysplex-join", "SYSTEM SYSB IS NOW ACTIVE IN SYSPLEX PLEX1")
	beat("has113.httpd.80", up, at(0, "06:00:00"), "probe-ok", "httpd", "active")
	rule("VMSYS1/LINUX01", down, at(0, "09:15:00"), "LOGOFF", "guest-logoff", "USER LINUX01 LOGOFF AT 09:15:00 UTC FORCED BY OPERATOR")
	rule("VMSYS1/LINUX01", up, at(0, "09:22:30"), "LOGON", "guest-logon", "USER LINUX01 LOGON AT 09:22:30 UTC")
	beat("has113.httpd.80", down, at(0, "13:20:00"), "probe-failed", "httpd", "rc=3: inactive")
	beat("has113.httpd.80", down, at(0, "13:21:00"), "probe-failed", "httpd", "rc=3: inactive") // a repeat
	beat("has113.httpd.80", up, at(0, "13:34:00"), "probe-ok", "httpd", "active")
	rule("SYSA", up, at(0, "17:05:30"), "IXC418I", "sysplex-join", "SYSTEM SYSA IS NOW ACTIVE IN SYSPLEX PLEX1") // a repeat
	beat("VMSYS1/LINUX01", down, at(0, "17:05:12"), "heartbeat-lost", "linux01-syslog", "no beat for 5m0s")
	beat("VMSYS1/LINUX01", up, at(0, "17:06:02"), "heartbeat", "linux01-syslog", "")
	beat("VMSYS1/LINUX01", down, at(0, "17:06:40"), "heartbeat-lost", "linux01-syslog", "no beat for 5m0s")
	beat("VMSYS1/LINUX01", up, at(0, "17:07:31"), "heartbeat", "linux01-syslog", "")
	beat("has113.httpd.80", down, at(0, "23:51:00"), "probe-timeout", "httpd", "no answer in 20s")
	return recs
}

// The text report on the sample day: the one the README shows.
func ExampleWriteText() {
	r := report.Compute(sample(), sampleDay, sampleDay.AddDate(0, 0, 1), report.Options{})
	report.WriteText(os.Stdout, r)
	// Output:
	// ZBRIDGE AVAILABILITY REPORT
	// PERIOD 2025-06-02 00:00:00 TO 2025-06-03 00:00:00 UTC  (24:00:00)  4 COMPONENTS
	//
	// COMPONENT        MONITORED  AVAIL %  OUTAGES  DOWNTIME  LONGEST     MTTR      MTBF  NOTES
	// ---------------  ---------  -------  -------  --------  -------  -------  --------  ---------------------------
	// SYSA              24:00:00   97.037        1   0:42:40  0:42:40  0:42:40  23:17:20
	// SYSB              24:00:00   87.152        1   3:05:00  3:05:00  3:05:00  20:55:00  DOWN AT START
	// VMSYS1/LINUX01    24:00:00   99.362        3   0:09:11  0:07:30  0:03:03   7:56:56
	// has113.httpd.80   18:00:00   97.870        2   0:23:00  0:14:00  0:11:30   8:48:30  PARTLY UNKNOWN; DOWN AT END
	//
	// SYSA
	//   availability 97.037% of 24:00:00 monitored; 1 outage, 0:42:40 down; 2 changes, 2 repeats
	//   #  START                END                  DURATION  CAUSE    ENDED BY  NOTE
	//   -  -------------------  -------------------  --------  -------  --------  ----
	//   1  2025-06-02 01:58:30  2025-06-02 02:41:10   0:42:40  IXC105I  IXC418I
	//      down: SYSPLEX PARTITIONING HAS COMPLETED FOR SYSA - PRIMARY REASON: LOSS OF SIGNALLING CONNECTIVITY
	//      up:   SYSTEM SYSA IS NOW ACTIVE IN SYSPLEX PLEX1
	//
	// SYSB
	//   availability 87.152% of 24:00:00 monitored; 1 outage, 3:05:00 down; 1 change, 0 repeats
	//   #  START                END                  DURATION  CAUSE    ENDED BY  NOTE
	//   -  -------------------  -------------------  --------  -------  --------  -------------------------
	//   1  2025-06-02 00:00:00  2025-06-02 03:05:00   3:05:00  IXC105I  IXC418I   BEGAN 2025-06-01 22:10:05
	//      down: SYSPLEX PARTITIONING HAS COMPLETED FOR SYSB - PRIMARY REASON: SYSTEM REMOVED BY SYSPLEX FAILURE MANAGEMENT
	//      up:   SYSTEM SYSB IS NOW ACTIVE IN SYSPLEX PLEX1
	//
	// VMSYS1/LINUX01
	//   availability 99.362% of 24:00:00 monitored; 3 outages, 0:09:11 down; 6 changes, 0 repeats
	//   #  START                END                  DURATION  CAUSE           ENDED BY   NOTE
	//   -  -------------------  -------------------  --------  --------------  ---------  ----
	//   1  2025-06-02 09:15:00  2025-06-02 09:22:30   0:07:30  LOGOFF          LOGON
	//      down: USER LINUX01 LOGOFF AT 09:15:00 UTC FORCED BY OPERATOR
	//      up:   USER LINUX01 LOGON AT 09:22:30 UTC
	//   2  2025-06-02 17:05:12  2025-06-02 17:06:02   0:00:50  heartbeat-lost  heartbeat
	//      down: no beat for 5m0s
	//   3  2025-06-02 17:06:40  2025-06-02 17:07:31   0:00:51  heartbeat-lost  heartbeat
	//      down: no beat for 5m0s
	//
	// has113.httpd.80
	//   availability 97.870% of 18:00:00 monitored; 2 outages, 0:23:00 down; 4 changes, 1 repeat
	//   monitored from its first record, 2025-06-02 06:00:00; not known for 6:00:00 before
	//   #  START                END                  DURATION  CAUSE          ENDED BY  NOTE
	//   -  -------------------  -------------------  --------  -------------  --------  ------------------------------------
	//   1  2025-06-02 13:20:00  2025-06-02 13:34:00   0:14:00  probe-failed   probe-ok
	//      down: rc=3: inactive
	//      up:   active
	//   2  2025-06-02 23:51:00  2025-06-03 00:00:00   0:09:00  probe-timeout  -         OPEN: STILL DOWN, COUNTED TO THE END
	//      down: no answer in 20s
	//
	// Times are UTC; durations H:MM:SS. AVAIL % = up time / monitored time, truncated. A component's time
	// before its first record, when no record before the period gives its status, is not monitored
	// (PARTLY UNKNOWN). Outages are clipped to the period (DOWN AT START); one still open is counted to its
	// end (DOWN AT END). MTTR = downtime / outages; MTBF = up time / outages. CAUSE and ENDED BY are the
	// change identifiers of the DOWN record and of the UP record that ended the outage.
}
