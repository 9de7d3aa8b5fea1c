package storebench

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/zbridge/zbridge/protocol"
)

// Every benchmark here counts b.N in events: ns/op is wall time per event.
// Each also reports, from getrusage(RUSAGE_SELF) around the timed part,
// cpu-ns/event: user+system CPU of the whole process per event, which takes
// in the engine's own goroutines (pebble's flushes and compactions, the
// 100 ms syncer) and the garbage collector, not only the appending
// goroutine. See README.md for how to run them and what they found.

var batchSizes = []int{64, 1024}

// retainWindow is how many events the retention cases keep: each batch
// then removes as many old events as it adds.
const retainWindow = 250_000

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// diskWritten is what this process has caused to be written to storage
// (write_bytes less cancelled_write_bytes of /proc/self/io), or -1.
func diskWritten() int64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return -1
	}
	var w, c int64 = -1, 0
	for _, line := range bytes.Split(b, []byte("\n")) {
		k, v, ok := bytes.Cut(line, []byte(": "))
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(string(v), 10, 64)
		switch string(k) {
		case "write_bytes":
			w = n
		case "cancelled_write_bytes":
			c = n
		}
	}
	if w < 0 {
		return -1
	}
	return w - c
}

// hostBusy is the machine's busy CPU time so far, all CPUs (user, nice,
// system, irq and softirq of /proc/stat), or -1. It takes in what the
// kernel does for the process outside its own threads (the flusher threads
// writing dirty pages back) and whatever else runs on the machine. Its
// unit is USER_HZ ticks (10 ms here): use it over seconds, not less.
func hostBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return -1
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := bytes.Fields(line)
	if len(f) < 8 || string(f[0]) != "cpu" {
		return -1
	}
	var ticks int64
	for _, i := range []int{1, 2, 3, 6, 7} { // user nice system irq softirq
		n, err := strconv.ParseInt(string(f[i]), 10, 64)
		if err != nil {
			return -1
		}
		ticks += n
	}
	return time.Duration(ticks) * (time.Second / 100)
}

// kthreadTime is the CPU time so far of the kernel's threads (kthreadd and
// its children: the flusher threads writing dirty pages back, the ext4
// journal thread, softirq threads), or -1. Most of it, while an engine
// writes, is work done for the engine's writes outside the process; other
// processes' disk writes add to it too. Threads that exited meanwhile are
// missed. Its unit is the clock tick (10 ms).
func kthreadTime() time.Duration {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return -1
	}
	var ticks int64
	for _, e := range ents {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ... utime(14) stime(15)
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := bytes.Fields(b[i+1:])
		if len(f) < 13 {
			continue
		}
		if e.Name() != "2" && string(f[1]) != "2" {
			continue
		}
		u, _ := strconv.ParseInt(string(f[11]), 10, 64)
		st, _ := strconv.ParseInt(string(f[12]), 10, 64)
		ticks += u + st
	}
	return time.Duration(ticks) * (time.Second / 100)
}

// waitQuiet, when STOREBENCH_QUIET is set (to a duration, "2m"), waits up to
// that long for the rest of the machine to be quiet (the CPU time of
// everything but this process under 10% of one CPU over a second) before a
// timed part starts. On a machine other work shares, that keeps the
// figures about the engine; the others% metric says how quiet it stayed.
func waitQuiet(b *testing.B) {
	d, err := time.ParseDuration(os.Getenv("STOREBENCH_QUIET"))
	if err != nil || d <= 0 || b.N == 1 { // b.N == 1: the probe run
		return
	}
	b.StopTimer()
	defer b.StartTimer()
	for end := time.Now().Add(d); time.Now().Before(end); {
		h0, c0 := hostBusy(), cpuTime()
		time.Sleep(time.Second)
		if h0 < 0 || hostBusy()-h0-(cpuTime()-c0) < 100*time.Millisecond {
			return
		}
	}
	b.Logf("the machine was not quiet within %v", d)
}

// meter measures one timed part.
type meter struct {
	t0    time.Time
	cpu0  time.Duration
	host0 time.Duration
	kth0  time.Duration
	io0   int64
}

