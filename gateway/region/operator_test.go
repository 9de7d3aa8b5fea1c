package region

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zbridge/zbridge/commands"
	"github.com/zbridge/zbridge/gateway/auth"
	"github.com/zbridge/zbridge/gateway/store"
	"github.com/zbridge/zbridge/gateway/store/memstore"
	"github.com/zbridge/zbridge/protocol"
	"github.com/zbridge/zbridge/protocol/client"
	"github.com/zbridge/zbridge/zos"
)

func TestOperatorCommand(t *testing.T) {
	for _, tt := range []struct {
		line, want, err string
	}{
		{"SERVERS", "SERVERS", ""},
		{"  agents ", "agents", ""}, // the plain word as typed: Run upper-cases it
		{"F ZBR1,SERVERS", "SERVERS", ""},
		{"f zbr1,servers", "SERVERS", ""},
		{"MODIFY ZBR1, REFRESH", "REFRESH", ""},
		{"D ZBR1,AGENTS", "AGENTS", ""},
		{"DISPLAY zbr1,commands", "COMMANDS", ""},
		{"D ZBR1,REFRESH", "", "D shows"},
		{"F ZBR2,SERVERS", "", "this is region ZBR1, not ZBR2"},
		{"F ZBR1", "", "the form is F NAME,COMMAND"},
		{"F ZBR1,", "", "the form is F NAME,COMMAND"},
		{"F ZBR1,SERVERS,AGENTS", "", "one region command"},
		{"P ZBR1", "STOP", ""},
		{"p zbr1", "STOP", ""},
		{"STOP ZBR1", "STOP", ""},
		{"STOP", "STOP", ""},
		{"P", "", "the form is P NAME"},
		{"P ZBR2", "", "this is region ZBR1, not ZBR2"},
	} {
		t.Run(tt.line, func(t *testing.T) {
			got, err := operatorCommand(tt.line, "ZBR1")
			var ce *commands.Error
			switch {
			case tt.err == "" && (err != nil || got != tt.want):
				t.Errorf("operatorCommand(%q) = %q, %v; want %q", tt.line, got, err, tt.want)
			case tt.err != "" && (!errors.As(err, &ce) || ce.Code != commands.CodeBadRequest || !strings.Contains(ce.Message, tt.err)):
				t.Errorf("operatorCommand(%q) = %q, %v; want a bad request saying %q", tt.line, got, err, tt.err)
			}
		})
	}
}

// TestOperatorForms runs region commands over COMMANDS in the z/OS forms:
// F and D answer as the plain word does, with the catalogue's message, a
// form for another region is refused, and a role's command patterns apply
// to the word, so that no form reaches what the word could not (P is
// refused to a role that does not grant STOP).
func TestOperatorForms(t *testing.T) {
	_, c := operatorRegion(t, nil, "SERVERS", "AGENTS")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	run := func(line string) (string, error) {
		var out strings.Builder
		_, err := c.Command(ctx, client.CommandRequest{Target: "region", Command: line}, func(f *protocol.Frame) {
			out.WriteString(f.Text)
			out.WriteString("\n")
		})
		return out.String(), err
	}
	plain, err := run("AGENTS")
	if err != nil || !strings.HasPrefix(plain, "ZBR011I REGION ZBR1 AGENTS\nNAME ") {
		t.Fatalf("AGENTS: %q, %v; want message ZBR011I, then the heading", plain, err)
	}
	for _, line := range []string{"F ZBR1,AGENTS", "d zbr1,agents"} {
		if got, err := run(line); err != nil || got != plain {
			t.Errorf("%s: %q, %v; want AGENTS's %q", line, got, err, plain)
		}
	}
	for _, tt := range []struct{ line, code, says string }{
		{"F ZBR1,REFRESH", commands.CodeNotPermitted, "REFRESH"},
		{"F ZBR9,AGENTS", commands.CodeBadRequest, "this is region ZBR1"},
		{"P ZBR1", commands.CodeNotPermitted, "STOP"},
	} {
		_, err := run(tt.line)
		var ce *client.CommandError
		if !errors.As(err, &ce) || ce.Code != tt.code || !strings.Contains(ce.Message, tt.says) {
			t.Errorf("%s: %v; want %s saying %q", tt.line, err, tt.code, tt.says)
		}
	}
}

