package zvmsim

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/internal/acceptloop"
	"github.com/zbridge/zbridge/internal/drain"
)

// Defaults of a [Config].
const (
	// DefaultMoreDelay is how long MORE... shows before CP clears the
	// screen: z/VM's initial TERMINAL MORE setting is 50 10 (seconds
	// before the alarm, then before the clearing), 60 seconds in all.
	DefaultMoreDelay = 60 * time.Second
	// DefaultNegotiateTimeout bounds the telnet negotiation of a new
	// connection.
	DefaultNegotiateTimeout = 30 * time.Second
	// DefaultWriteTimeout ends a session whose terminal reads nothing.
	DefaultWriteTimeout = 30 * time.Second
)

// The userids every simulated system has: the system operator and the
// system maintenance user. Both hold privilege classes A-G here.
const (
	Operator = "OPERATOR"
	Maint    = "MAINT"
)

// defaultUsers are the guests of the simulated CP directory when
// Config.Users is empty.
func defaultUsers() []string { return []string{"LINUX01", "LINUX02", "LINUX03", "TCPIP"} }

// Config configures a [Sim].
type Config struct {
	// System is the system name: in the status area (row 23 from column
	// 72) and in QUERY USERID. 1 to 8 characters; required.
	System string
	// Password is the one password every simulated userid logs on with.
	// Required; never logged.
	Password string
	// Users are the userids of the simulated CP directory besides
	// OPERATOR and MAINT, which are always in it. Default: LINUX01,
	// LINUX02, LINUX03 and TCPIP.
	Users []string
	// Autolog are userids logged on, disconnected, when the simulator
	// starts, as AUTOLOG1's profile does on a real system (TCPIP, say).
	// Default: none.
	Autolog []string
	// MoreDelay is how long MORE... shows before CP clears the screen and
	// shows the next one. Default DefaultMoreDelay; tests use about a
	// second.
	MoreDelay time.Duration
	// NegotiateTimeout bounds the telnet negotiation of a new connection.
	// Default DefaultNegotiateTimeout.
	NegotiateTimeout time.Duration
	// WriteTimeout ends a session whose terminal does not take a screen
	// within it. Default DefaultWriteTimeout.
	WriteTimeout time.Duration
	// Logger receives the simulator's log, with component=zvmsim and
	// system set. Default: discard.
	Logger logrus.FieldLogger
	// Clock gives the time CP shows (LOGON AT, QUERY TIME, MSG time
	// stamps) in its location's zone. Default time.Now. Delays (MORE...)
	// always run on the real clock.
	Clock func() time.Time
}

// Sim is a simulated z/VM system with TN3270 consoles: a go3270 server on
// which each connection gets the logo screen and, after LOGON, a CP
// console. Several terminals may be connected at once, one per logged-on
// user. Create it with [New]; its methods are safe for concurrent use.
type Sim struct {
	cfg  Config
	log  logrus.FieldLogger
	now  func() time.Time
	dir  map[string]bool // the CP directory; read-only after New
	ipl  time.Time
	quit chan struct{} // closed by Shutdown and Close
	wg   sync.WaitGroup
	loop *acceptloop.Loop // the listeners' accept loop

	mu      sync.Mutex // guards the following fields
	closing bool
	conns   map[net.Conn]bool  // true once the connection has a session
	users   map[string]*vmUser // logged-on users
	nextDev int                // next logical device number (L0004 first)
}

// vmUser is a logged-on user. Its fields are guarded by Sim.mu.
type vmUser struct {
	id      string
	logonAt time.Time
	sess    *session // the connected terminal; nil when disconnected (DSC)
}

