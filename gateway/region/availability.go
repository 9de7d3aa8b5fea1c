package region

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/commands"
	"github.com/zbridge/zbridge/gateway/audit"
	"github.com/zbridge/zbridge/gateway/availability"
	availreport "github.com/zbridge/zbridge/gateway/availability/report"
	"github.com/zbridge/zbridge/gateway/store"
	"github.com/zbridge/zbridge/protocol"
	"github.com/zbridge/zbridge/zos"
)

// The region's availability ledger (package gateway/availability): its
// rules, heartbeats and probes come from the [availability] table of the
// config file, read again on a refresh; its records are published as
// events (ZBR401I, ZBR402E, source=availability), and the region command
// AVAIL shows them.

// probeRequester is the requester of the ledger's probes in the router and
// the audit log: the region itself, as its config file told it.
const probeRequester = "(availability)"

// maxProbeOutput bounds what a probe's output the ledger keeps.
const maxProbeOutput = 4096

// openAvailability builds the ledger when the config file has an
// [availability] table and Config.Availability allows it.
func (r *Region) openAvailability() error {
	if !r.cfg.Availability || r.cfg.ConfigFile == "" {
		return nil
	}
	spec, err := availability.ReadSpec(r.cfg.ConfigFile)
	if err != nil {
		return fmt.Errorf("region: %w", err)
	}
	if spec == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r.avail, err = availability.New(ctx, availability.Config{
		Spec: spec, Store: r.store, Agents: r.agentLinks, Probe: r.runProbe, Publish: r.publishStatus,
		Logger: r.log.WithField("component", "availability")})
	if err != nil {
		return fmt.Errorf("region: %w", err)
	}
	r.log.WithFields(logrus.Fields{"component": "availability", "rules": len(spec.Rules), "heartbeats": len(spec.Heartbeats),
		"probes": len(spec.Probes)}).Info("availability ledger on")
	return nil
}

// runAvailability runs the ledger, and the daily reports with
// Config.ReportDir, until the region stops.
func (r *Region) runAvailability() {
	if r.avail == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.availStop = cancel
	r.availDone = make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := r.avail.Run(ctx); err != nil && ctx.Err() == nil {
			r.log.WithError(err).Error("availability ledger stopped")
		}
	}()
	if r.cfg.ReportDir != "" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.dailyReports(ctx)
		}()
	}
	go func() { wg.Wait(); close(r.availDone) }()
}

// dailyReports writes, a minute after each midnight UTC, the report of the
// day that ended into Config.ReportDir, until ctx ends; at start, the
// previous day's when it is missing (the region was down at midnight).
func (r *Region) dailyReports(ctx context.Context) {
	yesterday := time.Now().UTC().Truncate(24 * time.Hour).Add(-24 * time.Hour)
	if _, err := os.Stat(filepath.Join(r.cfg.ReportDir, "availability-"+yesterday.Format("2006-01-02")+".txt")); os.IsNotExist(err) {
		if err := r.writeDailyReport(ctx, yesterday); err != nil && ctx.Err() == nil {
			r.log.WithError(err).Error("the daily availability report could not be written")
		}
	}
	for {
		now := time.Now().UTC()
		next := now.Truncate(24 * time.Hour).Add(24*time.Hour + time.Minute)
		select {
		case <-ctx.Done():
			return
		case <-time.After(next.Sub(now)):
		}
		day := next.Truncate(24 * time.Hour).Add(-24 * time.Hour)
		if err := r.writeDailyReport(ctx, day); err != nil && ctx.Err() == nil {
			r.log.WithError(err).Error("the daily availability report could not be written")
		}
	}
}

// writeDailyReport writes the report of the day beginning at day (UTC) as
// availability-YYYY-MM-DD.txt, .csv and .html in Config.ReportDir (mode
// 0600, for the region's user), each through a temporary file renamed
// into place.
func (r *Region) writeDailyReport(ctx context.Context, day time.Time) error {
	lg, ok := r.store.(store.Ledger)
	if !ok {
		return errors.New("the region's store keeps no status records")
	}
	var recs []protocol.StatusRecord
	var after uint64
	for {
		n := len(recs)
		var err error
		if recs, err = lg.StatusRecords(ctx, after, 4096, recs); err != nil {
			return err
		}
		if len(recs) == n {
			break
		}
		after = recs[len(recs)-1].Seq
	}
	rep := availreport.Compute(recs, day, day.Add(24*time.Hour), availreport.Options{})
	base := filepath.Join(r.cfg.ReportDir, "availability-"+day.Format("2006-01-02"))
	for _, f := range []struct {
		ext   string
		write func(io.Writer, availreport.Report) error
	}{{".txt", availreport.WriteText}, {".csv", availreport.WriteCSV}, {".html", availreport.WriteHTML}} {
		if err := writeFileAtomic(base+f.ext, func(w io.Writer) error { return f.write(w, rep) }); err != nil {
			return err
		}
	}
	r.issue(ctx, "ZBR403I", day.Format("2006-01-02"), base+".{txt,csv,html}")
	return nil
}

