package syslog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/zbridge/zbridge/internal/leakcheck"
	"github.com/zbridge/zbridge/protocol"
)

// TestServerGroupCommit: behind a slow Appender (a store's round trip), the
// jobs parsed meanwhile go together into the next Append, so that batches
// grow beyond one job's worth; every event still arrives once, in order.
func TestServerGroupCommit(t *testing.T) {
	leakcheck.Check(t)
	const (
		batchSize = 16 // events in one job at most
		writes    = 100
		perWrite  = 20
		total     = writes * perWrite
	)
	rec := newRecorder()
	ts := startServer(t, false, func(c *Config) {
		c.BatchSize = batchSize
		c.Appender = appenderFunc(func(ctx context.Context, evs []*protocol.Event) error {
			time.Sleep(5 * time.Millisecond)
			return rec.Append(ctx, evs)
		})
	})
	ts.rec = rec
	c := ts.dial(t)
	// A steady flow: a few messages every millisecond, faster than one
	// job per 5 ms Append could carry.
	n := 0
	for range writes {
		var msgs []string
		for range perWrite {
			msgs = append(msgs, fmt.Sprintf("<13>1 - vm app - - - message %d", n))
			n++
		}
		write(t, c, octet(msgs...))
		time.Sleep(time.Millisecond)
	}
	evs := rec.wait(t, total)
	if len(evs) != total {
		t.Fatalf("%d events, want %d", len(evs), total)
	}
	for i, ev := range evs {
		if want := fmt.Sprintf("message %d", i); ev.Text != want {
			t.Fatalf("event %d is %q, want %q", i, ev.Text, want)
		}
	}
	_, batches := rec.snapshot()
	biggest := 0
	for _, n := range batches {
		biggest = max(biggest, n)
		if n > maxAppendEvents {
			t.Errorf("batch of %d events, at most %d allowed", n, maxAppendEvents)
		}
	}
	t.Logf("%d events in %d Appends, the biggest of %d", total, len(batches), biggest)
	if biggest <= batchSize {
		t.Errorf("no Append took more than one job (%d events) while the Appender was slow: batches %v", batchSize, batches)
	}
	if st := ts.srv.Stats(); st.Frames != total || st.AppendErrors != 0 {
		t.Errorf("Stats = %+v", st)
	}
}

// parsedJob returns a job as a worker leaves it: n events, size bytes of
// frames.
func parsedJob(first, n, size int, err error) *parseJob {
	j := &parseJob{buf: make([]byte, size), err: err, done: make(chan struct{})}
	for i := range n {
		j.evs = append(j.evs, &protocol.Event{Text: fmt.Sprint(first + i), Parsed: true})
	}
	close(j.done)
	return j
}

// TestCommitterGather checks how jobs are grouped for one Append: only
// parsed ones, up to the limits, in order, a connection's last job (with
// its error) on its own.
func TestCommitterGather(t *testing.T) {
	unparsed := &parseJob{done: make(chan struct{})}
	tests := []struct {
		name   string
		jobs   []*parseJob
		groups []int // jobs in each group, in order
	}{
		{"one", []*parseJob{parsedJob(0, 3, 10, nil)}, []int{1}},
		{"all parsed", []*parseJob{parsedJob(0, 3, 10, nil), parsedJob(3, 3, 10, nil), parsedJob(6, 3, 10, nil)}, []int{3}},
		{"up to maxAppendEvents", []*parseJob{
			parsedJob(0, maxAppendEvents/2, 10, nil), parsedJob(0, maxAppendEvents/2, 10, nil),
			parsedJob(0, 1, 10, nil), parsedJob(0, 1, 10, nil),
		}, []int{2, 2}},
		{"a job over the limits still goes, alone", []*parseJob{
			parsedJob(0, maxAppendEvents+1, 10, nil), parsedJob(0, 1, 10, nil),
		}, []int{1, 1}},
		{"up to maxAppendBytes", []*parseJob{
			parsedJob(0, 1, maxAppendBytes-10, nil), parsedJob(0, 1, 10, nil), parsedJob(0, 1, 1, nil),
		}, []int{2, 1}},
		{"the last job alone", []*parseJob{
			parsedJob(0, 3, 10, nil), parsedJob(3, 3, 10, nil), parsedJob(6, 1, 10, io.EOF),
		}, []int{2, 1}},
		{"not beyond a job being parsed", []*parseJob{
			parsedJob(0, 3, 10, nil), parsedJob(3, 3, 10, nil), unparsed,
		}, []int{2}}, // then gather waits for it
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			order := make(chan *parseJob, len(tt.jobs))
			for _, j := range tt.jobs {
				order <- j
			}
			if tt.jobs[len(tt.jobs)-1] != unparsed {
				close(order)
			}
			a := committer{order: order}
			var got []int
			next := 0
			for range tt.groups {
				if !a.gather() {
					t.Fatalf("gather reported the end after groups %v", got)
				}
				for _, j := range a.group {
					if j != tt.jobs[next] {
						t.Fatalf("group %d holds job %d out of order", len(got), next)
					}
					next++
				}
				got = append(got, len(a.group))
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.groups) {
				t.Fatalf("groups %v, want %v", got, tt.groups)
			}
			if tt.jobs[len(tt.jobs)-1] == unparsed {
				if a.held != unparsed {
					t.Fatal("the job being parsed is not held for the next group")
				}
				return
			}
			if a.gather() {
				t.Fatalf("gather found a group after %v", got)
			}
		})
	}
}

// TestServerGroupCommitFailure: when the Append of a group fails, the
// connection is closed, nothing after it is appended, and the end of the
// connection is not logged as if it had been delivered.
func TestServerGroupCommitFailure(t *testing.T) {
	leakcheck.Check(t)
	rec := newRecorder()
	calls := 0
	ts := startServer(t, false, func(c *Config) {
		c.BatchSize = 4
		c.Appender = appenderFunc(func(ctx context.Context, evs []*protocol.Event) error {
			calls++ // one goroutine appends for the connection
			time.Sleep(5 * time.Millisecond)
			if calls == 2 {
				return errors.New("store unavailable (test)")
			}
			return rec.Append(ctx, evs)
		})
	})
	c := ts.dial(t)
	var msgs []string
	for i := range 200 {
		msgs = append(msgs, fmt.Sprintf("<13>1 - vm app - - - message %d", i))
	}
	write(t, c, octet(msgs...))
	waitClosed(t, c)
	evs, _ := rec.snapshot()
	for i, ev := range evs {
		if want := fmt.Sprintf("message %d", i); ev.Text != want {
			t.Fatalf("event %d is %q, want %q", i, ev.Text, want)
		}
	}
	if len(evs) >= 200 {
		t.Errorf("%d events appended; the second Append failed", len(evs))
	}
	if !ts.log.contains("append of") {
		t.Error("the failed Append is not logged")
	}
	if st := ts.srv.Stats(); st.AppendErrors != 1 {
		t.Errorf("AppendErrors = %d, want 1", st.AppendErrors)
	}
}
