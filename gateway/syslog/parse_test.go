package syslog

import (
	"errors"
	"net/netip"
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

		// Input that does not parse is still an event.
		{name: "garbage", in: "hello world", want: want{errHas: "expecting a priority value within angle brackets [col 0]",
			host: "192.0.2.10", fac: protocol.FacUser, sev: protocol.SevNotice, text: "hello world",
			time: "2026-11-22T03:00:00Z", timeFilled: "all"}},
		{name: "empty", in: "", want: want{errHas: "[col 0]",
			host: "192.0.2.10", fac: protocol.FacUser, sev: protocol.SevNotice, text: "",
			time: "2026-11-22T03:00:00Z", timeFilled: "all"}},
		{name: "rfc3164 without timestamp keeps PRI", in: "<11>hello", want: want{errHas: "[col 4]",
			host: "192.0.2.10", fac: protocol.FacUser, sev: protocol.SevErr, text: "<11>hello",
			time: "2026-11-22T03:00:00Z", timeFilled: "all"}},
		{name: "rfc5424 bad SD keeps header", in: `<11>1 2026-11-22T02:50:57Z vm app 7 - [bad sd`, want: want{errHas: "structured data",
			host: "vm", app: "app", procID: "7", fac: protocol.FacUser, sev: protocol.SevErr, text: `<11>1 2026-11-22T02:50:57Z vm app 7 - [bad sd`,
			origin: "2026-11-22T02:50:57Z", time: "2026-11-22T02:50:57Z"}},
		{name: "rfc5424 bad timestamp", in: `<13>1 2026-13-45T10:00:00Z vm app - - - x`, want: want{errHas: "[col ",
			host: "192.0.2.10", fac: protocol.FacUser, sev: protocol.SevNotice, text: `<13>1 2026-13-45T10:00:00Z vm app - - - x`,
			time: "2026-11-22T03:00:00Z", timeFilled: "all"}},
		{name: "rfc3164 control character", in: "<13>Nov 22 02:50:57 vm app: bell \x07 here", want: want{errHas: "control character 0x07 [col 33]",
			host: "vm", app: "app", fac: protocol.FacUser, sev: protocol.SevNotice, text: "<13>Nov 22 02:50:57 vm app: bell \x07 here",
			origin: "2026-11-22T02:50:57Z", time: "2026-11-22T02:50:57Z", timeFilled: "year,zone"}},
		{name: "rsyslog ForwardFormat error column after fraction", in: "<30>2026-11-22T03:04:05.123456+01:00 ",
			want: want{errHas: "expecting an hostname (from 1 to max 255 US-ASCII characters) [col 37]", host: "192.0.2.10",
				fac: protocol.FacDaemon, sev: protocol.SevInfo, text: "<30>2026-11-22T03:04:05.123456+01:00 ",
				origin: "2026-11-22T03:04:05.123456+01:00", time: "2026-11-22T02:04:05.123456Z"}},
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
		{"<191>999 x", true},
		{"<13>10 x", true},
		{"<13>1", false},
		{"<13>0 x", false},
		{"<13>1000 x", false},
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

func TestShiftColumn(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"bad thing [col 30]", "bad thing [col 37]"},
		{"bad thing [col 19]", "bad thing [col 26]"},
		{"bad thing [col 18]", "bad thing [col 18]"},
		{"no column", "no column"},
		{"odd [col x]", "odd [col x]"},
	} {
		t.Run(tt.in, func(t *testing.T) {
			if got := shiftColumn(errors.New(tt.in), 19, 7).Error(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestParseAllocs keeps the per-message allocations in check: the parser's
// own are the Raw string and, amortised, the event slabs; the rest are
// go-syslog's (the message struct and one string per field).
func TestParseAllocs(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   string
		max  float64
	}{
		{"rfc5424", bench5424, 10},
		{"rfc3164", bench3164, 9},
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
		if ev.Time.IsZero() || ev.Time.Location() != time.UTC {
			t.Fatalf("Time = %v", ev.Time)
		}
		if (ev.OriginTime == nil) != (ev.TimeFilled == "all") {
			t.Fatalf("OriginTime %v with TimeFilled %q", ev.OriginTime, ev.TimeFilled)
		}
		if ev.Origin.Host == "" || ev.Origin.System != ev.Origin.Host {
			t.Fatalf("Origin = %+v", ev.Origin)
		}
		if ev.Parsed && utf8.Valid(in) && !utf8.ValidString(ev.Text) {
			t.Fatalf("Text %q not valid UTF-8", ev.Text)
		}
		// The JSON form is built for every event: it must not panic.
		protocol.AppendEventJSON(nil, ev)
	})
}
