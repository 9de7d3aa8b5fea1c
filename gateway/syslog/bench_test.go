package syslog

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gosyslog "github.com/leodido/go-syslog/v4"
	"github.com/leodido/go-syslog/v4/rfc3164"
	"github.com/leodido/go-syslog/v4/rfc5424"
	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/gateway/syslog/framing"
	"github.com/zbridge/zbridge/protocol"
)

// About 200 bytes each, like the relay figures in REFERENCE.md.
const (
	bench5424 = "<13>1 2026-11-22T02:50:57.069805+00:00 lnx01.example.com myapp 12345 ID47 - " +
		"An application event log entry with some text of typical length for a syslog message, padded out to about 200 bytes."
	bench3164 = "<13>Nov 22 02:50:57 lnx01.example.com myapp[12345]: " +
		"An application event log entry with some text of typical length for a syslog message, padded out to about 200 bytes in all."
)

func benchParse(b *testing.B, line string) {
	p := NewParser(nil)
	p.SetSender(testSender)
	in := []byte(line)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if ev := p.Parse(in, testReceived); !ev.Parsed {
			b.Fatal(ev.ParseError)
		}
	}
}

func BenchmarkParse5424(b *testing.B) { benchParse(b, bench5424) }
func BenchmarkParse3164(b *testing.B) { benchParse(b, bench3164) }

// BenchmarkGoSyslog5424 and BenchmarkGoSyslog3164 are github.com/leodido/go-syslog's
// machines on the same lines (in best-effort mode, as the region used them
// before it read headers as rsyslog does): for comparison with
// BenchmarkParse5424 and BenchmarkParse3164, which make a whole event.
func BenchmarkGoSyslog5424(b *testing.B) {
	benchMachine(b, rfc5424.NewMachine(rfc5424.WithBestEffort()), bench5424)
}

func BenchmarkGoSyslog3164(b *testing.B) {
	benchMachine(b, rfc3164.NewMachine(rfc3164.WithBestEffort(), rfc3164.WithYear(rfc3164.CurrentYear{})), bench3164)
}

func benchMachine(b *testing.B, m gosyslog.Machine, line string) {
	in := []byte(line)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Parse(in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParse5424Z is BenchmarkParse5424 with a "Z" zone (no zone to
// make or look up).
func BenchmarkParse5424Z(b *testing.B) {
	benchParse(b, "<13>1 2026-11-22T02:50:57.069805Z lnx01.example.com myapp 12345 ID47 - "+
		"An application event log entry with some text of typical length for a syslog message, padded out to about 200 bytes.")
}

// loopReader serves the same bytes forever.
type loopReader struct {
	data []byte
	off  int
}

func (l *loopReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], l.data[l.off:])
		n += c
		l.off = (l.off + c) % len(l.data)
	}
	return n, nil
}

// BenchmarkFramingParse is the connection's inner loop: octet-counted
// frames out of a 64 KiB buffer, parsed into events, gathered in batches.
func BenchmarkFramingParse(b *testing.B) {
	for _, tt := range []struct{ name, line string }{
		{"rfc5424", bench5424},
		{"rfc3164", bench3164},
	} {
		b.Run(tt.name, func(b *testing.B) {
			frame := []byte(strconv.Itoa(len(tt.line)) + " " + tt.line)
			sc := framing.NewScanner(&loopReader{data: bytes.Repeat(frame, 64)}, 0)
			p := NewParser(nil)
			p.SetSender(testSender)
			batch := make([]*protocol.Event, 0, DefaultBatchSize)
			now := time.Now()
			b.SetBytes(int64(len(frame)))
			b.ReportAllocs()
			for b.Loop() {
				f, err := sc.Next()
				if err != nil {
					b.Fatal(err)
				}
				batch = append(batch, p.Parse(f, now))
				if len(batch) == cap(batch) || !sc.Buffered() {
					clear(batch)
					batch = batch[:0]
				}
			}
		})
	}
}

// countingAppender counts events and lets a benchmark wait for a number.
type countingAppender struct {
	n      atomic.Int64
	target int64
	done   chan struct{}
	delay  time.Duration // each Append's cost, like a store's round trip
}

func (a *countingAppender) Append(_ context.Context, evs []*protocol.Event) error {
	if a.delay > 0 {
		time.Sleep(a.delay)
	}
	if a.n.Add(int64(len(evs))) >= a.target {
		select {
		case a.done <- struct{}{}:
		default:
		}
	}
	return nil
}

// benchServer starts a server with cfg (and a logger that discards) on a
// loopback listener, closed when the benchmark ends, and returns it and
// its address.
func benchServer(b *testing.B, cfg Config) (*Server, string) {
	b.Helper()
	logger := logrus.New()
	logger.Out = io.Discard
	cfg.Logger = logger
	srv, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	b.Cleanup(func() {
		srv.Close()
		<-served
	})
	return srv, l.Addr().String()
}

