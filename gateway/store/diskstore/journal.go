package diskstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/zbridge/zbridge/gateway/store/memstore"
	"github.com/zbridge/zbridge/protocol"
)

// segmentMagic starts every segment file: the format's name and version.
const segmentMagic = "ZBRJNL\x00\x01"

// segmentName is a segment's file name: its number in 16 hex digits.
func segmentName(num uint64) string { return fmt.Sprintf("%016x.seg", num) }

// segment is what the journal knows of one segment file.
type segment struct {
	num       uint64
	lastEvent protocol.ID // the newest event recorded in it
	start     uint64      // the sequence number of its opening checkpoint
}

// trim is a trim record: retention trimmed through id.
type trim struct {
	seq uint64
	id  protocol.ID
}

// piece is recorded data waiting to be written into segment seg.
type piece struct {
	seg  uint64
	data []byte
}

// journal is the memstore.Journal of the store: it encodes each change
// into a buffer under the store's lock, and writes and syncs the buffer
// outside it.
type journal struct {
	dir      string // the directory of the segment files
	policy   SyncPolicy
	interval time.Duration
	segSize  int64
	log      logrus.FieldLogger

	mu      sync.Mutex  // guards the following fields: the recording side
	pieces  []piece     // recorded, not yet taken by the writer
	spare   []byte      // a buffer the writer gave back
	seq     uint64      // the sequence number of the last record
	segs    []segment   // every segment file, oldest first
	curSize int64       // bytes recorded into the newest segment, but its checkpoint
	trims   []trim      // trims recorded and not yet known kept, oldest first
	trimmed protocol.ID // the newest trim known kept: segments through it may go
	started bool        // the opening checkpoint is recorded: the replay is over

	wmu     sync.Mutex // guards the following fields: the writing side
	file    *os.File   // the segment being written, nil before the first
	fileNum uint64
	sealed  []*os.File // written full, to be synced and closed
	created bool       // files created since the last sync of the directory
	// unsynced counts the bytes written to file since the flusher was
	// last asked to sync it ahead of time (presync).
	unsynced int64
	size     int64 // bytes written to file
	markEnd  int64 // where the last sync mark written to file ends (0: none yet)

	smu     sync.Mutex    // held while syncing
	written atomic.Uint64 // records through this sequence number are written
	synced  atomic.Uint64 // records through this sequence number are synced

	failed atomic.Pointer[error] // the first write or sync error: the journal stops

	fds fdReserve // descriptors for the segments the journal starts
	// dirFile is the segment directory, open while the store is, for the
	// syncs that keep segments created or deleted so: no descriptor needed
	// then, when the process may be out of them.
	dirFile *os.File

	status *statusLog // the status journal, which the flusher syncs too

	// presyncEvery is how many bytes are written to a segment between
	// the syncs the flusher makes of it as it fills (0: none, under
	// SyncAlways, whose commits sync), so that the sync that seals it
	// full, made while appends wait, finds little left to write.
	presyncEvery int64
	presync      chan struct{} // a presync is due (buffered, one)

	stop      chan struct{} // closed to stop the flusher
	flushed   chan struct{} // closed when the flusher has stopped
	closeOnce sync.Once
}

var _ memstore.Journal = (*journal)(nil)

