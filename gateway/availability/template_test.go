package availability

import (
	"regexp"
	"slices"
	"testing"
)

// FuzzTemplateFields: the hand-written scanner finds the {field} parts the
// regular expression it replaced found (compiled here, not at the
// package's start).
func FuzzTemplateFields(f *testing.F) {
	for _, s := range []string{"", "{system}", "zvm:{system}/{user}", "{{a}", "{a}}", "{1a}{_b9}", "{}{a-b}{a", "x{A_}y{ü}"} {
		f.Add(s)
	}
	re := regexp.MustCompile(`\{([A-Za-z_][A-Za-z0-9_]*)\}`)
	f.Fuzz(func(t *testing.T, s string) {
		var want [][2]int
		for _, m := range re.FindAllStringIndex(s, -1) {
			want = append(want, [2]int{m[0], m[1]})
		}
		if got := templateFields(s); !slices.Equal(got, want) {
			t.Errorf("templateFields(%q) = %v, want %v", s, got, want)
		}
	})
}
