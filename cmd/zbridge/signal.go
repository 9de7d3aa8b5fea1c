package main

import (
	"context"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// signalContext is done on SIGINT or SIGTERM.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// commandSignalContext is signalContext for `zbridge cmd`, with the
// handler installed by a goroutine of its own while the command is sent:
// the first signal.Notify of a process starts the runtime's signal thread,
// ~0.6 ms of a command's start on a slow machine, which then overlaps the
// connection and logon instead of preceding them. A signal that comes
// before the handler is in place ends the process, as it did before
// zbridge cmd handled signals at all; the region cancels the commands of
// a connection once it sees it closed, which may be after it has started
// the command written behind the logon (with the handler, zbridge cmd asks
// for the cancel by the command's ID and prints the reply). stop waits for
// that goroutine and undoes the handler.
func commandSignalContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
		defer signal.Stop(sigs)
		select {
		case <-sigs:
			cancel()
		case <-done:
		}
	}()
	var once sync.Once
	return ctx, func() {
		once.Do(func() {
			close(done)
			wg.Wait()
			cancel()
		})
	}
}
