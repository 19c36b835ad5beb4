package redispool

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/qrng-go/qrng/internal/redistest"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runUntil runs f until the test ends, and waits until cond holds. It does
// not read f's keys (runFiller does), which Run may still be choosing.
func runUntil(t *testing.T, f *Filler, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	require.Eventually(t, func() bool {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("filler stopped: %v", err)
		default:
		}
		return cond()
	}, patience, 5*time.Millisecond)
}

// The default prefix is "{qrng}" on a fresh Redis; a pool made under the
// old default, "qrng", by earlier versions is still found and used by
// fillers, consumers and status given no prefix, who say so once; with
// both, the new one wins; a consumer whose ACL allows only the old keys
// uses them.
func TestOldDefaultPoolIsStillRead(t *testing.T) {
	ctx := context.Background()
	old := newKeys(OldDefaultPrefix)
	now := newKeys(DefaultPrefix)

	t.Run("a fresh Redis gets the new prefix", func(t *testing.T) {
		rs := startRedis(t)
		rdb := rs.client(t, "", "")
		srv := newEmulator(t)
		f := newTestFiller(t, testFillerConfig(srv, rdb, ""))
		runUntil(t, f, func() bool { return rdb.LLen(ctx, now.pool).Val() >= testBatchChunks })
		keys, err := rdb.Keys(ctx, "*").Result()
		require.NoError(t, err)
		for _, k := range keys {
			assert.True(t, strings.HasPrefix(k, DefaultPrefix+":"), k)
		}
	})

	t.Run("an old pool is used, and said so once", func(t *testing.T) {
		rs := startRedis(t)
		rdb := rs.client(t, "", "")
		srv := newEmulator(t)
		// An earlier version's filler: the same keys under "qrng".
		earlier := newTestFiller(t, testFillerConfig(srv, rdb, OldDefaultPrefix))
		stop := runFiller(t, earlier)
		require.Eventually(t, func() bool { return idle(earlier) && rdb.LLen(ctx, old.pool).Val() >= testBatchChunks }, patience, 5*time.Millisecond)
		require.NoError(t, stop())
		pooled := rdb.LLen(ctx, old.pool).Val()

		var log syncBuffer
		c, err := NewConsumer(ConsumerConfig{Redis: rdb, Logger: slog.New(slog.NewTextHandler(&log, nil))})
		require.NoError(t, err)
		for range 3 {
			n, err := c.Fetch(ctx, make([]byte, testChunk))
			require.NoError(t, err)
			assert.Equal(t, testChunk, n)
		}
		assert.Equal(t, pooled-3, rdb.LLen(ctx, old.pool).Val(), "popped from the old pool")
		assert.Equal(t, 1, strings.Count(log.String(), "using the keys of the old default prefix"), log.String())
		assert.Contains(t, log.String(), `Redis holds a pool under the old default prefix \"qrng\" and none under \"{qrng}\"`)

		st, err := ReadStatus(ctx, rdb, "")
		require.NoError(t, err)
		assert.Equal(t, OldDefaultPrefix, st.Prefix)
		assert.Equal(t, pooled-3, st.Chunks)

		var flog syncBuffer
		cfg := testFillerConfig(srv, rdb, "")
		cfg.Logger = slog.New(slog.NewTextHandler(&flog, nil))
		f := newTestFiller(t, cfg)
		// Drained below the low mark, the old pool is what this filler refills.
		for rdb.LLen(ctx, old.pool).Val() > testBatchChunks {
			_, err := c.Fetch(ctx, make([]byte, testChunk))
			require.NoError(t, err)
		}
		runUntil(t, f, func() bool {
			return idle(f) && rdb.LLen(ctx, old.pool).Val() >= 4*testBatchChunks && rdb.Exists(ctx, old.filler(f.id)).Val() == 1
		})
		assert.Zero(t, rdb.Exists(ctx, now.pool, now.meta, now.alive, now.fillers).Val(), "nothing under the new prefix")
		assert.Equal(t, 1, strings.Count(flog.String(), "using the keys of the old default prefix"), flog.String())
	})

	t.Run("with both, the new prefix", func(t *testing.T) {
		rs := startRedis(t)
		rdb := rs.client(t, "", "")
		require.NoError(t, rdb.HSet(ctx, old.meta, "chunk_size", testChunk).Err())
		require.NoError(t, rdb.HSet(ctx, now.meta, "chunk_size", testChunk).Err())
		st, err := ReadStatus(ctx, rdb, "")
		require.NoError(t, err)
		assert.Equal(t, DefaultPrefix, st.Prefix)
		c := newTestConsumer(t, rdb, "")
		require.NoError(t, c.ready(ctx))
		assert.Equal(t, now, c.keys)
	})

	t.Run("an ACL for the old keys", func(t *testing.T) {
		rs := startRedis(t)
		admin := rs.client(t, "", "")
		for _, args := range aclLines(t) { // as the earlier versions' documentation gave them
			for i, a := range args {
				args[i] = strings.ReplaceAll(a.(string), DefaultPrefix+":", OldDefaultPrefix+":")
			}
			require.NoError(t, admin.Do(ctx, args...).Err(), "%v", args)
		}
		c := newTestConsumer(t, rs.client(t, "qrng-consumer", "cpw"), "")
		require.NoError(t, c.ready(ctx))
		assert.Equal(t, old, c.keys, "the only keys it may touch")
		st, err := ReadStatus(ctx, rs.client(t, "qrng-status", "spw"), "")
		require.NoError(t, err)
		assert.Equal(t, OldDefaultPrefix, st.Prefix)
	})
}

