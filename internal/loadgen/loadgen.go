// Package loadgen sends syslog load to a SYSLOG port: RFC 5424 or RFC 3164
// messages of a set size over TCP, octet-counted or LF-framed, as fast as
// the receiver takes them or at a set rate. Each message's text starts with
// "c=CONN s=SEQ " so a receiver can check that every message arrived once
// and in order per connection. `zbridge loadgen` and the relay benchmarks
// use it.
package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"
)

// Config describes the load.
type Config struct {
	Addr    string // host:port of the SYSLOG TCP port
	Count   int    // messages per connection
	Conns   int    // connections (default 1)
	Size    int    // approximate bytes per message, framing excluded (default 200)
	Format  string // "5424" (default) or "3164"
	Framing string // "octet" (default) or "lf"
	Host    string // HOSTNAME field (default "loadgen")
	App     string // APP-NAME / TAG (default "loadgen")
	// Rate, when positive, is messages per second per connection.
	Rate float64
	// Stamp puts the time each message is written in its text, after the
	// sequence number, as "t=UNIXNANO": a receiver measures latency with
	// [Stamped].
	Stamp bool
}

// Result is what was sent.
type Result struct {
	Sent    int
	Bytes   int64
	Elapsed time.Duration
}

// Rate is messages per second.
func (r Result) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Sent) / r.Elapsed.Seconds()
}

func (c *Config) defaults() error {
	if c.Addr == "" {
		return errors.New("loadgen: no address")
	}
	if c.Conns <= 0 {
		c.Conns = 1
	}
	if c.Size <= 0 {
		c.Size = 200
	}
	if c.Format == "" {
		c.Format = "5424"
	}
	if c.Framing == "" {
		c.Framing = "octet"
	}
	if c.Host == "" {
		c.Host = "loadgen"
	}
	if c.App == "" {
		c.App = "loadgen"
	}
	switch {
	case c.Format != "5424" && c.Format != "3164":
		return fmt.Errorf("loadgen: unknown format %q (5424, 3164)", c.Format)
	case c.Framing != "octet" && c.Framing != "lf":
		return fmt.Errorf("loadgen: unknown framing %q (octet, lf)", c.Framing)
	}
	return nil
}

// Header returns the part of a message before its text, for the time now.
func (c *Config) Header(b []byte, now time.Time) []byte {
	if c.Format == "3164" {
		b = append(b, "<30>"...)
		b = now.AppendFormat(b, time.Stamp)
		b = append(b, ' ')
		b = append(b, c.Host...)
		b = append(b, ' ')
		b = append(b, c.App...)
		return append(b, "[1]: "...)
	}
	b = append(b, "<30>1 "...)
	b = now.UTC().AppendFormat(b, "2006-01-02T15:04:05.000000Z")
	b = append(b, ' ')
	b = append(b, c.Host...)
	b = append(b, ' ')
	b = append(b, c.App...)
	return append(b, " 1 LOAD - "...)
}

// Message appends message seq of connection conn, without framing, to b;
// header is from Header.
func (c *Config) Message(b, header []byte, conn, seq int) []byte {
	start := len(b)
	b = append(b, header...)
	b = append(b, "c="...)
	b = strconv.AppendInt(b, int64(conn), 10)
	b = append(b, " s="...)
	b = strconv.AppendInt(b, int64(seq), 10)
	b = append(b, ' ')
	if c.Stamp {
		b = append(b, "t="...)
		b = strconv.AppendInt(b, time.Now().UnixNano(), 10)
		b = append(b, ' ')
	}
	for len(b)-start < c.Size {
		b = append(b, 'x')
	}
	return b
}

// Stamped returns the time a message was written, from the "t=UNIXNANO"
// that [Config.Stamp] puts in its text, found anywhere in b (a relayed
// message, a JSON event); false if b has none.
func Stamped(b []byte) (time.Time, bool) {
	i := bytes.Index(b, []byte(" t="))
	if i < 0 {
		return time.Time{}, false
	}
	var ns int64
	n := 0
	for _, c := range b[i+3:] {
		if c < '0' || c > '9' || n == 19 {
			break
		}
		ns = ns*10 + int64(c-'0')
		n++
	}
	if n == 0 {
		return time.Time{}, false
	}
	return time.Unix(0, ns), true
}

// Run sends the load and returns when every message is written and the
// connections are closed, or ctx ends.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if err := cfg.defaults(); err != nil {
		return Result{}, err
	}
	conns := make([]net.Conn, cfg.Conns)
	var d net.Dialer
	for i := range conns {
		c, err := d.DialContext(ctx, "tcp", cfg.Addr)
		if err != nil {
			for _, c := range conns[:i] {
				c.Close()
			}
			return Result{}, fmt.Errorf("loadgen: %w", err)
		}
		conns[i] = c
	}
	stop := context.AfterFunc(ctx, func() {
		for _, c := range conns {
			c.SetWriteDeadline(time.Unix(1, 0))
		}
	})
	defer stop()
	start := time.Now()
	var wg sync.WaitGroup
	results := make([]Result, cfg.Conns)
	errs := make([]error, cfg.Conns)
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = cfg.send(c, i)
		}()
	}
	wg.Wait()
	var res Result
	for _, r := range results {
		res.Sent += r.Sent
		res.Bytes += r.Bytes
	}
	res.Elapsed = time.Since(start)
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	return res, errors.Join(errs...)
}

func (cfg *Config) send(c net.Conn, conn int) (Result, error) {
	defer c.Close()
	w := bufio.NewWriterSize(c, 256<<10)
	var res Result
	var msg, frame, header []byte
	var interval time.Duration
	if cfg.Rate > 0 {
		interval = time.Duration(float64(time.Second) / cfg.Rate)
	}
	next := time.Now()
	for seq := 0; seq < cfg.Count; seq++ {
		if seq%1024 == 0 { // a fresh timestamp now and then is enough
			header = cfg.Header(header[:0], time.Now())
		}
		msg = cfg.Message(msg[:0], header, conn, seq)
		frame = frame[:0]
		if cfg.Framing == "octet" {
			frame = strconv.AppendInt(frame, int64(len(msg)), 10)
			frame = append(frame, ' ')
			frame = append(frame, msg...)
		} else {
			frame = append(frame, msg...)
			frame = append(frame, '\n')
		}
		if interval > 0 {
			next = next.Add(interval)
			if d := time.Until(next); d > 0 {
				if err := w.Flush(); err != nil {
					return res, fmt.Errorf("loadgen: %w", err)
				}
				time.Sleep(d)
			}
		}
		if _, err := w.Write(frame); err != nil {
			return res, fmt.Errorf("loadgen: %w", err)
		}
		res.Sent++
		res.Bytes += int64(len(frame))
	}
	if err := w.Flush(); err != nil {
		return res, fmt.Errorf("loadgen: %w", err)
	}
	return res, nil
}
