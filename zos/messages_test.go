package zos

import (
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite MESSAGES.md from the catalogue")

func TestCatalogue(t *testing.T) {
	if err := check(catalogue); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]Message{
		{{ID: "ZBR10E", Text: "x", Explanation: "x", SystemAction: "x", OperatorResponse: "x", Issuer: "x"}},
		{{ID: "ZBR101X", Text: "x", Explanation: "x", SystemAction: "x", OperatorResponse: "x", Issuer: "x"}},
		{{ID: "ZBR101E", Text: "x", SystemAction: "x", OperatorResponse: "x", Issuer: "x"}},
		{catalogue[0], catalogue[0]},
	} {
		if check(bad) == nil {
			t.Errorf("check(%+v) = nil, want an error", bad)
		}
	}
	for _, m := range catalogue {
		got, ok := Lookup(m.ID)
		if !ok || got.ID != m.ID {
			t.Errorf("Lookup(%s) = %v, %v", m.ID, got.ID, ok)
		}
	}
	if _, ok := Lookup("ZBR999I"); ok {
		t.Error("Lookup(ZBR999I) found a message that is not in the catalogue")
	}
}

func TestFormat(t *testing.T) {
	m := Must("ZBR016I")
	got := m.Format("ZBR1", "2 clients changed")
	if got != "ZBR016I REGION ZBR1 REFRESHED: 2 clients changed" || !m.Pattern().MatchString(got) {
		t.Errorf("Format = %q", got)
	}
	for _, f := range []func(){
		func() { m.Format("ZBR1") }, // an insert short
		func() { Must("ZBR999I") },  // not catalogued
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			f()
		}()
	}
}

func TestPattern(t *testing.T) {
	m, _ := Lookup("ZBR101E")
	text := `ZBR101E FLOOD CONTROL HELD BACK 8 EVENTS FROM web1 AT 192.0.2.1 BETWEEN 12:00:00.000 AND 12:00:00.007 UTC ` +
		`(LIMITS 1/S BURST 2 PER HOST); BY LIMIT HOST=8; TOP IDS sshd=8; FIRST "a"; LAST "b"`
	if !m.Pattern().MatchString(text) {
		t.Errorf("%s does not match %s", m.Pattern(), text)
	}
	if m.Pattern().MatchString("ZBR101E FLOOD CONTROL HELD BACK 8 EVENTS") {
		t.Error("the pattern matches a message cut short")
	}
}

// idRun finds message IDs in source text.
var idRun = regexp.MustCompile(`ZBR[0-9]{3}[A-Z]`)

// TestIssuedIDsCatalogued reads every Go file of the module but tests and
// fails on a string literal holding a message ID the catalogue lacks, and
// on a catalogue entry no code issues.
func TestIssuedIDsCatalogued(t *testing.T) {
	root := filepath.Join("..")
	issued := map[string][]string{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "tools") {
				return filepath.SkipDir // tools/ is a module of its own
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				for _, id := range idRun.FindAllString(lit.Value, -1) {
					issued[id] = append(issued[id], fset.Position(lit.Pos()).String())
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for id, where := range issued {
		if _, ok := Lookup(id); !ok {
			t.Errorf("%s is issued (%s) but not in the catalogue", id, strings.Join(where, ", "))
		}
	}
	for _, m := range catalogue {
		if len(issued[m.ID]) == 0 {
			t.Errorf("%s is in the catalogue but no code issues it", m.ID)
		}
	}
}

// doc writes the catalogue as MESSAGES.md.
func doc() string {
	var b strings.Builder
	b.WriteString("# zbridge messages\n\n")
	b.WriteString("Every message the region issues, as z/OS message manuals list theirs. Generated from the\n")
	b.WriteString("catalogue in `messages.go` (`go test ./zos -update`); the package doc explains the IDs.\n")
	b.WriteString("A message goes out as an event with `source=region` and the ID in `msgid`.\n")
	for _, m := range catalogue {
		fmt.Fprintf(&b, "\n## %s\n\n```\n%s %s\n```\n\n", m.ID, m.ID, m.Text)
		if len(m.Inserts) > 0 {
			b.WriteString("In the message text:\n\n")
			for _, in := range m.Inserts {
				fmt.Fprintf(&b, "- *%s*: %s\n", in.Name, in.Meaning)
			}
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "**Explanation.** %s\n\n**System action.** %s\n\n**Operator response.** %s\n\n**Issued by.** `%s`\n",
			m.Explanation, m.SystemAction, m.OperatorResponse, m.Issuer)
	}
	return b.String()
}

// TestCatalogueDoc keeps MESSAGES.md the catalogue's.
func TestCatalogueDoc(t *testing.T) {
	want := doc()
	if *update {
		if err := os.WriteFile("MESSAGES.md", []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile("MESSAGES.md")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Error("MESSAGES.md is not the catalogue's: run go test ./zos -update")
	}
}
