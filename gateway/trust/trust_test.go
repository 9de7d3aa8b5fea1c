package trust

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zbridge/zbridge/commands"
	"github.com/zbridge/zbridge/gateway/auth"
	"github.com/zbridge/zbridge/protocol"
)

// testConfig is a config with the roles the scenario uses. Its
// hashes are made at test time.
const testConfig = `
[region]
name = "ZBR1"

[[client]]
name = "web-ops"
secret-hash = "@HASH1@"
roles = ["web"]

[[client]]
name = "auditor"
secret-hash = "@HASH2@"
roles = ["audit"]

[[client]]
name = "vmsys1"
secret-hash = "@HASH2@"
roles = ["agent-vmsys1"]

[[role]]
name = "web"
ports = ["commands", "unsolmsg"]
events = ["source=syslog,origin=web*"]
groups = ["WEBOPS*"]
max-timeout = "2m"
max-in-flight = 3
  [[role.target]]
  pattern = "linux:web*"
  commands = ["uptime", "df -h **", "cat /var/log/*"]
  [[role.target]]
  pattern = "zvm:VMSYS1"
  commands = ["QUERY **"]

[[role]]
name = "audit"
ports = ["unsolmsg", "commands"]
events = ["source=audit", "source=syslog|region"]
see-others = true
  [[role.target]]
  pattern = "region"
  commands = ["COMMANDS", "AGENTS"]
  [[role.target]]
  pattern = "linux:lab*"
  commands = ["**"]
  [[role.target]]
  pattern = "linux:ADDR=10.9.*"
  commands = ["uptime"]

[[role]]
name = "agent-vmsys1"
vmmon = ["VMSYS1"]
`

func testPolicy(t *testing.T) *Policy {
	t.Helper()
	h1, err := auth.Hash("secret-one")
	if err != nil {
		t.Fatal(err)
	}
	h2, err := auth.Hash("secret-two")
	if err != nil {
		t.Fatal(err)
	}
	return parsePolicy(t, strings.ReplaceAll(strings.ReplaceAll(testConfig, "@HASH1@", h1), "@HASH2@", h2))
}

// policyFrom builds a Policy from a clients file whose secret hashes are
// written @H@ (each the hash of "s").
func policyFrom(t *testing.T, text string) *Policy {
	t.Helper()
	h, err := auth.Hash("s")
	if err != nil {
		t.Fatal(err)
	}
	return parsePolicy(t, strings.ReplaceAll(text, "@H@", h))
}

