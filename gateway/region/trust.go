package region

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/commands"
	"github.com/zbridge/zbridge/gateway/audit"
	"github.com/zbridge/zbridge/gateway/auth"
	"github.com/zbridge/zbridge/gateway/availability"
	"github.com/zbridge/zbridge/gateway/session"
	"github.com/zbridge/zbridge/gateway/trust"
	"github.com/zbridge/zbridge/gateway/unsolmsg"
	"github.com/zbridge/zbridge/protocol"
)

// guard is the region's trust boundary: it holds the current policy
// (clients and roles from the config file and the clients file), checks
// every logon, subscription and command against it, keeps each client's
// limits, and writes the audit log.
type guard struct {
	r     *Region
	authz *trust.Authorizer
	audit *audit.Log // nil without --audit-log
	log   logrus.FieldLogger

	refreshMu sync.Mutex // serialises refresh

	mu       sync.Mutex // guards inflight
	inflight map[string]int
}

// loadPolicy reads the config file and the clients file (again, on a
// refresh) and compiles them. It changes nothing.
func (g *guard) loadPolicy() (*trust.Policy, error) {
	var f *trust.File
	if g.r.cfg.ConfigFile != "" {
		var err error
		if f, err = trust.ReadFile(g.r.cfg.ConfigFile); err != nil {
			return nil, err
		}
	}
	var clients *auth.Clients
	if g.r.cfg.ClientsFile != "" {
		// A new reading each time (not Reload): the policy it replaces
		// keeps the old one, so that a changed secret can be told.
		c, err := auth.Load(g.r.cfg.ClientsFile)
		if err != nil {
			return nil, fmt.Errorf("region: clients file: %w", err)
		}
		for _, w := range c.Warnings() {
			g.log.Warn(w.Error())
		}
		clients = c
	}
	p, err := trust.NewPolicy(f, trust.Options{Clients: clients})
	if err != nil {
		return nil, fmt.Errorf("region: %w", err)
	}
	return p, nil
}

func newGuard(r *Region) (*guard, error) {
	g := &guard{r: r, log: r.log.WithField("component", "trust"), inflight: map[string]int{}}
	p, err := g.loadPolicy()
	if err != nil {
		return nil, err
	}
	g.authz = trust.NewAuthorizer(p)
	switch {
	case p.Open():
		g.log.Info("no clients configured: any client name logs on without a secret and may do everything (loopback only)")
	case !p.HasRoles():
		g.log.Warnf("%d clients but no roles: every request is refused until --config gives them roles", len(p.Clients()))
	default:
		g.log.Infof("%d clients and their roles loaded", len(p.Clients()))
	}
	if r.cfg.AuditLog != "" {
		g.audit, err = audit.New(audit.Config{Path: r.cfg.AuditLog, Region: r.cfg.Name, Logger: g.log,
			Publish: func(ctx context.Context, rec audit.Record) error {
				return r.store.Append(ctx, []*protocol.Event{rec.Event()})
			}})
		if err != nil {
			return nil, fmt.Errorf("region: audit log: %w", err)
		}
	}
	return g, nil
}

func (g *guard) close() error {
	if g.audit != nil {
		return g.audit.Close()
	}
	return nil
}

// record writes rec to the audit log, if there is one, and waits until it
// is on disk.
func (g *guard) record(ctx context.Context, rec audit.Record) error {
	if g.audit == nil {
		return nil
	}
	rec.Time = time.Now()
	// A record is written even when its session has gone away.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err := g.audit.Write(ctx, rec)
	if err != nil {
		g.log.WithError(err).Error("writing the audit log failed")
	}
	return err
}

func sessionRecord(kind audit.Kind, server string, sess *session.Session) audit.Record {
	return audit.Record{Kind: kind, Server: server, Client: sess.Client, Remote: sess.Remote, Session: sess.ID}
}

// Begin implements commandsrv.Guard: the client's roles must grant the
// command, its limits must allow it, and its start must be in the audit
// log before it runs.
func (g *guard) Begin(sess *session.Session, req *commands.Request) error {
	rec := sessionRecord(audit.KindCommand, "commands", sess)
	return g.begin(sess.Context(), rec, req)
}

