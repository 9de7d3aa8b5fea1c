package vmagent

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/zbridge/zbridge/gateway/session"
	"github.com/zbridge/zbridge/gateway/store/memstore"
	"github.com/zbridge/zbridge/gateway/unsolmsg"
	"github.com/zbridge/zbridge/gateway/vmmon"
	"github.com/zbridge/zbridge/protocol"
	"github.com/zbridge/zbridge/protocol/client"
	"github.com/zbridge/zbridge/vmagent/zvmsim"
)

// BenchmarkConsoleLineToSubscriber measures how long a line written on a
// z/VM console takes to reach an UNSOLMSG subscriber: simulator console →
// TN3270 → scraper → spool → VMMON → store → UNSOLMSG → client, all on
// loopback in this process. It reports p50 and p99:
//
//	go test -run '^$' -bench ConsoleLineToSubscriber -benchtime 200x ./vmagent/
func BenchmarkConsoleLineToSubscriber(b *testing.B) {
	log := quiet()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	listen := func() net.Listener {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		return l
	}

	sim, err := zvmsim.New(zvmsim.Config{System: "VMSYS1", Password: "pw", Logger: log, MoreDelay: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	simL := listen()
	go sim.Serve(simL)
	defer sim.Close()

	st := memstore.New(memstore.Config{})
	vm, err := vmmon.New(vmmon.Config{Store: st, Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	vmL := listen()
	go vm.Serve(vmL)
	defer vm.Close()
	un, err := unsolmsg.New(unsolmsg.Config{Store: st, Logger: log, Session: session.Config{}})
	if err != nil {
		b.Fatal(err)
	}
	unL := listen()
	go un.Serve(unL)
	defer un.Close()

	sp, err := OpenSpool(b.TempDir(), 0)
	if err != nil {
		b.Fatal(err)
	}
	defer sp.Close()
	sc, err := NewScraper(ScraperConfig{Addr: simL.Addr().String(), User: "OPERATOR", Password: "pw", Publish: sp.Add, Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	ag, err := New(Config{VMMon: vmL.Addr().String(), System: "VMSYS1", Spool: sp, Logger: log}, sc)
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{}, 2)
	go func() { sc.Serve(ctx); done <- struct{}{} }()
	go func() { ag.Run(ctx); done <- struct{}{} }()
	defer func() { cancel(); <-done; <-done }()
	if err := sc.Ready(ctx); err != nil {
		b.Fatal(err)
	}

	c, err := client.Dial(ctx, client.Config{Addr: unL.Addr().String(), Client: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Subscribe(ctx, &protocol.Filter{Source: []protocol.Source{protocol.SourceZVMConsole}}, "", "json"); err != nil {
		b.Fatal(err)
	}
	ds := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		want := fmt.Sprintf("latency probe %d", i)
		start := time.Now()
		if err := sim.Inject(want); err != nil {
			b.Fatal(err)
		}
		for {
			wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
			f, err := c.Next(wctx)
			wcancel()
			if err != nil {
				b.Fatalf("waiting for %q: %v", want, err)
			}
			if f.Event != nil && strings.Contains(f.Event.Text, want) {
				break
			}
		}
		ds = append(ds, time.Since(start))
	}
	b.StopTimer()
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	b.ReportMetric(float64(ds[len(ds)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(ds[min(len(ds)-1, len(ds)*99/100)].Microseconds())/1000, "p99-ms")
	b.ReportMetric(0, "ns/op")
}
