//go:build linux

package audit_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/zbridge/zbridge/gateway/audit"
)

// TestWriteFailure makes the kernel refuse a write half-way, with a file
// size limit (RLIMIT_FSIZE; Go ignores SIGXFSZ): Write returns the error,
// the part of the line that was written is ended by the next write, and
// the records after it are whole lines.
func TestWriteFailure(t *testing.T) {
	l, path := newLog(t, audit.Config{})
	ctx := context.Background()
	if err := l.Write(ctx, audit.Record{Kind: audit.KindCommand, ID: "before"}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}

	var saved syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &saved); err != nil {
		t.Fatal(err)
	}
	limited := saved
	limited.Cur = uint64(fi.Size()) + 20
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &limited); err != nil {
		t.Skipf("cannot limit the file size: %v", err)
	}
	restored := false
	restore := func() {
		if !restored {
			restored = true
			if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &saved); err != nil {
				t.Fatal(err)
			}
		}
	}
	defer restore()
	err = l.Write(ctx, audit.Record{Kind: audit.KindCommand, ID: "cut", Command: strings.Repeat("x", 100)})
	restore()
	if !errors.Is(err, syscall.EFBIG) {
		t.Fatalf("Write past the file size limit returned %v, want EFBIG", err)
	}
	if s := l.Stats(); s.Errors != 1 || s.Records != 1 {
		t.Errorf("stats %+v", s)
	}

	if err := l.Write(ctx, audit.Record{Kind: audit.KindCommand, ID: "after"}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != 3 || len(lines[1]) != 20 {
		t.Fatalf("file holds %q, want a line, a 20-byte fragment and a line", lines)
	}
	for i, want := range map[int]string{0: "before", 2: "after"} {
		var r audit.Record
		if err := json.Unmarshal([]byte(lines[i]), &r); err != nil || r.ID != want {
			t.Errorf("line %d %q: %v", i, lines[i], err)
		}
	}
}
