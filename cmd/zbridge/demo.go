//go:build !lean

package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/gateway/region"
	"github.com/zbridge/zbridge/linuxagent"
	"github.com/zbridge/zbridge/protocol/client"
	"github.com/zbridge/zbridge/vmagent/zvmsim"
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

// The demo's fixed names: the simulated z/VM system and the Linux target
// its Linux agent is known by.
const (
	demoSystem = "VMSYS1"
	demoLinux  = "demo1"
	// demoAnyPort is where every listener of the demo goes unless a flag
	// says otherwise: loopback, a port the kernel picks.
	demoAnyPort = "127.0.0.1:0"
)

// demoUsage is `zbridge demo -h`'s text before the flags.
const demoUsage = `usage: zbridge demo [flags]

Shows every flow of zbridge on loopback, in one process, with nothing to
install and no root needed:

  - a region (SYSLOG, UNSOLMSG, COMMANDS, VMMON, HTTP and the 3270 operator
    console, once the region serves it), its store in memory;
  - a simulated z/VM system ` + demoSystem + ` (TN3270) and a z/VM agent logged on to
    its OPERATOR console, connected to the region's VMMON port;
  - a Linux agent ` + demoLinux + ` (SSH) running read-only commands (uname, echo, date,
    ...) as the user the demo runs as, with keys made for the run;
  - a feed of sample syslog traffic from pretend Linux guests, and messages
    from the simulated z/VM guests.

It prints where each part listens, then what comes back through the
region's client ports: z/VM console lines and syslog events from UNSOLMSG,
and the responses of a Linux command (linux:` + demoLinux + ` $ uname -sr) and a CP
command (zvm:` + demoSystem + ` QUERY TIME) run through COMMANDS. Try 'zbridge tail' and
'zbridge cmd' on the ports it prints. Ctrl-C stops everything; the
demo's keys and spool, in a private temporary directory, are removed.

Every listener is on 127.0.0.1, on a port the kernel picks, unless a flag
names one; the region's clients are not authenticated (no clients file:
open, loopback only). The components log to standard error (--log-level).

flags:`

// runDemo is `zbridge demo` (see demoUsage). It stops on SIGINT or SIGTERM.
func runDemo(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signalContext()
	defer stop()
	return demoMain(ctx, args, stdout, stderr)
}

// demoMain is runDemo until ctx ends.
func demoMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("zbridge demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, demoUsage)
		fs.PrintDefaults()
	}
	var f regionFlags
	f.register(fs)
	demoFlagDefaults(fs)
	var o demoOptions
	fs.DurationVar(&o.interval, "interval", time.Second, "time between sample syslog messages; a simulated z/VM guest sends the operator a message every ten")
	fs.StringVar(&o.zvmListen, "zvmsim-listen", demoAnyPort, "TN3270 address of the simulated z/VM system; empty: no z/VM system and agent")
	fs.StringVar(&o.agentListen, "linuxagent-listen", demoAnyPort, "SSH address of the Linux agent "+demoLinux+"; empty: no Linux agent")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "zbridge demo: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if err := applyConfigFile(fs, f.configFile); err != nil {
		fmt.Fprintln(stderr, "zbridge demo:", err)
		return 2
	}
	f.cfg.ConfigFile = f.configFile
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
	if o.interval <= 0 {
		fmt.Fprintln(stderr, "zbridge demo: --interval must be positive")
		return 2
	}
	d := &demo{out: &demoOut{w: stdout}, stderr: stderr, log: log, opts: o, regionName: f.cfg.Name,
		open: f.cfg.ClientsFile == "" && f.cfg.ConfigFile == ""}
	return d.run(ctx, f.cfg, f.shutdownTimeout)
}

// demoFlagDefaults gives the region's flags the demo's defaults: every
// listener on a loopback port the kernel picks (the 3270 console too),
// the store in memory, no Linux target names learned, and logs at warn,
// so that the demo's own output stands out. A flag given on the command
// line, or in --config, still wins.
func demoFlagDefaults(fs *flag.FlagSet) {
	set := func(name, value, usage string) {
		fl := fs.Lookup(name)
		if fl == nil {
			return
		}
		fl.Value.Set(value) // the default, not a flag the user set: fs.Visit does not see it
		fl.DefValue = value
		if usage != "" {
			fl.Usage = usage
		}
	}
	for _, name := range []string{"syslog", "syslog-udp", "unsolmsg", "commands", "vmmon", "http", "console"} {
		set(name, demoAnyPort, "")
	}
	set("data-dir", "", "keep the demo region's store on disk here (default: in memory only, gone at exit)")
	// The feed's pretend hosts have no agent: a name learned from them
	// would only have the region dial 127.0.0.1:7022 in vain.
	set("max-learned", "-1", "Linux target names learned from syslog senders at most (negative, the demo's default: learn none)")
	set("log-level", "warn", "")
}

