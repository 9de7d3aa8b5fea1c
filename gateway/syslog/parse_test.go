package syslog

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/zbridge/zbridge/protocol"
)

var (
	testSender   = netip.MustParseAddr("192.0.2.10")
	testReceived = time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
)

// Real lines. "logger" lines were captured from util-linux logger 2.38
// sending to a socket; "syslog-ng" from syslog-ng 3.38's syslog() driver
// relaying them; the rsyslog lines follow its built-in templates:
//
//	RSYSLOG_SyslogProtocol23Format "<%PRI%>1 %TIMESTAMP:::date-rfc3339% %HOSTNAME% %APP-NAME% %PROCID% %MSGID% %STRUCTURED-DATA% %msg%\n"
//	RSYSLOG_ForwardFormat          "<%PRI%>%TIMESTAMP:::date-rfc3339% %HOSTNAME% %syslogtag:1:32%%msg:::sp-if-no-1st-sp%%msg%"
//	RSYSLOG_TraditionalForwardFormat "<%PRI%>%TIMESTAMP% %HOSTNAME% %syslogtag:1:32%%msg:::sp-if-no-1st-sp%%msg%"
const (
	lineLogger5424      = `<13>1 2026-11-22T02:50:57.069805+00:00 vm myapp - ID47 [timeQuality tzKnown="1" isSynced="0"] hello world`
	lineLogger5424SD    = `<13>1 2026-11-22T02:50:57.108562+00:00 vm myapp - - [timeQuality tzKnown="1" isSynced="0"][zb@32473 k="v"] udp 5424 sd`
	lineLogger5424NoTim = `<13>1 - - root - - - notime`
	lineLogger3164      = `<13>Nov 22 02:50:57 vm myapp[17933]: hello 3164`
	lineLogger3164Prio  = `<156>Nov 22 02:50:57 vm root: udp 3164`
	lineSyslogNG        = "<13>1 2026-11-22T02:51:12+00:00 localhost myapp - ID47 [timeQuality tzKnown=\"1\" isSynced=\"0\"] hello from syslog-ng\n"
	lineSyslogNGSD      = "<13>1 2026-11-22T02:51:12+00:00 localhost myapp - - [timeQuality tzKnown=\"1\" isSynced=\"0\"][zb@32473 k=\"v w\"] with sd\n"
	lineRsyslogProto23  = "<30>1 2026-11-22T03:04:05.123456+01:00 lnx01 systemd 1 - -  Started Session 3 of user root.\n"
	lineRsyslogForward  = "<30>2026-11-22T03:04:05.123456+01:00 lnx01 systemd[1]: Started Session 3 of user root."
	lineRsyslogTradFwd  = "<30>Nov 22 03:04:05 lnx01 systemd[1]: Started Session 3 of user root."
	lineRFC5424BOM      = "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"] \xEF\xBB\xBFAn application event log entry..."
	lineRFC5424Offset   = "<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts."
)

