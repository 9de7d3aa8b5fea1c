package diskstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/zbridge/zbridge/gateway/store"
	"github.com/zbridge/zbridge/gateway/store/memstore"
	"github.com/zbridge/zbridge/protocol"
)

// SyncPolicy says when the store's writes reach stable storage.
type SyncPolicy string

// The sync policies.
const (
	// SyncAlways: every Append, AppendMarked and SetPosition returns once
	// its change is on stable storage (appends that come together share
	// one fsync).
	SyncAlways SyncPolicy = "always"
	// SyncBatch: changes are written to the operating system as they come
	// and synced at least every SyncInterval; Sync (what RELP and VMMON
	// call before they acknowledge) syncs at once.
	SyncBatch SyncPolicy = "batch"
	// SyncOS: changes are written as they come and the operating system
	// decides when they reach the disk; only Close syncs. A process kill
	// loses nothing written, a power loss may lose anything.
	SyncOS SyncPolicy = "os"
)

// ParseSyncPolicy parses "always", "batch" or "os".
func ParseSyncPolicy(s string) (SyncPolicy, error) {
	switch p := SyncPolicy(s); p {
	case SyncAlways, SyncBatch, SyncOS:
		return p, nil
	}
	return "", fmt.Errorf("%w %q (always, batch, os)", ErrBadPolicy, s)
}

// Defaults for Config.
const (
	DefaultSync         = SyncBatch
	DefaultSyncInterval = 100 * time.Millisecond
	DefaultSegmentSize  = 64 << 20
)

// presyncEvery is how much of a segment of size segSize is written
// between the flusher's syncs of it as it fills: a 32nd of it (2 MiB of
// the default 64 MiB), 64 KiB at least.
//
// The segment written full is synced before the next one starts, with
// appends waiting (see the package documentation), and that sync takes
// as long as the data still to go out: on the ext4 file system of the
// machines zbridge is measured on, ~35 ms for a 64 MiB segment written
// at 100 MB/s with no sync before (the same with the kernel's writeback
// started every MiB with sync_file_range), ~6 ms with an fdatasync every
// 8 MiB and under 2 ms with one every MiB, the appends going on meanwhile
// (at most ~0.3 ms a write). Under SyncBatch the flusher syncs every
// SyncInterval as well, but at 100 MB/s 100 ms is 10 MB.
func presyncEvery(segSize int64) int64 { return max(segSize/32, 64<<10) }

// Config configures Open.
type Config struct {
	// Dir is the data directory; Open creates it (mode 0700) if needed.
	Dir string
	// Sync is the sync policy (DefaultSync if empty) and SyncInterval the
	// longest time a write waits for its fsync under SyncBatch
	// (DefaultSyncInterval if 0).
	Sync         SyncPolicy
	SyncInterval time.Duration
	// SegmentSize is the size at which the journal starts a new segment
	// file (DefaultSegmentSize if 0). Retention deletes whole segments.
	SegmentSize int64
	// Retention, as for memstore (the events are kept in memory too).
	MaxEvents int
	MaxBytes  int64
	MaxAge    time.Duration
	// GroupTTL is how long a consumer group that nothing reads is kept,
	// as for memstore (memstore.DefaultGroupTTL if 0; negative: for ever).
	// Its deletion is journalled; the groups an Open replays count it
	// from the Open.
	GroupTTL time.Duration
	// MaxStatusRecords bounds the status records kept in memory, as for
	// memstore (memstore.DefaultMaxStatusRecords if 0); the status journal
	// is written anew without the older ones at an Open that finds it
	// holds at least as many dropped as kept. Retention never trims them.
	MaxStatusRecords int
	// Logger receives what Open cut or found, and write failures. Required.
	Logger logrus.FieldLogger
	// Now is the clock (time.Now if nil); tests pass their own.
	Now func() time.Time
}

// Store is the on-disk embedded store. It is a memstore.Store whose every
// change is journalled; reads never touch the disk.
type Store struct {
	ms     *memstore.Store
	j      *journal
	status *statusLog
	lock   *os.File // holds the data directory's lock
	dir    string
	info   OpenInfo

	closeOnce sync.Once
	closeErr  error
}

var (
	_ store.Store          = (*Store)(nil)
	_ store.MarkedAppender = (*Store)(nil)
	_ store.PreparedReader = (*Store)(nil)
	_ store.Syncer         = (*Store)(nil)
	_ store.HealthReporter = (*Store)(nil)
	_ store.Ledger         = (*Store)(nil)
	_ store.GroupInspector = (*Store)(nil)
)

