package agentproto

// ResultRequest is the type of the channel request the agent sends after a
// command's output and before exit-status or exit-signal; want-reply
// false, its payload an SSH string holding a JSON Result.
const ResultRequest = "zbridge-result@zbridge"

// Names of the environment variables the region sends in "env" requests
// before "exec".
const (
	// EnvTimeout is the command's time limit in seconds (FormatTimeout,
	// ParseTimeout).
	EnvTimeout = "ZBRIDGE_TIMEOUT"
	// EnvCommandID is the command's ID (CheckCommandID). The agent also
	// passes it to the command in its environment.
	EnvCommandID = "ZBRIDGE_COMMAND_ID"
	// EnvClient names the client the command runs for (CheckClient);
	// informational: logged, never trusted.
	EnvClient = "ZBRIDGE_CLIENT"
)

// Limits on what the region sends. MaxCommand + MaxCommandID + MaxClient
// is MaxExec, which leaves most of an SSH packet (256 KiB in x/crypto/ssh
// and OpenSSH) unused: a request larger than a packet ends the connection.
const (
	// MaxExec bounds the command line, command ID and client name
	// together, in bytes.
	MaxExec = 64 << 10
	// MaxCommandID is the longest command ID, in bytes.
	MaxCommandID = 128
	// MaxClient is the longest client name, in bytes.
	MaxClient = 256
	// MaxCommand is the longest command line, in bytes.
	MaxCommand = MaxExec - MaxCommandID - MaxClient
)

// Reason codes of Result.Error.
const (
	// CodeNotPermitted: the agent's policy refused the command, or the
	// session asked for something the agent never allows (a pty).
	// ExitNotPermitted.
	CodeNotPermitted = "not-permitted"
	// CodeNotFound: the program does not exist. ExitNotFound.
	CodeNotFound = "not-found"
	// CodeCannotExecute: the program exists but could not be started (not
	// executable, bad format, out of resources). ExitCannotExecute.
	CodeCannotExecute = "cannot-execute"
	// CodeBadCommand: the command line is malformed (empty, an unterminated
	// quote, a NUL byte) or longer than MaxCommand. ExitBadCommand.
	CodeBadCommand = "bad-command"
)

// Exit statuses the agent reports with the reason codes, as /bin/sh does.
const (
	ExitBadCommand    = 2
	ExitNotPermitted  = 126
	ExitCannotExecute = 126
	ExitNotFound      = 127
)
