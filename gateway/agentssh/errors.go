package agentssh

import "errors"

// Errors of this package. Run's errors wrap one of them (and, where there is
// one, the underlying cause): test with errors.Is.
var (
	// ErrConfig wraps what is wrong with a Config given to New.
	ErrConfig = errors.New("agentssh: invalid config")
	// ErrClosed is returned by Run after Close.
	ErrClosed = errors.New("agentssh: pool closed")
	// ErrUnknownHost is returned by Run for a name that was never added,
	// or was removed.
	ErrUnknownHost = errors.New("agentssh: unknown host")
	// ErrNotConnected is returned by Run when the host's connection is down
	// (or a dial in progress did not finish within Config.ConnectWait). The
	// error also wraps the last connection error, such as a refused dial
	// or ErrHostKeyMismatch.
	ErrNotConnected = errors.New("agentssh: host not connected")
	// ErrBusy is returned by Run when Config.MaxSessionsPerHost commands
	// already run on the host (counting those Run gave up on whose session
	// the host has not answered yet). Run never queues: retry later.
	ErrBusy = errors.New("agentssh: too many commands running on host")
	// ErrHostKeyUnknown is the connection error when a host has no entry in
	// the known_hosts file and Config.AcceptNew is off.
	ErrHostKeyUnknown = errors.New("agentssh: host key unknown")
	// ErrHostKeyMismatch is the connection error when a host presents a key
	// other than the one(s) known_hosts holds for it, or a key marked
	// @revoked. It is never accepted, whatever Config.AcceptNew says.
	ErrHostKeyMismatch = errors.New("agentssh: host key mismatch")
	// ErrTimeout is returned by Run when the context's deadline passed
	// before the command ended; it also wraps context.DeadlineExceeded. (A
	// command stopped for running past Command.Timeout is no error: its
	// Result says TimedOut.)
	ErrTimeout = errors.New("agentssh: command timed out")
	// ErrCancelled is returned by Run when the context was cancelled; it
	// also wraps context.Canceled.
	ErrCancelled = errors.New("agentssh: command cancelled")
	// ErrRefused is returned by Run when the host refused to open a session
	// or to execute the command.
	ErrRefused = errors.New("agentssh: command refused by host")
	// ErrConnLost is returned by Run when the connection ended while the
	// command ran: it may or may not have completed on the host.
	ErrConnLost = errors.New("agentssh: connection lost during command")
	// ErrNoExitStatus is returned by Run when the host closed the session
	// without reporting an exit status or signal.
	ErrNoExitStatus = errors.New("agentssh: command ended without exit status")
	// ErrBadCommand is returned by Run for a Command it cannot send, such as
	// an empty Line.
	ErrBadCommand = errors.New("agentssh: invalid command")
	// ErrKeyFilePermissions is returned by LoadSigner for a private key file
	// that group or others may access, which OpenSSH refuses as well.
	ErrKeyFilePermissions = errors.New("agentssh: private key file is accessible by others")
)
