package peer

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// EnvRequire names the environment variable that, set to 1, turns a missing
// peer program from a skipped test into a failed one. CI sets it.
const EnvRequire = "ZBRIDGE_REQUIRE_PEERS"

// RsyslogRoot is where .ci/run unpacks Debian's rsyslog package
// (dpkg-deb -x), because it cannot be installed beside syslog-ng-core.
const RsyslogRoot = "/opt/zbridge-peers/rsyslog"

// ErrNotFound is returned by [Lookup] when a program is not installed.
var ErrNotFound = errors.New("peer: program not found")

// knownPaths lists the places a program may be installed outside PATH: the
// sbin directories, which a non-root PATH often lacks (sshd, rsyslogd), and
// for rsyslogd the unpacked package under RsyslogRoot.
func knownPaths(name string) []string {
	var paths []string
	if name == "rsyslogd" {
		paths = append(paths, filepath.Join(RsyslogRoot, "usr/sbin/rsyslogd"))
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/sbin"} {
		paths = append(paths, filepath.Join(dir, name))
	}
	return paths
}

// Lookup returns the path of the named program, searching PATH and then the
// places .ci/run installs peers to (such as [RsyslogRoot]) and the sbin
// directories. The error wraps [ErrNotFound] when it is nowhere.
func Lookup(name string) (string, error) {
	if path, err := exec.LookPath(name); err == nil {
		return path, nil
	}
	for _, path := range knownPaths(name) {
		if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return path, nil
		}
	}
	return "", fmt.Errorf("%w: %s (searched PATH and %v)", ErrNotFound, name, knownPaths(name))
}

// Require returns the path of the named program (see [Lookup]). When the
// program is missing it skips the test, or fails it if [EnvRequire] is set.
//
// Under -short (the quick pass before a commit) a test that needs a peer
// is skipped, unless [EnvRequire] is set: CI never runs with -short.
func Require(t testing.TB, name string) string {
	t.Helper()
	if testing.Short() && os.Getenv(EnvRequire) != "1" {
		t.Skipf("real peer %s: not started with -short", name)
	}
	path, err := Lookup(name)
	if err != nil {
		Missing(t, "%v", err)
	}
	return path
}

// Missing reports a peer the test cannot run without: it calls t.Skipf, or
// t.Fatalf when [EnvRequire] is 1. Either way the test stops here.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...) +
		" (install the peers as root with: ZBRIDGE_CI_INSTALL_ONLY=1 bash .ci/run)"
	if os.Getenv(EnvRequire) == "1" {
		t.Fatalf("%s; %s=1, so a missing peer is an error", msg, EnvRequire)
	}
	t.Skip(msg)
}
