package diskstore

import "testing"

func TestIsSegmentFile(t *testing.T) {
	for name, want := range map[string]bool{
		"0000000000000000.seg":  true,
		"0123456789abcdef.seg":  true,
		"0123456789ABCDEF.seg":  false, // the store writes lower case
		"0123456789abcdeg.seg":  false,
		"123456789abcdef.seg":   false,
		"00123456789abcdef.seg": false,
		"0123456789abcdef.seg~": false,
		"0123456789abcdef.tmp":  false,
		"0123456789abcdef":      false,
		".seg":                  false,
		"":                      false,
		"status.journal":        false,
	} {
		if got := isSegmentFile(name); got != want {
			t.Errorf("isSegmentFile(%q) = %v, want %v", name, got, want)
		}
	}
}
