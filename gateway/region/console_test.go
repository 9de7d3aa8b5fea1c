package region

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zbridge/zbridge/gateway/auth"
	"github.com/zbridge/zbridge/gateway/store/memstore"
	"github.com/zbridge/zbridge/protocol"
	"github.com/zbridge/zbridge/zos/console"
)

// TestConsoleBackend checks the region's side of the console against its
// roles: a logon needs the secret and a role granting the console; an
// operator sees only the events its roles let it see, newest first from
// the store and then live; the agents panel needs AGENTS granted; a
// refresh that takes the console away ends the operator's tail.
func TestConsoleBackend(t *testing.T) {
	dir := t.TempDir()
	hash, err := auth.Hash("s")
	if err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "zbridge.toml")
	opHash := hash
	write := func(opPorts, targets string) {
		if err := os.WriteFile(config, []byte(`
[[client]]
name = "op"
secret-hash = "`+opHash+`"
roles = ["operator"]
[[client]]
name = "app"
secret-hash = "`+hash+`"
roles = ["app"]
[[role]]
name = "operator"
ports = `+opPorts+`
events = ["source=syslog,origin=web*"]
`+targets+`
[[role]]
name = "app"
ports = ["unsolmsg"]
events = ["origin=*"]
`), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(`["console"]`, "")
	st := memstore.New(memstore.Config{})
	defer st.Close()
	r, err := New(Config{Name: "ZBR1", ConfigFile: config, Store: st, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b := consoleBackend{r}
	remote := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}

	if _, err := b.Logon(ctx, "op", "wrong", remote); err == nil || !strings.Contains(err.Error(), "the client name or the secret is wrong") {
		t.Errorf("a wrong secret: %v", err)
	}
	if _, err := b.Logon(ctx, "app", "s", remote); err == nil || !strings.Contains(err.Error(), `ports = ["console"]`) {
		t.Errorf("a client without the console port: %v", err)
	}
	waitMessage(t, st, "ZBR203I", "LOGON REFUSED ON CONSOLE FOR app FROM 127.0.0.1:40000: not-permitted")

	ev := func(host, text string) *protocol.Event {
		return &protocol.Event{Source: protocol.SourceSyslog, Origin: protocol.Origin{System: host, Host: host}, Text: text, Parsed: true}
	}
	if err := st.Append(ctx, []*protocol.Event{ev("web1", "old 1"), ev("db1", "hidden 1"), ev("web2", "old 2"), ev("web1", "old 3")}); err != nil {
		t.Fatal(err)
	}
	op, err := b.Logon(ctx, "op", "s", remote)
	if err != nil {
		t.Fatal(err)
	}
	waitMessage(t, st, "ZBR301I", "CONSOLE LOGON BY op FROM 127.0.0.1:40000")
	if _, err := op.Agents(ctx); err == nil {
		t.Error("the agents panel without AGENTS granted")
	}
	if _, err := op.Command(ctx, "F ZBR1,SERVERS", func(string) {}); err == nil || !strings.Contains(err.Error(), "not-permitted") {
		t.Errorf("a region command no role grants: %v", err)
	}

	got := make(chan string, 100)
	tctx, tcancel := context.WithCancel(ctx)
	defer tcancel()
	tailed := make(chan error, 1)
	go func() {
		tailed <- op.Tail(tctx, nil, 2, func(e *protocol.Event) { got <- e.Text })
	}()
	next := func() string {
		select {
		case s := <-got:
			return s
		case <-ctx.Done():
			t.Fatal("no event")
			return ""
		}
	}
	if a, b := next(), next(); a != "old 2" || b != "old 3" {
		t.Fatalf("the newest 2 visible events: %q, %q; want old 2, old 3", a, b)
	}
	st.Append(ctx, []*protocol.Event{ev("db1", "hidden 2"), ev("web3", "new 1")})
	if s := next(); s != "new 1" {
		t.Fatalf("live: %q; want new 1 (db1's events are not the operator's)", s)
	}

	// The secret rotated (a leaked one): the session logged on with the
	// old one ends, as other ports' sessions do.
	if opHash, err = auth.Hash("s2"); err != nil {
		t.Fatal(err)
	}
	regionTargets := "  [[role.target]]\n  pattern = \"region\"\n  commands = [\"SERVERS\"]\n"
	write(`["console"]`, regionTargets)
	if msg, err := r.Refresh("test"); err != nil || !strings.Contains(msg, "1 sessions revoked") {
		t.Fatalf("refresh: %q, %v; want 1 session revoked", msg, err)
	}
	select {
	case err := <-tailed:
		if !errors.Is(err, errRevoked) {
			t.Errorf("the tail ended with %v; want the revocation", err)
		}
	case <-ctx.Done():
		t.Fatal("the tail of an operator whose secret changed goes on")
	}
	if _, err := op.Command(ctx, "F ZBR1,SERVERS", func(string) {}); !errors.Is(err, errRevoked) {
		t.Errorf("a revoked operator's command: %v; want the revocation", err)
	}
	op.Close()

	// With the new secret: a command runs, until the console is taken
	// away (the role now grants COMMANDS instead, with the same command).
	op2, err := b.Logon(ctx, "op", "s2", remote)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	if res, err := op2.Command(ctx, "region: F ZBR1,SERVERS", func(l string) { lines = append(lines, l) }); err != nil || res.RC != 0 ||
		len(lines) == 0 || !strings.HasPrefix(lines[0], "ZBR010I REGION ZBR1 SERVERS") {
		t.Fatalf("F ZBR1,SERVERS: %+v, %v, %q", res, err, lines)
	}
	write(`["commands"]`, regionTargets)
	if _, err := r.Refresh("test"); err != nil {
		t.Fatal(err)
	}
	if _, err := op2.Command(ctx, "F ZBR1,SERVERS", func(string) {}); !errors.Is(err, errRevoked) {
		t.Errorf("a revoked operator's command: %v; want the revocation", err)
	}
	op = op2.(*consoleOperator)
	op.Close()
	op.Close()
	waitMessage(t, st, "ZBR302I", "CONSOLE LOGOFF BY op FROM 127.0.0.1:40000")
	n := 0
	for _, e := range regionEvents(t, st) {
		if e.MsgID == "ZBR302I" {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d ZBR302I for two sessions, the second closed twice; want 2", n)
	}
	var _ console.Backend = b
}
