// Package agentssh is the region's SSH client to Linux systems: to zbridge's
// Linux agent (package linuxagent, listening on port DefaultPort of every
// host) and to stock OpenSSH servers ("agentless"). A [Pool] keeps one SSH
// connection per host, multiplexes the commands run on it as session
// channels, and redials in the background when it drops.
//
// # Connections
//
// [Pool.Add] registers a host and connects in the background; [Pool.Hosts]
// reports each host's state (connecting, connected, down with the last
// error), its server version string (the agent's starts with
// [AgentVersionPrefix]), its host key fingerprint and the last keepalive
// answer. Authentication is by public key only ([Config.Signer], see
// [LoadSigner]), as [Config.User] (default "zbridge"; the agent accepts any
// user name). A connection that drops, or an attempt that fails, is retried
// after an exponential backoff from [Config.ReconnectMin] to
// [Config.ReconnectMax], each wait jittered down to half so that a region
// restarting does not redial a thousand hosts in step; a connection that
// lasted longer than ReconnectMax starts the backoff afresh.
//
// Dials are paced, so that a region with thousands of hosts connects them
// all rather than timing most of them out: at most [Config.MaxDials]
// connection attempts (TCP connect and SSH handshake) are in progress at
// once, over all hosts, and the others wait for a turn in the order they
// came, a wait that [Config.DialTimeout] does not count. A host's first
// attempt waits a random time up to [Config.DialJitter] after Add, so that
// the hosts a region starts with are not dialled in the order given, in
// step with other regions starting with the same list. [Pool.Stats]
// counts the attempts, failures and timeouts, and the hosts in each state.
//
// The kernel finds a dead host or path: after 60 to 120 s
// ([Config.TCPKeepAlive], drawn for each connection) without a segment
// from the host it probes every 20 s, and it ends the connection 3.5
// minutes after the host last sent anything (TCP_USER_TIMEOUT), whether
// the connection was idle or had a command in flight, at no cost to the
// region's process (package tcpalive). Every [Config.KeepAlive] (5 minutes) each
// connection is also checked, for a host that is there but hung: one from which
// nothing arrived for a whole interval gets a keepalive@openssh.com
// request, and one that does not answer within another interval is closed
// and redialled. A connection that hears from its host (command output,
// an answer to the last check's keepalive, keepalives of the host's own)
// sends none, as OpenSSH's ServerAliveInterval does: an idle connection is
// asked every other interval, every ten minutes; half of the connections,
// drawn at random, are asked at their first check and the others at their
// second, so that ten thousand connections made together (a region's
// start) are asked at an even rate, not all in one interval of every two
// (zbridge_agent_keepalives_total counts them). The Linux agent keeps quiet while its
// region speaks (linuxagent.Config.KeepAlive), so that an idle region's
// keepalives are its own, batched as below. Each connection checks at a phase of its own,
// chosen at random, so that the thousands of connections a region makes
// at its start do not send their keepalives together; the phases fall on
// a grid of one second (an eighth of a shorter interval), so that the
// checks due in the same second go together, and ten thousand idle
// connections wake the region a few times a second rather than hundreds.
//
// [Config.OnChange] tells the pool's owner of what its operators need to
// know ([Change]): a host connected, a connection lost (with why), and a
// host refused for presenting a host key other than its pinned one. A
// host that cannot be reached, or keeps presenting the refused key, is
// told of once rather than at every redial, and removing a host or
// closing the pool tells nothing. OnChange runs on the host's goroutine,
// holding no lock of the pool's.
//
// # Host keys
//
// Host keys are pinned in an OpenSSH known_hosts file, checked with
// golang.org/x/crypto/ssh/knownhosts (hashed names, "[host]:port" entries,
// @revoked). Host certificates are not used: keys are pinned one by one.
//
// A key is pinned to the name the host was added under, not only to the
// address it is dialled at, so that a name cannot be re-pointed at another
// machine by moving it to another address (the region learns names from
// syslog senders, which authenticate with nothing). The name is written as
// the host pattern NAME@zbridge ([NameSuffix]; lower case, since names are
// compared case-insensitively; [CheckName] says which names can be
// written), which no host name or address can match, beside the address in
// one line of the multiple-pattern form:
//
//	web1@zbridge,[10.0.0.5]:7022 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5...
//
// An operator may pin a name alone ("web1@zbridge ssh-ed25519 ..."), an
// address alone (as OpenSSH and earlier versions of this package write it,
// "[10.0.0.5]:7022 ssh-ed25519 ..."), or both. When the pool connects to
// the host added as NAME at ADDR:
//
//   - a key marked @revoked is refused ([ErrHostKeyMismatch]);
//   - when lines pin keys to NAME, the host must present one of them,
//     whatever the address; any other key is refused as a mismatch, also in
//     accept-new mode. Accept-new records the address beside the name when
//     no line holds the key for it yet, so that a name new at that address
//     later must present the same key;
//   - when none pins NAME, lines for ADDR decide: a key other than theirs is
//     refused as a mismatch; theirs is accepted, and accept-new pins NAME to
//     it (the upgrade of a file written before names were pinned);
//   - when no line names either, the host is refused with
//     [ErrHostKeyUnknown], or in accept-new mode ([Config.AcceptNew],
//     OpenSSH's StrictHostKeyChecking=accept-new) its key is appended as
//     "NAME@zbridge,[ADDR]:PORT key" and accepted.
//
// So accept-new trusts the first key a name presents, once; a name already
// pinned cannot take a new key by appearing at a new address, and a name
// that moves must bring its key. A mismatch is logged at error level; the
// operator removes the stale lines to accept a deliberate change (the file
// is re-read whenever it changes). When dialling, the key types pinned for
// the name (or, without a pin, for the address) are asked for first, so that
// a server holding several host keys presents the recorded one.
//
// # Commands
//
// [Pool.Run] opens a session channel itself rather than using x/crypto's
// Session, which drops channel requests it does not know, such as the
// agent's result request ([agentproto.ResultRequest]; the region ↔ agent
// contract is package protocol/agentproto). Before "exec" it sends "env"
// requests for [agentproto.EnvTimeout], [agentproto.EnvCommandID] and
// [agentproto.EnvClient] (the client the command runs for, which the agent
// logs) without asking for a reply: a stock sshd ignores them unless its
// AcceptEnv lists them, and nothing depends on them. A command whose line,
// ID or client is longer than an agent takes ([agentproto.MaxExec]) is
// refused with [ErrBadCommand] before anything is sent, so that it cannot
// break the connection other commands share.
// Standard input is closed at once. Standard output and error (the extended
// data stream) are cut into lines ([Output]); "exit-status", "exit-signal"
// and the agent's result request fill the [Result].
//
// Run never waits for capacity: at [Config.MaxSessionsPerHost] commands on a
// host it returns [ErrBusy] (the default, 8, stays below stock sshd's
// MaxSessions of 10), and on a host that is down it returns [ErrNotConnected]
// with the last connection error (it waits up to [Config.ConnectWait] only
// for an attempt already under way). Output beyond [Config.OutputCap] bytes
// (stdout and stderr together) is dropped, the command is stopped and the
// Result says Truncated. When the context ends, or [Command.Timeout] passes,
// Run sends signal KILL, closes the channel and returns at once. The agent
// kills the command's process group when the channel closes. OpenSSH's sshd
// kills the process group on signal KILL, except in a root session, which
// it runs without privilege separation and where it refuses signals: there
// a stopped command runs on until it ends (or writes to its closed output,
// and dies of SIGPIPE). Log in to agentless hosts as an ordinary user.
// Command.Timeout is also sent to the host as ZBRIDGE_TIMEOUT for the agent
// to enforce and report; Run then allows the agent a grace period before
// stopping the command itself.
//
// x/crypto/ssh waits for the host's answer to the opening of a session
// channel and to the exec request until the connection ends, and cannot be
// told to stop: answered keepalives do not end that wait, nor does closing
// the channel. So a command Run gave up on before the host answered keeps
// its place among MaxSessionsPerHost until the answer comes (the command
// is then stopped), and a host that leaves either unanswered for
// [Config.AnswerTimeout] (30 s) after Run gave up is taken for broken: its
// connection is closed, which ends the waits (OnChange is told it was
// lost, with why) and redialled. A host that never answers holds at most
// MaxSessionsPerHost waits, and Run says [ErrBusy] meanwhile.
//
// # Goroutines
//
// Every goroutine the pool starts is waited for by [Pool.Close]: per host
// one that manages its connection (it dials, waits out the backoff and,
// once connected, takes what the server sends on its own: channels, which
// it rejects, and global requests, which it refuses; and it checks the
// connection every KeepAlive), per keepalive sent one that waits for the
// answer, per command one that opens its session channel and sends its
// requests (it outlives a Run that gave up on it until the host answers,
// holding the command's place among MaxSessionsPerHost, or until
// AnswerTimeout closes the connection; then until the host acknowledges
// the channel's close), and per command three that read its streams and
// requests (they outlive Run until the host acknowledges the channel's
// close).
// x/crypto/ssh adds three of its own per connection (its reader, key
// exchange and multiplexer loops), which end with the connection. So an
// idle connection costs four goroutines: with ten thousand hosts, their
// stacks are a good part of the region's memory. The package has no
// package-level mutable state.
package agentssh
