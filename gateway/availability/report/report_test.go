package report_test

import (
	"bytes"
	"encoding/csv"
	"encoding/xml"
	"errors"
	"flag"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zbridge/zbridge/gateway/availability/report"
	"github.com/zbridge/zbridge/protocol"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

const (
	up   = protocol.StatusUp
	down = protocol.StatusDown
)

// day is the period most cases report on: 2025-06-02 00:00 to 24:00 UTC.
var day = time.Date(2025, 6, 2, 0, 0, 0, 0, time.UTC)

// at returns the time d after day's start: at(-2*time.Hour) is 22:00 the
// day before.
func at(d time.Duration) time.Time { return day.Add(d) }

// hm returns h hours and m minutes.
func hm(h, m int) time.Duration { return time.Duration(h)*time.Hour + time.Duration(m)*time.Minute }

// recs numbers records by Seq in the order given (the store's order).
func recs(rs ...protocol.StatusRecord) []protocol.StatusRecord {
	for i := range rs {
		if rs[i].Seq == 0 {
			rs[i].Seq = uint64(i + 1)
		}
	}
	return rs
}

// rec is a record of component c: status st at time t, change identifier
// ch.
func rec(c string, st protocol.Status, t time.Time, ch string) protocol.StatusRecord {
	return protocol.StatusRecord{Component: c, Status: st, Time: t, Change: ch, Rule: "test", Detail: ch + " detail"}
}

// seq gives r the Seq n.
func seq(n uint64, r protocol.StatusRecord) protocol.StatusRecord {
	r.Seq = n
	return r
}

// want is what a test expects of one component; the outages are checked
// for their times, flags and causes.
type want struct {
	component                    string
	monitored, up, down, unknown time.Duration
	availability                 float64 // percent; -1: none monitored
	outages                      []report.Outage
	longest, mttr, mtbf          time.Duration
	changes, repeats             int
	final                        protocol.Status
}

// outage is an expected outage from start to end, caused by cause and
// ended by endCause ("" when open).
func outage(start, end time.Time, cause, endCause string) report.Outage {
	return report.Outage{Start: start, End: end, Began: start, Cause: cause, EndCause: endCause}
}

func TestCompute(t *testing.T) {
	const dayS = 86400.0 // seconds in the period
	tests := []struct {
		name     string
		recs     []protocol.StatusRecord
		from, to time.Time
		opts     report.Options
		wantTo   time.Time // the report's To; zero: to
		want     []want
	}{{
		// UP since yesterday; down 03:00 to 03:30.
		// up = 24h - 30m = 23h30m = 84600 s; down = 1800 s; 84600/86400 = 97.91666…%;
		// 1 outage: MTTR = 30m, MTBF = 23h30m.
		name: "one outage",
		recs: recs(
			rec("SYSA", up, at(-hm(14, 0)), "IXC418I"),
			rec("SYSA", down, at(hm(3, 0)), "IXC105I"),
			rec("SYSA", up, at(hm(3, 30)), "IXC418I"),
		),
		from: day, to: day.AddDate(0, 0, 1),
		want: []want{{
			component: "SYSA", monitored: 24 * time.Hour, up: hm(23, 30), down: hm(0, 30),
			availability: 84600 / dayS * 100,
			outages:      []report.Outage{outage(at(hm(3, 0)), at(hm(3, 30)), "IXC105I", "IXC418I")},
			longest:      hm(0, 30), mttr: hm(0, 30), mtbf: hm(23, 30), changes: 2, final: up,
		}},
	}, {
		// UP since yesterday, then at 10:00:00 DOWN, 10:00:05 UP, 10:00:07
		// DOWN, 10:00:10 UP, and a DOWN and an UP both at 10:00:20 (Seq
		// order). Three outages, none merged: 5 s, 3 s and 0 s.
		// down = 8 s; up = 86400 - 8 = 86392 s; 86392/86400 = 99.990740…%;
		// MTTR = 8 s / 3 = 2.666666666 s; MTBF = 86392 s / 3 = 28797.333333333 s;
		// 6 changes.
		name: "flapping",
		recs: recs(
			rec("VMSYS1/LINUX01", up, at(-time.Hour), "LOGON"),
			rec("VMSYS1/LINUX01", down, at(10*time.Hour), "heartbeat-lost"),
			rec("VMSYS1/LINUX01", up, at(10*time.Hour+5*time.Second), "heartbeat"),
			rec("VMSYS1/LINUX01", down, at(10*time.Hour+7*time.Second), "heartbeat-lost"),
			rec("VMSYS1/LINUX01", up, at(10*time.Hour+10*time.Second), "heartbeat"),
			rec("VMSYS1/LINUX01", down, at(10*time.Hour+20*time.Second), "probe-failed"),
			rec("VMSYS1/LINUX01", up, at(10*time.Hour+20*time.Second), "probe-ok"),
		),
		from: day, to: day.AddDate(0, 0, 1),
		want: []want{{
			component: "VMSYS1/LINUX01", monitored: 24 * time.Hour, up: 86392 * time.Second, down: 8 * time.Second,
			availability: 86392 / dayS * 100,
			outages: []report.Outage{
				outage(at(10*time.Hour), at(10*time.Hour+5*time.Second), "heartbeat-lost", "heartbeat"),
				outage(at(10*time.Hour+7*time.Second), at(10*time.Hour+10*time.Second), "heartbeat-lost", "heartbeat"),
				outage(at(10*time.Hour+20*time.Second), at(10*time.Hour+20*time.Second), "probe-failed", "probe-ok"),
			},
			longest: 5 * time.Second, mttr: 2666666666 * time.Nanosecond, mtbf: 28797333333333 * time.Nanosecond,
			changes: 6, final: up,
		}},
	}, {
		// DOWN 05:00, DOWN 05:10 (a repeat), UP 06:00, UP 06:30 (a repeat):
		// one outage, 05:00 to 06:00, caused by the first DOWN.
		// up = 23 h = 82800 s; 82800/86400 = 95.8333…%; MTBF = 23 h.
		name: "repeats",
		recs: recs(
			rec("has113.httpd.80", up, at(-time.Minute), "probe-ok"),
			rec("has113.httpd.80", down, at(hm(5, 0)), "probe-failed"),
			rec("has113.httpd.80", down, at(hm(5, 10)), "probe-timeout"),
			rec("has113.httpd.80", up, at(hm(6, 0)), "probe-ok"),
			rec("has113.httpd.80", up, at(hm(6, 30)), "probe-ok"),
		),
		from: day, to: day.AddDate(0, 0, 1),
		want: []want{{
			component: "has113.httpd.80", monitored: 24 * time.Hour, up: 23 * time.Hour, down: time.Hour,
			availability: 82800 / dayS * 100,
			outages:      []report.Outage{outage(at(hm(5, 0)), at(hm(6, 0)), "probe-failed", "probe-ok")},
			longest:      time.Hour, mttr: time.Hour, mtbf: 23 * time.Hour, changes: 2, repeats: 2, final: up,
		}},
	}, {
		// DOWN at 22:00, never UP again: open, counted to 24:00.
		// down = 2 h; up = 22 h = 79200 s; 79200/86400 = 91.666…%.
		name: "open at the end",
		recs: recs(
			rec("SYSA", up, at(-48*time.Hour), "IXC418I"),
			rec("SYSA", down, at(22*time.Hour), "IXC105I"),
		),
		from: day, to: day.AddDate(0, 0, 1),
		want: []want{{
			component: "SYSA", monitored: 24 * time.Hour, up: 22 * time.Hour, down: 2 * time.Hour,
			availability: 79200 / dayS * 100,
			outages: []report.Outage{{Start: at(22 * time.Hour), End: at(24 * time.Hour), Began: at(22 * time.Hour),
				Open: true, Cause: "IXC105I"}},
			longest: 2 * time.Hour, mttr: 2 * time.Hour, mtbf: 22 * time.Hour, changes: 1, final: down,
		}},
	}, {
		// DOWN since 23:00 the day before, UP at 01:00: clipped to 00:00-01:00.
		// down = 1 h; up = 23 h; 82800/86400 = 95.8333…%; the one outage
		// is carried in and counts: MTTR 1 h, MTBF 23 h.
		name: "outage begun before the period",
		recs: recs(
			rec("SYSB", up, at(-72*time.Hour), "IXC418I"),
			rec("SYSB", down, at(-time.Hour), "IXC105I"),
			rec("SYSB", up, at(time.Hour), "IXC418I"),
		),
		from: day, to: day.AddDate(0, 0, 1),
		want: []want{{
			component: "SYSB", monitored: 24 * time.Hour, up: 23 * time.Hour, down: time.Hour,
			availability: 82800 / dayS * 100,
			outages: []report.Outage{{Start: day, End: at(time.Hour), Began: at(-time.Hour), ClippedStart: true,
				Cause: "IXC105I", EndCause: "IXC418I"}},
			longest: time.Hour, mttr: time.Hour, mtbf: 23 * time.Hour, changes: 1, final: up,
		}},
	}, {
		// DOWN since the day before and all day: one outage, clipped at
		// both ends; availability 0; MTBF 0 (no up time).
		name: "down all the period",
		recs: recs(rec("SYSB", down, at(-time.Hour), "IXC105I")),
		from: day, to: day.AddDate(0, 0, 1),
		want: []want{{
			component: "SYSB", monitored: 24 * time.Hour, down: 24 * time.Hour, availability: 0,
			outages: []report.Outage{{Start: day, End: at(24 * time.Hour), Began: at(-time.Hour), ClippedStart: true,
				Open: true, Cause: "IXC105I"}},
			longest: 24 * time.Hour, mttr: 24 * time.Hour, changes: 0, final: down,
		}},
	}, {
		// DOWN the day before, UP exactly at 00:00: the outage never
		// overlapped the period; up all day; the UP at from is a change.
		name: "outage ended at the period's start",
		recs: recs(
			rec("SYSB", down, at(-time.Hour), "IXC105I"),
			rec("SYSB", up, day, "IXC418I"),
		),
		from: day, to: day.AddDate(0, 0, 1),
		want: []want{{
			component: "SYSB", monitored: 24 * time.Hour, up: 24 * time.Hour, availability: 100,
			changes: 1, final: up,
		}},
	}, {
		// First record UP at 06:00: 00:00-06:00 unknown, monitored 18 h;
		// down 12:00-12:30. up = 17h30m = 63000 s of 64800 s = 97.2222…%.
		name: "unknown before the first record",
		recs: recs(
			rec("has113.httpd.80", up, at(6*time.Hour), "probe-ok"),
			rec("has113.httpd.80", down, at(12*time.Hour), "probe-failed"),
			rec("has113.httpd.80", up, at(hm(12, 30)), "probe-ok"),
		),
		from: day, to: day.AddDate(0, 0, 1),
		want: []want{{
			component: "has113.httpd.80", monitored: 18 * time.Hour, up: hm(17, 30), down: hm(0, 30),
			unknown: 6 * time.Hour, availability: 63000.0 / 64800 * 100,
			outages: []report.Outage{outage(at(12*time.Hour), at(hm(12, 30)), "probe-failed", "probe-ok")},
			longest: hm(0, 30), mttr: hm(0, 30), mtbf: hm(17, 30), changes: 3, final: up,
		}},
	}, {
		// First record DOWN at 20:00: unknown 20 h, then an open outage of
		// 4 h that is not clipped (nothing before it was known).
		name: "first record down",
		recs: recs(rec("SYSC", down, at(20*time.Hour), "IXC105I")),
		from: day, to: day.AddDate(0, 0, 1),
		want: []want{{
			component: "SYSC", monitored: 4 * time.Hour, down: 4 * time.Hour, unknown: 20 * time.Hour, availability: 0,
			outages: []report.Outage{{Start: at(20 * time.Hour), End: at(24 * time.Hour), Began: at(20 * time.Hour),
				Open: true, Cause: "IXC105I"}},
			longest: 4 * time.Hour, mttr: 4 * time.Hour, changes: 1, final: down,
		}},
	}, {
		// In Seq order, but the UP of 03:30 was appended before the DOWN of
		// 03:00 (Seq 2 and 3), and at 04:00 an UP (Seq 5) and a DOWN (Seq 4)
		// are given in the wrong order: by Time then Seq, the component is
		// down 03:00-03:30 and again from 04:00 to the end (20 h).
		// down = 30m + 20h = 73800 s; up = 3h + 30m = 12600 s: 14.5833…%;
		// MTTR = 73800/2 = 36900 s = 10h15m; MTBF = 12600/2 s = 1h45m.
		name: "records out of Time order",
		recs: recs(
			rec("SYSA", up, at(-time.Hour), "IXC418I"),
			rec("SYSA", up, at(hm(3, 30)), "IXC418I"),
			rec("SYSA", down, at(hm(3, 0)), "IXC105I"),
			seq(5, rec("SYSA", down, at(4*time.Hour), "IXC101I")),
			seq(4, rec("SYSA", up, at(4*time.Hour), "IXC418I")),
		),
		from: day, to: day.AddDate(0, 0, 1),
		want: []want{{
			component: "SYSA", monitored: 24 * time.Hour, up: hm(3, 30), down: hm(20, 30),
			availability: 12600 / dayS * 100,
			outages: []report.Outage{
				outage(at(hm(3, 0)), at(hm(3, 30)), "IXC105I", "IXC418I"),
				{Start: at(4 * time.Hour), End: at(24 * time.Hour), Began: at(4 * time.Hour), Open: true, Cause: "IXC101I"},
			},
			longest: 20 * time.Hour, mttr: hm(10, 15), mtbf: hm(1, 45), changes: 3, repeats: 1, final: down,
		}},
	}, {
		// The glob sys? selects SYSA and SYSB (case-insensitively), not
		// SYSA1 or VMSYS1/LINUX01.
		name: "component filter",
		recs: recs(
			rec("VMSYS1/LINUX01", up, at(-time.Hour), "LOGON"),
			rec("SYSB", up, at(-time.Hour), "IXC418I"),
			rec("SYSA", up, at(-time.Hour), "IXC418I"),
			rec("SYSA1", up, at(-time.Hour), "IXC418I"),
		),
		from: day, to: day.AddDate(0, 0, 1), opts: report.Options{Component: "sys?"},
		want: []want{
			{component: "SYSA", monitored: 24 * time.Hour, up: 24 * time.Hour, availability: 100, final: up},
			{component: "SYSB", monitored: 24 * time.Hour, up: 24 * time.Hour, availability: 100, final: up},
		},
	}, {
		name: "component filter with a slash",
		recs: recs(
			rec("VMSYS1/LINUX01", up, at(-time.Hour), "LOGON"),
			rec("VMSYS1/LINUX02", up, at(time.Hour), "LOGON"),
			rec("VMSYS2/LINUX01", up, at(-time.Hour), "LOGON"),
		),
		from: day, to: day.AddDate(0, 0, 1), opts: report.Options{Component: "VMSYS1/*"},
		want: []want{
			{component: "VMSYS1/LINUX01", monitored: 24 * time.Hour, up: 24 * time.Hour, availability: 100, final: up},
			{component: "VMSYS1/LINUX02", monitored: 23 * time.Hour, up: 23 * time.Hour, unknown: time.Hour,
				availability: 100, changes: 1, final: up},
		},
	}, {
		// from = to: nothing is monitored, not even the outage under way.
		name: "empty period",
		recs: recs(
			rec("SYSA", up, at(-time.Hour), "IXC418I"),
			rec("SYSB", down, at(-time.Hour), "IXC105I"),
		),
		from: day, to: day,
		want: []want{
			{component: "SYSA", availability: -1, final: up},
			{component: "SYSB", availability: -1, final: down},
		},
	}, {
		name: "to before from is an empty period",
		recs: recs(rec("SYSA", up, at(-time.Hour), "IXC418I")),
		from: day, to: day.Add(-time.Hour), wantTo: day,
		want: []want{{component: "SYSA", availability: -1, final: up}},
	}, {
		// Now (12:00) ends the period: DOWN at 11:00 is open for 1 h of
		// the 12 monitored: 11/12 = 91.666…%.
		name: "now ends the period",
		recs: recs(
			rec("SYSA", up, at(-time.Hour), "IXC418I"),
			rec("SYSA", down, at(11*time.Hour), "IXC105I"),
		),
		from: day, to: day.AddDate(0, 0, 1), opts: report.Options{Now: at(12 * time.Hour)}, wantTo: at(12 * time.Hour),
		want: []want{{
			component: "SYSA", monitored: 12 * time.Hour, up: 11 * time.Hour, down: time.Hour,
			availability: 11.0 / 12 * 100,
			outages: []report.Outage{{Start: at(11 * time.Hour), End: at(12 * time.Hour), Began: at(11 * time.Hour),
				Open: true, Cause: "IXC105I"}},
			longest: time.Hour, mttr: time.Hour, mtbf: 11 * time.Hour, changes: 1, final: down,
		}},
	}, {
		// A status that is neither UP nor DOWN, a zero time, and records at
		// or after to are skipped; so is a component with only those.
		name: "records skipped",
		recs: recs(
			rec("SYSA", up, at(-time.Hour), "IXC418I"),
			rec("SYSA", "MAYBE", at(time.Hour), "?"),
			rec("SYSA", down, time.Time{}, "zero"),
			rec("SYSA", down, at(24*time.Hour), "IXC105I"),
			rec("SYSZ", down, at(25*time.Hour), "IXC105I"),
		),
		from: day, to: day.AddDate(0, 0, 1),
		want: []want{{component: "SYSA", monitored: 24 * time.Hour, up: 24 * time.Hour, availability: 100, final: up}},
	}, {
		name: "no records",
		from: day, to: day.AddDate(0, 0, 1),
	}, {
		// Times in another zone are the same instants; the report is UTC.
		name: "zones",
		recs: recs(
			rec("SYSA", up, at(-time.Hour).In(time.FixedZone("CEST", 2*3600)), "IXC418I"),
			rec("SYSA", down, at(time.Hour).In(time.FixedZone("EST", -5*3600)), "IXC105I"),
		),
		from: day.In(time.FixedZone("CEST", 2*3600)), to: day.AddDate(0, 0, 1).In(time.FixedZone("PST", -8*3600)),
		want: []want{{
			component: "SYSA", monitored: 24 * time.Hour, up: time.Hour, down: 23 * time.Hour,
			availability: 3600 / dayS * 100,
			outages: []report.Outage{{Start: at(time.Hour), End: at(24 * time.Hour), Began: at(time.Hour),
				Open: true, Cause: "IXC105I"}},
			longest: 23 * time.Hour, mttr: 23 * time.Hour, mtbf: time.Hour, changes: 1, final: down,
		}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := append([]protocol.StatusRecord(nil), tt.recs...)
			r := report.Compute(tt.recs, tt.from, tt.to, tt.opts)
			for i := range in {
				if in[i] != tt.recs[i] {
					t.Fatalf("Compute changed record %d: %+v, was %+v", i, tt.recs[i], in[i])
				}
			}
			wantTo := tt.to
			if !tt.wantTo.IsZero() {
				wantTo = tt.wantTo
			}
			if r.From != tt.from.UTC() || r.To != wantTo.UTC() || r.From.Location() != time.UTC || r.To.Location() != time.UTC {
				t.Errorf("period %v to %v, want %v to %v in UTC", r.From, r.To, tt.from.UTC(), wantTo.UTC())
			}
			if len(r.Components) != len(tt.want) {
				t.Fatalf("%d components, want %d: %+v", len(r.Components), len(tt.want), r.Components)
			}
			for i, w := range tt.want {
				checkComponent(t, &r.Components[i], w)
			}
		})
	}
}

func checkComponent(t *testing.T, c *report.ComponentReport, w want) {
	t.Helper()
	if c.Component != w.component {
		t.Errorf("component %q, want %q", c.Component, w.component)
		return
	}
	type figures struct {
		Monitored, Up, Down, Unknown, Longest, MTTR, MTBF time.Duration
		Changes, Repeats                                  int
		Final                                             protocol.Status
	}
	got := figures{c.Monitored, c.Up, c.Down, c.Unknown, c.Longest, c.MTTR, c.MTBF, c.Changes, c.Repeats, c.Final}
	exp := figures{w.monitored, w.up, w.down, w.unknown, w.longest, w.mttr, w.mtbf, w.changes, w.repeats, w.final}
	if got != exp {
		t.Errorf("%s:\n got %+v\nwant %+v", w.component, got, exp)
	}
	if math.Abs(c.Availability-w.availability) > 1e-9 {
		t.Errorf("%s: availability %.12f%%, want %.12f%%", w.component, c.Availability, w.availability)
	}
	if len(c.Outages) != len(w.outages) {
		t.Fatalf("%s: %d outages, want %d: %+v", w.component, len(c.Outages), len(w.outages), c.Outages)
	}
	for j, wo := range w.outages {
		o := c.Outages[j]
		if !o.Start.Equal(wo.Start) || !o.End.Equal(wo.End) || !o.Began.Equal(wo.Began) || o.Open != wo.Open ||
			o.ClippedStart != wo.ClippedStart || o.Cause != wo.Cause || o.EndCause != wo.EndCause {
			t.Errorf("%s: outage %d:\n got %v to %v (began %v) open=%v clipped=%v cause %q, ended by %q\nwant %v to %v (began %v) open=%v clipped=%v cause %q, ended by %q",
				w.component, j+1, o.Start, o.End, o.Began, o.Open, o.ClippedStart, o.Cause, o.EndCause,
				wo.Start, wo.End, wo.Began, wo.Open, wo.ClippedStart, wo.Cause, wo.EndCause)
		}
		if o.Start.Location() != time.UTC || o.End.Location() != time.UTC {
			t.Errorf("%s: outage %d not in UTC: %v to %v", w.component, j+1, o.Start, o.End)
		}
		if o.Cause != "" && o.Detail != o.Cause+" detail" || o.EndCause != "" && o.EndDetail != o.EndCause+" detail" {
			t.Errorf("%s: outage %d details %q, %q: not the records'", w.component, j+1, o.Detail, o.EndDetail)
		}
	}
}

// TestOutageEvents checks that an outage names the events of the records
// that began and ended it.
func TestOutageEvents(t *testing.T) {
	downEv, upEv := protocol.ID{Ms: 1748833200000, Seq: 7}, protocol.ID{Ms: 1748835000000, Seq: 2}
	rs := recs(
		rec("SYSA", up, at(-time.Hour), "IXC418I"),
		protocol.StatusRecord{Component: "SYSA", Status: down, Time: at(3 * time.Hour), Change: "IXC105I", Event: downEv, Detail: "gone"},
		protocol.StatusRecord{Component: "SYSA", Status: up, Time: at(hm(3, 30)), Change: "IXC418I", Event: upEv, Detail: "back"},
	)
	r := report.Compute(rs, day, day.AddDate(0, 0, 1), report.Options{})
	o := r.Components[0].Outages[0]
	if o.DownEvent != downEv || o.UpEvent != upEv || o.Detail != "gone" || o.EndDetail != "back" {
		t.Errorf("outage %+v: want events %v and %v, details gone and back", o, downEv, upEv)
	}
}

// TestAvailabilityTruncated checks that the writers never round an
// availability up to 100: 4 s down in 1,000,000 s is 99.9996%.
func TestAvailabilityTruncated(t *testing.T) {
	to := day.Add(1000000 * time.Second)
	rs := recs(
		rec("SYSA", up, at(-time.Hour), "IXC418I"),
		rec("SYSA", down, at(time.Hour), "IXC105I"),
		rec("SYSA", up, at(time.Hour+4*time.Second), "IXC418I"),
	)
	r := report.Compute(rs, day, to, report.Options{})
	var text, csvOut, html bytes.Buffer
	if err := errors.Join(report.WriteText(&text, r), report.WriteCSV(&csvOut, r), report.WriteHTML(&html, r)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), " 99.999 ") || strings.Contains(text.String(), "100.000") {
		t.Errorf("text report does not show 99.999:\n%s", text.String())
	}
	if !strings.Contains(csvOut.String(), ",99.999600,") {
		t.Errorf("CSV does not show 99.999600:\n%s", csvOut.String())
	}
	if !strings.Contains(html.String(), ">99.999<") || strings.Contains(html.String(), "100.000") {
		t.Errorf("HTML does not show 99.999")
	}
}

