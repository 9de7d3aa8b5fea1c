package cluster

import (
	"context"
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/commands"
)

var unitKey = []byte("unit test key of at least 32 bytes")

func TestSignVerify(t *testing.T) {
	s := signer{unitKey}
	const stream = "{zbridge}:output:B.1234.7"
	bind := []string{"A", "B-7"}
	e := outEntry{N: 3, Type: typeResult, Res: commands.Result{RC: 2, Signal: "TERM", Duration: time.Second}}
	good := asStored(s.sign(domainOut, stream, bind, e.values()))
	if err := s.verify(domainOut, stream, bind, good); err != nil {
		t.Fatalf("verify: %v", err)
	}
	if got, err := decodeOut(good); err != nil || !outEqual(got, e) {
		t.Errorf("a signed entry decodes to %+v, %v", got, err)
	}
	edit := func(f func(map[string]any)) map[string]any {
		v := maps.Clone(good)
		f(v)
		return v
	}
	tests := []struct {
		name           string
		key            []byte
		domain, stream string
		bind           []string
		v              map[string]any
	}{
		{"a field changed", unitKey, domainOut, stream, bind, edit(func(v map[string]any) { v["rc"] = "0" })},
		{"a field added", unitKey, domainOut, stream, bind, edit(func(v map[string]any) { v["extra"] = "" })},
		{"a field removed", unitKey, domainOut, stream, bind, edit(func(v map[string]any) { delete(v, "signal") })},
		{"a field renamed", unitKey, domainOut, stream, bind, edit(func(v map[string]any) { v["sig"] = v["signal"]; delete(v, "signal") })},
		{"not a string", unitKey, domainOut, stream, bind, edit(func(v map[string]any) { v["rc"] = 2 })},
		{"no mac", unitKey, domainOut, stream, bind, edit(func(v map[string]any) { delete(v, "mac") })},
		{"mac not hex", unitKey, domainOut, stream, bind, edit(func(v map[string]any) { v["mac"] = "zz" })},
		{"mac short", unitKey, domainOut, stream, bind, edit(func(v map[string]any) { v["mac"] = v["mac"].(string)[2:] })},
		{"another key", []byte("another key of at least 32 bytes!"), domainOut, stream, bind, good},
		{"another domain", unitKey, domainInbox, stream, bind, good},
		{"another stream", unitKey, domainOut, "{zbridge}:output:B.1234.8", bind, good},
		{"another holder", unitKey, domainOut, stream, []string{"C", "B-7"}, good},
		{"another command ID", unitKey, domainOut, stream, []string{"A", "B-8"}, good},
		{"bind shifted", unitKey, domainOut, stream, []string{"AB", "-7"}, good},
		{"bind longer", unitKey, domainOut, stream, []string{"A", "B-7", ""}, good},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := signer{tt.key}.verify(tt.domain, tt.stream, tt.bind, tt.v)
			if !errors.Is(err, ErrRejected) {
				t.Errorf("verify: %v, want ErrRejected", err)
			}
		})
	}
}

// TestSignUnambiguous checks that moving bytes between adjacent names,
// values and bound strings changes the MAC.
func TestSignUnambiguous(t *testing.T) {
	s := signer{unitKey}
	sums := map[string]string{}
	for name, in := range map[string]struct {
		bind   []string
		fields []field
	}{
		"a=bc":         {nil, []field{{"a", "bc"}}},
		"ab=c":         {nil, []field{{"ab", "c"}}},
		"a=b c=":       {nil, []field{{"a", "b"}, {"c", ""}}},
		"a=bc=":        {nil, []field{{"a", "bc="}}},
		"bind x a=bc":  {[]string{"x"}, []field{{"a", "bc"}}},
		"bind x, a=bc": {[]string{"x", ""}, []field{{"a", "bc"}}},
		"bind xa=bc":   {[]string{"xa"}, []field{{"", "bc"}}},
	} {
		sum := string(s.sum(domainInbox, "s", in.bind, in.fields))
		if other, dup := sums[sum]; dup {
			t.Errorf("%s and %s have the same MAC", name, other)
		}
		sums[sum] = name
	}
	// The order of the fields does not matter: they are sorted.
	a := s.sum(domainInbox, "s", nil, []field{{"a", "1"}, {"b", "2"}})
	b := s.sum(domainInbox, "s", nil, []field{{"b", "2"}, {"a", "1"}})
	if string(a) != string(b) {
		t.Error("the MAC depends on the order of the fields")
	}
}

