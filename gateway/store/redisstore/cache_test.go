package redisstore

import (
	"fmt"
	"testing"

	"github.com/zbridge/zbridge/gateway/store/storetest"
	"github.com/zbridge/zbridge/protocol"
)

// cacheEvents returns n events with IDs ms-0, ms+1-0, ... from ms.
func cacheEvents(ms uint64, n int) []*protocol.Event {
	evs := storetest.Events(fmt.Sprint("c", ms), n)
	for i, e := range evs {
		e.ID = protocol.ID{Ms: ms + uint64(i)}
	}
	return evs
}

func texts(evs []*protocol.Event) string {
	var s string
	for _, e := range evs {
		s += e.ID.String() + " "
	}
	return s
}

func TestCache(t *testing.T) {
	c := tailCache{maxEvents: 5, maxBytes: 1 << 20}
	if c.covers(protocol.ID{}) || c.newest() != (protocol.ID{}) {
		t.Fatal("an invalid cache covers something")
	}
	c.add(cacheEvents(10, 1)) // ignored while invalid
	if c.len() != 0 {
		t.Fatal("an invalid cache took events")
	}
	c.reset(protocol.ID{Ms: 9})
	if !c.covers(protocol.ID{Ms: 9}) || c.covers(protocol.ID{Ms: 8, Seq: 7}) || c.newest() != (protocol.ID{Ms: 9}) {
		t.Fatal("empty cache from 9-0: wrong coverage")
	}
	c.add(cacheEvents(10, 3))
	c.add(cacheEvents(13, 4)) // 10..16: trims 10 and 11
	if c.len() != 5 || c.base != (protocol.ID{Ms: 11}) || c.newest() != (protocol.ID{Ms: 16}) {
		t.Fatalf("after 7 events into 5: len %d base %v newest %v", c.len(), c.base, c.newest())
	}
	for _, tc := range []struct {
		after protocol.ID
		max   int
		want  string
	}{
		{protocol.ID{Ms: 11}, 0, "12-0 13-0 14-0 15-0 16-0 "},
		{protocol.ID{Ms: 12, Seq: 5}, 2, "13-0 14-0 "},
		{protocol.ID{Ms: 16}, 0, ""},
	} {
		if !c.covers(tc.after) {
			t.Fatalf("does not cover %v", tc.after)
		}
		if got := texts(c.read(tc.after, tc.max, nil)); got != tc.want {
			t.Errorf("read(%v, %d) = %q, want %q", tc.after, tc.max, got, tc.want)
		}
	}
	if c.covers(protocol.ID{Ms: 10}) {
		t.Error("covers a trimmed ID")
	}
	c.dropAfter(protocol.ID{Ms: 14})
	if got := texts(c.read(c.base, 0, nil)); got != "12-0 13-0 14-0 " || c.newest() != (protocol.ID{Ms: 14}) {
		t.Errorf("after dropAfter(14): %q newest %v", got, c.newest())
	}
	c.dropBefore(protocol.ID{Ms: 13})
	if c.base != (protocol.ID{Ms: 12}) || c.len() != 2 {
		t.Errorf("after dropBefore(13): base %v len %d", c.base, c.len())
	}
	c.dropAfter(protocol.ID{Ms: 5}) // before base: nothing known
	if c.valid || c.len() != 0 {
		t.Error("dropAfter before base left a valid cache")
	}

	// Bytes.
	one := int64(cacheEvents(1, 1)[0].Size())
	c = tailCache{maxEvents: 1000, maxBytes: 3 * one}
	c.reset(protocol.ID{})
	c.add(cacheEvents(1, 10))
	if c.len() != 3 || c.bytes != 3*one || c.base != (protocol.ID{Ms: 7}) {
		t.Errorf("by bytes: len %d bytes %d base %v", c.len(), c.bytes, c.base)
	}

	// Compaction keeps the run.
	c = tailCache{maxEvents: 100, maxBytes: 1 << 30}
	c.reset(protocol.ID{})
	for i := range 100 {
		c.add(cacheEvents(uint64(1+i*50), 50))
	}
	if c.len() != 100 || len(c.evs) > 2*1024+100 || c.newest() != (protocol.ID{Ms: 5000}) {
		t.Errorf("after many adds: len %d slice %d newest %v", c.len(), len(c.evs), c.newest())
	}
	if got := c.read(protocol.ID{Ms: 4990}, 0, nil); len(got) != 10 {
		t.Errorf("read the last 10: got %d", len(got))
	}
}
