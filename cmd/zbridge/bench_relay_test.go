//go:build !lean

package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/zbridge/zbridge/internal/loadgen"
	"github.com/zbridge/zbridge/internal/peer"
	"github.com/zbridge/zbridge/protocol"
)

// The relay benchmarks run `zbridge region` as users run it (the on-disk
// embedded store, its default sync policy and retention) and rsyslog
// relaying the same load (imtcp → omfwd, octet-counted, to a TCP sink), each
// a process of its own, with the load generator and the reader in the
// benchmark's process. Each figure is measured in the same run as its peer's:
//
//	go test -run '^$' -bench 'RelayPeers' -benchtime 1000000x -count 3 ./cmd/zbridge/
//	go test -run '^$' -bench 'RelayLatency' -benchtime 300000x -count 3 ./cmd/zbridge/
//	go test -run '^$' -bench 'TailKeepsUp' -benchtime 1000000x -count 3 ./cmd/zbridge/
//
// b.N is the number of messages of a run, spread over the connections.
// Flood control is off for the region: one generator sending as fast as it
// can is a flood by the region's defaults. ZBRIDGE_BENCH_REGION_ARGS adds
// flags to the region's command line, ZBRIDGE_BENCH_REGION_ENV variables
// (KEY=value, space-separated) to its environment only: GOMAXPROCS=1, say,
// without changing the generator's and the reader's.

// BenchmarkRelayPeers measures relay throughput and the relay's CPU per
// message, over 1 and 4 sender connections, for the region (a raw UNSOLMSG
// reader counting JSON event frames) and rsyslog, each warmed first (see
// warm). It reports msg/s and cpu-µs/msg (the relay process's user+system
// time, from /proc).
func BenchmarkRelayPeers(b *testing.B) {
	for _, conns := range []int{1, 4} {
		b.Run(fmt.Sprintf("conns=%d/zbridge", conns), func(b *testing.B) {
			r := startBenchRegion(b)
			rt := r.relay(b, "raw")
			warm(b, rt)
			benchRelay(b, rt, conns)
		})
		b.Run(fmt.Sprintf("conns=%d/rsyslog", conns), func(b *testing.B) {
			rt := startBenchRsyslog(b)
			warm(b, rt)
			benchRelay(b, rt, conns)
		})
	}
}

// BenchmarkTailKeepsUp measures the relay's rate with `zbridge tail
// --format json > /dev/null` as the subscriber, beside the raw reader's
// rate in the same run: the client users run must keep up with the relay.
func BenchmarkTailKeepsUp(b *testing.B) {
	b.Run("raw", func(b *testing.B) {
		r := startBenchRegion(b)
		rt := r.relay(b, "raw")
		warm(b, rt)
		benchRelay(b, rt, 1)
	})
	b.Run("tail", func(b *testing.B) {
		r := startBenchRegion(b)
		// Warmed as the raw reader's region is, through a raw reader that
		// then goes away; tail starts after the last warming event.
		after := "0"
		if b.N > 1 {
			raw := r.relay(b, "raw")
			if after = warm(b, raw); after == "" {
				b.Fatal("warming: the last event's ID was not read")
			}
			raw.close()
		}
		benchRelay(b, r.tail(b, after), 1)
	})
}

// BenchmarkRelayLatency measures the time from a message's write by the
// generator to its arrival at the reader (p50, p99, p99.9 in ms), at half
// the region's peak rate (measured first, in the same run, over one
// connection), for the region and for rsyslog at that same rate, and the
// CPU each relay spends on a message at that rate (cpu-µs/msg). Each
// relay is first warmed with warmMessages at full speed, as a relay that
// has been running is: the region's cache of the newest events is full
// and its heap has grown to its working size (a region just started
// spends its first second faulting in that memory).
// ZBRIDGE_BENCH_LATENCY_FILE=PREFIX writes each message's latency and
// arrival time to PREFIX.BENCHMARK-NAME, to find where a tail comes from;
// ZBRIDGE_BENCH_LATENCY_RATE=N measures at N messages a second instead of
// half the peak, so that two builds or settings compare at one rate (the
// peak measured varies from run to run on a shared machine).
func BenchmarkRelayLatency(b *testing.B) {
	var rate float64
	b.Run("peak", func(b *testing.B) {
		r := startBenchRegion(b)
		rt := r.relay(b, "raw")
		warm(b, rt)
		res := runRelay(b, rt, 1, b.N, 0)
		rate = float64(b.N) / res.elapsed.Seconds()
		b.ReportMetric(rate, "msg/s")
		b.ReportMetric(0, "ns/op")
	})
	if rate == 0 {
		return
	}
	half := rate / 2
	if v := os.Getenv("ZBRIDGE_BENCH_LATENCY_RATE"); v != "" {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || r <= 0 {
			b.Fatalf("ZBRIDGE_BENCH_LATENCY_RATE=%q: a rate in messages a second", v)
		}
		half = r
	}
	b.Run("zbridge", func(b *testing.B) {
		r := startBenchRegion(b)
		rt := r.relay(b, "raw")
		warm(b, rt)
		reportLatencies(b, runRelay(b, rt, 1, b.N, half), half)
	})
	b.Run("rsyslog", func(b *testing.B) {
		rt := startBenchRsyslog(b)
		warm(b, rt)
		reportLatencies(b, runRelay(b, rt, 1, b.N, half), half)
	})
}

