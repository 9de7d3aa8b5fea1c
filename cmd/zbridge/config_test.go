//go:build !lean

package main

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/gateway/syslog"
)

// TestConfigFileFlags: the [region] table sets flags the command line did
// not; a flag given on the command line overrides the file; an unknown
// name or a bad value is an error naming it.
func TestConfigFileFlags(t *testing.T) {
	dir := t.TempDir()
	write := func(text string) string {
		path := filepath.Join(dir, "zbridge.toml")
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	parse := func(path string, args ...string) (*regionFlags, error) {
		fs := flag.NewFlagSet("region", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		var f regionFlags
		f.register(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		return &f, applyConfigFile(fs, path)
	}
	path := write(`
[region]
name = "ZBR1"
command-timeout = "90s"
max-per-target = 3
accept-new-host-keys = true
linux = ["web1=10.1.2.3:7022", "db1=10.1.2.4"]
`)
	f, err := parse(path, "--name", "ZBR2")
	if err != nil {
		t.Fatal(err)
	}
	if f.cfg.Name != "ZBR2" {
		t.Errorf("name %q: the command line must win", f.cfg.Name)
	}
	if f.cfg.CommandTimeout != 90*time.Second || f.cfg.MaxPerTarget != 3 || !f.cfg.AcceptNewHostKeys {
		t.Errorf("config %+v", f.cfg)
	}
	if strings.Join(f.linux, " ") != "web1=10.1.2.3:7022 db1=10.1.2.4" {
		t.Errorf("linux %q", f.linux)
	}
	for _, c := range []struct{ text, want string }{
		{"[region]\nlisten = \"x\"\n", "[region] listen is not a region flag"},
		{"[region]\nmax-per-target = \"many\"\n", `[region] max-per-target = "many"`},
		{"[region]\nname = { a = 1 }\n", "is not a flag value"},
		{"[[role]]\nname = \"a\"\nportz = []\n", "unknown key"},
	} {
		if _, err := parse(write(c.text)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want an error saying %q", c.text, err, c.want)
		}
	}
}

// TestSyslogCoalesceFlag: --syslog-coalesce 0 turns the hold off (the
// region's zero would be syslog's default); the default is syslog's; a
// hold past syslog.MaxCoalesce, or below zero, is an error naming the flag.
func TestSyslogCoalesceFlag(t *testing.T) {
	finish := func(args ...string) (*regionFlags, error) {
		fs := flag.NewFlagSet("region", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		var f regionFlags
		f.register(fs)
		if err := fs.Parse(append([]string{"--data-dir", ""}, args...)); err != nil {
			t.Fatal(err)
		}
		return &f, f.finish(logrus.New())
	}
	for _, tc := range []struct {
		args []string
		want time.Duration
	}{
		{nil, syslog.DefaultCoalesce},
		{[]string{"--syslog-coalesce", "0"}, -1},
		{[]string{"--syslog-coalesce", "2ms"}, 2 * time.Millisecond},
	} {
		f, err := finish(tc.args...)
		if err != nil {
			t.Fatalf("%q: %v", tc.args, err)
		}
		if f.cfg.SyslogCoalesce != tc.want {
			t.Errorf("%q: SyslogCoalesce %v, want %v", tc.args, f.cfg.SyslogCoalesce, tc.want)
		}
	}
	for _, v := range []string{"21ms", "-1ms"} {
		if _, err := finish("--syslog-coalesce", v); err == nil || !strings.Contains(err.Error(), "--syslog-coalesce") {
			t.Errorf("--syslog-coalesce %s: %v, want an error naming the flag", v, err)
		}
	}
}
