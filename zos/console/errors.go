package console

import "errors"

var (
	// ErrServerClosed is returned by Serve after Shutdown or Close.
	ErrServerClosed = errors.New("console: server closed")
	// ErrConfig is wrapped by New's errors.
	ErrConfig = errors.New("console: bad config")

	// errInboundTooLarge ends a connection whose terminal sent more than
	// maxInbound bytes for one screen.
	errInboundTooLarge = errors.New("console: the terminal sent too much data for one screen")
	// errEnded is returned by a screen that was not shown because the
	// session has ended.
	errEnded = errors.New("console: session ended")
)
