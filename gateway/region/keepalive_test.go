package region

import (
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/zbridge/zbridge/gateway/store/memstore"
)

// TestAcceptedKeepAlive: the connections the region accepts (SYSLOG and
// UNSOLMSG here) have the kernel's keepalive of AcceptedTCPKeepAlive, each
// its own idle time from 2 to 4 minutes, and its user timeout, not Go's
// 15 s keepalive. The region runs in this process: the test finds the
// accepted sockets among its own descriptors by their addresses.
func TestAcceptedKeepAlive(t *testing.T) {
	st := memstore.New(memstore.Config{})
	defer st.Close()
	r, err := New(Config{Name: "ZBR1", Store: st, Logger: quietLogger(), SyslogTCP: "127.0.0.1:0", UnsolMsg: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	idle := int(AcceptedTCPKeepAlive / time.Second)
	for _, name := range []string{"syslog", "unsolmsg"} {
		c, err := net.Dial("tcp", r.Addr(name).String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// The socket is found as soon as it is accepted, maybe before its
		// settings are made: look until they are, or the deadline.
		var keepIdle, interval, user int
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			fd := acceptedFD(t, r.Addr(name).(*net.TCPAddr), c.LocalAddr().(*net.TCPAddr))
			if fd >= 0 {
				keepIdle, _ = unix.GetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE)
				interval, _ = unix.GetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPINTVL)
				user, _ = unix.GetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT)
				if keepIdle >= idle && keepIdle < 2*idle && interval == idle/3 && user == idle*3500 {
					break
				}
			}
			if time.Now().After(deadline) {
				if fd < 0 {
					t.Fatalf("%s: the accepted socket of %v is not among this process's descriptors", name, c.LocalAddr())
				}
				t.Fatalf("%s: accepted connection's keepalive idle %d s, interval %d s, user timeout %d ms; want %d to %d s, %d s, %d ms",
					name, keepIdle, interval, user, idle, 2*idle-1, idle/3, idle*3500)
			}
		}
	}
}

// acceptedFD returns the descriptor of this process whose socket has the
// local address local and the peer peer, or -1.
func acceptedFD(t *testing.T, local, peer *net.TCPAddr) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		la, err1 := unix.Getsockname(fd)
		pa, err2 := unix.Getpeername(fd)
		if err1 != nil || err2 != nil {
			continue
		}
		l, ok1 := la.(*unix.SockaddrInet4)
		p, ok2 := pa.(*unix.SockaddrInet4)
		if ok1 && ok2 && l.Port == local.Port && p.Port == peer.Port {
			return fd
		}
	}
	return -1
}
