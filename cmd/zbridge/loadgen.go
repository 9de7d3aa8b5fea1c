package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/zbridge/zbridge/internal/loadgen"
)

func runLoadgen(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("zbridge loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c loadgen.Config
	fs.StringVar(&c.Addr, "syslog", defaultSyslog, "SYSLOG TCP address to send to")
	fs.IntVar(&c.Count, "count", 100000, "messages per connection")
	fs.IntVar(&c.Conns, "conns", 1, "connections")
	fs.IntVar(&c.Size, "size", 200, "bytes per message")
	fs.StringVar(&c.Format, "format", "5424", "message format: 5424 or 3164")
	fs.StringVar(&c.Framing, "framing", "octet", "TCP framing: octet (RFC 6587 octet counting) or lf")
	fs.StringVar(&c.Host, "host", "loadgen", "HOSTNAME of the messages")
	fs.Float64Var(&c.Rate, "rate", 0, "messages per second per connection (0: as fast as taken)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, stop := signalContext()
	defer stop()
	res, err := loadgen.Run(ctx, c)
	fmt.Fprintf(stdout, "sent %d messages (%d bytes) in %v: %.0f msg/s\n", res.Sent, res.Bytes, res.Elapsed.Round(1e6), res.Rate())
	if err != nil {
		fmt.Fprintln(stderr, "zbridge loadgen:", err)
		return 1
	}
	return 0
}
