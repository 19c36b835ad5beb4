package redispool

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/qrng-go/qrng/internal/redistest"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Issue 17, item 1: a chunk popped (and served) before a crash or a
// failover is never served by the server that comes after, although that
// server holds it again: chunks are sealed with their primary's
// generation (see seal.go).

// drawChunks fetches n chunks with c, one call each, failing the test on
// an error, and returns them.
func drawChunks(t *testing.T, c *Consumer, n int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	var out []string
	for range n {
		p := make([]byte, testChunk)
		k, err := c.Fetch(ctx, p)
		require.NoError(t, err)
		require.Equal(t, testChunk, k)
		out = append(out, string(p))
	}
	return out
}

// fillAndStop runs a filler on rdb until the pool holds its target, then
// stops it.
func fillAndStop(t *testing.T, cfg FillerConfig) {
	t.Helper()
	f := newTestFiller(t, cfg)
	stop := runFiller(t, f)
	want := cfg.Target / testChunk
	require.Eventually(t, func() bool { return idle(f) && cfg.Redis.LLen(context.Background(), f.keys.pool).Val() >= int64(want) },
		patience, 5*time.Millisecond)
	require.NoError(t, stop())
}

// RDB persistence, a snapshot, chunks popped and served after it, then
// SIGKILL and a restart from the snapshot: the restarted server holds the
// served chunks again, and none is served again; the next filler wipes
// them, and the pool fills anew.
func TestRestartFromSnapshotServesNoChunkTwice(t *testing.T) {
	rs := startRedis(t)
	srv := newEmulator(t)
	rdb := rs.client(t, "", "")
	ctx := context.Background()
	cfg := testFillerConfig(srv, rdb, "snap")
	cfg.Workers, cfg.Target, cfg.LowMark = 1, 4*testBatchBytes, 4*testBatchBytes
	fillAndStop(t, cfg)

	require.NoError(t, rdb.Save(ctx).Err()) // the snapshot: 4 batches
	c1 := newTestConsumer(t, rdb, "snap")
	served := map[string]bool{}
	for _, ch := range drawChunks(t, c1, 2*testBatchChunks) {
		served[ch] = true
	}

	rs.stop() // SIGKILL
	rs.start()
	require.Equal(t, int64(4*testBatchChunks), rdb.LLen(ctx, "snap:pool").Val(), "the restarted server holds the snapshot's chunks")

	// Before any filler has run: every chunk popped is of the old
	// generation and erased; the pool is empty.
	c2 := newTestConsumer(t, rdb, "snap")
	_, err := c2.Fetch(ctx, make([]byte, 2*testChunk))
	require.ErrorIs(t, err, ErrPoolEmpty)
	assert.Equal(t, int64(4*testBatchChunks), c2.Stats().Stale, "every chunk popped was of the old generation")
	assert.Zero(t, c2.Stats().Bytes)
	assert.Zero(t, rdb.LLen(ctx, "snap:pool").Val())

	// A filler wipes what is left of an old generation and fills anew.
	old := sealedOld(t, rdb, "snap", 3)
	f := newTestFiller(t, cfg)
	runFiller(t, f)
	require.Eventually(t, func() bool { return f.Stats().Wiped == int64(old) }, patience, 5*time.Millisecond)
	for _, ch := range drawChunks(t, c2, 2*testBatchChunks) {
		assert.False(t, served[ch], "a chunk served before the crash was served again")
	}
}

// sealedOld pushes n chunks sealed in a generation no server has, at the
// head of the pool, as a restart leaves them, and returns n.
func sealedOld(t *testing.T, rdb *redis.Client, prefix string, n int) int {
	t.Helper()
	var g generation
	g[0] = 0xee
	for range n {
		b := make([]byte, sealedLen+testChunk)
		seal(b, g, make([]byte, testChunk), nil)
		require.NoError(t, rdb.LPush(context.Background(), newKeys(prefix).pool, b).Err())
	}
	return n
}

// startReplicated starts a primary on a free loopback port and a replica
// of it, both stopped when the test ends.
func startReplicated(t *testing.T) (primary, replica *redisServer) {
	t.Helper()
	port := redistest.FreePort(t)
	primary = startRedis(t, "--port", strconv.Itoa(port), "--bind", "127.0.0.1")
	return primary, startRedis(t, "--replicaof", "127.0.0.1", strconv.Itoa(port))
}

