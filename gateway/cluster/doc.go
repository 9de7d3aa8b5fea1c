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
//     deletes {P}:output:FID, sets {P}:command:FID and adds to
//     {P}:inbox:H an entry type=run with fid, id (the client's command ID),
//     target, command, timeout and deadline (ms), requester and via=F.
//  2. H's inbox loop reads its inbox with XREAD BLOCK, from the last entry
//     present when it started (requests sent to an earlier process are not
//     run). A run entry whose command key no longer exists is dropped (F
//     stopped waiting). H runs the request through Config.Run (its
//     Router.Run) with Via=F, under its own timeout rules.
//  3. H adds to {P}:output:FID, in order, an entry type=out per piece of
//     output (stream, data, eol) and then one type=result (rc, signal,
//     truncated, duration) or type=error (code, message, retry after, and
//     the result fields): a *commands.Error keeps its code and message.
//     Every entry carries a sequence number n from 1, so that an XADD
//     retried by the client is not seen twice.
//  4. F reads {P}:output:FID with XREAD BLOCK (at most 500ms at a time),
//     calls out for each piece in order, and returns the result or error.
//  5. When F's context is cancelled (the client cancelled the command or
//     went away), F adds type=cancel fid=FID to {P}:inbox:H at once and
//     returns; H cancels the run's context with commands.ErrCancelled.
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
// that nothing runs on for a forwarder that is no longer there.
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
package cluster
