package agentssh

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// rogueAgent is an SSH server that calls itself the Linux agent, answers
// keepalives, and holds back its answers to session channel opens
// (holdOpens) or to exec requests until release is closed: a host that is
// broken, or an attacker who took the agent's place.
type rogueAgent struct {
	addr      string
	holdOpens bool
	release   chan struct{} // closed: answer what was held (exec yes; opens stay held)
	done      chan struct{} // closed at cleanup

	mu       sync.Mutex // guards the following fields
	channels []int      // session channels the region opened, by connection
	conns    []net.Conn
	wg       sync.WaitGroup // the server's goroutines
}

// startRogueAgent serves a rogueAgent on loopback until the test ends, and
// returns it with a known_hosts file that pins its key for name.
func startRogueAgent(t *testing.T, name string, holdOpens bool) (*rogueAgent, string) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	hostKey, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &ssh.ServerConfig{NoClientAuth: true, ServerVersion: AgentVersionPrefix}
	cfg.AddHostKey(hostKey)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &rogueAgent{addr: l.Addr().String(), holdOpens: holdOpens, release: make(chan struct{}), done: make(chan struct{})}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			r.mu.Lock()
			r.conns = append(r.conns, nc)
			r.channels = append(r.channels, 0)
			i := len(r.channels) - 1
			r.mu.Unlock()
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				r.serve(nc, cfg, i)
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		close(r.done)
		r.mu.Lock()
		for _, nc := range r.conns {
			nc.Close()
		}
		r.mu.Unlock()
		r.wg.Wait()
	})
	kh := filepath.Join(t.TempDir(), "known_hosts")
	line := knownhosts.Line([]string{name + NameSuffix, r.addr}, hostKey.PublicKey())
	if err := os.WriteFile(kh, []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return r, kh
}

// serve serves connection i.
func (r *rogueAgent) serve(nc net.Conn, cfg *ssh.ServerConfig, i int) {
	defer nc.Close()
	_, chans, reqs, err := ssh.NewServerConn(nc, cfg)
	if err != nil {
		return
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for req := range reqs {
			req.Reply(true, nil) // keepalives: this host looks alive
		}
	}()
	var held []ssh.NewChannel // opens never answered
	for nch := range chans {
		r.mu.Lock()
		r.channels[i]++
		r.mu.Unlock()
		if r.holdOpens {
			held = append(held, nch)
			continue
		}
		_, creqs, err := nch.Accept()
		if err != nil {
			continue
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			for req := range creqs {
				if req.Type != "exec" {
					continue // env: no reply wanted; signal: none sent
				}
				r.wg.Add(1)
				go func() {
					defer r.wg.Done()
					select {
					case <-r.release:
						req.Reply(true, nil)
					case <-r.done:
					}
				}()
			}
		}()
	}
}

// opened returns how many session channels the region opened over each
// connection.
func (r *rogueAgent) opened() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int(nil), r.channels...)
}

// opening counts the pool's goroutines (Pool.open's) that wait for a
// host's answer to the opening of a session channel or to an exec request.
func opening() int {
	buf := make([]byte, 16<<20)
	n := 0
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if strings.Contains(g, "agentssh.(*Pool).open.func") &&
			(strings.Contains(g, "agentssh.startCommand") || strings.Contains(g, ").OpenChannel(")) {
			n++
		}
	}
	return n
}