// New validates cfg, fills in defaults and returns a simulator that serves
// nothing until [Sim.Serve] is called. It copies cfg's slices.
func New(cfg Config) (*Sim, error) {
	cfg.System = strings.ToUpper(strings.TrimSpace(cfg.System))
	if !validUserid(cfg.System) {
		return nil, fmt.Errorf("%w: system name %q: want 1 to 8 letters, digits or @#$_-", ErrConfig, cfg.System)
	}
	if cfg.Password == "" {
		return nil, fmt.Errorf("%w: empty password", ErrConfig)
	}
	if len(cfg.Password) > passwordLen {
		return nil, fmt.Errorf("%w: password longer than %d characters (the logo screen's field)", ErrConfig, passwordLen)
	}
	users := cfg.Users
	if len(users) == 0 {
		users = defaultUsers()
	}
	dir := map[string]bool{Operator: true, Maint: true}
	cfg.Users = nil
	for _, u := range users {
		u = strings.ToUpper(strings.TrimSpace(u))
		if !validUserid(u) {
			return nil, fmt.Errorf("%w: userid %q: want 1 to 8 letters, digits or @#$_-", ErrConfig, u)
		}
		if !dir[u] {
			dir[u] = true
			cfg.Users = append(cfg.Users, u)
		}
	}
	var autolog []string
	for _, u := range cfg.Autolog {
		u = strings.ToUpper(strings.TrimSpace(u))
		if !dir[u] {
			return nil, fmt.Errorf("%w: autolog userid %q is not in the directory", ErrConfig, u)
		}
		autolog = append(autolog, u)
	}
	cfg.Autolog = autolog
	if cfg.MoreDelay < 0 || cfg.NegotiateTimeout < 0 || cfg.WriteTimeout < 0 {
		return nil, fmt.Errorf("%w: negative duration", ErrConfig)
	}
	if cfg.MoreDelay == 0 {
		cfg.MoreDelay = DefaultMoreDelay
	}
	if cfg.NegotiateTimeout == 0 {
		cfg.NegotiateTimeout = DefaultNegotiateTimeout
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	log := cfg.Logger
	if log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		log = l
	}
	log = log.WithFields(logrus.Fields{"component": "zvmsim", "system": cfg.System})
	s := &Sim{
		cfg:     cfg,
		log:     log,
		now:     cfg.Clock,
		dir:     dir,
		quit:    make(chan struct{}),
		loop:    acceptloop.New(acceptloop.Config{Logger: log}),
		conns:   make(map[net.Conn]bool),
		users:   make(map[string]*vmUser),
		nextDev: 4,
	}
	s.ipl = s.now()
	for _, u := range cfg.Autolog {
		s.users[u] = &vmUser{id: u, logonAt: s.ipl}
	}
	return s, nil
}

// validUserid reports whether u can be a z/VM userid (or system name).
func validUserid(u string) bool {
	if len(u) < 1 || len(u) > 8 {
		return false
	}
	for _, r := range u {
		switch {
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9', strings.ContainsRune("@#$_-", r):
		default:
			return false
		}
	}
	return true
}

// System returns the system name.
func (s *Sim) System() string { return s.cfg.System }

// Serve accepts terminal connections on l until Shutdown or Close, each
// served by its own goroutine that Shutdown and Close wait for. Serve
// always returns a non-nil error and closes l; after Shutdown or Close it
// is ErrServerClosed.
func (s *Sim) Serve(l net.Listener) error {
	s.log.WithField("addr", l.Addr().String()).Info("z/VM console simulator listening")
	err := s.loop.Serve(l, func(conn net.Conn, a *acceptloop.Admission) {
		a.Release() // the simulator sets no per-address limit
		if !s.track(conn) {
			conn.Close()
			return
		}
		go s.serveConn(conn)
	})
	if errors.Is(err, acceptloop.ErrStopped) {
		return ErrServerClosed
	}
	return fmt.Errorf("zvmsim: %w", err)
}

// track registers conn and counts its goroutine in wg, unless the
// simulator is closing.
func (s *Sim) track(conn net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.conns[conn] = false
	s.wg.Add(1)
	return true
}

// established records that conn finished its telnet negotiation and now
// has a session, which ends by itself when the simulator closes. It
// reports false if the simulator is closing already.
func (s *Sim) established(conn net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.conns[conn] = true
	return true
}

func (s *Sim) untrack(conn net.Conn) {
	s.mu.Lock()
	delete(s.conns, conn)
	s.mu.Unlock()
}

// beginClose stops new connections and tells every session to end. It
// reports whether this call began closing.
func (s *Sim) beginClose() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.closing = true
	close(s.quit)
	s.loop.Stop()
	// Sessions end on quit; a connection still negotiating has none to
	// notice, so it is closed here.
	for c, hasSession := range s.conns {
		if !hasSession {
			c.Close()
		}
	}
	return true
}

func (s *Sim) closeConns() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.Close()
	}
}

// Shutdown stops accepting connections, closes those still in telnet
// negotiation, lets every session end (each finishes the screen it is
// writing, then closes its connection; users stay logged on until the Sim
// is gone) and waits for their goroutines until ctx is done; then it
// closes what is left, waits, and returns ctx's error. Calling it again,
// or after Close, is harmless.
func (s *Sim) Shutdown(ctx context.Context) error {
	if s.beginClose() {
		s.log.Info("shutting down")
	}
	return drain.Wait(ctx, &s.wg, s.closeConns)
}

// Close stops at once: it closes the listeners and every connection and
// waits for the goroutines to end. It is safe to call more than once.
func (s *Sim) Close() error {
	s.beginClose()
	s.closeConns()
	s.wg.Wait()
	return nil
}

