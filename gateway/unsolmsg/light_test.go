package unsolmsg_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zbridge/zbridge/gateway/session"
	"github.com/zbridge/zbridge/gateway/store"
	"github.com/zbridge/zbridge/gateway/store/memstore"
	"github.com/zbridge/zbridge/protocol"
)

// countingStore counts the light reads of a memstore.
type countingStore struct {
	*memstore.Store
	light atomic.Int64
}

func (s *countingStore) ReadPreparedLight(ctx context.Context, after protocol.ID, max int, dst []*protocol.Event, json [][]byte) (
	[]*protocol.Event, [][]byte, store.Gap, error) {
	s.light.Add(1)
	return s.Store.ReadPreparedLight(ctx, after, max, dst, json)
}

// allButAudit lets every client see every event but audit records, which
// only client "auditor" sees; sees says whether it tells so (AllVisible).
type allButAudit struct{ sees bool }

func (allButAudit) Subscribe(*session.Session, *protocol.Frame) error { return nil }
func (allButAudit) GroupKey(client, group string) string              { return client + ":" + group }
func (allButAudit) Visible(client string, e *protocol.Event) bool {
	return e.Source != protocol.SourceAudit || client == "auditor"
}
func (a allButAudit) VisibleAll(string) bool { return a.sees }

// TestLightReads: a subscriber without a filter, whose client sees every
// event but audit records, reads the events the store keeps encoded
// without having them decoded (store.PreparedReader's ReadPreparedLight)
// and gets each whole, as sent when appended; audit records are still
// shown only to whom they are visible. A subscriber with a filter, or of
// an Access that cannot tell, reads them decoded, and its filter holds.
func TestLightReads(t *testing.T) {
	var evs []*protocol.Event
	for i := range 40 {
		e := syslogEvent(fmt.Sprintf("lnx%02d", i%4), fmt.Sprintf("event %d", i))
		if i%9 == 4 {
			e.Source = protocol.SourceAudit
		}
		evs = append(evs, e)
	}
	for _, tc := range []struct {
		name      string
		sees      bool
		client    string
		filter    *protocol.Filter
		wantLight bool
	}{
		{"all visible", true, "ops", nil, true},
		{"all visible, auditor", true, "auditor", nil, true},
		{"filter matching all", true, "ops", &protocol.Filter{Origin: "*"}, true},
		{"filter", true, "ops", &protocol.Filter{Origin: "lnx01"}, false},
		{"access cannot tell", false, "auditor", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// 40 events: 8 in the cache, the 24 before them with their JSON
			// kept, the 8 oldest without.
			st := &countingStore{Store: memstore.New(memstore.Config{CacheEvents: 8, JSONEvents: 32})}
			defer st.Close()
			appendTo(t, st, evs)
			addr := startAccess(t, st, allButAudit{sees: tc.sees})
			c := dialAs(t, addr, tc.client)
			subscribe(t, c, tc.filter, "0", "json")
			var want []*protocol.Event
			for _, e := range evs {
				if tc.filter.Match(e) && (e.Source != protocol.SourceAudit || tc.client == "auditor") {
					want = append(want, e)
				}
			}
			for _, w := range want {
				sameEvent(t, nextEvent(t, c), w)
			}
			if got := st.light.Load() > 0; got != tc.wantLight {
				t.Errorf("light reads: %v, want %v", got, tc.wantLight)
			}
			// Nothing more: the next event is one appended now.
			late := syslogEvents(1, "late")
			appendTo(t, st, late)
			sameEvent(t, nextEvent(t, c), late[0])
		})
	}
}

// narrowing lets a client see every event but audit records while wide is
// set, then only syslog events; it tells so (AllVisible).
type narrowing struct{ wide *atomic.Bool }

func (narrowing) Subscribe(*session.Session, *protocol.Frame) error { return nil }
func (narrowing) GroupKey(client, group string) string              { return client + ":" + group }
func (n narrowing) Visible(client string, e *protocol.Event) bool {
	return e.Source != protocol.SourceAudit && (n.wide.Load() || e.Source == protocol.SourceSyslog)
}
func (n narrowing) VisibleAll(string) bool { return n.wide.Load() }

// TestLightReadsRefresh: a policy narrowed while a light batch is being
// sent to a client that does not read applies after at most one write,
// not after the batch (512 events, 256 of them the ones narrowed away
// here, of 60 KB each). What the kernel's buffers already hold, about as
// many as a batch read whole sends after such a refresh, still arrives.
// (A review found 256 before light batches were sent one write at a time.)
func TestLightReadsRefresh(t *testing.T) {
	st := &countingStore{Store: memstore.New(memstore.Config{CacheEvents: 8, JSONEvents: 4096, MaxBytes: 1 << 30})}
	defer st.Close()
	big := strings.Repeat("y", 60<<10)
	var evs []*protocol.Event
	for i := range 600 {
		e := syslogEvent("lnx01", fmt.Sprintf("%d %s", i, big))
		if i%2 == 1 {
			e.Source = protocol.SourceRegion
		}
		evs = append(evs, e)
	}
	appendTo(t, st, evs)
	wide := new(atomic.Bool)
	wide.Store(true)
	addr := startAccess(t, st, narrowing{wide})
	c := dialAs(t, addr, "ops")
	subscribe(t, c, nil, "0", "json")
	deadline := time.Now().Add(waitTimeout)
	for st.light.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // the stream fills the socket and blocks
	wide.Store(false)                  // the policy is refreshed: no more region events
	late := syslogEvent("lnx01", "late")
	appendTo(t, st, []*protocol.Event{late})
	region, syslog := 0, 0
	for {
		e := nextEvent(t, c)
		if e.Text == "late" {
			break
		}
		if e.Source == protocol.SourceRegion {
			region++
		} else {
			syslog++
		}
	}
	if st.light.Load() == 0 {
		t.Fatal("no light read")
	}
	if region >= 200 || syslog != 300 {
		t.Errorf("after the refresh: %d region events of 300 arrived (want well under a batch's 256), %d syslog of 300",
			region, syslog)
	}
	t.Logf("%d region events arrived, all sent before the refresh or in the one write after it", region)
}
