package peer

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The marker lines around the part of a configuration users copy.
const (
	SnippetBegin = "# --- zbridge forwarding: copy from here ---"
	SnippetEnd   = "# --- to here ---"
)

// Placeholders in the testdata/syslog configurations, as keys of the vars
// given to [RenderConfig]. In a file each is written @KEY@.
const (
	// VarRegionHost and VarRegionPort are the region's address: with
	// VarRegionCAFile and VarRegionCertName, the only placeholders inside
	// the part users copy.
	VarRegionHost = "REGION_HOST"
	VarRegionPort = "REGION_PORT"
	// VarRegionCAFile is the PEM file of the CA that signed the region's
	// certificate, in the configurations that speak TLS (and only there).
	VarRegionCAFile = "REGION_CA_FILE"
	// VarRegionCertName is a DNS name in the region's certificate, for a
	// daemon that checks the certificate against a name it is given rather
	// than against the address it connects to (rsyslog): in configurations
	// that speak TLS only.
	VarRegionCertName = "REGION_CERT_NAME"
	// VarListenPort is the loopback TCP port on which the daemon reads the
	// test's messages (RFC 5424, as `logger` sends them).
	VarListenPort = "LISTEN_PORT"
	// VarWorkDir is the daemon's private state directory (rsyslog only).
	VarWorkDir = "WORKDIR"
)

// ErrNoSnippet is returned by [Snippet] when a file lacks well-formed
// [SnippetBegin]/[SnippetEnd] markers.
var ErrNoSnippet = errors.New("peer: no forwarding snippet markers")

// Framing is how a syslog daemon delimits messages on the way to the region.
type Framing string

// The framings of the testdata/syslog configurations.
const (
	// FramingOctetCounted is RFC 6587 octet counting over TCP: "LEN SP MSG".
	// Both rsyslog 8.2302 (RSYSLOG_SyslogProtocol23Format) and syslog-ng
	// 3.38 end MSG with a newline that LEN counts: a receiver should trim
	// one trailing LF from MSG.
	FramingOctetCounted Framing = "octet-counted"
	// FramingLF is RFC 6587 non-transparent framing over TCP: MSG then LF.
	FramingLF Framing = "lf"
	// FramingDatagram is one message per UDP datagram (RFC 5426).
	FramingDatagram Framing = "datagram"
)

// SyslogConfig describes one configuration file in testdata/syslog.
type SyslogConfig struct {
	// File is the file's name in testdata/syslog.
	File string
	// Daemon is the program that reads it: "rsyslogd" or "syslog-ng".
	Daemon string
	// Network is how it sends to the region: "tcp" or "udp".
	Network string
	// Framing is how it delimits the messages it sends.
	Framing Framing
	// TLS says it speaks TLS to the region (RFC 5425), verifying the
	// region's certificate with the CA in @REGION_CA_FILE@: start it with
	// [StartForwarderTLS].
	TLS bool
}

// SyslogConfigs returns the forwarding configurations in testdata/syslog.
// All of them send RFC 5424 messages to @REGION_HOST@:@REGION_PORT@ and read
// the test's messages from TCP 127.0.0.1:@LISTEN_PORT@.
func SyslogConfigs() []SyslogConfig {
	return []SyslogConfig{
		{File: "rsyslog-tcp-octet.conf", Daemon: "rsyslogd", Network: "tcp", Framing: FramingOctetCounted},
		{File: "rsyslog-tcp-lf.conf", Daemon: "rsyslogd", Network: "tcp", Framing: FramingLF},
		{File: "rsyslog-udp.conf", Daemon: "rsyslogd", Network: "udp", Framing: FramingDatagram},
		{File: "syslog-ng-tcp.conf", Daemon: "syslog-ng", Network: "tcp", Framing: FramingOctetCounted},
		{File: "rsyslog-tls.conf", Daemon: "rsyslogd", Network: "tcp", Framing: FramingOctetCounted, TLS: true},
		{File: "syslog-ng-tls.conf", Daemon: "syslog-ng", Network: "tcp", Framing: FramingOctetCounted, TLS: true},
	}
}

// Name returns the file name without its extension, for subtest names.
func (c SyslogConfig) Name() string { return strings.TrimSuffix(c.File, filepath.Ext(c.File)) }