func startMeter() meter {
	return meter{t0: time.Now(), cpu0: cpuTime(), host0: hostBusy(), kth0: kthreadTime(), io0: diskWritten()}
}

// report reports per-event CPU and disk writes, and MB/s of payload.
func (m meter) report(b *testing.B, events int, payload int64) {
	el := time.Since(m.t0)
	cpu := cpuTime() - m.cpu0
	host := hostBusy()
	kth := kthreadTime()
	io1 := diskWritten()
	n := float64(events)
	b.ReportMetric(float64(cpu.Nanoseconds())/n, "cpu-ns/event")
	if m.host0 >= 0 && host >= 0 {
		// others%: the CPU the rest of the machine used meanwhile (other
		// processes, and the kernel's own threads: page writeback), in
		// percent of all CPUs.
		others := (host - m.host0 - cpu).Seconds() / el.Seconds() / float64(runtime.NumCPU())
		b.ReportMetric(max(0, 100*others), "others%")
	}
	if m.kth0 >= 0 && kth >= 0 {
		b.ReportMetric(float64((kth-m.kth0).Nanoseconds())/n, "kthread-ns/event")
	}
	b.ReportMetric(100*cpu.Seconds()/el.Seconds(), "cpu%")
	if payload > 0 {
		b.ReportMetric(float64(payload)/el.Seconds()/1e6, "MB/s")
		b.ReportMetric(float64(payload)/n, "B/event")
	}
	if m.io0 >= 0 && io1 >= 0 {
		b.ReportMetric(float64(io1-m.io0)/n, "diskB/event")
	}
}

// writer encodes batches of events and appends them to an engine.
type writer struct {
	eng   engine
	c     codec
	src   *source
	evs   []*protocol.Event
	recs  []rec
	buf   []byte
	bytes int64 // encoded value bytes appended
}

func newWriter(eng engine, c codec, batch int) *writer {
	return &writer{eng: eng, c: c, src: newSource(), evs: make([]*protocol.Event, batch),
		recs: make([]rec, batch), buf: make([]byte, 0, batch*1024)}
}

// batch appends the next n events in one commit; with window > 0 the same
// commit trims to the newest window events.
func (w *writer) batch(n, window int) error {
	w.src.fill(w.evs[:n])
	b := w.buf[:0]
	for i, e := range w.evs[:n] {
		s := len(b)
		b = w.c.encode(b, e)
		// If b grows, earlier values keep pointing at the old array,
		// which is not written again: they stay valid.
		w.recs[i] = rec{key: keyOf(e.ID), val: b[s:len(b):len(b)]}
	}
	w.buf = b
	w.bytes += int64(len(b))
	var trim *key
	if window > 0 && w.src.n > uint64(window) {
		k := keyOf(idOf(w.src.n - uint64(window)))
		trim = &k
	}
	return w.eng.append(w.recs[:n], trim)
}

// benchAppend appends b.N events in batches of batch events. It first
// stores prefill events (not timed); with trim, every batch then also trims
// the store to the newest prefill events.
func benchAppend(b *testing.B, open opener, mode syncMode, c codec, batch, prefill int, trim bool) {
	eng, err := open(b.TempDir(), mode)
	if err != nil {
		b.Fatal(err)
	}
	defer eng.close()
	w := newWriter(eng, c, batch)
	for w.src.n < uint64(prefill) {
		if err := w.batch(min(batch, prefill-int(w.src.n)), 0); err != nil {
			b.Fatal(err)
		}
	}
	if err := eng.sync(); err != nil {
		b.Fatal(err)
	}
	var syncErr atomic.Pointer[error]
	stop := func() {}
	runtime.GC()
	waitQuiet(b)
	b.ReportAllocs()
	b.ResetTimer()
	m := startMeter()
	bytes0 := w.bytes
	if mode == syncEvery100ms {
		stop = startSyncer(eng, func(err error) { syncErr.Store(&err) })
	}
	window := 0
	if trim {
		window = prefill
	}
	for done := 0; done < b.N; {
		n := min(batch, b.N-done)
		if err := w.batch(n, window); err != nil {
			b.Fatal(err)
		}
		done += n
	}
	stop()
	if err := eng.sync(); err != nil { // what is appended is durable
		b.Fatal(err)
	}
	m.report(b, b.N, w.bytes-bytes0)
	b.StopTimer()
	if p := syncErr.Load(); p != nil {
		b.Fatal(*p)
	}
}