// LoggedOn returns the logged-on userids, connected or disconnected,
// sorted.
func (s *Sim) LoggedOn() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for id := range s.users {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Inject writes line (several if it holds newlines) on the OPERATOR
// console as unsolicited CP output. It fails with ErrNotLoggedOn or
// ErrDisconnected when there is no OPERATOR console to write to.
func (s *Sim) Inject(line string) error { return s.InjectTo(Operator, line) }

// InjectTo is Inject for the console of user.
func (s *Sim) InjectTo(user, line string) error {
	return s.postTo(strings.ToUpper(user), event{lines: strings.Split(line, "\n")})
}

// InjectMany writes n lines on the OPERATOR console at once, line i
// (from 1) being fmt.Sprintf(format, i): enough of them span several
// MORE... screens.
func (s *Sim) InjectMany(n int, format string) error {
	lines := make([]string, 0, n)
	for i := 1; i <= n; i++ {
		lines = append(lines, fmt.Sprintf(format, i))
	}
	return s.postTo(Operator, event{lines: lines})
}

// Message sends text from user from to user to as CP MESSAGE does; it
// arrives as "hh:mm:ss * MSG FROM from    : text". from must be in the
// directory (it need not be logged on); to must have a console.
func (s *Sim) Message(from, to, text string) error { return s.userMessage("MSG", from, to, text) }

// Warning is Message for CP WARNING ("* WNG FROM").
func (s *Sim) Warning(from, to, text string) error { return s.userMessage("WNG", from, to, text) }

func (s *Sim) userMessage(kind, from, to, text string) error {
	from, to = strings.ToUpper(from), strings.ToUpper(to)
	if !s.dir[from] {
		return fmt.Errorf("%w: %s", ErrNoSuchUser, from)
	}
	return s.postTo(to, event{lines: []string{msgFrom(kind, s.now(), from, text)}, msg: true})
}

// postTo delivers ev to the console of user.
func (s *Sim) postTo(user string, ev event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.dir[user] {
		return fmt.Errorf("%w: %s", ErrNoSuchUser, user)
	}
	u := s.users[user]
	switch {
	case u == nil:
		return fmt.Errorf("%w: %s", ErrNotLoggedOn, user)
	case u.sess == nil:
		return fmt.Errorf("%w: %s", ErrDisconnected, user)
	}
	u.sess.post(ev)
	return nil
}

// logonResult is what LOGON came to.
type logonResult int

const (
	logonBad       logonResult = iota // HCPLGA050E
	logonAlready                      // HCPLGA054E
	logonNew                          // LOGON AT
	logonReconnect                    // RECONNECTED AT
)

// logon checks user and password and, if they are right, connects ss to
// the user: a new logon, or a reconnect of a disconnected user.
func (s *Sim) logon(user, password string, ss *session) logonResult {
	ok := s.dir[user]
	// Compare even for unknown userids, so that timing tells nothing.
	if subtle.ConstantTimeCompare([]byte(password), []byte(s.cfg.Password)) != 1 {
		ok = false
	}
	if !ok {
		return logonBad
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return logonBad
	}
	if u := s.users[user]; u != nil {
		if u.sess != nil {
			return logonAlready
		}
		u.sess = ss
		return logonReconnect
	}
	s.users[user] = &vmUser{id: user, logonAt: s.now(), sess: ss}
	if user != Operator {
		s.noticeLocked("", noticeLogon(ss.term, user, len(s.users)))
	}
	return logonNew
}

// noticeLocked writes a system notice on the OPERATOR console, and on the
// console of issuer too when that is someone else. s.mu must be held.
func (s *Sim) noticeLocked(issuer string, lines ...string) {
	targets := []string{Operator}
	if issuer != "" && issuer != Operator {
		targets = append(targets, issuer)
	}
	for _, id := range targets {
		if u := s.users[id]; u != nil && u.sess != nil {
			u.sess.post(event{lines: lines})
		}
	}
}

// detach disconnects user from ss (the terminal went away, or DISCONNECT):
// the user stays logged on, disconnected.
func (s *Sim) detach(user string, ss *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u := s.users[user]; u != nil && u.sess == ss {
		u.sess = nil
	}
}

// logoff logs user off from its own terminal ss.
func (s *Sim) logoff(user string, ss *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[user]
	if u == nil || u.sess != ss {
		return
	}
	delete(s.users, user)
	if user != Operator {
		s.noticeLocked("", noticeLogoff(ss.term, user, len(s.users), ""))
	}
}

// logonTime returns when user logged on.
func (s *Sim) logonTime(user string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[user]
	if u == nil {
		return time.Time{}, false
	}
	return u.logonAt, true
}

// newDevice returns the next logical device name, L0004, L0005, ...
func (s *Sim) newDevice() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := fmt.Sprintf("L%04X", s.nextDev)
	s.nextDev++
	if s.nextDev > 0xFFFF {
		s.nextDev = 4
	}
	return d
}
