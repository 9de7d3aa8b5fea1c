package flood

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/internal/leakcheck"
	"github.com/zbridge/zbridge/protocol"
	"github.com/zbridge/zbridge/zos"
)

// sink is a Next that records what it is given.
type sink struct {
	mu   sync.Mutex
	evs  []*protocol.Event
	fail error // returned (and nothing kept) while set
}

func (s *sink) Append(_ context.Context, evs []*protocol.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	s.evs = append(s.evs, evs...)
	return nil
}

func (s *sink) setFail(err error) {
	s.mu.Lock()
	s.fail = err
	s.mu.Unlock()
}

func (s *sink) events() []*protocol.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*protocol.Event(nil), s.evs...)
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func quietLogger() logrus.FieldLogger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}

// newTest returns a limiter over a sink with clock c (the flusher's
// interval is an hour: tests call Flush), closed at cleanup.
func newTest(t *testing.T, c *clock, mod func(*Config)) (*Limiter, *sink) {
	t.Helper()
	leakcheck.Check(t)
	s := &sink{}
	cfg := Config{Next: s, Rate: 10, Burst: 5, Interval: time.Hour, Logger: quietLogger(), Now: c.Now}
	if mod != nil {
		mod(&cfg)
	}
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close(context.Background()) })
	return l, s
}

func ev(addr, host, msgid, text string) *protocol.Event {
	return &protocol.Event{Origin: protocol.Origin{Addr: addr, Host: host, System: host}, MsgID: msgid,
		Source: protocol.SourceSyslog, Text: text, Parsed: true}
}

func batch(n int, addr, host, msgid string) []*protocol.Event {
	evs := make([]*protocol.Event, n)
	for i := range evs {
		evs[i] = ev(addr, host, msgid, fmt.Sprintf("%s message %d", host, i))
	}
	return evs
}

func appendAll(t *testing.T, l *Limiter, evs []*protocol.Event) {
	t.Helper()
	if err := l.Append(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
}

// split returns the syslog events and the summaries of evs.
func split(evs []*protocol.Event) (relayed, sums []*protocol.Event) {
	for _, e := range evs {
		if e.MsgID == SummaryMsgID && e.Source == protocol.SourceRegion {
			sums = append(sums, e)
		} else {
			relayed = append(relayed, e)
		}
	}
	return relayed, sums
}

var heldRE = regexp.MustCompile(`^ZBR101E FLOOD CONTROL HELD BACK (\d+) EVENTS FROM `)

// heldBack returns the count a summary states.
func heldBack(t testing.TB, e *protocol.Event) uint64 {
	t.Helper()
	m := heldRE.FindStringSubmatch(e.Text)
	if m == nil {
		t.Fatalf("not a summary: %q", e.Text)
	}
	n, _ := strconv.ParseUint(m[1], 10, 64)
	return n
}

func TestConfig(t *testing.T) {
	s := &sink{}
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"no next", Config{Logger: quietLogger(), Rate: 1, Burst: 1}},
		{"no logger", Config{Next: s, Rate: 1, Burst: 1}},
		{"negative rate", Config{Next: s, Logger: quietLogger(), Rate: -1, Burst: 1}},
		{"NaN rate", Config{Next: s, Logger: quietLogger(), MsgIDRate: nan(), MsgIDBurst: 1}},
		{"rate without burst", Config{Next: s, Logger: quietLogger(), Rate: 1}},
		{"msgid rate without burst", Config{Next: s, Logger: quietLogger(), MsgIDRate: 1}},
		{"negative interval", Config{Next: s, Logger: quietLogger(), Rate: 1, Burst: 1, Interval: -1}},
		{"negative max sources", Config{Next: s, Logger: quietLogger(), Rate: 1, Burst: 1, MaxSources: -1}},
		{"infinite addr rate", Config{Next: s, Logger: quietLogger(), Rate: 1, Burst: 1, AddrRate: math.Inf(1), AddrBurst: 1}},
		{"addr rate without burst", Config{Next: s, Logger: quietLogger(), Rate: 1, Burst: 1, AddrRate: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.cfg); !errors.Is(err, ErrConfig) {
				t.Fatalf("New: %v, want ErrConfig", err)
			}
		})
	}
	d := DefaultConfig()
	if !d.Enabled() || d.Rate != DefaultRate || d.Burst != DefaultBurst || d.MsgIDRate != DefaultMsgIDRate ||
		d.AddrRate != DefaultAddrRate || d.AddrBurst != DefaultAddrBurst {
		t.Errorf("DefaultConfig() = %+v", d)
	}
	if (&Config{}).Enabled() {
		t.Error("the zero Config says it limits something")
	}
	if (&Config{AddrRate: 1, AddrBurst: 1}).Enabled() {
		t.Error("a per-address limit alone turns flood control on")
	}
}

func nan() float64 { z := 0.0; return z / z }

