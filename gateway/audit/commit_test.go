package audit

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
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
)

// heldSync replaces l's sync with one that reports each call on calls and
// waits for a token on release before syncing.
func heldSync(l *Log) (calls chan struct{}, release chan struct{}) {
	calls = make(chan struct{}, 100)
	release = make(chan struct{}, 100)
	l.sync = func(f *os.File) error {
		calls <- struct{}{}
		<-release
		return f.Sync()
	}
	return calls, release
}

func newInternal(t *testing.T) *Log {
	t.Helper()
	lg := logrus.New()
	lg.SetOutput(io.Discard)
	l, err := New(Config{Path: filepath.Join(t.TempDir(), "audit.log"), Region: "ZBR1", Logger: lg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// waitPending waits until n lines are queued in the pending batch.
func waitPending(t *testing.T, l *Log, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		l.mu.Lock()
		live := l.pending.live
		l.mu.Unlock()
		if live == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d lines pending, want %d", live, n)
		}
	}
}

func readIDs(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		ids = append(ids, r.ID)
	}
	return ids
}

// TestGroupCommit holds the first sync back while ten more writers arrive,
// and checks that those ten are written and synced together, with one
// fsync.
func TestGroupCommit(t *testing.T) {
	l := newInternal(t)
	calls, release := heldSync(l)
	ctx := context.Background()

	first := make(chan error, 1)
	go func() { first <- l.Write(ctx, Record{Kind: KindCommand, ID: "first"}) }()
	<-calls // the first batch is being synced

	const n = 10
	errs := make(chan error, n)
	for i := range n {
		go func() { errs <- l.Write(ctx, Record{Kind: KindCommand, ID: fmt.Sprint("w", i)}) }()
	}
	waitPending(t, l, n)
	release <- struct{}{}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	<-calls // the second batch: all ten
	release <- struct{}{}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got := l.Stats(); got != (Stats{Records: n + 1, Syncs: 2}) {
		t.Errorf("stats %+v, want %d records in 2 syncs", got, n+1)
	}
	if ids := readIDs(t, l.cfg.Path); len(ids) != n+1 || ids[0] != "first" {
		t.Errorf("file holds %q", ids)
	}
}

// TestWithdraw cancels a writer whose line waits behind a sync: its line is
// not written, and the others' are.
func TestWithdraw(t *testing.T) {
	l := newInternal(t)
	calls, release := heldSync(l)

	first := make(chan error, 1)
	go func() { first <- l.Write(context.Background(), Record{Kind: KindLogon, ID: "first"}) }()
	<-calls

	ctx, cancel := context.WithCancel(context.Background())
	gone := make(chan error, 1)
	go func() { gone <- l.Write(ctx, Record{Kind: KindLogon, ID: "withdrawn"}) }()
	waitPending(t, l, 1)
	cancel()
	if err := <-gone; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Write returned %v", err)
	}
	waitPending(t, l, 0)

	release <- struct{}{}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	release <- struct{}{} // for the next batch
	if err := l.Write(context.Background(), Record{Kind: KindLogon, ID: "last"}); err != nil {
		t.Fatal(err)
	}
	if ids := readIDs(t, l.cfg.Path); len(ids) != 2 || ids[0] != "first" || ids[1] != "last" {
		t.Errorf("file holds %q, want [first last]", ids)
	}
	if got := l.Stats(); got != (Stats{Records: 2, Syncs: 2}) {
		t.Errorf("stats %+v", got)
	}
}

// TestCloseFlushes closes the Log while a batch is in flight and another
// waits: Close writes both before closing.
func TestCloseFlushes(t *testing.T) {
	l := newInternal(t)
	calls, release := heldSync(l)
	ctx := context.Background()

	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Go(func() { errs <- l.Write(ctx, Record{Kind: KindCommand, ID: "a"}) })
	<-calls
	wg.Go(func() { errs <- l.Write(ctx, Record{Kind: KindCommand, ID: "b"}) })
	waitPending(t, l, 1)

	closed := make(chan error, 1)
	go func() { closed <- l.Close() }()
	// Close refuses new writers as soon as it has begun.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		l.mu.Lock()
		c := l.closed
		l.mu.Unlock()
		if c {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Close did not begin")
		}
	}
	if err := l.Write(ctx, Record{Kind: KindCommand, ID: "late"}); !errors.Is(err, ErrClosed) {
		t.Errorf("Write during Close returned %v, want ErrClosed", err)
	}
	release <- struct{}{}
	release <- struct{}{}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if ids := readIDs(t, l.cfg.Path); len(ids) != 2 || ids[0] != "a" || ids[1] != "b" {
		t.Errorf("file holds %q, want [a b]", ids)
	}
}

// TestReopenDuringSync reopens while a batch is being synced to the old
// file: that batch stays in the old file, and the old file is closed only
// after it was synced.
func TestReopenDuringSync(t *testing.T) {
	l := newInternal(t)
	calls, release := heldSync(l)
	ctx := context.Background()

	first := make(chan error, 1)
	go func() { first <- l.Write(ctx, Record{Kind: KindCommand, ID: "old"}) }()
	<-calls
	rotated := l.cfg.Path + ".1"
	if err := os.Rename(l.cfg.Path, rotated); err != nil {
		t.Fatal(err)
	}
	l.mu.Lock()
	before := l.file
	l.mu.Unlock()
	reopened := make(chan error, 1)
	go func() { reopened <- l.Reopen() }()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		l.mu.Lock()
		swapped := l.file != before
		l.mu.Unlock()
		if swapped {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Reopen did not open the new file")
		}
	}
	// Reopen now waits for the sync before it closes the old file; a new
	// record goes to the new file.
	second := make(chan error, 1)
	go func() { second <- l.Write(ctx, Record{Kind: KindCommand, ID: "new"}) }()
	waitPending(t, l, 1)
	select {
	case err := <-reopened:
		t.Fatalf("Reopen returned (%v) while the old file was being synced", err)
	default:
	}
	release <- struct{}{}
	release <- struct{}{}
	for _, ch := range []chan error{first, reopened, second} {
		if err := <-ch; err != nil {
			t.Fatal(err)
		}
	}
	old, cur := readIDs(t, rotated), readIDs(t, l.cfg.Path)
	if len(old) != 1 || old[0] != "old" || len(cur) != 1 || cur[0] != "new" {
		t.Errorf("rotated file holds %q, new file %q", old, cur)
	}
}
