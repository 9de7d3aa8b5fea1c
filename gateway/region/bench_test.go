package region

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/gateway/store/diskstore"
	"github.com/zbridge/zbridge/internal/loadgen"
	"github.com/zbridge/zbridge/internal/peer"
)

// BenchmarkRelayStore measures the relay (RFC 5424, syslog TCP in, one
// JSON subscriber out; cmd/zbridge's BenchmarkRelayPeers measures it
// beside rsyslog, each a process of its own) with the events kept in the embedded store in
// memory, on disk under each sync policy (in a directory under $TMPDIR),
// and in Redis (a redis-server of the benchmark's own, on loopback). The
// first variant run in a process is slower (heap and allocator warm-up):
// compare them each in a process of its own, interleaved:
//
//	for i in 1 2 3; do for v in embedded disk-batch disk-always; do
//	  go test -run '^$' -bench "RelayStore/$v\$" -benchtime 1000000x ./gateway/region/
//	done; done
func BenchmarkRelayStore(b *testing.B) {
	b.Run("embedded", func(b *testing.B) { benchZbridgeWith(b, "5424", nil) })
	for _, p := range []diskstore.SyncPolicy{diskstore.SyncBatch, diskstore.SyncAlways, diskstore.SyncOS} {
		b.Run("disk-"+string(p), func(b *testing.B) {
			dir := b.TempDir()
			benchZbridgeWith(b, "5424", func(c *Config) { c.DataDir, c.Sync = dir, p })
		})
	}
	b.Run("redis", func(b *testing.B) {
		addr, _ := peer.StartRedis(b)
		key := filepath.Join(b.TempDir(), "cluster.key")
		if err := os.WriteFile(key, []byte("bench-cluster-key-0123456789abcdef"), 0o600); err != nil {
			b.Fatal(err)
		}
		benchZbridgeWith(b, "5424", func(c *Config) { c.RedisURL, c.ClusterKeyFile = "redis://"+addr+"/0", key })
	})
}

func benchLoad(b *testing.B, addr, format string) {
	b.Helper()
	res, err := loadgen.Run(context.Background(), loadgen.Config{Addr: addr, Count: b.N, Size: 200, Format: format})
	if err != nil {
		b.Fatalf("loadgen: %v", err)
	}
	if res.Sent != b.N {
		b.Fatalf("sent %d of %d", res.Sent, b.N)
	}
}

func report(b *testing.B, start time.Time) {
	el := time.Since(start)
	b.ReportMetric(float64(b.N)/el.Seconds(), "msg/s")
	b.ReportMetric(float64(el.Nanoseconds())/float64(b.N), "ns/msg")
	b.ReportMetric(0, "ns/op")
}

func benchZbridgeWith(b *testing.B, format string, configure func(*Config)) {
	TuneGC(0) // as zbridge region does
	log := logrus.New()
	log.SetOutput(io.Discard)
	cfg := Config{Name: "BENCH", SyslogTCP: "127.0.0.1:0", UnsolMsg: "127.0.0.1:0", Logger: log,
		MaxEvents: 200_000}
	if configure != nil {
		configure(&cfg)
	}
	r, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := r.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Close() })
	// The subscriber: logs on, subscribes to JSON events, counts lines.
	c, err := net.Dial("tcp", r.Addr("unsolmsg").String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, `{"type":"logon","req":1,"client":"bench","version":1,"heartbeat":300}`+"\n"+`{"type":"subscribe","req":2}`+"\n")
	br := bufio.NewReaderSize(c, 1<<20)
	for i := 0; i < 2; i++ { // accept, reply
		if _, err := br.ReadSlice('\n'); err != nil {
			b.Fatal(err)
		}
	}
	got := make(chan int, 1)
	go func() { got <- countLines(br, b.N) }()
	b.ResetTimer()
	start := time.Now()
	benchLoad(b, r.Addr("syslog").String(), format)
	select {
	case n := <-got:
		if n != b.N {
			b.Fatalf("subscriber got %d of %d", n, b.N)
		}
	case <-time.After(5 * time.Minute):
		b.Fatal("subscriber did not get every event within 5 minutes")
	}
	report(b, start)
}

// countLines reads until n event frames have arrived (or the stream ends).
func countLines(br *bufio.Reader, n int) int {
	got := 0
	buf := make([]byte, 1<<20)
	for got < n {
		k, err := br.Read(buf)
		got += bytes.Count(buf[:k], []byte{'\n'})
		if err != nil {
			return got
		}
	}
	return got
}