func TestParse(t *testing.T) {
	est := time.FixedZone("EST", -5*3600)
	type want struct {
		parsed     bool
		errHas     string // substring of ParseError
		host       string
		app        string
		procID     string
		msgID      string
		fac        protocol.Facility
		sev        protocol.Severity
		text       string
		origin     string // OriginTime in RFC 3339 (its own zone); "" for nil
		time       string // Time in RFC 3339
		timeFilled string
	}
	tests := []struct {
		name     string
		in       string
		loc      *time.Location
		received time.Time // testReceived if zero
		want     want
	}{
		{name: "logger rfc5424", in: lineLogger5424, want: want{parsed: true, host: "vm", app: "myapp", msgID: "ID47",
			fac: protocol.FacUser, sev: protocol.SevNotice, text: "hello world",
			origin: "2026-11-22T02:50:57.069805Z", time: "2026-11-22T02:50:57.069805Z"}},
		{name: "logger rfc5424 two SD elements", in: lineLogger5424SD, want: want{parsed: true, host: "vm", app: "myapp",
			fac: protocol.FacUser, sev: protocol.SevNotice, text: "udp 5424 sd",
			origin: "2026-11-22T02:50:57.108562Z", time: "2026-11-22T02:50:57.108562Z"}},
		{name: "logger rfc5424 notime nohost", in: lineLogger5424NoTim, want: want{parsed: true, host: "192.0.2.10", app: "root",
			fac: protocol.FacUser, sev: protocol.SevNotice, text: "notime",
			time: "2026-11-22T03:00:00Z", timeFilled: "all"}},
		{name: "logger rfc3164", in: lineLogger3164, want: want{parsed: true, host: "vm", app: "myapp", procID: "17933",
			fac: protocol.FacUser, sev: protocol.SevNotice, text: "hello 3164",
			origin: "2026-11-22T02:50:57Z", time: "2026-11-22T02:50:57Z", timeFilled: "year,zone"}},
		{name: "logger rfc3164 local3.warning", in: lineLogger3164Prio, want: want{parsed: true, host: "vm", app: "root",
			fac: 19, sev: protocol.SevWarning, text: "udp 3164",
			origin: "2026-11-22T02:50:57Z", time: "2026-11-22T02:50:57Z", timeFilled: "year,zone"}},
		{name: "rfc3164 in the region's zone", in: lineLogger3164, loc: est, want: want{parsed: true, host: "vm", app: "myapp", procID: "17933",
			fac: protocol.FacUser, sev: protocol.SevNotice, text: "hello 3164",
			origin: "2026-11-22T02:50:57-05:00", time: "2026-11-22T07:50:57Z", timeFilled: "year,zone"}},
		{name: "syslog-ng syslog() with trailing LF", in: lineSyslogNG, want: want{parsed: true, host: "localhost", app: "myapp", msgID: "ID47",
			fac: protocol.FacUser, sev: protocol.SevNotice, text: "hello from syslog-ng",
			origin: "2026-11-22T02:51:12Z", time: "2026-11-22T02:51:12Z"}},
		{name: "syslog-ng syslog() with SD", in: lineSyslogNGSD, want: want{parsed: true, host: "localhost", app: "myapp",
			fac: protocol.FacUser, sev: protocol.SevNotice, text: "with sd",
			origin: "2026-11-22T02:51:12Z", time: "2026-11-22T02:51:12Z"}},
		{name: "rsyslog SyslogProtocol23Format", in: lineRsyslogProto23, want: want{parsed: true, host: "lnx01", app: "systemd", procID: "1",
			fac: protocol.FacDaemon, sev: protocol.SevInfo, text: " Started Session 3 of user root.",
			origin: "2026-11-22T03:04:05.123456+01:00", time: "2026-11-22T02:04:05.123456Z"}},
		{name: "rsyslog ForwardFormat fractional RFC 3339", in: lineRsyslogForward, want: want{parsed: true, host: "lnx01", app: "systemd", procID: "1",
			fac: protocol.FacDaemon, sev: protocol.SevInfo, text: "Started Session 3 of user root.",
			origin: "2026-11-22T03:04:05.123456+01:00", time: "2026-11-22T02:04:05.123456Z"}},
		{name: "rsyslog ForwardFormat whole seconds", in: "<30>2026-11-22T03:04:05Z lnx01 systemd[1]: up", want: want{parsed: true, host: "lnx01", app: "systemd", procID: "1",
			fac: protocol.FacDaemon, sev: protocol.SevInfo, text: "up",
			origin: "2026-11-22T03:04:05Z", time: "2026-11-22T03:04:05Z"}},
		{name: "rsyslog TraditionalForwardFormat", in: lineRsyslogTradFwd, want: want{parsed: true, host: "lnx01", app: "systemd", procID: "1",
			fac: protocol.FacDaemon, sev: protocol.SevInfo, text: "Started Session 3 of user root.",
			origin: "2026-11-22T03:04:05Z", time: "2026-11-22T03:04:05Z", timeFilled: "year,zone"}},
		{name: "rfc5424 example with BOM", in: lineRFC5424BOM, want: want{parsed: true, host: "mymachine.example.com", app: "evntslog", msgID: "ID47",
			fac: 20, sev: protocol.SevNotice, text: "An application event log entry...",
			origin: "2003-10-11T22:14:15.003Z", time: "2003-10-11T22:14:15.003Z"}},
		{name: "rfc5424 example with offset", in: lineRFC5424Offset, want: want{parsed: true, host: "192.0.2.1", app: "myproc", procID: "8710",
			fac: 20, sev: protocol.SevNotice, text: "%% It's time to make the do-nuts.",
			origin: "2003-08-24T05:14:15.000003-07:00", time: "2003-08-24T12:14:15.000003Z"}},
		{name: "rfc5424 newline in MSG", in: "<13>1 2026-11-22T02:50:57Z vm app - - - line one\nline two\n", want: want{parsed: true, host: "vm", app: "app",
			fac: protocol.FacUser, sev: protocol.SevNotice, text: "line one\nline two",
			origin: "2026-11-22T02:50:57Z", time: "2026-11-22T02:50:57Z"}},
		{name: "rfc5424 no MSG", in: "<14>1 2026-11-22T02:50:57Z vm app 12 - -", want: want{parsed: true, host: "vm", app: "app", procID: "12",
			fac: protocol.FacUser, sev: protocol.SevInfo, text: "",
			origin: "2026-11-22T02:50:57Z", time: "2026-11-22T02:50:57Z"}},
		{name: "rfc3164 newline in MSG", in: "<13>Nov 22 02:50:57 vm app: line one\nline two", want: want{parsed: true, host: "vm", app: "app",
			fac: protocol.FacUser, sev: protocol.SevNotice, text: "line one\nline two",
			origin: "2026-11-22T02:50:57Z", time: "2026-11-22T02:50:57Z", timeFilled: "year,zone"}},
		{name: "rfc3164 no hostname", in: "<13>Nov 22 02:50:57 root: hi", want: want{parsed: true, host: "192.0.2.10", app: "root",
			fac: protocol.FacUser, sev: protocol.SevNotice, text: "hi",
			origin: "2026-11-22T02:50:57Z", time: "2026-11-22T02:50:57Z", timeFilled: "year,zone"}},
		{name: "rfc3164 December received in January", in: "<13>Dec 31 23:59:50 vm app: old",
			received: time.Date(2027, 1, 1, 0, 0, 5, 0, time.UTC), want: want{parsed: true, host: "vm", app: "app",
				fac: protocol.FacUser, sev: protocol.SevNotice, text: "old",
				origin: "2026-12-31T23:59:50Z", time: "2026-12-31T23:59:50Z", timeFilled: "year,zone"}},
		{name: "rfc3164 January received in December", in: "<13>Jan  1 00:00:02 vm app: early",
			received: time.Date(2026, 12, 31, 23, 59, 59, 0, time.UTC), want: want{parsed: true, host: "vm", app: "app",
				fac: protocol.FacUser, sev: protocol.SevNotice, text: "early",
				origin: "2027-01-01T00:00:02Z", time: "2027-01-01T00:00:02Z", timeFilled: "year,zone"}},
		{name: "rfc3164 lenient day", in: "<13>Feb 05 10:00:00 vm app: x", want: want{parsed: true, host: "vm", app: "app",
			fac: protocol.FacUser, sev: protocol.SevNotice, text: "x",
			origin: "2026-02-05T10:00:00Z", time: "2026-02-05T10:00:00Z", timeFilled: "year,zone"}},

		// Forms rsyslog and syslog-ng read that go-syslog's machines did
		// not (issue 11), each read as rsyslog 8.2302 reads it.
		{name: "rfc3164 control character", in: "<13>Nov 22 02:50:57 vm app: bell \x07 here", want: want{parsed: true,
			host: "vm", app: "app", fac: protocol.FacUser, sev: protocol.SevNotice, text: "bell \x07 here",
			origin: "2026-11-22T02:50:57Z", time: "2026-11-22T02:50:57Z", timeFilled: "year,zone"}},
		{name: "rfc3164 upper-case month", in: "<13>AUG 10 01:00:00 vm app[1]: x", want: want{parsed: true,
			host: "vm", app: "app", procID: "1", fac: protocol.FacUser, sev: protocol.SevNotice, text: "x",
			origin: "2026-08-10T01:00:00Z", time: "2026-08-10T01:00:00Z", timeFilled: "year,zone"}},
		{name: "rfc3164 unpadded day", in: "<13>Mar 7 01:00:00 vm app: x", want: want{parsed: true,
			host: "vm", app: "app", fac: protocol.FacUser, sev: protocol.SevNotice, text: "x",
			origin: "2026-03-07T01:00:00Z", time: "2026-03-07T01:00:00Z", timeFilled: "year,zone"}},
		{name: "rfc3164 year and a colon after the time", in: "<190>Apr 15 2007 21:28:13: %PIX-6-302014: Teardown TCP", want: want{parsed: true,
			host: "192.0.2.10", app: "%PIX-6-302014", fac: 23, sev: protocol.SevInfo, text: "Teardown TCP",
			origin: "2007-04-15T21:28:13Z", time: "2007-04-15T21:28:13Z", timeFilled: "zone"}},
		{name: "rfc3164 no timestamp", in: "<15> openvpn[2499]: PTHREAD support initialized", want: want{parsed: true,
			host: "192.0.2.10", fac: protocol.FacUser, sev: protocol.SevDebug, text: "openvpn[2499]: PTHREAD support initialized",
			time: "2026-11-22T03:00:00Z", timeFilled: "all"}},
		{name: "rfc3164 space before timestamp", in: "<7> Aug 29 02:00:00 ctld snmpd[2499]: up", want: want{parsed: true,
			host: "ctld", app: "snmpd", procID: "2499", fac: protocol.FacKern, sev: protocol.SevDebug, text: "up",
			origin: "2026-08-29T02:00:00Z", time: "2026-08-29T02:00:00Z", timeFilled: "year,zone"}},
		{name: "rfc3164 fraction of a second", in: "<13>Jan 10 01:00:00.123 vm app: x", want: want{parsed: true,
			host: "vm", app: "app", fac: protocol.FacUser, sev: protocol.SevNotice, text: "x",
			origin: "2026-01-10T01:00:00.123Z", time: "2026-01-10T01:00:00.123Z", timeFilled: "year,zone"}},
		{name: "rfc3164 tag without colon", in: "<13>Jan 10 01:00:00 vm app notag colon", want: want{parsed: true,
			host: "vm", app: "app", fac: protocol.FacUser, sev: protocol.SevNotice, text: "notag colon",
			origin: "2026-01-10T01:00:00Z", time: "2026-01-10T01:00:00Z", timeFilled: "year,zone"}},
		{name: "rfc3164 slash ends the app name", in: "<7>Aug 29 02:00:00 bzorp ctld/snmpd[2499]: x", want: want{parsed: true,
			host: "bzorp", app: "ctld", procID: "2499", fac: protocol.FacKern, sev: protocol.SevDebug, text: "x",
			origin: "2026-08-29T02:00:00Z", time: "2026-08-29T02:00:00Z", timeFilled: "year,zone"}},
		{name: "rfc3164 pam style tag", in: "<86>Jun 14 15:16:01 combo sshd(pam_unix)[19939]: check pass; user unknown", want: want{parsed: true,
			host: "combo", app: "sshd(pam_unix)", procID: "19939", fac: 10, sev: protocol.SevInfo, text: "check pass; user unknown",
			origin: "2026-06-14T15:16:01Z", time: "2026-06-14T15:16:01Z", timeFilled: "year,zone"}},
		{name: "rfc3164 IPv6 hostname", in: "<13>Jan 10 01:00:00 2001:db8::1 app: x", want: want{parsed: true,
			host: "2001:db8::1", app: "app", fac: protocol.FacUser, sev: protocol.SevNotice, text: "x",
			origin: "2026-01-10T01:00:00Z", time: "2026-01-10T01:00:00Z", timeFilled: "year,zone"}},
		{name: "rfc3164 hostname ending in a dash is a tag", in: "<13>Jan 10 01:00:00 host_x- app: y", want: want{parsed: true,
			host: "192.0.2.10", app: "host_x-", fac: protocol.FacUser, sev: protocol.SevNotice, text: "app: y",
			origin: "2026-01-10T01:00:00Z", time: "2026-01-10T01:00:00Z", timeFilled: "year,zone"}},
		{name: "rfc3164 RFC 3339 time without zone is no time", in: "<13>2023-01-02T03:04:05 host app: x", want: want{parsed: true,
			host: "192.0.2.10", app: "2023-01-02T03", fac: protocol.FacUser, sev: protocol.SevNotice, text: "04:05 host app: x",
			time: "2026-11-22T03:00:00Z", timeFilled: "all"}},
		{name: "rfc3164 priority and one word", in: "<11>hello", want: want{parsed: true,
			host: "hello", fac: protocol.FacUser, sev: protocol.SevErr, text: "",
			time: "2026-11-22T03:00:00Z", timeFilled: "all"}},
		{name: "rfc3164 without priority", in: "Jan 10 01:00:00 host app: no pri", want: want{parsed: true,
			host: "host", app: "app", fac: protocol.FacUser, sev: protocol.SevNotice, text: "no pri",
			origin: "2026-01-10T01:00:00Z", time: "2026-01-10T01:00:00Z", timeFilled: "year,zone"}},
		{name: "rfc5424 nine fraction digits (Go's RFC3339Nano)", in: "<13>1 2023-01-02T03:04:05.123456789Z host app 12 ID1 - nano", want: want{parsed: true,
			host: "host", app: "app", procID: "12", msgID: "ID1", fac: protocol.FacUser, sev: protocol.SevNotice, text: "nano",
			origin: "2023-01-02T03:04:05.123456789Z", time: "2023-01-02T03:04:05.123456789Z"}},
		{name: "rfc5424 seven fraction digits", in: "<13>1 2023-01-02T03:04:05.1234567+02:00 host app 1 - - x", want: want{parsed: true,
			host: "host", app: "app", procID: "1", fac: protocol.FacUser, sev: protocol.SevNotice, text: "x",
			origin: "2023-01-02T03:04:05.1234567+02:00", time: "2023-01-02T01:04:05.1234567Z"}},
		{name: "rfc5424 msgid longer than 32", in: "<13>1 2023-01-02T03:04:05Z host app - ID47-ThisMsgIdIsWayTooLongForRfc5424 - long", want: want{parsed: true,
			host: "host", app: "app", msgID: "ID47-ThisMsgIdIsWayTooLongForRfc5424", fac: protocol.FacUser, sev: protocol.SevNotice, text: "long",
			origin: "2023-01-02T03:04:05Z", time: "2023-01-02T03:04:05Z"}},

		// Input that does not parse is still an event.
		{name: "garbage", in: "hello world", want: want{errHas: "no priority and no timestamp: not a syslog header [col 0]",
			host: "192.0.2.10", fac: protocol.FacUser, sev: protocol.SevNotice, text: "hello world",
			time: "2026-11-22T03:00:00Z", timeFilled: "all"}},
		{name: "rfc5424 version 2 is read as rfc3164", in: "<13>2 2026-11-22T02:50:57Z vm app - - - x", want: want{parsed: true,
			host: "2", app: "2026-11-22T02", fac: protocol.FacUser, sev: protocol.SevNotice, text: "50:57Z vm app - - - x",
			time: "2026-11-22T03:00:00Z", timeFilled: "all"}},
		{name: "rsyslog ForwardFormat ending after the timestamp", in: "<30>2026-11-22T03:04:05.123456+01:00 ",
			want: want{parsed: true, host: "192.0.2.10", fac: protocol.FacDaemon, sev: protocol.SevInfo, text: "",
				origin: "2026-11-22T03:04:05.123456+01:00", time: "2026-11-22T02:04:05.123456Z"}},
		{name: "rfc5424 ending after the app name", in: "<13>1 2026-11-22T02:50:57Z vm app", want: want{errHas: "expecting an app name or '-' and a space [col 33]",
			host: "vm", fac: protocol.FacUser, sev: protocol.SevNotice, text: "<13>1 2026-11-22T02:50:57Z vm app",
			origin: "2026-11-22T02:50:57Z", time: "2026-11-22T02:50:57Z"}},
		{name: "PRI of four digits", in: "<1234>Jan 10 01:00:00 host app: x", want: want{errHas: "priority value",
			host: "192.0.2.10", fac: protocol.FacUser, sev: protocol.SevNotice, text: "<1234>Jan 10 01:00:00 host app: x",
			time: "2026-11-22T03:00:00Z", timeFilled: "all"}},
		{name: "empty PRI", in: "<>Jan 10 01:00:00 host app: x", want: want{errHas: "priority value",
			host: "192.0.2.10", fac: protocol.FacUser, sev: protocol.SevNotice, text: "<>Jan 10 01:00:00 host app: x",
			time: "2026-11-22T03:00:00Z", timeFilled: "all"}},
		{name: "empty", in: "", want: want{errHas: "[col 0]",
			host: "192.0.2.10", fac: protocol.FacUser, sev: protocol.SevNotice, text: "",
			time: "2026-11-22T03:00:00Z", timeFilled: "all"}},
		{name: "rfc5424 bad SD keeps header", in: `<11>1 2026-11-22T02:50:57Z vm app 7 - [bad sd`, want: want{errHas: "structured data",
			host: "vm", app: "app", procID: "7", fac: protocol.FacUser, sev: protocol.SevErr, text: `<11>1 2026-11-22T02:50:57Z vm app 7 - [bad sd`,
			origin: "2026-11-22T02:50:57Z", time: "2026-11-22T02:50:57Z"}},
		{name: "rfc5424 bad timestamp", in: `<13>1 2026-13-45T10:00:00Z vm app - - - x`, want: want{errHas: "[col ",
			host: "192.0.2.10", fac: protocol.FacUser, sev: protocol.SevNotice, text: `<13>1 2026-13-45T10:00:00Z vm app - - - x`,
			time: "2026-11-22T03:00:00Z", timeFilled: "all"}},
		{name: "PRI out of range", in: "<192>1 - - - - - - x", want: want{errHas: "priority value",
			host: "192.0.2.10", fac: protocol.FacUser, sev: protocol.SevNotice, text: "<192>1 - - - - - - x",
			time: "2026-11-22T03:00:00Z", timeFilled: "all"}},
		// Issue 11's three bugs: an empty MSG got a piece of the tag, a
		// colon without a space kept the tag in MSG, and a priority
		// without its '>' still set facility and severity.
		{name: "rfc3164 empty MSG after tag with procid", in: "<13>Nov 22 01:00:00 vm app[1]: ", want: want{parsed: true,
			host: "vm", app: "app", procID: "1", fac: protocol.FacUser, sev: protocol.SevNotice, text: "",
			origin: "2026-11-22T01:00:00Z", time: "2026-11-22T01:00:00Z", timeFilled: "year,zone"}},
		{name: "rfc3164 empty MSG after tag", in: "<13>Nov 22 01:00:00 vm app: ", want: want{parsed: true,
			host: "vm", app: "app", fac: protocol.FacUser, sev: protocol.SevNotice, text: "",
			origin: "2026-11-22T01:00:00Z", time: "2026-11-22T01:00:00Z", timeFilled: "year,zone"}},
		{name: "rfc3164 colon without space after procid", in: "<13>Nov 22 01:00:00 vm app[1]:x y", want: want{parsed: true,
			host: "vm", app: "app", procID: "1", fac: protocol.FacUser, sev: protocol.SevNotice, text: "x y",
			origin: "2026-11-22T01:00:00Z", time: "2026-11-22T01:00:00Z", timeFilled: "year,zone"}},
		{name: "rfc3164 colon without space", in: "<13>Nov 22 01:00:00 vm app:x", want: want{parsed: true,
			host: "vm", app: "app", fac: protocol.FacUser, sev: protocol.SevNotice, text: "x",
			origin: "2026-11-22T01:00:00Z", time: "2026-11-22T01:00:00Z", timeFilled: "year,zone"}},
		{name: "PRI without its closing bracket", in: "<189 Feb  1 01:00:00 vm app: hi", want: want{errHas: "priority value",
			host: "192.0.2.10", fac: protocol.FacUser, sev: protocol.SevNotice, text: "<189 Feb  1 01:00:00 vm app: hi",
			time: "2026-11-22T03:00:00Z", timeFilled: "all"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewParser(tt.loc)
			p.SetSender(testSender)
			received := tt.received
			if received.IsZero() {
				received = testReceived
			}
			ev := p.Parse([]byte(tt.in), received)
			w := tt.want
			check := func(field string, got, want any) {
				t.Helper()
				if got != want {
					t.Errorf("%s = %#v, want %#v", field, got, want)
				}
			}
			check("Parsed", ev.Parsed, w.parsed)
			if w.errHas == "" {
				check("ParseError", ev.ParseError, "")
			} else if !strings.Contains(ev.ParseError, w.errHas) {
				t.Errorf("ParseError = %q, want it to contain %q", ev.ParseError, w.errHas)
			}
			check("Source", ev.Source, protocol.SourceSyslog)
			check("Raw", ev.Raw, tt.in)
			check("Origin.Host", ev.Origin.Host, w.host)
			check("Origin.System", ev.Origin.System, w.host)
			check("Origin.Addr", ev.Origin.Addr, "192.0.2.10")
			check("App", ev.App, w.app)
			check("ProcID", ev.ProcID, w.procID)
			check("MsgID", ev.MsgID, w.msgID)
			check("Facility", ev.Facility, w.fac)
			check("Severity", ev.Severity, w.sev)
			check("Text", ev.Text, w.text)
			check("Received", ev.Received, received)
			check("Received location", ev.Received.Location(), time.UTC)
			origin := ""
			if ev.OriginTime != nil {
				origin = ev.OriginTime.Format(time.RFC3339Nano)
			}
			check("OriginTime", origin, w.origin)
			check("Time", ev.Time.Format(time.RFC3339Nano), w.time)
			check("Time location", ev.Time.Location(), time.UTC)
			check("TimeFilled", ev.TimeFilled, w.timeFilled)
		})
	}
}

