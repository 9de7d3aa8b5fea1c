package protocol

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// feeds are the ways a test hands input to a Reader: whole, and in pieces.
// A decoder must give the same results however its input is cut.
var feeds = []struct {
	name string
	wrap func(io.Reader) io.Reader
}{
	{"whole", func(r io.Reader) io.Reader { return r }},
	{"byte-by-byte", iotest.OneByteReader},
	{"half", iotest.HalfReader},
	{"data-with-eof", iotest.DataErrReader},
}

// readLines calls ReadLine until it fails, returning the lines (copied) and
// the error that ended them.
func readLines(r *Reader) ([]string, error) {
	var lines []string
	for {
		line, err := r.ReadLine()
		if err != nil {
			return lines, err
		}
		lines = append(lines, string(line))
	}
}

func TestReaderReadLine(t *testing.T) {
	const small = 256
	big := strings.Repeat("x", 200<<10) // spans several 64 KiB buffer fills
	tests := []struct {
		name    string
		in      string
		max     int // 0: DefaultMaxFrame
		want    []string
		wantErr error  // io.EOF for a clean end
		errText string // a substring of the error, when set
	}{
		{
			name:    "empty input",
			in:      "",
			wantErr: io.EOF,
		},
		{
			name:    "simple frames",
			in:      `{"type":"heartbeat","req":1}` + "\n" + `{"type":"logoff","req":2}` + "\n",
			want:    []string{`{"type":"heartbeat","req":1}`, `{"type":"logoff","req":2}`},
			wantErr: io.EOF,
		},
		{
			name:    "CRLF",
			in:      "{\"type\":\"a\"}\r\n{\"type\":\"b\"}\r\n",
			want:    []string{`{"type":"a"}`, `{"type":"b"}`},
			wantErr: io.EOF,
		},
		{
			name:    "mixed line ends",
			in:      "a\r\nb\nc\r\n",
			want:    []string{"a", "b", "c"},
			wantErr: io.EOF,
		},
		{
			name:    "only one CR dropped",
			in:      "a\r\r\n",
			want:    []string{"a\r"},
			wantErr: io.EOF,
		},
		{
			name:    "CR inside a frame kept",
			in:      "a\rb\n",
			want:    []string{"a\rb"},
			wantErr: io.EOF,
		},
		{
			name:    "blank lines returned empty",
			in:      "\n\r\n  \n",
			want:    []string{"", "", "  "},
			wantErr: io.EOF,
		},
		{
			name:    "unterminated final frame",
			in:      `{"type":"heartbeat"}`,
			wantErr: ErrPartialFrame,
			errText: "20 bytes",
		},
		{
			name:    "unterminated after frames",
			in:      "a\nb\n{\"ty",
			want:    []string{"a", "b"},
			wantErr: ErrPartialFrame,
		},
		{
			name:    "unterminated lone CR",
			in:      "a\n\r",
			want:    []string{"a"},
			wantErr: ErrPartialFrame,
		},
		{
			name:    "frame bigger than the buffer",
			in:      big + "\n" + "next\n",
			want:    []string{big, "next"},
			wantErr: io.EOF,
		},
		{
			name:    "frame bigger than the buffer CRLF",
			in:      big + "\r\n",
			want:    []string{big},
			wantErr: io.EOF,
		},
		{
			// The CR is the last byte of the first 64 KiB buffer, its LF
			// the first of the next.
			name:    "CR LF split across buffer fills",
			in:      strings.Repeat("y", 64<<10-1) + "\r\n",
			want:    []string{strings.Repeat("y", 64<<10-1)},
			wantErr: io.EOF,
		},
		{
			name:    "unterminated frame bigger than the buffer",
			in:      big,
			wantErr: ErrPartialFrame,
		},
		{
			name:    "exactly at the default limit",
			in:      strings.Repeat("z", DefaultMaxFrame) + "\r\n",
			want:    []string{strings.Repeat("z", DefaultMaxFrame)},
			wantErr: io.EOF,
		},
		{
			name:    "one over the default limit",
			in:      strings.Repeat("z", DefaultMaxFrame+1) + "\n",
			wantErr: ErrFrameTooLarge,
		},
		{
			// The extra CR arrives in the last buffer fill, with the
			// line end.
			name:    "one over the default limit with CR CR LF",
			in:      strings.Repeat("z", DefaultMaxFrame) + "\r\r\n",
			wantErr: ErrFrameTooLarge,
		},
		{
			name:    "exactly at the limit LF",
			in:      strings.Repeat("a", small) + "\n",
			max:     small,
			want:    []string{strings.Repeat("a", small)},
			wantErr: io.EOF,
		},
		{
			name:    "exactly at the limit CRLF",
			in:      strings.Repeat("a", small) + "\r\n",
			max:     small,
			want:    []string{strings.Repeat("a", small)},
			wantErr: io.EOF,
		},
		{
			name:    "exactly at the limit twice",
			in:      strings.Repeat("a", small) + "\n" + strings.Repeat("b", small) + "\r\n",
			max:     small,
			want:    []string{strings.Repeat("a", small), strings.Repeat("b", small)},
			wantErr: io.EOF,
		},
		{
			name:    "one over the limit LF",
			in:      strings.Repeat("a", small+1) + "\n",
			max:     small,
			wantErr: ErrFrameTooLarge,
			errText: "more than 256 bytes at offset 0",
		},
		{
			name:    "one over the limit CRLF",
			in:      strings.Repeat("a", small+1) + "\r\n",
			max:     small,
			wantErr: ErrFrameTooLarge,
		},
		{
			// Only one CR belongs to the line end; the other is the
			// frame's 257th byte.
			name:    "one over the limit with CR CR LF",
			in:      strings.Repeat("a", small) + "\r\r\n",
			max:     small,
			wantErr: ErrFrameTooLarge,
		},
		{
			name:    "far over the limit",
			in:      strings.Repeat("a", 3*small) + "\n",
			max:     small,
			wantErr: ErrFrameTooLarge,
		},
		{
			name:    "over the limit after good frames",
			in:      "ok\n" + strings.Repeat("a", small+1) + "\n",
			max:     small,
			want:    []string{"ok"},
			wantErr: ErrFrameTooLarge,
			errText: "at offset 3",
		},
		{
			name:    "over the limit unterminated",
			in:      strings.Repeat("a", small+1),
			max:     small,
			wantErr: ErrFrameTooLarge,
		},
		{
			name:    "at the limit unterminated",
			in:      strings.Repeat("a", small),
			max:     small,
			wantErr: ErrPartialFrame,
		},
		{
			name:    "tiny limit",
			in:      "abc\nabcd\n",
			max:     3,
			want:    []string{"abc"},
			wantErr: ErrFrameTooLarge,
		},
	}
	for _, tt := range tests {
		for _, feed := range feeds {
			t.Run(tt.name+"/"+feed.name, func(t *testing.T) {
				r := NewReader(feed.wrap(strings.NewReader(tt.in)), tt.max)
				got, err := readLines(r)
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error = %v, want %v", err, tt.wantErr)
				}
				if tt.errText != "" && !strings.Contains(err.Error(), tt.errText) {
					t.Errorf("error %q does not say %q", err, tt.errText)
				}
				if !equalLines(got, tt.want) {
					t.Errorf("lines = %s, want %s", summarize(got), summarize(tt.want))
				}
			})
		}
	}
}