// BenchmarkAppend is the append path with group commit: one commit per
// batch of events, for each engine, sync setting, encoding and batch size.
// engine=null stores nothing: the harness and the encoding alone.
func BenchmarkAppend(b *testing.B) {
	for _, c := range codecs {
		for _, batch := range batchSizes {
			b.Run(fmt.Sprintf("engine=null/enc=%s/batch=%d", c.name, batch), func(b *testing.B) {
				benchAppend(b, openNull, syncEvery100ms, c, batch, 0, false)
			})
		}
	}
	for _, e := range engines {
		for _, mode := range []syncMode{syncEvery100ms, syncEveryBatch} {
			for _, c := range codecs {
				for _, batch := range batchSizes {
					b.Run(fmt.Sprintf("engine=%s/sync=%s/enc=%s/batch=%d", e.name, mode, c.name, batch), func(b *testing.B) {
						benchAppend(b, e.open, mode, c, batch, 0, false)
					})
				}
			}
		}
	}
	// pebble with a 64 MiB memtable, in its best case above.
	b.Run("engine=pebble-64m/sync=100ms/enc=bin/batch=1024", func(b *testing.B) {
		benchAppend(b, openPebbleBig, syncEvery100ms, codecNamed("bin"), 1024, 0, false)
	})
}

// BenchmarkRetention is BenchmarkAppend (binary encoding, sync every 100
// ms) with a store that keeps the newest retainWindow events: each commit
// also removes the oldest events, as many as it adds (bbolt: cursor
// deletes; pebble: one DeleteRange; file: whole segments unlinked). The
// keep=all cases are the same with no retention, on a store that also
// holds retainWindow events when the timing starts.
func BenchmarkRetention(b *testing.B) {
	c := codecNamed("bin")
	for _, e := range engines {
		for _, batch := range batchSizes {
			for _, keep := range []int{-1, retainWindow} {
				name := "all"
				if keep > 0 {
					name = strconv.Itoa(keep)
				}
				b.Run(fmt.Sprintf("engine=%s/sync=100ms/enc=bin/batch=%d/keep=%s", e.name, batch, name), func(b *testing.B) {
					benchAppend(b, e.open, syncEvery100ms, c, batch, retainWindow, keep > 0)
				})
			}
		}
	}
}

// BenchmarkRead is sequential read-back: b.N events are stored (not timed,
// batches of 1024, sync every 100 ms), then every stored event is read in
// key order and decoded. The files were just written, so this reads from
// the page cache, not the disk.
func BenchmarkRead(b *testing.B) {
	for _, c := range codecs {
		b.Run(fmt.Sprintf("engine=none/enc=%s", c.name), func(b *testing.B) { benchDecode(b, c) })
	}
	for _, e := range engines {
		for _, c := range codecs {
			b.Run(fmt.Sprintf("engine=%s/enc=%s", e.name, c.name), func(b *testing.B) { benchRead(b, e.open, c) })
		}
	}
}

