package lx

import (
	"testing"

	"github.com/zbridge/zbridge/protocol"
)

func TestFormat(t *testing.T) {
	tests := []struct {
		name string
		e    protocol.Event
		want string
	}{
		{"Syslog", protocol.Event{Source: protocol.SourceSyslog, Origin: protocol.Origin{Host: "LINUX113", System: "LINUX113", Node: "ZVM002"},
			Facility: protocol.FacDaemon, Severity: protocol.SevErr, Text: "sshd[42]: session opened"},
			"LXLOG001I LINUX113 ZVM002 daemon err sshd[42]: session opened"},
		{"SyslogNoNode", protocol.Event{Source: protocol.SourceSyslog, Origin: protocol.Origin{Host: "lnx1"},
			Facility: protocol.FacUser, Severity: protocol.SevNotice, Text: "two\nlines\tand tab"},
			"LXLOG001I lnx1 - user notice two lines and tab"},
		{"ConsoleMsg", protocol.Event{Source: protocol.SourceZVMConsole, Origin: protocol.Origin{System: "VMSYS1", Node: "ZVM002"},
			Type: "MSG", User: "POLLGEN", Text: "NMVM0001 00:34:49 Hello"},
			"LXMSG001I ZVM002 MSG POLLGEN NMVM0001 00:34:49 Hello"},
		{"ConsoleCP", protocol.Event{Source: protocol.SourceZVMConsole, Origin: protocol.Origin{System: "VMSYS1"},
			Text: "HCPMID6001I TIME IS 13:02:41"},
			"LXMSG001I VMSYS1 CP - HCPMID6001I TIME IS 13:02:41"},
		{"Event", protocol.Event{Source: protocol.SourceZVMEvent, Origin: protocol.Origin{Node: "ZVM002"},
			User: "LINUX113", Type: "RUNNABLESTATEENABLED"},
			"LXEVT001I ZVM002 LINUX113 RUNNABLESTATEENABLED"},
		{"BlankInWord", protocol.Event{Source: protocol.SourceRegion, Origin: protocol.Origin{System: "my region"},
			Facility: protocol.FacDaemon, Severity: protocol.SevInfo, Text: "started"},
			"LXLOG001I my_region - daemon info started"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Format(&tc.e); got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}
