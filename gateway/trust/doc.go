// Package trust decides who may do what in a region: which clients exist
// (named, with hashed secrets), which roles they hold, and what each role
// grants — ports, the events it may see, the targets and, per target, the
// commands it may run, and its limits. It reads the region's config file
// (TOML) and answers the servers' questions from one immutable [Policy]
// that an [Authorizer] swaps atomically when the file is read again.
//
// # The config file
//
//	[region]                      # any `zbridge region` flag, by its name
//	name = "ZBR1"
//	unsolmsg = "0.0.0.0:7002"
//	audit-log = "/var/log/zbridge/audit.log"
//
//	[[client]]
//	name = "OPSAUTO"
//	secret-hash = "$argon2id$v=19$m=19456,t=2,p=1$...$..."   # zbridge passwd
//	roles = ["automation"]
//
//	[[client]]
//	name = "jane.doe@ops"           # in the clients file: only its roles here
//	roles = ["automation"]
//
//	[[role]]
//	name = "automation"
//	ports = ["unsolmsg", "commands"]        # unsolmsg, commands, console
//	events = ["source=syslog", "source=zvm-console,origin=VMSYS*"]
//	groups = ["OPS*"]                       # consumer groups shared with other clients
//	max-timeout = "5m"
//	max-in-flight = 4
//	  [[role.target]]
//	  pattern = "linux:web*"
//	  commands = ["uptime", "df -h **"]
//	  [[role.target]]
//	  pattern = "zvm:VMSYS1"
//	  commands = ["QUERY **"]
//
//	[[role]]
//	name = "vmsys1-agent"
//	vmmon = ["VMSYS1"]                      # may log on to VMMON as this system
//
// Keys not listed here are errors (a typo in a security file must not go
// unnoticed). The [region] table is read by the zbridge command, not by
// this package: it holds flag values, and a flag given on the command line
// overrides the file.
//
// # What a role grants
//
//   - ports: "unsolmsg", "commands" and "console" (the 3270 operator
//     console, where the role's events and targets apply as on UNSOLMSG
//     and COMMANDS) may be logged on to. VMMON is
//     granted per system name by vmmon (patterns): a z/VM agent logs on as
//     its system, and only a client granted that name may.
//   - events: filters in the `zbridge tail --filter` syntax (terms joined by
//     commas must all hold); a subscriber sees an event that any filter of
//     any of its roles matches, and its own filter narrows that further.
//     Audit records (source=audit) are seen only through a filter that
//     names source=audit. A role with no events sees none. An origin= term
//     also matches a syslog event's host name, which the sender chose:
//     pair it with source= where that matters.
//   - target: a target pattern (linux:NAME, linux:ADDR=IP, zvm:SYSTEM,
//     region; `*` and `?` within the name) and the command patterns allowed
//     there. Command patterns match word by word (package
//     commands/cmdpattern): `*` never spans words, `**` as a whole word
//     matches any words, a word with a `..` path element matches no
//     wildcard. A Linux command is split as /bin/sh would split it, and a
//     line with shell syntax (| ; & $ ` > …) matches no pattern — except
//     the pattern `**` alone, which grants any command line as typed. A
//     Linux line a pattern allowed is sent re-quoted word by word
//     (Grant.Line), so that no login shell expands it further. A
//     z/VM line is read as CP reads it (cmdpattern.SplitCP): a leading CP
//     dropped, a known abbreviation written in full (`QUERY **` allows
//     `Q N`), and a line with CP's line-editing characters (# @ ") refused.
//     z/VM and region commands match without regard to case.
//   - groups: consumer-group names (patterns) that clients holding the
//     role share; other group names, and every durable subscription name,
//     belong to the client that uses them.
//   - see-others: the COMMANDS display lists every client's commands, not
//     only the client's own.
//   - max-timeout and max-in-flight: limits on the client's commands
//     (across its sessions); the loosest of its roles' limits applies.
//
// Anything not granted is refused with a sentence that names what was
// missing. Clients may also come from the clients file (package auth,
// Options.Clients); a [[client]] entry without secret-hash gives such a
// client its roles. Only with no clients and no roles at all does the
// policy run open ([Policy.Open]): anyone may do everything, which the
// region allows on loopback only. Once any client is configured, a client
// without roles may do nothing.
package trust