// A primary with a replica; the replica's link is cut (the replica
// SIGSTOPped, the primary dropping it) and chunks are popped and served
// from the primary; the primary dies (SIGKILL) and the replica, which
// never saw those pops, is promoted. No chunk served from the primary is
// served from the new one.
func TestFailoverServesNoChunkTwice(t *testing.T) {
	primary, replica := startReplicated(t)
	srv := newEmulator(t)
	ctx := context.Background()
	p := primary.client(t, "", "")
	r := replica.client(t, "", "")

	cfg := testFillerConfig(srv, p, "fo")
	cfg.Workers, cfg.Target, cfg.LowMark = 1, 4*testBatchBytes, 4*testBatchBytes
	fillAndStop(t, cfg)
	n, err := p.Do(ctx, "WAIT", 1, patience.Milliseconds()).Int()
	require.NoError(t, err)
	require.Equal(t, 1, n, "the replica has every push")
	require.Equal(t, int64(4*testBatchChunks), r.LLen(ctx, "fo:pool").Val())

	// Cut the link: the replica stops reading, the primary drops it.
	cont := replica.stopped(t)
	require.NoError(t, p.Do(ctx, "CLIENT", "KILL", "TYPE", "replica").Err())
	c1 := newTestConsumer(t, p, "fo")
	served := map[string]bool{}
	for _, ch := range drawChunks(t, c1, 2*testBatchChunks) {
		served[ch] = true
	}

	primary.stop() // SIGKILL
	cont()
	require.NoError(t, r.Do(ctx, "REPLICAOF", "NO", "ONE").Err())
	require.Eventually(t, func() bool {
		info, err := r.Info(ctx, "replication").Result()
		return err == nil && strings.Contains(info, "role:master")
	}, patience, 5*time.Millisecond)
	require.Equal(t, int64(4*testBatchChunks), r.LLen(ctx, "fo:pool").Val(), "the promoted replica holds the popped chunks")

	rcfg := cfg
	rcfg.Redis = r
	f := newTestFiller(t, rcfg)
	runFiller(t, f)
	c2 := newTestConsumer(t, r, "fo")
	for _, ch := range drawChunks(t, c2, 3*testBatchChunks) {
		assert.False(t, served[ch], "a chunk served by the old primary was served by the new one")
	}
	assert.Equal(t, int64(4*testBatchChunks), c2.Stats().Stale+f.Stats().Wiped, "every chunk of the old primary was erased unserved")
}

// With ConsumerConfig.Replicas, a pop that the replica did not
// acknowledge within ReplicaTimeout (the replica SIGSTOPped) is erased
// unserved and Fetch says why; with the replica back, chunks are served.
func TestConsumerWaitsForReplicas(t *testing.T) {
	primary, replica := startReplicated(t)
	srv := newEmulator(t)
	ctx := context.Background()
	p := primary.client(t, "", "")
	cfg := testFillerConfig(srv, p, "wait")
	cfg.Workers, cfg.Target, cfg.LowMark = 1, 2*testBatchBytes, 2*testBatchBytes
	fillAndStop(t, cfg)
	n, err := p.Do(ctx, "WAIT", 1, patience.Milliseconds()).Int()
	require.NoError(t, err)
	require.Equal(t, 1, n)

	_, err = NewConsumer(ConsumerConfig{Redis: p, Replicas: -1})
	assert.ErrorContains(t, err, "redispool: ConsumerConfig.Replicas -1 is negative")
	c, err := NewConsumer(ConsumerConfig{Redis: p, Prefix: "wait", ChunkSize: testChunk, Replicas: 1, ReplicaTimeout: 50 * time.Millisecond})
	require.NoError(t, err)
	buf := make([]byte, 2*testChunk)
	k, err := c.Fetch(ctx, buf)
	require.NoError(t, err, "the replica acknowledges")
	assert.Equal(t, 2*testChunk, k)
	served := map[string]bool{string(buf[:testChunk]): true, string(buf[testChunk:]): true}

	cont := replica.stopped(t)
	before := p.LLen(ctx, "wait:pool").Val()
	clear(buf)
	_, err = c.Fetch(ctx, buf)
	require.Error(t, err)
	assert.Equal(t, "redispool: a pop from wait:pool reached 0 of 1 replicas within 50ms (ConsumerConfig.ReplicaTimeout): its 2 chunks were erased unserved", err.Error())
	assert.Equal(t, int64(2), c.Stats().Unreplicated)
	assert.Equal(t, before-2, p.LLen(ctx, "wait:pool").Val(), "popped, not served")
	assert.Equal(t, make([]byte, 2*testChunk), buf, "nothing copied out")

	cont()
	require.Eventually(t, func() bool {
		k, err := c.Fetch(ctx, buf)
		if err != nil || k != 2*testChunk {
			return false
		}
		assert.False(t, served[string(buf[:testChunk])])
		return true
	}, patience, 10*time.Millisecond, "the replica is back: chunks are served")
	cc := redis.NewClusterClient(&redis.ClusterOptions{ContextTimeoutEnabled: true})
	t.Cleanup(func() { cc.Close() })
	_, err = NewConsumer(ConsumerConfig{Redis: cc, Replicas: 1})
	assert.ErrorContains(t, err, "redispool: ConsumerConfig.Replicas needs a *redis.Client")
}
