package cmdpattern

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestSplitCP(t *testing.T) {
	for in, want := range map[string]string{
		"Q N":           "QUERY N",
		"q n":           "QUERY n",
		"QUER NAMES":    "QUERY NAMES",
		"CP q n":        "QUERY n",
		"cp CP q n":     "QUERY n",
		"  Q   N  ":     "QUERY N",
		"QUERYX N":      "QUERYX N",
		"M * hi  there": "MESSAGE * hi there",
		"MSG * hi":      "MESSAGE * hi",
		"MS * hi":       "MS * hi",
		"W * hi":        "WARNING * hi",
		"WNG * hi":      "WARNING * hi",
		"XAUTOL X":      "XAUTOLOG X",
		"XAUTO X":       "XAUTO X",
		"FORCE X":       "FORCE X",
		"FORC X":        "FORC X",
		"SHUTDOWN":      "SHUTDOWN",
		"SHUTDOWNX":     "SHUTDOWNX",
		"LOG":           "LOGOFF",
		"LO":            "LO",
		"logout":        "LOGOFF",
		"DISC":          "DISCONNECT",
		"DIS":           "DIS",
		"SET RUN ON":    "SET RUN ON",
	} {
		got, err := SplitCP(in, "")
		if err != nil || strings.Join(got, " ") != want {
			t.Errorf("SplitCP(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if names := CPCommands(); !slices.Contains(names, "QUERY") || slices.Contains(names, "MSG") {
		t.Errorf("CPCommands() = %q", names)
	}
}

func TestSplitCPRefused(t *testing.T) {
	for _, tt := range []struct {
		name, line, special string
		kind                error
		offset              int
		detail              string
	}{
		{"line end", "Q N#FORCE LINUX01", "", ErrCPLineEdit, 3, "CP's logical line end"},
		{"CP escape", "#CP FORCE LINUX01", "", ErrCPLineEdit, 0, "CP's logical line end"},
		{"character delete", "FORCF@E LINUX01", "", ErrCPLineEdit, 5, "CP's logical character delete"},
		{"escape", `FORC"E LINUX01`, "", ErrCPLineEdit, 4, "CP's logical escape"},
		{"special", "Q N%FORCE LINUX01", "%", ErrCPLineEdit, 3, `"%", a line editing character`},
		{"line delete", "Q N\u00a2FORCE LINUX01", "", ErrBadCommand, 3, "only printable ASCII"},
		{"tab", "Q\tN", "", ErrBadCommand, 1, "only printable ASCII"},
		{"newline", "Q N\nFORCE LINUX01", "", ErrBadCommand, 3, "only printable ASCII"},
		{"nul", "Q N\x00", "", ErrBadCommand, 3, "only printable ASCII"},
		{"del", "Q N\x7f", "", ErrBadCommand, 3, "only printable ASCII"},
		{"empty", "", "", ErrBadCommand, 0, "empty command"},
		{"blank", "   ", "", ErrBadCommand, 0, "empty command"},
		{"only CP", "CP cp", "", ErrBadCommand, 0, "empty command"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			words, err := SplitCP(tt.line, tt.special)
			var se *SplitError
			if !errors.As(err, &se) || !errors.Is(err, tt.kind) || se.Offset != tt.offset || !strings.Contains(se.Detail, tt.detail) {
				t.Errorf("SplitCP(%q) = %q, %v; want %v at offset %d saying %q", tt.line, words, err, tt.kind, tt.offset, tt.detail)
			}
		})
	}
}

func TestCPPattern(t *testing.T) {
	opts := Options{Fold: true, CP: true}
	for _, tt := range []struct {
		pattern, line string
		want          bool
	}{
		{"QUERY **", "Q N", true},
		{"Q **", "QUERY NAMES", true},
		{"q **", "query names", true},
		{"CP QUERY **", "Q N", true},
		{"QUERY **", "CP Q N", true},
		{"Q*Y CPLEVEL", "Q CPLEVEL", true},
		{"QUERY NAMES", "Q NAM", false},
		{"MSG OPERATOR **", "M OPERATOR hi", true},
		{"XAUTOL LINUX0?", "XAUTOLOG LINUX02", true},
		{"FORCE **", "FORC X", false},
	} {
		p, err := Compile(tt.pattern, opts)
		if err != nil {
			t.Fatalf("Compile(%q): %v", tt.pattern, err)
		}
		words, err := SplitCP(tt.line, "")
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Match(words); got != tt.want {
			t.Errorf("CP pattern %q against %q (%q) = %v, want %v", tt.pattern, tt.line, words, got, tt.want)
		}
		if again := MustCompile(p.String(), opts); !reflect.DeepEqual(again.words, p.words) {
			t.Errorf("Compile(%q).String() = %q compiles to %q", tt.pattern, p.String(), again.words)
		}
	}
	if got := MustCompile("cp q  **", opts).String(); got != "QUERY **" {
		t.Errorf("String of a CP pattern = %q, want the command name in full", got)
	}
	for _, pattern := range []string{"QUERY N#FORCE", "FORC@E", `Q "X"`, "Q \u00a2", "CP", "cp CP"} {
		if _, err := Compile(pattern, opts); !errors.Is(err, ErrPattern) {
			t.Errorf("Compile(%q) as a CP pattern = %v, want ErrPattern", pattern, err)
		}
	}
}

func FuzzSplitCP(f *testing.F) {
	for _, s := range []string{"Q N", "q names", "CP FORCE LINUX01", "Q N#FORCE LINUX01", "#CP FORCE X", "FORCF@E LINUX01",
		`FORC"E LINUX01`, "M OPERATOR hi", "XAUTOL LINUX02", "SIG SHUTDOWN", "Q N\u00a2FORCE X", "QUERY CPLEVEL", "MSG * backup done"} {
		f.Add(s, "%")
	}
	f.Fuzz(func(t *testing.T, line, special string) {
		words, err := SplitCP(line, special)
		if err != nil {
			var se *SplitError
			if !errors.As(err, &se) || se.Offset < 0 || se.Offset > len(line) || !(errors.Is(err, ErrBadCommand) || errors.Is(err, ErrCPLineEdit)) {
				t.Fatalf("SplitCP(%q): %v is not a *SplitError of a known kind with an offset in the line", line, err)
			}
			return
		}
		if len(words) == 0 || strings.EqualFold(words[0], "CP") {
			t.Fatalf("SplitCP(%q) = %q: no command, or CP left first", line, words)
		}
		if strings.ContainsAny(line, special) {
			t.Fatalf("SplitCP(%q, %q) accepted a line holding a special character", line, special)
		}
		for _, w := range words {
			if w == "" || strings.ContainsAny(w, " "+CPSpecial) {
				t.Fatalf("SplitCP(%q) = %q: a word is empty or holds a refused character", line, words)
			}
			for i := 0; i < len(w); i++ {
				if w[i] < 0x20 || w[i] > 0x7e {
					t.Fatalf("SplitCP(%q) = %q: a word holds %q", line, words, w[i])
				}
			}
		}
		// The words are read again as themselves: the name is in full.
		again, err := SplitCP(strings.Join(words, " "), "")
		if err != nil || !reflect.DeepEqual(again, words) {
			t.Fatalf("SplitCP(%q) = %q; split again: %q, %v", line, words, again, err)
		}
		// A CP pattern of the line's own words matches it.
		if !strings.ContainsAny(line, "*?") && len(words) <= MaxWords && len(line) <= MaxPatternLen {
			if p, err := Compile(line, Options{Fold: true, CP: true}); err != nil || !p.Match(words) {
				t.Fatalf("the CP pattern %q does not match its own line's words %q: %v", line, words, err)
			}
		}
	})
}