// OpenInfo says what Open found in the data directory.
type OpenInfo struct {
	Segments       int           // segment files read
	Records        int           // records replayed
	Events         int           // events retained after the replay
	CutBytes       int64         // bytes of a torn write cut from the newest segment
	TornFiles      []string      // where the bytes cut (of a torn write) are kept
	StatusRecords  int           // status records read from the status journal
	StatusCutBytes int64         // bytes of a torn write cut from the status journal
	Took           time.Duration // how long the replay took
}

// isSegmentFile reports whether name is a segment file's: 16 lower-case
// hex digits and ".seg".
func isSegmentFile(name string) bool {
	hex, ok := strings.CutSuffix(name, ".seg")
	if !ok || len(hex) != 16 {
		return false
	}
	for _, c := range []byte(hex) {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// Open opens the store in cfg.Dir, replaying what the directory holds, and
// locks the directory against other processes until Close.
func Open(cfg Config) (*Store, error) {
	switch {
	case cfg.Dir == "":
		return nil, fmt.Errorf("%w: no data directory", ErrConfig)
	case cfg.Logger == nil:
		return nil, fmt.Errorf("%w: no Logger", ErrConfig)
	}
	if cfg.Sync == "" {
		cfg.Sync = DefaultSync
	}
	if _, err := ParseSyncPolicy(string(cfg.Sync)); err != nil {
		return nil, err
	}
	if cfg.SyncInterval <= 0 {
		cfg.SyncInterval = DefaultSyncInterval
	}
	if cfg.SegmentSize <= 0 {
		cfg.SegmentSize = DefaultSegmentSize
	}
	jdir := filepath.Join(cfg.Dir, "journal")
	if err := makeDirs(jdir); err != nil {
		return nil, err
	}
	lock, err := lockDir(cfg.Dir)
	if err != nil {
		return nil, err
	}
	j := &journal{dir: jdir, policy: cfg.Sync, interval: cfg.SyncInterval, segSize: cfg.SegmentSize,
		log: cfg.Logger, stop: make(chan struct{}), flushed: make(chan struct{}), fds: fdReserve{log: cfg.Logger},
		presync: make(chan struct{}, 1)}
	if cfg.Sync != SyncAlways {
		j.presyncEvery = presyncEvery(cfg.SegmentSize)
	}
	sl := &statusLog{name: statusPath(cfg.Dir), policy: cfg.Sync, j: j}
	j.status = sl
	ms := memstore.New(memstore.Config{MaxEvents: cfg.MaxEvents, MaxBytes: cfg.MaxBytes, MaxAge: cfg.MaxAge,
		GroupTTL: cfg.GroupTTL, Journal: j, MaxStatusRecords: cfg.MaxStatusRecords, StatusJournal: sl, Now: cfg.Now})
	s := &Store{ms: ms, j: j, status: sl, lock: lock, dir: cfg.Dir}
	start := time.Now()
	// The status journal is read first and the event journal replayed
	// next; only then is either changed (a torn write cut, the mark of
	// this Open added), so that an Open that fails changes nothing but a
	// torn end of the newest segment.
	os.Remove(sl.name + ".tmp") // left by a crash while it was written anew
	tail, err := s.replayStatus()
	if err == nil {
		err = s.replay(cfg.Logger)
	}
	if err == nil {
		err = s.openStatus(tail, cfg.Logger)
	}
	if err != nil {
		ms.Close()
		lock.Close()
		return nil, err
	}
	st, _ := ms.Stats(context.Background())
	j.trimmed = st.Trimmed
	s.info.Events = int(st.Count)
	s.info.Took = time.Since(start)
	// A new segment starts with the whole state; the older ones are kept
	// for their events until retention trims them.
	ms.Checkpoint()
	j.mu.Lock()
	seq := j.seq
	j.mu.Unlock()
	// The spares and the directory are taken now, before the process can
	// run out of descriptors (closed by j.close).
	j.fds.refill()
	if j.dirFile, err = os.Open(j.dir); err != nil {
		ms.Close()
		j.fds.close()
		sl.close()
		lock.Close()
		return nil, fmt.Errorf("diskstore: %w", err)
	}
	go j.flush()
	if err := j.syncThrough(seq); err != nil {
		ms.Close()
		j.close()
		sl.close()
		lock.Close()
		return nil, err
	}
	return s, nil
}

// makeDirs creates dir and its missing parents (mode 0700) and syncs each
// parent it added to, so that the new directories outlast a power loss.
func makeDirs(dir string) error {
	var missing []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("diskstore: %w", err)
	}
	for _, d := range missing {
		if err := syncDir(filepath.Dir(d)); err != nil {
			return err
		}
	}
	return nil
}

// lockDir takes the data directory's lock file, so that two regions never
// write one journal, and writes the holder's process ID into it.
func lockDir(dir string) (*os.File, error) {
	name := filepath.Join(dir, "LOCK")
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("diskstore: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		holder, _ := io.ReadAll(io.LimitReader(f, 32))
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s is held by process %s", ErrLocked, dir, holder)
		}
		return nil, fmt.Errorf("diskstore: lock %s: %w", name, err)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}

// replay reads every segment, oldest first, into the store.
func (s *Store) replay(log logrus.FieldLogger) error {
	entries, err := os.ReadDir(s.j.dir)
	if err != nil {
		return fmt.Errorf("diskstore: %w", err)
	}
	var nums []uint64
	for _, e := range entries {
		if !isSegmentFile(e.Name()) {
			continue
		}
		n, _ := strconv.ParseUint(e.Name()[:16], 16, 64)
		nums = append(nums, n)
	}
	slices.Sort(nums)
	for i, num := range nums {
		seg, kept, err := s.replaySegment(num, i == len(nums)-1, log)
		if err != nil {
			return err
		}
		if kept {
			s.info.Segments++
			s.j.segs = append(s.j.segs, seg)
		}
	}
	// What was replayed may be in the page cache only (the process before
	// was killed, or a torn tail was just cut): put it on disk before a
	// new segment is made on top of it.
	for _, seg := range s.j.segs {
		if err := syncFile(filepath.Join(s.j.dir, segmentName(seg.num))); err != nil {
			return err
		}
	}
	return syncDir(s.j.dir)
}

// syncFile fsyncs a file by name.
func syncFile(name string) error {
	f, err := os.Open(name)
	if err != nil {
		return fmt.Errorf("diskstore: %w", err)
	}
	defer f.Close()
	if err := unix.Fdatasync(int(f.Fd())); err != nil {
		return fmt.Errorf("diskstore: sync %s: %w", name, err)
	}
	return nil
}

// errTorn marks the end of a segment that a crash cut short: a record
// whose bytes are not all there, or whose checksum fails.
var errTorn = errors.New("a record cut short or failing its checksum")

// replaySegment replays one segment file, and reports whether the file is
// kept. Every segment opens with a checkpoint, which is applied: it repeats
// what the replay built from the segments before (or, when those are gone,
// restores it). A torn end of the newest segment is cut off the file, the
// bytes cut kept in a file beside it (and the file moved aside whole when
// nothing is left); a record of the newest segment cut short or failing
// its checksum that a sync mark after it says was synced, a torn end of an
// older one, or a record that checks out but makes no sense, is damage
// that Open reports.
func (s *Store) replaySegment(num uint64, newest bool, log logrus.FieldLogger) (segment, bool, error) {
	seg := segment{num: num}
	name := filepath.Join(s.j.dir, segmentName(num))
	sr, err := openSegment(name)
	if err != nil {
		return seg, false, err
	}
	defer sr.close()
	magic, err := sr.magic()
	if err != nil {
		return seg, false, err
	}
	off, records := int64(0), 0
	var bad error
	switch {
	case len(magic) < len(segmentMagic) && string(magic) == segmentMagic[:len(magic)]:
		bad = errTorn // created, and cut before its first write was whole
	case string(magic) != segmentMagic:
		bad = fmt.Errorf("%w: no segment header", ErrCorrupt)
	default:
		off = sr.off
	}
	for bad == nil {
		rec, err := sr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			bad = err
			break
		}
		if rec[8] == syncMark {
			if bad = checkSyncMark(rec, off, records); bad == nil {
				off += int64(len(rec))
			}
			continue
		}
		c, err := decodeRecord(rec)
		if err != nil {
			bad = err
			break
		}
		if records == 0 && c.Kind != memstore.ChangeCheckpoint {
			bad = fmt.Errorf("%w: segment does not start with a checkpoint", ErrCorrupt)
			break
		}
		if err := s.ms.Apply(c); err != nil {
			bad = fmt.Errorf("%w: %w", ErrCorrupt, err)
			break
		}
		if c.Kind == memstore.ChangeEvents {
			seg.lastEvent = c.Events[len(c.Events)-1].ID
		}
		records++
		off += int64(len(rec))
	}
	s.info.Records += records
	switch {
	case bad == nil && records > 0:
		return seg, true, nil
	case bad == nil:
		bad = errTorn // a header and nothing else
	case !errors.Is(bad, errTorn) && !errors.Is(bad, ErrCorrupt):
		return seg, false, bad // the file could not be read
	case !errors.Is(bad, errTorn):
		return seg, false, fmt.Errorf("diskstore: %s at offset %d: %w", name, off, bad)
	case !newest:
		return seg, false, fmt.Errorf("diskstore: %s at offset %d: %w: %w (in a segment that is not the newest)",
			name, off, ErrCorrupt, bad)
	}
	// The newest segment ends in a record cut short or failing its
	// checksum: a torn write, unless a sync mark after it says it was
	// synced.
	at, synced, marked, err := findSyncMark(sr.f, off+1, sr.size, off)
	if err != nil {
		return seg, false, fmt.Errorf("diskstore: %s: %w", name, err)
	}
	if marked {
		return seg, false, fmt.Errorf("diskstore: %s at offset %d: %w: %w, but the sync mark at offset %d says "+
			"the bytes before %d were on stable storage: damage, not a write torn by a crash (nothing was cut; "+
			"see the package doc of diskstore for what to do)", name, off, ErrCorrupt, bad, at, synced)
	}
	cut := sr.size - off
	s.info.CutBytes += cut
	fields := logrus.Fields{"file": name, "offset": off, "bytes": cut}
	if records == 0 {
		if sr.size <= int64(len(segmentMagic)) { // the header or a part of it: nothing to keep
			log.WithFields(fields).Warn("the newest segment holds no whole record (a write torn by a crash): deleted")
			if err := os.Remove(name); err != nil {
				return seg, false, fmt.Errorf("diskstore: %w", err)
			}
			return seg, false, nil
		}
		kept, err := moveAside(name)
		if err != nil {
			return seg, false, err
		}
		s.info.TornFiles = append(s.info.TornFiles, kept)
		log.WithFields(fields).WithField("kept", kept).
			Warn("the newest segment holds no whole record (a write torn by a crash): moved aside")
		return seg, false, nil
	}
	kept, err := keepCut(name, off)
	if err != nil {
		return seg, false, err
	}
	s.info.TornFiles = append(s.info.TornFiles, kept)
	log.WithFields(fields).WithField("kept", kept).Warn("the newest segment ends in a torn write: cut")
	if err := os.Truncate(name, off); err != nil {
		return seg, false, fmt.Errorf("diskstore: cut torn write: %w", err)
	}
	return seg, true, nil
}

