package region

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/zbridge/zbridge/gateway/store/memstore"
	"github.com/zbridge/zbridge/gateway/syslog"
	"github.com/zbridge/zbridge/protocol"
)

// TestNormalizeHardcopy sends a real SYSLOG extract (zos/testdata, its
// source cited there), one line a syslog message as z/OS syslogd forwards
// it, through the normalizer: each line an event with its message ID,
// system and time; a continuation line with its message's ID.
func TestNormalizeHardcopy(t *testing.T) {
	f, err := os.Open("../../zos/testdata/hardcopy/healthchecker-vbt1.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st := memstore.New(memstore.Config{})
	defer st.Close()
	n := &normalizer{next: st, hardcopy: true, loc: time.UTC}
	var evs []*protocol.Event
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "#") {
			continue
		}
		evs = append(evs, &protocol.Event{Source: protocol.SourceSyslog, Origin: protocol.Origin{Host: "zos1", System: "zos1"},
			Text: sc.Text(), Parsed: true})
	}
	if err := n.Append(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	got, _, _ := st.Read(context.Background(), protocol.ID{}, 100, nil)
	want := []struct{ msgid, system, time, text string }{
		{"", "VBT1", "2022-05-01T21:20:20.03Z", "F HZSPROC,LOGGER=ON"},
		{"IEF196I", "VBT1", "2022-05-01T21:20:20.7Z", "IEF196I IGD101I SMS ALLOCATED"},
	}
	for i, w := range want {
		e := got[i]
		if e.MsgID != w.msgid || e.Origin.System != w.system || e.Time.Format(time.RFC3339Nano) != w.time ||
			!strings.HasPrefix(e.Text, w.text) || e.Origin.Host != "zos1" {
			t.Errorf("event %d: msgid %q system %q time %s text %q host %q; want %+v", i, e.MsgID, e.Origin.System,
				e.Time.Format(time.RFC3339Nano), e.Text, e.Origin.Host, w)
		}
	}
	if sd := got[0].SD; len(sd) != 1 || sd[0].ID != "hardcopy@zbridge" || !hasParam(sd[0], "ident", "MCONVBT1") ||
		!hasParam(sd[0], "type", "N") || !hasParam(sd[0], "request", "C") {
		t.Errorf("the command line's hardcopy columns: %+v", sd)
	}
	// The multi-line IXG283I: its D and E lines carry its ID and system.
	for i, e := range got {
		if strings.HasPrefix(e.Text, "IXG283I") {
			if got[i+1].MsgID != "IXG283I" || got[i+2].MsgID != "IXG283I" || !strings.HasPrefix(got[i+2].Text, "CISIZE=4KB") ||
				got[i+2].Origin.System != "VBT1" {
				t.Errorf("continuation lines of IXG283I: %q %q / %q %q", got[i+1].MsgID, got[i+1].Text, got[i+2].MsgID, got[i+2].Text)
			}
			return
		}
	}
	t.Error("no IXG283I event")
}

// TestNormalizeTimeField takes an event's time from a TOD value in its
// structured data, the original kept.
func TestNormalizeTimeField(t *testing.T) {
	st := memstore.New(memstore.Config{})
	defer st.Close()
	field, err := ParseTimeField("sd.zos@32473.stck=stck")
	if err != nil {
		t.Fatal(err)
	}
	n := &normalizer{next: st, fields: []TimeField{field}}
	received := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	// 0x7D91048BCA000000 is the Unix epoch (Linux's TOD_UNIX_EPOCH);
	// 0xB361183F48000000 is 2000-01-01 (IBM's "TOD fields" table).
	for _, tt := range []struct{ tod, want string }{
		{"7D91048BCA000000", "1970-01-01T00:00:00Z"},
		{"B361183F48000000", "2000-01-01T00:00:00Z"},
		{"not hex", received.Format(time.RFC3339Nano)},
	} {
		e := &protocol.Event{Source: protocol.SourceSyslog, Received: received, Time: received, TimeFilled: "all",
			SD: protocol.StructuredData{{ID: "zos@32473", Params: []protocol.SDParam{{Name: "stck", Value: tt.tod}}}}}
		if err := n.Append(context.Background(), []*protocol.Event{e}); err != nil {
			t.Fatal(err)
		}
		if got := e.Time.Format(time.RFC3339Nano); got != tt.want {
			t.Errorf("stck %s: time %s; want %s", tt.tod, got, tt.want)
		}
		if tt.tod == "not hex" && !strings.Contains(e.ParseError, "zos@32473 stck") {
			t.Errorf("a bad value: parse error %q", e.ParseError)
		}
		if tt.tod != "not hex" && (e.OriginTime == nil || e.TimeFilled != "" || e.SD[0].Params[0].Value != tt.tod) {
			t.Errorf("stck %s: origin time %v, time filled %q, sd %v: want the original kept", tt.tod, e.OriginTime, e.TimeFilled, e.SD)
		}
	}
	for _, bad := range []string{"zos@32473.stck=stck", "sd.nodot=stck", "sd.a.b=lunar"} {
		if _, err := ParseTimeField(bad); err == nil {
			t.Errorf("ParseTimeField(%q) accepted", bad)
		}
	}
}

