package cluster_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/zbridge/zbridge/commands"
	"github.com/zbridge/zbridge/gateway/cluster"
)

// otherKey is a cluster key the tests' regions do not have.
var otherKey = []byte("another cluster key, 32 bytes or more")

// refusedMsg is what a region logs for an entry it refuses.
const refusedMsg = "stream entry refused: it is not a genuine entry of a region of the cluster"

// entryMAC computes an entry's mac as the package doc specifies it, written
// apart from the package's own code: HMAC-SHA256 over the label, domain,
// stream, bound strings and the fields but mac sorted by name, each
// length-prefixed (8 bytes, big endian), the lists counted. It returns "" if
// a field is not a string.
func entryMAC(key []byte, domain, stream string, bind []string, v map[string]any) string {
	h := hmac.New(sha256.New, key)
	n := func(x int) { h.Write(binary.BigEndian.AppendUint64(nil, uint64(x))) }
	lp := func(s string) { n(len(s)); h.Write([]byte(s)) }
	lp("zbridge cluster entry v1")
	lp(domain)
	lp(stream)
	n(len(bind))
	for _, b := range bind {
		lp(b)
	}
	var names []string
	for name := range v {
		if name != "mac" {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	n(len(names))
	for _, name := range names {
		s, ok := v[name].(string)
		if !ok {
			return ""
		}
		lp(name)
		lp(s)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// entry is the fields of a stream entry to XADD.
type entry map[string]any

// signed returns e with a mac by key over stream (and bind).
func (e entry) signed(key []byte, domain, stream string, bind ...string) entry {
	e = e.without("mac")
	e["mac"] = entryMAC(key, domain, stream, bind, e)
	return e
}

// with returns a copy of e with the fields set (name, value, ...).
func (e entry) with(kv ...string) entry {
	c := entry{}
	for k, v := range e {
		c[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		c[kv[i]] = kv[i+1]
	}
	return c
}

func (e entry) without(name string) entry {
	c := e.with()
	delete(c, name)
	return c
}

func xadd(t *testing.T, rdb redis.UniversalClient, stream string, e entry) {
	t.Helper()
	if err := rdb.XAdd(t.Context(), &redis.XAddArgs{Stream: stream, Values: map[string]any(e)}).Err(); err != nil {
		t.Fatal(err)
	}
}

func msNow(d time.Duration) string { return strconv.FormatInt(time.Now().Add(d).UnixMilli(), 10) }

// instanceOf reads a region's instance from its announcement.
func instanceOf(t *testing.T, rdb redis.UniversalClient, name string) string {
	t.Helper()
	s, err := rdb.Get(t.Context(), "{zbridge}:region:"+name).Result()
	if err != nil {
		t.Fatal(err)
	}
	var r cluster.Region
	if err := json.Unmarshal([]byte(s), &r); err != nil || r.Instance == "" {
		t.Fatalf("region %s: %q, %v", name, s, err)
	}
	return r.Instance
}

// forgedRun is a run entry for A as B would write it, unsigned, with the
// command key B would set: a region that did not check signatures would
// run it.
func forgedRun(t *testing.T, rdb redis.UniversalClient, instA, fid, cmd string) entry {
	t.Helper()
	if err := rdb.Set(t.Context(), "{zbridge}:command:"+fid, `{"fid":"`+fid+`"}`, time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	return entry{"type": "run", "fid": fid, "id": "forged-" + fid, "target": "linux:web1", "command": cmd,
		"timeout": "60000", "deadline": "0", "requester": "mallory", "via": "B", "instance": "b0b",
		"to": instA, "sent": msNow(0)}
}

// waitRejected waits until r has refused n entries in all.
func (r *region) waitRejected(t *testing.T, n uint64) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%s refused %d entries", r.name, n), func() error {
		if got := r.c.RejectedEntries(); got < n {
			return fmt.Errorf("RejectedEntries() = %d", got)
		}
		return nil
	})
	if got := r.c.RejectedEntries(); got != n {
		t.Fatalf("RejectedEntries() = %d, want %d", got, n)
	}
	if got := r.c.Stats().Rejected; got != n {
		t.Errorf("Stats().Rejected = %d, want %d", got, n)
	}
	// One refusal a minute is logged, the others only counted.
	if got := r.hook.count(refusedMsg, "<nil>"); got < 1 || got > int(n) {
		t.Errorf("%s logged %d refusals, want 1 to %d", r.name, got, n)
	}
}

// ran returns the requests r's executor ran whose command is cmd.
func (r *region) ran(cmd string) []commands.Request {
	var out []commands.Request
	for _, req := range r.exec.requests() {
		if req.Command == cmd {
			out = append(out, req)
		}
	}
	return out
}

// lastEntry returns the newest entry of a stream.
func lastEntry(t *testing.T, rdb redis.UniversalClient, stream string) entry {
	t.Helper()
	msgs, err := rdb.XRevRangeN(t.Context(), stream, "+", "-", 1).Result()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("%s: %v, %v", stream, msgs, err)
	}
	return entry(msgs[0].Values)
}

// TestForgedInbox checks that a region runs only the commands another
// region signed, for it, lately, once, and that it runs them with the
// signed requester.
func TestForgedInbox(t *testing.T) {
	rdb, _ := startRedis(t)
	a, b := twoRegions(t, rdb)
	ctx := t.Context()
	const inbox = "{zbridge}:inbox:A"
	instA := instanceOf(t, rdb, "A")
	web1 := mustTarget(t, "linux:web1")

	// barrier forwards a command from B to A and waits for its end: A has
	// handled every entry added to its inbox before.
	n := 0
	barrier := func(t *testing.T) {
		t.Helper()
		n++
		cmd := fmt.Sprintf("echo rc=0 barrier %d", n)
		if got := b.run(ctx, t, &commands.Request{Target: web1, Command: cmd}); got.err != nil {
			t.Fatalf("%s: %v", cmd, got.err)
		}
	}

	got := b.run(ctx, t, &commands.Request{ID: "genuine", Target: web1, Command: "echo rc=0 genuine", Requester: "ops"})
	if got.err != nil {
		t.Fatal(got.err)
	}
	genuine := lastEntry(t, rdb, inbox)
	if genuine["id"] != "genuine" {
		t.Fatalf("the newest entry of A's inbox is %v", genuine)
	}
	// copied returns the genuine entry, its command key set again as if B
	// still waited for it.
	copied := func() entry {
		fid := genuine["fid"].(string)
		if err := rdb.Set(ctx, "{zbridge}:command:"+fid, `{"fid":"`+fid+`"}`, time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		return genuine.with()
	}

	tests := []struct {
		name string
		e    func(fid, cmd string) entry
	}{
		{"unsigned", func(fid, cmd string) entry { return forgedRun(t, rdb, instA, fid, cmd) }},
		{"wrong mac", func(fid, cmd string) entry {
			return forgedRun(t, rdb, instA, fid, cmd).with("mac", strings.Repeat("00", 32))
		}},
		{"another key", func(fid, cmd string) entry {
			return forgedRun(t, rdb, instA, fid, cmd).signed(otherKey, "inbox", inbox)
		}},
		{"genuine with the command changed", func(fid, cmd string) entry {
			return copied().with("command", cmd)
		}},
		{"genuine with the requester changed", func(fid, cmd string) entry {
			return copied().with("command", cmd, "requester", "root")
		}},
		{"signed but stale", func(fid, cmd string) entry {
			return forgedRun(t, rdb, instA, fid, cmd).with("sent", msNow(-3*time.Minute)).signed(testKey, "inbox", inbox)
		}},
		{"signed but from the future", func(fid, cmd string) entry {
			return forgedRun(t, rdb, instA, fid, cmd).with("sent", msNow(3*time.Minute)).signed(testKey, "inbox", inbox)
		}},
		{"signed but from itself", func(fid, cmd string) entry {
			return forgedRun(t, rdb, instA, fid, cmd).with("via", "A").signed(testKey, "inbox", inbox)
		}},
		{"signed for another process", func(fid, cmd string) entry {
			return forgedRun(t, rdb, instA, fid, cmd).with("to", "0ld1n57a").signed(testKey, "inbox", inbox)
		}},
		{"signed for another inbox", func(fid, cmd string) entry {
			return forgedRun(t, rdb, instA, fid, cmd).signed(testKey, "inbox", "{zbridge}:inbox:B")
		}},
	}
	var rejected uint64
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := "echo rc=66 forged " + strconv.Itoa(i)
			xadd(t, rdb, inbox, tt.e(fmt.Sprintf("B.b0b.%d", 100+i), cmd))
			barrier(t)
			rejected++
			a.waitRejected(t, rejected)
			if reqs := a.ran(cmd); len(reqs) != 0 {
				t.Errorf("A ran the forged command: %+v", reqs)
			}
		})
	}
	t.Run("genuine replayed", func(t *testing.T) {
		xadd(t, rdb, inbox, copied())
		barrier(t)
		rejected++
		a.waitRejected(t, rejected)
		if reqs := a.ran("echo rc=0 genuine"); len(reqs) != 1 {
			t.Errorf("A ran the genuine command %d times", len(reqs))
		}
	})
	// The control: the same entry, signed with the key, is run, with the
	// signed requester; and A signs its output as the package doc says.
	t.Run("signed", func(t *testing.T) {
		const fid, cmd = "B.b0b.1", "echo rc=5 signed"
		xadd(t, rdb, inbox, forgedRun(t, rdb, instA, fid, cmd).with("id", "control", "requester", "alice").signed(testKey, "inbox", inbox))
		const stream = "{zbridge}:output:" + fid
		var msgs []redis.XMessage
		waitFor(t, "A's answer", func() error {
			var err error
			msgs, err = rdb.XRange(ctx, stream, "-", "+").Result()
			if err != nil || len(msgs) == 0 || msgs[len(msgs)-1].Values["type"] != "result" {
				return fmt.Errorf("%s: %d entries, %v", stream, len(msgs), err)
			}
			return nil
		})
		if len(msgs) != len(echoOutput("A", cmd))+1 || msgs[len(msgs)-1].Values["rc"] != "5" {
			t.Errorf("A answered %v", msgs)
		}
		for _, m := range msgs {
			if want := entryMAC(testKey, "output", stream, []string{"A", "control"}, m.Values); m.Values["mac"] != want {
				t.Errorf("entry %v: mac %v, want %s", m.Values["n"], m.Values["mac"], want)
			}
		}
		reqs := a.ran(cmd)
		if len(reqs) != 1 || reqs[0].Requester != "alice" || reqs[0].Via != "B" || reqs[0].ID != "control" {
			t.Errorf("A ran %+v, want one request from alice via B", reqs)
		}
		if got := a.c.RejectedEntries(); got != rejected {
			t.Errorf("RejectedEntries() = %d, want %d", got, rejected)
		}
	})
}