// Path returns the configuration file's absolute path, failing the test if
// the module's testdata directory cannot be found.
func (c SyslogConfig) Path(t testing.TB) string {
	t.Helper()
	path, err := Testdata("syslog", c.File)
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// Testdata returns the absolute path of elem under the module's testdata
// directory, found by walking up from the working directory (a test's is its
// package directory) to go.mod.
func Testdata(elem ...string) (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(append([]string{dir, "testdata"}, elem...)...), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("peer: go.mod not found above the working directory")
		}
		dir = parent
	}
}

var placeholderRE = regexp.MustCompile(`@[A-Z][A-Z0-9_]*@`)

// RenderConfig reads the template at path, replaces each @KEY@ with
// vars[KEY], writes the result to a file of the same name in a new
// t.TempDir() and returns that file's path. The test fails if a placeholder
// is left without a value.
func RenderConfig(t testing.TB, path string, vars map[string]string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("peer.RenderConfig: %v", err)
	}
	text := string(data)
	for k, v := range vars {
		text = strings.ReplaceAll(text, "@"+k+"@", v)
	}
	if left := placeholderRE.FindAllString(text, -1); left != nil {
		t.Fatalf("peer.RenderConfig: %s: no value for %v", path, left)
	}
	out := filepath.Join(t.TempDir(), filepath.Base(path))
	if err := os.WriteFile(out, []byte(text), 0o644); err != nil {
		t.Fatalf("peer.RenderConfig: %v", err)
	}
	return out
}

// Snippet returns the lines of the file at path between the [SnippetBegin]
// and [SnippetEnd] marker lines, markers excluded, each ending in "\n": the
// text the README quotes. The error wraps [ErrNoSnippet] unless the file has
// exactly one begin marker followed by one end marker.
func Snippet(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	begins, ends := 0, 0
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	for line := 1; sc.Scan(); line++ {
		switch strings.TrimSpace(sc.Text()) {
		case SnippetBegin:
			begins++
			if begins > 1 || ends > 0 {
				return "", fmt.Errorf("%w: %s:%d: unexpected begin marker", ErrNoSnippet, path, line)
			}
		case SnippetEnd:
			ends++
			if begins != 1 || ends > 1 {
				return "", fmt.Errorf("%w: %s:%d: unexpected end marker", ErrNoSnippet, path, line)
			}
		default:
			if begins == 1 && ends == 0 {
				b.WriteString(sc.Text())
				b.WriteByte('\n')
			}
		}
	}
	if begins != 1 || ends != 1 {
		return "", fmt.Errorf("%w: %s", ErrNoSnippet, path)
	}
	return b.String(), nil
}

// RsyslogCommand returns the command that runs rsyslogd in the foreground
// with the configuration file conf, its PID file in a temporary directory and
// its modules from the installation it was found in. It first has rsyslogd
// check conf (-N1) and fails the test if rsyslogd rejects it: a rsyslogd
// started with a broken configuration keeps running, only without the
// inputs and actions it could not parse. rsyslogd loads only the
// modules conf names, so with no imuxsock or imklog it leaves /dev/log and
// the kernel log alone; conf should set global(workDirectory=…) to keep
// queue files out of /var/spool/rsyslog.
func RsyslogCommand(t testing.TB, conf string) Command {
	t.Helper()
	path := Require(t, "rsyslogd")
	dir := t.TempDir()
	args := []string{"-n", "-f", conf, "-i", filepath.Join(dir, "rsyslogd.pid")}
	check := []string{"-N1", "-f", conf}
	if mod := rsyslogModDir(path); mod != "" {
		args = append(args, "-M", mod)
		check = append(check, "-M", mod)
	}
	checkConfig(t, path, check...)
	return Command{Name: "rsyslogd", Path: path, Args: args, Dir: dir}
}

// rsyslogModDir finds the module directory that belongs to the rsyslogd at
// path (ROOT/usr/sbin/rsyslogd → ROOT/usr/lib/<triplet>/rsyslog), or "" to
// let rsyslogd use its built-in default.
func rsyslogModDir(path string) string {
	root := filepath.Dir(filepath.Dir(filepath.Dir(path)))
	for _, pattern := range []string{"usr/lib/*/rsyslog/imtcp.so", "usr/lib/rsyslog/imtcp.so", "lib/*/rsyslog/imtcp.so"} {
		if m, _ := filepath.Glob(filepath.Join(root, pattern)); len(m) > 0 {
			return filepath.Dir(m[0])
		}
	}
	return ""
}

