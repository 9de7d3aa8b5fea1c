package trust

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/zbridge/zbridge/commands"
	"github.com/zbridge/zbridge/commands/cmdpattern"
	"github.com/zbridge/zbridge/gateway/auth"
	"github.com/zbridge/zbridge/protocol"
)

// The ports a role may grant by name. VMMON is granted per system name.
const (
	PortUnsolMsg = "unsolmsg"
	PortCommands = "commands"
	PortVMMon    = "vmmon"
	// PortConsole is the 3270 operator console: an operator sees there
	// the events the roles' events grant and runs the commands their
	// targets grant, as on UNSOLMSG and COMMANDS.
	PortConsole = "console"
)

// AnyCommand is the command pattern that grants every command line as
// typed, shell syntax included.
const AnyCommand = "**"

// Policy is one reading of the clients and roles. It is never modified.
type Policy struct {
	open    bool // no clients and no roles: anyone may do everything (loopback only)
	roles   int  // how many roles are configured
	auth    auth.Authenticator
	clients map[string][]*role // by client name; nil slice for a client without roles
	hashes  map[string]string  // the config file's clients' secret hashes
	legacy  *auth.Clients      // the clients file's, if any
}

type role struct {
	name        string
	ports       map[string]bool
	vmmon       []string
	events      []*protocol.Filter
	groups      []string
	seeOthers   bool
	maxTimeout  time.Duration
	maxInFlight int
	targets     []*targetGrant
}

// runsCommands reports whether the role's targets apply: it grants a port
// that runs commands (COMMANDS or the console).
func (r *role) runsCommands() bool { return r.ports[PortCommands] || r.ports[PortConsole] }

type targetGrant struct {
	pattern  string
	any      bool // the command pattern ** alone
	commands []*cmdpattern.Pattern
}

// Options are what a Policy needs besides the file.
type Options struct {
	// Clients are clients from elsewhere (the --clients file); they hold
	// no roles. Optional.
	Clients *auth.Clients
}

// NewPolicy compiles f (which may be nil: no file) with opts.
func NewPolicy(f *File, opts Options) (*Policy, error) {
	if f == nil {
		f = &File{}
	}
	// Open: no clients and no roles anywhere, the loopback-only mode.
	// Once clients are configured, anything their roles do not grant is
	// refused, also for clients of the clients file.
	open := len(f.Roles) == 0 && len(f.Clients) == 0 && (opts.Clients == nil || len(opts.Clients.Names()) == 0)
	p := &Policy{open: open, clients: map[string][]*role{}, hashes: map[string]string{}, legacy: opts.Clients}
	roles := map[string]*role{}
	for i, rs := range f.Roles {
		r, err := compileRole(rs)
		if err != nil {
			return nil, fmt.Errorf("%w: role %d (%q): %w", ErrInvalid, i+1, rs.Name, err)
		}
		if roles[r.name] != nil {
			return nil, fmt.Errorf("%w: role %q defined twice", ErrInvalid, r.name)
		}
		roles[r.name] = r
	}
	p.roles = len(roles)
	var lines strings.Builder
	roleOnly := map[string]bool{} // clients of the clients file given roles here
	for i, cs := range f.Clients {
		switch {
		case cs.Name == "":
			return nil, fmt.Errorf("%w: client %d: name is required", ErrInvalid, i+1)
		case cs.SecretHash == "" && (opts.Clients == nil || !opts.Clients.Has(cs.Name)):
			return nil, fmt.Errorf("%w: client %q: secret-hash is required (or the client must be in the clients file)", ErrInvalid, cs.Name)
		}
		if strings.ContainsAny(cs.Name, ":\n\r") || strings.ContainsAny(cs.SecretHash, "\n\r") {
			return nil, fmt.Errorf("%w: client %d: bad name or secret-hash", ErrInvalid, i+1)
		}
		if _, dup := p.clients[cs.Name]; dup {
			return nil, fmt.Errorf("%w: client %q defined twice", ErrInvalid, cs.Name)
		}
		rs := []*role{}
		for _, rn := range cs.Roles {
			r := roles[rn]
			if r == nil {
				return nil, fmt.Errorf("%w: client %q: no role %q", ErrInvalid, cs.Name, rn)
			}
			rs = append(rs, r)
		}
		p.clients[cs.Name] = rs
		if cs.SecretHash == "" {
			roleOnly[cs.Name] = true // its secret is the clients file's
			continue
		}
		p.hashes[cs.Name] = strings.TrimSpace(cs.SecretHash)
		lines.WriteString(cs.Name + ":" + cs.SecretHash + "\n")
	}
	var auths multiAuth
	if lines.Len() > 0 {
		c, err := auth.Parse(strings.NewReader(lines.String()))
		if err != nil {
			return nil, fmt.Errorf("%w: clients: %w", ErrInvalid, err)
		}
		auths = append(auths, c)
	}
	if opts.Clients != nil {
		for _, name := range opts.Clients.Names() {
			if roleOnly[name] {
				continue
			}
			if _, dup := p.clients[name]; dup {
				return nil, fmt.Errorf("%w: client %q is both in the config file and in the clients file", ErrInvalid, name)
			}
			p.clients[name] = nil
		}
		auths = append(auths, opts.Clients)
	}
	if len(auths) > 0 {
		p.auth = auths
	}
	return p, nil
}

