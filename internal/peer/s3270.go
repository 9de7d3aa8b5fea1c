package peer

import (
	"bufio"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// S3270 is a running s3270, the scripted 3270 terminal of the x3270
// family, driven one action at a time on its stdin: a test uses it as a
// real operator's terminal.
type S3270 struct {
	t    testing.TB
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Reader
	mu   sync.Mutex // one action at a time
	done chan struct{}
}

// StartS3270 starts s3270 with args (such as -model 3278-2); it skips or
// fails the test as [Require] does when s3270 is missing, and is stopped
// when the test ends.
func StartS3270(t testing.TB, args ...string) *S3270 {
	t.Helper()
	path := Require(t, "s3270")
	cmd := exec.Command(path, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := StartCmd(cmd); err != nil {
		t.Fatalf("peer: s3270: %v", err)
	}
	s := &S3270{t: t, cmd: cmd, in: in, out: bufio.NewReader(out), done: make(chan struct{})}
	go func() { cmd.Wait(); close(s.done) }()
	t.Cleanup(s.stop)
	return s
}

func (s *S3270) stop() {
	s.in.Close() // s3270 exits at the end of its input
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
}

// Do runs one action, such as `Connect(127.0.0.1:3270)` or `PF(3)`, and
// returns its data lines (without "data: ") and the status line. An action
// s3270 answers with error is returned as an error with its data.
func (s *S3270) Do(action string) (data []string, status string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := io.WriteString(s.in, action+"\n"); err != nil {
		return nil, "", fmt.Errorf("peer: s3270: %s: %w", action, err)
	}
	for {
		line, err := s.out.ReadString('\n')
		if err != nil {
			return data, status, fmt.Errorf("peer: s3270: %s: %w", action, err)
		}
		line = strings.TrimRight(line, "\r\n")
		switch {
		case strings.HasPrefix(line, "data: "):
			data = append(data, line[len("data: "):])
		case line == "data:":
			data = append(data, "")
		case line == "ok":
			return data, status, nil
		case line == "error":
			return data, status, fmt.Errorf("peer: s3270: %s: error: %s", action, strings.Join(data, " / "))
		default:
			status = line
		}
	}
}

// Must runs an action and fails the test if s3270 answers error.
func (s *S3270) Must(action string) []string {
	s.t.Helper()
	data, _, err := s.Do(action)
	if err != nil {
		s.t.Fatal(err)
	}
	return data
}

// Screen returns the screen's rows as text (Ascii()).
func (s *S3270) Screen() []string {
	s.t.Helper()
	return s.Must("Ascii()")
}

// WaitScreen polls the screen until match accepts it, or fails the test
// after within, showing the last screen.
func (s *S3270) WaitScreen(within time.Duration, what string, match func(rows []string) bool) []string {
	s.t.Helper()
	deadline := time.Now().Add(within)
	for {
		rows := s.Screen()
		if match(rows) {
			return rows
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("the screen never showed %s within %v; it shows:\n%s", what, within, strings.Join(rows, "\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// WaitText waits until some row of the screen contains text.
func (s *S3270) WaitText(within time.Duration, text string) []string {
	s.t.Helper()
	return s.WaitScreen(within, fmt.Sprintf("%q", text), func(rows []string) bool {
		for _, r := range rows {
			if strings.Contains(r, text) {
				return true
			}
		}
		return false
	})
}
