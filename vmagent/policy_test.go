package vmagent

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/commands"
	"github.com/zbridge/zbridge/commands/cmdpattern"
	"github.com/zbridge/zbridge/gateway/store/memstore"
	"github.com/zbridge/zbridge/vmagent/zvmsim"
)

const samplePolicy = `# The operator's read-only view, and two guests it may restart.
allow QUERY **
allow Q*Y CPLEVEL
	allow	 MSG OPERATOR **
allow XAUTOLOG LINUX0?
deny FORCE LINUX01
allow FORCE LINUX0?
deny SIGNAL **
default deny
special %
`

func mustPolicy(t testing.TB, text string) *Policy {
	t.Helper()
	p, err := ParsePolicy(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParsePolicy(t *testing.T) {
	p := mustPolicy(t, samplePolicy)
	want := []Rule{
		{Allow, "QUERY **", 2}, {Allow, "Q*Y CPLEVEL", 3}, {Allow, "MSG OPERATOR **", 4},
		{Allow, "XAUTOLOG LINUX0?", 5}, {Deny, "FORCE LINUX01", 6}, {Allow, "FORCE LINUX0?", 7}, {Deny, "SIGNAL **", 8},
	}
	if !reflect.DeepEqual(p.Rules, want) || p.Default != Deny || p.Special != "%" {
		t.Fatalf("ParsePolicy = %+v", p)
	}
	again := mustPolicy(t, p.String())
	for i := range again.Rules {
		again.Rules[i].Line = want[i].Line
	}
	if !reflect.DeepEqual(again.Rules, p.Rules) || again.Default != p.Default || again.Special != p.Special {
		t.Errorf("ParsePolicy(String()) = %+v, want %+v", again, p)
	}
	if p := mustPolicy(t, "# nothing\n"); p.Default != Deny || len(p.Rules) != 0 {
		t.Errorf("an empty policy: %+v, want default deny and no rules", p)
	}
}

func TestPolicyDecide(t *testing.T) {
	p := mustPolicy(t, samplePolicy)
	for _, tt := range []struct {
		name, cmd string
		want      Action
		line      int    // the deciding rule's line; 0 for the default or a refusal
		words     string // the command as matched
		refused   string // part of the refusal, if refused before the rules
	}{
		{"query", "QUERY NAMES", Allow, 2, "QUERY NAMES", ""},
		{"query abbreviated", "Q N", Allow, 2, "QUERY N", ""},
		{"query lower case", "q names", Allow, 2, "QUERY names", ""},
		{"query alone", "query", Allow, 2, "QUERY", ""},
		{"query with CP", "CP Q N", Allow, 2, "QUERY N", ""},
		{"query blanks", "  Q   N  ", Allow, 2, "QUERY N", ""},
		{"not query", "QUERYX N", Deny, 0, "QUERYX N", ""},
		{"msg synonym", "M OPERATOR hi there", Allow, 4, "MESSAGE OPERATOR hi there", ""},
		{"msg full", "MESSAGE operator hi", Allow, 4, "MESSAGE operator hi", ""},
		{"msg someone else", "MSG LINUX01 hi", Deny, 0, "MESSAGE LINUX01 hi", ""},
		{"xautolog", "XAUTOLOG LINUX02", Allow, 5, "XAUTOLOG LINUX02", ""},
		{"xautolog abbreviated", "xautol linux02", Allow, 5, "XAUTOLOG linux02", ""},
		{"xautolog below the minimum", "XAUTO LINUX02", Deny, 0, "XAUTO LINUX02", ""},
		{"force denied", "FORCE LINUX01", Deny, 6, "FORCE LINUX01", ""},
		{"force denied lower case", "force linux01", Deny, 6, "FORCE linux01", ""},
		{"force denied through CP", "CP FORCE LINUX01", Deny, 6, "FORCE LINUX01", ""},
		{"force denied through CP CP", "cp Cp FORCE LINUX01", Deny, 6, "FORCE LINUX01", ""},
		{"force allowed", "FORCE LINUX02", Allow, 7, "FORCE LINUX02", ""},
		{"force operand abbreviated is still denied", "FORCE LINUX0", Deny, 6, "FORCE LINUX0", ""},
		{"force with more operands", "FORCE LINUX01 IMMED", Deny, 0, "FORCE LINUX01 IMMED", ""},
		{"signal abbreviated is denied", "SIG SHUTDOWN", Deny, 8, "SIG SHUTDOWN", ""},
		{"shutdown", "SHUTDOWN", Deny, 0, "SHUTDOWN", ""},
		{"line end", "Q N#FORCE LINUX01", Deny, 0, "", `"#", CP's logical line end, which would make the line several commands (send one CP command at a time) at offset 3`},
		{"CP escape", "#CP FORCE LINUX01", Deny, 0, "", `"#", CP's logical line end`},
		{"character delete", "Q N FORCE@@@@@@@@@FORCE LINUX01", Deny, 0, "", `"@", CP's logical character delete`},
		{"escape", `FORC"E LINUX01`, Deny, 0, "", `CP's logical escape`},
		{"special", "Q N%FORCE LINUX01", Deny, 0, "", `"%", a line editing character of this console`},
		{"line delete", "Q N\u00a2FORCE LINUX01", Deny, 0, "", "only printable ASCII"},
		{"tab", "Q\tN", Deny, 0, "", "only printable ASCII"},
		{"newline", "Q N\nFORCE LINUX01", Deny, 0, "", "only printable ASCII"},
		{"nul", "Q N\x00", Deny, 0, "", "only printable ASCII"},
		{"del", "Q N\x7f", Deny, 0, "", "only printable ASCII"},
		{"empty", "   ", Deny, 0, "", "empty command"},
		{"only CP", "CP", Deny, 0, "", "empty command"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := p.Decide(tt.cmd)
			line := 0
			if d.Rule != nil {
				line = d.Rule.Line
			}
			if d.Action != tt.want || line != tt.line || strings.Join(d.Words, " ") != tt.words {
				t.Errorf("Decide(%q) = %v by line %d on %q, want %v by line %d on %q", tt.cmd, d.Action, line, d.Words, tt.want, tt.line, tt.words)
			}
			if !strings.Contains(d.Refused, tt.refused) || (tt.refused == "") != (d.Refused == "") {
				t.Errorf("Decide(%q) refused %q, want %q", tt.cmd, d.Refused, tt.refused)
			}
		})
	}
	// Without the rules, the command names are taken as CP takes them.
	p = mustPolicy(t, "default allow\ndeny FORCE **\ndeny XAUTOLOG **\ndeny MESSAGE **\ndeny LOGOFF\n")
	for _, cmd := range []string{"FORCE X", "CP FORCE X", "XAUTOLOG X", "XAUTOL X", "XAUTO X", "M X hi", "MSG X hi", "MES X hi",
		"LOG", "logoff", "LOGOUT", "F X"} {
		if d := p.Decide(cmd); d.Action != Deny || d.Rule == nil {
			t.Errorf("default allow with deny rules: Decide(%q) = %v by %+v on %q, want denied by a rule", cmd, d.Action, d.Rule, d.Words)
		}
	}
	for _, cmd := range []string{"Q N", "W X hi", "DISC", "SET RUN ON"} {
		if d := p.Decide(cmd); d.Action != Allow {
			t.Errorf("default allow with deny rules: Decide(%q) = %v by %+v, want allowed", cmd, d.Action, d.Rule)
		}
	}
}

func TestPolicyCheck(t *testing.T) {
	p := mustPolicy(t, "allow QUERY **\ndeny FORCE LINUX01\n")
	for _, tt := range []struct {
		cmd, code, msg string
	}{
		{"Q N", "", ""},
		{"FORCE LINUX01", commands.CodeNotPermitted, `not permitted: "FORCE LINUX01" is denied by the policy (line 2)`},
		{"FORCE LINUX02", commands.CodeNotPermitted, `not permitted: no policy rule allows "FORCE LINUX02"`},
		{"Q N#FORCE X", commands.CodeNotPermitted, `not permitted: "#", CP's logical line end, which would make the line several commands (send one CP command at a time) at offset 3`},
		{"", commands.CodeBadRequest, "empty CP command"},
	} {
		ce := p.Check(tt.cmd)
		switch {
		case tt.code == "" && ce != nil:
			t.Errorf("Check(%q) = %v, want nil", tt.cmd, ce)
		case tt.code != "" && (ce == nil || ce.Code != tt.code || ce.Message != tt.msg):
			t.Errorf("Check(%q) = %+v, want %s %q", tt.cmd, ce, tt.code, tt.msg)
		}
	}
	p.Rules = append(p.Rules, Rule{Action: Deny, Pattern: "SET **"}) // built in Go: no line
	if ce := p.Check("SET RUN ON"); ce == nil || ce.Message != `not permitted: "SET RUN ON" is denied by the policy` {
		t.Errorf("Check by a rule built in Go = %+v", ce)
	}
	var none *Policy
	if ce := none.Check("FORCE LINUX01"); ce != nil || none.Decide("FORCE LINUX01").Action != Allow {
		t.Errorf("a nil Policy refused: %v", ce)
	}
	if ce := (&Policy{}).Check("Q N"); ce == nil {
		t.Error("the zero Policy allows: it must fail closed")
	}
}

// TestPolicyRulesChanged: a rule changed after ParsePolicy is matched as it
// is now, and one that cannot be used fails closed.
func TestPolicyRulesChanged(t *testing.T) {
	p := mustPolicy(t, "allow QUERY **\n")
	p.Rules[0].Pattern = "MSG **"
	if p.Decide("Q N").Action != Deny || p.Decide("M OP hi").Action != Allow {
		t.Error("a changed rule is matched as it was")
	}
	p = mustPolicy(t, "default allow\nallow FORCE **\n")
	p.Rules[0].Action = Deny
	if p.Decide("FORC X").Action != Deny {
		t.Error("a rule turned from allow to deny does not match abbreviations")
	}
	p = &Policy{Rules: []Rule{{Allow, "QUERY#X", 0}}, Default: Deny}
	if d := p.Decide("QUERY"); d.Action != Deny || d.Rule != nil {
		t.Errorf("an unusable allow rule matched: %+v", d)
	}
	p = &Policy{Rules: []Rule{{Deny, "QUERY#X", 0}}, Default: Allow}
	if d := p.Decide("MSG OP hi"); d.Action != Deny || d.Rule == nil {
		t.Errorf("an unusable deny rule did not deny: %+v", d)
	}
	if _, err := p.clone(); !errors.Is(err, ErrPolicy) {
		t.Errorf("clone of a policy with an unusable rule: %v", err)
	}
	if _, err := (&Policy{Special: "a b"}).clone(); !errors.Is(err, ErrPolicy) {
		t.Errorf("clone of a policy with a bad Special: %v", err)
	}
}

func TestParsePolicyErrors(t *testing.T) {
	for _, tt := range []struct {
		name, text string
		line       int
		msg        string
	}{
		{"unknown directive", "allow Q\nshell yes\n", 2, `unknown directive "shell"`},
		{"allow without pattern", "\nallow\n", 2, "allow needs a pattern"},
		{"line end in pattern", "allow Q N#FORCE\n", 1, `at offset 3: "#": no CP command holds it`},
		{"at in pattern", "deny FORC@E\n", 1, `"@"`},
		{"not ASCII", "allow Q \u00a2\n", 1, "no CP command holds it"},
		{"only CP", "allow CP\n", 1, "no command"},
		{"too many words", "deny Q" + strings.Repeat(" x", 64) + "\n", 1, "more than 64 words"},
		{"default value", "default permit\n", 1, "want allow or deny"},
		{"default twice", "default deny\n\ndefault allow\n", 3, "given twice (first on line 1)"},
		{"special blank", "special\n", 1, "special needs a value"},
		{"special not ASCII", "special \u00a2\n", 1, "printable ASCII"},
		{"long line", "allow " + strings.Repeat("x", maxPolicyLine) + "\n", 1, "longer than"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePolicy(strings.NewReader(tt.text))
			var pe *PolicyError
			if !errors.As(err, &pe) || !errors.Is(err, ErrPolicy) {
				t.Fatalf("ParsePolicy(%q) = %v, want a *PolicyError", tt.text, err)
			}
			if pe.Line != tt.line || !strings.Contains(pe.Msg, tt.msg) {
				t.Errorf("error %q: want line %d and %q", err, tt.line, tt.msg)
			}
		})
	}
}

