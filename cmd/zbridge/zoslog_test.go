//go:build !lean

package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zbridge/zbridge/gateway/syslog"
	"github.com/zbridge/zbridge/gateway/syslog/framing"
	"github.com/zbridge/zbridge/internal/peer"
	"github.com/zbridge/zbridge/protocol"
)

// The real hardcopy logs in package zos's test data (each file names its
// source).
var zoslogFiles = []string{
	filepath.Join("..", "..", "zos", "testdata", "hardcopy", "healthchecker-vbt1.txt"),
	filepath.Join("..", "..", "zos", "testdata", "hardcopy", "century-reference.txt"),
	filepath.Join("..", "..", "zos", "testdata", "hardcopy", "explorer-jes-mv2e.txt"),
}

// zoslogEvent is what an event made from one record must say.
type zoslogEvent struct {
	host, app, msgid, time, text string
	sev                          protocol.Severity
	sd                           map[string]string // hardcopy@claimed parameters checked
}

// zoslogWant are the records of zoslogFiles, in order.
var zoslogWant = []zoslogEvent{
	{"VBT1", "SYSLOG", "", "2022-05-01T21:20:20.03Z", "F HZSPROC,LOGGER=ON,LOGSTREAMNAME=HZS.HEALTH.CHECKER.HISTORY", protocol.SevNotice,
		map[string]string{"type": "N", "request": "C", "console": "MCONVBT1", "date": "22121", "clock": "21:20:20.03", "lines": "1"}},
	{"VBT1", "SYSLOG", "IEF196I", "2022-05-01T21:20:20.7Z", "IEF196I IGD101I SMS ALLOCATED TO DDNAME (SYS00009)", protocol.SevNotice, nil},
	{"VBT1", "SYSLOG", "IEF196I", "2022-05-01T21:20:20.7Z", "IEF196I         DSN (IXGLOGR.HZS.HEALTH.CHECKER.HISTORY.VBTPLEX  )", protocol.SevNotice, nil},
	{"VBT1", "SYSLOG", "IEF196I", "2022-05-01T21:20:20.71Z", "IEF196I         STORCLAS (SCLOGR) MGMTCLAS (        ) DATACLAS (", protocol.SevNotice, nil},
	{"VBT1", "SYSLOG", "IEF196I", "2022-05-01T21:20:20.71Z", "IEF196I )", protocol.SevNotice, nil},
	{"VBT1", "SYSLOG", "IEF196I", "2022-05-01T21:20:20.71Z", "IEF196I         VOL SER NOS FOR DATA COMPONENT= LOGR01", protocol.SevNotice, nil},
	{"VBT1", "SYSLOG", "IXG283I", "2022-05-01T21:20:21.52Z", "IXG283I STAGING DATASET IXGLOGR.HZS.HEALTH.CHECKER.HISTORY.VBTPLEX\n" +
		"ALLOCATED NEW FOR LOGSTREAM HZS.HEALTH.CHECKER.HISTORY\nCISIZE=4KB, SIZE=250MB,320KB", protocol.SevNotice,
		map[string]string{"type": "M", "lid": "602", "lines": "3", "flags": "00000290"}},
	{"VBT1", "SYSLOG", "IEF196I", "2022-05-01T21:20:21.64Z", "IEF196I IGD103I SMS ALLOCATED TO DDNAME SYS00010", protocol.SevNotice, nil},
	{"VBT1", "STC05049", "HZS0344I", "2022-05-01T21:20:22.25Z", "HZS0344I THE LOGGER REQUEST HAS COMPLETED.\n" +
		"LOG STREAM HZS.HEALTH.CHECKER.HISTORY IS CONNECTED", protocol.SevNotice, map[string]string{"lid": "604", "lines": "2"}},
	{"JG0", "SYSLOG", "", "2019-09-10T23:13:09.44Z", "D LOGGER,L", protocol.SevNotice,
		map[string]string{"date": "2019253", "ident": "RENJINCN"}},
	{"MV2E", "SYSLOG", "", "2017-04-05T14:10:45.94Z", "$DOUTDEF", protocol.SevNotice, map[string]string{"console": "*AXR022E"}},
	{"MV2E", "SYSLOG", "$HASP836", "2017-04-05T14:10:45.94Z", "$HASP836 OUTDEF\n" +
		"$HASP836 OUTDEF  COPIES=255,DMNDSET=NO,JOENUM=20000,\n" +
		"$HASP836         JOEFREE=19315,JOEWARN=80,OUTTIME=CREATE,\n" +
		"$HASP836         PRTYLOW=2,PRTYHIGH=10,PRTYOUT=NO,PRYORATE=0,\n" +
		"$HASP836         SEGLIM=100,STDFORM=STD,USERSET=NO,\n" +
		"$HASP836         JOERBLDQ=NONE,DSLIMIT=10M,SAPI_OPT=NO,WS_OPT=NO", protocol.SevNotice,
		map[string]string{"type": "M", "request": "R", "lid": "530", "lines": "6"}},
	{"MV2E", "SYSLOG", "", "2017-04-05T14:10:45.94Z", "$DQ", protocol.SevNotice, nil},
	{"MV2E", "SYSLOG", "$HASP647", "2017-04-05T14:10:45.94Z", "$HASP647      1 XEQ A        MV2E", protocol.SevNotice, nil},
}