// checkConfig runs a daemon's configuration check, failing the test with
// the daemon's output if the check fails.
func checkConfig(t testing.TB, path string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, path, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: configuration rejected: %v\n%s", path, strings.Join(args, " "), err, out)
	}
}

// StartRsyslog starts rsyslogd with the configuration file conf (see
// [RsyslogCommand]) and waits for ready, if not nil.
func StartRsyslog(t testing.TB, conf string, ready ReadyFunc) *Process {
	t.Helper()
	c := RsyslogCommand(t, conf)
	c.Ready = ready
	return Start(t, c)
}

// SyslogNGCommand returns the command that runs syslog-ng in the foreground
// with the configuration file conf, its own messages on standard error, and
// its PID file, persist file and control socket in a temporary directory
// instead of /var/lib/syslog-ng. It first has syslog-ng check conf
// (--syntax-only) and fails the test if syslog-ng rejects it. --no-caps lets it run without capability
// management (needed when not root; harmless as root).
func SyslogNGCommand(t testing.TB, conf string) Command {
	t.Helper()
	path := Require(t, "syslog-ng")
	checkConfig(t, path, "--syntax-only", "-f", conf)
	// A short directory: the control socket's path must fit in sun_path
	// (108 bytes), which a long test name in t.TempDir() can exceed.
	dir, err := os.MkdirTemp("", "zbsng")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return Command{
		Name: "syslog-ng",
		Path: path,
		Args: []string{"-F", "-e", "--no-caps", "-f", conf,
			"--pidfile", filepath.Join(dir, "syslog-ng.pid"),
			"--persist-file", filepath.Join(dir, "syslog-ng.persist"),
			"--control", filepath.Join(dir, "syslog-ng.ctl"),
		},
		Dir: dir,
	}
}

// StartSyslogNG starts syslog-ng with the configuration file conf (see
// [SyslogNGCommand]) and waits for ready, if not nil.
func StartSyslogNG(t testing.TB, conf string, ready ReadyFunc) *Process {
	t.Helper()
	c := SyslogNGCommand(t, conf)
	c.Ready = ready
	return Start(t, c)
}

// Forwarder is a syslog daemon started by [StartForwarder].
type Forwarder struct {
	*Process
	// Config is the configuration it was started from.
	Config SyslogConfig
	// ConfigFile is the rendered configuration file.
	ConfigFile string
	// Input is the TCP address (127.0.0.1:port) where it reads RFC 5424
	// messages to forward, for [RunLogger].
	Input string
}

// StartForwarder starts cfg's daemon with cfg's configuration, forwarding to
// the region at the address region ("host:port"), and waits until its input
// accepts connections. Its private work directory is a t.TempDir(). A
// configuration with TLS is started with [StartForwarderTLS].
func StartForwarder(t testing.TB, cfg SyslogConfig, region string) *Forwarder {
	t.Helper()
	if cfg.TLS {
		t.Fatalf("peer.StartForwarder: %s speaks TLS: start it with StartForwarderTLS", cfg.File)
	}
	return startForwarder(t, cfg, region, ForwarderTLS{})
}

// ForwarderTLS is what a configuration with TLS is started with.
type ForwarderTLS struct {
	// CAFile is the CA the daemon verifies the region's certificate with.
	CAFile string
	// CertName is the name the daemon expects in the region's
	// certificate where it is told one (@REGION_CERT_NAME@): "localhost"
	// when empty, which [TLSCA.Server] puts in a certificate by default.
	CertName string
	// CertFile and KeyFile, when set, are the daemon's own certificate
	// and key, for a region that asks for one (--syslog-client-ca): they
	// are added to the configuration as the README tells users to add
	// them (see clientCertLines).
	CertFile, KeyFile string
}

// clientCertLines returns, for a daemon, the line of its TLS
// configuration after which a client certificate goes, and the lines that
// give it: for syslog-ng cert-file() and key-file() inside tls(), for
// rsyslog the action's streamDriver.CertFile and streamDriver.KeyFile.
func clientCertLines(daemon, cert, key string) (anchor, lines string) {
	if daemon == "rsyslogd" {
		return `StreamDriverAuthMode="x509/name"`,
			fmt.Sprintf("\n    streamDriver.CertFile=%q\n    streamDriver.KeyFile=%q", cert, key)
	}
	return "peer-verify(required-trusted)",
		fmt.Sprintf("\n            cert-file(%q)\n            key-file(%q)", cert, key)
}