// TestBucket: a source gets Burst at once, then Rate per second, never
// more than Burst saved up; what is held back is summarised once, with the
// exact count, and nothing is summarised twice.
func TestBucket(t *testing.T) {
	c := newClock()
	l, s := newTest(t, c, nil) // 10/s, burst 5
	appendAll(t, l, batch(8, "192.0.2.1", "web1", ""))
	if got := len(s.events()); got != 5 {
		t.Fatalf("%d events passed at once, want the burst of 5", got)
	}
	c.advance(100 * time.Millisecond) // one token
	appendAll(t, l, batch(3, "192.0.2.1", "web1", ""))
	if got := len(s.events()); got != 6 {
		t.Fatalf("%d events passed after 100ms, want 6", got)
	}
	c.advance(250 * time.Millisecond) // 2.5 tokens
	appendAll(t, l, batch(3, "192.0.2.1", "web1", ""))
	if got := len(s.events()); got != 8 {
		t.Fatalf("%d events passed after 250ms more, want 8", got)
	}
	c.advance(50 * time.Millisecond) // 0.5 + 0.5 = 1 token
	appendAll(t, l, batch(1, "192.0.2.1", "web1", ""))
	if got := len(s.events()); got != 9 {
		t.Fatalf("%d events passed after 50ms more, want 9", got)
	}
	c.advance(time.Hour) // full again: 5, not 36000
	appendAll(t, l, batch(7, "192.0.2.1", "web1", ""))
	if got := len(s.events()); got != 14 {
		t.Fatalf("%d events passed after an hour, want 14", got)
	}
	if st := l.Stats(); st.Suppressed != 3+2+1+0+2 {
		t.Fatalf("Stats().Suppressed = %d, want 8", st.Suppressed)
	}
	if err := l.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	relayed, sums := split(s.events())
	if len(relayed) != 14 || len(sums) != 1 || heldBack(t, sums[0]) != 8 {
		t.Fatalf("%d relayed, summaries %v", len(relayed), texts(sums))
	}
	sum := sums[0]
	if sum.Origin.Host != "web1" || sum.Origin.System != "web1" || sum.Origin.Addr != "192.0.2.1" ||
		sum.Severity != protocol.SevWarning || sum.Source != protocol.SourceRegion || !sum.Parsed ||
		sum.Received.IsZero() {
		t.Errorf("summary %+v", sum)
	}
	want := `ZBR101E FLOOD CONTROL HELD BACK 8 EVENTS FROM web1 AT 192.0.2.1 BETWEEN 12:00:00.000 AND 13:00:00.400 UTC ` +
		`(LIMITS 10/S BURST 5 PER HOST); BY LIMIT HOST=8; TOP IDS -=8; FIRST "web1 message 5"; LAST "web1 message 6"`
	if sum.Text != want {
		t.Errorf("summary text\n got %s\nwant %s", sum.Text, want)
	}
	// The layout is the one the message catalogue documents.
	if m, ok := zos.Lookup(SummaryMsgID); !ok || !m.Pattern().MatchString(sum.Text) {
		t.Errorf("summary text %q is not in the layout of catalogue message %s", sum.Text, SummaryMsgID)
	}
	// Nothing more to say.
	if err := l.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, sums := split(s.events()); len(sums) != 1 {
		t.Fatalf("a second Flush summarised again: %v", texts(sums))
	}
	if st := l.Stats(); st.Summaries != 1 {
		t.Errorf("Stats().Summaries = %d", st.Summaries)
	}
}

func texts(evs []*protocol.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Text)
	}
	return out
}

// TestMsgIDLimit: a runaway message ID is held back while the same host's
// other messages go on, and what is held back takes no token from the
// host.
func TestMsgIDLimit(t *testing.T) {
	c := newClock()
	l, s := newTest(t, c, func(cfg *Config) { cfg.Rate, cfg.Burst, cfg.MsgIDRate, cfg.MsgIDBurst = 100, 20, 10, 3 })
	appendAll(t, l, batch(50, "192.0.2.1", "web1", "RUNAWAY"))
	appendAll(t, l, batch(10, "192.0.2.1", "web1", "OTHER"))
	// The App names the ID when MSGID is empty.
	kern := batch(2, "192.0.2.1", "web1", "")
	for _, e := range kern {
		e.App = "kernel"
	}
	appendAll(t, l, kern)
	relayed, _ := split(s.events())
	count := map[string]int{}
	for _, e := range relayed {
		count[e.MsgID+e.App]++
	}
	if count["RUNAWAY"] != 3 || count["OTHER"] != 3 || count["kernel"] != 2 {
		t.Fatalf("relayed by ID: %v; want RUNAWAY 3, OTHER 3, kernel 2", count)
	}
	if err := l.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, sums := split(s.events())
	if len(sums) != 1 || heldBack(t, sums[0]) != 47+7 {
		t.Fatalf("summaries %v", texts(sums))
	}
	if !strings.Contains(sums[0].Text, "TOP IDS RUNAWAY=47 OTHER=7;") ||
		!strings.Contains(sums[0].Text, "(LIMITS 100/S BURST 20 PER HOST, 10/S BURST 3 PER MESSAGE ID); BY LIMIT MESSAGE-ID=54;") {
		t.Errorf("summary %q", sums[0].Text)
	}
	// A second later the host's bucket is full again (20), RUNAWAY's
	// holds its burst of 3 (not 10: a bucket never holds more than its
	// burst), and a new ID gets its burst of 3.
	c.advance(time.Second)
	appendAll(t, l, batch(20, "192.0.2.1", "web1", "RUNAWAY"))
	appendAll(t, l, batch(5, "192.0.2.1", "web1", "NEW"))
	relayed, _ = split(s.events())
	if len(relayed) != 8+3+3 {
		t.Fatalf("%d relayed after a second, want 14", len(relayed))
	}
}