func (g *guard) begin(ctx context.Context, rec audit.Record, req *commands.Request) error {
	rec.Target, rec.Command, rec.ID, rec.Via = req.Target.String(), req.Command, req.ID, req.Via
	p := g.authz.Policy()
	refuse := func(ce *commands.Error) error {
		rec.Phase, rec.Outcome, rec.Code, rec.Message = audit.PhaseEnd, audit.OutcomeOf(ce.Code), ce.Code, ce.Message
		g.record(ctx, rec)
		return ce
	}
	if req.Target.Kind == commands.KindRegion {
		// F ZBR1,SERVERS is SERVERS: the roles are asked about the word.
		word, err := operatorCommand(req.Command, g.r.cfg.Name)
		if err != nil {
			ce := err.(*commands.Error)
			return refuse(ce)
		}
		req.Command = word
	}
	grant, err := p.Command(req.Requester, req.Target, req.Command)
	if err == nil && req.Target.Kind == commands.KindRegion && req.Command == "STOP" && !strings.EqualFold(grant.Pattern, "STOP") {
		// Stopping the region takes a role that names it: a pattern such
		// as * or ** written for the displays does not grant it, nor does
		// the open mode.
		err = fmt.Errorf("client %s may not stop the region: STOP is granted only by a role whose region commands list STOP by name (%s)",
			req.Requester, grantedBy(grant))
	}
	if err != nil {
		g.log.WithFields(logrus.Fields{"client": req.Requester, "target": rec.Target, "id": req.ID}).Warn("command refused: " + err.Error())
		return refuse(&commands.Error{Code: commands.CodeNotPermitted, Message: err.Error()})
	}
	rec.Rule, req.Grant = grant.Rule, grant.Rule
	if grant.Line != "" && grant.Line != req.Command {
		// What runs is the line quoted word by word: the audit log says so.
		req.Command = grant.Line
		rec.Command = req.Command
	}
	lim := p.Limits(req.Requester)
	if lim.MaxTimeout > 0 {
		switch {
		case req.Timeout > lim.MaxTimeout:
			return refuse(&commands.Error{Code: commands.CodeNotPermitted, Message: fmt.Sprintf(
				"client %s may not ask for a timeout of %v: its roles' max-timeout is %v", req.Requester, req.Timeout, lim.MaxTimeout)})
		case req.Timeout == 0 && g.defaultTimeout() > lim.MaxTimeout:
			req.Timeout = lim.MaxTimeout
		}
	}
	if !g.acquire(req.Requester, lim.MaxInFlight) {
		ce := &commands.Error{Code: commands.CodeBusy, RetryAfter: 1, Message: fmt.Sprintf(
			"client %s has %d commands in flight already (its roles' max-in-flight)", req.Requester, lim.MaxInFlight)}
		return refuse(ce)
	}
	rec.Phase = audit.PhaseStart
	if err := g.record(ctx, rec); err != nil {
		g.release(req.Requester)
		return &commands.Error{Code: commands.CodeFailed, Message: "the region cannot write its audit log; no command runs unrecorded"}
	}
	return nil
}

func (g *guard) defaultTimeout() time.Duration {
	if d := g.r.cfg.CommandTimeout; d > 0 {
		return d
	}
	return 60 * time.Second
}

// End implements commandsrv.Guard.
func (g *guard) End(sess *session.Session, req *commands.Request, res commands.Result, outBytes int64, err error) {
	rec := sessionRecord(audit.KindCommand, "commands", sess)
	g.end(context.Background(), rec, req, res, outBytes, err)
}

func (g *guard) end(ctx context.Context, rec audit.Record, req *commands.Request, res commands.Result, outBytes int64, err error) {
	g.release(req.Requester)
	rec.Target, rec.Command, rec.ID, rec.Via = req.Target.String(), req.Command, req.ID, req.Via
	rec.Phase, rec.OutputBytes, rec.Rule = audit.PhaseEnd, outBytes, req.Grant
	rec.SetResult(res, err)
	g.record(ctx, rec)
}

// Refused implements commandsrv.Guard: a command answered before Begin is
// in the audit log too.
func (g *guard) Refused(sess *session.Session, req *commands.Request, target string, ce *commands.Error) {
	rec := sessionRecord(audit.KindCommand, "commands", sess)
	rec.Target, rec.Command, rec.ID = target, req.Command, req.ID
	rec.Phase, rec.Outcome, rec.Code, rec.Message = audit.PhaseEnd, audit.OutcomeOf(ce.Code), ce.Code, ce.Message
	g.record(sess.Context(), rec)
}

func (g *guard) acquire(client string, limit int) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if limit > 0 && g.inflight[client] >= limit {
		return false
	}
	g.inflight[client]++
	return true
}

func (g *guard) release(client string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.inflight[client]--; g.inflight[client] <= 0 {
		delete(g.inflight, client)
	}
}

