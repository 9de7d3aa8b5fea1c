package region

import (
	"context"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/protocol"
	"github.com/zbridge/zbridge/zos"
)

// The region's own messages (package zos): each is issued by issue, which
// writes it to the region log with its ID in the msgid field and stores it
// as an event with source=region and the ID in MsgID, so that UNSOLMSG
// subscribers, the console and automation rules see it as they see any
// other event.

// issueTimeout bounds the store append of one message: a region whose
// store is slow or away still logs the message and goes on.
const issueTimeout = 5 * time.Second

// facRegion is the syslog facility of the region's messages: "messages
// generated internally by syslogd" (RFC 5424), as flood summaries use.
const facRegion protocol.Facility = 5

// severityOf maps a message type to the severity of its event: action and
// wait messages need the operator now, eventual action soon.
func severityOf(t zos.Type) protocol.Severity {
	switch t {
	case zos.Action:
		return protocol.SevCrit
	case zos.Wait:
		return protocol.SevAlert
	case zos.Eventual:
		return protocol.SevWarning
	}
	return protocol.SevInfo
}

// msgLimit holds back a message issued more often than its limit: at most
// burst at once, then one every per. What it held back is counted and
// logged with the next one that passes.
type msgLimit struct {
	burst int
	per   time.Duration

	mu         sync.Mutex
	tokens     float64
	last       time.Time
	suppressed int
}

func (l *msgLimit) allow(now time.Time) (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last.IsZero() {
		l.tokens = float64(l.burst)
	} else {
		l.tokens = min(float64(l.burst), l.tokens+float64(now.Sub(l.last))/float64(l.per))
	}
	l.last = now
	if l.tokens < 1 {
		l.suppressed++
		return false, 0
	}
	l.tokens--
	s := l.suppressed
	l.suppressed = 0
	return true, s
}

// Limits of the messages anyone on the network can cause (a refused
// logon): at most 10 a minute for each port, so that a brute force does
// not turn into a flood of events, nor one port's hide another's. The
// audit log has every refusal.
const (
	limitBurst = 10
	limitEvery = 6 * time.Second
)

// msgLimits holds a msgLimit per key (a message ID and a port), made on
// first use. Its keys are the region's own constants, so it stays small.
type msgLimits struct {
	mu sync.Mutex
	m  map[string]*msgLimit
}

func (ls *msgLimits) get(key string) *msgLimit {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.m == nil {
		ls.m = map[string]*msgLimit{}
	}
	l := ls.m[key]
	if l == nil {
		l = &msgLimit{burst: limitBurst, per: limitEvery}
		ls.m[key] = l
	}
	return l
}

// issue issues the region message id with its inserts: to the region log
// and, as a source=region event, to the store (when the store is open).
func (r *Region) issue(ctx context.Context, id string, inserts ...string) {
	r.issueLimited(ctx, "", id, inserts...)
}

// issueLimited issues the message unless the limit of key (when not "")
// holds it back; the next one issued under the key says in the log how
// many were.
func (r *Region) issueLimited(ctx context.Context, key, id string, inserts ...string) {
	m := zos.Must(id)
	fields := logrus.Fields{"msgid": id}
	if key != "" {
		ok, suppressed := r.msgLimits.get(key).allow(time.Now())
		if !ok {
			return
		}
		if suppressed > 0 {
			fields["suppressed"] = suppressed
		}
	}
	text := m.Format(inserts...)
	log := r.log.WithFields(fields)
	sev := severityOf(m.Type())
	switch {
	case sev <= protocol.SevErr:
		log.Error(text)
	case sev == protocol.SevWarning:
		log.Warn(text)
	default:
		log.Info(text)
	}
	if r.store == nil {
		return
	}
	now := time.Now().UTC()
	ev := &protocol.Event{Received: now, Time: now, Origin: protocol.Origin{System: r.cfg.Name},
		Source: protocol.SourceRegion, MsgID: id, Facility: facRegion, Severity: sev,
		Text: text, Parsed: true}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), issueTimeout)
	defer cancel()
	if err := r.store.Append(actx, []*protocol.Event{ev}); err != nil {
		log.WithError(err).Warn("the message could not be stored as an event")
	}
}
