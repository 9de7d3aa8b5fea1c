package zvmsim

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Limits of the simulator's own commands.
const (
	maxLongout = 100000
	maxSpin    = time.Hour
)

// abbrev reports whether word (upper case) is full or an abbreviation of it
// at least min characters long, as CP's syntax diagrams allow (QUERY may be
// Q, CPLEVEL CPLEV, and so on).
func abbrev(word, full string, min int) bool {
	return len(word) >= min && len(word) <= len(full) && strings.HasPrefix(full, word)
}

// restAfter returns s after its first n blank-separated words, without the
// blanks that follow them.
func restAfter(s string, n int) string {
	for i := 0; i < n; i++ {
		s = strings.TrimLeft(s, " ")
		j := strings.IndexByte(s, ' ')
		if j < 0 {
			return ""
		}
		s = s[j:]
	}
	return strings.TrimLeft(s, " ")
}

// privileged reports whether the user holds the operator classes (A, B,
// C) that FORCE, WARNING and XAUTOLOG of any user need.
func (ss *session) privileged() bool { return ss.user == Operator || ss.user == Maint }

// command runs one CP command: f are its words, raw its text (for message
// text, whose case and spacing CP keeps). It reports whether the console
// ends, and why.
func (ss *session) command(f []string, raw string) (endReason, bool) {
	c := ss.cons
	verb := strings.ToUpper(f[0])
	args := f[1:]
	switch {
	case abbrev(verb, "QUERY", 1):
		c.write(false, ss.query(args)...)
	case abbrev(verb, "MESSAGE", 1), verb == "MSG":
		ss.message("MSG", args, restAfter(raw, 2))
	case ss.privileged() && (abbrev(verb, "WARNING", 1) || verb == "WNG"):
		ss.message("WNG", args, restAfter(raw, 2))
	case ss.privileged() && abbrev(verb, "XAUTOLOG", 5):
		if len(args) == 0 {
			c.write(false, msgOperandMissing("CLS"))
			break
		}
		c.write(false, ss.sim.xautolog(ss.user, strings.ToUpper(args[0]))...)
	case ss.privileged() && verb == "FORCE":
		if len(args) == 0 {
			c.write(false, msgOperandMissing("CFX"))
			break
		}
		c.write(false, ss.sim.force(ss.user, strings.ToUpper(args[0]))...)
	case abbrev(verb, "LOGOFF", 3), verb == "LOGOUT":
		now := ss.sim.now()
		logon, _ := ss.sim.logonTime(ss.user)
		c.write(false, queryTime(now, logon)[1], msgLogoffAt(now))
		_ = ss.render()
		ss.sim.logoff(ss.user, ss)
		return endLogoff, true
	case abbrev(verb, "DISCONNECT", 4):
		c.write(false, msgDisconnectAt(ss.sim.now()))
		_ = ss.render()
		return endDisconnect, true
	case verb == "LONGOUT":
		ss.longout(args)
	case verb == "SPIN":
		ss.spin(args)
	default:
		c.write(false, msgUnknownCommand(verb))
	}
	return 0, false
}

// query runs QUERY with the given operands.
func (ss *session) query(args []string) []string {
	if len(args) == 0 {
		return []string{msgOperandMissing("CQU")}
	}
	op := strings.ToUpper(args[0])
	if len(args) > 1 {
		return []string{msgInvalidOption("CQU", strings.ToUpper(args[1]))}
	}
	now := ss.sim.now()
	switch {
	case abbrev(op, "TIME", 2):
		logon, _ := ss.sim.logonTime(ss.user)
		return queryTime(now, logon)
	case abbrev(op, "NAMES", 3):
		return ss.sim.queryNames()
	case op == "USERID":
		return []string{queryUserid(ss.user, ss.sim.cfg.System)}
	case abbrev(op, "USERS", 2):
		return []string{ss.sim.queryUsers()}
	case abbrev(op, "CPLEVEL", 5):
		return queryCPLevel(ss.sim.ipl)
	default:
		return []string{msgInvalidOption("CQU", op)}
	}
}

