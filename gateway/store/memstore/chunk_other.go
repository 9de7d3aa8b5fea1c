//go:build !unix

package memstore

// chunk is memory for encoded events: an ordinary slice where there is no
// mmap (see chunk_unix.go).
type chunk struct {
	b    []byte
	used int
}

func allocChunk(n int) chunk { return chunk{b: make([]byte, n)} }

func (c chunk) free() {}
