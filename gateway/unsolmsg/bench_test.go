package unsolmsg_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/gateway/metrics"
	"github.com/zbridge/zbridge/gateway/store/memstore"
	"github.com/zbridge/zbridge/gateway/unsolmsg"
	"github.com/zbridge/zbridge/protocol"
)

// BenchmarkStream measures one subscriber's stream: events appended to the
// store in batches of 512, read, encoded as JSON and written to a
// subscriber that counts them, with at most 16 batches outstanding. It runs
// with RelayLatency off and on (a Prometheus histogram, as the region
// sets it), to show what observing each event costs:
//
//	go test -run '^$' -bench Stream -benchtime 500000x -count 6 ./gateway/unsolmsg/
func BenchmarkStream(b *testing.B) {
	b.Run("plain", func(b *testing.B) { benchStream(b, nil) })
	b.Run("relay-latency", func(b *testing.B) {
		benchStream(b, metrics.NewRegistry().NewHistogram("relay_latency_seconds", "h", nil))
	})
}

func benchStream(b *testing.B, lat unsolmsg.Observer) {
	const batch, window = 512, 16
	st := memstore.New(memstore.Config{MaxEvents: 4 * batch * window, MaxBytes: 1 << 30})
	defer st.Close()
	l := logrus.New()
	l.SetOutput(io.Discard)
	cfg := unsolmsg.Config{Store: st, Logger: l}
	if lat != nil {
		cfg.RelayLatency = lat
	}
	srv, err := unsolmsg.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	defer func() {
		srv.Close()
		<-served
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	io.WriteString(nc, `{"type":"logon","req":1,"client":"bench","version":1,"heartbeat":300}`+"\n"+`{"type":"subscribe","req":2}`+"\n")
	br := bufio.NewReaderSize(nc, 1<<20)
	for range 2 { // accept, reply
		if _, err := br.ReadSlice('\n'); err != nil {
			b.Fatal(err)
		}
	}
	n := b.N - b.N%batch + batch // whole batches
	tokens := make(chan struct{}, window)
	done := make(chan int, 1)
	go func() { // the subscriber: a token back for each batch read
		got, buf := 0, make([]byte, 1<<20)
		for got < n {
			k, err := br.Read(buf)
			before := got
			got += bytes.Count(buf[:k], []byte{'\n'})
			for range got/batch - before/batch {
				<-tokens
			}
			if err != nil {
				break
			}
		}
		done <- got
	}()
	ctx := context.Background()
	b.ResetTimer()
	for sent := 0; sent < n; sent += batch {
		tokens <- struct{}{}
		evs := make([]*protocol.Event, batch)
		for i := range evs {
			evs[i] = syslogEvent("lnx01", "a message of some ordinary length relayed to the subscriber")
		}
		if err := st.Append(ctx, evs); err != nil {
			b.Fatal(err)
		}
	}
	if got := <-done; got != n {
		b.Fatalf("subscriber got %d of %d", got, n)
	}
	b.StopTimer()
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}