// Record implements memstore.Journal. A change recorded before the opening
// checkpoint is a replay's side effect (the age trimmer) and is dropped:
// the checkpoint holds its result.
func (j *journal) Record(c *memstore.Change) (uint64, bool) {
	if j.failed.Load() != nil {
		return 0, false
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if c.Kind == memstore.ChangeCheckpoint {
		// A checkpoint starts a segment: its magic and the checkpoint go
		// out in one write, so that no segment is left with a header and
		// nothing else.
		num := uint64(1)
		if n := len(j.segs); n > 0 {
			num = j.segs[n-1].num + 1
		}
		j.segs = append(j.segs, segment{num: num, start: j.seq + 1})
		j.pieces = append(j.pieces, piece{seg: num, data: append(j.takeSpareLocked(), segmentMagic...)})
		j.curSize = 0
		j.started = true
	} else if !j.started {
		return 0, false
	}
	cur := &j.segs[len(j.segs)-1]
	if n := len(j.pieces); n == 0 || j.pieces[n-1].seg != cur.num {
		j.pieces = append(j.pieces, piece{seg: cur.num, data: j.takeSpareLocked()})
	}
	p := &j.pieces[len(j.pieces)-1]
	before := len(p.data)
	p.data = appendRecord(p.data, c)
	if size := len(p.data) - before - recordHeader; size > maxRecord {
		// Only a checkpoint of billions of positions or pending entries
		// gets here: stop rather than write what could not be read back.
		p.data = p.data[:before]
		j.fail(fmt.Errorf("diskstore: a %s change of %d bytes does not fit in a record", kindName(c.Kind), size))
		return j.seq, false
	}
	j.seq++
	switch c.Kind {
	case memstore.ChangeEvents:
		cur.lastEvent = c.Events[len(c.Events)-1].ID
	case memstore.ChangeTrim:
		j.trims = append(j.trims, trim{seq: j.seq, id: c.ID})
	case memstore.ChangeCheckpoint:
		return j.seq, false // not counted: a big state must not make every change start a segment
	}
	j.curSize += int64(len(p.data) - before)
	return j.seq, j.curSize >= j.segSize
}

// kindName names a change kind in errors.
func kindName(k memstore.ChangeKind) string {
	switch k {
	case memstore.ChangeEvents:
		return "events"
	case memstore.ChangeCheckpoint:
		return "checkpoint"
	}
	return fmt.Sprintf("kind %d", k)
}

func (j *journal) takeSpareLocked() []byte {
	b := j.spare
	j.spare = nil
	return b
}

// Commit implements memstore.Journal: under SyncAlways the records through
// seq are on stable storage when it returns, under the other policies
// written to the operating system.
func (j *journal) Commit(ctx context.Context, seq uint64) error {
	if j.policy == SyncAlways {
		return j.syncThrough(seq)
	}
	return j.writeThrough(seq)
}

// syncAll makes everything recorded so far as durable as the policy
// allows: on stable storage under SyncAlways and SyncBatch.
func (j *journal) syncAll(ctx context.Context) error {
	j.mu.Lock()
	seq := j.seq
	j.mu.Unlock()
	if j.policy == SyncOS {
		return j.writeThrough(seq)
	}
	return j.syncThrough(seq)
}

// err is the journal's failure, if it failed.
func (j *journal) err() error {
	if p := j.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// fail records the journal's first failure and logs it.
func (j *journal) fail(err error) error {
	if j.failed.CompareAndSwap(nil, &err) {
		j.log.WithError(err).Error("the event store cannot write to disk: it accepts nothing more until the region restarts")
	}
	return j.err()
}

// writeThrough writes the recorded data to the segment files, if the
// records through seq are not written yet.
func (j *journal) writeThrough(seq uint64) error {
	if err := j.err(); err != nil {
		return err
	}
	if j.written.Load() >= seq {
		return nil
	}
	j.wmu.Lock()
	defer j.wmu.Unlock()
	if j.written.Load() >= seq {
		return j.err()
	}
	return j.writeLocked()
}

// writeLocked writes every recorded piece, starting new segment files
// where the pieces say.
func (j *journal) writeLocked() error {
	if err := j.err(); err != nil {
		return err
	}
	j.mu.Lock()
	pieces := j.pieces
	j.pieces = nil
	seq := j.seq
	j.mu.Unlock()
	for _, p := range pieces {
		if j.file == nil || p.seg != j.fileNum {
			if j.file != nil {
				// The segment written full is synced before the next one
				// exists, whatever the policy: a crash must never leave a
				// torn record in a segment that is not the newest.
				if err := unix.Fdatasync(int(j.file.Fd())); err != nil {
					return j.fail(fmt.Errorf("diskstore: sync %s: %w", j.file.Name(), err))
				}
				j.sealed = append(j.sealed, j.file)
			}
			f, err := j.createSegment(p.seg)
			if err != nil {
				return j.fail(err)
			}
			j.file, j.fileNum, j.created, j.unsynced = f, p.seg, true, 0
			j.size, j.markEnd = 0, 0
		}
		if _, err := j.file.Write(p.data); err != nil {
			return j.fail(fmt.Errorf("diskstore: write %s: %w", j.file.Name(), err))
		}
		j.unsynced += int64(len(p.data))
		j.size += int64(len(p.data))
	}
	if j.presyncEvery > 0 && j.unsynced >= j.presyncEvery {
		j.unsynced = 0
		select {
		case j.presync <- struct{}{}:
		default: // one is due already
		}
	}
	if n := len(pieces); n > 0 && cap(pieces[n-1].data) <= 16<<20 {
		j.mu.Lock()
		j.spare = pieces[n-1].data[:0]
		j.mu.Unlock()
	}
	j.written.Store(seq)
	return nil
}

// createSegment creates segment num's file, with a spare descriptor if
// the process is out of them; its first piece of data starts with the
// magic.
func (j *journal) createSegment(num uint64) (*os.File, error) {
	name := filepath.Join(j.dir, segmentName(num))
	f, err := j.fds.open(name, func() (*os.File, error) {
		return os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	})
	if err != nil {
		return nil, fmt.Errorf("diskstore: create segment: %w", err)
	}
	return f, nil
}

// syncThrough writes and syncs the records through seq, if they are not
// synced yet. Callers that come while a sync runs wait for it and are
// often covered by it: that is the group commit.
func (j *journal) syncThrough(seq uint64) error {
	if err := j.writeThrough(seq); err != nil {
		return err
	}
	if j.synced.Load() >= seq {
		return nil
	}
	j.smu.Lock()
	defer j.smu.Unlock()
	if j.synced.Load() >= seq {
		return j.err()
	}
	return j.settleLocked(true)
}

// settleLocked, with smu held, syncs (when sync is set) what is written,
// closes the segment files written full (synced when they were), and
// deletes the segments retention emptied. The fsyncs run without wmu:
// appends go on writing.
func (j *journal) settleLocked(sync bool) error {
	if err := j.err(); err != nil {
		// A failed write or sync may have lost data that a later fsync of
		// the same file would not report (Linux reports a writeback error
		// once): nothing is marked synced or deleted after one.
		return err
	}
	j.wmu.Lock()
	w := j.written.Load()
	f, size, sealed, created := j.file, j.size, j.sealed, j.created
	j.sealed = nil
	if sync {
		j.created = false
	}
	j.wmu.Unlock()
	if err := j.fds.closeFiles(sealed); err != nil {
		return j.fail(fmt.Errorf("diskstore: %w", err))
	}
	if sync && f != nil {
		if err := unix.Fdatasync(int(f.Fd())); err != nil {
			return j.fail(fmt.Errorf("diskstore: sync %s: %w", f.Name(), err))
		}
		if err := j.markSynced(f, size); err != nil {
			return err
		}
	}
	if sync && created {
		if err := j.syncDir(); err != nil {
			return j.fail(err)
		}
	}
	if sync {
		j.synced.Store(w)
	}
	return j.deleteTrimmed(w)
}

// markSynced writes a sync mark into f, if it is still the segment being
// written, saying that its bytes before synced are on stable storage (an
// fsync of f just returned that had begun after they were written), unless
// nothing but marks was written since the last. At the next Open, a record
// before it that is cut short or fails its checksum is then damage, not a
// write torn by a crash. The mark itself is synced by the next sync.
func (j *journal) markSynced(f *os.File, synced int64) error {
	j.wmu.Lock()
	defer j.wmu.Unlock()
	if j.file != f || synced <= j.markEnd {
		return nil
	}
	if err := j.err(); err != nil {
		return err
	}
	var buf [maxSyncMark]byte
	b := appendSyncMark(buf[:0], synced, j.size)
	if _, err := f.Write(b); err != nil {
		return j.fail(fmt.Errorf("diskstore: write %s: %w", f.Name(), err))
	}
	j.size += int64(len(b))
	j.unsynced += int64(len(b))
	j.markEnd = j.size
	j.mu.Lock() // after wmu, as writeLocked takes them
	if n := len(j.segs); n > 0 && j.segs[n-1].num == j.fileNum {
		j.curSize += int64(len(b)) // counted towards SegmentSize, as records are
	}
	j.mu.Unlock()
	return nil
}

// deleteTrimmed deletes the oldest segments while every event in them was
// trimmed by a trim that is kept, and the segment after them starts with a
// checkpoint that is kept (records through kept are written or synced, as
// the policy says). A segment whose file cannot be removed stays, and so
// do the ones after it.
func (j *journal) deleteTrimmed(kept uint64) error {
	j.mu.Lock()
	k := 0
	for ; k < len(j.trims) && j.trims[k].seq <= kept; k++ {
		j.trimmed = j.trims[k].id
	}
	j.trims = j.trims[k:]
	var gone []uint64
	for i := 0; i+1 < len(j.segs) && !j.trimmed.Less(j.segs[i].lastEvent) && j.segs[i+1].start <= kept; i++ {
		gone = append(gone, j.segs[i].num)
	}
	j.mu.Unlock()
	removed := 0
	for _, num := range gone {
		if err := os.Remove(filepath.Join(j.dir, segmentName(num))); err != nil && !errors.Is(err, os.ErrNotExist) {
			j.log.WithError(err).Warn("deleting a trimmed segment failed; it and the newer ones stay until the next try")
			break
		}
		removed++
	}
	if removed == 0 {
		return nil
	}
	j.mu.Lock()
	j.segs = j.segs[removed:]
	j.mu.Unlock()
	if j.policy != SyncOS {
		if err := j.syncDir(); err != nil {
			j.log.WithError(err).Warn("syncing the journal directory failed")
		}
	}
	return nil
}

// syncDir syncs the journal's directory, through the descriptor it keeps
// open for that.
func (j *journal) syncDir() error {
	if err := j.dirFile.Sync(); err != nil {
		return fmt.Errorf("diskstore: sync directory %s: %w", j.dir, err)
	}
	return nil
}

// syncDir syncs a directory, so that the files created or removed in it
// stay so.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("diskstore: sync directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("diskstore: sync directory %s: %w", dir, err)
	}
	return nil
}

