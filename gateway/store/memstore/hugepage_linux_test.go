package memstore

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"unsafe"
)

// TestChunkHugePages checks that a mapped chunk carries the huge-page
// advice: the "hg" flag (VM_HUGEPAGE) in its mapping's VmFlags in
// /proc/self/smaps, which madvise(MADV_HUGEPAGE) sets whatever the
// system's THP mode (whether the kernel then uses huge pages is its own
// affair: "never" ignores the flag).
func TestChunkHugePages(t *testing.T) {
	if _, err := os.Stat("/sys/kernel/mm/transparent_hugepage"); err != nil {
		t.Skipf("this kernel has no transparent huge pages: %v", err)
	}
	c := allocChunk(chunkSize)
	defer c.free()
	if !c.mapped {
		t.Fatal("the chunk is not mapped memory")
	}
	c.b[0], c.b[len(c.b)-1] = 1, 1
	flags, err := vmFlags(uintptr(unsafe.Pointer(&c.b[0])))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(flags, "hg") {
		t.Errorf("the chunk's mapping has VmFlags %v, without hg (MADV_HUGEPAGE)", flags)
	}
}

// vmFlags returns the VmFlags of the mapping of this process that holds
// addr, from /proc/self/smaps.
func vmFlags(addr uintptr) ([]string, error) {
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	in := false
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if !strings.HasSuffix(fields[0], ":") { // a mapping's first line: "lo-hi perms ..."
			var lo, hi uintptr
			if _, err := fmt.Sscanf(fields[0], "%x-%x", &lo, &hi); err != nil {
				return nil, fmt.Errorf("/proc/self/smaps: %q: %w", sc.Text(), err)
			}
			in = lo <= addr && addr < hi
			continue
		}
		if in && fields[0] == "VmFlags:" {
			return fields[1:], nil
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("no mapping in /proc/self/smaps holds %#x", addr)
}

// BenchmarkChunkFill measures what a new chunk costs the append that
// takes it: the mapping, writing all of it (a page fault for each page the
// first time), and the unmapping; with the huge-page advice and, as
// "small", without it.
func BenchmarkChunkFill(b *testing.B) {
	src := make([]byte, 64<<10)
	fill := func(b *testing.B, c chunk) {
		for off := 0; off < len(c.b); off += len(src) {
			copy(c.b[off:], src)
		}
		c.free()
	}
	b.Run("huge", func(b *testing.B) {
		b.SetBytes(chunkSize)
		for b.Loop() {
			fill(b, allocChunk(chunkSize))
		}
	})
	b.Run("small", func(b *testing.B) {
		b.SetBytes(chunkSize)
		for b.Loop() {
			m, err := syscall.Mmap(-1, 0, chunkSize, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
			if err != nil {
				b.Fatal(err)
			}
			fill(b, chunk{b: m, mapped: true})
		}
	})
}
