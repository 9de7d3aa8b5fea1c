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
//
// The console's notices are taken first because they come as the change
// happens: a poll dates a change up to Interval late and misses a guest
// that logs off and on again between two polls, which availability
// records need. But a notice is only a console line, so a poll is the
// judge: a notice shown before a poll began that the poll contradicts (a
// LOGOFF for a user still listed, a LOGON for one not listed) is
// forgotten, and the poll's own findings for that user are reported, so
// that a notice that should not have been there cannot hide a real change
// later.
type NamesWatcher struct {
	Console  Console
	Publish  func(evs ...*protocol.Event) error
	System   string
	Interval time.Duration // default 60s
	Log      logrus.FieldLogger

	mu       sync.Mutex        // guards the following fields
	reported map[string]notice // user → the console's last notice no poll has settled
	polls    uint64            // polls begun
}

// notice is a LOGON or LOGOFF the console reported, and how many polls
// had begun then.
type notice struct {
	typ   string
	polls uint64
}

// Observe notes the LOGON/LOGOFF events the console reported; pass every
// published event through it.
func (w *NamesWatcher) Observe(evs ...*protocol.Event) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, e := range evs {
		if e.Source == protocol.SourceZVMEvent && (e.Type == "LOGON" || e.Type == "LOGOFF") && e.User != "" {
			if w.reported == nil {
				w.reported = map[string]notice{}
			}
			w.reported[strings.ToUpper(e.User)] = notice{typ: e.Type, polls: w.polls}
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
		// The scraper publishes what the console showed before it types
		// the command: a notice observed from here on may have come after
		// CP listed the names.
		w.mu.Lock()
		w.polls++
		poll := w.polls
		w.mu.Unlock()
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
			// after this poll began waits for the next poll; one announced
			// before it that it contradicts was wrong, or was undone
			// since: it is dropped and the poll's findings stand.
			w.mu.Lock()
			reported := make(map[string]string, len(w.reported))
			for u, n := range w.reported {
				switch {
				case (n.typ == "LOGON") == now[u]:
					reported[u] = n.typ
					delete(w.reported, u)
				case n.polls < poll:
					if w.Log != nil {
						w.Log.WithFields(logrus.Fields{"user": u, "notice": n.typ}).Warn("QUERY NAMES contradicts the console's notice; the poll's finding is reported")
					}
					delete(w.reported, u)
				default:
					reported[u] = n.typ
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
