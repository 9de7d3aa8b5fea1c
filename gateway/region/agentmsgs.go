package region

import (
	"context"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/zbridge/zbridge/gateway/agentssh"
)

// The Linux agents' messages: ZBR204I connected, ZBR205E lost and ZBR206E
// host key refused, issued from the agent pool's OnChange (package
// agentssh tells of a host that cannot be reached, or keeps presenting a
// refused key, once rather than at every redial).
//
// A region may hold ten thousand agents, which connect within seconds of
// its start, and a network failure may lose thousands at once: one event
// each would flood the automation watching the region's messages. So each
// of the three is issued at most agentMsgBurst at once, then one every
// agentMsgEvery (10 a minute, as ZBR203I), and what was held back is
// counted and issued every agentSummaryEvery, and when the region stops,
// as a summary: ZBR207I for connections, ZBR208E for losses and refusals
// (which need the operator; connections do not). The summaries say how
// many agents are connected now; AGENTS lists each, and the agent pool's
// log (component=agents) has a line for every connection and loss.

// Bounds of the Linux agents' messages.
const (
	agentMsgBurst     = limitBurst
	agentMsgEvery     = limitEvery
	agentSummaryEvery = 30 * time.Second
)

// Kinds of the Linux agents' messages, each bounded on its own so that a
// start's connections do not hold back a loss.
const (
	agentConnected = iota
	agentLost
	agentRefused
	agentKinds
)

// agentMsgIDs are the messages of each kind.
var agentMsgIDs = [agentKinds]string{"ZBR204I", "ZBR205E", "ZBR206E"}

// agentMsgs bounds the Linux agents' messages and counts those it held
// back, for the summaries.
type agentMsgs struct {
	now    func() time.Time // the clock; tests set it
	limits [agentKinds]*msgLimit

	mu   sync.Mutex // guards the following fields
	held [agentKinds]int
	// span is when the first and the last message held back since the
	// last summary were: [0] connected, [1] lost and refused.
	span [2][2]time.Time
}

func newAgentMsgs(burst int, every time.Duration) *agentMsgs {
	m := &agentMsgs{now: time.Now}
	for i := range m.limits {
		m.limits[i] = &msgLimit{burst: burst, per: every}
	}
	return m
}

// allow reports whether a message of kind may be issued now; if not, it
// is counted for the next summary.
func (m *agentMsgs) allow(kind int) bool {
	now := m.now()
	if ok, _ := m.limits[kind].allow(now); ok {
		return true
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.held[kind]++
	s := &m.span[min(kind, 1)]
	if s[0].IsZero() {
		s[0] = now
	}
	s[1] = now
	return false
}

// agentSummary is a summary message to issue: its ID and inserts but
// the agents connected now, which the caller knows.
type agentSummary struct {
	id          string
	counts      []int // connected; or lost, refused
	first, last time.Time
}

// take returns the summaries of what was held back since the last call,
// and starts counting afresh.
func (m *agentMsgs) take() []agentSummary {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []agentSummary
	if n := m.held[agentConnected]; n > 0 {
		out = append(out, agentSummary{id: "ZBR207I", counts: []int{n}, first: m.span[0][0], last: m.span[0][1]})
	}
	if lost, refused := m.held[agentLost], m.held[agentRefused]; lost+refused > 0 {
		out = append(out, agentSummary{id: "ZBR208E", counts: []int{lost, refused}, first: m.span[1][0], last: m.span[1][1]})
	}
	m.held = [agentKinds]int{}
	m.span = [2][2]time.Time{}
	return out
}

// linuxChanged is the agent pool's OnChange: it issues the host's
// message, unless its kind's limit holds it back.
func (r *Region) linuxChanged(ch agentssh.Change) {
	var kind int
	var inserts []string
	host := quoteName(ch.Name)
	switch ch.Kind {
	case agentssh.ChangeConnected:
		kind, inserts = agentConnected, []string{host, ch.Addr, peerText(ch.ServerVersion)}
	case agentssh.ChangeLost:
		kind, inserts = agentLost, []string{host, ch.Addr, peerText(errText(ch.Err))}
	case agentssh.ChangeRefused:
		kind, inserts = agentRefused, []string{host, ch.Addr, orDash(ch.HostKeyFingerprint), peerText(errText(ch.Err))}
	default:
		return
	}
	if !r.agentMsgs.allow(kind) {
		return
	}
	r.issue(context.Background(), agentMsgIDs[kind], inserts...)
}

// maxPeerText is the most bytes of a text the agent's host chose (its SSH
// version, a disconnect reason inside an error) that a message carries.
const maxPeerText = 256

// peerText is an insert whose text the agent's host may have chosen: cut
// to maxPeerText bytes (on a character boundary, "..." added) and, when it
// holds anything but printable ASCII, quoted with every other character
// escaped, so that no line break, line or paragraph separator,
// bidirectional control or megabyte of a host's disconnect message reaches
// the region's events and log as it was sent. A printable ASCII text is
// left as it is: it stays on the message's one line.
func peerText(s string) string {
	if len(s) > maxPeerText {
		cut := maxPeerText
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c > '~' {
			return strconv.QuoteToASCII(s)
		}
	}
	return orDash(s)
}

// errText is err's text, or "-" for none.
func errText(err error) string {
	if err == nil {
		return "-"
	}
	return orDash(err.Error())
}

// orDash is s, or "-" when it is empty: an insert is never empty.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// summarizeAgents issues the summaries of the Linux agents' messages held
// back since the last, if any; st is the agent pool's now.
func (r *Region) summarizeAgents(st agentssh.Stats) {
	hosts := st.Connecting + st.Connected + st.Down
	for _, s := range r.agentMsgs.take() {
		inserts := make([]string, 0, 6)
		for _, n := range s.counts {
			inserts = append(inserts, strconv.Itoa(n))
		}
		inserts = append(inserts, s.first.UTC().Format(summaryTime), s.last.UTC().Format(summaryTime),
			strconv.Itoa(st.Connected), strconv.Itoa(hosts))
		r.issue(context.Background(), s.id, inserts...)
	}
}

// summaryTime is how the summaries write times (UTC), as flood
// summaries do.
const summaryTime = "15:04:05.000"

// summarizeAgentsEvery issues the summaries every agentSummaryEvery until
// the region quits. The region's wait group waits for it.
func (r *Region) summarizeAgentsEvery() {
	t := time.NewTicker(agentSummaryEvery)
	defer t.Stop()
	for {
		select {
		case <-r.quit:
			return
		case <-t.C:
			r.summarizeAgents(r.linux.pool.Stats())
		}
	}
}

// closeLinux closes the agent pool and issues the summaries of what was
// held back until then, with the agents connected as it closed.
func (r *Region) closeLinux() error {
	if r.linux == nil {
		return nil
	}
	st := r.linux.pool.Stats()
	err := r.linux.Close()
	r.summarizeAgents(st)
	return err
}
