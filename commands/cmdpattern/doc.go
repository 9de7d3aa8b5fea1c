// Package cmdpattern matches command lines, word by word, against the
// patterns of an allow/deny policy, and splits Linux and CP command lines
// into those words. The Linux agent's policy, the z/VM agent's CP command
// policy and the region's authorization all use it, so that a command is
// judged the same way wherever it is judged.
//
// # Patterns
//
// A pattern is a command line split into words on runs of spaces and tabs
// (no quoting: a pattern word never holds a blank). Within a word, "*"
// matches any run of characters (none included) inside that one word, "?"
// matches one character, and every other character matches itself. A word that is exactly **
// matches zero or more whole words. So "systemctl status **" allows
// systemctl status with any arguments or none, "systemctl status *" with
// exactly one, and "cat /var/log/*.log" one file name ending in .log (a *
// matches slashes too: /var/log/a/b.log). Options.Fold makes matching
// case-insensitive, for CP.
//
// # Parent directories
//
// A command word with a ".." path element ("..", "../x", "a/../b", "a/..")
// is never matched by a pattern word with a wildcard, nor by **: only a
// literal pattern word equal to it matches it. "cat /var/log/*" does not
// allow "cat /var/log/../../etc/shadow". What a pattern cannot see are
// symbolic links (a link under /var/log to /etc/shadow is "under
// /var/log") and options hiding in a wildcard's word ("grep * /var/log/x"
// allows "grep --file=/etc/shadow /var/log/x"): name the words an allow
// rule takes as narrowly as the program's own options require.
//
// # Cost
//
// A pattern holds at most MaxWords words and MaxPatternLen bytes. Match
// runs the pattern as an NFA over the command's characters (a bit-parallel
// shift-and per word, and the same over words for **), so it never
// backtracks: its time is linear in the command's length, times at most
// MaxWords + MaxPatternLen/64, whatever pattern and command an attacker
// picks (BenchmarkMatchPathological: tens of milliseconds for the worst
// 4096-byte pattern against a 100 KB word). Glob likewise.
//
// # Whole-line globs
//
// Glob matches a pattern against a whole line, * spanning blanks, with no
// ".." rule: the Linux agent's deny rules keep matching that way too, so
// that a deny rule written for the old whole-line matcher still refuses
// everything it did. It denies more than the same Pattern would; it must
// never decide what is allowed.
//
// # Splitting a command line
//
// Split turns a Linux command line into the words the Linux agent runs
// (argv) and a policy matches: POSIX shell quoting, and a refusal of every
// line /bin/sh would do more with than split words. The agent and anyone
// judging a command line before it reaches the agent must split it with
// Split, or a line could be judged as one argv and run as another. Quote
// is its inverse.
//
// # CP command lines
//
// SplitCP reads a CP command line as CP does: it refuses the line editing
// characters (CPSpecial: # would make one line several commands, @ and "
// would make CP read it otherwise than written) and anything outside
// printable ASCII, splits on blanks, drops a leading CP and writes the
// command name in full ("Q N" is QUERY N). Compile with Options.CP reads a
// pattern's command name the same way, so "allow QUERY **" allows "Q N",
// and with Options.Abbrev a deny pattern's words match their
// abbreviations. The region and the z/VM agent must both judge CP
// commands by SplitCP's words.
package cmdpattern
