// Package linuxagent is zbridge's Linux agent: an SSH server (built on
// golang.org/x/crypto/ssh) through which the region runs commands on a
// Linux system, under a policy, without a shell, as an ordinary user. It
// builds for every Linux architecture, linux/s390x included, with
// CGO_ENABLED=0. `zbridge linuxagent` runs it.
//
// # What the agent accepts
//
// Authentication is by public key only (no password, no
// keyboard-interactive, no "none"), against an OpenSSH authorized_keys file
// that is read again when it changes (see Config.AuthorizedKeys for the
// options supported). The SSH user name is logged and otherwise ignored:
// every command runs as the user the agent runs as.
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
// the policy's max-timeout) and ZBRIDGE_COMMAND_ID (1-128 printable ASCII
// characters without spaces); any other env request is refused. It refuses
// "shell" (with a line on standard error), "pty-req", "subsystem" (sftp),
// "x11-req", "auth-agent-req@openssh.com", "signal" and everything else. A
// session that asked for a pty has its exec refused as well (exit status
// 126, not-permitted): the region never asks for one. A session with no
// exec request within 30 seconds is closed.
//
// # Running a command
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
// directory, or / when it has none. It runs in a process group of its
// own.
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
// After the output, on the session channel, the agent sends, in order:
//
//  1. for a refused, timed-out or truncated command, one line on standard
//     error: "zbridge-agent: " and the Result's Message;
//  2. a channel request of type "zbridge-result@zbridge" (ResultRequest),
//     want-reply false, whose payload is one SSH string (uint32 big-endian
//     length, then that many bytes; ssh.Marshal(struct{ JSON string }))
//     holding a JSON object, Result (below);
//  3. "exit-status" (uint32), or for a command killed by a signal
//     "exit-signal" (RFC 4254 6.10: "TERM", "KILL", ...; a signal the RFC
//     does not name as "NUMBER@zbridge");
//  4. EOF, and close.
//
// The Result of a command that ran:
//
//	{"command_id":"c-42","exit_status":0,"timed_out":false,"truncated":false,
//	 "output_bytes":1234,"duration_ms":12,"timeout_ms":60000,"pid":4711,
//	 "agent":"lnx01","platform":"linux/s390x"}
//
// A command killed by a signal has "exit_status":-1 and "signal":"TERM"; a
// timed-out or truncated one has "timed_out" or "truncated" true and a
// "message"; one the agent refused or could not start has "error"
// (not-permitted, not-found, cannot-execute, bad-command) and "message",
// and no "pid". Fields may be added; readers ignore unknown ones.
// ParseResultPayload decodes the payload. Stock OpenSSH clients ignore the
// request. A client built on x/crypto/ssh must read the channel's requests
// itself (Conn.OpenChannel("session", nil)), since ssh.Session discards
// requests it does not know.
//
// Exit statuses of refusals follow /bin/sh: 126 not-permitted (policy,
// shell syntax, pty) and cannot-execute, 127 not-found, 2 bad-command (an
// empty line, an unterminated quote, a NUL byte). If the region closes the
// channel first, the command is terminated and nothing more is sent.
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
// decides. Every other directive may appear once. PATTERN is the rest of
// the line, surrounding blanks removed; it must match the whole subject:
// * matches any run of characters (blanks and slashes included), ? one
// character, and \ makes the next character literal. The subject is, with
// "shell no", argv joined by single spaces, argv[0] as the region wrote it
// (after quote removal, so quoting cannot dodge a rule: 'rm' -rf is "rm
// -rf"); with "shell yes", the command line itself, surrounding blanks
// removed. A parse error names the line ("policy FILE:3: ...").
//
//	# Read-only diagnostics, nothing else.
//	timeout 30s
//	output-cap 256KiB
//	allow uname
//	allow uname -?
//	allow df -h
//	allow systemctl status *
//	deny *
//
// Name a program the way the region will (rm and /bin/rm are different
// subjects: "deny rm *" does not stop "/bin/rm -rf x"), which is why an
// allow list ending in "default deny" is the safe form. With "shell yes"
// deny rules are advice, not a boundary: sh can spell any command in many
// ways; allow the shell only to a region trusted with everything.
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
package linuxagent