func compileRole(rs RoleSpec) (*role, error) {
	if rs.Name == "" {
		return nil, fmt.Errorf("a role needs a name")
	}
	r := &role{name: rs.Name, ports: map[string]bool{}, vmmon: rs.VMMon, groups: rs.Groups,
		seeOthers: rs.SeeOthers, maxTimeout: rs.MaxTimeout.Duration, maxInFlight: rs.MaxInFlight}
	for _, port := range rs.Ports {
		switch port = strings.ToLower(port); port {
		case PortUnsolMsg, PortCommands, PortConsole:
			r.ports[port] = true
		case PortVMMon:
			return nil, fmt.Errorf("ports: VMMON is granted per system name with vmmon = [\"SYSTEM\"]")
		default:
			return nil, fmt.Errorf("ports: unknown port %q (unsolmsg, commands, console)", port)
		}
	}
	if r.maxInFlight < 0 {
		return nil, fmt.Errorf("max-in-flight %d is negative", r.maxInFlight)
	}
	for _, ev := range rs.Events {
		flt, err := protocol.ParseFilter(ev)
		if err != nil {
			return nil, fmt.Errorf("events %q: %w", ev, err)
		}
		r.events = append(r.events, flt)
	}
	for _, tg := range rs.Targets {
		g := &targetGrant{pattern: strings.TrimSpace(tg.Pattern)}
		kind, _, _ := strings.Cut(g.pattern, ":")
		switch {
		case strings.EqualFold(g.pattern, "region"):
			g.pattern = "region"
		case strings.EqualFold(kind, string(commands.KindLinux)), strings.EqualFold(kind, string(commands.KindZVM)):
		default:
			return nil, fmt.Errorf("target %q: want linux:NAME, linux:ADDR=IP, zvm:SYSTEM or region", tg.Pattern)
		}
		if len(tg.Commands) == 0 {
			return nil, fmt.Errorf("target %q grants no commands", tg.Pattern)
		}
		fold := !strings.EqualFold(kind, string(commands.KindLinux))
		cp := strings.EqualFold(kind, string(commands.KindZVM))
		for _, c := range tg.Commands {
			if strings.TrimSpace(c) == AnyCommand {
				g.any = true
				continue
			}
			pat, err := cmdpattern.Compile(c, cmdpattern.Options{Fold: fold, CP: cp})
			if err != nil {
				return nil, fmt.Errorf("target %q: command %q: %w", tg.Pattern, c, err)
			}
			g.commands = append(g.commands, pat)
		}
		r.targets = append(r.targets, g)
	}
	return r, nil
}

// multiAuth tries each authenticator in turn; names are unique across them.
type multiAuth []*auth.Clients

func (m multiAuth) Authenticate(ctx context.Context, name, secret string) error {
	for _, c := range m {
		if c.Has(name) {
			return c.Authenticate(ctx, name, secret)
		}
	}
	// An unknown name: hashed against a dummy all the same, so that the
	// time taken does not tell which names exist.
	return m[0].Authenticate(ctx, name, secret)
}

// Open reports whether neither clients nor roles are configured: the
// loopback-only mode in which anyone may do everything.
func (p *Policy) Open() bool { return p.open }