// writeFileAtomic writes path through a temporary file in its directory,
// synced and renamed into place.
func writeFileAtomic(path string, write func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	bw := bufio.NewWriter(f)
	if err := write(bw); err != nil {
		f.Close()
		return err
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// stopAvailability stops the ledger and waits for it.
func (r *Region) stopAvailability() {
	if r.availStop != nil {
		r.availStop()
		<-r.availDone
	}
}

// availabilitySpec reads the config file's [availability] table again for
// a refresh; nil without a ledger.
func (r *Region) availabilitySpec() (*availability.Spec, error) {
	if r.avail == nil {
		return nil, nil
	}
	return availability.ReadSpec(r.cfg.ConfigFile)
}

// agentLinks lists the agents' links for agent heartbeats: this region's
// and, with Redis, those of the regions it shares it with (the ledger runs
// on one region).
func (r *Region) agentLinks() []availability.Agent {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rows, err := r.allAgents(ctx)
	if err != nil {
		r.log.WithError(err).Debug("availability: the agents of other regions are not known")
	}
	var out []availability.Agent
	for _, a := range rows {
		if a.State == StateRefused {
			continue
		}
		kind := "linux"
		if a.Kind == "zvm" {
			kind = "zvm"
		}
		out = append(out, availability.Agent{Target: kind + ":" + a.Name, Connected: a.State == "connected"})
	}
	return out
}

// runProbe runs a probe's command through the router, as the region itself
// (the config file that names the probe is the authority), with its start
// and end in the audit log.
func (r *Region) runProbe(ctx context.Context, target, command string, timeout time.Duration) (int, string, error) {
	t, err := commands.ParseTarget(target)
	if err != nil {
		return 0, "", err
	}
	req := &commands.Request{ID: r.router.NewID(), Target: t, Command: command, Requester: probeRequester, Timeout: timeout}
	rec := audit.Record{Kind: audit.KindCommand, Server: "availability", Client: probeRequester,
		Target: target, Command: command, ID: req.ID, Phase: audit.PhaseStart, Rule: "availability probe"}
	if err := r.guard.record(ctx, rec); err != nil {
		return 0, "", fmt.Errorf("the audit log cannot be written; no probe runs unrecorded: %w", err)
	}
	var out strings.Builder
	var n int64
	res, err := r.router.Run(ctx, req, func(o commands.Output) {
		n += int64(len(o.Data))
		if o.Stream == commands.Stdout && out.Len() < maxProbeOutput {
			out.Write(o.Data[:min(len(o.Data), maxProbeOutput-out.Len())])
			if o.EOL {
				out.WriteByte('\n')
			}
		}
	})
	rec.Phase, rec.OutputBytes = audit.PhaseEnd, n
	rec.SetResult(res, err)
	r.guard.record(context.WithoutCancel(ctx), rec)
	var ce *commands.Error
	if errors.As(err, &ce) && ce.Code == commands.CodeTimeout {
		return 0, "", fmt.Errorf("%w: %s", availability.ErrProbeTimeout, ce.Message)
	}
	if err != nil {
		return 0, "", commandReason(err)
	}
	return res.RC, strings.TrimRight(out.String(), "\n"), nil
}

// publishStatus issues a status record as an event: ZBR401I or ZBR402E,
// source=availability, the component as its origin, the record in the SD
// element status@zbridge.
func (r *Region) publishStatus(ctx context.Context, rec protocol.StatusRecord) {
	id := "ZBR401I"
	if rec.Status == protocol.StatusDown {
		id = "ZBR402E"
	}
	m := zos.Must(id)
	text := m.Format(oneLine(rec.Component), oneLine(rec.Change))
	r.log.WithFields(logrus.Fields{"msgid": id, "rule": rec.Rule, "seq": rec.Seq}).Info(text)
	now := time.Now().UTC()
	params := []protocol.SDParam{{Name: "seq", Value: strconv.FormatUint(rec.Seq, 10)}, {Name: "component", Value: rec.Component},
		{Name: "status", Value: string(rec.Status)}, {Name: "time", Value: rec.Time.Format(time.RFC3339Nano)},
		{Name: "change", Value: rec.Change}, {Name: "rule", Value: rec.Rule}}
	if !rec.Event.IsZero() {
		params = append(params, protocol.SDParam{Name: "event", Value: rec.Event.String()})
	}
	ev := &protocol.Event{Received: now, Time: rec.Time, Origin: protocol.Origin{System: rec.Component},
		Source: protocol.SourceAvailability, MsgID: id, Type: string(rec.Status), Facility: facRegion,
		Severity: severityOf(m.Type()), Text: text, Parsed: true,
		SD: protocol.StructuredData{{ID: "status@zbridge", Params: params}}}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), issueTimeout)
	defer cancel()
	if err := r.store.Append(actx, []*protocol.Event{ev}); err != nil {
		r.log.WithError(err).Warn("the status record could not be published as an event")
	}
}

