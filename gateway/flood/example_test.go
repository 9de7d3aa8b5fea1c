package flood_test

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/gateway/flood"
	"github.com/zbridge/zbridge/protocol"
)

// printer is a Next that prints what reaches the store.
type printer struct{}

func (printer) Append(_ context.Context, evs []*protocol.Event) error {
	for _, e := range evs {
		fmt.Printf("%s %s: %s\n", e.Source, e.Origin.Host, e.Text)
	}
	return nil
}

func Example() {
	log := logrus.New()
	log.SetOutput(io.Discard)
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	cfg := flood.DefaultConfig()
	cfg.Rate, cfg.Burst, cfg.MsgIDRate = 10, 2, 0 // small, for the example
	cfg.Next, cfg.Logger, cfg.Now = printer{}, log, func() time.Time { return at }
	l, err := flood.New(cfg)
	if err != nil {
		panic(err)
	}
	var evs []*protocol.Event
	for i := range 5 {
		evs = append(evs, &protocol.Event{Source: protocol.SourceSyslog, App: "sshd", Text: fmt.Sprint("attempt ", i),
			Origin: protocol.Origin{Host: "web1", System: "web1", Addr: "10.1.2.3"}})
	}
	l.Append(context.Background(), evs) // two pass, three are held back
	l.Close(context.Background())       // the last summary
	// Output:
	// syslog web1: attempt 0
	// syslog web1: attempt 1
	// region web1: ZBR101E FLOOD CONTROL HELD BACK 3 EVENTS FROM web1 AT 10.1.2.3 BETWEEN 12:00:00.000 AND 12:00:00.000 UTC (LIMITS 10/S BURST 2 PER HOST, 4000/S BURST 8000 PER ADDRESS); BY LIMIT HOST=3; TOP IDS sshd=3; FIRST "attempt 2"; LAST "attempt 4"
}
