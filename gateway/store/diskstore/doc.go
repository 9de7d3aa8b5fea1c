// Package diskstore is the region's default store: the embedded store of
// package memstore, with every change journalled to files so that a
// restart, or a kill, loses nothing the store acknowledged.
//
// # Design
//
// The retained events live in memory as in memstore, so reads, waits and
// consumer groups cost what they cost there and never touch the disk. Each
// change (events appended, a position moved, a consumer group's delivery,
// acknowledgement or deletion, retention trimming) is encoded into a buffer under
// the store's lock, written to the newest segment file outside it, and
// synced as the policy says. Opening the store replays the segments.
//
// Why a journal and not an embedded database: go.etcd.io/bbolt and
// github.com/cockroachdb/pebble were measured first, on the append path and
// on the relay (tools/storebench, its README has the figures). On a 2-vCPU
// machine bbolt cost about 1.9 µs of CPU per event and pebble about 2.2
// µs (each more again with retention), against a budget of about 0.4 µs,
// and relayed at 0.16–0.30× and 0.15–0.25× the in-memory rate; a plain
// append-only log of binary records cost about 0.3 µs. The retained events
// are in memory anyway (subscribers read them at memory speed), so what the
// disk has to do is append a log and delete its old files, and retention by
// deleting whole files needs no compaction.
//
// # Sync policies
//
//   - SyncBatch (the default): changes are written to the kernel as they
//     come (an Append returns once written) and fsynced at least every
//     SyncInterval (100 ms); Sync, which RELP and VMMON call before they
//     acknowledge events to their sender, fsyncs at once, sharing the
//     fsync with every caller waiting then (group commit). A process kill
//     loses nothing an Append returned for; a power loss loses at most the
//     last interval, and nothing acknowledged to a RELP sender or a z/VM
//     agent.
//   - SyncAlways: every Append, AppendMarked and SetPosition returns once
//     fsynced (appends that come together share one fsync).
//   - SyncOS: written as they come, fsynced only at Close and as a
//     segment fills (below): otherwise the kernel decides (its dirty-page
//     writeback, about 30 s on Linux by default). A process kill loses
//     nothing written; a power loss may lose much.
//
// A subscriber may be sent an event before it is on disk (events become
// readable when appended, as in memstore): if the region then dies before
// the write, the sender was not acknowledged, sends the event again (RELP
// does), and the subscriber sees it twice with two IDs. IDs assigned after
// a restart are after every ID assigned before it, as long as the clock
// does not go back across the restart.
//
// The journal holds two spare descriptors (fdReserve) for the segments it
// starts while it runs, and keeps its directory open for the syncs. A
// region with thousands of connections may run out of descriptors; the
// journal then starts its segment with a spare instead of failing, and
// takes the spare back when it closes the segment written full.
//
// A write or fsync that fails stops the store: it refuses every change
// after it and reports itself degraded (store.HealthReporter), because
// after a failed fsync the kernel may have dropped the data it could not
// write, and acknowledging more would be a lie. The region must be
// restarted once the disk is fixed; the journal then replays what reached
// it.
//
// # Files
//
// Dir holds LOCK (flock-ed by the process that has the store open, holding
// its process ID: a second region on the same directory is refused),
// status.journal (the status records: see Status records below) and
// journal/, the segment files, named by number in 16 hex digits
// (0000000000000001.seg, …). A segment starts with the 8 bytes
// "ZBRJNL\x00\x01" (format name and version) and a checkpoint record
// (the whole state but the events: the born ID, newest ID and trimmed ID,
// every durable position and every consumer group with its pending
// entries), then records:
//
//	u32 payload length, little-endian
//	u32 CRC-32C (Castagnoli) of the kind byte and the payload
//	u8  kind: 1 events, 2 position, 3 trim, 4 group created,
//	        5 group delivery, 6 group acknowledgement, 7 checkpoint,
//	        8 group deleted (nothing read it for GroupTTL; a version
//	        before this kind takes a segment holding one for damage)
//	    payload: unsigned varints for numbers and IDs (ms, seq), times as
//	    Unix seconds (signed varint) and nanoseconds, length-prefixed
//	    strings; an event's Text that is a part of its Raw (as the syslog
//	    parser makes it) is written as an offset and length into Raw; an
//	    event's structured data (protocol.Event.SD), when it has any,
//	    follows its strings, flagged in its flags byte: the elements in
//	    order, each its SD-ID and its parameters in order. An event
//	    without is written as before structured data was kept, so that
//	    journals written before replay (testdata/journal-before-sd)
//	u8  kind 255: a sync mark, which is not a change (see Sync marks)
//
// An events record carries its events with their IDs, and the position it
// moves with them (AppendMarked: VMMON's spool mark), so that the two are
// kept together or not at all; Append splits a batch of more than 64 MiB
// (by protocol.Event.Size) or 167,772 events, and AppendMarked refuses
// more events than that (VMMON sends at most 1000), so that a record's
// events cost at most about 64 MiB of memory when replayed.
// A new segment starts when the records after the newest checkpoint reach
// SegmentSize (64 MiB; the checkpoint is not counted, so a big state does
// not make every change start one), and at every Open; the magic and the
// checkpoint go out in one write, and the segment before is fsynced first,
// under every policy, so that only the newest segment can end torn. The
// appends wait for that fsync, and it takes as long as the data it still
// has to write (~35 ms for a 64 MiB segment written at 100 MB/s and not
// synced before, the tail of the relay's latency); so under SyncBatch and
// SyncOS the flusher also syncs the segment being filled each time a 32nd
// of its size has been written to it (the presync), while appends go on,
// and the fsync that seals it finds little left (under 2 ms). A
// segment is deleted when a trim that is kept covers every event in it and
// the checkpoint opening the next one is kept; a segment whose file cannot
// be removed stays, with the ones after it. So the directory holds the
// retained events plus about one segment.
//
// # Sync marks
//
// Each time an fsync of the segment being written returns (a commit
// under SyncAlways, Sync, the flusher's syncs and presyncs, Close), the
// journal appends a sync mark to it, kind 255: not a change, but the note
// that the segment's bytes before an offset were then on stable storage.
// Its payload is that offset and the mark's own, as unsigned varints. A
// mark is written only when records were written since the last one, and
// is itself synced by the next sync (Close syncs once more for it); a mark
// lost with a power loss only leaves the records before it unmarked.
// Marks are counted towards SegmentSize. A version before sync marks
// refuses a journal that has them (a record kind it does not know:
// ErrCorrupt, nothing changed).
//
// # Replay, torn writes and damage
//
// Open replays the segments oldest first, each opening checkpoint
// included (it repeats what the replay built, or restores it when an older
// file is missing), then fsyncs what it replayed and the directory before
// it starts a new segment. It reads a segment a record at a time, holding
// one record, not the file; a record over 1 MiB has its checksum checked
// reading the file before it is read into memory, so that a damaged
// length or a sparse file costs nothing. An events record that counts
// more events than a record holds is damage found before any is
// allocated; one whose IDs do not rise, as they decode (they are
// allocated 1024 at a time).
//
// A record of the newest segment that is cut short or fails its checksum,
// and that no sync mark after it says was synced, is a write torn by a
// crash or power loss (under SyncBatch, pages of the unsynced end may
// reach the disk out of order, so whole records may follow it): it is cut
// off with everything after it, and a segment holding nothing whole (but
// its header) is moved aside. The bytes cut are kept beside the segment,
// in journal/NNN.seg.torn (NNN.seg.torn.2, … when one is there already),
// synced, and the cut is logged with the file, offset and where its bytes
// are (OpenInfo.CutBytes and TornFiles). What they held was never
// acknowledged under SyncAlways or SyncBatch (under SyncOS it may have
// been); they may be deleted. A record that no sync mark on disk covers
// (written since the last sync whose mark reached the disk: after a clean
// Close, none) cannot be told from a torn write: damage there is cut as
// one, and what was cut is in the .torn file.
//
// Anything else is damage, not a torn write: that record with a sync mark
// after it saying it was synced (bit rot, a disk that lost a write it had
// confirmed, or a hand in the directory), a torn record in an older
// segment, or a record that checks out but does not decode or apply. Open
// then fails with ErrCorrupt naming the file and offset, and changes
// nothing, for an operator to decide. (A record whose length was damaged
// hides where the next one starts, so Open looks for a sync mark at every
// offset after it; a mark counts only at the offset it names, so the bytes
// of a mark inside an event's data would have to name the offset they
// land at.)
//
// The region then does not start (zbridge region exits with status 1,
// printing the error, and again at each restart). RELP senders and z/VM
// agents keep what was not acknowledged to them and send it once it is
// back (syslog over TCP or UDP sent meanwhile is lost). To start it with everything before
// the damage: copy the data directory first; keep the damaged file's bytes
// from the offset on (tail -c +$((OFFSET+1)) FILE > FILE.damaged: a name
// not ending in .seg, which Open passes over) and cut it there (truncate
// -s OFFSET FILE), or, at offset 8
// (the checkpoint that opens the segment), move the whole file out of
// journal/. Open then replays the rest, and what is lost is what the file
// held after the offset: its events, and changes of positions and groups
// that the checkpoint opening the next segment does not repeat (with no
// next segment, those of the file; at offset 8 with no segment before it,
// every position and group). Or move the whole directory aside and start
// on an empty one.
//
// Backing up: stop the region (or copy while it runs: segments and the
// status journal are only appended and deleted, and a copy whose newest
// segment or status journal ends mid-record opens like a crash) and copy
// Dir. Sessions are not kept: they are this process's connections.
//
// # Status records
//
// The availability ledger's records (store.Ledger) are not changes of the
// event stream: the event retention must never take them, and deleting
// whole segments would. So they are kept in a file of their own,
// Dir/status.journal, and in memory as memstore keeps them
// (MaxStatusRecords bounds the memory: beyond it the oldest are dropped,
// counted in StatusStats). A checkpoint does not carry them: a million
// records in every segment's checkpoint would cost more than the events.
// The file starts with the 8 bytes "ZBRSTS\x00\x01", then records framed
// as in the segments (u32 length, u32 CRC-32C of the kind byte and the
// payload, u8 kind):
//
//	kind 1, records: an unsigned varint count, then each record: its Seq,
//	        component, status, time (as above), change, rule, event ID and
//	        detail (strings length-prefixed). One AppendStatus is one
//	        record, or several when its records pass 16 MiB.
//	kind 2, mark: the newest Seq when the store was opened. Open writes
//	        it after the replay, and syncs it, before any record of its own.
//
// Records are encoded under the ledger's lock, so the file is in Seq
// order, and written and synced outside it as the segments are, under the
// same policy: AppendStatus returns once its records are fsynced under
// SyncAlways; once written under SyncBatch, fsynced by the flusher within
// SyncInterval or at once by Sync; once written under SyncOS. A write or
// fsync that fails stops the whole store, as above.
//
// Open reads the status journal before it replays the segments, and
// changes it only after both replays succeeded. A record cut short or
// failing its checksum after the last mark was written by the last run,
// and never made whole: a torn write, cut off with everything after it
// (under SyncBatch pages of the unsynced tail may reach the disk out of
// order, so whole records may follow it), its bytes kept in
// status.journal.torn (.torn.2, …) as the segments' are, and logged. The
// same before
// the last mark is damage, since the Open that wrote the mark had found
// the file whole and synced it; so is a record that checks out but does
// not decode, whose Seqs do not rise, or a mark that disagrees with the
// records before it. Open then fails with ErrCorrupt naming the file and
// offset, and changes nothing. (A record whose length was damaged hides
// where the next one starts, so Open looks for a mark after the bad
// record at every offset: a mark is a whole record whose checksum holds.)
// Seqs go on after the last record kept. Records are not validated again
// when replayed: a later version may validate more strictly.
//
// A directory without status.journal (written by a version before status
// records) opens with none, and the file is created. Versions before it
// read only journal/ and LOCK, so they open a directory that has one and
// leave the file alone. An Open that finds at least as many records
// dropped (beyond MaxStatusRecords) as kept writes the file anew with the
// kept ones: to status.journal.tmp, synced, then renamed over it; a
// status.journal.tmp left by a crash is deleted at Open. Between such
// Opens the file grows by each record (about 40 bytes and its strings).
//
// # Goroutines
//
// Open starts one: the flusher, which writes and (but for SyncOS) syncs
// the segments and the status journal every SyncInterval and deletes the
// segments retention emptied; Close
// stops it and waits for it. memstore's age trimmer runs when MaxAge is
// set, owned by the memstore. Writes and fsyncs otherwise run on the
// goroutines of the callers waiting for them (Append, Sync).
package diskstore
