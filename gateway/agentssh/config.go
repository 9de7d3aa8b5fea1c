package agentssh

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
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
	// DefaultDialTimeout bounds a TCP connect plus the SSH handshake,
	// from the moment the attempt gets its turn (see DefaultMaxDials).
	DefaultDialTimeout = 10 * time.Second
	// DefaultMaxDials is how many connection attempts (TCP connect and SSH
	// handshake) a pool has in progress at once, over all its hosts. A
	// handshake costs the region about 2 ms of CPU: 1,024 of them wait
	// about a second for a CPU of two (two on one CPU), inside a tenth or
	// a fifth of DefaultDialTimeout however many hosts wait their turn,
	// and they keep the CPU busy across the handshakes' round trips, which
	// fewer do not (BenchmarkScale of package region, 10,000 agents on a
	// 2-vCPU machine that also runs the agents: connected in 13.5-14.4 s
	// with 1,024, 14.6-14.8 s with 512, 14.8-17.2 s with 256, 19-20 s with
	// 64, never a failed or timed-out attempt, and the peak memory no
	// higher with 1,024). Unbounded, the attempts in progress, and with
	// them the time each takes, grow with the number of hosts, until
	// handshakes run past the timeout and start again.
	DefaultMaxDials = 1024
	// DefaultDialJitter is the most a host's first connection attempt
	// waits after Add: hosts added together (a region starting) are
	// dialled in no particular order rather than in step.
	DefaultDialJitter = 250 * time.Millisecond
	// DefaultKeepAlive is the interval at which a connection is checked,
	// and sent keepalive@openssh.com if it was silent for as long: an
	// idle connection, whose last answer the next check finds less than
	// an interval old, is asked every other check, every ten minutes (half
	// of the connections, drawn at random, at their first check, so that
	// those made together are not all asked in the same intervals). The
	// kernel's TCP keepalive and user timeout (DefaultTCPKeepAlive) find a
	// dead host or path within four minutes; this finds an agent or sshd
	// that is there but hung (a command sent to one meanwhile times out),
	// within fifteen. A zbridge Linux
	// agent sends keepalives only over a connection silent for three of
	// its intervals (also 5 minutes), so that over an agent's connection
	// the region's keepalives, batched on the grid, are the only ones.
	// Each costs both sides a wakeup, a write and a read: at 30 s, ten
	// thousand idle agents took more than half of an idle region's CPU
	// (BenchmarkScale of package region). A hung host is found within
	// two to three intervals.
	DefaultKeepAlive = 5 * time.Minute
	// DefaultTCPKeepAlive is TCPKeepAlive's default: each connection is
	// idle 60 to 120 s before the kernel's first TCP keepalive probe, and
	// a dead host or path is found 3.5 minutes after the host last sent
	// anything, idle or with data in flight (see package tcpalive).
	DefaultTCPKeepAlive = time.Minute
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
	// DefaultAnswerTimeout is AnswerTimeout's default. An agent answers a
	// session channel's opening and its exec request at once (before it
	// starts the command), a stock sshd once it has forked: a host that
	// has not answered in half a minute is broken, or not what it claims
	// to be.
	DefaultAnswerTimeout = 30 * time.Second
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
	// DefaultDialTimeout. It runs from when the attempt gets its turn
	// (MaxDials): the wait for a turn is not counted.
	DialTimeout time.Duration
	// MaxDials bounds the connection attempts in progress at once, over
	// all hosts; further attempts wait for a turn, in the order they
	// came. Default DefaultMaxDials, or an eighth of the process's
	// descriptor limit when that is less (at least 16): each attempt
	// holds a descriptor for as long as DialTimeout, and the process's
	// connections and files need the rest.
	MaxDials int
	// DialJitter is the most a host's first connection attempt waits
	// after Add (a random time from zero to it); default
	// DefaultDialJitter, negative for none. Later attempts wait for the
	// backoff (ReconnectMin, ReconnectMax), which is jittered too.
	DialJitter time.Duration
	// KeepAlive is the interval at which each connection is checked: a
	// connection from which nothing arrived for a whole KeepAlive gets a
	// keepalive@openssh.com request, and one not answered within another
	// KeepAlive marks the connection dead (it is closed and redialled).
	// Each connection checks at a phase of its own, random, so that the
	// keepalives of many connections are spread over the interval.
	// Default DefaultKeepAlive; negative disables keepalives.
	KeepAlive time.Duration
	// TCPKeepAlive is the least time a connection is idle before the
	// kernel sends its first TCP keepalive probe (each connection's is
	// drawn up to twice it, so that connections made together do not
	// probe together); the kernel then probes every third of it, and ends
	// the connection when nothing came from the host for 3.5 times it with
	// a probe or data unanswered (package tcpalive). Default
	// DefaultTCPKeepAlive; negative turns the probes and the timeout off.
	TCPKeepAlive time.Duration
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
	// Run returns ErrBusy beyond it. Default DefaultMaxSessionsPerHost. A
	// command Run gave up on while the host had not yet answered the
	// opening of its session channel or its exec request counts until the
	// answer comes (see AnswerTimeout).
	MaxSessionsPerHost int
	// AnswerTimeout bounds how long a host may leave the opening of a
	// command's session channel, or its exec request, unanswered once Run
	// has given up on the command (its context ended first). x/crypto/ssh
	// cannot stop waiting for an answer, so until it comes the command
	// keeps its place among MaxSessionsPerHost, and a host that has not
	// answered within AnswerTimeout is taken for broken: its connection is
	// closed (the commands running over it fail with ErrConnLost, and
	// OnChange is told it was lost) and redialled. Default
	// DefaultAnswerTimeout.
	AnswerTimeout time.Duration
	// OutputCap bounds the bytes of stdout and stderr together that Run
	// delivers per command; default DefaultOutputCap. Beyond it the command
	// is stopped (signal KILL, channel closed) and Result.Truncated is set.
	OutputCap int
	// Logger receives the pool's log, with component=agentssh and
	// host=NAME set. Required.
	Logger logrus.FieldLogger
	// OnChange, when set, is told of the changes of a host's connection
	// its owner has to know of, so that it can tell its operators (see
	// Change): a connection made, a connection lost, and a host refused
	// for its host key. It is not told of every failed attempt: a host
	// that cannot be reached, or keeps presenting a refused key, is told
	// of once, not at every redial; nor of a host removed or a pool
	// closed.
	//
	// It is called on the host's own goroutine, holding none of the
	// pool's locks, so it may call the pool's methods (Hosts, Host, Run,
	// Add, Remove) but not Close, which waits for that goroutine. The
	// host's connection is not served while it runs (what the host sends
	// waits), and its changes are told in order: it should return
	// promptly, handing slow work to a goroutine of its own.
	OnChange func(Change)
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
		{"AnswerTimeout", c.AnswerTimeout},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s is negative (%v)", d.name, d.v))
		}
	}
	if c.MaxSessionsPerHost < 0 {
		errs = append(errs, fmt.Errorf("MaxSessionsPerHost is negative (%d)", c.MaxSessionsPerHost))
	}
	if c.MaxDials < 0 {
		errs = append(errs, fmt.Errorf("MaxDials is negative (%d)", c.MaxDials))
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
	if c.MaxDials == 0 {
		c.MaxDials = maxDialsFor(descriptorLimit())
	}
	if c.DialJitter == 0 {
		c.DialJitter = DefaultDialJitter
	}
	if c.KeepAlive == 0 {
		c.KeepAlive = DefaultKeepAlive
	}
	if c.TCPKeepAlive == 0 {
		c.TCPKeepAlive = DefaultTCPKeepAlive
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
	if c.AnswerTimeout == 0 {
		c.AnswerTimeout = DefaultAnswerTimeout
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

// maxDialsFor is the default MaxDials for a process whose descriptor limit
// is limit (0: unknown).
func maxDialsFor(limit uint64) int {
	if limit == 0 || limit/8 >= DefaultMaxDials {
		return DefaultMaxDials
	}
	return max(16, int(limit/8))
}

// descriptorLimit is the process's soft RLIMIT_NOFILE, 0 if unknown.
func descriptorLimit() uint64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	return rl.Cur
}
