//go:build lean

package main

// The lean build (go build -tags lean) is zbridge's clients alone: tail,
// cmd, agents, passwd, loadgen, zoslog and version, without the region,
// the agents, the z/VM simulator, the demo and the report, whose libraries
// (x/crypto/ssh, go3270, go-redis, html/template, TOML) make the whole
// binary 30 MB and every start of it twice as slow as a 4 MB one: each
// library's package initialisation runs in every process, and the Go
// runtime's own start-up (its itab and function tables) grows with the
// binary. A script that runs `zbridge cmd` for each command pays that start
// each time. TestLeanBuild keeps the lean build free of those libraries.
//
// The lean build runs the other commands by executing zbridge-server, the
// full build, from the directory of its own executable file (as
// os.Executable finds it, symbolic links resolved; never from $PATH), with
// the same arguments: a host with both installed runs every command as
// `zbridge COMMAND`. A lean build installed as zbridge-server by mistake
// would execute itself for ever: the environment variable leanExecVar
// marks a process the lean build started, which then refuses.

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

// serverBinary is the name of the full build beside the lean one.
const serverBinary = "zbridge-server"

// isLean says which build this is.
const isLean = true

func runRegion(args []string, stdout, stderr io.Writer) int {
	return runServer("region", args, stderr)
}
func runDemo(args []string, stdout, stderr io.Writer) int { return runServer("demo", args, stderr) }
func runReport(args []string, stdout, stderr io.Writer) int {
	return runServer("report", args, stderr)
}
func runLinuxAgent(args []string, stdout, stderr io.Writer) int {
	return runServer("linuxagent", args, stderr)
}
func runZVMSim(args []string, stdout, stderr io.Writer) int {
	return runServer("zvmsim", args, stderr)
}
func runVMAgent(args []string, stdout, stderr io.Writer) int {
	return runServer("vmagent", args, stderr)
}

// runServer replaces this process with zbridge-server COMMAND ARGS (the
// same process: its ID, signals, standard streams and environment), or
// says why it cannot.
func runServer(command string, args []string, stderr io.Writer) int {
	if v := os.Getenv(leanExecVar); v != "" {
		fmt.Fprintf(stderr, "zbridge %s: %s is the lean build too (this process was started as it by %s): install the full build as %s\n",
			command, serverBinary, v, serverBinary)
		return 2
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "zbridge %s: this is the lean build of zbridge (its clients alone), and where it runs from is unknown (%v), so %s cannot be found beside it\n",
			command, err, serverBinary)
		return 2
	}
	path := filepath.Join(filepath.Dir(self), serverBinary)
	argv := append([]string{path, command}, args...)
	err = syscall.Exec(path, argv, append(os.Environ(), leanExecVar+"="+self))
	// Exec returns only when it failed.
	fmt.Fprintf(stderr, "zbridge %s: this is the lean build of zbridge (its clients alone); %s runs the full build, %s, which could not be run: %v\n",
		command, command, path, err)
	return 2
}
