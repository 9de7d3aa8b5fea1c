package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
)

// FileMode is the mode New and Reopen create the file with.
const FileMode os.FileMode = 0o600

// maxKeptBuffer is the largest write buffer kept between batches.
const maxKeptBuffer = 1 << 20

// Config configures a Log.
type Config struct {
	// Path is the audit log file (--audit-log). It is created with
	// FileMode if it does not exist; an existing file must be a regular
	// file that neither its group nor others may write.
	Path string
	// Region is the region's name, written into every record.
	Region string
	// Publish, when set, is called with each record after it has been
	// synced to the file, with the context given to Write; the region
	// appends r.Event() to its event stream. Its error is logged, not
	// returned: the file is the record of truth. It is called from the
	// goroutine that called Write, concurrently for concurrent writers.
	Publish func(ctx context.Context, r Record) error
	// Logger receives what the Log has to say (failed publications).
	Logger logrus.FieldLogger
}

// Stats counts what a Log has done since New.
type Stats struct {
	Records uint64 // records written and synced
	Syncs   uint64 // batches written and synced (fsync calls that succeeded)
	Errors  uint64 // batches whose write or sync failed
}

// Log is an append-only audit log file. Its methods are safe for
// concurrent use. It starts no goroutines.
type Log struct {
	cfg Config
	log logrus.FieldLogger
	// sync syncs the file; a test replaces it to hold a sync back.
	sync func(*os.File) error

	mu       sync.Mutex // guards the following fields
	file     *logFile   // nil after Close
	closed   bool       // Close was called: Write and Reopen refuse
	pending  *batch     // lines waiting for the next write; never nil
	inflight *batch     // the batch being written and synced, or nil
	// buf is the write buffer, reused between batches. The goroutine that
	// set inflight owns it until it clears inflight.
	buf   []byte
	stats Stats
}

// logFile is an open audit log file.
type logFile struct {
	f *os.File
	// torn says the file ends inside a line (a write that failed half-way,
	// or a crash): the next write starts with a newline, so that the
	// records after the fragment stay whole lines. Guarded by Log.mu.
	torn bool
}

// batch is the lines that are written with one write(2) call and synced
// with one fsync.
type batch struct {
	lines [][]byte // a withdrawn line is nil (guarded by Log.mu while pending)
	live  int      // lines not withdrawn
	done  chan struct{}
	over  bool  // written and synced, or failed (guarded by Log.mu)
	err   error // the result; set before done is closed
}

func newBatch() *batch { return &batch{done: make(chan struct{})} }

// New checks cfg and opens (or creates) the file at cfg.Path for
// appending.
func New(cfg Config) (*Log, error) {
	switch {
	case cfg.Path == "":
		return nil, fmt.Errorf("%w: no Path", ErrConfig)
	case cfg.Region == "":
		return nil, fmt.Errorf("%w: no Region", ErrConfig)
	case cfg.Logger == nil:
		return nil, fmt.Errorf("%w: no Logger", ErrConfig)
	}
	file, err := openFile(cfg.Path)
	if err != nil {
		return nil, err
	}
	return &Log{
		cfg:     cfg,
		log:     cfg.Logger,
		sync:    (*os.File).Sync,
		file:    file,
		pending: newBatch(),
	}, nil
}

// openFile opens path for appending and checks what it opened (not the
// path, which could be changed between a check and the open).
func openFile(path string) (*logFile, error) {
	// Read as well as write: to see whether the file ends inside a line.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, FileMode)
	if err != nil {
		return nil, fmt.Errorf("audit: opening %s: %w", path, err)
	}
	fi, err := f.Stat()
	switch {
	case err != nil:
		err = fmt.Errorf("audit: opening %s: %w", path, err)
	case !fi.Mode().IsRegular():
		err = fmt.Errorf("%w: %s is %v", ErrNotRegular, path, fi.Mode().Type())
	case fi.Mode().Perm()&0o022 != 0:
		err = fmt.Errorf("%w: %s has mode %v", ErrUnsafeFile, path, fi.Mode().Perm())
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	lf := &logFile{f: f}
	if size := fi.Size(); size > 0 {
		var last [1]byte
		if _, err := f.ReadAt(last[:], size-1); err != nil && err != io.EOF {
			f.Close()
			return nil, fmt.Errorf("audit: reading the end of %s: %w", path, err)
		}
		lf.torn = last[0] != '\n'
	}
	// The file may just have been created: sync its directory entry too,
	// or a crash could lose the file with the records synced into it.
	if err := syncDir(filepath.Dir(path)); err != nil {
		f.Close()
		return nil, err
	}
	return lf, nil
}

// syncDir syncs the directory dir. A file system that cannot sync a
// directory (EINVAL) is taken as it is.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("audit: opening directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("audit: syncing directory %s: %w", dir, err)
	}
	return nil
}