// TestGolden compares the writers' output on the sample day (the README's
// report) and on a report of edge cases with testdata; -update rewrites
// the files.
func TestGolden(t *testing.T) {
	reports := map[string]report.Report{
		"sample": report.Compute(sample(), sampleDay, sampleDay.AddDate(0, 0, 1), report.Options{}),
		"edge":   edgeReport(),
		"empty":  report.Compute(nil, day, day.AddDate(0, 0, 7), report.Options{}),
	}
	writers := []struct {
		ext   string
		write func(io.Writer, report.Report) error
	}{
		{".txt", report.WriteText},
		{".csv", report.WriteCSV},
		{"-outages.csv", report.WriteOutagesCSV},
		{".html", report.WriteHTML},
	}
	for name, r := range reports {
		for _, wr := range writers {
			file := filepath.Join("testdata", name+wr.ext)
			t.Run(filepath.Base(file), func(t *testing.T) {
				var b bytes.Buffer
				if err := wr.write(&b, r); err != nil {
					t.Fatal(err)
				}
				var again bytes.Buffer
				if wr.write(&again, r); !bytes.Equal(b.Bytes(), again.Bytes()) {
					t.Fatal("two writes of the same report differ")
				}
				if *update {
					if err := os.WriteFile(file, b.Bytes(), 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				golden, err := os.ReadFile(file)
				if err != nil {
					t.Fatalf("%v (run go test ./gateway/availability/report -update)", err)
				}
				if !bytes.Equal(b.Bytes(), golden) {
					t.Errorf("output differs from %s (run with -update if the change is meant):\n%s", file, firstDiff(b.String(), string(golden)))
				}
			})
		}
	}
}

// firstDiff shows the first line where got and want differ.
func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return "line " + itoa(i+1) + ":\n got " + gl + "\nwant " + wl
		}
	}
	return "(same lines)"
}

