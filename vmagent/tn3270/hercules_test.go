package tn3270

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zbridge/zbridge/internal/peer"
)

// herculesConfig is the configuration of REFERENCE.md: no operating
// system, two 3270 devices on the console port.
const herculesConfig = `CPUSERIAL 002623
CPUMODEL 3090
MAINSIZE 16
XPNDSIZE 0
NUMCPU 1
ARCHMODE ESA/390
PANRATE SLOW
CNSLPORT 127.0.0.1:%d
0009 3215-C / noprompt
0700 3270
0701 3270
`

// startHercules starts Hercules with its console port on a free loopback
// port and waits until it listens for 3270 connections. It returns the
// process and the console address.
func startHercules(t *testing.T) (*peer.Process, string) {
	t.Helper()
	path := peer.Require(t, "hercules")
	dir := t.TempDir()
	port := peer.FreePort(t)
	cnf := filepath.Join(dir, "noos.cnf")
	if err := os.WriteFile(cnf, fmt.Appendf(nil, herculesConfig, port), 0o644); err != nil {
		t.Fatal(err)
	}
	p := peer.Start(t, peer.Command{
		Name: "hercules",
		Path: path,
		Args: []string{"-d", "-f", cnf},
		Dir:  dir,
		// Hercules exits when its standard input ends.
		KeepStdinOpen: true,
		// It hangs in its shutdown after SIGTERM; do not wait long.
		StopTimeout: 2 * time.Second,
	})
	waitLog(t, p, "HHCTE003I", 30*time.Second)
	return p, peer.Addr(port)
}

// waitLog waits until the process's log holds s.
func waitLog(t *testing.T, p *peer.Process, s string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(p.Log(), s) {
		if !p.Running() {
			t.Fatalf("%s exited before logging %s", p.Name(), s)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not log %s within %v", p.Name(), s, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestHerculesLogo connects our client, then s3270, to Hercules's console
// port (each in turn gets device 0700) and checks that both negotiate and
// show the same logo screen. With -update it records the logo's data
// stream and s3270's text as golden files.
func TestHerculesLogo(t *testing.T) {
	p, addr := startHercules(t)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	var rec recorder
	c, err := Dial(ctx, addr, Config{Trace: rec.trace, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ours, err := c.WaitFor(ctx, func(s Screen) bool {
		return strings.Contains(s.String(), "Device number")
	})
	if err != nil {
		t.Fatalf("our client: %v\n%s", err, c.Screen())
	}
	for _, want := range []string{" Hercules Version  : 3.13", " Device number     : 0700"} {
		if !containsLine(ours.Rows(), want) {
			t.Errorf("our screen lacks %q:\n%s", want, ours)
		}
	}
	if ours.KeyboardLocked {
		t.Errorf("keyboard locked after the logo (Hercules's WCC restores it)")
	}
	for _, f := range ours.Fields {
		if !f.Attr.Protected() {
			t.Errorf("unprotected field at %v; the logo is all protected", f.Pos)
		}
	}
	c.Close()
	if err := c.Err(); err != ErrClosed {
		t.Errorf("Err after Close = %v, want ErrClosed", err)
	}
	// Hercules frees device 0700 once it sees the connection close.
	waitLog(t, p, "HHCTE007I 3270 device 0700", 10*time.Second)

	s := startS3270(t)
	if _, err := s.do(ctx, "Connect("+addr+")"); err != nil {
		t.Fatal(err)
	}
	theirs, cur, err := s.waitScreen(ctx, func(rows []string) bool { return containsLine(rows, "Device number") })
	if err != nil {
		t.Fatal(err)
	}
	if !equalRows(ours.Rows(), theirs) {
		t.Errorf("logo differs from s3270's:\n%s", diffRows(theirs, ours.Rows()))
	}
	if ours.Cursor != cur {
		t.Errorf("cursor at %v, s3270 has it at %v", ours.Cursor, cur)
	}
	s.do(ctx, "Disconnect()")
	if !t.Failed() {
		saveRecording(t, "hercules-logo", "Hercules 3.13 console logo, device 0700 (hercules_test.go)", rec.records(), theirs)
	}
}

// TestHerculesTwoTerminals holds our client on device 0700 while s3270
// takes 0701 by LU name, and checks that each sees its own device.
func TestHerculesTwoTerminals(t *testing.T) {
	_, addr := startHercules(t)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	c, err := Dial(ctx, addr, Config{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ours, err := c.WaitFor(ctx, func(s Screen) bool { return strings.Contains(s.String(), "Device number") })
	if err != nil {
		t.Fatal(err)
	}
	s := startS3270(t)
	if _, err := s.do(ctx, "Connect(0701@"+addr+")"); err != nil {
		t.Fatal(err)
	}
	theirs, _, err := s.waitScreen(ctx, func(rows []string) bool { return containsLine(rows, "Device number") })
	if err != nil {
		t.Fatal(err)
	}
	if !containsLine(ours.Rows(), "Device number     : 0700") || !containsLine(theirs, "Device number     : 0701") {
		t.Errorf("devices: ours\n%s\ns3270's\n%s", ours, strings.Join(theirs, "\n"))
	}
	// Apart from the device and subchannel numbers, the two logos agree.
	norm := func(rows []string) []string {
		out := append([]string(nil), rows...)
		for i, r := range out {
			if strings.Contains(r, "Device number") || strings.Contains(r, "Subchannel") {
				out[i] = r[:20]
			}
		}
		return out
	}
	if !equalRows(norm(ours.Rows()), norm(theirs)) {
		t.Errorf("logos differ:\n%s", diffRows(norm(theirs), norm(ours.Rows())))
	}
	s.do(ctx, "Disconnect()")
}
