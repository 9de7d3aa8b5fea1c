package commands_test

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/zbridge/zbridge/commands"
)

func TestParseTarget(t *testing.T) {
	tests := []struct {
		in   string
		want commands.Target
		str  string // want.String()
	}{
		{"linux:web1", commands.Target{Kind: commands.KindLinux, Name: "web1"}, "linux:web1"},
		{"LINUX:web1", commands.Target{Kind: commands.KindLinux, Name: "web1"}, "linux:web1"},
		{"Linux:WEB1", commands.Target{Kind: commands.KindLinux, Name: "WEB1"}, "linux:WEB1"},
		{"  linux:web1\t", commands.Target{Kind: commands.KindLinux, Name: "web1"}, "linux:web1"},
		{"linux:NAME=web1", commands.Target{Kind: commands.KindLinux, Name: "web1"}, "linux:web1"},
		{"linux:name=web1", commands.Target{Kind: commands.KindLinux, Name: "web1"}, "linux:web1"},
		{"linux:ADDR=10.1.2.3", commands.Target{Kind: commands.KindLinux, Addr: netip.MustParseAddr("10.1.2.3")}, "linux:ADDR=10.1.2.3"},
		{"linux:ADDR=::ffff:10.1.2.3", commands.Target{Kind: commands.KindLinux, Addr: netip.MustParseAddr("10.1.2.3")}, "linux:ADDR=10.1.2.3"},
		{"linux:ADDR=2001:db8::7", commands.Target{Kind: commands.KindLinux, Addr: netip.MustParseAddr("2001:db8::7")}, "linux:ADDR=2001:db8::7"},
		{"linux:web1,NODE=ZVM002", commands.Target{Kind: commands.KindLinux, Name: "web1", Node: "ZVM002"}, "linux:web1,NODE=ZVM002"},
		{"linux:ADDR=10.1.2.3,node=ZVM002", commands.Target{Kind: commands.KindLinux, Addr: netip.MustParseAddr("10.1.2.3"), Node: "ZVM002"}, "linux:ADDR=10.1.2.3,NODE=ZVM002"},
		{"zvm:VMSYS1", commands.Target{Kind: commands.KindZVM, Name: "VMSYS1"}, "zvm:VMSYS1"},
		{"ZVM:NAME=VMSYS1", commands.Target{Kind: commands.KindZVM, Name: "VMSYS1"}, "zvm:VMSYS1"},
		{"region", commands.Target{Kind: commands.KindRegion}, "region"},
		{"REGION", commands.Target{Kind: commands.KindRegion}, "region"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := commands.ParseTarget(tt.in)
			if err != nil {
				t.Fatalf("ParseTarget(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("ParseTarget(%q) = %#v, want %#v", tt.in, got, tt.want)
			}
			if s := got.String(); s != tt.str {
				t.Errorf("String() = %q, want %q", s, tt.str)
			}
			again, err := commands.ParseTarget(got.String())
			if err != nil || again != got {
				t.Errorf("ParseTarget(%q) = %#v, %v; want %#v (round trip)", got.String(), again, err, got)
			}
		})
	}
}

func TestParseTargetErrors(t *testing.T) {
	tests := []struct{ name, in string }{
		{"empty", ""},
		{"blank", "   "},
		{"kind only", "linux"},
		{"no system", "linux:"},
		{"unknown kind", "foo:x"},
		// Names are ASCII: Unicode case mapping would reach a system a
		// pattern (compared as ASCII) does not grant.
		{"dotted capital I", "linux:webİ"},
		{"long s", "zvm:VMſ1"},
		{"node long s", "linux:web1,NODE=ZVMſ"},
		{"equals in a name", "linux:NAME=a=b"},
		{"z/VM name too long", "zvm:VMSYSTEM1"},
		{"linux name too long", "linux:" + strings.Repeat("a", 254)},
		{"region with a name", "region:x"},
		{"zvm by address", "zvm:ADDR=1.2.3.4"},
		{"address not an IP", "linux:ADDR=notip"},
		{"address empty", "linux:ADDR="},
		{"second word without key", "linux:a,b"},
		{"name and address", "linux:NAME=x,ADDR=1.2.3.4"},
		{"address then name", "linux:ADDR=1.2.3.4,web1"},
		{"name with a blank", "linux:web 1"},
		{"name with a tab", "linux:NAME=web\t1"},
		{"name with a leading blank", "linux: web1"},
		{"unknown key", "linux:web1,HOST=x"},
		{"unknown first key", "linux:HOST=x"},
		{"empty name", "linux:NAME="},
		{"node only", "linux:NODE=ZVM002"},
		{"trailing comma", "linux:web1,"},
		{"leading comma", "linux:,NODE=x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := commands.ParseTarget(tt.in)
			if !errors.Is(err, commands.ErrBadTarget) {
				t.Fatalf("ParseTarget(%q) = %#v, %v; want ErrBadTarget", tt.in, got, err)
			}
			if got != (commands.Target{}) {
				t.Errorf("ParseTarget(%q) returned %#v with its error, want the zero Target", tt.in, got)
			}
		})
	}
}

// FuzzParseTarget checks that whatever parses prints as text that parses
// back to the same target.
func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"linux:web1", "LINUX:web1", "linux:NAME=web1", "linux:ADDR=10.1.2.3",
		"linux:ADDR=::ffff:10.1.2.3", "linux:web1,NODE=ZVM002", "zvm:VMSYS1", "region", "linux:NAME=a=b",
		"linux:ADDR=fe80::1%eth0", "linux:a:b", "zvm:x,NODE=y,NAME=z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tgt, err := commands.ParseTarget(s)
		if err != nil {
			if !errors.Is(err, commands.ErrBadTarget) {
				t.Fatalf("ParseTarget(%q): %v, not ErrBadTarget", s, err)
			}
			return
		}
		again, err := commands.ParseTarget(tgt.String())
		if err != nil || again != tgt {
			t.Fatalf("ParseTarget(%q) = %#v; its String %q parses to %#v, %v", s, tgt, tgt.String(), again, err)
		}
	})
}