func itoa(n int) string { return strconv.Itoa(n) }

// hostile is a name and a detail made to break out of HTML, SVG, CSV and
// text tables.
const (
	hostileName   = `<script>alert("x")</script>'&amp;"`
	hostileDetail = "</title><svg onload=alert(1)>\" ' & \x00\x1b[31m\n=HYPERLINK(\"http://x\")\xff"
)

// edgeReport covers what the sample does not: a hostile component name
// and details, a component never known in the period, one down all of it,
// a zero-length flap, a formula-like cause.
func edgeReport() report.Report {
	rs := recs(
		rec("SYSB", down, at(-time.Hour), "IXC105I"),
		protocol.StatusRecord{Component: hostileName, Status: up, Time: at(-time.Hour), Change: "=1+1", Detail: hostileDetail},
		protocol.StatusRecord{Component: hostileName, Status: down, Time: at(2 * time.Hour), Change: "<b>", Detail: hostileDetail},
		protocol.StatusRecord{Component: hostileName, Status: up, Time: at(2 * time.Hour), Change: "-ok", Detail: hostileDetail},
		rec("LATE", up, at(25*time.Hour), "IXC418I"),
		rec("SYSC", up, at(hm(23, 59)), "IXC418I"),
	)
	return report.Compute(rs, day, day.AddDate(0, 0, 1), report.Options{})
}

