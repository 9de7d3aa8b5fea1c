package peer

import (
	"os"
	"os/exec"
	"slices"
	"strings"
)

// GoBuild returns the command `go build ARGS...`, run in the test's own
// environment with env (KEY=value) added, but without GODEBUG: a benchmark
// run under GODEBUG=gctrace=1 would otherwise have the compiler print its
// collections, which the go command caches and then replays as the
// package's build output in every later build, `go test` included.
func GoBuild(env []string, args ...string) *exec.Cmd {
	c := exec.Command("go", append([]string{"build"}, args...)...)
	c.Env = append(slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "GODEBUG=")
	}), env...)
	return c
}