// TestForgedCancel checks that only the forwarder can cancel a command.
func TestForgedCancel(t *testing.T) {
	rdb, _ := startRedis(t)
	a, b := twoRegions(t, rdb)
	ctx := t.Context()
	const inbox = "{zbridge}:inbox:A"
	web1 := mustTarget(t, "linux:web1")

	bctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch := b.runAsync(bctx, &commands.Request{Target: web1, Command: "block"})
	id := waitID(t, a.exec.started, "A's command started")
	run := lastEntry(t, rdb, inbox)
	if run["type"] != "run" || run["id"] != id {
		t.Fatalf("the newest entry of A's inbox is %v", run)
	}
	fid := run["fid"].(string)
	cancelEntry := entry{"type": "cancel", "fid": fid, "via": "B", "sent": msNow(0)}

	tests := []struct {
		name string
		e    entry
	}{
		{"unsigned", cancelEntry},
		{"another key", cancelEntry.signed(otherKey, "inbox", inbox)},
		{"signed by another region", cancelEntry.with("via", "C").signed(testKey, "inbox", inbox)},
		{"signed but stale", cancelEntry.with("sent", msNow(-3*time.Minute)).signed(testKey, "inbox", inbox)},
		{"signed but from itself", cancelEntry.with("via", "A").signed(testKey, "inbox", inbox)},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			xadd(t, rdb, inbox, tt.e)
			// Another command after it: A has read the cancel when it ends.
			if got := b.run(ctx, t, &commands.Request{Target: web1, Command: "echo rc=0 after"}); got.err != nil {
				t.Fatal(got.err)
			}
			a.waitRejected(t, uint64(i+1))
			select {
			case ended := <-a.exec.ended:
				t.Fatalf("A's command %s was cancelled", ended)
			case got := <-ch:
				t.Fatalf("B's command ended: %+v", got)
			default:
			}
		})
	}
	// The forwarder's own cancel still works.
	cancel()
	if ce := wantError(t, await(t, ch).err, commands.CodeCancelled); ce.Message != "the client went away" {
		t.Errorf("message %q", ce.Message)
	}
	if ended := waitID(t, a.exec.ended, "A's command saw its context end"); ended != id {
		t.Errorf("ended %s, want %s", ended, id)
	}
}

