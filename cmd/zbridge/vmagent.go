//go:build !lean

package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/zbridge/zbridge/protocol"
	"github.com/zbridge/zbridge/vmagent"
	"github.com/zbridge/zbridge/vmagent/tn3270"
)

// runVMAgent is `zbridge vmagent`: the z/VM agent for one z/VM system. It
// logs on to the system's console through TN3270 (userid --user, password
// from --password-file or $ZBRIDGE_ZVM_PASSWORD, never logged), turns the
// console's lines into events kept in the spool until the region has them,
// and types the CP commands the region sends over VMMON. It stops on
// SIGINT or SIGTERM. With --vmmon-tls and --tn3270-tls it speaks TLS 1.2 or
// 1.3 to the region and to the TN3270 server (tlsFlags).
func runVMAgent(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("zbridge vmagent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		vmmon, system, tn3270Addr, user string
		passwordFile, spoolDir          string
		secretFile                      string
		policyFile                      string
		spoolMax                        int64
		heartbeat                       time.Duration
		logLevel, logFormat             string
	)
	fs.StringVar(&vmmon, "vmmon", defaultVMMon, "the region's VMMON address; a comma-separated list to fail over between regions sharing one Redis")
	fs.StringVar(&system, "system", "", "the z/VM system name (the agent's identity at the region); required")
	fs.StringVar(&tn3270Addr, "tn3270", "", "the z/VM system's TN3270 server, host:port; required")
	fs.StringVar(&user, "user", "", "the z/VM userid whose console the agent logs on to; required")
	fs.StringVar(&passwordFile, "password-file", "", "file whose first line is the userid's password (default: $ZBRIDGE_ZVM_PASSWORD)")
	fs.StringVar(&spoolDir, "spool", "", "directory spooling events while the region is unreachable (default: zbridge-vmagent-SYSTEM in the temporary directory)")
	fs.Int64Var(&spoolMax, "spool-max", 64<<20, "most bytes of unacknowledged events the spool keeps")
	fs.StringVar(&policyFile, "policy", "", "CP command policy file (allow|deny PATTERN, default allow|deny, special CHARS; see vmagent's package doc); without one every CP command the region sends is typed")
	fs.StringVar(&secretFile, "secret-file", "", "file whose first line is the agent's secret in the region's clients file (default: $ZBRIDGE_VMMON_SECRET)")
	fs.DurationVar(&heartbeat, "heartbeat", 30*time.Second, "VMMON heartbeat interval")
	var namesEvery time.Duration
	fs.DurationVar(&namesEvery, "names-interval", time.Minute, "how often to poll QUERY NAMES for guest logons and logoffs the console did not announce (0: never)")
	var vmmonTLS, tn3270TLS tlsFlags
	vmmonTLS.register(fs, "vmmon", "VMMON", "the region's certificate (a region with --tls-cert serves TLS on VMMON)")
	tn3270TLS.register(fs, "tn3270", "the TN3270 server", "the TN3270 server's certificate (TLS from the first byte, as z/VM's secure TN3270 port)")
	fs.StringVar(&logLevel, "log-level", "info", "log level (debug, info, warn, error)")
	fs.StringVar(&logFormat, "log-format", "text", "log format (text, json)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	fail := func(code int, err error) int {
		fmt.Fprintln(stderr, "zbridge vmagent:", err)
		return code
	}
	vmmonTLSConfig, err := vmmonTLS.config()
	if err != nil {
		return fail(2, err)
	}
	tn3270TLSConfig, err := tn3270TLS.config()
	if err != nil {
		return fail(2, err)
	}
	system = strings.ToUpper(strings.TrimSpace(system))
	switch {
	case fs.NArg() > 0:
		return fail(2, fmt.Errorf("unexpected arguments %q", fs.Args()))
	case system == "":
		return fail(2, errors.New("--system is required"))
	case tn3270Addr == "":
		return fail(2, errors.New("--tn3270 is required"))
	case user == "":
		return fail(2, errors.New("--user is required"))
	}
	password := os.Getenv("ZBRIDGE_ZVM_PASSWORD")
	if passwordFile != "" {
		if password, err = zvmsimReadPassword(passwordFile); err != nil {
			return fail(2, err)
		}
	}
	if password == "" {
		return fail(2, errors.New("no password: give --password-file or set $ZBRIDGE_ZVM_PASSWORD"))
	}
	secret := os.Getenv("ZBRIDGE_VMMON_SECRET")
	if secretFile != "" {
		if secret, err = zvmsimReadPassword(secretFile); err != nil {
			return fail(2, err)
		}
	}
	if spoolDir == "" {
		spoolDir = filepath.Join(os.TempDir(), "zbridge-vmagent-"+system)
	}
	var policy *vmagent.Policy
	if policyFile != "" {
		if policy, err = vmagent.LoadPolicy(policyFile); err != nil {
			return fail(2, err)
		}
	}
	log, err := newLogger(logLevel, logFormat, stderr)
	if err != nil {
		return fail(2, err)
	}
	spool, err := vmagent.OpenSpool(spoolDir, spoolMax)
	if err != nil {
		return fail(1, err)
	}
	defer spool.Close()
	// Guest logons and logoffs the console does not announce are found by
	// polling QUERY NAMES; the watcher sees every event on its way to the
	// spool so that it does not report the announced ones twice.
	names := &vmagent.NamesWatcher{System: system, Interval: namesEvery, Publish: spool.Add, Log: log.WithField("system", system)}
	publish := func(evs ...*protocol.Event) error {
		names.Observe(evs...)
		return spool.Add(evs...)
	}
	sc, err := vmagent.NewScraper(vmagent.ScraperConfig{Addr: tn3270Addr, User: user, Password: password, System: system,
		Publish: publish, Logger: log.WithField("system", system), Terminal: tn3270.Config{TLS: tn3270TLSConfig}})
	if err != nil {
		return fail(2, err)
	}
	agent, err := vmagent.New(vmagent.Config{VMMon: vmmon, System: system, Secret: secret, Spool: spool,
		Heartbeat: heartbeat, Logger: log, TLS: vmmonTLSConfig, Policy: policy}, sc)
	if err != nil {
		return fail(2, err)
	}
	fmt.Fprintf(stdout, "z/VM agent for %s: console %s%s as %s, region VMMON %s%s, spool %s\n", system, tn3270Addr, tn3270TLS.describe(),
		strings.ToUpper(user), vmmon, vmmonTLS.describe(), spoolDir)

	ctx, stop := signalContext()
	defer stop()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	names.Console = sc
	var wg sync.WaitGroup
	if namesEvery > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := sc.Ready(ctx); err == nil {
				names.Run(ctx)
			}
		}()
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := sc.Serve(ctx); ctx.Err() == nil {
			cancel(fmt.Errorf("console: %w", err))
		}
	}()
	go func() {
		defer wg.Done()
		if err := agent.Run(ctx); ctx.Err() == nil {
			cancel(fmt.Errorf("VMMON: %w", err))
		}
	}()
	wg.Wait()
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return fail(1, cause)
	}
	log.Info("signal received; stopped")
	return 0
}

