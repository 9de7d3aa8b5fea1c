package zos

import (
	"regexp"
	"slices"
	"testing"
)

// The hand-written scanners agree with the regular expressions they
// replace (compiled here, not at the package's start).

func FuzzInsertSpans(f *testing.F) {
	for _, m := range Catalogue() {
		f.Add(m.Text)
	}
	f.Add("a-b- -c --d ÿz")
	re := regexp.MustCompile(`[a-z][a-z-]*`)
	f.Fuzz(func(t *testing.T, text string) {
		var want [][2]int
		for _, loc := range re.FindAllStringIndex(text, -1) {
			want = append(want, [2]int{loc[0], loc[1]})
		}
		if got := insertSpans(text); !slices.Equal(got, want) {
			t.Errorf("insertSpans(%q) = %v, want %v", text, got, want)
		}
	})
}

func FuzzValidID(f *testing.F) {
	for _, id := range []string{"ZBR001I", "ZBR999W", "ZBR01I", "ZBR0011I", "zbr001I", "ZBR001X", "ZBR00AI", "ZBR001I\n"} {
		f.Add(id)
	}
	re := regexp.MustCompile(`^ZBR[0-9]{3}[AEIW]$`)
	f.Fuzz(func(t *testing.T, id string) {
		if got, want := validID(id), re.MatchString(id); got != want {
			t.Errorf("validID(%q) = %v, want %v", id, got, want)
		}
	})
}
