package region

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/ssh"

	"github.com/zbridge/zbridge/gateway/store/redisstore"
	"github.com/zbridge/zbridge/internal/peer"
	"github.com/zbridge/zbridge/linuxagent"
	"github.com/zbridge/zbridge/protocol"
	"github.com/zbridge/zbridge/protocol/client"
)

// The tests of this file run regions on a real Sentinel set-up and a real
// Redis Cluster (internal/peer): syslog in, UNSOLMSG subscribers out, a
// master killed under the flow, durable subscriptions and consumer groups,
// and a command forwarded between two regions.

// haWait bounds the waits of this file.
const haWait = 30 * time.Second

// haLog is a region's log, shown when the test fails.
type haLog struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

func (l *haLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *haLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// haKeyFile writes a cluster key for the test's regions.
func haKeyFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cluster.key")
	if err := os.WriteFile(path, []byte("redisha-test-cluster-key-0123456789abcdef"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// haRegion starts a region named name on the Redis at url, with SYSLOG
// (TCP), UNSOLMSG and COMMANDS on 127.0.0.1; configure, if set, changes
// its Config first.
func haRegion(t *testing.T, name, url, keyFile string, configure func(*Config)) *Region {
	t.Helper()
	logs := &haLog{}
	log := logrus.New()
	log.SetLevel(logrus.DebugLevel)
	log.SetOutput(logs)
	cfg := Config{Name: name, SyslogTCP: "127.0.0.1:0", UnsolMsg: "127.0.0.1:0", Commands: "127.0.0.1:0",
		Logger: log, RedisURL: url, ClusterKeyFile: keyFile, PeerTTL: 3 * time.Second}
	if configure != nil {
		configure(&cfg)
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.Close()
		if t.Failed() {
			t.Logf("region %s log:\n%s", name, logs.String())
		}
	})
	return r
}

// haSender sends numbered syslog messages, "PREFIX-N" from 0 up, over one
// TCP connection to a region, octet-counted RFC 5424 with no HOSTNAME.
type haSender struct {
	conn   net.Conn
	prefix string
	n      int // sent so far
}

func newSender(t *testing.T, r *Region, prefix string) *haSender {
	t.Helper()
	c, err := net.Dial("tcp", r.Addr("syslog").String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &haSender{conn: c, prefix: prefix}
}

// send sends k more messages.
func (s *haSender) send(k int) error {
	var b []byte
	now := time.Now().UTC().Format("2006-01-02T15:04:05.000000Z07:00")
	for range k {
		m := fmt.Sprintf("<13>1 %s - ha - - - %s-%06d", now, s.prefix, s.n)
		b = append(b, strconv.Itoa(len(m))+" "+m...)
		s.n++
	}
	_, err := s.conn.Write(b)
	return err
}

// want returns the texts sent so far.
func (s *haSender) want() []string {
	out := make([]string, s.n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%06d", s.prefix, i)
	}
	return out
}

// sendFor sends 10 messages every 5ms until stop is closed, and returns
// the error that stopped it early, if any.
func (s *haSender) sendFor(stop <-chan struct{}) error {
	for {
		select {
		case <-stop:
			return nil
		case <-time.After(5 * time.Millisecond):
		}
		if err := s.send(10); err != nil {
			return err
		}
	}
}

// haSub is an UNSOLMSG subscriber that, like a client should, subscribes
// again when its session ends: a live one after the last event it
// received, a durable or group one by its name. Durable and group
// subscribers acknowledge every event they receive.
type haSub struct {
	addr   string
	sub    client.Subscription
	prefix string
	stop   context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex // guards the following fields
	got      []string   // texts with prefix, as received
	ids      []protocol.ID
	last     string // the last event received, for a live subscriber's resume
	sessions int    // sessions subscribed
	errs     []error
}

func startSub(t *testing.T, r *Region, sub client.Subscription, prefix string) *haSub {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &haSub{addr: r.Addr("unsolmsg").String(), sub: sub, prefix: prefix, stop: cancel, done: make(chan struct{})}
	subscribed := make(chan struct{})
	go s.run(ctx, subscribed)
	t.Cleanup(s.end)
	select {
	case <-subscribed:
	case <-time.After(haWait):
		t.Fatalf("subscriber not subscribed within %v: %v", haWait, s.errors())
	}
	return s
}

func (s *haSub) run(ctx context.Context, subscribed chan struct{}) {
	defer close(s.done)
	for ctx.Err() == nil {
		err := s.session(ctx, subscribed)
		if ctx.Err() != nil {
			return
		}
		s.mu.Lock()
		s.errs = append(s.errs, err)
		var bye *client.ByeError
		if errors.As(err, &bye) && bye.ResumeAfter != "" {
			s.last = bye.ResumeAfter
		}
		s.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// session runs one session until it ends, and returns why.
func (s *haSub) session(ctx context.Context, subscribed chan struct{}) error {
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := client.Dial(dctx, client.Config{Addr: s.addr, Client: "ha-test"})
	if err != nil {
		return err
	}
	defer c.Close()
	sub := s.sub
	s.mu.Lock()
	if s.last != "" && sub.Name == "" && sub.Group == "" {
		sub.After = s.last
	}
	s.mu.Unlock()
	if _, err := c.SubscribeWith(dctx, sub); err != nil {
		return err
	}
	s.mu.Lock()
	s.sessions++
	s.mu.Unlock()
	select {
	case <-subscribed:
	default:
		close(subscribed)
	}
	acks := sub.Name != "" || sub.Group != ""
	for {
		f, err := c.Next(ctx)
		if err != nil {
			return err
		}
		if f.Type != protocol.TypeEvent || f.Event == nil {
			continue
		}
		id := f.Event.ID.String()
		s.mu.Lock()
		s.last = id
		if i := strings.Index(f.Event.Text, s.prefix+"-"); i >= 0 {
			text, _, _ := strings.Cut(f.Event.Text[i:], " ")
			s.got = append(s.got, text)
			s.ids = append(s.ids, f.Event.ID)
		}
		s.mu.Unlock()
		if acks {
			if err := c.Ack(id); err != nil {
				return err
			}
		}
	}
}

// end stops the subscriber and waits for it.
func (s *haSub) end() {
	s.stop()
	<-s.done
}

// received returns the texts received, in order, duplicates included.
func (s *haSub) received() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.got...)
}

func (s *haSub) errors() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]error(nil), s.errs...)
}

