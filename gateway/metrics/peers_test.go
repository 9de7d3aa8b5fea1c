package metrics

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zbridge/zbridge/internal/peer"
)

// The exposition checked by Prometheus's own programs (Debian's package
// prometheus, which .ci/run installs): promtool's parser and linter, and a
// Prometheus server that scrapes the handler.

// fullRegistry has every kind of family the package makes: the test
// registry's, the Go runtime's and the process's, and the handler's.
func fullRegistry() *Registry {
	r := newTestRegistry()
	r.RegisterGoMetrics()
	r.RegisterProcessMetrics()
	r.Handler(nil)
	return r
}

// TestPromtoolCheckMetrics runs promtool check metrics, which parses the
// text and lints names, help and units, over a full scrape. It runs under
// -short too: promtool takes a few milliseconds.
func TestPromtoolCheckMetrics(t *testing.T) {
	promtool, err := peer.Lookup("promtool")
	if err != nil {
		peer.Missing(t, "%v", err)
	}
	check := func(text string) (string, error) {
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = strings.NewReader(text)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	text := scrape(t, fullRegistry())
	if out, err := check(text); err != nil || out != "" {
		t.Errorf("promtool check metrics: %v\n%s\non:\n%s", err, out, text)
	}

	// What it refuses, so that the pass above means something: a family
	// written twice, and a label value with a raw line feed.
	for name, bad := range map[string]string{
		"family twice":      text + "# HELP go_goroutines x\n# TYPE go_goroutines gauge\ngo_goroutines 1\n",
		"raw line feed":     "# TYPE x gauge\nx{a=\"b\nc\"} 1\n",
		"counter no _total": "# HELP x_seconds Bad.\n# TYPE x_seconds counter\nx_seconds 1\n",
	} {
		if out, err := check(bad); err == nil {
			t.Errorf("%s: promtool check metrics passed it: %s", name, out)
		}
	}
}

// TestPrometheusScrapes starts a Prometheus server that scrapes the
// handler every second, as Prometheus scrapes a region, and asks it what
// it stored: the scrape succeeded (up is 1), every sample line was taken,
// and values, escaped label values and histograms read back.
func TestPrometheusScrapes(t *testing.T) {
	prometheus := peer.Require(t, "prometheus")
	r := fullRegistry()
	srv := httptest.NewServer(r.Handler(nil))
	t.Cleanup(srv.Close)

	dir := t.TempDir()
	config := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(config, []byte(fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: zbridge
    static_configs:
      - targets: ['%s']
`, strings.TrimPrefix(srv.URL, "http://"))), 0o644); err != nil {
		t.Fatal(err)
	}
	api := "http://" + peer.Addr(peer.FreePort(t))
	peer.Start(t, peer.Command{
		Path: prometheus,
		Args: []string{"--config.file=" + config, "--storage.tsdb.path=" + filepath.Join(dir, "data"),
			"--web.listen-address=" + strings.TrimPrefix(api, "http://"), "--log.level=warn"},
		Ready: func(ctx context.Context) error {
			req, _ := http.NewRequestWithContext(ctx, "GET", api+"/-/ready", nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return errors.New(resp.Status)
			}
			return nil
		},
	})

	// The sample lines of a scrape: every line but the comments.
	var lines int
	for line := range strings.Lines(scrape(t, r)) {
		if !strings.HasPrefix(line, "#") {
			lines++
		}
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		up := query(t, api, `up{job="zbridge"}`)
		if len(up) == 1 && up[0].value == "1" {
			break
		}
		if len(up) == 1 && up[0].value == "0" || time.Now().After(deadline) {
			health := queryTargets(t, api)
			t.Fatalf("up = %v: Prometheus did not scrape the handler: %s", up, health)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got := query(t, api, `scrape_samples_scraped{job="zbridge"}`); len(got) != 1 || got[0].value != strconv.Itoa(lines) {
		t.Errorf("scrape_samples_scraped = %v, want the %d sample lines", got, lines)
	}
	for _, tc := range []struct {
		query  string
		labels map[string]string
		value  string
	}{
		{`zbridge_frames_total`, nil, "42"},
		{`zbridge_logons_total{result="refused"}`, map[string]string{"client": "we\"ird\\name\n"}, "1"},
		{`zbridge_agent_queue_depth{agent="X"}`, map[string]string{"lpar": "B"}, "NaN"},
		{`zbridge_store_limit_bytes`, nil, "+Inf"},
		{`zbridge_latency_seconds_count`, nil, "3"},
		{`zbridge_latency_seconds_bucket{le="2.5"}`, nil, "1"},
		{`histogram_quantile(1, zbridge_command_seconds_bucket{kind="linux"})`, nil, "0.5"},
		{`go_gc_duration_seconds{quantile="1"} >= 0`, nil, ""},
		{`process_open_fds > 2`, nil, ""},
		{`promhttp_metric_handler_errors_total{cause="gathering"}`, nil, "0"},
	} {
		got := query(t, api, tc.query)
		if len(got) != 1 {
			t.Errorf("%s: %d results, want 1", tc.query, len(got))
			continue
		}
		if tc.value != "" && got[0].value != tc.value {
			t.Errorf("%s = %s, want %s", tc.query, got[0].value, tc.value)
		}
		for name, want := range tc.labels {
			if got[0].labels[name] != want {
				t.Errorf("%s: label %s = %q, want %q", tc.query, name, got[0].labels[name], want)
			}
		}
	}
}

type promSample struct {
	labels map[string]string
	value  string
}

// query runs an instant PromQL query through Prometheus's HTTP API.
func query(t *testing.T, api, q string) []promSample {
	t.Helper()
	resp, err := http.Get(api + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Status string
		Error  string
		Data   struct {
			Result []struct {
				Metric map[string]string
				Value  [2]any
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Status != "success" {
		t.Fatalf("query %s: %v %s %s", q, err, body.Status, body.Error)
	}
	var ss []promSample
	for _, r := range body.Data.Result {
		v, _ := r.Value[1].(string)
		ss = append(ss, promSample{r.Metric, v})
	}
	return ss
}

// queryTargets returns Prometheus's account of its targets, for a failure.
func queryTargets(t *testing.T, api string) string {
	resp, err := http.Get(api + "/api/v1/targets")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return b.String()
}
