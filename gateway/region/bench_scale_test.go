package region

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/zbridge/zbridge/gateway/agentssh"
	"github.com/zbridge/zbridge/internal/peer"
	"github.com/zbridge/zbridge/linuxagent"
)

// BenchmarkScale runs one region, the zbridge binary as a process of its
// own, with 10,000 static Linux targets and 5,000 UNSOLMSG subscribers,
// and reports:
//
//   - connect-s: seconds from the region's start (exec) until every agent
//     is connected, by the region's zbridge_linux_agents gauge;
//   - subscribe-s: seconds from the start until every subscriber has
//     logged on and subscribed (they log on while the agents are dialled,
//     8 at a time: the region lets one address have 8 logons pending);
//   - dial-failures, dial-timeouts: failed SSH connection attempts (the
//     "handshake storm" of issue 14 shows here; it must be 0) and
//     subscribers-lost, sessions ended by the region (must be 0);
//   - rss-MiB, hwm-MiB: the region's resident memory once all is
//     connected, and its peak;
//   - idle-cpu-%: the region's CPU time (user and system, of one CPU)
//     over an idle window (ZBRIDGE_SCALE_IDLE, default 2m) that starts
//     ZBRIDGE_SCALE_SETTLE (default 5m30s, the region's keepalive interval,
//     or the --agent-keepalive in ZBRIDGE_SCALE_REGION_ARGS, and 30 s) after
//     everything is connected, so that every connection
//     is past its first interval: SSH keepalives (an idle agent is asked
//     every ten minutes, half of them in each five; idle-keepalives/s is
//     their rate in the window) and heartbeats (the subscribers ask for
//     30 s) only, and the collection
//     the Go runtime forces every two minutes when none ran (idle-gcs
//     counts them): it scans every goroutine's stack, ~55,000 of them,
//     and takes about half a second of CPU, so a window shorter than two
//     minutes measures it by luck, a fourth of the time in 30 s;
//   - idle-machine-cpu-%: the machine's busy CPU time over the same window
//     (all processes, the kernel's timers and softirqs; of one CPU): the
//     benchmark's agents and subscribers count here too, and so would
//     work moved from the region into the kernel.
//
// The agents are real: zbridge Linux agents (linuxagent.Server, one per
// helper process serving 2,500 loopback listeners; the helpers are this
// test binary run again as TestScaleAgentHelper), which the region dials
// over SSH and authenticates with its key; their host key is pinned in a
// known_hosts file written beforehand, as a region restarting has it. The
// subscribers are plain TCP clients of this process that answer the
// region's heartbeats. It takes nine minutes and 1.5 GiB of memory; run it
// alone, once:
//
//	go test -run '^$' -bench '^BenchmarkScale$' -benchtime 1x -timeout 20m ./gateway/region/
//
// ZBRIDGE_SCALE_AGENTS and ZBRIDGE_SCALE_SUBSCRIBERS change the counts;
// ZBRIDGE_SCALE_REGION_ARGS adds flags to the region's (--agent-dials 64);
// ZBRIDGE_SCALE_PERF=FILE records the region's idle window with perf
// record -g into FILE (perf's own CPU then counts in idle-cpu-% a little,
// and in idle-machine-cpu-%),
// and its connecting into FILE.connect.
// Every process needs a descriptor limit (ulimit -Hn; Go raises the soft
// limit to it) above what it holds: the region one per agent and
// subscriber and a few hundred more (20,000 is enough), a helper two per
// agent it serves.
func BenchmarkScale(b *testing.B) {
	nAgents := scaleEnvInt(b, "ZBRIDGE_SCALE_AGENTS", 10_000)
	nSubs := scaleEnvInt(b, "ZBRIDGE_SCALE_SUBSCRIBERS", 5_000)
	keepAlive := agentssh.DefaultKeepAlive
	f := strings.Fields(os.Getenv("ZBRIDGE_SCALE_REGION_ARGS"))
	if i := slices.Index(f, "--agent-keepalive"); i >= 0 && i+1 < len(f) {
		if d, err := time.ParseDuration(f[i+1]); err == nil && d > 0 {
			keepAlive = d
		}
	}
	settle := scaleEnvDuration(b, "ZBRIDGE_SCALE_SETTLE", keepAlive+30*time.Second)
	idle := scaleEnvDuration(b, "ZBRIDGE_SCALE_IDLE", 2*time.Minute)
	dir := b.TempDir()
	bin := filepath.Join(dir, "zbridge")
	if out, err := peer.GoBuild(nil, "-o", bin, "github.com/zbridge/zbridge/cmd/zbridge").CombinedOutput(); err != nil {
		b.Fatalf("building zbridge: %v\n%s", err, out)
	}
	keyFile, authFile := scaleRegionKey(b, dir)
	hostKeyFile, hostPub := scaleHostKey(b, dir)
	ports := startScaleAgents(b, dir, nAgents, hostKeyFile, authFile)

	knownHosts := filepath.Join(dir, "known_hosts")
	var kh strings.Builder
	args := []string{"region", "--name", "SCALE", "--syslog", "", "--syslog-udp", "", "--commands", "", "--vmmon", "",
		"--data-dir", "", "--ssh-key", keyFile, "--known-hosts", knownHosts, "--log-level", "warn",
		"--max-sessions", strconv.Itoa(nSubs + 100), "--max-per-addr", strconv.Itoa(nSubs + 100)}
	for i, port := range ports {
		name := fmt.Sprintf("a%05d", i)
		addr := net.JoinHostPort("127.0.0.1", port)
		kh.WriteString(knownhosts.Line([]string{name + "@zbridge", addr}, hostPub) + "\n")
		args = append(args, "--linux", name+"="+addr)
	}
	if err := os.WriteFile(knownHosts, []byte(kh.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	unsol, httpAddr := peer.Addr(peer.FreePort(b)), peer.Addr(peer.FreePort(b))
	args = append(args, "--unsolmsg", unsol, "--http", httpAddr)
	args = append(args, strings.Fields(os.Getenv("ZBRIDGE_SCALE_REGION_ARGS"))...)

	b.ResetTimer()
	start := time.Now()
	region := peer.Start(b, peer.Command{Name: "zbridge-region", Path: bin, Args: args,
		Ready: peer.TCPReady(httpAddr), ReadyTimeout: time.Minute, StopTimeout: 30 * time.Second})
	b.Logf("region listening %.2fs after start", time.Since(start).Seconds())
	perfOut := os.Getenv("ZBRIDGE_SCALE_PERF")
	var perfConnect *exec.Cmd
	if perfOut != "" {
		// A CPU profile of the region connecting, until all are connected.
		perfConnect = exec.Command(peer.Require(b, "perf"), "record", "-F", "999", "-g", "-p", strconv.Itoa(region.Pid()),
			"-o", perfOut+".connect")
		if err := perfConnect.Start(); err != nil {
			b.Fatal(err)
		}
	}
	subs := &scaleSubscribers{}
	ctx, cancel := context.WithCancel(context.Background())
	defer subs.close()
	defer cancel()
	subsDone := make(chan time.Duration, 1)
	go func() {
		subs.run(ctx, unsol, nSubs)
		subsDone <- time.Since(start)
	}()

	var connected time.Duration
	var m map[string]float64
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(250 * time.Millisecond) {
		var err error
		if m, err = scaleMetrics(httpAddr); err == nil && int(m[`zbridge_linux_agents{state="connected"}`]) == nAgents {
			connected = time.Since(start)
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%v of %d agents connected after 3 minutes (%v); dials %v, failures %v, timeouts %v", m[`zbridge_linux_agents{state="connected"}`],
				nAgents, err, m["zbridge_agent_dials_total"], m["zbridge_agent_dial_failures_total"], m["zbridge_agent_dial_timeouts_total"])
		}
	}
	if perfConnect != nil {
		perfConnect.Process.Signal(os.Interrupt)
		perfConnect.Wait()
	}
	var subscribed time.Duration
	select {
	case subscribed = <-subsDone:
	case <-time.After(3 * time.Minute):
		b.Fatalf("%d of %d subscribers subscribed after 3 minutes", subs.subscribed.Load(), nSubs)
	}
	if n := subs.subscribed.Load(); n != int64(nSubs) {
		b.Fatalf("%d of %d subscribers subscribed: %v", n, nSubs, subs.err())
	}
	b.Logf("agents connected %.2fs, subscribers subscribed %.2fs after start (%d busy refusals retried)",
		connected.Seconds(), subscribed.Seconds(), subs.busy.Load())

	// Idle: nothing but keepalives and heartbeats, once every connection
	// has been through its keepalive interval (the region's 5 minutes) and
	// the subscribers through their heartbeat interval. An agent is asked
	// at its second check, 5 to 10 minutes after it connected, and every
	// other check after that; agents connected together are asked in the
	// same five minutes, and none in the next. The window falls in the
	// first five when they are asked: twice the average rate.
	time.Sleep(settle)
	pid := region.Pid()
	m0, err := scaleMetrics(httpAddr) // before the window: its CPU is not idle
	if err != nil {
		b.Fatal(err)
	}
	cpu0, err := processCPU(pid)
	if err != nil {
		b.Fatal(err)
	}
	// The machine's CPU too, all processes and the kernel's own work
	// (TCP timers, softirqs): work moved out of the region into the kernel
	// shows there, and so does the benchmark's own (its agents and
	// subscribers).
	mach0, err := machineCPU()
	if err != nil {
		b.Fatal(err)
	}
	hb0 := subs.heartbeats.Load()
	t0 := time.Now()
	if perfOut != "" {
		// A CPU profile of the idle window, for perf report -i OUT.
		perf := exec.Command(peer.Require(b, "perf"), "record", "-F", "999", "-g", "-p", strconv.Itoa(pid), "-o", perfOut,
			"--", "sleep", strconv.Itoa(int(idle.Seconds())))
		if msg, err := perf.CombinedOutput(); err != nil {
			b.Fatalf("perf record: %v\n%s", err, msg)
		}
	} else {
		time.Sleep(idle)
	}
	cpu1, err := processCPU(pid)
	if err != nil {
		b.Fatal(err)
	}
	mach1, err := machineCPU()
	if err != nil {
		b.Fatal(err)
	}
	hb1 := subs.heartbeats.Load()
	elapsed := time.Since(t0).Seconds()
	idleCPU := 100 * (cpu1 - cpu0).Seconds() / elapsed
	machCPU := 100 * (mach1 - mach0).Seconds() / elapsed
	rss, hwm, err := processMemory(pid)
	if err != nil {
		b.Fatal(err)
	}
	b.StopTimer()

	if m, err = scaleMetrics(httpAddr); err != nil {
		b.Fatal(err)
	}
	idleGCs := m["go_gc_duration_seconds_count"] - m0["go_gc_duration_seconds_count"]
	keepAlives := m["zbridge_agent_keepalives_total"] - m0["zbridge_agent_keepalives_total"]
	if up := int(m[`zbridge_linux_agents{state="connected"}`]); up != nAgents {
		b.Errorf("%d of %d agents connected at the end", up, nAgents)
	}
	failures, timeouts := m["zbridge_agent_dial_failures_total"], m["zbridge_agent_dial_timeouts_total"]
	if failures != 0 || timeouts != 0 {
		b.Errorf("%v SSH connection attempts failed, %v of them timed out: want none", failures, timeouts)
	}
	if dials := m["zbridge_agent_dials_total"]; dials != float64(nAgents) {
		// Each agent is dialled once: more means connections were lost.
		b.Errorf("%v SSH connection attempts for %d agents: connections were lost and redialled", dials, nAgents)
	}
	if n := subs.lost.Load(); n != 0 {
		b.Errorf("%d subscribers lost their session: %v", n, subs.err())
	}
	b.Logf("region: %d agents, %d subscribers; connected in %.2fs, subscribed in %.2fs; %v dials, %v failed, %v timed out; "+
		"RSS %.0f MiB (peak %.0f MiB), %v goroutines; idle CPU %.2f%% over %v (the machine's %.2f%% of a CPU; %v collections, %d heartbeats answered)",
		nAgents, nSubs, connected.Seconds(), subscribed.Seconds(), m["zbridge_agent_dials_total"], failures, timeouts,
		float64(rss)/(1<<20), float64(hwm)/(1<<20), m["go_goroutines"], idleCPU, idle, machCPU, idleGCs, hb1-hb0)
	// Where the resident memory is: goroutine stacks against heap objects.
	b.Logf("memory: stacks %.0f MiB, heap in use %.0f MiB (%.0f objects), next collection at %.0f MiB",
		m["go_memstats_stack_inuse_bytes"]/(1<<20), m["go_memstats_heap_inuse_bytes"]/(1<<20),
		m["go_memstats_heap_objects"], m["go_memstats_next_gc_bytes"]/(1<<20))
	b.ReportMetric(m["go_memstats_stack_inuse_bytes"]/(1<<20), "stack-MiB")
	b.ReportMetric(m["go_memstats_heap_inuse_bytes"]/(1<<20), "heap-MiB")
	b.ReportMetric(connected.Seconds(), "connect-s")
	b.ReportMetric(subscribed.Seconds(), "subscribe-s")
	b.ReportMetric(failures, "dial-failures")
	b.ReportMetric(timeouts, "dial-timeouts")
	b.ReportMetric(float64(subs.lost.Load()), "subscribers-lost")
	b.ReportMetric(float64(rss)/(1<<20), "rss-MiB")
	b.ReportMetric(float64(hwm)/(1<<20), "hwm-MiB")
	b.ReportMetric(idleCPU, "idle-cpu-%")
	b.ReportMetric(machCPU, "idle-machine-cpu-%")
	b.ReportMetric(idleGCs, "idle-gcs")
	b.ReportMetric(keepAlives/elapsed, "idle-keepalives/s")
	b.ReportMetric(0, "ns/op")
}

func scaleEnvDuration(b *testing.B, name string, def time.Duration) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		b.Fatalf("%s=%q: want a duration", name, v)
	}
	return d
}

func scaleEnvInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}

// scaleRegionKey writes the region's private key and the agents'
// authorized_keys holding it.
func scaleRegionKey(b *testing.B, dir string) (keyFile, authFile string) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	blk, err := ssh.MarshalPrivateKey(priv, "scale region")
	if err != nil {
		b.Fatal(err)
	}
	keyFile = filepath.Join(dir, "region_key")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(blk), 0o600); err != nil {
		b.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		b.Fatal(err)
	}
	authFile = filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(authFile, ssh.MarshalAuthorizedKey(signer.PublicKey()), 0o600); err != nil {
		b.Fatal(err)
	}
	return keyFile, authFile
}

// scaleHostKey writes the agents' host key (one for all of them).
func scaleHostKey(b *testing.B, dir string) (string, ssh.PublicKey) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	blk, err := ssh.MarshalPrivateKey(priv, "scale agents")
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(dir, "agent_host_key")
	if err := os.WriteFile(path, pem.EncodeToMemory(blk), 0o600); err != nil {
		b.Fatal(err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		b.Fatal(err)
	}
	return path, sp
}

// scaleAgentsPerHelper is how many agents one helper process serves: two
// descriptors each, well inside a limit of 20,000.
const scaleAgentsPerHelper = 2500

// startScaleAgents starts helper processes serving n agents in all, and
// returns their ports.
func startScaleAgents(b *testing.B, dir string, n int, hostKeyFile, authFile string) []string {
	var ports []string
	for i := 0; len(ports) < n; i++ {
		k := min(scaleAgentsPerHelper, n-len(ports))
		portsFile := filepath.Join(dir, fmt.Sprintf("ports.%d", i))
		peer.Start(b, peer.Command{Name: fmt.Sprintf("scale-agents-%d", i), Path: os.Args[0],
			Args: []string{"-test.run=^TestScaleAgentHelper$"},
			Env: []string{"ZBRIDGE_SCALE_HELPER=1", "ZBRIDGE_SCALE_COUNT=" + strconv.Itoa(k),
				"ZBRIDGE_SCALE_HOST_KEY=" + hostKeyFile, "ZBRIDGE_SCALE_AUTH=" + authFile, "ZBRIDGE_SCALE_PORTS=" + portsFile},
			Ready: func(context.Context) error {
				_, err := os.Stat(portsFile)
				return err
			},
			ReadyTimeout: 2 * time.Minute})
		data, err := os.ReadFile(portsFile)
		if err != nil {
			b.Fatal(err)
		}
		got := strings.Fields(string(data))
		if len(got) != k {
			b.Fatalf("helper %d serves %d agents, want %d", i, len(got), k)
		}
		ports = append(ports, got...)
	}
	return ports
}

