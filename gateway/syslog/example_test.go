package syslog_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/gateway/store"
	"github.com/zbridge/zbridge/gateway/syslog"
	"github.com/zbridge/zbridge/protocol"
)

// The region's store takes the server's batches.
var _ syslog.Appender = store.Store(nil)

func ExampleParser() {
	p := syslog.NewParser(nil)
	p.SetSender(netip.MustParseAddr("192.0.2.10"))
	received := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)

	ev := p.Parse([]byte(`<13>1 2026-11-22T02:50:57.069805+00:00 lnx01 myapp - ID47 [timeQuality tzKnown="1"] hello world`), received)
	fmt.Println(ev.Parsed, ev.Origin.Host, ev.App, ev.MsgID, ev.Facility, ev.Severity, ev.Time.Format(time.RFC3339Nano), ev.Text)

	ev = p.Parse([]byte("<30>Nov 22 02:50:57 lnx02 sshd[812]: Accepted publickey for root"), received)
	fmt.Println(ev.Parsed, ev.Origin.Host, ev.App, ev.ProcID, ev.TimeFilled, ev.Time.Format(time.RFC3339), ev.Text)

	ev = p.Parse([]byte("not syslog at all"), received)
	fmt.Println(ev.Parsed, ev.Origin.Host, ev.Facility, ev.Severity, ev.TimeFilled, ev.ParseError)
	// Output:
	// true lnx01 myapp ID47 user notice 2026-11-22T02:50:57.069805Z hello world
	// true lnx02 sshd 812 year,zone 2026-11-22T02:50:57Z Accepted publickey for root
	// false 192.0.2.10 user notice all syslog: no priority and no timestamp: not a syslog header [col 0]
}

type printer struct{}

func (printer) Append(_ context.Context, evs []*protocol.Event) error {
	for _, ev := range evs {
		fmt.Println(ev.Origin.Host, ev.Severity, ev.Text)
	}
	return nil
}

func ExampleServer() {
	srv, err := syslog.New(syslog.Config{
		Appender: printer{},
		Logger:   logrus.New(),
		Location: time.Local,
	})
	if err != nil {
		panic(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:6514")
	if err != nil {
		panic(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:514")
	if err != nil {
		panic(err)
	}
	go srv.Serve(l)
	go srv.ServePacket(pc)

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt)
	<-stop
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		srv.Close()
	}
}
