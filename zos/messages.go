package zos

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
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

// validID reports whether id is ZBR, three digits and A, E, I or W.
func validID(id string) bool {
	if len(id) != 7 || id[:3] != "ZBR" {
		return false
	}
	for _, c := range []byte(id[3:6]) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return strings.IndexByte("AEIW", id[6]) >= 0
}

// catalogue is every message the region issues, in ID order.
var catalogue = []Message{
	{
		ID:   "ZBR001I",
		Text: "REGION name STARTED: servers",
		Inserts: []Insert{
			{"name", "the region's name"},
			{"servers", "each server that listens, SERVER=address, blank-separated (SYSLOG, SYSLOG-UDP, RELP, UNSOLMSG, COMMANDS, VMMON, CONSOLE, HTTP)"},
		},
		Explanation:      "The region opened its listeners and serves.",
		SystemAction:     "The region serves until it is stopped.",
		OperatorResponse: "None. A server missing from the list is off in the region's flags.",
		Issuer:           "gateway/region",
	},
	{
		ID:   "ZBR002I",
		Text: "REGION name STOPPING: reason",
		Inserts: []Insert{
			{"name", "the region's name"},
			{"reason", "why: the signal the service manager sent (SIGTERM, SIGINT), or P name BY client for an operator's stop"},
		},
		Explanation: "The region began to stop: SYSLOG and RELP drain what they received into the store, " +
			"COMMANDS lets commands in flight finish, UNSOLMSG sends its subscribers what they are owed.",
		SystemAction:     "The region stops; ZBR003I follows.",
		OperatorResponse: "None, if the stop was meant. A region that should run is started again with systemctl start zbridge-region@NAME.",
		Issuer:           "gateway/region",
	},
	{
		ID:   "ZBR003I",
		Text: "REGION name STOPPED",
		Inserts: []Insert{
			{"name", "the region's name"},
		},
		Explanation: "The region's servers have stopped. The message is stored before the store closes, so " +
			"a durable subscriber reads it after the region is started again.",
		SystemAction:     "The region ends.",
		OperatorResponse: "None.",
		Issuer:           "gateway/region",
	},
	{
		ID:   "ZBR004I",
		Text: "REGION name REFRESHED BY who: result",
		Inserts: []Insert{
			{"name", "the region's name"},
			{"who", "who asked: a client (REFRESH, F name,REFRESH) or SIGHUP (systemctl reload)"},
			{"result", "what the refresh did: clients, roles, sessions revoked, commands in flight cancelled"},
		},
		Explanation:      "The region read its config file and its clients file again and applied them.",
		SystemAction:     "The region goes on with the new clients and roles.",
		OperatorResponse: "None.",
		Issuer:           "gateway/region",
	},
	{
		ID:   "ZBR005E",
		Text: "REGION name REFRESH BY who FAILED: reason",
		Inserts: []Insert{
			{"name", "the region's name"},
			{"who", "who asked: a client or SIGHUP"},
			{"reason", "why nothing changed: the file's error, or a change a refresh may not make"},
		},
		Explanation:      "A refresh was asked for but the config file or the clients file could not be applied.",
		SystemAction:     "Nothing changed: the region goes on with the clients and roles it had.",
		OperatorResponse: "Correct the file the reason names and refresh again (F name,REFRESH or systemctl reload).",
		Issuer:           "gateway/region",
	},
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
		ID:      "ZBR017I",
		Text:    "REGION name AVAILABILITY",
		Inserts: []Insert{{"name", "the region's name"}},
		Explanation: "The answer to AVAIL: a heading line, then one line per component the availability " +
			"ledger knows: COMPONENT, STATUS (UP or DOWN), SINCE (UTC), CHANGE (what said so) and RULE.",
		SystemAction:     "None.",
		OperatorResponse: "A component DOWN: see its CHANGE (a message ID, heartbeat-lost, probe-failed) for why.",
		Issuer:           "gateway/region",
	},
	{
		ID:   "ZBR018I",
		Text: "REGION name STATUS RECORDS AFTER seq: count",
		Inserts: []Insert{
			{"name", "the region's name"},
			{"seq", "the sequence number the records follow"},
			{"count", "how many records follow, one JSON object a line (protocol.StatusRecord)"},
		},
		Explanation: "The answer to AVAIL RECORDS AFTER seq MAX n, which zbridge report sends: the " +
			"availability ledger's records after seq, in order, as JSON lines.",
		SystemAction:     "None.",
		OperatorResponse: "None.",
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
	{
		ID:   "ZBR201I",
		Text: "ZVM AGENT system CONNECTED FROM addr AS client",
		Inserts: []Insert{
			{"system", "the z/VM system the agent serves"},
			{"addr", "the agent's address"},
			{"client", "the client name it logged on to VMMON with"},
		},
		Explanation:      "A z/VM agent logged on to VMMON: its system's console lines and events come in, and zvm:system commands go to it.",
		SystemAction:     "The region relays the system's events and routes its commands to the agent.",
		OperatorResponse: "None.",
		Issuer:           "gateway/region",
	},
	{
		ID:   "ZBR202E",
		Text: "ZVM AGENT system LOST: reason",
		Inserts: []Insert{
			{"system", "the z/VM system the agent served"},
			{"reason", "why its session ended: the bye reason (closed, idle, revoked, shutdown, replaced, ...)"},
		},
		Explanation: "The session of a z/VM system's agent ended. Until an agent logs on again, the system's " +
			"events do not come in (the agent spools them and sends them when it is back) and zvm:system " +
			"commands are refused with not-connected.",
		SystemAction:     "The region goes on; ZBR201I follows when the agent is back.",
		OperatorResponse: "If ZBR201I does not follow within a minute, see the z/VM agent (systemctl status zbridge-vmagent@SYSTEM) and the network between it and the region.",
		Issuer:           "gateway/region",
	},
	{
		ID:   "ZBR203I",
		Text: "LOGON REFUSED ON server FOR client FROM addr: reason",
		Inserts: []Insert{
			{"server", "the port: UNSOLMSG, COMMANDS, VMMON or CONSOLE"},
			{"client", "the client name the logon gave; UNKNOWN-NAME for a name no client has (it may be a secret typed in the wrong field: the audit log has it)"},
			{"addr", "the address it came from"},
			{"reason", "auth (the name or the secret is wrong) or not-permitted (the client's roles do not grant the port or the system), with the region's words"},
		},
		Explanation: "A logon was refused for its credentials or for what the client may do. Logons refused " +
			"for load are only counted (/metrics). At most 10 of these messages a minute are issued for each " +
			"port (the region log says how many were held back); the audit log has every refusal.",
		SystemAction:     "The connection is refused; failed logons from one address or for one name are throttled.",
		OperatorResponse: "Many from one address: find who is trying, and block the address at the firewall. A client of yours: check its secret and its roles.",
		Issuer:           "gateway/region",
	},
	{
		ID:   "ZBR204I",
		Text: "LINUX AGENT name AT addr CONNECTED: server",
		Inserts: []Insert{
			{"name", "the Linux system's name: a --linux target, or a name learned from a syslog connection"},
			{"addr", "the address the region dialled, host:port"},
			{"server", "the SSH server's version string: SSH-2.0-zbridge-linuxagent... for zbridge's Linux agent, another (SSH-2.0-OpenSSH_9.2p1 ...) for a stock sshd"},
		},
		Explanation: "The region connected to a Linux system's agent (or its sshd) and checked its host key: " +
			"linux:name commands go to it. A region with many agents connects them all within seconds of " +
			"its start: at most 10 of these messages are issued at once, then one every 6 seconds (10 a " +
			"minute), and those held back are counted in ZBR207I.",
		SystemAction:     "The region runs the system's commands over the connection, and redials it if it is lost.",
		OperatorResponse: "None.",
		Issuer:           "gateway/region",
	},
	{
		ID:   "ZBR205E",
		Text: "LINUX AGENT name AT addr LOST: reason",
		Inserts: []Insert{
			{"name", "the Linux system's name"},
			{"addr", "the address the region dialled, host:port"},
			{"reason", "why the connection ended: the host closed it (EOF), the network failed, or it did not answer keepalives"},
		},
		Explanation: "The region's connection to a Linux system's agent ended. Until it is back, linux:name " +
			"commands are refused with not-connected. It is issued once per connection lost: not for each " +
			"failed redial after it, nor when the region stops or forgets a learned name. At most 10 are " +
			"issued at once, then one every 6 seconds; those held back are counted in ZBR208E.",
		SystemAction:     "The region redials the system, with a backoff of up to 30 seconds; ZBR204I follows when it is back.",
		OperatorResponse: "If ZBR204I does not follow within a minute, see the agent on that system (systemctl status zbridge-linuxagent; or its sshd, for a system without the agent) and the network between it and the region; AGENTS shows the last error.",
		Issuer:           "gateway/region",
	},
	{
		ID:   "ZBR206E",
		Text: "LINUX AGENT name AT addr HOST KEY fingerprint REFUSED: reason",
		Inserts: []Insert{
			{"name", "the Linux system's name"},
			{"addr", "the address the region dialled, host:port"},
			{"fingerprint", "the SHA256 fingerprint of the host key presented"},
			{"reason", "the refusal: the key pinned for the name (or its address) in the known_hosts file, or the line that marks the key @revoked"},
		},
		Explanation: "A Linux system presented a host key other than the one the region's known_hosts file pins " +
			"for its name, or a revoked key: someone may be impersonating it, or its key was replaced. The " +
			"region does not connect (accept-new never replaces a pinned key). It is issued once for each " +
			"key presented, not for each refused redial with the same key, until the system has connected " +
			"again. At most 10 are issued at " +
			"once, then one every 6 seconds; those held back are counted in ZBR208E.",
		SystemAction:     "The region goes on redialling the system and refuses it while it presents that key; linux:name commands are refused with not-connected.",
		OperatorResponse: "Find out whether the system's key was replaced on purpose. If it was, remove the system's old lines from the known_hosts file (the region reads it again when it changes; with accept-new the new key is then pinned). If not, treat it as an attack on the address.",
		Issuer:           "gateway/region",
	},
	{
		ID:   "ZBR207I",
		Text: "LINUX AGENTS CONNECTED NOT SHOWN: count BETWEEN first AND last UTC; connected OF hosts CONNECTED NOW",
		Inserts: []Insert{
			{"count", "how many ZBR204I messages were held back since the last summary"},
			{"first, last", "when the first and the last of them were held back (UTC, to the millisecond)"},
			{"connected", "how many Linux systems the region is connected to now"},
			{"hosts", "how many Linux systems the region knows (static and learned)"},
		},
		Explanation: "More Linux agents connected than ZBR204I is issued for (10 at once, then one every 6 " +
			"seconds): a region with thousands of agents connects them within seconds of its start, and " +
			"one message each would flood the automation watching the region's messages. The connections " +
			"held back are counted here, every 30 seconds while there are any, and when the region stops.",
		SystemAction:     "None. AGENTS lists every agent, and the region log has a line for each connection (component=agents).",
		OperatorResponse: "None. connected below hosts: AGENTS shows which systems are not connected, and why.",
		Issuer:           "gateway/region",
	},
	{
		ID: "ZBR208E",
		Text: "LINUX AGENTS LOST OR REFUSED NOT SHOWN: lost LOST, refused REFUSED BETWEEN first AND last UTC; " +
			"connected OF hosts CONNECTED NOW",
		Inserts: []Insert{
			{"lost", "how many ZBR205E messages (connections lost) were held back since the last summary"},
			{"refused", "how many ZBR206E messages (host keys refused) were held back"},
			{"first, last", "when the first and the last of them were held back (UTC, to the millisecond)"},
			{"connected", "how many Linux systems the region is connected to now"},
			{"hosts", "how many Linux systems the region knows (static and learned)"},
		},
		Explanation: "More Linux agents were lost, or refused for their host key, than ZBR205E and ZBR206E are " +
			"issued for (10 of each at once, then one every 6 seconds), as when the network between the " +
			"region and many systems fails. Those held back are counted here, every 30 seconds while there " +
			"are any, and when the region stops.",
		SystemAction:     "The region redials every system lost; it refuses the systems whose host key it refused while they present that key.",
		OperatorResponse: "See AGENTS for the systems not connected and the last error of each: many lost at once is a network failure between them and the region; a refused host key is handled as for ZBR206E.",
		Issuer:           "gateway/region",
	},
	{
		ID:   "ZBR301I",
		Text: "CONSOLE LOGON BY client FROM addr",
		Inserts: []Insert{
			{"client", "the client the operator logged on as"},
			{"addr", "the address of the operator's terminal"},
		},
		Explanation:      "An operator logged on to the region's 3270 console.",
		SystemAction:     "The console shows the log, runs the operator's commands as the client's roles allow.",
		OperatorResponse: "None.",
		Issuer:           "gateway/region",
	},
	{
		ID:   "ZBR302I",
		Text: "CONSOLE LOGOFF BY client FROM addr",
		Inserts: []Insert{
			{"client", "the client the operator logged on as"},
			{"addr", "the address of the operator's terminal"},
		},
		Explanation: "An operator's console session ended: PF3, the terminal closed the connection, it was idle " +
			"too long, the client was revoked by a refresh, or the region stopped.",
		SystemAction:     "None.",
		OperatorResponse: "None.",
		Issuer:           "gateway/region",
	},
	{
		ID:   "ZBR310I",
		Text: "COMMAND id ENDED RC=rc",
		Inserts: []Insert{
			{"id", "the command's ID, as in the audit log"},
			{"rc", "its exit status (with SIGNAL=name when a signal ended it, and TRUNCATED when output was cut)"},
		},
		Explanation:      "On the console: a command the operator typed ended; its output is above this line.",
		SystemAction:     "None.",
		OperatorResponse: "None.",
		Issuer:           "zos/console",
	},
	{
		ID:   "ZBR311E",
		Text: "COMMAND NOT RUN: reason",
		Inserts: []Insert{
			{"reason", "why: the client's roles do not grant it, the target is not connected, a bad command line, a timeout"},
		},
		Explanation:      "On the console: the command the operator typed was refused, or failed before it ended.",
		SystemAction:     "The command did not run, or was ended.",
		OperatorResponse: "Correct the command line, or ask the security team for a role that grants it.",
		Issuer:           "zos/console",
	},
	{
		ID:   "ZBR312I",
		Text: "FILTER SET: filter",
		Inserts: []Insert{
			{"filter", "the filter terms (as UNSOLMSG takes them), or ALL for none"},
		},
		Explanation:      "On the console: the log area shows only the events that match the filter.",
		SystemAction:     "The log area is read again with the filter.",
		OperatorResponse: "None.",
		Issuer:           "zos/console",
	},
	{
		ID:   "ZBR313E",
		Text: "FILTER NOT SET: reason",
		Inserts: []Insert{
			{"reason", "what is wrong with the filter line"},
		},
		Explanation:      "On the console: the filter line could not be read; the filter in force stays.",
		SystemAction:     "None.",
		OperatorResponse: "Correct the filter line: terms such as origin=lnx* severity<=warning msgid=HCP*.",
		Issuer:           "zos/console",
	},
	{
		ID:   "ZBR314E",
		Text: "LOGON REFUSED: reason",
		Inserts: []Insert{
			{"reason", "why, without saying which of the name and the secret was wrong"},
		},
		Explanation:      "On the console's logon panel: the logon was refused.",
		SystemAction:     "The logon panel is shown again; after repeated failures the connection is closed and the address throttled.",
		OperatorResponse: "Type the client name and secret again, or ask the security team for a client with the console port.",
		Issuer:           "zos/console",
	},
	{
		ID:   "ZBR401I",
		Text: "COMPONENT component IS UP: change",
		Inserts: []Insert{
			{"component", "what the ledger measures: a system, a guest, a service"},
			{"change", "what said so: a message ID or event type, heartbeat, probe-ok"},
		},
		Explanation: "The availability ledger recorded that the component is up (its record is in the " +
			"event's structured data, status@zbridge). It is issued for each change only, as an event " +
			"with source=availability.",
		SystemAction:     "The record is kept for availability reports (zbridge report).",
		OperatorResponse: "None.",
		Issuer:           "gateway/region",
	},
	{
		ID:   "ZBR402E",
		Text: "COMPONENT component IS DOWN: change",
		Inserts: []Insert{
			{"component", "what the ledger measures: a system, a guest, a service"},
			{"change", "what said so: a message ID or event type, heartbeat-lost, probe-failed, probe-timeout, probe-error"},
		},
		Explanation: "The availability ledger recorded that the component is down: a rule matched a " +
			"message or event saying so, its heartbeat was missing for its interval, or its probe failed. " +
			"It is issued for each change only, as an event with source=availability.",
		SystemAction:     "The outage counts in availability reports until ZBR401I says the component is up.",
		OperatorResponse: "See why the component is down (the change, the event it names) and restore it.",
		Issuer:           "gateway/region",
	},
	{
		ID:   "ZBR403I",
		Text: "AVAILABILITY REPORT FOR day WRITTEN TO files",
		Inserts: []Insert{
			{"day", "the day reported on, yyyy-mm-dd (UTC)"},
			{"files", "the report's files: the same name with .txt, .csv and .html"},
		},
		Explanation:      "The region wrote the day's availability report into --report-dir, a minute after midnight UTC.",
		SystemAction:     "None.",
		OperatorResponse: "None. Collect the files as the site's reporting does.",
		Issuer:           "gateway/region",
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
	locs := insertSpans(m.Text)
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
		case !validID(m.ID):
			return fmt.Errorf("zos: message ID %q is not ZBR, three digits and A, E, I or W", m.ID)
		case i > 0 && c[i-1].ID >= m.ID:
			return fmt.Errorf("zos: message %s is not after %s", m.ID, c[i-1].ID)
		case m.Text == "" || m.Explanation == "" || m.SystemAction == "" || m.OperatorResponse == "" || m.Issuer == "":
			return fmt.Errorf("zos: message %s lacks its text, explanation, system action, operator response or issuer", m.ID)
		}
	}
	return nil
}

