// Package testparallel lets a package's parallel tests, those that mostly
// wait (for timeouts, keepalives, processes), run more at once than the
// default of one per CPU: on a 2-vCPU machine, two at a time left most of
// such a package's test time idle.
package testparallel

import (
	"flag"
	"strconv"
)

// Raise makes n the number of parallel tests run at once, unless
// -test.parallel was given. Call it from TestMain before m.Run.
func Raise(n int) {
	if !flag.Parsed() {
		flag.Parse()
	}
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "test.parallel" })
	if !given {
		flag.Set("test.parallel", strconv.Itoa(n))
	}
}