// A server older than 7.0 is refused, naming its version; a Sentinel
// given as the pool's server is refused, saying so, before anything is
// fetched. (Only Redis 7.0 is installed here: the version rule is tested
// on HELLO's answers, the Sentinel on a real one; the real 7.0 passes in
// every other test.)
func TestRedisVersionChecked(t *testing.T) {
	for _, c := range []struct {
		version string
		ok      bool
	}{{"7.0.0", true}, {"7.0.15", true}, {"7.2.4", true}, {"8.0", true}, {"10.1.2", true},
		{"6.2.14", false}, {"6.0.0", false}, {"5.0.7", false}, {"", false}, {"x.y", false}} {
		err := server{version: c.version, mode: "standalone"}.check()
		if c.ok {
			assert.NoError(t, err, c.version)
			continue
		}
		assert.ErrorIs(t, err, ErrRedisTooOld, c.version)
		assert.ErrorContains(t, err, "Redis "+c.version+" is too old: a pool needs Redis 7.0 or later", c.version)
	}

	s := redistest.StartSentinel(t)
	rdb := redis.NewClient(&redis.Options{Addr: s.Sentinel.Addr(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { rdb.Close() })
	srv := newEmulator(t)
	f := newTestFiller(t, testFillerConfig(srv, rdb, ""))
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	err := f.Run(ctx)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "this address is a Redis Sentinel, not the pool's server")
	assert.True(t, errors.As(err, new(stopError)))
	assert.Zero(t, srv.Counters().RandomRequests+srv.Counters().UsageRequests)
	c := newTestConsumer(t, rdb, "")
	_, err = c.Fetch(ctx, make([]byte, testChunk))
	assert.ErrorContains(t, err, "Redis Sentinel")
	_, err = ReadStatus(ctx, rdb, "")
	assert.ErrorContains(t, err, "Redis Sentinel")
}

// Through a real sentinel (go-redis's failover client), a filler and a
// consumer share the pool on the primary, and go on after a failover:
// the consumer reaches the promoted replica, and the filler fills it.
func TestSentinelFailover(t *testing.T) {
	s := redistest.StartSentinel(t)
	srv := newEmulator(t)
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	fo := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: redistest.MasterName, SentinelAddrs: []string{s.Sentinel.Addr()}, ContextTimeoutEnabled: true})
	t.Cleanup(func() { fo.Close() })
	f := newTestFiller(t, testFillerConfig(srv, fo, ""))
	runFiller(t, f)
	c := newTestConsumer(t, fo, "")
	_, err := c.Fetch(ctx, make([]byte, testChunk))
	require.NoError(t, err)
	s.Failover(t)
	require.Eventually(t, func() bool {
		_, err := c.Fetch(ctx, make([]byte, testChunk))
		return err == nil
	}, patience, 10*time.Millisecond, "the consumer reaches the new primary")

	// Drained below the low mark on the new primary, the pool is refilled
	// there by the same filler, still running.
	primary := s.Primary.Client(t)
	pushed := f.Stats().Batches
	for primary.LLen(ctx, DefaultPrefix+":pool").Val() > testBatchChunks {
		_, err := c.Fetch(ctx, make([]byte, testChunk))
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool {
		return f.Stats().Batches > pushed && primary.LLen(ctx, DefaultPrefix+":pool").Val() > testBatchChunks
	}, patience, 10*time.Millisecond, "the filler fills the new primary")
	assert.Zero(t, f.Stats().PushErrors)
}
