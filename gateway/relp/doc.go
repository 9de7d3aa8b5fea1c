// Package relp is zbridge's RELP server: rsyslog's omrelp (librelp) sends
// it syslog messages, each acknowledged only once it is durable, and
// resends what was not acknowledged after a reconnect, so that a region
// restart or a store outage loses nothing. The frames are package
// protocol/relp's; its SPEC.md describes the protocol, the session and
// what librelp actually sends.
//
// # Delivery
//
// A session's goroutine reads frames. After open, it takes a syslog frame
// together with the syslog frames already received behind it (up to
// Config.Window, default 128, librelp's window), without waiting for more,
// and hands their messages to Sink.Deliver in one call. When Deliver
// returns nil it answers each with "rsp 200 OK", in order, in one write;
// then it reads on. While Deliver runs the session reads nothing more, so
// what the client sends meanwhile goes to the next Deliver whole (group
// commit). When Deliver fails nothing is answered: the session ends with
// the serverclose hint, and librelp sends every unacknowledged message
// again on its next session. It does not answer "rsp 500": librelp drops a
// message answered 500 and never sends it again (see SPEC.md).
//
// A malformed or oversized frame, or a protocol error (a txnr out of
// sequence, a command before open), ends its session: the messages before
// it are delivered and answered first, then the server sends serverclose
// with the reason and closes. It is logged at warn and counted; the other
// sessions go on.
//
// # Lifecycle
//
// Server is shaped like net/http.Server: the caller opens the listener and
// passes it to Serve (wrapped in TLS when Config.TLSConfig is set, like
// package gateway/syslog). Shutdown stops accepting, lets each session
// finish the Deliver in progress and answer it, sends serverclose and
// waits; Close stops at once, cancelling Delivers (not answered, so sent
// again by the client later). Every read and write of a connection has a
// deadline, the writes crypto/tls makes inside a read (its answers to TLS
// 1.3 key updates) included, and Shutdown cuts short a read in progress
// with them, so that a client that does not read holds neither its
// session nor Shutdown; a connection whose client does not read is closed
// without a close_notify, and Close closes the TCP connections beneath
// TLS.
//
// Goroutines: Serve runs the accept loop (internal/acceptloop) on the
// caller's goroutine. The server starts one goroutine per connection: the
// session's (serve), which reads, calls Deliver and writes, or, for a
// connection over MaxSessions, one that writes serverclose and closes it.
// Each is counted when started (never after Shutdown or Close began) and
// Shutdown and Close wait for all of them and for Serve.
//
// # The sender's side
//
// The omrelp action that worked with this server (rsyslog 8.2302, librelp
// 1.11), tested in rsyslog_test.go through internal/peer's RelpConfig:
//
//	module(load="omrelp")
//	action(type="omrelp" target="REGION" port="PORT"
//	    template="RSYSLOG_SyslogProtocol23Format"
//	    queue.type="LinkedList" queue.size="100000"
//	    action.resumeRetryCount="-1" action.resumeInterval="1")
//
// windowSize may stay at librelp's 128 (about 60,000 messages a second
// here; 1024 gave up to 110,000). Leave rebindInterval unset: librelp frees
// the messages still unacknowledged when it rebinds. Add
// queue.filename="zbridge-relp" and queue.saveOnShutdown="on" to keep the
// queue on disk across an rsyslog restart; the messages librelp has sent
// but not had answered are not in the queue any more and are lost if
// rsyslog stops before the region answers them. For TLS add tls="on",
// tls.cacert (the CA of the region's certificate), tls.authmode="certvalid"
// or "name", and load the module with tls.tlslib="openssl": librelp's
// default GnuTLS back end offers no usable cipher suite from that rsyslog.
//
// # Go RELP libraries, and why this package has its own codec
//
// Checked in December 2026:
//
//   - github.com/thierry-f-78/go-relp (server side; one commit, June 2023;
//     no tests): left. It buffers a frame of whatever DATALEN the client
//     announces (up to 999,999,999 bytes: no limit to configure), checks
//     neither the txnr sequence nor a maximum, reports every error as one
//     "protocol error" without offset or sentinel, allocates a read buffer
//     per frame, and takes TLS as file paths (client certificate
//     required) instead of a *tls.Config. Its ReceiveLog/AnswerOk split
//     would allow our ack timing, but not the batching: it cannot tell
//     whether the next frame is already buffered.
//   - github.com/stith/gorelp and its forks (Cybraics, damluji; 2014–2016,
//     unmaintained): left. It allocates the announced DATALEN unchecked,
//     cannot read a frame with DATALEN 0 (it waits for a space that never
//     comes, so "close" fails), writes "0 " before the trailer of an empty
//     frame, which librelp rejects, offers relp_version 0 only, and logs
//     through the global log package.
//   - github.com/teragrep/rlp_05: a client only.
//
// None of them is among the modules known to be served here
// (go-partial.tsv), and each would need the same work around it (limits,
// batching, our own ack timing); the codec (protocol/relp, some 550 lines
// with a fuzz target seeded with librelp's recorded sessions) is less
// than that work.
package relp
