package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// The parameters [Hash] uses are OWASP's minimum for argon2id: "a minimum
// configuration of 19 MiB of memory, an iteration count of 2, and 1 degree of
// parallelism" (OWASP Password Storage Cheat Sheet,
// https://cheatsheetseries.owasp.org/cheatsheets/Password_Storage_Cheat_Sheet.html#argon2id).
const (
	hashMemoryKiB = 19 * 1024 // m=19456
	hashTime      = 2
	hashThreads   = 1
	hashSaltLen   = 16
	hashKeyLen    = 32
)

// Limits on the parameters of a hash in the clients file. They bound the
// memory and time one check may cost, whatever an operator writes.
const (
	MaxMemoryKiB = 256 * 1024 // m: 256 MiB
	MaxTime      = 16         // t
	MaxThreads   = 16         // p
)

// Limits on the decoded salt and hash of a hash in the clients file.
const (
	minSaltLen, maxSaltLen = 8, 64
	minKeyLen, maxKeyLen   = 16, 64
)

// argonVersion is argon2 version 1.3, the only one golang.org/x/crypto
// computes.
const argonVersion = 0x13

var b64 = base64.RawStdEncoding.Strict()

// phc is a parsed argon2id hash.
type phc struct {
	params
	salt []byte
	key  []byte
}

type params struct {
	memory  uint32 // KiB
	time    uint32
	threads uint8
}

// Hash returns the PHC string of an argon2id hash of secret, with OWASP's
// minimum parameters and a random 16-byte salt, for a line of the clients
// file. It refuses an empty secret.
func Hash(secret string) (string, error) {
	if secret == "" {
		return "", ErrEmptySecret
	}
	salt := make([]byte, hashSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("auth: hash: %w", err)
	}
	h := phc{
		params: params{memory: hashMemoryKiB, time: hashTime, threads: hashThreads},
		salt:   salt,
		key:    make([]byte, hashKeyLen), // deriveKey derives len(key) bytes
	}
	h.key = deriveKey([]byte(secret), &h)
	return h.String(), nil
}

// deriveKey computes the argon2id key of secret with h's parameters and salt,
// as long as h's key.
func deriveKey(secret []byte, h *phc) []byte {
	return argon2.IDKey(secret, h.salt, h.time, h.memory, h.threads, uint32(len(h.key)))
}

// verify reports whether secret hashes to h's key, comparing in constant time.
func verify(derive func([]byte, *phc) []byte, h *phc, secret string) bool {
	return subtle.ConstantTimeCompare(derive([]byte(secret), h), h.key) == 1
}

// String returns h in PHC string format.
func (h *phc) String() string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argonVersion, h.memory, h.time, h.threads,
		b64.EncodeToString(h.salt), b64.EncodeToString(h.key))
}

// parsePHC parses an argon2id hash in PHC string format. Its errors wrap
// ErrMalformedHash and never quote the salt or hash.
func parsePHC(s string) (*phc, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrMalformedHash}, args...)...)
	}
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, hash
	f := strings.Split(s, "$")
	if len(f) != 6 || f[0] != "" {
		return nil, bad("want $argon2id$v=19$m=M,t=T,p=P$SALT$HASH")
	}
	if f[1] != "argon2id" {
		return nil, bad("algorithm %q is not argon2id", truncate(f[1]))
	}
	if f[2] != "v=19" {
		return nil, bad("version %q is not v=19", truncate(f[2]))
	}
	var h phc
	ps := strings.Split(f[3], ",")
	if len(ps) != 3 {
		return nil, bad("want parameters m=M,t=T,p=P")
	}
	m, err := param(ps[0], "m", 8, MaxMemoryKiB)
	if err != nil {
		return nil, bad("%v", err)
	}
	t, err := param(ps[1], "t", 1, MaxTime)
	if err != nil {
		return nil, bad("%v", err)
	}
	p, err := param(ps[2], "p", 1, MaxThreads)
	if err != nil {
		return nil, bad("%v", err)
	}
	if m < 8*p {
		return nil, bad("m=%d is less than 8*p", m)
	}
	h.params = params{memory: m, time: t, threads: uint8(p)}
	if h.salt, err = b64.DecodeString(f[4]); err != nil {
		return nil, bad("salt is not unpadded base64")
	}
	if n := len(h.salt); n < minSaltLen || n > maxSaltLen {
		return nil, bad("salt is %d bytes, want %d to %d", n, minSaltLen, maxSaltLen)
	}
	if h.key, err = b64.DecodeString(f[5]); err != nil {
		return nil, bad("hash is not unpadded base64")
	}
	if n := len(h.key); n < minKeyLen || n > maxKeyLen {
		return nil, bad("hash is %d bytes, want %d to %d", n, minKeyLen, maxKeyLen)
	}
	return &h, nil
}

// param parses "key=N" with min <= N <= max.
func param(s, key string, min, max uint32) (uint32, error) {
	v, ok := strings.CutPrefix(s, key+"=")
	if !ok {
		return 0, fmt.Errorf("want %s=N, parameters in the order m,t,p", key)
	}
	// Decimal digits without leading zeros, as the PHC format says; ParseUint
	// alone would also take "+1".
	if v == "" || strings.TrimLeft(v, "0123456789") != "" || len(v) > 1 && v[0] == '0' {
		return 0, fmt.Errorf("%s is not a decimal number without leading zeros", key)
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil || n < uint64(min) || n > uint64(max) {
		return 0, fmt.Errorf("%s=%s out of range %d to %d", key, truncate(v), min, max)
	}
	return uint32(n), nil
}

// truncate shortens s for an error message.
func truncate(s string) string {
	if len(s) > 16 {
		return s[:16] + "..."
	}
	return s
}
