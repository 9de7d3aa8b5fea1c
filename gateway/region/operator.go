package region

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/zbridge/zbridge/commands"
	"github.com/zbridge/zbridge/gateway/session"
	"github.com/zbridge/zbridge/protocol/lx"
	"github.com/zbridge/zbridge/zos"
)

// operator runs the region's own commands (target "region"), as an
// operator would with F rname,SERVERS on the mainframe side.
type operator struct{ r *Region }

var operatorHelp = []string{
	"SERVERS   the region's servers, their addresses and sessions",
	"AGENTS    the agents of every region sharing the store: kind, address, state, since, last heartbeat, region",
	"REGIONS   the regions sharing this region's Redis, alive or dead",
	"CLIENTS   the client sessions on UNSOLMSG and COMMANDS",
	"COMMANDS  the commands in flight (the client's own, or every client's with see-others)",
	"REFRESH   read the config file and the clients file again (as SIGHUP does); reopen the audit log",
	"STOP      stop the region as SIGTERM does, draining it (P NAME); the service manager restarts it only if told to",
	"AVAIL     the availability ledger's components and their status (AVAIL RECORDS AFTER SEQ MAX N: its records, for zbridge report)",
	"HELP      this list",
	"Each also as the z/OS operator types it: F NAME,WORD (MODIFY), D NAME,WORD (DISPLAY) for those that show something, P NAME for STOP.",
}

// displayWords are the region commands that only show something: the ones
// D (DISPLAY) takes.
var displayWords = []string{"SERVERS", "AGENTS", "REGIONS", "CLIENTS", "COMMANDS", "AVAIL", "HELP"}

// operatorCommand reads a region command as an operator types it: the
// plain word (SERVERS), or the z/OS operator forms typed from habit —
// F NAME,WORD or MODIFY NAME,WORD for any region command, D NAME,WORD or
// DISPLAY NAME,WORD for the ones that show something — NAME being this
// region's name (any case). It returns the plain word, which the roles'
// command patterns are then matched against: a form cannot reach what the
// word could not. P NAME (or STOP) is the word STOP: it stops the region
// as SIGTERM does, draining it, where the client's roles grant STOP (by
// name, or by a pattern such as * that matches it).
func operatorCommand(line, region string) (string, error) {
	line = strings.TrimSpace(line)
	verb, rest, _ := strings.Cut(line, " ")
	bad := func(format string, args ...any) (string, error) {
		return "", &commands.Error{Code: commands.CodeBadRequest, Message: fmt.Sprintf(format, args...)}
	}
	display := false
	switch strings.ToUpper(verb) {
	case "F", "MODIFY":
	case "D", "DISPLAY":
		display = true
	case "P", "STOP":
		// P NAME: the word STOP, which a role must grant by name or
		// pattern; the plain word alone is STOP too.
		name := strings.TrimSpace(rest)
		switch {
		case name == "" && strings.EqualFold(verb, "STOP"):
		case name == "":
			return bad("%s: the form is P NAME (P %s)", line, region)
		case !strings.EqualFold(name, region):
			return bad("%s: this is region %s, not %s", line, region, name)
		}
		return "STOP", nil
	default:
		return line, nil // the plain word
	}
	name, word, ok := strings.Cut(rest, ",")
	name, word = strings.TrimSpace(name), strings.ToUpper(strings.TrimSpace(word))
	switch {
	case !ok || name == "" || word == "":
		return bad("%s: the form is %s NAME,COMMAND (%s %s,SERVERS)", line, strings.ToUpper(verb), strings.ToUpper(verb), region)
	case !strings.EqualFold(name, region):
		return bad("%s: this is region %s, not %s", line, region, name)
	case strings.ContainsAny(word, " ,"):
		return bad("%s: one region command after the comma (HELP lists them)", line)
	case display && !slices.Contains(displayWords, word):
		return bad("%s: D shows %s; F %s,%s runs it", line, strings.Join(displayWords, ", "), region, word)
	}
	return word, nil
}

