package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/zbridge/zbridge/gateway/region"
	"github.com/zbridge/zbridge/protocol/client"
)

// demoLines are what the demo's pretend Linux guests log.
var demoLines = []struct {
	pri           int
	host, app, id string
	text          string
}{
	{30, "lnxweb01", "sshd", "-", "Accepted publickey for deploy from 10.1.2.3 port 52044 ssh2"},
	{27, "lnxdb02", "postgres", "-", "FATAL:  too many connections for role \"batch\""},
	{29, "lnxweb01", "systemd", "-", "Started nightly-report.service - Nightly report."},
	{28, "lnxdb02", "kernel", "-", "EXT4-fs warning (device dasdb1): ext4_dx_add_entry: directory index full"},
	{30, "lnxapp03", "cron", "-", "(root) CMD (/usr/local/bin/backup --incremental)"},
	{26, "lnxapp03", "zbridge-demo", "ZDM001E", "transaction monitor lost contact with CICS region CICSP1"},
}

func runDemo(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("zbridge demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f regionFlags
	f.register(fs)
	interval := fs.Duration("interval", time.Second, "time between demo messages")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log, err := newLogger(f.logLevel, f.logFormat, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "zbridge demo:", err)
		return 2
	}
	if err := f.finish(log); err != nil {
		fmt.Fprintln(stderr, "zbridge demo:", err)
		return 2
	}
	if f.cfg.SyslogTCP == "" || f.cfg.UnsolMsg == "" {
		fmt.Fprintln(stderr, "zbridge demo: needs --syslog and --unsolmsg")
		return 2
	}
	ctx, stop := signalContext()
	defer stop()
	fmt.Fprintln(stdout, "zbridge demo: a region on loopback, fed sample syslog traffic; events below come back through UNSOLMSG. Ctrl-C stops.")
	var wg sync.WaitGroup
	defer wg.Wait()
	dctx, cancel := context.WithCancel(ctx) // ends the feeder and tail when the region stops
	defer cancel()
	started := func(r *region.Region) {
		wg.Add(2)
		go func() { defer wg.Done(); demoFeed(dctx, r.Addr("syslog").String(), *interval, stderr) }()
		go func() { defer wg.Done(); demoTail(dctx, r.Addr("unsolmsg").String(), stdout, stderr) }()
		fmt.Fprintf(stdout, "SYSLOG %s  UNSOLMSG %s  HTTP %v  (try: zbridge tail --format lx)\n",
			r.Addr("syslog"), r.Addr("unsolmsg"), r.Addr("http"))
	}
	if err := serveRegion(ctx, f.cfg, f.shutdownTimeout, started); err != nil {
		fmt.Fprintln(stderr, "zbridge demo:", err)
		return 1
	}
	return 0
}

// demoFeed plays the sample lines to the SYSLOG port as RFC 5424 with octet
// counting, like rsyslog's omfwd, until ctx ends.
func demoFeed(ctx context.Context, addr string, every time.Duration, stderr io.Writer) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		fmt.Fprintln(stderr, "zbridge demo: feeder:", err)
		return
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	w := bufio.NewWriter(c)
	t := time.NewTicker(every)
	defer t.Stop()
	for i := 0; ; i++ {
		l := demoLines[i%len(demoLines)]
		msg := fmt.Sprintf("<%d>1 %s %s %s %d %s - %s", l.pri, time.Now().UTC().Format("2006-01-02T15:04:05.000000Z07:00"), // RFC 5424 allows 6 fraction digits
			l.host, l.app, 1000+i%7, l.id, l.text)
		w.WriteString(strconv.Itoa(len(msg)) + " " + msg)
		if err := w.Flush(); err != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// demoTail prints every event in the text layout.
func demoTail(ctx context.Context, addr string, stdout, stderr io.Writer) {
	c, err := client.Dial(ctx, client.Config{Addr: addr, Client: "demo"})
	if err != nil {
		fmt.Fprintln(stderr, "zbridge demo: tail:", err)
		return
	}
	defer c.Close()
	if _, err := c.Subscribe(ctx, nil, "0", "json"); err != nil {
		fmt.Fprintln(stderr, "zbridge demo: tail:", err)
		return
	}
	for {
		f, err := c.Next(ctx)
		if err != nil {
			return
		}
		if f.Event != nil {
			fmt.Fprintf(stdout, "%s  %s\n", f.Event.ID, appendText(nil, f.Event))
		}
	}
}
