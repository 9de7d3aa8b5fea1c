package region

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zbridge/zbridge/commands"
	"github.com/zbridge/zbridge/gateway/auth"
	"github.com/zbridge/zbridge/gateway/store/memstore"
	"github.com/zbridge/zbridge/protocol"
)

// TestAvailabilityRegion: the region runs the ledger of its config file's
// [availability] table; a record is published as ZBR401I/ZBR402E with the
// record in its SD; AVAIL and D ZBR1,AVAIL show the components, AVAIL
// RECORDS the records as JSON; a refresh with a broken table changes
// nothing; the day's report is written to the report directory.
func TestAvailabilityRegion(t *testing.T) {
	dir := t.TempDir()
	config := filepath.Join(dir, "zbridge.toml")
	spec := `
[[availability.rule]]
name = "sysplex-join"
events = "msgid=IXC418I"
text = 'SYSTEM (?P<sys>\S+) IS NOW ACTIVE'
component = "{sys}"
status = "UP"
[[availability.rule]]
name = "sysplex-leave"
events = "msgid=IXC105I"
text = 'FOR (?P<sys>\S+)'
component = "{sys}"
status = "DOWN"
`
	if err := os.WriteFile(config, []byte(spec), 0o600); err != nil {
		t.Fatal(err)
	}
	st := memstore.New(memstore.Config{})
	defer st.Close()
	reports := filepath.Join(dir, "reports")
	os.Mkdir(reports, 0o700)
	r, err := New(Config{Name: "ZBR1", ConfigFile: config, Store: st, Availability: true, ReportDir: reports, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// Yesterday: the ledger takes an event's time only up to a minute past
	// its receipt, so hours of today may lie in the future (before 07:00
	// UTC, at(7) would).
	day := time.Now().UTC().Truncate(24 * time.Hour).Add(-24 * time.Hour)
	at := func(h int) time.Time { return day.Add(time.Duration(h) * time.Hour) }
	st.Append(ctx, []*protocol.Event{
		{Source: protocol.SourceSyslog, MsgID: "IXC418I", Time: at(1), Text: "SYSTEM SYSA IS NOW ACTIVE IN SYSPLEX PLEX1"},
		{Source: protocol.SourceSyslog, MsgID: "IXC105I", Time: at(7), Text: "SYSPLEX PARTITIONING HAS COMPLETED FOR SYSA"},
	})
	down := waitMessage(t, st, "ZBR402E", "COMPONENT SYSA IS DOWN: IXC105I")
	if down.Source != protocol.SourceAvailability || down.Origin.System != "SYSA" || len(down.SD) != 1 ||
		down.SD[0].ID != "status@zbridge" || !down.Time.Equal(at(7)) {
		t.Errorf("ZBR402E event: %+v", down)
	}

	run := func(line string) []string {
		var out []string
		_, err := operator{r}.Run(ctx, &commands.Request{Command: line, Requester: "t"}, func(o commands.Output) {
			out = append(out, string(o.Data))
		})
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		return out
	}
	for _, line := range []string{"AVAIL", "avail"} {
		got := run(line)
		if len(got) != 3 || got[0] != "ZBR017I REGION ZBR1 AVAILABILITY" || !strings.HasPrefix(got[2], "SYSA ") ||
			!strings.Contains(got[2], " DOWN ") || !strings.Contains(got[2], "IXC105I") {
			t.Errorf("%s: %q", line, got)
		}
	}
	if word, err := operatorCommand("D ZBR1,AVAIL", "ZBR1"); err != nil || word != "AVAIL" {
		t.Errorf("D ZBR1,AVAIL: %q, %v", word, err)
	}
	got := run("AVAIL RECORDS AFTER 0 MAX 1")
	var rec protocol.StatusRecord
	if len(got) != 2 || got[0] != "ZBR018I REGION ZBR1 STATUS RECORDS AFTER 0: 1" || json.Unmarshal([]byte(got[1]), &rec) != nil ||
		rec.Seq != 1 || rec.Component != "SYSA" || rec.Status != protocol.StatusUp {
		t.Errorf("AVAIL RECORDS AFTER 0 MAX 1: %q", got)
	}
	if _, err := (operator{r}).Run(ctx, &commands.Request{Command: "AVAIL RECORDS"}, func(commands.Output) {}); err == nil {
		t.Error("AVAIL RECORDS without AFTER and MAX answered")
	}

	// A refresh whose table does not parse changes nothing.
	if err := os.WriteFile(config, []byte(spec+"\n[[availability.rule]]\nname = \"bad\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Refresh("test"); err == nil || !strings.Contains(err.Error(), "availability") {
		t.Errorf("a refresh with a broken [availability] table: %v", err)
	}

	// The day's report.
	if err := r.writeDailyReport(ctx, day); err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(reports, "availability-"+day.Format("2006-01-02"))
	for _, ext := range []string{".txt", ".csv", ".html"} {
		b, err := os.ReadFile(base + ext)
		if err != nil || !strings.Contains(string(b), "SYSA") {
			t.Errorf("%s: %v, %.200q", base+ext, err, b)
		}
	}
	waitMessage(t, st, "ZBR403I", "AVAILABILITY REPORT FOR "+day.Format("2006-01-02")+" WRITTEN TO "+base)
}

// TestAvailVisibility: AVAIL and AVAIL RECORDS show a client only the
// components whose status events its roles let it see, and no record's
// detail (an event's text) outside the open mode.
func TestAvailVisibility(t *testing.T) {
	dir := t.TempDir()
	hash, err := auth.Hash("s")
	if err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "zbridge.toml")
	if err := os.WriteFile(config, []byte(`
[[client]]
name = "narrow"
secret-hash = "`+hash+`"
roles = ["narrow"]
[[role]]
name = "narrow"
ports = ["commands"]
events = ["source=availability,origin=SYSA"]
  [[role.target]]
  pattern = "region"
  commands = ["AVAIL **"]
[[availability.rule]]
name = "up"
events = "msgid=IXC418I"
text = 'SYSTEM (?P<sys>\S+) IS NOW ACTIVE'
component = "{sys}"
status = "UP"
`), 0o600); err != nil {
		t.Fatal(err)
	}
	st := memstore.New(memstore.Config{})
	defer st.Close()
	r, err := New(Config{Name: "ZBR1", ConfigFile: config, Store: st, Availability: true, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st.Append(ctx, []*protocol.Event{
		{Source: protocol.SourceSyslog, MsgID: "IXC418I", Text: "SYSTEM SYSA IS NOW ACTIVE"},
		{Source: protocol.SourceSyslog, MsgID: "IXC418I", Text: "SYSTEM SYSB IS NOW ACTIVE"},
	})
	waitMessage(t, st, "ZBR401I", "COMPONENT SYSB IS UP")
	run := func(line string) string {
		var out []string
		if _, err := (operator{r}).Run(ctx, &commands.Request{Command: line, Requester: "narrow"}, func(o commands.Output) {
			out = append(out, string(o.Data))
		}); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		return strings.Join(out, "\n")
	}
	if got := run("AVAIL"); !strings.Contains(got, "SYSA ") || strings.Contains(got, "SYSB") {
		t.Errorf("AVAIL for a client that sees SYSA only:\n%s", got)
	}
	got := run("AVAIL RECORDS AFTER 0 MAX 10")
	if !strings.Contains(got, `"component":"SYSA"`) || strings.Contains(got, "SYSB") || strings.Contains(got, "NOW ACTIVE") {
		t.Errorf("AVAIL RECORDS for a client that sees SYSA only, without details:\n%s", got)
	}
}

// TestJSONControls: what AVAIL RECORDS prints escapes DEL and the C1
// controls, which encoding/json leaves raw, and nothing else.
func TestJSONControls(t *testing.T) {
	in := "a\x7fb\u0085c\u009fd\u00a0é"
	if got, want := jsonControls().Replace(in), `a\u007fb\u0085c\u009fd`+"\u00a0é"; got != want {
		t.Errorf("jsonControls(%q) = %q, want %q", in, got, want)
	}
}
