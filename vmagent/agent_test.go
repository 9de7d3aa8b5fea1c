package vmagent

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/commands"
	"github.com/zbridge/zbridge/gateway/store/memstore"
	"github.com/zbridge/zbridge/gateway/vmmon"
	"github.com/zbridge/zbridge/protocol"
)

func quiet() logrus.FieldLogger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}

// lineConsole answers CP commands from a table, as a console would.
type lineConsole map[string][]string

func (c lineConsole) Run(ctx context.Context, cmd string, out func(string)) (int, error) {
	lines, ok := c[strings.ToUpper(cmd)]
	if !ok {
		out("HCPCMD001E Unknown CP command: " + strings.Fields(cmd)[0])
		return 1, nil
	}
	for _, l := range lines {
		out(l)
	}
	return 0, nil
}

// region is a VMMON server over a store, listening on addr (or a new port).
type region struct {
	st  *memstore.Store
	srv *vmmon.Server
	ln  net.Listener
	out chan error
}

func startRegion(t *testing.T, st *memstore.Store, addr string) *region {
	t.Helper()
	srv, err := vmmon.New(vmmon.Config{Store: st, Logger: quiet(), Session: vmmonSession()})
	if err != nil {
		t.Fatal(err)
	}
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	for i := 0; ; i++ { // the old listener's port may take a moment to free
		ln, err = net.Listen("tcp", addr)
		if err == nil || i > 50 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	r := &region{st: st, srv: srv, ln: ln, out: make(chan error, 1)}
	go func() { r.out <- srv.Serve(ln); close(r.out) }()
	t.Cleanup(func() { srv.Close(); <-r.out })
	return r
}

func startAgent(t *testing.T, addr, dir string, console Console) (*Agent, *Spool, context.CancelFunc) {
	t.Helper()
	sp, err := OpenSpool(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Config{VMMon: addr, System: "VMSYS1", Spool: sp, Logger: quiet(), Heartbeat: time.Second,
		ReconnectMin: 50 * time.Millisecond, ReconnectMax: 200 * time.Millisecond}, console)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx); close(done) }()
	stop := func() { cancel(); <-done; sp.Close() }
	t.Cleanup(stop)
	return a, sp, stop
}

func consoleLine(i int) *protocol.Event {
	return &protocol.Event{Source: protocol.SourceZVMConsole, Type: "CP", Text: fmt.Sprintf("console line %d", i),
		Severity: protocol.SevInfo, Parsed: true, Time: time.Now().UTC()}
}

