package tn3270

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sirupsen/logrus"
)

var update = flag.Bool("update", false,
	"rewrite testdata/*.ds (recorded from the live hosts) and *.golden (the screen text s3270 shows)")

// The .ds files hold recorded 3270 data streams: the records a host sent,
// telnet framing removed (no IAC doubling, no IAC EOR), one record a line
// in hexadecimal, in the order sent. Lines starting with # are comments.
// Each has a .golden file beside it: the screen text s3270 showed for the
// same session, one row a line.

// readDS reads a .ds file.
func readDS(path string) ([][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var recs [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		rec, err := hex.DecodeString(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		recs = append(recs, rec)
	}
	return recs, sc.Err()
}

// writeDS writes records to a .ds file with a comment header.
func writeDS(path, source string, recs [][]byte) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# 3270 records recorded by vmagent/tn3270 tests (go test -update).\n")
	fmt.Fprintf(&b, "# Source: %s\n", source)
	fmt.Fprintf(&b, "# One record a line, hex, telnet framing removed.\n")
	for _, r := range recs {
		fmt.Fprintf(&b, "%X\n", r)
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

func readGolden(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n"), nil
}

func writeGolden(path string, rows []string) error {
	return os.WriteFile(path, []byte(strings.Join(rows, "\n")+"\n"), 0o644)
}

// recorder keeps the records a client receives from the host.
type recorder struct {
	mu   sync.Mutex // guards recs
	recs [][]byte
}

func (r *recorder) trace(fromHost bool, rec []byte) {
	if !fromHost {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, bytes.Clone(rec))
}

func (r *recorder) records() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.recs...)
}

// saveRecording writes name.ds and name.golden when -update is given.
func saveRecording(t *testing.T, name, source string, recs [][]byte, golden []string) {
	t.Helper()
	if !*update {
		return
	}
	base := filepath.Join("testdata", name)
	if err := writeDS(base+".ds", source, recs); err != nil {
		t.Fatal(err)
	}
	if err := writeGolden(base+".golden", golden); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s.ds (%d records) and %s.golden", base, len(recs), base)
}

// TestGolden replays every recorded data stream into a fresh buffer and
// compares the screen with the text s3270 showed for the same session.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.ds"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no testdata/*.ds files; run the live tests with -update")
	}
	for _, path := range files {
		name := strings.TrimSuffix(filepath.Base(path), ".ds")
		t.Run(name, func(t *testing.T) {
			recs, err := readDS(path)
			if err != nil {
				t.Fatal(err)
			}
			want, err := readGolden(strings.TrimSuffix(path, ".ds") + ".golden")
			if err != nil {
				t.Fatal(err)
			}
			for _, whole := range []bool{true, false} {
				b, _ := NewBuffer(2, nil)
				for i, rec := range recs {
					if whole {
						if _, err := ParseDataStream(b, rec); err != nil {
							t.Fatalf("record %d: %v", i, err)
						}
						continue
					}
					// Through the telnet decoder a byte at a time.
					var d telnetDecoder
					d.maxRecord = DefaultMaxRecord
					h := &bufferHandler{b: b}
					for _, c := range appendRecord(nil, rec) {
						if err := d.feed([]byte{c}, h); err != nil {
							t.Fatalf("record %d: %v", i, err)
						}
					}
				}
				if got := b.Snapshot().Rows(); !equalRows(got, want) {
					t.Errorf("whole=%v: screen differs from %s.golden:\n%s", whole, name, diffRows(want, got))
				}
			}
		})
	}
}

// bufferHandler applies decoded records to a buffer (telnetHandler).
type bufferHandler struct {
	b    *Buffer
	cmds [][2]byte
	sbs  [][]byte
}

func (h *bufferHandler) record(rec []byte) error {
	_, err := ParseDataStream(h.b, rec)
	return err
}

func (h *bufferHandler) command(cmd, opt byte) error {
	h.cmds = append(h.cmds, [2]byte{cmd, opt})
	return nil
}

func (h *bufferHandler) subneg(data []byte) error {
	h.sbs = append(h.sbs, bytes.Clone(data))
	return nil
}

func equalRows(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// testLogger returns a logger writing to the test log.
func testLogger(t testing.TB) logrus.FieldLogger {
	l := logrus.New()
	l.SetOutput(testWriter{t})
	l.SetLevel(logrus.DebugLevel)
	return l.WithField("component", "tn3270-test")
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
