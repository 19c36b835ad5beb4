package redispool

import (
	"context"
	"testing"
	"time"

	"github.com/qrng-go/qrng/qrngtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Issue 17, item 1: a batch the service sends again, to another filler
// (or to a restarted one, whose own memory is gone), enters the pool once:
// the push script checks the pool's shared replay memory.
func TestReplayAcrossFillers(t *testing.T) {
	rs := startRedis(t)
	srv := newEmulator(t)
	rdb := rs.client(t, "", "")
	ctx := context.Background()

	cfgA := testFillerConfig(srv, rdb, "seen")
	cfgA.ID, cfgA.Workers, cfgA.Target = "a", 1, testBatchBytes
	a := newTestFiller(t, cfgA)
	stopA := runFiller(t, a)
	require.Eventually(t, func() bool { return a.Stats().Batches == 1 && idle(a) }, patience, 5*time.Millisecond)
	require.NoError(t, stopA())

	// The service sends filler b, which never saw it, a's batch again.
	srv.Inject(qrngtest.Fault{Replay: true})
	cfgB := cfgA
	cfgB.ID, cfgB.Target, cfgB.LowMark = "b", 2*testBatchBytes, 2*testBatchBytes
	b := newTestFiller(t, cfgB)
	stopB := runFiller(t, b)
	require.Eventually(t, func() bool { return idle(b) && b.Stats().Batches >= 1 }, patience, 5*time.Millisecond)
	require.NoError(t, stopB())

	st := b.Stats()
	assert.Equal(t, int64(1), st.Replayed, "the shared memory refused the repeat")
	assert.Equal(t, int64(1), st.Rejected)
	vals, err := rdb.LRange(ctx, "seen:pool", 0, -1).Result()
	require.NoError(t, err)
	assert.Len(t, vals, 2*testBatchChunks, "a's batch and b's fresh one")
	have := map[string]bool{}
	for i, v := range vals {
		assert.False(t, have[v], "chunk %d is in the pool twice", i)
		have[v] = true
	}
	ttl := rdb.PTTL(ctx, "seen:seen").Val()
	assert.Positive(t, ttl, "the memory expires")
	assert.LessOrEqual(t, ttl, seenTTL)
	n := rdb.ZCard(ctx, "seen:seen").Val()
	assert.Positive(t, n)
	assert.LessOrEqual(t, n, int64(2*2*seenPerBatch), "a bounded sample of each batch")
}

// The replay memory keeps at most seenCap digests: the oldest go first.
func TestReplayMemoryBounded(t *testing.T) {
	rs := startRedis(t)
	rdb := rs.client(t, "", "")
	ctx := context.Background()
	k := newKeys("cap")
	gen := serverGen(t, rdb, k)
	push := func(marker string, fps ...any) []any {
		args := append([]any{60000, 60000, 4, gen.String(), len(fps)}, fps...)
		args = append(args, sealedChunk(t, rdb, k, make([]byte, testChunk)))
		v, err := pushScript.Run(ctx, rdb, []string{k.pool, k.pushed(marker), k.seen}, args...).Slice()
		require.NoError(t, err)
		return v
	}
	assert.Equal(t, []any{int64(1), int64(1)}, push("1", "d1", "d2", "d3"))
	assert.Equal(t, []any{int64(3), int64(2)}, push("2", "d9", "d2"), "d2 was pushed before")
	assert.Equal(t, []any{int64(0), int64(0)}, push("1", "d7"), "a push sent twice enters once")
	assert.Equal(t, []any{int64(1), int64(2)}, push("3", "d4", "d5"))
	assert.Equal(t, int64(4), rdb.ZCard(ctx, k.seen).Val(), "capacity 4")
	assert.Equal(t, []any{int64(1), int64(3)}, push("4", "d1"), "d1, the oldest, was forgotten")
}
