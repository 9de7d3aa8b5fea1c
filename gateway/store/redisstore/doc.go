// Package redisstore is the Redis implementation of store.Store, for
// regions that share state or whose state must outlive them. It needs Redis
// 7.0 or later, and works with a single server, Sentinel and Cluster alike
// through a redis.UniversalClient (see ParseURL).
//
// # Keys
//
// Every key is "{prefix}:..." (prefix "zbridge" by default; see Key). The
// braces are a Redis Cluster hash tag: all of a prefix's keys live in one
// hash slot, on one node, which the scripts and transactions below need.
// That costs no spreading, as the event stream, the bulk of the data, is a
// single key anyway. Other parts of the region use the same convention
// ({zbridge}:region:..., {zbridge}:agent:..., {zbridge}:inbox:...).
//
//	{p}:events          the event stream (a Redis Stream); each entry has one
//	                    field, "e", holding the event's JSON; the entry ID is
//	                    the event ID (its "id" in the JSON is not used)
//	{p}:born            the ID before which the stream has nothing: Redis's
//	                    clock when a Store first looked at it, or just before
//	                    its first entry if that is earlier
//	{p}:trimmed         the newest ID retention removed
//	{p}:writer:W        one Store's records of the batches it wrote (a hash
//	                    of batch number to the batch's first ID, the newest
//	                    4096 kept, expiring a day after its last write)
//	{p}:session:ID      one session's JSON, expiring after SessionTTL
//	{p}:sessions        the index of session IDs (a sorted set)
//	{p}:position:NAME   a durable subscription's position ("MS-SEQ")
//	{p}:groups          each consumer group's last read, by Redis's clock
//	                    in ms (a sorted set), for GroupTTL
//	{p}:groupreads:G    group G's read records (groupReadScript), expiring a
//	                    day after its last read
//	{p}:status          the status records (store.Ledger; a Redis Stream):
//	                    entry ID SEQ-0, one field, "r", holding the
//	                    record's JSON (its "seq" in the JSON is not used)
//	{p}:status:writer:W one Store's records of its AppendStatus calls (a
//	                    hash of call number to first Seq, the newest 4096
//	                    kept, expiring a day after its last write)
//
// Consumer groups are the event stream's own Redis consumer groups.
//
// # Events
//
// Event IDs are the stream's entry IDs, given by Redis (XADD *): several
// regions appending to one stream get one global order. Append writes each
// batch (up to 1024 events or about 4 MiB) in one round trip, as one
// transaction (MULTI/EXEC), so a batch is contiguous in the stream: a short
// script that adds the first event, answers the entry before the batch and
// records the batch's number for this Store, then a plain XADD for each
// other event. Redis spends about half as much CPU on that as on one
// script calling XADD once per event, the bound on how fast a region can
// relay events to Redis.
//
// A batch is written twice neither by go-redis nor by the Store. go-redis
// sends a transaction again only if writing it failed, before Redis had
// all of it (Redis drops a transaction whose connection closes before
// EXEC); an error reading the reply is returned as it is. The Store then
// keeps the batch in its write buffer (see Degraded mode), and the
// flusher writes buffered batches with another script, which looks for the
// batch's record first: a batch written after all, its reply lost, is
// found there and not written again.
//
// Retention is applied by the same scripts. MaxEvents, and MaxBytes turned
// into a count by the mean protocol.Event.Size this process has seen (so
// approximate), let the stream grow to the limit plus a slack (1/16 of it,
// 64 to 1024 entries), then remove the oldest entries down to the limit;
// MaxAge removes entries older than that by their IDs. The newest ID
// removed is kept in {p}:trimmed: a Read after an older ID reports a Gap
// through it. (Redis's own max-deleted-entry-id is not moved by trimming;
// to learn that ID without reading every entry removed, the script trims
// to one entry more than the limit, reads the oldest entry left, and then
// removes it.)
// A Read after an ID older than {p}:born reports a Gap too: that position
// came from a stream that is gone. Stats come from XINFO STREAM; Bytes is
// Count times the mean event size, an estimate.
//
// # The tail cache
//
// A Store does not hold a Redis connection per reader. One goroutine, the
// tail, follows the stream with blocking XREADs (TailBlock, a few thousand
// entries at a time) and keeps the newest part of it in memory: a
// contiguous run of the stream, bounded by CacheEvents and CacheBytes (and
// never more than retention keeps), trimmed from the old end. A Read after
// an ID inside the run is served from memory without a round trip, which is
// what makes fanning events out to many subscribers cheap; other Reads use
// XRANGE. Wait waits on the cache, woken as it grows. The events a Store
// appends go into its cache at once when they directly follow the run (the
// append reports the entry before the batch); when another region wrote in
// between, the tail brings them within a round trip, so with other writers
// a Read may show a Store's own append a moment late. After a read that
// brought only the Store's own appends, already cached, the tail asks for
// one entry at a time, as a wake-up, until a read brings something new:
// Redis does not send back every event the Store writes.
//
// Before each read the tail looks at {p}:trimmed: if retention (another
// region's, which may keep less than this one) removed entries after the
// cache's newest before the tail fetched them, the cache starts again after
// the last one removed (logged, Counters().Behind), so that readers in the
// old run read from Redis and are told of the gap rather than pass over it.
//
// # Degraded mode
//
// Redis down or restarting neither stops nor wedges the region. New does
// not fail when Redis is unreachable (it tries once, for up to 5 seconds,
// to look at the stream), and an Append, or the tail, that cannot reach
// Redis makes the Store degraded (Health reports it). It then
// accepts appends with provisional IDs of its own, rising, after the newest
// it knows, the milliseconds from its clock; puts them in the tail cache,
// so that the region's live readers go on receiving them; and keeps them in
// a write buffer bounded by BufferEvents and BufferBytes. When the buffer
// is full, Append drops the batch, returns ErrBufferFull and counts it in
// Health().Dropped. Reads inside the cache keep working; reads that need
// Redis fail, and the subscriber ends with its resume point.
//
// A background flusher retries with backoff. When Redis answers it writes
// the buffer in order, several batches per round trip, each with its
// provisional IDs, so that the IDs readers saw stay true, and only when the
// buffer is empty does the Store leave degraded mode and the tail go on
// from the cache's newest entry. The limits:
//
//   - A batch whose write was in flight when Redis went away may have been
//     written; its record tells, and it is not written twice. It keeps the
//     IDs Redis gave it, which differ from the provisional ones live readers
//     saw (Counters().Reconciled counts such events).
//   - If another region wrote while this one could not (Redis reachable from
//     there), provisional IDs can fall at or below the stream's top: Redis
//     refuses them and the events get new IDs (Counters().Fallbacks; logged).
//     Live readers may then receive those events twice, under both IDs, and
//     miss the other region's events written during the outage with IDs
//     below the provisional ones they had passed.
//   - After either, the cache keeps only what is known to match Redis, and
//     the tail fetches the rest.
//   - Provisional IDs are given only once no append of the Store is in
//     flight any more (Append waits for those, which go-redis may retry on
//     a Redis already back): they come after every ID Redis gave it. If the
//     cache then lacks some of the Store's own appends (the tail was still
//     fetching them), buffered events are not put in the cache: live
//     readers receive them, after those, when Redis is back.
//   - The buffer lives in memory: events buffered when the Store is closed,
//     or the process ends, are lost (Close logs how many). So Sync
//     (store.Syncer) fails, at once, while events appended before it are
//     held only there: servers that acknowledge events to their senders
//     (RELP, VMMON) then acknowledge nothing, and the senders keep the
//     events and send them again. While the flusher writes the buffer to a
//     Redis that answers, Sync waits for it to write them. An append that
//     returns with its events in Redis (and MinReplicas replicas) makes
//     Sync return nil at once.
//   - Session and position writes and group reads are not buffered: they
//     fail while Redis is unreachable (the position of an AppendMarked
//     with events is buffered with them and written with them). A session
//     put then is written by the Store's heartbeat once Redis is back.
//
// Redis restarting empty (no persistence), or a failover to a replica that
// lagged, makes the stream go back: the Store logs a warning and starts its
// tail again from the stream as it is. If {p}:born was lost too, it is set
// anew, so that readers resuming from before are told that they missed
// events.
//
// # Sessions
//
// A session record expires after SessionTTL unless refreshed; the Store
// that put it refreshes it (and its index entry) every SessionTTL/3 until
// DeleteSession or Close, and writes it again if Redis lost it. A region
// that dies has its sessions expire; Sessions lists the live ones and drops
// expired ones from the index.
//
// # Positions and groups
//
// SetPosition is a script that compares IDs as numbers, so a position
// never moves backwards. AppendMarked (store.MarkedAppender) runs the same
// script in the transaction that writes the events, after them (the last
// part's, for a batch written in parts; in appendScript for a buffered
// batch, also when the batch is found written already): a crash of the
// region leaves both done or neither. It does not check the position
// first. GroupRead creates the group on first use (XGROUP CREATE MKSTREAM,
// at $ for a zero start), claims entries idle for claimAfter (XAUTOCLAIM,
// idle time by Redis's clock; entries retention removed leave the pending
// list) and then reads new ones (XREADGROUP, without blocking: callers
// Wait on the last ID), both in one script. A read delivers as it is
// done, not as its reply arrives: one whose reply was lost, and that
// go-redis sent again (as it does after a timeout, a Cluster client a
// whole pipeline), would leave its entries pending for a consumer that
// never saw them, until claimAfter. So the script records, for each
// consumer, a token of the call and the IDs it answered, and a call with
// the same token (sent again by go-redis, or by the consumer's next
// GroupRead after an error) gets those entries again. A token names the
// Store and numbers its calls: an attempt that reaches Redis only after
// the consumer's next call (go-redis gave up on it while it was on the
// way) finds a later token of its Store recorded and takes nothing, as
// nobody reads its reply. Each subscriber
// session is a Redis consumer; consumers with nothing pending and idle for
// a day are deleted, with their records. GroupAck is a script that
// acknowledges (XACK) only the IDs XPENDING lists for the consumer
// acknowledging: an entry another consumer claimed is left to it.
//
// What a group holds is bounded as store.Store says. Every GroupSweep
// (a minute) each Store sweeps the groups, in a goroutine of its own that
// Close stops and waits for: it acknowledges, in every
// group, the entries of events retention removed (XPENDING up to
// {p}:trimmed, then XACK; Redis itself drops such an entry only when
// XAUTOCLAIM passes over it), and destroys (XGROUP DESTROY, with its read
// records) every group whose last read, in {p}:groups, is older than
// GroupTTL (7 days). A read costs what it returns: XAUTOCLAIM's scan of
// the pending list is bounded by its count (ten times it, claimRounds
// calls at most), and an acknowledgement is an XPENDING and an XACK per
// ID.
//
// # Status records
//
// The availability ledger's records (store.Ledger) are a stream of their
// own, {p}:status, which no retention trims (no MAXLEN, no MINID): the
// records stay until an operator removes the key. Each record's Seq is its
// entry's ID, SEQ-0, so StatusRecords is an XRANGE from (after+1)-0, in
// pages of 4096. AppendStatus is one script: it takes the stream's last
// generated ID (XINFO STREAM; it stays when an entry is deleted) and adds
// the records under the IDs after it, so that regions appending at once get
// distinct Seqs, each call's consecutive, in stream order (a call of more
// than 1024 records is written in parts, one script each). The script
// records the call's number for the Store, as an append does its batch's,
// so that a call go-redis sends again after losing its reply adds nothing
// twice. With MinReplicas, AppendStatus waits for the replicas as an
// append does (WAIT), and fails if they do not acknowledge in time.
//
// Status records are not buffered: while the Store is degraded both calls
// fail at once with an error wrapping ErrUnavailable, and the ledger tries
// again later. So an error may leave the records written (the reply or
// the replicas' acknowledgement was lost); a caller trying again may then
// store them twice, under two Seqs: two records of one component with
// the same status in a row, which a report should read as one change. A failover to a replica that
// lacked the newest records (MinReplicas 0) loses them, and the next
// records take their Seqs again.
//
// # Sentinel and Cluster
//
// ParseURL makes a Sentinel failover client for a URL with master=NAME and
// a Cluster client for one with several addresses (or cluster=1); the
// Store works alike on both. Its tests run the conformance suite on a real
// Sentinel set-up (a master, two replicas, three Sentinels) and a real
// three-master Cluster, and kill the master under a stream of appends.
//
// In a Cluster, every key of a prefix is in one hash slot (the braces of
// Key), so the scripts and transactions above, which take several keys,
// and the blocking XREADs of the tail all go to the master that owns the
// slot; keys are the same as on a single server. One prefix therefore does
// not spread load over the cluster; installations that need more than one
// node's throughput can give groups of regions their own prefixes. The
// Store uses neither pub/sub nor SCAN (nor does package cluster), which a
// Cluster would need sent to every master.
//
// # Replicas and failover
//
// Redis replicates asynchronously: a master that fails before its
// replicas got a write loses it when a replica is promoted. So with
// Config.MinReplicas (min_replicas=N in the URL: 1 by default for a
// Sentinel URL, 0 for others) the transaction of each append is followed,
// on the same connection to the master (in a Cluster, the master of the
// prefix's slot), by WAIT N ReplicaTimeout, and the append counts as
// written only once N replicas acknowledged it. Otherwise (the master
// died in the middle, or the replicas did not answer within
// ReplicaTimeout, replica_timeout in the URL, 2s by default) the Store
// treats Redis as unreachable: the batch goes to the write buffer, with
// provisional IDs, and the flusher writes the buffer again, each round
// trip followed by its own WAIT, the batches leaving the buffer only once
// acknowledged. A batch the new master has (its write was replicated but
// its reply lost) is found by its record and not added twice; one it
// lacks is written. Sentinel promotes the replica with the most data, so
// every append that returned nil is in the stream after a failover, once
// and in its place. A consumer group's creation waits for the replicas
// too (a group lost in a failover would come back at the stream's end).
//
// A failover is thus a short outage (Degraded mode above): the master
// killed, the Store is degraded and buffers appends until Sentinel has
// promoted a replica (a few seconds) and go-redis's failover client
// reaches it. What does not wait for replicas can be lost in a failover:
// positions (a durable subscription then resumes a little earlier and
// receives events again), group deliveries and acknowledgements (events
// delivered again), and session records (written again by the Store's
// heartbeat). A live reader may also receive events again across a
// failover: the tail may have read, from the old master, entries of other
// writers (or of this Store's append in flight) that no replica had. Each
// event is delivered at least once, in order, with one known exception: a
// batch that the master took but whose WAIT failed as the Store went
// degraded is found already written when it recovers, under IDs that a
// live reader (one not resuming from a position) may already have passed;
// the Store logs "… written after all …" and counts them in
// Counters().Reconciled. Redis holds them, and a durable subscription or
// group resuming from its position gets them; a live reader may not. The
// fix, not made yet, is to show such a batch to readers under the IDs
// Redis gave it and to hold only its acknowledgement for the replicas.
//
// With MinReplicas 1, a Sentinel deployment needs two replicas for
// appends to go on being acknowledged after one failover (the new master
// then has the other); with one, appends are buffered until the old
// master is back as a replica, or the buffer fills. Give min_replicas=0
// for a master without replicas.
package redisstore
