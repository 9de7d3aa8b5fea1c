package console

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/zbridge/zbridge/protocol"
)

// Backend is what the console needs of the region: who may log on, and,
// for an operator who has, the events, the commands and the agents. The
// region implements it (gateway/region/console.go); every check of a
// role happens there, so that the console shows nothing and runs nothing
// that the operator's client could not get on the region's other ports.
type Backend interface {
	// Name is the region's name, shown in the console's title line and
	// used in F NAME,WORD.
	Name() string
	// Logon checks a client's name and secret for the console port and
	// returns the operator's session. A refusal returns an error whose
	// text may be shown to the operator (it never says which of the name
	// and the secret was wrong); errors.Is(err, ErrBusy) means the region
	// refuses for load, not for the credentials, and errors.Is(err,
	// ErrNotPermitted) that the credentials were right but no role grants
	// the console: neither counts as a failed logon.
	Logon(ctx context.Context, client, secret string, remote net.Addr) (Operator, error)
}

// Operator is one operator's session: every call is checked against the
// client's roles.
type Operator interface {
	// Client is the client name the operator logged on as.
	Client() string
	// Tail calls fn with the events the client may see that match filter
	// (nil: all): first up to back of the newest retained ones, oldest
	// first, then each new one as it is stored, until ctx ends (it then
	// returns ctx.Err()) or the session or the region ends (another
	// error). fn is called from Tail's goroutine, never concurrently.
	Tail(ctx context.Context, filter *protocol.Filter, back int, fn func(*protocol.Event)) error
	// Command runs a command line as typed on the console's command line:
	// "linux:web1 df -h", "zvm:VMSYS1 Q N", or a region command ("F
	// ZBR1,SERVERS", "D ZBR1,AGENTS", "SERVERS", with or without the
	// target "region" or "region:" before it). out is called with each line of output, in
	// order, never concurrently, control characters escaped. A command
	// that ran returns its Result (RC); one refused or failed before it
	// could finish returns an error whose text is the reason to show.
	Command(ctx context.Context, line string, out func(line string)) (Result, error)
	// Agents lists the agents of every region sharing the store, for the
	// agents panel; refused when the client's roles do not grant the
	// region command AGENTS.
	Agents(ctx context.Context) ([]Agent, error)
	// Close ends the session (written to the audit log).
	Close() error
}

// Result is how a command that ran ended.
type Result struct {
	ID        string // the command's ID, as in the audit log
	RC        int
	Signal    string // the signal that ended it, if one did
	Truncated bool   // output beyond the region's cap was not sent
	Duration  time.Duration
}

// Agent is one line of the agents panel.
type Agent struct {
	Name, Kind, Addr, State string // Kind: linux or zvm
	Since, LastHeartbeat    time.Time
	Region                  string // the region it is connected to
}

// ErrNotPermitted is wrapped by a Logon refused because no role of the
// client grants the console.
var ErrNotPermitted = errors.New("console: not permitted")

// ErrBusy is wrapped by a Logon refused for load.
var ErrBusy = errBusy{}

type errBusy struct{}

func (errBusy) Error() string { return "console: the region is busy; try again later" }