func equalLines(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// summarize shows lines briefly: long ones by length.
func summarize(lines []string) string {
	short := make([]string, len(lines))
	for i, l := range lines {
		if len(l) > 40 {
			short[i] = fmt.Sprintf("%q...(%d bytes)", l[:10], len(l))
		} else {
			short[i] = strconv.Quote(l)
		}
	}
	return "[" + strings.Join(short, " ") + "]"
}

func TestReaderSetMaxFrame(t *testing.T) {
	in := strings.Repeat("a", 100) + "\n" + strings.Repeat("b", 100) + "\n"
	for _, feed := range feeds {
		t.Run(feed.name, func(t *testing.T) {
			r := NewReader(feed.wrap(strings.NewReader(in)), 0)
			line, err := r.ReadLine()
			if err != nil || len(line) != 100 {
				t.Fatalf("first ReadLine = %d bytes, %v; want 100 bytes", len(line), err)
			}
			r.SetMaxFrame(99)
			if _, err := r.ReadLine(); !errors.Is(err, ErrFrameTooLarge) {
				t.Fatalf("after SetMaxFrame(99): error = %v, want ErrFrameTooLarge", err)
			}
		})
	}
}

func TestReaderNext(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []Frame
		wantErr error
		errText string
	}{
		{
			name: "logon and subscribe",
			in: `{"type":"logon","req":1,"client":"ops","secret":"s","version":1,"heartbeat":30}` + "\n" +
				`{"type":"subscribe","req":2,"filter":{"origin":"lnx*","source":["syslog"],"severity":"warning"},"after":"1700000000000-3"}` + "\n",
			want: []Frame{
				{Type: TypeLogon, Req: 1, Client: "ops", Secret: "s", Version: 1, Heartbeat: 30},
				{Type: TypeSubscribe, Req: 2, Filter: &Filter{Origin: "lnx*", Source: []Source{SourceSyslog}, Severity: sevPtr(SevWarning)}, After: "1700000000000-3"},
			},
			wantErr: io.EOF,
		},
		{
			name:    "blank lines skipped",
			in:      "\n\r\n   \n\t\r\n" + `{"type":"heartbeat"}` + "\r\n\n\n",
			want:    []Frame{{Type: TypeHeartbeat}},
			wantErr: io.EOF,
		},
		{
			name:    "only blank lines",
			in:      "\n\n\r\n",
			wantErr: io.EOF,
		},
		{
			name:    "garbage",
			in:      `{"type":"heartbeat"}` + "\nhello\n",
			want:    []Frame{{Type: TypeHeartbeat}},
			wantErr: ErrMalformed,
			errText: "at offset 1",
		},
		{
			name:    "trailing garbage",
			in:      `{"type":"x"} junk` + "\n",
			wantErr: ErrMalformed,
			errText: "at offset 14",
		},
		{
			name:    "no type",
			in:      `{"req":1}` + "\n",
			wantErr: ErrMalformed,
			errText: `no "type"`,
		},
		{
			name:    "unterminated",
			in:      `{"type":"heartbeat"}` + "\n" + `{"type":"heartbeat"}`,
			want:    []Frame{{Type: TypeHeartbeat}},
			wantErr: ErrPartialFrame,
		},
		{
			name:    "too large",
			in:      `{"type":"notice","message":"` + strings.Repeat("m", DefaultMaxFrame) + `"}` + "\n",
			wantErr: ErrFrameTooLarge,
		},
	}
	for _, tt := range tests {
		for _, feed := range feeds {
			t.Run(tt.name+"/"+feed.name, func(t *testing.T) {
				r := NewReader(feed.wrap(strings.NewReader(tt.in)), 0)
				var got []Frame
				var err error
				for {
					var f Frame
					if err = r.Next(&f); err != nil {
						break
					}
					got = append(got, f)
				}
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error = %v, want %v", err, tt.wantErr)
				}
				if tt.errText != "" && !strings.Contains(err.Error(), tt.errText) {
					t.Errorf("error %q does not say %q", err, tt.errText)
				}
				if len(got) != len(tt.want) {
					t.Fatalf("got %d frames, want %d: %+v", len(got), len(tt.want), got)
				}
				for i := range got {
					if !reflect.DeepEqual(got[i], tt.want[i]) {
						t.Errorf("frame %d = %+v, want %+v", i, got[i], tt.want[i])
					}
				}
			})
		}
	}
}