// TestKeys: the same host name from another address is another source; an
// address's host names beyond MaxHostsPerAddr share one bucket (a sender
// rotating names does not escape); another address is not affected.
func TestKeys(t *testing.T) {
	c := newClock()
	l, s := newTest(t, c, func(cfg *Config) { cfg.Rate, cfg.Burst, cfg.MaxHostsPerAddr = 1, 2, 3 })
	// web1 from two addresses: two buckets.
	appendAll(t, l, batch(2, "192.0.2.1", "web1", ""))
	appendAll(t, l, batch(2, "192.0.2.2", "web1", ""))
	if got := len(s.events()); got != 4 {
		t.Fatalf("%d passed, want 4: the same name from another address is another source", got)
	}
	// 192.0.2.1 rotates names: web1 plus two more get buckets, the rest
	// share one.
	var rot []*protocol.Event
	for i := range 100 {
		rot = append(rot, ev("192.0.2.1", fmt.Sprintf("fake%d", i), "", "x"))
	}
	appendAll(t, l, rot)
	// fake0 and fake1 (one event each) get buckets of their own;
	// fake2..fake99 share the overflow bucket, which lets 2 through.
	if got := len(s.events()); got != 4+2+2 {
		t.Fatalf("%d passed, want 8: names beyond 3 share one bucket", got)
	}
	// Another address is unaffected.
	appendAll(t, l, batch(2, "192.0.2.3", "db1", ""))
	if got := len(s.events()); got != 10 {
		t.Fatalf("%d passed, want 10", got)
	}
	if err := l.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, sums := split(s.events())
	if len(sums) != 1 || heldBack(t, sums[0]) != 96 || sums[0].Origin.Host != Overflow ||
		sums[0].Origin.Addr != "192.0.2.1" ||
		!strings.Contains(sums[0].Text, "FROM * (HOST NAMES BEYOND 3 OF ONE ADDRESS OR THE TABLE'S 8192) AT 192.0.2.1 ") {
		t.Fatalf("summaries %v", texts(sums))
	}
	found := false
	for _, ss := range l.Sources() {
		if ss.Addr == "192.0.2.1" && ss.Host == Overflow && ss.Suppressed == 96 {
			found = true
		}
	}
	if !found {
		t.Errorf("Sources() = %+v, want 192.0.2.1 * 96", l.Sources())
	}
}

// TestTableFull: when a shard is full of sources with something to
// summarise, a new source shares the table's overflow bucket; once they are
// summarised, they make room again.
func TestTableFull(t *testing.T) {
	c := newClock()
	l, s := newTest(t, c, func(cfg *Config) { cfg.Rate, cfg.Burst, cfg.MaxSources = 1, 1, numShards }) // one a shard
	sent := 0
	for i := range 200 {
		evs := batch(2, fmt.Sprintf("198.51.100.%d", i), "h", "")
		sent += len(evs)
		appendAll(t, l, evs)
	}
	st := l.Stats()
	if st.Sources > numShards+1 {
		t.Fatalf("%d sources tracked, want at most %d", st.Sources, numShards+1)
	}
	if err := l.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	relayed, sums := split(s.events())
	var held uint64
	overflow := false
	for _, e := range sums {
		held += heldBack(t, e)
		if e.Origin.Host == Overflow && e.Origin.Addr == "" && strings.Contains(e.Text, "SOURCES BEYOND THE TABLE'S 16") {
			overflow = true
		}
	}
	if !overflow || uint64(len(relayed))+held != uint64(sent) {
		t.Fatalf("relayed %d + held %d != sent %d; overflow summary %v: %v", len(relayed), held, sent, overflow, texts(sums))
	}
	// Summarised, the sources can be replaced.
	appendAll(t, l, batch(1, "203.0.113.1", "new", ""))
	if got, _ := split(s.events()); len(got) != len(relayed)+1 {
		t.Fatal("a new source did not get a bucket of its own after the summaries")
	}
}

// TestTableFullFairShare: senders at 33 addresses, each claiming 256 host
// names and keeping something held back for every one (so that none is
// evicted as idle), fill the table with the default limits, and a flood
// from a further address drains the table's overflow bucket. A quiet host
// at an address of its own, one event a second, still gets every event
// through: its source takes the place of one of an address with many
// (whose summary is taken first), so it neither waits for the next
// interval nor shares the flood's bucket. Addresses of one IPv6 /64 count
// as one address, and never fill the table. Every event is relayed or
// counted in exactly one summary.
func TestTableFullFairShare(t *testing.T) {
	if testing.Short() {
		t.Skip("fills the flood table three times: not in -short")
	}
	for _, tt := range []struct {
		name     string
		attacker func(i int) string // the i-th flooding address
		drainer  string             // the address that empties the overflow bucket
		full     bool               // the table fills up
	}{
		{"IPv4 addresses", func(i int) string { return fmt.Sprintf("198.51.100.%d", i+1) }, "203.0.113.1", true},
		{"IPv6 /64s", func(i int) string { return fmt.Sprintf("2001:db8:%x::1", i+1) }, "2001:db8:ff::1", true},
		{"addresses of one IPv6 /64", func(i int) string { return fmt.Sprintf("2001:db8::%x", i+1) }, "2001:db8::ff", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := newClock()
			n := &counter{}
			l, _ := newTest(t, c, func(cfg *Config) {
				d := DefaultConfig()
				d.Next, d.Logger, d.Interval, d.Now = n, cfg.Logger, cfg.Interval, cfg.Now
				*cfg = d
			})
			sent := 0
			send := func(addr, host string, k int) {
				t.Helper()
				appendAll(t, l, batch(k, addr, host, ""))
				sent += k
			}
			// Each address spends its address bucket (32 events from
			// each of its names), then one more event of each name is
			// held back.
			for a := range 33 {
				for h := range DefaultMaxHostsPerAddr {
					send(tt.attacker(a), fmt.Sprintf("h%d", h), 32)
				}
				for h := range DefaultMaxHostsPerAddr {
					send(tt.attacker(a), fmt.Sprintf("h%d", h), 1)
				}
			}
			for h := range 64 {
				send(tt.drainer, fmt.Sprintf("x%d", h), 64)
			}
			st := l.Stats()
			t.Logf("sources tracked: %d of %d", st.Sources, DefaultMaxSources)
			if full := st.Sources >= DefaultMaxSources*9/10; full != tt.full {
				t.Fatalf("%d sources tracked: the table full %v, want %v", st.Sources, full, tt.full)
			}
			// The quiet host, while the flood goes on.
			for range 10 {
				c.advance(time.Second)
				send(tt.drainer, "x0", 1000)
				send("192.0.2.77", "web1", 1)
			}
			n.mu.Lock()
			got := n.byHost["web1"]
			n.mu.Unlock()
			if got != 10 {
				t.Errorf("the quiet host at an address of its own: %d of 10 events passed", got)
			}
			if err := l.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			n.mu.Lock()
			defer n.mu.Unlock()
			relayed := 0
			for _, k := range n.byHost {
				relayed += k
			}
			var held uint64
			for _, e := range n.sums {
				held += heldBack(t, e)
			}
			if uint64(relayed)+held != uint64(sent) {
				t.Errorf("relayed %d + held back %d in %d summaries != sent %d", relayed, held, len(n.sums), sent)
			}
		})
	}
}

