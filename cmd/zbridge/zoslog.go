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
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/zbridge/zbridge/protocol"
	"github.com/zbridge/zbridge/zos"
)

// runZoslog is `zbridge zoslog`: it reads z/OS hardcopy logs (SYSLOG, or
// OPERLOG printed in its form) from files or standard input, joins
// multi-line messages (package zos, HardcopyReader) and sends each message
// to a region's SYSLOG port as one RFC 5424 message with octet counting
// (RFC 6587), as rsyslog's omfwd sends, for back-filling reports. The
// message's TIMESTAMP is the record's time (read in --location) in UTC with
// its hundredths, HOSTNAME the system name, APP-NAME the job ID or
// "SYSLOG", MSGID the message ID ("-" when the text has none), the
// structured data element hardcopy@zbridge the record's other columns, and
// MSG the text, the lines of a multi-line message joined with "\n". The
// region keeps that element, as any sender's with an SD-ID of its own, as
// hardcopy@claimed (package syslog): it cannot tell zoslog from a sender
// forging the columns, so a rule that trusts back-filled records names
// hardcopy@claimed and the address zoslog runs on (addr=). The
// priority is user.notice, user.warning for action messages
// (zoslogSeverity). A summary goes to stderr: the records sent and every
// line skipped, with why. It exits 1 if it cannot connect or the connection
// fails, or a file cannot be read; skipped lines alone do not fail it.
func runZoslog(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("zbridge zoslog", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: zbridge zoslog [flags] FILE... (- for standard input)")
		fs.PrintDefaults()
	}
	addr := fs.String("syslog", defaultSyslog, "the region's SYSLOG TCP address")
	useTLS := fs.Bool("tls", false, "connect with TLS 1.2 or 1.3, verifying the region's certificate (a region with --tls-cert serves TLS on SYSLOG)")
	caFile := fs.String("tls-ca", "", "PEM CA certificate(s) to verify the region with, instead of the system's (implies --tls)")
	serverName := fs.String("tls-server-name", "", "name to verify in the region's certificate (default: the host of --syslog; implies --tls)")
	locName := fs.String("location", "UTC", "time zone of the log's times (the system's local time): an IANA name such as Europe/Berlin, or Local")
	systems := fs.String("system", "", "send only the records of these systems (comma-separated names; an OPERLOG holds every system of the sysplex); default: all")
	rate := fs.Float64("rate", 0, "records per second at most (0: as fast as the region takes them), to stay below the region's flood control")
	dryRun := fs.Bool("dry-run", false, "print the syslog messages to standard output instead of sending them")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	files := fs.Args()
	if len(files) == 0 {
		fmt.Fprintln(stderr, "zbridge zoslog: no file (- for standard input)")
		fs.Usage()
		return 2
	}
	loc, err := zoslogLocation(*locName)
	if err != nil {
		fmt.Fprintln(stderr, "zbridge zoslog: --location:", err)
		return 2
	}
	only := map[string]bool{}
	for _, s := range strings.Split(*systems, ",") {
		if s = strings.ToUpper(strings.TrimSpace(s)); s != "" {
			only[s] = true
		}
	}

	ctx, stop := signalContext()
	defer stop()
	var w io.Writer = stdout
	frame := !*dryRun
	if !*dryRun {
		var tcfg *tls.Config
		if *useTLS || *caFile != "" || *serverName != "" {
			if tcfg, err = zoslogTLS(*caFile, *serverName); err != nil {
				fmt.Fprintln(stderr, "zbridge zoslog:", err)
				return 2
			}
		}
		c, err := zoslogDial(ctx, *addr, tcfg)
		if err != nil {
			fmt.Fprintf(stderr, "zbridge zoslog: connecting to %s: %v\n", *addr, err)
			return 1
		}
		defer c.Close()
		stopClose := context.AfterFunc(ctx, func() { c.Close() })
		defer stopClose()
		w = c
	}
	s := &zoslogSender{w: bufio.NewWriterSize(w, 64<<10), frame: frame, only: only, loc: loc, stderr: stderr}
	if *rate > 0 {
		s.every = time.Duration(float64(time.Second) / *rate)
	}
	code := 0
	for _, name := range files {
		if err := s.sendFile(ctx, name, stdinOf(name)); err != nil {
			fmt.Fprintf(stderr, "zbridge zoslog: %s: %v\n", name, err)
			code = 1
			var se *sendError
			if errors.As(err, &se) || ctx.Err() != nil {
				break // the connection is gone
			}
		}
	}
	if err := s.w.Flush(); err != nil && code == 0 {
		fmt.Fprintf(stderr, "zbridge zoslog: sending to %s: %v\n", *addr, err)
		code = 1
	}
	to := *addr
	if *dryRun {
		to = "standard output"
	}
	fmt.Fprintf(stderr, "zbridge zoslog: %d records sent to %s, %d lines skipped", s.sent, to, s.skipped)
	if s.filtered > 0 {
		fmt.Fprintf(stderr, ", %d records of other systems left out", s.filtered)
	}
	fmt.Fprintln(stderr)
	return code
}