// checkZoslogEvents checks evs, as the region's syslog parser reads what
// zoslog sent, against zoslogWant. zoslog sends the columns in
// hardcopy@zbridge; the region keeps a sender's element with its own
// SD-ID as hardcopy@claimed (package syslog), and only that matches.
func checkZoslogEvents(t *testing.T, evs []protocol.Event) {
	t.Helper()
	if len(evs) != len(zoslogWant) {
		t.Fatalf("%d events, want %d", len(evs), len(zoslogWant))
	}
	for i, w := range zoslogWant {
		e := evs[i]
		if !e.Parsed || e.Source != protocol.SourceSyslog || e.Origin.Host != w.host || e.App != w.app || e.MsgID != w.msgid ||
			e.Time.Format(time.RFC3339Nano) != w.time || e.Text != w.text || e.Severity != w.sev || e.Facility != protocol.FacUser ||
			e.TimeFilled != "" {
			t.Fatalf("event %d: parsed %v (%s) source %s host %q app %q msgid %q time %s filled %q severity %v facility %v\ntext %q\n"+
				"want host %q app %q msgid %q time %s severity %v facility user\ntext %q",
				i, e.Parsed, e.ParseError, e.Source, e.Origin.Host, e.App, e.MsgID, e.Time.Format(time.RFC3339Nano), e.TimeFilled,
				e.Severity, e.Facility, e.Text, w.host, w.app, w.msgid, w.time, w.sev, w.text)
		}
		if len(e.SD) != 1 || e.SD[0].ID != "hardcopy@claimed" {
			t.Fatalf("event %d: structured data %v", i, e.SD)
		}
		for terms, want := range map[string]bool{"sd.hardcopy@claimed.lines=*": true, "sd.hardcopy@zbridge.lines=*": false} {
			if f, err := protocol.ParseFilter(terms); err != nil {
				t.Fatal(err)
			} else if f.Match(&e) != want {
				t.Fatalf("event %d: %s matches: %v, want %v", i, terms, !want, want)
			}
		}
		got := map[string]string{}
		for _, p := range e.SD[0].Params {
			got[p.Name] = p.Value
		}
		for k, v := range w.sd {
			if got[k] != v {
				t.Fatalf("event %d: hardcopy@claimed %s=%q, want %q (all: %v)", i, k, got[k], v, got)
			}
		}
	}
}

// TestZoslogMessages runs the subcommand in process against a listener and
// reads what it sent with the region's own framing and parser.
func TestZoslogMessages(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	frames := make(chan [][]byte, 1)
	go func() {
		var out [][]byte
		defer func() { frames <- out }()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		sc := framing.NewScanner(c, 1<<20)
		for {
			f, err := sc.Next()
			if err != nil {
				return
			}
			out = append(out, bytes.Clone(f))
		}
	}()
	var stdout, stderr bytes.Buffer
	args := append([]string{"zoslog", "--syslog", ln.Addr().String()}, zoslogFiles...)
	if code := run(args, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
	}
	var got [][]byte
	select {
	case got = <-frames:
	case <-time.After(30 * time.Second):
		t.Fatal("the listener did not see the connection end")
	}
	p := syslog.NewParser(time.UTC)
	evs := make([]protocol.Event, len(got))
	for i, f := range got {
		if !bytes.Contains(f, []byte(" [hardcopy@zbridge ")) {
			t.Fatalf("message %d sent without its hardcopy@zbridge element: %q", i, f)
		}
		evs[i] = *p.Parse(f, time.Now())
	}
	checkZoslogEvents(t, evs)
	checkZoslogSummary(t, stderr.String())
}

// checkZoslogSummary checks the summary zoslogFiles give.
func checkZoslogSummary(t *testing.T, summary string) {
	t.Helper()
	for _, want := range []string{
		"healthchecker-vbt1.txt: 9 records (12 lines) sent, 2 lines skipped",
		"century-reference.txt: 1 records (1 lines) sent, 2 lines skipped",
		"explorer-jes-mv2e.txt:3: skipped: zos: continuation line of a message not seen (record type E, line ID 528)",
		"explorer-jes-mv2e.txt: 4 records (9 lines) sent, 3 lines skipped",
		fmt.Sprintf("zbridge zoslog: %d records sent to ", len(zoslogWant)),
		", 7 lines skipped",
	} {
		if !strings.Contains(summary, want) {
			t.Errorf("the summary does not say %q:\n%s", want, summary)
		}
	}
}