// parsePolicy builds a Policy from a clients file's text.
func parsePolicy(t *testing.T, text string) *Policy {
	t.Helper()
	f, err := Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPolicy(f, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func target(t *testing.T, s string) commands.Target {
	t.Helper()
	tg, err := commands.ParseTarget(s)
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

func TestCommand(t *testing.T) {
	p := testPolicy(t)
	tests := []struct {
		client, target, line string
		ok                   bool
		want                 string // in the denial
	}{
		{"web-ops", "linux:web1", "uptime", true, ""},
		{"web-ops", "linux:WEB2", "uptime", true, ""}, // target names fold case
		{"web-ops", "linux:web1", "df -h /", true, ""},
		{"web-ops", "linux:web1", "df -h", true, ""},
		{"web-ops", "linux:web1", "id", false, `no command pattern of its roles matches (role web grants linux:web*)`},
		{"web-ops", "linux:web1", "uptime; id", false, "only a role granting commands"},
		{"web-ops", "linux:web1", "uptime | sh", false, "only a role granting commands"},
		{"web-ops", "linux:web1", "df -h $(id)", false, "only a role granting commands"},
		{"web-ops", "linux:web1", "cat /var/log/syslog", true, ""},
		{"web-ops", "linux:web1", "cat /var/log/../../etc/shadow", false, "no command pattern"},
		{"web-ops", "linux:web1", "cat /var/log/a /etc/shadow", false, "no command pattern"},
		{"web-ops", "linux:db1", "uptime", false, "no role grants that target (roles: web)"},
		{"web-ops", "linux:ADDR=10.1.2.3", "uptime", false, "no role grants that target"},
		{"auditor", "linux:ADDR=10.1.2.3", "uptime", false, "no role grants that target"}, // linux:lab* is a name pattern
		{"auditor", "linux:ADDR=10.9.0.1", "uptime", true, ""},
		{"web-ops", "zvm:VMSYS1", "QUERY NAMES", true, ""},
		{"web-ops", "zvm:VMSYS1", "query names", true, ""},
		{"web-ops", "zvm:VMSYS1", "FORCE LINUX01", false, "no command pattern"},
		{"web-ops", "zvm:VMSYS1", "QUERY N#FORCE LINUX01", false, "logical line end"},
		{"web-ops", "zvm:VMSYS1", "Q N", true, ""},
		{"web-ops", "zvm:VMSYS1", "CP Q N", true, ""},
		{"web-ops", "zvm:VMSYS1", "FORCF@E LINUX01", false, "character delete"},
		{"web-ops", "zvm:VMSYS2", "QUERY NAMES", false, "no role grants that target"},
		{"web-ops", "region", "AGENTS", false, "no role grants that target"},
		{"auditor", "region", "agents", true, ""},
		{"auditor", "linux:lab7", "ps -ef | grep httpd", true, ""},
		{"vmsys1", "linux:web1", "uptime", false, "no role grants that target (roles: agent-vmsys1)"},
		{"nobody", "linux:web1", "uptime", false, "it holds no roles"},
	}
	for _, tt := range tests {
		t.Run(tt.client+" "+tt.target+" "+tt.line, func(t *testing.T) {
			g, err := p.Command(tt.client, target(t, tt.target), tt.line)
			if tt.ok {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if g.Rule == "" {
					t.Error("a grant names no rule")
				}
				return
			}
			var d *Denial
			if !errors.As(err, &d) || !errors.Is(err, ErrNotPermitted) {
				t.Fatalf("got %v, %v; want a *Denial", g, err)
			}
			if !strings.Contains(d.Reason, tt.want) {
				t.Errorf("denial %q does not say %q", d.Reason, tt.want)
			}
		})
	}
}

func TestPortsAndVMMon(t *testing.T) {
	p := testPolicy(t)
	if err := p.Port("web-ops", PortCommands); err != nil {
		t.Error(err)
	}
	if err := p.Port("vmsys1", PortUnsolMsg); err == nil || !strings.Contains(err.Error(), `no role grants ports = ["unsolmsg"]`) {
		t.Errorf("vmsys1 on UNSOLMSG: %v", err)
	}
	if err := p.VMMon("vmsys1", "VMSYS1"); err != nil {
		t.Error(err)
	}
	if err := p.VMMon("vmsys1", "VMSYS2"); err == nil {
		t.Error("vmsys1 may log on as VMSYS2")
	}
	if err := p.VMMon("web-ops", "VMSYS1"); err == nil {
		t.Error("web-ops may log on to VMMON")
	}
}

func TestVisible(t *testing.T) {
	p := testPolicy(t)
	ev := func(src protocol.Source, system string) *protocol.Event {
		return &protocol.Event{Source: src, Origin: protocol.Origin{System: system}}
	}
	tests := []struct {
		client string
		e      *protocol.Event
		want   bool
	}{
		{"web-ops", ev(protocol.SourceSyslog, "web1"), true},
		{"web-ops", ev(protocol.SourceSyslog, "db1"), false},
		{"web-ops", ev(protocol.SourceRegion, "ZBR1"), false},
		{"web-ops", ev(protocol.SourceAudit, "ZBR1"), false},
		{"auditor", ev(protocol.SourceAudit, "ZBR1"), true},
		{"auditor", ev(protocol.SourceSyslog, "db1"), true},
		{"auditor", ev(protocol.SourceZVMConsole, "VMSYS1"), false},
		{"vmsys1", ev(protocol.SourceSyslog, "web1"), false},
	}
	for _, tt := range tests {
		if got := p.Visible(tt.client, tt.e); got != tt.want {
			t.Errorf("Visible(%s, %s %s) = %v, want %v", tt.client, tt.e.Source, tt.e.Origin.System, got, tt.want)
		}
	}
}

func TestAuditOnlyWhenNamed(t *testing.T) {
	p := policyFrom(t, `
[[client]]
name = "x"
secret-hash = "@H@"
roles = ["all"]
[[role]]
name = "all"
events = ["severity=debug"]
`)
	if p.Visible("x", &protocol.Event{Source: protocol.SourceAudit}) {
		t.Error("a filter that does not name source=audit shows audit records")
	}
	if !p.Visible("x", &protocol.Event{Source: protocol.SourceSyslog}) {
		t.Error("the filter does not show syslog")
	}
}

func TestLimitsAndSharing(t *testing.T) {
	p := testPolicy(t)
	if l := p.Limits("web-ops"); l.MaxTimeout != 2*time.Minute || l.MaxInFlight != 3 {
		t.Errorf("web-ops limits %+v", l)
	}
	if l := p.Limits("auditor"); l != (Limits{}) {
		t.Errorf("auditor limits %+v, want none", l)
	}
	for _, c := range []struct{ client, group, want string }{
		{"web-ops", "WEBOPS-1", "role/web:WEBOPS-1"},
		{"web-ops", "DBOPS", "web-ops:DBOPS"},
		{"auditor", "WEBOPS-1", "auditor:WEBOPS-1"}, // not its role's: its own
	} {
		if got := p.GroupKey(c.client, c.group); got != c.want {
			t.Errorf("GroupKey(%s, %s) = %q, want %q", c.client, c.group, got, c.want)
		}
	}
	if p.SeeOthers("web-ops") || !p.SeeOthers("auditor") {
		t.Error("see-others")
	}
}

func TestAuthenticate(t *testing.T) {
	p := testPolicy(t)
	a := NewAuthorizer(p)
	ctx := context.Background()
	if err := a.ForPort(PortCommands).Authenticate(ctx, "web-ops", "secret-one"); err != nil {
		t.Errorf("good secret: %v", err)
	}
	if err := a.ForPort(PortCommands).Authenticate(ctx, "web-ops", "secret-two"); !errors.Is(err, auth.ErrBadCredentials) {
		t.Errorf("bad secret: %v", err)
	}
	err := a.ForPort(PortCommands).Authenticate(ctx, "vmsys1", "secret-two")
	var d *Denial
	if !errors.As(err, &d) || d.RefuseReason() != protocol.RefuseNotPermitted {
		t.Errorf("a client without the port: %v", err)
	}
	if err := a.ForPort(PortVMMon).Authenticate(ctx, "vmsys1", "secret-two"); err != nil {
		t.Errorf("VMMON logon (system checked at admission): %v", err)
	}
	// A client with no vmmon grant at all is refused at the secret check,
	// so that its logon does not pass for a success (the session server
	// forgets a name's failures on one).
	err = a.ForPort(PortVMMon).Authenticate(ctx, "auditor", "secret-two")
	if !errors.As(err, &d) || !strings.Contains(err.Error(), "may not use VMMON") {
		t.Errorf("VMMON logon of a client without a vmmon grant: %v", err)
	}
}

func TestOpenPolicy(t *testing.T) {
	p, err := NewPolicy(nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !p.Open() || p.HasClients() {
		t.Fatal("no file: want open, no clients")
	}
	if _, err := p.Command("anyone", target(t, "linux:db1"), "rm -rf /tmp/x"); err != nil {
		t.Error(err)
	}
	if err := p.Authenticate(context.Background(), "anyone", ""); err != nil {
		t.Error(err)
	}
}

func TestBadConfigs(t *testing.T) {
	tests := []struct{ name, text, want string }{
		{"syntax", "[[role]\nname=1", "syntax"},
		{"unknown key", "[[role]]\nname = \"a\"\nport = [\"commands\"]", "unknown key in config file: role.port"},
		{"unknown role", "[[client]]\nname = \"a\"\nsecret-hash = \"x\"\nroles = [\"nope\"]", `no role "nope"`},
		{"bad port", "[[role]]\nname = \"a\"\nports = [\"ftp\"]", `unknown port "ftp"`},
		{"vmmon port", "[[role]]\nname = \"a\"\nports = [\"vmmon\"]", "granted per system name"},
		{"bad target", "[[role]]\nname = \"a\"\n[[role.target]]\npattern = \"mvs:X\"\ncommands = [\"D A\"]", "want linux:NAME"},
		{"no commands", "[[role]]\nname = \"a\"\n[[role.target]]\npattern = \"linux:x\"", "grants no commands"},
		{"dup role", "[[role]]\nname = \"a\"\n[[role]]\nname = \"a\"", "defined twice"},
		{"bad filter", "[[role]]\nname = \"a\"\nevents = [\"colour=red\"]", "unknown key"},
		{"bad duration", "[[role]]\nname = \"a\"\nmax-timeout = \"soon\"", "syntax"},
		{"bad hash", "[[role]]\nname = \"a\"\n[[client]]\nname = \"a\"\nsecret-hash = \"plaintext\"\nroles = [\"a\"]", "clients"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse([]byte(tt.text))
			if err == nil {
				_, err = NewPolicy(f, Options{})
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error saying %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "plaintext") {
				t.Errorf("the error quotes the secret-hash: %v", err)
			}
		})
	}
}

func TestReadFileRefusesWritable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "zbridge.toml")
	if err := os.WriteFile(path, []byte("[region]\nname = \"A\"\n"), 0o620); err != nil {
		t.Fatal(err)
	}
	os.Chmod(path, 0o620)
	if _, err := ReadFile(path); !errors.Is(err, ErrWritableByOthers) {
		t.Errorf("group-writable file: %v", err)
	}
	os.Chmod(path, 0o600)
	f, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if f.Region["name"] != "A" {
		t.Errorf("region table %v", f.Region)
	}
}

// TestClientsFileNeedsRoles: once clients are configured, a client of the
// clients file may do nothing until the config file gives it roles (a
// [[client]] entry without secret-hash), and then what they grant.
func TestClientsFileNeedsRoles(t *testing.T) {
	h, err := auth.Hash("s")
	if err != nil {
		t.Fatal(err)
	}
	file, err := auth.Parse(strings.NewReader("ops:" + h + "\nother:" + h + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPolicy(nil, Options{Clients: file})
	if err != nil {
		t.Fatal(err)
	}
	if p.Open() || p.HasRoles() {
		t.Fatal("a clients file alone: the policy is open or has roles")
	}
	if _, err := p.Command("ops", target(t, "linux:web1"), "uptime"); !errors.Is(err, ErrNotPermitted) {
		t.Errorf("a clients-file client without roles ran a command: %v", err)
	}
	if err := p.Port("ops", PortUnsolMsg); !errors.Is(err, ErrNotPermitted) {
		t.Errorf("a clients-file client without roles may use UNSOLMSG: %v", err)
	}
	f, err := Parse([]byte(`
[[client]]
name = "ops"
roles = ["up"]
[[role]]
name = "up"
ports = ["commands"]
  [[role.target]]
  pattern = "linux:*"
  commands = ["uptime"]
`))
	if err != nil {
		t.Fatal(err)
	}
	p, err = NewPolicy(f, Options{Clients: file})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Command("ops", target(t, "linux:web1"), "uptime"); err != nil {
		t.Errorf("ops given a role in the config: %v", err)
	}
	if _, err := p.Command("other", target(t, "linux:web1"), "uptime"); !errors.Is(err, ErrNotPermitted) {
		t.Errorf("other, with no role: %v", err)
	}
	if err := p.Authenticate(context.Background(), "ops", "s"); err != nil {
		t.Errorf("ops's secret (from the clients file): %v", err)
	}
	f.Clients[0].Name = "stranger"
	if _, err := NewPolicy(f, Options{Clients: file}); err == nil || !strings.Contains(err.Error(), "secret-hash is required") {
		t.Errorf("a role-only entry for a client in no file: %v", err)
	}
}

// TestConsolePort: a role granting only the console lets its client log on
// there and run its targets' commands (the console runs them), not log on
// to COMMANDS; a role granting only UNSOLMSG runs nothing, whatever
// targets it lists.
func TestConsolePort(t *testing.T) {
	p := policyFrom(t, `
[[role]]
name = "operator"
ports = ["console"]
  [[role.target]]
  pattern = "region"
  commands = ["SERVERS"]
[[role]]
name = "reader"
ports = ["unsolmsg"]
  [[role.target]]
  pattern = "region"
  commands = ["SERVERS"]
[[client]]
name = "op"
secret-hash = "@H@"
roles = ["operator"]
[[client]]
name = "rd"
secret-hash = "@H@"
roles = ["reader"]
`)
	region := commands.Target{Kind: commands.KindRegion}
	if err := p.Port("op", PortConsole); err != nil {
		t.Errorf("op on the console: %v", err)
	}
	if err := p.Port("op", PortCommands); err == nil {
		t.Error("a console-only role logs on to COMMANDS")
	}
	if _, err := p.Command("op", region, "SERVERS"); err != nil {
		t.Errorf("op may not run SERVERS from the console: %v", err)
	}
	if _, err := p.Command("op", region, "STOP"); err == nil {
		t.Error("op may STOP, which its role does not list")
	}
	if _, err := p.Command("rd", region, "SERVERS"); err == nil {
		t.Error("an UNSOLMSG-only role runs commands")
	}
}

// TestVisibleAll: a client sees every event but audit records when the
// policy is open or a role grants a filter that matches all; and then
// Visible agrees for every event that is not an audit record, whatever it
// holds.
func TestVisibleAll(t *testing.T) {
	p := policyFrom(t, `
[[client]]
name = "all"
secret-hash = "@H@"
roles = ["web", "everything"]
[[client]]
name = "web"
secret-hash = "@H@"
roles = ["web"]
[[client]]
name = "none"
secret-hash = "@H@"
[[role]]
name = "web"
events = ["source=syslog,origin=web*", "source=audit"]
[[role]]
name = "everything"
events = ["severity=debug"]
`)
	open, err := NewPolicy(&File{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !open.Open() || !open.VisibleAll("anyone") {
		t.Error("an open policy: VisibleAll false")
	}
	if !p.VisibleAll("all") || p.VisibleAll("web") || p.VisibleAll("none") || p.VisibleAll("nosuch") {
		t.Errorf("VisibleAll: all %v web %v none %v nosuch %v; want true, false, false, false",
			p.VisibleAll("all"), p.VisibleAll("web"), p.VisibleAll("none"), p.VisibleAll("nosuch"))
	}
	for _, e := range []*protocol.Event{{}, {Source: protocol.SourceZVMConsole, Severity: protocol.SevDebug},
		{Source: protocol.SourceSyslog, Origin: protocol.Origin{System: "db1"}}} {
		if !p.Visible("all", e) || !open.Visible("x", e) {
			t.Errorf("%+v: not visible to a client VisibleAll says sees it", e)
		}
	}
	// Audit records stay apart: a filter that matches all does not show them.
	if !p.Visible("all", &protocol.Event{Source: protocol.SourceAudit}) { // "web" names source=audit
		t.Error("all: the audit record its web role names is not visible")
	}
}

// TestDenialClipsLine: a refusal's message quotes the start of a long line,
// not all of it (it goes to the client, the log and the audit record).
func TestDenialClipsLine(t *testing.T) {
	p := testPolicy(t)
	line := "uptime " + strings.Repeat("\xff", 60<<10)
	_, err := p.Command("web-ops", target(t, "linux:web1"), line)
	var d *Denial
	if !errors.As(err, &d) || len(err.Error()) > 2<<10 || !strings.Contains(err.Error(), fmt.Sprintf("(%d bytes)", len(line))) {
		t.Errorf("denial of %d bytes: %.300q", len(err.Error()), err)
	}
}
