package storebench

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble"
	bolt "go.etcd.io/bbolt"
)

// rec is one event to store: its key and its encoded value. The value must
// stay unchanged until append returns.
type rec struct {
	key key
	val []byte
}

// syncMode is when an engine makes what it wrote durable.
type syncMode int

const (
	syncEvery100ms syncMode = iota // no sync on commit; a goroutine syncs every 100 ms
	syncEveryBatch                 // each commit (one per batch) syncs
)

func (m syncMode) String() string {
	if m == syncEveryBatch {
		return "batch"
	}
	return "100ms"
}

const syncInterval = 100 * time.Millisecond

// engine is one on-disk store under test.
type engine interface {
	// append stores recs (keys rising) in one commit and, when trimBefore
	// is not nil, removes in the same commit every record with a key
	// before it (retention).
	append(recs []rec, trimBefore *key) error
	// sync makes every commit so far durable. It may run concurrently
	// with append (the 100 ms goroutine).
	sync() error
	// scan calls fn with each stored value, in key order. The value is
	// valid only during the call.
	scan(fn func(val []byte) error) error
	close() error
}

type opener func(dir string, mode syncMode) (engine, error)

var engines = []struct {
	name string
	open opener
}{
	{"bolt", openBolt},
	{"pebble", openPebble},
	{"file", openFile},
}

// startSyncer calls eng.sync every interval until the returned stop is
// called; stop waits for the goroutine to end.
func startSyncer(eng engine, fail func(error)) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(syncInterval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if err := eng.sync(); err != nil {
					fail(err)
					return
				}
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// nullEngine stores nothing: the cost of the harness and the encoding.
type nullEngine struct{}

func openNull(string, syncMode) (engine, error)  { return nullEngine{}, nil }
func (nullEngine) append([]rec, *key) error      { return nil }
func (nullEngine) sync() error                   { return nil }
func (nullEngine) scan(func([]byte) error) error { return nil }
func (nullEngine) close() error                  { return nil }

// ---- bbolt ----

var boltBucket = []byte("events")

type boltEngine struct{ db *bolt.DB }

// openBolt opens a bbolt file with the options etcd uses for its backend
// (hashmap freelist, freelist not synced, a large initial mmap so that
// growing the file does not remap). With syncEvery100ms it sets NoSync,
// which bbolt documents as unsafe ("Do not set this flag for normal use"):
// see README.md.
func openBolt(dir string, mode syncMode) (engine, error) {
	db, err := bolt.Open(filepath.Join(dir, "events.db"), 0o600, &bolt.Options{
		NoSync:          mode == syncEvery100ms,
		NoFreelistSync:  true,
		FreelistType:    bolt.FreelistMapType,
		InitialMmapSize: 1 << 31,
	})
	if err != nil {
		return nil, err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(boltBucket)
		return err
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return &boltEngine{db: db}, nil
}

func (e *boltEngine) append(recs []rec, trimBefore *key) error {
	return e.db.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(boltBucket)
		bk.FillPercent = 1.0 // keys only ever rise
		if trimBefore != nil {
			c := bk.Cursor()
			for k, _ := c.First(); k != nil && bytes.Compare(k, trimBefore[:]) < 0; k, _ = c.First() {
				if err := c.Delete(); err != nil {
					return err
				}
			}
		}
		for i := range recs {
			if err := bk.Put(recs[i].key[:], recs[i].val); err != nil {
				return err
			}
		}
		return nil
	})
}

func (e *boltEngine) sync() error { return e.db.Sync() }

func (e *boltEngine) scan(fn func([]byte) error) error {
	return e.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(boltBucket).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if err := fn(v); err != nil {
				return err
			}
		}
		return nil
	})
}

func (e *boltEngine) close() error { return e.db.Close() }

// ---- pebble ----

type quietLogger struct{}

func (quietLogger) Infof(string, ...any)           {}
func (quietLogger) Fatalf(format string, a ...any) { panic(fmt.Sprintf(format, a...)) }

type pebbleEngine struct {
	db      *pebble.DB
	wo      *pebble.WriteOptions
	trimmed key // the last trim bound: the next DeleteRange starts there
}

// openPebble opens pebble with its default options (4 MiB memtable, one
// compaction at a time, snappy-compressed tables) and a quiet logger.
func openPebble(dir string, mode syncMode) (engine, error) {
	return openPebbleWith(dir, mode, &pebble.Options{Logger: quietLogger{}})
}

// openPebbleBig is pebble with a 64 MiB memtable (CockroachDB's size):
// fewer, larger flushes and L0 files.
func openPebbleBig(dir string, mode syncMode) (engine, error) {
	return openPebbleWith(dir, mode, &pebble.Options{Logger: quietLogger{}, MemTableSize: 64 << 20})
}

func openPebbleWith(dir string, mode syncMode, opts *pebble.Options) (engine, error) {
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, err
	}
	wo := pebble.NoSync
	if mode == syncEveryBatch {
		wo = pebble.Sync
	}
	return &pebbleEngine{db: db, wo: wo}, nil
}

