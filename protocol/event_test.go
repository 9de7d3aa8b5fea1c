package protocol

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestParseID(t *testing.T) {
	tests := []struct {
		in      string
		want    ID
		wantErr bool
	}{
		{in: "", want: ID{}},
		{in: "0", want: ID{}},
		{in: "0-0", want: ID{}},
		{in: "1-0", want: ID{Ms: 1}},
		{in: "1700000000000-3", want: ID{Ms: 1700000000000, Seq: 3}},
		{in: "1700000000000", want: ID{Ms: 1700000000000}}, // bare ms
		{in: "007-01", want: ID{Ms: 7, Seq: 1}},
		{in: "18446744073709551615-18446744073709551615", want: ID{Ms: 1<<64 - 1, Seq: 1<<64 - 1}},
		{in: "18446744073709551616-0", wantErr: true}, // ms overflows
		{in: "1-18446744073709551616", wantErr: true}, // seq overflows
		{in: "99999999999999999999999", wantErr: true},
		{in: "garbage", wantErr: true},
		{in: "-", wantErr: true},
		{in: "-1", wantErr: true},
		{in: "1-", wantErr: true},
		{in: "1-2-3", wantErr: true},
		{in: "1--2", wantErr: true},
		{in: "+1-2", wantErr: true},
		{in: "1-+2", wantErr: true},
		{in: " 1-2", wantErr: true},
		{in: "1-2 ", wantErr: true},
		{in: "1.5-2", wantErr: true},
		{in: "0x10-0", wantErr: true},
		{in: "$", wantErr: true}, // Redis's "last entry" is not an ID here
		{in: "*", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.in), func(t *testing.T) {
			got, err := ParseID(tt.in)
			if tt.wantErr {
				if !errors.Is(err, ErrBadID) {
					t.Fatalf("ParseID(%q) = %v, %v; want ErrBadID", tt.in, got, err)
				}
				if !strings.Contains(err.Error(), fmt.Sprintf("%q", tt.in)) {
					t.Errorf("error %q does not quote the input", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseID(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
			// The text form parses back to the same ID.
			back, err := ParseID(got.String())
			if err != nil || back != got {
				t.Errorf("ParseID(%q) = %v, %v; want %v", got.String(), back, err, got)
			}
		})
	}
}

func TestIDString(t *testing.T) {
	tests := []struct {
		id   ID
		want string
	}{
		{ID{}, "0-0"},
		{ID{Ms: 1}, "1-0"},
		{ID{Seq: 1}, "0-1"},
		{ID{Ms: 1700000000000, Seq: 42}, "1700000000000-42"},
		{ID{Ms: 1<<64 - 1, Seq: 1<<64 - 1}, "18446744073709551615-18446744073709551615"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.id.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
			if got := string(tt.id.Append([]byte("x"))); got != "x"+tt.want {
				t.Errorf("Append = %q, want %q", got, "x"+tt.want)
			}
			if got := fmt.Sprint(tt.id); got != tt.want {
				t.Errorf("Sprint = %q, want %q", got, tt.want)
			}
			if tt.id.IsZero() != (tt.id == ID{}) {
				t.Errorf("IsZero() = %v", tt.id.IsZero())
			}
		})
	}
}

func TestIDCompare(t *testing.T) {
	tests := []struct {
		name string
		a, b ID
		want int
	}{
		{"zero equal", ID{}, ID{}, 0},
		{"equal", ID{5, 6}, ID{5, 6}, 0},
		{"zero before all", ID{}, ID{0, 1}, -1},
		{"ms decides", ID{1, 9}, ID{2, 0}, -1},
		{"ms decides reversed", ID{2, 0}, ID{1, 9}, 1},
		{"seq within ms", ID{7, 1}, ID{7, 2}, -1},
		{"seq within ms reversed", ID{7, 2}, ID{7, 1}, 1},
		{"max", ID{1<<64 - 1, 1<<64 - 1}, ID{1<<64 - 1, 1<<64 - 2}, 1},
		// Numeric order, not text order: "10-0" sorts before "9-0" as text.
		{"numeric not lexical", ID{9, 0}, ID{10, 0}, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.a.Compare(tt.b); got != tt.want {
				t.Errorf("%v.Compare(%v) = %d, want %d", tt.a, tt.b, got, tt.want)
			}
			if got := tt.b.Compare(tt.a); got != -tt.want {
				t.Errorf("%v.Compare(%v) = %d, want %d", tt.b, tt.a, got, -tt.want)
			}
			if got := tt.a.Less(tt.b); got != (tt.want < 0) {
				t.Errorf("%v.Less(%v) = %v", tt.a, tt.b, got)
			}
		})
	}
}

func TestIDJSON(t *testing.T) {
	tests := []struct {
		name string
		id   ID
		json string
	}{
		{"zero", ID{}, `"0-0"`},
		{"ms and seq", ID{Ms: 1700000000000, Seq: 3}, `"1700000000000-3"`},
		{"max", ID{Ms: 1<<64 - 1, Seq: 1<<64 - 1}, `"18446744073709551615-18446744073709551615"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.id)
			if err != nil || string(b) != tt.json {
				t.Fatalf("json.Marshal = %s, %v; want %s", b, err, tt.json)
			}
			var back ID
			if err := json.Unmarshal(b, &back); err != nil || back != tt.id {
				t.Fatalf("json.Unmarshal(%s) = %v, %v; want %v", b, back, err, tt.id)
			}
			// As a map key (TextMarshaler) too.
			m := map[ID]int{tt.id: 1}
			b, err = json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			var mb map[ID]int
			if err := json.Unmarshal(b, &mb); err != nil || mb[tt.id] != 1 {
				t.Errorf("map round trip via %s = %v, %v", b, mb, err)
			}
		})
	}
	t.Run("lenient forms", func(t *testing.T) {
		for in, want := range map[string]ID{`"0"`: {}, `""`: {}, `"12"`: {Ms: 12}} {
			var id ID
			if err := json.Unmarshal([]byte(in), &id); err != nil || id != want {
				t.Errorf("json.Unmarshal(%s) = %v, %v; want %v", in, id, err, want)
			}
		}
	})
	t.Run("bad", func(t *testing.T) {
		for _, in := range []string{`"x"`, `"1-x"`, `"18446744073709551616"`} {
			var id ID
			if err := json.Unmarshal([]byte(in), &id); !errors.Is(err, ErrBadID) {
				t.Errorf("json.Unmarshal(%s) = %v, want ErrBadID", in, err)
			}
		}
		var id ID
		if err := json.Unmarshal([]byte(`17`), &id); err == nil {
			t.Errorf("json.Unmarshal(17) = %v, want an error: the ID is a string", id)
		}
	})
}

func TestParseSeverity(t *testing.T) {
	tests := []struct {
		in      string
		want    Severity
		wantErr bool
	}{
		{in: "emerg", want: SevEmerg},
		{in: "alert", want: SevAlert},
		{in: "crit", want: SevCrit},
		{in: "err", want: SevErr},
		{in: "warning", want: SevWarning},
		{in: "notice", want: SevNotice},
		{in: "info", want: SevInfo},
		{in: "debug", want: SevDebug},
		// Aliases.
		{in: "emergency", want: SevEmerg},
		{in: "panic", want: SevEmerg},
		{in: "critical", want: SevCrit},
		{in: "error", want: SevErr},
		{in: "warn", want: SevWarning},
		{in: "informational", want: SevInfo},
		// Case and space.
		{in: "WARNING", want: SevWarning},
		{in: "Err", want: SevErr},
		{in: " info\t", want: SevInfo},
		// Numbers.
		{in: "0", want: SevEmerg},
		{in: "3", want: SevErr},
		{in: "7", want: SevDebug},
		{in: " 4 ", want: SevWarning},
		// Out of range and unknown.
		{in: "8", wantErr: true},
		{in: "-1", wantErr: true},
		{in: "255", wantErr: true},
		{in: "256", wantErr: true},
		{in: "99999999999999999999", wantErr: true},
		{in: "", wantErr: true},
		{in: "loud", wantErr: true},
		{in: "warnings", wantErr: true},
		{in: "3.0", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.in), func(t *testing.T) {
			got, err := ParseSeverity(tt.in)
			if tt.wantErr {
				if !errors.Is(err, ErrBadSeverity) {
					t.Errorf("ParseSeverity(%q) = %v, %v; want ErrBadSeverity", tt.in, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("ParseSeverity(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestSeverityText(t *testing.T) {
	names := []string{"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"}
	for i, name := range names {
		s := Severity(i)
		t.Run(name, func(t *testing.T) {
			if s.String() != name {
				t.Errorf("String() = %q, want %q", s.String(), name)
			}
			b, err := json.Marshal(s)
			if err != nil || string(b) != `"`+name+`"` {
				t.Fatalf("json.Marshal = %s, %v; want %q", b, err, name)
			}
			var back Severity = 99
			if err := json.Unmarshal(b, &back); err != nil || back != s {
				t.Errorf("json.Unmarshal(%s) = %v, %v; want %v", b, back, err, s)
			}
			// A filter carries a *Severity.
			p := &s
			b, _ = json.Marshal(struct{ S *Severity }{p})
			var bp struct{ S *Severity }
			if err := json.Unmarshal(b, &bp); err != nil || bp.S == nil || *bp.S != s {
				t.Errorf("pointer round trip via %s = %v, %v", b, bp.S, err)
			}
		})
	}
	t.Run("out of range", func(t *testing.T) {
		s := Severity(8)
		if s.String() != "8" {
			t.Errorf("String() = %q, want \"8\"", s.String())
		}
		b, _ := json.Marshal(s)
		var back Severity
		if err := json.Unmarshal(b, &back); !errors.Is(err, ErrBadSeverity) {
			t.Errorf("json.Unmarshal(%s) = %v, %v; want ErrBadSeverity", b, back, err)
		}
	})
	t.Run("number in JSON", func(t *testing.T) {
		var s Severity
		if err := json.Unmarshal([]byte(`"4"`), &s); err != nil || s != SevWarning {
			t.Errorf(`json.Unmarshal("4") = %v, %v; want warning`, s, err)
		}
		if err := json.Unmarshal([]byte(`4`), &s); err == nil {
			t.Errorf("json.Unmarshal(4) = %v, want an error: the severity is a string", s)
		}
	})
}

func TestParseFacility(t *testing.T) {
	tests := []struct {
		in      string
		want    Facility
		wantErr bool
	}{
		{in: "kern", want: FacKern},
		{in: "user", want: FacUser},
		{in: "daemon", want: FacDaemon},
		{in: "authpriv", want: 10},
		{in: "local0", want: FacLocal0},
		{in: "local7", want: 23},
		{in: "LOCAL3", want: 19},
		{in: " cron ", want: 9},
		{in: "0", want: FacKern},
		{in: "16", want: FacLocal0},
		{in: "23", want: 23},
		{in: "24", wantErr: true},
		{in: "-1", wantErr: true},
		{in: "256", wantErr: true},
		{in: "", wantErr: true},
		{in: "local8", wantErr: true},
		{in: "kernel", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.in), func(t *testing.T) {
			got, err := ParseFacility(tt.in)
			if tt.wantErr {
				if !errors.Is(err, ErrBadFacility) {
					t.Errorf("ParseFacility(%q) = %v, %v; want ErrBadFacility", tt.in, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("ParseFacility(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestFacilityText(t *testing.T) {
	for i := 0; i < 24; i++ {
		f := Facility(i)
		t.Run(f.String(), func(t *testing.T) {
			back, err := ParseFacility(f.String())
			if err != nil || back != f {
				t.Errorf("ParseFacility(%q) = %v, %v; want %d", f.String(), back, err, i)
			}
			b, err := json.Marshal(f)
			if err != nil {
				t.Fatal(err)
			}
			var jb Facility = 99
			if err := json.Unmarshal(b, &jb); err != nil || jb != f {
				t.Errorf("json.Unmarshal(%s) = %v, %v; want %d", b, jb, err, i)
			}
		})
	}
	t.Run("out of range", func(t *testing.T) {
		f := Facility(24)
		if f.String() != "24" {
			t.Errorf("String() = %q, want \"24\"", f.String())
		}
		b, _ := json.Marshal(f)
		var back Facility
		if err := json.Unmarshal(b, &back); !errors.Is(err, ErrBadFacility) {
			t.Errorf("json.Unmarshal(%s) = %v, %v; want ErrBadFacility", b, back, err)
		}
	})
}

func TestSourceValid(t *testing.T) {
	for _, s := range []Source{SourceSyslog, SourceZVMConsole, SourceZVMEvent, SourceAgent, SourceRegion} {
		if !s.Valid() {
			t.Errorf("%q.Valid() = false", s)
		}
	}
	for _, s := range []Source{"", "Syslog", "zvm", "other"} {
		if s.Valid() {
			t.Errorf("%q.Valid() = true", s)
		}
	}
}

func TestSecret(t *testing.T) {
	const secret = "hunter2-s3cr3t"
	f := Frame{Type: TypeLogon, Req: 1, Client: "ops", Secret: secret, Version: Version}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d", "%10.3s"} {
		for _, arg := range []struct {
			name string
			v    any
		}{{"frame", f}, {"pointer", &f}, {"secret", f.Secret}} {
			t.Run(verb+"/"+arg.name, func(t *testing.T) {
				out := fmt.Sprintf(verb, arg.v)
				if strings.Contains(out, secret) || strings.Contains(out, fmt.Sprintf("%x", secret)) {
					t.Errorf("Sprintf(%q) leaks the secret: %s", verb, out)
				}
				if !strings.Contains(out, "[redacted]") {
					t.Errorf("Sprintf(%q) = %s, want [redacted] in it", verb, out)
				}
			})
		}
	}
	t.Run("GoString is valid Go", func(t *testing.T) {
		if got := fmt.Sprintf("%#v", f.Secret); got != `"[redacted]"` {
			t.Errorf("%%#v = %s, want %q", got, `"[redacted]"`)
		}
	})
	t.Run("error wrapping", func(t *testing.T) {
		err := fmt.Errorf("logon %v failed", f)
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error leaks the secret: %v", err)
		}
	})
	t.Run("JSON carries the secret", func(t *testing.T) {
		b, err := json.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), `"secret":"`+secret+`"`) {
			t.Errorf("json.Marshal = %s, want the real secret in it", b)
		}
		wire, err := AppendFrame(nil, &f)
		if err != nil {
			t.Fatal(err)
		}
		var back Frame
		if err := Decode(wire[:len(wire)-1], &back); err != nil || back.Secret != secret {
			t.Errorf("wire round trip: secret %q, %v; want %q", string(back.Secret), err, secret)
		}
	})
}

func TestEventSize(t *testing.T) {
	var e Event
	base := e.Size()
	e.Text, e.Raw, e.Origin.System = "abc", "defg", "hi"
	if got := e.Size(); got != base+9 {
		t.Errorf("Size() = %d, want %d", got, base+9)
	}
}

// FuzzParseIDBytes holds parseIDBytes, which SplitEventFrame uses on every
// event a raw reader passes on, to ParseID's answers.
func FuzzParseIDBytes(f *testing.F) {
	for _, s := range []string{"1740830400123-7", "0", "", "5", "1-", "-1", "1-2-3", "18446744073709551615-18446744073709551615",
		"18446744073709551616-1", "1-18446744073709551616", "+1-2", "1_000-2", " 1-2", "0-0", "00012-0009"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		want, err := ParseID(string(b))
		got, ok := parseIDBytes(b)
		if ok != (err == nil) || got != want {
			t.Fatalf("%q: parseIDBytes %v %v; ParseID %v %v", b, got, ok, want, err)
		}
	})
}