// warmMessages is how many messages warm a relay before it is measured:
// enough for the region to reach its steady state, as a region that has
// been running is in — its retention full (by bytes, about 640,000 of
// these messages), so that trimming recycles the memory of the oldest
// events instead of the relay faulting in new pages, and its heap grown
// to the size the garbage collector keeps (region.GCPercent: hundreds of
// megabytes, touched for the first time only in its first cycle).
const warmMessages = 1_000_000

// warm sends warmMessages through rt at full speed and waits until the
// reader has had them all; it returns the ID of the last, if the relay is
// the region. A run of b.N 1, which the testing package makes first and
// discards, is not warmed.
func warm(b *testing.B, rt *relayUnderTest) (last string) {
	b.Helper()
	if b.N == 1 {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	got := make(chan error, 1)
	go func() {
		seen := 0
		k, err := rt.read(ctx, warmMessages, func(msg []byte) {
			if seen++; seen == warmMessages {
				if _, id, ok := protocol.SplitEventFrame(msg); ok {
					last = id.String()
				}
			}
		})
		if err == nil && k != warmMessages {
			err = fmt.Errorf("reader got %d of %d", k, warmMessages)
		}
		got <- err
	}()
	if _, err := loadgen.Run(ctx, loadgen.Config{Addr: rt.input, Count: warmMessages, Conns: 1, Size: 200}); err != nil {
		b.Fatalf("warming: loadgen: %v", err)
	}
	if err := <-got; err != nil {
		b.Fatalf("warming: %v", err)
	}
	return last
}

// relayUnderTest is a relay process with its input and a reader of its
// output.
type relayUnderTest struct {
	pid   int    // the relay's process, whose CPU time is measured
	input string // its syslog TCP address
	// read reads until n messages have arrived or ctx ends, calling each
	// (if not nil) with every message; it returns how many arrived. It
	// is connected before the load starts.
	read func(ctx context.Context, n int, each func(msg []byte)) (int, error)
	// done, if not nil, reports when the reader (a process) has finished
	// with n messages instead of read counting them.
	done func(ctx context.Context) error
	// close, if not nil, ends the reader's connection.
	close func()
}

// benchRegion is a `zbridge region` process with SYSLOG and UNSOLMSG.
type benchRegion struct {
	*peer.Process
	syslog, unsolmsg string
}

func startBenchRegion(b *testing.B) *benchRegion {
	b.Helper()
	r := &benchRegion{syslog: peer.Addr(peer.FreePort(b)), unsolmsg: peer.Addr(peer.FreePort(b))}
	args := []string{"region", "--name", "BENCH", "--syslog", r.syslog, "--syslog-udp", "",
		"--unsolmsg", r.unsolmsg, "--commands", "", "--vmmon", "", "--http", "",
		"--data-dir", b.TempDir(), "--flood-rate", "0", "--flood-msgid-rate", "0", "--flood-addr-rate", "0",
		"--log-level", "warn"}
	args = append(args, strings.Fields(os.Getenv("ZBRIDGE_BENCH_REGION_ARGS"))...)
	r.Process = peer.Start(b, peer.Command{Name: "zbridge-region", Path: zbridgeBin, Args: args,
		Env: strings.Fields(os.Getenv("ZBRIDGE_BENCH_REGION_ENV")),
		Ready: func(ctx context.Context) error {
			if err := peer.TCPReady(r.syslog)(ctx); err != nil {
				return err
			}
			return peer.TCPReady(r.unsolmsg)(ctx)
		}})
	return r
}

// relay returns the region as a relay read by a raw reader ("raw": log on,
// subscribe, count the event frames; see tail for the other).
func (r *benchRegion) relay(b *testing.B, reader string) *relayUnderTest {
	rt := &relayUnderTest{pid: r.Pid(), input: r.syslog}
	switch reader {
	case "raw":
		c, err := net.Dial("tcp", r.unsolmsg)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close() })
		io.WriteString(c, `{"type":"logon","req":1,"client":"bench","version":1,"heartbeat":300}`+"\n"+
			`{"type":"subscribe","req":2}`+"\n")
		br := bufio.NewReaderSize(c, 1<<20)
		for i := 0; i < 2; i++ { // accept, reply
			if _, err := br.ReadSlice('\n'); err != nil {
				b.Fatal(err)
			}
		}
		rt.read = func(ctx context.Context, n int, each func([]byte)) (int, error) {
			stop := context.AfterFunc(ctx, func() { c.SetReadDeadline(time.Unix(1, 0)) })
			defer stop()
			return readLines(br, n, each)
		}
		rt.close = func() { c.Close() }
	default:
		b.Fatalf("unknown reader %q", reader)
	}
	return rt
}

