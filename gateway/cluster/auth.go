package cluster

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"slices"
	"strings"
	"time"
)

// MinKeySize is the least number of bytes of Config.Key.
const MinKeySize = 32

// MaxEntryAge is how far the signed send time of an inbox entry may be from
// the receiving region's clock, either way, before the entry is refused as
// stale (a replay, or clocks that disagree).
const MaxEntryAge = 2 * time.Minute

// DeadlineSkew is how long after a run entry's signed deadline, by the
// holder's clock, the holder still starts the run: the clocks' disagreement
// it allows for. The forwarder stops waiting 2s after the deadline, so with
// clocks within DeadlineSkew of each other a holder never starts a command
// whose client has been told it timed out.
const DeadlineSkew = time.Second

// maxKeyFile bounds the size of a key file.
const maxKeyFile = 4096

// LoadKey reads the cluster key from a file: the file's bytes, less one
// trailing newline (LF or CRLF), are the key, as they are (a base64 text is
// not decoded). It refuses a file that is not a regular file, that group or
// others may access (mode & 0o077), that holds fewer than MinKeySize bytes
// or more than 4096. Errors wrap ErrKeyFile or the os error, and never
// include the key. Every region of a cluster must read the same key; make
// one with
//
//	(umask 077; head -c 32 /dev/urandom | base64 > cluster.key)
func LoadKey(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cluster: key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("cluster: key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrKeyFile, path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %04o: the cluster key must not be accessible by group or others (chmod 600 it)",
			ErrKeyFile, path, perm)
	}
	key, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("cluster: key file %s: %w", path, err)
	}
	if len(key) > maxKeyFile {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes: not a key", ErrKeyFile, path, maxKeyFile)
	}
	key = bytes.TrimSuffix(key, []byte("\n"))
	key = bytes.TrimSuffix(key, []byte("\r"))
	if len(key) < MinKeySize {
		return nil, fmt.Errorf("%w: %s holds %d bytes, fewer than %d (make one with: head -c 32 /dev/urandom | base64)",
			ErrKeyFile, path, len(key), MinKeySize)
	}
	return key, nil
}

// Stream entries that carry authority are signed (see the package doc,
// "Signed entries"). The MAC is HMAC-SHA256, keyed with the cluster key,
// over
//
//	lp(macLabel) lp(domain) lp(stream) u64(len(bind)) lp(bind)...
//	u64(len(fields)) (lp(name) lp(value))...
//
// where lp(s) is u64(len(s)) followed by s, u64 is 8 bytes big endian, and
// the fields are all the entry's fields but mac, sorted by name. Every
// variable-length part is length-prefixed and every list counted, so no two
// entries encode alike; the stream name binds an entry to its stream (an
// inbox entry to its region, an output entry to its command), and bind
// holds what both sides know without it being written in the entry.
const (
	macLabel    = "zbridge cluster entry v1"
	macField    = "mac"
	domainInbox = "inbox"  // run and cancel entries; bind: none
	domainOut   = "output" // out, result and error entries; bind: holder region, client's command ID
)

// signer computes and checks MACs with the cluster key.
type signer struct{ key []byte }

// field is one field of a stream entry.
type field struct{ name, value string }

func (s signer) sum(domain, stream string, bind []string, fs []field) []byte {
	slices.SortFunc(fs, func(a, b field) int { return strings.Compare(a.name, b.name) })
	h := hmac.New(sha256.New, s.key)
	putString(h, macLabel)
	putString(h, domain)
	putString(h, stream)
	putLen(h, len(bind))
	for _, b := range bind {
		putString(h, b)
	}
	putLen(h, len(fs))
	for _, f := range fs {
		putString(h, f.name)
		putString(h, f.value)
	}
	return h.Sum(nil)
}

func putLen(h hash.Hash, n int) {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(n))
	h.Write(b[:])
}

func putString(h hash.Hash, s string) {
	putLen(h, len(s))
	io.WriteString(h, s)
}

// sign returns the entry's name-value pairs with its mac field added.
func (s signer) sign(domain, stream string, bind []string, v []string) []string {
	fs := make([]field, 0, len(v)/2)
	for i := 0; i+1 < len(v); i += 2 {
		fs = append(fs, field{v[i], v[i+1]})
	}
	return append(v, macField, hex.EncodeToString(s.sum(domain, stream, bind, fs)))
}

// verify checks the mac field of an entry as read from Redis. The entry's
// other fields must all be strings; a field name given twice in the XADD
// is read once, as the decoders read it.
func (s signer) verify(domain, stream string, bind []string, v map[string]any) error {
	m, ok := v[macField].(string)
	if !ok {
		return fmt.Errorf("%w: not signed", ErrRejected)
	}
	want, err := hex.DecodeString(m)
	if err != nil || len(want) != sha256.Size {
		return fmt.Errorf("%w: malformed mac", ErrRejected)
	}
	fs := make([]field, 0, len(v))
	for name, x := range v {
		if name == macField {
			continue
		}
		value, ok := x.(string)
		if !ok {
			return fmt.Errorf("%w: field %s is a %T", ErrRejected, clip(name, maxLoggedField), x)
		}
		fs = append(fs, field{name, value})
	}
	if !hmac.Equal(s.sum(domain, stream, bind, fs), want) {
		return fmt.Errorf("%w: mac does not verify", ErrRejected)
	}
	return nil
}
