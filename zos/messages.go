package zos

import (
	"fmt"
	"regexp"
	"slices"
)

// Type is a message's type letter (see the package doc).
type Type byte

// The message types.
const (
	Action      Type = 'A'
	Eventual    Type = 'E'
	Information Type = 'I'
	Wait        Type = 'W'
)

// A Message is one entry of the catalogue.
type Message struct {
	// ID is "ZBR", three digits and the type letter.
	ID string
	// Text is the message's fixed layout after its ID: upper-case words
	// are fixed, lower-case words are inserts, explained under Inserts.
	Text string
	// Inserts explains each insert of Text, in order.
	Inserts []Insert
	// Explanation, SystemAction and OperatorResponse are what IBM's
	// message manuals give under those headings.
	Explanation, SystemAction, OperatorResponse string
	// Issuer is the package that issues the message.
	Issuer string
}

// An Insert is a variable part of a message's text.
type Insert struct {
	Name, Meaning string
}

// Type returns the message's type letter.
func (m *Message) Type() Type { return Type(m.ID[len(m.ID)-1]) }

var idRE = regexp.MustCompile(`^ZBR[0-9]{3}[AEIW]$`)

// catalogue is every message the region issues, in ID order.
var catalogue = []Message{
	{
		ID:      "ZBR010I",
		Text:    "REGION name SERVERS",
		Inserts: []Insert{{"name", "the region's name"}},
		Explanation: "The answer to SERVERS (F name,SERVERS; D name,SERVERS): a heading line, then one line " +
			"per server of the region: SERVER, ADDRESS (off when it is not listening) and what it serves " +
			"now (connections, sessions, z/VM agents).",
		SystemAction:     "None.",
		OperatorResponse: "None.",
		Issuer:           "gateway/region",
	},
	{
		ID:      "ZBR011I",
		Text:    "REGION name AGENTS",
		Inserts: []Insert{{"name", "the region's name"}},
		Explanation: "The answer to AGENTS: a heading line, then one line per agent of every region sharing " +
			"the store: NAME, KIND (linux, zvm), ADDRESS, STATE, SINCE, LAST-HEARTBEAT, REGION and SERVER.",
		SystemAction:     "None.",
		OperatorResponse: "An agent not connected for long: see that system's agent and network.",
		Issuer:           "gateway/region",
	},
	{
		ID:      "ZBR012I",
		Text:    "REGION name REGIONS",
		Inserts: []Insert{{"name", "the region's name"}},
		Explanation: "The answer to REGIONS: the regions sharing this region's Redis, alive or dead, one " +
			"line each (or one line saying the region shares no state).",
		SystemAction:     "None.",
		OperatorResponse: "A region dead that should run: start it (systemctl start zbridge-region@NAME).",
		Issuer:           "gateway/region",
	},
	{
		ID:               "ZBR013I",
		Text:             "REGION name CLIENTS",
		Inserts:          []Insert{{"name", "the region's name"}},
		Explanation:      "The answer to CLIENTS: the client sessions on UNSOLMSG and COMMANDS, one line each.",
		SystemAction:     "None.",
		OperatorResponse: "None.",
		Issuer:           "gateway/region",
	},
	{
		ID:      "ZBR014I",
		Text:    "REGION name COMMANDS",
		Inserts: []Insert{{"name", "the region's name"}},
		Explanation: "The answer to COMMANDS: the commands in flight, one line each (the client's own, or " +
			"every client's for a role with see-others).",
		SystemAction:     "None.",
		OperatorResponse: "None.",
		Issuer:           "gateway/region",
	},
	{
		ID:               "ZBR015I",
		Text:             "REGION name COMMANDS ARE",
		Inserts:          []Insert{{"name", "the region's name"}},
		Explanation:      "The answer to HELP: the region's commands, one line each, and the forms they take.",
		SystemAction:     "None.",
		OperatorResponse: "None.",
		Issuer:           "gateway/region",
	},
	{
		ID:   "ZBR016I",
		Text: "REGION name REFRESHED: result",
		Inserts: []Insert{
			{"name", "the region's name"},
			{"result", "what the refresh did: the clients, roles and commands in flight it changed"},
		},
		Explanation: "The answer to REFRESH (and what a SIGHUP or systemctl reload does): the region read " +
			"its config file and its clients file again and applied them; sessions and commands the new " +
			"policy no longer allows were ended.",
		SystemAction:     "The region goes on with the new policy.",
		OperatorResponse: "None. A refresh that changes nothing is refused with the reason, and the old policy stays.",
		Issuer:           "gateway/region",
	},
	{
		ID: "ZBR101E",
		Text: "FLOOD CONTROL HELD BACK count EVENTS FROM host AT addr BETWEEN first AND last UTC " +
			"(LIMITS limits); BY LIMIT held-by; TOP IDS ids; FIRST \"text\"; LAST \"text\"",
		Inserts: []Insert{
			{"count", "how many events of the source were held back since its last summary"},
			{"host", "the host name the source claims (* for the names of one address beyond --flood-hosts-per-addr; * AT * for sources beyond --flood-max-sources)"},
			{"addr", "the address the source sends from"},
			{"first, last", "when the first and the last of them arrived (UTC, to the millisecond)"},
			{"limits", "the limits in force: N/S BURST M PER HOST, PER MESSAGE ID and PER ADDRESS"},
			{"held-by", "how many each limit held back: HOST=n MESSAGE-ID=n ADDRESS=n (a held-back event counts against the narrowest limit it was over)"},
			{"ids", "the message IDs (MSGID, else APP-NAME) held back most, ID=n each, then AND k MORE=n"},
			{"text", "the text of the first and of the last event held back, quoted, cut at 120 bytes"},
		},
		Explanation: "A syslog source (a sender address and the host name it claims) sent more than its " +
			"flood control limits allow. Its events over the limits were held back: not relayed, and " +
			"counted here. Other sources are not affected. The region issues one such message per " +
			"source and --flood-interval (10 seconds by default) while the flood lasts, and at shutdown.",
		SystemAction: "The region relays the source's events again as soon as they are within its limits. " +
			"The events held back are not stored; this message accounts for every one of them.",
		OperatorResponse: "Find out why the host floods (FIRST and LAST show what it sends; TOP IDS which " +
			"program) and have its administrators stop it. If the host's rate is expected, raise " +
			"--flood-rate, --flood-burst or --flood-msgid-rate for the region.",
		Issuer: "gateway/flood",
	},
}

