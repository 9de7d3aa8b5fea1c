package linuxagent

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/ssh"
)

// noopOptions are authorized_keys options that only take away what the
// agent never offers anyway (a pty, forwarding, ~/.ssh/rc), so they are
// accepted and change nothing.
var noopOptions = map[string]bool{
	"restrict":            true,
	"no-pty":              true,
	"no-port-forwarding":  true,
	"no-agent-forwarding": true,
	"no-x11-forwarding":   true,
	"no-user-rc":          true,
}

// authorizedKey is one usable line of an authorized_keys file.
type authorizedKey struct {
	key     ssh.PublicKey
	comment string
	line    int
	from    []string // from="..." patterns; nil: any address
}

// permits reports whether the key may be used from addr.
func (k *authorizedKey) permits(addr netip.Addr) bool {
	return k.from == nil || matchFrom(k.from, addr)
}

// keySet is the parsed content of an authorized_keys file.
type keySet map[string][]*authorizedKey // by the key's wire form

// authorizedKeys is an authorized_keys file, read again whenever it
// changes, and used only while only the agent's user and root can change
// it (checkTrusted, at every read and every authentication).
type authorizedKeys struct {
	path string
	uid  int // the agent's effective user ID, which may own the file
	log  logrus.FieldLogger

	mu    sync.Mutex // guards the following fields
	keys  keySet
	stamp fileStamp
	err   error // why the last read failed; the set is then empty
}

// fileStamp identifies a version of a file.
type fileStamp struct {
	size    int64
	modTime time.Time
	ino     uint64
	ctime   int64
}

func stampOf(fi os.FileInfo) fileStamp {
	st := fileStamp{size: fi.Size(), modTime: fi.ModTime()}
	statStamp(fi, &st)
	return st
}

// newAuthorizedKeys reads path once; it fails if the file cannot be read
// or others than the agent's user and root could change it.
func newAuthorizedKeys(path string, log logrus.FieldLogger) (*authorizedKeys, error) {
	a := &authorizedKeys{path: path, uid: os.Geteuid(), log: log}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.reloadLocked()
	if a.err != nil {
		return nil, a.err
	}
	return a, nil
}

// current returns the keys, reading the file again first if it changed.
// If it cannot be read, or others could change it, no key is accepted
// (fail closed) until that is mended. The check of who could change it is
// made every time: a directory's mode changes nothing in the file's stamp.
func (a *authorizedKeys) current() (keySet, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	fi, err := os.Stat(a.path)
	if err != nil || a.err != nil || stampOf(fi) != a.stamp || checkTrusted(a.path, a.uid) != nil {
		a.reloadLocked()
	}
	return a.keys, a.err
}

func (a *authorizedKeys) reloadLocked() {
	err := checkTrusted(a.path, a.uid)
	var fi os.FileInfo
	if err == nil {
		fi, err = os.Stat(a.path)
	}
	var data []byte
	if err == nil {
		data, err = os.ReadFile(a.path)
	}
	if err != nil {
		if a.err == nil {
			a.log.WithError(err).Error("cannot use authorized_keys; refusing every key until it is mended")
		}
		a.keys, a.stamp, a.err = nil, fileStamp{}, fmt.Errorf("%w: %w", ErrAuthorizedKeys, err)
		return
	}
	keys, n := parseAuthorizedKeys(data, a.log)
	if n == 0 {
		a.log.WithField("file", a.path).Warn("authorized_keys holds no usable key: every connection will be refused")
	} else {
		a.log.WithFields(logrus.Fields{"file": a.path, "keys": n}).Info("authorized_keys loaded")
	}
	a.keys, a.stamp, a.err = keys, stampOf(fi), nil
}

