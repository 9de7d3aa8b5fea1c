package peer

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

// KeyUpdater is a hostile TLS 1.3 client: after crypto/tls's handshake it
// writes records itself, with the client's traffic keys, so that it can
// send KeyUpdate messages that request an update, which crypto/tls's
// client never does, and leave the answers unread. crypto/tls writes its
// answer from inside the server's Read: once the socket buffers are full,
// that write waits for room, and only a write deadline ends it.
type KeyUpdater struct {
	conn   net.Conn
	secret []byte // the client's application traffic secret now
	aead   cipher.AEAD
	iv     []byte
	seq    uint64
}

// DialKeyUpdater connects to the TLS server at addr with small socket
// buffers (2 KiB to receive, 4 KiB to send, so that they fill soon) and
// completes a TLS 1.3 handshake with a clone of cfg. It speaks
// TLS_AES_128_GCM_SHA256 only, which crypto/tls's server picks where AES
// has hardware support: the test is skipped when the server picked
// another. The connection is closed when the test ends.
func DialKeyUpdater(t testing.TB, addr string, cfg *tls.Config) *KeyUpdater {
	t.Helper()
	d := net.Dialer{Timeout: 20 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) {
			syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 2048)
			syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, 4096)
		})
	}}
	raw, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("peer.DialKeyUpdater: %v", err)
	}
	t.Cleanup(func() { raw.Close() })
	var keys bytes.Buffer
	cfg = cfg.Clone()
	cfg.MinVersion, cfg.MaxVersion, cfg.KeyLogWriter = tls.VersionTLS13, tls.VersionTLS13, &keys
	tc := tls.Client(raw, cfg)
	raw.SetDeadline(time.Now().Add(20 * time.Second))
	if err := tc.Handshake(); err != nil {
		t.Fatalf("peer.DialKeyUpdater: handshake: %v", err)
	}
	raw.SetDeadline(time.Time{})
	if cs := tc.ConnectionState().CipherSuite; cs != tls.TLS_AES_128_GCM_SHA256 {
		t.Skipf("peer.DialKeyUpdater: cipher suite %s; it writes TLS_AES_128_GCM_SHA256 records only", tls.CipherSuiteName(cs))
	}
	k := &KeyUpdater{conn: raw}
	for line := range strings.Lines(keys.String()) {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "CLIENT_TRAFFIC_SECRET_0" {
			secret, err := hex.DecodeString(f[2])
			if err != nil {
				t.Fatalf("peer.DialKeyUpdater: key log: %v", err)
			}
			k.setSecret(secret)
		}
	}
	if k.secret == nil {
		t.Fatalf("peer.DialKeyUpdater: no CLIENT_TRAFFIC_SECRET_0 in the key log:\n%s", keys.String())
	}
	return k
}

// expandLabel is TLS 1.3's HKDF-Expand-Label with SHA-256 and no context.
func expandLabel(secret []byte, label string, n int) []byte {
	var info []byte
	info = binary.BigEndian.AppendUint16(info, uint16(n))
	info = append(info, byte(len("tls13 "+label)))
	info = append(info, "tls13 "+label...)
	info = append(info, 0)
	out, err := hkdf.Expand(sha256.New, secret, string(info), n)
	if err != nil {
		panic(err) // only for n over 255 hashes
	}
	return out
}

func (k *KeyUpdater) setSecret(secret []byte) {
	k.secret = secret
	block, err := aes.NewCipher(expandLabel(secret, "key", 16))
	if err != nil {
		panic(err) // only for a key of another size
	}
	if k.aead, err = cipher.NewGCM(block); err != nil {
		panic(err)
	}
	k.iv = expandLabel(secret, "iv", 12)
	k.seq = 0
}

// record writes one record of contentType, waiting at most wait.
func (k *KeyUpdater) record(contentType byte, data []byte, wait time.Duration) error {
	inner := append(append([]byte(nil), data...), contentType)
	hdr := []byte{23, 3, 3, 0, 0} // application_data, TLS 1.2, length
	binary.BigEndian.PutUint16(hdr[3:], uint16(len(inner)+k.aead.Overhead()))
	nonce := append([]byte(nil), k.iv...)
	for i := range 8 {
		nonce[4+i] ^= byte(k.seq >> (56 - 8*i))
	}
	k.seq++
	k.conn.SetWriteDeadline(time.Now().Add(wait))
	_, err := k.conn.Write(k.aead.Seal(hdr, nonce, inner, hdr))
	return err
}