// TestHTMLWellFormed parses the HTML reports as XML (WriteHTML writes
// XHTML syntax, so a tag left open, an attribute broken out of or a bare
// < or & in text fails), and checks that each component has its bars and
// each outage its tooltip, and that hostile text comes back as text.
func TestHTMLWellFormed(t *testing.T) {
	for name, r := range map[string]report.Report{
		"sample": report.Compute(sample(), sampleDay, sampleDay.AddDate(0, 0, 1), report.Options{}),
		"edge":   edgeReport(),
	} {
		t.Run(name, func(t *testing.T) {
			var b bytes.Buffer
			if err := report.WriteHTML(&b, r); err != nil {
				t.Fatal(err)
			}
			doc := parseXML(t, b.Bytes())
			if n := len(doc.all("script")); n > 0 {
				t.Errorf("%d script elements", n)
			}
			for _, e := range doc.all("") {
				for _, a := range e.attrs {
					if strings.HasPrefix(strings.ToLower(a.Name.Local), "on") {
						t.Errorf("<%s %s=%q>: an event handler attribute", e.name, a.Name.Local, a.Value)
					}
				}
			}
			// Every outage has a red part with a title naming its start,
			// once in the overview and once in its section.
			titles := map[string]int{}
			for _, rect := range doc.all("rect") {
				cls := rect.attr("class")
				if cls == "down" || cls == "open" {
					titles[rect.text()]++
				}
			}
			for _, c := range r.Components {
				for j, o := range c.Outages {
					n := 0
					for title, k := range titles {
						if strings.Contains(title, " outage "+itoa(j+1)+": "+o.Start.Format("2006-01-02 15:04:05")) &&
							strings.HasPrefix(title, strings.Map(printable, c.Component)) {
							n += k
						}
					}
					if n != 2 {
						t.Errorf("%s outage %d: %d bars with its title, want 2", c.Component, j+1, n)
					}
				}
			}
			if name == "edge" {
				h2 := doc.all("h2")
				found := false
				for _, e := range h2 {
					found = found || e.text() == hostileName
				}
				if !found {
					t.Errorf("no <h2> reads %q after parsing: escaping changed it", hostileName)
				}
			}
		})
	}
}

