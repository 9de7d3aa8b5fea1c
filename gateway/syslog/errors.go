package syslog

import "errors"

// Errors of this package.
var (
	// ErrServerClosed is returned by Serve and ServePacket after Shutdown or Close.
	ErrServerClosed = errors.New("syslog: server closed")
	// ErrConfig wraps what is wrong with a Config given to New.
	ErrConfig = errors.New("syslog: invalid config")
	// ErrTooManySessions is logged when a connection is refused because
	// MaxSessions are already open.
	ErrTooManySessions = errors.New("syslog: too many sessions")
	// ErrShutdown is the cause given for a frame cut short because the
	// server shut down while it was arriving.
	ErrShutdown = errors.New("syslog: server shutting down")
)
