// Package audit is the region's append-only audit log (--audit-log FILE):
// every command — accepted, refused or failed — every logon and every
// subscription, accepted or refused, is one JSON line in a file, synced to
// disk before the region acts on it.
//
// # Records
//
// A [Record] is one line: when, which region, what kind (command, logon,
// subscribe, refresh), who (client, remote address, session, port), what
// (target, command text, command ID), how it ended (outcome, code, the
// sentence the client was given, return code, duration, bytes of output),
// and by which rule it was allowed or what rule was missing. A record has
// no field for a secret, so it cannot carry one.
//
//	{"time":"2025-03-01T09:30:00.123Z","region":"ZBR1","kind":"command","phase":"start","client":"OPSAUTO","remote":"10.1.2.3:50312","session":"ZBR1-7","server":"commands","target":"linux:web1","command":"uptime","id":"ops-17","rule":"role ops: linux:web* uptime"}
//	{"time":"2025-03-01T09:30:00.165Z","region":"ZBR1","kind":"command","phase":"end","client":"OPSAUTO",…,"outcome":"ok","rc":0,"duration_ms":41,"output_bytes":120,"rule":"role ops: linux:web* uptime"}
//
// A command that is handed to its target has two records: a start record,
// written and synced before the command starts, and an end record when it
// ends. A command answered without being started (refused by policy, a bad
// request, busy) has only its end record. So every command has exactly one
// end record, with the same ID as its start record when there is one.
//
// The outcome is one word to filter on: "ok", "refused" (roles, the
// agent's policy, bad credentials), or for a command that did not run to
// its end the commands package's error code ("timeout", "cancelled",
// "busy", "failed", …; see [OutcomeOf]). Code holds the precise code
// whenever the outcome is not ok. [Record.SetResult] fills the end of a
// command's record from what commands.Router.Run returned.
//
// Lines are JSON as encoding/json writes it, with no HTML escaping ("&&",
// "<" and ">" stay as typed), control characters and U+2028/U+2029
// escaped (no reader can take them for a line end), invalid UTF-8 replaced
// by U+FFFD. Times are RFC 3339 in UTC with milliseconds ([TimeFormat]).
//
// # Durability, and failing closed
//
// [Log.Write] returns after the line has been written with one write(2)
// call to a file opened with O_APPEND and synced with fsync. The region
// writes a command's start record before running it, and when Write fails
// it refuses the command instead: no command runs unrecorded (fail closed).
// The same holds for logons and subscriptions. A record whose Write failed may nonetheless be in the file (the write
// may have reached the file before the sync failed).
//
// Writers share syncs (group commit): while one batch of lines is being
// written and synced, the lines of the writers that arrive meanwhile
// gather into the next batch, which the first of them writes and syncs when
// the one before has finished. A hundred concurrent commands thus cost a
// few fsyncs, not a hundred in series, and lines never interleave because
// only one batch is written at a time. The Log starts no goroutines: each
// batch is written by one of the goroutines that called Write.
//
// A write that fails half-way (a full disk) leaves part of a line; a crash
// can too. The next write starts with a newline (and New checks how an
// existing file ends), so that the records after the fragment are whole
// lines: a reader skips the one line that does not parse.
//
// The file is created with mode 0600 ([FileMode]). New and [Log.Reopen]
// refuse an existing file that its group or others may write
// ([ErrUnsafeFile]), and anything but a regular file ([ErrNotRegular]: a
// pipe or device cannot be synced). They check the file they opened, not
// the path, so the check cannot be raced. They also sync the file's
// directory, so that a file just created survives a crash.
//
// # Rotation
//
// logrotate moves the file and sends SIGHUP (or the region's operator
// command asks); the region calls [Log.Reopen], which opens the path anew
// (creating the file) and closes the old file once the batch being written
// to it, if any, is synced. No record is lost or split between files.
// copytruncate works as well, since every write appends.
//
// # Events
//
// After a record is synced, Write calls [Config.Publish], with which the
// region appends [Record.Event] to its event stream: an event of source
// "audit" that only roles whose event filters name source=audit may
// receive. The event's text is a one-line summary and its raw field the
// record's JSON line. A failed publication is logged and does not fail the
// Write: the file is the record of truth, and the command is not refused
// because the event stream is down.
package audit
