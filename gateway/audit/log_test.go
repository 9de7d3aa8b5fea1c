package audit_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/zbridge/zbridge/gateway/audit"
)

func discard() logrus.FieldLogger {
	lg := logrus.New()
	lg.SetOutput(io.Discard)
	return lg
}

// newLog opens a Log (on a new file in a temporary directory unless
// cfg.Path is set) and returns it with its path.
func newLog(t testing.TB, cfg audit.Config) (*audit.Log, string) {
	t.Helper()
	if cfg.Path == "" {
		cfg.Path = filepath.Join(t.TempDir(), "audit.log")
	}
	if cfg.Region == "" {
		cfg.Region = "ZBR1"
	}
	if cfg.Logger == nil {
		cfg.Logger = discard()
	}
	l, err := audit.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Error(err)
		}
	})
	return l, cfg.Path
}

// readLines returns the lines of the file at path, each parsed, and the
// raw lines.
func readLines(t *testing.T, path string) ([]audit.Record, []string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		t.Errorf("%s does not end with a newline", path)
	}
	var recs []audit.Record
	var raws []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r audit.Record
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("%s: line %q: %v", path, sc.Text(), err)
		}
		recs = append(recs, r)
		raws = append(raws, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return recs, raws
}

func intp(i int) *int { return &i }

var at = time.Date(2025, 3, 1, 9, 30, 0, 123456789, time.FixedZone("CET", 3600))

func TestNewConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	for _, tc := range []struct {
		name string
		cfg  audit.Config
	}{
		{"no path", audit.Config{Region: "ZBR1", Logger: discard()}},
		{"no region", audit.Config{Path: path, Logger: discard()}},
		{"no logger", audit.Config{Path: path, Region: "ZBR1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := audit.New(tc.cfg); !errors.Is(err, audit.ErrConfig) {
				t.Errorf("New returned %v, want ErrConfig", err)
			}
		})
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused config created the file: %v", err)
	}
}

func TestCreatesPrivateFile(t *testing.T) {
	_, path := newLog(t, audit.Config{})
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != audit.FileMode {
		t.Errorf("created with mode %v, want %v", fi.Mode().Perm(), audit.FileMode)
	}
}

