package region

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
)

func quietLogger() logrus.FieldLogger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}

func TestProtectedMode(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		refused bool
	}{
		{"AllLoopback", Config{SyslogTCP: "127.0.0.1:0", SyslogUDP: "127.0.0.1:0", UnsolMsg: "127.0.0.1:0", HTTP: "localhost:0"}, false},
		{"IPv6Loopback", Config{UnsolMsg: "[::1]:0"}, false},
		{"UnsolMsgAnyAddress", Config{UnsolMsg: ":7002"}, true},
		{"UnsolMsgWildcard", Config{UnsolMsg: "0.0.0.0:7002"}, true},
		{"UnsolMsgHostName", Config{UnsolMsg: "example.net:7002"}, true},
		{"UnsolMsgWithClients", Config{UnsolMsg: "0.0.0.0:7002", ClientsFile: "/nonexistent"}, false},
		{"SyslogWildcard", Config{SyslogTCP: "0.0.0.0:7514"}, true},
		{"SyslogUDPWildcard", Config{SyslogUDP: "0.0.0.0:7514"}, true},
		{"SyslogWithAllow", Config{SyslogTCP: "0.0.0.0:7514", Allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, false},
		{"HTTPWildcard", Config{HTTP: "[::]:7080"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &Region{cfg: tc.cfg}
			err := r.checkProtectedMode(tc.cfg.ClientsFile != "")
			if got := errors.Is(err, ErrProtected); got != tc.refused {
				t.Fatalf("checkProtectedMode() = %v, want refused=%v", err, tc.refused)
			}
		})
	}
}

func TestAllowList(t *testing.T) {
	// 127.0.0.1 is outside 10.0.0.0/8: SYSLOG and HTTP connections from it
	// are closed at once; UNSOLMSG, which authenticates, is not filtered.
	r, err := New(Config{Name: "T", SyslogTCP: "127.0.0.1:0", HTTP: "127.0.0.1:0", UnsolMsg: "127.0.0.1:0",
		Allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	for _, name := range []string{"syslog", "http"} {
		c, err := net.Dial("tcp", r.Addr(name).String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err = c.Read(make([]byte, 1))
		c.Close()
		if ne, ok := err.(net.Error); err == nil || ok && ne.Timeout() {
			t.Errorf("%s: connection from outside --allow was not closed (%v)", name, err)
		}
	}
	c, err := net.Dial("tcp", r.Addr("unsolmsg").String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, `{"type":"logon","req":1,"client":"x","version":1}`+"\n")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, 512)
	n, _ := c.Read(b)
	if !strings.Contains(string(b[:n]), `"type":"accept"`) {
		t.Errorf("UNSOLMSG answered %q, want accept", b[:n])
	}
}

func TestShutdownIsClean(t *testing.T) {
	r, err := New(Config{Name: "T", SyslogTCP: "127.0.0.1:0", SyslogUDP: "127.0.0.1:0", UnsolMsg: "127.0.0.1:0",
		HTTP: "127.0.0.1:0", Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	select {
	case err := <-r.Err():
		t.Fatalf("a server failed: %v", err)
	default:
	}
}