// Must returns the message with the given ID, and panics if the catalogue
// has none: the IDs the code issues are constants, which the tests check.
func Must(id string) Message {
	m, ok := Lookup(id)
	if !ok {
		panic("zos: message " + id + " is not in the catalogue")
	}
	return m
}

// Format returns the message's text with its ID, each insert of its text
// replaced by the next of inserts, in order. It panics when their number
// differs from the text's inserts: a programming error the tests find.
func (m Message) Format(inserts ...string) string {
	locs := insertRE.FindAllStringIndex(m.Text, -1)
	if len(locs) != len(inserts) {
		panic(fmt.Sprintf("zos: message %s has %d inserts, given %d", m.ID, len(locs), len(inserts)))
	}
	b := make([]byte, 0, len(m.ID)+1+len(m.Text)+32)
	b = append(b, m.ID...)
	b = append(b, ' ')
	last := 0
	for i, loc := range locs {
		b = append(b, m.Text[last:loc[0]]...)
		b = append(b, inserts[i]...)
		last = loc[1]
	}
	return string(append(b, m.Text[last:]...))
}

// Catalogue returns every message, in ID order.
func Catalogue() []Message { return slices.Clone(catalogue) }

// Lookup returns the message with the given ID.
func Lookup(id string) (Message, bool) {
	i, ok := slices.BinarySearchFunc(catalogue, id, func(m Message, id string) int {
		switch {
		case m.ID < id:
			return -1
		case m.ID > id:
			return 1
		}
		return 0
	})
	if !ok {
		return Message{}, false
	}
	return catalogue[i], true
}

// check reports the first entry of the catalogue that breaks its rules:
// an ID out of form, out of order or twice, or an empty heading.
func check(c []Message) error {
	for i, m := range c {
		switch {
		case !idRE.MatchString(m.ID):
			return fmt.Errorf("zos: message ID %q is not ZBR, three digits and A, E, I or W", m.ID)
		case i > 0 && c[i-1].ID >= m.ID:
			return fmt.Errorf("zos: message %s is not after %s", m.ID, c[i-1].ID)
		case m.Text == "" || m.Explanation == "" || m.SystemAction == "" || m.OperatorResponse == "" || m.Issuer == "":
			return fmt.Errorf("zos: message %s lacks its text, explanation, system action, operator response or issuer", m.ID)
		}
	}
	return nil
}

var insertRE = regexp.MustCompile(`[a-z][a-z-]*`)

// Pattern returns a regular expression that matches the whole text of an
// issue of the message, its ID first: the fixed words as they are, each
// insert as one or more characters.
func (m *Message) Pattern() *regexp.Regexp {
	var b []byte
	b = append(b, '^')
	b = append(b, regexp.QuoteMeta(m.ID+" ")...)
	last := 0
	for _, loc := range insertRE.FindAllStringIndex(m.Text, -1) {
		b = append(b, regexp.QuoteMeta(m.Text[last:loc[0]])...)
		b = append(b, "(.+?)"...)
		last = loc[1]
	}
	b = append(b, regexp.QuoteMeta(m.Text[last:])...)
	b = append(b, '$')
	return regexp.MustCompile(string(b))
}
