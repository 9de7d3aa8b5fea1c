//go:build unix

package memstore

import "syscall"

// chunk is memory for encoded events. On Unix it is mapped memory of its
// own (anonymous, private), outside the Go heap: the garbage collector
// neither scans nor counts it, so a region retaining a million events
// collects as often, and as quickly, as one retaining a few. If the
// mapping fails, the chunk is an ordinary slice. On Linux the mapping is
// advised for transparent huge pages (see adviseHugePages).
type chunk struct {
	b      []byte
	used   int
	mapped bool
}

func allocChunk(n int) chunk {
	b, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return chunk{b: make([]byte, n)}
	}
	adviseHugePages(b)
	return chunk{b: b, mapped: true}
}

// free gives the chunk's memory back. Nothing may use it after.
func (c chunk) free() {
	if c.mapped {
		syscall.Munmap(c.b)
	}
}
