package diskstore

import "errors"

// Errors Open returns.
var (
	// ErrCorrupt is wrapped by the error of Open when the journal holds
	// damaged data: anywhere in a segment file other than the newest, and
	// in the newest before a sync mark that says it was synced (after the
	// last such mark, a record cut short or failing its checksum is a torn
	// write, and is cut); and by the decoder's errors.
	ErrCorrupt = errors.New("diskstore: corrupt data")
	// ErrLocked is wrapped when another process holds the data directory.
	ErrLocked = errors.New("diskstore: data directory in use")
	// ErrBadPolicy is wrapped by ParseSyncPolicy's error.
	ErrBadPolicy = errors.New("diskstore: unknown sync policy")
)

// ErrConfig is wrapped by the error of Open for a Config it cannot use.
var ErrConfig = errors.New("diskstore: bad config")
