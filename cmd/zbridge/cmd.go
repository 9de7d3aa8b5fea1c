package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/zbridge/zbridge/commands"
	"github.com/zbridge/zbridge/commands/cmdpattern"
	"github.com/zbridge/zbridge/protocol"
	"github.com/zbridge/zbridge/protocol/client"
)

// exitNotRun is cmd's exit status when the command did not run to its end
// (refused, unknown target, timed out, ...): like ssh's 255.
const exitNotRun = 255

func runCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("zbridge cmd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: zbridge cmd [flags] TARGET -- COMMAND...\n\nTARGET: linux:NAME, linux:ADDR=IP, zvm:SYSTEM or region\n\nflags:")
		fs.PrintDefaults()
	}
	var cf clientFlags
	cf.register(fs)
	addr := fs.String("commands", defaultCommands, "the region's COMMANDS address")
	timeout := fs.Duration("timeout", 0, "the command's timeout (0: the region's default)")
	asJSON := fs.Bool("json", false, "print the whole response as one JSON object")
	id := fs.String("id", "", "command ID (default: generated)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	rest := fs.Args()
	if len(rest) < 1 {
		fs.Usage()
		return 2
	}
	target := rest[0]
	rest = rest[1:]
	if len(rest) > 0 && rest[0] == "--" {
		rest = rest[1:]
	}
	if _, err := commands.ParseTarget(target); err != nil {
		fmt.Fprintln(stderr, "zbridge cmd:", err)
		return 2
	}
	line := cmdpattern.Quote(rest...) // what the Linux agent (and /bin/sh) splits into exactly rest
	if t, _ := commands.ParseTarget(target); t.Kind != commands.KindLinux {
		line = joinPlain(rest) // CP and region commands are plain words
	}
	cfg, err := cf.config(*addr)
	if err != nil {
		fmt.Fprintln(stderr, "zbridge cmd:", err)
		return 2
	}
	if *id == "" {
		var b [6]byte
		rand.Read(b[:])
		*id = "cli-" + hex.EncodeToString(b[:])
	}
	ctx, stop := commandSignalContext()
	defer stop()
	return command(ctx, cfg, client.CommandRequest{ID: *id, Target: target, Command: line, Timeout: *timeout},
		*asJSON, stdout, stderr)
}

func joinPlain(words []string) string {
	s := ""
	for i, w := range words {
		if i > 0 {
			s += " "
		}
		s += w
	}
	return s
}

// jsonResponse is what --json prints.
type jsonResponse struct {
	ID         string          `json:"id"`
	Target     string          `json:"target"`
	Command    string          `json:"command"`
	RC         *int            `json:"rc,omitempty"`
	Signal     string          `json:"signal,omitempty"`
	Truncated  bool            `json:"truncated"`
	DurationMS int64           `json:"duration_ms"`
	Lines      []jsonLine      `json:"lines"`
	Error      *protocol.Error `json:"error,omitempty"`
	RetryAfter int             `json:"retry_after,omitempty"`
}

type jsonLine struct {
	Stream string `json:"stream"`
	Text   string `json:"text,omitempty"`
	Data   []byte `json:"data,omitempty"`
	EOL    bool   `json:"eol"`
}

// command runs one command, printing stdout lines to stdout and stderr lines
// to stderr as they arrive (or all of it as JSON), and returns the exit
// status: the remote return code, or exitNotRun.
func command(ctx context.Context, cfg client.Config, r client.CommandRequest, asJSON bool, stdout, stderr io.Writer) int {
	// The command goes with the logon, without waiting for the accept.
	c, pending, err := client.DialCommand(ctx, cfg, r)
	if err != nil {
		fmt.Fprintln(stderr, "zbridge cmd:", err)
		return exitNotRun
	}
	defer c.Close()
	o, e := bufio.NewWriter(stdout), bufio.NewWriter(stderr)
	defer o.Flush()
	defer e.Flush()
	resp := jsonResponse{ID: r.ID, Target: r.Target, Command: r.Command, Lines: []jsonLine{}}
	out := func(f *protocol.Frame) {
		if asJSON {
			resp.Lines = append(resp.Lines, jsonLine{Stream: f.Stream, Text: f.Text, Data: f.Data, EOL: f.EOL})
			return
		}
		// Flush the other stream first, so that a terminal showing both
		// sees the lines in the order they arrived.
		w := o
		if f.Stream == "stderr" {
			w = e
			o.Flush()
		} else {
			e.Flush()
		}
		if f.Data != nil {
			w.Write(f.Data)
		} else {
			w.WriteString(f.Text)
		}
		if f.EOL {
			w.WriteByte('\n')
		}
		if c.Buffered() == 0 {
			w.Flush()
		}
	}
	reply, err := pending.Wait(ctx, out)
	var ce *client.CommandError
	switch {
	case err == nil:
	case errors.As(err, &ce):
	default:
		fmt.Fprintln(stderr, "zbridge cmd:", err)
		return exitNotRun
	}
	lctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	c.Logoff(lctx)
	cancel()
	if asJSON {
		resp.RC, resp.Signal, resp.Truncated, resp.DurationMS = reply.RC, reply.Signal, reply.Truncated, reply.DurationMS
		resp.Error, resp.RetryAfter = reply.Error, reply.RetryAfter
		b, _ := json.MarshalIndent(resp, "", "  ")
		o.Write(append(b, '\n'))
	}
	if ce != nil {
		if !asJSON {
			o.Flush()
			fmt.Fprintf(e, "zbridge cmd: %s: %s (%s)\n", r.Target, ce.Message, ce.Code)
			if ce.RetryAfter > 0 {
				fmt.Fprintf(e, "zbridge cmd: retry after %v\n", ce.RetryAfter)
			}
		}
		return exitNotRun
	}
	if reply.Truncated && !asJSON {
		o.Flush()
		fmt.Fprintln(e, "zbridge cmd: output truncated at the output cap")
	}
	if reply.RC == nil {
		return exitNotRun
	}
	return *reply.RC
}

// runAgents prints the region's AGENTS display.
func runAgents(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("zbridge agents", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf clientFlags
	cf.register(fs)
	addr := fs.String("commands", defaultCommands, "the region's COMMANDS address")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := cf.config(*addr)
	if err != nil {
		fmt.Fprintln(stderr, "zbridge agents:", err)
		return 2
	}
	ctx, stop := signalContext()
	defer stop()
	return command(ctx, cfg, client.CommandRequest{Target: "region", Command: "AGENTS"}, false, stdout, stderr)
}
