// Command zbridge is the zbridge mainframe-to-Linux bridge gateway: one
// binary whose subcommands are the region, its clients and its tools.
//
//	zbridge region    run a region (SYSLOG, RELP, UNSOLMSG, COMMANDS, VMMON, the 3270 console, HTTP)
//	zbridge demo      every flow on loopback: a region, a simulated z/VM system with its agent, a Linux agent, a syslog feed and the console
//	zbridge tail      print events from a region's UNSOLMSG port
//	zbridge cmd       run a command on a target through a region's COMMANDS port
//	zbridge agents    list the agents a region knows
//	zbridge report    an availability report from a region's availability ledger
//	zbridge linuxagent  run the Linux agent
//	zbridge zvmsim    run a simulated z/VM system (TN3270 consoles) for tests and trying zbridge
//	zbridge vmagent   run the z/VM agent for one z/VM system
//	zbridge passwd    hash a client secret for the clients file
//	zbridge loadgen   send syslog load to a region (for measuring)
//	zbridge zoslog    send z/OS SYSLOG hardcopy files to a region (back-filling)
//	zbridge version   print the version
//
// Built with -tags lean, it is the clients alone (tail, cmd, agents,
// passwd, loadgen, zoslog, version), which start in about half the time,
// and runs the other commands by executing zbridge-server, the full build,
// beside it: see lean.go.
package main

import (
	"fmt"
	"io"
	"os"
	"strings"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// Default addresses, all loopback: the region is reachable only from this
// host until it is configured otherwise (see protected mode).
const (
	defaultSyslog   = "127.0.0.1:7514"
	defaultUnsolMsg = "127.0.0.1:7002"
	defaultCommands = "127.0.0.1:7003"
	defaultHTTP     = "127.0.0.1:7080"
	defaultVMMon    = "127.0.0.1:7001"
)

type subcommand struct {
	name, summary string
	run           func(args []string, stdout, stderr io.Writer) int
}

func subcommands() []subcommand {
	return []subcommand{
		{"region", "run a region (SYSLOG, RELP, UNSOLMSG, COMMANDS, VMMON, the 3270 console, HTTP)", runRegion},
		{"demo", "every flow on loopback: a region, a simulated z/VM system with its agent, a Linux agent, a syslog feed and the console", runDemo},
		{"tail", "print events from a region's UNSOLMSG port", runTail},
		{"cmd", "run a command on a target through a region's COMMANDS port", runCmd},
		{"agents", "list the agents a region knows", runAgents},
		{"report", "an availability report from a region's availability ledger", runReport},
		{"linuxagent", "run the Linux agent (an SSH server for the region's commands)", runLinuxAgent},
		{"zvmsim", "run a simulated z/VM system with TN3270 consoles", runZVMSim},
		{"vmagent", "run the z/VM agent (TN3270 console scraper) for one z/VM system", runVMAgent},
		{"passwd", "hash a client secret for the clients file", runPasswd},
		{"loadgen", "send syslog load to a region", runLoadgen},
		{"zoslog", "send z/OS SYSLOG hardcopy log files to a region's SYSLOG port", runZoslog},
		{"version", "print the version", func(_ []string, stdout, _ io.Writer) int { fmt.Fprintln(stdout, "zbridge", version); return 0 }},
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: zbridge COMMAND [flags]\n\ncommands:")
	for _, c := range subcommands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\n'zbridge COMMAND -h' lists a command's flags.")
}

// leanExecVar is set in the environment of the zbridge-server the lean
// build executes (see lean.go); the full build takes it out of its own,
// so that what it starts does not inherit it.
const leanExecVar = "ZBRIDGE_LEAN_EXEC"

func main() {
	if !isLean {
		os.Unsetenv(leanExecVar)
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	name := strings.TrimLeft(args[0], "-")
	if name == "h" || name == "help" {
		usage(stdout)
		return 0
	}
	for _, c := range subcommands() {
		if c.name == name {
			return c.run(args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "zbridge: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}
