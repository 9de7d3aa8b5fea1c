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
package auth
