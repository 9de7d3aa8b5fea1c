package region

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/zbridge/zbridge/gateway/agentssh"
	"github.com/zbridge/zbridge/gateway/store/memstore"
	"github.com/zbridge/zbridge/internal/peer"
	"github.com/zbridge/zbridge/protocol"
	"github.com/zbridge/zbridge/zos"
)

// countMessages counts the region's messages in st by ID, and checks that
// each matches its catalogue entry's layout.
func countMessages(t *testing.T, st *memstore.Store) map[string]int {
	t.Helper()
	n := map[string]int{}
	for _, e := range regionEvents(t, st) {
		n[e.MsgID]++
		m, ok := zos.Lookup(e.MsgID)
		if !ok {
			t.Errorf("event with msgid %q, which the catalogue lacks: %s", e.MsgID, e.Text)
			continue
		}
		if !m.Pattern().MatchString(e.Text) {
			t.Errorf("%s does not match the catalogue's layout %q", e.Text, m.Text)
		}
	}
	return n
}

// TestAgentMessageLimit checks the bound of the Linux agents' messages:
// of a thousand agents connecting at once, agentMsgBurst are issued one
// by one (ZBR204I) and the rest counted in one ZBR207I; of a thousand
// lost, the same with ZBR205E and ZBR208E, which counts the refused host
// keys held back too; each kind has a limit of its own, so that the
// connections do not hold back a loss; and a summary with nothing held
// back issues nothing.
func TestAgentMessageLimit(t *testing.T) {
	st := memstore.New(memstore.Config{})
	defer st.Close()
	r := &Region{cfg: Config{Name: "ZBR1"}, log: quietLogger(), store: st, agentMsgs: newAgentMsgs(agentMsgBurst, agentMsgEvery)}
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	now := t0
	r.agentMsgs.now = func() time.Time { return now }
	const agents = 1000
	change := func(kind agentssh.ChangeKind, i int, err error) agentssh.Change {
		return agentssh.Change{Kind: kind, Name: fmt.Sprintf("lx%04d", i), Addr: fmt.Sprintf("10.0.%d.%d:7022", i/256, i%256),
			ServerVersion: agentssh.AgentVersionPrefix + "-1.0", Agent: true, HostKeyFingerprint: "SHA256:abc", Err: err}
	}

	// A start: every agent connects within a second.
	for i := range agents {
		now = t0.Add(time.Duration(i) * time.Millisecond)
		r.linuxChanged(change(agentssh.ChangeConnected, i, nil))
	}
	if n := countMessages(t, st); n["ZBR204I"] != agentMsgBurst || n["ZBR207I"] != 0 {
		t.Fatalf("after %d connections: %v; want %d ZBR204I, no summary yet", agents, n, agentMsgBurst)
	}
	r.summarizeAgents(agentssh.Stats{Connected: agents - 10, Down: 10})
	evs := regionEvents(t, st)
	want := fmt.Sprintf("ZBR207I LINUX AGENTS CONNECTED NOT SHOWN: %d BETWEEN 12:00:00.%03d AND 12:00:00.999 UTC; %d OF %d CONNECTED NOW",
		agents-agentMsgBurst, agentMsgBurst, agents-10, agents)
	if last := evs[len(evs)-1]; last.Text != want || last.MsgID != "ZBR207I" || last.Severity != protocol.SevInfo {
		t.Errorf("summary: %q (%s, %v); want %q, information", last.Text, last.MsgID, last.Severity, want)
	}
	if !strings.HasPrefix(evs[0].Text, "ZBR204I LINUX AGENT lx0000 AT 10.0.0.0:7022 CONNECTED: SSH-2.0-zbridge-linuxagent") {
		t.Errorf("first message %q", evs[0].Text)
	}

	// The network fails: every agent is lost, and 15 are refused for
	// their host key when they are redialled; a minute later, one more
	// is lost.
	t1 := t0.Add(time.Minute)
	for i := range agents {
		now = t1.Add(time.Duration(i) * time.Millisecond)
		r.linuxChanged(change(agentssh.ChangeLost, i, errors.New("connection lost: EOF")))
	}
	for i := range 15 {
		now = t1.Add(2 * time.Second)
		r.linuxChanged(change(agentssh.ChangeRefused, i, fmt.Errorf("%w: presented another key", agentssh.ErrHostKeyMismatch)))
	}
	now = t1.Add(time.Minute)
	r.linuxChanged(change(agentssh.ChangeLost, agents, errors.New("connection lost: EOF")))
	n := countMessages(t, st)
	if n["ZBR205E"] != agentMsgBurst+1 || n["ZBR206E"] != agentMsgBurst || n["ZBR208E"] != 0 {
		t.Fatalf("after %d losses and 15 refusals: %v; want %d ZBR205E, %d ZBR206E, no summary yet", agents, n, agentMsgBurst+1, agentMsgBurst)
	}
	r.summarizeAgents(agentssh.Stats{Connecting: 10, Down: agents - 10})
	evs = regionEvents(t, st)
	want = fmt.Sprintf("ZBR208E LINUX AGENTS LOST OR REFUSED NOT SHOWN: %d LOST, 5 REFUSED BETWEEN 12:01:00.%03d AND 12:01:02.000 UTC; 0 OF %d CONNECTED NOW",
		agents-agentMsgBurst, agentMsgBurst, agents)
	if last := evs[len(evs)-1]; last.Text != want || last.Severity != protocol.SevWarning {
		t.Errorf("summary: %q (%v); want %q, warning", last.Text, last.Severity, want)
	}
	for _, e := range evs {
		if e.MsgID != "ZBR205E" {
			continue
		}
		if want := "ZBR205E LINUX AGENT lx0000 AT 10.0.0.0:7022 LOST: connection lost: EOF"; e.Text != want {
			t.Errorf("first ZBR205E %q; want %q", e.Text, want)
		}
		break
	}

	// Nothing held back since: no summary.
	before := len(evs)
	r.summarizeAgents(agentssh.Stats{Connected: agents})
	if evs := regionEvents(t, st); len(evs) != before {
		t.Errorf("a summary with nothing held back issued %q", evs[len(evs)-1].Text)
	}
	if n := countMessages(t, st); n["ZBR207I"] != 1 || n["ZBR208E"] != 1 {
		t.Errorf("summaries: %v; want one ZBR207I and one ZBR208E", n)
	}
}