func hasParam(el protocol.SDElement, name, value string) bool {
	for _, p := range el.Params {
		if p.Name == name && p.Value == value {
			return true
		}
	}
	return false
}

// TestNormalizeHostile: what a syslog sender can put in a time field or a
// hardcopy line cannot cost the intake more than one parse per event, nor
// give an event a time out of reason (before 1900, or past the receipt by
// more than a day: a year past 9999 could not even be written as JSON).
func TestNormalizeHostile(t *testing.T) {
	st := memstore.New(memstore.Config{})
	defer st.Close()
	unix, _ := ParseTimeField("sd.t@1.v=unix")
	n := &normalizer{next: st, fields: []TimeField{unix}, hardcopy: true, loc: time.FixedZone("W", -8*3600)}
	received := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	// 40,000 repeats of a bad value: one is read, one error kept.
	params := make([]protocol.SDParam, 40000)
	for i := range params {
		params[i] = protocol.SDParam{Name: "v", Value: "x"}
	}
	e := &protocol.Event{Source: protocol.SourceSyslog, Received: received, Time: received,
		SD: protocol.StructuredData{{ID: "t@1", Params: params}}}
	start := time.Now()
	n.Append(context.Background(), []*protocol.Event{e})
	if strings.Count(e.ParseError, "sd t@1 v") != 1 || len(e.ParseError) > maxParseError || !e.Time.Equal(received) {
		t.Errorf("repeated bad values: %d errors, %d bytes, time %v", strings.Count(e.ParseError, "sd t@1 v"), len(e.ParseError), e.Time)
	}
	t.Logf("40000 repeated parameters: %v", time.Since(start))
	for _, tt := range []struct{ sd, text string }{
		{"-99999999999", ""},   // year -1199
		{"99999999999999", ""}, // year 5138 (ms guessed as s would be worse): far future
		{"", "N 0000000 SYSA     9999365 23:59:59.99          00000000  IXC418I SYSTEM SYSA IS NOW ACTIVE"},
		{"", "N 0000000 SYSA     27340 10:00:00.00          00000000  IXC418I SYSTEM SYSA IS NOW ACTIVE"}, // a year ahead
	} {
		e := &protocol.Event{Source: protocol.SourceSyslog, Received: received, Time: received, Text: tt.text}
		if tt.sd != "" {
			e.SD = protocol.StructuredData{{ID: "t@1", Params: []protocol.SDParam{{Name: "v", Value: tt.sd}}}}
		}
		n.Append(context.Background(), []*protocol.Event{e})
		if !e.Time.Equal(received) || e.ParseError == "" {
			t.Errorf("%q %q: time %v, parse error %q; want the receive time kept and the reason", tt.sd, tt.text, e.Time, e.ParseError)
		}
		var back protocol.Event
		if err := json.Unmarshal(protocol.AppendEventJSON(nil, e), &back); err != nil {
			t.Errorf("%q %q: the event's JSON does not read back: %v", tt.sd, tt.text, err)
		}
	}
}

// discard is an Appender that keeps nothing.
type discard struct{}

func (discard) Append(context.Context, []*protocol.Event) error { return nil }

// hardcopyFrom returns the events of syslog messages, each a hardcopy line
// as z/OS syslogd forwards it (RFC 3164, host zos1), sent from addr.
func hardcopyFrom(addr string, lines ...string) []*protocol.Event {
	p := syslog.NewParser(nil)
	p.SetSender(netip.MustParseAddr(addr))
	evs := make([]*protocol.Event, len(lines))
	for i, l := range lines {
		evs[i] = p.Parse([]byte("<13>Mar  1 10:00:00 zos1 SYSLOG: "+l), time.Now())
	}
	return evs
}

