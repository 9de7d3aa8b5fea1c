// Package linuxagent is zbridge's Linux agent: an SSH server (built on
// golang.org/x/crypto/ssh) through which the region runs commands on a
// Linux system, under a policy, without a shell, as an ordinary user. It
// builds for every Linux architecture, linux/s390x included, with
// CGO_ENABLED=0. `zbridge linuxagent` runs it.
//
// # What the agent accepts
//
// The agent is one side of the contract that package agentproto defines
// (request and environment names, limits, the result, reason codes); the
// region's side is package gateway/agentssh.
//
// Authentication is by public key only (no password, no
// keyboard-interactive, no "none"), against an OpenSSH authorized_keys file
// that is read again when it changes (see Config.AuthorizedKeys for the
// options supported), and refused while others could change it (see
// Hardening below). The SSH user name is logged and otherwise ignored:
// every command runs as the user the agent runs as.
//
// # Before authentication
//
// Everything before authentication comes from an unknown peer, so it is
// bounded, as the region's session servers bound theirs. A connection must
// finish its SSH handshake and authenticate within Config.HandshakeTimeout
// (10 s, sshd's LoginGraceTime). At most Config.MaxPending connections (64,
// sshd's MaxStartups) wait to authenticate at once, at most
// Config.MaxPendingPerAddr (8) of them from one source IP address. A new
// connection past either limit is not refused: the oldest connection
// waiting from its address, or from the address with the most waiting, is
// closed to make room for it (logged at warning level, at most once a
// second). So connections that send a banner and nothing more hold 64
// places at most, with their descriptors, goroutines and memory (about 30
// KiB each), and cannot keep the region out: its new connection pushes the
// oldest one out and needs its place only for the milliseconds of its
// handshake, and a connection gives its place up once it has authenticated.
// Authenticated connections are not counted: only holders of an
// authorized key make them. An attacker who shares the region's address
// (its host, a NAT) and brings MaxPendingPerAddr new connections within
// every handshake of the region's can still keep it out: where that
// matters, let only the region reach the agent's port.
//
// Connections may not take the descriptors commands need: of the
// process's limit (RLIMIT_NOFILE), the agent keeps 8 for each of
// MaxSessions commands (their pipes) and a fiftieth of the limit for its
// own files, at most half of it, from connections (package acceptloop's
// Reserve). A connection accepted past that budget is closed at once; when
// accept fails for want of a descriptor, one of four spare descriptors is
// closed to accept the waiting connection and close it, rather than leave
// it in the listen backlog.
//
// # Sessions
//
// Only "session" channels are accepted, at most Config.MaxSessions at once
// over all connections; one more is rejected with ResourceShortage "busy".
// Every forwarding channel (direct-tcpip, forwarded-tcpip,
// direct-streamlocal@openssh.com, x11, auth-agent@openssh.com, ...) is
// rejected with Prohibited; other types with UnknownChannelType. Global
// requests are refused (tcpip-forward, streamlocal-forward@openssh.com,
// ...) except keepalive@openssh.com, answered yes, and
// no-more-sessions@openssh.com, honoured.
//
// On a session channel the agent accepts one "exec" request, and before it
// "env" requests for ZBRIDGE_TIMEOUT (seconds, decimals allowed, capped by
// the policy's max-timeout), ZBRIDGE_COMMAND_ID (1-128 printable ASCII
// characters without spaces) and ZBRIDGE_CLIENT (the client of the region
// the command runs for: 1-256 bytes of UTF-8 without control characters);
// any other env request, or a value breaking these rules, is refused. The
// command ID and the client name are logged with every line about the
// command. The client name is informational: the agent trusts the region's
// key, not this field, which whoever holds the key may set to anything. It
// refuses "shell" (with a line on standard error), "pty-req", "subsystem"
// (sftp), "x11-req", "auth-agent-req@openssh.com", "signal" and everything
// else. A session that asked for a pty has its exec refused as well (exit
// status 126, not-permitted): the region never asks for one. A session
// with no exec request within 30 seconds is closed.
//
// # Running a command
//
// A command line longer than agentproto.MaxCommand (64 KiB with the ID and
// the client name) is refused (exit status 2, bad-command); the region
// refuses to send one.
//
// Unless the policy allows the shell, the command line is split into argv
// by SplitCommand, which follows POSIX shell quoting (single quotes, double
// quotes with backslash escapes, backslash outside quotes) and refuses
// every line in which /bin/sh would expand, redirect, glob or otherwise do
// more than split words: an accepted line runs with exactly the argv
// `/bin/sh -c LINE` would have run, and a refused one gets exit status 126
// and "zbridge-agent: not permitted: shell syntax (...); policy does not
// allow sh -c" on standard error. QuoteCommand builds such a line from
// arguments. With "shell yes" the line runs as `/bin/sh -c LINE`.
//
// argv[0] is looked up in the fixed PATH /usr/local/bin:/usr/bin:/bin (a
// name with a slash is used as it is, relative to the working directory).
// The command runs directly (exec, no shell) with a clean environment:
// PATH=/usr/local/bin:/usr/bin:/bin, LANG=C.UTF-8, HOME, and
// ZBRIDGE_COMMAND_ID when the region sent one. Standard input is
// /dev/null; the working directory and HOME are the agent user's home
// directory, or / when it has none. It runs in a session and process
// group of its own, without a controlling terminal (an agent started from
// a terminal does not pass it on), with no_new_privs set (see Hardening),
// and inherits no other file descriptor from the agent.
//
// A command ends when its first process exits; whatever it left running
// in its group (background jobs) is then killed with SIGKILL. On timeout,
// on the output cap, and when the region closes the channel or the
// connection drops, the whole group gets SIGTERM and, Config.KillGrace (2
// s) later, SIGKILL. Either way the agent waits until no live process of
// the group is left before it reports the command (zombies left to init to
// reap count as gone). Processes that leave the group on purpose (setsid,
// daemons) are beyond its reach: they survive, and once the group is gone
// the agent stops reading output they hold open after a second. A region
// that takes in none of a finished command's remaining output for 30
// seconds gets the channel closed.
//
// Standard output and error are sent as the channel's data and extended
// data, unchanged (binary safe). Together they may send the output cap;
// the first byte over it is not sent, the command is terminated, and the
// result says truncated.
//
// # What the region is told
//
// After the output the agent sends, as package agentproto describes: for
// a refused, timed-out or truncated command one line on standard error,
// "zbridge-agent: " and the result's message; the agentproto.ResultRequest
// channel request with an agentproto.Result in JSON (command ID, exit
// status or signal, timed_out, truncated, reason code and message, output
// bytes, duration, timeout, pid, agent name, platform); "exit-status", or
// "exit-signal" for a command killed by a signal ("TERM", "KILL", ...; a
// signal RFC 4254 does not name as "NUMBER@zbridge"); EOF, and close.
// Stock OpenSSH clients ignore the result request. A client built on
// x/crypto/ssh must read the channel's requests itself
// (Conn.OpenChannel("session", nil)), since ssh.Session discards requests
// it does not know.
//
// Exit statuses of refusals follow /bin/sh: 126 not-permitted (policy,
// shell syntax, pty) and cannot-execute, 127 not-found, 2 bad-command (an
// empty line, an unterminated quote, a NUL byte, a line over
// agentproto.MaxCommand). If the region closes the channel first, the
// command is terminated and nothing more is sent.
//
// # Policy file
//
// A policy file is read line by line. Blank lines and lines whose first
// non-blank character is # are ignored (a # later in a line is part of
// it). Each other line is a directive and its argument, separated by
// blanks:
//
//	allow PATTERN        run commands PATTERN matches
//	deny PATTERN         refuse commands PATTERN matches (exit status 126)
//	default allow|deny   for commands no rule matches; default: deny
//	shell yes|no         run lines as /bin/sh -c LINE; default: no
//	timeout DURATION     time limit when the region asks for none (Go
//	                     duration: 30s, 10m, 1h30m); default: 60s
//	max-timeout DURATION the longest limit the region may ask for via
//	                     ZBRIDGE_TIMEOUT; default: 10m, or timeout if longer
//	output-cap SIZE      bytes of stdout+stderr sent: a number with an
//	                     optional unit B, KiB, MiB, GiB, kB, MB, GB;
//	                     default: 1MiB
//
// Rules (allow, deny) are tried in file order and the first that matches
// decides. Every other directive may appear once. A parse error names the
// line ("policy FILE:3: ...").
//
// PATTERN is the rest of the line, surrounding blanks removed: a
// command-line pattern of package commands/cmdpattern, matched word by
// word against the command's words. Within a word * matches any run of
// characters (slashes included, blanks never: a * stays within its word),
// ? matches one character, and everything else matches itself; a word
// that is exactly ** matches any number of whole words, none included. A
// command word with a ".." path element ("..", "../x", "a/../b") is
// matched only by an equal literal word, never by *, ? or **. There is no
// quoting: a pattern holding a backslash is refused. A pattern has at most
// 64 words and 4096 bytes.
//
// The command's words are, with "shell no", its argv after quote removal
// (quoting cannot dodge a rule: 'rm' -rf is "rm" "-rf"), argv[0] as the
// region wrote it; with "shell yes", the command line itself split on
// blanks.
//
//	# Read-only diagnostics, nothing else.
//	timeout 30s
//	output-cap 256KiB
//	allow uname
//	allow uname -?
//	allow df -h
//	allow systemctl status **
//	allow cat /var/log/*.log
//	deny **
//
// Here "systemctl status sshd --no-pager" is allowed, "cat
// /var/log/kern.log /etc/shadow" (two words for one *) and "cat
// /var/log/../../etc/shadow.log" (a ".." element) are not.
//
// A deny rule also matches when its pattern, read as one glob over the
// whole line (* spanning blanks, no ".." rule; cmdpattern.Glob), matches
// the words joined by single spaces. Deny rules written before patterns
// were word by word thus still deny everything they did ("deny rm *"
// denies "rm -rf /"), and deny rules err towards denying.
//
// Changes from the whole-line patterns of earlier versions: in allow
// rules * and ? no longer match across words, and no wildcard matches a
// ".." element, so "allow systemctl status *" now allows one argument
// (write ** for any); a backslash, which used to quote the next
// character, makes the policy file fail to load rather than change
// meaning.
//
// A wildcard still matches words the program takes as options ("allow grep
// * /var/log/syslog" allows "grep --file=/etc/shadow /var/log/syslog"),
// and a path under an allowed directory may be a symbolic link out of it:
// name arguments as narrowly as the program requires. Name a program the
// way the region will (rm and /bin/rm are different words: "deny rm **"
// does not stop "/bin/rm -rf x"), which is why an allow list ending in
// "default deny" is the safe form. With "shell yes" deny rules are advice,
// not a boundary: sh can spell any command in many ways, and a * word
// matches "$(reboot)"; allow the shell only to a region trusted with
// everything.
//
// Without a policy (Config.Policy nil, no --policy) every command is
// allowed, none through the shell, with Config's timeout and output cap.
//
// # Host key
//
// Config.HostKeyFile is generated (ed25519, mode 0600, with a .pub beside
// it) on first start and kept; a key file group or other may access is
// refused, as sshd refuses one. The agent logs the host key's SHA256
// fingerprint when it starts, for pinning on the region.
//
// # Hardening
//
// The agent protects the system from its own circumstances:
//
//   - It refuses to run as root (effective user ID 0): every command would
//     run as root. Hardening.Apply, which `zbridge linuxagent` calls first,
//     refuses with ErrRunAsRoot unless Hardening.AllowRoot (--allow-root).
//     New does not check: a program embedding a Server decides for itself.
//   - It refuses an authorized_keys file or a policy file that someone
//     other than the agent's user and root could change, as sshd's
//     StrictModes does: one that group or other may write, or whose
//     directory they may write (after following symbolic links, and also
//     the directory holding a link), or that is owned by neither the
//     agent's user nor root, or that is not a regular file; the error, an
//     *UnsafeFileError, names the path, its mode and owner. New refuses
//     such an authorized_keys file, and a running agent refuses every key
//     from the moment the file or its directory becomes unsafe until that
//     is undone (checked at each authentication). The policy file is
//     checked by `zbridge linuxagent` (Hardening.CheckFile) before it is
//     loaded.
//   - At start (Hardening.Apply) it makes every file descriptor above 2
//     close-on-exec (close_range(2) with CLOSE_RANGE_CLOEXEC, or one by one
//     from /proc/self/fd on kernels before 5.11), so that no command
//     inherits what the agent's parent left open. Descriptors the agent
//     opens itself are close-on-exec already, as Go opens every file.
//   - Every command runs with no_new_privs set (prctl
//     PR_SET_NO_NEW_PRIVS): neither it nor anything it runs gains
//     privileges through set-user-ID or set-group-ID programs (sudo, su) or
//     file capabilities. The attribute is set on the threads that start
//     the commands (up to four, kept for the agent's lifetime, locked to
//     their goroutines and running nothing else), which works in every
//     build, cgo or not.
//
// # Goroutines
//
// Every goroutine a Server starts is waited for by Shutdown and Close:
// per Serve call its accept loop; per connection one that runs the
// handshake (all a connection that has not authenticated costs) and takes
// its channels, one answering global requests and one
// checking the connection, which sends a keepalive when the region has
// been silent for three intervals (see Config.KeepAlive); per session channel one serving its requests, and
// while its command runs, one running it, one waiting for its process and
// two copying its standard output and error to the channel; and the
// starter threads, up to four, made as commands first need them and ended
// once every session is gone. The package has no package-level mutable
// state.
package linuxagent
