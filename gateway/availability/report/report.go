package report

import (
	"cmp"
	"slices"
	"time"

	"github.com/zbridge/zbridge/protocol"
)

// MaxPeriod is the longest period Compute reports on; a longer one is cut
// to it. It keeps every sum of durations well inside time.Duration.
const MaxPeriod = 100 * 366 * 24 * time.Hour

// Options are Compute's choices beyond the period.
type Options struct {
	// Component is a glob (protocol.Glob: * and ?, ASCII case-insensitive)
	// that a component's name must match; empty selects every component.
	Component string
	// Now, when set and before the period's end, ends the period: a report
	// on a day still under way counts up to Now, not to midnight.
	Now time.Time
}

// A Report is the availability of the components over one period.
type Report struct {
	// From and To are the period, [From, To), in UTC: To is the end used,
	// which Options.Now or MaxPeriod may have brought before the one asked
	// for, and never before From.
	From, To time.Time
	// Components are the components with a record before To that the
	// filter selects, ordered by name.
	Components []ComponentReport
}

// Period returns the length of the report's period.
func (r *Report) Period() time.Duration { return r.To.Sub(r.From) }

// A ComponentReport is one component's availability over the period. The
// package documentation defines each figure.
type ComponentReport struct {
	Component string
	// MonitoredFrom is when the component's status became known: the
	// period's start when a record before it says, else the time of the
	// component's first record (zero when none is before To).
	MonitoredFrom time.Time
	// Monitored = Up + Down; Unknown = the period − Monitored.
	Monitored, Up, Down, Unknown time.Duration
	// Availability is Up / Monitored in percent (0 to 100), or -1 when
	// nothing was monitored.
	Availability float64
	// Outages are the outages that overlap the period, in order.
	Outages []Outage
	// Longest is the longest outage's (clipped) duration; MTTR = Down / N
	// and MTBF = Up / N for N outages; all 0 when there is none.
	Longest, MTTR, MTBF time.Duration
	// Changes counts the records within the period that changed the
	// status, Repeats those that repeated it.
	Changes, Repeats int
	// Final is the status at the period's end ("" when unknown).
	Final protocol.Status
}

// Known reports whether any of the component's time in the period was
// monitored (else its Availability is -1).
func (c *ComponentReport) Known() bool { return c.Monitored > 0 }

// An Outage is one DOWN period of a component, clipped to the report's
// period.
type Outage struct {
	// Start and End are the outage's part within the period.
	Start, End time.Time
	// Began is when the DOWN record says the outage began: Start, or
	// before it when ClippedStart.
	Began time.Time
	// Open: no UP ended the outage within the period; End is the period's
	// end. ClippedStart: the outage began before the period.
	Open, ClippedStart bool
	// Cause, Detail and DownEvent are the DOWN record's change identifier,
	// detail and event; EndCause, EndDetail and UpEvent those of the UP
	// record that ended the outage (empty when Open).
	Cause, EndCause   string
	Detail, EndDetail string
	DownEvent         protocol.ID
	UpEvent           protocol.ID
}

// Duration returns End − Start.
func (o *Outage) Duration() time.Duration { return o.End.Sub(o.Start) }

// Compute reports on the period [from, to) from recs: every record of the
// components wanted up to to, those before from included (they give each
// component's status at from), in any order. It does not modify recs. The
// package documentation says how records are ordered and each figure
// computed.
func Compute(recs []protocol.StatusRecord, from, to time.Time, opts Options) Report {
	from, to = from.UTC(), to.UTC()
	if !opts.Now.IsZero() && opts.Now.Before(to) {
		to = opts.Now.UTC()
	}
	if to.Before(from) {
		to = from
	}
	if to.Sub(from) > MaxPeriod {
		to = from.Add(MaxPeriod)
	}
	byName := map[string][]*protocol.StatusRecord{}
	for i := range recs {
		r := &recs[i]
		if !r.Status.Valid() || r.Time.IsZero() || !r.Time.Before(to) {
			continue
		}
		if opts.Component != "" && !protocol.Glob(opts.Component, r.Component) {
			continue
		}
		byName[r.Component] = append(byName[r.Component], r)
	}
	rep := Report{From: from, To: to, Components: make([]ComponentReport, 0, len(byName))}
	for name, rs := range byName {
		slices.SortStableFunc(rs, func(a, b *protocol.StatusRecord) int {
			if c := a.Time.Compare(b.Time); c != 0 {
				return c
			}
			return cmp.Compare(a.Seq, b.Seq)
		})
		rep.Components = append(rep.Components, component(name, rs, from, to))
	}
	slices.SortFunc(rep.Components, func(a, b ComponentReport) int { return cmp.Compare(a.Component, b.Component) })
	return rep
}

// component reports on one component's records rs, ordered, all before
// to.
func component(name string, rs []*protocol.StatusRecord, from, to time.Time) ComponentReport {
	c := ComponentReport{Component: name}
	var (
		cur   protocol.Status // "" while unknown
		since time.Time       // when cur began, within the period
		out   *Outage         // the outage under way, when cur is DOWN
	)
	i := 0
	for ; i < len(rs) && rs[i].Time.Before(from); i++ {
		if rs[i].Status == cur {
			continue
		}
		cur, out = rs[i].Status, nil
		if cur == protocol.StatusDown {
			out = down(rs[i])
		}
	}
	if cur != "" {
		c.MonitoredFrom, since = from, from
	}
	if out != nil {
		out.Start, out.ClippedStart = from, true
	}
	add := func(until time.Time) {
		switch cur {
		case protocol.StatusUp:
			c.Up += until.Sub(since)
		case protocol.StatusDown:
			c.Down += until.Sub(since)
		}
	}
	// keep adds an ended outage, unless it was carried in and ended at
	// from (or the period is empty): it never overlapped the period.
	keep := func(o *Outage) {
		if !o.ClippedStart || o.End.After(from) {
			c.Outages = append(c.Outages, *o)
		}
	}
	for ; i < len(rs); i++ {
		r := rs[i]
		if r.Status == cur {
			c.Repeats++
			continue
		}
		c.Changes++
		t := r.Time.UTC()
		if cur == "" {
			c.MonitoredFrom = t
		}
		add(t)
		if out != nil { // r is the UP that ends it
			out.End, out.EndCause, out.EndDetail, out.UpEvent = t, r.Change, r.Detail, r.Event
			keep(out)
			out = nil
		}
		if r.Status == protocol.StatusDown {
			out = down(r)
		}
		cur, since = r.Status, t
	}
	add(to)
	if out != nil {
		out.End, out.Open = to, true
		keep(out)
	}
	c.Final = cur
	c.Monitored = c.Up + c.Down
	c.Unknown = to.Sub(from) - c.Monitored
	c.Availability = -1
	if c.Monitored > 0 {
		c.Availability = float64(c.Up) / float64(c.Monitored) * 100
	}
	if n := time.Duration(len(c.Outages)); n > 0 {
		for _, o := range c.Outages {
			c.Longest = max(c.Longest, o.Duration())
		}
		c.MTTR, c.MTBF = c.Down/n, c.Up/n
	}
	return c
}

// down starts the outage that the DOWN record r begins.
func down(r *protocol.StatusRecord) *Outage {
	return &Outage{Start: r.Time.UTC(), Began: r.Time.UTC(), Cause: r.Change, Detail: r.Detail, DownEvent: r.Event}
}
