package redisstore

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/gateway/store"
	"github.com/zbridge/zbridge/gateway/store/storetest"
	"github.com/zbridge/zbridge/internal/peer"
	"github.com/zbridge/zbridge/protocol"
)

// testLogger logs to the test's log.
func testLogger(t testing.TB) logrus.FieldLogger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	l.AddHook(&logHook{t: t})
	l.SetLevel(logrus.DebugLevel)
	return l
}

// logHook writes log entries to the test log while the test runs.
type logHook struct {
	mu   sync.Mutex // guards done
	t    testing.TB
	done bool
}

func (h *logHook) Levels() []logrus.Level { return logrus.AllLevels }

func (h *logHook) Fire(e *logrus.Entry) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.done {
		line, _ := e.String()
		h.t.Log(strings.TrimSpace(line))
	}
	return nil
}

// server is a redis-server for one test, and clients of it.
type server struct {
	addr string
	p    *peer.Process
	n    atomic.Int64 // prefixes given out
}

func startServer(t testing.TB, o peer.RedisOptions) *server {
	t.Helper()
	addr, p := peer.StartRedisOpts(t, o)
	return &server{addr: addr, p: p}
}

// client returns a client of the server, closed when the test ends.
func (srv *server) client(t testing.TB) redis.UniversalClient {
	t.Helper()
	o, err := ParseURL("redis://" + srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewUniversalClient(o)
	t.Cleanup(func() { c.Close() })
	return c
}

// prefix returns a key prefix no other store of this server has used.
func (srv *server) prefix() string { return fmt.Sprintf("t%d", srv.n.Add(1)) }

// newStore returns a Store closed when the test ends.
func newStore(t testing.TB, cfg Config) *Store {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	srv := startServer(t, peer.RedisOptions{})
	c := srv.client(t)
	storetest.Run(t, storetest.Options{
		ApproxTrim: true,
		New: func(t *testing.T, r storetest.Retention) store.Store {
			s, err := New(Config{Client: c, Prefix: srv.prefix(), MaxEvents: r.MaxEvents, MaxBytes: r.MaxBytes,
				Logger: testLogger(t), TailBlock: 100 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
	})
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

var _ = protocol.ID{}
