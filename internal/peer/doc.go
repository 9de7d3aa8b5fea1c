// Package peer finds and starts the real programs zbridge's tests talk to:
// rsyslogd (with omrelp and the ossl TLS stream driver), syslog-ng, logger, redis-server, redis-sentinel,
// redis-cli, sshd, s3270, hercules, qemu-s390x-static and openssl. There are no fakes: a test that needs a peer starts the
// real program as its own child process, on 127.0.0.1 ports only, waits
// until it is ready, and the package stops it (the whole process group) when
// the test ends.
//
// A test that needs a program calls [Require]. When the program is not
// installed the test is skipped, unless the environment variable
// ZBRIDGE_REQUIRE_PEERS is 1 (as in CI), in which case it fails: CI must
// never pass by skipping. .ci/run installs every peer; run
// `ZBRIDGE_CI_INSTALL_ONLY=1 bash .ci/run` as root to install them by hand.
//
// [Start] runs any program as a [Process]: its standard output and error go
// to a file in the test's temporary directory, shown in the test log when the
// test fails, and it is stopped and waited for in t.Cleanup. [StartRsyslog],
// [StartSyslogNG] and [StartRedis] know how to run their daemon privately: in
// the foreground, with state files in a temporary directory, touching neither
// /var nor /dev/log. [StartRedisOpts] can give Redis an append-only file, so
// that its data survives [Process.Kill] and [Process.Restart].
// [StartSentinel] runs a master, its replicas and three Sentinels that can
// fail it over; [StartRedisCluster] runs a three-master Cluster made with
// `redis-cli --cluster create`. [StartRelpForwarder] runs rsyslogd with an
// omrelp action, the module directory holding rsyslog's and rsyslog-relp's
// modules (both unpacked by .ci/run).
//
// The syslog daemon configurations live in testdata/syslog at the module
// root (see [SyslogConfigs]). Each holds, between the [SnippetBegin] and
// [SnippetEnd] marker lines, the forwarding part that the README quotes for
// users to copy; the rest is the test's own plumbing. [RenderConfig] fills in
// the @NAME@ placeholders, [Snippet] extracts the marked part, and
// [StartForwarder] starts the right daemon with a configuration pointed at a
// test's region; [StartForwarderTLS] one that speaks TLS, verifying the
// region with a [TLSCA], which makes a CA and the server and client
// certificates it signs.
//
// A [Tap] sits between a sender and a receiver on loopback and keeps what
// it forwarded, in order, so that a test can tell what a real sender put on
// the wire from what the receiver made of it.
//
// A [KeyUpdater] is a hostile client, not a real program: a TLS 1.3
// client that sends KeyUpdate messages requesting an update (crypto/tls's
// client cannot) and never reads the answers; [ListenSmallBuffers] gives
// the server under test buffers that such a client fills soon.
//
// Functions that take a testing.TB must be called from the test's own
// goroutine, as they may call t.Fatal or t.Skip.
package peer
