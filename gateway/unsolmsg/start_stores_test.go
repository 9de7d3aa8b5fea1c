package unsolmsg_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/gateway/store"
	"github.com/zbridge/zbridge/gateway/store/diskstore"
	"github.com/zbridge/zbridge/gateway/store/memstore"
	"github.com/zbridge/zbridge/gateway/store/redisstore"
	"github.com/zbridge/zbridge/internal/peer"
	"github.com/zbridge/zbridge/protocol"
	"github.com/zbridge/zbridge/protocol/client"
)

// storeKind is a store implementation: open prepares it for a test (a
// redis-server, for Redis) and returns a constructor of new, empty stores,
// each closed when the test that made it ends.
type storeKind struct {
	name string
	open func(t *testing.T) func(t *testing.T) store.Store
}

// storeKinds are every store: the embedded one in memory and on disk, and Redis (a real
// redis-server; skipped when it is not installed, unless
// ZBRIDGE_REQUIRE_PEERS=1).
var storeKinds = []storeKind{
	{"memstore", func(*testing.T) func(t *testing.T) store.Store {
		return func(t *testing.T) store.Store {
			st := memstore.New(memstore.Config{})
			t.Cleanup(func() { st.Close() })
			return st
		}
	}},
	{"diskstore", func(*testing.T) func(t *testing.T) store.Store {
		return func(t *testing.T) store.Store {
			l := logrus.New()
			l.SetOutput(io.Discard)
			st, err := diskstore.Open(diskstore.Config{Dir: t.TempDir(), Logger: l})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		}
	}},
	{"redisstore", func(t *testing.T) func(t *testing.T) store.Store {
		addr, _ := peer.StartRedis(t)
		n := 0
		return func(t *testing.T) store.Store {
			t.Helper()
			o, err := redisstore.ParseURL("redis://" + addr)
			if err != nil {
				t.Fatal(err)
			}
			rdb := redis.NewUniversalClient(o)
			n++ // a prefix of its own: an empty store
			l := logrus.New()
			l.SetOutput(io.Discard)
			st, err := redisstore.New(redisstore.Config{Client: rdb, Prefix: fmt.Sprint("start", n), Logger: l,
				TailBlock: 100 * time.Millisecond}) // Close waits for one blocking read
			if err != nil {
				rdb.Close()
				t.Fatal(err)
			}
			t.Cleanup(func() {
				st.Close()
				rdb.Close()
			})
			return st
		}
	}},
}

