package client_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/gateway/store/memstore"
	"github.com/zbridge/zbridge/gateway/unsolmsg"
	"github.com/zbridge/zbridge/protocol"
	"github.com/zbridge/zbridge/protocol/client"
)

// exampleRegion serves UNSOLMSG on loopback from a store holding events
// with the given texts, as a region would, and returns its address and a
// function that stops it.
func exampleRegion(texts ...string) (addr string, stop func()) {
	st := memstore.New(memstore.Config{})
	for _, text := range texts {
		ev := &protocol.Event{Source: protocol.SourceSyslog, Severity: protocol.SevWarning, Text: text, Parsed: true,
			Origin: protocol.Origin{System: "lnx01", Host: "lnx01"}}
		st.Append(context.Background(), []*protocol.Event{ev})
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	srv, err := unsolmsg.New(unsolmsg.Config{Store: st, Logger: log})
	if err != nil {
		panic(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go srv.Serve(ln)
	return ln.Addr().String(), func() { srv.Close(); st.Close() }
}

// A Subscriber reads a subscription's events, failing over between the
// regions listed (here one) and resuming where it left off. Handle returns
// client.ErrStop when it has what it wanted.
func ExampleSubscriber() {
	addr, stop := exampleRegion("disk /var 91% full", "disk /var 97% full", "disk /var 99% full")
	defer stop()

	n := 0
	sub := &client.Subscriber{
		Configs:      []client.Config{{Addr: addr, Client: "automation"}},
		Subscription: client.Subscription{After: "0", Format: "json"}, // everything retained
		Handle: func(f *protocol.Frame) error {
			fmt.Println(f.Event.Origin.System, f.Event.Severity, f.Event.Text)
			if n++; n == 2 {
				return client.ErrStop
			}
			return nil
		},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sub.Run(ctx); err != nil {
		fmt.Println("run:", err)
	}
	// Output:
	// lnx01 warning disk /var 91% full
	// lnx01 warning disk /var 97% full
}

// A durable subscription: the region keeps its position, so a subscriber
// that comes back (on any region sharing the store) resumes after the last
// event it acknowledged. A Subscriber acknowledges an event once Handle
// has returned for it and Flush has.
func ExampleSubscriber_durable() {
	addr, stop := exampleRegion("job PAYROLL started", "job PAYROLL ended rc=0", "job BILLING started")
	defer stop()

	read := func(max int) {
		n := 0
		sub := &client.Subscriber{
			Configs:      []client.Config{{Addr: addr, Client: "automation"}},
			Subscription: client.Subscription{After: "0", Format: "json", Name: "jobs"},
			Handle: func(f *protocol.Frame) error {
				fmt.Println(f.Event.Text)
				if n++; n == max {
					return client.ErrStop
				}
				return nil
			},
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := sub.Run(ctx); err != nil {
			fmt.Println("run:", err)
		}
	}
	read(2)
	fmt.Println("-- back again")
	read(1)
	// Output:
	// job PAYROLL started
	// job PAYROLL ended rc=0
	// -- back again
	// job BILLING started
}