// checkSyncMark checks a whole sync mark, found at offset off of its
// segment after records records: it must be where it says it is, after
// the bytes it says were synced, and after the segment's checkpoint.
func checkSyncMark(rec []byte, off int64, records int) error {
	synced, at, ok := parseSyncMark(rec)
	switch {
	case !ok:
		return fmt.Errorf("%w: a sync mark that does not decode", ErrCorrupt)
	case records == 0:
		return fmt.Errorf("%w: segment does not start with a checkpoint", ErrCorrupt)
	case at != off || synced > at:
		return fmt.Errorf("%w: a sync mark at offset %d says it is at %d, after %d bytes synced", ErrCorrupt, off, at, synced)
	}
	return nil
}

// findSyncMark looks in r, from offset from to size, for a sync mark that
// says bytes after past were synced: one that starts where it says it
// does, and says the bytes before some offset beyond past were on stable
// storage. It looks at every offset, reading a MiB at a time: a damaged
// record's length does not say where the next one starts. (Event data can
// hold the bytes of a sync mark, but not at the offset it would have to
// name.)
func findSyncMark(r io.ReaderAt, from, size, past int64) (at, synced int64, ok bool, err error) {
	const chunk = 1 << 20
	buf := make([]byte, min(chunk+maxSyncMark, max(size-from, 0)))
	for base := from; base < size; base += chunk {
		b := buf[:min(int64(len(buf)), size-base)]
		if n, err := r.ReadAt(b, base); n < len(b) {
			return 0, 0, false, err
		}
		// Marks that start in this chunk; the next chunk's start is read
		// too, for a mark that runs into it.
		end := min(chunk, len(b))
		for p := 0; p < end && p+recordHeader <= len(b); p++ {
			i := bytes.IndexByte(b[p+8:], syncMark)
			if i < 0 || p+i >= end {
				break
			}
			p += i
			if s, a, ok := parseSyncMark(b[p:]); ok && a == base+int64(p) && s > past && s <= a {
				return a, s, true, nil
			}
		}
	}
	return 0, 0, false, nil
}