// insertSpans returns where the inserts of a message's text are, as start and
// end offsets: each run of a lower-case letter then lower-case letters and
// hyphens (the fixed words are upper case).
func insertSpans(text string) [][2]int {
	var locs [][2]int
	for i := 0; i < len(text); i++ {
		if text[i] < 'a' || text[i] > 'z' {
			continue
		}
		start := i
		for i+1 < len(text) && (text[i+1] >= 'a' && text[i+1] <= 'z' || text[i+1] == '-') {
			i++
		}
		locs = append(locs, [2]int{start, i + 1})
	}
	return locs
}

// Pattern returns a regular expression that matches the whole text of an
// issue of the message, its ID first: the fixed words as they are, each
// insert as one or more characters.
func (m *Message) Pattern() *regexp.Regexp {
	var b []byte
	b = append(b, '^')
	b = append(b, regexp.QuoteMeta(m.ID+" ")...)
	last := 0
	for _, loc := range insertSpans(m.Text) {
		b = append(b, regexp.QuoteMeta(m.Text[last:loc[0]])...)
		b = append(b, "(.+?)"...)
		last = loc[1]
	}
	b = append(b, regexp.QuoteMeta(m.Text[last:])...)
	b = append(b, '$')
	return regexp.MustCompile(string(b))
}
