// Package syslog is zbridge's SYSLOG server: Linux syslog daemons (rsyslog,
// syslog-ng, util-linux logger) send it messages over TCP, TLS (RFC 5425) or
// UDP (RFC 5426), and each message becomes a *protocol.Event with Source
// protocol.SourceSyslog, handed in batches to an Appender (gateway/store's
// Store is one).
//
// # Framing
//
// A TCP or TLS connection's framing is detected from its first byte (see
// package framing and its SPEC.md): a digit means RFC 6587 octet counting
// ("LEN SP MSG"), anything else non-transparent framing, where a frame ends
// at LF or NUL, a CR before it is dropped and empty lines are skipped. Octet
// counting is what senders should use: a newline inside a message survives
// it, while LF framing cuts the message in two (rsyslog #1165), and IBM
// Operations Manager for z/VM takes nothing else. A UDP datagram is one
// message.
//
// # Limits
//
//   - MaxFrame (default 200000 bytes, rsyslog imtcp's MaxFrameSize): a
//     larger octet count, or a longer line, ends the connection; what was
//     received of the frame (at most MaxFrame bytes) is kept as an event
//     flagged with the error. A larger datagram is kept truncated, flagged.
//   - MaxSessions (default 200, like imtcp): a connection beyond it is closed
//     as soon as it is accepted, logged and counted.
//   - MaxSessionsPerAddr (default 32): the same for the connections from one
//     source IP address, so that one host cannot take every session.
//   - ReadTimeout (default 5 minutes): a connection silent that long is
//     closed, and so is one whose frame is not complete that long after its
//     first byte (a trickle); what was received of the frame is kept. The
//     deadline bounds the writes crypto/tls makes inside a read too (its
//     answers to TLS 1.3 key updates), so a TLS sender that requests key
//     updates and does not read is closed at the same time, and Shutdown's
//     drain cuts such a write short; a connection whose sender does not
//     read is closed without a close_notify.
//   - HandshakeTimeout (default 10 seconds): a TLS client that has not
//     completed its handshake by then is closed.
//   - BatchSize (default 256): the events parsed from one read of a
//     connection (64 KiB) go to one Append, up to BatchSize at a time;
//     while an Append is in progress, the batches a connection's next reads
//     make wait and go to the next Append together (group commit, up to
//     8192 events or 4 MiB), so that an Appender that costs a round trip per
//     call (Redis) keeps up with a busy sender.
//   - Coalesce (default 500µs, at most 20ms): once a read of a TCP or TLS
//     connection finds less waiting than both half its room and 32 KiB (the
//     region has caught up with the sender), the next read waits until
//     Coalesce after it. Each batch costs about as much in system calls and wake-ups
//     (the read, the hand-offs between goroutines, the journal's write,
//     waking and writing to every subscriber) for one message as for
//     hundreds, so a sender that sends a few messages at a time, often, is
//     much cheaper read in batches of what came in Coalesce. A message
//     waits up to about Coalesce more; a sender that keeps the reads full
//     is never held. The hold is beneath TLS (coalesce.go), on the bytes
//     of the connection, so that a sender's small records are read
//     together, and not during the handshake, nor once Shutdown drains
//     the connection. Stats.Reads counts the reads (of TLS, its records):
//     over plain TCP, Bytes over Reads is the average read.
//   - A read of a TLS connection takes the records that have come, up to
//     16 KiB, not one record alone (crypto/tls's Read returns one): a
//     sender that writes every message as a record of its own has them
//     parsed and appended together, as over TCP (the socket is read
//     without waiting, through its SyscallConn). BenchmarkServerTLS, a
//     record a message: 790k–813k msg/s against 300k–399k before.
//     syslog-ng 3.38's TLS destination writes two records a message (its
//     octet count, then the message): relaying from it, the region spent
//     6.0–7.5 µs of CPU a message with this against 8.5–9.0 without.
//
// # Parsing
//
// Messages are read as rsyslog 8 reads them with its default settings
// (header.go; PARSING.md lists the rules, the corpus of real-world messages
// they are checked on against the real rsyslogd, and every difference left
// with its reason): "<PRI>1 " selects RFC 5424, anything else is RFC 3164,
// where every part but the priority is optional and a message without one
// of them is still parsed (no timestamp: the receive time; no hostname: the
// sender's address). RFC 3164 timestamps may be RFC 3339 ones, carry a
// year, a fraction, an upper-case month or an unpadded day. The structured
// data of an RFC 5424 message is in SD, its elements and parameters in
// order and their escapes undone. Trailing LF, CR and NUL bytes are not part
// of a message (octet-counting senders such as syslog-ng and rsyslog's
// RSYSLOG_SyslogProtocol23Format end MSG with an LF). A UTF-8 BOM starting
// MSG is dropped from Text. Raw is the frame as received (the framing
// removed), and Text and every other field are substrings of it.
//
// Times: Received is the time the read that brought the message returned,
// in UTC. OriginTime is the sender's timestamp in the sender's zone and Time
// is it in UTC. RFC 3164 timestamps have no year and no zone: they get the
// year of the receive time and Config.Location (UTC unless the caller passes
// time.Local or another zone), and TimeFilled is "year,zone" ("zone" when it
// carries a year). Around New Year
// a date more than a day ahead of the receive time is put in the year before,
// and a January date received on December 31 in the next year when it is no
// more than a day ahead. A message with no usable timestamp has TimeFilled
// "all" and Time equal to Received.
//
// Origin.Host is the message's HOSTNAME, or the sender's address when it
// gives none; Origin.System is the same; Origin.Addr is the sender's IP
// address without port. Config.OnSender learns (host, address) pairs from
// TCP and TLS connections only: a UDP datagram's source can be forged. MsgID, App and ProcID are empty for the NILVALUE "-".
//
// SD is an RFC 5424 message's STRUCTURED-DATA as structuredData (sd.go)
// reads it: the elements in message order, each with its parameters in
// element order (a name may repeat), the escapes \", \\ and \] undone and
// a backslash before any other character kept (RFC 5424 section 6.3.3), a
// ']' left unescaped inside a quoted value taken as part of it. SD is nil
// for the NILVALUE "-", for RFC 3164 messages, and when the structured data
// is malformed (a name that is not an SD-NAME, a value not quoted, an
// element not closed, an SD-ID twice): it is then only in Raw.
//
// SD-IDs ending in "@zbridge" are the region's own (hardcopy@zbridge holds
// the columns of a z/OS hardcopy line the region read, status@zbridge an
// availability record), and rules take such an element for what the region
// wrote. A sender's element with such an ID (any RFC 5424 sender can write
// one, a forged datagram too, and zbridge zoslog does) is kept with
// "@claimed" in its place: hardcopy@zbridge becomes hardcopy@claimed. What
// the sender wrote stays in the event, but a term asking for the region's
// element does not find it; to trust a sender's, ask for the @claimed
// element and the sender's address (Origin.Addr), which the sender cannot
// claim over TCP. A renamed SD-ID that another element has too (x@zbridge
// and x@claimed sent together) is an SD-ID twice: the structured data is
// only in Raw.
//
// # Bad input is never dropped
//
// A message that does not parse is still an event: Parsed is false,
// ParseError says what was expected, with the column, Text holds the whole
// message, and Facility and Severity are those of its PRI when it could be
// read, else user and notice (RFC 3164 section 4.3.3's default PRI 13).
// Three things do not parse: a message that starts with '<' but has no valid
// priority, one with neither a priority nor a timestamp, and an RFC 5424
// message whose header does not.
// Fields read before the error (host, app, timestamp) are kept; Origin.Host
// falls back to the sender's address as above. A connection that ends inside
// a frame (the sender stopped, the read timed out, the server shut down)
// leaves what was received of that frame as a last event whose ParseError
// says so; a malformed octet count ends the connection and the bytes
// buffered from it on become one such event. An Append error is logged and
// ends the connection (so that the sender notices and retries from its own
// queue); for UDP the batch is dropped.
//
// # Lifecycle
//
// Server is shaped like net/http.Server: the caller opens the listeners and
// passes them to Serve (TCP, wrapped in TLS when Config.TLSConfig is set)
// and ServePacket (UDP). Shutdown stops accepting, lets every connection
// read for 100 ms more (what the kernel has already received and
// acknowledged), delivers it and closes, then waits for every goroutine.
// Close stops at once (closing the TCP connections beneath TLS, without
// close_notify) and cancels Appends in progress. Serve runs the
// accept loop (package internal/acceptloop, whose back-off after an accept
// error Shutdown cuts short) on the caller's goroutine; the server starts
// one goroutine per connection, which starts its parse workers and reader
// and waits for them, and Shutdown and Close wait for every connection's.
//
// # Cost
//
// Each connection keeps its own Parser (it is not safe for concurrent use);
// events are allocated 128 at a time and a message costs one allocation,
// its Raw string, of which every field is a substring. BenchmarkParse5424
// and BenchmarkParse3164 measure a whole event; BenchmarkGoSyslog5424 and
// BenchmarkGoSyslog3164 the go-syslog machines the server used before, for
// comparison.
package syslog
