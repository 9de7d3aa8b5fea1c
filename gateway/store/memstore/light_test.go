package memstore

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/zbridge/zbridge/protocol"
)

// TestLightReadsRandom: light reads against the events appended, with audit records,
// unprepared events, chunk-sized events, and trims, beside whole reads of
// the same range: the same JSON, and a light event only where there is JSON
// and no audit record.
func TestLightReadsRandom(t *testing.T) {
	t.Parallel() // beside the other randomized tests: the two CPUs take two at once
	for _, cfg := range []struct{ cache, window, keep int }{{50, 700, 2000}, {8, 9, 40}, {3, 2000, 500}, {20, -1, 300}, {1, 2, 10}} {
		t.Run(fmt.Sprint(cfg), func(t *testing.T) {
			s := New(Config{CacheEvents: cfg.cache, JSONEvents: cfg.window, MaxEvents: cfg.keep})
			defer s.Close()
			rng := rand.New(rand.NewPCG(3, uint64(cfg.cache)))
			var all []*protocol.Event
			ctx := context.Background()
			rounds := 50
			if testing.Short() {
				rounds = 8 // round 7 still has an event larger than a chunk
			}
			for round := 0; round < rounds; round++ {
				batch := make([]*protocol.Event, 1+rng.IntN(60))
				for i := range batch {
					n := rng.IntN(3000)
					if i == 0 && round%20 == 7 {
						n = chunkSize + rng.IntN(5000)
					}
					switch rng.IntN(10) {
					case 0:
						raw := "<13>1 - host app - - - " + strings.Repeat("\x01", 500)
						batch[i] = &protocol.Event{Source: protocol.SourceSyslog, Raw: raw, Text: raw[len(raw)-500:]}
						continue
					case 1, 2:
						e := richEvent(len(all)+i, n)
						e.Source = protocol.SourceAudit
						batch[i] = e
						continue
					}
					batch[i] = richEvent(len(all)+i, n)
				}
				if err := s.Append(ctx, batch); err != nil {
					t.Fatal(err)
				}
				all = append(all, batch...)
				retained := all[max(0, len(all)-cfg.keep):]
				for rep := 0; rep < 3; rep++ {
					from := rng.IntN(len(retained))
					after := protocol.ID{}
					if from > 0 {
						after = retained[from-1].ID
					}
					max := 1 + rng.IntN(600)
					got, json, _, err := s.ReadPreparedLight(ctx, after, max, nil, nil)
					if err != nil || len(got) == 0 || len(json) != len(got) {
						t.Fatalf("read %d/%d, %v", len(got), len(json), err)
					}
					whole, wjson, _, _ := s.ReadPrepared(ctx, after, max, nil, nil)
					for i, g := range got {
						w := retained[from+i]
						if g.ID != w.ID || !g.Received.Equal(w.Received) {
							t.Fatalf("pos %d: id/recv", from+i)
						}
						if string(json[i]) != string(wjson[i]) {
							t.Fatalf("pos %d: json differs", from+i)
						}
						if g.Source == "" { // light
							if json[i] == nil {
								t.Fatalf("pos %d: light without JSON", from+i)
							}
							if w.Source == protocol.SourceAudit {
								t.Fatalf("pos %d: audit light", from+i)
							}
							if want := string(protocol.AppendEventFrame(nil, w)); string(protocol.AppendPreparedEventFrame(nil, g.ID, json[i])) != want {
								t.Fatalf("pos %d: light frame differs", from+i)
							}
							continue
						}
						if jsonOf(g) != jsonOf(w) || jsonOf(whole[i]) != jsonOf(w) {
							t.Fatalf("pos %d: decoded differs", from+i)
						}
					}
				}
			}
		})
	}
}

// TestLightReadsConcurrent: light and whole readers while an appender pushes
// events through the cache, the warm JSON and retention. (Run with -race.)
func TestLightReadsConcurrent(t *testing.T) {
	t.Parallel() // beside the other randomized tests: the two CPUs take two at once
	s := New(Config{CacheEvents: 16, JSONEvents: 200, MaxEvents: 1500})
	defer s.Close()
	total := 15000 // through retention (1,500) ten times
	if testing.Short() {
		total = 4500
	}
	text := func(n int) string { return fmt.Sprintf("event %06d %s", n, strings.Repeat("x", 300+n%900)) }
	ctx := context.Background()
	var lightSeen atomic.Int64
	event := func(n int) *protocol.Event {
		src := protocol.SourceSyslog
		if n%7 == 3 {
			src = protocol.SourceAudit
		}
		return &protocol.Event{Source: src, Text: text(n), Origin: protocol.Origin{Host: "h"}}
	}
	appendWhileReading(t, s, total, event, 4, func(r int) func(reads int) bool {
		var evs []*protocol.Event
		var json [][]byte
		return func(reads int) bool {
			st, err := s.Stats(ctx)
			if err != nil || st.Count == 0 {
				return true
			}
			light := (reads+r)%2 == 0
			if light {
				evs, json, _, err = s.ReadPreparedLight(ctx, st.First, 300, evs[:0], json[:0])
			} else {
				evs, json, _, err = s.ReadPrepared(ctx, st.First, 300, evs[:0], json[:0])
			}
			if err != nil {
				t.Error(err)
				return false
			}
			for i, e := range evs {
				if e.Source == "" {
					lightSeen.Add(1)
					if !light || json[i] == nil {
						t.Errorf("light event without JSON or in whole read")
						return false
					}
					if strings.Contains(string(json[i]), `"source":"audit"`) {
						t.Errorf("audit record read light")
						return false
					}
					if !strings.Contains(string(json[i]), `"text":"event `) {
						t.Errorf("bad JSON %.80s", json[i])
						return false
					}
					continue
				}
				var n int
				if _, err := fmt.Sscanf(e.Text, "event %d", &n); err != nil || e.Text != text(n) {
					t.Errorf("event %s: text %.40q", e.ID, e.Text)
					return false
				}
				if (e.Source == protocol.SourceAudit) != (n%7 == 3) {
					t.Errorf("source mismatch")
					return false
				}
				if json[i] != nil && string(protocol.AppendPreparedEventFrame(nil, e.ID, json[i])) != string(protocol.AppendEventFrame(nil, e)) {
					t.Errorf("json not its own")
					return false
				}
			}
			return true
		}
	})
	t.Logf("light events seen: %d", lightSeen.Load())
}