func benchRead(b *testing.B, open opener, c codec) {
	eng, err := open(b.TempDir(), syncEvery100ms)
	if err != nil {
		b.Fatal(err)
	}
	defer eng.close()
	w := newWriter(eng, c, 1024)
	for done := 0; done < b.N; {
		n := min(1024, b.N-done)
		if err := w.batch(n, 0); err != nil {
			b.Fatal(err)
		}
		done += n
	}
	if err := eng.sync(); err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	waitQuiet(b)
	b.ReportAllocs()
	b.ResetTimer()
	m := startMeter()
	var d decoder
	var ev protocol.Event
	var got int
	var want uint64
	var payload int64
	err = eng.scan(func(v []byte) error {
		if err := c.decode(&d, v, &ev); err != nil {
			return err
		}
		if ev.ID != idOf(want) {
			return fmt.Errorf("read %v, want %v", ev.ID, idOf(want))
		}
		want++
		got++
		payload += int64(len(v))
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	m.report(b, b.N, payload)
	b.StopTimer()
	if got != b.N {
		b.Fatalf("read %d events of %d", got, b.N)
	}
}

// benchDecode decodes b.N events from memory: the decoding alone.
func benchDecode(b *testing.B, c codec) {
	src := newSource()
	evs := make([]*protocol.Event, ringSize)
	src.fill(evs)
	vals := make([][]byte, ringSize)
	var payload int64
	for i, e := range evs {
		vals[i] = c.encode(nil, e)
		payload += int64(len(vals[i]))
	}
	var d decoder
	var ev protocol.Event
	waitQuiet(b)
	b.ReportAllocs()
	b.ResetTimer()
	m := startMeter()
	for i := 0; i < b.N; i++ {
		if err := c.decode(&d, vals[i%ringSize], &ev); err != nil {
			b.Fatal(err)
		}
	}
	m.report(b, b.N, payload*int64(b.N)/ringSize)
}

// BenchmarkEncode is the encoding alone, one event at a time into a
// reused buffer.
func BenchmarkEncode(b *testing.B) {
	for _, c := range codecs {
		b.Run("enc="+c.name, func(b *testing.B) {
			src := newSource()
			evs := make([]*protocol.Event, 1)
			buf := make([]byte, 0, 4096)
			var payload int64
			waitQuiet(b)
			b.ReportAllocs()
			b.ResetTimer()
			m := startMeter()
			for i := 0; i < b.N; i++ {
				src.fill(evs)
				buf = c.encode(buf[:0], evs[0])
				payload += int64(len(buf))
			}
			m.report(b, b.N, payload)
		})
	}
}

// TestRoundTrip checks that both encodings give back the event, and that
// every engine gives back what was appended, with retention.
func TestRoundTrip(t *testing.T) {
	src := newSource()
	evs := make([]*protocol.Event, 3)
	src.fill(evs)
	for _, c := range codecs {
		for _, e := range evs {
			var d decoder
			var got protocol.Event
			if err := c.decode(&d, c.encode(nil, e), &got); err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			want := protocol.AppendEventJSON(nil, e)
			if g := protocol.AppendEventJSON(nil, &got); !bytes.Equal(g, want) {
				t.Errorf("%s: round trip\n got %s\nwant %s", c.name, g, want)
			}
		}
	}
	for _, eng := range engines {
		for _, mode := range []syncMode{syncEvery100ms, syncEveryBatch} {
			for _, c := range codecs {
				t.Run(eng.name+"/"+mode.String()+"/"+c.name, func(t *testing.T) {
					if eng.name == "file" { // segments of a few batches
						defer func(s int64) { segmentSize = s }(segmentSize)
						segmentSize = 1 << 16
					}
					e, err := eng.open(t.TempDir(), mode)
					if err != nil {
						t.Fatal(err)
					}
					defer e.close()
					w := newWriter(e, c, 100)
					const total, keep = 5000, 1000
					for w.src.n < total {
						if err := w.batch(100, keep); err != nil {
							t.Fatal(err)
						}
					}
					if err := e.sync(); err != nil {
						t.Fatal(err)
					}
					var d decoder
					var ev protocol.Event
					var n, first int
					err = e.scan(func(v []byte) error {
						if err := c.decode(&d, v, &ev); err != nil {
							return err
						}
						if n == 0 {
							first = int(ev.ID.Ms-baseMs)*perMs + int(ev.ID.Seq)
						}
						if want := idOf(uint64(first + n)); ev.ID != want {
							return fmt.Errorf("event %d: ID %v, want %v", n, ev.ID, want)
						}
						n++
						return nil
					})
					if err != nil {
						t.Fatal(err)
					}
					if first+n != total {
						t.Errorf("read through %d, want %d", first+n, total)
					}
					// The file log trims whole segments only: it keeps
					// up to a segment's worth (here under 200 events) more.
					if n != keep && (eng.name != "file" || n < keep || n > keep+200) {
						t.Errorf("kept %d events, want %d", n, keep)
					}
				})
			}
		}
	}
}