// tail returns the region as a relay read by `zbridge tail --format json`
// writing to /dev/null, subscribed after the event with ID after ("0": from
// the beginning; the store is empty until the load starts).
func (r *benchRegion) tail(b *testing.B, after string) *relayUnderTest {
	rt := &relayUnderTest{pid: r.Pid(), input: r.syslog}
	// After a given event, not from now: every event of the load, however
	// soon tail has subscribed.
	cmd := exec.Command(zbridgeBin, "tail", "--unsolmsg", r.unsolmsg, "--format", "json", "--after", after,
		"--count", strconv.Itoa(b.N), "--timeout", "10m")
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer devnull.Close()
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = devnull, &stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	var waitErr error
	exited := make(chan struct{})
	go func() { waitErr = cmd.Wait(); close(exited) }()
	b.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	rt.done = func(ctx context.Context) error {
		select {
		case <-exited:
			if waitErr != nil {
				return fmt.Errorf("zbridge tail: %w: %s", waitErr, stderr.String())
			}
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return rt
}

// readLines reads newline-ended frames until n event frames arrived,
// calling each with every event frame if each is set.
func readLines(br *bufio.Reader, n int, each func([]byte)) (int, error) {
	got := 0
	if each == nil {
		buf := make([]byte, 1<<20)
		for got < n {
			k, err := br.Read(buf)
			got += bytes.Count(buf[:k], []byte{'\n'})
			if err != nil {
				return got, err
			}
		}
		return got, nil
	}
	for got < n {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return got, err
		}
		each(line)
		got++
	}
	return got, nil
}

// startBenchRsyslog starts rsyslog relaying imtcp → omfwd to a sink of the
// benchmark's, with an in-memory queue in front of the action as rsyslog's
// documentation recommends for forwarding.
func startBenchRsyslog(b *testing.B) *relayUnderTest {
	peer.Require(b, "rsyslogd")
	sink, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { sink.Close() })
	in := peer.FreePort(b)
	conf := fmt.Sprintf(`global(workDirectory="%s")
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="%d" ruleset="relay")
ruleset(name="relay" queue.type="LinkedList" queue.size="200000") {
  action(type="omfwd" target="127.0.0.1" port="%d" protocol="tcp" tcp_framing="octet-counted"
         template="RSYSLOG_SyslogProtocol23Format")
}
`, b.TempDir(), in, sink.Addr().(*net.TCPAddr).Port)
	path := filepath.Join(b.TempDir(), "relay.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		b.Fatal(err)
	}
	p := peer.StartRsyslog(b, path, peer.TCPReady(peer.Addr(in)))
	var (
		once sync.Once
		conn net.Conn
		br   *bufio.Reader // kept across reads: what one read buffered is the next's
		cerr error
	)
	return &relayUnderTest{pid: p.Pid(), input: peer.Addr(in),
		read: func(ctx context.Context, n int, each func([]byte)) (int, error) {
			once.Do(func() { // omfwd connects with the first message
				stop := context.AfterFunc(ctx, func() { sink.Close() })
				defer stop()
				conn, cerr = sink.Accept()
				if cerr == nil {
					b.Cleanup(func() { conn.Close() })
					br = bufio.NewReaderSize(conn, 1<<20)
				}
			})
			if cerr != nil {
				return 0, cerr
			}
			stop := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Unix(1, 0)) })
			defer stop()
			return readOctetFrames(br, n, each)
		}}
}

// readOctetFrames reads RFC 6587 octet-counted frames until n arrived.
func readOctetFrames(br *bufio.Reader, n int, each func([]byte)) (int, error) {
	got := 0
	var msg []byte
	for got < n {
		ls, err := br.ReadSlice(' ')
		if err != nil {
			return got, err
		}
		l, err := strconv.Atoi(string(ls[:len(ls)-1]))
		if err != nil || l < 0 {
			return got, fmt.Errorf("bad frame length %q", ls)
		}
		if each == nil {
			if _, err := br.Discard(l); err != nil {
				return got, err
			}
		} else {
			msg = slices.Grow(msg[:0], l)[:l]
			if _, err := io.ReadFull(br, msg); err != nil {
				return got, err
			}
			each(msg)
		}
		got++
	}
	return got, nil
}

