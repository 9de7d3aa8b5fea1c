package audit

import "errors"

// Errors of this package.
var (
	// ErrConfig wraps what is wrong with a Config given to New.
	ErrConfig = errors.New("audit: invalid config")
	// ErrClosed is returned by Write and Reopen after Close.
	ErrClosed = errors.New("audit: log closed")
	// ErrUnsafeFile is wrapped by New and Reopen when the file at the path
	// may be written by its group or by others (mode & 0o022 != 0).
	ErrUnsafeFile = errors.New("audit: file is writable by group or others")
	// ErrNotRegular is wrapped by New and Reopen when the path names
	// something other than a regular file (a device, a pipe, a directory),
	// which cannot be synced to disk.
	ErrNotRegular = errors.New("audit: not a regular file")
)
