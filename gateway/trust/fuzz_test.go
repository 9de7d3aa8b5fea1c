package trust

import (
	"os"
	"testing"

	"github.com/zbridge/zbridge/commands"
)

// FuzzConfig feeds the config reader arbitrary files, seeded with the
// example config: it must never panic, and a file that compiles must
// answer every question without panicking.
func FuzzConfig(f *testing.F) {
	if b, err := os.ReadFile("../../testdata/config/zbridge.toml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte(testConfig))
	f.Add([]byte("[[role]]\nname = \"a\"\nports = [\"commands\"]\n[[role.target]]\npattern = \"linux:*\"\ncommands = [\"** x\"]\n"))
	tgt := commands.Target{Kind: commands.KindLinux, Name: "web1"}
	f.Fuzz(func(t *testing.T, b []byte) {
		file, err := Parse(b)
		if err != nil {
			return
		}
		p, err := NewPolicy(file, Options{})
		if err != nil {
			return
		}
		for _, c := range p.Clients() {
			p.Command(c, tgt, "uptime -p")
			p.Port(c, PortCommands)
			p.Limits(c)
		}
	})
}
