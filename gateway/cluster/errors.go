package cluster

import "errors"

// Errors of this package.
var (
	// ErrConfig is wrapped by New's errors about its Config.
	ErrConfig = errors.New("cluster: bad config")
	// ErrBadEntry is wrapped by the errors about a malformed stream entry
	// or JSON record read from Redis.
	ErrBadEntry = errors.New("cluster: bad entry")
	// ErrKeyFile is wrapped by LoadKey's errors about the key file's mode,
	// type or size.
	ErrKeyFile = errors.New("cluster: bad key file")
	// ErrRejected is wrapped by the errors about a stream entry refused
	// because it is not signed with the cluster key, is stale or replayed,
	// or claims to come from the region reading it.
	ErrRejected = errors.New("cluster: entry rejected")
)

// Causes with which the package cancels a run's context.
var (
	// errClosing stops the runs forwarded to a region that is closing.
	errClosing = errors.New("cluster: region closing")
	// errOutputLost stops a run whose output could not be written.
	errOutputLost = errors.New("cluster: output could not be written to redis")
	// errForwarderLost stops a run whose forwarder no longer waits.
	errForwarderLost = errors.New("cluster: nobody waits for the command any more")
)

// errAbandoned is wrapped by admit's errors about a genuine run entry that
// is not run because its forwarder gave up on it before it arrived: its
// deadline passed, or its forwarder cancelled it.
var errAbandoned = errors.New("cluster: its forwarder gave up on the command before it arrived")