// TestNormalizeHardcopyContinuationByAddr: a continuation line finds its
// first line among those from its own address. Another sender claiming the
// z/OS system's host name and a line ID in use (the security review's
// reproduction) decides neither the message ID nor the system of the
// system's own continuation lines, and its own continuation lines get its
// first line's.
func TestNormalizeHardcopyContinuationByAddr(t *testing.T) {
	n := &normalizer{next: discard{}, hardcopy: true, loc: time.UTC}
	const zosAddr, evilAddr = "10.0.0.5", "10.9.9.9"
	var evs []*protocol.Event
	evs = append(evs, hardcopyFrom(zosAddr, "M 0000000 VBT1     22121 21:20:21.52          00000290  IXG283I STAGING DATASET IXGLOGR.HZS 602")...)
	evs = append(evs, hardcopyFrom(evilAddr, "M 0000000 EVIL     22121 21:20:21.53          00000290  IXC402D SYSTEM VBT1 LOOKS INOPERATIVE 602")...)
	evs = append(evs, hardcopyFrom(zosAddr, "D                                         602 00000290  ALLOCATED NEW FOR LOGSTREAM HZS.HEALTH.CHECKER.HISTORY")...)
	evs = append(evs, hardcopyFrom(evilAddr, "E                                         602 00000290  REPLY U")...)
	if err := n.Append(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	for i, w := range []struct{ addr, msgid, system string }{
		{zosAddr, "IXG283I", "VBT1"}, {evilAddr, "IXC402D", "EVIL"}, {zosAddr, "IXG283I", "VBT1"}, {evilAddr, "IXC402D", "EVIL"},
	} {
		if e := evs[i]; e.Origin.Addr != w.addr || e.Origin.Host != "zos1" || e.MsgID != w.msgid || e.Origin.System != w.system {
			t.Errorf("event %d (%q): addr %s host %s msgid %s system %s; want addr %s msgid %s system %s",
				i, e.Text, e.Origin.Addr, e.Origin.Host, e.MsgID, e.Origin.System, w.addr, w.msgid, w.system)
		}
	}
}

// TestNormalizeHardcopyFirstLinesFair: a sender that sends more first lines
// of multi-line messages than the table holds, from one address or from
// several, does not push out the first line of a message another address
// is still sending.
func TestNormalizeHardcopyFirstLinesFair(t *testing.T) {
	for _, flooders := range []int{1, 4, 8} {
		t.Run(fmt.Sprintf("%d flooding addresses", flooders), func(t *testing.T) {
			n := &normalizer{next: discard{}, hardcopy: true, loc: time.UTC}
			ctx := context.Background()
			const zosAddr = "10.0.0.5"
			if err := n.Append(ctx, hardcopyFrom(zosAddr,
				"M 0000000 VBT1     22121 21:20:21.52          00000290  IXG283I STAGING DATASET IXGLOGR.HZS 602")); err != nil {
				t.Fatal(err)
			}
			for a := range flooders {
				lines := make([]string, 2*maxFirstLines)
				for i := range lines {
					lines[i] = fmt.Sprintf("M 0000000 EVIL     22121 21:20:21.53          00000290  IXC402D SYSTEM VBT1 LOOKS INOPERATIVE %d", 1000+i)
				}
				if err := n.Append(ctx, hardcopyFrom(fmt.Sprintf("10.9.9.%d", a), lines...)); err != nil {
					t.Fatal(err)
				}
			}
			d := hardcopyFrom(zosAddr, "D                                         602 00000290  ALLOCATED NEW FOR LOGSTREAM HZS.HEALTH.CHECKER.HISTORY")
			if err := n.Append(ctx, d); err != nil {
				t.Fatal(err)
			}
			if d[0].MsgID != "IXG283I" || d[0].Origin.System != "VBT1" {
				t.Errorf("the z/OS system's continuation line: msgid %q system %q; want IXG283I VBT1", d[0].MsgID, d[0].Origin.System)
			}
			checkFirstLines(t, &n.first)
		})
	}
}

// TestFirstLinesBounds: an address keeps at most maxFirstLinesPerAddr first
// lines, its oldest dropped first; the table at most maxFirstLines, the
// oldest of the address holding most dropped first.
func TestFirstLinesBounds(t *testing.T) {
	var f firstLines
	key := func(addr string, i int) firstKey { return firstKey{addr, "zos1", fmt.Sprint(i)} }
	has := func(k firstKey) bool { _, ok := f.lines[k]; return ok }
	// One address: its own oldest go.
	for i := range maxFirstLinesPerAddr + 10 {
		f.put(key("a", i), multiline{"IXG283I", "SYSA"})
	}
	if len(f.lines) != maxFirstLinesPerAddr || has(key("a", 9)) || !has(key("a", 10)) {
		t.Fatalf("one address: %d first lines kept (want %d), the 10th kept %v, the 11th %v",
			len(f.lines), maxFirstLinesPerAddr, has(key("a", 9)), has(key("a", 10)))
	}
	if got := f.get(key("a", 10)); got != (multiline{"IXG283I", "SYSA"}) {
		t.Fatalf("get: %+v", got)
	}
	// A second address with a few; then others fill the table: the second
	// address keeps its own.
	for i := range 10 {
		f.put(key("b", i), multiline{"IEF196I", "SYSB"})
	}
	for _, addr := range []string{"c", "d", "e", "f"} {
		for i := range maxFirstLinesPerAddr {
			f.put(key(addr, i), multiline{"X", "EVIL"})
		}
	}
	checkFirstLines(t, &f)
	if len(f.lines) != maxFirstLines {
		t.Fatalf("%d first lines, want the table full (%d)", len(f.lines), maxFirstLines)
	}
	for i := range 10 {
		if !has(key("b", i)) {
			t.Fatalf("address b lost its first line %d to others", i)
		}
	}
	// b puts more, the table full: the oldest first line of the address
	// holding most goes (of those holding as many, the one whose oldest is
	// oldest), not one of b's.
	var victim *addrLines
	for _, a := range f.addrs {
		if victim == nil || len(a.keys) > len(victim.keys) || len(a.keys) == len(victim.keys) && a.seqs[0] < victim.seqs[0] {
			victim = a
		}
	}
	if victim.addr == "b" {
		t.Fatal("b holds the most")
	}
	vk, vn := victim.keys[0], len(victim.keys)
	f.put(key("b", 10), multiline{"IEF196I", "SYSB"})
	if !has(key("b", 0)) || !has(key("b", 10)) || has(vk) || len(victim.keys) != vn-1 || len(f.lines) != maxFirstLines {
		t.Fatalf("b's 11th first line: b's first kept %v, its 11th %v; %s's oldest kept %v, %s holds %d (had %d); %d in all",
			has(key("b", 0)), has(key("b", 10)), victim.addr, has(vk), victim.addr, len(victim.keys), vn, len(f.lines))
	}
	// A line ID used again: the newer first line.
	f.put(key("b", 3), multiline{"IEF197I", "SYSB"})
	if got := f.get(key("b", 3)); got.msgid != "IEF197I" {
		t.Fatalf("a line ID used again: %+v", got)
	}
	// What is kept is copied: a first line does not keep its event's frame
	// in memory.
	frame := strings.Repeat("x", 1<<16) + " zos9 77 IXG283I SYSZ"
	fk := firstKey{"z", frame[len(frame)-20 : len(frame)-16], frame[len(frame)-15 : len(frame)-13]}
	f.put(fk, multiline{frame[len(frame)-12 : len(frame)-5], frame[len(frame)-4:]})
	for k, v := range f.lines {
		for _, kept := range []string{k.addr, k.host, k.lineID, v.msgid, v.system} {
			if p := unsafe.StringData(kept); uintptr(unsafe.Pointer(p))-uintptr(unsafe.Pointer(unsafe.StringData(frame))) < uintptr(len(frame)) {
				t.Fatalf("first line %+v %+v: %q is part of the event's frame", k, v, kept)
			}
		}
	}
	if f.get(firstKey{"z", "zos9", "77"}) != (multiline{"IXG283I", "SYSZ"}) {
		t.Fatalf("the copied first line: %+v", f.get(firstKey{"z", "zos9", "77"}))
	}
	// Addresses come and go: the table stays within bounds and consistent.
	for i := range 3 * maxFirstLines {
		f.put(key(fmt.Sprint("g", i%97), i), multiline{"X", "Y"})
	}
	checkFirstLines(t, &f)
}

// checkFirstLines checks f's bounds and that its parts agree.
func checkFirstLines(t *testing.T, f *firstLines) {
	t.Helper()
	if len(f.lines) > maxFirstLines || len(f.addrs) != len(f.most) {
		t.Fatalf("%d first lines (at most %d), %d addresses, %d in the heap", len(f.lines), maxFirstLines, len(f.addrs), len(f.most))
	}
	n := 0
	for i, a := range f.most {
		if a.index != i || f.addrs[a.addr] != a || len(a.keys) == 0 || len(a.keys) > maxFirstLinesPerAddr || len(a.keys) != len(a.seqs) {
			t.Fatalf("address %q: index %d at %d, %d first lines (%d times)", a.addr, a.index, i, len(a.keys), len(a.seqs))
		}
		if i > 0 && f.most.Less(i, (i-1)/2) {
			t.Fatalf("the heap is out of order at %d", i)
		}
		for j, k := range a.keys {
			if _, ok := f.lines[k]; !ok || k.addr != a.addr || j > 0 && a.seqs[j] <= a.seqs[j-1] {
				t.Fatalf("address %q: first line %+v not kept, or out of order", a.addr, k)
			}
		}
		n += len(a.keys)
	}
	if n != len(f.lines) {
		t.Fatalf("the addresses hold %d first lines, the table %d", n, len(f.lines))
	}
}

// TestNormalizeHardcopySDFromSender: a hardcopy@zbridge element a sender
// writes (logger --sd-id, a relay, a forged datagram; the security review's
// reproduction) is kept as hardcopy@claimed, so that a rule on the
// region's element, which holds the columns of the line the region read,
// does not take it for the region's. What zbridge zoslog sends (the
// columns of a saved log, in hardcopy@zbridge) arrives the same way: a rule
// trusting it names the element hardcopy@claimed and the address zoslog
// runs on, which the sender cannot claim.
func TestNormalizeHardcopySDFromSender(t *testing.T) {
	n := &normalizer{next: discard{}, hardcopy: true, loc: time.UTC}
	parse := func(addr, msg string) *protocol.Event {
		p := syslog.NewParser(nil)
		p.SetSender(netip.MustParseAddr(addr))
		e := p.Parse([]byte(msg), time.Now())
		if err := n.Append(context.Background(), []*protocol.Event{e}); err != nil {
			t.Fatal(err)
		}
		return e
	}
	match := func(e *protocol.Event, terms string) bool {
		t.Helper()
		f, err := protocol.ParseFilter(terms)
		if err != nil {
			t.Fatal(err)
		}
		return f.Match(e)
	}
	// A job's line, sent with a forged element claiming the master console.
	e := parse("10.9.9.9", `<13>1 2026-03-01T10:00:00Z zos1 SYSLOG - - [hardcopy@zbridge type="N" ident="*MASTER*"] `+
		`N 0000000 VBT1     22121 21:20:20.70 JOB12345 00000290  IEF196I WRITTEN BY A JOB`)
	if sd, _ := e.SD.MarshalJSON(); len(e.SD) != 2 || e.SD[0].ID != "hardcopy@claimed" || e.SD[1].ID != "hardcopy@zbridge" ||
		!hasParam(e.SD[1], "ident", "JOB12345") {
		t.Fatalf("structured data %s: want the sender's hardcopy@claimed, then the region's hardcopy@zbridge", sd)
	}
	if match(e, "sd.hardcopy@zbridge.ident=*MASTER*") {
		t.Error("a rule on sd.hardcopy@zbridge.ident=*MASTER* matches a job's line sent with a forged element")
	}
	if !match(e, "sd.hardcopy@zbridge.ident=JOB12345") {
		t.Error("the region's element does not say the job")
	}
	// Not a hardcopy line: the forged element alone, renamed.
	e = parse("10.9.9.9", `<13>1 2026-03-01T10:00:00Z zos1 SYSLOG - IXC418I [hardcopy@zbridge type="N" ident="*MASTER*"] IXC418I SYSTEM SYSA IS NOW ACTIVE`)
	if match(e, "sd.hardcopy@zbridge.ident=*") || !match(e, "sd.hardcopy@claimed.ident=*MASTER*") {
		t.Errorf("a forged element on a line that is no hardcopy line: %+v", e.SD)
	}
	// What zbridge zoslog sends (a record of zos/testdata's
	// century-reference.txt, its form as TestZoslogMessages checks).
	const zoslogMsg = `<13>1 2019-09-10T23:13:09.44Z JG0 SYSLOG - - [hardcopy@zbridge type="N" request="C" date="2019253" ` +
		`clock="23:13:09.44" ident="RENJINCN" lines="1"] D LOGGER,L`
	e = parse("10.0.0.7", zoslogMsg)
	if !match(e, "addr=10.0.0.7,sd.hardcopy@claimed.ident=RENJINCN") || match(e, "sd.hardcopy@zbridge.ident=*") {
		t.Errorf("zoslog's record from 10.0.0.7: %+v", e.SD)
	}
	if e = parse("10.9.9.9", zoslogMsg); match(e, "addr=10.0.0.7,sd.hardcopy@claimed.ident=*") {
		t.Error("a rule trusting zoslog's address matches the same record from another")
	}
}