// tlsFlags are how the agent speaks TLS to one of its peers:
// --PEER-tls, --PEER-ca FILE and --PEER-server-name NAME.
type tlsFlags struct {
	prefix     string
	on         bool
	caFile     string
	serverName string
}

func (f *tlsFlags) register(fs *flag.FlagSet, prefix, peer, cert string) {
	f.prefix = prefix
	fs.BoolVar(&f.on, prefix+"-tls", false, "connect to "+peer+" with TLS 1.2 or 1.3 (AEAD cipher suites only), verifying "+cert)
	fs.StringVar(&f.caFile, prefix+"-ca", "", "PEM CA certificate(s) to verify "+peer+" with, instead of the system's (implies --"+prefix+"-tls)")
	fs.StringVar(&f.serverName, prefix+"-server-name", "", "name to verify in "+peer+"'s certificate (default: the host of its address; implies --"+prefix+"-tls)")
}

// config returns the TLS configuration the flags ask for, nil for none.
func (f *tlsFlags) config() (*tls.Config, error) {
	if !f.on && f.caFile == "" && f.serverName == "" {
		return nil, nil
	}
	cfg := clientTLSConfig()
	cfg.ServerName = f.serverName
	if f.caFile != "" {
		pem, err := os.ReadFile(f.caFile)
		if err != nil {
			return nil, fmt.Errorf("--%s-ca: %w", f.prefix, err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--%s-ca: no PEM certificate in %s", f.prefix, f.caFile)
		}
	}
	return cfg, nil
}

// describe says whether the flags ask for TLS, for the start-up line.
func (f *tlsFlags) describe() string {
	if !f.on && f.caFile == "" && f.serverName == "" {
		return ""
	}
	return " (TLS)"
}