// Write appends r to the file as one JSON line and returns after the line
// has been synced to disk (fsync). Write sets r.Region to Config.Region,
// and r.Time to the current time when it is zero; Time is kept to the
// millisecond. An error means the record may not be on disk: the region
// then refuses what it was about to do (fail closed).
//
// Writers share writes and syncs: the lines of the writers that arrive
// while a sync is under way are written together with one write(2) call
// and synced with one fsync, by the first of them, once that sync has
// ended. Lines never interleave.
//
// When ctx is done before Write is called, nothing is written. When it
// ends while the line waits for its batch, the line is withdrawn and Write
// returns ctx's error. When it ends while the line's batch is being written
// and synced by another writer, Write returns ctx's error without waiting,
// and the line may or may not be in the file (the writer doing the I/O
// itself returns when it is done). A record that must be written even though the
// client went away (the end record of a cancelled command) is written with
// context.WithoutCancel.
//
// After the sync, Write calls Config.Publish (see there).
func (l *Log) Write(ctx context.Context, r Record) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("audit: record not written: %w", err)
	}
	if r.Time.IsZero() {
		r.Time = time.Now()
	}
	r.Time = r.Time.UTC().Truncate(time.Millisecond)
	r.Region = l.cfg.Region
	line, err := r.appendJSON(make([]byte, 0, 512))
	if err != nil {
		return fmt.Errorf("audit: encoding record: %w", err)
	}
	line = append(line, '\n')

	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	b := l.pending
	slot := len(b.lines)
	b.lines = append(b.lines, line)
	b.live++
	if err := l.waitUnlock(ctx, b, slot); err != nil {
		return err
	}
	if l.cfg.Publish != nil {
		if err := l.cfg.Publish(ctx, r); err != nil {
			l.log.WithError(err).WithField("kind", r.Kind).WithField("id", r.ID).
				Warn("audit: publishing a record as an event failed; it is in the audit log")
		}
	}
	return nil
}

// waitUnlock waits until batch b, holding the caller's line at slot, has
// been written and synced, leading the batch when no other is under way.
// It is called with l.mu held and returns with it released.
func (l *Log) waitUnlock(ctx context.Context, b *batch, slot int) error {
	for {
		if b.over {
			l.mu.Unlock()
			return b.err
		}
		if l.inflight == nil {
			// Batches go pending → in flight → over, one in flight at a
			// time: b is the pending batch.
			l.flushLocked()
			continue
		}
		wait := l.inflight.done // b's own, or the one b waits behind
		l.mu.Unlock()
		select {
		case <-wait:
			l.mu.Lock()
			continue
		case <-ctx.Done():
		}
		l.mu.Lock()
		switch {
		case b.over:
			l.mu.Unlock()
			return b.err
		case b == l.pending:
			b.lines[slot] = nil
			b.live--
			l.mu.Unlock()
			return fmt.Errorf("audit: record not written: %w", ctx.Err())
		default:
			l.mu.Unlock()
			return fmt.Errorf("audit: gave up waiting for the sync; the record may or may not be on disk: %w", ctx.Err())
		}
	}
}

// flushLocked writes and syncs the pending batch. It is called with l.mu
// held and no batch in flight; it releases l.mu during the I/O and holds
// it again when it returns.
func (l *Log) flushLocked() {
	b := l.pending
	l.pending = newBatch()
	l.inflight = b
	file := l.file
	buf := l.buf[:0]
	if file.torn {
		buf = append(buf, '\n')
	}
	l.mu.Unlock()

	for _, line := range b.lines {
		buf = append(buf, line...)
	}
	n, err := file.f.Write(buf)
	if err != nil {
		err = fmt.Errorf("audit: writing %s: %w", l.cfg.Path, err)
	} else if err = l.sync(file.f); err != nil {
		err = fmt.Errorf("audit: syncing %s: %w", l.cfg.Path, err)
	}

	l.mu.Lock()
	if n > 0 {
		file.torn = buf[n-1] != '\n'
	}
	if cap(buf) <= maxKeptBuffer {
		l.buf = buf
	}
	if err != nil {
		l.stats.Errors++
	} else {
		l.stats.Syncs++
		l.stats.Records += uint64(b.live)
	}
	b.lines = nil
	b.err, b.over = err, true
	l.inflight = nil
	close(b.done)
}

// Reopen closes the file and opens the path again, for log rotation:
// logrotate moves the file and sends SIGHUP, and the region calls Reopen.
// Records written before Reopen are in the old file, synced; records
// written after it go to the new one; none is lost. A Write that runs
// during Reopen goes to one or the other. When the path cannot be opened
// (or is refused, as in New), Reopen returns the error and the Log keeps
// writing to the file it had.
func (l *Log) Reopen() error {
	nf, err := openFile(l.cfg.Path)
	if err != nil {
		return err
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		nf.f.Close()
		return ErrClosed
	}
	old := l.file
	l.file = nf
	var wait chan struct{}
	if l.inflight != nil {
		// The batch in flight writes to old; later batches go to nf.
		wait = l.inflight.done
	}
	l.mu.Unlock()
	if wait != nil {
		<-wait
	}
	if err := old.f.Close(); err != nil {
		return fmt.Errorf("audit: closing the old %s: %w", l.cfg.Path, err)
	}
	return nil
}

// Close writes and syncs the records already handed to Write, then closes
// the file. Write and Reopen return ErrClosed afterwards. Close is safe to
// call more than once; later calls return nil.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	for {
		if l.inflight != nil {
			wait := l.inflight.done
			l.mu.Unlock()
			<-wait
			l.mu.Lock()
			continue
		}
		if l.pending.live == 0 {
			break
		}
		l.flushLocked()
	}
	file := l.file
	l.file = nil
	l.mu.Unlock()
	if err := file.f.Close(); err != nil {
		return fmt.Errorf("audit: closing %s: %w", l.cfg.Path, err)
	}
	return nil
}

// Stats returns the counts so far.
func (l *Log) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stats
}
