package unsolmsg_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/zbridge/zbridge/gateway/session"
	"github.com/zbridge/zbridge/gateway/store/memstore"
	"github.com/zbridge/zbridge/protocol"
	"github.com/zbridge/zbridge/protocol/client"
)

// TestFilterSD: subscriptions whose filters have structured-data terms, in
// the command-line form and in the JSON form, get the events whose
// structured data they select, and each event comes with its structured
// data in order.
func TestFilterSD(t *testing.T) {
	params := func(nv ...string) []protocol.SDParam {
		var ps []protocol.SDParam
		for i := 0; i+1 < len(nv); i += 2 {
			ps = append(ps, protocol.SDParam{Name: nv[i], Value: nv[i+1]})
		}
		return ps
	}
	syslog := func(text string, sd protocol.StructuredData) *protocol.Event {
		return &protocol.Event{Text: text, Source: protocol.SourceSyslog, Origin: protocol.Origin{System: "lnx01", Host: "lnx01"},
			Severity: protocol.SevNotice, SD: sd}
	}
	events := []*protocol.Event{
		syslog("rfc-example", protocol.StructuredData{
			{ID: "exampleSDID@32473", Params: params("iut", "3", "eventSource", "Application", "eventID", "1011")},
			{ID: "examplePriority@32473", Params: params("class", "high")}}),
		syslog("two-ips", protocol.StructuredData{{ID: "origin", Params: params("ip", "192.0.2.1", "ip", "192.0.2.129", "software", "rsyslogd")}}),
		syslog("dotted-id", protocol.StructuredData{{ID: "origin@32473.1.2", Params: params("ip", "10.0.0.1")}}),
		syslog("no-sd", nil),
	}
	// The last event passes every filter below.
	end := func() *protocol.Event {
		return syslog("end", protocol.StructuredData{
			{ID: "exampleSDID@32473", Params: params("eventSource", "APPLICATION", "iut", "3")},
			{ID: "examplePriority@32473", Params: params("class", "high")},
			{ID: "origin", Params: params("ip", "192.0.2.1", "ip", "192.0.2.129")},
			{ID: "origin@32473.1.2", Params: params("ip", "10.9.9.9")}})
	}
	parse := func(s string) *protocol.Filter {
		f, err := protocol.ParseFilter(s)
		if err != nil {
			t.Fatalf("ParseFilter(%q): %v", s, err)
		}
		return f
	}
	tests := []struct {
		name   string
		filter *protocol.Filter
		want   []string
	}{
		{"command line", parse("sd.exampleSDID@32473.eventSource=app*"), []string{"rfc-example"}},
		{"second of a repeated name", parse("sd.origin.ip=*.129"), []string{"two-ips"}},
		{"dotted SD-ID", parse("sd.origin@32473.1.2.ip=10.*"), []string{"dotted-id"}},
		{"any value", parse("sd.origin.ip=*"), []string{"two-ips"}},
		{"JSON form, two terms", &protocol.Filter{SD: []protocol.SDTerm{
			{ID: "exampleSDID@32473", Param: "iut", Glob: "3"}, {ID: "examplePriority@32473", Param: "class", Glob: "high"}}},
			[]string{"rfc-example"}},
		{"two terms, one fails", &protocol.Filter{SD: []protocol.SDTerm{
			{ID: "exampleSDID@32473", Param: "iut", Glob: "3"}, {ID: "origin", Param: "ip", Glob: "*"}}}, nil},
		{"with the other keys", parse("source=syslog,origin=lnx*,severity=notice,sd.origin.ip=192.0.2.1"), []string{"two-ips"}},
	}
	ts := startServer(t, memstore.Config{}, session.Config{})
	conns := make([]*client.Conn, len(tests))
	for i, tt := range tests {
		conns[i] = dial(t, ts.addr)
		subscribe(t, conns[i], tt.filter, "", "")
	}
	for _, e := range events {
		ts.append(t, e)
	}
	ts.append(t, end())
	for i, tt := range tests {
		var got []string
		for {
			e := nextEvent(t, conns[i])
			if e.Text == "end" {
				break
			}
			for _, sent := range events {
				if sent.Text == e.Text && !reflect.DeepEqual(e.SD, sent.SD) {
					t.Errorf("%s: %s arrived with SD %#v, sent %#v", tt.name, e.Text, e.SD, sent.SD)
				}
			}
			got = append(got, e.Text)
		}
		if strings.Join(got, ",") != strings.Join(tt.want, ",") {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
}
