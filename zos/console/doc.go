// Package console is the region's 3270 operator console: a TN3270 server
// (github.com/racingmars/go3270) where an operator logs on with a client
// name and secret and gets what an MCS console or SDSF's LOG gives on
// z/OS: a live log of the events the client may see, with a filter, a
// command line that runs the commands of the region's other ports
// (linux:HOST, zvm:SYSTEM, region commands such as F ZBR1,SERVERS), and a
// panel of the agents. The region implements Backend (who may log on; each
// operator's events, commands and agents, every role checked there); this
// package only shows and asks.
//
// A Server is used like net/http.Server: New(Config), Serve(listener) for
// each listener (TN3270, or TN3270 over TLS when Config.TLSConfig is set:
// x3270's "L:host:port"), Shutdown(ctx) to stop and drain, Close to stop
// at once. Serve returns ErrServerClosed after either.
//
// # Screens
//
// Every screen takes the terminal's size (DevInfo.AltDimensions: model 2
// is 24x80, model 4 43x80, model 5 27x132; a terminal under 24x80 is
// refused with ZBR314E) and is written in the terminal's own code page
// (DevInfo.Codepage, 1047 when the terminal does not say): the console
// never calls go3270.SetCodepage. Text is shown only in characters the
// code page has (others as '?', control characters as '.'), so nothing an
// event holds can act as a 3270 order or a telnet command.
//
// The logon panel has the CLIENT field, the SECRET field (hidden; never
// written back or logged) and a message line for ZBR314E. ENTER logs on,
// PF3 leaves.
//
// The log screen (rows numbered from 0, R rows):
//
//	0        ZBRIDGE <region> CONSOLE  CLIENT <name>        <date time> UTC
//	1        FILTER ===> <filter terms, as UNSOLMSG takes them; empty: all>
//	2..R-4   the log area: HH:MM:SS ORIGIN MSGID TEXT, newest at the bottom
//	R-3      status: LIVE, or HELD  LINES a-b OF n  MORE +k; RUNNING: <command>
//	R-2      COMMAND ===> <command line, where the cursor is>
//	R-1      PF3=END PF5=AGENTS PF7=UP PF8=DOWN PF12=RETRIEVE ENTER=RUN
//
// Rows are flush left: each row's field attribute takes the last column
// of the row above (the title's, its own column 0), so a row's text takes
// columns 0 to cols-2; the log area is cols-1 wide.
//
// A log line is an event (its UTC time, its origin's system or else its
// host, its message ID or blanks, its text) or one of the console's own
// lines (the time, then a command's echo "CLIENT ==> line", its output,
// or a ZBR31x message). A line longer than the row goes on in continuation
// lines indented past the time, at most 32 rows an entry. Events are
// coloured by severity (emerg to err red, warning yellow, notice and info
// green, debug blue); an action message (an ID ending in a digit and A,
// in the message ID or first in the text) is red in reverse video. The
// console's lines: echo white, output turquoise, ZBR310I white (yellow for
// a return code other than 0), ZBR311E and ZBR313E red.
//
// # Keys
//
//   - ENTER: a changed filter line is applied first: a good one clears the
//     events from the log area (the console's own lines stay), restarts
//     the tail with it and says ZBR312I; a bad one says ZBR313E and the
//     filter in force stays (the line shows it again). Then a non-empty
//     command line is run: its echo, its output lines and ZBR310I (ID, RC,
//     SIGNAL=, TRUNCATED) or ZBR311E (the reason) go to the log area, in
//     arrival order among the events. The command line is cleared and the
//     view goes live.
//   - PF7 holds the view and scrolls a page back; PF8 a page forward, and
//     onto the newest page it goes live again. While held, new lines do
//     not move the view and the status row counts them (MORE +k).
//   - PF12 retrieves the last commands into the command line, the newest
//     first, one further back at each press (the last 10).
//   - PF5 shows the agents panel (NAME KIND STATE ADDRESS SINCE LAST-HB
//     REGION, fitted to the width; PF7/PF8 page, ENTER refreshes, PF3 or
//     PF5 return; a refusal is a ZBR311E message line).
//   - CLEAR (or PA1-3) shows the screen again. PF3 ends the session.
//
// # Decisions
//
//   - One command at a time per console: ENTER with a command while one
//     runs echoes it and refuses it with ZBR311E rather than queueing it
//     (a queued command would run later than the operator expects, on a
//     state they no longer see). The log and the keyboard go on while a
//     command runs: it runs on a goroutine of its own.
//   - go3270 reads on the session's goroutine, blocked in ShowScreenOpts
//     until a key. Meanwhile the updater writes the log area, the status
//     row and the title's clock unsolicited (a Write with NoClear): only
//     protected rows, each written whole, and only those that changed;
//     never an input field, so the field layout of the pending read holds
//     and what the operator is typing stays. Such a write leaves the
//     keyboard as it is (go3270 asks for a keyboard restore, which the
//     console takes out of the write control character): an operator who
//     pressed a key waits for the console's answer, not for the next
//     event. Writes are coalesced: at most one every 100 ms, showing
//     everything that arrived since, so a flood of events costs the
//     terminal ten screens a second.
//   - The scrollback keeps Config.Scrollback rows (default 5000) in a
//     ring; a held view whose rows the ring drops moves to the oldest kept.
//   - The tail starts with Config.TailBack events (default 200). A tail
//     that returns other than by its context ends the session (the
//     Operator's contract: the session or the region ended, e.g. the
//     client's access was withdrawn); the last screen says why.
//   - A session ends on PF3, after IdleTimeout without a key (default
//     30m), when the tail ends, on Shutdown, or when the terminal goes.
//     Its Operator is closed exactly once, after its goroutines returned,
//     and the terminal is shown why (SESSION ENDED: reason) before the
//     connection is closed.
//
// # Limits: what anyone who can reach the port can do before logon
//
//   - MaxPerAddr connections from one IP address (default 4) and
//     MaxPending connections not logged on (default 64); a connection
//     over either is closed at once, without an answer.
//   - The telnet negotiation must end within 10 seconds, and go3270's
//     negotiation reads through a guard (negotiate.go): option replies
//     are read whole, and a query reply go3270 would mishandle (a
//     structured field shorter than its header, which panics it; Character
//     Sets descriptors of length 0, which loop it forever) ends the
//     connection; a panic is recovered all the same.
//   - LogonTimeout (default 2m) from accept to logon: TLS handshake (also
//     bounded by HandshakeTimeout), telnet negotiation and logon panel; the
//     connection is then closed, whatever it was waiting for.
//   - A terminal may send at most 64 KiB for one screen (or for the
//     negotiation): go3270 would otherwise buffer whatever comes before
//     the end of a record. WriteTimeout (default 30s) closes a terminal
//     that takes no data. More than 20 keys other than ENTER on the logon
//     panel (each redraws it) close the connection.
//   - LogonAttempts refused logons (default 3) close the connection.
//     Failed logons are counted per source address, an IPv6 address by
//     its /64, and per client name (package internal/throttle), as on the
//     region's other ports: after MaxLogonFailures (default 5) an address
//     is refused without asking the Backend for LogonBlock (2s), doubling
//     to MaxLogonBlock (5m); a blocked name's right secret still logs on
//     (others failing with the name cannot lock its operator out), a wrong
//     one is refused as blocked. A refusal for load (ErrBusy) is not a
//     failure; one for a missing grant (ErrNotPermitted) is neither a
//     failure nor a success.
//   - At most MaxSessions operators (default 32) are logged on. One
//     client may hold several sessions; a per-client limit is not kept.
//
// # Goroutines
//
// Serve runs the accept loop (package internal/acceptloop) on its
// caller's goroutine. Each accepted connection gets one goroutine, which
// Shutdown and Close wait for (the Server's WaitGroup, which also counts
// the Serve calls). It runs the handshake, the negotiation, the logon
// panel and then the session's screens; it owns the logon deadline's
// timer function (time.AfterFunc, waited for if it fired) and, once
// logged on, the session's goroutines, which it waits for before it
// closes the Operator:
//
//   - the updater, which writes the log screen's changes;
//   - the tail, one at a time (a new filter stops the old one and waits
//     for it before starting the next);
//   - the command in flight, at most one.
//
// Shutdown waits for the connections on a goroutine of its own, which it
// waits for in turn. One stop signal per session: end records the first
// reason, cancels the session's context (the tail and the command) and
// interrupts the pending read.
package console
