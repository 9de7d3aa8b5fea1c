package redisstore

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/zbridge/zbridge/gateway/store"
	"github.com/zbridge/zbridge/protocol"
)

// describeGroup implements storetest.Options.Describe: what Redis holds
// of a group (its consumers, pending lists and read records), the entries
// ids, and the Store's own state; and, if rec is not nil, the commands
// of the Store's prefix that rec saw.
func describeGroup(t *testing.T, st store.Store, group string, ids []protocol.ID, rec *cmdRecorder) string {
	s, ok := st.(*Store)
	if !ok {
		return fmt.Sprintf("not a *redisstore.Store but %T", st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var b strings.Builder
	say := func(what string, v any, err error) {
		if err != nil {
			fmt.Fprintf(&b, "%s: error %v\n", what, err)
			return
		}
		fmt.Fprintf(&b, "%s: %+v\n", what, v)
	}
	if c, ok := s.rdb.(*redis.ClusterClient); ok {
		m, err := c.MasterForKey(ctx, s.kEvents)
		if err != nil {
			say("master of the store's slot", nil, err)
		} else {
			say("master of the store's slot", m.Options().Addr, nil)
			nodes, err := m.ClusterNodes(ctx).Result()
			say("CLUSTER NODES there", "\n"+nodes, err)
			info, err := m.Info(ctx, "replication").Result()
			say("INFO replication there", "\n"+info, err)
		}
	}
	xs, err := s.rdb.XInfoStream(ctx, s.kEvents).Result()
	if err == nil {
		say("XINFO STREAM", fmt.Sprintf("length %d last-generated %s added %d max-deleted %s groups %d",
			xs.Length, xs.LastGeneratedID, xs.EntriesAdded, xs.MaxDeletedEntryID, xs.Groups), nil)
	} else {
		say("XINFO STREAM", nil, err)
	}
	gs, err := s.rdb.XInfoGroups(ctx, s.kEvents).Result()
	say("XINFO GROUPS", gs, err)
	ps, err := s.rdb.XPending(ctx, s.kEvents, group).Result()
	say("XPENDING summary", ps, err)
	pe, err := s.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: s.kEvents, Group: group,
		Start: "-", End: "+", Count: 100}).Result()
	say("XPENDING - + 100", pe, err)
	cs, err := s.rdb.XInfoConsumers(ctx, s.kEvents, group).Result()
	say("XINFO CONSUMERS", cs, err)
	rs, err := s.rdb.HGetAll(ctx, s.groupReadsKey(group)).Result()
	say("HGETALL "+s.groupReadsKey(group), rs, err)
	for _, id := range ids {
		e, err := s.rdb.XRange(ctx, s.kEvents, id.String(), id.String()).Result()
		say("XRANGE "+id.String(), e, err)
	}
	s.mu.Lock()
	say("store", fmt.Sprintf("last %v top %v degraded %v (%s) buffered %d gen %d cached %d",
		s.last, s.top, s.degraded, s.reason, s.bufN, s.gen, s.cache.len()), nil)
	s.mu.Unlock()
	s.groupMu.Lock()
	say("store unread tokens", s.unread, nil)
	s.groupMu.Unlock()
	say("store counters", s.Counters(), nil)
	if rec != nil {
		fmt.Fprintf(&b, "commands of prefix %s, around the first with one of the IDs:\n%s", s.prefix, rec.around(s.prefix, ids))
	}
	return b.String()
}

// cmdRecorder records the commands a client sends, by the hash tag of
// their keys, at the level of the client (one line a command the Store
// gave it) and, for a Cluster client, at each node (one line a node
// tried), with how long each took and its error or reply, for a test's
// log when it fails.
type cmdRecorder struct {
	start time.Time

	mu     sync.Mutex // guards byTag
	byTag  map[string][]string
	perTag int // lines kept a tag: the newest
}

// recordCommands adds a cmdRecorder to c.
func recordCommands(c redis.UniversalClient) *cmdRecorder {
	r := &cmdRecorder{start: time.Now(), byTag: make(map[string][]string), perTag: 20000}
	c.AddHook(recorderHook{r, "client"})
	if cc, ok := c.(*redis.ClusterClient); ok {
		cc.OnNewNode(func(n *redis.Client) { n.AddHook(recorderHook{r, n.Options().Addr}) })
	}
	return r
}