func TestParseIncomplete(t *testing.T) {
	p := NewParser(nil)
	p.SetSender(testSender)
	cause := errors.New("framing: stream ended inside a frame: 20 bytes at offset 0")
	ev := p.ParseIncomplete([]byte("<13>1 2026-11-22T02:"), testReceived, cause)
	if ev.Parsed || !strings.HasPrefix(ev.ParseError, cause.Error()+"; ") || !strings.Contains(ev.ParseError, "[col ") {
		t.Errorf("Parsed, ParseError = %v, %q; want false and the cause then the parser's error", ev.Parsed, ev.ParseError)
	}
	if ev.Text != "<13>1 2026-11-22T02:" || ev.Raw != ev.Text {
		t.Errorf("Text, Raw = %q, %q", ev.Text, ev.Raw)
	}
	// A cut that happens to parse is still not a whole message.
	ev = p.ParseIncomplete([]byte("<13>1 - vm app - - - first half of"), testReceived, cause)
	if ev.Parsed || ev.ParseError != cause.Error() || ev.Text != "<13>1 - vm app - - - first half of" || ev.Origin.Host != "vm" {
		t.Errorf("got Parsed %v, ParseError %q, Text %q, Host %q", ev.Parsed, ev.ParseError, ev.Text, ev.Origin.Host)
	}
}

