package console

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zbridge/zbridge/internal/peer"
)

// term is a real 3270 terminal, s3270 ([peer.S3270]), connected to the
// console, with the console's own steps: the logon panel, the command line
// and AID keys that wait for the host's answer.
type term struct {
	*peer.S3270
	t testing.TB
}

// termOpts says how to start s3270.
type termOpts struct {
	model    string // -model, default 3279-2
	codepage string // -codepage, default s3270's (bracket)
	caFile   string // -cafile: connect with TLS
}

// waitTimeout bounds a wait for a screen or for the host to disconnect.
// Generous: CI machines are loaded.
const waitTimeout = 15 * time.Second

// startTerm starts s3270 and connects it to the console at addr.
func startTerm(t testing.TB, addr string, o termOpts) *term {
	t.Helper()
	if o.model == "" {
		o.model = "3279-2"
	}
	args := []string{"-model", o.model}
	if o.codepage != "" {
		args = append(args, "-codepage", o.codepage)
	}
	host := addr
	if o.caFile != "" {
		// s3270 4.1 matches the certificate against a DNS name, not
		// an IP address: the test certificate names localhost too.
		args = append(args, "-cafile", o.caFile, "-accepthostname", "localhost")
		host = "L:" + addr
	}
	tm := &term{S3270: peer.StartS3270(t, args...), t: t}
	tm.Must("Connect(" + host + ")")
	return tm
}

// waitFor polls the screen until ok holds for it, and returns it.
func (tm *term) waitFor(what string, ok func(scr []string) bool) []string {
	tm.t.Helper()
	return tm.WaitScreen(waitTimeout, what, ok)
}

// waitText waits for s on the screen.
func (tm *term) waitText(s string) []string {
	tm.t.Helper()
	return tm.WaitText(waitTimeout, s)
}

// waitDisconnected waits until the host has closed the connection.
func (tm *term) waitDisconnected() {
	tm.t.Helper()
	tm.WaitDisconnected(waitTimeout)
}

// key presses an AID key (Enter(), PF(7), Clear()) and waits until the
// host has answered (the keyboard is unlocked again).
func (tm *term) key(action string) {
	tm.t.Helper()
	tm.Must(action)
	tm.Must("Wait(" + strconv.Itoa(int(waitTimeout/time.Second)) + ",Unlock)")
}

// logon fills in the logon panel and presses ENTER.
func (tm *term) logon(client, secret string) {
	tm.t.Helper()
	tm.waitText("CLIENT ===>")
	tm.Must("Home()")
	tm.Must("EraseEOF()")
	tm.Type(client)
	tm.Must("Tab()")
	tm.Must("EraseEOF()")
	tm.Type(secret)
	tm.key("Enter()")
}

// command types line on the command line and presses ENTER.
func (tm *term) command(line string) {
	tm.t.Helper()
	tm.Type(line)
	tm.key("Enter()")
}

func hasText(s string) func([]string) bool {
	return func(scr []string) bool { return strings.Contains(strings.Join(scr, "\n"), s) }
}

// rowsWith returns the numbers of the rows that hold s.
func rowsWith(scr []string, s string) []int {
	var rows []int
	for i, r := range scr {
		if strings.Contains(r, s) {
			rows = append(rows, i)
		}
	}
	return rows
}

// rowOf returns the first row that holds s, or -1.
func rowOf(scr []string, s string) int {
	if r := rowsWith(scr, s); len(r) > 0 {
		return r[0]
	}
	return -1
}