// TestNextResets checks that Next and Decode reset the frame first, so no
// field of an earlier frame survives.
func TestNextResets(t *testing.T) {
	in := `{"type":"logon","req":1,"client":"ops","options":{"a":"b"}}` + "\n" + `{"type":"heartbeat"}` + "\n"
	r := NewReader(strings.NewReader(in), 0)
	var f Frame
	if err := r.Next(&f); err != nil {
		t.Fatal(err)
	}
	if err := r.Next(&f); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(f, Frame{Type: TypeHeartbeat}) {
		t.Errorf("second frame = %+v, want only the heartbeat", f)
	}
}

func sevPtr(s Severity) *Severity { return &s }

func TestDecode(t *testing.T) {
	recv := time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC)
	tests := []struct {
		name    string
		in      string
		want    Frame
		wantErr []error // all must hold (errors.Is)
		errText string
	}{
		{
			name: "logon",
			in:   `{"type":"logon","req":1,"client":"ops","secret":"s","version":1,"heartbeat":30,"options":{"format":"lx"}}`,
			want: Frame{Type: TypeLogon, Req: 1, Client: "ops", Secret: "s", Version: 1, Heartbeat: 30, Options: map[string]string{"format": "lx"}},
		},
		{
			name: "accept",
			in:   `{"type":"accept","session":"s-1","limits":{"heartbeat":30,"idle_timeout":90,"lifetime":0,"max_frame":65536}}`,
			want: Frame{Type: TypeAccept, Session: "s-1", Limits: &Limits{Heartbeat: 30, IdleTimeout: 90, MaxFrame: 65536}},
		},
		{
			name: "reply with error",
			in:   `{"type":"reply","req":7,"error":{"code":"state","message":"not subscribed"}}`,
			want: Frame{Type: TypeReply, Req: 7, Error: &Error{Code: ErrCodeState, Message: "not subscribed"}},
		},
		{
			name: "bye behind",
			in:   `{"type":"bye","reason":"behind","message":"too slow","resume_after":"17-2"}`,
			want: Frame{Type: TypeBye, Reason: ByeBehind, Message: "too slow", ResumeAfter: "17-2"},
		},
		{
			name: "event",
			in:   `{"type":"event","event":{"id":"1740830400000-1","received":"2025-03-01T12:00:00.123456789Z","time":"2025-03-01T12:00:00.123456789Z","origin":{"system":"VMSYS1"},"source":"zvm-event","facility":"daemon","severity":"notice","type":"LOGON","user":"MAINT","text":"USER MAINT LOGON","parsed":true}}`,
			want: Frame{Type: TypeEvent, Event: &Event{
				ID: ID{1740830400000, 1}, Received: recv, Time: recv, Origin: Origin{System: "VMSYS1"},
				Source: SourceZVMEvent, Facility: FacDaemon, Severity: SevNotice, Type: "LOGON", User: "MAINT",
				Text: "USER MAINT LOGON", Parsed: true,
			}},
		},
		{
			name: "event line",
			in:   `{"type":"event","id":"5-0","line":"Mar  1 12:00:00 VMSYS1 LOGON MAINT"}`,
			want: Frame{Type: TypeEvent, ID: "5-0", Line: "Mar  1 12:00:00 VMSYS1 LOGON MAINT"},
		},
		{
			name: "unknown type decodes",
			in:   `{"type":"frobnicate","req":3}`,
			want: Frame{Type: "frobnicate", Req: 3},
		},
		{
			name: "unknown fields ignored",
			in:   `{"type":"heartbeat","colour":"blue"}`,
			want: Frame{Type: TypeHeartbeat},
		},
		{
			name: "surrounding white space",
			in:   " \t{\"type\":\"heartbeat\"} ",
			want: Frame{Type: TypeHeartbeat},
		},
		{name: "empty", in: "", wantErr: []error{ErrMalformed}},
		{name: "garbage", in: "hello", wantErr: []error{ErrMalformed}, errText: "at offset 1"},
		{name: "truncated", in: `{"type":`, wantErr: []error{ErrMalformed}, errText: "at offset 8"},
		{name: "bad escape", in: `{"type":"a\x"}`, wantErr: []error{ErrMalformed}, errText: "at offset 12"},
		{name: "trailing garbage", in: `{"type":"x"}}`, wantErr: []error{ErrMalformed}, errText: "at offset 13"},
		{name: "no type", in: `{"req":1}`, wantErr: []error{ErrMalformed}, errText: `no "type"`},
		{name: "empty type", in: `{"type":""}`, wantErr: []error{ErrMalformed}, errText: `no "type"`},
		{name: "null type", in: `{"type":null}`, wantErr: []error{ErrMalformed}, errText: `no "type"`},
		{name: "empty object", in: `{}`, wantErr: []error{ErrMalformed}},
		{name: "array", in: `[{"type":"logon"}]`, wantErr: []error{ErrMalformed}},
		{name: "string", in: `"logon"`, wantErr: []error{ErrMalformed}},
		{name: "number", in: `42`, wantErr: []error{ErrMalformed}},
		{name: "bool", in: `true`, wantErr: []error{ErrMalformed}},
		{name: "null", in: `null`, wantErr: []error{ErrMalformed}},
		{name: "type not a string", in: `{"type":1}`, wantErr: []error{ErrMalformed}},
		{name: "req not a number", in: `{"type":"heartbeat","req":"1"}`, wantErr: []error{ErrMalformed}},
		{name: "negative req", in: `{"type":"heartbeat","req":-1}`, wantErr: []error{ErrMalformed}},
		{name: "bad event ID", in: `{"type":"event","event":{"id":"x"}}`, wantErr: []error{ErrMalformed, ErrBadID}},
		{name: "bad severity", in: `{"type":"event","event":{"severity":"loud"}}`, wantErr: []error{ErrMalformed, ErrBadSeverity}},
		{name: "bad facility", in: `{"type":"event","event":{"facility":"24"}}`, wantErr: []error{ErrMalformed, ErrBadFacility}},
		{name: "bad time", in: `{"type":"event","event":{"time":"yesterday"}}`, wantErr: []error{ErrMalformed}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := Frame{Type: "stale", Req: 99, Client: "stale"} // Decode must reset it
			err := Decode([]byte(tt.in), &f)
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				if !reflect.DeepEqual(f, tt.want) {
					t.Errorf("Decode = %+v\nwant     %+v", f, tt.want)
				}
				if f.Event != nil && !f.Event.Received.Equal(tt.want.Event.Received) {
					t.Errorf("received = %v, want %v", f.Event.Received, tt.want.Event.Received)
				}
				return
			}
			if err == nil {
				t.Fatalf("Decode(%q) = %+v, want error", tt.in, f)
			}
			for _, want := range tt.wantErr {
				if !errors.Is(err, want) {
					t.Errorf("error %v is not %v", err, want)
				}
			}
			if tt.errText != "" && !strings.Contains(err.Error(), tt.errText) {
				t.Errorf("error %q does not say %q", err, tt.errText)
			}
		})
	}
}

