//go:build !lean

package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/zbridge/zbridge/internal/tlsconf"
	"github.com/zbridge/zbridge/vmagent/zvmsim"
)

// defaultZVMSimListen is where `zbridge zvmsim` listens: the TN3270 port,
// on loopback.
const defaultZVMSimListen = "127.0.0.1:3270"

// runZVMSim is `zbridge zvmsim`: a simulated z/VM system whose TN3270
// consoles behave as CP does (logo screen, LOGON, CP READ, MORE...,
// HOLDING, QUERY, MSG, XAUTOLOG, FORCE; see package vmagent/zvmsim). Every
// simulated userid logs on with the password in --password-file. With
// --tls-cert and --tls-key it serves TN3270 over TLS. It stops on SIGINT or
// SIGTERM.
func runZVMSim(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("zbridge zvmsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfg             zvmsim.Config
		listen          string
		passwordFile    string
		users           string
		autolog         string
		logLevel        string
		logFormat       string
		shutdownTimeout time.Duration
	)
	fs.StringVar(&listen, "listen", defaultZVMSimListen, "TN3270 address to listen on")
	fs.StringVar(&cfg.System, "system", "VMSYS1", "system name (1-8 characters), shown in the status area")
	fs.StringVar(&passwordFile, "password-file", "", "file whose first line is the password of every simulated userid; required")
	fs.StringVar(&users, "users", "", "comma-separated guest userids besides OPERATOR and MAINT (default LINUX01,LINUX02,LINUX03,TCPIP)")
	fs.StringVar(&autolog, "autolog", "TCPIP", "comma-separated userids logged on, disconnected, at start (empty: none)")
	fs.DurationVar(&cfg.MoreDelay, "more-delay", zvmsim.DefaultMoreDelay, "how long MORE... shows before the screen is cleared")
	fs.StringVar(&logLevel, "log-level", "info", "log level (debug, info, warn, error)")
	fs.StringVar(&logFormat, "log-format", "text", "log format (text, json)")
	fs.DurationVar(&shutdownTimeout, "shutdown-timeout", 5*time.Second, "on SIGINT/SIGTERM, how long to wait for sessions to end")
	var tlsCert, tlsKey string
	fs.StringVar(&tlsCert, "tls-cert", "", "PEM certificate: serve TN3270 over TLS 1.2/1.3 from the first byte, as z/VM's secure port (x3270: L:host:port)")
	fs.StringVar(&tlsKey, "tls-key", "", "PEM private key for --tls-cert")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	fail := func(code int, err error) int {
		fmt.Fprintln(stderr, "zbridge zvmsim:", err)
		return code
	}
	if fs.NArg() > 0 {
		return fail(2, fmt.Errorf("unexpected arguments %q", fs.Args()))
	}
	if passwordFile == "" {
		return fail(2, errors.New("--password-file is required"))
	}
	var tlsConfig *tls.Config
	if tlsCert != "" || tlsKey != "" {
		if tlsCert == "" || tlsKey == "" {
			return fail(2, errors.New("--tls-cert and --tls-key go together"))
		}
		cert, err := tls.LoadX509KeyPair(tlsCert, tlsKey)
		if err != nil {
			return fail(2, fmt.Errorf("TLS certificate: %w", err))
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, CipherSuites: tlsconf.AEADSuites()}
	}
	password, err := zvmsimReadPassword(passwordFile)
	if err != nil {
		return fail(2, err)
	}
	cfg.Password = password
	cfg.Users = zvmsimSplitList(users)
	cfg.Autolog = zvmsimSplitList(autolog)
	if len(cfg.Users) > 0 {
		// Autolog only what the directory has: TCPIP by default may have
		// been left out of --users.
		in := map[string]bool{}
		for _, u := range cfg.Users {
			in[strings.ToUpper(u)] = true
		}
		var keep []string
		for _, u := range cfg.Autolog {
			if in[strings.ToUpper(u)] || strings.EqualFold(u, zvmsim.Operator) || strings.EqualFold(u, zvmsim.Maint) {
				keep = append(keep, u)
			}
		}
		cfg.Autolog = keep
	}
	log, err := newLogger(logLevel, logFormat, stderr)
	if err != nil {
		return fail(2, err)
	}
	cfg.Logger = log
	sim, err := zvmsim.New(cfg)
	if err != nil {
		return fail(2, err)
	}
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return fail(1, err)
	}
	how, emulatorAddr := "", l.Addr().String()
	if tlsConfig != nil {
		// The simulator serves whatever listener it is given: TLS is the
		// listener's, each connection's handshake done on its first read
		// or write, in the session's goroutine.
		l = tls.NewListener(l, tlsConfig)
		how, emulatorAddr = " (TLS)", "L:"+emulatorAddr
	}
	fmt.Fprintf(stdout, "z/VM console simulator %s on %s%s: connect a 3270 emulator (x3270 -model 3278-2 %s) and log on as OPERATOR\n",
		sim.System(), l.Addr(), how, emulatorAddr)

	ctx, stop := signalContext()
	defer stop()
	served := make(chan error, 1)
	go func() { served <- sim.Serve(l) }()
	select {
	case err := <-served:
		return fail(1, err)
	case <-ctx.Done():
	}
	log.Info("signal received; shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := sim.Shutdown(sctx); err != nil {
		log.WithError(err).Warn("sessions still open at the shutdown timeout were closed")
	}
	if err := <-served; !errors.Is(err, zvmsim.ErrServerClosed) {
		return fail(1, err)
	}
	return 0
}

// zvmsimReadPassword returns the first line of path, without its line end.
func zvmsimReadPassword(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return "", fmt.Errorf("%s: the first line (the password) is empty", path)
	}
	return pw, nil
}

// zvmsimSplitList splits a comma-separated list, dropping blanks.
func zvmsimSplitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
