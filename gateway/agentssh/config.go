package agentssh

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/ssh"
)

// Defaults for the zero fields of a Config, and related constants.
const (
	// DefaultPort is the port Add assumes for an address without one: the
	// port every Linux agent listens on.
	DefaultPort = "7022"
	// DefaultUser is the user name the region logs in as.
	DefaultUser = "zbridge"
	// DefaultDialTimeout bounds a TCP connect plus the SSH handshake.
	DefaultDialTimeout = 10 * time.Second
	// DefaultKeepAlive is the interval between keepalive@openssh.com
	// requests on an idle or busy connection.
	DefaultKeepAlive = 15 * time.Second
	// DefaultReconnectMin and DefaultReconnectMax bound the exponential
	// backoff between connection attempts.
	DefaultReconnectMin = 500 * time.Millisecond
	DefaultReconnectMax = 30 * time.Second
	// DefaultConnectWait is how long Run waits for a dial already in
	// progress before it gives up with ErrNotConnected.
	DefaultConnectWait = time.Second
	// DefaultMaxSessionsPerHost stays below stock sshd's MaxSessions (10
	// sessions per connection), so that sshd never refuses one of ours.
	DefaultMaxSessionsPerHost = 8
	// DefaultOutputCap is the stdout+stderr kept per command.
	DefaultOutputCap = 1 << 20
	// MaxLine is the longest piece of a line Run hands to its callback:
	// a longer line arrives in MaxLine-sized chunks with EOL false.
	MaxLine = 64 << 10

	// AgentVersionPrefix starts the SSH server version string of zbridge's
	// Linux agent; any other server is taken for a plain sshd (agentless).
	AgentVersionPrefix = "SSH-2.0-zbridge-linuxagent"
	// ClientVersion is the SSH version string the region sends.
	ClientVersion = "SSH-2.0-zbridge-region"
)

// Config configures a Pool. New copies it; zero fields take the defaults
// named after them.
type Config struct {
	// Signer is the region's private key, offered for public-key
	// authentication to every host (see LoadSigner). Required.
	Signer ssh.Signer
	// User is the user name to log in as; default DefaultUser. The agent
	// accepts any; a stock sshd needs the key in this user's
	// authorized_keys.
	User string
	// KnownHostsFile is an OpenSSH known_hosts file holding the pinned host
	// keys (hashed and [host]:port entries and @revoked markers are
	// understood; host certificates are not used). Required. It is re-read
	// when it changes, so an operator may edit it while the region runs.
	// Without AcceptNew it must exist; with AcceptNew it is created (mode
	// 0600) if missing.
	KnownHostsFile string
	// AcceptNew is OpenSSH's StrictHostKeyChecking=accept-new, applied to
	// names: the key of a host whose name has no pin, at an address with
	// no entry, is recorded (appended as a plain, unhashed line
	// "name@zbridge,[host]:port key"; see the package doc) and accepted. A
	// name already pinned never gets another key, at any address: a host
	// whose key differs from the one pinned for its name (or, for a name
	// without a pin, for its address) is always refused
	// (ErrHostKeyMismatch).
	AcceptNew bool
	// DialTimeout bounds a TCP connect plus the SSH handshake; default
	// DefaultDialTimeout.
	DialTimeout time.Duration
	// KeepAlive is the interval of keepalive@openssh.com requests on each
	// connection; a request not answered within another KeepAlive marks the
	// connection dead (it is closed and redialled). Default
	// DefaultKeepAlive; negative disables keepalives.
	KeepAlive time.Duration
	// ReconnectMin and ReconnectMax bound the exponential backoff between
	// attempts to (re)connect a host; each wait is jittered down to half.
	// The backoff starts again from ReconnectMin once a connection has
	// lasted longer than ReconnectMax. Defaults DefaultReconnectMin and
	// DefaultReconnectMax.
	ReconnectMin, ReconnectMax time.Duration
	// ConnectWait is how long Run waits for a connection attempt already in
	// progress (a host just added, or redialling) before it returns
	// ErrNotConnected; default DefaultConnectWait. Run never waits for a
	// backoff to end.
	ConnectWait time.Duration
	// MaxSessionsPerHost bounds the commands running at once on one host;
	// Run returns ErrBusy beyond it. Default DefaultMaxSessionsPerHost.
	MaxSessionsPerHost int
	// OutputCap bounds the bytes of stdout and stderr together that Run
	// delivers per command; default DefaultOutputCap. Beyond it the command
	// is stopped (signal KILL, channel closed) and Result.Truncated is set.
	OutputCap int
	// Logger receives the pool's log, with component=agentssh and
	// host=NAME set. Required.
	Logger logrus.FieldLogger
}

