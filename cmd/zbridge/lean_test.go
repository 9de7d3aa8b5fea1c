//go:build !lean

package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zbridge/zbridge/internal/peer"
)

// leanForbidden are the libraries the lean build must not link: each
// one's package initialisation would run in every `zbridge cmd` (see
// lean.go).
var leanForbidden = []string{
	"golang.org/x/crypto/ssh",
	"github.com/racingmars/go3270",
	"github.com/redis/go-redis/v9",
	"github.com/BurntSushi/toml",
	"github.com/sirupsen/logrus",
	"html/template",
	"net/http",
}

// buildLean builds the lean zbridge (static, as the README builds it) into
// dir and returns its path.
func buildLean(tb testing.TB, dir string) string {
	tb.Helper()
	bin := filepath.Join(dir, "zbridge")
	c := peer.GoBuild([]string{"CGO_ENABLED=0"}, "-tags", "lean", "-o", bin, ".")
	if out, err := c.CombinedOutput(); err != nil {
		tb.Fatalf("building the lean zbridge: %v\n%s", err, out)
	}
	return bin
}

// runBin runs bin with args and returns its combined output and exit
// status.
func runBin(t *testing.T, bin string, args ...string) (string, int) {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
		return string(out), ee.ExitCode()
	}
	if err != nil {
		t.Fatalf("%s %v: %v", bin, args, err)
	}
	return string(out), 0
}

// TestLeanBuild: the lean build links none of the server side's libraries,
// runs the client commands itself, and runs the others by executing
// zbridge-server beside it, saying so when there is none.
func TestLeanBuild(t *testing.T) {
	out, err := exec.Command("go", "list", "-tags", "lean", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -tags lean -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	for _, bad := range leanForbidden {
		for _, d := range deps {
			if d == bad || strings.HasPrefix(d, bad+"/") {
				t.Errorf("the lean build links %s", d)
			}
		}
	}

	if testing.Short() {
		t.Log("-short: the lean build's dependencies only; building and running it is for the full suite")
		return
	}
	dir := t.TempDir()
	lean := buildLean(t, dir)
	if out, code := runBin(t, lean, "version"); code != 0 || !strings.HasPrefix(out, "zbridge ") {
		t.Errorf("lean version: exit %d, %q", code, out)
	}
	if out, code := runBin(t, lean, "tail", "--help"); code != 2 || !strings.Contains(out, "Usage of zbridge tail") {
		t.Errorf("lean tail --help: exit %d, %q", code, out)
	}
	// No zbridge-server beside it: a clear refusal.
	out2, code := runBin(t, lean, "region", "--help")
	if code != 2 || !strings.Contains(out2, "lean build") || !strings.Contains(out2, filepath.Join(dir, "zbridge-server")) {
		t.Errorf("lean region without zbridge-server: exit %d, %q", code, out2)
	}

	// A lean build installed as zbridge-server refuses rather than
	// executing itself for ever.
	loopDir := t.TempDir()
	loopLean := buildLean(t, loopDir)
	if err := os.Link(loopLean, filepath.Join(loopDir, "zbridge-server")); err != nil {
		t.Fatal(err)
	}
	if out, code := runBin(t, loopLean, "region", "--help"); code != 2 || !strings.Contains(out, "is the lean build too") {
		t.Errorf("lean region with a lean zbridge-server: exit %d, %q", code, out)
	}

	if err := os.Symlink(zbridgeBin, filepath.Join(dir, "zbridge-server")); err != nil {
		t.Fatal(err)
	}
	want, wantCode := runBin(t, zbridgeBin, "region", "--help")
	got, gotCode := runBin(t, lean, "region", "--help")
	if gotCode != wantCode || got != want || !strings.Contains(got, "Usage of zbridge region") {
		t.Errorf("lean region --help: exit %d, %q; the full build: exit %d, %q", gotCode, got, wantCode, want)
	}
	// The same process: the arguments reach zbridge-server as they were.
	got, gotCode = runBin(t, lean, "linuxagent", "--listen", "127.0.0.1:0", "--no-such-flag")
	if gotCode != 2 || !bytes.Contains([]byte(got), []byte("no-such-flag")) {
		t.Errorf("lean linuxagent with a bad flag: exit %d, %q", gotCode, got)
	}
}