// KeyUpdate sends KeyUpdate(update_requested), waiting at most wait, and
// moves on to the next traffic secret.
func (k *KeyUpdater) KeyUpdate(wait time.Duration) error {
	if err := k.record(22, []byte{24, 0, 0, 1, 1}, wait); err != nil {
		return err
	}
	k.setSecret(expandLabel(k.secret, "traffic upd", 32))
	return nil
}

// Write sends p as one application data record, waiting at most wait.
func (k *KeyUpdater) Write(p []byte, wait time.Duration) error {
	return k.record(23, p, wait)
}

// Stall sends KeyUpdate messages 15 at a time (crypto/tls takes at most
// 16 records in a row without data), each batch followed by a record of
// data(), until the server stops reading them: a write of the
// KeyUpdater's waited a second, or failed. It fails the test if the
// server reads 5 million of them.
func (k *KeyUpdater) Stall(t testing.TB, data func() []byte) {
	t.Helper()
	const wait = time.Second
	for sent := 0; sent < 5_000_000; {
		var err error
		for range 15 {
			if err = k.KeyUpdate(wait); err != nil {
				break
			}
			sent++
		}
		if err == nil {
			err = k.Write(data(), wait)
		}
		if err != nil {
			t.Logf("after %d key updates the server stopped reading (the KeyUpdater's write: %v)", sent, err)
			return
		}
	}
	t.Fatal("peer.KeyUpdater: the server read 5 million key updates: its answers never filled the buffers")
}

// Close closes the connection.
func (k *KeyUpdater) Close() error { return k.conn.Close() }

// ListenSmallBuffers listens on a loopback port with socket buffers of
// 4 KiB, which the connections it accepts inherit: a server's writes fill
// its send buffer soon, and a sender that a server does not read fills its
// receive buffer soon. (Set on the accepted connection instead, the
// receive buffer would shrink below the window it had already advertised,
// and what the sender sent into that window would be dropped and wait
// for TCP to send it again.) The listener is closed when the test ends.
func ListenSmallBuffers(t testing.TB) net.Listener {
	t.Helper()
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) {
			syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
			syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, 4096)
		})
	}}
	l, err := lc.Listen(context.Background(), "tcp", Loopback+":0")
	if err != nil {
		t.Fatalf("peer.ListenSmallBuffers: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// Stopper is a server that stops as the region's servers do.
type Stopper interface {
	Shutdown(ctx context.Context) error
	Close() error
}

// StallEnd is one way the connection a KeyUpdater stalled must end.
type StallEnd struct {
	Name string
	// Deadline says the server's own deadline ends it: Stop does nothing,
	// and the server is to be given a short one (the others a long one).
	Deadline bool
	// Stop ends the stalled connection of k on srv.
	Stop func(t *testing.T, srv Stopper, k *KeyUpdater)
}

// StallEnds are the ways a stalled connection must end: at the server's
// deadline, on Shutdown (which must not wait for the stuck write), and on
// Close (a minute is a hang check: Close holds the server's mutex, and
// before returning it unblocks nothing but by closing the socket).
func StallEnds() []StallEnd {
	return []StallEnd{
		{Name: "Deadline", Deadline: true, Stop: func(*testing.T, Stopper, *KeyUpdater) {}},
		{Name: "Shutdown", Stop: func(t *testing.T, srv Stopper, _ *KeyUpdater) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			start := time.Now()
			if err := srv.Shutdown(ctx); err != nil {
				t.Errorf("Shutdown after %v: %v", time.Since(start).Round(time.Millisecond), err)
			}
		}},
		{Name: "Close", Stop: func(t *testing.T, srv Stopper, k *KeyUpdater) {
			done := make(chan struct{})
			go func() {
				srv.Close()
				close(done)
			}()
			select {
			case <-done:
			case <-time.After(time.Minute):
				k.Close() // the stuck write fails, and Close returns
				<-done
				t.Fatal("Close did not return within a minute")
			}
		}},
	}
}
