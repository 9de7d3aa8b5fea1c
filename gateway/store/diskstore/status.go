package diskstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/zbridge/zbridge/gateway/store/eventcodec"
	"github.com/zbridge/zbridge/gateway/store/memstore"
	"github.com/zbridge/zbridge/protocol"
)

// The status journal keeps the store's status records (store.Ledger) in a
// file of their own, status.journal in the data directory, so that the
// event retention, which deletes whole segments, never takes them (see the
// package doc, "Status records").

const (
	// statusFile is the status journal's name in the data directory.
	statusFile = "status.journal"
	// statusMagic starts the status journal: the format's name and version.
	statusMagic = "ZBRSTS\x00\x01"
)

// The kinds of record in the status journal.
const (
	// statusRecords: status records, each with its Seq.
	statusRecords byte = 1
	// statusMark: an Open was here. Everything before it was whole and on
	// stable storage then; its payload is the newest Seq at that time.
	statusMark byte = 2
)

// maxStatusPayload bounds the payload of one statusRecords record: a
// larger AppendStatus is written as several records.
const maxStatusPayload = 16 << 20

// minStatusRecord is the fewest bytes an encoded status record takes: a
// Seq, five string lengths, a time (two varints) and an ID (two).
const minStatusRecord = 1 + 5 + 2 + 2

// statusLog is the memstore.StatusJournal of the store: it encodes each
// AppendStatus into a buffer under the ledger's lock, and writes and syncs
// the buffer outside it, as the journal does for the other changes. It
// shares the journal's failure: a write or sync that fails in either stops
// the store.
type statusLog struct {
	name   string // the file's path
	policy SyncPolicy
	j      *journal // whose failure state the log shares

	mu    sync.Mutex // guards the following fields: the recording side
	buf   []byte     // recorded, not yet written
	spare []byte     // a buffer the writer gave back
	seq   uint64     // the number of the last AppendStatus recorded

	wmu  sync.Mutex // guards the file's writes
	file *os.File   // opened for appending by Open; closed by close

	smu     sync.Mutex    // held while syncing
	written atomic.Uint64 // recorded through this number is written
	synced  atomic.Uint64 // recorded through this number is synced

	closeOnce sync.Once
}

var _ memstore.StatusJournal = (*statusLog)(nil)

// RecordStatus implements memstore.StatusJournal.
func (l *statusLog) RecordStatus(recs []protocol.StatusRecord) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buf == nil {
		l.buf, l.spare = l.spare, nil
	}
	l.buf = appendStatusRecords(l.buf, recs, maxStatusPayload)
	l.seq++
	return l.seq
}

// CommitStatus implements memstore.StatusJournal: under SyncAlways the
// records are on stable storage when it returns, under the other policies
// written to the operating system (SyncBatch: synced by the flusher
// within SyncInterval, or by Sync).
func (l *statusLog) CommitStatus(ctx context.Context, seq uint64) error {
	if l.policy == SyncAlways {
		return l.syncThrough(seq)
	}
	return l.writeThrough(seq)
}

// recorded is the number of the last AppendStatus recorded.
func (l *statusLog) recorded() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seq
}

// writeThrough writes the recorded data, if what was recorded through seq
// is not written yet.
func (l *statusLog) writeThrough(seq uint64) error {
	if err := l.j.err(); err != nil {
		return err
	}
	if l.written.Load() >= seq {
		return nil
	}
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.written.Load() >= seq {
		return l.j.err()
	}
	if err := l.j.err(); err != nil {
		return err
	}
	l.mu.Lock()
	data, upto := l.buf, l.seq
	l.buf = nil
	l.mu.Unlock()
	if len(data) > 0 {
		if _, err := l.file.Write(data); err != nil {
			return l.j.fail(fmt.Errorf("diskstore: write %s: %w", l.name, err))
		}
		if cap(data) <= 1<<20 {
			l.mu.Lock()
			l.spare = data[:0]
			l.mu.Unlock()
		}
	}
	l.written.Store(upto)
	return nil
}

