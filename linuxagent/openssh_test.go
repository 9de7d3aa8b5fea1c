package linuxagent

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zbridge/zbridge/internal/peer"
)

// openSSH runs OpenSSH's ssh client against an agent, with host-key
// checking against a known_hosts file that pins the agent's key.
type openSSH struct {
	path       string
	key        string // private key file
	knownHosts string
	port       int
}

func newOpenSSH(t *testing.T, a *testAgent) *openSSH {
	t.Helper()
	return &openSSH{path: peer.Require(t, "ssh"), key: a.client.file, knownHosts: a.knownHosts(t), port: a.port}
}

// args returns ssh's arguments: the fixed options, then extra, then the
// destination (and, after it, whatever the caller appends: the command).
func (s *openSSH) args(extra ...string) []string {
	args := []string{"-F", "/dev/null", "-i", s.key, "-o", "IdentitiesOnly=yes",
		"-o", "UserKnownHostsFile=" + s.knownHosts, "-o", "StrictHostKeyChecking=yes",
		"-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-p", strconv.Itoa(s.port)}
	args = append(args, extra...)
	return append(args, "zbridge@127.0.0.1")
}

// sshResult is what one ssh run gave.
type sshResult struct {
	stdout, stderr []byte
	code           int
}

// run runs ssh with extra options and the command words (none: a
// shell), stdin /dev/null, and waits for it.
func (s *openSSH) run(t *testing.T, extra []string, command ...string) sshResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.path, append(s.args(extra...), command...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	code := 0
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("ssh: %v", err)
	}
	if ctx.Err() != nil {
		t.Fatalf("ssh %q did not finish in time; stderr %q", command, stderr.Bytes())
	}
	return sshResult{stdout.Bytes(), stderr.Bytes(), code}
}

