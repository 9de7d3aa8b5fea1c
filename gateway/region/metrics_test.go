package region

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/zbridge/zbridge/protocol"
	"github.com/zbridge/zbridge/protocol/client"
)

// scrapeMetrics fetches the region's /metrics as a Prometheus server would
// and decodes it with Prometheus's own parser, in the format served.
func scrapeMetrics(t *testing.T, r *Region) map[string]*dto.MetricFamily {
	t.Helper()
	req, err := http.NewRequest("GET", "http://"+r.Addr("http").String()+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("/metrics: %s: %s", resp.Status, b)
	}
	format := expfmt.ResponseFormat(resp.Header)
	if format.FormatType() != expfmt.TypeTextPlain {
		t.Fatalf("/metrics served %q, want the text format", resp.Header.Get("Content-Type"))
	}
	fams := map[string]*dto.MetricFamily{}
	dec := expfmt.NewDecoder(resp.Body, format) // classic name rules: the format escapes
	for {
		mf := &dto.MetricFamily{}
		if err := dec.Decode(mf); err != nil {
			if errors.Is(err, io.EOF) {
				return fams
			}
			t.Fatalf("/metrics: %v", err)
		}
		if fams[mf.GetName()] != nil {
			t.Fatalf("/metrics: family %s twice", mf.GetName())
		}
		fams[mf.GetName()] = mf
	}
}

// histogramCount returns the count of the histogram series of name whose
// labels include want (name=value pairs), and whether there was one.
func histogramCount(fams map[string]*dto.MetricFamily, name string, want ...string) (uint64, bool) {
	mf := fams[name]
	if mf == nil {
		return 0, false
	}
next:
	for _, m := range mf.GetMetric() {
		labels := map[string]string{}
		for _, lp := range m.GetLabel() {
			labels[lp.GetName()] = lp.GetValue()
		}
		for i := 0; i+1 < len(want); i += 2 {
			if labels[want[i]] != want[i+1] {
				continue next
			}
		}
		return m.GetHistogram().GetSampleCount(), true
	}
	return 0, false
}

