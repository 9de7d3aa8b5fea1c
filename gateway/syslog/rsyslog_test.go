package syslog_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/gateway/syslog"
	"github.com/zbridge/zbridge/internal/peer"
	"github.com/zbridge/zbridge/protocol"
)

var update = flag.Bool("update", false, "rewrite the generated table of PARSING.md")

// A corpusMsg is one message of testdata/corpus: its bytes and where it is.
type corpusMsg struct {
	file string
	line int
	in   []byte
}

func (m corpusMsg) where() string { return fmt.Sprintf("%s:%d", m.file, m.line) }

// loadCorpus reads testdata/corpus/*.txt: one message a line; '#' starts a
// comment line; a line starting with '"' is a Go string literal (for
// messages with control characters or a leading '#').
func loadCorpus(t *testing.T) []corpusMsg {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "corpus", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("corpus: %v (%d files)", err, len(files))
	}
	sort.Strings(files)
	var msgs []corpusMsg
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
			switch {
			case line == "" || strings.HasPrefix(line, "#"):
				continue
			case strings.HasPrefix(line, `"`):
				s, err := strconv.Unquote(line)
				if err != nil {
					t.Fatalf("%s:%d: %v", f, i+1, err)
				}
				line = s
			}
			msgs = append(msgs, corpusMsg{file: filepath.Base(f), line: i + 1, in: []byte(line)})
		}
	}
	return msgs
}

// octetCounted frames the messages as RFC 6587 octet counting does.
func octetCounted(msgs []corpusMsg) []byte {
	var b bytes.Buffer
	for _, m := range msgs {
		fmt.Fprintf(&b, "%d ", len(m.in))
		b.Write(m.in)
	}
	return b.Bytes()
}

// fields is one message as read, in the form compared.
type fields struct {
	Host, App, ProcID, MsgID, Time, Severity, Facility, Text string
}

var fieldNames = []string{"host", "app", "procid", "msgid", "time", "severity", "facility", "text"}

func (f *fields) get(name string) string {
	return map[string]string{"host": f.Host, "app": f.App, "procid": f.ProcID, "msgid": f.MsgID, "time": f.Time,
		"severity": f.Severity, "facility": f.Facility, "text": f.Text}[name]
}

// rsyslogConf reads octet-counted or LF-framed TCP on port and writes one
// JSON object a message to out: the properties compared, as rsyslog's
// template language names them.
const rsyslogConf = `global(workDirectory="{{dir}}" net.enableDNS="off" parser.escapeControlCharactersOnReceive="off")
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="{{port}}" ruleset="corpus")
template(name="fields" type="list" option.jsonf="on") {
  property(outname="host" name="hostname" format="jsonf")
  property(outname="app" name="app-name" format="jsonf")
  property(outname="procid" name="procid" format="jsonf")
  property(outname="msgid" name="msgid" format="jsonf")
  property(outname="time" name="timereported" dateFormat="rfc3339" format="jsonf")
  property(outname="unix" name="timereported" dateFormat="unixtimestamp" format="jsonf")
  property(outname="subsec" name="timereported" dateFormat="subseconds" format="jsonf")
  property(outname="severity" name="syslogseverity" format="jsonf")
  property(outname="facility" name="syslogfacility" format="jsonf")
  property(outname="msg" name="msg" format="jsonf")
  property(outname="raw" name="rawmsg" format="jsonf")
}
ruleset(name="corpus") { action(type="omfile" file="{{out}}" template="fields") }
`

// rsyslogRecord is one line of rsyslogd's output.
type rsyslogRecord struct {
	Host, App, ProcID, MsgID, Time, Unix, Subsec, Severity, Facility, Msg, Raw string
}

func (r *rsyslogRecord) UnmarshalJSON(b []byte) error {
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	*r = rsyslogRecord{Host: m["host"], App: m["app"], ProcID: m["procid"], MsgID: m["msgid"], Time: m["time"],
		Unix: m["unix"], Subsec: m["subsec"], Severity: m["severity"], Facility: m["facility"], Msg: m["msg"], Raw: m["raw"]}
	return nil
}

// runRsyslog sends the corpus to a real rsyslogd and returns what it read.
func runRsyslog(t *testing.T, msgs []corpusMsg) []rsyslogRecord {
	t.Helper()
	dir := t.TempDir()
	port := peer.FreePort(t)
	out := filepath.Join(dir, "out.json")
	conf := strings.NewReplacer("{{dir}}", dir, "{{port}}", strconv.Itoa(port), "{{out}}", out).Replace(rsyslogConf)
	confPath := filepath.Join(dir, "rsyslog.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := peer.RsyslogCommand(t, confPath)
	cmd.Env = append(cmd.Env, "TZ=UTC") // the zone of RFC 3164 timestamps, as the server below
	cmd.Ready = peer.TCPReady(peer.Addr(port))
	proc := peer.Start(t, cmd)
	sendAll(t, peer.Addr(port), msgs)

	var recs []rsyslogRecord
	deadline := time.Now().Add(60 * time.Second)
	for {
		data, _ := os.ReadFile(out)
		if lines := bytes.Count(data, []byte("\n")); lines >= len(msgs) {
			sc := bufio.NewScanner(bytes.NewReader(data))
			sc.Buffer(nil, 1<<20)
			for sc.Scan() {
				var r rsyslogRecord
				if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
					t.Fatalf("rsyslogd output line %d: %v: %s", len(recs)+1, err, sc.Bytes())
				}
				recs = append(recs, r)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rsyslogd wrote %d of %d messages in 60 s; its log:\n%s", bytes.Count(data, []byte("\n")), len(msgs), proc.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return recs
}

func sendAll(t *testing.T, addr string, msgs []corpusMsg) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(octetCounted(msgs)); err != nil {
		t.Fatal(err)
	}
}

// collector is an Appender that keeps the events.
type collector struct {
	mu  sync.Mutex
	evs []*protocol.Event
}

func (c *collector) Append(_ context.Context, evs []*protocol.Event) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.evs = append(c.evs, evs...)
	return nil
}

func (c *collector) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.evs)
}