func TestParseSender(t *testing.T) {
	p := NewParser(nil)
	for _, tt := range []struct {
		name string
		addr netip.Addr
		want string
	}{
		{"unknown", netip.Addr{}, ""},
		{"ipv4", netip.MustParseAddr("198.51.100.7"), "198.51.100.7"},
		{"ipv4-mapped ipv6", netip.MustParseAddr("::ffff:198.51.100.8"), "198.51.100.8"},
		{"ipv6", netip.MustParseAddr("2001:db8::1"), "2001:db8::1"},
		{"back to unknown", netip.Addr{}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p.SetSender(tt.addr)
			ev := p.Parse([]byte("<13>1 - - - - - - x"), testReceived)
			if ev.Origin.Addr != tt.want || ev.Origin.Host != tt.want {
				t.Errorf("Addr, Host = %q, %q; want %q", ev.Origin.Addr, ev.Origin.Host, tt.want)
			}
		})
	}
}

func TestIsRFC5424(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want bool
	}{
		{"<13>1 ", true},
		{"<0>1 x", true},
		{"<013>1 x", true},
		{"<191>1 x", true},
		{"<13>2 x", false}, // rsyslog reads other versions as RFC 3164
		{"<13>10 x", false},
		{"<192>1 x", false},
		{"<>1 x", false},
		{"<13>1", false},
		{"<13>0 x", false},
		{"<13>Nov 22", false},
		{"<30>2026-11-22T03:04:05Z", false},
		{"<1234>1 x", false},
		{"13>1 x", false},
		{"", false},
	} {
		t.Run(tt.in, func(t *testing.T) {
			if got := isRFC5424([]byte(tt.in)); got != tt.want {
				t.Errorf("isRFC5424(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

// TestParseAllocs keeps the per-message allocations in check: the Raw
// string, of which every field is a substring, and, amortised, the event
// and time slabs.
func TestParseAllocs(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   string
		max  float64
	}{
		{"rfc5424", bench5424, 1.1},
		{"rfc3164", bench3164, 1.1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := NewParser(nil)
			p.SetSender(testSender)
			in := []byte(tt.in)
			got := testing.AllocsPerRun(1000, func() { p.Parse(in, testReceived) })
			if got > tt.max {
				t.Errorf("%v allocations per message, want at most %v", got, tt.max)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		lineLogger5424, lineLogger5424SD, lineLogger5424NoTim, lineLogger3164, lineLogger3164Prio,
		lineSyslogNG, lineSyslogNGSD, lineRsyslogProto23, lineRsyslogForward, lineRsyslogTradFwd,
		lineRFC5424BOM, lineRFC5424Offset, "<13>1 - - - - - - a\nb", "<11>hello", "hello", "",
		"<13>Nov 22 02:50:57 vm app: bell \x07", "<30>2026-11-22T03:04:05.1234567890123Z h a: x",
	} {
		f.Add([]byte(s))
	}
	// And the corpus of real-world messages TestRsyslogAgreement uses.
	files, _ := filepath.Glob(filepath.Join("testdata", "corpus", "*.txt"))
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			if s, err := strconv.Unquote(line); err == nil {
				line = s
			}
			if line != "" && !strings.HasPrefix(line, "#") {
				f.Add([]byte(line))
			}
		}
	}
	p := NewParser(nil)
	p.SetSender(testSender)
	f.Fuzz(func(t *testing.T, in []byte) {
		ev := p.Parse(in, testReceived)
		if ev == nil {
			t.Fatal("no event")
		}
		if ev.Raw != string(in) {
			t.Fatalf("Raw = %q, want %q", ev.Raw, in)
		}
		if ev.Source != protocol.SourceSyslog || ev.Received != testReceived {
			t.Fatalf("Source, Received = %q, %v", ev.Source, ev.Received)
		}
		if ev.Parsed == (ev.ParseError != "") {
			t.Fatalf("Parsed %v with ParseError %q", ev.Parsed, ev.ParseError)
		}
		if !ev.Parsed && ev.Text != string(trimEnd(in)) {
			t.Fatalf("unparsed Text = %q, want the whole message", ev.Text)
		}
		if !strings.Contains(ev.Raw, ev.Text) {
			t.Fatalf("Text %q is not part of Raw %q", ev.Text, ev.Raw)
		}
		if ev.Facility > 23 || ev.Severity > protocol.SevDebug {
			t.Fatalf("Facility, Severity = %d, %d", ev.Facility, ev.Severity)
		}
		// (A sender may claim year 1: only the receive time is never zero.)
		if ev.OriginTime == nil && ev.Time.IsZero() || ev.Time.Location() != time.UTC {
			t.Fatalf("Time = %v", ev.Time)
		}
		if (ev.OriginTime == nil) != (ev.TimeFilled == "all") {
			t.Fatalf("OriginTime %v with TimeFilled %q", ev.OriginTime, ev.TimeFilled)
		}
		if ev.Origin.Host == "" || ev.Origin.System != ev.Origin.Host {
			t.Fatalf("Origin = %+v", ev.Origin)
		}
		for _, el := range ev.SD {
			if strings.HasSuffix(el.ID, regionSuffix) {
				t.Fatalf("SD-ID %q, which only the region may write", el.ID)
			}
		}
		if hasDuplicateID(ev.SD) {
			t.Fatalf("an SD-ID twice in %+v", ev.SD)
		}
		if ev.Parsed && utf8.Valid(in) && !utf8.ValidString(ev.Text) {
			t.Fatalf("Text %q not valid UTF-8", ev.Text)
		}
		// The JSON form is built for every event: it must not panic.
		protocol.AppendEventJSON(nil, ev)
	})
}

// TestParseStructuredData checks that Parse puts an RFC 5424 message's
// structured data in the event: several elements, escaped '"', '\' and
// ']', in order.
func TestParseStructuredData(t *testing.T) {
	p := NewParser(nil)
	p.SetSender(testSender)
	in := `<165>1 2003-10-11T22:14:15.003Z host app - ID47 [exampleSDID@32473 iut="3" eventSource="App \"x\" [1\]" path="C:\\tmp"][examplePriority@32473 class="high"] text`
	ev := p.Parse([]byte(in), testReceived)
	want := protocol.StructuredData{
		{ID: "exampleSDID@32473", Params: []protocol.SDParam{{Name: "iut", Value: "3"}, {Name: "eventSource", Value: `App "x" [1]`}, {Name: "path", Value: `C:\tmp`}}},
		{ID: "examplePriority@32473", Params: []protocol.SDParam{{Name: "class", Value: "high"}}},
	}
	if !ev.Parsed || ev.Text != "text" || fmt.Sprint(ev.SD) != fmt.Sprint(want) {
		t.Fatalf("Parsed %v, Text %q, SD %+v; want true, \"text\", %+v", ev.Parsed, ev.Text, ev.SD, want)
	}
	for _, in := range []string{lineLogger3164, `<13>1 2026-11-22T02:50:57Z vm app - - - no sd`} {
		if ev := p.Parse([]byte(in), testReceived); ev.SD != nil {
			t.Errorf("%q: SD %+v, want none", in, ev.SD)
		}
	}
}

// TestParseRegionSD: an element a sender sends with an SD-ID the region
// owns (ending in @zbridge: hardcopy@zbridge, status@zbridge) is kept under
// the ID ending in @claimed, so that no rule or client asking for the
// region's element finds what the sender wrote (over TCP, through a relay,
// in a forged datagram); any other SD-ID is kept as it is.
func TestParseRegionSD(t *testing.T) {
	const head = `<13>1 2026-03-01T10:00:00Z zos1 SYSLOG - - `
	for _, tt := range []struct {
		name, sd string
		ids      []string // the SD-IDs of the event's SD, in order; nil: no SD
	}{
		{"hardcopy", `[hardcopy@zbridge type="N" ident="*MASTER*"]`, []string{"hardcopy@claimed"}},
		{"status", `[status@zbridge component="SYSA" status="UP"]`, []string{"status@claimed"}},
		{"among others", `[timeQuality tzKnown="1"][hardcopy@zbridge ident="*MASTER*"][zb@32473 k="v"]`,
			[]string{"timeQuality", "hardcopy@claimed", "zb@32473"}},
		{"only the suffix", `[@zbridge a="1"]`, []string{"@claimed"}},
		{"32 bytes stay 32", `[abcdefghijklmnopqrstuvwx@zbridge a="1"]`, []string{"abcdefghijklmnopqrstuvwx@claimed"}},
		{"the suffix in another case", `[hardcopy@ZBRIDGE ident="x"]`, []string{"hardcopy@ZBRIDGE"}},
		{"the suffix not at the end", `[hardcopy@zbridge.1 ident="x"][a@zbridgex b="1"]`, []string{"hardcopy@zbridge.1", "a@zbridgex"}},
		{"claimed sent as such", `[hardcopy@claimed ident="x"]`, []string{"hardcopy@claimed"}},
		// Renamed, the two would share an SD-ID: malformed, only in Raw.
		{"claimed sent twice", `[hardcopy@zbridge ident="x"][hardcopy@claimed ident="y"]`, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := NewParser(nil)
			p.SetSender(testSender)
			in := head + tt.sd + " text"
			ev := p.Parse([]byte(in), testReceived)
			if !ev.Parsed || ev.Text != "text" || ev.Raw != in {
				t.Fatalf("Parsed %v (%s), Text %q, Raw %q", ev.Parsed, ev.ParseError, ev.Text, ev.Raw)
			}
			var ids []string
			for _, el := range ev.SD {
				ids = append(ids, el.ID)
			}
			if fmt.Sprint(ids) != fmt.Sprint(tt.ids) || (ev.SD == nil) != (tt.ids == nil) {
				t.Fatalf("SD-IDs %q, want %q", ids, tt.ids)
			}
			for _, term := range []string{"sd.hardcopy@zbridge.ident=*", "sd.status@zbridge.status=*"} {
				if f, err := protocol.ParseFilter(term); err != nil {
					t.Fatal(err)
				} else if f.Match(ev) {
					t.Errorf("%s matches the sender's structured data %+v", term, ev.SD)
				}
			}
		})
	}
}

// TestParseHostile: what a sender can put in a header cannot make an event
// no client can read, nor carry bytes into a field that its rules exclude,
// nor take a frame's size into a header field.
func TestParseHostile(t *testing.T) {
	p := NewParser(nil)
	p.SetSender(testSender)
	for _, tt := range []struct {
		name, in   string
		parsed     bool
		timeFilled string
		host       string
	}{
		{"year 10000 in UTC", "<13>1 9999-12-31T23:59:59-01:00 h a - - - x", true, "all", "h"},
		{"year 0 in UTC", "<13>1 0-1-1T0:0:0+01:00 h a - - - x", true, "all", "h"},
		{"year 1", "<13>1 1-1-1T1:0:0+01:00 h a - - - x", true, "", "h"},
		{"rfc3164 year 9999", "<13>9999 Dec 31 23:59:59 h a: x", true, "zone", "h"},
		{"IPv6 host with a zone", "<13>Jan  1 00:00:00 fe80::1%\x1b[2J\x07 app: x", true, "year,zone", "192.0.2.10"},
		{"hostname of 256 bytes", "<13>1 - " + strings.Repeat("h", 256) + " a - - - x", false, "all", "192.0.2.10"},
		{"msgid of 255 bytes", "<13>1 - h a - " + strings.Repeat("m", 255) + " - x", true, "all", "h"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ev := p.Parse([]byte(tt.in), testReceived)
			if ev.Parsed != tt.parsed || ev.TimeFilled != tt.timeFilled || ev.Origin.Host != tt.host {
				t.Fatalf("Parsed %v (%s), TimeFilled %q, Host %q; want %v, %q, %q", ev.Parsed, ev.ParseError,
					ev.TimeFilled, ev.Origin.Host, tt.parsed, tt.timeFilled, tt.host)
			}
			var f protocol.Frame
			if err := protocol.Decode(protocol.AppendEventFrame(nil, ev), &f); err != nil {
				t.Fatalf("the event's frame does not decode: %v", err)
			}
		})
	}
}
