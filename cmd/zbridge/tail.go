package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/zbridge/zbridge/protocol"
	"github.com/zbridge/zbridge/protocol/client"
)

// clientFlags are how a command logs on to one of the region's ports.
type clientFlags struct {
	name, secretFile   string
	tls                bool
	tlsCA, tlsServerNm string
}

func (c *clientFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.name, "client", "zbridge-cli", "client name to log on as")
	fs.StringVar(&c.secretFile, "secret-file", "", "file holding the client's secret (else $ZBRIDGE_SECRET)")
	fs.BoolVar(&c.tls, "tls", false, "connect with TLS")
	fs.StringVar(&c.tlsCA, "tls-ca", "", "PEM CA certificate(s) to verify the region with (implies --tls)")
	fs.StringVar(&c.tlsServerNm, "tls-server-name", "", "server name to verify in the region's certificate")
}

func (c *clientFlags) config(addr string) (client.Config, error) {
	cfg := client.Config{Addr: addr, Client: c.name, Secret: os.Getenv("ZBRIDGE_SECRET")}
	if c.secretFile != "" {
		b, err := os.ReadFile(c.secretFile)
		if err != nil {
			return cfg, err
		}
		cfg.Secret = strings.TrimRight(string(b), "\r\n")
	}
	if c.tls || c.tlsCA != "" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.tlsServerNm}
		if c.tlsCA != "" {
			pem, err := os.ReadFile(c.tlsCA)
			if err != nil {
				return cfg, err
			}
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				return cfg, fmt.Errorf("no certificates in %s", c.tlsCA)
			}
		}
		if tc.ServerName == "" {
			if host, _, err := net.SplitHostPort(addr); err == nil {
				tc.ServerName = host
			}
		}
		cfg.TLS = tc
	}
	return cfg, nil
}

func runTail(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("zbridge tail", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf clientFlags
	cf.register(fs)
	addr := fs.String("unsolmsg", defaultUnsolMsg, "the region's UNSOLMSG address")
	filterS := fs.String("filter", "", "filter: origin=GLOB,source=KIND|KIND,msgid=GLOB,severity=LEVEL")
	format := fs.String("format", "text", "output: json (one event object a line), lx (CA layout), text")
	count := fs.Int("count", 0, "exit 0 after this many events (0: run until interrupted)")
	timeout := fs.Duration("timeout", 0, "fail if this passes first (0: no limit)")
	after := fs.String("after", "", "resume after this event ID (0: everything retained); default: new events only")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *count < 0 {
		fmt.Fprintln(stderr, "zbridge tail: --count must not be negative")
		return 2
	}
	filter, err := protocol.ParseFilter(*filterS)
	if err != nil {
		fmt.Fprintln(stderr, "zbridge tail:", err)
		return 2
	}
	var wire string
	switch *format {
	case "json", "text":
		wire = "json"
	case "lx":
		wire = "lx"
	default:
		fmt.Fprintf(stderr, "zbridge tail: unknown format %q (json, lx, text)\n", *format)
		return 2
	}
	cfg, err := cf.config(*addr)
	if err != nil {
		fmt.Fprintln(stderr, "zbridge tail:", err)
		return 2
	}
	ctx, stop := signalContext()
	defer stop()
	if *timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	err = tail(ctx, cfg, filter, *after, wire, *format, *count, out, stderr)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, context.DeadlineExceeded):
		fmt.Fprintf(stderr, "zbridge tail: timeout of %v passed\n", *timeout)
	case errors.Is(err, context.Canceled):
		return 0 // interrupted
	default:
		fmt.Fprintln(stderr, "zbridge tail:", err)
	}
	return 1
}

func tail(ctx context.Context, cfg client.Config, filter *protocol.Filter, after, wire, format string, count int,
	out *bufio.Writer, stderr io.Writer) error {
	c, err := client.Dial(ctx, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Subscribe(ctx, filter, after, wire); err != nil {
		return err
	}
	var buf []byte
	for n := 0; count == 0 || n < count; {
		if out.Buffered() > 0 && c.Buffered() == 0 {
			out.Flush()
		}
		f, err := c.Next(ctx)
		if err != nil {
			out.Flush()
			return err
		}
		switch {
		case f.Type == protocol.TypeNotice:
			fmt.Fprintf(stderr, "zbridge tail: notice (%s): %s\n", f.Reason, f.Message)
			continue
		case f.Type != protocol.TypeEvent:
			continue
		}
		buf = buf[:0]
		switch {
		case f.Event == nil:
			buf = append(buf, f.Line...)
		case format == "json":
			buf = protocol.AppendEventJSON(buf, f.Event)
		default:
			buf = appendText(buf, f.Event)
		}
		buf = append(buf, '\n')
		out.Write(buf)
		n++
	}
	out.Flush()
	// Every event asked for was printed: the logoff is a courtesy, and a
	// region that ended the session meanwhile does not make this a failure.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c.Logoff(ctx)
	return nil
}

// appendText is the human layout: time origin facility.severity app[pid]: text.
func appendText(b []byte, e *protocol.Event) []byte {
	b = e.Time.AppendFormat(b, time.RFC3339)
	b = append(b, ' ')
	origin := e.Origin.Host
	if origin == "" {
		origin = e.Origin.System
	}
	b = append(b, origin...)
	b = append(b, ' ')
	b = append(b, e.Facility.String()...)
	b = append(b, '.')
	b = append(b, e.Severity.String()...)
	b = append(b, ' ')
	if e.App != "" {
		b = append(b, e.App...)
		if e.ProcID != "" {
			b = append(b, '[')
			b = append(b, e.ProcID...)
			b = append(b, ']')
		}
		b = append(b, ": "...)
	}
	if e.MsgID != "" {
		b = append(b, e.MsgID...)
		b = append(b, ' ')
	}
	for i := 0; i < len(e.Text); i++ {
		c := e.Text[i]
		if c == '\n' || c == '\r' {
			c = ' '
		}
		b = append(b, c)
	}
	if !e.Parsed {
		b = append(b, " [unparsed: "...)
		b = append(b, e.ParseError...)
		b = append(b, ']')
	}
	return b
}