// avail answers AVAIL (the components' status) and AVAIL RECORDS AFTER
// seq MAX n (the records, as JSON lines, for zbridge report).
func (o operator) avail(client string, args []string) ([]string, error) {
	r := o.r
	name := r.cfg.Name
	p := r.guard.authz.Policy()
	// A client sees the components whose ZBR401I/ZBR402E events its roles
	// let it see; a record's detail (an event's text) only in the open mode.
	visible := func(component string, status protocol.Status) bool {
		id := "ZBR401I"
		if status == protocol.StatusDown {
			id = "ZBR402E"
		}
		m := zos.Must(id)
		return p.Visible(client, &protocol.Event{Source: protocol.SourceAvailability, MsgID: id, Type: string(status),
			Origin: protocol.Origin{System: component}, Severity: severityOf(m.Type())})
	}
	if len(args) == 0 {
		lines := []string{zos.Must("ZBR017I").Format(name)}
		if r.avail == nil {
			return append(lines, "the availability ledger is off: the config file has no [availability] table"), nil
		}
		const layout = "%-32s %-6s %-20s %-16s %s"
		lines = append(lines, fmt.Sprintf(layout, "COMPONENT", "STATUS", "SINCE", "CHANGE", "RULE"))
		for _, s := range r.avail.Current() {
			if visible(s.Component, s.Status) {
				lines = append(lines, fmt.Sprintf(layout, s.Component, s.Status, stamp(s.Since), s.Change, s.Rule))
			}
		}
		return lines, nil
	}
	bad := func() ([]string, error) {
		return nil, &commands.Error{Code: commands.CodeBadRequest, Message: "the forms are AVAIL, and AVAIL RECORDS AFTER SEQ MAX N"}
	}
	if len(args) != 5 || args[0] != "RECORDS" || args[1] != "AFTER" || args[3] != "MAX" {
		return bad()
	}
	after, err1 := strconv.ParseUint(args[2], 10, 64)
	n, err2 := strconv.Atoi(args[4])
	if err1 != nil || err2 != nil || n < 1 {
		return bad()
	}
	n = min(n, 1000)
	lg, ok := r.store.(interface {
		StatusRecords(ctx context.Context, after uint64, max int, dst []protocol.StatusRecord) ([]protocol.StatusRecord, error)
	})
	if !ok {
		return nil, &commands.Error{Code: commands.CodeFailed, Message: "the region's store keeps no status records"}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	recs, err := lg.StatusRecords(ctx, after, n, nil)
	if err != nil {
		return nil, &commands.Error{Code: commands.CodeFailed, Message: err.Error()}
	}
	recs = slices.DeleteFunc(recs, func(rec protocol.StatusRecord) bool { return !visible(rec.Component, rec.Status) })
	lines := []string{zos.Must("ZBR018I").Format(name, strconv.FormatUint(after, 10), strconv.Itoa(len(recs)))}
	for _, rec := range recs {
		if !p.Open() {
			rec.Detail = ""
		}
		b, err := json.Marshal(rec)
		if err != nil {
			return nil, &commands.Error{Code: commands.CodeFailed, Message: err.Error()}
		}
		lines = append(lines, string(jsonControls().Replace(string(b))))
	}
	return lines, nil
}

// jsonControls escapes what encoding/json leaves raw but a terminal would
// act on: DEL and the C1 controls. Built when first used: every zbridge
// command would pay for it at start otherwise.
var jsonControls = sync.OnceValue(func() *strings.Replacer {
	var pairs []string
	pairs = append(pairs, "\x7f", `\u007f`)
	for c := rune(0x80); c <= 0x9f; c++ {
		pairs = append(pairs, string(c), fmt.Sprintf(`\u%04x`, c))
	}
	return strings.NewReplacer(pairs...)
})
