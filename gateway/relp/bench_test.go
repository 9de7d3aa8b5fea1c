package relp

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/zbridge/zbridge/protocol/relp"
)

// BenchmarkServer sends 200-byte syslog messages through the server from
// a Go client written with the codec, keeping up to 128 unacknowledged
// (librelp's default window), to a Sink that returns at once. It reports
// messages per second, client and server on one machine.
func BenchmarkServer(b *testing.B) {
	ts := startServer(b, func(c *Config) {
		c.Sink = SinkFunc(func(context.Context, net.Addr, [][]byte) error { return nil })
	})
	c := dial(b, ts.addr, nil)
	c.c.SetDeadline(time.Time{})
	c.open()
	prefix := "<13>1 2026-12-06T08:00:00.000000+00:00 host1 app 1234 - - "
	msg := []byte(prefix + strings.Repeat("x", 200-len(prefix)))
	const window = 128
	credits := make(chan struct{}, window) // one per unacknowledged message
	acked := make(chan error, 1)
	b.SetBytes(int64(len(msg)))
	b.ResetTimer()
	go func() {
		for range b.N {
			f, err := c.rd.ReadFrame()
			if err == nil && (f.Command != relp.CmdRsp || string(f.Data) != "200 OK") {
				err = relp.ErrBadResponse
			}
			if err != nil {
				acked <- err
				return
			}
			<-credits
		}
		acked <- nil
	}()
	for range b.N {
		select {
		case credits <- struct{}{}:
		default: // the window is full: send what is queued, then wait
			c.flush()
			credits <- struct{}{}
		}
		c.queue(relp.CmdSyslog, msg)
		if len(c.wbuf) >= 32<<10 {
			c.flush()
		}
	}
	c.flush()
	if err := <-acked; err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
	st := ts.srv.Stats()
	b.ReportMetric(float64(st.Messages)/float64(max(st.Batches, 1)), "msgs/Deliver")
}
