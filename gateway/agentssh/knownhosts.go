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

// hostKeys checks host keys against a known_hosts file, pinned to each
// host's name and address (see check), and in accept-new mode records the
// keys of names it has no entry for.
type hostKeys struct {
	path      string
	acceptNew bool

	mu sync.Mutex // guards the following fields and every write to the file
	cb ssh.HostKeyCallback
	// index is the file's index when every line is indexable (cb is its
	// callback then), else nil (cb is knownhosts').
	index *khIndex
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
// re-reading it only when its modification time or size changed: the
// index's (see khIndex) when it can answer for every line, else
// knownhosts'.
func (k *hostKeys) callbackLocked() (ssh.HostKeyCallback, error) {
	fi, err := os.Stat(k.path)
	if err != nil {
		return nil, err
	}
	stamp := fileStamp{fi.ModTime(), fi.Size()}
	if k.cb != nil && stamp == k.stamp {
		return k.cb, nil
	}
	data, err := os.ReadFile(k.path)
	if err != nil {
		return nil, err
	}
	ix, indexable, err := parseKnownHosts(k.path, data)
	if err != nil {
		return nil, err
	}
	cb := ix.callback
	if !indexable {
		ix = nil
		if cb, err = knownhosts.New(k.path); err != nil {
			return nil, err
		}
	}
	// The stamp of what was read: a change since the Stat above is seen
	// at the next call.
	k.cb, k.index, k.stamp = cb, ix, fileStamp{fi.ModTime(), int64(len(data))}
	if int64(len(data)) != fi.Size() {
		k.stamp = fileStamp{} // changed while read: read again next time
	}
	return cb, nil
}

// NameSuffix ends the known_hosts host pattern that pins a host key to a
// host's name in the pool: the name "web1" is written "web1@zbridge". No
// DNS name or address holds an "@", so the pattern never matches a host
// that ssh(1) or an address lookup asks for, and a name that happens to be
// an address ("10.0.0.5", a syslog sender that named no host) is not
// confused with the address.
const NameSuffix = "@zbridge"

// maxName bounds a name: a DNS name's length.
const maxName = 253

// CheckName reports whether name can be pinned in known_hosts, which every
// name given to Add must be: 1 to 253 ASCII letters, digits, '.', '-' and
// '_' (no pattern characters such as '*', ',' or '!', no spaces). Names
// are compared case-insensitively, as DNS names are: "WEB1" and "web1"
// share one pin.
func CheckName(name string) error {
	if name == "" || len(name) > maxName {
		return fmt.Errorf("agentssh: name of %d bytes: want 1 to %d", len(name), maxName)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_') {
			return fmt.Errorf("agentssh: name %q: character %q at offset %d (letters, digits, '.', '-' and '_' only)", name, c, i)
		}
	}
	return nil
}

// namePattern is the known_hosts host pattern of a name.
func namePattern(name string) (string, error) {
	if err := CheckName(name); err != nil {
		return "", err
	}
	return strings.ToLower(name) + NameSuffix, nil
}

// patternQuery is the address to give a knownhosts callback so that it
// looks up the lines holding pattern (a pattern without "[", which
// knownhosts reads as that host on port 22).
func patternQuery(pattern string) string { return "[" + pattern + "]:22" }

// check is the ssh.HostKeyCallback for a connection to the host added as
// name, dialled at addr (host:port). It returns nil to accept key, or an
// error wrapping ErrHostKeyUnknown or ErrHostKeyMismatch.
//
// The name is the identity: once known_hosts pins a key to the name (a
// line holding its NameSuffix pattern), the host must present that key
// wherever the name is dialled, and accept-new never records another one
// for it. Only for a name with no pin do the address's lines decide: a key
// pinned for the address (by an operator, by an earlier version, or for
// another name seen there) must match, and accept-new records a key for an
// address with no line at all. Whatever accept-new records, it records as
// one line for the name and the address: "name@zbridge,[host]:port key".
func (k *hostKeys) check(log logrus.FieldLogger, name, addr string, remote net.Addr, key ssh.PublicKey) error {
	pattern, err := namePattern(name)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrHostKeyUnknown, err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	cb, err := k.callbackLocked()
	if err != nil {
		return fmt.Errorf("known hosts: %w", err)
	}
	fp := ssh.FingerprintSHA256(key)
	log = log.WithFields(logrus.Fields{"fingerprint": fp, "key_type": key.Type()})

	// The name's pin.
	err = cb(patternQuery(pattern), remote, key)
	if err == nil {
		if k.acceptNew && cb(addr, remote, key) != nil {
			// The name's key at an address not recorded with it: note
			// the address, so that a new name there later must present
			// this key too.
			if err := k.appendLocked(knownhosts.Line([]string{pattern, addr}, key)); err != nil {
				log.WithError(err).Warn("recording a pinned name's new address failed")
			} else {
				log.Info("pinned name seen at a new address with its pinned key: recorded the address")
			}
		}
		return nil
	}
	if refusal := k.refusal(log, err, name, addr, "the name "+name, key, fp); refusal != nil {
		return refusal
	}

	// No pin for the name: the address's lines.
	err = cb(addr, remote, key)
	if err == nil {
		if k.acceptNew {
			if err := k.appendLocked(knownhosts.Line([]string{pattern, addr}, key)); err != nil {
				return fmt.Errorf("%w: %s (%s) presented %s key %s, pinned for its address; pinning it for the name in %s failed: %w",
					ErrHostKeyUnknown, name, addr, key.Type(), fp, k.path, err)
			}
			log.WithField("known_hosts", k.path).Info("pinned the name to the key known_hosts holds for its address (accept-new)")
		}
		return nil
	}
	if refusal := k.refusal(log, err, name, addr, "its address "+addr, key, fp); refusal != nil {
		return refusal
	}
	if !k.acceptNew {
		return fmt.Errorf("%w: %s (%s) presented %s key %s, which is not in %s (accept-new is off)",
			ErrHostKeyUnknown, name, addr, key.Type(), fp, k.path)
	}
	if err := k.appendLocked(knownhosts.Line([]string{pattern, addr}, key)); err != nil {
		return fmt.Errorf("%w: %s (%s) presented %s key %s; recording it in %s failed: %w",
			ErrHostKeyUnknown, name, addr, key.Type(), fp, k.path, err)
	}
	log.WithField("known_hosts", k.path).Warn("accepted and recorded the key of a new host (accept-new)")
	return nil
}

