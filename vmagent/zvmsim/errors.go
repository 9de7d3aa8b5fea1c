package zvmsim

import "errors"

var (
	// ErrServerClosed is returned by Serve after Shutdown or Close.
	ErrServerClosed = errors.New("zvmsim: server closed")
	// ErrConfig wraps every configuration problem New reports.
	ErrConfig = errors.New("zvmsim: invalid configuration")
	// ErrNoSuchUser: the userid is not in the simulated CP directory.
	ErrNoSuchUser = errors.New("zvmsim: userid not in CP directory")
	// ErrNotLoggedOn: the user is not logged on.
	ErrNotLoggedOn = errors.New("zvmsim: user not logged on")
	// ErrDisconnected: the user is logged on but has no terminal, so CP
	// would discard console output for it.
	ErrDisconnected = errors.New("zvmsim: user disconnected, no console to write to")
	// ErrDatastream: a terminal sent something that is not a valid 3270
	// inbound record; the session ends.
	ErrDatastream = errors.New("zvmsim: bad 3270 data stream")
)