func TestRoundTrip(t *testing.T) {
	l, path := newLog(t, audit.Config{})
	in := []audit.Record{
		{Time: at, Kind: audit.KindCommand, Phase: audit.PhaseStart, Client: "OPSAUTO",
			Remote: "10.1.2.3:50312", Session: "ZBR1-7", Server: "commands", Target: "linux:web1",
			Command: `cd /tmp && ls -l > "out file" 2>&1 < /dev/null`, ID: "ops-17",
			Rule: "role ops: linux:web* **"},
		{Time: at.Add(41 * time.Millisecond), Kind: audit.KindCommand, Phase: audit.PhaseEnd,
			Client: "OPSAUTO", Target: "linux:web1", ID: "ops-17", Outcome: audit.OutcomeOK,
			RC: intp(0), DurationMs: 41, OutputBytes: 120, Via: "ZBR2"},
		{Time: at, Kind: audit.KindCommand, Phase: audit.PhaseEnd, Client: "jane.doe@ops",
			Target: "zvm:VMSYS1", Command: "line\nbreak\u2028sep\u2029para\x00nul\ttab \"q\" \\ é 日本",
			ID: "x", Outcome: audit.OutcomeRefused, Code: "not-permitted",
			Message: "client jane.doe@ops may not run \"FORCE\" on zvm:VMSYS1", Rule: "no role grants zvm:VMSYS1"},
		{Time: at, Kind: audit.KindLogon, Client: "MALLORY", Remote: "[::1]:4000", Server: "vmmon",
			Outcome: audit.OutcomeRefused, Code: "auth", Message: "bad client name or secret"},
		{Time: at, Kind: audit.KindSubscribe, Client: "OPSAUTO", Session: "ZBR1-8", Server: "unsolmsg",
			Command: "source=audit", Outcome: audit.OutcomeOK},
		{Time: at, Kind: audit.KindCommand, Phase: audit.PhaseEnd, ID: "sig", Outcome: audit.OutcomeOK,
			RC: intp(137), Signal: "KILL", Truncated: true, DurationMs: 1500},
		{Time: at, Kind: audit.KindRefresh, Client: "OLD", Session: "ZBR1-9", Outcome: audit.OutcomeRefused,
			Code: "not-permitted", Region: "IGNORED"},
	}
	for _, r := range in {
		if err := l.Write(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	got, raws := readLines(t, path)
	if len(got) != len(in) {
		t.Fatalf("%d lines, want %d", len(got), len(in))
	}
	timeRE := regexp.MustCompile(`^\{"time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z","region":"ZBR1","kind":"`)
	for i, want := range in {
		want.Time = want.Time.UTC().Truncate(time.Millisecond)
		want.Region = "ZBR1"
		if !reflect.DeepEqual(got[i], want) {
			t.Errorf("line %d:\n got %+v\nwant %+v", i, got[i], want)
		}
		if !timeRE.MatchString(raws[i]) {
			t.Errorf("line %d does not start with time, region and kind: %s", i, raws[i])
		}
	}
	if want := `"time":"2025-03-01T08:30:00.123Z"`; !strings.Contains(raws[0], want) {
		t.Errorf("line 0 lacks %s: %s", want, raws[0])
	}
	// Nothing escaped beyond JSON: shell syntax stays as typed.
	if want := `"command":"cd /tmp && ls -l > \"out file\" 2>&1 < /dev/null"`; !strings.Contains(raws[0], want) {
		t.Errorf("line 0 lacks %s: %s", want, raws[0])
	}
	// Line and paragraph separators are escaped, so that no reader splits
	// the line there.
	if want := `line\nbreak\u2028sep\u2029para\u0000nul\ttab`; !strings.Contains(raws[2], want) {
		t.Errorf("line 2 lacks %s: %s", want, raws[2])
	}
	for _, omitted := range []string{`"rc"`, `"outcome"`, `"duration_ms"`, `"truncated"`, `"via"`} {
		if strings.Contains(raws[0], omitted) {
			t.Errorf("start record holds %s: %s", omitted, raws[0])
		}
	}
	if !strings.Contains(raws[1], `"rc":0`) {
		t.Errorf("rc 0 left out: %s", raws[1])
	}
}

func TestDurableOnReturn(t *testing.T) {
	l, path := newLog(t, audit.Config{})
	for i := range 5 {
		if err := l.Write(context.Background(), audit.Record{Kind: audit.KindCommand, ID: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
		// Another handle sees the line as soon as Write has returned.
		recs, _ := readLines(t, path)
		if len(recs) != i+1 || recs[i].ID != fmt.Sprint(i) {
			t.Fatalf("after Write %d the file holds %d records", i, len(recs))
		}
		if s := l.Stats(); s.Records != uint64(i+1) || s.Syncs != uint64(i+1) {
			t.Fatalf("after Write %d: %+v", i, s)
		}
	}
}

func TestTimeFilledIn(t *testing.T) {
	l, path := newLog(t, audit.Config{})
	before := time.Now().Truncate(time.Millisecond)
	if err := l.Write(context.Background(), audit.Record{Kind: audit.KindLogon}); err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	recs, _ := readLines(t, path)
	if got := recs[0].Time; got.Before(before) || got.After(after) || got.Location() != time.UTC {
		t.Errorf("time %v, want UTC between %v and %v", got, before, after)
	}
}

func TestConcurrentWriters(t *testing.T) {
	l, path := newLog(t, audit.Config{})
	const n = 50
	long := strings.Repeat("x", 8000) // longer than a pipe buffer's atomic write
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			errs <- l.Write(context.Background(), audit.Record{Kind: audit.KindCommand,
				Phase: audit.PhaseStart, ID: fmt.Sprint("c", i), Command: long[:i*100]})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	recs, _ := readLines(t, path)
	seen := map[string]bool{}
	for _, r := range recs {
		var i int
		if _, err := fmt.Sscanf(r.ID, "c%d", &i); err != nil || r.Command != long[:i*100] || seen[r.ID] {
			t.Errorf("bad or repeated record %q (%d bytes of command)", r.ID, len(r.Command))
		}
		seen[r.ID] = true
	}
	if len(recs) != n || len(seen) != n {
		t.Errorf("%d lines, %d distinct records, want %d", len(recs), len(seen), n)
	}
	s := l.Stats()
	if s.Records != n || s.Errors != 0 || s.Syncs == 0 || s.Syncs > n {
		t.Errorf("stats %+v", s)
	}
	t.Logf("%d records in %d syncs", s.Records, s.Syncs)
}

func TestReopenAfterRename(t *testing.T) {
	l, path := newLog(t, audit.Config{})
	ctx := context.Background()
	write := func(id string) {
		t.Helper()
		if err := l.Write(ctx, audit.Record{Kind: audit.KindCommand, ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	write("a")
	write("b")
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	write("c") // still to the moved file, as with logrotate before the HUP
	if err := l.Reopen(); err != nil {
		t.Fatal(err)
	}
	write("d")
	old, _ := readLines(t, path+".1")
	cur, _ := readLines(t, path)
	if ids(old) != "a b c" || ids(cur) != "d" {
		t.Errorf("rotated file holds %q, new file %q", ids(old), ids(cur))
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != audit.FileMode {
		t.Errorf("new file has mode %v", fi.Mode().Perm())
	}
}

// TestReopenUnderLoad rotates the file repeatedly while 8 writers write:
// every record is in one of the files, once.
func TestReopenUnderLoad(t *testing.T) {
	l, path := newLog(t, audit.Config{})
	const writers, each, rotations = 8, 40, 5
	var wg sync.WaitGroup
	errs := make(chan error, writers*each+rotations)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				errs <- l.Write(context.Background(), audit.Record{Kind: audit.KindCommand, ID: fmt.Sprintf("w%d-%d", w, i)})
			}
		})
	}
	for r := range rotations {
		time.Sleep(2 * time.Millisecond)
		if err := os.Rename(path, fmt.Sprintf("%s.%d", path, r)); err != nil {
			t.Fatal(err)
		}
		errs <- l.Reopen()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]int{}
	files := []string{path}
	for r := range rotations {
		files = append(files, fmt.Sprintf("%s.%d", path, r))
	}
	for _, f := range files {
		recs, _ := readLines(t, f)
		for _, rec := range recs {
			seen[rec.ID]++
		}
	}
	if len(seen) != writers*each {
		t.Errorf("%d distinct records in the files, want %d", len(seen), writers*each)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("record %s written %d times", id, n)
		}
	}
}

func TestPublish(t *testing.T) {
	var mu sync.Mutex
	var published []audit.Record
	var path string
	l, p := newLog(t, audit.Config{Publish: func(ctx context.Context, r audit.Record) error {
		// Publish comes after the sync: the record is in the file.
		recs, _ := readLines(t, path)
		if len(recs) == 0 || recs[len(recs)-1].ID != r.ID {
			t.Errorf("record %s published before it was in the file", r.ID)
		}
		mu.Lock()
		published = append(published, r)
		mu.Unlock()
		return nil
	}})
	path = p
	if err := l.Write(context.Background(), audit.Record{Time: at, Kind: audit.KindCommand, ID: "p1"}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := audit.Record{Time: at.UTC().Truncate(time.Millisecond), Region: "ZBR1", Kind: audit.KindCommand, ID: "p1"}
	if len(published) != 1 || !reflect.DeepEqual(published[0], want) {
		t.Errorf("published %+v, want %+v", published, want)
	}
}

func TestPublishFailureIsLogged(t *testing.T) {
	var logged bytes.Buffer
	lg := logrus.New()
	lg.SetOutput(&logged)
	l, path := newLog(t, audit.Config{Logger: lg, Publish: func(context.Context, audit.Record) error {
		return errors.New("store unreachable")
	}})
	if err := l.Write(context.Background(), audit.Record{Kind: audit.KindLogon, ID: "x"}); err != nil {
		t.Fatalf("Write failed with Publish: %v", err)
	}
	if recs, _ := readLines(t, path); len(recs) != 1 {
		t.Errorf("%d records in the file, want 1", len(recs))
	}
	if s := logged.String(); !strings.Contains(s, "store unreachable") || !strings.Contains(s, "level=warning") {
		t.Errorf("log holds %q", s)
	}
}

func TestClosed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := audit.New(audit.Config{Path: path, Region: "ZBR1", Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := l.Write(context.Background(), audit.Record{Kind: audit.KindLogon}); !errors.Is(err, audit.ErrClosed) {
		t.Errorf("Write after Close returned %v, want ErrClosed", err)
	}
	if err := l.Reopen(); !errors.Is(err, audit.ErrClosed) {
		t.Errorf("Reopen after Close returned %v, want ErrClosed", err)
	}
}

func TestContextDone(t *testing.T) {
	l, path := newLog(t, audit.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.Write(ctx, audit.Record{Kind: audit.KindCommand}); !errors.Is(err, context.Canceled) {
		t.Errorf("Write returned %v, want context.Canceled", err)
	}
	if recs, _ := readLines(t, path); len(recs) != 0 {
		t.Errorf("%d records written with a cancelled context", len(recs))
	}
	// context.WithoutCancel writes the end record of a cancelled command.
	if err := l.Write(context.WithoutCancel(ctx), audit.Record{Kind: audit.KindCommand}); err != nil {
		t.Error(err)
	}
}

func TestRefusedFiles(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		mode os.FileMode
		want error
	}{
		{"group-writable", 0o620, audit.ErrUnsafeFile},
		{"world-writable", 0o602, audit.ErrUnsafeFile},
		{"readable", 0o644, nil},
		{"private", 0o600, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name)
			if err := os.WriteFile(path, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tc.mode); err != nil {
				t.Fatal(err)
			}
			l, err := audit.New(audit.Config{Path: path, Region: "ZBR1", Logger: discard()})
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("New returned %v, want %v", err, tc.want)
			}
			if l != nil {
				l.Close()
			}
		})
	}
	t.Run("device", func(t *testing.T) {
		_, err := audit.New(audit.Config{Path: os.DevNull, Region: "ZBR1", Logger: discard()})
		if !errors.Is(err, audit.ErrNotRegular) {
			t.Errorf("New(%s) returned %v, want ErrNotRegular", os.DevNull, err)
		}
	})
	t.Run("directory", func(t *testing.T) {
		if _, err := audit.New(audit.Config{Path: dir, Region: "ZBR1", Logger: discard()}); err == nil {
			t.Error("New opened a directory")
		}
	})
	t.Run("reopen", func(t *testing.T) {
		// A file that became unsafe is refused by Reopen, and the Log
		// goes on writing to the file it has.
		path := filepath.Join(dir, "rotated")
		l, _ := newLog(t, audit.Config{Path: path})
		if err := os.Rename(path, path+".1"); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, 0o666); err != nil {
			t.Fatal(err)
		}
		if err := l.Reopen(); !errors.Is(err, audit.ErrUnsafeFile) {
			t.Fatalf("Reopen returned %v, want ErrUnsafeFile", err)
		}
		if err := l.Write(context.Background(), audit.Record{Kind: audit.KindLogon, ID: "kept"}); err != nil {
			t.Fatal(err)
		}
		if recs, _ := readLines(t, path+".1"); ids(recs) != "kept" {
			t.Errorf("old file holds %q", ids(recs))
		}
	})
}

// TestTornExistingFile opens a file whose last line was cut short (a
// crash): the first record goes on a line of its own.
func TestTornExistingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	if err := os.WriteFile(path, []byte(`{"time":"2025-03-01T08:30:00.000Z","region":"ZBR1","kind":"command","id":"whole"}`+"\n"+`{"time":"2025-03-01T08:3`), 0o600); err != nil {
		t.Fatal(err)
	}
	l, _ := newLog(t, audit.Config{Path: path})
	if err := l.Write(context.Background(), audit.Record{Kind: audit.KindCommand, ID: "next"}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != 3 || lines[1] != `{"time":"2025-03-01T08:3` || !strings.Contains(lines[2], `"id":"next"`) {
		t.Errorf("file holds %q", lines)
	}
}

func ids(recs []audit.Record) string {
	s := make([]string, len(recs))
	for i, r := range recs {
		s[i] = r.ID
	}
	return strings.Join(s, " ")
}