// tornName returns a name for the bytes cut off name: name.torn, or
// name.torn.2, … when cuts before left those.
func tornName(name string) (string, error) {
	for i := 1; i <= 1000; i++ {
		t := name + ".torn"
		if i > 1 {
			t += "." + strconv.Itoa(i)
		}
		if _, err := os.Lstat(t); errors.Is(err, fs.ErrNotExist) {
			return t, nil
		} else if err != nil {
			return "", fmt.Errorf("diskstore: %w", err)
		}
	}
	return "", fmt.Errorf("diskstore: %s.torn and .torn.2 to .torn.1000 all exist", name)
}

// moveAside renames a file that holds nothing whole to its torn name, and
// syncs the directory.
func moveAside(name string) (string, error) {
	kept, err := tornName(name)
	if err != nil {
		return "", err
	}
	if err := os.Rename(name, kept); err != nil {
		return "", fmt.Errorf("diskstore: move aside a torn write: %w", err)
	}
	return kept, syncDir(filepath.Dir(name))
}

// keepCut copies the bytes of name from off on, which are about to be cut
// off it, into a new file beside it (its torn name), and syncs that file
// and the directory, so that what is cut can still be looked at.
func keepCut(name string, off int64) (kept string, err error) {
	if kept, err = tornName(name); err != nil {
		return "", err
	}
	src, err := os.Open(name)
	if err != nil {
		return "", fmt.Errorf("diskstore: %w", err)
	}
	defer src.Close()
	dst, err := os.OpenFile(kept, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("diskstore: %w", err)
	}
	_, err = src.Seek(off, io.SeekStart)
	if err == nil {
		_, err = io.Copy(dst, src)
	}
	if err == nil {
		err = unix.Fdatasync(int(dst.Fd()))
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(kept)
		return "", fmt.Errorf("diskstore: keep the bytes of a torn write in %s: %w", kept, err)
	}
	return kept, syncDir(filepath.Dir(name))
}

