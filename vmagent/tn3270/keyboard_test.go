package tn3270

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/racingmars/go3270"
)

// keyboardScreen: a protected label, an 8-position unprotected field, an
// autoskip field, a 5-position numeric field, a protected tail.
func keyboardScreen(t *testing.T) *Buffer {
	t.Helper()
	b, _, err := parse(t, 2, cat([]byte{cmdEW, 0xC3},
		[]byte{ordSF, faProt}, ebc("Name"), // 0..4
		[]byte{ordSF, faUnprot}, ebc("old"), // attr 5, data 6..13
		sba(0, 14), []byte{ordSF, faSkip}, // 14
		sba(0, 20), []byte{ordSF, faNumeric}, // attr 20, data 21..25
		sba(0, 26), []byte{ordSF, faProt}, ebc("tail"),
		sba(0, 6), []byte{ordIC}))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestTyping(t *testing.T) {
	b := keyboardScreen(t)
	if err := b.typeText("ab"); err != nil {
		t.Fatal(err)
	}
	s := b.Snapshot()
	wantRow(t, s, 0, " Name abd"+strings.Repeat(" ", 18)+"tail")
	if s.Cursor != (Pos{0, 8}) || !s.Fields[1].Attr.Modified() {
		t.Errorf("cursor %v, field %+v", s.Cursor, s.Fields[1])
	}
	// Filling the field skips the autoskip field to the numeric one.
	if err := b.typeText("cdefgh"); err != nil {
		t.Fatal(err)
	}
	if s := b.Snapshot(); s.Cursor != (Pos{0, 21}) {
		t.Errorf("cursor after filling the field %v, want {0 21}", s.Cursor)
	}
	if err := b.typeText("12x"); !errors.Is(err, ErrNumeric) {
		t.Errorf("letters into a numeric field: %v", err)
	}
	if err := b.typeText("-1.5"); err != nil {
		t.Errorf("numeric: %v", err)
	}
	if err := b.typeText("99"); !errors.Is(err, ErrFieldOverflow) {
		t.Errorf("overflow: %v", err)
	}
	b.moveCursor(0, 2)
	if err := b.typeText("x"); !errors.Is(err, ErrProtected) {
		t.Errorf("into a protected field: %v", err)
	}
	b.moveCursor(0, 14)
	if err := b.typeText("x"); !errors.Is(err, ErrProtected) {
		t.Errorf("onto a protected attribute: %v", err)
	}
	// On an unprotected field's attribute, typing starts after it.
	b.moveCursor(0, 5)
	if err := b.typeText("Z"); err != nil {
		t.Fatal(err)
	}
	wantRow(t, b.Snapshot(), 0, " Name Zbcdefgh"+strings.Repeat(" ", 7)+"-1.5  tail")
	if err := b.typeText("é✓"); !errors.Is(err, ErrBadInput) {
		t.Errorf("✓ is neither in CP037 nor in CP310: %v", err)
	}
	if err := b.typeText("⌈"); err != nil {
		t.Errorf("a CP310 character: %v", err)
	}
	if c := b.Snapshot().Cell(0, 7); !c.GE || c.Char != 0x8D {
		t.Errorf("GE cell %+v", c)
	}
	// Tab goes to the next unprotected field, around the end.
	b.tab()
	if c := b.Snapshot().Cursor; c != (Pos{0, 21}) {
		t.Errorf("tab to %v", c)
	}
	b.tab()
	if c := b.Snapshot().Cursor; c != (Pos{0, 6}) {
		t.Errorf("tab around to %v", c)
	}
}

func TestSetFieldAndAID(t *testing.T) {
	b := keyboardScreen(t)
	if err := b.setField(0, 10, "new"); err != nil {
		t.Fatal(err)
	}
	if err := b.setField(0, 20, "42"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		row, col int
		text     string
		want     error
	}{
		{0, 2, "x", ErrProtected},
		{0, 6, "123456789", ErrFieldOverflow},
		{24, 0, "x", ErrBadPosition},
		{0, 21, "4a", ErrNumeric},
	} {
		if err := b.setField(tc.row, tc.col, tc.text); !errors.Is(err, tc.want) {
			t.Errorf("setField(%d,%d,%q) = %v, want %v", tc.row, tc.col, tc.text, err, tc.want)
		}
	}
	s := b.Snapshot()
	wantRow(t, s, 0, " Name new"+strings.Repeat(" ", 12)+"42    tail")
	if s.Cursor != (Pos{0, 23}) {
		t.Errorf("cursor %v", s.Cursor)
	}
	rec, err := b.pressAID(go3270.AIDPF5)
	if err != nil {
		t.Fatal(err)
	}
	want := cat([]byte{byte(go3270.AIDPF5)}, addr12(0, 23), sba(0, 6), ebc("new"), sba(0, 21), ebc("42"))
	if !bytes.Equal(rec, want) {
		t.Errorf("PF5 sent % X, want % X", rec, want)
	}
	if !b.locked() {
		t.Error("keyboard not locked after an AID")
	}
	if _, err := b.pressAID(go3270.AIDEnter); !errors.Is(err, ErrKeyboardLocked) {
		t.Errorf("AID while locked: %v", err)
	}
	// The host reads the AID back with Read Modified; PA keys short-read.
	if got := b.readModified(b.aid, false); !bytes.Equal(got, want) {
		t.Errorf("Read Modified % X", got)
	}
	if _, err := ParseDataStream(b, []byte{cmdW, 0xC2}); err != nil {
		t.Fatal(err)
	}
	if b.locked() || b.aid != go3270.AIDNone {
		t.Error("keyboard restore did not unlock")
	}
	if rec, _ := b.pressAID(go3270.AIDPA2); !bytes.Equal(rec, []byte{byte(go3270.AIDPA2)}) {
		t.Errorf("PA2 sent % X", rec)
	}
	if got := b.readModified(b.aid, true); len(got) < 3 {
		t.Errorf("Read Modified All after PA2 sent % X, want the fields too", got)
	}
	ParseDataStream(b, []byte{cmdW, 0xC2})
	if rec, _ := b.pressAID(go3270.AIDClear); !bytes.Equal(rec, []byte{byte(go3270.AIDClear)}) || b.nfa != 0 {
		t.Errorf("CLEAR sent % X, %d fields left", rec, b.nfa)
	}
	// A write without keyboard restore leaves the keyboard locked.
	ParseDataStream(b, []byte{cmdEW, 0x40})
	if !b.locked() {
		t.Error("a write without keyboard restore unlocked the keyboard")
	}
}

func TestAIDs(t *testing.T) {
	ok := []go3270.AID{go3270.AIDEnter, go3270.AIDClear, go3270.AIDPA1, go3270.AIDPA2, go3270.AIDPA3,
		go3270.AIDPF1, go3270.AIDPF9, go3270.AIDPF10, go3270.AIDPF12, go3270.AIDPF13, go3270.AIDPF21,
		go3270.AIDPF22, go3270.AIDPF24}
	for _, a := range ok {
		if !isKeyboardAID(a) {
			t.Errorf("%s refused", go3270.AIDtoString(a))
		}
	}
	for _, a := range []go3270.AID{go3270.AIDNone, 0x88, 0x00, 0xFA, 0xCA, 0x4D} {
		if isKeyboardAID(a) {
			t.Errorf("0x%02X accepted", byte(a))
		}
	}
}

func TestUnformattedTyping(t *testing.T) {
	b, _, _ := parse(t, 2, cat([]byte{cmdEW, 0xC3}, ebc("hello"), sba(0, 6), []byte{ordIC}))
	if err := b.typeText("world"); err != nil {
		t.Fatal(err)
	}
	rec, _ := b.pressAID(go3270.AIDEnter)
	want := cat([]byte{byte(go3270.AIDEnter)}, addr12(0, 11), ebc("helloworld"))
	if !bytes.Equal(rec, want) {
		t.Errorf("sent % X, want % X", rec, want)
	}
	if err := b.setField(0, 0, "x"); !errors.Is(err, ErrNoField) && !errors.Is(err, ErrKeyboardLocked) {
		t.Errorf("setField on an unformatted screen: %v", err)
	}
}
