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
	"github.com/zbridge/zbridge/protocol/lx"
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
	addrs := fs.String("unsolmsg", defaultUnsolMsg, "the region's UNSOLMSG address; a comma-separated list to fail over between regions")
	filterS := fs.String("filter", "", "filter: origin=GLOB,source=KIND|KIND,msgid=GLOB,severity=LEVEL,sd.ID.PARAM=GLOB")
	format := fs.String("format", "text", `output: json (one event object a line), lx (CA layout), text; one line an event, with control characters, line separators and invalid UTF-8 in lx and text escaped (\x1b, \n, \u2028, \\ for \)`)
	count := fs.Int("count", 0, "exit 0 after this many events (0: run until interrupted)")
	timeout := fs.Duration("timeout", 0, "fail if this passes first (0: no limit)")
	after := fs.String("after", "", "resume after this event ID (0: everything retained); default: new events only")
	subName := fs.String("subscription", "", "durable subscription NAME: resume after the last event printed, on any region sharing the store")
	group := fs.String("group", "", "consumer group NAME: share the events with the group's other members, each event printed by one")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *subName != "" && *group != "" {
		fmt.Fprintln(stderr, "zbridge tail: --subscription and --group are exclusive")
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
	var cfgs []client.Config
	for _, a := range strings.Split(*addrs, ",") {
		if a = strings.TrimSpace(a); a == "" {
			continue
		}
		cfg, err := cf.config(a)
		if err != nil {
			fmt.Fprintln(stderr, "zbridge tail:", err)
			return 2
		}
		cfg.ReadBuffer = tailReadBuffer
		cfgs = append(cfgs, cfg)
	}
	if len(cfgs) == 0 {
		fmt.Fprintln(stderr, "zbridge tail: --unsolmsg names no address")
		return 2
	}
	ctx, stop := signalContext()
	defer stop()
	if *timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}
	// Written out whenever the connection has nothing more buffered (the
	// Subscriber's Flush), so a quiet stream is printed at once; while
	// events pour in, 64 KiB a write instead of the default 4 KiB (a
	// write for every eight events).
	out := bufio.NewWriterSize(stdout, 64<<10)
	defer out.Flush()
	t := newTailer(cfgs, client.Subscription{Filter: filter, After: *after, Format: wire, Name: *subName, Group: *group},
		*format, *count, out, stderr)
	err = t.run(ctx)
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

// tailReadBuffer is the size of tail's read buffer: at full rate, a read
// of 1 MiB takes about 1,500 events, and the region, its writes waiting
// for tail's reads, is woken as seldom. (With 64 KiB, the region spent
// ~20% more CPU a message on a stream that tail read than on one a
// reader took in 1 MiB reads; see BenchmarkTailKeepsUp.)
const tailReadBuffer = 1 << 20

// tailer prints the events a client.Subscriber reads, in the chosen
// format, until count were printed (0: until interrupted).
type tailer struct {
	format  string
	count   int
	printed int
	out     *bufio.Writer
	buf     []byte
	sub     client.Subscriber
}

func newTailer(cfgs []client.Config, sub client.Subscription, format string, count int, out *bufio.Writer, stderr io.Writer) *tailer {
	t := &tailer{format: format, count: count, out: out}
	t.sub = client.Subscriber{Configs: cfgs, Subscription: sub, Handle: t.print, Flush: out.Flush,
		RawEvents: format == "json", // printed as they came: neither decoded nor encoded again
		OnNotice: func(f *protocol.Frame) {
			fmt.Fprintf(stderr, "zbridge tail: notice (%s): %s\n", f.Reason, f.Message)
		},
		OnFailover: func(addr string, err error, next string) {
			fmt.Fprintf(stderr, "zbridge tail: %s: %v; trying %s\n", addr, err, next)
		}}
	return t
}

// run tails until count events were printed, ctx ends, or the
// subscription ends for good (see client.Subscriber).
func (t *tailer) run(ctx context.Context) error {
	if t.count > 0 && t.printed >= t.count {
		return nil
	}
	return t.sub.Run(ctx)
}

// print writes one event frame as a line.
func (t *tailer) print(f *protocol.Frame) error {
	if f.EventJSON != nil { // checked by protocol.SplitEventFrame
		t.out.Write(f.EventJSON)
		return t.printed1(t.out.WriteByte('\n'))
	}
	b := t.buf[:0]
	switch {
	case f.Event == nil:
		b = appendLine(b, f.Line)
	case t.format == "json":
		b = protocol.AppendEventJSON(b, f.Event)
	default:
		b = appendText(b, f.Event)
	}
	b = append(b, '\n')
	t.buf = b
	_, err := t.out.Write(b)
	return t.printed1(err)
}

// printed1 counts an event printed unless err says the write failed.
func (t *tailer) printed1(err error) error {
	if err != nil {
		return err
	}
	t.printed++
	if t.count > 0 && t.printed >= t.count {
		return client.ErrStop
	}
	return nil
}

// appendText is the human layout: time origin facility.severity app[pid]: text.
// Every field from the event is escaped as in the lx layout (lx.AppendEscaped),
// so that what a sender put in them cannot act on the terminal or start a line.
func appendText(b []byte, e *protocol.Event) []byte {
	b = e.Time.AppendFormat(b, time.RFC3339)
	b = append(b, ' ')
	origin := e.Origin.Host
	if origin == "" {
		origin = e.Origin.System
	}
	b = lx.AppendEscaped(b, origin)
	b = append(b, ' ')
	b = append(b, e.Facility.String()...)
	b = append(b, '.')
	b = append(b, e.Severity.String()...)
	b = append(b, ' ')
	if e.App != "" {
		b = lx.AppendEscaped(b, e.App)
		if e.ProcID != "" {
			b = append(b, '[')
			b = lx.AppendEscaped(b, e.ProcID)
			b = append(b, ']')
		}
		b = append(b, ": "...)
	}
	if e.MsgID != "" && !strings.HasPrefix(e.Text, e.MsgID+" ") { // the region's messages start with theirs
		b = lx.AppendEscaped(b, e.MsgID)
		b = append(b, ' ')
	}
	b = lx.AppendEscaped(b, e.Text)
	if !e.Parsed {
		b = append(b, " [unparsed: "...)
		b = lx.AppendEscaped(b, e.ParseError)
		b = append(b, ']')
	}
	return b
}

// appendLine appends a line the region formatted (the lx layout). A region
// escapes its lines' fields; one that does not (an older version) has the
// whole line escaped here rather than written to the terminal as it came.
func appendLine(b []byte, line string) []byte {
	if lx.NeedsEscape(line) {
		return lx.AppendEscaped(b, line)
	}
	return append(b, line...)
}