// TestForgedOutput checks that a forwarder passes on only the output and
// result its holder signed for the command.
func TestForgedOutput(t *testing.T) {
	rdb, _ := startRedis(t)
	a, b := twoRegions(t, rdb)
	ctx := t.Context()

	ch := b.runAsync(ctx, &commands.Request{ID: "held", Target: mustTarget(t, "linux:web1"), Command: "hold"})
	waitID(t, a.exec.started, "A's command started")
	run := lastEntry(t, rdb, "{zbridge}:inbox:A")
	if run["id"] != "held" {
		t.Fatalf("the newest entry of A's inbox is %v", run)
	}
	stream := "{zbridge}:output:" + run["fid"].(string)
	out := entry{"n": "2", "type": "out", "stream": "1", "data": "forged output", "eol": "1"}
	res := entry{"n": "2", "type": "result", "rc": "0", "signal": "", "truncated": "0", "duration": "1000"}
	forged := []entry{
		out,
		res.with("mac", strings.Repeat("ab", 32)),
		res.signed(otherKey, "output", stream, "A", "held"),
		res.signed(testKey, "output", stream, "C", "held"),                             // from another holder
		out.signed(testKey, "output", stream, "A", "another command"),                  // for another command
		res.signed(testKey, "output", "{zbridge}:output:B.other.1", "A", "held"),       // copied from another stream
		res.with("type", "error", "code", "failed", "message", "forged", "retry", "0"), // unsigned error
	}
	for _, e := range forged {
		xadd(t, rdb, stream, e)
	}
	b.waitRejected(t, uint64(len(forged)))
	select {
	case got := <-ch:
		t.Fatalf("B's command ended: %+v", got)
	default:
	}
	a.exec.release <- struct{}{}
	got := await(t, ch)
	if got.err != nil || got.res.RC != 7 {
		t.Fatalf("Run: %+v, %v; want RC 7", got.res, got.err)
	}
	want := []commands.Output{{Stream: commands.Stdout, Data: []byte("started held"), EOL: true},
		{Stream: commands.Stdout, Data: []byte("released"), EOL: true}}
	if !outputEqual(got.out, want) {
		t.Errorf("output\n%s\nwant\n%s", fmtOutput(got.out), fmtOutput(want))
	}
	if n := a.c.RejectedEntries(); n != 0 {
		t.Errorf("A refused %d entries", n)
	}
}

