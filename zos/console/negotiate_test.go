package console

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"net"
	"testing"
	"time"
)

// fakeTerminal plays the terminal's side of the negotiation on c: it
// agrees to every option (each reply written in pieces when split), says
// it is an IBM-3278-2, and answers the Read Partition Query with reply
// (the bytes after the AID, IAC doubling and EOR added here).
func fakeTerminal(c net.Conn, split bool, reply []byte) {
	write := func(b []byte) {
		if !split {
			c.Write(b)
			return
		}
		for i := range b {
			c.Write(b[i : i+1])
			time.Sleep(5 * time.Millisecond)
		}
	}
	r := bufio.NewReader(c)
	var rec []byte
	for {
		b, err := r.ReadByte()
		if err != nil {
			return
		}
		if b != telnetIAC {
			rec = append(rec, b)
			continue
		}
		cmd, err := r.ReadByte()
		if err != nil {
			return
		}
		switch cmd {
		case telnetIAC:
			rec = append(rec, telnetIAC)
		case 0xfd, 0xfb: // DO, WILL
			opt, _ := r.ReadByte()
			answer := byte(0xfb)
			if cmd == 0xfb {
				answer = 0xfd
			}
			write([]byte{telnetIAC, answer, opt})
		case 0xfa: // SB TERMINAL-TYPE SEND IAC SE
			for {
				x, err := r.ReadByte()
				if err != nil || x == telnetSE {
					break
				}
			}
			write(append(append([]byte{telnetIAC, 0xfa, 0x18, 0x00}, "IBM-3278-2-E"...), telnetIAC, telnetSE))
		case telnetEOR:
			if bytes.Equal(rec, []byte{0xf3, 0x00, 0x05, 0x01, 0xff, 0x02}) { // the query, IAC doubling undone
				if reply == nil {
					return // a terminal that does not answer the query
				}
				out := []byte{aidQuery}
				for _, x := range reply {
					out = append(out, x)
					if x == telnetIAC {
						out = append(out, telnetIAC)
					}
				}
				write(append(out, telnetIAC, telnetEOR))
			}
			rec = rec[:0]
		}
	}
}

// usableArea is a Usable Area query reply for rows x cols.
func usableArea(rows, cols byte) []byte {
	f := []byte{0x00, 0x17, 0x81, 0x81, 0x01, 0x00, 0x00, cols, 0x00, rows, 0x01}
	return append(f, make([]byte, 0x17-len(f))...)
}

// charSets is a Character Sets query reply with one descriptor of length
// dl naming code page cp.
func charSets(dl byte, cp uint16) []byte {
	f := []byte{0x00, 0x00, 0x81, 0x85, 0x82, 0x00, 0x09, 0x0c, 0x00, 0x00, 0x00, 0x00, dl}
	if dl > 0 {
		d := make([]byte, dl)
		if dl >= 2 {
			d[dl-2], d[dl-1] = byte(cp>>8), byte(cp)
		}
		f = append(f, d...)
	}
	f[1] = byte(len(f))
	return f
}