func TestAppendFrame(t *testing.T) {
	e := sampleEvent()
	tests := []struct {
		name string
		f    Frame
	}{
		{"logon", Frame{Type: TypeLogon, Req: 1, Client: "ops", Secret: "s3cr=t<>&", Version: Version, Heartbeat: 30, Options: map[string]string{"format": "lx"}}},
		{"accept", Frame{Type: TypeAccept, Session: "sess-1", Limits: &Limits{Heartbeat: 30, IdleTimeout: 90, MaxFrame: DefaultMaxFrame}}},
		{"subscribe", Frame{Type: TypeSubscribe, Req: 2, Filter: &Filter{Origin: "VM*", Source: []Source{SourceZVMConsole, SourceZVMEvent}, MsgID: "HCP*", Severity: sevPtr(SevErr)}, After: "0-0", Format: "json"}},
		{"reply", *Reply(3, &Error{Code: ErrCodeBadRequest, Message: "bad filter"})},
		{"bare event", Frame{Type: TypeEvent, Event: &e}},
		{"event with req", Frame{Type: TypeEvent, Req: 4, Event: &e}},
		// The fast path must not drop fields other than the event.
		{"event with message", Frame{Type: TypeEvent, Event: &e, Message: "replayed"}},
		{"event with id", Frame{Type: TypeEvent, Event: &e, ID: "1-1"}},
		{"event line", Frame{Type: TypeEvent, ID: "1-1", Line: "a line"}},
		{"bye", Frame{Type: TypeBye, Reason: ByeShutdown, Message: "bye", RetryAfter: 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := []byte("prefix")
			b, err := AppendFrame(prefix, &tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(b, prefix) {
				t.Fatalf("AppendFrame lost the prefix: %q", b)
			}
			b = b[len(prefix):]
			if bytes.Count(b, []byte("\n")) != 1 || b[len(b)-1] != '\n' {
				t.Fatalf("AppendFrame = %q, want one line", b)
			}
			var got Frame
			if err := Decode(b[:len(b)-1], &got); err != nil {
				t.Fatalf("Decode(%q): %v", b, err)
			}
			if !framesEqual(got, tt.f) {
				t.Errorf("round trip = %+v\nwant        %+v", got, tt.f)
			}
		})
	}
	t.Run("bare event decodes as AppendEventFrame's", func(t *testing.T) {
		b, err := AppendFrame(nil, &Frame{Type: TypeEvent, Event: &e})
		if err != nil {
			t.Fatal(err)
		}
		var slow, fast Frame
		if err := Decode(b[:len(b)-1], &slow); err != nil {
			t.Fatal(err)
		}
		fb := AppendEventFrame(nil, &e)
		if err := Decode(fb[:len(fb)-1], &fast); err != nil {
			t.Fatal(err)
		}
		if !framesEqual(slow, fast) {
			t.Errorf("AppendFrame and AppendEventFrame differ:\n%s\n%s", b, fb)
		}
	})
}

// framesEqual compares frames as the wire sees them: events' times by
// instant and offset, empty maps and slices as absent.
func framesEqual(a, b Frame) bool {
	a, b = normFrame(a), normFrame(b)
	ea, eb := a.Event, b.Event
	a.Event, b.Event = nil, nil
	if !reflect.DeepEqual(a, b) {
		return false
	}
	if (ea == nil) != (eb == nil) {
		return false
	}
	return ea == nil || eventsEqual(*ea, *eb)
}

func normFrame(f Frame) Frame {
	if len(f.Options) == 0 {
		f.Options = nil
	}
	if f.Filter != nil && (len(f.Filter.Source) == 0 || len(f.Filter.SD) == 0) {
		g := *f.Filter
		if len(g.Source) == 0 {
			g.Source = nil
		}
		if len(g.SD) == 0 {
			g.SD = nil
		}
		f.Filter = &g
	}
	return f
}

// eventsEqual reports whether a and b are equal, comparing times by instant
// and zone offset (the zone's name and *Location do not go on the wire).
func eventsEqual(a, b Event) bool {
	if !sameTime(a.Received, b.Received) || !sameTime(a.Time, b.Time) {
		return false
	}
	if (a.OriginTime == nil) != (b.OriginTime == nil) {
		return false
	}
	if a.OriginTime != nil && !sameTime(*a.OriginTime, *b.OriginTime) {
		return false
	}
	a.Received, a.Time, a.OriginTime = time.Time{}, time.Time{}, nil
	b.Received, b.Time, b.OriginTime = time.Time{}, time.Time{}, nil
	return reflect.DeepEqual(a, b)
}

func sameTime(a, b time.Time) bool {
	_, ao := a.Zone()
	_, bo := b.Zone()
	return a.Equal(b) && ao == bo
}

// FuzzDecode checks that Decode never panics and that a frame it accepts
// survives encoding: decode → AppendFrame → Decode gives the same frame, and
// encoding that gives the same bytes again.
func FuzzDecode(f *testing.F) {
	e := sampleEvent()
	for _, seed := range []string{
		`{"type":"logon","req":1,"client":"ops","secret":"s","version":1,"heartbeat":30}`,
		`{"type":"logon","req":1,"client":"ops","secret":"s","version":1,"heartbeat":30,"options":{"format":"lx","tz":"UTC"}}`,
		`{"type":"accept","session":"s-1","limits":{"heartbeat":30,"idle_timeout":90,"lifetime":3600,"max_frame":1048576}}`,
		`{"type":"refuse","reason":"busy","message":"too many sessions","retry_after":10}`,
		`{"type":"subscribe","req":2,"filter":{"origin":"lnx*","source":["syslog","region"],"msgid":"HCP*","severity":"warning"},"after":"1700000000000-3","format":"json"}`,
		`{"type":"reply","req":2,"after":"1700000000000-3"}`,
		`{"type":"reply","req":3,"error":{"code":"bad-request","message":"bad filter"}}`,
		`{"type":"heartbeat","req":9}`,
		`{"type":"bye","reason":"behind","resume_after":"1700000000000-3"}`,
		`{"type":"notice","message":"region shutting down in 30s"}`,
		`{"type":"event","id":"1700000000000-0","line":"<13>1 2023-11-14T22:13:20Z lnx1 app - - - hi"}`,
		`{"type":"event","req":5,"event":{"id":"1-2","received":"2024-01-01T00:00:00+05:30","time":"2023-12-31T18:30:00Z","origin":{},"source":"agent","facility":"kern","severity":"emerg","text":"","parsed":false}}`,
		`{"type":"event","event":{"id":"1-2","received":"2024-01-01T00:00:00.5-00:00","time":"0001-01-01T00:00:00Z"}}`,
		`{"type":"event","event":{"id":"1-3","received":"2024-01-01T00:00:00Z","time":"2024-01-01T00:00:00Z","origin":{},"source":"syslog","sd":{"exampleSDID@32473":{"iut":"3","eventSource":"Application"},"origin":{"ip":["192.0.2.1","192.0.2.129"],"software":"x"},"e":{}},"facility":"user","severity":"notice","text":"","parsed":true}}`,
		`{"type":"subscribe","req":2,"filter":{"sd":[{"id":"origin@32473.1.2","param":"ip","glob":"192.0.2.*"}]}}`,
		`{"TYPE":"Logon","Options":{}}`,
		"{\"type\":\"notice\",\"message\":\"\\u2028\\ud800\xff<&>\"}",
		`not json`,
		`[]`,
		`null`,
	} {
		f.Add([]byte(seed))
	}
	// Containers over their limits, and on types that do not carry them.
	f.Add(repeatFrame(`{"type":"events","seq":1,"events":[`, `{"text":"%x"}`, `]}`, MaxBatch+1))
	f.Add(repeatFrame(`{"type":"heartbeat","events":[`, `{}`, `]}`, MaxBatch+1))
	f.Add(repeatFrame(`{"type":"subscribe","filter":{"sd":[`, `{"id":"a","param":"b","glob":"*"}`, `]}}`, MaxSDTerms+1))
	f.Add(repeatFrame(`{"type":"logon","options":{`, `"%x":""`, `}}`, MaxOptions+1))
	f.Add(repeatFrame(`{"type":"event","event":{"sd":{"a":{"c":"","b":[`, `""`, `],"c":""}}}}`, 500))
	f.Add(bytes.TrimSuffix(AppendEventFrame(nil, &e), []byte("\n")))
	f.Add(bytes.TrimSuffix(AppendLineFrame(nil, e.ID, "a \"line\"\n"), []byte("\n")))
	unparsed := Event{ID: ID{Ms: 1}, Source: SourceSyslog, Text: "\xff\xfegarbage", Raw: "\xff\xfegarbage", ParseError: "no PRI"}
	f.Add(bytes.TrimSuffix(AppendEventFrame(nil, &unparsed), []byte("\n")))

	f.Fuzz(func(t *testing.T, data []byte) {
		var f1 Frame
		if err := Decode(data, &f1); err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Decode error %v is not ErrMalformed", err)
			}
			return
		}
		enc1, err := AppendFrame(nil, &f1)
		if err != nil {
			t.Fatalf("AppendFrame of a decoded frame %+v: %v", f1, err)
		}
		var f2 Frame
		if err := Decode(bytes.TrimSuffix(enc1, []byte("\n")), &f2); err != nil {
			t.Fatalf("Decode(AppendFrame(Decode(%q))) = %v\nencoded: %s", data, err, enc1)
		}
		if !framesEqual(f1, f2) {
			t.Fatalf("round trip changed the frame\nfirst:  %+v\nsecond: %+v\nencoded: %s", f1, f2, enc1)
		}
		enc2, err := AppendFrame(nil, &f2)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(enc1, enc2) {
			t.Fatalf("encode(decode(encode(x))) != encode(x)\nfirst:  %s\nsecond: %s", enc1, enc2)
		}
	})
}

