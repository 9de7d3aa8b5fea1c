// Package drain is the end of a server's Shutdown, the same in every
// server of the module: wait for the server's goroutines to finish what
// they are doing, and if the caller's context ends first, force them to
// stop and wait for that.
package drain

import (
	"context"
	"sync"
)

// Wait waits for wg. If ctx ends first, it calls force (which must make
// the goroutines return: close their connections, kill their commands),
// waits for wg all the same, and returns ctx.Err(); otherwise it returns
// nil. Every goroutine it starts has returned when it returns.
func Wait(ctx context.Context, wg *sync.WaitGroup, force func()) error {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		force()
		<-done
		return ctx.Err()
	}
}