// TestACLUser runs regions as the Redis user the package doc recommends,
// and checks what that user may not do.
func TestACLUser(t *testing.T) {
	rdb, _ := startRedis(t)
	ctx := t.Context()
	// The package doc's rules, in the order given there.
	err := rdb.Do(ctx, "ACL", "SETUSER", "zbridge", "reset", "on", ">s3cret-pa55word",
		"~{zbridge}:*", "resetchannels", "+@all", "-@dangerous").Err()
	if err != nil {
		t.Fatal(err)
	}
	user := redis.NewClient(&redis.Options{Addr: rdb.Options().Addr, Username: "zbridge", Password: "s3cret-pa55word",
		ContextTimeoutEnabled: true, DialTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second})
	t.Cleanup(func() { user.Close() })

	_, b := twoRegions(t, user)
	got := b.run(ctx, t, &commands.Request{Target: mustTarget(t, "linux:web1"), Command: "echo rc=0 as zbridge"})
	if got.err != nil || !outputEqual(got.out, echoOutput("A", "echo rc=0 as zbridge")) {
		t.Fatalf("Run as the zbridge user: %v, output\n%s", got.err, fmtOutput(got.out))
	}
	for name, cmd := range map[string]redis.Cmder{
		"another key":   user.Set(ctx, "elsewhere", "x", 0),
		"FLUSHALL":      user.FlushAll(ctx),
		"KEYS":          user.Keys(ctx, "*"),
		"CONFIG SET":    user.ConfigSet(ctx, "requirepass", "x"),
		"PUBLISH":       user.Publish(ctx, "{zbridge}:x", "x"),
		"CLIENT KILL":   user.Do(ctx, "CLIENT", "KILL", "TYPE", "normal"),
		"ACL SETUSER":   user.Do(ctx, "ACL", "SETUSER", "zbridge", "allkeys"),
		"script on any": user.Eval(ctx, "return redis.call('GET', 'elsewhere')", nil),
	} {
		// Scripts are refused with ERR, the rest with NOPERM.
		if err := cmd.Err(); err == nil || !strings.Contains(err.Error(), "NOPERM") && !strings.Contains(err.Error(), "can't access") {
			t.Errorf("%s as the zbridge user: %v, want a refusal", name, err)
		}
	}
}