// FuzzReader checks that the Reader never panics, never returns a line over
// its limit, and returns the same lines and error however its input is cut.
func FuzzReader(f *testing.F) {
	const max = 256
	e := sampleEvent()
	f.Add([]byte(`{"type":"logon","req":1,"client":"ops","secret":"s","version":1,"heartbeat":30}` + "\n"))
	f.Add([]byte("{\"type\":\"heartbeat\"}\r\n\n\r\n{\"type\":\"logoff\"}\n"))
	f.Add(AppendEventFrame(nil, &e))
	f.Add([]byte(strings.Repeat("a", max) + "\r\n" + strings.Repeat("b", max+1) + "\n"))
	f.Add([]byte(strings.Repeat("a", max) + "\r\r\n"))
	f.Add([]byte(strings.Repeat("a", max) + "\r"))
	f.Add([]byte("partial"))
	f.Fuzz(func(t *testing.T, data []byte) {
		type result struct {
			lines []string
			err   error
		}
		run := func(r io.Reader) result {
			rd := NewReader(r, max)
			var res result
			for {
				line, err := rd.ReadLine()
				if err != nil {
					res.err = err
					return res
				}
				if len(line) > max {
					t.Fatalf("ReadLine returned %d bytes, over the limit %d", len(line), max)
				}
				if bytes.HasSuffix(line, []byte("\n")) {
					t.Fatalf("ReadLine returned a line end: %q", line)
				}
				res.lines = append(res.lines, string(line))
			}
		}
		whole := run(bytes.NewReader(data))
		for _, feed := range feeds[1:] {
			cut := run(feed.wrap(bytes.NewReader(data)))
			if !equalLines(whole.lines, cut.lines) {
				t.Fatalf("%s: lines %q, whole %q", feed.name, cut.lines, whole.lines)
			}
			if whole.err.Error() != cut.err.Error() {
				t.Fatalf("%s: error %v, whole %v", feed.name, cut.err, whole.err)
			}
		}
		switch {
		case whole.err == io.EOF, errors.Is(whole.err, ErrPartialFrame), errors.Is(whole.err, ErrFrameTooLarge):
		default:
			t.Fatalf("unexpected error %v", whole.err)
		}
		// The lines are the input, cut at LF, each without one CR before
		// its LF; what follows the last LF is the partial frame or the
		// too-large one.
		if whole.err == io.EOF {
			var want []string
			for _, l := range strings.SplitAfter(string(data), "\n") {
				if l == "" {
					continue
				}
				want = append(want, strings.TrimSuffix(strings.TrimSuffix(l, "\n"), "\r"))
			}
			if !equalLines(whole.lines, want) {
				t.Fatalf("lines %q, want %q", whole.lines, want)
			}
		}
	})
}

