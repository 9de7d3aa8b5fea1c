package storebench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/gateway/region"
	"github.com/zbridge/zbridge/gateway/store"
	"github.com/zbridge/zbridge/gateway/store/memstore"
	"github.com/zbridge/zbridge/internal/loadgen"
	"github.com/zbridge/zbridge/protocol"
)

// relayRetain is the region's MaxEvents in the relay benchmark, as in
// gateway/region's BenchmarkRelayStore; the on-disk engine keeps as many.
const relayRetain = 200_000

// diskStore is the embedded store (memstore: it still serves every read,
// Wait and subscriber) writing through to an on-disk engine: each Append,
// one per batch the syslog server gathers, is also encoded and committed
// to the engine, in the caller's goroutine, before it returns. That is the
// whole extra cost an on-disk store puts on the relay's append path; a
// real one would also read back from disk (after a restart, or for readers
// behind the memory window), which this does not.
type diskStore struct {
	store.Store
	eng engine
	c   codec

	mu      sync.Mutex // serialises Appends so that keys rise on disk
	buf     []byte
	recs    []rec
	ring    []key // keys of the newest relayRetain events, by event number mod relayRetain
	n       uint64
	appends uint64
	err     error
}

func (d *diskStore) Append(ctx context.Context, evs []*protocol.Event) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.Store.Append(ctx, evs); err != nil { // assigns the IDs
		return err
	}
	b := d.buf[:0]
	d.recs = d.recs[:0]
	for _, e := range evs {
		s := len(b)
		b = d.c.encode(b, e)
		k := keyOf(e.ID)
		d.recs = append(d.recs, rec{key: k, val: b[s:len(b):len(b)]})
		d.ring[d.n%relayRetain] = k
		d.n++
	}
	d.buf = b
	d.appends++
	var trim *key
	if d.n > relayRetain {
		trim = &d.ring[d.n%relayRetain] // the oldest event kept
	}
	if err := d.eng.append(d.recs, trim); err != nil {
		if d.err == nil {
			d.err = err
		}
		return err
	}
	return nil
}

// BenchmarkRelay is the region's relay (RFC 5424 over syslog TCP in, one
// JSON subscriber out, as gateway/region's BenchmarkRelay) with the events
// kept in memory only (store=mem: the region's own memstore), and with
// each engine written through on every Append (diskStore). store=null is
// diskStore with the encoding but no engine. Reports msg/s, ns/msg,
// cpu-ns/msg (the whole process: region, load generator and subscriber,
// which are the same in every case) and events per Append (the group
// commit's batch size as the syslog server formed it).
//
//	go test -run '^$' -bench Relay -benchtime 2000000x -count 1
//
// Repeat that command for more rounds rather than raising -count, which
// runs each case back to back: separate rounds put every case, store=mem
// included, under the same conditions of the machine.
func BenchmarkRelay(b *testing.B) {
	// The first relay in a process runs slower than the next ones (the
	// heap grows, the GC settles): warm up so that store=mem, which comes
	// first, is not the one that pays for it. Ignore this line's figures.
	b.Run("warmup", func(b *testing.B) { benchRelay(b, nil, 0, codec{}) })
	b.Run("store=mem", func(b *testing.B) { benchRelay(b, nil, 0, codec{}) })
	for _, c := range codecs {
		b.Run("store=null/enc="+c.name, func(b *testing.B) { benchRelay(b, openNull, syncEvery100ms, c) })
	}
	for _, e := range engines {
		for _, mode := range []syncMode{syncEvery100ms, syncEveryBatch} {
			for _, c := range codecs {
				b.Run(fmt.Sprintf("store=%s/sync=%s/enc=%s", e.name, mode, c.name), func(b *testing.B) {
					benchRelay(b, e.open, mode, c)
				})
			}
		}
	}
}

func benchRelay(b *testing.B, open opener, mode syncMode, c codec) {
	region.TuneGC(0) // as zbridge region does
	log := logrus.New()
	log.SetOutput(io.Discard)
	cfg := region.Config{Name: "BENCH", SyslogTCP: "127.0.0.1:0", UnsolMsg: "127.0.0.1:0", Logger: log,
		MaxEvents: relayRetain}
	var ds *diskStore
	if open != nil {
		eng, err := open(b.TempDir(), mode)
		if err != nil {
			b.Fatal(err)
		}
		ds = &diskStore{Store: memstore.New(memstore.Config{MaxEvents: relayRetain}), eng: eng, c: c,
			buf: make([]byte, 0, 1<<20), ring: make([]key, relayRetain)}
		cfg.Store = ds
	}
	r, err := region.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := r.Start(); err != nil {
		b.Fatal(err)
	}
	var stopSync func()
	var syncErr error
	if ds != nil && mode == syncEvery100ms {
		var once sync.Once
		stopSync = startSyncer(ds.eng, func(err error) { once.Do(func() { syncErr = err }) })
	}
	defer func() {
		if stopSync != nil {
			stopSync()
		}
		r.Close()
		if ds != nil {
			ds.eng.close()
		}
	}()
	conn, err := net.Dial("tcp", r.Addr("unsolmsg").String())
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	// A heartbeat interval of 300 s: no heartbeat frame (which countLines
	// would count as an event) comes in a run shorter than that, and the
	// idle timeout (three intervals) does not end the session.
	io.WriteString(conn, `{"type":"logon","req":1,"client":"bench","version":1,"heartbeat":300}`+"\n"+
		`{"type":"subscribe","req":2}`+"\n")
	br := bufio.NewReaderSize(conn, 1<<20)
	for range 2 { // accepted, subscribed
		if _, err := br.ReadSlice('\n'); err != nil {
			b.Fatal(err)
		}
	}
	got := make(chan int, 1)
	go func() { got <- countLines(br, b.N) }()
	waitQuiet(b)
	b.ResetTimer()
	m := startMeter()
	res, err := loadgen.Run(context.Background(), loadgen.Config{Addr: r.Addr("syslog").String(), Count: b.N, Size: 200, Format: "5424"})
	if err != nil {
		b.Fatalf("loadgen: %v", err)
	}
	if res.Sent != b.N {
		b.Fatalf("sent %d of %d", res.Sent, b.N)
	}
	select {
	case n := <-got:
		if n != b.N {
			b.Fatalf("subscriber got %d of %d", n, b.N)
		}
	case <-time.After(5 * time.Minute):
		b.Fatal("subscriber did not get every event within 5 minutes")
	}
	if ds != nil {
		if stopSync != nil {
			stopSync()
			stopSync = nil
		}
		if err := ds.eng.sync(); err != nil {
			b.Fatal(err)
		}
	}
	el := time.Since(m.t0)
	m.report(b, b.N, 0)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/el.Seconds(), "msg/s")
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(el.Nanoseconds())/float64(b.N), "ns/msg")
	if ds != nil {
		ds.mu.Lock()
		defer ds.mu.Unlock()
		if ds.err != nil {
			b.Fatal(ds.err)
		}
		if ds.appends > 0 {
			b.ReportMetric(float64(ds.n)/float64(ds.appends), "events/append")
		}
		if ds.n != uint64(b.N) {
			b.Fatalf("the engine got %d events of %d", ds.n, b.N)
		}
	}
	if syncErr != nil {
		b.Fatal(syncErr)
	}
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
