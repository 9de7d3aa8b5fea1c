//go:build !lean

package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/zbridge/zbridge/internal/peer"
)

// unitFiles returns the systemd units in deploy/systemd.
func unitFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "..", "deploy", "systemd", "*.service"))
	if err != nil || len(files) < 3 {
		t.Fatalf("units: %v (%d files, want the region's, the Linux agent's and the z/VM agent's)", err, len(files))
	}
	return files
}

// execStarts returns the arguments after "zbridge" of each ExecStart line.
func execStarts(t *testing.T, unit string) [][]string {
	t.Helper()
	data, err := os.ReadFile(unit)
	if err != nil {
		t.Fatal(err)
	}
	var cmds [][]string
	for _, line := range strings.Split(string(data), "\n") {
		v, ok := strings.CutPrefix(line, "ExecStart=")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) < 2 || filepath.Base(f[0]) != "zbridge" {
			t.Fatalf("%s: ExecStart %q does not run zbridge", unit, v)
		}
		cmds = append(cmds, f[1:])
	}
	if len(cmds) == 0 {
		t.Fatalf("%s: no ExecStart", unit)
	}
	return cmds
}

var flagLine = regexp.MustCompile(`(?m)^  -([a-z0-9-]+)(?: (\S+))?$`)

// TestUnitFlags checks that every flag the systemd units pass exists in
// the subcommand they run, and that every flag that takes a value has one.
func TestUnitFlags(t *testing.T) {
	for _, unit := range unitFiles(t) {
		for _, args := range execStarts(t, unit) {
			var usage bytes.Buffer
			run([]string{args[0], "-h"}, &usage, &usage)
			takesValue := map[string]bool{}
			for _, m := range flagLine.FindAllStringSubmatch(usage.String(), -1) {
				takesValue[m[1]] = m[2] != ""
			}
			if len(takesValue) == 0 {
				t.Fatalf("%s: zbridge %s -h lists no flags:\n%s", unit, args[0], usage.String())
			}
			for i := 1; i < len(args); i++ {
				name, _, hasValue := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
				if !strings.HasPrefix(args[i], "-") {
					t.Errorf("%s: zbridge %s: %q is not a flag", unit, args[0], args[i])
					continue
				}
				value, known := takesValue[name]
				switch {
				case !known:
					t.Errorf("%s: zbridge %s has no flag --%s", unit, args[0], name)
				case value && !hasValue:
					if i+1 >= len(args) || strings.HasPrefix(args[i+1], "-") {
						t.Errorf("%s: --%s takes a value and has none", unit, name)
					}
					i++
				}
			}
		}
	}
}

// TestUnitsVerify runs systemd-analyze verify over the units (an instance
// of each template), with ExecStart pointing at an executable here: it
// must pass and say nothing (an unknown key or a bad value is only a
// warning to it, which fails the test).
func TestUnitsVerify(t *testing.T) {
	analyze := peer.Require(t, "systemd-analyze")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var names []string
	for _, unit := range unitFiles(t) {
		data, err := os.ReadFile(unit)
		if err != nil {
			t.Fatal(err)
		}
		data = bytes.ReplaceAll(data, []byte("/usr/local/bin/zbridge"), []byte(exe))
		name := filepath.Base(unit)
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(name, "@.service") {
			name = strings.TrimSuffix(name, "@.service") + "@ZBR1.service"
		}
		names = append(names, name)
	}
	cmd := exec.Command(analyze, append([]string{"verify", "--man=no"}, names...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SYSTEMD_UNIT_PATH="+dir+":", "SYSTEMD_LOG_COLOR=0")
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-analyze verify %s: %v\n%s", strings.Join(names, " "), err, out)
	}
}