// TestOperatorStop stops a region with P NAME from a client whose role
// grants STOP: the answer is ZBR002I, Stopping is closed with the reason.
// A client whose role does not grant it, or grants every region command
// by the pattern **, is refused first: STOP must be named.
func TestOperatorStop(t *testing.T) {
	dir := t.TempDir()
	hash, err := auth.Hash("s")
	if err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "zbridge.toml")
	if err := os.WriteFile(config, []byte(`
[[client]]
name = "viewer"
secret-hash = "`+hash+`"
roles = ["viewer"]
[[client]]
name = "op"
secret-hash = "`+hash+`"
roles = ["operator"]
[[client]]
name = "wild"
secret-hash = "`+hash+`"
roles = ["wild"]
[[role]]
name = "wild"
ports = ["commands"]
  [[role.target]]
  pattern = "region"
  commands = ["**"]
[[role]]
name = "viewer"
ports = ["commands"]
  [[role.target]]
  pattern = "region"
  commands = ["SERVERS"]
[[role]]
name = "operator"
ports = ["commands"]
  [[role.target]]
  pattern = "region"
  commands = ["STOP"]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := New(Config{Name: "ZBR1", Commands: "127.0.0.1:0", ConfigFile: config, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	run := func(who, line string) (string, error) {
		c, err := client.Dial(ctx, client.Config{Addr: r.Addr("commands").String(), Client: who, Secret: "s"})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var out strings.Builder
		_, err = c.Command(ctx, client.CommandRequest{Target: "region", Command: line}, func(f *protocol.Frame) {
			out.WriteString(f.Text)
			out.WriteString("\n")
		})
		return out.String(), err
	}
	if _, err := run("viewer", "P ZBR1"); err == nil {
		t.Fatal("P ZBR1 from a client whose role does not grant STOP: ran")
	}
	var ce *client.CommandError
	if _, err := run("wild", "P ZBR1"); !errors.As(err, &ce) || !strings.Contains(ce.Message, "STOP is granted only by a role whose region commands list STOP by name") {
		t.Fatalf("P ZBR1 from a role granting region **: %v; want refused, STOP not named", err)
	}
	if got, err := run("wild", "SERVERS"); err != nil || !strings.HasPrefix(got, "ZBR010I") {
		t.Fatalf("SERVERS from the ** role: %q, %v", got, err)
	}
	select {
	case <-r.Stopping():
		t.Fatal("a refused P stopped the region")
	default:
	}
	got, err := run("op", "P ZBR1")
	if want := "ZBR002I REGION ZBR1 STOPPING: P ZBR1 BY op\n"; err != nil || got != want {
		t.Fatalf("P ZBR1: %q, %v; want %q", got, err, want)
	}
	select {
	case <-r.Stopping():
	case <-ctx.Done():
		t.Fatal("P ZBR1 answered but Stopping was not closed")
	}
	if err := r.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	// The region's messages are in its store until it closes: here, the
	// in-memory store is gone with it, so the messages are checked in
	// TestRegionMessages.
}

// operatorSeeds are the forms of TestOperatorCommand and the other tests,
// for FuzzOperatorCommand.
var operatorSeeds = []string{
	"SERVERS", "  agents ", "F ZBR1,SERVERS", "f zbr1,servers", "MODIFY ZBR1, REFRESH", "D ZBR1,AGENTS",
	"DISPLAY zbr1,commands", "D ZBR1,REFRESH", "F ZBR2,SERVERS", "F ZBR1", "F ZBR1,", "F ZBR1,SERVERS,AGENTS",
	"P ZBR1", "p zbr1", "STOP ZBR1", "STOP", "P", "P ZBR2", "D ZBR1,AVAIL", "AVAIL RECORDS AFTER 0 MAX 100",
	"F ZBR1,REFRESH", "d zbr1,agents", "HELP", "", "F ZBR1,F", "D ZBR1, help ", "F\tZBR1,SERVERS",
}

// FuzzOperatorCommand feeds operatorCommand what anyone with a COMMANDS
// session or a console may type. It must not panic; a refusal is a bad
// request and no word; a line that is no z/OS form is its own word,
// trimmed; a form gives one upper-case word without blank or comma, which
// the form F ZBR1,WORD (and D ZBR1,WORD, for a word D takes) gives again,
// and which typed plain is the same command, so that the roles, which
// see the word, see what the form runs.
func FuzzOperatorCommand(f *testing.F) {
	for _, s := range operatorSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		word, err := operatorCommand(line, "ZBR1")
		if err != nil {
			var ce *commands.Error
			if !errors.As(err, &ce) || ce.Code != commands.CodeBadRequest || word != "" {
				t.Fatalf("operatorCommand(%q) = %q, %v; a refusal must be a bad request and no word", line, word, err)
			}
			return
		}
		verb, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		switch v := strings.ToUpper(verb); v {
		case "F", "MODIFY", "D", "DISPLAY":
		case "P", "STOP":
			if word != "STOP" {
				t.Fatalf("operatorCommand(%q) = %q; want STOP", line, word)
			}
		default:
			if word != strings.TrimSpace(line) {
				t.Fatalf("operatorCommand(%q) = %q; a plain word must be the line, trimmed", line, word)
			}
			return
		}
		if word == "" || word != strings.ToUpper(word) || strings.ContainsAny(word, " ,") {
			t.Fatalf("operatorCommand(%q) = %q; want one upper-case word", line, word)
		}
		forms := []string{"F ZBR1," + word, "modify zbr1, " + word + " "}
		if slices.Contains(displayWords, word) {
			forms = append(forms, "D ZBR1,"+word, "display Zbr1 ,"+word)
		}
		for _, form := range forms {
			if again, err := operatorCommand(form, "ZBR1"); err != nil || again != word {
				t.Fatalf("operatorCommand(%q) = %q, but operatorCommand(%q) = %q, %v", line, word, form, again, err)
			}
		}
		switch word {
		case "F", "MODIFY", "D", "DISPLAY", "P":
			// A verb alone is no command: Run refuses it as unknown.
		default:
			if plain, err := operatorCommand(word, "ZBR1"); err != nil || plain != word {
				t.Fatalf("operatorCommand(%q) = %q, but typed plain it is %q, %v", line, word, plain, err)
			}
		}
	})
}

// TestOperatorRefresh refreshes the region over COMMANDS with the plain
// word and the z/OS form: each answers with ZBR016I and the refresh's
// result, and issues ZBR004I naming the client.
func TestOperatorRefresh(t *testing.T) {
	st := memstore.New(memstore.Config{})
	defer st.Close()
	_, c := operatorRegion(t, st, "REFRESH")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m := zos.Must("ZBR016I")
	for _, line := range []string{"REFRESH", "F ZBR1,REFRESH", "modify zbr1, refresh"} {
		var out []string
		reply, err := c.Command(ctx, client.CommandRequest{Target: "region", Command: line}, func(f *protocol.Frame) {
			out = append(out, f.Text)
		})
		if err != nil || reply.RC == nil || *reply.RC != 0 {
			t.Fatalf("%s: %+v, %v; want rc 0", line, reply, err)
		}
		if len(out) != 1 || !strings.HasPrefix(out[0], "ZBR016I REGION ZBR1 REFRESHED: config refreshed: 1 clients") ||
			!m.Pattern().MatchString(out[0]) {
			t.Errorf("%s: %q; want one line, ZBR016I REGION ZBR1 REFRESHED: config refreshed: 1 clients ...", line, out)
		}
	}
	n := 0
	for _, e := range regionEvents(t, st) {
		if e.MsgID == "ZBR004I" && strings.HasPrefix(e.Text, "ZBR004I REGION ZBR1 REFRESHED BY op: config refreshed") {
			n++
		}
	}
	if n != 3 {
		t.Errorf("%d ZBR004I REFRESHED BY op; want 3, one a refresh", n)
	}
}

// operatorRegion starts a region (on st, if not nil) whose config grants
// the client "op", secret "s", the region commands given over COMMANDS,
// and logs op on to it; both are closed when the test ends.
func operatorRegion(t *testing.T, st store.Store, commands ...string) (*Region, *client.Conn) {
	t.Helper()
	hash, err := auth.Hash("s")
	if err != nil {
		t.Fatal(err)
	}
	quoted := make([]string, len(commands))
	for i, c := range commands {
		quoted[i] = strconv.Quote(c)
	}
	config := filepath.Join(t.TempDir(), "zbridge.toml")
	if err := os.WriteFile(config, []byte(`
[[client]]
name = "op"
secret-hash = "`+hash+`"
roles = ["operator"]
[[role]]
name = "operator"
ports = ["commands"]
  [[role.target]]
  pattern = "region"
  commands = [`+strings.Join(quoted, ", ")+`]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := New(Config{Name: "ZBR1", Commands: "127.0.0.1:0", ConfigFile: config, Store: st, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, client.Config{Addr: r.Addr("commands").String(), Client: "op", Secret: "s"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return r, c
}