// BenchmarkServerTCP measures the whole server on one loopback TCP
// connection: a writer sends octet-counted RFC 5424 messages of about 200
// bytes in 64 KiB writes, and the Appender only counts. The writer runs on
// the same machine, as in the relay figures of REFERENCE.md. In the
// "rtt1ms" case each Append takes 1 ms more, like a store's round trip.
func BenchmarkServerTCP(b *testing.B) {
	for _, tt := range []struct {
		name, line string
		delay      time.Duration
	}{
		{"rfc5424", bench5424, 0},
		{"rfc3164", bench3164, 0},
		{"rfc5424/rtt1ms", bench5424, time.Millisecond},
	} {
		b.Run(tt.name, func(b *testing.B) {
			app := &countingAppender{target: int64(b.N), done: make(chan struct{}, 1), delay: tt.delay}
			_, addr := benchServer(b, Config{Appender: app})
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			frame := strconv.Itoa(len(tt.line)) + " " + tt.line
			per := (64 << 10) / len(frame)
			chunk := []byte(strings.Repeat(frame, per))
			b.SetBytes(int64(len(frame)))
			b.ResetTimer()
			for sent := 0; sent < b.N; sent += per {
				n := min(per, b.N-sent)
				if _, err := c.Write(chunk[:n*len(frame)]); err != nil {
					b.Fatal(err)
				}
			}
			<-app.done
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
		})
	}
}

// BenchmarkServerTLS measures the server as BenchmarkServerTCP does, over
// TLS, in two ways a sender may write: "records=16KiB", the messages of
// each 64 KiB in as few records as TLS makes (16 KiB each), and
// "record-per-message", each message a record of its own (a sender that
// writes each message as it comes), the records of 64 KiB of messages
// sent to the socket at once in both, so that what differs is the records.
func BenchmarkServerTLS(b *testing.B) {
	for _, perMessage := range []bool{false, true} {
		name := map[bool]string{false: "records=16KiB", true: "record-per-message"}[perMessage]
		b.Run(name, func(b *testing.B) {
			app := &countingAppender{target: int64(b.N), done: make(chan struct{}, 1)}
			serverTLS, clientTLS := testTLS(b)
			srv, addr := benchServer(b, Config{Appender: app, TLSConfig: serverTLS})
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			raw := &bufferedConn{Conn: nc, w: bufio.NewWriterSize(nc, 256<<10)}
			c := tls.Client(raw, clientTLS)
			defer c.Close()
			if err := c.Handshake(); err != nil {
				b.Fatal(err)
			}
			raw.buffered = true
			frame := []byte(strconv.Itoa(len(bench5424)) + " " + bench5424)
			per := (64 << 10) / len(frame)
			chunk := bytes.Repeat(frame, per)
			b.SetBytes(int64(len(frame)))
			b.ResetTimer()
			for sent := 0; sent < b.N; sent += per {
				n := min(per, b.N-sent)
				if perMessage {
					for i := range n {
						if _, err := c.Write(chunk[i*len(frame) : (i+1)*len(frame)]); err != nil {
							b.Fatal(err)
						}
					}
				} else if _, err := c.Write(chunk[:n*len(frame)]); err != nil {
					b.Fatal(err)
				}
				if err := raw.w.Flush(); err != nil {
					b.Fatal(err)
				}
			}
			<-app.done
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
			b.ReportMetric(float64(srv.Stats().Reads)/float64(b.N)*1000, "reads/kmsg")
		})
	}
}

// bufferedConn writes through w once buffered is set (after the TLS
// handshake, whose messages must go at once).
type bufferedConn struct {
	net.Conn
	w        *bufio.Writer
	buffered bool
}

func (c *bufferedConn) Write(p []byte) (int, error) {
	if c.buffered {
		return c.w.Write(p)
	}
	return c.Conn.Write(p)
}

// BenchmarkEventJSON5424 encodes the event parsed from an RFC 5424 line
// as the store does for every subscriber (protocol.AppendEventJSON): the
// event the relay encodes, whose strings are parts of its raw message,
// unlike protocol's own BenchmarkAppendEventJSON's.
func BenchmarkEventJSON5424(b *testing.B) {
	p := NewParser(nil)
	p.SetSender(testSender)
	ev := p.Parse([]byte(bench5424), testReceived)
	if !ev.Parsed {
		b.Fatal(ev.ParseError)
	}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = protocol.AppendEventJSON(buf[:0], ev)
	}
	b.SetBytes(int64(len(buf)))
}