// flush runs until close: every interval it writes what was recorded, in
// the segments and the status journal, and, unless the policy is SyncOS,
// syncs it. This keeps the changes no caller waits for (consumer groups,
// retention) and bounds what a power loss can take under SyncBatch to one
// interval.
func (j *journal) flush() {
	defer close(j.flushed)
	t := time.NewTicker(j.interval)
	defer t.Stop()
	for {
		select {
		case <-j.stop:
			return
		case <-j.presync:
			// Sync what is written of the segment being filled, without
			// holding up appends: the sync that seals it is then short.
			j.smu.Lock()
			j.settleLocked(true)
			j.smu.Unlock()
			continue
		case <-t.C:
		}
		j.mu.Lock()
		seq := j.seq
		j.mu.Unlock()
		if j.status != nil {
			j.status.syncAll()
		}
		if j.policy == SyncOS {
			if j.writeThrough(seq) == nil {
				j.smu.Lock()
				j.settleLocked(false)
				j.smu.Unlock()
			}
			continue
		}
		j.syncThrough(seq)
	}
}

// close stops the flusher, writes and syncs everything recorded (whatever
// the policy: a clean stop loses nothing), and closes the files.
func (j *journal) close() error {
	var err error
	j.closeOnce.Do(func() {
		close(j.stop)
		<-j.flushed
		j.mu.Lock()
		seq := j.seq
		j.mu.Unlock()
		if err = j.writeThrough(seq); err == nil {
			j.smu.Lock()
			err = j.settleLocked(true) // under every policy
			if err == nil {
				// Once more, for the sync mark the first wrote: with it on
				// disk, the next Open knows every record of the segment
				// was synced.
				err = j.settleLocked(true)
			}
			j.smu.Unlock()
		}
		j.wmu.Lock()
		if j.file != nil {
			if cerr := j.file.Close(); err == nil && cerr != nil {
				err = fmt.Errorf("diskstore: close: %w", cerr)
			}
			j.file = nil
		}
		for _, s := range j.sealed {
			s.Close()
		}
		j.sealed = nil
		j.wmu.Unlock()
		j.fds.close()
		if j.dirFile != nil {
			j.dirFile.Close()
		}
	})
	return err
}