// TestScaleAgentHelper is the agents' process of BenchmarkScale, which
// runs this test binary again with ZBRIDGE_SCALE_HELPER=1: one Linux agent
// (linuxagent.Server) serving ZBRIDGE_SCALE_COUNT listeners on loopback,
// whose ports it writes to ZBRIDGE_SCALE_PORTS, until SIGTERM.
func TestScaleAgentHelper(t *testing.T) {
	if os.Getenv("ZBRIDGE_SCALE_HELPER") != "1" {
		t.Skip("the agents' process of BenchmarkScale: runs only as that")
	}
	n, err := strconv.Atoi(os.Getenv("ZBRIDGE_SCALE_COUNT"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := os.ReadFile(os.Getenv("ZBRIDGE_SCALE_HOST_KEY"))
	if err != nil {
		t.Fatal(err)
	}
	host, err := ssh.ParsePrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	log := logrus.New()
	log.SetLevel(logrus.WarnLevel)
	log.SetOutput(os.Stderr)
	// One server stands for n agents, each of which would let the region's
	// connection wait to authenticate on its own: the region's MaxDials
	// handshakes from one address at once must not push each other out.
	srv, err := linuxagent.New(linuxagent.Config{HostKey: host, AuthorizedKeys: os.Getenv("ZBRIDGE_SCALE_AUTH"),
		Logger: log, Name: "scale", MaxPending: n, MaxPendingPerAddr: n})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	var wg sync.WaitGroup
	var ports strings.Builder
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			srv.Close()
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			srv.Serve(l)
		}()
		fmt.Fprintln(&ports, l.Addr().(*net.TCPAddr).Port)
	}
	path := os.Getenv("ZBRIDGE_SCALE_PORTS")
	if err := os.WriteFile(path+".tmp", []byte(ports.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
	<-ctx.Done()
	srv.Close()
	wg.Wait()
}

// scaleSubscribers are UNSOLMSG subscribers: each logs on, subscribes to
// every event and answers the region's heartbeats.
type scaleSubscribers struct {
	subscribed, busy, lost, heartbeats atomic.Int64

	mu      sync.Mutex // guards the following fields
	conns   []net.Conn
	lastErr error
	wg      sync.WaitGroup // the readers
}

// scaleFrame is what a subscriber reads of a frame.
type scaleFrame struct {
	Type       string `json:"type"`
	Req        uint64 `json:"req"`
	Reason     string `json:"reason"`
	Message    string `json:"message"`
	RetryAfter int    `json:"retry_after"`
}

// run subscribes n subscribers, 8 logons at a time, and returns once all
// have subscribed (or one failed otherwise than busy, or ctx ended). Each
// then reads its session on a goroutine until close.
func (s *scaleSubscribers) run(ctx context.Context, addr string, n int) {
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			for ctx.Err() == nil {
				c, br, err := s.subscribe(addr, fmt.Sprintf("sub%05d", i))
				if err == nil {
					s.subscribed.Add(1)
					s.mu.Lock()
					s.conns = append(s.conns, c)
					s.wg.Add(1)
					s.mu.Unlock()
					go s.read(c, br)
					return
				}
				if !strings.Contains(err.Error(), "busy") {
					s.fail(err)
					return
				}
				s.busy.Add(1)
				time.Sleep(50 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
}

func (s *scaleSubscribers) subscribe(addr, name string) (net.Conn, *bufio.Reader, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, nil, err
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := fmt.Fprintf(c, `{"type":"logon","req":1,"client":%q,"version":1,"heartbeat":30}`+"\n"+
		`{"type":"subscribe","req":2}`+"\n", name); err != nil {
		c.Close()
		return nil, nil, err
	}
	br := bufio.NewReaderSize(c, 4096)
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			c.Close()
			return nil, nil, fmt.Errorf("%s: before subscribing: %w", name, err)
		}
		var f scaleFrame
		if err := json.Unmarshal(line, &f); err != nil {
			c.Close()
			return nil, nil, fmt.Errorf("%s: %w: %s", name, err, line)
		}
		switch {
		case f.Type == "refuse":
			c.Close()
			return nil, nil, fmt.Errorf("%s: refused %s: %s", name, f.Reason, f.Message)
		case f.Type == "reply" && f.Req == 2:
			c.SetDeadline(time.Time{})
			return c, br, nil
		}
	}
}

// read reads a subscriber's session, answering heartbeats, until it ends.
func (s *scaleSubscribers) read(c net.Conn, br *bufio.Reader) {
	defer s.wg.Done()
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return // closed by close
		}
		if !strings.Contains(string(line[:min(len(line), 40)]), `"type":"heartbeat"`) &&
			!strings.Contains(string(line[:min(len(line), 40)]), `"type":"bye"`) {
			continue // an event
		}
		var f scaleFrame
		if err := json.Unmarshal(line, &f); err != nil {
			continue
		}
		switch f.Type {
		case "heartbeat":
			s.heartbeats.Add(1)
			fmt.Fprintf(c, `{"type":"reply","req":%d}`+"\n", f.Req)
		case "bye":
			s.lost.Add(1)
			s.fail(fmt.Errorf("bye %s: %s", f.Reason, f.Message))
			return
		}
	}
}

