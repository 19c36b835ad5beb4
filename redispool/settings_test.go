package redispool

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A Redis that would lose the pool is refused before anything is spent:
// an eviction policy (with maxmemory set) names the policy and the fix; a
// maxmemory too small for the target names maxmemory. noeviction with
// room enough starts.
func TestRedisThatWouldLoseThePoolIsRefused(t *testing.T) {
	rs := startRedis(t)
	admin := rs.client(t, "", "")
	ctx := context.Background()
	for _, tc := range []struct {
		policy, maxmemory string
		target            int64
		want              string // "" starts
	}{
		{"allkeys-lru", "8mb", 0, "maxmemory-policy is allkeys-lru (with maxmemory 8388608)"},
		{"volatile-lru", "8mb", 0, "maxmemory-policy is volatile-lru (with maxmemory 8388608)"},
		{"noeviction", "8mb", 16 << 20, "maxmemory 8388608 leaves"},
		{"noeviction", "8mb", 0, ""},
	} {
		t.Run(tc.policy+"-"+tc.maxmemory, func(t *testing.T) {
			require.NoError(t, admin.ConfigSet(ctx, "maxmemory-policy", tc.policy).Err())
			require.NoError(t, admin.ConfigSet(ctx, "maxmemory", tc.maxmemory).Err())
			t.Cleanup(func() { admin.ConfigSet(ctx, "maxmemory", "0") })
			srv := newEmulator(t)
			prefix := "evict" + strings.ReplaceAll(tc.policy, "-", "")
			f, _ := defaultFiller(t, srv, rs.client(t, "", ""), prefix, time.Now())
			if tc.target > 0 {
				f.high = tc.target / int64(f.chunk)
			}
			if tc.want == "" {
				runFiller(t, f)
				require.Eventually(t, func() bool { return f.Stats().Batches > 0 }, patience, 5*time.Millisecond)
				return
			}
			rctx, cancel := context.WithTimeout(ctx, patience)
			defer cancel()
			err := f.Run(rctx)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			if tc.policy != "noeviction" {
				assert.Contains(t, err.Error(), "set maxmemory-policy noeviction")
			} else {
				assert.Contains(t, err.Error(), "raise maxmemory")
			}
			assert.Zero(t, srv.Counters().RandomRequests, "the service spent nothing")
			assert.Zero(t, srv.Counters().BitsServed)
		})
	}
}

// An eviction policy set while the filler runs: Redis evicts the pool,
// the filler sees the evictions at its next heartbeat, logs that the pool
// shrank without pops, and stops with the policy named.
func TestEvictionsWhileFillingStopTheFiller(t *testing.T) {
	rs := startRedis(t)
	srv := newEmulator(t)
	rdb := rs.client(t, "", "")
	ctx := context.Background()
	var logs syncBuffer
	cfg := testFillerConfig(srv, rdb, "shrink")
	cfg.Target = 64 * testBatchBytes
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	f := newTestFiller(t, cfg)
	done := make(chan error, 1)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { done <- f.Run(runCtx) }()
	require.Eventually(t, func() bool { return rdb.LLen(ctx, "shrink:pool").Val() >= 16*testBatchChunks }, patience, 5*time.Millisecond)
	// Below what is used by half the pool: the next write evicts keys
	// (the pool is by far the largest) until the rest fits.
	m := parseMemoryInfo(rdb.Info(ctx, "memory").Val())
	limit := m.used - rdb.LLen(ctx, "shrink:pool").Val()*testChunk/2
	require.NoError(t, rdb.ConfigSet(ctx, "maxmemory-policy", "allkeys-random").Err())
	require.NoError(t, rdb.ConfigSet(ctx, "maxmemory", strconv.FormatInt(limit, 10)).Err())
	t.Cleanup(func() { rdb.ConfigSet(ctx, "maxmemory", "0") })
	select {
	case err := <-done:
		require.Error(t, err)
		assert.Contains(t, err.Error(), "maxmemory-policy is allkeys-random")
	case <-time.After(patience):
		t.Fatal("the filler went on feeding an evicting Redis")
	}
	assert.Contains(t, logs.String(), "the pool may have shrunk without pops")
	assert.Positive(t, f.Stats().EvictedKeys, "the evictions seen are counted")
}

// A push that Redis refuses for want of memory is sent again with its
// marker: once memory is free, the batch, paid for, enters the pool once.
// If Redis keeps refusing, the filler stops with an error that says so.
func TestPushOutOfMemory(t *testing.T) {
	rs := startRedis(t)
	ctx := context.Background()

	t.Run("retried until it fits", func(t *testing.T) {
		srv := newEmulator(t)
		rdb := rs.client(t, "", "")
		cfg := testFillerConfig(srv, rdb, "oom1")
		cfg.Workers, cfg.Target = 1, testBatchBytes
		f := newTestFiller(t, cfg)
		f.beforePush = func() { rdb.ConfigSet(ctx, "maxmemory", "1") } // noeviction: writes refused
		f.pushFailed = func(attempt int, err error) {
			if attempt == 2 {
				rdb.ConfigSet(ctx, "maxmemory", "0")
			}
		}
		t.Cleanup(func() { rdb.ConfigSet(ctx, "maxmemory", "0") })
		runFiller(t, f)
		require.Eventually(t, func() bool { return f.Stats().Batches == 1 }, patience, 5*time.Millisecond)
		st := f.Stats()
		assert.Equal(t, int64(2), st.PushRetries)
		assert.Zero(t, st.PushErrors)
		assert.Equal(t, int64(testBatchChunks), rdb.LLen(ctx, "oom1:pool").Val(), "the batch entered once")
		assert.Equal(t, srv.Counters().BitsServed, quotaUsed(t, rdb, "oom1"))
	})

	t.Run("stops when it persists", func(t *testing.T) {
		srv := newEmulator(t)
		rdb := rs.client(t, "", "")
		cfg := testFillerConfig(srv, rdb, "oom2")
		cfg.Workers, cfg.Target = 1, testBatchBytes
		f := newTestFiller(t, cfg)
		f.beforePush = func() { rdb.ConfigSet(ctx, "maxmemory", "1") }
		t.Cleanup(func() { rdb.ConfigSet(ctx, "maxmemory", "0") })
		rctx, cancel := context.WithTimeout(ctx, patience)
		defer cancel()
		err := f.Run(rctx)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "for want of memory")
		assert.Contains(t, err.Error(), "raise Redis's maxmemory")
		assert.Equal(t, int64(1), f.Stats().PushErrors)
		assert.Equal(t, int64(oomTries-1), f.Stats().PushRetries)
	})
}

// A filler that may not run INFO cannot tell whether Redis will evict the
// pool: it refuses to run, saying what it needs, and spends nothing.
func TestFillerWithoutInfoRefuses(t *testing.T) {
	rs := startRedis(t)
	admin := rs.client(t, "", "")
	ctx := context.Background()
	line := aclLines(t)["qrng-filler"]
	line[2] = "no-info"
	line = append(line, "-info")
	require.NoError(t, admin.Do(ctx, line...).Err())
	srv := newEmulator(t)
	f := newTestFiller(t, testFillerConfig(srv, rs.client(t, "no-info", "fpw"), ""))
	rctx, cancel := context.WithTimeout(ctx, patience)
	defer cancel()
	err := f.Run(rctx)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "the filler needs +info")
	assert.Zero(t, srv.Counters().RandomRequests)
}
