package linuxagent

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func TestCheckUser(t *testing.T) {
	for _, tt := range []struct {
		name    string
		h       Hardening
		refused bool
	}{
		{"root", Hardening{Geteuid: func() int { return 0 }}, true},
		{"root allowed", Hardening{AllowRoot: true, Geteuid: func() int { return 0 }}, false},
		{"ordinary user", Hardening{Geteuid: func() int { return 1000 }}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.h.checkUser()
			if !tt.refused {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrRunAsRoot) || !strings.Contains(err.Error(), "--allow-root") {
				t.Fatalf("error %v, want ErrRunAsRoot naming --allow-root", err)
			}
			// Apply refuses the same way, before it changes anything.
			if err := tt.h.Apply(); !errors.Is(err, ErrRunAsRoot) {
				t.Fatalf("Apply: %v, want ErrRunAsRoot", err)
			}
		})
	}
}

// TestCheckTrusted checks the StrictModes-like check of the files the
// agent trusts, on files and directories set up with chmod and symlinks.
func TestCheckTrusted(t *testing.T) {
	uid := os.Geteuid()
	// mk makes a directory of mode dirMode holding a file "f" of mode
	// fileMode, and returns the file's path.
	mk := func(t *testing.T, dirMode, fileMode os.FileMode) string {
		dir := filepath.Join(t.TempDir(), "d")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(dir, "f")
		if err := os.WriteFile(f, []byte("x\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		chmod(t, f, fileMode)
		chmod(t, dir, dirMode)
		return f
	}
	tests := []struct {
		name  string
		setup func(t *testing.T) (path, atFault string)
		want  string // "" for a trusted file; else part of the error
	}{
		{"0600 in 0700", func(t *testing.T) (string, string) { return mk(t, 0o700, 0o600), "" }, ""},
		{"0644 in 0755", func(t *testing.T) (string, string) { return mk(t, 0o755, 0o644), "" }, ""},
		{"0444 in 0555", func(t *testing.T) (string, string) { return mk(t, 0o555, 0o444), "" }, ""},
		{"group-writable file", func(t *testing.T) (string, string) { f := mk(t, 0o700, 0o660); return f, f }, "(mode 0660, owner uid"},
		{"world-writable file", func(t *testing.T) (string, string) { f := mk(t, 0o700, 0o602); return f, f }, "group or other may write it"},
		{"group-writable directory", func(t *testing.T) (string, string) { f := mk(t, 0o770, 0o600); return f, filepath.Dir(f) }, "(mode 0770, owner uid"},
		{"world-writable sticky directory", func(t *testing.T) (string, string) { f := mk(t, 0o777|os.ModeSticky, 0o600); return f, filepath.Dir(f) },
			"the directory holding f: group or other may write in it"},
		{"directory, not a file", func(t *testing.T) (string, string) { f := mk(t, 0o700, 0o600); return filepath.Dir(f), filepath.Dir(f) },
			"not a regular file"},
		{"link to a file in an unsafe directory", func(t *testing.T) (string, string) {
			f := mk(t, 0o777, 0o600)
			link := filepath.Join(t.TempDir(), "link")
			if err := os.Symlink(f, link); err != nil {
				t.Fatal(err)
			}
			return link, filepath.Dir(f)
		}, "group or other may write in it"},
		{"link in an unsafe directory", func(t *testing.T) (string, string) {
			f := mk(t, 0o700, 0o600)
			dir := filepath.Join(t.TempDir(), "links")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			link := filepath.Join(dir, "link")
			if err := os.Symlink(f, link); err != nil {
				t.Fatal(err)
			}
			chmod(t, dir, 0o777)
			return link, dir
		}, "the directory holding link"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, atFault := tt.setup(t)
			err := checkTrusted(path, uid)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var ue *UnsafeFileError
			if !errors.Is(err, ErrUnsafeFile) || !errors.As(err, &ue) {
				t.Fatalf("error %v, want an *UnsafeFileError", err)
			}
			if ue.Path != atFault || !strings.HasPrefix(err.Error(), atFault+" (mode ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to name %s and say %q", err, atFault, tt.want)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("missing file exists")
	}
	if err := checkTrusted(filepath.Join(t.TempDir(), "missing"), uid); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v, want ErrNotExist", err)
	}

	// Ownership: a file owned by another user who is not root. As root the
	// file is given away with chown; otherwise the agent plays another user.
	f := mk(t, 0o700, 0o600)
	owner, agent := uid, uid+1
	if uid == 0 {
		owner, agent = 4242, 0
		if err := os.Chown(f, owner, -1); err != nil {
			t.Fatal(err)
		}
	}
	err := checkTrusted(f, agent)
	var ue *UnsafeFileError
	if !errors.As(err, &ue) || ue.Owner != owner || !strings.Contains(err.Error(), "neither the agent's user") {
		t.Errorf("file of uid %d for an agent of uid %d: %v, want it refused as another user's", owner, agent, err)
	}
	if err := checkTrusted(f, owner); err != nil {
		t.Errorf("file of the agent's own user: %v", err)
	}
	// Hardening.CheckFile is the same check, for the agent's user.
	if err := (Hardening{Geteuid: func() int { return agent }}).CheckFile(f); !errors.As(err, &ue) {
		t.Errorf("CheckFile: %v, want an *UnsafeFileError", err)
	}
}

func chmod(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// TestAuthorizedKeysUnsafe checks that New refuses an authorized_keys file
// others could change, and that a running agent refuses every key from
// the moment the file or its directory becomes writable by others until
// that is undone.
func TestAuthorizedKeysUnsafe(t *testing.T) {
	t.Run("New", func(t *testing.T) {
		dir := t.TempDir()
		authFile := filepath.Join(dir, "authorized_keys")
		if err := os.WriteFile(authFile, newUserKey(t, dir, "k").authKey, 0o600); err != nil {
			t.Fatal(err)
		}
		chmod(t, authFile, 0o666)
		logger, _ := testLogger(t)
		_, err := New(Config{HostKeyFile: filepath.Join(dir, "host_key"), AuthorizedKeys: authFile, Logger: logger})
		if !errors.Is(err, ErrAuthorizedKeys) || !errors.Is(err, ErrUnsafeFile) ||
			!strings.Contains(err.Error(), authFile+" (mode 0666, owner uid") {
			t.Fatalf("New: %v, want ErrAuthorizedKeys and ErrUnsafeFile naming %s and its mode", err, authFile)
		}
	})
	t.Run("while running", func(t *testing.T) {
		a := startAgent(t, nil)
		dial := func() error {
			c, err := a.tryDial(a.client.signer)
			if err == nil {
				c.Close()
			}
			return err
		}
		if err := dial(); err != nil {
			t.Fatalf("dial with a safe file: %v", err)
		}
		for _, tt := range []struct {
			path      string
			bad, good os.FileMode
		}{
			{a.authFile, 0o620, 0o600},
			{filepath.Dir(a.authFile), 0o707, 0o700},
		} {
			chmod(t, tt.path, tt.bad)
			if err := dial(); err == nil {
				t.Errorf("dial accepted with %s at mode %04o", tt.path, tt.bad)
			}
			chmod(t, tt.path, tt.good)
			if err := dial(); err != nil {
				t.Errorf("dial with %s back at mode %04o: %v", tt.path, tt.good, err)
			}
		}
		if log := a.log.String(); !strings.Contains(log, "cannot use authorized_keys") || !strings.Contains(log, "group or other may write") {
			t.Errorf("log lacks the refusal:\n%s", log)
		}
	})
}

// TestCloseOnExec checks both ways of marking descriptors close-on-exec
// on a descriptor opened without O_CLOEXEC, as a parent leaves them.
func TestCloseOnExec(t *testing.T) {
	for name, mark := range map[string]func(first int) error{
		"close_range": closeOnExecFrom,
		"/proc":       closeOnExecProc,
	} {
		t.Run(name, func(t *testing.T) {
			fd, err := syscall.Open(os.DevNull, syscall.O_RDONLY, 0) // no O_CLOEXEC
			if err != nil {
				t.Fatal(err)
			}
			defer syscall.Close(fd)
			if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil || flags&unix.FD_CLOEXEC != 0 {
				t.Fatalf("before: flags %#x, %v; want FD_CLOEXEC clear", flags, err)
			}
			if err := mark(fd); err != nil {
				t.Fatal(err)
			}
			if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil || flags&unix.FD_CLOEXEC == 0 {
				t.Fatalf("after: flags %#x, %v; want FD_CLOEXEC set", flags, err)
			}
		})
	}
}

// TestNoNewPrivs checks that a command, and what it runs, has
// no_new_privs set.
func TestNoNewPrivs(t *testing.T) {
	if nnp := threadNoNewPrivs(t); nnp != "0" {
		t.Skipf("the test runs with NoNewPrivs %s already: nothing to show", nnp)
	}
	a := startAgent(t, nil)
	c := a.dial(t, a.client.signer)
	for _, line := range []string{"grep NoNewPrivs /proc/self/status", `sh -c 'grep NoNewPrivs /proc/self/status'`} {
		r := runCommand(t, c, line, nil)
		if got := strings.Join(strings.Fields(string(r.stdout)), " "); got != "NoNewPrivs: 1" || r.exitStatus != 0 {
			t.Errorf("%s: %q, status %d; want NoNewPrivs: 1", line, r.stdout, r.exitStatus)
		}
	}
}

// threadNoNewPrivs returns the NoNewPrivs value of the calling thread,
// which is what a process it started would have inherited.
func threadNoNewPrivs(t *testing.T) string {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	status, err := os.ReadFile("/proc/thread-self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "NoNewPrivs:"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatal("no NoNewPrivs in /proc/thread-self/status")
	return ""
}
