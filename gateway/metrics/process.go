package metrics

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
)

// RegisterProcessMetrics registers the process's families, under the names
// the Prometheus client gives them: process_cpu_seconds_total,
// process_resident_memory_bytes, process_virtual_memory_bytes,
// process_virtual_memory_max_bytes, process_open_fds, process_max_fds,
// process_start_time_seconds, and process_network_receive_bytes_total and
// process_network_transmit_bytes_total (the totals of the network
// namespace's interfaces, which the process shares). Each scrape reads them
// from Linux's /proc/self; a file that cannot be read (on a system without
// /proc, say) leaves its families out of that scrape, which reports the
// error.
func (r *Registry) RegisterProcessMetrics() {
	c := newProcessCollector("/proc")
	r.register(c, c.descs()...)
}

// clockTicks is the unit of the times in /proc/<pid>/stat: USER_HZ, 100 on
// every architecture Go and Linux share but alpha and ia64.
const clockTicks = 100

type processCollector struct {
	proc                                                             string // where procfs is mounted
	pageSize                                                         int
	cpu, rss, vsize, vsizeMax, openFDs, maxFDs, start, netIn, netOut *desc
}

func newProcessCollector(proc string) *processCollector {
	gauge := func(name, help string) *desc { return newDesc(name, help, kindGauge, nil, nil) }
	counter := func(name, help string) *desc { return newDesc(name, help, kindCounter, nil, nil) }
	return &processCollector{
		proc:     proc,
		pageSize: os.Getpagesize(),
		cpu:      counter("process_cpu_seconds_total", "CPU time the process has used, user and system, in seconds."),
		rss:      gauge("process_resident_memory_bytes", "Bytes of the process's memory resident in RAM."),
		vsize:    gauge("process_virtual_memory_bytes", "Bytes of the process's virtual address space."),
		vsizeMax: gauge("process_virtual_memory_max_bytes", "The process's limit on its virtual address space, in bytes (RLIMIT_AS; 2^64-1 when unlimited)."),
		openFDs:  gauge("process_open_fds", "File descriptors the process has open."),
		maxFDs:   gauge("process_max_fds", "The process's limit on open file descriptors (RLIMIT_NOFILE, the soft limit)."),
		start:    gauge("process_start_time_seconds", "When the process started, in seconds since 1970."),
		netIn:    counter("process_network_receive_bytes_total", "Bytes received by the network interfaces of the process's network namespace."),
		netOut:   counter("process_network_transmit_bytes_total", "Bytes sent by the network interfaces of the process's network namespace."),
	}
}

func (c *processCollector) descs() []*desc {
	return []*desc{c.cpu, c.rss, c.vsize, c.vsizeMax, c.openFDs, c.maxFDs, c.start, c.netIn, c.netOut}
}

func (c *processCollector) collect(g *gathering) {
	if st, err := c.readStat(); err != nil {
		g.fail(err)
	} else {
		g.add(c.cpu, series{value: float64(st.utime+st.stime) / clockTicks})
		g.add(c.rss, series{value: float64(st.rss) * float64(c.pageSize)})
		g.add(c.vsize, series{value: float64(st.vsize)})
		if boot, err := c.bootTime(); err != nil {
			g.fail(err)
		} else {
			g.add(c.start, series{value: float64(boot) + float64(st.starttime)/clockTicks})
		}
	}
	if n, err := c.countFDs(); err != nil {
		g.fail(err)
	} else {
		g.add(c.openFDs, series{value: float64(n)})
	}
	if lim, err := c.readLimits("Max open files", "Max address space"); err != nil {
		g.fail(err)
	} else {
		g.add(c.maxFDs, series{value: lim[0]})
		g.add(c.vsizeMax, series{value: lim[1]})
	}
	if in, out, err := c.readNetDev(); err != nil {
		g.fail(err)
	} else {
		g.add(c.netIn, series{value: float64(in)})
		g.add(c.netOut, series{value: float64(out)})
	}
}

// procStat is what the collector reads of /proc/self/stat.
type procStat struct {
	utime, stime, starttime uint64 // clock ticks
	vsize                   uint64 // bytes
	rss                     uint64 // pages
}

