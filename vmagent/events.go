package vmagent

import (
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/zbridge/zbridge/protocol"
)

// consolePatterns are the z/VM console line patterns (see
// ../shared/REFERENCE.md, z/VM console behaviour).
type consolePatterns struct {
	// hh:mm:ss * MSG FROM USER    : text (also WNG and SMSG).
	userMsg *regexp.Regexp
	// A CP message ID at the start of a line: HCP<module><number><severity>.
	hcp *regexp.Regexp
	// Guest logon and logoff notices.
	autoLogon, logonAs, logoffAs *regexp.Regexp
	// One "USERID - TERMINAL" entry of QUERY NAMES.
	namePair *regexp.Regexp
}

// patterns returns the console line patterns, compiled at the first call:
// only the z/VM agent uses them, and every other zbridge command would
// pay for compiling them when it starts.
var patterns = sync.OnceValue(func() *consolePatterns {
	return &consolePatterns{
		userMsg:   regexp.MustCompile(`^(\d\d:\d\d:\d\d)\s+\*\s+(MSG|WNG|SMSG)\s+FROM\s+([^\s:]+)\s*:\s?(.*)$`),
		hcp:       regexp.MustCompile(`^(HCP[A-Z]{0,8}\d{1,4}[A-Z])\b`),
		autoLogon: regexp.MustCompile(`^AUTO\s+LOGON\s+\*\*\*\s+(\S+)`),
		logonAs:   regexp.MustCompile(`^\S+\s+\S+\s+LOGON\s+AS\s+(\S+)`),
		logoffAs:  regexp.MustCompile(`^\S+\s+\S+\s+LOGOFF\s+AS\s+(\S+)`),
		namePair:  regexp.MustCompile(`([A-Z0-9$#@]{1,8})\s+-\s+([A-Z0-9$#@]+)`),
	}
})

// IsUnsolicited reports whether a console line is a message from a user
// (MSG, WNG or SMSG FROM): such lines never belong to a command response.
func IsUnsolicited(line string) bool { return patterns().userMsg.MatchString(strings.TrimSpace(line)) }

// CPMessageID returns the HCP message ID a line starts with, or "".
func CPMessageID(line string) string {
	if m := patterns().hcp.FindStringSubmatch(strings.TrimSpace(line)); m != nil {
		return m[1]
	}
	return ""
}

// isCPError reports whether line is an HCP error message (ID ending in E).
func isCPError(line string) bool {
	id := CPMessageID(line)
	return id != "" && strings.HasSuffix(id, "E")
}

// ConsoleEvents turns one console line of system into its events: one
// zvm-console event, plus a zvm-event LOGON or LOGOFF event for a guest
// logon or logoff notice.
func ConsoleEvents(system, line string, now time.Time) []*protocol.Event {
	line = strings.TrimRight(line, " ")
	t := strings.TrimSpace(line)
	now = now.UTC()
	ev := &protocol.Event{
		Source:   protocol.SourceZVMConsole,
		Origin:   protocol.Origin{System: system},
		Time:     now,
		Facility: protocol.FacDaemon,
		Severity: protocol.SevInfo,
		Type:     "CP",
		Text:     t,
		Raw:      line,
		Parsed:   true,
	}
	p := patterns()
	if m := p.userMsg.FindStringSubmatch(t); m != nil {
		ev.Type, ev.User, ev.Text = m[2], m[3], m[4]
		if ev.Type == "WNG" {
			ev.Severity = protocol.SevWarning
		}
		return []*protocol.Event{ev}
	}
	if id := CPMessageID(t); id != "" {
		ev.MsgID = id
		switch id[len(id)-1] {
		case 'E':
			ev.Severity = protocol.SevErr
		case 'W':
			ev.Severity = protocol.SevWarning
		case 'S', 'T':
			ev.Severity = protocol.SevCrit
		}
	}
	evs := []*protocol.Event{ev}
	var typ, user string
	if m := p.autoLogon.FindStringSubmatch(t); m != nil {
		typ, user = "LOGON", m[1]
	} else if m := p.logonAs.FindStringSubmatch(t); m != nil {
		typ, user = "LOGON", m[1]
	} else if m := p.logoffAs.FindStringSubmatch(t); m != nil {
		typ, user = "LOGOFF", m[1]
	}
	if typ != "" {
		evs = append(evs, &protocol.Event{
			Source: protocol.SourceZVMEvent, Origin: protocol.Origin{System: system}, Time: now,
			Facility: protocol.FacDaemon, Severity: protocol.SevNotice, Type: typ, User: user,
			Text: user + " " + typ, Raw: line, Parsed: true,
		})
	}
	return evs
}