// syncThrough writes and syncs what was recorded through seq, if it is not
// synced yet; callers that come while a sync runs share it.
func (l *statusLog) syncThrough(seq uint64) error {
	if err := l.writeThrough(seq); err != nil {
		return err
	}
	if l.synced.Load() >= seq {
		return nil
	}
	l.smu.Lock()
	defer l.smu.Unlock()
	if l.synced.Load() >= seq {
		return l.j.err()
	}
	w := l.written.Load()
	if err := unix.Fdatasync(int(l.file.Fd())); err != nil {
		return l.j.fail(fmt.Errorf("diskstore: sync %s: %w", l.name, err))
	}
	l.synced.Store(w)
	return nil
}

// syncAll makes everything recorded so far as durable as the policy
// allows: on stable storage under SyncAlways and SyncBatch. The flusher
// calls it every SyncInterval, and Store.Sync.
func (l *statusLog) syncAll() error {
	if l.policy == SyncOS {
		return l.writeThrough(l.recorded())
	}
	return l.syncThrough(l.recorded())
}

// close writes and syncs everything recorded (whatever the policy: a clean
// stop loses nothing) and closes the file. The ledger records nothing
// after it: the memstore is closed first.
func (l *statusLog) close() error {
	var err error
	l.closeOnce.Do(func() {
		if l.file == nil {
			return
		}
		err = l.syncThrough(l.recorded())
		l.wmu.Lock()
		if cerr := l.file.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("diskstore: close %s: %w", l.name, cerr)
		}
		l.wmu.Unlock()
	})
	return err
}

// appendStatusRecords appends recs as statusRecords records, each with at
// most limit bytes of them (but at least one record): maxStatusPayload
// but in tests.
func appendStatusRecords(b []byte, recs []protocol.StatusRecord, limit int) []byte {
	for len(recs) > 0 {
		n, size := 0, 0
		for n < len(recs) && (n == 0 || size+statusRecordSize(&recs[n]) <= limit) {
			size += statusRecordSize(&recs[n])
			n++
		}
		start := len(b)
		b = append(b, 0, 0, 0, 0, 0, 0, 0, 0, statusRecords)
		b = binary.AppendUvarint(b, uint64(n))
		for i := range recs[:n] {
			b = appendStatusRecord(b, &recs[i])
		}
		b = sealRecord(b, start)
		recs = recs[n:]
	}
	return b
}

// statusRecordSize is at least the size of r's encoding.
func statusRecordSize(r *protocol.StatusRecord) int {
	return 5*binary.MaxVarintLen64 + 2*binary.MaxVarintLen64 + 3*binary.MaxVarintLen64 +
		len(r.Component) + len(r.Status) + len(r.Change) + len(r.Rule) + len(r.Detail)
}

// appendStatusRecord appends a status record: its Seq, component and
// status, time, change and rule, the event's ID, and detail.
func appendStatusRecord(b []byte, r *protocol.StatusRecord) []byte {
	b = binary.AppendUvarint(b, r.Seq)
	b = eventcodec.AppendString(b, r.Component)
	b = eventcodec.AppendString(b, string(r.Status))
	b = eventcodec.AppendTime(b, r.Time)
	b = eventcodec.AppendString(b, r.Change)
	b = eventcodec.AppendString(b, r.Rule)
	b = eventcodec.AppendID(b, r.Event)
	return eventcodec.AppendString(b, r.Detail)
}

// appendStatusMark appends a statusMark record for the newest Seq last.
func appendStatusMark(b []byte, last uint64) []byte {
	start := len(b)
	b = append(b, 0, 0, 0, 0, 0, 0, 0, 0, statusMark)
	b = binary.AppendUvarint(b, last)
	return sealRecord(b, start)
}

