package peer

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// RelpOptions configure the rsyslogd that [StartRelpForwarder] starts: an
// imtcp input on loopback forwarding every message with omrelp.
type RelpOptions struct {
	// Target is the RELP server, "127.0.0.1:port". Required.
	Target string
	// WindowSize is omrelp's windowSize, the most unacknowledged messages
	// (0: librelp's default, 128).
	WindowSize int
	// Timeout is omrelp's timeout in seconds, how long it waits for an
	// answer before it takes the session as broken (0: the default, 90).
	Timeout int
	// TLS, when set, has omrelp speak TLS (tls="on").
	TLS *RelpTLS
}

// RelpTLS is omrelp's TLS set-up: librelp checks the server's certificate
// against CACert, and with AuthMode "name" its names against
// PermittedPeer. librelp's TLS without an AuthMode is anonymous
// Diffie-Hellman, which Go's crypto/tls does not speak.
type RelpTLS struct {
	CACert        string // PEM file of the CA that signed the server's certificate
	AuthMode      string // "certvalid" (the chain only) or "name" (also PermittedPeer)
	PermittedPeer string // the name the server's certificate must carry, with AuthMode "name"
	// Lib is omrelp's tls.tlslib: "openssl" when empty. librelp 1.11's
	// default, "gnutls", sends from rsyslogd 8.2302 (Debian 12) a
	// ClientHello with TLS 1.3 cipher suites only and no TLS 1.3
	// support, which neither Go's crypto/tls nor imrelp can answer
	// ("no cipher suite supported by both client and server").
	Lib string
}

// RelpForwarder is an rsyslogd started by [StartRelpForwarder].
type RelpForwarder struct {
	*Process
	// ConfigFile is the configuration it runs with.
	ConfigFile string
	// Input is the TCP address (127.0.0.1:port) of its imtcp input, which
	// reads RFC 5424 messages, octet-counted or one a line.
	Input string
	// WorkDir is its private work directory.
	WorkDir string
}

// RequireRelp returns the path of rsyslogd and of the module directory
// that holds imtcp and omrelp (.ci/run unpacks rsyslog and rsyslog-relp
// into [RsyslogRoot]). When either is missing it skips the test, or fails
// it if [EnvRequire] is set.
func RequireRelp(t testing.TB) (rsyslogd, modDir string) {
	t.Helper()
	requireRsyslogModule(t, "omrelp.so", "rsyslog-relp")
	rsyslogd = Require(t, "rsyslogd")
	return rsyslogd, rsyslogModDir(rsyslogd)
}

// RelpConfig returns the text of an rsyslog configuration that reads
// messages on TCP 127.0.0.1:listenPort (imtcp) and forwards each with
// omrelp as opts say, with its state in workDir. The action block is the
// forwarding part a user copies (see [SnippetBegin]); it keeps messages in
// a queue of its own and retries forever, so that nothing is dropped while
// the RELP server is away.
func RelpConfig(opts RelpOptions, listenPort int, workDir string) (string, error) {
	host, port, err := net.SplitHostPort(opts.Target)
	if err != nil {
		return "", fmt.Errorf("peer: RELP target %q: %w", opts.Target, err)
	}
	var params []string
	add := func(name, value string) { params = append(params, fmt.Sprintf("    %s=%q", name, value)) }
	add("type", "omrelp")
	add("target", host)
	add("port", port)
	add("template", "RSYSLOG_SyslogProtocol23Format")
	if opts.WindowSize > 0 {
		add("windowSize", strconv.Itoa(opts.WindowSize))
	}
	if opts.Timeout > 0 {
		add("timeout", strconv.Itoa(opts.Timeout))
	}
	if tc := opts.TLS; tc != nil {
		add("tls", "on")
		add("tls.cacert", tc.CACert)
		if tc.AuthMode != "" {
			add("tls.authmode", tc.AuthMode)
		}
		if tc.PermittedPeer != "" {
			add("tls.permittedPeer", tc.PermittedPeer)
		}
	}
	add("queue.type", "LinkedList")
	add("queue.size", "100000")
	add("action.resumeRetryCount", "-1")
	add("action.resumeInterval", "1")

	module := `module(load="omrelp")`
	if tc := opts.TLS; tc != nil {
		lib := tc.Lib
		if lib == "" {
			lib = "openssl"
		}
		module = fmt.Sprintf(`module(load="omrelp" tls.tlslib=%q)`, lib)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `# rsyslog → zbridge region over RELP (omrelp): test plumbing first.
# parser.escapeControlCharactersOnReceive="off" lets an LF inside a message
# reach the region as an LF (rsyslog's default turns it into #012).
global(workDirectory=%q processInternalMessages="on" parser.escapeControlCharactersOnReceive="off")
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="%d")
if $inputname == "rsyslogd" then {
    action(type="omfile" file=%q)
    stop
}

%s
# Forward every message to the zbridge region over RELP: each message is
# acknowledged by the region once it is stored, and what is not
# acknowledged is sent again after a reconnect. The action has its own
# queue and retries forever, so messages wait while the region is away
# (add queue.filename="zbridge-relp" and queue.saveOnShutdown="on" to keep
# them on disk across an rsyslog restart). Leave rebindInterval unset: a
# rebind drops the messages still unacknowledged.
%s
action(
%s
)
%s
`, workDir, listenPort, filepath.Join(workDir, "rsyslogd-internal.log"),
		SnippetBegin, module, strings.Join(params, "\n"), SnippetEnd)
	return b.String(), nil
}

// StartRelpForwarder starts rsyslogd with [RelpConfig], forwarding to
// opts.Target, and waits until its input accepts connections. The
// configuration is checked first (rsyslogd -N1). The process is stopped
// when the test ends; Restart starts it again with the same ports.
func StartRelpForwarder(t testing.TB, opts RelpOptions) *RelpForwarder {
	t.Helper()
	path, modDir := RequireRelp(t)
	workDir := t.TempDir()
	input := Addr(FreePort(t))
	_, listen, _ := net.SplitHostPort(input)
	listenPort, _ := strconv.Atoi(listen)
	text, err := RelpConfig(opts, listenPort, workDir)
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(t.TempDir(), "rsyslog-relp.conf")
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	checkConfig(t, path, "-N1", "-f", conf, "-M", modDir)
	dir := t.TempDir()
	p := Start(t, Command{
		Name:  "rsyslogd",
		Path:  path,
		Args:  []string{"-n", "-f", conf, "-i", filepath.Join(dir, "rsyslogd.pid"), "-M", modDir},
		Dir:   dir,
		Logs:  []string{filepath.Join(workDir, "rsyslogd-internal.log")},
		Ready: TCPReady(input),
	})
	return &RelpForwarder{Process: p, ConfigFile: conf, Input: input, WorkDir: workDir}
}
