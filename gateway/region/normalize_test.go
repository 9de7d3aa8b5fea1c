package region

import (
	"bufio"
	"context"
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
	// The multi-line IXG283I: its D and E lines carry its ID.
	for i, e := range got {
		if strings.HasPrefix(e.Text, "IXG283I") {
			if got[i+1].MsgID != "IXG283I" || got[i+2].MsgID != "IXG283I" || !strings.HasPrefix(got[i+2].Text, "CISIZE=4KB") {
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
