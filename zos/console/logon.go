package console

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/racingmars/go3270"
	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/zos"
)

// The logon panel's layout.
const (
	logonClientRow = 5
	logonSecretRow = 7
	logonMsgRow    = 10 // and the row below it
	logonInputCol  = 11 // the input fields' attribute, after "CLIENT ===>"; they start a column later
	logonInputLen  = 64 // cells of the client and secret fields
)

var errLogonPF3 = errors.New("console: the operator left the logon panel (PF3)")

// logonScreen is the logon panel of t: the client name, the secret
// (hidden: the terminal does not show it and the console never writes it
// back) and a message line.
func logonScreen(t *terminal, region string) go3270.Screen {
	white := style{color: go3270.White}
	turq := style{color: go3270.Turquoise}
	n := logonFieldLen(t)
	secret := t.inputField(logonSecretRow, logonInputCol, "secret", go3270.DefaultColor)
	secret.Hidden = true
	msg := t.label(logonMsgRow, "", style{color: go3270.Red})
	msg.Name = "msg"
	return go3270.Screen{
		t.row(0, withClock(t.cs, titleText(region, "CONSOLE"), time.Now(), t.width(0)), white),
		t.row(2, "3270 OPERATOR CONSOLE OF REGION "+region, turq),
		t.label(logonClientRow, "CLIENT ===>", turq),
		t.inputField(logonClientRow, logonInputCol, "client", go3270.Green),
		{Row: logonClientRow, Col: logonInputCol + 1 + n}, // ends the field
		t.label(logonSecretRow, "SECRET ===>", turq),
		secret,
		{Row: logonSecretRow, Col: logonInputCol + 1 + n},
		msg,
		t.row(t.rows-1, "PF3=END  ENTER=LOGON", style{color: go3270.Blue}),
	}
}

// logonMessage lays msg out on the panel's two message rows: the field
// starts at column 0 of the first and runs on through the second.
func logonMessage(t *terminal, msg string) string {
	lines := wrap(t.cs.clean(msg), t.cols-1, 0, 2)
	if len(lines) < 2 {
		return fitString(lines[0], t.cols-1)
	}
	return fitString(lines[0], t.cols) + fitString(lines[1], t.cols-1)
}

// logonFieldLen is the length of the client and secret fields.
func logonFieldLen(t *terminal) int {
	return min(logonInputLen, t.inputLen(logonInputCol)-1)
}

// logon runs the logon panel until the Backend accepts a logon, and
// returns the operator's session and client name, holding a place under
// MaxSessions (Server.logging) for the caller to take or give back. It refuses without
// asking the Backend while addr is blocked for failed logons or MaxSessions
// operators are logged on, and gives up after LogonAttempts refusals. The
// secret is neither logged nor written back to the terminal.
func (s *Server) logon(t *terminal, addr netip.Addr, log logrus.FieldLogger) (Operator, string, error) {
	region := s.cfg.Backend.Name()
	key := throttleAddr(addr)
	n := logonFieldLen(t)
	var client, msg string
	redraws := 0
	for tries := 0; ; {
		values := map[string]string{"client": t.input(client, n), "msg": logonMessage(t, msg)}
		crow := logonClientRow
		if client != "" {
			crow = logonSecretRow
		}
		resp, err := t.show(logonScreen(t, region), values, crow, logonInputCol+1)
		if err != nil {
			return nil, "", err
		}
		switch resp.AID {
		case go3270.AIDPF3:
			return nil, "", errLogonPF3
		case go3270.AIDEnter:
		default: // CLEAR, PA or another PF key: the panel again
			// Each costs a whole panel: a peer that only sends such keys
			// would get megabytes for bytes.
			if redraws++; redraws > maxLogonRedraws {
				return nil, "", fmt.Errorf("console: %d keys other than ENTER on the logon panel", redraws)
			}
			msg = ""
			continue
		}
		client = resp.Values["client"]
		secret := resp.Values["secret"]
		if client == "" {
			msg = zos.Must("ZBR314E").Format("type a client name and its secret")
			continue
		}
		tries++
		clog := log.WithField("client", clip(client))
		var op Operator
		var reason string
		if utf8.RuneCountInString(client) > n || utf8.RuneCountInString(secret) > n {
			// Longer than the fields: not typed on a terminal but forged.
			s.fails.Failure(key)
			s.mu.Lock()
			s.failed++
			s.mu.Unlock()
			clog.Warn("logon refused: the client name or secret is longer than its field")
			reason = "the client name or the secret is too long"
		} else {
			op, reason = s.tryLogon(key, client, secret, t, clog)
		}
		if op != nil {
			return op, client, nil
		}
		msg = zos.Must("ZBR314E").Format(reason)
		if tries >= s.cfg.LogonAttempts {
			values["client"], values["msg"] = t.input(client, n), logonMessage(t, msg)
			t.write(logonScreen(t, region), values)
			return nil, "", fmt.Errorf("console: %d logons refused", tries)
		}
	}
}

