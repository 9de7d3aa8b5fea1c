package flood

import "errors"

// ErrConfig is wrapped by New's error for an invalid Config.
var ErrConfig = errors.New("flood: invalid config")
