package metrics

import (
	"bytes"
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// gatherOne runs c.collect once and returns each family's one value by
// name, and the errors.
func gatherOne(t *testing.T, c collector) (map[string]float64, error) {
	t.Helper()
	g := &gathering{series: map[*desc][]series{}}
	c.collect(g)
	values := map[string]float64{}
	for d, ss := range g.series {
		if len(ss) != 1 {
			t.Fatalf("%s: %d series", d.name, len(ss))
		}
		values[d.name] = ss[0].value
	}
	return values, errors.Join(g.errs...)
}

// TestProcessFromFiles reads a /proc made up in testdata: a command name
// with spaces and parentheses, limits with "unlimited", two interfaces.
func TestProcessFromFiles(t *testing.T) {
	got, err := gatherOne(t, newProcessCollector(filepath.Join("testdata", "proc")))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		"process_cpu_seconds_total":            4, // (250 + 150) ticks
		"process_resident_memory_bytes":        1658 * float64(os.Getpagesize()),
		"process_virtual_memory_bytes":         1597779968,
		"process_virtual_memory_max_bytes":     4294967296,
		"process_open_fds":                     3,
		"process_max_fds":                      1024, // the soft limit
		"process_start_time_seconds":           1700000000 + 3600,
		"process_network_receive_bytes_total":  1000 + 441187044,
		"process_network_transmit_bytes_total": 2000 + 1616286,
	}
	if !mapsEqual(got, want) {
		t.Errorf("got  %v\nwant %v", got, want)
	}
}

// TestProcessBadFiles: what cannot be read is left out and reported; the
// rest is there.
func TestProcessBadFiles(t *testing.T) {
	proc := t.TempDir()
	copyTree(t, filepath.Join("testdata", "proc"), proc)
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(proc, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("self/stat", "4242 (zbr) S 1 2 3\n")                                 // too short
	write("self/limits", "Limit Soft Limit\nMax open files 1024 4096 files\n") // no address space line
	got, err := gatherOne(t, newProcessCollector(proc))
	for _, msg := range []string{"stat: 4 fields after the command name", `no "Max address space" line`} {
		if err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("error %v does not say %q", err, msg)
		}
	}
	if len(got) != 3 || got["process_open_fds"] != 3 || got["process_network_receive_bytes_total"] == 0 {
		t.Errorf("got %v, want only the fds and network families", got)
	}

	_, err = gatherOne(t, newProcessCollector(filepath.Join(t.TempDir(), "none")))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("no /proc: %v", err)
	}
}

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestProcessSelf reads this process's own /proc/self and checks it
// against what the system calls say.
func TestProcessSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skipf("no /proc: %v", err)
	}
	c := newProcessCollector("/proc")
	before, err := gatherOne(t, c)
	if err != nil {
		t.Fatal(err)
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if got := before["process_max_fds"]; got != float64(lim.Cur) {
		t.Errorf("process_max_fds = %v, getrlimit says %d", got, lim.Cur)
	}
	if err := syscall.Getrlimit(syscall.RLIMIT_AS, &lim); err != nil {
		t.Fatal(err)
	}
	if got := before["process_virtual_memory_max_bytes"]; got != float64(lim.Cur) {
		t.Errorf("process_virtual_memory_max_bytes = %v, getrlimit says %d", got, lim.Cur)
	}
	// The test binary started in the last hour and not in the future.
	if start, now := before["process_start_time_seconds"], float64(time.Now().Unix()); start > now+1 || start < now-3600 {
		t.Errorf("process_start_time_seconds = %v, now %v", start, now)
	}
	if rss := before["process_resident_memory_bytes"]; rss < 1<<20 || rss > before["process_virtual_memory_bytes"] {
		t.Errorf("resident %v, virtual %v", rss, before["process_virtual_memory_bytes"])
	}

	// Three more files open, and some CPU burnt.
	for range 3 {
		f, err := os.Open(os.Args[0])
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
	}
	x, cpu0 := 1.0, cpuTime(t)
	for deadline := time.Now().Add(10 * time.Second); cpuTime(t) < cpu0+30*time.Millisecond && time.Now().Before(deadline); {
		for range 10000 {
			x = math.Sqrt(x + 2)
		}
	}
	after, err := gatherOne(t, c)
	if err != nil {
		t.Fatal(err)
	}
	if got := after["process_open_fds"] - before["process_open_fds"]; got != 3 {
		t.Errorf("process_open_fds went from %v to %v after 3 files opened", before["process_open_fds"], after["process_open_fds"])
	}
	if after["process_cpu_seconds_total"] < before["process_cpu_seconds_total"]+0.01 {
		t.Errorf("process_cpu_seconds_total %v after %v and 30 ms of CPU (%v)", after["process_cpu_seconds_total"],
			before["process_cpu_seconds_total"], x)
	}
	if !bytes.Contains([]byte(scrape(t, registryWith(c))), []byte("\nprocess_open_fds ")) {
		t.Error("process_open_fds not written")
	}
}

// cpuTime returns the user and system CPU time the process has used.
func cpuTime(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// registryWith returns a Registry with the process collector c's families.
func registryWith(c *processCollector) *Registry {
	r := NewRegistry()
	r.register(c, c.descs()...)
	return r
}