// refusal turns what a knownhosts callback said about key into the error
// that refuses the host, logged; nil when the callback found no line for
// what it was asked (a *knownhosts.KeyError listing no key). pinned names
// what was looked up, for the messages.
func (k *hostKeys) refusal(log logrus.FieldLogger, err error, name, addr, pinned string, key ssh.PublicKey, fp string) error {
	var keyErr *knownhosts.KeyError
	var revoked *knownhosts.RevokedError
	switch {
	case errors.As(err, &revoked):
		log.WithField("known_hosts", revoked.Revoked.String()).
			Error("host presented a REVOKED host key: refusing to connect")
		return fmt.Errorf("%w: %s (%s) presented %s key %s, which %s:%d marks @revoked",
			ErrHostKeyMismatch, name, addr, key.Type(), fp, revoked.Revoked.Filename, revoked.Revoked.Line)
	case errors.As(err, &keyErr) && len(keyErr.Want) > 0:
		known := make([]string, len(keyErr.Want))
		for i, w := range keyErr.Want {
			known[i] = fmt.Sprintf("%s:%d %s %s", w.Filename, w.Line, w.Key.Type(), ssh.FingerprintSHA256(w.Key))
		}
		log.WithFields(logrus.Fields{"pinned_for": pinned, "known": strings.Join(known, "; ")}).
			Error("HOST KEY CHANGED: refusing to connect; the host presented a key other than the one pinned for " + pinned +
				", and someone may be impersonating it. If the key was replaced on purpose, remove the old lines from the known_hosts file")
		return fmt.Errorf("%w: %s (%s) presented %s key %s; known_hosts pins %s to %s",
			ErrHostKeyMismatch, name, addr, key.Type(), fp, pinned, strings.Join(known, ", "))
	case errors.As(err, &keyErr):
		return nil
	default:
		return fmt.Errorf("known hosts: %w", err)
	}
}

// appendLocked appends line to the file, starting a new line first if the
// file does not end with one. An indexed file's index takes the line at
// once (accept-new appends a line per new host: reading the file again
// each time would cost a region's first start with ten thousand hosts
// time that grows as their square); otherwise, or when the file changed
// otherwise meanwhile, the next check reads it again.
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
	known := k.cb != nil && k.index != nil && k.stamp == fileStamp{fi.ModTime(), fi.Size()}
	k.cb = nil
	if _, err := f.WriteString(line + "\n"); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	after, err := f.Stat()
	if !known || err != nil || after.Size() != fi.Size()+int64(len(line)+1) {
		return nil // read again at the next check
	}
	k.index.lines++
	if ok, err := k.index.addLine([]byte(line), k.index.lines); !ok || err != nil {
		return nil
	}
	k.cb, k.stamp = k.index.callback, fileStamp{after.ModTime(), after.Size()}
	return nil
}

// algorithms returns the host key algorithms to offer when dialling the
// host added as name at addr: those of the key types known_hosts pins for
// the name, or when it pins none for the address, first, so that a server
// with several host keys presents one we can check rather than another
// type it prefers; then every other supported one, so that a server which
// no longer has a recorded type is refused as changed rather than with "no
// common algorithm". Host certificates are not asked for: keys are pinned
// one by one (a server with a certificate still offers its plain key).
func (k *hostKeys) algorithms(name, addr string) []string {
	var algos []string
	// Under the lock: appendLocked adds to the index cb reads.
	k.mu.Lock()
	defer k.mu.Unlock()
	cb, err := k.callbackLocked()
	if err == nil {
		queries := []string{addr}
		if pattern, err := namePattern(name); err == nil {
			queries = []string{patternQuery(pattern), addr}
		}
		for _, q := range queries {
			// A key that matches nothing makes the callback list every
			// key known for q in KeyError.Want.
			var keyErr *knownhosts.KeyError
			if !errors.As(cb(q, addrString(addr), probeKey{}), &keyErr) || len(keyErr.Want) == 0 {
				continue
			}
			for _, w := range keyErr.Want {
				for _, a := range algorithmsForKeyType(w.Key.Type()) {
					if !slices.Contains(algos, a) {
						algos = append(algos, a)
					}
				}
			}
			break // the name's pins decide when there are any
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