// deadlineReader returns its chunks one per Read, with a timeout error
// between them, as a net.Conn whose read deadline fires mid-frame does.
type deadlineReader struct {
	chunks []string
	gap    bool
}

type timeoutErr struct{}

func (timeoutErr) Error() string { return "i/o timeout" }
func (timeoutErr) Timeout() bool { return true }

func (d *deadlineReader) Read(p []byte) (int, error) {
	if len(d.chunks) == 0 {
		return 0, io.EOF
	}
	if d.gap {
		d.gap = false
		return 0, timeoutErr{}
	}
	n := copy(p, d.chunks[0])
	d.chunks[0] = d.chunks[0][n:]
	if d.chunks[0] == "" {
		d.chunks = d.chunks[1:]
		d.gap = true
	}
	return n, nil
}

// TestReadLineResumesAfterTimeout checks that a frame whose bytes arrive on
// both sides of a read deadline is still read whole: a client that uses its
// read deadline as a heartbeat timer must not lose half a frame.
func TestReadLineResumesAfterTimeout(t *testing.T) {
	r := NewReader(&deadlineReader{chunks: []string{`{"type":"ev`, `ent","id":"1-0"`, `,"line":"x"}` + "\n" + `{"type":"bye"}` + "\n"}}, 0)
	var got []string
	timeouts := 0
	for {
		line, err := r.ReadLine()
		if err == io.EOF {
			break
		}
		if err != nil {
			if _, ok := err.(timeoutErr); !ok {
				t.Fatalf("ReadLine: %v", err)
			}
			timeouts++
			continue
		}
		got = append(got, string(line))
	}
	want := []string{`{"type":"event","id":"1-0","line":"x"}`, `{"type":"bye"}`}
	if fmt.Sprint(got) != fmt.Sprint(want) || timeouts == 0 {
		t.Fatalf("got %q after %d timeouts, want %q", got, timeouts, want)
	}
}

