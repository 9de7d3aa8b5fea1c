package peer

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// S3270 is a running s3270, the scripted 3270 terminal of the x3270
// family, driven one action at a time on its stdin: a test uses it as a
// real operator's terminal. Do and Status may be called from any goroutine
// (actions run one at a time); the methods that fail the test only from the
// test's own.
//
// An action is answered by s3270 with data lines, a status line (see
// [S3270Status]) and ok or error; an action that gets no answer within 20 s
// ends s3270 and is an error.
type S3270 struct {
	t      testing.TB
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *bufio.Reader
	stderr bytes.Buffer  // written by exec's copier until done is closed
	done   chan struct{} // closed when s3270 has exited and been waited for

	mu     sync.Mutex // one action at a time; guards the following field
	status string     // the status line of the last action answered
}

// s3270ActionTimeout bounds one action, generously: CI machines are
// loaded. Wait actions such as Wait(15,Unlock) must wait less.
const s3270ActionTimeout = 20 * time.Second

// s3270Poll is how often the Wait methods look at the screen.
const s3270Poll = 20 * time.Millisecond

// StartS3270 starts s3270 with args, such as
//
//	-model 3278-4         the terminal model
//	-codepage cp1047      the host code page (default: bracket)
//	-cafile ca.pem        the CA to check a TLS host's certificate with; connect
//	-accepthostname NAME  to L:host:port, and name the certificate's DNS name:
//	                      s3270 4.1 does not match IP addresses
//
// It skips or fails the test as [Require] does when s3270 is missing,
// starts it from the peers' spawner thread ([StartCmd]) in a process group
// of its own, and stops it when the test ends, showing its standard error
// in the test log if the test failed. The terminal starts disconnected:
// run Connect(host:port).
func StartS3270(t testing.TB, args ...string) *S3270 {
	t.Helper()
	path := Require(t, "s3270")
	cmd := exec.Command(path, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	s := &S3270{t: t, cmd: cmd, done: make(chan struct{})}
	cmd.Stderr = &s.stderr
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
	s.in, s.out = in, bufio.NewReader(out)
	go func() { cmd.Wait(); close(s.done) }()
	t.Cleanup(s.stop)
	return s
}

// stop ends s3270 at the end of its input, or with SIGKILL to its group if
// it lingers, and waits for it.
func (s *S3270) stop() {
	s.in.Close()
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		s.kill()
		<-s.done
	}
	if s.t.Failed() && s.stderr.Len() > 0 {
		s.t.Logf("s3270 stderr:\n%s", s.stderr.String())
	}
}

// kill sends SIGKILL to s3270's process group, unless it has been waited
// for (its group id may be someone else's then).
func (s *S3270) kill() {
	select {
	case <-s.done:
	default:
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	}
}

// Do runs one action, such as `Connect(127.0.0.1:3270)` or `PF(3)`, and
// returns its data lines (without "data: ") and the status line. An action
// s3270 answers with error is returned as an error with its data.
func (s *S3270) Do(action string) (data []string, status string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	timer := time.AfterFunc(s3270ActionTimeout, s.kill) // the read below then ends
	defer timer.Stop()
	if _, err := io.WriteString(s.in, action+"\n"); err != nil {
		return nil, "", fmt.Errorf("peer: s3270: %s: %w", action, err)
	}
	for {
		line, err := s.out.ReadString('\n')
		if err != nil {
			if !timer.Stop() {
				return data, status, fmt.Errorf("peer: s3270: %s: no answer within %v", action, s3270ActionTimeout)
			}
			return data, status, fmt.Errorf("peer: s3270: %s: %w", action, err)
		}
		line = strings.TrimRight(line, "\r\n")
		switch {
		case strings.HasPrefix(line, "data: "):
			data = append(data, line[len("data: "):])
		case line == "data:":
			data = append(data, "")
		case line == "ok":
			s.status = status
			return data, status, nil
		case line == "error":
			s.status = status
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

// Type types text at the cursor: String() with text quoted.
func (s *S3270) Type(text string) {
	s.t.Helper()
	s.Must(`String("` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(text) + `")`)
}

// S3270Status is s3270's status line, which it writes before the ok or
// error of every action. Fields the line lacks are zero.
type S3270Status struct {
	Line                 string // the line as s3270 wrote it
	Connected            bool   // connected to a host: field 4 is C(host)
	Rows, Cols           int    // the screen's size: fields 7 and 8
	CursorRow, CursorCol int    // the cursor, from 0: fields 9 and 10
}

// Status returns the status line of the last action s3270 answered.
func (s *S3270) Status() S3270Status {
	s.mu.Lock()
	line := s.status
	s.mu.Unlock()
	st := S3270Status{Line: line}
	f := strings.Fields(line)
	num := func(i int) int {
		if i >= len(f) {
			return 0
		}
		n, _ := strconv.Atoi(f[i])
		return n
	}
	st.Connected = len(f) > 3 && strings.HasPrefix(f[3], "C(")
	st.Rows, st.Cols = num(6), num(7)
	st.CursorRow, st.CursorCol = num(8), num(9)
	return st
}

// Screen returns the screen's rows as text (Ascii()).
func (s *S3270) Screen() []string {
	s.t.Helper()
	return s.Must("Ascii()")
}

// FieldAttrs returns the attributes of the field whose attribute byte is
// at row, col (from 0), as ReadBuffer(Ascii) shows them: hex attribute
// type to hex value, such as c0 (the basic attribute), 41 (highlighting)
// and 42 (colour: f1 blue, f2 red, f4 green, f6 yellow...). It returns nil
// when no field starts there.
func (s *S3270) FieldAttrs(row, col int) map[string]string {
	s.t.Helper()
	buf := s.Must("ReadBuffer(Ascii)")
	if row < 0 || row >= len(buf) {
		return nil
	}
	pos := strings.Fields(buf[row]) // one position each: 41, SA(..) or SF(..)
	if col < 0 || col >= len(pos) {
		return nil
	}
	list, ok := strings.CutPrefix(pos[col], "SF(")
	if list, ok = strings.CutSuffix(list, ")"); !ok {
		return nil
	}
	attrs := map[string]string{}
	for _, kv := range strings.Split(list, ",") {
		k, v, _ := strings.Cut(kv, "=")
		attrs[k] = v
	}
	return attrs
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
			s.t.Fatalf("the screen never showed %s within %v; it shows:\n%s", what, within, DumpScreen(rows))
		}
		time.Sleep(s3270Poll)
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

// WaitDisconnected waits until the host has closed the connection, or
// fails the test after within, showing the screen (which s3270 keeps).
func (s *S3270) WaitDisconnected(within time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(within)
	for {
		s.Must("Query(ConnectionState)")
		if !s.Status().Connected {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("still connected after %v; the screen:\n%s", within, DumpScreen(s.Screen()))
		}
		time.Sleep(s3270Poll)
	}
}

// DumpScreen formats rows for a test's log, one a line with its number
// and its ends marked: " 2|text   |".
func DumpScreen(rows []string) string {
	var b strings.Builder
	for i, r := range rows {
		fmt.Fprintf(&b, "%2d|%s|\n", i, r)
	}
	return b.String()
}
