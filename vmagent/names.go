package vmagent

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/protocol"
)

// NamesWatcher finds guest logons and logoffs the console did not announce:
// every Interval it runs CP QUERY NAMES and reports the users that appeared
// (LOGON) or went away (LOGOFF) since the last poll as zvm-event events —
// except those the console's own messages already reported (Observe sees
// every event the scraper publishes). The first poll is the baseline and
// reports nothing.
type NamesWatcher struct {
	Console  Console
	Publish  func(evs ...*protocol.Event) error
	System   string
	Interval time.Duration // default 60s
	Log      logrus.FieldLogger

	mu       sync.Mutex        // guards reported
	reported map[string]string // user → LOGON or LOGOFF, as a console message reported it and no poll has seen yet
}

// Observe notes the LOGON/LOGOFF events the console reported; pass every
// published event through it.
func (w *NamesWatcher) Observe(evs ...*protocol.Event) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, e := range evs {
		if e.Source == protocol.SourceZVMEvent && (e.Type == "LOGON" || e.Type == "LOGOFF") && e.User != "" {
			if w.reported == nil {
				w.reported = map[string]string{}
			}
			w.reported[strings.ToUpper(e.User)] = e.Type
		}
	}
}

// Run polls until ctx ends.
func (w *NamesWatcher) Run(ctx context.Context) {
	interval := w.Interval
	if interval <= 0 {
		interval = 60 * time.Second
	}
	var prev map[string]bool
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		var lines []string
		rc, err := w.Console.Run(ctx, "QUERY NAMES", func(l string) { lines = append(lines, l) })
		switch {
		case ctx.Err() != nil:
			return
		case err != nil || rc != 0:
			if w.Log != nil {
				w.Log.WithError(err).WithField("rc", rc).Warn("QUERY NAMES failed; guest changes not polled this time")
			}
		default:
			now := ParseNames(lines)
			// A reported change is settled once a poll shows it (the user
			// present after LOGON, absent after LOGOFF); one announced
			// after CP listed the names waits for the next poll.
			w.mu.Lock()
			reported := make(map[string]string, len(w.reported))
			for u, typ := range w.reported {
				reported[u] = typ
				if (typ == "LOGON") == now[u] {
					delete(w.reported, u)
				}
			}
			w.mu.Unlock()
			if prev != nil {
				var evs []*protocol.Event
				at := time.Now().UTC()
				change := func(user, typ string) {
					if reported[user] == typ {
						return // the console said so already
					}
					evs = append(evs, &protocol.Event{Source: protocol.SourceZVMEvent, Origin: protocol.Origin{System: w.System},
						Time: at, Facility: protocol.FacDaemon, Severity: protocol.SevNotice, Type: typ, User: user,
						Text: user + " " + typ + " (seen in QUERY NAMES)", Parsed: true})
				}
				for u := range now {
					if !prev[u] {
						change(u, "LOGON")
					}
				}
				for u := range prev {
					if !now[u] {
						change(u, "LOGOFF")
					}
				}
				if len(evs) > 0 {
					if err := w.Publish(evs...); err != nil && w.Log != nil {
						w.Log.WithError(err).Warn("publishing guest changes failed")
					}
				}
			}
			prev = now
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ParseNames reads the users QUERY NAMES lists ("OPERATOR - L0004 , TCPIP
// - DSC", four to a line; the closing "VSM - TCPIP" line names a virtual
// system manager, not a user, and is skipped).
func ParseNames(lines []string) map[string]bool {
	users := map[string]bool{}
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, "VSM ") {
			continue
		}
		for _, m := range patterns().namePair.FindAllStringSubmatch(strings.ToUpper(t), -1) {
			users[m[1]] = true
		}
	}
	return users
}