// tryLogon asks the Backend to log client on, unless key (the source
// address) is blocked for failed logons or MaxSessions operators are
// logged on. It returns the operator's session, or the reason to show.
func (s *Server) tryLogon(key netip.Addr, client, secret string, t *terminal, log logrus.FieldLogger) (Operator, string) {
	refused := func(err error, msg string) {
		s.mu.Lock()
		s.failed++
		s.mu.Unlock()
		log.WithError(err).Warn("logon refused: " + msg)
	}
	if wait := s.fails.Wait(key); wait > 0 {
		refused(nil, "the address is blocked for failed logons")
		return nil, fmt.Sprintf("too many failed logons from this address; try again in %v", roundUp(wait))
	}
	// A blocked name is still checked: its right secret logs on (others
	// failing with the name cannot lock its operator out), a wrong one is
	// refused as blocked, whichever address it comes from.
	nameWait := s.names.Wait(client)
	s.mu.Lock()
	full := s.active+s.logging >= s.cfg.MaxSessions
	if !full {
		s.logging++ // the place this logon takes; kept by the caller if it succeeds
	}
	s.mu.Unlock()
	if full {
		refused(nil, "MaxSessions reached")
		return nil, fmt.Sprintf("%d operators are logged on, the most allowed; try again later", s.cfg.MaxSessions)
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.LogonTimeout)
	op, err := s.cfg.Backend.Logon(ctx, client, secret, t.conn.RemoteAddr())
	cancel()
	if err == nil && op == nil {
		err = errors.New("the region returned no session")
	}
	if err != nil {
		s.mu.Lock()
		s.logging--
		s.mu.Unlock()
	}
	switch {
	case err == nil:
		// The name's failures are forgotten, the address's are not: any
		// operator could otherwise clear its address's count between
		// guesses at another name's secret.
		s.names.Success(client)
		return op, ""
	case errors.Is(err, ErrBusy): // load, not the credentials: not a failure for the throttle
		refused(err, "busy")
	case errors.Is(err, ErrNotPermitted):
		// The right secret, but no role grants the console: no failure,
		// and no success either.
		refused(err, "not permitted")
	case s.ctx.Err() != nil: // cancelled by Shutdown or Close: not the credentials either
		refused(err, reasonStopping)
		return nil, reasonStopping
	default:
		if block := max(s.fails.Failure(key), s.names.Failure(client)); block > 0 {
			log = log.WithField("blocked_for", block.String())
		}
		refused(err, "the region refused it")
		if nameWait > 0 {
			return nil, fmt.Sprintf("too many failed logons for this client name; try again in %v", roundUp(nameWait))
		}
	}
	return nil, err.Error()
}

// maxLogonRedraws is how many keys other than ENTER (CLEAR, PA, PF) one
// connection may press on the logon panel before it is closed.
const maxLogonRedraws = 20

// roundUp rounds a wait up to the second, for the operator.
func roundUp(d time.Duration) time.Duration { return (d + time.Second - 1).Truncate(time.Second) }

// clip shortens a client name from an unknown peer for the log.
func clip(name string) string {
	const n = 64
	if len(name) <= n {
		return name
	}
	return strings.ToValidUTF8(name[:n], "") + "..."
}