// demoOptions are the demo's own flags.
type demoOptions struct {
	interval    time.Duration
	zvmListen   string // "" for no z/VM system
	agentListen string // "" for no Linux agent
}

// demo is one run of `zbridge demo`. Its parts, in the order they start
// and (reversed) stop:
//
//   - the z/VM simulator (d.sim) and the Linux agent (d.linux), servers
//     whose Serve runs in a goroutine that d.stopServers waits for;
//   - the region, in run's goroutine (serveRegion);
//   - once the region listens, the goroutines in d.wg, all ended by the
//     context run gives them and waited for by run once the region has
//     stopped: the syslog feeder (demoFeed), the UNSOLMSG tail (tail), the
//     z/VM agent (zvmAgent, which waits for its own scraper, VMMON session,
//     QUERY NAMES poll, z/VM guest feed and CP command before it closes its
//     spool) and the Linux command (linuxShow).
//
// On SIGINT or SIGTERM the region shuts down while the goroutines in d.wg
// end; then the servers stop and d.dir is removed.
type demo struct {
	out    *demoOut
	stderr io.Writer // for why the demo failed
	log    logrus.FieldLogger
	opts   demoOptions
	// regionName is the region's --name.
	regionName string
	// open is true when the region has no clients (no --clients or
	// --config): any client name logs on, with no secret.
	open bool
	dir  string // private temporary directory (mode 0700), removed at exit; "" when it could not be made

	sim     *zvmsim.Sim // nil when it did not start
	simAddr string
	simPass string     // the one password of every simulated userid
	simDone chan error // sim.Serve's result

	linux     *linuxagent.Server // nil when it did not start
	linuxDone chan error         // linux.Serve's result

	wg sync.WaitGroup // the goroutines started once the region listens
}

// run runs the demo until ctx ends or the region fails, and returns the
// exit status.
func (d *demo) run(ctx context.Context, cfg region.Config, shutdownTimeout time.Duration) int {
	d.out.printf("zbridge demo: every flow of zbridge on loopback: a region, a simulated z/VM system %s with a z/VM agent, "+
		"a Linux agent %s and a syslog feed; what comes back through the region is printed below. Ctrl-C stops.\n",
		demoSystem, demoLinux)
	defer d.removeDir()
	dir, err := os.MkdirTemp("", "zbridge-demo-") // mode 0700: the region's key is in it
	if err != nil {
		d.out.printf("temporary directory: %v; no z/VM agent spool, no Linux agent keys\n", err)
	} else {
		d.dir = dir
	}
	if d.opts.zvmListen != "" {
		if err := d.startSim(d.opts.zvmListen); err != nil {
			d.out.printf("z/VM simulator: not started: %v\n", err)
		}
	}
	if d.opts.agentListen != "" {
		if err := d.startLinux(d.opts.agentListen, &cfg); err != nil {
			d.out.printf("Linux agent %s: not started: %v\n", demoLinux, err)
		}
	}
	defer d.stopServers(shutdownTimeout)

	dctx, cancel := context.WithCancel(ctx) // ends the clients when the region stops
	defer cancel()
	started := func(r *region.Region) {
		d.printAddrs(r)
		d.startClients(dctx, r)
	}
	err = serveRegion(ctx, cfg, shutdownTimeout, started)
	cancel()
	d.wg.Wait()
	if err != nil {
		fmt.Fprintln(d.stderr, "zbridge demo:", err) // the region's errors name it
		return 1
	}
	return 0
}

// removeDir removes the demo's temporary directory, if it made one.
func (d *demo) removeDir() {
	if d.dir == "" {
		d.out.printf("zbridge demo: stopped\n")
		return
	}
	if err := os.RemoveAll(d.dir); err != nil {
		d.out.printf("zbridge demo: removing %s: %v\n", d.dir, err)
		return
	}
	d.out.printf("zbridge demo: stopped; removed %s\n", d.dir)
}