// Info says what Open found.
func (s *Store) Info() OpenInfo { return s.info }

// Dir is the data directory.
func (s *Store) Dir() string { return s.dir }

// Sync implements store.Syncer, for the status journal too.
func (s *Store) Sync(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.j.syncAll(ctx); err != nil {
		return err
	}
	return s.status.syncAll()
}

// Health implements store.HealthReporter: the store is degraded once a
// write or sync failed (it then refuses every change).
func (s *Store) Health() store.Health {
	if err := s.j.err(); err != nil {
		return store.Health{Degraded: true, Reason: err.Error()}
	}
	return store.Health{}
}

// SpareFDs returns how many spare descriptors the journal holds for the
// segments it starts when the process is out of them, and how many it
// keeps when it can (fewer held: it used some, and the process has had
// none free since to take them back).
func (s *Store) SpareFDs() (held, wanted int) { return s.j.fds.held(), spareFDs }

// Close closes the store: it syncs what it holds and releases the data
// directory. It is safe to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.ms.Close()
		s.closeErr = s.j.close()
		if err := s.status.close(); s.closeErr == nil {
			s.closeErr = err
		}
		s.lock.Close()
	})
	return s.closeErr
}

// maxAppendBytes bounds the events of one journal record (by
// protocol.Event.Size): Append splits a larger batch, so that no record
// comes near what a record holds.
const maxAppendBytes = 64 << 20

// Append implements store.Store.
func (s *Store) Append(ctx context.Context, evs []*protocol.Event) error {
	if err := s.j.err(); err != nil {
		return err
	}
	for len(evs) > 0 {
		n, size := 0, 0
		for n < len(evs) && n < maxRecordEvents && (n == 0 || size+evs[n].Size() <= maxAppendBytes) {
			size += evs[n].Size()
			n++
		}
		if err := s.ms.Append(ctx, evs[:n]); err != nil {
			return err
		}
		evs = evs[n:]
	}
	return nil
}

