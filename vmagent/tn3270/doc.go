// Package tn3270 is a TN3270 client: a 3270 display terminal (an IBM 3278
// model 2 to 5) that a program drives over telnet. The z/VM agent uses it to
// log on to a z/VM console, read the screen and type CP commands.
//
// go3270 (github.com/racingmars/go3270) is a server library; this package
// takes its Codepage implementations and AID constants and writes the
// client side: telnet negotiation, the outbound 3270 data stream into a
// screen buffer, and the inbound AID, cursor address and modified fields.
//
// # Use
//
// [Dial] connects and returns a [Client]; the host negotiates and writes
// its screens in its own time. [Client.Screen] returns a [Screen], an
// immutable snapshot: its rows of text, cursor, fields, keyboard state and
// an update sequence number (Seq) that counts host writes.
// [Client.WaitUpdate] waits for the host's next write after a given Seq and
// [Client.WaitFor] until the screen satisfies a condition. [Client.Type],
// [Client.SetField], [Client.MoveCursor] and [Client.Tab] edit the screen
// as an operator would; [Client.SendAID] presses Enter, Clear, a PA or a PF
// key, after which the keyboard stays locked until a host write restores it.
// [Client.Close] ends the session and waits for the client's one goroutine.
//
// That goroutine reads from the host and writes the answers the host asks
// for (Read Buffer, queries, telnet negotiation) itself. Writes go out one
// at a time; SendAID's wait for its turn ends with its context, and every
// write, the goroutine's own included, ends the session if the host has
// not taken it within Config.WriteTimeout: a host that stops reading
// cannot hold the client, or a caller of SendAID, for good.
//
// # Screen text
//
// [Screen.Rows] renders the screen exactly as s3270's Ascii() action does,
// and the tests hold it to that (see below): field attribute positions,
// nulls and the characters of nondisplay (hidden) fields show as blanks;
// characters translate through the Client's codepage (CP037 unless
// configured; go3270's SetCodepage is global and not used); controls and
// undefined codes show as blanks, except DUP, FM, SUB and EO, which show as
// x3270 draws them (* ; ■ ●); graphic escape characters (CP310) show as
// x3270 shows them, which differs from go3270's CP310 table in some thirty
// places.
//
// # Telnet
//
// The client answers DO TERMINAL-TYPE with WILL and sends the terminal type
// (IBM-3278-2-E by default) when asked; it agrees to BINARY and EOR in both
// directions and refuses every other option with WONT or DONT, TN3270E
// (RFC 2355) included: the session then proceeds as plain TN3270 (RFC
// 1576), which every TN3270E server accepts. Each negotiation answer is a
// write of its own (go3270's server reads them one at a time). Records end
// with IAC EOR and 0xFF is doubled in them.
//
// # Data stream
//
// [ParseDataStream] applies one host record to a [Buffer] and returns the
// inbound record it asks for, if any; it does no I/O. It handles the
// commands Write, Erase/Write, Erase/Write Alternate, Erase All
// Unprotected, Read Buffer, Read Modified, Read Modified All (local and SNA
// codes) and Write Structured Field (Read Partition: Query, Query List,
// Read Buffer/Modified/Modified All; Erase/Reset; Outbound 3270DS; Set Reply
// Mode is accepted and replies stay in field mode); the orders SF, SFE,
// SBA, SA, MF, IC, PT, RA (with a GE character), EUA and GE; the WCC's
// reset MDT, keyboard restore and alarm; 12-bit and 14-bit addresses. The
// Query Reply offers Summary, Usable Area, Implicit Partition, Character
// Sets (with CP310 for graphic escape), Color, Highlighting and Reply Modes.
// Where GA23-0059 leaves room, the rules are x3270's (a write starts at the
// cursor; PT after data nulls the rest of the field; RA and EUA to their own
// start address cover the whole buffer).
//
// A record the terminal cannot accept ends the session with a
// [*DataStreamError] (wrapping [ErrBadDataStream]) that gives the offset:
// an unknown command or order, an order cut off by the end of the record,
// an address outside the buffer, a structured field whose length does not
// fit. Two choices are stricter than x3270, which skips unknown orders and
// lets a write wrap freely: an unknown order byte is an error, and so is a
// field attribute (SF, SFE) written after the write has wrapped past the
// end of the buffer, which means misread addresses rather than intent.
// Characters still wrap, as on a 3270. Structured fields for features this
// terminal lacks (file transfer, programmed symbols) are ignored.
//
// # Tests
//
// The tests talk to real programs: a go3270 server in the test, s3270 (the
// x3270 suite's scripting terminal) as the outside judge of what each test
// screen shows, and Hercules, whose console port serves its logo screen.
// testdata/*.ds hold recorded data streams (one record a line, in hex) and
// testdata/*.golden the text s3270 showed for them; `go test -update`
// records them again from the live peers.
package tn3270