func TestLoadKey(t *testing.T) {
	dir := t.TempDir()
	b64 := "q0Hn2i5vZ0s5g0V6bW1hY2hpbmVrZXlrZXlrZXlrZXk=" // 44 bytes
	raw := make([]byte, 32)
	for i := range raw {
		raw[i] = byte(i * 7)
	}
	tests := []struct {
		name    string
		content []byte
		mode    fs.FileMode
		want    []byte // nil: an error wrapping ErrKeyFile
	}{
		{"base64 and a newline", []byte(b64 + "\n"), 0o600, []byte(b64)},
		{"CRLF", []byte(b64 + "\r\n"), 0o400, []byte(b64)},
		{"one newline only", []byte(b64 + "\n\n"), 0o600, []byte(b64 + "\n")},
		{"raw bytes", raw, 0o600, raw},
		{"short", raw[:31], 0o600, nil},
		{"short without its newline", append(raw[:31:31], '\n'), 0o600, nil},
		{"empty", nil, 0o600, nil},
		{"group readable", []byte(b64), 0o640, nil},
		{"world readable", []byte(b64), 0o604, nil},
		{"group writable", []byte(b64), 0o620, nil},
		{"too large", make([]byte, 5000), 0o600, nil},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, "key"+strconv.Itoa(i))
			if err := os.WriteFile(path, tt.content, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.mode); err != nil {
				t.Fatal(err)
			}
			key, err := cluster.LoadKey(path)
			if tt.want == nil {
				if !errors.Is(err, cluster.ErrKeyFile) {
					t.Fatalf("LoadKey: %v, want ErrKeyFile", err)
				}
				if len(tt.content) >= 8 && strings.Contains(err.Error(), string(tt.content[:8])) {
					t.Errorf("the error shows the key: %v", err)
				}
				t.Log(err)
				return
			}
			if err != nil || string(key) != string(tt.want) {
				t.Errorf("LoadKey = %q, %v; want %q", key, err, tt.want)
			}
		})
	}
	if _, err := cluster.LoadKey(dir); !errors.Is(err, cluster.ErrKeyFile) {
		t.Errorf("LoadKey(a directory): %v, want ErrKeyFile", err)
	}
	if _, err := cluster.LoadKey(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadKey(a missing file): %v, want ErrNotExist", err)
	}
}

