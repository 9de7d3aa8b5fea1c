package flood

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/zbridge/zbridge/protocol"
)

// FuzzCountsAddUp drives a small limiter (tiny buckets, an address bucket
// shared by its hosts, two hosts an address, one source a shard, two
// message IDs a source) with batches from a handful of sources, clock
// steps, flushes and a store that fails while told to, read from the
// input, and checks the invariant the summaries promise: every event of
// an Append that succeeded was relayed or counted in exactly one summary
// (a failed Append's events in neither), and the summaries' counts are
// the limiter's own.
func FuzzCountsAddUp(f *testing.F) {
	f.Add([]byte{0x10, 0x20, 0x31, 0x00, 0xff, 0x42, 0x43, 0x80, 0x81})
	f.Add([]byte("flood control: the counts add up"))
	f.Add(make([]byte, 64))
	f.Fuzz(func(t *testing.T, data []byte) {
		c := newClock()
		s := &sink{}
		l, err := New(Config{Next: s, Rate: 3, Burst: 2, MsgIDRate: 2, MsgIDBurst: 1, AddrRate: 4, AddrBurst: 3, MaxHostsPerAddr: 2,
			MaxSources: numShards, MaxMsgIDs: 2, IdleTimeout: time.Minute, Interval: time.Hour,
			Logger: quietLogger(), Now: c.Now})
		if err != nil {
			t.Fatal(err)
		}
		sent := 0
		for i := 0; i+1 < len(data); i += 2 {
			op, arg := data[i], data[i+1]
			switch op % 8 {
			case 0:
				c.advance(time.Duration(arg) * 10 * time.Millisecond)
			case 1:
				c.advance(time.Duration(arg) * time.Second)
			case 2:
				l.Flush(context.Background())
			case 3:
				if arg%4 == 0 {
					s.setFail(errors.New("store fails"))
				} else {
					s.setFail(nil)
				}
			default:
				evs := make([]*protocol.Event, 1+int(arg%16))
				for j := range evs {
					b := arg + byte(j)*op
					evs[j] = ev(fmt.Sprintf("10.0.0.%d", op>>6), fmt.Sprintf("h%d", (op>>3)&7),
						fmt.Sprintf("ID%d", b%5), "x")
				}
				if err := l.Append(context.Background(), evs); err == nil {
					sent += len(evs)
				}
			}
		}
		s.setFail(nil)
		if err := l.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		relayed, sums := split(s.events())
		var held uint64
		for _, e := range sums {
			held += heldBack(t, e)
		}
		if st := l.Stats(); uint64(len(relayed))+held != uint64(sent) || held != st.Suppressed {
			t.Fatalf("relayed %d + held back %d != sent %d (Stats %+v)", len(relayed), held, sent, st)
		}
	})
}
