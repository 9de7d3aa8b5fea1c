package region

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zbridge/zbridge/gateway/flood"
	"github.com/zbridge/zbridge/gateway/store/memstore"
	"github.com/zbridge/zbridge/protocol"
)

// TestFloodControl: SYSLOG over TCP and RELP go through flood control;
// what a source sends over its limit is held back (RELP still
// acknowledges it), counted in /metrics, and summarised by Shutdown before
// the store closes: relayed plus summarised is what was sent, per source.
func TestFloodControl(t *testing.T) {
	st := memstore.New(memstore.Config{MaxEvents: 10000})
	defer st.Close()
	fc := flood.Config{Rate: 10, Burst: 5, Interval: time.Hour}
	r, err := New(Config{Name: "T", SyslogTCP: "127.0.0.1:0", HTTP: "127.0.0.1:0", Store: st, Flood: fc,
		Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	// 50 messages from "flooder" and 3 from "quiet" over one TCP
	// connection, octet-counted.
	c, err := net.Dial("tcp", r.Addr("syslog").String())
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	frame := func(host string, i int) []byte {
		return fmt.Appendf(nil, "<13>1 2026-03-01T10:00:00Z %s app - - - message %d", host, i)
	}
	for i := range 50 {
		m := frame("flooder", i)
		fmt.Fprintf(&b, "%d %s", len(m), m)
	}
	for i := range 3 {
		m := frame("quiet", i)
		fmt.Fprintf(&b, "%d %s", len(m), m)
	}
	if _, err := io.WriteString(c, b.String()); err != nil {
		t.Fatal(err)
	}
	c.Close()

	// 20 messages over RELP from "relphost": acknowledged, 5 stored.
	sink := newRELPSink(r)
	var msgs [][]byte
	for i := range 20 {
		msgs = append(msgs, frame("relphost", i))
	}
	if err := sink.Deliver(context.Background(), &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4000}, msgs); err != nil {
		t.Fatalf("RELP delivery of a flood: %v, want it acknowledged", err)
	}

	// /metrics counts what was held back, per source.
	want := []string{`zbridge_syslog_suppressed_total{addr="127.0.0.1",host="flooder"} 45`,
		`zbridge_syslog_suppressed_total{addr="127.0.0.1",host="relphost"} 15`}
	deadline := time.Now().Add(10 * time.Second)
	var body string
	for {
		resp, err := http.Get("http://" + r.Addr("http").String() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		bb, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = string(bb)
		if strings.Contains(body, want[0]) && strings.Contains(body, want[1]) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics lacks %q:\n%s", want, body)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(body, "zbridge_syslog_suppressed_all_total 60") {
		t.Errorf("/metrics lacks zbridge_syslog_suppressed_all_total 60:\n%s", body)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	evs, _, err := st.Read(context.Background(), protocol.ID{}, 1000, nil)
	if err != nil {
		t.Fatal(err)
	}
	relayed, held := map[string]int{}, map[string]uint64{}
	re := regexp.MustCompile(`^ZBR101E FLOOD CONTROL HELD BACK (\d+) EVENTS FROM (\S+) AT 127\.0\.0\.1 `)
	for _, e := range evs {
		if e.Source == protocol.SourceSyslog {
			relayed[e.Origin.Host]++
			continue
		}
		if e.Source == protocol.SourceRegion && e.MsgID != flood.SummaryMsgID {
			continue // the region's own messages (started, stopping)
		}
		m := re.FindStringSubmatch(e.Text)
		if m == nil || e.MsgID != flood.SummaryMsgID || e.Origin.Host != m[2] {
			t.Fatalf("unexpected event %+v", e)
		}
		n, _ := strconv.ParseUint(m[1], 10, 64)
		held[m[2]] += n
	}
	for host, sent := range map[string]int{"flooder": 50, "quiet": 3, "relphost": 20} {
		if uint64(relayed[host])+held[host] != uint64(sent) || relayed[host] > 5 {
			t.Errorf("%s: relayed %d + held back %d, sent %d", host, relayed[host], held[host], sent)
		}
	}
	if held["quiet"] != 0 {
		t.Errorf("a quiet source was summarised")
	}
}
