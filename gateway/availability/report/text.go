package report

import (
	"bufio"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/zbridge/zbridge/protocol"
)

// WriteText writes r as a fixed-width report: the period, a table with a
// line per component (monitored time, availability, outages, downtime,
// longest outage, MTTR, MTBF), then each component's outages with their
// start, end, duration and causes, and a footnote with the definitions.
// Times are UTC; durations H:MM:SS. Control characters in names and
// details are printed as '?'. It returns the first error writing to w.
func WriteText(w io.Writer, r Report) error {
	bw := bufio.NewWriter(w)
	p := func(ss ...string) {
		for _, s := range ss {
			bw.WriteString(s)
		}
	}
	p("ZBRIDGE AVAILABILITY REPORT\n")
	p("PERIOD ", fmtTime(r.From), " TO ", fmtTime(r.To), " UTC  (", fmtDur(r.Period()), ")  ",
		strings.ToUpper(plural(len(r.Components), "component")), "\n\n")
	if len(r.Components) == 0 {
		p("No component has a record before the end of the period.\n")
		return bw.Flush()
	}

	sum := table{header: []string{"COMPONENT", "MONITORED", "AVAIL %", "OUTAGES", "DOWNTIME", "LONGEST", "MTTR", "MTBF", "NOTES"},
		right: []bool{false, true, true, true, true, true, true, true, false}}
	for i := range r.Components {
		c := &r.Components[i]
		sum.add(clean(c.Component), fmtDur(c.Monitored), fmtPct(c, 3), itoa(len(c.Outages)), fmtDur(c.Down),
			fmtMean(c, c.Longest), fmtMean(c, c.MTTR), fmtMean(c, c.MTBF), notes(c))
	}
	sum.write(bw, "")

	for i := range r.Components {
		c := &r.Components[i]
		p("\n", clean(c.Component), "\n")
		if !c.Known() {
			p("  not monitored: no status known within the period\n")
			continue
		}
		p("  availability ", fmtPct(c, 3), "% of ", fmtDur(c.Monitored), " monitored; ",
			plural(len(c.Outages), "outage"), ", ", fmtDur(c.Down), " down; ",
			plural(c.Changes, "change"), ", ", plural(c.Repeats, "repeat"), "\n")
		if c.Unknown > 0 {
			p("  monitored from its first record, ", fmtTime(c.MonitoredFrom), "; not known for ", fmtDur(c.Unknown), " before\n")
		}
		if len(c.Outages) == 0 {
			p("  no outages\n")
			continue
		}
		t := table{header: []string{"#", "START", "END", "DURATION", "CAUSE", "ENDED BY", "NOTE"},
			right: []bool{true, false, false, true, false, false, false}}
		for j := range c.Outages {
			o := &c.Outages[j]
			end, note := clean(o.EndCause), ""
			if o.Open {
				end, note = "-", "OPEN: STILL DOWN, COUNTED TO THE END"
			}
			if o.ClippedStart {
				note = join(note, "BEGAN "+fmtTime(o.Began))
			}
			t.add(itoa(j+1), fmtTime(o.Start), fmtTime(o.End), fmtDur(o.Duration()), orDash(clean(o.Cause)), orDash(end), note)
			var sub []string
			if o.Detail != "" {
				sub = append(sub, "down: "+clean(o.Detail))
			}
			if o.EndDetail != "" {
				sub = append(sub, "up:   "+clean(o.EndDetail))
			}
			t.sub = append(t.sub, sub)
		}
		t.write(bw, "  ")
	}
	p("\nTimes are UTC; durations H:MM:SS. AVAIL % = up time / monitored time, truncated. A component's time\n",
		"before its first record, when no record before the period gives its status, is not monitored\n",
		"(PARTLY UNKNOWN). Outages are clipped to the period (DOWN AT START); one still open is counted to its\n",
		"end (DOWN AT END). MTTR = downtime / outages; MTBF = up time / outages. CAUSE and ENDED BY are the\n",
		"change identifiers of the DOWN record and of the UP record that ended the outage.\n")
	return bw.Flush()
}

// notes are the summary line's remarks on c.
func notes(c *ComponentReport) string {
	var n string
	switch {
	case !c.Known():
		n = "NOT MONITORED"
	case c.Unknown > 0:
		n = "PARTLY UNKNOWN"
	}
	if len(c.Outages) > 0 && c.Outages[0].ClippedStart {
		n = join(n, "DOWN AT START")
	}
	if c.Final == protocol.StatusDown {
		n = join(n, "DOWN AT END")
	}
	return n
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// A table is a fixed-width table: columns as wide as their widest cell,
// two spaces apart, each row optionally followed by lines of its own
// (sub) under its second column.
type table struct {
	header []string
	right  []bool // right-aligned columns
	rows   [][]string
	sub    [][]string
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) write(w *bufio.Writer, indent string) {
	width := make([]int, len(t.header))
	for _, row := range append([][]string{t.header}, t.rows...) {
		for i, s := range row {
			width[i] = max(width[i], utf8.RuneCountInString(s))
		}
	}
	line := func(row []string) {
		var b strings.Builder
		b.WriteString(indent)
		for i, s := range row {
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(s))
			if i > 0 {
				b.WriteString("  ")
			}
			if t.right[i] {
				b.WriteString(pad + s)
			} else if i < len(row)-1 {
				b.WriteString(s + pad)
			} else {
				b.WriteString(s)
			}
		}
		w.WriteString(strings.TrimRight(b.String(), " ") + "\n")
	}
	line(t.header)
	dashes := make([]string, len(t.header))
	for i := range dashes {
		dashes[i] = strings.Repeat("-", width[i])
	}
	line(dashes)
	subIndent := indent + strings.Repeat(" ", width[0]+2)
	for i, row := range t.rows {
		line(row)
		if i < len(t.sub) {
			for _, s := range t.sub[i] {
				w.WriteString(subIndent + s + "\n")
			}
		}
	}
}
