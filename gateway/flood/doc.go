// Package flood is the region's per-source flood control: a [Limiter] sits
// between the syslog intake (SYSLOG over TCP, TLS and UDP, and RELP) and
// the event store, lets each source's events through within a token-bucket
// limit, holds back the rest, and for every source that had events held
// back appends one summary event per interval saying how many, which
// message IDs, and the first and last text held back. It never closes a
// connection, never slows a sender and never drops an event without
// counting it: every event of an Append that succeeds is either passed on
// to the store or counted in exactly one summary (an Append that fails
// counts nothing: see Summaries).
//
// Why: OPS/MVS, the automation product zbridge's clients are modelled on,
// protects itself from a flood by shutting its whole interface down when
// events exceed a rate (LXCONMAX, 1000/s by default), so one runaway Linux
// guest silences automation for every system. The region absorbs the flood
// at the source that started it instead, and the other sources keep
// flowing.
//
// # The key: who is a source
//
// A syslog sender authenticates with nothing but its address (a TLS client
// certificate aside); the HOSTNAME in its messages is claimed, not proven.
// So a source is the pair (sender address, claimed host name): Origin.Addr
// and Origin.Host of the event. The address is in the key so that a sender
// cannot drain another host's bucket by claiming its name from elsewhere;
// the host is in the key so that a relay (an rsyslog forwarding a whole
// site from one address) has a bucket for each host behind it. A sender
// that rotates host names to get a fresh bucket for each does not escape
// the limit: an address has at most MaxHostsPerAddr host buckets (256 by
// default, forgotten when idle), and its further host names share one
// overflow bucket, shown as host "*" in summaries and metrics; and all
// the sources of an address share one more bucket, the address's
// (AddrRate and AddrBurst), so that what one sender gets out of rotating
// names is the address's limit, not MaxHostsPerAddr times the source's.
//
// For these limits (and the table's fair share: see Memory and cost) an
// IPv6 address counts as its /64, which one host or site usually holds
// whole, as the region's logon throttle counts it: a sender with a /64
// gets one host limit and one address bucket, not one for each of its
// addresses. Its sources keep their own addresses; its overflow source is
// shown with the /64 ("2001:db8::/64"; the summary's Origin.Addr is the
// /64's address, 2001:db8::, so that a filter on the /64 matches it).
//
// A claimed host name is kept (as a key, and in summaries) up to 255
// bytes, RFC 5424's longest HOSTNAME, and a message ID up to 48, its
// longest APP-NAME (the limiter does not rely on the parser to enforce
// either); names that share their first 255 (48) bytes share a bucket,
// and what is kept is a copy, so that it does not keep the event's
// memory alive.
//
// Within a source, each message ID has a bucket too (MsgIDRate and
// MsgIDBurst), so that one runaway message (a kernel driver repeating an
// error) is held back while the host's other messages still get through.
// The "message ID" is the RFC 5424 MSGID, or, when the message has none
// (RFC 3164, and most RFC 5424 senders, which write "-"), its APP-NAME
// (the tag: "sshd", "kernel"). A source tracks at most MaxMsgIDs of them
// (16); further IDs share one bucket, shown as "*". An event passes when
// its message ID's bucket, its source's and its address's all hold a
// token, and then takes one from each; an event held back takes none, so
// a runaway message ID does not use up its host's bucket, and a flooding
// host held at its own limit does not use up its address's.
//
// # Forged addresses (UDP)
//
// A TCP, TLS or RELP sender's address is proven by the handshake; a UDP
// datagram's source address can be forged by anyone who can reach the
// port without ingress filtering. A forger can therefore (1) send in the
// name and address of a real host, using up that source's bucket, so that
// the real host's events (over any transport) are held back and
// summarised — not lost, but delayed into a summary; and (2) rotate forged
// addresses to get a fresh bucket for each. Each forged address takes its
// fair share of the table, which, with the table full, moves the host
// names of the addresses with the most sources (a relay's) into their
// address's overflow bucket (see Memory and cost); once the table holds
// about MaxSources (8192) addresses with one source each, what comes from
// further addresses shares one overflow bucket, shown as address "*" and
// host "*". Neither lets a forger silence anything without it being
// counted and summarised. Where that matters, turn UDP off (--syslog-udp
// "") or filter forged sources at the network edge (BCP 38), and have
// senders use TCP, TLS or RELP.
//
// # Limits and why these defaults
//
// Per source: Rate 1000 events/s sustained with a Burst of 2000. Per
// (source, message ID): MsgIDRate 500/s with a MsgIDBurst of 1000. Per
// address: AddrRate 4000/s with an AddrBurst of 8000. A Linux
// host at its busiest (booting, a service restarting in a loop) logs a few
// hundred messages a second for a few seconds, and its own log daemons cap
// what one service may send: rsyslog's imuxsock 200 messages in 5 s per
// process, journald 10,000 in 30 s per service (333/s on average). So no
// normal host reaches 1000/s sustained, nor one of its services 500/s, and
// a boot's few thousand lines over several seconds fit in the bursts and
// the refill. The bursts are no larger because what a burst lets through
// reaches every subscriber at once, ahead of the other sources' events: a
// burst of 1000 events delays them by the time a subscriber takes to read
// 1000 events. In TestFlood (cmd/zbridge: one host at 50,000/s, ten at
// 10/s, 2 vCPUs) the quiet hosts' p99 latency was 70-80 ms with bursts of
// 10,000 and 5000, and 4-7 ms with 2000 and 1000.
//
// The address's limit is four sources' worth. It must let a relay through
// (an rsyslog forwarding a site from one address): a few of its hosts busy
// at once (booting, restarting a service in a loop), each at up to the
// source limit, with the site's hundreds of quiet hosts at their few a
// second beside them; and a flood held at its own source's limit must
// leave room for its address's other hosts (in TestFlood the flooder and
// the ten quiet hosts all come from 127.0.0.1: 1000/s held plus 100/s
// quiet, well under 4000). It must also stay a small multiple of the
// source's, as the point of it is that one sender rotating host names
// gets 4 times a source's limit instead of 256 times (256,000/s, with
// 512,000 at once). A relay that forwards more than 4000/s sustained from
// a site needs --flood-addr-rate raised, or 0 (no per-address limit).
//
// Relaying to OPS/MVS, set the limits so that the floods you expect at
// once stay under its LXCONMAX. Rate, MsgIDRate or AddrRate 0 turns that
// limit off; Rate and MsgIDRate both 0 turn flood control off (the
// address's limit only bounds what an address gets out of the others).
//
// A sender replaying a backlog (rsyslog's queue after the region was
// away) is a flood by arrival rate too: what it replays beyond the limits
// is summarised, not stored, even over RELP. Where every message of such a
// replay must be stored, raise the bursts or turn flood control off.
//
// # Summaries
//
// Every Interval (10 s) the limiter appends, for each source that had
// events held back since the last summary, one event: Source region, MsgID
// ZBR101E, severity warning, facility syslog, Origin the source (System and
// Host its claimed host, Addr its address), so that a subscriber filtering
// on that origin sees it. Its text starts with the message ID, as z/OS
// messages do, and says how many events were held back and over what
// time, the limits, how many each limit held back (BY LIMIT: when several
// buckets were empty, the narrowest is named, message ID before host
// before address, so ADDRESS counts the events that only their address's
// limit held back: a quiet host's events held back because another host
// at its address took the address's tokens), the message IDs held back
// most with their counts, and the first and last text held back (each cut
// to 120 bytes, quoted as Go quotes strings); a claimed name or ID that is
// not plain printable ASCII is quoted too, so nothing a sender claims can
// change how it reads, and every name is at most 255 bytes before quoting:
//
//	ZBR101E FLOOD CONTROL HELD BACK 48211 EVENTS FROM web1 AT 10.1.2.3 BETWEEN 12:00:00.125 AND 12:00:09.980 UTC (LIMITS 1000/S BURST 2000 PER HOST, 500/S BURST 1000 PER MESSAGE ID, 4000/S BURST 8000 PER ADDRESS); BY LIMIT HOST=8211 MESSAGE-ID=40000; TOP IDS sshd=40000 kernel=8211; FIRST "Failed password for root from 192.0.2.7 port 4711 ssh2"; LAST "Failed password for admin from 192.0.2.9 port 5012 ssh2"
//
// The count after HELD BACK is exact, per Append that succeeded: over a
// run, the events of a source passed on plus the counts of its summaries
// are what it sent in Appends that returned nil. The events an Append
// holds back are counted only once Next has taken the others; when Next
// fails, Append returns its error and counts nothing of the batch (and
// gives back the tokens its events took): the caller still has the whole
// batch to account for. SYSLOG counts it as an append error; RELP does not
// acknowledge it, the sender sends it again, and that Append is the only
// one that counts it. (A batch Append took whose caller failed afterwards
// — RELP's sync of the store — and that the sender sent again is counted
// again, as the store stores its events again.) A summary the store fails
// to take is kept and appended with the next one (up to 4096 of them;
// beyond, the oldest are dropped and logged).
//
// [Limiter.Close] appends the last summaries: the region closes the
// limiter after SYSLOG and RELP have drained into it and before the store
// closes. Close first waits for the Appends in progress (their events held
// back are counted when their Next returns), then stops the flusher (a
// Flush in progress has Interval at most), then flushes with the ctx it
// is given, as it is: a ctx already done makes a store refuse the last
// summaries, so give Close one with time of its own (the region gives it
// 5 s, whatever its Shutdown's ctx has left). When that Flush fails, Close
// returns its error and the summaries stay pending; Flush may be called
// again to retry.
//
// RELP: an event held back is still acknowledged to the sender (it is
// accounted for in a summary, and sending it again would only add to the
// flood). The summary is in memory until it is appended: a region that
// crashes before the next interval loses that summary (the events held
// back were never going to be stored).
//
// # Memory and cost
//
// The table of sources is bounded: at most about MaxSources sources (in 16
// shards of MaxSources/16), each with a host name of at most 255 bytes, at
// most MaxMsgIDs+1 message-ID buckets with IDs of at most 48 bytes, and
// two 120-byte texts, and an address entry for each address with sources;
// so its memory does not grow with what senders claim. A source or
// message ID idle for IdleTimeout (10 minutes, and at least the time its
// bucket and its address's take to refill) with nothing to summarise is
// forgotten at the next interval, and an address with it when it was the
// address's last source.
//
// When a shard is full, one of its 8 least recently used sources with
// nothing to summarise makes room. When none can, the table is shared
// out among the addresses (max-min): a host source of the address with
// the most host sources in the shard makes room, if that address has at
// least two more than the new source's has without it, after its summary
// is taken (appended at the next interval, on its own, so that a source
// made again may have two; when a shard has as many such summaries
// waiting as it holds sources, the counts of a further one go to the
// table's overflow summary instead, so that summaries stay bounded). So
// senders at a few addresses (33 would do, 256 names each, keeping
// something held back for every one) cannot fill the table for good: a
// host at an address of its own still gets a source, and so a bucket, of
// its own. When no source can make room, a new host name shares its
// address's overflow bucket (host "*", which says so: "HOST NAMES BEYOND
// 256 OF ONE ADDRESS OR THE TABLE'S 8192"), and only when that finds no
// room either the table's overflow bucket (address "*"), until the next
// interval: a sender needs thousands of addresses (IPv6: /64s), holding a
// source or two each, before a new address shares a bucket with anyone
// else's. The
// evicted source's bucket starts full when it is made again; its
// address's bucket, which its other sources keep, still bounds them all.
//
// Append takes the clock once per call, looks each run of events from one
// source up once, and on the normal path (nothing held back) allocates
// nothing and hands the caller's slice to the store as it is: about 17-21
// ns an event on 2 vCPUs (BenchmarkAppend; TestAppendDoesNotAllocate). A
// batch with events held back is passed on in a slice from a pool, and the
// events that pass are copied (one allocation each, made with no lock
// held): the syslog parser allocates events in slabs of 128, and a stored
// event would keep its slab of held-back events alive (50 KB each; in
// TestFlood the region's heap grew by 25 MB a second before this).
// Holding an event back costs about 22 ns and no allocation: the decision,
// then the count once Next returned (the source is locked again, once a
// run, and the last text held back copied into its fixed buffer). Sources
// are spread over 16 shards by a hash of their key, each with its own
// mutex, held for at most 64 events at a time: a flooding source never
// waits for a token and never holds up another source for more than a few
// microseconds.
//
// An address's bucket is shared by its sources in every shard. Each
// source points at its address's entry, so finding it costs nothing; for
// each run of a source's events Append locks the entry once to take as
// many tokens as the run has events (or as the bucket has), decides the
// run with the shard's mutex alone, and locks the entry once more to give
// back what its events did not use (none, on the normal path), so that
// the sources of one busy relay, on many connections, wait for each other
// only for a moment (BenchmarkAppendParallel: a connection a CPU, each
// with a host of its own, all of one address). Lock order: a shard's mutex, then an address entry's; a
// shard's, then the address table's (taken only to make or forget a
// source); a shard's, then the table overflow's (to add an evicted
// source's counts to its summary). An entry's and the table's are never
// held together, no shard's is taken under either, and nothing is taken
// under the table overflow's. Append holds the limiter's gate (an
// RWMutex) for reading while it decides and, for a batch with events held
// back, until it has counted them; Close takes it for writing.
//
// # Goroutines
//
// New starts one goroutine, the flusher, which appends the summaries every
// Interval; Close stops it, waits for it, and then appends the last
// summaries itself.
package flood