// runForwarded runs a command another region forwarded (its requester is
// the client that region authenticated, carried in an entry signed with
// the cluster key): this region's own roles must grant it too, and it is
// in this region's audit log.
func (g *guard) runForwarded(ctx context.Context, req *commands.Request, out func(commands.Output)) (commands.Result, error) {
	rec := audit.Record{Kind: audit.KindCommand, Server: "cluster", Client: req.Requester}
	if err := g.begin(ctx, rec, req); err != nil {
		return commands.Result{}, err
	}
	var n int64
	res, err := g.r.router.Run(ctx, req, func(o commands.Output) { n += int64(len(o.Data)); out(o) })
	g.end(context.Background(), rec, req, res, n, err)
	return res, err
}

// Subscribe implements unsolmsg.Access.
func (g *guard) Subscribe(sess *session.Session, f *protocol.Frame) error {
	err := g.authz.Policy().Subscribe(sess.Client)
	rec := sessionRecord(audit.KindSubscribe, "unsolmsg", sess)
	rec.ID = f.Subscription + f.Group
	if err != nil {
		rec.Outcome, rec.Code, rec.Message = audit.OutcomeRefused, protocol.ErrCodeNotPermitted, err.Error()
		g.log.WithFields(logrus.Fields{"client": sess.Client, "remote": sess.Remote}).Warn("subscription refused: " + err.Error())
		g.record(sess.Context(), rec)
	}
	return err
}

// Visible implements unsolmsg.Access.
func (g *guard) Visible(client string, e *protocol.Event) bool {
	return g.authz.Policy().Visible(client, e)
}

// The guard tells UNSOLMSG when a subscriber may read light.
var _ unsolmsg.AllVisible = (*guard)(nil)

// VisibleAll implements unsolmsg.AllVisible.
func (g *guard) VisibleAll(client string) bool {
	return g.authz.Policy().VisibleAll(client)
}

// GroupKey implements unsolmsg.Access.
func (g *guard) GroupKey(client, group string) string {
	return g.authz.Policy().GroupKey(client, group)
}

// recheck is a session server's Recheck for port (and the console's
// check once its session is in place): under the current
// policy the client must still be known, its secret still right, and the
// port still granted (VMMON's system is checked by its Admit). The secret
// was checked against the policy current when the logon began; a refresh
// since then (which ended the sessions it revoked, but not this one, not
// yet registered) is seen here. Under an unchanged policy the check is a
// lookup in its cache of recent successes.
func (g *guard) recheck(port string) func(ctx context.Context, client, secret string) error {
	return func(ctx context.Context, client, secret string) error {
		p := g.authz.Policy()
		if p.HasClients() && !p.Known(client) {
			return fmt.Errorf("client %s was removed from the region's config while it logged on", client)
		}
		return g.authz.ForPort(port).Authenticate(ctx, client, secret)
	}
}

// permitVMMon is the VMMON server's Permit.
func (g *guard) permitVMMon(client, system string) error {
	return g.authz.Policy().VMMon(client, system)
}

// refused is the session servers' OnRefuse: a logon refused for its
// credentials or its grants is in the audit log. Refusals for load (busy)
// or a malformed logon are only counted (/metrics): a flood of them must
// not turn into a flood of synced audit records.
func (g *guard) refused(rf session.Refusal) {
	if rf.Reason != protocol.RefuseAuth && rf.Reason != protocol.RefuseNotPermitted {
		return
	}
	g.record(context.Background(), audit.Record{Kind: audit.KindLogon, Server: rf.Server, Remote: rf.Remote,
		Client: rf.Client, Outcome: audit.OutcomeRefused, Code: rf.Reason, Message: rf.Message})
	reason := rf.Reason
	if rf.Message != "" {
		reason += " (" + rf.Message + ")"
	}
	name := quoteName(rf.Client)
	if p := g.authz.Policy(); p.HasClients() && !p.Known(rf.Client) {
		// A name no client has may be a secret typed in the wrong field:
		// the audit log has it, the events everyone watching sees do not.
		name = "UNKNOWN-NAME"
	}
	g.r.issueLimited(context.Background(), "ZBR203I/"+rf.Server, "ZBR203I", strings.ToUpper(rf.Server), name, rf.Remote, oneLine(reason))
}

func grantedBy(g trust.Grant) string {
	if g.Pattern == "" {
		return "no roles are configured"
	}
	return "granted only by " + g.Rule
}