// TestStartEveryStore runs the resume scenarios of TestSubscriptionStart
// end to end, through the server, over each store: where a plain, durable
// and group subscription starts, including the two resume bugs fixed in
// the past.
func TestStartEveryStore(t *testing.T) {
	scenarios := []struct {
		name string
		run  func(t *testing.T, st store.Store, addr string)
	}{
		{"plain/no after: after the newest", func(t *testing.T, st store.Store, addr string) {
			old := syslogEvents(3, "old")
			appendTo(t, st, old)
			c := dial(t, addr)
			if after := subscribeWith(t, c, client.Subscription{}); after != old[2].ID.String() {
				t.Fatalf("reply after %s, want the newest %s", after, old[2].ID)
			}
			late := syslogEvents(2, "late")
			appendTo(t, st, late)
			expectEvents(t, c, late)
		}},
		{"plain/after 0: every retained event", func(t *testing.T, st store.Store, addr string) {
			old := syslogEvents(3, "old")
			appendTo(t, st, old)
			c := dial(t, addr)
			if after := subscribeWith(t, c, client.Subscription{After: "0"}); after != "0-0" {
				t.Fatalf("reply after %s, want 0-0", after)
			}
			expectEvents(t, c, old)
		}},
		{"durable/new, gone before an ack: resumes at its start, after ignored", func(t *testing.T, st store.Store, addr string) {
			old := syslogEvents(3, "old")
			appendTo(t, st, old)
			c := dial(t, addr)
			start := subscribeWith(t, c, client.Subscription{Name: "auto"})
			if start != old[2].ID.String() {
				t.Fatalf("reply after %s, want the newest %s", start, old[2].ID)
			}
			c.Close()
			late := syslogEvents(2, "late")
			appendTo(t, st, late)
			c2 := dial(t, addr)
			if after := subscribeWith(t, c2, client.Subscription{Name: "auto", After: "0"}); after != start {
				t.Fatalf("resumed after %s, want its start %s", after, start)
			}
			expectEvents(t, c2, late)
		}},
		{"durable/resumed: an ack of what the store held at the subscribe is taken", func(t *testing.T, st store.Store, addr string) {
			c := dial(t, addr)
			subscribeWith(t, c, client.Subscription{Name: "auto"})
			evs := syslogEvents(3, "ev")
			appendTo(t, st, evs)
			expectEvents(t, c, evs)
			c.Close() // before acking them
			c2 := dial(t, addr)
			subscribeWith(t, c2, client.Subscription{Name: "auto"})
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			// Acked as soon as subscribed: received by the earlier session.
			if err := c2.AckWait(ctx, evs[2].ID.String()); err != nil {
				t.Fatalf("ack: %v", err)
			}
			if id, _, err := st.Position(ctx, "unsolmsg:tester:auto"); err != nil || id != evs[2].ID {
				t.Fatalf("position %s (%v), want %s", id, err, evs[2].ID)
			}
			expectEvents(t, c2, evs)
		}},
		{"durable/new on an empty store: recorded at 0-0, resumes with every event", func(t *testing.T, st store.Store, addr string) {
			c := dial(t, addr)
			if after := subscribeWith(t, c, client.Subscription{Name: "auto"}); after != "0-0" {
				t.Fatalf("reply after %s, want 0-0", after)
			}
			c.Close()
			evs := syslogEvents(2, "ev")
			appendTo(t, st, evs)
			c2 := dial(t, addr)
			if after := subscribeWith(t, c2, client.Subscription{Name: "auto"}); after != "0-0" {
				t.Fatalf("resumed after %s, want 0-0", after)
			}
			expectEvents(t, c2, evs)
		}},
		{"group/no after on an empty store: an event stored right after the reply arrives (bug)", func(t *testing.T, st store.Store, addr string) {
			c := dial(t, addr)
			subscribeWith(t, c, client.Subscription{Group: "g"})
			evs := syslogEvents(1, "first")
			appendTo(t, st, evs)
			expectEvents(t, c, evs)
		}},
		{"group/after 0: every retained event, not the newest (bug)", func(t *testing.T, st store.Store, addr string) {
			old := syslogEvents(3, "old")
			appendTo(t, st, old)
			c := dial(t, addr)
			subscribeWith(t, c, client.Subscription{Group: "g", After: "0"})
			expectEvents(t, c, old)
		}},
		{"group and new durable/after later than the newest: bad request, nothing kept (it wedged a group)", func(t *testing.T, st store.Store, addr string) {
			old := syslogEvents(2, "old")
			appendTo(t, st, old)
			c := dial(t, addr)
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			for _, after := range []protocol.ID{{Ms: old[1].ID.Ms, Seq: old[1].ID.Seq + 1}, {Ms: 99999999999999}} {
				for _, s := range []client.Subscription{{Group: "g", After: after.String()}, {Name: "auto", After: after.String()}} {
					_, err := c.SubscribeWith(ctx, s)
					var re *client.ReplyError
					if !errors.As(err, &re) || re.Code != protocol.ErrCodeBadRequest {
						t.Fatalf("subscribe %+v: %v, want a bad-request reply error", s, err)
					}
					if strings.Contains(re.Message, old[1].ID.String()) {
						t.Errorf("the refusal names the newest ID: %q", re.Message)
					}
				}
			}
			if _, ok, err := st.Position(ctx, "unsolmsg:tester:auto"); err != nil || ok {
				t.Errorf("position of the refused subscription: recorded %v, error %v", ok, err)
			}
			// The group was not made: a member subscribing as usual gets
			// the next event.
			m := dial(t, addr)
			subscribeWith(t, m, client.Subscription{Group: "g"})
			late := syslogEvents(1, "late")
			appendTo(t, st, late)
			expectEvents(t, m, late)
			// A plain subscription keeps nothing: it may name any ID.
			p := dial(t, addr)
			subscribeWith(t, p, client.Subscription{After: protocol.ID{Ms: late[0].ID.Ms + 1}.String()})
		}},
		{"malformed after: bad request", func(t *testing.T, st store.Store, addr string) {
			c := dial(t, addr)
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			for _, s := range []client.Subscription{{After: "x"}, {Name: "auto", After: "x"}, {Group: "g", After: "x"}} {
				_, err := c.SubscribeWith(ctx, s)
				var re *client.ReplyError
				if !errors.As(err, &re) || re.Code != protocol.ErrCodeBadRequest {
					t.Errorf("subscribe %+v: %v, want a bad-request reply error", s, err)
				}
			}
			// Nothing was recorded for the durable subscription refused.
			if _, ok, err := st.Position(ctx, "unsolmsg:tester:auto"); err != nil || ok {
				t.Errorf("position of the refused subscription: recorded %v, error %v", ok, err)
			}
		}},
	}
	for _, kind := range storeKinds {
		t.Run(kind.name, func(t *testing.T) {
			newStore := kind.open(t)
			for _, sc := range scenarios {
				t.Run(sc.name, func(t *testing.T) {
					st := newStore(t)
					sc.run(t, st, startOn(t, st, 0))
				})
			}
		})
	}
}