// stopServers shuts the z/VM simulator and the Linux agent down (closing
// what is left after timeout) and waits for their Serve calls.
func (d *demo) stopServers(timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if d.linux != nil {
		if err := d.linux.Shutdown(ctx); err != nil {
			d.linux.Close()
		}
		if err := <-d.linuxDone; !errors.Is(err, linuxagent.ErrServerClosed) {
			d.out.printf("Linux agent %s: %v\n", demoLinux, err)
		}
	}
	if d.sim != nil {
		if err := d.sim.Shutdown(ctx); err != nil {
			d.sim.Close()
		}
		if err := <-d.simDone; !errors.Is(err, zvmsim.ErrServerClosed) {
			d.out.printf("z/VM simulator: %v\n", err)
		}
	}
}

// printAddrs prints where the region listens and how to reach it.
func (d *demo) printAddrs(r *region.Region) {
	var b strings.Builder
	fmt.Fprintf(&b, "region %s:", d.regionName)
	for _, p := range []struct{ name, label string }{
		{"syslog", "SYSLOG"}, {"syslog-udp", "SYSLOG/UDP"}, {"relp", "RELP"}, {"unsolmsg", "UNSOLMSG"},
		{"commands", "COMMANDS"}, {"vmmon", "VMMON"}, {"http", "HTTP"},
	} {
		if a := r.Addr(p.name); a != nil {
			fmt.Fprintf(&b, " %s %s", p.label, a)
		}
	}
	d.out.printf("%s\n", b.String())
	if a := r.Addr("console"); a != nil {
		d.out.printf("3270 operator console: x3270 %[1]s   or   printf 'Connect(%[1]s)\\nWait(InputField)\\nAscii()\\n' | s3270\n", a)
		if d.open {
			d.out.printf("    log on with any client name (OPER1, say) and no secret: the demo region has no clients, so it is open, on loopback only\n")
		}
	}
	if a := r.Addr("unsolmsg"); a != nil {
		d.out.printf("try: zbridge tail --unsolmsg %s --format lx\n", a)
	}
	if a := r.Addr("commands"); a != nil {
		if d.linux != nil {
			d.out.printf("     zbridge cmd --commands %s linux:%s -- uname -a\n", a, demoLinux)
		}
		if d.sim != nil {
			d.out.printf("     zbridge cmd --commands %s zvm:%s -- QUERY NAMES\n", a, demoSystem)
		}
	}
}

// startClients starts what talks to the region: the syslog feeder, the
// tail, the z/VM agent and the Linux command, each in d.wg, until ctx
// ends.
func (d *demo) startClients(ctx context.Context, r *region.Region) {
	unsol := r.Addr("unsolmsg").String()
	d.wg.Add(2)
	go func() { defer d.wg.Done(); demoFeed(ctx, r.Addr("syslog").String(), d.opts.interval, d.out) }()
	go func() { defer d.wg.Done(); d.tail(ctx, unsol) }()
	cmds := ""
	if a := r.Addr("commands"); a != nil {
		cmds = a.String()
	} else {
		d.out.printf("COMMANDS is off (--commands \"\"): no Linux or CP command is run\n")
	}
	if d.sim != nil {
		if a := r.Addr("vmmon"); a == nil {
			d.out.printf("z/VM agent: not started: VMMON is off (--vmmon \"\")\n")
		} else {
			d.wg.Add(1)
			go func() { defer d.wg.Done(); d.zvmAgent(ctx, a.String(), cmds) }()
		}
	}
	if d.linux != nil && cmds != "" {
		d.wg.Add(1)
		go func() { defer d.wg.Done(); d.linuxShow(ctx, cmds) }()
	}
}

// demoFeed plays the sample lines to the SYSLOG port as RFC 5424 with octet
// counting, like rsyslog's omfwd, until ctx ends.
func demoFeed(ctx context.Context, addr string, every time.Duration, out *demoOut) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		out.printf("syslog feed: %v\n", err)
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

// tail prints every event from UNSOLMSG, from the first the region kept,
// one line each, labelled by where it came from (demoEventLine).
func (d *demo) tail(ctx context.Context, addr string) {
	c, err := client.Dial(ctx, client.Config{Addr: addr, Client: "demo"})
	if err != nil {
		if ctx.Err() == nil {
			d.out.printf("UNSOLMSG tail: %v\n", err)
		}
		return
	}
	defer c.Close()
	if _, err := c.Subscribe(ctx, nil, "0", "json"); err != nil {
		if ctx.Err() == nil {
			d.out.printf("UNSOLMSG tail: %v\n", err)
		}
		return
	}
	var b []byte
	for {
		f, err := c.Next(ctx)
		if err != nil {
			if ctx.Err() == nil {
				d.out.printf("UNSOLMSG tail: %v\n", err)
			}
			return
		}
		if f.Event != nil {
			b = append(demoEventLine(b[:0], f.Event), '\n')
			d.out.write(b)
		}
	}
}