// decodeStatus decodes one whole status journal record (header and
// payload): the records of a statusRecords record, or the Seq of a
// statusMark. The records' strings share one copy of the payload. Records
// are not validated again: they were when appended, and a later version
// may validate differently.
func decodeStatus(rec []byte) (kind byte, recs []protocol.StatusRecord, mark uint64, err error) {
	if len(rec) < recordHeader {
		return 0, nil, 0, fmt.Errorf("%w: record of %d bytes", ErrCorrupt, len(rec))
	}
	if n := recordSize(rec); len(rec) != recordHeader+n {
		return 0, nil, 0, fmt.Errorf("%w: record of %d bytes, header says %d", ErrCorrupt, len(rec), recordHeader+n)
	}
	if !checksumOK(rec) {
		return 0, nil, 0, fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	d := eventcodec.NewDecoder(string(rec[recordHeader:]), ErrCorrupt)
	kind = rec[8]
	switch kind {
	case statusRecords:
		n := d.Count(minStatusRecord)
		if n == 0 && d.Err() == nil {
			d.Fail("a status record without records")
		}
		recs = make([]protocol.StatusRecord, 0, min(n, 1024))
		for i := 0; i < n && d.Err() == nil; i++ {
			recs = append(recs, protocol.StatusRecord{
				Seq:       d.Uvarint(),
				Component: d.String(),
				Status:    protocol.Status(d.String()),
				Time:      d.Time(),
				Change:    d.String(),
				Rule:      d.String(),
				Event:     d.ID(),
				Detail:    d.String(),
			})
		}
	case statusMark:
		mark = d.Uvarint()
	default:
		d.Fail("status record kind %d", kind)
	}
	if d.Err() == nil && len(d.Rest()) != 0 {
		d.Fail("%d bytes after the record's data", len(d.Rest()))
	}
	if d.Err() != nil {
		return 0, nil, 0, d.Err()
	}
	return kind, recs, mark, nil
}

// statusTail is what replayStatus found at the end of the status journal,
// for openStatus to act on once the whole replay succeeded.
type statusTail struct {
	exists bool  // the file exists
	end    int64 // where its whole records end: a torn write after it is cut
	size   int64 // its size
}

// replayStatus reads the status journal into the memstore, changing
// nothing on disk. A record cut short or failing its checksum after the
// last mark (the last Open) is a torn write, cut later by openStatus; the
// same before the last mark is damage, since that Open found the file
// whole: the error wraps ErrCorrupt, naming the file and offset. So is a
// record that checks out but does not decode, or whose Seqs do not rise.
func (s *Store) replayStatus() (statusTail, error) {
	name := s.status.name
	data, err := os.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return statusTail{}, nil // a directory of a version before status records
	}
	if err != nil {
		return statusTail{}, fmt.Errorf("diskstore: %w", err)
	}
	tail := statusTail{exists: true, size: int64(len(data))}
	corrupt := func(off int, err error) (statusTail, error) {
		return tail, fmt.Errorf("diskstore: %s at offset %d: %w", name, off, err)
	}
	switch {
	case len(data) < len(statusMagic) && string(data) == statusMagic[:len(data)]:
		return tail, nil // created, and cut before its first write was whole: end 0
	case len(data) < len(statusMagic) || string(data[:len(statusMagic)]) != statusMagic:
		return corrupt(0, fmt.Errorf("%w: no status journal header", ErrCorrupt))
	}
	off := len(statusMagic)
	for off < len(data) {
		rest := data[off:]
		if len(rest) < recordHeader || len(rest) < recordHeader+recordSize(rest) ||
			!checksumOK(rest[:recordHeader+recordSize(rest)]) {
			if markAfter(data, off+1) {
				return corrupt(off, fmt.Errorf("%w: a record cut short or failing its checksum, before the mark of a later Open", ErrCorrupt))
			}
			break // a torn write
		}
		rec := rest[:recordHeader+recordSize(rest)]
		kind, recs, mark, err := decodeStatus(rec)
		if err != nil {
			return corrupt(off, err)
		}
		switch kind {
		case statusRecords:
			if err := s.ms.ApplyStatus(recs); err != nil {
				return corrupt(off, fmt.Errorf("%w: %w", ErrCorrupt, err))
			}
			s.info.StatusRecords += len(recs)
		case statusMark:
			if last := s.ms.StatusStats().Last; mark != last {
				return corrupt(off, fmt.Errorf("%w: an Open's mark says Seq %d, the records before it end at %d", ErrCorrupt, mark, last))
			}
		}
		off += len(rec)
	}
	tail.end = int64(off)
	return tail, nil
}