// AppendMarked implements store.MarkedAppender. It refuses more than
// maxRecordEvents events (about 167,000), which one record holds.
func (s *Store) AppendMarked(ctx context.Context, evs []*protocol.Event, name string, id protocol.ID) error {
	if err := s.j.err(); err != nil {
		return err
	}
	if len(evs) > maxRecordEvents {
		return fmt.Errorf("diskstore: %d events in one marked append, more than the %d a journal record holds",
			len(evs), maxRecordEvents)
	}
	return s.ms.AppendMarked(ctx, evs, name, id)
}

// Read implements store.Store.
func (s *Store) Read(ctx context.Context, after protocol.ID, max int, dst []*protocol.Event) ([]*protocol.Event, store.Gap, error) {
	return s.ms.Read(ctx, after, max, dst)
}

// ReadPrepared implements store.PreparedReader.
func (s *Store) ReadPrepared(ctx context.Context, after protocol.ID, max int, dst []*protocol.Event, json [][]byte) (
	[]*protocol.Event, [][]byte, store.Gap, error) {
	return s.ms.ReadPrepared(ctx, after, max, dst, json)
}

// ReadPreparedLight implements store.PreparedReader.
func (s *Store) ReadPreparedLight(ctx context.Context, after protocol.ID, max int, dst []*protocol.Event, json [][]byte) (
	[]*protocol.Event, [][]byte, store.Gap, error) {
	return s.ms.ReadPreparedLight(ctx, after, max, dst, json)
}

// Wait implements store.Store.
func (s *Store) Wait(ctx context.Context, after protocol.ID) error { return s.ms.Wait(ctx, after) }

// Stats implements store.Store.
func (s *Store) Stats(ctx context.Context) (store.StreamStats, error) { return s.ms.Stats(ctx) }

// PutSession implements store.Store. Sessions are the connections of this
// process: they are kept in memory only.
func (s *Store) PutSession(ctx context.Context, sess store.Session) error {
	return s.ms.PutSession(ctx, sess)
}

// DeleteSession implements store.Store.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	return s.ms.DeleteSession(ctx, id)
}

// Sessions implements store.Store.
func (s *Store) Sessions(ctx context.Context) ([]store.Session, error) { return s.ms.Sessions(ctx) }

// SetPosition implements store.Store.
func (s *Store) SetPosition(ctx context.Context, name string, id protocol.ID) error {
	if err := s.j.err(); err != nil {
		return err
	}
	return s.ms.SetPosition(ctx, name, id)
}

// Position implements store.Store.
func (s *Store) Position(ctx context.Context, name string) (protocol.ID, bool, error) {
	return s.ms.Position(ctx, name)
}

// GroupRead implements store.Store.
func (s *Store) GroupRead(ctx context.Context, group, consumer string, start protocol.ID, claimAfter time.Duration,
	max int, dst []*protocol.Event) ([]*protocol.Event, protocol.ID, error) {
	return s.ms.GroupRead(ctx, group, consumer, start, claimAfter, max, dst)
}

// GroupAck implements store.Store.
func (s *Store) GroupAck(ctx context.Context, group, consumer string, ids []protocol.ID) (int, error) {
	return s.ms.GroupAck(ctx, group, consumer, ids)
}

// GroupInfo implements store.GroupInspector.
func (s *Store) GroupInfo(ctx context.Context, group string) (store.GroupInfo, bool, error) {
	return s.ms.GroupInfo(ctx, group)
}

// AppendStatus implements store.Ledger: the records go to the status
// journal, as durable on return as the sync policy says (SyncAlways: on
// stable storage; SyncBatch: written, and synced within SyncInterval or
// by Sync; SyncOS: written).
func (s *Store) AppendStatus(ctx context.Context, recs []*protocol.StatusRecord) error {
	if err := s.j.err(); err != nil {
		return err
	}
	return s.ms.AppendStatus(ctx, recs)
}

// StatusRecords implements store.Ledger.
func (s *Store) StatusRecords(ctx context.Context, after uint64, max int, dst []protocol.StatusRecord) ([]protocol.StatusRecord, error) {
	return s.ms.StatusRecords(ctx, after, max, dst)
}

// StatusStats reports the status records held (see memstore.StatusStats).
func (s *Store) StatusStats() memstore.StatusStats { return s.ms.StatusStats() }
