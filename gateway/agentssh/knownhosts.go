package agentssh

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// hostKeys checks host keys against a known_hosts file, and in accept-new
// mode records the keys of hosts it has no entry for.
type hostKeys struct {
	path      string
	acceptNew bool

	mu    sync.Mutex // guards the following fields and every write to the file
	cb    ssh.HostKeyCallback
	stamp fileStamp // of the file cb was built from
}

// fileStamp tells whether a file changed since it was read.
type fileStamp struct {
	mod  time.Time
	size int64
}

func newHostKeys(path string, acceptNew bool) (*hostKeys, error) {
	if acceptNew {
		// Create it if missing, as ssh does; never truncate.
		f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("%w: KnownHostsFile: %w", ErrConfig, err)
		}
		f.Close()
	}
	k := &hostKeys{path: path, acceptNew: acceptNew}
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, err := k.callbackLocked(); err != nil {
		return nil, fmt.Errorf("%w: KnownHostsFile: %w", ErrConfig, err)
	}
	return k, nil
}

// callbackLocked returns a callback built from the file as it is now,
// re-reading it only when its modification time or size changed.
func (k *hostKeys) callbackLocked() (ssh.HostKeyCallback, error) {
	fi, err := os.Stat(k.path)
	if err != nil {
		return nil, err
	}
	stamp := fileStamp{fi.ModTime(), fi.Size()}
	if k.cb != nil && stamp == k.stamp {
		return k.cb, nil
	}
	cb, err := knownhosts.New(k.path)
	if err != nil {
		return nil, err
	}
	k.cb, k.stamp = cb, stamp
	return cb, nil
}

// check is the ssh.HostKeyCallback for a connection to addr (host:port, as
// dialled). It returns nil to accept key, or an error wrapping
// ErrHostKeyUnknown or ErrHostKeyMismatch.
func (k *hostKeys) check(log logrus.FieldLogger, addr string, remote net.Addr, key ssh.PublicKey) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	cb, err := k.callbackLocked()
	if err != nil {
		return fmt.Errorf("known hosts: %w", err)
	}
	err = cb(addr, remote, key)
	if err == nil {
		return nil
	}
	fp := ssh.FingerprintSHA256(key)
	var keyErr *knownhosts.KeyError
	var revoked *knownhosts.RevokedError
	switch {
	case errors.As(err, &revoked):
		log.WithFields(logrus.Fields{"fingerprint": fp, "known_hosts": revoked.Revoked.String()}).
			Error("host presented a REVOKED host key: refusing to connect")
		return fmt.Errorf("%w: %s presented %s key %s, which %s:%d marks @revoked",
			ErrHostKeyMismatch, addr, key.Type(), fp, revoked.Revoked.Filename, revoked.Revoked.Line)
	case errors.As(err, &keyErr) && len(keyErr.Want) > 0:
		known := make([]string, len(keyErr.Want))
		for i, w := range keyErr.Want {
			known[i] = fmt.Sprintf("%s:%d %s %s", w.Filename, w.Line, w.Key.Type(), ssh.FingerprintSHA256(w.Key))
		}
		log.WithFields(logrus.Fields{"fingerprint": fp, "key_type": key.Type(), "known": strings.Join(known, "; ")}).
			Error("HOST KEY CHANGED: refusing to connect; someone may be intercepting the connection. " +
				"If the host's key was replaced on purpose, remove its old entry from the known_hosts file")
		return fmt.Errorf("%w: %s presented %s key %s, known_hosts has %s",
			ErrHostKeyMismatch, addr, key.Type(), fp, strings.Join(known, ", "))
	case errors.As(err, &keyErr):
		if !k.acceptNew {
			return fmt.Errorf("%w: %s presented %s key %s, which is not in %s (accept-new is off)",
				ErrHostKeyUnknown, addr, key.Type(), fp, k.path)
		}
		if err := k.appendLocked(knownhosts.Line([]string{addr}, key)); err != nil {
			return fmt.Errorf("%w: %s presented %s key %s; recording it in %s failed: %w",
				ErrHostKeyUnknown, addr, key.Type(), fp, k.path, err)
		}
		log.WithFields(logrus.Fields{"fingerprint": fp, "key_type": key.Type(), "known_hosts": k.path}).
			Warn("accepted and recorded the key of a new host (accept-new)")
		return nil
	default:
		return fmt.Errorf("known hosts: %w", err)
	}
}

// appendLocked appends line to the file, starting a new line first if the
// file does not end with one, and makes the next check re-read the file.
func (k *hostKeys) appendLocked(line string) error {
	f, err := os.OpenFile(k.path, os.O_RDWR|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, fi.Size()-1); err != nil && err != io.EOF {
			return err
		}
		if last[0] != '\n' {
			line = "\n" + line
		}
	}
	k.cb = nil
	if _, err := f.WriteString(line + "\n"); err != nil {
		return err
	}
	return f.Sync()
}

// algorithms returns the host key algorithms to offer when dialling addr:
// those of the key types known_hosts holds for it first, so that a server
// with several host keys presents one we can check rather than another
// type it prefers, then every other supported one, so that a server which
// no longer has a recorded type is refused as changed rather than with "no
// common algorithm". Host certificates are not asked for: keys are pinned
// one by one (a server with a certificate still offers its plain key).
func (k *hostKeys) algorithms(addr string) []string {
	var algos []string
	k.mu.Lock()
	cb, err := k.callbackLocked()
	k.mu.Unlock()
	if err == nil {
		// A key that matches nothing makes the callback list every key
		// known for addr in KeyError.Want.
		var keyErr *knownhosts.KeyError
		if errors.As(cb(addr, addrString(addr), probeKey{}), &keyErr) {
			for _, w := range keyErr.Want {
				for _, a := range algorithmsForKeyType(w.Key.Type()) {
					if !slices.Contains(algos, a) {
						algos = append(algos, a)
					}
				}
			}
		}
	}
	for _, a := range ssh.SupportedAlgorithms().HostKeys {
		if !strings.Contains(a, "-cert-") && !slices.Contains(algos, a) {
			algos = append(algos, a)
		}
	}
	return algos
}

// algorithmsForKeyType returns the signature algorithms of a key type.
func algorithmsForKeyType(keyType string) []string {
	if keyType == ssh.KeyAlgoRSA {
		// ssh-rsa (SHA-1) signatures are not accepted.
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256}
	}
	return []string{keyType}
}

// addrString is a net.Addr of a host:port string.
type addrString string

func (a addrString) Network() string { return "tcp" }
func (a addrString) String() string  { return string(a) }

// probeKey is a public key no known_hosts line can hold.
type probeKey struct{}

func (probeKey) Type() string    { return "zbridge-probe@zbridge" }
func (probeKey) Marshal() []byte { return []byte("\x00\x00\x00\x15zbridge-probe@zbridge") }
func (probeKey) Verify([]byte, *ssh.Signature) error {
	return errors.New("agentssh: probe key verifies nothing")
}