func TestZoslogMessageFields(t *testing.T) {
	// Severity: action messages are warnings.
	for _, tc := range []struct {
		line string
		sev  protocol.Severity
	}{
		{"N 0000000 SYS1     22121 21:20:20.70 JOB00012 00000094 *IEF233A M 0580,VOL001", protocol.SevWarning},
		{"W 0000000 SYS1     22121 21:20:20.70 JOB00012 00000094  01 IEF238D PAYROLL - REPLY DEVICE NAME", protocol.SevWarning},
		{"N 0000000 SYS1     22121 21:20:20.70          00000090  IXC105E SYSPLEX PARTITIONING", protocol.SevWarning},
		{"N 0000000 SYS1     22121 21:20:20.70          00000090  IEF403I PAYROLL - STARTED", protocol.SevNotice},
	} {
		var stdout, stderr bytes.Buffer
		if code := runZoslogInput(t, tc.line, &stdout, &stderr, "--dry-run"); code != 0 {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
		e := syslog.NewParser(time.UTC).Parse(bytes.TrimSuffix(stdout.Bytes(), []byte("\n")), time.Now())
		if e.Severity != tc.sev || !e.Parsed {
			t.Errorf("%q: severity %v (parsed %v %s), want %v", tc.line, e.Severity, e.Parsed, e.ParseError, tc.sev)
		}
	}
	// --location reads the log's times in that zone; --system keeps one
	// system's records.
	in := "N 0000000 SYS1     22121 21:20:20.70          00000090  IEF403I A\n" +
		"N 0000000 SYS2     22121 21:20:20.71          00000090  IEF403I B\n"
	var stdout, stderr bytes.Buffer
	if code := runZoslogInput(t, in, &stdout, &stderr, "--dry-run", "--location", "Europe/Berlin", "--system", "sys2"); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if strings.Contains(stderr.String(), "unknown time zone") {
		t.Skip("no time zone database")
	}
	if got := stdout.String(); !strings.HasPrefix(got, "<13>1 2022-05-01T19:20:20.71Z SYS2 SYSLOG - IEF403I ") || strings.Count(got, "\n") != 1 {
		t.Fatalf("sent %q", got)
	}
	if !strings.Contains(stderr.String(), "1 records of other systems left out") {
		t.Fatalf("summary: %s", stderr.String())
	}
}

// runZoslogInput runs the subcommand on a file holding in.
func runZoslogInput(t *testing.T, in string, stdout, stderr io.Writer, args ...string) int {
	t.Helper()
	f := filepath.Join(t.TempDir(), "syslog.txt")
	if err := os.WriteFile(f, []byte(in), 0o600); err != nil {
		t.Fatal(err)
	}
	return run(append(append([]string{"zoslog"}, args...), f), stdout, stderr)
}

func TestZoslogNoRegion(t *testing.T) {
	addr := peer.Addr(peer.FreePort(t)) // nothing listens there
	var stdout, stderr bytes.Buffer
	if code := run([]string{"zoslog", "--syslog", addr, zoslogFiles[0]}, &stdout, &stderr); code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "connecting to "+addr) {
		t.Fatalf("stderr does not say it could not connect:\n%s", stderr.String())
	}
	if code := run([]string{"zoslog", "--syslog", addr}, &stdout, &stderr); code != 2 {
		t.Fatalf("no file: exit %d, want 2", code)
	}
}

// TestZoslogE2E: the zbridge binary sends the real logs to a region, and
// zbridge tail gets them back as events.
func TestZoslogE2E(t *testing.T) {
	e2e(t)
	r := startRegion(t)
	cmd := exec.Command(zbridgeBin, append([]string{"zoslog", "--syslog", r.syslog}, zoslogFiles...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("zbridge zoslog: %v; stderr:\n%s", err, stderr.String())
	}
	checkZoslogSummary(t, stderr.String())
	evs := tailEvents(t, "--unsolmsg", r.unsolmsg, "--after", "0", "--format", "json", "--filter", "source=syslog",
		"--count", fmt.Sprint(len(zoslogWant)), "--timeout", "60s")
	checkZoslogEvents(t, evs)
	for _, e := range evs {
		if e.Origin.Addr != "127.0.0.1" {
			t.Fatalf("event from %q, want 127.0.0.1", e.Origin.Addr)
		}
	}
	// Nothing more arrives.
	last := evs[len(evs)-1].ID.String()
	tp := startTail(t, "--unsolmsg", r.unsolmsg, "--after", last, "--filter", "source=syslog", "--count", "1", "--timeout", "2s")
	if code := tp.wait(t, 30*time.Second); code == 0 {
		t.Fatalf("an event arrived after the last expected one: %s", tp.stdout.String())
	}
}