// TestEvictedSummaries: a source evicted with events held back is
// summarised at the next Flush under its own name; once a shard has as
// many such summaries waiting as it holds sources, an evicted source's
// counts go to the table's overflow summary instead. The counts stay
// exact either way.
func TestEvictedSummaries(t *testing.T) {
	c := newClock()
	l, s := newTest(t, c, func(cfg *Config) { cfg.Rate, cfg.Burst, cfg.MaxSources = 1, 1, numShards }) // one a shard
	// Hosts of one address whose sources fall in shard 0.
	var hosts []string
	for i := 0; len(hosts) < 3; i++ {
		if h := fmt.Sprintf("h%d", i); l.shardOf(srcKey{"192.0.2.1", h}) == &l.shards[0] {
			hosts = append(hosts, h)
		}
	}
	for _, h := range hosts {
		appendAll(t, l, batch(3, "192.0.2.1", h, "ID")) // 1 passes, 2 held back
		sh := &l.shards[0]
		sh.mu.Lock()
		src := sh.m[srcKey{"192.0.2.1", h}]
		if src == nil || src.held != 2 {
			sh.mu.Unlock()
			t.Fatalf("%s: source %+v, want 2 held back", h, src)
		}
		l.evictLocked(sh, src, l.clock())
		sh.mu.Unlock()
	}
	if err := l.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	relayed, sums := split(s.events())
	var own, over uint64
	for _, e := range sums {
		switch {
		case e.Origin.Host == hosts[0] && e.Origin.Addr == "192.0.2.1":
			own += heldBack(t, e)
		case e.Origin.Host == Overflow && e.Origin.Addr == "" && strings.Contains(e.Text, "TOP IDS ID=4;"):
			over += heldBack(t, e)
		default:
			t.Errorf("summary %q", e.Text)
		}
	}
	if len(relayed) != 3 || own != 2 || over != 4 {
		t.Errorf("relayed %d, %s's summary %d, the overflow's %d; want 3, 2 and 4: %v", len(relayed), hosts[0], own, over, texts(sums))
	}
}

// TestIPv6Prefix: the addresses of one IPv6 /64 share one host limit and
// one address bucket, and their names beyond the limit share the /64's
// overflow source, summarised as the /64 (its address as the origin); an
// IPv4 address, and an IPv6 address in another /64, have their own.
func TestIPv6Prefix(t *testing.T) {
	c := newClock()
	l, s := newTest(t, c, func(cfg *Config) {
		cfg.Rate, cfg.Burst, cfg.AddrRate, cfg.AddrBurst, cfg.MaxHostsPerAddr = 1, 2, 1, 4, 2
	})
	appendAll(t, l, batch(2, "2001:db8::1", "a", ""))
	appendAll(t, l, batch(2, "2001:db8::2", "b", "")) // the /64's bucket is spent
	appendAll(t, l, batch(2, "2001:db8::3", "c", "")) // beyond 2 names: the /64's overflow source
	appendAll(t, l, batch(2, "2001:db8:1::1", "a", ""))
	appendAll(t, l, batch(2, "::ffff:192.0.2.1", "a", ""))
	if relayed, _ := split(s.events()); len(relayed) != 8 {
		t.Fatalf("%d relayed, want 8", len(relayed))
	}
	if err := l.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, sums := split(s.events())
	if len(sums) != 1 || heldBack(t, sums[0]) != 2 || sums[0].Origin.Host != Overflow || sums[0].Origin.Addr != "2001:db8::" ||
		!strings.Contains(sums[0].Text, "FROM * (HOST NAMES BEYOND 2 OF ONE ADDRESS OR THE TABLE'S 8192) AT 2001:db8::/64 ") {
		t.Fatalf("summaries %v", texts(sums))
	}
	f, err := protocol.ParseFilter("addr=2001:db8::/64")
	if err != nil {
		t.Fatal(err)
	}
	if !f.Match(sums[0]) {
		t.Error("the /64's summary does not match a filter on the /64")
	}
}

