package report

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/zbridge/zbridge/protocol"
)

//go:embed report.html.tmpl
var pageText string

// WriteHTML writes r as one self-contained HTML page (no scripts, no
// external resources; it is also well-formed XML): the period, an overview
// chart with a timeline per component, a summary table, then a section per
// component with its figures, its timeline and its outages. A timeline is
// the period as a horizontal bar: green while up, red while down (dark red
// for an outage still open at the end), grey while the status is unknown;
// each part has a tooltip (an SVG title) with its times, duration and
// causes. An outage too short to see is drawn a bar's minimum width so
// that none is lost. Every name and detail is escaped (html/template);
// the output depends only on r.
//
// The template is parsed at each call (a report is written once a day, or
// by hand), rather than when the program starts, which every zbridge
// command would pay for.
func WriteHTML(w io.Writer, r Report) error {
	page, err := template.New("report").Parse(pageText)
	if err != nil {
		return fmt.Errorf("report: the HTML template: %w", err)
	}
	return page.Execute(w, newView(&r))
}

// Chart geometry, in the SVG's pixels. A bar is drawn in its own viewBox
// of barUnits across, so that times map to it without rounding per chart.
const (
	chartWidth = 960
	rowHeight  = 24
	barHeight  = 16
	chartTop   = 8
	chartPad   = 30     // at either end, room for the first and last tick labels
	labelChar  = 7      // the width of a label's character, roughly, in pixels
	maxLabel   = 36     // characters of a label shown; the title has the rest
	barUnits   = 1000.0 // the bars' viewBox width, as report.html.tmpl has it
	minBar     = 1.5    // barUnits: the least width of an outage
)

// view is what the template shows.
type view struct {
	Title, Period string
	Overview      chart
	Components    []componentView
}

type componentView struct {
	N                                           int // 1, 2, …: the section's id is cN
	Name                                        string
	Monitored, Avail, Down, Longest, MTTR, MTBF string
	Outages, Changes, Repeats                   int
	Final                                       string // up, down, unknown: a class
	MonitoredFrom                               string // "" when from the period's start
	Chart                                       chart
	List                                        []outageView
}

type outageView struct {
	N                         int
	Start, End, Duration      string
	Cause, EndCause           string
	Detail, EndDetail         string
	Open, ClippedStart        bool
	Began, DownEvent, UpEvent string
}

// A chart is rows of bars over a common time axis.
type chart struct {
	Width, Height   int
	LabelX, BarX    int // where labels end (text-anchor end) and bars begin
	BarWidth        int
	BarHeight       int
	AxisY, TickText int
	Rows            []chartRow
	Ticks           []tick
}

type chartRow struct {
	Y     int
	Label string // "" for no label
	Name  string // the full name, the label's title
	Href  string
	Parts []part
}

// A part is a rectangle of a bar, in barUnits.
type part struct {
	X, W  string
	Class string // up, down, open, unk
	Title string
}

type tick struct {
	X     string
	Label string
}

func newView(r *Report) *view {
	v := &view{
		Title:  "Availability " + fmtTime(r.From) + " to " + fmtTime(r.To) + " UTC",
		Period: fmtTime(r.From) + " to " + fmtTime(r.To) + " UTC (" + fmtDur(r.Period()) + "), " + plural(len(r.Components), "component"),
	}
	labelW := 0
	for i := range r.Components {
		labelW = max(labelW, min(utf8.RuneCountInString(r.Components[i].Component), maxLabel+1))
	}
	v.Overview = newChart(r, labelW*labelChar+12, len(r.Components))
	for i := range r.Components {
		c := &r.Components[i]
		name := clean(c.Component)
		parts := bar(r, c, name)
		label := name
		if utf8.RuneCountInString(label) > maxLabel {
			label = string([]rune(label)[:maxLabel]) + "…"
		}
		row := &v.Overview.Rows[i]
		row.Label, row.Name, row.Href, row.Parts = label, name, "#c"+strconv.Itoa(i+1), parts

		cv := componentView{N: i + 1, Name: name, Monitored: fmtDur(c.Monitored), Avail: fmtPct(c, 3),
			Down: fmtDur(c.Down), Longest: fmtMean(c, c.Longest), MTTR: fmtMean(c, c.MTTR), MTBF: fmtMean(c, c.MTBF),
			Outages: len(c.Outages), Changes: c.Changes, Repeats: c.Repeats, Final: finalClass(c.Final),
			Chart: newChart(r, 0, 1)}
		if c.Known() && c.MonitoredFrom.After(r.From) {
			cv.MonitoredFrom = fmtTime(c.MonitoredFrom)
		}
		cv.Chart.Rows[0].Parts = parts
		for j := range c.Outages {
			o := &c.Outages[j]
			ov := outageView{N: j + 1, Start: fmtTime(o.Start), End: fmtTime(o.End), Duration: fmtDur(o.Duration()),
				Cause: clean(o.Cause), EndCause: clean(o.EndCause), Detail: clean(o.Detail), EndDetail: clean(o.EndDetail),
				Open: o.Open, ClippedStart: o.ClippedStart, Began: fmtTime(o.Began)}
			if !o.DownEvent.IsZero() {
				ov.DownEvent = o.DownEvent.String()
			}
			if !o.UpEvent.IsZero() {
				ov.UpEvent = o.UpEvent.String()
			}
			cv.List = append(cv.List, ov)
		}
		v.Components = append(v.Components, cv)
	}
	return v
}