func (r *cmdRecorder) add(tag, line string) {
	at := time.Since(r.start)
	r.mu.Lock()
	defer r.mu.Unlock()
	l := append(r.byTag[tag], fmt.Sprintf("%10.3fms %s", float64(at.Microseconds())/1000, line))
	if len(l) > r.perTag {
		l = l[len(l)-r.perTag:]
	}
	r.byTag[tag] = l
}

// around returns the lines of a prefix from a while before the first
// that names one of ids to a while after it; the last ones if none does.
func (r *cmdRecorder) around(prefix string, ids []protocol.ID) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	lines := r.byTag[prefix]
	first := len(lines) - 1
find:
	for i, l := range lines {
		for _, id := range ids {
			if strings.Contains(l, id.String()) {
				first = i
				break find
			}
		}
	}
	from := max(0, first-150)
	to := min(len(lines), first+300)
	return fmt.Sprintf("(lines %d to %d of %d)\n", from, to, len(lines)) + strings.Join(lines[from:to], "\n") + "\n"
}

type recorderHook struct {
	r     *cmdRecorder
	where string
}

func (h recorderHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h recorderHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		tag, ok := cmdTag(cmd)
		if !ok {
			return next(ctx, cmd)
		}
		start := time.Now()
		err := next(ctx, cmd)
		h.r.add(tag, fmt.Sprintf("%-15s %s (%v) -> %s", h.where, cmdText(cmd), time.Since(start).Round(time.Microsecond), cmdResult(cmd, err)))
		return err
	}
}

func (h recorderHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmds)
		for _, cmd := range cmds {
			if tag, ok := cmdTag(cmd); ok {
				h.r.add(tag, fmt.Sprintf("%-15s pipe[%d] %s (%v) -> %s", h.where, len(cmds), cmdText(cmd),
					time.Since(start).Round(time.Microsecond), cmdResult(cmd, cmd.Err())))
			}
		}
		return err
	}
}

// cmdTag returns the hash tag of the first key-like argument of cmd, the
// Store's prefix, if it has one.
func cmdTag(cmd redis.Cmder) (string, bool) {
	for _, a := range cmd.Args()[1:] {
		s, ok := a.(string)
		if !ok || !strings.HasPrefix(s, "{") {
			continue
		}
		if i := strings.IndexByte(s, '}'); i > 0 {
			return s[1:i], true
		}
	}
	return "", false
}

// cmdText is cmd's arguments, long ones (scripts, events) cut.
func cmdText(cmd redis.Cmder) string {
	var b strings.Builder
	for i, a := range cmd.Args() {
		if i > 0 {
			b.WriteByte(' ')
		}
		var s string
		switch a := a.(type) {
		case []byte: // an event's JSON
			s = fmt.Sprintf("<%d bytes>", len(a))
		default:
			s = strings.ReplaceAll(fmt.Sprint(a), "\n", " ")
			if len(s) > 48 {
				s = s[:20] + "…"
			}
		}
		b.WriteString(s)
	}
	return b.String()
}

// cmdResult is cmd's error, or its reply with the stream entries' values
// left out.
func cmdResult(cmd redis.Cmder, err error) string {
	if err != nil {
		return "error " + err.Error()
	}
	if c, ok := cmd.(*redis.Cmd); ok {
		return shortReply(c.Val())
	}
	// The reply, after the command's arguments.
	s := fmt.Sprint(cmd)
	if i := strings.Index(s, ": "); i >= 0 {
		s = s[i+2:]
	}
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return s
}

// shortReply renders a script's reply, entries as their IDs.
func shortReply(v any) string {
	switch v := v.(type) {
	case []any:
		if len(v) == 2 {
			if id, ok := v[0].(string); ok {
				if _, ok := v[1].([]any); ok {
					return id // an entry
				}
			}
		}
		parts := make([]string, len(v))
		for i, x := range v {
			parts[i] = shortReply(x)
		}
		return "[" + strings.Join(parts, " ") + "]"
	default:
		s := fmt.Sprint(v)
		if len(s) > 60 {
			s = s[:60] + "…"
		}
		return s
	}
}
