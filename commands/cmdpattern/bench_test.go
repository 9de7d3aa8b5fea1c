package cmdpattern

import (
	"strings"
	"testing"
)

func BenchmarkMatch(b *testing.B) {
	p := MustCompile("journalctl -u *.service -n ?? --no-pager **", Options{})
	words := Fields("journalctl -u sshd.service -n 50 --no-pager --since today")
	b.ReportAllocs()
	for b.Loop() {
		if !p.Match(words) {
			b.Fatal("no match")
		}
	}
}

func BenchmarkMatchFold(b *testing.B) {
	p := MustCompile("QUERY **", Options{Fold: true})
	words := Fields("query names")
	b.ReportAllocs()
	for b.Loop() {
		if !p.Match(words) {
			b.Fatal("no match")
		}
	}
}

// BenchmarkMatchPathological matches the worst patterns for a
// backtracking matcher against a 100 KB word. Its time per operation is
// linear in the word's length: a few milliseconds, not seconds.
func BenchmarkMatchPathological(b *testing.B) {
	long := []string{"x", strings.Repeat("a", 100<<10)}
	for name, pattern := range map[string]string{
		"stars":   "x *" + strings.Repeat("a*", (MaxPatternLen-4)/2) + "b",
		"segment": "x *" + strings.Repeat("a", MaxPatternLen-5) + "b",
	} {
		p := MustCompile(pattern, Options{})
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(long[1])))
			for b.Loop() {
				if p.Match(long) {
					b.Fatal("matched")
				}
			}
		})
	}
}
