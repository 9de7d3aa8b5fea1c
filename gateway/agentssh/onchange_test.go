package agentssh

import (
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/zbridge/zbridge/internal/peer"
)

// changes records what Config.OnChange is told.
type changes struct {
	mu  sync.Mutex // guards all
	all []Change
}

func (c *changes) add(ch Change) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.all = append(c.all, ch)
}

func (c *changes) get() []Change {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Change(nil), c.all...)
}

func (c *changes) String() string {
	var b strings.Builder
	for _, ch := range c.get() {
		fmt.Fprintf(&b, "\n\t%s %s: %v", ch.Kind, ch.Name, ch.Err)
	}
	return b.String()
}

// wait waits until n changes were told, and returns the nth.
func (c *changes) wait(t *testing.T, n int, what string) Change {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if all := c.get(); len(all) >= n {
			return all[n-1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s told after 10s; told:%s", what, c)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitFailures waits until n more connection attempts have failed.
func waitFailures(t *testing.T, p *Pool, n uint64) {
	t.Helper()
	from := p.Stats().DialFailures
	deadline := time.Now().Add(10 * time.Second)
	for p.Stats().DialFailures < from+n {
		if time.Now().After(deadline) {
			t.Fatalf("fewer than %d connection attempts failed in 10s", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestOnChange checks what Config.OnChange is told, against a real sshd:
// nothing while the host cannot be reached, however often it is redialled;
// connected once it is; lost once when it crashes, not at each failed
// redial after; refused once when it comes back with another host key,
// not at each refused redial; connected again once its key is pinned; and
// nothing when the host is removed. OnChange calls the pool (Host), which
// must not deadlock, and sees the host's state already changed.
func TestOnChange(t *testing.T) {
	checkLeaks(t)
	f := newFixture(t)
	port := peer.FreePort(t)
	addr := peer.Addr(port)
	hostKey := filepath.Join(f.dir, "host_ed25519")
	firstKey := f.genKey("ed25519", hostKey, "")
	f.pin(addr, firstKey)

	var told changes
	var p *Pool
	p = f.newPool(func(c *Config) {
		c.ReconnectMin, c.ReconnectMax = 20*time.Millisecond, 100*time.Millisecond
		c.OnChange = func(ch Change) {
			info, ok := p.Host(ch.Name)
			want := map[ChangeKind]State{ChangeConnected: StateConnected, ChangeLost: StateDown, ChangeRefused: StateDown}[ch.Kind]
			if !ok || info.State != want {
				t.Errorf("OnChange(%s): the host is %v (known %v), want %v", ch.Kind, info.State, ok, want)
			}
			told.add(ch)
		}
	})
	p.Add("lx1", addr)
	waitFailures(t, p, 3)
	if all := told.get(); len(all) != 0 {
		t.Fatalf("a host that never connected was told of:%s", &told)
	}

	sshd := f.startSSHD(port, hostKey)
	ch := told.wait(t, 1, "connection")
	if ch.Kind != ChangeConnected || ch.Name != "lx1" || ch.Addr != addr || ch.Remote != netip.MustParseAddr("127.0.0.1") ||
		!strings.HasPrefix(ch.ServerVersion, "SSH-2.0-OpenSSH") || ch.Agent ||
		ch.HostKeyFingerprint != ssh.FingerprintSHA256(firstKey) || ch.Err != nil {
		t.Errorf("connected: %+v", ch)
	}

	// A crash of the host: sshd and the processes serving its connections.
	conns := sshd.Descendants()
	sshd.Kill()
	peer.SignalAll(t, conns, syscall.SIGKILL)
	ch = told.wait(t, 2, "lost connection")
	if ch.Kind != ChangeLost || ch.Name != "lx1" || ch.Err == nil || !strings.HasPrefix(ch.ServerVersion, "SSH-2.0-OpenSSH") ||
		ch.Remote != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("lost: %+v", ch)
	}
	waitFailures(t, p, 3)
	if n := len(told.get()); n != 2 {
		t.Fatalf("failed redials after a lost connection were told of:%s", &told)
	}

	// Back with another host key: refused, told once however often the
	// pool redials.
	secondKey := f.genKey("ed25519", hostKey, "")
	sshd.Restart()
	ch = told.wait(t, 3, "refused host key")
	if ch.Kind != ChangeRefused || !errors.Is(ch.Err, ErrHostKeyMismatch) ||
		ch.HostKeyFingerprint != ssh.FingerprintSHA256(secondKey) || ch.ServerVersion != "" || ch.Remote.IsValid() {
		t.Errorf("refused: %+v", ch)
	}
	waitFailures(t, p, 3)
	if n := len(told.get()); n != 3 {
		t.Fatalf("refused redials were told of more than once:%s", &told)
	}

	// Yet another key: refused, and told of again (another key is another
	// event for whoever watches for impersonation).
	thirdKey := f.genKey("ed25519", hostKey, "")
	sshd.Restart()
	ch = told.wait(t, 4, "another refused host key")
	if ch.Kind != ChangeRefused || ch.HostKeyFingerprint != ssh.FingerprintSHA256(thirdKey) {
		t.Errorf("refused again: %+v", ch)
	}
	waitFailures(t, p, 3)
	if n := len(told.get()); n != 4 {
		t.Fatalf("refused redials with the third key were told of more than once:%s", &told)
	}

	// The operator pins the new key: connected again.
	f.pin(addr, thirdKey)
	ch = told.wait(t, 5, "connection with the new key")
	if ch.Kind != ChangeConnected || ch.HostKeyFingerprint != ssh.FingerprintSHA256(thirdKey) {
		t.Errorf("connected again: %+v", ch)
	}

	// Removing the host closes its connection: nothing is told.
	p.Remove("lx1")
	time.Sleep(200 * time.Millisecond)
	p.Close()
	if n := len(told.get()); n != 5 {
		t.Errorf("removing a host was told of:%s", &told)
	}
}
