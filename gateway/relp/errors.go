package relp

import "errors"

// Errors of this package.
var (
	// ErrServerClosed is returned by Serve after Shutdown or Close.
	ErrServerClosed = errors.New("relp: server closed")
	// ErrConfig wraps what is wrong with a Config given to New.
	ErrConfig = errors.New("relp: invalid config")
	// ErrTooManySessions is logged when a connection is refused because
	// MaxSessions (or MaxSessionsPerAddr from its address) are open.
	ErrTooManySessions = errors.New("relp: too many sessions")
	// ErrProtocol wraps what a client did against the session rules of
	// RELP (a command before open, a second open, a transaction number out
	// of sequence, a command not offered); malformed frames wrap the errors
	// of package protocol/relp instead.
	ErrProtocol = errors.New("relp: protocol error")
	// ErrShutdown is the cause given for a session ended by Shutdown.
	ErrShutdown = errors.New("relp: server shutting down")
	// ErrIdle is the cause given for a session closed after IdleTimeout
	// without a frame.
	ErrIdle = errors.New("relp: session idle")
)
