// Package auth checks the names and secrets clients log on with against a
// file of hashed secrets.
//
// # The clients file
//
// Operators edit the file by hand. It holds one client a line, for example
//
//	# Automation products.
//	OPSAUTO:$argon2id$v=19$m=19456,t=2,p=1$5LjEf1GkBBZIi3SEMCAfwQ$aHRVMMab73nw/jdFxf465FT0w1FXxd5Vy4KvoTfxY4Q
//	jane.doe@ops:$argon2id$v=19$m=19456,t=2,p=1$...$...
//
// The rules:
//
//   - A line is NAME:HASH. Spaces or tabs around NAME and HASH are ignored.
//   - A line whose first non-blank character is '#' is a comment; blank lines
//     are ignored. There are no comments at the end of a client line.
//   - NAME is case-sensitive, 1 to 64 characters of A-Z a-z 0-9 . _ @ -, and
//     appears at most once in the file.
//   - HASH is an argon2id hash in the PHC string format,
//     $argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash>, with salt and
//     hash in unpadded standard base64 and m, t, p in that order. The
//     parameters are read from each string, so hashes made with other
//     parameters verify as well, within [MaxMemoryKiB], [MaxTime] and
//     [MaxThreads], so that a typo cannot make a logon allocate gigabytes.
//
// [Hash] makes a HASH for a secret with the package's parameters (argon2id,
// 19 MiB, 2 passes, 1 lane, a random 16-byte salt, a 32-byte key). A parse
// error is a [*ParseError] that gives the file and line; it never quotes the
// line, which may hold a secret that was pasted in by mistake.
//
// # Permissions
//
// [Load] refuses nothing on account of file permissions: a file that group or
// other may access (mode & 0o077 != 0) loads, and [Clients.Warnings] returns an
// error wrapping [ErrFilePermissions] that the caller logs with its own
// logger. The package itself never logs.
//
// # Checking
//
// [Clients.Check] compares in constant time, and for a name that is not in the
// file it hashes the secret against a dummy hash all the same, so the time a
// check takes does not tell which names exist. Argon2id at 19 MiB is
// memory-heavy: at most [MaxConcurrentChecks] checks hash at once per
// [Clients], and the rest wait, for as long as their context allows. Secrets
// never appear in errors.
//
// # The cache of successful checks
//
// Hashing is what makes a guessed secret expensive, but it costs every
// logon as much: tens of milliseconds, most of a short command's round
// trip (zbridge cmd logs on afresh each time). So a check that succeeded is
// remembered, for [CacheTTL] (a hit does not extend it), and the same name
// and secret are accepted at once until then, without taking one of the
// [MaxConcurrentChecks] slots. What is remembered, and why that is safe:
//
//   - Only successes, of names in the file. A wrong secret, an unknown name
//     or an empty secret is never cached, so every failed attempt still
//     hashes in full (and waits for a slot); the servers count the failure
//     and throttle the address and name as before. A guess costs what it
//     cost without the cache.
//   - Each entry is HMAC-SHA256(key, len(name) || name || secret) and an
//     expiry time. The key is 32 random bytes drawn for each reading of the
//     file and held only in memory; the secret is kept nowhere. The length
//     prefix makes the input unambiguous, and the cache is consulted only for
//     names in the file, so no other name and secret can match an entry.
//   - No poisoning: an entry is added only after a full hash verified the
//     secret against the reading's own hash, and only by this package.
//   - Invalidation: the cache belongs to one reading of the file. [Load],
//     [Parse] and [Clients.Reload] start with an empty one, so a changed or
//     removed secret, or a removed client, is refused from the next logon
//     on (a region's refresh reads the file afresh).
//   - Memory: at most [MaxCachedLogons] entries of about 100 bytes. A name
//     has one secret that verifies, so only clients can add entries, one
//     each; when full, expired entries go first, then entries at random.
//   - Timing: a hit answers in microseconds, a miss takes a full hash. The
//     difference shows only that a right secret was sent, which its sender
//     knew; a miss costs the same whether or not the name exists, as
//     before. Map lookups keyed by HMACs under a secret key tell an
//     attacker nothing about other entries.
//   - What it gives up: whoever can read the region's memory gets the HMAC
//     key and the entries, and could test guesses of a cached client's
//     secret at HMAC speed rather than argon2id's. Such a reader also sees
//     each secret in clear as its logon frame arrives, so this exposes
//     nothing more than recent logons did; the clients file on disk keeps
//     only argon2id hashes.
package auth