// FuzzSignVerify checks that any entry verifies after signing, with its
// fields read back as Redis returns them, and not with one value changed.
func FuzzSignVerify(f *testing.F) {
	f.Add("type", "run", "command", "ls -l\x00\xff", "A")
	f.Add("", "", "mac2", "", "")
	f.Fuzz(func(t *testing.T, n1, v1, n2, v2, bind string) {
		if n1 == n2 || n1 == macField || n2 == macField {
			return
		}
		s := signer{unitKey}
		v := asStored(s.sign(domainInbox, "st", []string{bind}, []string{n1, v1, n2, v2}))
		if err := s.verify(domainInbox, "st", []string{bind}, v); err != nil {
			t.Fatalf("verify: %v", err)
		}
		v[n1] = v1 + "x"
		if err := s.verify(domainInbox, "st", []string{bind}, v); !errors.Is(err, ErrRejected) {
			t.Fatalf("changed entry: %v", err)
		}
	})
}

// TestAdmit checks the replay rules for inbox entries that verify.
func TestAdmit(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer rdb.Close()
	c, err := New(Config{Client: rdb, Region: "A", Key: unitKey, Logger: logrus.New(),
		Run: func(ctx context.Context, req *commands.Request, out func(commands.Output)) (commands.Result, error) {
			return commands.Result{}, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	now := time.Now()
	run := func(fid string, edit func(*runMsg)) inboxEntry {
		m := runMsg{FID: fid, From: "B", FromInstance: "b", ToInstance: c.instance, Sent: now}
		if edit != nil {
			edit(&m)
		}
		return inboxEntry{Type: typeRun, FID: fid, Run: m}
	}
	cancel := func(from string, sent time.Time) inboxEntry {
		return inboxEntry{Type: typeCancel, FID: "B.b.1", Cancel: cancelMsg{FID: "B.b.1", From: from, Sent: sent}}
	}
	tests := []struct {
		name string
		e    inboxEntry
		at   time.Time
		want string // in the error; "" for none
	}{
		{"fresh", run("B.b.1", nil), now, ""},
		{"again", run("B.b.1", nil), now.Add(time.Second), "replay"},
		{"cancel", cancel("B", now), now, ""},
		{"stale", run("B.b.2", func(m *runMsg) { m.Sent = now.Add(-MaxEntryAge - time.Second) }), now, "more than 2m0s"},
		{"from the future", run("B.b.3", func(m *runMsg) { m.Sent = now.Add(MaxEntryAge + time.Second) }), now, "more than 2m0s"},
		{"stale cancel", cancel("B", now.Add(-time.Hour)), now, "more than 2m0s"},
		{"from itself", run("A.a.1", func(m *runMsg) { m.From = "A" }), now, "this region"},
		{"cancel from itself", cancel("A", now), now, "this region"},
		{"for another process", run("B.b.4", func(m *runMsg) { m.ToInstance = "old" }), now, "another process"},
		{"early, within the window", run("B.b.5", func(m *runMsg) { m.Sent = now.Add(time.Minute) }), now, ""},
		// Past the window of B.b.1: the accepted runs are pruned.
		{"later", run("B.b.6", func(m *runMsg) { m.Sent = now.Add(3 * time.Minute) }), now.Add(3 * time.Minute), ""},
		{"the first, stale now", run("B.b.1", nil), now.Add(3 * time.Minute), "more than 2m0s"},
	}
	for _, tt := range tests {
		err := c.admit(tt.e, tt.at)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.want != "" && (!errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: %v, want ErrRejected saying %q", tt.name, err, tt.want)
		}
	}
	if _, ok := c.accepted["B.b.1"]; ok || len(c.accepted) != 2 {
		t.Errorf("accepted runs after the window: %v, want B.b.5 and B.b.6", c.accepted)
	}
}
