//go:build !lean

package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zbridge/zbridge/internal/peer"
)

// BenchmarkStartup measures what every zbridge command pays before it
// does anything (issue 14: no package-level work that a subcommand does not
// use): `zbridge version`, and `zbridge tail --help` (flags parsed, usage
// printed), against a Go hello-world built by the same toolchain. Each
// iteration runs every program once, in a rotating order, so that a busy
// machine slows each alike; what it reports is the median of each, in
// milliseconds of wall time (fork to exit) and page faults (minor and
// major, from the child's rusage), and version/hello, the ratio of the
// medians, which carries from one machine to another better than the
// milliseconds do, and lean/hello, the same for the lean build. zbridge is
// built three times: with cgo on (go build's default where a C compiler
// is installed, so dynamically linked), with CGO_ENABLED=0 (static, as the
// README builds it and as the hello-world is), and the lean build
// (lean.go: the clients alone, static).
//
//	go test -run '^$' -bench Startup -benchtime 200x ./cmd/zbridge
//
// The same, with perf (Debian's linux-perf), for one binary at a time:
//
//	go build -o /tmp/zbridge ./cmd/zbridge
//	perf stat -r 100 -e page-faults,task-clock /tmp/zbridge version
//
// $ZBRIDGE_STARTUP_BASELINE, the path of another zbridge binary (an older
// build, say), adds its `version` and `tail --help` to the runs, as
// baseline-version and baseline-tail-help.
func BenchmarkStartup(b *testing.B) {
	dir := b.TempDir()
	hello := buildHello(b, dir)
	zbridge := buildStartupZbridge(b, filepath.Join(dir, "zbridge"))
	static := buildStartupZbridge(b, filepath.Join(dir, "zbridge-static"), "CGO_ENABLED=0")
	leanDir := filepath.Join(dir, "lean")
	if err := os.Mkdir(leanDir, 0o755); err != nil {
		b.Fatal(err)
	}
	lean := buildLean(b, leanDir)
	runs := []*startupRun{
		{name: "hello", argv: []string{hello}, want: "hello"},
		{name: "version", argv: []string{zbridge, "version"}, want: "zbridge "},
		{name: "version-static", argv: []string{static, "version"}, want: "zbridge "},
		{name: "version-lean", argv: []string{lean, "version"}, want: "zbridge "},
		{name: "tail-help-lean", argv: []string{lean, "tail", "--help"}, want: "Usage of zbridge tail", exit: 2},
		{name: "tail-help", argv: []string{zbridge, "tail", "--help"}, want: "Usage of zbridge tail", exit: 2},
	}
	if base := os.Getenv("ZBRIDGE_STARTUP_BASELINE"); base != "" {
		runs = append(runs,
			&startupRun{name: "baseline-version", argv: []string{base, "version"}, want: "zbridge "},
			&startupRun{name: "baseline-tail-help", argv: []string{base, "tail", "--help"}, want: "Usage of zbridge tail", exit: 2})
	}
	for _, r := range runs {
		r.check(b)
	}

	for i := 0; b.Loop(); i++ {
		for j := range runs {
			runs[(i+j)%len(runs)].once(b)
		}
	}

	for _, r := range runs {
		b.ReportMetric(median(r.ms), r.name+"-ms")
		b.ReportMetric(median(r.faults), r.name+"-faults")
	}
	b.ReportMetric(median(runs[1].ms)/median(runs[0].ms), "version/hello")
	b.ReportMetric(median(runs[1].faults)/median(runs[0].faults), "version/hello-faults")
	b.ReportMetric(median(runs[3].ms)/median(runs[0].ms), "lean/hello")
}

// startupRun is one program the benchmark starts, and what it measured.
type startupRun struct {
	name string
	argv []string
	want string // in its output
	exit int    // its exit status

	ms, faults []float64
}