func (s *scaleSubscribers) fail(err error) {
	s.mu.Lock()
	s.lastErr = err
	s.mu.Unlock()
}

func (s *scaleSubscribers) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastErr
}

func (s *scaleSubscribers) close() {
	s.mu.Lock()
	for _, c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// scaleMetrics reads the region's /metrics into a map from series (name
// and labels, as written) to value.
func scaleMetrics(addr string) (map[string]float64, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	m := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			m[line[:i]] = v
		}
	}
	return m, sc.Err()
}

// processCPU returns the user and system CPU time of process pid, all its
// threads, from /proc (in clock ticks of 10 ms, USER_HZ on Linux).
func processCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The fields after the command name, which is in parentheses.
	i := strings.LastIndexByte(string(data), ')')
	f := strings.Fields(string(data[i+2:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: utime %q stime %q", pid, f[11], f[12])
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}

// machineCPU returns the CPU time the machine's CPUs spent busy (in user
// processes, the kernel, interrupts and softirqs: all but idle and iowait),
// from /proc/stat, summed over the CPUs.
func machineCPU() (time.Duration, error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, fmt.Errorf("/proc/stat: first line %q", line)
	}
	var busy int64
	for i, v := range f[1:8] { // user nice system idle iowait irq softirq
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: %q: %w", v, err)
		}
		if i != 3 && i != 4 {
			busy += n
		}
	}
	return time.Duration(busy) * 10 * time.Millisecond, nil
}

// processMemory returns the resident set size of process pid and its peak,
// in bytes.
func processMemory(pid int) (rss, hwm int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/%d/status: %s: %w", pid, k, err)
		}
		if k == "VmRSS" {
			rss = kb << 10
		} else {
			hwm = kb << 10
		}
	}
	return rss, hwm, sc.Err()
}
