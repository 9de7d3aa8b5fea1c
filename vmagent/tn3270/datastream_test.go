package tn3270

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/racingmars/go3270"
)

func TestAddresses(t *testing.T) {
	for addr := range 4096 {
		e := appendAddr(nil, addr, 1920)
		if e[0]&0xC0 == 0 || e[1]&0xC0 == 0 {
			t.Fatalf("12-bit address %d encoded as % X: not graphic characters", addr, e)
		}
		if got := decodeAddr(e[0], e[1]); got != addr {
			t.Fatalf("12-bit %d -> % X -> %d", addr, e, got)
		}
	}
	for addr := range 1 << 14 {
		e := appendAddr(nil, addr, 5000)
		if got := decodeAddr(e[0], e[1]); got != addr || e[0]&0xC0 != 0 {
			t.Fatalf("14-bit %d -> % X -> %d", addr, e, got)
		}
	}
	// Known encodings (GA23-0059 code table): row 1 col 0 of 24x80 = 80.
	if got := appendAddr(nil, 80, 1920); !bytes.Equal(got, []byte{0xC1, 0x50}) {
		t.Errorf("address 80 = % X, want C1 50", got)
	}
	if got := decodeAddr(0x5D, 0x7F); got != 1919 {
		t.Errorf("5D 7F = %d, want 1919", got)
	}
	if got := decodeAddr(0x07, 0x7F); got != 1919 {
		t.Errorf("14-bit 07 7F = %d, want 1919", got)
	}
	if n := len([]rune(x3270GE)); n != 0xFF-0x40 {
		t.Errorf("x3270GE has %d runes, want %d", n, 0xFF-0x40)
	}
}

