package vmagent

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/zbridge/zbridge/protocol"
)

func TestParseNames(t *testing.T) {
	got := ParseNames([]string{
		"LINUX01  - DSC , OPERATOR - L0004 , TCPIP    - DSC , MAINT    - L0005",
		"LINUX02  - DSC",
		"VSM     - TCPIP",
	})
	want := []string{"LINUX01", "OPERATOR", "TCPIP", "MAINT", "LINUX02"}
	if len(got) != len(want) {
		t.Fatalf("ParseNames = %v, want %v", got, want)
	}
	for _, u := range want {
		if !got[u] {
			t.Errorf("%s missing from %v", u, got)
		}
	}
}

// namesConsole answers QUERY NAMES from a list of outputs, one per poll.
type namesConsole struct {
	mu      sync.Mutex
	outputs [][]string
	polls   int
}

func (c *namesConsole) Run(ctx context.Context, cmd string, out func(string)) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := min(c.polls, len(c.outputs)-1)
	c.polls++
	for _, l := range c.outputs[i] {
		out(l)
	}
	return 0, nil
}

func (c *namesConsole) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.polls
}

func TestNamesWatcherReportsDifferences(t *testing.T) {
	t.Parallel() // it waits for the watcher's polls
	con := &namesConsole{outputs: [][]string{
		{"OPERATOR - L0004 , LINUX01  - DSC"},
		{"OPERATOR - L0004 , LINUX01  - DSC , LINUX02  - DSC , LINUX03  - DSC"}, // LINUX02, LINUX03 logged on
		{"OPERATOR - L0004 , LINUX02  - DSC , LINUX03  - DSC"},                  // LINUX01 logged off
	}}
	var mu sync.Mutex
	var got []*protocol.Event
	w := &NamesWatcher{Console: con, System: "VMSYS1", Interval: 150 * time.Millisecond, Publish: func(evs ...*protocol.Event) error {
		mu.Lock()
		got = append(got, evs...)
		mu.Unlock()
		return nil
	}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	for con.count() < 1 { // the baseline poll
		time.Sleep(2 * time.Millisecond)
	}
	// Between polls, the console announced LINUX03's logon itself: the
	// next poll must not report it again.
	w.Observe(&protocol.Event{Source: protocol.SourceZVMEvent, Type: "LOGON", User: "LINUX03"})
	for con.count() < 4 {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	seen := map[string]int{}
	for _, e := range got {
		seen[e.User+" "+e.Type]++
		if e.Source != protocol.SourceZVMEvent || e.Origin.System != "VMSYS1" {
			t.Errorf("event %+v", e)
		}
	}
	if seen["LINUX02 LOGON"] != 1 || seen["LINUX01 LOGOFF"] != 1 || seen["LINUX03 LOGON"] != 0 || len(got) != 2 {
		t.Fatalf("events %v, want LINUX02 LOGON and LINUX01 LOGOFF once each (LINUX03 was announced)", seen)
	}
}
