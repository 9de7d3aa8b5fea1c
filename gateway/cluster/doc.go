// Package cluster lets several regions share one Redis: each region
// announces itself and the agents it holds, and a command for a system that
// another region holds is forwarded to that region and its output streamed
// back, so that a client may send any command to any region.
//
// # Keys
//
// Every key starts with {P}, the configured prefix in braces (default
// {zbridge}). The braces make it a Redis Cluster hash tag: all the keys of
// one prefix live in one slot, so that pipelines, MGET and scripts over
// several of them work on a cluster as on a single server.
//
//	{P}:region:NAME         string, JSON Region (name, instance, addresses,
//	                        started, seen); EX TTL, rewritten every TTL/3
//	{P}:regions             sorted set of region names, score = last
//	                        announcement (Unix ms); lists regions, live or not
//	{P}:agent:KIND:NAME     string, JSON Agent with the region holding it;
//	                        EX TTL, rewritten every TTL/3 and on Touch
//	{P}:agents              sorted set of "KIND:NAME", score = last write
//	{P}:inbox:REGION        stream of requests to REGION (run, cancel);
//	                        XADD MAXLEN ~ 10000
//	{P}:command:FID         string, JSON record of a forwarded command in
//	                        flight; EX timeout + 30s; deleted when it ends
//	{P}:output:FID          stream of one forwarded command's output and
//	                        end; EXPIRE timeout + 30s; deleted when read
//
// A region is alive while its key exists. Its TTL (Config.TTL, default
// 15s) is how long a region that died without a word stays listed as alive.
// Close deletes the region's key and its agents' keys (only where they still
// name this region and this process), so peers learn at once. Index members
// not written for an hour are dropped; members whose key has expired are
// skipped when listing. Agents are listed only when their region is alive.
// Agent names of kind zvm are upper case, as VMMON keeps them.
//
// Each process has a random instance ID in its announcement. Two processes
// announcing the same region name are logged as a conflict; a region whose
// instance changes has restarted, and the commands it was running are lost.
//
// # Forwarding
//
// The executor returned by [Cluster.Executor] runs a request locally when
// the region holds the target (has(target)), when the request was forwarded
// to it (Request.Via set: a request is forwarded at most once), or when no
// live region holds the target (the local executor then answers as it
// would without a cluster, usually unknown-target). Otherwise the holder is
// found from {P}:agent:KIND:NAME (linux:ADDR= targets by the agents' Addr
// field), and the forwarding region, F, and the holder, H, exchange:
//
//  1. F picks a forwarding ID, FID = F.INSTANCE.N, and in one pipeline
//     sets {P}:command:FID and adds to {P}:inbox:H an entry type=run with
//     fid, id (the client's command ID), target, command, timeout and
//     deadline (ms), requester (the client's authenticated name), via=F,
//     instance (F's), to (H's instance, from H's announcement), sent (Unix
//     ms) and mac (see Signed entries).
//  2. H's inbox loop reads its inbox with XREAD BLOCK, from the last entry
//     present when it started (requests sent to an earlier process are not
//     run). It refuses an entry that does not verify or is not fresh (see
//     Signed entries). It does not start a run F has given up on: one
//     whose signed deadline passed more than DeadlineSkew (1s) ago by H's
//     clock, or whose cancel (step 5) H has already read: H remembers a
//     cancel for a run it has not received for MaxEntryAge, and handles
//     the cancels of one read of its inbox before the runs. Such a run is
//     logged at info, not counted as refused. A run entry whose command
//     key no longer exists is dropped too (F stopped waiting); the key's
//     presence proves nothing, since anyone who can write to Redis can
//     set it. H runs the request through Config.Run (its Router.Run) with
//     Via=F and the signed requester, under its own timeout rules, and
//     stops it, if it still runs, 2s + DeadlineSkew after its deadline,
//     when F no longer waits.
//  3. H adds to {P}:output:FID, in order, an entry type=out per piece of
//     output (stream, data, eol) and then one type=result (rc, signal,
//     truncated, duration) or type=error (code, message, retry after, and
//     the result fields): a *commands.Error keeps its code and message.
//     Every entry carries a sequence number n from 1, so that an XADD
//     retried by the client is not seen twice, and a mac.
//  4. F reads {P}:output:FID with XREAD BLOCK (at most 500ms at a time),
//     skips the entries that do not verify, calls out for each piece in
//     order, and returns the result or error.
//  5. When F's context is cancelled (the client cancelled the command or
//     went away), F adds type=cancel with fid, via=F, sent and mac to
//     {P}:inbox:H at once and returns; H cancels the run's context with
//     commands.ErrCancelled, if F is the region that forwarded it.
//     When F's deadline passes, F waits up to 2s more for H's own answer
//     (H's timer started a little later and answers timeout with H's
//     message), then cancels likewise.
//
// # Failures
//
// While waiting, F checks H's announcement every TTL/3. If H's key is gone
// or names another instance, the command fails with commands.CodeFailed
// ("region H stopped announcing while the command was in flight") instead of
// waiting until the deadline; H closing with Close writes that failure into
// the output stream itself, so F learns at once.
//
// H, in turn, checks every TTL/3 that F still waits: a run whose command
// key is gone, whose forwarding region stopped announcing or restarted, or
// for which Redis has failed for longer than Config.Timeout is cancelled, so
// that nothing runs on for a forwarder that is no longer there. F deletes
// the command key when it stops waiting; if Redis cannot be reached then,
// F's refresh loop deletes it once Redis answers again: a Redis that comes
// back with its data (a Sentinel failover to a replica, or a restart with
// an append-only file) would otherwise have H run the command on until its
// timeout, for nobody.
//
// When Redis cannot be reached, requests for local targets run as usual
// (the local check needs no Redis), and every other request fails with
// CodeFailed "cross-region routing unavailable: ..." within Config.Timeout
// (default 2s), not the command's timeout: an unreachable Redis cannot tell
// a remote target from an unknown one. A command in flight fails the same
// way once Redis has failed for Config.Timeout; H stops a run whose output it
// has not been able to write for that long. [Cluster.Health] reports the
// last round trip's error. The loops keep retrying, and once Redis answers
// again (empty, after a restart) the next refresh announces everything
// again; until each peer has, it may be logged as having stopped announcing.
//
// For Config.Timeout to bound a hung (rather than refusing) Redis, give the
// client ContextTimeoutEnabled: go-redis otherwise bounds its socket reads
// by its own ReadTimeout only.
//
// Each forwarded command in flight holds one connection of the client's
// pool in its blocking reads, on the forwarding side: size PoolSize above
// the number of commands expected in flight to other regions, plus a few
// for the loops.
//
// The package never closes the Redis client: its owner does, after Close.
//
// # Signed entries
//
// Every region holds the same cluster key (Config.Key, at least 32 bytes,
// read by LoadKey from a file only the region's user may read). Make one
// and copy it to each region's host:
//
//	(umask 077; head -c 32 /dev/urandom | base64 > cluster.key)
//
// Each inbox and output entry has a field mac: the hex HMAC-SHA256, keyed
// with the cluster key, of
//
//	lp("zbridge cluster entry v1") lp(DOMAIN) lp(STREAM)
//	u64(len(BIND)) lp(BIND[0]) ...
//	u64(number of fields) lp(NAME) lp(VALUE) ...
//
// where u64 is 8 bytes big endian, lp(s) is u64(len(s)) followed by s,
// and the fields are all the entry's fields but mac, sorted by name (a field
// name written twice counts once, as Redis clients read it). DOMAIN is
// "inbox" or "output"; STREAM the full key of the stream the entry is in;
// BIND is empty for inbox entries and, for output entries, the holder's
// region name and the client's command ID, which the reader knows without
// the entry. An entry is thus bound to its stream (an inbox to its region,
// an output stream to its forwarded command, FID, which names F and its
// process), to its fields, all of them, and output entries to their holder,
// command and place in the sequence (n).
//
// H refuses an inbox entry whose mac does not verify (hmac.Equal); that
// says it comes from H itself (via=H); whose sent time is more than
// MaxEntryAge (2 minutes) from H's clock, either way; a run entry for
// another process of H (to is not H's instance: a replay into a restarted
// region); a run entry whose FID H already received in that window (a
// replay); and a cancel entry from a region other than the one that
// forwarded the run. Nothing is run or cancelled for such an entry and
// nothing is written to its output stream. F skips an output entry whose
// mac does not verify and goes on waiting for the genuine one. Either way
// the region counts it in [Cluster.RejectedEntries] and logs a warning with
// the entry's claimed fields, command text included, each cut to its first
// 200 bytes and its length (never the key or the mac): one a minute at
// most, with the number refused and not logged since the last (unlogged),
// so that junk written to the streams cannot flood the log. Regions' clocks must agree within
// MaxEntryAge (run NTP): a region whose clock is off has its forwarded
// commands refused, and their forwarders wait until their timeout. A
// holder whose clock runs ahead of the forwarder's by more than
// DeadlineSkew also takes a command's deadline as passed that much
// early: it does not start a command with less than its lead (less
// DeadlineSkew) of its timeout left.
//
// All regions of a cluster need the same key and this version of the
// entries: regions of an earlier version, which do not sign, and regions
// holding another key cannot forward commands to each other (the entries
// are refused, and the forwarder waits until the command's timeout). To
// change the key, or upgrade, restart every region; commands forwarded
// between regions already restarted and the others fail meanwhile.
//
// # What Redis access still allows
//
// Signing covers the entries that carry authority between regions, nothing
// else. Whoever can write to the Redis, without the key, can still:
//
//   - delete or trim the event stream, and forge, change or delete
//     events: events are not signed, so what UNSOLMSG clients receive is
//     only as trustworthy as the Redis;
//   - move or delete durable subscription positions and consumer groups
//     (clients miss or receive again events), and forge or delete session
//     records;
//   - forge or delete region announcements and the agent registry: make
//     regions look dead or alive, and so send a command for a target to a
//     region the writer chooses (which runs it only if it holds a system by
//     that name, as the client's command; or, for a region that does not
//     exist, the command waits until its timeout) — a denial of service,
//     or a command run on a same-named system elsewhere;
//   - drop forwarded commands, cancels and output (delete or trim the
//     inbox and output streams, delete the command key, which makes the
//     holder stop the run), or flood the streams with junk, which costs
//     CPU and a warning a minute: denial of service, not execution.
//     Dropping a cancel (and
//     setting the command key again) lets a cancelled command run on, or
//     start if the holder had not received it yet, until its signed
//     deadline (the holder stops it 2s + DeadlineSkew past it); never one
//     whose deadline passed or whose cancel the holder has read;
//   - read everything: command lines, requesters, output, events.
//
// Whoever has the key (any region's host, or a copy of the file) can do
// everything a region can: run any command on any target in any region, as
// any requester. Keep the key as the regions' SSH keys are kept.
//
// So limit who can reach the Redis. Give the regions their own Redis ACL
// user, limited to the keys of their prefix and without the dangerous
// commands (FLUSHALL, KEYS, CONFIG, DEBUG, ACL, CLIENT KILL, ...); the
// braces are part of the key names:
//
//	ACL SETUSER zbridge reset on >PASSWORD ~{zbridge}:* resetchannels +@all -@dangerous
//
// (the region's --redis URL then names the user: redis://zbridge@host,
// with the password in --redis-password-file), keep other applications out
// of that user and prefix, and use TLS (rediss://) wherever the network
// between the regions and Redis is not trusted: without it, the password
// and everything above cross the network in clear.
package cluster