// TestIdle: sources and message IDs idle for IdleTimeout with nothing to
// summarise are forgotten; a source with something to summarise is kept.
func TestIdle(t *testing.T) {
	c := newClock()
	l, _ := newTest(t, c, func(cfg *Config) { cfg.IdleTimeout = time.Minute })
	appendAll(t, l, batch(1, "192.0.2.1", "a", "ID1"))
	appendAll(t, l, batch(9, "192.0.2.2", "b", "ID2")) // 4 held back
	c.advance(2 * time.Minute)
	l.Flush(context.Background())       // b is summarised, a forgotten
	if n := l.Stats().Sources; n != 2 { // b and the table's overflow
		t.Fatalf("%d sources after the first flush, want 2", n)
	}
	c.advance(2 * time.Minute)
	l.Flush(context.Background())
	if n := l.Stats().Sources; n != 1 {
		t.Fatalf("%d sources after the second flush, want 1 (the table's overflow)", n)
	}
	l.addrs.mu.Lock()
	n := len(l.addrs.m)
	l.addrs.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d addresses still counted", n)
	}
}

// TestText: the first and last texts are cut to 120 bytes on a character
// boundary, marked, and quoted; odd names are quoted.
func TestText(t *testing.T) {
	c := newClock()
	l, s := newTest(t, c, func(cfg *Config) { cfg.Burst = 1 })
	long := strings.Repeat("é", 100) // 200 bytes
	evs := []*protocol.Event{
		ev("192.0.2.1", "bad name\n", "", "passes"),
		ev("192.0.2.1", "bad name\n", "", long),
		ev("192.0.2.1", "bad name\n", "", "last\x1b[31m"),
	}
	appendAll(t, l, evs)
	l.Flush(context.Background())
	_, sums := split(s.events())
	if len(sums) != 1 {
		t.Fatalf("summaries %v", texts(sums))
	}
	want := `FROM "bad name\n" AT 192.0.2.1 `
	first := strconv.Quote(strings.Repeat("é", 60) + "…")
	if !strings.Contains(sums[0].Text, want) || !strings.Contains(sums[0].Text, "FIRST "+first+"; LAST \"last\\x1b[31m\"") {
		t.Errorf("summary %s", sums[0].Text)
	}
	var tx text
	tx.set(strings.Repeat("a", 119) + "é")
	if got := tx.String(); got != strings.Repeat("a", 119)+"…" || !utf8.ValidString(got) {
		t.Errorf("cut text %q", got)
	}
}

// TestNextFails: summaries the store does not take are kept and appended
// with the next Flush; the count still adds up.
func TestNextFails(t *testing.T) {
	c := newClock()
	l, s := newTest(t, c, nil)
	appendAll(t, l, batch(10, "192.0.2.1", "web1", ""))
	s.setFail(errors.New("disk full"))
	if err := l.Flush(context.Background()); err == nil {
		t.Fatal("Flush did not report the store's error")
	}
	if l.Stats().Pending != 1 {
		t.Fatalf("Stats() = %+v, want 1 pending", l.Stats())
	}
	l.Append(context.Background(), batch(4, "192.0.2.1", "web1", "")) // 4 more held back
	s.setFail(nil)
	if err := l.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, sums := split(s.events())
	if len(sums) != 2 || heldBack(t, sums[0])+heldBack(t, sums[1]) != 9 {
		t.Fatalf("summaries %v", texts(sums))
	}
}