func (e *pebbleEngine) append(recs []rec, trimBefore *key) error {
	b := e.db.NewBatch()
	defer b.Close()
	if trimBefore != nil && bytes.Compare(e.trimmed[:], trimBefore[:]) < 0 {
		if err := b.DeleteRange(e.trimmed[:], trimBefore[:], nil); err != nil {
			return err
		}
		e.trimmed = *trimBefore
	}
	for i := range recs {
		if err := b.Set(recs[i].key[:], recs[i].val, nil); err != nil {
			return err
		}
	}
	return b.Commit(e.wo)
}

// sync syncs the WAL: an empty LogData committed with Sync waits for the
// WAL to be synced through everything committed before it.
func (e *pebbleEngine) sync() error { return e.db.LogData(nil, pebble.Sync) }

func (e *pebbleEngine) scan(fn func([]byte) error) error {
	it, err := e.db.NewIter(nil)
	if err != nil {
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		if err := fn(it.Value()); err != nil {
			it.Close()
			return err
		}
	}
	return it.Close()
}

func (e *pebbleEngine) close() error { return e.db.Close() }

// ---- a plain append-only file, in segments ----

// Records are [u32 len][u32 crc32c of payload][payload], little-endian. A
// batch is one write(). The log is a series of segment files of about
// segmentSize bytes; retention removes whole segments, oldest first, once
// every record in one is before the trim bound.
var segmentSize int64 = 64 << 20 // a variable for the tests

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

type segment struct {
	path string
	last key // key of the segment's last record
}

type fileEngine struct {
	dir  string
	mode syncMode
	buf  []byte
	segs []segment // closed segments, oldest first
	cur  segment   // segment being written (its last is set once it has a record)
	size int64     // bytes in cur
	next int       // number of the next segment file

	mu      sync.Mutex
	f       *os.File   // guarded by mu (the syncer reads it)
	closing []*os.File // rolled segments the syncer still has to sync and close
}

func openFile(dir string, mode syncMode) (engine, error) {
	e := &fileEngine{dir: dir, mode: mode, buf: make([]byte, 0, 1<<20)}
	if err := e.roll(); err != nil {
		return nil, err
	}
	return e, nil
}

// roll starts a new segment file.
func (e *fileEngine) roll() error {
	path := filepath.Join(e.dir, fmt.Sprintf("%016d.log", e.next))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	if err := syncDir(e.dir); err != nil {
		f.Close()
		return err
	}
	e.next++
	e.mu.Lock()
	old := e.f
	e.f = f
	if old != nil && e.mode == syncEvery100ms {
		e.closing = append(e.closing, old)
		old = nil
	}
	e.mu.Unlock()
	if old != nil { // synced on each batch already
		old.Close()
	}
	if e.size > 0 {
		e.segs = append(e.segs, e.cur)
	}
	e.cur, e.size = segment{path: path}, 0
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func (e *fileEngine) append(recs []rec, trimBefore *key) error {
	b := e.buf[:0]
	for i := range recs {
		v := recs[i].val
		b = binary.LittleEndian.AppendUint32(b, uint32(len(v)))
		b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(v, castagnoli))
		b = append(b, v...)
	}
	e.buf = b
	f := e.f // only append changes e.f
	if _, err := f.Write(b); err != nil {
		return err
	}
	if e.mode == syncEveryBatch {
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			return err
		}
	}
	if len(recs) > 0 {
		e.cur.last = recs[len(recs)-1].key
	}
	e.size += int64(len(b))
	if e.size >= segmentSize {
		if err := e.roll(); err != nil {
			return err
		}
	}
	if trimBefore != nil {
		for len(e.segs) > 0 && bytes.Compare(e.segs[0].last[:], trimBefore[:]) < 0 {
			if err := os.Remove(e.segs[0].path); err != nil {
				return err
			}
			e.segs = e.segs[1:]
		}
	}
	return nil
}

func (e *fileEngine) sync() error {
	e.mu.Lock()
	f, closing := e.f, e.closing
	e.closing = nil
	e.mu.Unlock()
	var errs []error
	for _, c := range closing {
		errs = append(errs, syscall.Fdatasync(int(c.Fd())), c.Close())
	}
	errs = append(errs, syscall.Fdatasync(int(f.Fd())))
	return errors.Join(errs...)
}

var errCRC = errors.New("file log: crc mismatch")

func (e *fileEngine) scan(fn func([]byte) error) error {
	paths := make([]string, 0, len(e.segs)+1)
	for _, s := range e.segs {
		paths = append(paths, s.path)
	}
	paths = append(paths, e.cur.path)
	var hdr [8]byte
	var p []byte
	br := bufio.NewReaderSize(nil, 1<<20)
	for _, path := range paths {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		br.Reset(f)
		for {
			if _, err := io.ReadFull(br, hdr[:]); err != nil {
				f.Close()
				if err == io.EOF {
					break
				}
				return err
			}
			n := binary.LittleEndian.Uint32(hdr[:])
			if cap(p) < int(n) {
				p = make([]byte, n)
			}
			p = p[:n]
			if _, err := io.ReadFull(br, p); err != nil {
				f.Close()
				return err
			}
			if crc32.Checksum(p, castagnoli) != binary.LittleEndian.Uint32(hdr[4:]) {
				f.Close()
				return errCRC
			}
			if err := fn(p); err != nil {
				f.Close()
				return err
			}
		}
	}
	return nil
}

func (e *fileEngine) close() error {
	err := e.sync()
	return errors.Join(err, e.f.Close())
}