// HasRoles reports whether any role is configured.
func (p *Policy) HasRoles() bool { return p.roles > 0 }

// HasClients reports whether any client is configured (logons are checked).
func (p *Policy) HasClients() bool { return p.auth != nil }

// Clients returns the configured client names, sorted.
func (p *Policy) Clients() []string {
	out := make([]string, 0, len(p.clients))
	for n := range p.clients {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// SameSecret reports whether client has the same secret in p and in old:
// false for a client whose secret hash changed (its sessions should end),
// or that is missing from either.
func (p *Policy) SameSecret(old *Policy, client string) bool {
	if h, ok := p.hashes[client]; ok {
		return h == old.hashes[client]
	}
	if p.legacy == nil || old.legacy == nil {
		return false
	}
	return p.legacy.SameSecret(old.legacy, client)
}

// Known reports whether client is configured.
func (p *Policy) Known(client string) bool {
	_, ok := p.clients[client]
	return ok
}

func deny(client, format string, args ...any) error {
	return &Denial{Client: client, Reason: fmt.Sprintf(format, args...)}
}

func (p *Policy) roleNames(client string) string {
	var names []string
	for _, r := range p.clients[client] {
		names = append(names, r.name)
	}
	if len(names) == 0 {
		return "it holds no roles"
	}
	return "roles: " + strings.Join(names, ", ")
}

// Port reports whether client may log on to port (PortUnsolMsg or
// PortCommands). It returns a *Denial if not.
func (p *Policy) Port(client, port string) error {
	if p.open {
		return nil
	}
	for _, r := range p.clients[client] {
		if r.ports[port] {
			return nil
		}
	}
	return deny(client, "client %s may not use %s: no role grants ports = [%q] (%s)",
		client, strings.ToUpper(port), port, p.roleNames(client))
}

// VMMon reports whether client may log on to VMMON as system.
func (p *Policy) VMMon(client, system string) error {
	if p.open {
		return nil
	}
	for _, r := range p.clients[client] {
		for _, pat := range r.vmmon {
			if protocol.Glob(pat, system) {
				return nil
			}
		}
	}
	return deny(client, "client %s may not log on to VMMON as system %s: no role grants vmmon = [%q] (%s)",
		client, system, system, p.roleNames(client))
}

// VMMonAny reports whether client may log on to VMMON as some system: a
// *Denial if none of its roles has a vmmon grant. The system itself is
// checked by VMMon once the session says which it is.
func (p *Policy) VMMonAny(client string) error {
	if p.open {
		return nil
	}
	for _, r := range p.clients[client] {
		if len(r.vmmon) > 0 {
			return nil
		}
	}
	return deny(client, "client %s may not use VMMON: no role grants vmmon = [\"SYSTEM\"] (%s)",
		client, p.roleNames(client))
}

// Visible reports whether client may see event e (one of its roles' event
// filters matches; audit records only through a filter naming them).
func (p *Policy) Visible(client string, e *protocol.Event) bool {
	if p.open {
		return true
	}
	for _, r := range p.clients[client] {
		for _, f := range r.events {
			if e.Source == protocol.SourceAudit && !namesSource(f, protocol.SourceAudit) {
				continue
			}
			if f.Match(e) {
				return true
			}
		}
	}
	return false
}

// VisibleAll reports whether client may see every event other than audit
// records, whatever it holds: the policy is open, or a role of the client
// grants events with a filter that matches all (protocol.Filter.MatchesAll:
// "severity=debug", say). Visible then says yes to any event
// whose source is not audit, so a subscriber without a filter of its own
// needs nothing of such an event to be told (unsolmsg's light reads).
func (p *Policy) VisibleAll(client string) bool {
	if p.open {
		return true
	}
	for _, r := range p.clients[client] {
		for _, f := range r.events {
			if f.MatchesAll() {
				return true
			}
		}
	}
	return false
}

// Subscribe reports whether client may subscribe to events at all: one of
// its roles grants some. It returns a *Denial if not.
func (p *Policy) Subscribe(client string) error {
	if p.open {
		return nil
	}
	for _, r := range p.clients[client] {
		if len(r.events) > 0 {
			return nil
		}
	}
	return deny(client, "client %s may not subscribe: no role grants events = [...] (%s)", client, p.roleNames(client))
}

func namesSource(f *protocol.Filter, s protocol.Source) bool {
	for _, x := range f.Source {
		if x == s {
			return true
		}
	}
	return false
}

// GroupKey returns the store's name for client's consumer group called
// group. A group that one of client's roles shares (groups = [...]) is
// that role's: every client holding the role gets the key
// "role/ROLE:GROUP", and clients of other roles cannot join it (they would
// take its events, and acknowledge for it events they may not see). Any
// other group is client's own: "CLIENT:GROUP". With no roles (open) the
// name is global, as it was before roles.
func (p *Policy) GroupKey(client, group string) string {
	if p.open {
		return group
	}
	for _, r := range p.clients[client] {
		for _, pat := range r.groups {
			if protocol.Glob(pat, group) {
				return "role/" + r.name + ":" + group
			}
		}
	}
	return client + ":" + group
}

// SeeOthers reports whether client may see other clients' commands.
func (p *Policy) SeeOthers(client string) bool {
	if p.open {
		return true
	}
	for _, r := range p.clients[client] {
		if r.seeOthers {
			return true
		}
	}
	return false
}

// Limits are a client's limits on commands; zero means none beyond the
// region's own.
type Limits struct {
	MaxTimeout  time.Duration
	MaxInFlight int
}

// Limits returns the loosest limits of client's roles that grant
// COMMANDS or the console: a role without a limit lifts it.
func (p *Policy) Limits(client string) Limits {
	var l Limits
	first := true
	for _, r := range p.clients[client] {
		if !r.runsCommands() {
			continue
		}
		if first {
			l, first = Limits{MaxTimeout: r.maxTimeout, MaxInFlight: r.maxInFlight}, false
			continue
		}
		if r.maxTimeout == 0 || l.MaxTimeout == 0 {
			l.MaxTimeout = 0
		} else {
			l.MaxTimeout = max(l.MaxTimeout, r.maxTimeout)
		}
		if r.maxInFlight == 0 || l.MaxInFlight == 0 {
			l.MaxInFlight = 0
		} else {
			l.MaxInFlight = max(l.MaxInFlight, r.maxInFlight)
		}
	}
	return l
}

// Grant says why a command was allowed, and what to run.
type Grant struct {
	Rule string // "role ops: linux:web* uptime", or "open" with no roles
	// Pattern is the command pattern that allowed it, as the role lists
	// it (AnyCommand for a target granted any command); empty in the open
	// mode, where no role was asked.
	Pattern string
	// Line, when set, is the command line to send instead of the one
	// asked for: for a Linux command a pattern allowed, its words quoted
	// for /bin/sh (cmdpattern.Quote), so that whatever shell reads it on
	// the target (an agentless sshd runs the user's login shell, and bash
	// expands {a,b} where /bin/sh does not) it runs with exactly the words
	// the pattern was matched against.
	Line string
}

// targetName is the form target patterns match: kind:NAME,
// linux:ADDR=IP, or region.
func targetName(t commands.Target) string {
	switch {
	case t.Kind == commands.KindRegion:
		return "region"
	case t.Addr.IsValid():
		return string(t.Kind) + ":ADDR=" + t.Addr.String()
	}
	return string(t.Kind) + ":" + t.Name
}

// Command reports whether client may run line on t. It returns a *Denial
// naming what was missing if not.
func (p *Policy) Command(client string, t commands.Target, line string) (Grant, error) {
	if p.open {
		return Grant{Rule: "open (no roles configured)"}, nil
	}
	tn := targetName(t)
	var words []string
	var splitErr error
	split := false
	var granting []string
	for _, r := range p.clients[client] {
		if !r.runsCommands() {
			continue
		}
		for _, g := range r.targets {
			if !protocol.Glob(g.pattern, tn) {
				continue
			}
			if t.Addr.IsValid() && !strings.Contains(strings.ToUpper(g.pattern), ":ADDR=") {
				continue // a name pattern (linux:*1) never grants a system by its address
			}
			granting = append(granting, fmt.Sprintf("role %s grants %s", r.name, g.pattern))
			if g.any {
				return Grant{Rule: fmt.Sprintf("role %s: %s %s", r.name, g.pattern, AnyCommand), Pattern: AnyCommand}, nil
			}
			if !split {
				words, splitErr = splitLine(t.Kind, line)
				split = true
			}
			if splitErr != nil {
				continue
			}
			for _, c := range g.commands {
				if c.Match(words) {
					gr := Grant{Rule: fmt.Sprintf("role %s: %s %s", r.name, g.pattern, c), Pattern: c.String()}
					if t.Kind == commands.KindLinux {
						gr.Line = cmdpattern.Quote(words...)
					}
					return gr, nil
				}
			}
		}
	}
	switch {
	case len(granting) == 0:
		return Grant{}, deny(client, "client %s may not run commands on %s: no role grants that target (%s)",
			client, tn, p.roleNames(client))
	case splitErr != nil:
		return Grant{}, deny(client, "client %s may not run %q on %s: %v; only a role granting commands = [%q] there allows such a line (%s)",
			client, clipLine(line), tn, splitErr, AnyCommand, strings.Join(granting, "; "))
	}
	return Grant{}, deny(client, "client %s may not run %q on %s: no command pattern of its roles matches (%s)",
		client, clipLine(line), tn, strings.Join(granting, "; "))
}

// clipLine shortens a command line for a refusal's message, which goes to
// the client, the log and the audit record (beside the line itself):
// quoted whole, a long line of bytes %q writes as \xff would repeat it
// four times over.
func clipLine(line string) string {
	const n = 200
	if len(line) <= n {
		return line
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(line[cut]) {
		cut--
	}
	return line[:cut] + fmt.Sprintf("… (%d bytes)", len(line))
}

// words splits line as the target's kind reads it.
func splitLine(k commands.Kind, line string) ([]string, error) {
	if k == commands.KindLinux {
		// As the Linux agent splits it, refusing shell syntax: a line that
		// passes runs with these words under /bin/sh -c too (agentless).
		return cmdpattern.Split(line)
	}
	if k == commands.KindZVM {
		// As CP reads it: abbreviations written in full, and a line with
		// CP's line-editing characters (# line end, @, ") refused.
		return cmdpattern.SplitCP(line, "")
	}
	if strings.ContainsFunc(line, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return nil, fmt.Errorf("the line has control characters")
	}
	return strings.Fields(line), nil
}

// Authenticate implements session.Authenticator for all ports: the secret
// is checked, the port is not (see Port).
func (p *Policy) Authenticate(ctx context.Context, name, secret string) error {
	if p.auth == nil {
		return nil
	}
	return p.auth.Authenticate(ctx, name, secret)
}

// Authorizer holds the current Policy; Load swaps it for a new one, which
// applies to every question asked after.
type Authorizer struct {
	cur atomic.Pointer[Policy]
}

// NewAuthorizer returns an Authorizer holding p.
func NewAuthorizer(p *Policy) *Authorizer {
	a := &Authorizer{}
	a.cur.Store(p)
	return a
}

// Policy returns the current policy.
func (a *Authorizer) Policy() *Policy { return a.cur.Load() }

// Store makes p the current policy and returns the one it replaced.
func (a *Authorizer) Store(p *Policy) *Policy { return a.cur.Swap(p) }

// ForPort returns a session.Authenticator for one port: the secret and
// the port grant are both checked, against the policy current at logon.
func (a *Authorizer) ForPort(port string) PortAuthenticator {
	return PortAuthenticator{a: a, port: port}
}

// PortAuthenticator checks a logon to one port.
type PortAuthenticator struct {
	a    *Authorizer
	port string
}

// Authenticate checks name's secret, then that one of its roles grants
// the port (for VMMON, some system: the system is checked at admission). A
// refusal for a missing grant is a *Denial; a bad secret wraps
// auth.ErrBadCredentials. A logon it lets through counts as a success for
// the session server's throttle, so a name without the port must not pass.
func (pa PortAuthenticator) Authenticate(ctx context.Context, name, secret string) error {
	p := pa.a.Policy()
	if err := p.Authenticate(ctx, name, secret); err != nil {
		return err
	}
	if pa.port == PortVMMon {
		return p.VMMonAny(name)
	}
	return p.Port(name, pa.port)
}
