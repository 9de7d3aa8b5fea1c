package agentssh

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/ssh"
)

// TestDialsPaced points hosts at a server that accepts connections and
// never speaks SSH, so that every connection attempt runs to its
// DialTimeout, and checks that no more than MaxDials attempts are under way
// at once; that every host gets its turn, with its whole DialTimeout (the
// wait for a turn does not count: with no retries, each host reaches the
// server once); and that Stats counts the attempts, waits and timeouts.
func TestDialsPaced(t *testing.T) {
	checkLeaks(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// The server counts the connections the pool holds open when it
	// accepts one. The pool closes a connection before it gives up its
	// turn, and on loopback the FIN is queued to the server before the
	// next connection's SYN: so a connection closed is seen as closed
	// (EOF) when the next is accepted.
	var mu sync.Mutex // guards the following
	most, total := 0, 0
	served := make(chan struct{})
	defer func() {
		l.Close()
		<-served
	}()
	go func() {
		defer close(served)
		var open []net.Conn
		defer func() {
			for _, c := range open {
				c.Close()
			}
		}()
		buf := make([]byte, 256)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			still := open[:0]
			for _, o := range open {
				o.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
				var err error
				for err == nil {
					_, err = o.Read(buf)
				}
				if errors.Is(err, os.ErrDeadlineExceeded) {
					still = append(still, o)
				} else {
					o.Close()
				}
			}
			open = append(still, c)
			mu.Lock()
			total++
			most = max(most, len(open))
			mu.Unlock()
		}
	}()

	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	kh := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(kh, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	const hosts, maxDials = 7, 2
	p, err := New(Config{Signer: signer, KnownHostsFile: kh, Logger: log, MaxDials: maxDials,
		DialTimeout: 300 * time.Millisecond, ReconnectMin: time.Hour, ReconnectMax: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for i := range hosts {
		p.Add(string(rune('a'+i)), l.Addr().String())
	}
	sawWaiting := false
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := p.Stats()
		sawWaiting = sawWaiting || st.DialsWaiting > 0
		if st.DialsInProgress > maxDials {
			t.Errorf("Stats: %d dials in progress, more than MaxDials %d", st.DialsInProgress, maxDials)
		}
		if st.Down == hosts {
			if st.Dials != hosts || st.DialFailures != hosts || st.DialTimeouts != hosts || st.DialsWaiting != 0 {
				t.Errorf("Stats %+v: want %d dials, all failed by timeout, none waiting", st, hosts)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Stats %+v: not every host tried within 30s", st)
		}
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if most > maxDials {
		t.Errorf("%d connection attempts at once, want at most MaxDials = %d", most, maxDials)
	}
	if total != hosts {
		t.Errorf("the server saw %d connections, want one per host (%d): a host whose wait counted against its DialTimeout never dials", total, hosts)
	}
	if !sawWaiting {
		t.Error("Stats never showed a host waiting for its turn")
	}
	for _, h := range p.Hosts() {
		if !isTimeout(h.LastError) {
			t.Errorf("%s: last error %v, want a timeout", h.Name, h.LastError)
		}
	}
}