// printable is clean's mapping for the names the tests use.
func printable(r rune) rune {
	if r < 0x20 || r == 0x7f {
		return '?'
	}
	return r
}

// An element of a parsed document.
type element struct {
	name     string
	attrs    []xml.Attr
	children []*element
	chars    strings.Builder
}

func (e *element) attr(name string) string {
	for _, a := range e.attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// text is the element's text, its children's included.
func (e *element) text() string {
	var b strings.Builder
	b.WriteString(e.chars.String())
	for _, c := range e.children {
		b.WriteString(c.text())
	}
	return b.String()
}

// all returns the elements below e named name (every one for "").
func (e *element) all(name string) []*element {
	var out []*element
	for _, c := range e.children {
		if name == "" || c.name == name {
			out = append(out, c)
		}
		out = append(out, c.all(name)...)
	}
	return out
}

// parseXML parses b strictly as XML with HTML's DOCTYPE, failing the test
// if it is not well-formed.
func parseXML(t testing.TB, b []byte) *element {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = true
	root := &element{}
	stack := []*element{root}
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			line, col := d.InputPos()
			t.Fatalf("not well-formed at %d:%d: %v", line, col, err)
		}
		top := stack[len(stack)-1]
		switch tok := tok.(type) {
		case xml.StartElement:
			e := &element{name: tok.Name.Local, attrs: tok.Attr}
			top.children = append(top.children, e)
			stack = append(stack, e)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			top.chars.Write(tok)
		case xml.Directive:
			if string(tok) != "DOCTYPE html" {
				t.Fatalf("directive <!%s>", tok)
			}
		}
	}
	if len(stack) != 1 || len(root.all("html")) != 1 {
		t.Fatalf("not one html document")
	}
	return root
}

