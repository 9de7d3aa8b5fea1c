// Package zvmsim is a z/VM console simulator: a TN3270 server (built on
// github.com/racingmars/go3270 for the telnet negotiation and the
// codepages; it writes its own 3270 records for exact control of the
// layout) whose terminals behave as documented z/VM CP does on a 3270
// console. It serves the z/VM agent's tests and lets a newcomer try
// zbridge without a mainframe (`zbridge zvmsim`).
//
// # Server
//
// [New] takes a [Config] (system name, the one password, the directory's
// userids, the MORE... delay, a logger, a clock); [Sim.Serve] serves a
// listener, [Sim.Shutdown] and [Sim.Close] stop it (Serve then returns
// [ErrServerClosed]). Every goroutine belongs to the Sim and is waited for.
// Tests drive it from outside through [Sim.Inject], [Sim.InjectTo],
// [Sim.InjectMany], [Sim.Message] and [Sim.Warning].
//
// # Users and logon
//
// The simulated CP directory holds OPERATOR, MAINT and Config.Users
// (default LINUX01, LINUX02, LINUX03, TCPIP); all log on with
// Config.Password. OPERATOR and MAINT are privileged (classes A-G): only
// they may use FORCE, WARNING and XAUTOLOG; for anyone else those are
// "HCPCMD001E Unknown CP command", as real CP answers a command outside the
// user's classes.
//
// A connection first gets the logo screen (after z/VM's "z/VM ONLINE"
// screen): USERID ===> at row 14 (input from column 15, 8 long), PASSWORD
// ===> at row 15 (non-display, 32 long), a message line at row 21 and
// COMMAND ===> at row 22, which takes "LOGON userid [password]"; the status
// area shows RUNNING and the system name. The fields end in plain protected
// attributes, not autoskip ones, so Tab moves between them.
//
//   - A wrong password or an unknown userid: the logo screen again with
//     "HCPLGA050E LOGON unsuccessful--incorrect userid and/or password"
//     (CP Messages and Codes, HCP050E; CP does not say which was wrong).
//   - A userid logged on and connected at another terminal: the logo screen
//     with "HCPLGA054E Already logged on" (HCP054E). The LOGON HERE operand,
//     which would take the session over, is not simulated.
//   - A userid logged on but disconnected (XAUTOLOG'd guests, Config.Autolog,
//     a user whose terminal went away or who typed DISCONNECT): the console,
//     with "RECONNECTED AT hh:mm:ss zone weekday mm/dd/yy" (CP Commands and
//     Utilities Reference, LOGON). CP discards console output for a
//     disconnected user, so nothing sent meanwhile is shown.
//   - Otherwise a new logon: the logon banner (level, "There is no logmsg
//     data", "FILES:   NO RDR,   NO PRT,   NO PUN") and "LOGON AT hh:mm:ss
//     zone weekday mm/dd/yy"; the console is in CP READ (no operating system
//     is IPLed, so VM READ does not occur). The operator's console gets
//     "GRAF L0004 LOGON  AS  MAINT    USERS = n" for logons of other users
//     and "GRAF L0004 LOGOFF AS  ..." for their LOGOFF.
//
// Terminals are named L0004, L0005, ... (logical devices) in QUERY NAMES.
// LOGOFF (or LOGOUT) and DISCONNECT return the terminal to the logo screen;
// so does FORCE by another user.
//
// # The console
//
// The layout, on the 24x80 screen of a 3278 model 2:
//
//	rows 0..21        output area (protected), lines of at most 79 characters
//	row 21 column 79  the input area's field attribute
//	rows 22..23       input area from row 22 column 0 to row 23 column 58
//	row 23 column 59  the status area's field attribute (protected)
//	row 23 column 60  status: CP READ, RUNNING, MORE..., HOLDING, NOT ACCEPTED
//	row 23 column 72  the system name
//
// The system name starts at column 72, not 70, so that the 12-character
// NOT ACCEPTED fits before it; a scraper reading columns 70..79 and trimming
// blanks gets the name in every other state. Longer lines are split at the
// last blank that fits (the blank is dropped, the blanks before it stay on
// the row), as real z/VM split the HCPCLS6056I message of the zvm-bootcamp
// XAUTOLOG transcript, or at 79 characters when there is none; the
// continuation starts at column 0 of the next row. A row holds the
// characters of its line and nulls after them, never padding blanks, so a
// terminal can tell a row filled with blanks from a short one.
//
// After every key (AID) the terminal gets a full screen (Erase/Write,
// keyboard restored, the cursor at row 22 column 0, the input area empty).
// Output that arrives between keys (messages, notices, injected lines, the
// next screen after MORE...) is written with a plain Write of the changed
// rows and the status only, so what the user is typing is not disturbed.
//
// Screen states (CP Commands and Utilities Reference, TERMINAL MORE; the
// status words are those of the z/VM CMS User's Guide, "screen status
// area"):
//
//   - Output goes into the output area while there is room.
//   - When the area is full and more output waits, the status is MORE...
//     After Config.MoreDelay (default 60 s: z/VM's initial TERMINAL MORE
//     50 10 is 50 seconds, then 10 more before the clearing) the output
//     area is cleared and the next screen shown. CLEAR or PA2 shows it at
//     once.
//   - ENTER during MORE... makes it HOLDING: the screen stays until CLEAR or
//     PA2. A line typed with that ENTER is still taken (its echo and output
//     queue behind the waiting lines).
//   - A message from a user (MSG, WNG) that arrives while the screen is full
//     makes it HOLDING too, not MORE..., so the screen cannot be timed away
//     before the message was seen: the message shows on the next screen,
//     after CLEAR or PA2. (The z/VM documentation and Rocket's Model 204
//     terminal guide describe HOLDING when a message arrives, released by
//     CLEAR or PA2; that it applies exactly when the screen is full is this
//     simulator's reading.) A message that fits on the screen simply
//     appears and the status does not change.
//   - CLEAR and PA2 clear the output area in every state.
//   - SPIN n (a simulator command) lets the virtual machine run for n
//     seconds: the status is RUNNING. A line typed then is held as
//     type-ahead and run when the machine stops; a second one is refused
//     with NOT ACCEPTED (shown until the next key), to be reissued. Lines
//     beginning #CP go to CP at once.
//
// # Commands
//
// The input line is echoed on the console as typed, as CP does. '#' is the
// logical line end, so one line may carry several commands, and a leading
// CP word (as in "#CP QUERY TIME") is dropped. Commands are case-insensitive
// and take CP's abbreviations (Q, M, W, XAUTOL, LOG, DISC, CPLEV ...):
//
//	QUERY TIME      TIME IS 13:02:41 UTC WEDNESDAY 03/11/26   (HCP6001I, shown
//	                CONNECT= 00:05:12 VIRTCPU= 000:00.00 TOTCPU= 000:00.00
//	                without its message-ID header, as CP shows command responses)
//	QUERY NAMES     LINUX01  - DSC , OPERATOR - L0004 , ...  four to a line,
//	                sorted, then "VSM     - TCPIP" when TCPIP is logged on and
//	                terminals are connected
//	QUERY USERS         3 USERS,     0 DIALED,     1 NET
//	QUERY USERID    OPERATOR AT VMSYS1
//	QUERY CPLEVEL   z/VM Version 7 Release 3.0, service level 2301 (64-bit)
//	                Generated at 03/01/23 10:00:00 UTC
//	                IPL at mm/dd/yy hh:mm:ss UTC   (when New ran)
//	MSG user|* text the receiver gets "hh:mm:ss * MSG FROM OPERATOR: text";
//	                the sender nothing, or HCPMSG045E (not logged on) or
//	                HCPMSG057I (not receiving; disconnected)
//	WARNING user text   the same with "* WNG FROM"
//	XAUTOLOG user   "Command accepted", then "AUTO LOGON  ***       LINUX01  USERS = n"
//	                and HCPCLS6056I on the issuer's and the operator's console;
//	                HCPCLS053E (not in CP directory), HCPCLS054E (already logged on)
//	FORCE user      "USER DSC   LOGOFF AS  LINUX01  USERS = n    FORCED BY OPERATOR"
//	                (GRAF Lnnnn for a connected user) on the issuer's and the
//	                operator's console; HCPCFX045E when not logged on
//	LOGOFF          CONNECT= ... and LOGOFF AT ..., then the logo screen
//	DISCONNECT      DISCONNECT AT ..., then the logo screen; the user stays logged on
//	anything else   HCPCMD001E Unknown CP command: XYZ
//
// and two of the simulator's own: LONGOUT n (n lines "LONGOUT LINE 00001 OF
// 00060", for MORE... screens) and SPIN n (see above).
//
// # Sources, and what was guessed
//
// Formats follow z/VM 7.3 CP Commands and Utilities Reference (LOGON,
// LOGOFF, DISCONNECT, MESSAGE, WARNING, XAUTOLOG, FORCE, QUERY TIME, NAMES,
// USERS, USERID, CPLEVEL, TERMINAL MORE) and CP Messages and Codes (HCP001E,
// HCP003E, HCP015E, HCP026E, HCP045E, HCP050E, HCP053E, HCP054E, HCP057I,
// HCP6001I, HCP6056I), checked where possible against real console output
// published elsewhere: the XAUTOLOG and FORCE transcripts of the
// zvm-bootcamp workshop, QUERY CPLEVEL, NAMES and TIME output quoted in Rick
// Troth's uft and IBM's ibm_zos_core collection, and the logon messages
// tessia-baselib matches on. messages.go says for each line where it comes
// from. Guessed, and said so there: the module part of the IDs of error
// messages other than HCPLGA050E, HCPLGA054E, HCPCMD001E and HCPCLS6056I;
// the GRAF ... LOGON AS notice; the column widths of QUERY USERS and the
// meaning given to its NET count; the padding of the sender in MSG FROM;
// the split of long lines beyond the one real example (whether blanks
// before the break stay on the row, and that rows are not padded with
// blanks); the logo screen's exact layout; that HOLDING on
// an arriving message applies when the screen is full; and the system
// name's column (72, see above).
//
// Not simulated: CMS (VM READ, Ready;), TERMINAL and SET commands, console
// spooling, LOGON HERE, PF key settings (PA1, PA3 and PF keys do nothing),
// password phrases longer than 32 characters, and TN3270E.
package zvmsim