func TestOpenSSHRunsCommands(t *testing.T) {
	a := startAgent(t, nil)
	s := newOpenSSH(t, a)

	t.Run("stdout", func(t *testing.T) {
		r := s.run(t, nil, "echo", "hello", "world")
		if string(r.stdout) != "hello world\n" || r.code != 0 {
			t.Errorf("stdout %q, exit %d, stderr %q", r.stdout, r.code, r.stderr)
		}
	})
	t.Run("exit status", func(t *testing.T) {
		if r := s.run(t, nil, "false"); r.code != 1 {
			t.Errorf("false: exit %d", r.code)
		}
		if r := s.run(t, nil, "sh -c 'exit 3'"); r.code != 3 {
			t.Errorf("sh -c 'exit 3': exit %d, stderr %q", r.code, r.stderr)
		}
	})
	t.Run("stderr apart", func(t *testing.T) {
		r := s.run(t, nil, `sh -c 'echo out; echo err >&2; exit 4'`)
		if string(r.stdout) != "out\n" || string(r.stderr) != "err\n" || r.code != 4 {
			t.Errorf("stdout %q, stderr %q, exit %d", r.stdout, r.stderr, r.code)
		}
	})
	t.Run("binary output", func(t *testing.T) {
		var all []byte
		for range 64 {
			for b := 0; b < 256; b++ {
				all = append(all, byte(b))
			}
		}
		file := filepath.Join(a.dir, "bytes.bin")
		if err := os.WriteFile(file, all, 0o644); err != nil {
			t.Fatal(err)
		}
		r := s.run(t, nil, "cat", file)
		if !bytes.Equal(r.stdout, all) || r.code != 0 {
			t.Errorf("cat of all byte values: got %d bytes (equal: %v), exit %d", len(r.stdout), bytes.Equal(r.stdout, all), r.code)
		}
	})
	t.Run("lines in order", func(t *testing.T) {
		var want strings.Builder
		for i := 1; i <= 20000; i++ {
			fmt.Fprintf(&want, "%d\n", i)
		}
		r := s.run(t, nil, "seq", "1", "20000")
		if string(r.stdout) != want.String() {
			t.Errorf("seq 1 20000: got %d bytes, want %d in order", len(r.stdout), want.Len())
		}
	})
	t.Run("output cap", func(t *testing.T) {
		r := s.run(t, nil, "head", "-c", "10000000", "/dev/zero")
		if len(r.stdout) != DefaultOutputCap || !bytes.Equal(r.stdout, make([]byte, DefaultOutputCap)) {
			t.Errorf("10 MB of output: %d bytes arrived, want the cap, %d", len(r.stdout), DefaultOutputCap)
		}
		if !strings.Contains(string(r.stderr), "zbridge-agent: output truncated at 1048576 bytes") {
			t.Errorf("stderr %q: want the truncation said", r.stderr)
		}
		t.Logf("ssh exit %d", r.code) // 255 when head died of SIGTERM
	})
	t.Run("not found", func(t *testing.T) {
		r := s.run(t, nil, "no-such-program-zbridge")
		if r.code != 127 || string(r.stderr) != "zbridge-agent: not found: no-such-program-zbridge\n" {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
}

func TestOpenSSHPolicy(t *testing.T) {
	a := startAgent(t, func(c *Config) { c.Policy = mustPolicy(t, "allow echo *\nallow id -u\ndeny *\n") })
	s := newOpenSSH(t, a)
	if r := s.run(t, nil, "echo", "allowed"); string(r.stdout) != "allowed\n" || r.code != 0 {
		t.Errorf("allowed: stdout %q, exit %d", r.stdout, r.code)
	}
	r := s.run(t, nil, "cat", "/etc/passwd")
	if r.code != 126 || len(r.stdout) != 0 ||
		string(r.stderr) != `zbridge-agent: not permitted: "cat /etc/passwd" is denied by the policy (line 3)`+"\n" {
		t.Errorf("denied: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = s.run(t, nil, "echo a; id")
	if r.code != 126 || len(r.stdout) != 0 || !strings.Contains(string(r.stderr), "zbridge-agent: not permitted: shell syntax") ||
		!strings.Contains(string(r.stderr), "policy does not allow sh -c") {
		t.Errorf("shell syntax: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

func TestOpenSSHTimeoutKillsProcessTree(t *testing.T) {
	a := startAgent(t, func(c *Config) {
		c.Policy = mustPolicy(t, "shell yes\ndefault allow\ntimeout 2s\n")
	})
	s := newOpenSSH(t, a)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	// The outer sh leads the group; $$ is its PID, the group's ID.
	cmd := exec.CommandContext(ctx, s.path, append(s.args(), `echo $$; sh -c 'sleep 1000 & sleep 1000'`)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the group ID: %v (stderr %q)", err, stderr.String())
	}
	pgid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the background grandchild", func() bool { return len(liveGroupMembers(t, pgid)) >= 3 })
	io.Copy(io.Discard, out)
	err = cmd.Wait()
	t.Logf("ssh: %v", err)
	// The agent reports only once the group is gone, so none is left now.
	if live := liveGroupMembers(t, pgid); len(live) > 0 {
		t.Errorf("process group %d outlived the timeout: %q", pgid, live)
	}
	if !strings.Contains(stderr.String(), "zbridge-agent: timed out after 2s") {
		t.Errorf("stderr %q: want the timeout said", stderr.String())
	}
}

func TestOpenSSHRefusals(t *testing.T) {
	a := startAgent(t, nil)
	s := newOpenSSH(t, a)

	for _, tt := range []struct {
		name    string
		extra   []string
		command []string
		stderr  string
	}{
		{"shell", nil, nil, "shell request failed"},
		{"shell with tty", []string{"-tt"}, nil, "PTY allocation request failed"},
		{"pty", []string{"-tt"}, []string{"echo", "hi"}, "PTY allocation request failed"},
		{"sftp subsystem", []string{"-s"}, []string{"sftp"}, "subsystem request failed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := s.run(t, tt.extra, tt.command...)
			if r.code != 255 || !strings.Contains(string(r.stderr), tt.stderr) || bytes.Contains(r.stdout, []byte("hi")) {
				t.Errorf("exit %d, stdout %q, stderr %q; want 255 and %q", r.code, r.stdout, r.stderr, tt.stderr)
			}
		})
	}
	t.Run("wrong key", func(t *testing.T) {
		stranger := newUserKey(t, t.TempDir(), "stranger")
		w := *s
		w.key = stranger.file
		r := w.run(t, nil, "echo", "hi")
		if r.code != 255 || !strings.Contains(string(r.stderr), "Permission denied (publickey)") || len(r.stdout) > 0 {
			t.Errorf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("wrong host key", func(t *testing.T) {
		other := newUserKey(t, t.TempDir(), "other")
		w := *s
		w.knownHosts = writeKnownHosts(t, t.TempDir(), a.port, other.signer.PublicKey())
		r := w.run(t, nil, "echo", "hi")
		if r.code != 255 || !strings.Contains(string(r.stderr), "Host key verification failed") {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
	t.Run("local forward", func(t *testing.T) {
		// A target the forward would reach; nothing must connect to it.
		target, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer target.Close()
		reached := make(chan struct{}, 1)
		go func() {
			if c, err := target.Accept(); err == nil {
				c.Close()
				reached <- struct{}{}
			}
		}()
		lport := peer.FreePort(t)
		fwd := peer.Start(t, peer.Command{
			Name:  "ssh-L",
			Path:  s.path,
			Args:  s.args("-N", "-o", "ExitOnForwardFailure=yes", "-L", fmt.Sprintf("127.0.0.1:%d:%s", lport, target.Addr())),
			Ready: peer.TCPReady(peer.Addr(lport)),
		})
		c, err := net.DialTimeout("tcp", peer.Addr(lport), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := c.Read(make([]byte, 1))
		if n != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("read through the forward: %d bytes, %v; want it closed at once", n, err)
		}
		waitFor(t, "ssh to report the refusal", func() bool { return strings.Contains(fwd.Log(), "administratively prohibited") })
		select {
		case <-reached:
			t.Error("the forward reached its target")
		case <-time.After(100 * time.Millisecond):
		}
	})
	t.Run("remote forward", func(t *testing.T) {
		rport := peer.FreePort(t)
		r := s.run(t, []string{"-N", "-o", "ExitOnForwardFailure=yes", "-R", fmt.Sprintf("127.0.0.1:%d:127.0.0.1:9", rport)})
		if r.code != 255 || !strings.Contains(string(r.stderr), "remote port forwarding failed") {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
		if c, err := net.DialTimeout("tcp", peer.Addr(rport), time.Second); err == nil {
			c.Close()
			t.Error("the remote forward's port is listening")
		}
	})
}