// parse applies records to a fresh model 2 buffer (model 4 if alt).
func parse(t *testing.T, model int, recs ...[]byte) (*Buffer, []byte, error) {
	t.Helper()
	b, err := NewBuffer(model, nil)
	if err != nil {
		t.Fatal(err)
	}
	var reply []byte
	for i, r := range recs {
		reply, err = ParseDataStream(b, r)
		if err != nil && i < len(recs)-1 {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	return b, reply, err
}

func TestDataStream(t *testing.T) {
	ew := []byte{cmdEW, 0xC3}
	tests := []struct {
		name  string
		model int
		recs  [][]byte
		check func(t *testing.T, s Screen, reply []byte)
	}{
		{"EW text at 0", 2, [][]byte{cat(ew, ebc("hello"))}, func(t *testing.T, s Screen, _ []byte) {
			wantRow(t, s, 0, "hello")
			if s.Formatted() || s.Cursor != (Pos{}) || s.KeyboardLocked || s.Seq != 1 {
				t.Errorf("screen state %+v", s)
			}
		}},
		{"EW SNA form", 2, [][]byte{cat([]byte{snaEW, 0xC3}, ebc("sna"))}, func(t *testing.T, s Screen, _ []byte) {
			wantRow(t, s, 0, "sna")
		}},
		{"W starts at the cursor", 2, [][]byte{
			cat(ew, sba(2, 5), []byte{ordIC}),
			cat([]byte{cmdW, 0xC2}, ebc("here")),
		}, func(t *testing.T, s Screen, _ []byte) {
			wantRow(t, s, 2, "     here")
			if s.Cursor != (Pos{2, 5}) || s.Seq != 2 {
				t.Errorf("cursor %v seq %d", s.Cursor, s.Seq)
			}
		}},
		{"W keeps the screen, EW clears it", 2, [][]byte{
			cat(ew, sba(1, 0), ebc("one")),
			cat([]byte{cmdW, 0xC3}, sba(2, 0), ebc("two")),
		}, func(t *testing.T, s Screen, _ []byte) {
			wantRow(t, s, 1, "one")
			wantRow(t, s, 2, "two")
		}},
		{"EWA selects the alternate size", 4, [][]byte{cat([]byte{cmdEWA, 0xC3}, sba(0, 0), ebc("x"), []byte{ordSBA}, addr12(42, 79), ebc("z"))},
			func(t *testing.T, s Screen, _ []byte) {
				if r, c := s.Size(); r != 43 || c != 80 || !s.Alternate {
					t.Errorf("size %dx%d alt %v", r, c, s.Alternate)
				}
				wantRow(t, s, 42, strings.Repeat(" ", 79)+"z")
			}},
		{"EW after EWA returns to 24x80", 4, [][]byte{{cmdEWA, 0xC3}, {snaEW, 0xC3}}, func(t *testing.T, s Screen, _ []byte) {
			if r, c := s.Size(); r != 24 || c != 80 || s.Alternate {
				t.Errorf("size %dx%d alt %v", r, c, s.Alternate)
			}
		}},
		{"SBA outside the default size after EWA", 2, [][]byte{cat([]byte{cmdEW, 0xC3}, []byte{ordSBA}, addr12(23, 79), ebc("e"))},
			func(t *testing.T, s Screen, _ []byte) { wantRow(t, s, 23, strings.Repeat(" ", 79)+"e") }},
		{"SF and SFE", 2, [][]byte{cat(ew, []byte{ordSF, faProtInt}, ebc("title"),
			[]byte{ordSFE, 3, xa3270, faUnprot, xaForeground, byte(go3270.Red), xaHighlighting, byte(go3270.Underscore)}, ebc("input"),
			[]byte{ordSFE, 1, xaForeground, byte(go3270.Blue)}, ebc("noattr"))},
			func(t *testing.T, s Screen, _ []byte) {
				wantRow(t, s, 0, " title input noattr")
				if len(s.Fields) != 3 {
					t.Fatalf("fields %+v", s.Fields)
				}
				f0, f1, f2 := s.Fields[0], s.Fields[1], s.Fields[2]
				if !f0.Attr.Protected() || !f0.Attr.Intensified() || f0.Addr != 0 || f0.Len != 5 || f0.Text != "title" {
					t.Errorf("field 0 %+v", f0)
				}
				if f1.Attr.Protected() || f1.Color != go3270.Red || f1.Highlight != go3270.Underscore || f1.Addr != 6 {
					t.Errorf("field 1 %+v", f1)
				}
				if f2.Attr != 0 || f2.Color != go3270.Blue || f2.Len != 1920-13 {
					t.Errorf("field 2 %+v", f2)
				}
			}},
		{"SF attribute in code table form", 2, [][]byte{cat(ew, []byte{ordSF, 0xF8}, ebc("x"))}, func(t *testing.T, s Screen, _ []byte) {
			// 0xF8 = 11 1 1 10 0 0: protected, numeric (autoskip), intensified.
			if a := s.Fields[0].Attr; !a.Autoskip() || !a.Intensified() || a.Modified() {
				t.Errorf("attr %v", a)
			}
		}},
		{"14-bit SBA", 2, [][]byte{cat(ew, sba14(3, 7), ebc("14"))}, func(t *testing.T, s Screen, _ []byte) {
			wantRow(t, s, 3, "       14")
		}},
		{"SA colours characters, not fields", 2, [][]byte{cat(ew, []byte{ordSA, xaForeground, byte(go3270.Pink)}, ebc("p"),
			[]byte{ordSA, xaHighlighting, byte(go3270.ReverseVideo)}, ebc("r"), []byte{ordSA, xaAll, 0}, ebc("n"))},
			func(t *testing.T, s Screen, _ []byte) {
				wantRow(t, s, 0, "prn")
				if c := s.Cell(0, 0); c.Color != go3270.Pink || c.Highlight != 0 {
					t.Errorf("cell 0 %+v", c)
				}
				if c := s.Cell(0, 1); c.Color != go3270.Pink || c.Highlight != go3270.ReverseVideo {
					t.Errorf("cell 1 %+v", c)
				}
				if c := s.Cell(0, 2); c.Color != 0 || c.Highlight != 0 || s.Formatted() {
					t.Errorf("cell 2 %+v", c)
				}
			}},
		{"SA character set F1 is graphic escape", 2, [][]byte{cat(ew, []byte{ordSA, xaCharset, csAPL, 0xC5, ordSA, xaCharset, 0x00, 0xC5})},
			func(t *testing.T, s Screen, _ []byte) { wantRow(t, s, 0, "┌E") }},
		{"MF changes the attribute at the address", 2, [][]byte{cat(ew, []byte{ordSF, faUnprot}, ebc("secret"),
			sba(0, 0), []byte{ordMF, 2, xa3270, faHidden, xaForeground, byte(go3270.Green)}, ebc("X"))},
			func(t *testing.T, s Screen, _ []byte) {
				// MF moves past the attribute; X overwrites s.
				if f := s.Fields[0]; !f.Attr.Hidden() || !f.Attr.Protected() || f.Color != go3270.Green || f.Text[:6] != "Xecret" {
					t.Errorf("field %+v", f)
				}
				wantRow(t, s, 0, "")
			}},
		{"MF off an attribute skips its pairs", 2, [][]byte{cat(ew, sba(0, 3), []byte{ordMF, 1, xa3270, faProt}, ebc("Y"))},
			func(t *testing.T, s Screen, _ []byte) {
				wantRow(t, s, 0, "   Y")
				if s.Formatted() {
					t.Error("MF made a field")
				}
			}},
		{"IC", 2, [][]byte{cat(ew, sba(5, 6), []byte{ordIC}, sba(7, 0), ebc("later"))}, func(t *testing.T, s Screen, _ []byte) {
			if s.Cursor != (Pos{5, 6}) {
				t.Errorf("cursor %v", s.Cursor)
			}
		}},
		{"PT after an order moves to the next unprotected field", 2, [][]byte{cat(ew, sba(1, 0), []byte{ordSF, faProt}, ebc("prot"),
			[]byte{ordSF, faUnprot}, ebc("data"), sba(1, 1), []byte{ordPT}, ebc("Z"))},
			func(t *testing.T, s Screen, _ []byte) { wantRow(t, s, 1, " prot Zata") }},
		{"PT after data nulls to the end of the field", 2, [][]byte{cat(ew, []byte{ordSF, faUnprot}, ebc("aaaaaaaa"),
			[]byte{ordSF, faUnprot}, ebc("bbbb"), sba(0, 1), ebc("x"), []byte{ordPT}, ebc("y"))},
			func(t *testing.T, s Screen, _ []byte) { wantRow(t, s, 0, " x        ybbb") }},
		{"PT on an unprotected attribute moves one", 2, [][]byte{cat(ew, []byte{ordSF, faUnprot}, ebc("abc"), sba(0, 0), []byte{ordPT}, ebc("Q"))},
			func(t *testing.T, s Screen, _ []byte) { wantRow(t, s, 0, " Qbc") }},
		{"PT with no unprotected field goes to 0", 2, [][]byte{cat(ew, sba(0, 5), []byte{ordSF, faProt}, ebc("p"), []byte{ordPT}, ebc("W"))},
			func(t *testing.T, s Screen, _ []byte) { wantRow(t, s, 0, "W     p") }},
		{"RA", 2, [][]byte{cat(ew, sba(2, 0), []byte{ordRA}, addr12(2, 10), ebc("*"), ebc("+"))}, func(t *testing.T, s Screen, _ []byte) {
			wantRow(t, s, 2, "**********+")
		}},
		{"RA wraps past the end", 2, [][]byte{cat(ew, sba(23, 77), []byte{ordRA}, addr12(0, 2), ebc("#"), ebc("!"))}, func(t *testing.T, s Screen, _ []byte) {
			wantRow(t, s, 23, strings.Repeat(" ", 77)+"###")
			wantRow(t, s, 0, "##!")
		}},
		{"RA to its own address fills the buffer", 2, [][]byte{cat(ew, sba(3, 3), []byte{ordRA}, addr12(3, 3), ebc("."))}, func(t *testing.T, s Screen, _ []byte) {
			for r := range 24 {
				wantRow(t, s, r, strings.Repeat(".", 80))
			}
		}},
		{"RA of a GE character", 2, [][]byte{cat(ew, []byte{ordRA}, addr12(0, 3), []byte{ordGE, 0xA2})}, func(t *testing.T, s Screen, _ []byte) {
			wantRow(t, s, 0, "───")
			if c := s.Cell(0, 2); !c.GE || c.Char != 0xA2 {
				t.Errorf("cell %+v", c)
			}
		}},
		{"RA over an attribute removes it", 2, [][]byte{cat(ew, sba(0, 2), []byte{ordSF, faProt}, sba(0, 0), []byte{ordRA}, addr12(0, 4), ebc("r"))},
			func(t *testing.T, s Screen, _ []byte) {
				wantRow(t, s, 0, "rrrr")
				if s.Formatted() {
					t.Error("attribute survived")
				}
			}},
		{"EUA nulls unprotected positions only", 2, [][]byte{cat(ew, []byte{ordSF, faUnprot}, ebc("abcd"), []byte{ordSF, faProt}, ebc("PROT"),
			[]byte{ordSF, faUnprot}, ebc("efgh"), sba(0, 2), []byte{ordEUA}, addr12(0, 13), ebc("Z"))},
			func(t *testing.T, s Screen, _ []byte) { wantRow(t, s, 0, " a    PROT   Zh") }},
		{"EUA to its own address covers the buffer", 2, [][]byte{cat(ew, []byte{ordSF, faProt}, ebc("keep"), []byte{ordSF, faUnprot}, ebc("gone"),
			sba(0, 7), []byte{ordEUA}, addr12(0, 7))},
			func(t *testing.T, s Screen, _ []byte) { wantRow(t, s, 0, " keep") }},
		{"EUA on an unformatted screen", 2, [][]byte{cat(ew, ebc("abcdef"), sba(0, 1), []byte{ordEUA}, addr12(0, 4))},
			func(t *testing.T, s Screen, _ []byte) { wantRow(t, s, 0, "a   ef") }},
		{"GE", 2, [][]byte{cat(ew, []byte{ordGE, 0xC5, ordGE, 0xA2, ordGE, 0xD5}, ebc("x"))}, func(t *testing.T, s Screen, _ []byte) {
			wantRow(t, s, 0, "┌─┐x")
		}},
		{"format controls are stored", 2, [][]byte{cat(ew, []byte{0x1C, 0x1E, 0x00, 0x3F, 0xFF, 0x15, 0x0C})}, func(t *testing.T, s Screen, _ []byte) {
			wantRow(t, s, 0, "*; ■●")
			if s.Cell(0, 5).Char != 0x15 {
				t.Errorf("NL not stored")
			}
		}},
		{"data wraps past the end", 2, [][]byte{cat(ew, sba(23, 78), ebc("wrap"))}, func(t *testing.T, s Screen, _ []byte) {
			wantRow(t, s, 0, "ap")
			wantRow(t, s, 23, strings.Repeat(" ", 78)+"wr")
		}},
		{"hidden field", 2, [][]byte{cat(ew, []byte{ordSF, faUnprHid}, ebc("pass"), []byte{ordSF, faProt}, ebc("shown"))}, func(t *testing.T, s Screen, _ []byte) {
			wantRow(t, s, 0, "      shown")
			if s.Fields[0].Text != "pass" {
				t.Errorf("hidden field text %q", s.Fields[0].Text)
			}
		}},
		{"hidden field wrapping to the start", 2, [][]byte{cat(ew, sba(0, 10), []byte{ordSF, faProt}, ebc("vis"), sba(23, 79), []byte{ordSF, faHidden}, ebc("hidden"))},
			func(t *testing.T, s Screen, _ []byte) { wantRow(t, s, 0, "           vis") }},
		{"WCC reset MDT", 2, [][]byte{cat(ew, []byte{ordSF, faUnprotMDT}, ebc("m")), {cmdW, 0xC1}}, func(t *testing.T, s Screen, _ []byte) {
			if s.Fields[0].Attr.Modified() {
				t.Error("MDT kept")
			}
		}},
		{"WCC alarm", 2, [][]byte{{cmdEW, 0xC7}}, func(t *testing.T, s Screen, _ []byte) {
			if !s.Alarm {
				t.Error("no alarm")
			}
		}},
		{"WCC without restore leaves the keyboard locked... after the first write", 2, [][]byte{{cmdEW, 0x40}}, func(t *testing.T, s Screen, _ []byte) {
			if s.KeyboardLocked {
				t.Error("the first write unlocks the keyboard")
			}
		}},
		{"EAU", 2, [][]byte{cat(ew, []byte{ordSF, faProt}, ebc("P"), []byte{ordSF, faUnprotMDT}, ebc("erase"), []byte{ordSF, faProt}, ebc("keep"),
			[]byte{ordSF, faUnprotMDT}, ebc("me"), sba(10, 0), []byte{ordIC}), {cmdEAU}},
			func(t *testing.T, s Screen, _ []byte) {
				wantRow(t, s, 0, " P       keep")
				if s.Cursor != (Pos{0, 3}) {
					t.Errorf("cursor %v, want the first unprotected position", s.Cursor)
				}
				for _, f := range s.Fields {
					if f.Attr.Modified() {
						t.Errorf("MDT left on %+v", f)
					}
				}
			}},
		{"EAU on an unformatted screen clears it", 2, [][]byte{cat(ew, ebc("text"), sba(3, 3), []byte{ordIC}), {snaEAU}},
			func(t *testing.T, s Screen, _ []byte) {
				wantRow(t, s, 0, "")
				if s.Cursor != (Pos{}) {
					t.Errorf("cursor %v", s.Cursor)
				}
			}},
		{"WSF Read Partition Query", 2, [][]byte{{cmdWSF, 0x00, 0x05, 0x01, 0xFF, 0x02}}, func(t *testing.T, s Screen, reply []byte) {
			qcodes := queryCodes(t, reply)
			if !bytes.Equal(qcodes, supportedQCodes) {
				t.Errorf("query replies % X, want % X", qcodes, supportedQCodes)
			}
		}},
		{"WSF Query List of some QCODEs", 2, [][]byte{{cmdWSF, 0x00, 0x08, 0x01, 0xFF, 0x03, 0x00, 0x81, 0x99}}, func(t *testing.T, s Screen, reply []byte) {
			if q := queryCodes(t, reply); !bytes.Equal(q, []byte{qrUsableArea}) {
				t.Errorf("query replies % X", q)
			}
		}},
		{"WSF Query List of unknown QCODEs gets Null", 2, [][]byte{{cmdWSF, 0x00, 0x07, 0x01, 0xFF, 0x03, 0x00, 0x99}}, func(t *testing.T, s Screen, reply []byte) {
			if q := queryCodes(t, reply); !bytes.Equal(q, []byte{qrNull}) {
				t.Errorf("query replies % X", q)
			}
		}},
		{"WSF Query List all", 2, [][]byte{{snaWSF, 0x00, 0x06, 0x01, 0xFF, 0x03, 0x80}}, func(t *testing.T, s Screen, reply []byte) {
			if q := queryCodes(t, reply); len(q) != len(supportedQCodes) {
				t.Errorf("query replies % X", q)
			}
		}},
		{"WSF Erase/Reset alternate", 4, [][]byte{{cmdWSF, 0x00, 0x04, 0x03, 0x80}}, func(t *testing.T, s Screen, _ []byte) {
			if r, _ := s.Size(); r != 43 || s.Seq != 1 {
				t.Errorf("rows %d seq %d", r, s.Seq)
			}
		}},
		{"WSF Outbound 3270DS Write, two structured fields, length 0 last", 2, [][]byte{
			cat([]byte{cmdWSF, 0x00, 0x05, 0x09, 0x00, 0x00}, []byte{0x00, 0x00, 0x40, 0x00, snaW, 0xC3}, sba(1, 1), ebc("sf"))},
			func(t *testing.T, s Screen, _ []byte) { wantRow(t, s, 1, " sf") }},
		{"WSF unknown structured field is ignored", 2, [][]byte{{cmdWSF, 0x00, 0x05, 0xD0, 0x01, 0x02}}, func(t *testing.T, s Screen, reply []byte) {
			if reply != nil || s.Seq != 0 {
				t.Errorf("reply % X seq %d", reply, s.Seq)
			}
		}},
		{"WSF Read Partition Read Buffer", 2, [][]byte{cat(ew, ebc("rb")), {cmdWSF, 0x00, 0x05, 0x01, 0x00, 0xF2}},
			func(t *testing.T, s Screen, reply []byte) {
				want := cat([]byte{byte(go3270.AIDNone)}, addr12(0, 0), ebc("rb"), make([]byte, 1918))
				if !bytes.Equal(reply, want) {
					t.Errorf("reply % X...", head(reply))
				}
			}},
		{"Read Modified of an unformatted screen", 2, [][]byte{cat(ew, ebc("ab"), sba(1, 0), ebc("c"), sba(0, 9), []byte{ordIC}), {cmdRM}},
			func(t *testing.T, s Screen, reply []byte) {
				want := cat([]byte{byte(go3270.AIDNone)}, addr12(0, 9), ebc("abc"))
				if !bytes.Equal(reply, want) {
					t.Errorf("reply % X, want % X", reply, want)
				}
			}},
		{"Read Modified sends modified fields only", 2, [][]byte{cat(ew, []byte{ordSF, faUnprotMDT}, ebc("a b"), []byte{0, 0},
			[]byte{ordSF, faUnprot}, ebc("no"), []byte{ordSF, faProtInt | 0x01}, []byte{ordGE, 0xC5}), {snaRM}},
			func(t *testing.T, s Screen, reply []byte) {
				want := cat([]byte{byte(go3270.AIDNone)}, addr12(0, 0), sba(0, 1), ebc("a b"), sba(0, 10), []byte{ordGE, 0xC5})
				if !bytes.Equal(reply, want) {
					t.Errorf("reply % X, want % X", reply, want)
				}
			}},
		{"empty record", 2, [][]byte{{}}, func(t *testing.T, s Screen, reply []byte) {
			if reply != nil || s.Seq != 0 {
				t.Error("empty record did something")
			}
		}},
		{"SNA NOP", 2, [][]byte{{snaNOP}}, func(t *testing.T, s Screen, reply []byte) {
			if reply != nil || s.Seq != 0 || !s.KeyboardLocked {
				t.Error("NOP did something")
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, reply, err := parse(t, tc.model, tc.recs...)
			if err != nil {
				t.Fatal(err)
			}
			s := b.Snapshot()
			checkConsistent(t, b, s)
			tc.check(t, s, reply)
		})
	}
}

// wantRow checks that row r of s is text padded with blanks.
func wantRow(t *testing.T, s Screen, r int, text string) {
	t.Helper()
	_, cols := s.Size()
	want := text + strings.Repeat(" ", cols-len([]rune(text)))
	if got := s.Row(r); got != want {
		t.Errorf("row %d = %q, want %q", r, strings.TrimRight(got, " "), text)
	}
}

// queryCodes returns the QCODEs of a Query Reply record, checking its
// framing.
func queryCodes(t *testing.T, reply []byte) []byte {
	t.Helper()
	if len(reply) == 0 || reply[0] != aidQuery {
		t.Fatalf("reply % X is not a query reply", head(reply))
	}
	var codes []byte
	for i := 1; i < len(reply); {
		if len(reply)-i < 4 {
			t.Fatalf("truncated query reply at %d", i)
		}
		n := int(reply[i])<<8 | int(reply[i+1])
		if n < 4 || i+n > len(reply) || reply[i+2] != 0x81 {
			t.Fatalf("bad query reply at %d: % X", i, reply[i:])
		}
		codes = append(codes, reply[i+3])
		i += n
	}
	return codes
}

func TestQueryReplyContents(t *testing.T) {
	b, _ := NewBuffer(5, go3270.Codepage1047())
	r := b.queryReply([]byte{qrUsableArea, qrCharacterSets, qrImplicitPartition})
	// Usable area: 27x132, 12/14-bit addressing.
	ua := r[1:]
	if ua[4] != 0x01 || int(ua[6])<<8|int(ua[7]) != 132 || int(ua[8])<<8|int(ua[9]) != 27 {
		t.Errorf("usable area % X", ua[:ua[1]])
	}
	ip := ua[ua[1]:]
	if ip[3] != qrImplicitPartition || int(ip[9])<<8|int(ip[10]) != 80 || int(ip[11])<<8|int(ip[12]) != 24 ||
		int(ip[13])<<8|int(ip[14]) != 132 || int(ip[15])<<8|int(ip[16]) != 27 {
		t.Errorf("implicit partition % X", ip[:ip[1]])
	}
	cs := ip[ip[1]:]
	if cs[3] != qrCharacterSets || int(cs[18])<<8|int(cs[19]) != 1047 || cs[4]&0x82 != 0x82 {
		t.Errorf("character sets % X", cs[:cs[1]])
	}
}

func TestBadRecords(t *testing.T) {
	ew := []byte{cmdEW, 0xC3}
	tests := []struct {
		name   string
		rec    []byte
		offset int
		reason string
	}{
		{"unknown command", []byte{0x42, 0xC3}, 0, "unknown command 0x42"},
		{"write without WCC", []byte{cmdW}, 1, "without a WCC"},
		{"unknown order", cat(ew, ebc("ab"), []byte{0x07}), 4, "unknown order 0x07"},
		{"SF truncated", cat(ew, []byte{ordSF}), 2, "SF runs past the end"},
		{"SFE pair count truncated", cat(ew, []byte{ordSFE}), 2, "SFE runs past"},
		{"SFE pairs truncated", cat(ew, []byte{ordSFE, 2, xa3270, faProt, xaForeground}), 2, "SFE runs past"},
		{"SBA truncated", cat(ew, []byte{ordSBA, 0x40}), 2, "SBA runs past"},
		{"SBA outside the buffer", cat(ew, ebc("x"), []byte{ordSBA, 0x5D, 0x7F}, []byte{ordSBA, 0x7F, 0x7F}), 6, "SBA to address 4095 outside the 24x80 buffer"},
		{"14-bit SBA outside the buffer", cat(ew, []byte{ordSBA, 0x07, 0x80}), 2, "SBA to address 1920"},
		{"RA truncated", cat(ew, []byte{ordRA, 0x40, 0x40}), 2, "RA runs past"},
		{"RA GE truncated", cat(ew, []byte{ordRA, 0x40, 0x40, ordGE}), 5, "RA runs past"},
		{"RA outside the buffer", cat(ew, []byte{ordRA, 0x3F, 0xFF, 0x40}), 2, "RA to address 16383"},
		{"EUA truncated", cat(ew, []byte{ordEUA, 0x40}), 2, "EUA runs past"},
		{"EUA outside the buffer", cat(ew, []byte{ordEUA, 0x7F, 0x7F}), 2, "EUA to address 4095"},
		{"GE truncated", cat(ew, []byte{ordGE}), 2, "GE runs past"},
		{"MF truncated", cat(ew, []byte{ordMF, 1, xa3270}), 2, "MF runs past"},
		{"SA truncated", cat(ew, []byte{ordSA, xaForeground}), 2, "SA runs past"},
		{"SF after the write wrapped", cat(ew, sba(23, 79), ebc("ab"), []byte{ordSF, faProt}), 7, "SF at address 1 after the write wrapped"},
		{"SFE after the write wrapped", cat(ew, []byte{ordRA}, addr12(0, 0), ebc("x"), ebc("y"), sba(23, 79), ebc("z"), []byte{ordSFE, 0}), 11, "SFE at address 0 after the write wrapped"},
		{"WSF header truncated", []byte{cmdWSF, 0x00, 0x05}, 1, "header runs past"},
		{"WSF length too long", []byte{cmdWSF, 0x00, 0x09, 0x01, 0xFF, 0x02}, 1, "length 9 does not fit the 5 bytes left"},
		{"WSF length too short", []byte{cmdWSF, 0x00, 0x02, 0x01, 0xFF, 0x02}, 1, "length 2"},
		{"Read Partition too short", []byte{cmdWSF, 0x00, 0x04, 0x01, 0xFF}, 1, "Read Partition of 4 bytes"},
		{"Query to a partition", []byte{cmdWSF, 0x00, 0x05, 0x01, 0x01, 0x02}, 4, "partition 0x01, want 0xFF"},
		{"Read Partition unknown type", []byte{cmdWSF, 0x00, 0x05, 0x01, 0x00, 0x77}, 5, "unknown Read Partition type 0x77"},
		{"Read Buffer of another partition", []byte{cmdWSF, 0x00, 0x05, 0x01, 0x02, 0xF2}, 4, "partition 0x02"},
		{"Outbound 3270DS unknown command", []byte{cmdWSF, 0x00, 0x06, 0x40, 0x00, 0x42, 0xC3}, 5, "unknown command 0x42 in Outbound 3270DS"},
		{"Outbound 3270DS bad order", []byte{cmdWSF, 0x00, 0x08, 0x40, 0x00, snaW, 0xC3, 0x11, 0x7F}, 7, "SBA runs past"},
		{"Erase/Reset without flags", []byte{cmdWSF, 0x00, 0x03, 0x03}, 1, "Erase/Reset without its flags"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, _, err := parse(t, 2, tc.rec)
			var dse *DataStreamError
			if !errors.As(err, &dse) || !errors.Is(err, ErrBadDataStream) {
				t.Fatalf("err = %v, want a DataStreamError", err)
			}
			if dse.Offset != tc.offset || !strings.Contains(dse.Reason, tc.reason) {
				t.Errorf("error %q at offset %d, want %q at %d", dse.Reason, dse.Offset, tc.reason, tc.offset)
			}
			if !strings.Contains(err.Error(), "tn3270: bad 3270 data stream: at offset") {
				t.Errorf("error text %q", err)
			}
			checkConsistent(t, b, b.Snapshot())
		})
	}
}

// checkConsistent checks the invariants of a buffer and its snapshot:
// everything within bounds, the field list matching the attribute cells.
func checkConsistent(t testing.TB, b *Buffer, s Screen) {
	t.Helper()
	rows, cols := s.Size()
	if rows*cols != len(b.cells) || rows <= 0 || cols <= 0 {
		t.Fatalf("size %dx%d with %d cells", rows, cols, len(b.cells))
	}
	if len(s.Rows()) != rows {
		t.Fatalf("%d rows of text, want %d", len(s.Rows()), rows)
	}
	for i, r := range s.Rows() {
		if n := len([]rune(r)); n != cols {
			t.Fatalf("row %d has %d characters, want %d", i, n, cols)
		}
	}
	if s.Cursor.Row < 0 || s.Cursor.Row >= rows || s.Cursor.Col < 0 || s.Cursor.Col >= cols {
		t.Fatalf("cursor %v outside %dx%d", s.Cursor, rows, cols)
	}
	nfa := 0
	for _, c := range b.cells {
		if c.Field {
			nfa++
			if c.Attr&^0x3F != 0 {
				t.Fatalf("attribute %02X has reserved bits", byte(c.Attr))
			}
		}
	}
	if nfa != b.nfa || nfa != len(s.Fields) {
		t.Fatalf("%d attribute cells, count %d, %d fields", nfa, b.nfa, len(s.Fields))
	}
	total, prev := 0, -1
	for _, f := range s.Fields {
		if f.Addr <= prev || f.Addr >= len(b.cells) || !b.cells[f.Addr].Field || f.Pos != (Pos{f.Addr / cols, f.Addr % cols}) {
			t.Fatalf("field %+v out of order or not on an attribute", f)
		}
		prev = f.Addr
		total += 1 + f.Len
	}
	if nfa > 0 && total != len(b.cells) {
		t.Fatalf("fields cover %d positions of %d", total, len(b.cells))
	}
}
