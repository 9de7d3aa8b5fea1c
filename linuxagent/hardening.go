package linuxagent

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Hardening is what the agent program does to its own process when it
// starts, before New: `zbridge linuxagent` applies it. It is apart from
// Config because it concerns the whole process rather than one Server: a
// program that embeds a Server (such as a test) decides for itself.
//
// Two protections need no Hardening and hold for every Server: each
// command runs with no_new_privs set, and an authorized_keys file that
// others could change is refused (see Config.AuthorizedKeys and the
// package documentation).
type Hardening struct {
	// AllowRoot lets the agent run as root (effective user ID 0). Without
	// it Apply refuses: the agent would run every command the region sends
	// as root. (--allow-root)
	AllowRoot bool
	// Geteuid returns the effective user ID the agent runs as; nil means
	// os.Geteuid. Tests set it to play root.
	Geteuid func() int
}

func (h Hardening) euid() int {
	if h.Geteuid != nil {
		return h.Geteuid()
	}
	return os.Geteuid()
}

// Apply refuses (ErrRunAsRoot) to go on as root unless AllowRoot, and then
// makes every file descriptor above 2 close-on-exec, so that no command
// inherits what the agent's own parent left open (a listening socket, a
// log, a secret). Call it once, first thing.
func (h Hardening) Apply() error {
	if err := h.checkUser(); err != nil {
		return err
	}
	if err := closeOnExecFrom(3); err != nil {
		return fmt.Errorf("linuxagent: mark inherited file descriptors close-on-exec: %w", err)
	}
	return nil
}

// checkUser refuses root unless AllowRoot.
func (h Hardening) checkUser() error {
	if h.euid() == 0 && !h.AllowRoot {
		return fmt.Errorf("%w: every command the region sends would run as root; "+
			"run the agent as an ordinary user, or pass --allow-root if that is really meant", ErrRunAsRoot)
	}
	return nil
}

// CheckFile returns an *UnsafeFileError if path, a file the agent trusts
// (its policy), could be changed by anyone but the agent's user and root
// (see UnsafeFileError), or the error of looking it up.
func (h Hardening) CheckFile(path string) error {
	return checkTrusted(path, h.euid())
}

// An UnsafeFileError is a file the agent trusts (authorized_keys, a
// policy) that someone other than the agent's user and root could change,
// as OpenSSH's sshd refuses one with StrictModes: the file, or the
// directory that holds it (after following symbolic links, and also the
// one holding the link), may be written by group or other, or is owned
// by another user; or the file is not a regular file. It wraps
// ErrUnsafeFile.
type UnsafeFileError struct {
	Path    string      // the file, or the directory at fault
	Mode    fs.FileMode // Path's mode
	Owner   int         // Path's owner (user ID)
	Problem string      // what is wrong, and the fix
}

func (e *UnsafeFileError) Error() string {
	return fmt.Sprintf("%s (mode %04o, owner uid %d): %s", e.Path, e.Mode.Perm(), e.Owner, e.Problem)
}

func (e *UnsafeFileError) Unwrap() error { return ErrUnsafeFile }

// checkTrusted checks that only uid and root can change the file at path:
// the file itself, the directory holding it, and, when path is a symbolic
// link, the directory holding the link.
func checkTrusted(path string, uid int) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return err
	}
	fi, err := os.Stat(real)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return &UnsafeFileError{Path: real, Mode: fi.Mode(), Owner: fileOwner(fi), Problem: "not a regular file"}
	}
	if err := checkOwnerMode(real, fi, uid, "group or other may write it; chmod go-w it"); err != nil {
		return err
	}
	dirs := []string{filepath.Dir(real)}
	if d := filepath.Dir(abs); d != dirs[0] {
		dirs = append(dirs, d)
	}
	for _, dir := range dirs {
		di, err := os.Stat(dir)
		if err != nil {
			return err
		}
		problem := fmt.Sprintf("the directory holding %s: group or other may write in it, and so replace the file; chmod go-w it",
			filepath.Base(path))
		if err := checkOwnerMode(dir, di, uid, problem); err != nil {
			return err
		}
	}
	return nil
}

// checkOwnerMode checks that fi, of path, is owned by uid or root and not
// writable by group or other; writable describes the latter problem.
func checkOwnerMode(path string, fi fs.FileInfo, uid int, writable string) error {
	owner := fileOwner(fi)
	switch {
	case owner != uid && owner != 0:
		return &UnsafeFileError{Path: path, Mode: fi.Mode(), Owner: owner,
			Problem: fmt.Sprintf("owned by uid %d, neither the agent's user (uid %d) nor root", owner, uid)}
	case fi.Mode().Perm()&0o022 != 0:
		return &UnsafeFileError{Path: path, Mode: fi.Mode(), Owner: owner, Problem: writable}
	}
	return nil
}
