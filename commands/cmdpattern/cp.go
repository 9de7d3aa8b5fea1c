package cmdpattern

import (
	"fmt"
	"strings"
)

// CPSpecial are the characters a CP command line may never hold: CP's
// logical line editing characters as TERMINAL sets them by default, in
// codepage 037 (the z/VM agent's): # the logical line end (it makes one
// typed line several commands: "Q N#FORCE LINUX01", and "#CP" an escape),
// @ the logical character delete ("FORCF@E" is FORCE) and " the logical
// escape ("FORC"E" is FORCE). The logical line delete ¢ is not ASCII, and
// SplitCP refuses every character outside printable ASCII. z/VM 7.2 CP
// Commands and Utilities Reference, "Logical Line Editing Symbols":
// https://www.ibm.com/docs/en/zvm/7.2?topic=symbols-logical-line-delete
// and the pages beside it.
const CPSpecial = `#@"`

// cpCommand is a CP command whose abbreviations SplitCP knows.
type cpCommand struct {
	name string // as typed in full
	min  int    // the shortest abbreviation CP takes
	is   string // the command it is: name, or the one it is a synonym of
}

// cpCommands are the CP commands whose abbreviations SplitCP writes in
// full. The minimum abbreviation is the upper-case part of the command in
// the syntax diagrams of the z/VM 7.3 CP Commands and Utilities Reference:
// QUERY is "Query" (https://www.ibm.com/docs/en/zvm/7.3?topic=commands-query-password),
// XAUTOLOG "XAUTOLog" (https://www.ibm.com/docs/en/zvm/7.3.0?topic=commands-xautolog),
// SHUTDOWN "SHUTDOWN", no abbreviation (https://www.ibm.com/docs/en/zvm/7.3.0?topic=commands-shutdown),
// MESSAGE "Message" or "MSG" (https://www.ibm.com/docs/en/zvm/7.3?topic=commands-message-all;
// VM/370's HELP MESSAGE shows the same), FORCE "FORCE", no abbreviation
// (as the VM/370 Operator's Guide gives it too); WARNING "Warning" or
// "WNG", LOGOFF "LOGoff" or LOGOUT, DISCONNECT "DISConn" as the z/VM
// simulator (vmagent/zvmsim) takes them from the same reference. Only
// commands checked against a source are listed: a minimum set too low
// could make an allow pattern allow a line CP reads as another command.
// Other command names are matched as typed (and, with Options.Abbrev, by
// their abbreviations).
var cpCommands = []cpCommand{
	{"QUERY", 1, "QUERY"},
	{"MESSAGE", 1, "MESSAGE"},
	{"MSG", 3, "MESSAGE"},
	{"WARNING", 1, "WARNING"},
	{"WNG", 3, "WARNING"},
	{"XAUTOLOG", 6, "XAUTOLOG"},
	{"FORCE", 5, "FORCE"},
	{"SHUTDOWN", 8, "SHUTDOWN"},
	{"LOGOFF", 3, "LOGOFF"},
	{"LOGOUT", 6, "LOGOFF"},
	{"DISCONNECT", 4, "DISCONNECT"},
}

// CPCommands returns the CP commands whose abbreviations and synonyms
// SplitCP and Options.CP write in full, in full.
func CPCommands() []string {
	var names []string
	for _, c := range cpCommands {
		if c.name == c.is {
			names = append(names, c.name)
		}
	}
	return names
}

// SplitCP splits a CP command line into the words a CP pattern
// (Options.CP) matches: on blanks, a leading CP word dropped (CP takes "CP
// QUERY NAMES" as QUERY NAMES, as it does "#CP QUERY NAMES"), and the
// command name written in full and upper case when it is an abbreviation
// or synonym of one of CPCommands ("Q" is QUERY, "MSG" MESSAGE). It is how
// CP reads the line, so the region and the z/VM agent must both judge a
// CP command by SplitCP's words.
//
// It refuses, with a *SplitError wrapping ErrCPLineEdit, a line holding
// one of CPSpecial or of special (more line editing characters of a
// console whose TERMINAL settings differ from CP's defaults), and, with
// ErrBadCommand, a line holding a character outside printable ASCII
// (tab included), an empty line, or a command name that abbreviates two
// commands.
func SplitCP(line, special string) ([]string, error) {
	for i := 0; i < len(line); i++ {
		c := line[i]
		var what string
		switch {
		case c == '#':
			what = `"#", CP's logical line end, which would make the line several commands (send one CP command at a time)`
		case c == '@':
			what = `"@", CP's logical character delete: CP would not read the line as written`
		case c == '"':
			what = `'"', CP's logical escape: CP would not read the line as written`
		case c < 0x20 || c > 0x7e:
			return nil, &SplitError{Offset: i, Kind: ErrBadCommand,
				Detail: fmt.Sprintf("%q: only printable ASCII characters are typed on a CP console", line[i:i+1])}
		case strings.IndexByte(special, c) >= 0:
			what = fmt.Sprintf("%q, a line editing character of this console", string(c))
		default:
			continue
		}
		return nil, &SplitError{Offset: i, Kind: ErrCPLineEdit, Detail: what}
	}
	words := Fields(line)
	for len(words) > 0 && strings.EqualFold(words[0], "CP") {
		words = words[1:]
	}
	if len(words) == 0 {
		return nil, &SplitError{Offset: 0, Kind: ErrBadCommand, Detail: "empty command"}
	}
	name, err := cpName(words[0])
	if err != nil {
		return nil, &SplitError{Offset: strings.Index(line, words[0]), Kind: ErrBadCommand, Detail: err.Error()}
	}
	return append([]string{name}, words[1:]...), nil
}

// cpName returns the full command name of which word is an abbreviation
// or synonym, or word itself when it is none CP would take for one of
// cpCommands.
func cpName(word string) (string, error) {
	up := strings.ToUpper(word)
	found := ""
	for _, c := range cpCommands {
		if len(up) >= c.min && strings.HasPrefix(c.name, up) && found != c.is {
			if found != "" {
				return "", fmt.Errorf("%q abbreviates both %s and %s", word, found, c.is)
			}
			found = c.is
		}
	}
	if found == "" {
		return word, nil
	}
	return found, nil
}

// cpPattern checks a CP pattern's characters and reads its words as
// SplitCP reads a line's: a leading CP dropped, a literal first word
// written in full.
func cpPattern(pattern string) ([]string, error) {
	for i := 0; i < len(pattern); i++ {
		if c := pattern[i]; (c < 0x20 && c != '\t') || c > 0x7e || strings.IndexByte(CPSpecial, c) >= 0 {
			return nil, &PatternError{Offset: i, Msg: fmt.Sprintf("%q: no CP command holds it (SplitCP refuses it)", pattern[i:i+1])}
		}
	}
	words := Fields(pattern)
	for len(words) > 0 && strings.EqualFold(words[0], "CP") {
		words = words[1:]
	}
	if len(words) == 0 {
		return nil, &PatternError{Offset: 0, Msg: "no command"}
	}
	if !strings.ContainsAny(words[0], "*?") {
		name, err := cpName(words[0])
		if err != nil {
			return nil, &PatternError{Offset: strings.Index(pattern, words[0]), Msg: err.Error()}
		}
		words[0] = name
	}
	return words, nil
}