// message runs MESSAGE or WARNING: args[0] is the userid (* for oneself).
// CP answers a delivered message with nothing.
func (ss *session) message(kind string, args []string, text string) {
	if len(args) == 0 {
		ss.cons.write(false, msgOperandMissing("MSG"))
		return
	}
	to := strings.ToUpper(args[0])
	if to == "*" {
		to = ss.user
	}
	err := ss.sim.userMessage(kind, ss.user, to, text)
	switch {
	case err == nil:
	case errors.Is(err, ErrDisconnected):
		ss.cons.write(false, msgNotReceiving("MSG", to))
	default:
		ss.cons.write(false, msgNotLoggedOn("MSG", to))
	}
}

// longout is the simulator's LONGOUT n: n numbered lines at once, for
// trying MORE... handling.
func (ss *session) longout(args []string) {
	n := 0
	if len(args) == 1 {
		n, _ = strconv.Atoi(args[0])
	}
	if n < 1 || n > maxLongout {
		ss.cons.write(false, msgOperandMissing("SIM"))
		return
	}
	lines := make([]string, 0, n)
	for i := 1; i <= n; i++ {
		lines = append(lines, fmt.Sprintf("LONGOUT LINE %05d OF %05d", i, n))
	}
	ss.cons.write(false, lines...)
}

// spin is the simulator's SPIN seconds: the virtual machine runs (status
// RUNNING) for that long without reading its console.
func (ss *session) spin(args []string) {
	var secs float64
	var err error
	if len(args) == 1 {
		secs, err = strconv.ParseFloat(args[0], 64)
	}
	d := time.Duration(secs * float64(time.Second))
	if len(args) != 1 || err != nil || d <= 0 || d > maxSpin {
		ss.cons.write(false, msgOperandMissing("SIM"))
		return
	}
	if ss.spinTimer != nil {
		ss.spinTimer.Stop()
	}
	ss.cons.running = true
	ss.spinTimer = time.NewTimer(d)
}

// queryNames lists the logged-on users for QUERY NAMES.
func (s *Sim) queryNames() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var entries []nameEntry
	connected := false
	for id, u := range s.users {
		where := "DSC"
		if u.sess != nil {
			where = u.sess.term
			connected = true
		}
		entries = append(entries, nameEntry{user: id, where: where})
	}
	slices.SortFunc(entries, func(a, b nameEntry) int { return strings.Compare(a.user, b.user) })
	return queryNames(entries, connected && s.users["TCPIP"] != nil)
}

// queryUsers counts the logged-on users for QUERY USERS; NET counts those
// connected through the (simulated) TN3270 server.
func (s *Sim) queryUsers() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	net := 0
	for _, u := range s.users {
		if u.sess != nil {
			net++
		}
	}
	return queryUsers(len(s.users), 0, net)
}

// xautolog logs target on, disconnected, for issuer: "Command accepted" at
// once, then AUTO LOGON and HCPCLS6056I on the issuer's console and the
// operator's.
func (s *Sim) xautolog(issuer, target string) []string {
	if !s.dir[target] {
		return []string{msgNotInDirectory(target)}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.users[target] != nil {
		return []string{msgXautologAlready(target)}
	}
	s.users[target] = &vmUser{id: target, logonAt: s.now()}
	s.log.WithFields(map[string]any{"user": target, "by": issuer}).Info("XAUTOLOG")
	s.noticeLocked(issuer, noticeAutoLogon(target, len(s.users)), msgXautologInfo(target))
	return []string{msgCommandAccepted}
}

// force logs target off for issuer. The logoff notice arrives on the
// issuer's console and the operator's; a connected target's terminal
// returns to the logo screen.
func (s *Sim) force(issuer, target string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[target]
	if u == nil {
		return []string{msgNotLoggedOn("CFX", target)}
	}
	delete(s.users, target)
	term := ""
	if u.sess != nil {
		term = u.sess.term
		u.sess.post(event{kick: true})
	}
	s.log.WithFields(map[string]any{"user": target, "by": issuer}).Info("FORCE")
	s.noticeLocked(issuer, noticeLogoff(term, target, len(s.users), issuer))
	return nil
}