// markAfter reports whether a whole statusMark record starts in data at
// from or later. It looks at every offset: the records before are not to
// be trusted to say where the next one starts.
func markAfter(data []byte, from int) bool {
	for p := from; p+recordHeader < len(data); p++ {
		i := bytes.IndexByte(data[p+8:], statusMark)
		if i < 0 {
			return false
		}
		p += i
		if n := recordSize(data[p:]); n >= 1 && n <= binary.MaxVarintLen64 && p+recordHeader+n <= len(data) &&
			checksumOK(data[p:p+recordHeader+n]) {
			return true
		}
	}
	return false
}

// openStatus, once the whole replay succeeded, cuts a torn write off the
// status journal (or writes it anew without the records dropped beyond
// MaxStatusRecords, when those are at least as many as the ones kept),
// creates it if it is missing, appends this Open's mark, and syncs it and,
// if it was created, the directory. The file is left open for appending.
func (s *Store) openStatus(tail statusTail, log logrus.FieldLogger) error {
	l := s.status
	fields := logrus.Fields{"file": l.name}
	if tail.exists && tail.end < tail.size {
		cut := tail.size - tail.end
		s.info.StatusCutBytes = cut
		kept, err := keepCut(l.name, tail.end)
		if err != nil {
			return err
		}
		s.info.TornFiles = append(s.info.TornFiles, kept)
		log.WithFields(fields).WithFields(logrus.Fields{"offset": tail.end, "bytes": cut, "kept": kept}).
			Warn("the status journal ends in a torn write: cut")
		if err := os.Truncate(l.name, tail.end); err != nil {
			return fmt.Errorf("diskstore: cut torn write: %w", err)
		}
	}
	header := tail.exists && tail.end > 0 // the file starts with the magic
	st := s.ms.StatusStats()
	if st.Dropped > 0 && st.Dropped >= uint64(st.Count) {
		if err := s.rewriteStatus(); err != nil {
			return err
		}
		log.WithFields(fields).WithFields(logrus.Fields{"kept": st.Count, "dropped": st.Dropped}).
			Info("the status journal was written anew without the records beyond MaxStatusRecords")
		header = true
	}
	f, err := os.OpenFile(l.name, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("diskstore: %w", err)
	}
	var b []byte
	if !header {
		b = append(b, statusMagic...)
	}
	b = appendStatusMark(b, st.Last)
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("diskstore: write %s: %w", l.name, err)
	}
	if err := unix.Fdatasync(int(f.Fd())); err != nil {
		f.Close()
		return fmt.Errorf("diskstore: sync %s: %w", l.name, err)
	}
	if !tail.exists {
		if err := syncDir(s.dir); err != nil {
			f.Close()
			return err
		}
	}
	l.file = f
	return nil
}

// rewriteStatus writes the status journal anew with the records the
// memstore kept, into a temporary file renamed over it once synced.
func (s *Store) rewriteStatus() error {
	name := s.status.name
	tmp := name + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("diskstore: %w", err)
	}
	err = func() error {
		b := []byte(statusMagic)
		var recs []protocol.StatusRecord
		for after := uint64(0); ; {
			recs, _ = s.ms.StatusRecords(context.Background(), after, 64<<10, recs[:0])
			if len(recs) == 0 {
				break
			}
			b = appendStatusRecords(b, recs, maxStatusPayload)
			after = recs[len(recs)-1].Seq
			if _, err := f.Write(b); err != nil {
				return err
			}
			b = b[:0]
		}
		if _, err := f.Write(b); err != nil {
			return err
		}
		return unix.Fdatasync(int(f.Fd()))
	}()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, name)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("diskstore: write %s anew: %w", name, err)
	}
	return syncDir(s.dir)
}

// statusPath is the status journal's path in dir.
func statusPath(dir string) string { return filepath.Join(dir, statusFile) }
