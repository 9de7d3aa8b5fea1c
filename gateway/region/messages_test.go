package region

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zbridge/zbridge/gateway/auth"
	"github.com/zbridge/zbridge/gateway/store/memstore"
	"github.com/zbridge/zbridge/protocol"
	"github.com/zbridge/zbridge/protocol/client"
	"github.com/zbridge/zbridge/zos"
)

// regionEvents returns the events the region issues itself
// (source=region and source=availability) in st, oldest first.
func regionEvents(t *testing.T, st *memstore.Store) []*protocol.Event {
	t.Helper()
	evs, _, err := st.Read(context.Background(), protocol.ID{}, 10000, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out []*protocol.Event
	for _, e := range evs {
		if e.Source == protocol.SourceRegion || e.Source == protocol.SourceAvailability {
			out = append(out, e)
		}
	}
	return out
}

// waitMessage waits until st holds a region event with msgid id whose
// text contains want, and returns it.
func waitMessage(t *testing.T, st *memstore.Store, id, want string) *protocol.Event {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		for _, e := range regionEvents(t, st) {
			if e.MsgID == id && strings.Contains(e.Text, want) {
				return e
			}
		}
		if time.Now().After(deadline) {
			var got []string
			for _, e := range regionEvents(t, st) {
				got = append(got, e.Text)
			}
			t.Fatalf("no %s saying %q among the region's messages:\n%s", id, want, strings.Join(got, "\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRegionMessages checks that the region issues its messages as
// source=region events, with the ID in msgid, the text in the catalogue's
// layout and the severity of the message's type: started, a refused logon,
// a z/VM agent connected and lost, a refresh and a failed one, stopping
// and stopped.
func TestRegionMessages(t *testing.T) {
	dir := t.TempDir()
	hash, err := auth.Hash("s")
	if err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "zbridge.toml")
	good := []byte(`
[[client]]
name = "VMSYS1"
secret-hash = "` + hash + `"
roles = ["agent"]
[[client]]
name = "app"
secret-hash = "` + hash + `"
roles = ["app"]
[[role]]
name = "agent"
vmmon = ["VMSYS1"]
[[role]]
name = "app"
ports = ["unsolmsg"]
events = ["origin=*"]
`)
	if err := os.WriteFile(config, good, 0o600); err != nil {
		t.Fatal(err)
	}
	st := memstore.New(memstore.Config{})
	defer st.Close()
	r, err := New(Config{Name: "ZBR1", UnsolMsg: "127.0.0.1:0", VMMon: "127.0.0.1:0", ConfigFile: config,
		Store: st, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	started := waitMessage(t, st, "ZBR001I", "REGION ZBR1 STARTED: UNSOLMSG="+r.Addr("unsolmsg").String()+
		" VMMON="+r.Addr("vmmon").String())
	if started.Severity != protocol.SevInfo || started.Origin.System != "ZBR1" || !started.Parsed {
		t.Errorf("ZBR001I event: %+v; want severity info, origin ZBR1, parsed", started)
	}

	// A logon with a wrong secret.
	if _, err := client.Dial(ctx, client.Config{Addr: r.Addr("unsolmsg").String(), Client: "app", Secret: "wrong"}); err == nil {
		t.Fatal("a wrong secret logged on")
	}
	waitMessage(t, st, "ZBR203I", "LOGON REFUSED ON UNSOLMSG FOR app FROM 127.0.0.1:")

	// A z/VM agent logs on to VMMON and goes away.
	c, err := net.DialTimeout("tcp", r.Addr("vmmon").String(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(protocol.Frame{Type: protocol.TypeLogon, Req: 1, Client: "VMSYS1", Secret: "s", Version: protocol.Version,
		Options: map[string]string{"kind": "zvm-agent", "spool": "s1"}})
	c.Write(append(b, '\n'))
	var f protocol.Frame
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	line, err := bufio.NewReader(c).ReadBytes('\n')
	if err != nil || json.Unmarshal(line, &f) != nil || f.Type != protocol.TypeAccept {
		t.Fatalf("VMMON logon: %q, %v", line, err)
	}
	waitMessage(t, st, "ZBR201I", "ZVM AGENT VMSYS1 CONNECTED FROM 127.0.0.1:")
	c.Close()
	lost := waitMessage(t, st, "ZBR202E", "ZVM AGENT VMSYS1 LOST: closed")
	if lost.Severity != protocol.SevWarning {
		t.Errorf("ZBR202E severity %v; want warning (eventual action)", lost.Severity)
	}

	// A refresh, then one that fails.
	if _, err := r.Refresh("SIGHUP"); err != nil {
		t.Fatal(err)
	}
	waitMessage(t, st, "ZBR004I", "REGION ZBR1 REFRESHED BY SIGHUP: config refreshed: 2 clients")
	if err := os.WriteFile(config, []byte("[[role]]\nname = \"x\"\nports = [\"ftp\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Refresh("op"); err == nil {
		t.Fatal("a refresh with a broken config succeeded")
	}
	waitMessage(t, st, "ZBR005E", "REGION ZBR1 REFRESH BY op FAILED: ")

	r.Stop("SIGTERM")
	if err := r.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	evs := regionEvents(t, st)
	if n := len(evs); n < 2 || evs[n-2].MsgID != "ZBR002I" || evs[n-2].Text != "ZBR002I REGION ZBR1 STOPPING: SIGTERM" ||
		evs[n-1].Text != "ZBR003I REGION ZBR1 STOPPED" {
		t.Errorf("the last region messages are not ZBR002I STOPPING: SIGTERM then ZBR003I STOPPED")
	}
	// Every message matches its catalogue entry's layout.
	for _, e := range evs {
		m, ok := zos.Lookup(e.MsgID)
		if !ok {
			t.Errorf("event with msgid %q, which the catalogue lacks: %s", e.MsgID, e.Text)
			continue
		}
		if !m.Pattern().MatchString(e.Text) {
			t.Errorf("%s does not match the catalogue's layout %q", e.Text, m.Text)
		}
	}
}

// TestMessageLimit checks the limit of messages anyone can cause: a burst,
// then one a period, the held-back ones counted with the next that passes.
func TestMessageLimit(t *testing.T) {
	l := &msgLimit{burst: 3, per: time.Second}
	t0 := time.Unix(1000, 0)
	for i := range 3 {
		if ok, _ := l.allow(t0); !ok {
			t.Fatalf("message %d of a burst of 3 held back", i+1)
		}
	}
	for range 5 {
		if ok, _ := l.allow(t0.Add(500 * time.Millisecond)); ok {
			t.Fatal("a message beyond the burst passed")
		}
	}
	ok, suppressed := l.allow(t0.Add(1100 * time.Millisecond))
	if !ok || suppressed != 5 {
		t.Fatalf("after a period: %v, %d held back; want a pass reporting 5", ok, suppressed)
	}
}