// countingWriter counts what a logger writes: one Write per entry.
type countingWriter struct {
	mu       sync.Mutex // guards the following fields
	bytes    int
	longest  int
	refusals []string // the refusal lines
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.bytes += len(p)
	w.longest = max(w.longest, len(p))
	if bytes.Contains(p, []byte(refusedMsg)) {
		w.refusals = append(w.refusals, string(p))
	}
	return len(p), nil
}

// TestRefusalLogBounded checks that junk written to a region's inbox by
// someone without the key cannot flood its log: each field logged is cut
// to 200 bytes, and one refusal a minute is logged (all are counted).
func TestRefusalLogBounded(t *testing.T) {
	rdb, _ := startRedis(t)
	w := &countingWriter{}
	a := newRegion(t, rdb, "A", []cluster.Agent{linux("web1", "10.1.0.1:7022")}, regionOpts{logOut: w})
	b := newRegion(t, rdb, "B", []cluster.Agent{linux("web2", "10.1.0.2:7022")})
	waitHolder(t, b, "linux:web1", "A")
	const inbox = "{zbridge}:inbox:A"
	const fieldSize = 1 << 20
	const entries = 4
	// A multi-byte rune across the 200th byte: the cut must not split it.
	big := func(c string) string { return strings.Repeat("x", 199) + "é" + strings.Repeat(c, fieldSize-201) }
	for i := range entries {
		e := entry{"type": big("t"), "sent": msNow(0)}
		for _, name := range []string{"fid", "via", "target", "command", "requester", "n", "id", "to"} {
			e[name] = big(strconv.Itoa(i))
		}
		xadd(t, rdb, inbox, e)
	}
	waitFor(t, "A refuses the junk", func() error {
		if n := a.c.RejectedEntries(); n != entries {
			return fmt.Errorf("RejectedEntries() = %d", n)
		}
		return nil
	})
	// A still runs genuine commands.
	if got := b.run(t.Context(), t, &commands.Request{Target: mustTarget(t, "linux:web1"), Command: "echo rc=0 after"}); got.err != nil {
		t.Fatal(got.err)
	}

	w.mu.Lock()
	defer w.mu.Unlock()
	t.Logf("A's log: %d bytes, the longest entry %d bytes, %d refusals logged", w.bytes, w.longest, len(w.refusals))
	if len(w.refusals) != 1 {
		t.Fatalf("A logged %d refusals of %d entries within a minute, want 1", len(w.refusals), entries)
	}
	line := w.refusals[0]
	if len(line) > 4096 {
		t.Errorf("the refusal logged is %d bytes long", len(line))
	}
	if want := strings.Repeat("x", 199) + "… (" + strconv.Itoa(fieldSize) + " bytes)"; strings.Count(line, want) < 7 {
		t.Errorf("the refusal logged does not show its 7 fields cut before the 200th byte and their length:\n%s", line)
	}
	if w.bytes > 64<<10 {
		t.Errorf("A logged %d bytes", w.bytes)
	}
}