// relayResult is one run's measurements.
type relayResult struct {
	elapsed time.Duration
	cpu     time.Duration // the relay process's user+system time
	lat     []time.Duration
	arrived []int64 // when each of lat arrived, in µs since the Unix epoch
}

// runRelay sends n messages over conns connections (at rate msg/s in all
// if rate > 0, each stamped with its write time) and waits until all
// arrived at the reader.
func runRelay(b *testing.B, rt *relayUnderTest, conns, n int, rate float64) relayResult {
	b.Helper()
	n = max(n/conns, 1) * conns
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var res relayResult
	stamped := rate > 0
	got := make(chan error, 1)
	if rt.read != nil {
		var each func([]byte)
		if stamped {
			// Faulted in now, and collected, not while the load runs: the
			// reader must not stall the first messages of both relays on
			// its own page faults and garbage collection (it did, ~100 ms
			// at the start of each run). Arrival times hold no pointer.
			res.lat = prefault(make([]time.Duration, n))[:0]
			res.arrived = prefault(make([]int64, n))[:0]
			runtime.GC()
			each = func(msg []byte) {
				if t, ok := loadgen.Stamped(msg); ok {
					now := time.Now()
					res.lat = append(res.lat, now.Sub(t))
					res.arrived = append(res.arrived, now.UnixMicro())
				}
			}
		}
		go func() {
			k, err := rt.read(ctx, n, each)
			if err == nil && k != n {
				err = fmt.Errorf("reader got %d of %d", k, n)
			}
			got <- err
		}()
	}
	cpu0 := procCPU(b, rt.pid)
	b.ResetTimer()
	start := time.Now()
	cfg := loadgen.Config{Addr: rt.input, Count: n / conns, Conns: conns, Size: 200, Stamp: stamped}
	if rate > 0 {
		cfg.Rate = rate / float64(conns)
	}
	sent, err := loadgen.Run(ctx, cfg)
	if err != nil {
		b.Fatalf("loadgen: %v", err)
	}
	if sent.Sent != n {
		b.Fatalf("sent %d of %d", sent.Sent, n)
	}
	if rt.done != nil {
		err = rt.done(ctx)
	} else {
		err = <-got
	}
	if err != nil {
		b.Fatal(err)
	}
	res.elapsed = time.Since(start)
	b.StopTimer()
	res.cpu = procCPU(b, rt.pid) - cpu0
	if stamped && len(res.lat) != n {
		b.Fatalf("%d of %d messages carried their stamp", len(res.lat), n)
	}
	return res
}

// prefault writes every page of s, so that the kernel has mapped them.
func prefault[T any](s []T) []T {
	var zero T
	step := max(1, 4096/max(1, int(unsafe.Sizeof(zero))))
	for i := 0; i < len(s); i += step {
		s[i] = zero
	}
	return s
}

func benchRelay(b *testing.B, rt *relayUnderTest, conns int) {
	res := runRelay(b, rt, conns, b.N, 0)
	n := float64(max(b.N/conns, 1) * conns)
	b.ReportMetric(n/res.elapsed.Seconds(), "msg/s")
	b.ReportMetric(float64(res.cpu.Microseconds())/n, "cpu-µs/msg")
	b.ReportMetric(0, "ns/op")
}

func reportLatencies(b *testing.B, res relayResult, rate float64) {
	if f := os.Getenv("ZBRIDGE_BENCH_LATENCY_FILE"); f != "" {
		// For finding where a tail comes from: each message's latency and
		// arrival (µs since the Unix epoch), in arrival order.
		var sb strings.Builder
		for i, l := range res.lat {
			fmt.Fprintf(&sb, "%d %d\n", l.Microseconds(), res.arrived[i])
		}
		name := f + "." + strings.ReplaceAll(b.Name(), "/", "_")
		if err := os.WriteFile(name, []byte(sb.String()), 0o644); err != nil {
			b.Error(err)
		}
	}
	lat := res.lat
	slices.Sort(lat)
	q := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	b.ReportMetric(rate, "msg/s")
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(q(0.999), "p99.9-ms")
	// The relay's CPU a message at this rate: more than at full speed,
	// where batches are larger; what it leaves of the machine is the
	// headroom a stall drains with.
	b.ReportMetric(float64(res.cpu.Microseconds())/float64(len(res.lat)), "cpu-µs/msg")
	b.ReportMetric(0, "ns/op")
}

// procCPU returns the user+system CPU time process pid has used, from
// /proc/PID/stat (clock ticks of 10 ms: measure runs of a second or more).
func procCPU(b *testing.B, pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatalf("relay's CPU time: %v", err)
	}
	// The command name, in parentheses, may hold spaces: fields count
	// from after its closing parenthesis (field 3 is the state).
	rest := data[bytes.LastIndexByte(data, ')')+2:]
	f := strings.Fields(string(rest))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * (time.Second / 100) // USER_HZ is 100 on Linux
}
