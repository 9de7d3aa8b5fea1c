package region

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/zbridge/zbridge/gateway/store/memstore"
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
