package agentssh

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// khIndex answers host key lookups on a known_hosts file in time
// independent of its length. golang.org/x/crypto/ssh/knownhosts matches a
// lookup against every line, which a region with ten thousand hosts does
// several times per connection: most of the CPU of its start went there.
//
// The index holds the lines whose host patterns are all plain (host, or
// [host]:port: no wildcard, negation or hash), as the pool writes them and
// OpenSSH writes them unhashed, by pattern. A file with any other line is
// not indexed (parseKnownHosts says so): hostKeys then uses knownhosts'
// own callback, line by line. For the lines it holds, the index answers
// as knownhosts does (TestKnownHostsIndexAgrees compares them): @revoked
// keys first, whatever the host; then the lines matching the host, in
// file order, @cert-authority ones included (knownhosts does not tell
// them apart there), accepting the key when one holds it and otherwise
// returning a *knownhosts.KeyError listing them.
type khIndex struct {
	path    string
	lines   int                              // lines read, for the line numbers of appended ones
	byAddr  map[khAddr][]knownhosts.KnownKey // plain patterns' keys, in file order
	revoked map[string]*knownhosts.KnownKey  // @revoked keys, by key blob
}

// khAddr is a host and port as knownhosts reads them from a pattern or a
// lookup.
type khAddr struct{ host, port string }

// parseKhAddr reads a pattern or lookup address as knownhosts does:
// host:port when it splits so, [host]:port unbracketed, else the host on
// port 22.
func parseKhAddr(p string) (khAddr, error) {
	host, port, err := net.SplitHostPort(p)
	if err != nil {
		if p != "" && p[0] == '[' {
			return khAddr{}, err
		}
		return khAddr{p, "22"}, nil
	}
	return khAddr{host, port}, nil
}

// parseKnownHosts reads a known_hosts file's content into an index.
// indexable is false when a line has a pattern the index cannot answer
// for (a wildcard, a negation, a hashed host): the caller then uses
// knownhosts' callback. It fails on a line knownhosts would refuse, with
// knownhosts' message.
func parseKnownHosts(path string, data []byte) (ix *khIndex, indexable bool, err error) {
	ix = &khIndex{path: path, byAddr: map[khAddr][]knownhosts.KnownKey{}, revoked: map[string]*knownhosts.KnownKey{}}
	indexable = true
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		ix.lines++
		ok, err := ix.addLine(sc.Bytes(), ix.lines)
		if err != nil {
			return nil, false, fmt.Errorf("knownhosts: %s:%d: %w", path, ix.lines, err)
		}
		indexable = indexable && ok
	}
	if err := sc.Err(); err != nil {
		return nil, false, err
	}
	return ix, indexable, nil
}

// addLine adds a line of the file, numbered n, to the index. ok is false
// when the line has a pattern the index cannot answer for.
func (ix *khIndex) addLine(line []byte, n int) (ok bool, err error) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 || line[0] == '#' {
		return true, nil
	}
	marker, pattern, key, err := parseKnownHostsLine(line)
	if err != nil {
		return false, err
	}
	kk := knownhosts.KnownKey{Key: key, Filename: ix.path, Line: n}
	if marker == "@revoked" {
		ix.revoked[string(key.Marshal())] = &kk
		return true, nil
	}
	if pattern[0] == '|' {
		return false, nil // hashed
	}
	var addrs []khAddr
	for _, p := range strings.Split(pattern, ",") {
		if p == "" {
			continue
		}
		if strings.ContainsAny(p, "*?") || p[0] == '!' {
			return false, nil
		}
		a, err := parseKhAddr(p)
		if err != nil {
			return false, err
		}
		addrs = append(addrs, a)
	}
	for i, a := range addrs {
		if !containsAddr(addrs[:i], a) { // a line counts once per lookup
			ix.byAddr[a] = append(ix.byAddr[a], kk)
		}
	}
	return true, nil
}

func containsAddr(as []khAddr, a khAddr) bool {
	for _, b := range as {
		if a == b {
			return true
		}
	}
	return false
}

// parseKnownHostsLine splits a line as knownhosts does: an optional marker
// (@cert-authority, @revoked), the host patterns, the key type and the key.
func parseKnownHostsLine(line []byte) (marker, pattern string, key ssh.PublicKey, err error) {
	if w, next := nextWord(line); w == "@cert-authority" || w == "@revoked" {
		marker, line = w, next
	}
	pattern, line = nextWord(line)
	if pattern != "" && pattern[0] == '@' {
		return "", "", nil, fmt.Errorf("knownhosts: unexpected marker: %q", pattern)
	}
	if len(line) == 0 {
		return "", "", nil, errors.New("knownhosts: missing host pattern")
	}
	keyType, line := nextWord(line)
	if len(line) == 0 {
		return "", "", nil, errors.New("knownhosts: missing key type pattern")
	}
	blob, _ := nextWord(line)
	raw, err := base64.StdEncoding.DecodeString(blob)
	if err != nil {
		return "", "", nil, err
	}
	if key, err = ssh.ParsePublicKey(raw); err != nil {
		return "", "", nil, err
	}
	if key.Type() != keyType {
		return "", "", nil, fmt.Errorf("knownhosts: key type mismatch: found %q, want %q", key.Type(), keyType)
	}
	return marker, pattern, key, nil
}

// nextWord returns the first word of line and what follows it, trimmed.
func nextWord(line []byte) (string, []byte) {
	i := bytes.IndexAny(line, "\t ")
	if i < 0 {
		return string(line), nil
	}
	return string(line[:i]), bytes.TrimSpace(line[i:])
}

// callback is the index's ssh.HostKeyCallback: knownhosts' answer for
// hostname (remote when hostname is empty), for the lines indexed.
func (ix *khIndex) callback(hostname string, remote net.Addr, key ssh.PublicKey) error {
	plain := key
	if cert, ok := key.(*ssh.Certificate); ok {
		plain = cert.Key
	}
	if r := ix.revoked[string(plain.Marshal())]; r != nil {
		return &knownhosts.RevokedError{Revoked: *r}
	}
	address := hostname
	if address == "" {
		address = remote.String()
	}
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("knownhosts: SplitHostPort(%s): %w", address, err)
	}
	keyErr := &knownhosts.KeyError{}
	blob := key.Marshal()
	for _, kk := range ix.byAddr[khAddr{host, port}] {
		keyErr.Want = append(keyErr.Want, kk)
		if bytes.Equal(kk.Key.Marshal(), blob) {
			return nil
		}
	}
	return keyErr
}