func (s *haSub) sessionCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions
}

// distinct returns texts without those seen before, and how many it left
// out.
func distinct(texts []string) ([]string, int) {
	seen := make(map[string]bool, len(texts))
	var out []string
	for _, x := range texts {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out, len(texts) - len(out)
}

// waitReceived waits until s has received every text of want at least
// once, and checks that it received them in order.
func waitReceived(t *testing.T, s *haSub, want []string) (dups int) {
	t.Helper()
	deadline := time.Now().Add(haWait)
	for {
		got, dups := distinct(s.received())
		if len(got) >= len(want) || time.Now().After(deadline) {
			for i := range min(len(got), len(want)) {
				if got[i] != want[i] {
					t.Fatalf("subscriber: event %d is %s, want %s (events in order, each at least once)", i, got[i], want[i])
				}
			}
			if len(got) != len(want) {
				t.Fatalf("subscriber received %d of %d events within %v (sessions %d, errors %v)",
					len(got), len(want), haWait, s.sessionCount(), s.errors())
			}
			return dups
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// streamTexts reads the whole event stream of prefix through a new Store
// on url, as a region starting now would, and returns the texts with
// textPrefix, in order.
func streamTexts(t *testing.T, url, prefix, textPrefix string) []string {
	t.Helper()
	o, err := redisstore.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewUniversalClient(o)
	defer c.Close()
	st, err := redisstore.New(redisstore.Config{Client: c, Prefix: prefix, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx, cancel := context.WithTimeout(context.Background(), haWait)
	defer cancel()
	evs, _, err := st.Read(ctx, protocol.ID{}, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		if i := strings.Index(e.Text, textPrefix+"-"); i >= 0 {
			text, _, _ := strings.Cut(e.Text[i:], " ")
			out = append(out, text)
		}
	}
	return out
}

// TestRegionSentinelFailover: a region whose Redis is a Sentinel set-up
// relays a steady flow of syslog to an UNSOLMSG subscriber while the
// master is SIGKILLed and Sentinel promotes a replica. The subscriber goes
// on receiving events and ends with every event sent, each at least once
// and in order; the stream on the new master holds each once, in order.
func TestRegionSentinelFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("a failover takes seconds")
	}
	sen := peer.StartSentinel(t, peer.SentinelOptions{})
	url := sen.URL()
	r := haRegion(t, "HA", url, haKeyFile(t), nil)
	sub := startSub(t, r, client.Subscription{After: "0", Format: "json"}, "ha")
	snd := newSender(t, r, "ha")

	stop := make(chan struct{})
	sent := make(chan error, 1)
	go func() { sent <- snd.sendFor(stop) }()
	stopped := false
	stopSending := func() {
		if !stopped {
			stopped = true
			close(stop)
			if err := <-sent; err != nil {
				t.Errorf("sending syslog: %v", err)
			}
		}
	}
	defer stopSending()

	waitN := func(what string, n int) {
		t.Helper()
		deadline := time.Now().Add(haWait)
		for {
			got, _ := distinct(sub.received())
			if len(got) >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: subscriber has %d events, want %d (errors %v)", what, len(got), n, sub.errors())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitN("before the failover", 500)
	start := time.Now()
	old := sen.KillMaster()
	before, _ := distinct(sub.received())
	waitN("while the master is down", len(before)+500)
	next := sen.WaitFailover(old.Addr)
	t.Logf("master %s killed; sentinels promoted %s in %v", old.Addr, next, time.Since(start).Round(time.Millisecond))
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(haWait)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within %v", what, haWait)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	rs := r.Store().(*redisstore.Store)
	waitFor("the store to write its buffer to the new master", func() bool {
		h := rs.Health()
		return !h.Degraded && h.Buffered == 0
	})
	t.Logf("region's store back %v after the kill", time.Since(start).Round(time.Millisecond))
	after, _ := distinct(sub.received())
	waitN("after the failover", len(after)+500)
	stopSending()

	want := snd.want()
	dups := waitReceived(t, sub, want)
	t.Logf("sent %d events; the subscriber received each, %d again, in %d sessions; store %+v %+v",
		len(want), dups, sub.sessionCount(), rs.Health(), rs.Counters())
	if h := rs.Health(); h.Dropped != 0 {
		t.Errorf("store dropped events: %+v", h)
	}
	got := streamTexts(t, url, "zbridge", "ha")
	if len(got) != len(want) {
		t.Fatalf("the stream holds %d events, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("stream event %d is %s, want %s", i, got[i], want[i])
		}
	}
}

// haAgent is a Linux agent run in this process on 127.0.0.1, and the
// region's SSH key it accepts.
type haAgent struct {
	addr    string
	keyFile string
	logs    *haLog
}

func startHAAgent(t *testing.T, name string) *haAgent {
	t.Helper()
	dir := t.TempDir()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	blk, err := ssh.MarshalPrivateKey(priv, "region")
	if err != nil {
		t.Fatal(err)
	}
	a := &haAgent{keyFile: filepath.Join(dir, "region_key"), logs: &haLog{}}
	if err := os.WriteFile(a.keyFile, pem.EncodeToMemory(blk), 0o600); err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	auth := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(auth, ssh.MarshalAuthorizedKey(signer.PublicKey()), 0o600); err != nil {
		t.Fatal(err)
	}
	_, hk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	host, err := ssh.NewSignerFromKey(hk)
	if err != nil {
		t.Fatal(err)
	}
	log := logrus.New()
	log.SetOutput(a.logs)
	srv, err := linuxagent.New(linuxagent.Config{HostKey: host, AuthorizedKeys: auth, Logger: log, Name: name})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a.addr = l.Addr().String()
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(l)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return a
}

// TestRegionRedisCluster: regions on a three-master Redis Cluster relay
// syslog to a subscriber; a durable subscription acknowledged on one
// region resumes on another after the event it acknowledged; a consumer
// group's two members share events, each once; and a command sent to one
// region for a Linux system the other holds is forwarded to it.
func TestRegionRedisCluster(t *testing.T) {
	rc := peer.StartRedisCluster(t, peer.RedisClusterOptions{})
	url := rc.URL()
	key := haKeyFile(t)
	agent := startHAAgent(t, "web1")
	a := haRegion(t, "A", url, key, func(c *Config) {
		c.SSHKeyFile, c.KnownHostsFile, c.AcceptNewHostKeys = agent.keyFile, filepath.Join(t.TempDir(), "known_hosts"), true
		c.Linux = []LinuxTarget{{Name: "web1", Addr: agent.addr}}
	})
	b := haRegion(t, "B", url, key, nil)
	if _, ok := a.Store().(*redisstore.Store); !ok {
		t.Fatalf("region store %T, want the Redis store", a.Store())
	}

	t.Run("relay", func(t *testing.T) {
		sub := startSub(t, a, client.Subscription{Format: "json"}, "live")
		snd := newSender(t, a, "live")
		if err := snd.send(300); err != nil {
			t.Fatal(err)
		}
		if dups := waitReceived(t, sub, snd.want()); dups != 0 {
			t.Errorf("live subscriber received %d events twice", dups)
		}
	})

	t.Run("durable resume on another region", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), haWait)
		defer cancel()
		c, err := client.Dial(ctx, client.Config{Addr: a.Addr("unsolmsg").String(), Client: "ha-test"})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.SubscribeWith(ctx, client.Subscription{Name: "dur", Format: "json"}); err != nil {
			t.Fatal(err)
		}
		snd := newSender(t, a, "dur")
		if err := snd.send(100); err != nil {
			t.Fatal(err)
		}
		var ids []string
		for len(ids) < 60 {
			f, err := c.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if f.Type == protocol.TypeEvent && f.Event != nil && strings.Contains(f.Event.Text, "dur-") {
				if want := fmt.Sprintf("dur-%06d", len(ids)); !strings.Contains(f.Event.Text, want) {
					t.Fatalf("event %d: %q, want %s", len(ids), f.Event.Text, want)
				}
				ids = append(ids, f.Event.ID.String())
			}
		}
		if err := c.AckWait(ctx, ids[59]); err != nil {
			t.Fatal(err)
		}
		c.Close()
		if err := snd.send(50); err != nil {
			t.Fatal(err)
		}
		// On region B, sharing the Cluster: the events after the one
		// acknowledged, those sent while nobody was subscribed included.
		sub := startSub(t, b, client.Subscription{Name: "dur", Format: "json"}, "dur")
		if dups := waitReceived(t, sub, snd.want()[60:]); dups != 0 {
			t.Errorf("resumed subscriber received %d events twice", dups)
		}
	})

	t.Run("group", func(t *testing.T) {
		g1 := startSub(t, a, client.Subscription{Group: "grp", Format: "json"}, "grp")
		g2 := startSub(t, b, client.Subscription{Group: "grp", Format: "json"}, "grp")
		snd := newSender(t, b, "grp")
		for range 20 {
			if err := snd.send(10); err != nil {
				t.Fatal(err)
			}
			time.Sleep(5 * time.Millisecond)
		}
		want := snd.want()
		deadline := time.Now().Add(haWait)
		for {
			n := len(g1.received()) + len(g2.received())
			if n >= len(want) || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		got1, got2 := g1.received(), g2.received()
		seen := map[string]int{}
		for _, x := range append(append([]string(nil), got1...), got2...) {
			seen[x]++
		}
		for _, w := range want {
			if seen[w] != 1 {
				t.Errorf("%s received %d times by the group, want once", w, seen[w])
			}
		}
		if len(seen) != len(want) {
			t.Errorf("the group received %d distinct events, want %d", len(seen), len(want))
		}
		t.Logf("group members received %d and %d events", len(got1), len(got2))
	})

	t.Run("forward", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), haWait)
		defer cancel()
		c, err := client.Dial(ctx, client.Config{Addr: b.Addr("commands").String(), Client: "ha-test"})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		marker := fmt.Sprintf("ha-marker-%d", time.Now().UnixNano())
		// Until A has connected to its agent and announced it.
		var last error
		for {
			var out strings.Builder
			reply, err := c.Command(ctx, client.CommandRequest{Target: "linux:web1", Command: "echo " + marker},
				func(f *protocol.Frame) { out.WriteString(f.Text) })
			if err == nil && reply.RC != nil && *reply.RC == 0 {
				if !strings.Contains(out.String(), marker) {
					t.Fatalf("output %q, want %s", out.String(), marker)
				}
				break
			}
			last = err
			if ctx.Err() != nil {
				t.Fatalf("command on linux:web1 through B: %v, %+v", last, reply)
			}
			time.Sleep(200 * time.Millisecond)
		}
		if !strings.Contains(agent.logs.String(), marker) {
			t.Error("the command did not run on A's agent")
		}
	})
}
