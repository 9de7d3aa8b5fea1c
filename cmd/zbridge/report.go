//go:build !lean

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/zbridge/zbridge/gateway/availability/report"
	"github.com/zbridge/zbridge/protocol"
	"github.com/zbridge/zbridge/protocol/client"
)

// runReport is `zbridge report`: an availability report over a period,
// from the records of the region's availability ledger, which it reads
// with the region command AVAIL RECORDS (a role must grant it: region
// commands ["AVAIL **"]).
func runReport(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("zbridge report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, `usage: zbridge report --from DATE --to DATE [--component GLOB] [--format text|csv|outages-csv|html] [flags]

An availability report from the region's availability ledger: per component,
availability within the period, outages, total and longest downtime, MTTR,
MTBF, and each outage with its cause. DATE is 2026-12-01 (midnight UTC) or
an RFC 3339 time (2026-12-01T08:00:00Z); --to defaults to now.

flags:`)
		fs.PrintDefaults()
	}
	var cf clientFlags
	cf.register(fs)
	addr := fs.String("commands", defaultCommands, "the region's COMMANDS address")
	fromS := fs.String("from", "", "start of the period (required)")
	toS := fs.String("to", "", "end of the period (default: now)")
	comp := fs.String("component", "", "only components matching this glob (* and ?)")
	format := fs.String("format", "text", "text, csv (one row per component), outages-csv (one row per outage) or html")
	outFile := fs.String("out", "", "write the report to this file (default: stdout)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	fail := func(code int, err error) int {
		fmt.Fprintln(stderr, "zbridge report:", err)
		return code
	}
	if fs.NArg() > 0 {
		return fail(2, fmt.Errorf("unexpected arguments %q", fs.Args()))
	}
	now := time.Now().UTC()
	from, err := parseReportTime(*fromS, time.Time{})
	if err != nil {
		return fail(2, fmt.Errorf("--from: %w", err))
	}
	to, err := parseReportTime(*toS, now)
	if err != nil {
		return fail(2, fmt.Errorf("--to: %w", err))
	}
	if !from.Before(to) {
		return fail(2, errors.New("--from must be before --to"))
	}
	write, ok := reportWriters[*format]
	if !ok {
		return fail(2, fmt.Errorf("--format %q: text, csv, outages-csv or html", *format))
	}
	cfg, err := cf.config(*addr)
	if err != nil {
		return fail(2, err)
	}
	ctx, stop := signalContext()
	defer stop()
	recs, err := fetchStatusRecords(ctx, cfg)
	if err != nil {
		return fail(1, err)
	}
	r := report.Compute(recs, from, to, report.Options{Component: *comp, Now: now})
	w := stdout
	if *outFile != "" {
		f, err := os.Create(*outFile)
		if err != nil {
			return fail(1, err)
		}
		defer f.Close()
		w = f
	}
	bw := bufio.NewWriter(w)
	if err := write(bw, r); err != nil {
		return fail(1, err)
	}
	if err := bw.Flush(); err != nil {
		return fail(1, err)
	}
	return 0
}

var reportWriters = map[string]func(io.Writer, report.Report) error{
	"text": report.WriteText, "csv": report.WriteCSV, "outages-csv": report.WriteOutagesCSV, "html": report.WriteHTML,
}

// parseReportTime reads a date (midnight UTC) or an RFC 3339 time; empty
// gives def, or an error when def is zero.
func parseReportTime(s string, def time.Time) (time.Time, error) {
	switch {
	case s == "" && def.IsZero():
		return time.Time{}, errors.New("required")
	case s == "":
		return def, nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither 2006-01-02 nor an RFC 3339 time", s)
	}
	return t.UTC(), nil
}

// fetchStatusRecords reads every record of the region's ledger, a page at
// a time.
func fetchStatusRecords(ctx context.Context, cfg client.Config) ([]protocol.StatusRecord, error) {
	c, err := client.Dial(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	var all []protocol.StatusRecord
	var after uint64
	const page = 1000
	for {
		var lines []string
		_, err := c.Command(ctx, client.CommandRequest{Target: "region", Command: fmt.Sprintf("AVAIL RECORDS AFTER %d MAX %d", after, page)},
			func(f *protocol.Frame) { lines = append(lines, f.Text) })
		if err != nil {
			return nil, fmt.Errorf("reading the region's status records: %w", err)
		}
		if len(lines) == 0 || !strings.HasPrefix(lines[0], "ZBR018I ") {
			return nil, fmt.Errorf("the region's answer to AVAIL RECORDS does not start with its ZBR018I line: %.80q", strings.Join(lines, " "))
		}
		for _, l := range lines[1:] {
			var r protocol.StatusRecord
			if err := json.Unmarshal([]byte(l), &r); err != nil {
				return nil, fmt.Errorf("a status record from the region: %w", err)
			}
			if r.Seq <= after {
				return nil, fmt.Errorf("the region's status records are out of order (%d after %d)", r.Seq, after)
			}
			after = r.Seq
			all = append(all, r)
		}
		if len(lines)-1 < page {
			break
		}
	}
	lctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	c.Logoff(lctx)
	cancel()
	return all, nil
}