// TestNegotiateHostileTerminal sends go3270's negotiation the query
// replies that panic or spin it (a structured field shorter than its
// header, Character Sets descriptors of length 0) and option replies in
// pieces: every one ends in an error or a terminal, never a crash or a
// hang, and a well-formed terminal in pieces negotiates.
func TestNegotiateHostileTerminal(t *testing.T) {
	t.Parallel() // it waits for negotiation timeouts
	for _, tt := range []struct {
		name    string
		split   bool
		reply   []byte
		wantErr bool
		rows    int
	}{
		{"well formed", false, append(usableArea(24, 80), charSets(7, 1047)...), false, 24},
		{"s3270's", false, mustHex(s3270QueryReply), false, 24},
		{"model 4 in pieces", true, append(usableArea(43, 80), charSets(7, 37)...), false, 43},
		{"no query reply", false, nil, false, 24},
		{"length 0", false, []byte{0x00, 0x00}, true, 0},
		{"length 2", false, []byte{0x00, 0x02}, true, 0},
		{"length 3", false, []byte{0x00, 0x03, 0x81}, true, 0},
		{"length past the end", false, []byte{0x00, 0x40, 0x81, 0x81}, true, 0},
		{"length cut", false, append(usableArea(24, 80), 0x00), true, 0},
		{"descriptors of length 0", false, charSets(0, 0), true, 0},
		{"0xff data", false, append(usableArea(24, 80), 0x00, 0x06, 0x81, 0x99, 0xff, 0xff), false, 24},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.reply == nil && testing.Short() {
				t.Skip("waits out go3270's 3-second wait for the query reply: not run with -short")
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			cc, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer cc.Close()
			sc, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer sc.Close()
			done := make(chan struct{})
			go func() { defer close(done); fakeTerminal(cc, tt.split, tt.reply) }()
			type result struct {
				rows int
				err  error
			}
			res := make(chan result, 1)
			go func() {
				dev, err := negotiateTerminal(newTermConn(sc, 10*time.Second))
				r := result{err: err}
				if dev != nil {
					r.rows, _ = dev.AltDimensions()
				}
				res <- r
			}()
			var r result
			select {
			case r = <-res:
			case <-time.After(60 * time.Second):
				t.Fatal("the negotiation hangs")
			}
			sc.Close()
			cc.Close()
			<-done
			switch {
			case tt.wantErr && r.err == nil:
				t.Errorf("negotiated (%d rows); want an error", r.rows)
			case tt.wantErr && !errors.Is(r.err, errBadQueryReply):
				t.Errorf("error %v; want the malformed query reply", r.err)
			case !tt.wantErr && r.err != nil:
				t.Errorf("negotiation failed: %v", r.err)
			case !tt.wantErr && r.rows != tt.rows:
				t.Errorf("%d rows; want %d", r.rows, tt.rows)
			}
		})
	}
}

// s3270QueryReply is the query reply s3270 4.1ga10 (-model 3278-2, the
// Debian package) sent go3270's Read Partition Query, captured on this
// project's build machine: the bytes after the AID, IAC doubling undone,
// without IAC EOR.
const s3270QueryReply = "000e81808081848586878895a1a60017818101000050001801000a02e50002006f090c07800008818400078000001b" +
	"81858200090c000000000700100002b900250100f103c3013600268186001000f4f100f200f300f400f500f600f700f800f9" +
	"00fa00fb00fc00fd00fe00ff00000f81870500f0f1f1f2f2f4f4f8f800078188000102000c81950000400040000101001281" +
	"a1000000000000000006a7f3f2f7f0001181a600000b01000050001800500018"

// FuzzQueryReply checks that no query reply the check lets through makes
// go3270's reading of it panic or loop: negotiateTerminal returns for
// every input. Seeded with s3270's real reply and the malformed ones of
// TestNegotiateHostileTerminal.
func FuzzQueryReply(f *testing.F) {
	real, err := hex.DecodeString(s3270QueryReply)
	if err != nil {
		f.Fatal(err)
	}
	if err := checkQueryReply(real); err != nil {
		f.Fatalf("s3270's own query reply is refused: %v", err)
	}
	f.Add(real)
	f.Add([]byte{0x00, 0x00})
	f.Add(charSets(0, 0))
	f.Add(charSets(1, 0))
	f.Fuzz(func(t *testing.T, reply []byte) {
		if len(reply) > 4096 {
			return
		}
		if err := checkQueryReply(reply); err != nil {
			return
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		cc, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		sc, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { defer close(done); fakeTerminal(cc, false, reply) }()
		res := make(chan error, 1)
		go func() { _, err := negotiateTerminal(newTermConn(sc, 10*time.Second)); res <- err }()
		select {
		case <-res:
		case <-time.After(30 * time.Second):
			t.Fatalf("the negotiation hangs on %x", reply)
		}
		sc.Close()
		cc.Close()
		<-done
	})
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}
