//go:build !lean

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/zbridge/zbridge/commands"
	"github.com/zbridge/zbridge/protocol"
	"github.com/zbridge/zbridge/protocol/client"
	"github.com/zbridge/zbridge/protocol/lx"
)

// demoOut is the demo's standard output, written from several goroutines:
// each call writes whole lines at once, so that a command's response is
// not split by an event line.
type demoOut struct {
	mu sync.Mutex // guards w
	w  io.Writer
}

func (o *demoOut) printf(format string, args ...any) {
	o.write(fmt.Appendf(nil, format, args...))
}

func (o *demoOut) write(b []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.w.Write(b)
}

// demoLabels label the tail's lines by the event's source.
var demoLabels = map[protocol.Source]string{
	protocol.SourceSyslog:     "syslog:      ",
	protocol.SourceZVMConsole: "z/VM console:",
	protocol.SourceZVMEvent:   "z/VM event:  ",
	protocol.SourceAgent:      "agent:       ",
	protocol.SourceRegion:     "region:      ",
	protocol.SourceAudit:      "audit:       ",
}

// demoEventLine appends the tail's line for e: its source's label, its ID
// and the text layout (appendText), the message ID once where the text
// starts with it (the region's ZBRnnnx messages). A z/VM console message
// from a user keeps its MSG FROM USER (or WNG, SMSG) header, as the
// console showed it.
// Every field is escaped as in the text layout.
func demoEventLine(b []byte, e *protocol.Event) []byte {
	label, ok := demoLabels[e.Source]
	if !ok {
		label = string(e.Source) + ":"
	}
	b = append(b, label...)
	b = append(b, ' ')
	b = e.ID.Append(b)
	b = append(b, "  "...)
	if e.Source != protocol.SourceZVMConsole {
		if e.MsgID != "" && strings.HasPrefix(e.Text, e.MsgID+" ") {
			// The region's own messages start with their ID.
			short := *e
			short.MsgID = ""
			e = &short
		}
		return appendText(b, e)
	}
	b = e.Time.AppendFormat(b, time.RFC3339)
	b = append(b, ' ')
	b = lx.AppendEscaped(b, e.Origin.System)
	b = append(b, ' ')
	if e.User != "" && e.Type != "" && e.Type != "CP" {
		b = lx.AppendEscaped(b, e.Type)
		b = append(b, " FROM "...)
		b = lx.AppendEscaped(b, e.User)
		b = append(b, ": "...)
	}
	return lx.AppendEscaped(b, e.Text)
}

// demoRetryFor is how long a demo command is retried while its target is
// not reachable yet (the z/VM agent still logging on, say).
const demoRetryFor = 30 * time.Second

// command runs line on target through the region's COMMANDS port at addr,
// as a client would, and prints the response as one block: a header
// "title  [rc N, D ms]" (or why it did not run) and the output lines
// indented, standard error marked. While the target is unknown or not
// connected yet it tries again, for demoRetryFor.
func (d *demo) command(ctx context.Context, addr, target, line, title string) {
	deadline := time.Now().Add(demoRetryFor)
	for {
		lines, reply, err := demoRun(ctx, addr, target, line)
		var ce *client.CommandError
		if errors.As(err, &ce) && demoRetryable(ce.Code) && time.Now().Before(deadline) {
			select {
			case <-ctx.Done():
				return
			case <-time.After(250 * time.Millisecond):
			}
			continue
		}
		if ctx.Err() != nil {
			return
		}
		var b strings.Builder
		b.WriteString(title)
		switch {
		case ce != nil:
			fmt.Fprintf(&b, "  [not run: %s: %s]", ce.Code, ce.Message)
		case err != nil:
			fmt.Fprintf(&b, "  [not run: %v]", err)
		case reply.RC != nil:
			fmt.Fprintf(&b, "  [rc %d, %d ms]", *reply.RC, reply.DurationMS)
		case reply.Signal != "":
			fmt.Fprintf(&b, "  [killed by %s, %d ms]", reply.Signal, reply.DurationMS)
		}
		b.WriteByte('\n')
		for _, l := range lines {
			b.WriteString("    ")
			b.WriteString(l)
			b.WriteByte('\n')
		}
		d.out.printf("%s", b.String())
		return
	}
}

// demoRetryable reports whether a command refused with code may succeed
// once the demo's agents are up.
func demoRetryable(code string) bool {
	switch code {
	case commands.CodeUnknown, commands.CodeNotConnected, commands.CodeBusy:
		return true
	}
	return false
}

// demoRun runs one command and returns its output lines (escaped, those
// of standard error marked) and the region's reply.
func demoRun(ctx context.Context, addr, target, line string) ([]string, *protocol.Frame, error) {
	c, err := client.Dial(ctx, client.Config{Addr: addr, Client: "demo"})
	if err != nil {
		return nil, nil, err
	}
	defer c.Close()
	var lines []string
	var partial [2][]byte // standard output's and error's line so far
	end := func(i int) {
		l := lx.AppendEscaped(nil, string(partial[i]))
		if i == 1 {
			l = append([]byte("(stderr) "), l...)
		}
		lines = append(lines, string(l))
		partial[i] = partial[i][:0]
	}
	reply, err := c.Command(ctx, client.CommandRequest{Target: target, Command: line}, func(f *protocol.Frame) {
		i := 0
		if f.Stream == "stderr" {
			i = 1
		}
		if f.Data != nil {
			partial[i] = append(partial[i], f.Data...)
		} else {
			partial[i] = append(partial[i], f.Text...)
		}
		if f.EOL {
			end(i)
		}
	})
	for i := range partial {
		if len(partial[i]) > 0 {
			end(i)
		}
	}
	if err == nil {
		lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		c.Logoff(lctx)
		cancel()
	}
	return lines, reply, err
}