func TestLoadPolicy(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "policy")
	os.WriteFile(path, []byte("allow Q **\nbogus\n"), 0o644)
	if _, err := LoadPolicy(path); err == nil || !strings.Contains(err.Error(), path+":2:") {
		t.Errorf("LoadPolicy = %v, want an error naming %s:2", err, path)
	}
	if _, err := LoadPolicy(filepath.Join(dir, "missing")); !errors.Is(err, ErrPolicy) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadPolicy(missing) = %v", err)
	}
	os.WriteFile(path, []byte(samplePolicy), 0o644)
	if p, err := LoadPolicy(path); err != nil || len(p.Rules) != 7 {
		t.Errorf("LoadPolicy = %+v, %v", p, err)
	}
}

func TestNewRefusesBadPolicy(t *testing.T) {
	sp, err := OpenSpool(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	bad := &Policy{Rules: []Rule{{Allow, "Q N#X", 0}}}
	if _, err := New(Config{VMMon: "127.0.0.1:1", System: "VMSYS1", Spool: sp, Logger: quiet(), Policy: bad}, lineConsole{}); !errors.Is(err, ErrPolicy) {
		t.Errorf("New with an unusable policy rule: %v, want ErrPolicy", err)
	}
	// New copies the policy: changing it afterwards changes nothing.
	p := mustPolicy(t, "allow QUERY **\n")
	a, err := New(Config{VMMon: "127.0.0.1:1", System: "VMSYS1", Spool: sp, Logger: quiet(), Policy: p}, lineConsole{})
	if err != nil {
		t.Fatal(err)
	}
	p.Rules[0].Action, p.Default = Deny, Allow
	if a.cfg.Policy.Check("Q N") != nil || a.cfg.Policy.Check("FORCE X") == nil {
		t.Error("the agent's policy changed with the caller's")
	}
}

func FuzzPolicyDecide(f *testing.F) {
	for _, cmd := range []string{"Q N", "q names", "CP FORCE LINUX01", "Q N#FORCE LINUX01", "#CP FORCE X", "FORCF@E LINUX01",
		`FORC"E LINUX01`, "M OPERATOR hi", "XAUTOL LINUX02", "SIG SHUTDOWN", "Q N\u00a2FORCE X", "QUERY CPLEVEL"} {
		f.Add(samplePolicy, cmd)
	}
	f.Add("default allow\ndeny FORCE **\n", "FORCE LINUX01")
	f.Fuzz(func(t *testing.T, text, cmd string) {
		p, err := ParsePolicy(strings.NewReader(text))
		if err != nil {
			var pe *PolicyError
			if !errors.As(err, &pe) || pe.Line < 1 {
				t.Fatalf("ParsePolicy(%q): %v is not a *PolicyError with a line", text, err)
			}
			return
		}
		again, err := ParsePolicy(strings.NewReader(p.String()))
		if err != nil || len(again.Rules) != len(p.Rules) || again.Default != p.Default || again.Special != p.Special {
			t.Fatalf("ParsePolicy(%q) ok, its String %q gives %+v, %v", text, p.String(), again, err)
		}
		d := p.Decide(cmd)
		if d.Action != Allow {
			if ce := p.Check(cmd); ce == nil || (ce.Code != commands.CodeNotPermitted && ce.Code != commands.CodeBadRequest) || ce.Message == "" {
				t.Fatalf("Decide(%q) denies but Check says %+v", cmd, ce)
			}
			return
		}
		// An allowed command is one line CP reads as written.
		for i := 0; i < len(cmd); i++ {
			if c := cmd[i]; c < 0x20 || c > 0x7e || strings.IndexByte(cmdpattern.CPSpecial+p.Special, c) >= 0 {
				t.Fatalf("Decide(%q) allows a command holding %q", cmd, c)
			}
		}
		if p.Check(cmd) != nil {
			t.Fatalf("Decide(%q) allows but Check refuses", cmd)
		}
	})
}

// syncBuffer is a bytes.Buffer safe for the simulator's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestPolicyAgainstSimulator sends commands from a region through VMMON to
// an agent typing on the z/VM simulator's console: the policy's refusals
// are answered not-permitted and never reach CP (the guest stays logged
// on, the simulator logs no FORCE), while the commands it allows run.
func TestPolicyAgainstSimulator(t *testing.T) {
	simLog := &syncBuffer{}
	logger := logrus.New()
	logger.SetOutput(simLog)
	sim, err := zvmsim.New(zvmsim.Config{System: "VMSYS1", Password: consolePassword, Autolog: []string{"LINUX01", "LINUX02"},
		MoreDelay: 30 * time.Second, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go sim.Serve(l)
	t.Cleanup(func() { sim.Close() })
	sc := startScraper(t, l.Addr().String(), "operator", consolePassword)

	r := startRegion(t, memstore.New(memstore.Config{}), "")
	sp, err := OpenSpool(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	policy := mustPolicy(t, "allow QUERY **\nallow FORCE LINUX02\ndefault deny\n")
	a, err := New(Config{VMMon: r.ln.Addr().String(), System: "VMSYS1", Spool: sp, Logger: quiet(), Heartbeat: time.Second,
		ReconnectMin: 50 * time.Millisecond, ReconnectMax: 200 * time.Millisecond, Policy: policy}, sc.sc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; sp.Close() })
	sc.ready(t)
	deadline := time.Now().Add(20 * time.Second)
	for len(r.srv.Systems()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the agent never logged on to the region")
		}
		time.Sleep(20 * time.Millisecond)
	}
	router := commands.NewRouter(commands.Config{Executors: map[commands.Kind]commands.Executor{commands.KindZVM: r.srv}})
	tgt, err := commands.ParseTarget("zvm:vmsys1")
	if err != nil {
		t.Fatal(err)
	}
	run := func(cmd string) ([]string, commands.Result, error) {
		var lines []string
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		res, err := router.Run(ctx, &commands.Request{Target: tgt, Command: cmd}, func(o commands.Output) {
			lines = append(lines, string(o.Data))
		})
		return lines, res, err
	}
	loggedOn := func(user string) bool { return slices.Contains(sim.LoggedOn(), user) }

	// Q N is typed and CP answers it (the simulator takes NAMES only from
	// NAM on, so it answers an error message; either way CP had it).
	lines, _, err := run("Q N")
	if err != nil || len(lines) == 0 {
		t.Fatalf("Q N: %v, lines %q; want CP's answer", err, lines)
	}
	lines, res, err := run("q names")
	if err != nil || res.RC != 0 || !strings.Contains(strings.Join(lines, "\n"), "LINUX01") {
		t.Fatalf("q names: %v rc %d lines %q; want the names, LINUX01 among them", err, res.RC, lines)
	}
	for _, tt := range []struct{ cmd, msg string }{
		{"FORCE LINUX01", `not permitted: no policy rule allows "FORCE LINUX01"`},
		{"Q N#FORCE LINUX01", `CP's logical line end`},
		{"#CP FORCE LINUX01", `CP's logical line end`},
		{"CP FORCE LINUX01", `not permitted: no policy rule allows "FORCE LINUX01"`},
		{"FORCF@E LINUX01", `CP's logical character delete`},
	} {
		lines, _, err := run(tt.cmd)
		var ce *commands.Error
		if !errors.As(err, &ce) || ce.Code != commands.CodeNotPermitted || !strings.Contains(ce.Message, tt.msg) || len(lines) != 0 {
			t.Errorf("%s: %v, lines %q; want not-permitted saying %q and no output", tt.cmd, err, lines, tt.msg)
		}
	}
	// What the policy allows reaches CP: FORCE LINUX02 logs it off, which
	// shows the simulator would have told had a refused FORCE reached it.
	if _, res, err := run("FORCE LINUX02"); err != nil || res.RC != 0 {
		t.Fatalf("FORCE LINUX02: %v rc %d", err, res.RC)
	}
	deadline = time.Now().Add(20 * time.Second)
	for loggedOn("LINUX02") || !strings.Contains(simLog.String(), "user=LINUX02") {
		if time.Now().After(deadline) {
			t.Fatalf("the allowed FORCE LINUX02 did not log LINUX02 off; logged on: %q", sim.LoggedOn())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !loggedOn("LINUX01") {
		t.Errorf("LINUX01 was forced off: a refused command reached CP; logged on: %q", sim.LoggedOn())
	}
	for _, l := range strings.Split(simLog.String(), "\n") {
		if strings.Contains(l, "msg=FORCE") && strings.Contains(l, "user=LINUX01") {
			t.Errorf("the simulator logged a FORCE of LINUX01: %s", l)
		}
	}
}
