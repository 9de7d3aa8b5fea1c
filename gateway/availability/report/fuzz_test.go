package report_test

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/zbridge/zbridge/gateway/availability/report"
	"github.com/zbridge/zbridge/protocol"
)

// fuzzNames are the components fuzzed records name: plain ones and ones
// made to break the writers.
var fuzzNames = []string{"SYSA", "VMSYS1/LINUX01", "has113.httpd.80", "<b a=\"'\">&", "\x00\xff\x1b"}

// fuzzRecords turns data into records, 6 bytes each: the component, the
// status (UP, DOWN, or one that is neither), the time in minutes around
// the period (two days before its start to a day after a day's end), and
// a Seq that may repeat or go backwards.
func fuzzRecords(data []byte) []protocol.StatusRecord {
	var rs []protocol.StatusRecord
	for ; len(data) >= 6; data = data[6:] {
		st := []protocol.Status{protocol.StatusUp, protocol.StatusDown, protocol.StatusUp, protocol.StatusDown, "", "up"}[data[1]%6]
		mins := int(binary.BigEndian.Uint16(data[2:4])) % (5 * 24 * 60)
		rs = append(rs, protocol.StatusRecord{
			Seq:       uint64(binary.BigEndian.Uint16(data[4:6])),
			Component: fuzzNames[int(data[0])%len(fuzzNames)],
			Status:    st,
			Time:      day.Add(time.Duration(mins-2*24*60)*time.Minute + time.Duration(data[0]>>4)*time.Second),
			Change:    string(st) + "\n<x>",
			Detail:    "=1+2 \"'<>&",
		})
	}
	return rs
}

// FuzzCompute checks Compute's invariants on random records and periods:
// no panic; every component's up, down and unknown time add up to the
// period; availability is within 0..100 (or -1 when nothing was
// monitored); the outages are in order, apart, within the period, and add
// up to the downtime; MTTR and MTBF are their means; and every writer
// succeeds, the HTML well-formed.
func FuzzCompute(f *testing.F) {
	f.Add([]byte{0, 0, 0x0b, 0x40, 0, 1, 0, 1, 0x0b, 0x50, 0, 2, 0, 0, 0x0b, 0x60, 0, 3}, uint16(0), uint16(24*60), false)
	f.Add([]byte{1, 1, 0x01, 0x00, 0, 1, 1, 0, 0x0c, 0x00, 0, 2, 1, 1, 0x0c, 0x00, 0, 3, 1, 0, 0x0c, 0x00, 0, 3}, uint16(24*60), uint16(60), true)
	f.Add([]byte{3, 4, 0, 0, 0, 0, 4, 5, 0xff, 0xff, 0xff, 0xff, 2, 1, 0x10, 0x00, 0, 9, 2, 0, 0x0f, 0x00, 0, 8}, uint16(100), uint16(0), false)
	f.Fuzz(func(t *testing.T, data []byte, fromMin, lenMin uint16, now bool) {
		rs := fuzzRecords(data)
		from := day.Add(time.Duration(int(fromMin)%(3*24*60)-24*60) * time.Minute)
		to := from.Add(time.Duration(lenMin) * time.Minute)
		opts := report.Options{}
		if now {
			opts.Now = from.Add(time.Duration(lenMin/2) * time.Minute)
		}
		r := report.Compute(rs, from, to, opts)
		period := r.Period()
		if period < 0 || r.From != from || r.To.After(to) {
			t.Fatalf("period %v to %v from %v to %v", r.From, r.To, from, to)
		}
		for i := range r.Components {
			c := &r.Components[i]
			if c.Up < 0 || c.Down < 0 || c.Unknown < 0 || c.Up+c.Down+c.Unknown != period || c.Monitored != c.Up+c.Down {
				t.Fatalf("%q: up %v + down %v + unknown %v != period %v (monitored %v)", c.Component, c.Up, c.Down, c.Unknown, period, c.Monitored)
			}
			if c.Monitored == 0 && c.Availability != -1 || c.Monitored > 0 && !(c.Availability >= 0 && c.Availability <= 100) {
				t.Fatalf("%q: availability %v with %v monitored", c.Component, c.Availability, c.Monitored)
			}
			var sum, longest time.Duration
			last := r.From
			for j, o := range c.Outages {
				if o.Start.Before(last) || o.End.Before(o.Start) || o.End.After(r.To) || o.Began.After(o.Start) {
					t.Fatalf("%q: outage %d %v to %v (began %v) out of order or out of the period %v to %v", c.Component, j+1, o.Start, o.End, o.Began, r.From, r.To)
				}
				if o.ClippedStart != (o.Began.Before(r.From)) || o.ClippedStart && (j > 0 || !o.Start.Equal(r.From)) {
					t.Fatalf("%q: outage %d clipped=%v began %v start %v", c.Component, j+1, o.ClippedStart, o.Began, o.Start)
				}
				if o.Open && (j != len(c.Outages)-1 || !o.End.Equal(r.To) || c.Final != protocol.StatusDown) {
					t.Fatalf("%q: outage %d open but not the last, to the end, down at the end", c.Component, j+1)
				}
				if o.ClippedStart && o.Duration() == 0 {
					t.Fatalf("%q: outage %d carried in without overlapping the period", c.Component, j+1)
				}
				sum += o.Duration()
				longest = max(longest, o.Duration())
				last = o.End
			}
			if sum != c.Down || longest != c.Longest {
				t.Fatalf("%q: outages add up to %v (longest %v), downtime %v (longest %v)", c.Component, sum, longest, c.Down, c.Longest)
			}
			if n := time.Duration(len(c.Outages)); n > 0 && (c.MTTR != c.Down/n || c.MTBF != c.Up/n) ||
				n == 0 && (c.MTTR != 0 || c.MTBF != 0) {
				t.Fatalf("%q: MTTR %v MTBF %v for %d outages", c.Component, c.MTTR, c.MTBF, n)
			}
			if len(c.Outages) > c.Changes+1 {
				t.Fatalf("%q: %d outages from %d changes", c.Component, len(c.Outages), c.Changes)
			}
		}
		var b bytes.Buffer
		for _, w := range []func(*bytes.Buffer, report.Report) error{
			func(b *bytes.Buffer, r report.Report) error { return report.WriteText(b, r) },
			func(b *bytes.Buffer, r report.Report) error { return report.WriteCSV(b, r) },
			func(b *bytes.Buffer, r report.Report) error { return report.WriteOutagesCSV(b, r) },
		} {
			if err := w(&b, r); err != nil {
				t.Fatal(err)
			}
		}
		b.Reset()
		if err := report.WriteHTML(&b, r); err != nil {
			t.Fatal(err)
		}
		parseXML(t, b.Bytes())
	})
}
