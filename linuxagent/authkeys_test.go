package linuxagent

import (
	"net/netip"
	"strings"
	"testing"
)

func TestMatchFrom(t *testing.T) {
	for _, tt := range []struct {
		from string
		addr string
		want bool
	}{
		{`"127.0.0.1"`, "127.0.0.1", true},
		{`"127.0.0.1"`, "127.0.0.2", false},
		{`"127.0.0.?"`, "127.0.0.9", true},
		{`"127.0.0.?"`, "127.0.0.10", false},
		{`"10.*"`, "10.1.2.3", true},
		{`"10.0.0.0/8,192.168.0.0/16"`, "192.168.4.5", true},
		{`"!10.0.0.1,10.0.0.0/8"`, "10.0.0.1", false},
		{`"!10.0.0.1,10.0.0.0/8"`, "10.0.0.2", true},
		{`"10.0.0.0/8,!10.0.0.0/24"`, "10.0.0.7", false},
		{`"!10.0.0.1"`, "10.0.0.2", false}, // negations alone permit nothing
		{`"2001:db8::/32"`, "2001:db8::1", true},
		{`"2001:DB8::*"`, "2001:db8::1", true},
		{`"127.0.0.1"`, "::ffff:127.0.0.1", true}, // IPv4-mapped
	} {
		pats, err := parseFrom(tt.from)
		if err != nil {
			t.Fatalf("parseFrom(%s): %v", tt.from, err)
		}
		if got := matchFrom(pats, netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("from=%s, address %s: %v, want %v", tt.from, tt.addr, got, tt.want)
		}
	}
	for _, bad := range []string{`127.0.0.1`, `"10.0.0.0/33"`, `"host.example.com"`, `"a,,b"`, `""`, `"!"`} {
		if _, err := parseFrom(bad); err == nil {
			t.Errorf("parseFrom(%s) accepted", bad)
		}
	}
}

func TestParseAuthorizedKeys(t *testing.T) {
	logger, buf := testLogger(t)
	k1 := newUserKey(t, t.TempDir(), "one")
	k2 := newUserKey(t, t.TempDir(), "two")
	data := "# comment\n\n" + string(k1.authKey) + "garbage line\n" +
		`command="/bin/date" ` + string(k2.authKey) +
		`no-pty,FROM="127.0.0.1" ` + string(k2.authKey)
	keys, n := parseAuthorizedKeys([]byte(data), logger)
	if n != 2 || len(keys) != 2 {
		t.Fatalf("%d usable lines, %d keys; want 2 and 2", n, len(keys))
	}
	if e := keys[string(k2.signer.PublicKey().Marshal())]; len(e) != 1 || e[0].line != 6 || len(e[0].from) != 1 {
		t.Errorf("second key: %+v, want the line-6 entry with its from=", e)
	}
	log := buf.String()
	for _, want := range []string{"line=4", "not an OpenSSH public key", "line=5", `option \"command\" is not supported`} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}