// TestHostNeverAnswers runs commands, each given up on after 5 ms, on a
// host that never answers their exec requests, or never answers the
// opening of their session channels: x/crypto/ssh waits for an answer
// until the connection ends, and the goroutine waiting must keep its
// command's place among MaxSessionsPerHost, so that Run says busy beyond
// them and no more are opened or wait (before, every command left one
// waiting, for ever). AnswerTimeout after the first was given up on, the
// connection is closed (told as lost, with why), which ends the waits,
// and redialled.
func TestHostNeverAnswers(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out AnswerTimeout: not in -short")
	}
	for _, tc := range []struct {
		name      string
		holdOpens bool
	}{
		{"exec", false},
		{"session open", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkLeaks(t)
			rogue, kh := startRogueAgent(t, "rogue", tc.holdOpens)
			var told changes
			p := newRoguePool(t, kh, 3*time.Second, told.add)
			p.Add("rogue", rogue.addr)
			waitConnected(t, p, "rogue")

			const n = 50
			busy := 0
			for i := range n {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
				_, err := p.Run(ctx, "rogue", Command{Line: "true", Timeout: time.Second}, nil)
				cancel()
				switch {
				case errors.Is(err, ErrBusy):
					busy++
				case !errors.Is(err, ErrTimeout) && !errors.Is(err, ErrNotConnected) && !errors.Is(err, ErrConnLost):
					t.Errorf("Run %d: %v; want ErrTimeout, or ErrBusy past MaxSessionsPerHost", i, err)
				}
				if k := opening(); k > DefaultMaxSessionsPerHost {
					t.Fatalf("after %d commands given up on, %d wait for the host's answer; want at most %d", i+1, k, DefaultMaxSessionsPerHost)
				}
			}
			for i, k := range rogue.opened() {
				if k > DefaultMaxSessionsPerHost {
					t.Errorf("connection %d: %d session channels opened; want at most %d", i, k, DefaultMaxSessionsPerHost)
				}
			}
			if busy == 0 {
				t.Errorf("no Run said busy, with %d commands waiting for their answers", DefaultMaxSessionsPerHost)
			}
			t.Logf("%d of %d commands busy; channels opened by connection %v; %d waiting for answers", busy, n, rogue.opened(), opening())

			lost := told.wait(t, 2, "connection lost")
			if lost.Kind != ChangeLost || !errors.Is(lost.Err, errNoAnswer) {
				t.Fatalf("told %v %v; want lost for no answer", lost.Kind, lost.Err)
			}
			waitHost(t, p, "rogue", 10*time.Second, "redialled, with no command running", func(hi HostInfo) bool {
				return hi.State == StateConnected && hi.Sessions == 0 && len(rogue.opened()) >= 2
			})
			deadline := time.Now().Add(10 * time.Second)
			for opening() > 0 {
				if time.Now().After(deadline) {
					t.Fatalf("%d goroutines still wait for answers over the closed connection", opening())
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

// TestHostAnswersLate holds back the answers to the exec requests of
// commands given up on: their places among MaxSessionsPerHost stay taken
// until the answers come (Run says busy meanwhile), and are given back
// then; the connection is kept.
func TestHostAnswersLate(t *testing.T) {
	if testing.Short() {
		t.Skip("holds answers back for seconds: not in -short")
	}
	checkLeaks(t)
	rogue, kh := startRogueAgent(t, "late", false)
	var told changes
	const answerTimeout = 5 * time.Second
	p := newRoguePool(t, kh, answerTimeout, told.add)
	p.Add("late", rogue.addr)
	waitConnected(t, p, "late")
	for i := range DefaultMaxSessionsPerHost {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
		_, err := p.Run(ctx, "late", Command{Line: "true"}, nil)
		cancel()
		if !errors.Is(err, ErrTimeout) {
			t.Fatalf("Run %d: %v; want ErrTimeout", i, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer cancel()
	if _, err := p.Run(ctx, "late", Command{Line: "true"}, nil); !errors.Is(err, ErrBusy) {
		t.Fatalf("Run with %d commands waiting for answers: %v; want ErrBusy", DefaultMaxSessionsPerHost, err)
	}
	if info, _ := p.Host("late"); info.Sessions != DefaultMaxSessionsPerHost {
		t.Errorf("Sessions %d; want %d", info.Sessions, DefaultMaxSessionsPerHost)
	}
	close(rogue.release)
	waitHost(t, p, "late", 10*time.Second, "without commands once answered", func(hi HostInfo) bool { return hi.Sessions == 0 })
	// Past AnswerTimeout, the connection is still the first.
	time.Sleep(answerTimeout + time.Second)
	if info, _ := p.Host("late"); info.State != StateConnected || len(rogue.opened()) != 1 {
		t.Errorf("host %v after %d connections; want connected over the first; told:%s", info.State, len(rogue.opened()), &told)
	}
}

// newRoguePool returns a pool with answerTimeout for a rogueAgent pinned
// in kh; it is closed at the end of the test.
func newRoguePool(t *testing.T, kh string, answerTimeout time.Duration, onChange func(Change)) *Pool {
	t.Helper()
	_, cp, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(cp)
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(Config{Signer: signer, KnownHostsFile: kh, Logger: quietLogger(), DialJitter: -1,
		ReconnectMin: 50 * time.Millisecond, AnswerTimeout: answerTimeout, OnChange: onChange})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}