// withDefaults validates c and returns it with defaults filled in.
func (c Config) withDefaults() (Config, error) {
	var errs []error
	if c.Signer == nil {
		errs = append(errs, errors.New("Signer is required"))
	}
	if c.Logger == nil {
		errs = append(errs, errors.New("Logger is required"))
	}
	if c.KnownHostsFile == "" {
		errs = append(errs, errors.New("KnownHostsFile is required"))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"DialTimeout", c.DialTimeout}, {"ReconnectMin", c.ReconnectMin},
		{"ReconnectMax", c.ReconnectMax}, {"ConnectWait", c.ConnectWait},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s is negative (%v)", d.name, d.v))
		}
	}
	if c.MaxSessionsPerHost < 0 {
		errs = append(errs, fmt.Errorf("MaxSessionsPerHost is negative (%d)", c.MaxSessionsPerHost))
	}
	if c.OutputCap < 0 {
		errs = append(errs, fmt.Errorf("OutputCap is negative (%d)", c.OutputCap))
	}
	if len(errs) > 0 {
		return c, fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
	}
	if c.User == "" {
		c.User = DefaultUser
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.KeepAlive == 0 {
		c.KeepAlive = DefaultKeepAlive
	}
	if c.ReconnectMin == 0 {
		c.ReconnectMin = DefaultReconnectMin
	}
	if c.ReconnectMax == 0 {
		c.ReconnectMax = max(DefaultReconnectMax, c.ReconnectMin)
	}
	if c.ReconnectMax < c.ReconnectMin {
		return c, fmt.Errorf("%w: ReconnectMax (%v) is below ReconnectMin (%v)", ErrConfig, c.ReconnectMax, c.ReconnectMin)
	}
	if c.ConnectWait == 0 {
		c.ConnectWait = DefaultConnectWait
	}
	if c.MaxSessionsPerHost == 0 {
		c.MaxSessionsPerHost = DefaultMaxSessionsPerHost
	}
	if c.OutputCap == 0 {
		c.OutputCap = DefaultOutputCap
	}
	return c, nil
}

// maxKeyFile bounds what LoadSigner reads: private keys are a few KiB.
const maxKeyFile = 1 << 20

// LoadSigner reads an unencrypted private key (OpenSSH, PKCS#1, PKCS#8 or
// SEC 1 PEM, as ssh-keygen writes them) from path. Like OpenSSH it refuses a
// file that group or others may read or write (ErrKeyFilePermissions). A
// passphrase-protected key is refused with an error wrapping
// *ssh.PassphraseMissingError. Errors never include the key's content.
func LoadSigner(path string) (ssh.Signer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("agentssh: private key: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("agentssh: private key: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("agentssh: private key %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %04o; make it private (chmod 600)", ErrKeyFilePermissions, path, perm)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("agentssh: private key: %w", err)
	}
	if len(data) > maxKeyFile {
		return nil, fmt.Errorf("agentssh: private key %s is larger than %d bytes", path, maxKeyFile)
	}
	signer, err := ssh.ParsePrivateKey(data)
	clear(data)
	if err != nil {
		var pm *ssh.PassphraseMissingError
		if errors.As(err, &pm) {
			return nil, fmt.Errorf("agentssh: private key %s is protected by a passphrase, which the region cannot type: %w", path, err)
		}
		return nil, fmt.Errorf("agentssh: private key %s: %w", path, err)
	}
	return signer, nil
}