// stdinOf returns standard input for the name "-", else nil.
func stdinOf(name string) io.Reader {
	if name == "-" {
		return os.Stdin
	}
	return nil
}

// zoslogLocation returns the named time zone; "" and "UTC" are UTC.
func zoslogLocation(name string) (*time.Location, error) {
	switch name {
	case "", "UTC":
		return time.UTC, nil
	case "Local":
		return time.Local, nil
	}
	return time.LoadLocation(name)
}

// zoslogTLS is the TLS configuration to the region: the agent's
// (clientTLSConfig), with the CA file and server name given.
func zoslogTLS(caFile, serverName string) (*tls.Config, error) {
	cfg := clientTLSConfig()
	cfg.ServerName = serverName
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("--tls-ca: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--tls-ca: no PEM certificate in %s", caFile)
		}
	}
	return cfg, nil
}

// zoslogDial connects to the SYSLOG port, with TLS when tcfg is set (its
// handshake done), within 15 seconds.
func zoslogDial(ctx context.Context, addr string, tcfg *tls.Config) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if tcfg == nil {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}
	d := tls.Dialer{Config: tcfg}
	return d.DialContext(ctx, "tcp", addr)
}

// zoslogSender sends the records of hardcopy files.
type zoslogSender struct {
	w      *bufio.Writer
	frame  bool // octet counting; false: one message a line (--dry-run)
	only   map[string]bool
	loc    *time.Location
	stderr io.Writer
	every  time.Duration // --rate
	next   time.Time

	sent, skipped, filtered int
	buf                     []byte
}

// sendError is a failure to send: the connection is gone.
type sendError struct{ err error }

func (e *sendError) Error() string { return "sending: " + e.err.Error() }
func (e *sendError) Unwrap() error { return e.err }

// zoslogMaxReasons is how many skipped lines of a file the summary lists.
const zoslogMaxReasons = 20

