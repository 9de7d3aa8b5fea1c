package region

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zbridge/zbridge/gateway/auth"
	"github.com/zbridge/zbridge/gateway/trust"
	"github.com/zbridge/zbridge/protocol"
	"github.com/zbridge/zbridge/protocol/client"
)

// TestRefreshRefusesToOpen: a refresh never turns a region with clients
// into one without (anyone could log on, and without roles do anything);
// and a client whose secret changed has its sessions ended.
func TestRefreshRefusesToOpen(t *testing.T) {
	dir := t.TempDir()
	h1, err := auth.Hash("one")
	if err != nil {
		t.Fatal(err)
	}
	h2, err := auth.Hash("two")
	if err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "zbridge.toml")
	write := func(text string) {
		if err := os.WriteFile(config, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	withRoles := func(hash string) string {
		return `
[[client]]
name = "ops"
secret-hash = "` + hash + `"
roles = ["reader"]
[[role]]
name = "reader"
ports = ["unsolmsg"]
events = ["severity=debug"]
`
	}
	write(withRoles(h1))
	r, err := New(Config{Name: "T", UnsolMsg: "127.0.0.1:0", ConfigFile: config, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })

	for _, c := range []struct{ name, text, want string }{
		{"nothing", "[region]\nname = \"T\"\n", "neither clients nor roles"},
		{"roles only", "[[role]]\nname = \"x\"\nports = [\"unsolmsg\"]\n", "no clients"},
	} {
		write(c.text)
		if _, err := r.Refresh("test"); !errors.Is(err, ErrRefresh) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Refresh = %v, want a refusal saying %q", c.name, err, c.want)
		}
		if r.guard.authz.Policy().Open() {
			t.Fatalf("%s: the region runs open after a refused refresh", c.name)
		}
	}

	write(withRoles(h1))
	if _, err := r.Refresh("test"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, client.Config{Addr: r.Addr("unsolmsg").String(), Client: "ops", Secret: "one"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Subscribe(ctx, nil, "", ""); err != nil {
		t.Fatal(err)
	}
	write(withRoles(h2)) // the same client and role, a new secret
	msg, err := r.Refresh("test")
	if err != nil || !strings.Contains(msg, "1 sessions revoked") {
		t.Fatalf("Refresh = %q, %v; want 1 session revoked", msg, err)
	}
	var bye *client.ByeError
	for {
		_, err := c.Next(ctx)
		if errors.As(err, &bye) {
			break
		}
		if err != nil {
			t.Fatalf("the session of a client whose secret changed: %v, want bye %s", err, protocol.ByeRevoked)
		}
	}
	if bye.Reason != protocol.ByeRevoked {
		t.Errorf("bye %+v, want %s", bye, protocol.ByeRevoked)
	}
}

// TestRecheckAfterRefresh: a logon whose secret was checked against the
// policy before a refresh that changed the secret, took the port away or
// removed the client is refused once its session is in place (the refresh
// could not end it: it was not registered yet), on every port.
func TestRecheckAfterRefresh(t *testing.T) {
	dir := t.TempDir()
	config := filepath.Join(dir, "zbridge.toml")
	hashes := map[string]string{}
	for _, s := range []string{"old", "new", "other"} {
		h, err := auth.Hash(s)
		if err != nil {
			t.Fatal(err)
		}
		hashes[s] = h
	}
	write := func(opsSecret string, ports string) {
		text := `
[[client]]
name = "ops"
secret-hash = "` + hashes[opsSecret] + `"
roles = ["op"]
[[client]]
name = "other"
secret-hash = "` + hashes["other"] + `"
roles = ["op"]
[[role]]
name = "op"
ports = [` + ports + `]
vmmon = ["VMSYS1"]
`
		if err := os.WriteFile(config, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	const allPorts = `"commands", "unsolmsg", "console"`
	write("old", allPorts)
	r, err := New(Config{Name: "T", ConfigFile: config, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ports := []string{"commands", "unsolmsg", "console", "vmmon"}
	// The secret checked, as a logon checks it, before the refresh.
	for _, port := range ports {
		if err := r.guard.authz.ForPort(port).Authenticate(ctx, "ops", "old"); err != nil {
			t.Fatalf("%s: the logon before the refresh: %v", port, err)
		}
		if err := r.guard.recheck(port)(ctx, "ops", "old"); err != nil {
			t.Fatalf("%s: recheck with nothing changed: %v", port, err)
		}
	}
	write("new", allPorts)
	if _, err := r.Refresh("test"); err != nil {
		t.Fatal(err)
	}
	for _, port := range ports {
		if err := r.guard.recheck(port)(ctx, "ops", "old"); err == nil {
			t.Errorf("%s: a logon checked with the secret the refresh replaced was let in", port)
		}
		if err := r.guard.recheck(port)(ctx, "ops", "new"); err != nil {
			t.Errorf("%s: the new secret: %v", port, err)
		}
	}
	write("new", `"unsolmsg"`)
	if _, err := r.Refresh("test"); err != nil {
		t.Fatal(err)
	}
	for _, port := range []string{"commands", "console"} {
		var d *trust.Denial
		if err := r.guard.recheck(port)(ctx, "ops", "new"); !errors.As(err, &d) {
			t.Errorf("%s: recheck once the port was withdrawn = %v, want a denial", port, err)
		}
	}
}

// TestRefreshLeavesSharedGroup: a refresh that takes a client out of the
// role sharing a group, leaving it another role that grants UNSOLMSG, ends
// its session in the role's group with bye revoked at its next read; the
// role's remaining member gets every event. (Before, the session stayed in
// the role's group and acknowledged for it, unseen, the events it could no
// longer see: 29 of 40 were lost.)
func TestRefreshLeavesSharedGroup(t *testing.T) {
	dir := t.TempDir()
	h, err := auth.Hash("s")
	if err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "zbridge.toml")
	write := func(exRoles string) {
		text := `
[[role]]
name = "web"
ports = ["unsolmsg"]
events = ["source=syslog,origin=web*"]
groups = ["WEBOPS"]
[[role]]
name = "db"
ports = ["unsolmsg"]
events = ["source=syslog,origin=db*"]
[[client]]
name = "ops"
secret-hash = "` + h + `"
roles = ["web"]
[[client]]
name = "ex"
secret-hash = "` + h + `"
roles = [` + exRoles + `]
`
		if err := os.WriteFile(config, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(`"web", "db"`)
	r, err := New(Config{Name: "T", UnsolMsg: "127.0.0.1:0", ConfigFile: config, Logger: quietLogger(),
		GroupClaimAfter: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dial := func(name string) *client.Conn {
		c, err := client.Dial(ctx, client.Config{Addr: r.Addr("unsolmsg").String(), Client: name, Secret: "s"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := c.SubscribeWith(ctx, client.Subscription{Group: "WEBOPS"}); err != nil {
			t.Fatal(err)
		}
		return c
	}
	ops, ex := dial("ops"), dial("ex")

	write(`"db"`) // ex leaves the web role
	if _, err := r.Refresh("test"); err != nil {
		t.Fatal(err)
	}
	const n = 40
	for i := 0; i < n; i++ {
		e := &protocol.Event{Source: protocol.SourceSyslog, Origin: protocol.Origin{System: "web1", Host: "web1"},
			Facility: protocol.FacDaemon, Severity: protocol.SevInfo, Text: fmt.Sprintf("web-%d", i), Parsed: true}
		if err := r.store.Append(ctx, []*protocol.Event{e}); err != nil {
			t.Fatal(err)
		}
	}
	var bye *client.ByeError
	if f, err := ex.Next(ctx); !errors.As(err, &bye) || bye.Reason != protocol.ByeRevoked {
		t.Fatalf("ex, out of the web role: %+v, %v; want bye %s", f, err, protocol.ByeRevoked)
	}
	got := map[string]bool{}
	for len(got) < n {
		f, err := ops.Next(ctx)
		if err != nil {
			t.Fatalf("ops got %d of %d web events: %v", len(got), n, err)
		}
		if f.Type == protocol.TypeEvent && strings.HasPrefix(f.Event.Text, "web-") {
			got[f.Event.Text] = true
			ops.Ack(f.Event.ID.String())
		}
	}
}
