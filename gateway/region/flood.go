package region

import (
	"context"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/gateway/flood"
	"github.com/zbridge/zbridge/gateway/groupcommit"
	"github.com/zbridge/zbridge/gateway/metrics"
	"github.com/zbridge/zbridge/gateway/syslog"
	"github.com/zbridge/zbridge/zos"
)

// Flood control (package flood): SYSLOG (TCP, TLS, UDP) and RELP hand their
// events to the limiter, which passes them on to the store within each
// source's limits and appends the summaries of what it held back. It is
// closed after SYSLOG and RELP have drained into it and before the store
// closes, so that the last summaries are stored.

// floodCloseTimeout bounds the last Flush of Close (Shutdown uses its own
// context).
const floodCloseTimeout = 5 * time.Second

// openFlood makes the flood limiter when cfg.Flood limits anything, and
// registers its metrics.
func (r *Region) openFlood() error {
	// The Appends of the SYSLOG and RELP connections, through the limiter
	// or not, are joined while another is in flight (package groupcommit):
	// busy connections then share a store Append.
	r.joined = groupcommit.New(r.store)
	fc := r.cfg.Flood
	if !fc.Enabled() {
		return nil
	}
	fc.Next = r.joined
	fc.Logger = r.log
	l, err := flood.New(fc)
	if err != nil {
		return fmt.Errorf("region: %w", err)
	}
	r.flood = l
	r.registerFloodMetrics()
	r.log.WithFields(logrus.Fields{"component": "flood", "rate": fc.Rate, "burst": fc.Burst,
		"msgid_rate": fc.MsgIDRate, "msgid_burst": fc.MsgIDBurst}).Info("flood control on")
	return nil
}

// intake is where SYSLOG and RELP append their events: the flood limiter,
// or the store when flood control is off.
func (r *Region) intake() syslog.Appender {
	r.intakeOnce.Do(func() {
		var next = r.joined
		if r.flood != nil {
			next = r.flood
		}
		r.intakeApp = next
		if len(r.cfg.TimeFields) == 0 && !r.cfg.Hardcopy {
			return
		}
		loc := r.cfg.HardcopyLocation
		if loc == nil {
			loc = time.UTC
		}
		// One normalizer for SYSLOG and RELP: a multi-line message's lines
		// may come by either, in any batch.
		r.intakeApp = &normalizer{next: next, fields: r.cfg.TimeFields, hardcopy: r.cfg.Hardcopy, loc: loc,
			opts: zos.TimeOptions{LSO: zos.TODDelta(r.cfg.TODLeapSeconds/time.Microsecond) * zos.TODMicrosecond}}
	})
	return r.intakeApp
}

// closeFloodAfter is closeFlood in Shutdown, whose ctx the drain of SYSLOG
// and RELP may have used up: the last summaries get floodCloseTimeout of
// their own, whatever is left of ctx (they count events held back, which
// would otherwise be neither stored nor counted).
func (r *Region) closeFloodAfter(ctx context.Context) error {
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), floodCloseTimeout)
	defer cancel()
	return r.closeFlood(fctx)
}

// closeFlood stops the limiter and stores its last summaries.
func (r *Region) closeFlood(ctx context.Context) error {
	if r.flood == nil {
		return nil
	}
	if err := r.flood.Close(ctx); err != nil {
		r.log.WithError(err).Error("flood control: the last summaries could not be stored")
		return fmt.Errorf("region: flood control: %w", err)
	}
	return nil
}

func (r *Region) registerFloodMetrics() {
	l := r.flood
	r.reg.Collect("zbridge_syslog_suppressed_total",
		"Syslog events held back by flood control, by source (sender address and claimed host; * for a shared "+
			"overflow bucket), for the sources tracked now: each is in a "+flood.SummaryMsgID+" summary event.",
		metrics.TypeCounter, []string{"addr", "host"}, func(emit func(float64, ...string)) {
			for _, s := range l.Sources() {
				emit(float64(s.Suppressed), s.Addr, s.Host)
			}
		})
	r.reg.NewCounterFunc("zbridge_syslog_suppressed_all_total",
		"Syslog events held back by flood control, every source's, forgotten sources' included.",
		func() float64 { return float64(l.Stats().Suppressed) })
	r.reg.NewCounterFunc("zbridge_flood_summaries_total",
		"Flood control summary events ("+flood.SummaryMsgID+") stored.",
		func() float64 { return float64(l.Stats().Summaries) })
	r.reg.NewCounterFunc("zbridge_flood_summaries_dropped_total",
		"Flood control summaries dropped because the store failed to take them for too long (should stay 0).",
		func() float64 { return float64(l.Stats().Dropped) })
	r.reg.NewGaugeFunc("zbridge_flood_sources", "Sources flood control tracks now.",
		func() float64 { return float64(l.Stats().Sources) })
}