// TestHasFrame: HasFrame is true only when a whole, non-blank frame is
// buffered, so that reading it cannot wait on the connection.
func TestHasFrame(t *testing.T) {
	pr, pw := io.Pipe()
	r := NewReader(pr, 0)
	if r.HasFrame() {
		t.Fatal("HasFrame with nothing read")
	}
	go pw.Write([]byte("{\"type\":\"event\"}\n   \n{\"type\":"))
	if _, err := r.ReadLine(); err != nil {
		t.Fatal(err)
	}
	if r.HasFrame() {
		t.Error("HasFrame with a blank line and part of a frame buffered")
	}
	if line, err := r.ReadLine(); err != nil || len(bytes.TrimSpace(line)) != 0 {
		t.Fatalf("ReadLine %q %v, want the blank line", line, err)
	}
	if r.HasFrame() {
		t.Error("HasFrame with part of a frame buffered")
	}
	go pw.Write([]byte("\"heartbeat\"}\n{\"type\":\"reply\"}\n"))
	if line, err := r.ReadLine(); err != nil || string(line) != `{"type":"heartbeat"}` {
		t.Fatalf("ReadLine %q %v", line, err)
	}
	if !r.HasFrame() {
		t.Error("no HasFrame with a whole frame buffered")
	}
}

// TestReaderDropsLargeLine: the buffer a frame larger than the read
// buffer grew is not kept once the next frame is read, so an idle
// connection does not hold its one large frame's worth.
func TestReaderDropsLargeLine(t *testing.T) {
	big := `{"type":"heartbeat","req":1,"text":"` + strings.Repeat("a", 512<<10) + `"}` + "\n"
	r := NewReaderSize(strings.NewReader(big+`{"type":"heartbeat","req":2}`+"\n"), 1<<20, 4096)
	if _, err := r.ReadLine(); err != nil {
		t.Fatal(err)
	}
	if cap(r.line) < 512<<10 {
		t.Fatalf("the large frame was gathered in %d bytes", cap(r.line))
	}
	line, err := r.ReadLine()
	if err != nil || string(line) != `{"type":"heartbeat","req":2}` {
		t.Fatalf("second frame: %q, %v", line, err)
	}
	if cap(r.line) > keepLine {
		t.Errorf("the reader keeps %d bytes of the large frame's buffer", cap(r.line))
	}
}
