package groupcommit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/zbridge/zbridge/protocol"
)

// recorder is an Appender that keeps what it was given, taking a while
// over each Append so that callers pile up behind it.
type recorder struct {
	mu    sync.Mutex
	calls [][]*protocol.Event
	delay time.Duration
	fail  func(call int) error
}

func (r *recorder) Append(ctx context.Context, evs []*protocol.Event) error {
	time.Sleep(r.delay)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, append([]*protocol.Event(nil), evs...))
	if r.fail != nil {
		return r.fail(len(r.calls))
	}
	return nil
}

func batch(caller, n, first int) []*protocol.Event {
	evs := make([]*protocol.Event, n)
	for i := range evs {
		evs[i] = &protocol.Event{Text: fmt.Sprintf("%d/%d", caller, first+i)}
	}
	return evs
}

// TestAlone: an Append with none other in flight goes through as it is.
func TestAlone(t *testing.T) {
	r := &recorder{}
	j := New(r)
	for i := 0; i < 3; i++ {
		evs := batch(0, 5, 5*i)
		if err := j.Append(context.Background(), evs); err != nil {
			t.Fatal(err)
		}
	}
	if len(r.calls) != 3 {
		t.Fatalf("%d Appends, want 3", len(r.calls))
	}
	for i, c := range r.calls {
		if len(c) != 5 || c[0].Text != fmt.Sprintf("0/%d", 5*i) {
			t.Errorf("Append %d: %d events from %q", i, len(c), c[0].Text)
		}
	}
}

// TestJoined: callers appending at once are joined into fewer Appends;
// every event goes through once, each caller's in its order, each batch
// whole.
func TestJoined(t *testing.T) {
	const callers, batches, size = 8, 50, 7
	r := &recorder{delay: 200 * time.Microsecond}
	j := New(r)
	var wg sync.WaitGroup
	for c := 0; c < callers; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := 0; b < batches; b++ {
				if err := j.Append(context.Background(), batch(c, size, b*size)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	next := make([]int, callers)
	total := 0
	for _, call := range r.calls {
		if len(call) > MaxEvents && len(call) > size {
			t.Errorf("an Append of %d events", len(call))
		}
		for i := 0; i < len(call); i += size {
			var c, k int
			fmt.Sscanf(call[i].Text, "%d/%d", &c, &k)
			if k != next[c] {
				t.Fatalf("caller %d: event %d where %d was next", c, k, next[c])
			}
			for x := 0; x < size; x++ { // the batch is whole
				if want := fmt.Sprintf("%d/%d", c, k+x); i+x >= len(call) || call[i+x].Text != want {
					t.Fatalf("a batch of caller %d cut or mixed at %d", c, k+x)
				}
			}
			next[c] += size
			total += size
		}
	}
	if total != callers*batches*size {
		t.Fatalf("%d events appended, want %d", total, callers*batches*size)
	}
	if len(r.calls) >= callers*batches {
		t.Errorf("%d Appends for %d calls: none joined", len(r.calls), callers*batches)
	}
	t.Logf("%d calls in %d Appends", callers*batches, len(r.calls))
}

// TestJoinedError: every caller whose events were in a failed Append gets
// its error; the Appends after it go on.
func TestJoinedError(t *testing.T) {
	bad := errors.New("disk full")
	block := make(chan struct{})
	r := &recorder{fail: func(call int) error {
		if call == 2 {
			return bad
		}
		return nil
	}}
	first := &gate{next: r, block: block, entered: make(chan struct{})}
	j := New(first)
	errs := make(chan error, 4)
	go func() { errs <- j.Append(context.Background(), batch(0, 1, 0)) }()
	<-first.entered // the first Append is in flight: the next three wait
	for c := 1; c <= 3; c++ {
		go func() { errs <- j.Append(context.Background(), batch(c, 1, 0)) }()
	}
	for {
		j.mu.Lock()
		n := len(j.waiting)
		j.mu.Unlock()
		if n == 3 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	close(block)
	var failed int
	for i := 0; i < 4; i++ {
		if err := <-errs; errors.Is(err, bad) {
			failed++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if failed != 3 || len(r.calls) != 2 || len(r.calls[1]) != 3 {
		t.Fatalf("%d failed, Appends %d (the second of %d events); want 3 failed, 2 Appends, the second of 3", failed, len(r.calls), len(r.calls[len(r.calls)-1]))
	}
	if err := j.Append(context.Background(), batch(9, 1, 0)); err != nil {
		t.Fatalf("after the failure: %v", err)
	}
}

// gate holds the first Append until block is closed.
type gate struct {
	next    Appender
	block   chan struct{}
	once    sync.Once
	entered chan struct{}
}

func (g *gate) Append(ctx context.Context, evs []*protocol.Event) error {
	first := false
	g.once.Do(func() { first = true })
	if first {
		close(g.entered)
		<-g.block
	}
	return g.next.Append(ctx, evs)
}

// TestOtherContextApart: callers whose contexts end apart are not joined:
// one context ending must not fail another's events.
func TestOtherContextApart(t *testing.T) {
	r := &recorder{}
	block := make(chan struct{})
	first := &gate{next: r, block: block, entered: make(chan struct{})}
	j := New(first)
	errs := make(chan error, 4)
	go func() { errs <- j.Append(context.Background(), batch(0, 1, 0)) }()
	<-first.entered
	a, cancelA := context.WithCancel(context.Background())
	defer cancelA()
	b, cancelB := context.WithCancel(context.Background())
	defer cancelB()
	// Queued in this order: a, b, a.
	for i, ctx := range []context.Context{a, b, a} {
		go func() { errs <- j.Append(ctx, batch(i+1, 1, 0)) }()
		for {
			j.mu.Lock()
			n := len(j.waiting)
			j.mu.Unlock()
			if n == i+1 {
				break
			}
			time.Sleep(time.Millisecond)
		}
	}
	close(block)
	for i := 0; i < 4; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	// The first alone; then a's two together; then b's alone.
	var sizes []int
	for _, c := range r.calls {
		sizes = append(sizes, len(c))
	}
	if fmt.Sprint(sizes) != "[1 2 1]" || r.calls[1][0].Text != "1/0" || r.calls[1][1].Text != "3/0" || r.calls[2][0].Text != "2/0" {
		t.Fatalf("Appends of %v events: %v", sizes, r.calls)
	}
}

// TestWithdraw: a caller whose context ends while it waits returns at once
// with the context's error, its events not appended; the others go on.
func TestWithdraw(t *testing.T) {
	r := &recorder{}
	block := make(chan struct{})
	first := &gate{next: r, block: block, entered: make(chan struct{})}
	j := New(first)
	errs := make(chan error, 3)
	go func() { errs <- j.Append(context.Background(), batch(0, 1, 0)) }()
	<-first.entered
	ctx, cancel := context.WithCancel(context.Background())
	gone := make(chan error, 1)
	go func() { gone <- j.Append(ctx, batch(1, 1, 0)) }()
	go func() { errs <- j.Append(context.Background(), batch(2, 1, 0)) }()
	for {
		j.mu.Lock()
		n := len(j.waiting)
		j.mu.Unlock()
		if n == 2 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-gone; !errors.Is(err, context.Canceled) {
		t.Fatalf("the withdrawn caller: %v", err)
	}
	close(block)
	for i := 0; i < 2; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range r.calls {
		for _, e := range c {
			if e.Text == "1/0" {
				t.Fatal("the withdrawn caller's event was appended")
			}
		}
	}
	if len(r.calls) != 2 {
		t.Fatalf("%d Appends, want 2", len(r.calls))
	}
}
