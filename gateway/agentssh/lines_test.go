package agentssh

import (
	"bytes"
	"testing"
)

func TestLineSplitter(t *testing.T) {
	type out struct {
		data string
		eol  bool
	}
	tests := []struct {
		name    string
		maxLine int
		in      string
		want    []out
	}{
		{"empty", 8, "", nil},
		{"one line", 8, "hello\n", []out{{"hello", true}}},
		{"unterminated", 8, "hello", []out{{"hello", false}}},
		{"empty lines", 8, "\n\na\n", []out{{"", true}, {"", true}, {"a", true}}},
		{"crlf kept", 8, "a\r\nb", []out{{"a\r", true}, {"b", false}}},
		{"binary", 8, "\x00\xff\n\x7f", []out{{"\x00\xff", true}, {"\x7f", false}}},
		{"exactly max", 4, "abcd\nef", []out{{"abcd", true}, {"ef", false}}},
		{"exactly max at end", 4, "abcd", []out{{"abcd", false}}},
		{"one over max", 4, "abcde\n", []out{{"abcd", false}, {"e", true}}},
		{"long", 4, "abcdefghij\nk\n", []out{{"abcd", false}, {"efgh", false}, {"ij", true}, {"k", true}}},
		{"chunk then newline", 4, "abcdefgh\n", []out{{"abcd", false}, {"efgh", true}}},
	}
	for _, tt := range tests {
		for _, mode := range []string{"whole", "byte by byte"} {
			t.Run(tt.name+"/"+mode, func(t *testing.T) {
				s := lineSplitter{stream: 2, maxLine: tt.maxLine}
				var got []out
				emit := func(o Output) {
					if o.Stream != 2 {
						t.Errorf("stream %d", o.Stream)
					}
					got = append(got, out{string(o.Data), o.EOL})
				}
				if mode == "whole" {
					s.write([]byte(tt.in), emit)
				} else {
					for i := range len(tt.in) {
						s.write([]byte{tt.in[i]}, emit)
					}
				}
				s.flush(emit)
				s.flush(emit) // a second flush emits nothing
				if len(got) != len(tt.want) {
					t.Fatalf("got %+v, want %+v", got, tt.want)
				}
				for i := range got {
					if got[i] != tt.want[i] {
						t.Fatalf("got %+v, want %+v", got, tt.want)
					}
				}
			})
		}
	}
}

// TestLineSplitterOwnsData checks that Data does not alias the input.
func TestLineSplitterOwnsData(t *testing.T) {
	s := lineSplitter{stream: 1, maxLine: MaxLine}
	in := []byte("abc\nde")
	var got [][]byte
	emit := func(o Output) { got = append(got, o.Data) }
	s.write(in, emit)
	copy(in, "XXXXXX")
	s.write([]byte("f\n"), emit)
	if len(got) != 2 || string(got[0]) != "abc" || string(got[1]) != "def" {
		t.Errorf("got %q", got)
	}
}

// FuzzLineSplitter checks, for any input cut anywhere, that the pieces put
// back together give the input, that no piece is longer than maxLine or
// holds a newline, and that only the pieces ending a line say EOL.
func FuzzLineSplitter(f *testing.F) {
	f.Add([]byte("hello\nworld"), uint8(3), uint8(4))
	f.Add([]byte("\n\n\x00\xff\n"), uint8(1), uint8(1))
	f.Add(bytes.Repeat([]byte("x"), 100), uint8(7), uint8(16))
	f.Fuzz(func(t *testing.T, in []byte, cut, maxLine uint8) {
		ml := int(maxLine%32) + 1
		s := lineSplitter{stream: 1, maxLine: ml}
		var rebuilt []byte
		var pieces []Output
		emit := func(o Output) {
			pieces = append(pieces, o)
			rebuilt = append(rebuilt, o.Data...)
			if o.EOL {
				rebuilt = append(rebuilt, '\n')
			}
		}
		step := int(cut%17) + 1
		for i := 0; i < len(in); i += step {
			s.write(in[i:min(i+step, len(in))], emit)
		}
		s.flush(emit)
		if !bytes.Equal(rebuilt, in) {
			t.Fatalf("rebuilt %q from %q", rebuilt, in)
		}
		for i, o := range pieces {
			if len(o.Data) > ml || bytes.IndexByte(o.Data, '\n') >= 0 {
				t.Fatalf("piece %d %q (maxLine %d)", i, o.Data, ml)
			}
			if !o.EOL && i < len(pieces)-1 && len(o.Data) != ml {
				t.Fatalf("piece %d %q has EOL false but is neither full nor last", i, o.Data)
			}
		}
	})
}