// startRegionSSHD runs OpenSSH sshd on a free loopback port with a new
// host key at hostKey, authorizing the key line authorized for the user
// running the test, and returns it and its address.
func startRegionSSHD(t *testing.T, dir, hostKey, authorized string) (*peer.Process, string) {
	t.Helper()
	sshd := peer.Require(t, "sshd")
	newHostKey(t, hostKey)
	ak := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(ak, []byte(authorized), 0o600); err != nil {
		t.Fatal(err)
	}
	port := peer.FreePort(t)
	conf := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("ListenAddress 127.0.0.1\nPort %d\nHostKey %s\nPidFile %s\n"+
		"AuthorizedKeysFile %s\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"+
		"PermitRootLogin prohibit-password\n", port, hostKey, filepath.Join(dir, "sshd.pid"), ak)), 0o600); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll("/run/sshd", 0o755) // its privilege-separation directory, as root
	addr := peer.Addr(port)
	return peer.Start(t, peer.Command{Name: "sshd", Path: sshd, Args: []string{"-D", "-e", "-f", conf}, Ready: peer.TCPReady(addr)}), addr
}

// newHostKey makes a new ed25519 key pair at path (replacing any) with
// ssh-keygen and returns its SHA256 fingerprint.
func newHostKey(t *testing.T, path string) string {
	t.Helper()
	keygen := peer.Require(t, "ssh-keygen")
	os.Remove(path)
	os.Remove(path + ".pub")
	if out, err := exec.Command(keygen, "-q", "-t", "ed25519", "-N", "", "-f", path).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	pub, err := os.ReadFile(path + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	key, _, _, _, err := ssh.ParseAuthorizedKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return ssh.FingerprintSHA256(key)
}

// TestLinuxAgentMessages runs a region with a static Linux target served
// by a real OpenSSH sshd: the region issues ZBR204I when it connects, with
// the target's name, address and the server's version; ZBR205E once when
// sshd crashes, not for each failed redial after; ZBR206E when sshd comes
// back with another host key, once; each as a source=region event in the
// catalogue's layout.
func TestLinuxAgentMessages(t *testing.T) {
	dir := t.TempDir()
	keyFile, authorized := regionKey(t, dir)
	hostKey := filepath.Join(dir, "host_ed25519")
	sshd, addr := startRegionSSHD(t, dir, hostKey, authorized)
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	st := memstore.New(memstore.Config{})
	defer st.Close()
	r, err := New(Config{Name: "ZBR1", Store: st, Logger: quietLogger(), SSHKeyFile: keyFile, SSHUser: u.Username,
		KnownHostsFile: filepath.Join(dir, "known_hosts"), AcceptNewHostKeys: true, Linux: []LinuxTarget{{Name: "lx1", Addr: addr}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })

	up := waitMessage(t, st, "ZBR204I", "ZBR204I LINUX AGENT lx1 AT "+addr+" CONNECTED: SSH-2.0-OpenSSH")
	if up.Severity != protocol.SevInfo || up.Origin.System != "ZBR1" || up.Source != protocol.SourceRegion {
		t.Errorf("ZBR204I event: %+v; want severity info, origin ZBR1, source region", up)
	}

	conns := sshd.Descendants() // sshd's sessions of their own (setsid): a crash of the host kills them too
	sshd.Kill()
	peer.SignalAll(t, conns, syscall.SIGKILL)
	lost := waitMessage(t, st, "ZBR205E", "ZBR205E LINUX AGENT lx1 AT "+addr+" LOST: connection lost")
	if lost.Severity != protocol.SevWarning {
		t.Errorf("ZBR205E severity %v; want warning (eventual action)", lost.Severity)
	}
	// Redials fail (connection refused) without a message each.
	failures := r.linux.pool.Stats().DialFailures
	waitUntil(t, 30*time.Second, "two failed redials", func() bool { return r.linux.pool.Stats().DialFailures >= failures+2 })

	// Back with another key: accept-new pinned the name to the first.
	fp := newHostKey(t, hostKey)
	sshd.Restart()
	refused := waitMessage(t, st, "ZBR206E", "ZBR206E LINUX AGENT lx1 AT "+addr+" HOST KEY "+fp+" REFUSED: ")
	if !strings.Contains(refused.Text, "host key mismatch") || refused.Severity != protocol.SevWarning {
		t.Errorf("ZBR206E %q (%v); want the mismatch, severity warning", refused.Text, refused.Severity)
	}
	failures = r.linux.pool.Stats().DialFailures
	waitUntil(t, 30*time.Second, "another refused redial", func() bool { return r.linux.pool.Stats().DialFailures > failures })

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	for _, e := range regionEvents(t, st) {
		t.Log(e.Text)
	}
	n := countMessages(t, st)
	if n["ZBR204I"] != 1 || n["ZBR205E"] != 1 || n["ZBR206E"] != 1 || n["ZBR207I"]+n["ZBR208E"] != 0 {
		t.Errorf("the region's messages: %v; want one each of ZBR204I, ZBR205E and ZBR206E, no summary", n)
	}
}

// regionKey writes a new region private key into dir and returns its
// path and authorized_keys line.
func regionKey(t *testing.T, dir string) (path, authorized string) {
	t.Helper()
	path = filepath.Join(dir, "region_key")
	newHostKey(t, path) // an ed25519 key pair, as ssh-keygen writes it
	pub, err := os.ReadFile(path + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return path, string(pub)
}

// TestAgentMessageHostileText: what an agent's host chooses (its SSH
// version, a disconnect reason of a quarter megabyte) reaches a message
// bounded and on one line: no line break, C1 control, line separator or
// bidirectional control as it was sent.
func TestAgentMessageHostileText(t *testing.T) {
	st := memstore.New(memstore.Config{})
	defer st.Close()
	r := &Region{cfg: Config{Name: "ZBR1"}, log: quietLogger(), store: st, agentMsgs: newAgentMsgs(agentMsgBurst, agentMsgEvery)}
	fake := "\u2028ZBR205E LINUX AGENT PAYROLL AT 10.0.0.9:7022 LOST: EOF\u0085\u202e\r\n"
	r.linuxChanged(agentssh.Change{Kind: agentssh.ChangeConnected, Name: "lx1", Addr: "10.0.0.1:7022", ServerVersion: "SSH-2.0-x" + fake})
	r.linuxChanged(agentssh.Change{Kind: agentssh.ChangeLost, Name: "lx1", Addr: "10.0.0.1:7022",
		Err: fmt.Errorf("ssh: disconnect, reason 11: %s", strings.Repeat("\x01é"+fake, 5000))})
	evs := regionEvents(t, st)
	if len(evs) != 2 {
		t.Fatalf("%d events, want 2", len(evs))
	}
	for _, e := range evs {
		if len(e.Text) > 4*maxPeerText+200 {
			t.Errorf("%s: %d bytes", e.MsgID, len(e.Text))
		}
		for _, c := range e.Text {
			if c < ' ' || c >= 0x7f && c <= 0x9f || c == 0x2028 || c == 0x2029 || c >= 0x202a && c <= 0x202e {
				t.Errorf("%s: %q holds %U", e.MsgID, e.Text, c)
				break
			}
		}
	}
	if want := `ZBR204I LINUX AGENT lx1 AT 10.0.0.1:7022 CONNECTED: "SSH-2.0-x\u2028ZBR205E LINUX AGENT PAYROLL`; !strings.HasPrefix(evs[0].Text, want) {
		t.Errorf("ZBR204I %q, want it to start %q", evs[0].Text, want)
	}
	if want := "ZBR205E LINUX AGENT lx1 AT 10.0.0.1:7022 LOST: \"ssh: disconnect, reason 11: \\x01\\u00e9"; !strings.HasPrefix(evs[1].Text, want) {
		t.Errorf("ZBR205E %q, want it to start %q", evs[1].Text, want)
	}
}
