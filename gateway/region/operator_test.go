package region

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zbridge/zbridge/commands"
	"github.com/zbridge/zbridge/gateway/auth"
	"github.com/zbridge/zbridge/protocol"
	"github.com/zbridge/zbridge/protocol/client"
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
	dir := t.TempDir()
	hash, err := auth.Hash("s")
	if err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "zbridge.toml")
	if err := os.WriteFile(config, []byte(`
[[client]]
name = "op"
secret-hash = "`+hash+`"
roles = ["viewer"]
[[role]]
name = "viewer"
ports = ["commands"]
  [[role.target]]
  pattern = "region"
  commands = ["SERVERS", "AGENTS"]
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
	c, err := client.Dial(ctx, client.Config{Addr: r.Addr("commands").String(), Client: "op", Secret: "s"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
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
