package peer

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"testing"
)

// BenchSSHUser is the ordinary user .ci/run creates for the ssh side of
// the command benchmarks when they run as root.
const BenchSSHUser = "zbridge-bench"

// startupFiles are the files, relative to the login user's home, that
// sshd or the user's shell reads before running a command; they must be
// empty or absent for an ssh benchmark to measure ssh.
var startupFiles = []string{".bashrc", ".bash_profile", ".bash_login", ".profile", ".zshenv", ".ssh/rc"}

// SSHControlMaster starts sshd on a loopback port of its own and an
// OpenSSH master connection to it (ControlMaster, OpenSSH's recipe for
// many short commands), logging in with the private key file clientKey
// whose authorized_keys line is authorized, and returns the command line,
// program first, that runs a command over the master: append the command.
//
// It logs in as an ordinary user whose shell start-up files are empty, so
// that what is measured is ssh: as root, BenchSSHUser (missing: a missing
// peer); otherwise the current user, and the benchmark skips if one of its
// start-up files is not empty. (Root's own ~/.bashrc costs ~95 ms a
// command on the project's machines.)
func SSHControlMaster(tb testing.TB, clientKey, authorized string) []string {
	tb.Helper()
	sshBin := Require(tb, "ssh")
	sshd := Require(tb, "sshd")
	keygen := Require(tb, "ssh-keygen")
	name, home := SSHLogin(tb)
	dir := tb.TempDir()
	hostKey := filepath.Join(dir, "host_key")
	if out, err := exec.Command(keygen, "-q", "-t", "ed25519", "-N", "", "-f", hostKey).CombinedOutput(); err != nil {
		tb.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	// Made by the benchmark's user (root or the login user, as
	// StrictModes allows), writable by it alone, readable by the login
	// user, whom sshd reads it as.
	akDir, err := os.MkdirTemp(home, ".zbridge-bench-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(akDir) })
	if err := os.Chmod(akDir, 0o755); err != nil {
		tb.Fatal(err)
	}
	ak := filepath.Join(akDir, "authorized_keys")
	if err := os.WriteFile(ak, []byte(authorized), 0o644); err != nil {
		tb.Fatal(err)
	}
	port := FreePort(tb)
	conf := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("ListenAddress 127.0.0.1\nPort %d\nHostKey %s\nPidFile %s\nAuthorizedKeysFile %s\n"+
		"AllowUsers %s\nStrictModes yes\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n",
		port, hostKey, filepath.Join(dir, "sshd.pid"), ak, name)), 0o600); err != nil {
		tb.Fatal(err)
	}
	os.MkdirAll("/run/sshd", 0o755) // its privilege-separation directory, as root
	addr := Addr(port)
	Start(tb, Command{Name: "sshd", Path: sshd, Args: []string{"-D", "-e", "-f", conf}, Ready: TCPReady(addr)})

	sock := filepath.Join(dir, "cm")
	base := []string{"-F", "/dev/null", "-i", clientKey, "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=no",
		"-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "BatchMode=yes", "-o", "ControlPath=" + sock,
		"-p", fmt.Sprint(port), "-l", name, Loopback}
	Start(tb, Command{Name: "ssh-master", Path: sshBin, Args: append([]string{"-M", "-N"}, base...),
		Ready: func(ctx context.Context) error {
			_, err := os.Stat(sock)
			return err
		}})
	return append([]string{sshBin, "-o", "ControlMaster=no"}, base...)
}

// SSHLogin picks the user an ssh benchmark logs in as (see
// SSHControlMaster) and returns its name and home.
func SSHLogin(tb testing.TB) (name, home string) {
	tb.Helper()
	var u *user.User
	var err error
	root := os.Geteuid() == 0
	if root {
		if u, err = user.Lookup(BenchSSHUser); err != nil {
			Missing(tb, "as root the ssh side logs in as the ordinary user %s: %v (.ci/run creates it)", BenchSSHUser, err)
		}
	} else if u, err = user.Current(); err != nil {
		tb.Fatal(err)
	}
	for _, f := range startupFiles {
		fi, err := os.Stat(filepath.Join(u.HomeDir, f))
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			tb.Fatal(err)
		case fi.Size() > 0 && root:
			Missing(tb, "%s's %s is not empty: the ssh side would measure it (.ci/run empties it)", u.Username, f)
		case fi.Size() > 0:
			tb.Skipf("the ssh side logs in as %s, whose %s is not empty: it would measure that file, not ssh (run as root with the user %s, see .ci/run)",
				u.Username, f, BenchSSHUser)
		}
	}
	return u.Username, u.HomeDir
}