// StartForwarderTLS is [StartForwarder] for a configuration that speaks
// TLS (cfg.TLS).
func StartForwarderTLS(t testing.TB, cfg SyslogConfig, region string, tc ForwarderTLS) *Forwarder {
	t.Helper()
	if !cfg.TLS || tc.CAFile == "" {
		t.Fatalf("peer.StartForwarderTLS: %s: TLS %v, CA file %q", cfg.File, cfg.TLS, tc.CAFile)
	}
	return startForwarder(t, cfg, region, tc)
}

func startForwarder(t testing.TB, cfg SyslogConfig, region string, tc ForwarderTLS) *Forwarder {
	t.Helper()
	host, port, err := net.SplitHostPort(region)
	if err != nil {
		t.Fatalf("peer.StartForwarder: region %q: %v", region, err)
	}
	workdir := t.TempDir()
	input := Addr(FreePort(t))
	_, listen, _ := net.SplitHostPort(input)
	vars := map[string]string{
		VarRegionHost: host,
		VarRegionPort: port,
		VarListenPort: listen,
		VarWorkDir:    workdir,
	}
	if cfg.TLS {
		vars[VarRegionCAFile] = tc.CAFile
		vars[VarRegionCertName] = tc.CertName
		if tc.CertName == "" {
			vars[VarRegionCertName] = "localhost"
		}
	}
	conf := RenderConfig(t, cfg.Path(t), vars)
	if tc.CertFile != "" {
		addClientCert(t, conf, cfg.Daemon, tc)
	}
	var c Command
	switch cfg.Daemon {
	case "rsyslogd":
		if cfg.TLS {
			requireRsyslogModule(t, "lmnsd_ossl.so", "rsyslog-openssl")
		}
		c = RsyslogCommand(t, conf)
		// Where the configurations send rsyslogd's own messages.
		c.Logs = append(c.Logs, filepath.Join(workdir, "rsyslogd-internal.log"))
	case "syslog-ng":
		c = SyslogNGCommand(t, conf)
	default:
		t.Fatalf("peer.StartForwarder: unknown daemon %q", cfg.Daemon)
	}
	c.Ready = TCPReady(input)
	return &Forwarder{Process: Start(t, c), Config: cfg, ConfigFile: conf, Input: input}
}

// requireRsyslogModule skips the test, or fails it if [EnvRequire] is
// set, unless rsyslogd's module directory holds module (from the Debian
// package pkg).
func requireRsyslogModule(t testing.TB, module, pkg string) {
	t.Helper()
	modDir := rsyslogModDir(Require(t, "rsyslogd"))
	if modDir == "" {
		Missing(t, "rsyslog modules not found")
	}
	if _, err := os.Stat(filepath.Join(modDir, module)); err != nil {
		Missing(t, "%s (Debian package %s) not in %s", module, pkg, modDir)
	}
}

// addClientCert adds tc's certificate and key to the rendered
// configuration conf of daemon (see clientCertLines).
func addClientCert(t testing.TB, conf, daemon string, tc ForwarderTLS) {
	t.Helper()
	data, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	anchor, add := clientCertLines(daemon, tc.CertFile, tc.KeyFile)
	i := strings.Index(text, anchor)
	if i < 0 || strings.Count(text, anchor) != 1 {
		t.Fatalf("peer.StartForwarderTLS: %s: not one %s to add the client certificate after", conf, anchor)
	}
	i += len(anchor)
	if err := os.WriteFile(conf, []byte(text[:i]+add+text[i:]), 0o644); err != nil {
		t.Fatal(err)
	}
}

// RunLogger runs the real logger program once to send a message to the
// syslog input at addr (127.0.0.1:port) over TCP, RFC 5424 with octet
// counting. args are more logger options followed by the message, such as
// "-t", "myapp", "hello". The test fails if logger does.
func RunLogger(t testing.TB, addr string, args ...string) {
	t.Helper()
	path := Require(t, "logger")
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("peer.RunLogger: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	argv := append([]string{"--server", host, "--port", port, "--tcp", "--octet-count",
		"--rfc5424", "--socket-errors=on"}, args...)
	if out, err := exec.CommandContext(ctx, path, argv...).CombinedOutput(); err != nil {
		t.Fatalf("peer.RunLogger: logger %s: %v\n%s", strings.Join(argv, " "), err, out)
	}
}
