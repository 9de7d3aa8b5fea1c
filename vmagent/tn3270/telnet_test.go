package tn3270

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// TestTelnetDecoder feeds the same stream whole and a byte at a time.
func TestTelnetDecoder(t *testing.T) {
	stream := cat(
		[]byte{tnIAC, tnDO, optTerminalType},
		[]byte{tnIAC, tnSB, optTerminalType, ttSEND, tnIAC, tnSE},
		[]byte{tnIAC, tnDO, optEOR, tnIAC, tnWILL, optEOR},
		[]byte{tnIAC, tnNOP},
		[]byte{0xF5, 0xC3, 0xC1, tnIAC, tnIAC, 0xC2, tnIAC, tnEOR}, // IAC IAC is 0xFF
		[]byte{tnIAC, tnSB, 99, 1, tnIAC, tnIAC, 2, tnIAC, tnSE},
		[]byte{tnIAC, tnEOR}, // an empty record
		[]byte{0xF1, 0xC2},   // unfinished
	)
	wantRecs := [][]byte{{0xF5, 0xC3, 0xC1, 0xFF, 0xC2}, {}}
	wantCmds := [][2]byte{{tnDO, optTerminalType}, {tnDO, optEOR}, {tnWILL, optEOR}}
	wantSBs := [][]byte{{optTerminalType, ttSEND}, {99, 1, 0xFF, 2}}
	for _, step := range []int{len(stream), 1, 2, 3} {
		d := telnetDecoder{maxRecord: 100}
		h := &collector{}
		for i := 0; i < len(stream); i += step {
			if err := d.feed(stream[i:min(i+step, len(stream))], h); err != nil {
				t.Fatalf("step %d: %v", step, err)
			}
		}
		if !reflect.DeepEqual(h.recs, wantRecs) || !reflect.DeepEqual(h.cmds, wantCmds) || !reflect.DeepEqual(h.sbs, wantSBs) {
			t.Errorf("step %d: records % X, commands %v, subnegotiations % X", step, h.recs, h.cmds, h.sbs)
		}
		if !bytes.Equal(d.pending(), []byte{0xF1, 0xC2}) {
			t.Errorf("step %d: pending % X", step, d.pending())
		}
	}
}

type collector struct {
	recs [][]byte
	cmds [][2]byte
	sbs  [][]byte
}

func (c *collector) record(rec []byte) error {
	c.recs = append(c.recs, append([]byte{}, rec...))
	return nil
}
func (c *collector) command(cmd, opt byte) error {
	c.cmds = append(c.cmds, [2]byte{cmd, opt})
	return nil
}
func (c *collector) subneg(data []byte) error {
	c.sbs = append(c.sbs, append([]byte{}, data...))
	return nil
}

func TestTelnetDecoderErrors(t *testing.T) {
	for name, stream := range map[string][]byte{
		"record too long":         bytes.Repeat([]byte{0x40}, 11),
		"escaped record too long": bytes.Repeat([]byte{tnIAC, tnIAC}, 11),
		"subnegotiation too long": append([]byte{tnIAC, tnSB}, make([]byte, maxSubneg+1)...),
		"IAC in subnegotiation":   {tnIAC, tnSB, 24, tnIAC, tnDO},
	} {
		d := telnetDecoder{maxRecord: 10}
		if err := d.feed(stream, &collector{}); !errors.Is(err, ErrTelnet) {
			t.Errorf("%s: %v, want ErrTelnet", name, err)
		}
	}
}

func TestNegotiator(t *testing.T) {
	n := negotiator{termType: "IBM-3278-2-E"}
	steps := []struct {
		cmd, opt byte
		want     []byte
	}{
		{tnDO, optTerminalType, []byte{tnIAC, tnWILL, optTerminalType}},
		{tnDO, optTerminalType, nil}, // already agreed: no loop
		{tnDO, optTN3270E, []byte{tnIAC, tnWONT, optTN3270E}},
		{tnWILL, optTN3270E, []byte{tnIAC, tnDONT, optTN3270E}},
		{tnDO, 1, []byte{tnIAC, tnWONT, 1}}, // ECHO
		{tnWILL, 1, []byte{tnIAC, tnDONT, 1}},
		{tnDONT, 3, nil}, // never enabled
		{tnWONT, 3, nil},
		{tnDO, optEOR, []byte{tnIAC, tnWILL, optEOR}},
		{tnWILL, optEOR, []byte{tnIAC, tnDO, optEOR}},
		{tnDO, optBinary, []byte{tnIAC, tnWILL, optBinary}},
		{tnWILL, optBinary, []byte{tnIAC, tnDO, optBinary}},
		{tnWILL, optBinary, nil},
	}
	for i, st := range steps {
		if got := n.answer(st.cmd, st.opt); !bytes.Equal(got, st.want) {
			t.Errorf("step %d: %s %d answered % X, want % X", i, telnetName(st.cmd), st.opt, got, st.want)
		}
	}
	if !n.in3270() {
		t.Error("not in 3270 mode after BINARY and EOR both ways")
	}
	want := append([]byte{tnIAC, tnSB, optTerminalType, ttIS}, "IBM-3278-2-E"...)
	want = append(want, tnIAC, tnSE)
	if got := n.subneg([]byte{optTerminalType, ttSEND}); !bytes.Equal(got, want) {
		t.Errorf("terminal type answer % X", got)
	}
	if got := n.answer(tnWONT, optBinary); !bytes.Equal(got, []byte{tnIAC, tnDONT, optBinary}) || n.in3270() {
		t.Errorf("WONT BINARY answered % X, 3270 mode %v", got, n.in3270())
	}
	if got := n.answer(tnDONT, optTerminalType); !bytes.Equal(got, []byte{tnIAC, tnWONT, optTerminalType}) {
		t.Errorf("DONT TERMINAL-TYPE answered % X", got)
	}
	if got := n.subneg([]byte{optTerminalType, ttSEND}); got != nil {
		t.Errorf("terminal type sent after DONT: % X", got)
	}
}

func TestAppendRecord(t *testing.T) {
	got := appendRecord(nil, []byte{0x7D, 0xFF, 0x40, 0xFF, 0xFF})
	want := []byte{0x7D, 0xFF, 0xFF, 0x40, 0xFF, 0xFF, 0xFF, 0xFF, tnIAC, tnEOR}
	if !bytes.Equal(got, want) {
		t.Errorf("% X, want % X", got, want)
	}
}
