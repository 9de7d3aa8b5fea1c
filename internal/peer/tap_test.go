package peer

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// TestTap: what the tap forwards reaches the target and is kept, in the
// order written and numbered by connection; replies come back; a target
// that closes its side closes the sender's, and a target that refuses
// gets the sender's connection closed and the next ones refused, until
// it is back.
func TestTap(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []byte, 2)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				// Reads up to "end", answers "ok", and closes.
				defer c.Close()
				var all []byte
				buf := make([]byte, 1024)
				for !bytes.HasSuffix(all, []byte("end")) {
					n, err := c.Read(buf)
					all = append(all, buf[:n]...)
					if err != nil {
						break
					}
				}
				c.Write([]byte("ok"))
				got <- all
			}()
		}
	}()
	tap := StartTap(t, ln.Addr().String())
	for i, parts := range [][]string{{"one ", "two ", "end"}, {"three ", "end"}} {
		c, err := net.Dial("tcp", tap.Addr)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range parts {
			if _, err := io.WriteString(c, p); err != nil {
				t.Fatal(err)
			}
			time.Sleep(20 * time.Millisecond) // one chunk each, most likely
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		reply, err := io.ReadAll(c) // "ok", then the end the target's close brings
		c.Close()
		if string(reply) != "ok" || err != nil {
			t.Fatalf("connection %d: reply %q, %v; want \"ok\" and the end", i+1, reply, err)
		}
		select {
		case b := <-got:
			if want := bytes.Join(toBytes(parts), nil); !bytes.Equal(b, want) {
				t.Errorf("connection %d: the target read %q, want %q", i+1, b, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the target read nothing")
		}
	}
	var byConn [3][]byte
	for _, ch := range tap.Chunks() {
		if ch.Conn < 1 || ch.Conn > 2 {
			t.Fatalf("chunk of connection %d", ch.Conn)
		}
		byConn[ch.Conn] = append(byConn[ch.Conn], ch.Data...)
	}
	if string(byConn[1]) != "one two end" || string(byConn[2]) != "three end" || tap.Conns() != 2 {
		t.Errorf("kept %q and %q in %d connections", byConn[1], byConn[2], tap.Conns())
	}

	// A target that is gone: the sender's connection is closed, and the
	// next ones are refused, as the target would refuse them.
	target := ln.Addr().String()
	ln.Close()
	// (The reset can come before the dial has returned.)
	if c, err := net.Dial("tcp", tap.Addr); err == nil {
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("read through a tap whose target is gone: %v, want the connection closed", err)
		}
	} else if !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("dial of a tap whose target is gone: %v, want a connection reset", err)
	}
	if c, err := net.Dial("tcp", tap.Addr); err == nil {
		c.Close()
		t.Errorf("a tap whose target is gone took a connection")
	}
	// The target back on its address: the tap forwards again.
	ln2, err := net.Listen("tcp", target)
	if err != nil {
		t.Fatal(err)
	}
	defer ln2.Close()
	go func() {
		for {
			c, err := ln2.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("back"))
			c.Close()
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", tap.Addr)
		if err == nil {
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			b, _ := io.ReadAll(c)
			c.Close()
			if string(b) == "back" {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no connection through the tap once its target was back: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func toBytes(ss []string) [][]byte {
	var out [][]byte
	for _, s := range ss {
		out = append(out, []byte(s))
	}
	return out
}
