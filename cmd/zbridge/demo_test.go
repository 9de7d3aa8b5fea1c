//go:build !lean

package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zbridge/zbridge/internal/leakcheck"
	"github.com/zbridge/zbridge/internal/peer"
)

// demoDeadline is issue 12's requirement: a z/VM console line and a Linux
// command response within 15 seconds of starting `zbridge demo`.
const demoDeadline = 15 * time.Second

// demoMarks are what the demo must print, each found in its output's
// complete lines by line index.
var demoMarks = []struct {
	name  string
	found func(lines []string, i int) bool
}{
	{"z/VM console line", func(l []string, i int) bool { return strings.HasPrefix(l[i], "z/VM console: ") }},
	{"Linux command response", func(l []string, i int) bool {
		return strings.HasPrefix(l[i], "linux:"+demoLinux+" $ uname -sr  [rc 0, ") && i+1 < len(l) && strings.HasPrefix(l[i+1], "    Linux ")
	}},
	{"CP command response", func(l []string, i int) bool {
		return strings.HasPrefix(l[i], "zvm:"+demoSystem+" QUERY TIME  [rc 0, ") && i+1 < len(l) && strings.HasPrefix(l[i+1], "    TIME IS ")
	}},
}

// demoWatch polls out until every demo mark is in it or the deadline
// (from start) passes, logging when each appeared; it returns the marks
// still missing.
func demoWatch(t *testing.T, start time.Time, deadline time.Duration, out func() string) []string {
	t.Helper()
	seen := make([]bool, len(demoMarks))
	left := len(demoMarks)
	for {
		text := out()
		lines := strings.Split(text[:strings.LastIndexByte(text, '\n')+1], "\n")
		for m, mark := range demoMarks {
			if seen[m] {
				continue
			}
			for i := range lines {
				if mark.found(lines, i) {
					seen[m] = true
					left--
					t.Logf("%s after %v", mark.name, time.Since(start).Round(time.Millisecond))
					break
				}
			}
		}
		if left == 0 {
			return nil
		}
		if time.Since(start) > deadline {
			var missing []string
			for m, mark := range demoMarks {
				if !seen[m] {
					missing = append(missing, mark.name)
				}
			}
			return missing
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// demoTempDir returns the private directory the demo says it made.
func demoTempDir(t *testing.T, out string) string {
	t.Helper()
	m := regexp.MustCompile(`are in (\S+), removed at exit`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("the demo names no temporary directory:\n%s", out)
	}
	return m[1]
}

// checkEmptyDir fails unless dir holds nothing.
func checkEmptyDir(t *testing.T, what, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("%s %s: %s left behind", what, dir, e.Name())
	}
}

// TestDemo runs `zbridge demo` with its default flags as a user on a
// fresh machine would (an empty HOME and state directory), and requires
// a z/VM console line, the Linux command's response and the CP command's
// within 15 seconds of the process starting, every listener on a loopback
// port the kernel picked, and, after SIGTERM, exit status 0 with nothing
// left behind.
func TestDemo(t *testing.T) {
	e2e(t)
	root := t.TempDir()
	home, state, tmp := filepath.Join(root, "home"), filepath.Join(root, "state"), filepath.Join(root, "tmp")
	for _, d := range []string{home, state, tmp} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	p := peer.Start(t, peer.Command{Name: "zbridge-demo", Path: zbridgeBin, Args: []string{"demo"},
		Env: []string{"HOME=" + home, "XDG_STATE_HOME=" + state, "TMPDIR=" + tmp}})
	if missing := demoWatch(t, start, demoDeadline, p.Log); missing != nil {
		t.Fatalf("not within %v of starting: %s; output:\n%s", demoDeadline, strings.Join(missing, ", "), p.Log())
	}
	out := p.Log()

	// Every address printed is on loopback, none a region's fixed default.
	fixed := map[string]bool{defaultSyslog: true, defaultUnsolMsg: true, defaultCommands: true, defaultVMMon: true,
		defaultHTTP: true, defaultAgentListen: true, defaultZVMSimListen: true}
	addrs := regexp.MustCompile(`\b\d+\.\d+\.\d+\.\d+:\d+\b`).FindAllString(out, -1)
	for _, a := range addrs {
		if !strings.HasPrefix(a, "127.0.0.1:") || fixed[a] {
			t.Errorf("the demo printed address %s: want 127.0.0.1 and a port the kernel picked", a)
		}
	}
	for _, want := range []string{"SYSLOG 127.0.0.1:", "UNSOLMSG 127.0.0.1:", "COMMANDS 127.0.0.1:", "VMMON 127.0.0.1:",
		"HTTP 127.0.0.1:", "z/VM simulator " + demoSystem + " on 127.0.0.1:", "Linux agent " + demoLinux + " on 127.0.0.1:"} {
		if !strings.Contains(out, want) {
			t.Errorf("the demo did not print %q", want)
		}
	}
	// The console, opened as the demo says: s3270 logs on and sees the
	// demo's events and the region's messages.
	m := regexp.MustCompile(`(?m)^3270 operator console: x3270 (127\.0\.0\.1:\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("the demo does not say how to open its console:\n%s", out)
	}
	s := peer.StartS3270(t, "-model", "3278-2")
	s.Must("Connect(" + m[1] + ")")
	s.WaitText(30*time.Second, "CLIENT ===>")
	s.Must(`String("demo-operator")`)
	s.Must("Enter()")
	s.WaitText(30*time.Second, "CONSOLE LOGON BY demo-operator")
	s.Must("PF(3)")

	if os.Geteuid() == 0 && !strings.Contains(out, "root is allowed because this is a demo on loopback") {
		t.Errorf("run as root, the demo does not say why its Linux agent runs commands as root")
	}
	dir := demoTempDir(t, out)
	if filepath.Dir(dir) != tmp {
		t.Errorf("the demo's directory %s is not in $TMPDIR %s", dir, tmp)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("the demo's directory %s: %v, %v; want mode 0700", dir, fi, err)
	}

	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-time.After(30 * time.Second):
		t.Fatalf("the demo did not stop within 30 s of SIGTERM:\n%s", p.Log())
	}
	if err := p.Wait(); err != nil {
		t.Fatalf("the demo exited with %v after SIGTERM:\n%s", err, p.Log())
	}
	t.Logf("stopped %v after start", time.Since(start).Round(time.Millisecond))
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the demo's directory %s is still there (%v)", dir, err)
	}
	for _, d := range []string{home, state, tmp} {
		checkEmptyDir(t, "directory", d)
	}
	if !strings.Contains(p.Log(), "zbridge demo: stopped; removed "+dir) {
		t.Errorf("the demo did not say it stopped:\n%s", p.Log())
	}
}

// TestDemoInProcess runs the demo in the test process, for the race
// detector and the goroutine leak check: once it has shown every flow,
// cancelling its context stops it with status 0, every goroutine it
// started gone and its directory removed.
func TestDemoInProcess(t *testing.T) {
	leakcheck.Check(t)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	t.Setenv("HOME", t.TempDir())
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	start := time.Now()
	go func() { done <- demoMain(ctx, []string{"--interval", "100ms"}, &stdout, &stderr) }()
	// Under the race detector everything is slower: the 15 s is
	// TestDemo's to check.
	if missing := demoWatch(t, start, 60*time.Second, stdout.String); missing != nil {
		cancel()
		<-done
		t.Fatalf("missing: %s; output:\n%s\nstderr:\n%s", strings.Join(missing, ", "), stdout.String(), stderr.String())
	}
	dir := demoTempDir(t, stdout.String())
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit status %d; output:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the demo did not stop within 30 s of its context ending:\n%s", stdout.String())
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the demo's directory %s is still there (%v)", dir, err)
	}
	checkEmptyDir(t, "$TMPDIR", tmp)
	if strings.Contains(stderr.String(), "level=error") {
		t.Errorf("errors logged:\n%s", stderr.String())
	}
}