// sendFile sends the records of the file name (or of in, when set) and
// reports what it skipped.
func (s *zoslogSender) sendFile(ctx context.Context, name string, in io.Reader) error {
	if in == nil {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	r, err := zos.NewHardcopyReader(in, zos.HardcopyConfig{Location: s.loc})
	if err != nil {
		return err
	}
	sent, skipped, lines, incomplete := 0, 0, 0, 0
	for ctx.Err() == nil {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		var le *zos.HardcopyLineError
		if errors.As(err, &le) {
			skipped++
			if skipped <= zoslogMaxReasons {
				fmt.Fprintf(s.stderr, "zbridge zoslog: %s:%d: skipped: %v: %q\n", name, le.Line, le.Err, zoslogShort(le.Text))
			}
			continue
		}
		if err != nil {
			return err
		}
		if len(s.only) > 0 && !s.only[rec.System] {
			s.filtered++
			continue
		}
		if err := s.send(rec); err != nil {
			return &sendError{err}
		}
		sent++
		lines += rec.Lines
		if !rec.Complete {
			incomplete++
		}
	}
	if skipped > zoslogMaxReasons {
		fmt.Fprintf(s.stderr, "zbridge zoslog: %s: ... and %d more lines skipped\n", name, skipped-zoslogMaxReasons)
	}
	fmt.Fprintf(s.stderr, "zbridge zoslog: %s: %d records (%d lines) sent, %d lines skipped", name, sent, lines, skipped)
	if incomplete > 0 {
		fmt.Fprintf(s.stderr, ", %d multi-line messages without their end line", incomplete)
	}
	fmt.Fprintln(s.stderr)
	s.sent += sent
	s.skipped += skipped
	return ctx.Err()
}

// send writes one record, waiting for --rate.
func (s *zoslogSender) send(rec zos.HardcopyRecord) error {
	if s.every > 0 {
		now := time.Now()
		if s.next.After(now) {
			if err := s.w.Flush(); err != nil {
				return err
			}
			time.Sleep(s.next.Sub(now))
		} else {
			s.next = now
		}
		s.next = s.next.Add(s.every)
	}
	s.buf = zoslogMessage(s.buf[:0], rec)
	var err error
	if s.frame {
		_, err = s.w.WriteString(strconv.Itoa(len(s.buf)) + " ")
	}
	if err == nil {
		_, err = s.w.Write(s.buf)
	}
	if err == nil && !s.frame {
		err = s.w.WriteByte('\n')
	}
	return err
}

// zoslogShort cuts a skipped line for the summary.
func zoslogShort(s string) string {
	if len(s) > 100 {
		return s[:100] + "..."
	}
	return s
}

// zoslogSeverity is a record's syslog severity: warning for an action
// message (marked '*' or '@', a WTOR, or a message ID of type A, D, E or
// W: action, decision, eventual action, wait), notice for the rest.
func zoslogSeverity(rec zos.HardcopyRecord) protocol.Severity {
	if rec.Action {
		return protocol.SevWarning
	}
	if id := rec.MsgID; id != "" {
		switch id[len(id)-1] {
		case 'A', 'D', 'E', 'W':
			return protocol.SevWarning
		}
	}
	return protocol.SevNotice
}

// zoslogMessage appends rec as an RFC 5424 message (without framing) to b.
func zoslogMessage(b []byte, rec zos.HardcopyRecord) []byte {
	b = append(b, '<')
	b = strconv.AppendInt(b, int64(protocol.FacUser)<<3|int64(zoslogSeverity(rec)), 10)
	b = append(b, ">1 "...)
	b = rec.Time.UTC().AppendFormat(b, "2006-01-02T15:04:05.00Z07:00")
	b = append(b, ' ')
	b = append(b, zoslogField(rec.System, 255)...)
	b = append(b, ' ')
	app := rec.JobID
	if app == "" {
		app = "SYSLOG"
	}
	b = append(b, app...)
	b = append(b, " - "...)
	b = append(b, zoslogField(rec.MsgID, 32)...)
	b = append(b, ' ')
	b = protocol.AppendStructuredData(b, []protocol.SDElement{{ID: "hardcopy@zbridge", Params: zoslogParams(rec)}})
	if rec.Text != "" {
		b = append(b, ' ')
		b = append(b, strings.ToValidUTF8(rec.Text, string(utf8.RuneError))...)
	}
	return b
}

// zoslogField is s as a header field of at most n printable US-ASCII
// characters, "-" when empty.
func zoslogField(s string, n int) string {
	if s == "" || len(s) > n {
		return "-"
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return "-"
		}
	}
	return s
}

// zoslogParams are the hardcopy@zbridge parameters: the columns of the
// first line that have no header field of their own.
func zoslogParams(rec zos.HardcopyRecord) []protocol.SDParam {
	var p []protocol.SDParam
	add := func(name, value string) {
		if strings.TrimSpace(value) != "" {
			p = append(p, protocol.SDParam{Name: name, Value: strings.ToValidUTF8(value, "?")})
		}
	}
	if rec.Type != 0 {
		add("type", string(rec.Type))
	}
	if rec.Request != 0 {
		add("request", string(rec.Request))
	}
	add("routing", rec.Routing)
	add("date", rec.Date)
	add("clock", rec.Clock)
	add("ident", rec.Ident)
	add("console", rec.Console)
	add("flags", rec.Flags)
	add("reply", rec.ReplyID)
	add("lid", rec.LineID)
	add("lines", strconv.Itoa(rec.Lines))
	if !rec.Complete {
		add("complete", "false")
	}
	return p
}
