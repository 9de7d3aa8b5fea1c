package memstore

import (
	"math/rand/v2"
	"testing"

	"github.com/zbridge/zbridge/protocol"
)

// TestColdIndex pushes and pops at random against a plain slice: every
// position reads the entry the slice has, across block boundaries, after
// emptying, and with blocks reused.
func TestColdIndex(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var x coldIndex
	var model []coldEntry
	next := uint64(0)
	steps := 3000
	if testing.Short() {
		steps = 600 // still crosses block boundaries and empties the index many times
	}
	for step := 0; step < steps; step++ {
		switch {
		case rng.IntN(100) < 55 || len(model) == 0:
			k := 1 + rng.IntN(coldBlock)
			if rng.IntN(50) == 0 {
				k = 1
			}
			for ; k > 0; k-- {
				e := coldEntry{id: protocol.ID{Ms: next}, off: int32(next)}
				next++
				x.push(e)
				model = append(model, e)
			}
		default:
			k := 1 + rng.IntN(min(len(model), 2*coldBlock))
			if rng.IntN(10) == 0 {
				k = len(model) // empty it
			}
			for ; k > 0; k-- {
				x.popFront()
				model = model[1:]
			}
		}
		if x.len() != len(model) {
			t.Fatalf("step %d: len %d, want %d", step, x.len(), len(model))
		}
		if len(model) == 0 {
			continue
		}
		for _, i := range []int{0, len(model) - 1, rng.IntN(len(model))} {
			if *x.at(i) != model[i] {
				t.Fatalf("step %d: at(%d) = %+v, want %+v", step, i, *x.at(i), model[i])
			}
		}
		if *x.last() != model[len(model)-1] {
			t.Fatalf("step %d: last = %+v, want %+v", step, *x.last(), model[len(model)-1])
		}
		if len(x.blocks) > len(model)/coldBlock+2 {
			t.Fatalf("step %d: %d blocks for %d entries", step, len(x.blocks), len(model))
		}
	}
}

// BenchmarkColdIndexPush appends a million entries, trimming none: the
// cost per entry stays flat (a growing slice would copy them all again at
// each doubling).
func BenchmarkColdIndexPush(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		var x coldIndex
		for i := 0; i < 1_000_000; i++ {
			x.push(coldEntry{off: int32(i)})
		}
	}
}