// TestMetricsScrape starts a region, relays an event to a subscriber and
// runs region commands, then scrapes /metrics over HTTP: every family the
// region exposes is there with its type, the histograms have buckets and
// have observed the relay and the commands, and the process and Go runtime
// families are there.
func TestMetricsScrape(t *testing.T) {
	r, err := New(Config{Name: "M", SyslogTCP: "127.0.0.1:0", UnsolMsg: "127.0.0.1:0", Commands: "127.0.0.1:0",
		HTTP: "127.0.0.1:0", Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// An event relayed: syslog in, an UNSOLMSG subscriber out.
	sub, err := client.Dial(ctx, client.Config{Addr: r.Addr("unsolmsg").String(), Client: "metrics-test"})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if _, err := sub.Subscribe(ctx, nil, "", ""); err != nil {
		t.Fatal(err)
	}
	sc, err := net.Dial("tcp", r.Addr("syslog").String())
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	if _, err := io.WriteString(sc, "<13>1 2026-01-02T03:04:05Z lnx01 app - - - relay me\n"); err != nil {
		t.Fatal(err)
	}
	for {
		f, err := sub.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if f.Type == protocol.TypeEvent {
			break
		}
	}

	// Commands to the region itself: one that runs, one it refuses; and
	// one to a z/VM system nobody serves.
	cmds, err := client.Dial(ctx, client.Config{Addr: r.Addr("commands").String(), Client: "metrics-test"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cmds.Command(ctx, client.CommandRequest{Target: "region", Command: "HELP"}, nil); err != nil {
		t.Fatal(err)
	}
	var ce *client.CommandError
	if _, err := cmds.Command(ctx, client.CommandRequest{Target: "region", Command: "NO-SUCH"}, nil); !errors.As(err, &ce) {
		t.Fatalf("region NO-SUCH: %v, want a command error", err)
	}
	if _, err := cmds.Command(ctx, client.CommandRequest{Target: "zvm:VMSYS9", Command: "Q T"}, nil); !errors.As(err, &ce) {
		t.Fatalf("zvm:VMSYS9: %v, want a command error", err)
	}
	zvmOutcome := ce.Code
	cmds.Logoff(ctx) // a session ended, for zbridge_sessions_ended_total

	// The relay latency is observed once the write returned, the command
	// duration once the reply was sent, the session end once the server
	// saw the logoff: scrape until all are in.
	var fams map[string]*dto.MetricFamily
	for deadline := time.Now().Add(20 * time.Second); ; {
		fams = scrapeMetrics(t, r)
		relayed, _ := histogramCount(fams, "zbridge_relay_latency_seconds")
		ran, _ := histogramCount(fams, "zbridge_command_duration_seconds", "kind", "region", "outcome", "ok")
		refused, _ := histogramCount(fams, "zbridge_command_duration_seconds", "kind", "region", "outcome", "bad-request")
		zvm, _ := histogramCount(fams, "zbridge_command_duration_seconds", "kind", "zvm", "outcome", zvmOutcome)
		if relayed == 1 && ran == 1 && refused == 1 && zvm == 1 && fams["zbridge_sessions_ended_total"] != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after an event relayed and 3 commands: relay latency count %d, command durations region/ok %d "+
				"region/bad-request %d zvm/%s %d; sessions ended: %v", relayed, ran, refused, zvmOutcome, zvm,
				fams["zbridge_sessions_ended_total"])
		}
		time.Sleep(20 * time.Millisecond)
	}

	counter, gauge, histogram := dto.MetricType_COUNTER, dto.MetricType_GAUGE, dto.MetricType_HISTOGRAM
	for name, typ := range map[string]dto.MetricType{
		"zbridge_events_appended_total":            counter,
		"zbridge_events_retained":                  gauge,
		"zbridge_events_retained_bytes":            gauge,
		"zbridge_unsolmsg_events_sent_total":       counter,
		"zbridge_sessions":                         gauge,
		"zbridge_sessions_ended_total":             counter,
		"zbridge_learned_name_conflicts_total":     counter,
		"zbridge_learned_names":                    gauge,
		"zbridge_syslog_connections_total":         counter,
		"zbridge_syslog_connections_refused_total": counter,
		"zbridge_syslog_connections":               gauge,
		"zbridge_syslog_messages_total":            counter,
		"zbridge_syslog_parse_failures_total":      counter,
		"zbridge_syslog_oversize_total":            counter,
		"zbridge_syslog_framing_errors_total":      counter,
		"zbridge_syslog_bytes_total":               counter,
		"zbridge_syslog_datagrams_total":           counter,
		"zbridge_syslog_append_errors_total":       counter,
		"zbridge_degraded":                         gauge,
		"zbridge_relay_latency_seconds":            histogram,
		"zbridge_command_duration_seconds":         histogram,
		"promhttp_metric_handler_errors_total":     counter,
		"process_cpu_seconds_total":                counter,
		"process_resident_memory_bytes":            gauge,
		"process_open_fds":                         gauge,
		"process_start_time_seconds":               gauge,
		"go_goroutines":                            gauge,
		"go_memstats_heap_alloc_bytes":             gauge,
		"go_gc_duration_seconds":                   dto.MetricType_SUMMARY,
		"go_info":                                  gauge,
	} {
		mf := fams[name]
		switch {
		case mf == nil:
			t.Errorf("%s missing", name)
		case mf.GetType() != typ:
			t.Errorf("%s: type %v, want %v", name, mf.GetType(), typ)
		case mf.GetHelp() == "":
			t.Errorf("%s has no help", name)
		}
	}
	for name, want := range map[string]float64{
		"zbridge_events_appended_total":      2, // ZBR001I and the syslog message
		"zbridge_unsolmsg_events_sent_total": 1,
		"zbridge_syslog_messages_total":      1,
	} {
		if got := fams[name].GetMetric()[0].GetCounter().GetValue(); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	sessions := map[string]float64{}
	for _, m := range fams["zbridge_sessions"].GetMetric() {
		sessions[m.GetLabel()[0].GetName()+"="+m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
	}
	if len(sessions) != 3 || sessions["server=unsolmsg"] != 1 {
		t.Errorf("zbridge_sessions = %v, want server=unsolmsg 1 and the commands and vmmon servers", sessions)
	}

	// The histograms: buckets from under a millisecond to tens of seconds,
	// cumulative, ending at the count.
	for _, name := range []string{"zbridge_relay_latency_seconds", "zbridge_command_duration_seconds"} {
		for _, m := range fams[name].GetMetric() {
			h := m.GetHistogram()
			bs := h.GetBucket()
			if len(bs) < 10 || bs[0].GetUpperBound() > 0.001 || bs[len(bs)-2].GetUpperBound() < 10 {
				t.Errorf("%s: buckets %v, want sub-millisecond to tens of seconds", name, bs)
				continue
			}
			for i := 1; i < len(bs); i++ {
				if bs[i].GetCumulativeCount() < bs[i-1].GetCumulativeCount() {
					t.Errorf("%s: buckets not cumulative: %v", name, bs)
				}
			}
			if last := bs[len(bs)-1].GetCumulativeCount(); last != h.GetSampleCount() {
				t.Errorf("%s: +Inf bucket %d, count %d", name, last, h.GetSampleCount())
			}
		}
	}
	if h := fams["zbridge_relay_latency_seconds"].GetMetric()[0].GetHistogram(); h.GetSampleSum() < 0 || h.GetSampleSum() > 20 {
		t.Errorf("relay latency sum %vs for one event relayed at once", h.GetSampleSum())
	}
}

// TestHealthzStarting: until Start has issued ZBR001I, /healthz answers 503
// "starting", so a readiness probe does not send traffic to a region still
// joining; after, 200 "ok"; once it is closing, 503 "stopping".
func TestHealthzStarting(t *testing.T) {
	r, err := New(Config{Name: "H", SyslogTCP: "127.0.0.1:0", HTTP: "127.0.0.1:0", Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	get := func() (int, string) {
		rec := httptest.NewRecorder()
		r.http.Handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
		var body struct{ Status string }
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatalf("/healthz body %q: %v", rec.Body.String(), err)
		}
		return rec.Code, body.Status
	}
	if code, status := get(); code != http.StatusServiceUnavailable || status != "starting" {
		t.Errorf("before Start: /healthz %d %q, want 503 \"starting\"", code, status)
	}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	if code, status := get(); code != http.StatusOK || status != "ok" {
		t.Errorf("after Start: /healthz %d %q, want 200 \"ok\"", code, status)
	}
	r.Close()
	if code, status := get(); code != http.StatusServiceUnavailable || status != "stopping" {
		t.Errorf("after Close: /healthz %d %q, want 503 \"stopping\"", code, status)
	}
}
