package unsolmsg

import (
	"sync"
	"sync/atomic"

	"github.com/zbridge/zbridge/protocol"
)

// A batch is what a stream reads a batch of events into and writes it
// from: the events, their JSON as the store prepared it, and the buffer
// their frames are encoded in.
type batch struct {
	evs   []*protocol.Event
	jsons [][]byte
	buf   []byte
}

// batches lends batches to the streams. A stream that has sent all there
// is gives its batch back before it waits for new events, so that an idle
// subscriber holds none: 5,000 idle subscribers held 95 MiB of them, and
// the slots of evs and jsons are pointers, which every garbage collection
// scans (BenchmarkScale of package region). A stream woken by new events
// takes one again, from the pool, without allocating when others have
// come back.
type batches struct {
	size int       // the capacity of a new batch's evs: Config.Batch
	pool sync.Pool // of *batch
	lent atomic.Int64
}

func (b *batches) get() *batch {
	b.lent.Add(1)
	if bt, ok := b.pool.Get().(*batch); ok {
		return bt
	}
	return &batch{evs: make([]*protocol.Event, 0, b.size)}
}

// put gives bt back, its events cleared, so that the pool keeps none of
// them alive. (Its slots beyond the length of evs and jsons are nil: the
// streams clear what they sent, as put does.)
func (b *batches) put(bt *batch) {
	clear(bt.evs)
	clear(bt.jsons)
	bt.evs, bt.jsons, bt.buf = bt.evs[:0], bt.jsons[:0], bt.buf[:0]
	b.pool.Put(bt)
	b.lent.Add(-1)
}
