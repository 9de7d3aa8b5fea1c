package linuxagent

import (
	"errors"
	"reflect"
	"testing"

	"github.com/zbridge/zbridge/commands/cmdpattern"
)

// TestSplitCommand checks that SplitCommand is cmdpattern.Split (whose
// tests compare it with /bin/sh) with this package's errors, which run.go
// and clients match.
func TestSplitCommand(t *testing.T) {
	for _, tt := range []struct {
		name, line string
		argv       []string
		kind       error
		offset     int
	}{
		{"words", `grep -c 'Failed password' "/var/log/auth.log"`, []string{"grep", "-c", "Failed password", "/var/log/auth.log"}, nil, 0},
		{"quoting does not dodge", `'rm' -rf r\m`, []string{"rm", "-rf", "rm"}, nil, 0},
		{"pipe", "ls | wc", nil, ErrShellSyntax, 3},
		{"glob", "cat /var/log/*", nil, ErrShellSyntax, 13},
		{"empty", " ", nil, ErrBadCommand, 0},
		{"unterminated", "echo 'a", nil, ErrBadCommand, 5},
		{"nul", "echo a\x00", nil, ErrBadCommand, 6},
	} {
		t.Run(tt.name, func(t *testing.T) {
			argv, err := SplitCommand(tt.line)
			want, wantErr := cmdpattern.Split(tt.line)
			if !reflect.DeepEqual(argv, want) || !reflect.DeepEqual(argv, tt.argv) {
				t.Fatalf("SplitCommand(%q) = %q; cmdpattern.Split gives %q; want %q", tt.line, argv, want, tt.argv)
			}
			if tt.kind == nil {
				if err != nil {
					t.Fatalf("SplitCommand(%q): %v", tt.line, err)
				}
				return
			}
			var se *SplitError
			if !errors.As(err, &se) || se.Kind != tt.kind || se.Offset != tt.offset {
				t.Fatalf("SplitCommand(%q) = %v, want a *SplitError of kind %v at offset %d", tt.line, err, tt.kind, tt.offset)
			}
			var cse *cmdpattern.SplitError
			if !errors.As(wantErr, &cse) || cse.Detail != se.Detail {
				t.Errorf("detail %q, cmdpattern.Split says %v", se.Detail, wantErr)
			}
		})
	}
	if got, want := QuoteCommand("echo", "it's", "a b"), cmdpattern.Quote("echo", "it's", "a b"); got != want {
		t.Errorf("QuoteCommand = %q, cmdpattern.Quote = %q", got, want)
	}
}
