package report

import (
	"encoding/csv"
	"io"
	"strconv"
	"strings"
	"time"
)

// componentHeader and outageHeader are the CSV files' first records.
var (
	componentHeader = []string{"from", "to", "component", "monitored_from", "monitored_s", "up_s", "down_s",
		"unknown_s", "availability_pct", "outages", "longest_s", "mttr_s", "mtbf_s", "changes", "repeats",
		"final_status"}
	outageHeader = []string{"component", "n", "start", "end", "duration_s", "began", "open", "clipped_start",
		"cause", "end_cause", "down_event", "up_event", "detail", "end_detail"}
)

// WriteCSV writes r as CSV (RFC 4180), one record per component after a
// header record (componentHeader): the period, the component, and its
// figures with durations in seconds (decimal, to the nanosecond) and
// availability in percent truncated to six decimals. A component with
// nothing monitored has an empty availability_pct; one without outages
// empty longest_s, mttr_s and mtbf_s. Times are RFC 3339 in UTC. A name
// that a spreadsheet would take for a formula (beginning with =, +, -, @,
// tab or CR) is written with a ' before it, as OWASP's "CSV Injection"
// advises; so are such causes and details in WriteOutagesCSV.
func WriteCSV(w io.Writer, r Report) error {
	cw := csv.NewWriter(w)
	cw.Write(componentHeader)
	for i := range r.Components {
		c := &r.Components[i]
		pct := fmtPct(c, 6)
		if pct == "-" {
			pct = ""
		}
		mean := func(d time.Duration) string {
			if len(c.Outages) == 0 {
				return ""
			}
			return secs(d)
		}
		cw.Write([]string{csvTimeOf(r.From), csvTimeOf(r.To), cell(c.Component), csvTimeOf(c.MonitoredFrom),
			secs(c.Monitored), secs(c.Up), secs(c.Down), secs(c.Unknown), pct, strconv.Itoa(len(c.Outages)),
			mean(c.Longest), mean(c.MTTR), mean(c.MTBF), strconv.Itoa(c.Changes), strconv.Itoa(c.Repeats),
			string(c.Final)})
	}
	cw.Flush()
	return cw.Error()
}

// WriteOutagesCSV writes the outages of r as CSV, one record per outage
// after a header record (outageHeader), component by component in order:
// n numbers a component's outages from 1 as WriteText does; open and
// clipped_start are true or false; down_event and up_event are event IDs
// (MS-SEQ), empty when none.
func WriteOutagesCSV(w io.Writer, r Report) error {
	cw := csv.NewWriter(w)
	cw.Write(outageHeader)
	for i := range r.Components {
		c := &r.Components[i]
		for j := range c.Outages {
			o := &c.Outages[j]
			up := ""
			if !o.UpEvent.IsZero() {
				up = o.UpEvent.String()
			}
			down := ""
			if !o.DownEvent.IsZero() {
				down = o.DownEvent.String()
			}
			cw.Write([]string{cell(c.Component), strconv.Itoa(j + 1), csvTimeOf(o.Start), csvTimeOf(o.End),
				secs(o.Duration()), csvTimeOf(o.Began), strconv.FormatBool(o.Open),
				strconv.FormatBool(o.ClippedStart), cell(o.Cause), cell(o.EndCause), down, up, cell(o.Detail), cell(o.EndDetail)})
		}
	}
	cw.Flush()
	return cw.Error()
}

// secs formats d in seconds, exactly: "90", "0.5", "3600.000000001".
func secs(d time.Duration) string {
	s := strconv.FormatInt(int64(d/time.Second), 10)
	if ns := d % time.Second; ns != 0 {
		f := strconv.FormatInt(int64(ns)+int64(time.Second), 10)[1:] // 9 digits
		for f[len(f)-1] == '0' {
			f = f[:len(f)-1]
		}
		s += "." + f
	}
	return s
}

// csvTimeOf formats t as RFC 3339 in UTC; "" for the zero time.
func csvTimeOf(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(csvTime)
}

// cell returns s, with a ' before it when a spreadsheet would take it for
// a formula.
func cell(s string) string {
	if s != "" && strings.IndexByte("=+-@\t\r", s[0]) >= 0 {
		return "'" + s
	}
	return s
}