// quoteName returns a name a peer sent as it is when it is printable
// ASCII without blanks, else quoted, so that it cannot change how a
// message reads; an empty name is "-".
func quoteName(s string) string {
	if s == "" {
		return "-"
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c > '~' || c == '"' || c == '\\' {
			return strconv.Quote(s)
		}
	}
	return s
}

// oneLine keeps a message one line: line breaks and other control
// characters become blanks.
func oneLine(s string) string {
	return strings.Map(func(c rune) rune {
		if c < ' ' || c == 0x7f {
			return ' '
		}
		return c
	}, s)
}

// ErrRefresh wraps a refresh that changed nothing.
var ErrRefresh = errors.New("region: refresh")

// Refresh reads the config file and the clients file again. If both
// parse, the new clients and roles apply to every request from now on,
// and the sessions of clients that were removed, or whose roles no longer
// grant their port, end with bye revoked (a consumer-group member whose
// group key or events changed ends itself so at its next read or ack:
// unsolmsg asks the guard again); otherwise nothing changes and the error
// says why. It also reopens the audit log (for rotation).
// by names who asked (a client, or "SIGHUP"), for the log and the audit
// record.
func (r *Region) Refresh(by string) (string, error) {
	g := r.guard
	g.refreshMu.Lock()
	defer g.refreshMu.Unlock()
	var reopenErr error
	if g.audit != nil {
		reopenErr = g.audit.Reopen()
	}
	p, err := g.loadPolicy()
	var spec *availability.Spec
	if err == nil {
		spec, err = r.availabilitySpec() // checked before anything changes
	}
	old := g.authz.Policy()
	switch {
	case err != nil:
	case !old.Open() && p.Open():
		// A file that lost its clients and roles would let anyone do
		// everything: that takes a restart, not a refresh.
		err = errors.New("the new config has neither clients nor roles, which would let anyone log on and do everything; restart the region to run so (on loopback only)")
	case old.HasClients() && !p.HasClients():
		err = errors.New("the new config has no clients, which would let anyone log on without a secret; restart the region to run without clients")
	}
	if err != nil {
		r.issue(context.Background(), "ZBR005E", r.cfg.Name, by, oneLine(err.Error()))
		g.record(context.Background(), audit.Record{Kind: audit.KindRefresh, Client: by, Outcome: audit.OutcomeFailed,
			Message: "nothing changed: " + err.Error()})
		return "", errors.Join(fmt.Errorf("%w: nothing changed: %w", ErrRefresh, err), reopenErr)
	}
	g.authz.Store(p)
	if r.avail != nil {
		r.avail.SetSpec(spec) // checked above: it cannot fail
	}
	ended := 0
	revoked := func(port string) func(string) bool {
		return func(client string) bool {
			if !p.HasClients() {
				return false
			}
			if !p.Known(client) || old.Known(client) && !p.SameSecret(old, client) {
				return true // removed, or its secret changed
			}
			if port == trust.PortVMMon {
				return false // checked per system by vmmon.Recheck
			}
			return p.Port(client, port) != nil
		}
	}
	ended += r.unsol.EndClients(revoked(trust.PortUnsolMsg), protocol.ByeRevoked)
	ended += r.cmds.EndClients(revoked(trust.PortCommands), protocol.ByeRevoked)
	ended += r.vmmon.EndClients(revoked(trust.PortVMMon), protocol.ByeRevoked)
	ended += r.vmmon.Recheck() // a known client that may no longer be its system's agent
	ended += r.consoles.revoke(revoked(trust.PortConsole))
	cancelled := 0
	for _, f := range r.router.InFlight() {
		tgt, err := commands.ParseTarget(f.Target)
		if err != nil {
			continue
		}
		if _, err := p.Command(f.Requester, tgt, f.Command); err != nil && r.router.Cancel(f.Requester, f.ID) {
			g.log.WithFields(logrus.Fields{"client": f.Requester, "target": f.Target, "id": f.ID}).Warn("command in flight cancelled: " + err.Error())
			cancelled++
		}
	}
	msg := fmt.Sprintf("config refreshed: %d clients, roles %s; %d sessions revoked, %d commands in flight cancelled",
		len(p.Clients()), openWord(p), ended, cancelled)
	r.issue(context.Background(), "ZBR004I", r.cfg.Name, by, msg)
	g.record(context.Background(), audit.Record{Kind: audit.KindRefresh, Client: by, Outcome: audit.OutcomeOK, Message: msg})
	return msg, reopenErr
}

func openWord(p *trust.Policy) string {
	switch {
	case p.Open():
		return "none (open)"
	case !p.HasRoles():
		return "none (everything refused)"
	}
	return "applied"
}