// runServer sends the corpus to a SYSLOG server, the region's, and returns
// the events.
func runServer(t *testing.T, msgs []corpusMsg) []*protocol.Event {
	t.Helper()
	col := &collector{}
	log := logrus.New()
	log.SetOutput(io.Discard)
	srv, err := syslog.New(syslog.Config{Appender: col, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	sendAll(t, l.Addr().String(), msgs)
	deadline := time.Now().Add(60 * time.Second)
	for col.len() < len(msgs) {
		if time.Now().After(deadline) {
			t.Fatalf("the server made %d of %d events in 60 s", col.len(), len(msgs))
		}
		time.Sleep(10 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	<-done
	return col.evs
}

// isRFC5424 reports whether rsyslog reads m as RFC 5424 ("<PRI>1 ").
func isRFC5424(in []byte) bool {
	i := bytes.IndexByte(in, '>')
	return len(in) > 0 && in[0] == '<' && i > 1 && i <= 4 && bytes.HasPrefix(in[i+1:], []byte("1 "))
}

// theirFields puts rsyslog's reading in the form compared, with the
// normalisations PARSING.md lists: "-" for an empty app name, procid and
// msgid; no leading space in the text of a message rsyslog read as RFC 3164
// (its MSG keeps the space after the tag); no BOM.
func theirFields(m corpusMsg, r *rsyslogRecord) fields {
	dash := func(s string) string {
		if s == "-" {
			return ""
		}
		return s
	}
	text := r.Msg
	if !isRFC5424(m.in) {
		text = strings.TrimPrefix(text, " ")
	}
	text = strings.TrimPrefix(text, "\ufeff")
	return fields{Host: r.Host, App: dash(r.App), ProcID: dash(r.ProcID), MsgID: dash(r.MsgID), Time: r.Time,
		Severity: r.Severity, Facility: r.Facility, Text: text}
}

func ourFields(ev *protocol.Event) fields {
	return fields{Host: ev.Origin.Host, App: ev.App, ProcID: ev.ProcID, MsgID: ev.MsgID,
		Time: ev.Time.Format(time.RFC3339Nano), Severity: strconv.Itoa(int(ev.Severity)),
		Facility: strconv.Itoa(int(ev.Facility)), Text: ev.Text}
}

// sameTime compares the times: equal instants to the precision rsyslog
// kept (it writes more than six fraction digits wrongly: then seconds);
// for an RFC 3164 timestamp without a year, month, day and clock only (the
// year is inferred differently, see PARSING.md); and the receive times,
// when both used theirs, within a minute.
func sameTime(ev *protocol.Event, r *rsyslogRecord) bool {
	unix, err := strconv.ParseInt(r.Unix, 10, 64)
	if err != nil {
		return false
	}
	theirs := time.Unix(unix, 0).UTC()
	if ev.TimeFilled == "all" {
		d := ev.Time.Sub(theirs)
		return d > -time.Minute && d < time.Minute
	}
	ours := ev.Time
	if strings.Contains(ev.TimeFilled, "year") {
		return ours.Month() == theirs.Month() && ours.Day() == theirs.Day() &&
			ours.Hour() == theirs.Hour() && ours.Minute() == theirs.Minute() && ours.Second() == theirs.Second()
	}
	if ours.Unix() != unix {
		return false
	}
	sub := r.Subsec
	if sub == "" || strings.Trim(sub, "0123456789") != "" || len(sub) > 9 {
		return true // rsyslog wrote no usable fraction
	}
	frac := fmt.Sprintf("%09d", ours.Nanosecond())[:len(sub)]
	n1, _ := strconv.Atoi(frac)
	n2, _ := strconv.Atoi(sub)
	return n1 == n2
}

func absDuration(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// A disagreement is one field read differently.
type disagreement struct {
	where, field, ours, theirs, reason string
}

// reason explains a disagreement by the rules PARSING.md states, or
// returns "" when none applies: such a disagreement fails the test.
func reason(m corpusMsg, ev *protocol.Event, r *rsyslogRecord, field string) string {
	in := m.in
	switch {
	case r.Facility == "invld":
		return "bad-priority"
	case !ev.Parsed && strings.Contains(ev.ParseError, "no priority and no timestamp"):
		return "headerless"
	case !ev.Parsed && isRFC5424(in):
		return "rfc5424-unparsed"
	case isRFC5424(in) && field == "host" && r.Host == "-":
		return "nil-hostname"
	case strings.Count(ev.Origin.Host, ":") >= 2 && !isRFC5424(in):
		return "ipv6-hostname"
	case field == "time" && bytes.Contains(in, []byte(".1560000000000000000")):
		return "long-fraction"
	case bytes.Contains(in, []byte(".1560000000000000000")) && r.App == "2006-11-10T10":
		return "long-fraction"
	}
	return ""
}

// TestRsyslogAgreement feeds the corpus of real-world messages
// (testdata/corpus, each file citing its source) to the real rsyslogd and
// to a SYSLOG server, and compares host, app name, procid, msgid, time,
// severity, facility and text field by field. At least 95% of the fields
// must agree, every disagreement must be one PARSING.md explains, and
// PARSING.md's table of them must be current (-update rewrites it).
func TestRsyslogAgreement(t *testing.T) {
	msgs := loadCorpus(t)
	if len(msgs) < 300 {
		t.Fatalf("corpus of %d messages, want at least 300", len(msgs))
	}
	recs := runRsyslog(t, msgs)
	evs := runServer(t, msgs)
	if len(recs) != len(msgs) || len(evs) != len(msgs) {
		t.Fatalf("%d messages, rsyslogd wrote %d, the server made %d events", len(msgs), len(recs), len(evs))
	}
	var diffs []disagreement
	total := 0
	for i, m := range msgs {
		r, ev := &recs[i], evs[i]
		if ev.Raw != string(m.in) {
			t.Fatalf("%s: event %d is %q, want the message %q (order lost?)", m.where(), i, ev.Raw, m.in)
		}
		theirs, ours := theirFields(m, r), ourFields(ev)
		for _, f := range fieldNames {
			total++
			var same bool
			if f == "time" {
				same = sameTime(ev, r)
			} else {
				same = ours.get(f) == theirs.get(f)
			}
			if !same {
				o, th := ours.get(f), theirs.get(f)
				if f == "time" { // a receive time differs from run to run
					if ev.TimeFilled == "all" {
						o = "(receive time)"
					}
					if u, err := strconv.ParseInt(r.Unix, 10, 64); err == nil && absDuration(ev.Received.Sub(time.Unix(u, 0))) < time.Minute {
						th = "(receive time)"
					}
				}
				diffs = append(diffs, disagreement{m.where(), f, o, th, reason(m, ev, r, f)})
			}
		}
	}
	agree := 100 * float64(total-len(diffs)) / float64(total)
	t.Logf("%d messages, %d fields: %d agree (%.2f%%), %d differ", len(msgs), total, total-len(diffs), agree, len(diffs))
	for _, d := range diffs {
		if d.reason == "" {
			t.Errorf("%s %s: zbridge %q, rsyslog %q: no reason in PARSING.md explains it", d.where, d.field, d.ours, d.theirs)
		}
	}
	if agree < 95 {
		t.Errorf("%.2f%% of fields agree, want at least 95%%", agree)
	}
	checkTable(t, msgs, total, diffs)
}

const (
	tableBegin = "<!-- disagreements: generated by TestRsyslogAgreement -update; do not edit -->"
	tableEnd   = "<!-- end of disagreements -->"
)

// checkTable compares PARSING.md's generated table with diffs, or rewrites
// it under -update.
func checkTable(t *testing.T, msgs []corpusMsg, total int, diffs []disagreement) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n%d messages, %d fields compared, %d agree (%.1f%%).\n\n", tableBegin, len(msgs), total,
		total-len(diffs), 100*float64(total-len(diffs))/float64(total))
	b.WriteString("| message | field | zbridge | rsyslog | reason |\n|---|---|---|---|---|\n")
	cell := func(s string) string {
		s = strconv.Quote(s)
		if len(s) > 60 {
			s = s[:57] + "…\""
		}
		return "`" + strings.ReplaceAll(s, "|", `\|`) + "`"
	}
	for _, d := range diffs {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | [%s](#%s) |\n", d.where, d.field, cell(d.ours), cell(d.theirs), d.reason, d.reason)
	}
	b.WriteString(tableEnd)
	doc, err := os.ReadFile("PARSING.md")
	if err != nil {
		t.Fatal(err)
	}
	i, j := bytes.Index(doc, []byte(tableBegin)), bytes.Index(doc, []byte(tableEnd))
	if i < 0 || j < i {
		t.Fatalf("PARSING.md has no generated table between %q and %q", tableBegin, tableEnd)
	}
	current := string(doc[i : j+len(tableEnd)])
	if current == b.String() {
		return
	}
	if *update {
		out := append(append(append([]byte{}, doc[:i]...), b.String()...), doc[j+len(tableEnd):]...)
		if err := os.WriteFile("PARSING.md", out, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("PARSING.md's table of disagreements is not current: run go test ./gateway/syslog -run TestRsyslogAgreement -update")
}
