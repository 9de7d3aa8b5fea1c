package redisstore

import "errors"

// Errors the store returns, besides those of package store.
var (
	// ErrBadURL is wrapped by every ParseURL error.
	ErrBadURL = errors.New("redisstore: bad Redis URL")
	// ErrUnavailable is wrapped by errors of operations that need Redis
	// while it cannot be reached.
	ErrUnavailable = errors.New("redisstore: redis unavailable")
	// ErrBufferFull is returned by Append when Redis is unreachable and the
	// degraded-mode write buffer has no room: the events were dropped.
	ErrBufferFull = errors.New("redisstore: redis unavailable and write buffer full; events dropped")
	// ErrNotReplicated is wrapped by the errors, reported in Health, of
	// writes that fewer than Config.MinReplicas replicas acknowledged
	// within Config.ReplicaTimeout. Append does not return it: it keeps
	// such a batch in its write buffer, as when Redis is unreachable,
	// until the replicas have it.
	ErrNotReplicated = errors.New("redisstore: write not acknowledged by enough replicas")
)