// TestTextHostile checks that control characters in names and details do
// not reach the text report, and that the table stays aligned.
func TestTextHostile(t *testing.T) {
	var b bytes.Buffer
	if err := report.WriteText(&b, edgeReport()); err != nil {
		t.Fatal(err)
	}
	s := b.String()
	for i, r := range s {
		if r < 0x20 && r != '\n' || r == 0x7f {
			t.Fatalf("control character %q at %d", r, i)
		}
	}
	if !strings.Contains(s, "down: </title><svg onload=alert(1)>\" ' & ??[31m?=HYPERLINK") {
		t.Errorf("detail not shown with its control characters as '?':\n%s", s)
	}
}

// TestCSV reads the CSV forms back and checks their fields against the
// report, and that formula-like text is defused.
func TestCSV(t *testing.T) {
	r := edgeReport()
	var comps, outs bytes.Buffer
	if err := errors.Join(report.WriteCSV(&comps, r), report.WriteOutagesCSV(&outs, r)); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&comps).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1+len(r.Components) {
		t.Fatalf("%d component rows, want %d", len(rows)-1, len(r.Components))
	}
	for i, row := range rows[1:] {
		c := r.Components[i]
		if row[2] != c.Component {
			t.Errorf("row %d: component %q, want %q", i+1, row[2], c.Component)
		}
		if want := secsOf(c.Down); row[6] != want {
			t.Errorf("%s: down_s %q, want %q", c.Component, row[6], want)
		}
		if !c.Known() && row[8] != "" {
			t.Errorf("%s: availability %q for a component not monitored", c.Component, row[8])
		}
	}
	orows, err := csv.NewReader(&outs).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var hostile []string
	for _, row := range orows[1:] {
		if row[0] == hostileName {
			hostile = row
		}
	}
	if hostile == nil {
		t.Fatal("no outage row for the hostile component")
	}
	if hostile[8] != "<b>" || hostile[9] != "'-ok" || hostile[12] != "</title><svg onload=alert(1)>\" ' & \x00\x1b[31m\n=HYPERLINK(\"http://x\")\xff" {
		t.Errorf("hostile outage row %q", hostile)
	}
}

// secsOf is d in seconds as the CSV writes whole ones.
func secsOf(d time.Duration) string {
	if d%time.Second != 0 {
		panic("secsOf: a fraction")
	}
	return strconv.FormatInt(int64(d/time.Second), 10)
}
