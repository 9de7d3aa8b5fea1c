package region

import (
	"net"
	"net/netip"

	"github.com/sirupsen/logrus"
)

func allowed(allow []netip.Prefix, a net.Addr) bool {
	var ip netip.Addr
	switch a := a.(type) {
	case *net.TCPAddr:
		ip, _ = netip.AddrFromSlice(a.IP)
	case *net.UDPAddr:
		ip, _ = netip.AddrFromSlice(a.IP)
	default:
		return false
	}
	ip = ip.Unmap()
	for _, p := range allow {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// allowListener closes connections from outside the allow list.
type allowListener struct {
	net.Listener
	allow []netip.Prefix
	log   logrus.FieldLogger
}

func (l *allowListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if allowed(l.allow, c.RemoteAddr()) {
			return c, nil
		}
		l.log.WithField("remote", c.RemoteAddr().String()).Warn("connection refused: sender not in --allow")
		c.Close()
	}
}

// allowPacketConn drops datagrams from outside the allow list.
type allowPacketConn struct {
	net.PacketConn
	allow []netip.Prefix
}

func (c *allowPacketConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, a, err := c.PacketConn.ReadFrom(p)
		if err != nil || allowed(c.allow, a) {
			return n, a, err
		}
	}
}
