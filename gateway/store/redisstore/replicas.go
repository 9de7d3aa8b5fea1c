package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// This file makes an append count as written only once replicas have it
// (Config.MinReplicas): Redis replicates asynchronously, and a master that
// fails before its replicas got a write loses it in the failover.

// DefaultReplicaTimeout is how long an append waits for Config.MinReplicas
// replicas to acknowledge it (Redis WAIT) when Config.ReplicaTimeout is 0.
const DefaultReplicaTimeout = 2 * time.Second

// DefaultMinReplicas returns the number of replicas an append waits for
// when Config.MinReplicas is 0: 1 for a Sentinel (failover) client, whose
// master has replicas to fail over to, and 0 for any other client.
func DefaultMinReplicas(c redis.UniversalClient) int {
	if isFailover(c) {
		return 1
	}
	return 0
}

// isFailover reports whether c is a Sentinel-backed failover client
// (redis.NewFailoverClient, or redis.NewUniversalClient with a MasterName).
// go-redis gives no other sign of it than the address it puts in the
// client's options in place of a server's.
func isFailover(c redis.UniversalClient) bool {
	cl, ok := c.(*redis.Client)
	return ok && cl.Options().Addr == "FailoverClient"
}

// errNoMaster wraps the error of finding the master for the Store's keys
// in a Cluster: the cluster's layout is not known or has no such master.
var errNoMaster = errors.New("redisstore: no master known for the store's slot")

// masterConn returns a connection to the master that holds the Store's
// keys: a write and the WAIT after it must go over one connection, as
// WAIT waits for the writes made on its own connection. The caller closes
// it, which gives the connection back to the client's pool.
func (s *Store) masterConn(ctx context.Context) (*redis.Conn, error) {
	switch c := s.rdb.(type) {
	case *redis.Client:
		return c.Conn(), nil
	case *redis.ClusterClient:
		m, err := c.MasterForKey(ctx, s.kEvents)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errNoMaster, err)
		}
		return m.Conn(), nil
	}
	return nil, fmt.Errorf("redisstore: MinReplicas needs a single-server, Sentinel or Cluster client, not %T", s.rdb)
}

// isCluster reports whether c is a Redis Cluster client.
func isCluster(c redis.UniversalClient) bool {
	_, ok := c.(*redis.ClusterClient)
	return ok
}

// supportsWait reports whether masterConn works with c.
func supportsWait(c redis.UniversalClient) bool {
	switch c.(type) {
	case *redis.Client, *redis.ClusterClient:
		return true
	}
	return false
}

// waitReplicas waits until s.minReplicas replicas have every write made
// on conn (Redis WAIT), for up to s.replicaTimeout. The error wraps
// ErrNotReplicated when fewer acknowledged them in time.
func (s *Store) waitReplicas(ctx context.Context, conn *redis.Conn) error {
	n, err := conn.Wait(ctx, s.minReplicas, s.replicaTimeout).Result()
	return s.checkWait(n, err)
}

// checkWait turns WAIT's answer into waitReplicas's error.
func (s *Store) checkWait(n int64, err error) error {
	if err != nil {
		return err
	}
	if n < int64(s.minReplicas) {
		return fmt.Errorf("%w: %d of %d replicas acknowledged within %v", ErrNotReplicated, n, s.minReplicas, s.replicaTimeout)
	}
	return nil
}

// writeBatch writes b, a batch never sent before (see runAppend), and with
// MinReplicas waits until that many replicas have it. An error that leaves
// it unknown whether Redis or the replicas have the batch is one that
// unavailable reports: the caller buffers the batch, and the flusher writes
// it with appendScript, which finds it if Redis has it.
func (s *Store) writeBatch(ctx context.Context, b *batch) (result, error) {
	if s.minReplicas == 0 {
		return s.runAppend(ctx, s.rdb, b)
	}
	conn, err := s.masterConn(ctx)
	if err != nil {
		return result{}, err
	}
	defer conn.Close()
	r, err := s.runAppend(ctx, conn, b)
	if err == nil {
		err = s.waitReplicas(ctx, conn)
	}
	if err != nil {
		s.clusterMoved(err)
	}
	return r, err
}

// clusterMoved reloads a Cluster client's layout after err said that the
// Store's slot has moved: masterConn asks the client's layout, which only
// the client's own commands update by themselves.
func (s *Store) clusterMoved(err error) {
	c, ok := s.rdb.(*redis.ClusterClient)
	if ok && isMoved(err) {
		c.ReloadState(s.ctx)
	}
}

// isMoved reports whether err is a Cluster redirection (MOVED or ASK).
func isMoved(err error) bool {
	var rerr redis.Error
	if !errors.As(err, &rerr) {
		return false
	}
	msg := err.Error()
	return strings.HasPrefix(msg, "MOVED ") || strings.HasPrefix(msg, "ASK ")
}