// Run implements commands.Executor.
func (o operator) Run(ctx context.Context, req *commands.Request, out func(commands.Output)) (commands.Result, error) {
	word := strings.ToUpper(strings.TrimSpace(req.Command))
	if word == "" {
		word = "HELP"
	}
	// Each answer is one message of the catalogue (package zos): its
	// first line has the ID, the lines after it belong to it.
	name := o.r.cfg.Name
	var lines []string
	switch word {
	case "SERVERS":
		lines = append([]string{zos.Must("ZBR010I").Format(name)}, o.servers()...)
	case "AGENTS":
		lines = append([]string{zos.Must("ZBR011I").Format(name)}, o.agents()...)
	case "REGIONS":
		lines = append([]string{zos.Must("ZBR012I").Format(name)}, o.regions()...)
	case "CLIENTS":
		lines = append([]string{zos.Must("ZBR013I").Format(name)}, o.clients()...)
	case "COMMANDS":
		lines = append([]string{zos.Must("ZBR014I").Format(name)}, o.inflight(req.Requester)...)
	case "REFRESH":
		msg, err := o.r.Refresh(req.Requester)
		if err != nil {
			return commands.Result{}, &commands.Error{Code: commands.CodeFailed, Message: err.Error()}
		}
		lines = []string{zos.Must("ZBR016I").Format(name, msg)}
	case "HELP":
		lines = append([]string{zos.Must("ZBR015I").Format(name)}, operatorHelp...)
	case "STOP":
		// The answer is sent before the region stops: COMMANDS lets
		// commands in flight, this one included, finish.
		reason := "P " + name + " BY " + quoteName(req.Requester)
		lines = []string{zos.Must("ZBR002I").Format(name, reason)}
		defer o.r.Stop(reason)
	default:
		f := strings.Fields(word)
		if len(f) == 0 || f[0] != "AVAIL" {
			return commands.Result{}, &commands.Error{Code: commands.CodeBadRequest,
				Message: fmt.Sprintf("unknown region command %q; HELP lists them", req.Command)}
		}
		var err error
		if lines, err = o.avail(req.Requester, f[1:]); err != nil {
			return commands.Result{}, err
		}
		if len(f) > 1 {
			// The records are JSON lines, which escape what they must:
			// sent as they are, for zbridge report to read.
			for _, l := range lines {
				out(commands.Output{Stream: commands.Stdout, Data: []byte(l), EOL: true})
			}
			return commands.Result{}, ctx.Err()
		}
	}
	for _, l := range lines {
		// Fields come from peers (an SSH banner, another region's registry
		// entry in Redis): escaped, so that none can drive the operator's
		// terminal.
		out(commands.Output{Stream: commands.Stdout, Data: lx.AppendEscaped(nil, l), EOL: true})
	}
	return commands.Result{}, ctx.Err()
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func (o operator) servers() []string {
	r := o.r
	lines := []string{fmt.Sprintf("%-10s %-22s %s", "SERVER", "ADDRESS", "SESSIONS")}
	add := func(name, key string, sessions string) {
		a := r.Addr(key)
		addr := "off"
		if a != nil {
			addr = a.String()
		}
		lines = append(lines, fmt.Sprintf("%-10s %-22s %s", name, addr, sessions))
	}
	st := r.syslog.Stats()
	add("SYSLOG", "syslog", fmt.Sprintf("%d connections", st.Active))
	add("SYSLOG-UDP", "syslog-udp", fmt.Sprintf("%d datagrams", st.Datagrams))
	add("UNSOLMSG", "unsolmsg", fmt.Sprintf("%d sessions", r.unsol.Stats().Active))
	add("COMMANDS", "commands", fmt.Sprintf("%d sessions", r.cmds.Stats().Active))
	add("VMMON", "vmmon", fmt.Sprintf("%d z/VM agents", r.vmmon.Stats().Active))
	console := "-"
	if r.console != nil {
		console = fmt.Sprintf("%d operators", r.console.Stats().Active)
	}
	add("CONSOLE", "console", console)
	add("HTTP", "http", "-")
	return lines
}

func (o operator) agents() []string {
	const layout = "%-16s %-6s %-22s %-10s %-20s %-20s %-10s %s"
	lines := []string{fmt.Sprintf(layout, "NAME", "KIND", "ADDRESS", "STATE", "SINCE", "LAST-HEARTBEAT", "REGION", "SERVER")}
	rows, err := o.r.allAgents(context.Background())
	for _, a := range rows {
		lines = append(lines, fmt.Sprintf(layout, a.Name, a.Kind, a.Addr, a.State,
			stamp(a.Since), stamp(a.LastHeartbeat), a.Region, a.Detail))
	}
	if err != nil {
		lines = append(lines, fmt.Sprintf("(the agents of other regions are not listed: %v)", err))
	}
	return lines
}

// regionAgent is an agent of this region or of another sharing the store.
type regionAgent struct {
	AgentInfo
	Region string
}

// allAgents lists this region's agents, then those of the regions it
// shares Redis with (the error says why those could not be listed).
func (r *Region) allAgents(ctx context.Context) ([]regionAgent, error) {
	var out []regionAgent
	for _, a := range r.Agents() {
		out = append(out, regionAgent{AgentInfo: a, Region: r.cfg.Name})
	}
	c := r.clusterOrNil()
	if c == nil {
		return out, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	others, err := c.Agents(ctx)
	if err != nil {
		return out, err
	}
	sort.Slice(others, func(i, j int) bool { return others[i].Name < others[j].Name })
	for _, a := range others {
		if a.Region == r.cfg.Name {
			continue
		}
		out = append(out, regionAgent{AgentInfo: AgentInfo{Name: a.Name, Kind: string(a.Kind), Addr: a.Addr, State: a.State,
			Since: a.Since, Detail: a.Detail}, Region: a.Region})
	}
	return out, nil
}

func (o operator) regions() []string {
	c := o.r.clusterOrNil()
	if c == nil {
		return []string{"this region shares no state (no --redis): it is the only one"}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	regions, err := c.Regions(ctx)
	if err != nil {
		return []string{fmt.Sprintf("the regions cannot be listed: %v", err)}
	}
	const layout = "%-12s %-6s %-20s %-20s %-22s %s"
	lines := []string{fmt.Sprintf(layout, "REGION", "STATE", "STARTED", "LAST-SEEN", "COMMANDS", "UNSOLMSG")}
	sort.Slice(regions, func(i, j int) bool { return regions[i].Name < regions[j].Name })
	for _, x := range regions {
		state := "alive"
		if !x.Alive {
			state = "dead"
		}
		lines = append(lines, fmt.Sprintf(layout, x.Name, state, stamp(x.Started), stamp(x.Seen), x.Addrs.Commands, x.Addrs.UnsolMsg))
	}
	return lines
}

func (o operator) clients() []string {
	lines := []string{fmt.Sprintf("%-9s %-16s %-22s %-20s %s", "SERVER", "CLIENT", "REMOTE", "SINCE", "SESSION")}
	add := func(server string, infos []session.Info) {
		sort.Slice(infos, func(i, j int) bool { return infos[i].ID < infos[j].ID })
		for _, s := range infos {
			lines = append(lines, fmt.Sprintf("%-9s %-16s %-22s %-20s %s", server, s.Client, s.Remote, stamp(s.Since), s.ID))
		}
	}
	add("UNSOLMSG", o.r.unsol.Sessions())
	add("COMMANDS", o.r.cmds.Sessions())
	return lines
}

// inflight lists the commands in flight: those of client, or everyone's if
// a role lets client see others'.
func (o operator) inflight(client string) []string {
	lines := []string{fmt.Sprintf("%-20s %-24s %-16s %-20s %s", "ID", "TARGET", "CLIENT", "SINCE", "COMMAND")}
	all := o.r.guard.authz.Policy().SeeOthers(client)
	fl := slices.DeleteFunc(o.r.router.InFlight(), func(f commands.InFlight) bool { return !all && f.Requester != client })
	sort.Slice(fl, func(i, j int) bool { return fl[i].Since.Before(fl[j].Since) })
	for _, f := range fl {
		lines = append(lines, fmt.Sprintf("%-20s %-24s %-16s %-20s %s", f.ID, f.Target, f.Requester, stamp(f.Since), f.Command))
	}
	return lines
}