// TestClose: Close appends the last summaries and stops the flusher; after
// it, Append passes everything; a second Close does nothing.
func TestClose(t *testing.T) {
	c := newClock()
	l, s := newTest(t, c, nil)
	appendAll(t, l, batch(10, "192.0.2.1", "web1", ""))
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, sums := split(s.events()); len(sums) != 1 || heldBack(t, sums[0]) != 5 {
		t.Fatalf("summaries at Close: %v", texts(sums))
	}
	appendAll(t, l, batch(10, "192.0.2.1", "web1", ""))
	if relayed, _ := split(s.events()); len(relayed) != 15 {
		t.Fatalf("%d relayed; after Close every event passes", len(relayed))
	}
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestFlusher: the flusher appends summaries every Interval by itself.
func TestFlusher(t *testing.T) {
	leakcheck.Check(t)
	s := &sink{}
	l, err := New(Config{Next: s, Rate: 1, Burst: 1, Interval: 20 * time.Millisecond, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(context.Background())
	appendAll(t, l, batch(3, "192.0.2.1", "web1", ""))
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, sums := split(s.events()); len(sums) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no summary from the flusher")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestPassThrough: a batch with nothing held back is handed on as it is
// (the same slice), and Append does not modify a filtered batch.
func TestPassThrough(t *testing.T) {
	c := newClock()
	var got, cur []*protocol.Event
	var same bool // the slice handed on is the caller's
	next := appenderFunc(func(_ context.Context, evs []*protocol.Event) error {
		got = append(got[:0], evs...)
		same = &evs[0] == &cur[0]
		return nil
	})
	l, err := New(Config{Next: next, Rate: 10, Burst: 5, Interval: time.Hour, Logger: quietLogger(), Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(context.Background())
	evs := batch(3, "192.0.2.1", "a", "")
	cur = evs
	appendAll(t, l, evs)
	if !same || len(got) != 3 {
		t.Fatal("a batch with nothing held back was not handed on as it is")
	}
	evs = batch(6, "192.0.2.1", "a", "")
	for _, e := range evs {
		ot := c.Now().Add(-time.Second)
		e.OriginTime = &ot
	}
	cur = evs
	orig := append([]*protocol.Event(nil), evs...)
	appendAll(t, l, evs)
	// The events passed on from a filtered batch are copies, origin time
	// included, so that the parser's slab of the held-back ones is not
	// kept alive by them.
	if same || len(got) != 2 || got[0] == evs[0] || got[0].Text != evs[0].Text || got[1].Text != evs[1].Text ||
		got[0].OriginTime == evs[0].OriginTime || !got[0].OriginTime.Equal(*evs[0].OriginTime) {
		t.Fatalf("filtered batch: %d events: %+v", len(got), got)
	}
	for i := range evs {
		if evs[i] != orig[i] {
			t.Fatal("Append modified the caller's slice")
		}
	}
}

type appenderFunc func(context.Context, []*protocol.Event) error

func (f appenderFunc) Append(ctx context.Context, evs []*protocol.Event) error { return f(ctx, evs) }

// TestConcurrent: many connections appending at once, with the flusher and
// scrapes running, under the real clock, and the store failing one batch
// in ten: every event of an Append that succeeded is relayed or counted in
// exactly one summary. Run it with -race.
func TestConcurrent(t *testing.T) {
	leakcheck.Check(t)
	s := &sink{}
	var calls atomic.Int64
	next := appenderFunc(func(ctx context.Context, evs []*protocol.Event) error {
		if evs[0].Source == protocol.SourceSyslog && calls.Add(1)%10 == 0 {
			return errors.New("store fails")
		}
		return s.Append(ctx, evs)
	})
	l, err := New(Config{Next: next, Rate: 2000, Burst: 500, MsgIDRate: 1000, MsgIDBurst: 200, AddrRate: 4000,
		AddrBurst: 1000, MaxHostsPerAddr: 4, MaxSources: 64, Interval: 5 * time.Millisecond, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	var sent atomic.Int64
	var senders, scraper sync.WaitGroup
	stop := make(chan struct{})
	for g := range 8 {
		senders.Add(1)
		go func() {
			defer senders.Done()
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for range 300 {
				evs := make([]*protocol.Event, 1+r.IntN(100))
				for i := range evs {
					evs[i] = ev(fmt.Sprintf("10.0.0.%d", r.IntN(4)), fmt.Sprintf("h%d", r.IntN(8)),
						fmt.Sprintf("ID%d", r.IntN(20)), "x")
				}
				if err := l.Append(context.Background(), evs); err == nil {
					sent.Add(int64(len(evs)))
				}
			}
		}()
	}
	scraper.Add(1)
	go func() {
		defer scraper.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			l.Stats()
			l.Sources()
			runtime.Gosched()
		}
	}()
	senders.Wait()
	close(stop)
	scraper.Wait()
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	relayed, sums := split(s.events())
	var held uint64
	for _, e := range sums {
		held += heldBack(t, e)
	}
	st := l.Stats()
	if uint64(len(relayed))+held != uint64(sent.Load()) || held != st.Suppressed {
		t.Fatalf("relayed %d + held back %d in %d summaries = %d, sent %d (Stats %+v)",
			len(relayed), held, len(sums), uint64(len(relayed))+held, sent.Load(), st)
	}
	t.Logf("sent %d, relayed %d, held back %d in %d summaries", sent.Load(), len(relayed), held, len(sums))
}

// counter is a Next that counts the syslog events it is given by host,
// and keeps the summaries.
type counter struct {
	mu     sync.Mutex
	byHost map[string]int
	sums   []*protocol.Event
}

func (c *counter) Append(_ context.Context, evs []*protocol.Event) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byHost == nil {
		c.byHost = make(map[string]int)
	}
	for _, e := range evs {
		if e.Source == protocol.SourceRegion && e.MsgID == SummaryMsgID {
			c.sums = append(c.sums, e)
		} else {
			c.byHost[e.Origin.Host]++
		}
	}
	return nil
}

// TestRotatingHosts: one address claiming many host names gets, at once,
// the address's burst in all (4 × Burst by default), not a burst for each
// of its first MaxHostsPerAddr names (which was 256 × Burst); the rest is
// held back by the address's limit and summarised.
func TestRotatingHosts(t *testing.T) {
	c := newClock()
	n := &counter{}
	l, _ := newTest(t, c, func(cfg *Config) {
		d := DefaultConfig()
		d.Next, d.Logger, d.Interval, d.Now = n, cfg.Logger, cfg.Interval, cfg.Now
		*cfg = d
	})
	const hosts, each = 50, 1000 // each within its own limits: 1000 ≤ MsgIDBurst ≤ Burst
	for h := range hosts {
		appendAll(t, l, batch(each, "192.0.2.1", fmt.Sprintf("fake%d", h), ""))
	}
	passed := 0
	for _, k := range n.byHost {
		passed += k
	}
	if want := 4 * DefaultBurst; passed != want {
		t.Fatalf("%d of %d events passed from one address at once, want its burst %d", passed, hosts*each, want)
	}
	// A second later, the address has earned 4 × Rate.
	c.advance(time.Second)
	for h := range hosts {
		appendAll(t, l, batch(each, "192.0.2.1", fmt.Sprintf("fake%d", h), ""))
	}
	again := -passed
	for _, k := range n.byHost {
		again += k
	}
	if want := 4 * DefaultRate; again != want {
		t.Fatalf("%d passed a second later, want the address's rate %d", again, want)
	}
	// Another address is not affected.
	appendAll(t, l, batch(10, "192.0.2.2", "web1", ""))
	if n.byHost["web1"] != 10 {
		t.Fatalf("another address: %d of 10 passed", n.byHost["web1"])
	}
	if err := l.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	var held uint64
	for _, e := range n.sums {
		held += heldBack(t, e)
	}
	if sent := uint64(2 * hosts * each); uint64(passed+again)+held != sent {
		t.Fatalf("relayed %d + held back %d != sent %d", passed+again, held, sent)
	}
	want := regexp.MustCompile(`^ZBR101E FLOOD CONTROL HELD BACK 2000 EVENTS FROM fake49 AT 192\.0\.2\.1 .* ` +
		`\(LIMITS 1000/S BURST 2000 PER HOST, 500/S BURST 1000 PER MESSAGE ID, 4000/S BURST 8000 PER ADDRESS\); ` +
		`BY LIMIT ADDRESS=2000; TOP IDS -=2000;`)
	found := false
	for _, e := range n.sums {
		found = found || want.MatchString(e.Text)
	}
	if !found {
		t.Errorf("no summary of fake49 held back by its address: %v", texts(n.sums))
	}
}

// TestAddrAllOrNothing: an event passes only when its source's bucket and
// its address's both have a token, and an event held back by either takes
// none from the other; the summary says which limit held what back.
func TestAddrAllOrNothing(t *testing.T) {
	c := newClock()
	// Sources refill slowly (1/s), the address fast (100/s).
	l, s := newTest(t, c, func(cfg *Config) { cfg.Rate, cfg.Burst, cfg.AddrRate, cfg.AddrBurst = 1, 5, 100, 6 })
	step := func(n int, host string, want int) {
		t.Helper()
		before, _ := split(s.events())
		appendAll(t, l, batch(n, "192.0.2.1", host, ""))
		if after, _ := split(s.events()); len(after)-len(before) != want {
			t.Fatalf("%d of %d events from %s passed, want %d", len(after)-len(before), n, host, want)
		}
	}
	step(5, "a", 5) // a's bucket empty, the address has 1 left
	step(3, "a", 0) // held back by a's bucket: the address keeps its 1
	step(3, "b", 1) // the address's last; b's other 2 are held back by it and keep b's bucket at 4
	c.advance(60 * time.Millisecond)
	step(6, "b", 4) // the address is full again (6): b passes its 4, not 2
	step(1, "a", 0)
	if err := l.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, sums := split(s.events())
	by := map[string]string{}
	for _, e := range sums {
		m := regexp.MustCompile(`; (BY LIMIT [^;]*);`).FindStringSubmatch(e.Text)
		if m == nil || !strings.Contains(e.Text, "(LIMITS 1/S BURST 5 PER HOST, 100/S BURST 6 PER ADDRESS)") {
			t.Fatalf("summary %q", e.Text)
		}
		by[e.Origin.Host] = m[1]
	}
	if by["a"] != "BY LIMIT HOST=4" || by["b"] != "BY LIMIT HOST=2 ADDRESS=2" || len(by) != 2 {
		t.Errorf("summaries %v", texts(sums))
	}
}

// TestAddrQuietNeighbours is TestFlood (cmd/zbridge) on a fake clock: a
// host flooding at 50,000/s and ten quiet hosts at 10/s each, all from one
// address, for 10 s with the default limits. The flood is held at its
// source's limit, which leaves the address room for every quiet event.
func TestAddrQuietNeighbours(t *testing.T) {
	c := newClock()
	n := &counter{}
	l, _ := newTest(t, c, func(cfg *Config) {
		d := DefaultConfig()
		d.Next, d.Logger, d.Interval, d.Now = n, cfg.Logger, cfg.Interval, cfg.Now
		*cfg = d
	})
	flood := make([]*protocol.Event, 500) // every 10 ms
	for i := range flood {
		flood[i] = ev("127.0.0.1", "flooder", "", "flood")
		flood[i].App = fmt.Sprint("app", i%4) // within the message-ID limits: the source's limit holds it
	}
	quiet := make([][]*protocol.Event, 10)
	for h := range quiet {
		quiet[h] = batch(1, "127.0.0.1", fmt.Sprintf("quiet%d", h), "")
	}
	for tick := range 1000 {
		appendAll(t, l, flood)
		if tick%10 == 0 {
			for _, q := range quiet {
				appendAll(t, l, q)
			}
		}
		c.advance(10 * time.Millisecond)
	}
	for h := range quiet {
		if got := n.byHost[fmt.Sprintf("quiet%d", h)]; got != 100 {
			t.Errorf("quiet%d: %d of 100 events passed", h, got)
		}
	}
	// The burst, then the source's rate for 9.99 s.
	if got, want := n.byHost["flooder"], DefaultBurst+int(9.99*DefaultRate); got < want-1 || got > want+1 {
		t.Errorf("flooder: %d passed, want about %d", got, want)
	}
}

// TestLongNames: a host name and message IDs of any length are kept (and
// quoted in summaries) only up to a fixed length, in memory of their own,
// and names that share that much share a bucket.
func TestLongNames(t *testing.T) {
	c := newClock()
	l, s := newTest(t, c, func(cfg *Config) { cfg.Burst, cfg.MsgIDRate, cfg.MsgIDBurst = 1, 1000, 1000 })
	long := strings.Repeat("h", 10000)
	var evs []*protocol.Event
	for i := range 20 {
		evs = append(evs, ev("192.0.2.1", long+strconv.Itoa(i%2), strings.Repeat("I", 5000)+strconv.Itoa(i), "x"))
	}
	appendAll(t, l, evs)
	if st := l.Stats(); st.Sources != 2 || st.Suppressed != 19 {
		t.Fatalf("Stats() = %+v, want 2 sources (the long name's and the table's overflow) and 19 held back", st)
	}
	for _, sh := range l.allShards() {
		sh.mu.Lock()
		for k, src := range sh.m {
			if len(k.host) > maxName || len(k.addr) > maxName {
				t.Errorf("a source key of %d+%d bytes", len(k.addr), len(k.host))
			}
			if d := unsafe.StringData(k.host); len(k.host) > 0 && d == unsafe.StringData(evs[0].Origin.Host) {
				t.Error("the source's key pins the event's host name")
			}
			if len(src.ids) > 1 {
				t.Errorf("%d message IDs: IDs sharing %d bytes are one", len(src.ids), maxID)
			}
			for id := range src.ids {
				if len(id) > maxID {
					t.Errorf("a message ID of %d bytes kept", len(id))
				}
				if unsafe.StringData(id) == unsafe.StringData(evs[0].MsgID) {
					t.Error("the message ID pins the event's")
				}
			}
		}
		sh.mu.Unlock()
	}
	l.Flush(context.Background())
	_, sums := split(s.events())
	if len(sums) != 1 {
		t.Fatalf("summaries %v", texts(sums))
	}
	if e := sums[0]; len(e.Text) > 1000 || len(e.Origin.Host) != maxName ||
		!strings.Contains(e.Text, " FROM "+long[:maxName]+" AT 192.0.2.1 ") ||
		!strings.Contains(e.Text, " TOP IDS "+strings.Repeat("I", maxID)+"=19;") {
		t.Errorf("summary of %d bytes: %.400s…", len(e.Text), e.Text)
	}
}

// TestNextFailsOnce is RELP's retry: the store fails a batch, RELP does
// not acknowledge it, and the sender sends it again. The failed batch is
// counted nowhere (and its events' tokens are given back), so the retry
// is decided and counted as if it were the first.
func TestNextFailsOnce(t *testing.T) {
	c := newClock()
	l, s := newTest(t, c, nil) // 10/s, burst 5
	evs := batch(8, "192.0.2.1", "web1", "")
	s.setFail(errors.New("disk full"))
	if err := l.Append(context.Background(), evs); err == nil {
		t.Fatal("Append did not return the store's error")
	}
	if st := l.Stats(); st.Suppressed != 0 {
		t.Fatalf("a failed batch was counted: %+v", st)
	}
	s.setFail(nil)
	appendAll(t, l, evs) // the sender's retry
	if err := l.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	relayed, sums := split(s.events())
	if len(relayed) != 5 || len(sums) != 1 || heldBack(t, sums[0]) != 3 {
		t.Fatalf("relayed %d (want 5), summaries %v (want 3 held back)", len(relayed), texts(sums))
	}
	// A batch with nothing held back gives its tokens back too.
	c.advance(time.Second)
	s.setFail(errors.New("disk full"))
	if err := l.Append(context.Background(), batch(5, "192.0.2.1", "web1", "")); err == nil {
		t.Fatal("Append did not return the store's error")
	}
	s.setFail(nil)
	appendAll(t, l, batch(5, "192.0.2.1", "web1", ""))
	if relayed, _ := split(s.events()); len(relayed) != 10 {
		t.Fatalf("%d relayed after the retry, want 10", len(relayed))
	}
}

// ctxSink is a Next that fails when its ctx is done, as stores do.
type ctxSink struct{ sink }

func (s *ctxSink) Append(ctx context.Context, evs []*protocol.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.sink.Append(ctx, evs)
}

// TestCloseDoneContext: Close's last Flush uses the ctx it is given; with
// one already done the store refuses the summaries, Close says so, and
// they stay pending for a Flush with a live ctx.
func TestCloseDoneContext(t *testing.T) {
	c := newClock()
	s := &ctxSink{}
	l, _ := newTest(t, c, func(cfg *Config) { cfg.Next = s })
	appendAll(t, l, batch(8, "192.0.2.1", "web1", ""))
	done, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.Close(done); !errors.Is(err, context.Canceled) {
		t.Fatalf("Close with a done ctx: %v, want context.Canceled", err)
	}
	if st := l.Stats(); st.Pending != 1 {
		t.Fatalf("Stats() = %+v, want the summary pending", st)
	}
	if err := l.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, sums := split(s.events()); len(sums) != 1 || heldBack(t, sums[0]) != 3 {
		t.Fatalf("summaries %v", texts(sums))
	}
}

// TestCloseWaitsForAppend: the events an Append holds back are counted
// after Next took the others; Close waits for that, so that its last
// summaries have them.
func TestCloseWaitsForAppend(t *testing.T) {
	c := newClock()
	s := &sink{}
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	next := appenderFunc(func(ctx context.Context, evs []*protocol.Event) error {
		if evs[0].Source == protocol.SourceSyslog {
			once.Do(func() { close(entered); <-release })
		}
		return s.Append(ctx, evs)
	})
	l, _ := newTest(t, c, func(cfg *Config) { cfg.Next = next })
	appended := make(chan error, 1)
	go func() { appended <- l.Append(context.Background(), batch(8, "192.0.2.1", "web1", "")) }()
	<-entered
	closed := make(chan error, 1)
	go func() { closed <- l.Close(context.Background()) }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while an Append was in Next", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if err := <-appended; err != nil {
		t.Fatal(err)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if relayed, sums := split(s.events()); len(relayed) != 5 || len(sums) != 1 || heldBack(t, sums[0]) != 3 {
		t.Fatalf("relayed %d, summaries %v", len(relayed), texts(sums))
	}
}
