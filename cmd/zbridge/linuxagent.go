//go:build !lean

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/zbridge/zbridge/linuxagent"
)

// defaultAgentListen is the Linux agent's address: the port every agent
// listens on, as the region expects (gateway/region.DefaultAgentPort).
const defaultAgentListen = "127.0.0.1:7022"

// runLinuxAgent is `zbridge linuxagent`: the Linux agent, an SSH server
// that runs the region's commands under a policy. It first hardens its
// process (linuxagent.Hardening: no root without --allow-root, inherited
// file descriptors close-on-exec) and refuses a policy file others could
// change. It stops on SIGINT or SIGTERM, letting running commands finish
// for --shutdown-timeout.
func runLinuxAgent(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("zbridge linuxagent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, `usage: zbridge linuxagent --authorized-keys FILE --host-key FILE [flags]

Runs the region's commands over SSH, under a policy, as the user it runs as.
Run it as an ordinary user: as root it refuses to start without --allow-root.
At start it marks every file descriptor it inherited (above 2) close-on-exec,
so no command inherits them; every command runs with no_new_privs set, so
neither it nor its children gain privileges through set-user-ID programs
(sudo, su) or file capabilities. The authorized_keys and policy files must
not be writable by group or other, nor their directories, and must be owned
by the agent's user or root (as sshd's StrictModes).

flags:`)
		fs.PrintDefaults()
	}
	var (
		cfg             linuxagent.Config
		hardening       linuxagent.Hardening
		listen          string
		policyFile      string
		logLevel        string
		logFormat       string
		shutdownTimeout time.Duration
	)
	fs.StringVar(&listen, "listen", defaultAgentListen, "address to listen on (public-key authentication is always on, so any address may be used)")
	fs.StringVar(&cfg.AuthorizedKeys, "authorized-keys", "", "OpenSSH authorized_keys file of the keys (the region's) that may connect; required; re-read when it changes; "+
		"refused while group or other may write it or its directory, or it is owned by neither the agent's user nor root")
	fs.StringVar(&cfg.HostKeyFile, "host-key", "", "host key file; generated (ed25519, mode 0600) if missing; required")
	fs.StringVar(&cfg.Name, "name", "", "agent name in logs and results (default: the host name)")
	fs.StringVar(&policyFile, "policy", "", "policy file (allow/deny rules, shell, timeout, max-timeout, output-cap); default: allow every command, no shell; "+
		"refused, as --authorized-keys, if others could change it")
	fs.BoolVar(&hardening.AllowRoot, "allow-root", false, "run even as root (effective user ID 0), and so run every command as root; refused without it")
	fs.IntVar(&cfg.MaxSessions, "max-sessions", linuxagent.DefaultMaxSessions, "commands (session channels) at once, over all connections")
	fs.IntVar(&cfg.MaxPending, "max-pending", linuxagent.DefaultMaxPending, "connections waiting to authenticate at once, over all addresses (sshd's MaxStartups); "+
		"a new one past it closes the oldest waiting from the address with the most waiting")
	fs.IntVar(&cfg.MaxPendingPerAddr, "max-pending-per-addr", linuxagent.DefaultMaxPendingPerAddr, "connections waiting to authenticate from one address; "+
		"a new one past it closes that address's oldest waiting")
	fs.DurationVar(&cfg.HandshakeTimeout, "handshake-timeout", linuxagent.DefaultHandshakeTimeout, "a connection not authenticated within this is closed (sshd's LoginGraceTime)")
	fs.DurationVar(&cfg.Timeout, "timeout", linuxagent.DefaultTimeout, "a command's time limit when neither the policy nor the region sets one")
	fs.DurationVar(&cfg.KeepAlive, "keepalive", linuxagent.DefaultKeepAlive, "check each region connection this often; one silent for three checks is sent an SSH keepalive (negative: never)")
	fs.DurationVar(&cfg.TCPKeepAlive, "tcp-keepalive", linuxagent.DefaultTCPKeepAlive, "a region connection idle this long (to twice it, drawn for each) gets the kernel's TCP keepalive probes, and is ended 3.5 times it after the region last sent anything (negative: no probes)")
	fs.StringVar(&logLevel, "log-level", "info", "log level (debug, info, warn, error)")
	fs.StringVar(&logFormat, "log-format", "text", "log format (text, json)")
	fs.DurationVar(&shutdownTimeout, "shutdown-timeout", 30*time.Second, "on SIGINT/SIGTERM, how long running commands may go on before they are killed")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	fail := func(code int, err error) int {
		fmt.Fprintln(stderr, "zbridge linuxagent:", err)
		return code
	}
	switch {
	case fs.NArg() > 0:
		return fail(2, fmt.Errorf("unexpected arguments %q", fs.Args()))
	case cfg.AuthorizedKeys == "":
		return fail(2, errors.New("--authorized-keys is required"))
	case cfg.HostKeyFile == "":
		return fail(2, errors.New("--host-key is required"))
	}
	if err := hardening.Apply(); err != nil {
		return fail(1, err)
	}
	log, err := newLogger(logLevel, logFormat, stderr)
	if err != nil {
		return fail(2, err)
	}
	cfg.Logger = log
	if policyFile != "" {
		if err := hardening.CheckFile(policyFile); err != nil {
			return fail(2, fmt.Errorf("--policy: %w", err))
		}
		if cfg.Policy, err = linuxagent.LoadPolicy(policyFile); err != nil {
			return fail(2, err)
		}
	}
	srv, err := linuxagent.New(cfg)
	if err != nil {
		return fail(1, err)
	}
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return fail(1, err)
	}

	ctx, stop := signalContext()
	defer stop()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	select {
	case err := <-served:
		return fail(1, err)
	case <-ctx.Done():
	}
	log.Info("signal received; shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.WithError(err).Warn("commands still running at the shutdown timeout were killed")
	}
	if err := <-served; !errors.Is(err, linuxagent.ErrServerClosed) {
		return fail(1, err)
	}
	return 0
}