func waitStored(t *testing.T, st *memstore.Store, n int) []*protocol.Event {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		evs, _, _ := st.Read(context.Background(), protocol.ID{}, 100000, nil)
		if len(evs) >= n || time.Now().After(deadline) {
			return evs
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func checkLines(t *testing.T, evs []*protocol.Event, n int) {
	t.Helper()
	if len(evs) != n {
		t.Fatalf("stored %d events, want %d", len(evs), n)
	}
	for i, e := range evs {
		if want := fmt.Sprintf("console line %d", i); e.Text != want {
			t.Fatalf("event %d = %q, want %q (order or duplicates)", i, e.Text, want)
		}
		if e.Origin.System != "VMSYS1" || e.Source != protocol.SourceZVMConsole {
			t.Fatalf("event %d: system %q source %q", i, e.Origin.System, e.Source)
		}
	}
}

func TestEventsReachRegionOnce(t *testing.T) {
	r := startRegion(t, memstore.New(memstore.Config{}), "")
	_, sp, _ := startAgent(t, r.ln.Addr().String(), t.TempDir(), lineConsole{})
	for i := 0; i < 1000; i++ {
		if err := sp.Add(consoleLine(i)); err != nil {
			t.Fatal(err)
		}
	}
	checkLines(t, waitStored(t, r.st, 1000), 1000)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if n, _, acked, _ := sp.Stats(); n == 0 && acked == 1000 {
			break
		}
		if time.Now().After(deadline) {
			n, _, acked, _ := sp.Stats()
			t.Fatalf("spool still holds %d events, acked %d", n, acked)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSpoolWhileRegionAway: the region goes away while the console keeps
// producing; when a region is back on the same address every line arrives,
// in order, and none twice.
func TestSpoolWhileRegionAway(t *testing.T) {
	st := memstore.New(memstore.Config{})
	r := startRegion(t, st, "")
	addr := r.ln.Addr().String()
	_, sp, _ := startAgent(t, addr, t.TempDir(), lineConsole{})
	for i := 0; i < 300; i++ {
		sp.Add(consoleLine(i))
	}
	waitStored(t, st, 300)
	r.srv.Close() // the region dies
	<-r.out
	for i := 300; i < 600; i++ {
		sp.Add(consoleLine(i))
	}
	if n, _, _, _ := sp.Stats(); n < 300 {
		t.Fatalf("only %d events spooled while the region was away", n)
	}
	startRegion(t, st, addr) // back, same store (as Redis would keep it)
	checkLines(t, waitStored(t, st, 600), 600)
}

// TestSpoolSurvivesAgentRestart: events spooled by one agent process are
// sent by the next one started on the same spool.
func TestSpoolSurvivesAgentRestart(t *testing.T) {
	dir := t.TempDir()
	sp, err := OpenSpool(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		sp.Add(consoleLine(i))
	}
	sp.Ack(20) // sequences start at 1: lines 0..19 were stored
	sp.Close()
	r := startRegion(t, memstore.New(memstore.Config{}), "")
	_, sp2, _ := startAgent(t, r.ln.Addr().String(), dir, lineConsole{})
	for i := 50; i < 60; i++ {
		sp2.Add(consoleLine(i))
	}
	evs := waitStored(t, r.st, 40)
	if len(evs) != 40 || evs[0].Text != "console line 20" || evs[39].Text != "console line 59" {
		t.Fatalf("after restart: %d events, first %q", len(evs), evs[0].Text)
	}
}

func TestSpoolBoundedAndSaysSo(t *testing.T) {
	sp, err := OpenSpool(t.TempDir(), 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	for i := 0; i < 100; i++ {
		sp.Add(consoleLine(i))
	}
	n, bytes, _, dropped := sp.Stats()
	if bytes > 4096 || dropped == 0 || n == 0 {
		t.Fatalf("spool of 4096 bytes holds %d events, %d bytes, dropped %d", n, bytes, dropped)
	}
	evs, first, _ := sp.Pending(0, 1000)
	sp.Ack(first + uint64(len(evs)) - 1)
	sp.Add(consoleLine(1000))
	evs, _, _ = sp.Pending(0, 1000)
	if len(evs) != 2 || evs[0].MsgID != "ZBRVMA001W" || !strings.Contains(evs[0].Text, "lost") || evs[1].Text != "console line 1000" {
		t.Fatalf("after room was made: %d events, first %+v", len(evs), evs[0])
	}
}

func TestCommandsThroughVMMON(t *testing.T) {
	st := memstore.New(memstore.Config{})
	r := startRegion(t, st, "")
	startAgent(t, r.ln.Addr().String(), t.TempDir(), lineConsole{
		"QUERY TIME": {"TIME IS 13:02:41 UTC SUNDAY 11/22/26", "CONNECT= 00:01:02 VIRTCPU= 000:00.01 TOTCPU= 000:00.02"},
	})
	router := commands.NewRouter(commands.Config{Executors: map[commands.Kind]commands.Executor{commands.KindZVM: r.srv}})
	deadline := time.Now().Add(10 * time.Second)
	for len(r.srv.Systems()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the agent never logged on")
		}
		time.Sleep(20 * time.Millisecond)
	}
	var lines []string
	run := func(cmd string) (commands.Result, error) {
		lines = nil
		tgt, _ := commands.ParseTarget("zvm:vmsys1")
		return router.Run(context.Background(), &commands.Request{Target: tgt, Command: cmd}, func(o commands.Output) {
			lines = append(lines, string(o.Data))
		})
	}
	res, err := run("query time")
	if err != nil || res.RC != 0 || len(lines) != 2 || !strings.HasPrefix(lines[0], "TIME IS") {
		t.Fatalf("QUERY TIME: %v rc %d lines %q", err, res.RC, lines)
	}
	res, err = run("FOO")
	if err != nil || res.RC == 0 || len(lines) != 1 || !strings.HasPrefix(lines[0], "HCPCMD001E") {
		t.Fatalf("unknown command: %v rc %d lines %q", err, res.RC, lines)
	}
	_, err = run(strings.Repeat("Q ", 121))
	if ce, ok := err.(*commands.Error); !ok || ce.Code != commands.CodeBadRequest {
		t.Fatalf("a 242-character CP command: %v, want bad-request", err)
	}
	tgt, _ := commands.ParseTarget("zvm:OTHER")
	_, err = router.Run(context.Background(), &commands.Request{Target: tgt, Command: "Q TIME"}, func(commands.Output) {})
	if ce, ok := err.(*commands.Error); !ok || ce.Code != commands.CodeUnknown {
		t.Fatalf("unknown system: %v, want unknown-target", err)
	}
}

func TestSecondAgentForSystemRefused(t *testing.T) {
	r := startRegion(t, memstore.New(memstore.Config{}), "")
	startAgent(t, r.ln.Addr().String(), t.TempDir(), lineConsole{})
	deadline := time.Now().Add(10 * time.Second)
	for len(r.srv.Systems()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the first agent never logged on")
		}
		time.Sleep(20 * time.Millisecond)
	}
	c, err := net.Dial("tcp", r.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, `{"type":"logon","req":1,"client":"vmsys1","version":1}`+"\n")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var f protocol.Frame
	if err := protocol.NewReader(c, 0).Next(&f); err != nil {
		t.Fatal(err)
	}
	if f.Type != protocol.TypeRefuse || f.Reason != protocol.RefuseInUse || !strings.Contains(f.Message, "VMSYS1") {
		t.Fatalf("second agent for VMSYS1 got %+v, want refuse in-use", f)
	}
}

// TestNewSpoolNotTakenForReplay: an agent that comes back with a new spool
// (its numbering starts at 1 again) has its events stored, not dropped as
// replays of the old spool's.
func TestNewSpoolNotTakenForReplay(t *testing.T) {
	r := startRegion(t, memstore.New(memstore.Config{}), "")
	_, sp, stop := startAgent(t, r.ln.Addr().String(), t.TempDir(), lineConsole{})
	for i := 0; i < 10; i++ {
		sp.Add(consoleLine(i))
	}
	waitStored(t, r.st, 10)
	stop()
	_, sp2, _ := startAgent(t, r.ln.Addr().String(), t.TempDir(), lineConsole{})
	for i := 10; i < 15; i++ {
		sp2.Add(consoleLine(i))
	}
	checkLines(t, waitStored(t, r.st, 15), 15)
}

// TestNewRefusesNoAddress: a VMMon list that names no address (blank
// entries only) is refused by New, not a panic in Run.
func TestNewRefusesNoAddress(t *testing.T) {
	sp, err := OpenSpool(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	for _, vmmon := range []string{"", ",", " , ", "\t", " ,\t, "} {
		a, err := New(Config{VMMon: vmmon, System: "VMSYS1", Spool: sp, Logger: quiet()}, lineConsole{})
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			func() {
				defer func() {
					if p := recover(); p != nil {
						t.Errorf("VMMon %q: New accepted it and Run panicked: %v", vmmon, p)
					}
				}()
				a.Run(ctx)
			}()
			cancel()
			t.Errorf("VMMon %q accepted", vmmon)
		}
	}
}