// check runs the program once and fails the benchmark unless it exits as
// expected with the expected output.
func (r *startupRun) check(b *testing.B) {
	b.Helper()
	out, err := exec.Command(r.argv[0], r.argv[1:]...).CombinedOutput()
	code := 0
	if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
		code, err = ee.ExitCode(), nil
	}
	if err != nil || code != r.exit || !strings.Contains(string(out), r.want) {
		b.Fatalf("%s: %v, exit %d (want %d):\n%s", strings.Join(r.argv, " "), err, code, r.exit, out)
	}
}

// once runs the program and records its wall time and page faults.
func (r *startupRun) once(b *testing.B) {
	cmd := exec.Command(r.argv[0], r.argv[1:]...)
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	if ee := (*exec.ExitError)(nil); errors.As(err, &ee) && ee.ExitCode() == r.exit {
		err = nil
	}
	if err != nil {
		b.Fatalf("%s: %v", strings.Join(r.argv, " "), err)
	}
	r.ms = append(r.ms, float64(took)/float64(time.Millisecond))
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.faults = append(r.faults, float64(ru.Minflt+ru.Majflt))
	}
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}

// buildHello builds a Go hello-world in a module of its own under dir.
func buildHello(b *testing.B, dir string) string {
	b.Helper()
	src := filepath.Join(dir, "hello")
	if err := os.MkdirAll(src, 0o755); err != nil {
		b.Fatal(err)
	}
	for name, text := range map[string]string{
		"go.mod":  "module hello\n\ngo 1.21\n",
		"main.go": "package main\n\nimport (\n\t\"fmt\"\n\t\"os\"\n)\n\nfunc main() { fmt.Fprintln(os.Stdout, \"hello\") }\n",
	} {
		if err := os.WriteFile(filepath.Join(src, name), []byte(text), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "hello-bin")
	cmd := peer.GoBuild([]string{"GOWORK=off", "GOFLAGS="}, "-o", bin, ".")
	cmd.Dir = src
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("building the hello-world: %v\n%s", err, out)
	}
	return bin
}

// buildStartupZbridge builds zbridge to bin, with env added to the build's
// environment.
func buildStartupZbridge(b *testing.B, bin string, env ...string) string {
	b.Helper()
	cmd := peer.GoBuild(env, "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("building zbridge (%v): %v\n%s", env, err, out)
	}
	return bin
}

// initBudget is the most one of zbridge's own packages may allocate at
// init: a few small tables and errors, nothing built (regexps, scripts,
// replacers, codepages), which every subcommand would pay for at start.
const (
	initMaxAllocs = 16
	initMaxBytes  = 2 << 10
)

// TestInitWork runs `zbridge version` with GODEBUG=inittrace=1 and fails
// if one of zbridge's own packages does more than initBudget at init
// (issue 14). Before it, gateway/store/redisstore hashed its six Lua
// scripts (36 allocations, 12 KiB) and gateway/region built a
// strings.Replacer (71 allocations) in every zbridge process.
func TestInitWork(t *testing.T) {
	e2e(t)
	cmd := exec.Command(zbridgeBin, "version")
	cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("zbridge version: %v\n%s", err, stderr.String())
	}
	ours := 0
	for line := range strings.Lines(stderr.String()) {
		// init PKG @T ms, C ms clock, B bytes, A allocs
		f := strings.Fields(line)
		if len(f) != 11 || f[0] != "init" || !strings.HasPrefix(f[1], "github.com/zbridge/zbridge/") {
			continue
		}
		ours++
		bytes, err1 := strconv.Atoi(f[7])
		allocs, err2 := strconv.Atoi(f[9])
		if err1 != nil || err2 != nil {
			t.Fatalf("unexpected inittrace line %q", line)
		}
		if allocs > initMaxAllocs || bytes > initMaxBytes {
			t.Errorf("%s allocates %d times (%d bytes) at init; at most %d (%d bytes): build it when first used (sync.OnceValue)",
				f[1], allocs, bytes, initMaxAllocs, initMaxBytes)
		}
	}
	if ours < 5 {
		t.Fatalf("only %d of zbridge's packages in the init trace:\n%s", ours, stderr.String())
	}
}