// readStat reads /proc/self/stat (proc(5)): the fields after the command
// name, which is in parentheses and may hold spaces and parentheses itself.
func (c *processCollector) readStat() (procStat, error) {
	var st procStat
	path := c.proc + "/self/stat"
	b, err := os.ReadFile(path)
	if err != nil {
		return st, fmt.Errorf("metrics: process: %w", err)
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return st, fmt.Errorf("metrics: process: %s: no command name", path)
	}
	// fields[0] is the state, field 3 of proc(5).
	fields := strings.Fields(string(b[i+1:]))
	for _, f := range []struct {
		field int // as proc(5) numbers them
		dst   *uint64
	}{{14, &st.utime}, {15, &st.stime}, {22, &st.starttime}, {23, &st.vsize}, {24, &st.rss}} {
		if f.field-3 >= len(fields) {
			return st, fmt.Errorf("metrics: process: %s: %d fields after the command name", path, len(fields))
		}
		if *f.dst, err = strconv.ParseUint(fields[f.field-3], 10, 64); err != nil {
			return st, fmt.Errorf("metrics: process: %s: field %d: %w", path, f.field, err)
		}
	}
	return st, nil
}

// bootTime reads when the system booted, in seconds since 1970, from the
// btime line of /proc/stat.
func (c *processCollector) bootTime() (uint64, error) {
	path := c.proc + "/stat"
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("metrics: process: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "btime "); ok {
			t, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("metrics: process: %s: btime: %w", path, err)
			}
			return t, nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("metrics: process: %s: %w", path, err)
	}
	return 0, fmt.Errorf("metrics: process: %s: no btime line", path)
}

// countFDs counts the entries of /proc/self/fd, less the one for the
// directory being read.
func (c *processCollector) countFDs() (int, error) {
	f, err := os.Open(c.proc + "/self/fd")
	if err != nil {
		return 0, fmt.Errorf("metrics: process: %w", err)
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return 0, fmt.Errorf("metrics: process: %w", err)
	}
	own := strconv.FormatUint(uint64(f.Fd()), 10)
	n := 0
	for _, name := range names {
		if name != own {
			n++
		}
	}
	return n, nil
}

// readLimits reads the soft limits of the given names from
// /proc/self/limits, in order; "unlimited" reads as 2^64-1 (RLIM_INFINITY).
func (c *processCollector) readLimits(names ...string) ([]float64, error) {
	path := c.proc + "/self/limits"
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("metrics: process: %w", err)
	}
	lim := make([]float64, len(names))
	for i, name := range names {
		j := bytes.Index(b, []byte("\n"+name+" "))
		if j < 0 {
			return nil, fmt.Errorf("metrics: process: %s: no %q line", path, name)
		}
		line, _, _ := bytes.Cut(b[j+1+len(name):], []byte("\n"))
		fields := strings.Fields(string(line)) // soft, hard, and maybe units
		switch {
		case len(fields) < 2:
			return nil, fmt.Errorf("metrics: process: %s: %q: %q", path, name, line)
		case fields[0] == "unlimited":
			lim[i] = math.MaxUint64
		default:
			v, err := strconv.ParseUint(fields[0], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("metrics: process: %s: %q: %w", path, name, err)
			}
			lim[i] = float64(v)
		}
	}
	return lim, nil
}

// readNetDev sums the bytes received and sent over every interface in
// /proc/self/net/dev: after each "name:", eight receive counters then
// eight transmit counters, bytes first in each.
func (c *processCollector) readNetDev() (in, out uint64, err error) {
	path := c.proc + "/self/net/dev"
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, fmt.Errorf("metrics: process: %w", err)
	}
	for line := range bytes.Lines(b) {
		_, counters, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue // the two heading lines
		}
		fields := strings.Fields(string(counters))
		if len(fields) < 16 {
			return 0, 0, fmt.Errorf("metrics: process: %s: %q", path, bytes.TrimSpace(line))
		}
		rx, err1 := strconv.ParseUint(fields[0], 10, 64)
		tx, err2 := strconv.ParseUint(fields[8], 10, 64)
		if err := errors.Join(err1, err2); err != nil {
			return 0, 0, fmt.Errorf("metrics: process: %s: %w", path, err)
		}
		in += rx
		out += tx
	}
	return in, out, nil
}