// parseAuthorizedKeys parses an authorized_keys file, logging and skipping
// lines that are not keys or carry options the agent does not support. It
// returns the keys and how many lines were usable.
func parseAuthorizedKeys(data []byte, log logrus.FieldLogger) (keySet, int) {
	keys := keySet{}
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 4096), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 || text[0] == '#' {
			continue
		}
		llog := log.WithField("line", line)
		k, err := parseAuthorizedKeyLine(text)
		if err != nil {
			llog.WithError(err).Warn("authorized_keys: line skipped")
			continue
		}
		k.line = line
		id := string(k.key.Marshal())
		keys[id] = append(keys[id], k)
		n++
	}
	if err := sc.Err(); err != nil {
		log.WithError(err).Warn("authorized_keys: stopped reading")
	}
	return keys, n
}

// parseAuthorizedKeyLine parses one line of an authorized_keys file.
func parseAuthorizedKeyLine(text []byte) (*authorizedKey, error) {
	key, comment, options, rest, err := ssh.ParseAuthorizedKey(text)
	if err != nil || len(bytes.TrimSpace(rest)) > 0 {
		return nil, fmt.Errorf("not an OpenSSH public key")
	}
	if _, ok := key.(*ssh.Certificate); ok {
		return nil, fmt.Errorf("certificates are not supported")
	}
	k := &authorizedKey{key: key, comment: comment}
	for _, opt := range options {
		name, value, hasValue := strings.Cut(opt, "=")
		name = strings.ToLower(name)
		switch {
		case noopOptions[name] && !hasValue:
		case name == "from" && hasValue:
			pats, err := parseFrom(value)
			if err != nil {
				return nil, err
			}
			k.from = append(k.from, pats...)
		default:
			return nil, fmt.Errorf("option %q is not supported (supported: from=\"...\", restrict, no-pty, no-port-forwarding, no-agent-forwarding, no-X11-forwarding, no-user-rc)", name)
		}
	}
	return k, nil
}

// parseFrom parses the value of a from= option: a double-quoted,
// comma-separated list of address patterns, each an IP address with the
// wildcards * and ?, or a CIDR prefix, optionally negated with !.
func parseFrom(value string) ([]string, error) {
	if len(value) < 2 || value[0] != '"' || value[len(value)-1] != '"' {
		return nil, fmt.Errorf("from= wants a double-quoted pattern list")
	}
	var pats []string
	for _, p := range strings.Split(value[1:len(value)-1], ",") {
		bare := strings.TrimPrefix(p, "!")
		switch {
		case bare == "":
			return nil, fmt.Errorf("from=: empty pattern")
		case strings.Contains(bare, "/"):
			if _, err := netip.ParsePrefix(bare); err != nil {
				return nil, fmt.Errorf("from=: bad CIDR %q", bare)
			}
		case strings.Trim(bare, "0123456789abcdefABCDEF.:*?") != "":
			return nil, fmt.Errorf("from=: %q is not an address pattern (host names are not supported: the agent does no DNS)", bare)
		}
		pats = append(pats, p)
	}
	return pats, nil
}

// matchFrom applies from= patterns to addr as OpenSSH does: a matching
// negated pattern refuses, otherwise any matching pattern permits.
func matchFrom(pats []string, addr netip.Addr) bool {
	addr = addr.Unmap()
	s := addr.String()
	ok := false
	for _, p := range pats {
		bare, neg := strings.CutPrefix(p, "!")
		var m bool
		if strings.Contains(bare, "/") {
			pfx, err := netip.ParsePrefix(bare)
			m = err == nil && pfx.Contains(addr)
		} else {
			m = globMatchFold(bare, s)
		}
		if m && neg {
			return false
		}
		ok = ok || m
	}
	return ok
}

// globMatchFold is globMatch on lower-cased address text (IPv6 hex).
func globMatchFold(pattern, s string) bool {
	return globMatch(strings.ToLower(pattern), strings.ToLower(s))
}

// addrOf returns the IP address of a connection's remote address.
func addrOf(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(ta.IP)
		return ip.Unmap()
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}
