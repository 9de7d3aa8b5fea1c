package client

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/zbridge/zbridge/protocol"
)

// TestDialCommandPipelines checks that DialCommand writes the command
// behind the logon, before any accept: the server here reads both frames
// before it answers the logon, and then runs the exchange of a command
// with output to its reply.
func TestDialCommandPipelines(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	served := make(chan error, 1)
	go func() { served <- serveOneCommand(ln) }()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, pending, err := DialCommand(ctx, Config{Addr: ln.Addr().String(), Client: "tester", Secret: "s"},
		CommandRequest{ID: "k1", Target: "linux:web1", Command: "uptime", Timeout: 2 * time.Second})
	if err != nil {
		t.Fatalf("DialCommand: %v", err)
	}
	defer c.Close()
	if c.Session != "R1-7" {
		t.Errorf("session %q, want R1-7", c.Session)
	}
	var lines []string
	reply, err := pending.Wait(ctx, func(f *protocol.Frame) { lines = append(lines, f.Text) })
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if reply.RC == nil || *reply.RC != 3 || len(lines) != 1 || lines[0] != "up 3 days" {
		t.Errorf("reply %+v, output %q; want rc 3 and one line", reply, lines)
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
}

// serveOneCommand accepts one connection and reads the logon and the
// command before it accepts the logon (a client that waits for the accept
// before sending its command times out here); then it answers the command.
func serveOneCommand(ln net.Listener) error {
	nc, err := ln.Accept()
	if err != nil {
		return err
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	r := protocol.NewReader(nc, 1<<16)
	var logon, cmd protocol.Frame
	if err := r.Next(&logon); err != nil {
		return err
	}
	if logon.Type != protocol.TypeLogon || logon.Client != "tester" || logon.Secret != "s" {
		return errors.New("first frame is not the logon")
	}
	if err := r.Next(&cmd); err != nil {
		return errors.New("no command before the accept: " + err.Error())
	}
	if cmd.Type != protocol.TypeCommand || cmd.Req != logon.Req+1 || cmd.ID != "k1" ||
		cmd.Target != "linux:web1" || cmd.Command != "uptime" || cmd.Timeout != 2 {
		return errors.New("second frame is not the command")
	}
	rc := 3
	var b []byte
	for _, f := range []*protocol.Frame{
		{Type: protocol.TypeAccept, Req: logon.Req, Session: "R1-7", Version: protocol.Version,
			Limits: &protocol.Limits{Heartbeat: 30, IdleTimeout: 90}},
		{Type: protocol.TypeOutput, Req: cmd.Req, ID: "k1", Stream: "stdout", Text: "up 3 days", EOL: true},
		{Type: protocol.TypeReply, Req: cmd.Req, ID: "k1", RC: &rc},
	} {
		if b, err = protocol.AppendFrame(b, f); err != nil {
			return err
		}
	}
	_, err = nc.Write(b)
	return err
}

// TestDialCommandContextEnds checks a ctx that ends once the command is
// written but before the logon is answered: the command may run, so an
// accept that comes then is not taken for a failure; DialCommand returns
// the session, and Wait asks for the command to be cancelled by its ID and
// returns the region's reply.
func TestDialCommandContextEnds(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() {
		served <- func() error {
			nc, err := ln.Accept()
			if err != nil {
				return err
			}
			defer nc.Close()
			nc.SetDeadline(time.Now().Add(30 * time.Second))
			r := protocol.NewReader(nc, 1<<16)
			var logon, cmd, cancelReq protocol.Frame
			if err := r.Next(&logon); err != nil {
				return err
			}
			if err := r.Next(&cmd); err != nil {
				return err
			}
			cancel() // the client's ctx ends before the logon is answered
			time.Sleep(100 * time.Millisecond)
			b, _ := protocol.AppendFrame(nil, &protocol.Frame{Type: protocol.TypeAccept, Req: logon.Req, Session: "R1-8",
				Version: protocol.Version})
			if _, err := nc.Write(b); err != nil {
				return err
			}
			if err := r.Next(&cancelReq); err != nil {
				return errors.New("no cancel: " + err.Error())
			}
			if cancelReq.Type != protocol.TypeCancel || cancelReq.ID != "k2" {
				return errors.New("not a cancel of k2: " + cancelReq.Type)
			}
			b, _ = protocol.AppendFrame(nil, &protocol.Frame{Type: protocol.TypeReply, Req: cmd.Req, ID: "k2",
				Error: &protocol.Error{Code: "cancelled", Message: "cancelled by request"}})
			_, err = nc.Write(b)
			return err
		}()
	}()
	c, pending, err := DialCommand(ctx, Config{Addr: ln.Addr().String(), Client: "tester"},
		CommandRequest{ID: "k2", Target: "linux:web1", Command: "sleep 60"})
	if err != nil {
		t.Fatalf("DialCommand: %v; want the accepted session", err)
	}
	defer c.Close()
	reply, err := pending.Wait(ctx, nil)
	var ce *CommandError
	if !errors.As(err, &ce) || ce.Code != "cancelled" || reply == nil || reply.ID != "k2" {
		t.Fatalf("Wait: %+v, %v; want the cancelled reply", reply, err)
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
}
