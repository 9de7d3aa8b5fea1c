// Package relp is the frame codec of RELP, the Reliable Event Logging
// Protocol that rsyslog's omrelp and imrelp speak (librelp): frames
//
//	TXNR SP COMMAND SP DATALEN [SP DATA] LF
//
// read from a buffered stream by a [Reader] with a maximum DATALEN, and
// written by [AppendFrame]; the offers of the open command
// ([ParseOffers], [AppendOffers]) and the data of a rsp frame
// ([ParseResponse], [AppendResponse]). It knows nothing of sessions,
// windows or syslog: it does no I/O policy and starts no goroutines
// (package gateway/relp is the server). SPEC.md beside this file documents
// every frame, the session, and what librelp 1.11 actually sends, from the
// recorded sessions in testdata. Why zbridge has a codec of its own rather
// than an existing Go RELP library is in package gateway/relp's doc.
//
// The grammar is librelp's receiver (relpframe.c): after DATALEN 0 the
// trailer LF follows at once, leading zeros in TXNR and DATALEN are
// accepted. An empty COMMAND, which librelp's frame parser lets through to
// fail when the frame is dispatched, is malformed here.
//
// # Errors
//
// Every error of [Reader.ReadFrame] says at what stream offset, and wraps
// [ErrMalformed], [ErrTooLarge] or [ErrTruncated] (with the read error,
// if any); at the end of the stream between frames it is io.EOF. A RELP
// stream cannot be resynchronised after a bad frame, so the Reader's
// errors are sticky.
package relp
