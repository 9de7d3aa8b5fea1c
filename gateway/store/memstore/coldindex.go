package memstore

// coldIndex is the cold part's entries in ID order: a queue of blocks of
// coldBlock entries, appended at the back and trimmed at the front. It
// never copies its entries to grow, so appending costs the same at any
// length (one slice of a million entries doubling would copy and fault in
// tens of megabytes at once, under the Store's lock, while every appender
// waits), and a trimmed block is kept for the next one.
type coldIndex struct {
	blocks [][]coldEntry // each of capacity coldBlock; blocks[0][head:] is the front
	head   int
	n      int
	spare  []coldEntry // an emptied block, kept for the next
}

// coldBlock is the number of entries in a block of a coldIndex.
const coldBlock = 4096

func (x *coldIndex) len() int { return x.n }

// at returns the entry at position i, 0 being the oldest.
func (x *coldIndex) at(i int) *coldEntry {
	i += x.head
	return &x.blocks[i/coldBlock][i%coldBlock]
}

// last returns the newest entry; the index must not be empty.
func (x *coldIndex) last() *coldEntry { return x.at(x.n - 1) }

// push appends e at the back.
func (x *coldIndex) push(e coldEntry) {
	if k := len(x.blocks); k == 0 || len(x.blocks[k-1]) == coldBlock {
		b := x.spare
		x.spare = nil
		if b == nil {
			b = make([]coldEntry, 0, coldBlock)
		}
		x.blocks = append(x.blocks, b)
	}
	k := len(x.blocks) - 1
	x.blocks[k] = append(x.blocks[k], e)
	x.n++
}

// popFront removes the oldest entry; the index must not be empty.
func (x *coldIndex) popFront() {
	x.head++
	x.n--
	if x.head == coldBlock || x.n == 0 {
		b := x.blocks[0]
		x.blocks[0] = nil
		x.blocks = x.blocks[1:]
		x.head = 0
		x.spare = b[:0]
	}
	if len(x.blocks) == 0 {
		x.blocks = nil // let the array of block headers go
	}
}

// reset empties the index.
func (x *coldIndex) reset() { *x = coldIndex{} }