func finalClass(s protocol.Status) string {
	switch s {
	case protocol.StatusUp:
		return "up"
	case protocol.StatusDown:
		return "down"
	}
	return "unknown"
}

// newChart lays out a chart of n rows with labelW pixels for labels.
func newChart(r *Report, labelW, n int) chart {
	c := chart{Width: chartWidth, BarX: max(labelW, chartPad)}
	c.LabelX = c.BarX - 6
	c.BarWidth, c.BarHeight = chartWidth-c.BarX-chartPad, barHeight
	c.Rows = make([]chartRow, n)
	for i := range c.Rows {
		c.Rows[i].Y = chartTop + i*rowHeight
	}
	c.AxisY = chartTop + n*rowHeight
	c.TickText = c.AxisY + 14
	c.Height = c.TickText + 6
	ts, step := ticks(r.From, r.To)
	for _, t := range ts {
		x := float64(c.BarX) + float64(t.Sub(r.From))/float64(r.Period())*float64(c.BarWidth)
		c.Ticks = append(c.Ticks, tick{X: num(x), Label: tickLabel(t, step)})
	}
	return c
}

// bar returns the parts of c's timeline: grey until its status is known,
// green from then on, and a red part over it for each outage.
func bar(r *Report, c *ComponentReport, name string) []part {
	period := r.Period()
	if period <= 0 {
		return nil
	}
	at := func(t time.Time) float64 { return float64(t.Sub(r.From)) / float64(period) * barUnits }
	var ps []part
	if !c.Known() {
		return []part{{X: "0", W: num(barUnits), Class: "unk", Title: name + ": no status known in the period"}}
	}
	known := at(c.MonitoredFrom)
	if c.MonitoredFrom.After(r.From) {
		ps = append(ps, part{X: "0", W: num(known), Class: "unk",
			Title: name + ": no status known " + fmtTime(r.From) + " to " + fmtTime(c.MonitoredFrom)})
	}
	ps = append(ps, part{X: num(known), W: num(barUnits - known), Class: "up",
		Title: name + ": availability " + fmtPct(c, 3) + "%, up " + fmtDur(c.Up) + " of " + fmtDur(c.Monitored) +
			" monitored, " + plural(len(c.Outages), "outage")})
	for j := range c.Outages {
		o := &c.Outages[j]
		x, w := at(o.Start), at(o.End)-at(o.Start)
		if w < minBar {
			w = minBar
			x = min(x, barUnits-minBar)
		}
		p := part{X: num(x), W: num(w), Class: "down", Title: outageTitle(name, j+1, o)}
		if o.Open {
			p.Class = "open"
		}
		ps = append(ps, p)
	}
	return ps
}

func outageTitle(name string, n int, o *Outage) string {
	s := name + " outage " + strconv.Itoa(n) + ": " + fmtTime(o.Start) + " to " + fmtTime(o.End) +
		" UTC (" + fmtDur(o.Duration()) + ")"
	if o.ClippedStart {
		s += ", began " + fmtTime(o.Began)
	}
	s += "\ncause: " + orDash(clean(o.Cause))
	if o.Detail != "" {
		s += " — " + clean(o.Detail)
	}
	if o.Open {
		return s + "\nstill down at the end of the period"
	}
	s += "\nended by: " + orDash(clean(o.EndCause))
	if o.EndDetail != "" {
		s += " — " + clean(o.EndDetail)
	}
	return s
}

// num formats a coordinate.
func num(f float64) string { return strconv.FormatFloat(f, 'f', 2, 64) }

// tickSteps are the axis's steps, the first one that gives at most
// maxTicks ticks is used.
var tickSteps = []time.Duration{
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour,
	24 * time.Hour, 2 * 24 * time.Hour, 7 * 24 * time.Hour, 14 * 24 * time.Hour, 28 * 24 * time.Hour,
	91 * 24 * time.Hour, 365 * 24 * time.Hour,
}

const maxTicks = 13

// ticks returns the axis's tick times within [from, to], on whole steps
// of UTC time, and the step.
func ticks(from, to time.Time) ([]time.Time, time.Duration) {
	period := to.Sub(from)
	if period <= 0 {
		return nil, 0
	}
	step := tickSteps[len(tickSteps)-1]
	for _, s := range tickSteps {
		if period/s < maxTicks {
			step = s
			break
		}
	}
	step = max(step, period/maxTicks)
	var ts []time.Time
	t := from.Truncate(step)
	if t.Before(from) {
		t = t.Add(step)
	}
	for ; !t.After(to); t = t.Add(step) {
		ts = append(ts, t)
	}
	return ts, step
}

// tickLabel labels a tick: the time of day, the date at midnight and when
// the ticks are days apart, with the year when they are months apart.
func tickLabel(t time.Time, step time.Duration) string {
	switch {
	case step >= 28*24*time.Hour:
		return t.Format("2006-01-02")
	case step >= 24*time.Hour || t.Hour() == 0 && t.Minute() == 0:
		return t.Format("Jan 2")
	}
	return t.Format("15:04")
}
