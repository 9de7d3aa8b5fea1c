// Package agentproto is the contract between the region
// (gateway/agentssh) and zbridge's Linux agent (linuxagent): the names,
// limits, payloads and codes both sides use, defined here once. Both
// import it; neither spells a name of the contract itself. It does no I/O
// and starts no goroutines.
//
// # Transport
//
// The region connects to the agent over SSH (RFC 4251-4254), public-key
// authentication only, and runs each command on a "session" channel of
// its own. The agent identifies itself with the server version
// "SSH-2.0-zbridge-linuxagent"; any other server is a stock sshd
// ("agentless"), which gets the very same requests and ignores what it
// does not know (see Agentless below).
//
// # Starting a command
//
// On a new session channel the region sends, in this order:
//
//  1. "env" requests (RFC 4254 6.4), want-reply false, each at most once:
//     EnvTimeout, the command's time limit in seconds (the region sends
//     whole seconds, rounded up, see FormatTimeout; the agent accepts any
//     positive decimal number, see ParseTimeout, and caps it by its
//     policy's max-timeout); EnvCommandID, the command's ID (CheckCommandID:
//     1 to MaxCommandID printable ASCII characters, no spaces); EnvClient,
//     the name of the client of the region's COMMANDS port the command runs
//     for (CheckClient: 1 to MaxClient bytes of UTF-8, no control
//     characters). An env request that is unknown, or whose value breaks
//     these rules, is refused and changes nothing.
//  2. one "exec" request (RFC 4254 6.5), want-reply true, with the command
//     line: at most MaxCommand bytes (CheckCommand).
//  3. EOF on the channel: a command's standard input is always empty.
//
// The three values together are at most MaxExec (64 KiB) bytes, far below
// the 256 KiB SSH packet of x/crypto/ssh and OpenSSH. A packet over that
// limit is a protocol error that ends the whole connection, and with it
// every other command running over it; so the region checks each value
// before it sends anything and refuses an oversized command as a bad
// request, and the agent refuses one that still comes (error
// CodeBadCommand).
//
// The client name is informational. The agent logs it with the command
// ID on its line for the command, so that an operator of the Linux system
// can tell whose command ran; it grants nothing. The agent trusts the
// region's key (its authorized_keys), never this field: whoever holds that
// key may write any name here, and the region is the one that
// authenticated the client.
//
// # What the agent sends back
//
// Standard output as channel data, standard error as extended data
// (type 1), unchanged. After the output, on the same channel:
//
//  1. for a command refused, timed out or truncated, one line on
//     standard error: "zbridge-agent: " and Result.Message;
//  2. a channel request of type ResultRequest
//     ("zbridge-result@zbridge"), want-reply false, whose payload is one
//     SSH string (uint32 big-endian length, then that many bytes) holding
//     a JSON object, Result (see MarshalResultPayload, ParseResultPayload);
//  3. "exit-status" (uint32), or "exit-signal" for a command killed by a
//     signal (RFC 4254 6.10: "TERM", "KILL", ...; a signal the RFC does
//     not name as "NUMBER@zbridge");
//  4. EOF, and close.
//
// The Result of a command that ran:
//
//	{"command_id":"c-42","exit_status":0,"timed_out":false,"truncated":false,
//	 "output_bytes":1234,"duration_ms":12,"timeout_ms":60000,"pid":4711,
//	 "agent":"lnx01","platform":"linux/s390x"}
//
// One killed by a signal has "exit_status":-1 and "signal":"TERM"; a
// timed-out or truncated one has "timed_out" or "truncated" true and a
// "message"; one the agent refused or could not start has "error" (a
// reason code, below), "message", and no "pid". Fields may be added:
// readers ignore those they do not know, and bytes after the SSH string.
//
// # Reason codes
//
// Result.Error is empty when the command ran, else one of:
//
//	not-permitted  (CodeNotPermitted)  exit 126  the agent's policy refused the
//	                                             command, or a pty was asked for
//	not-found      (CodeNotFound)      exit 127  no such program
//	cannot-execute (CodeCannotExecute) exit 126  the program could not be started
//	bad-command    (CodeBadCommand)    exit 2    a malformed command line: empty,
//	                                             an unterminated quote, a NUL byte,
//	                                             or longer than MaxCommand
//
// The exit statuses are those /bin/sh gives the same failures.
//
// # Agentless
//
// A stock sshd gets the same env and exec requests. It ignores env
// requests its AcceptEnv does not list (they want no reply, so nothing
// waits for one) and never sends ResultRequest: nothing in the region
// depends on either. The region's length checks apply to it too (its
// packet limit is the same).
package agentproto
