package redispool

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qrng-go/qrng"
	"github.com/qrng-go/qrng/qrngtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A pool of 64 KiB chunks and consumers under the package documentation's
// consumer ACL: a Consumer without ChunkSize uses the pool's (which that
// ACL may read), a Source reading 1 MiB through it (as 'qrng bytes -n
// 1MiB' does) pops at most 17 chunks, a ChunkSize that differs is an error
// that pops nothing, and a consumer whose ACL cannot read the pool's
// settings learns the size from the first chunk, one chunk at a time,
// wasting nothing.
func TestConsumerUsesThePoolsChunkSize(t *testing.T) {
	const chunk = 64 << 10
	rs := startRedis(t)
	admin := rs.client(t, "", "")
	ctx := context.Background()
	for _, args := range aclLines(t) {
		require.NoError(t, admin.Do(ctx, args...).Err(), "%v", args)
	}
	// The consumer line of the first release, without the pool's settings.
	require.NoError(t, admin.Do(ctx, "ACL", "SETUSER", "old-consumer", "on", ">opw", "resetkeys", "resetchannels", "-@all",
		"+lmpop", "+blmpop", "+eval", "+info", "~{qrng}:pool", "(+get %R~{qrng}:alive %R~{qrng}:spent %R~{qrng}:failing)").Err())
	srv := newEmulator(t)
	cfg := testFillerConfig(srv, rs.client(t, "qrng-filler", "fpw"), "")
	cfg.ChunkSize, cfg.BatchSize, cfg.Target, cfg.LowMark = chunk, 4*chunk*8/testBits, 40*chunk, 40*chunk
	f := newTestFiller(t, cfg)
	runFiller(t, f)
	pooled := func() int64 { return admin.LLen(ctx, "{qrng}:pool").Val() }
	topUp := func() {
		t.Helper()
		require.Eventually(t, func() bool { return idle(f) && pooled() >= 40 }, patience, 5*time.Millisecond)
	}
	topUp()

	consumer := rs.client(t, "qrng-consumer", "cpw")
	c := newTestConsumerChunk(t, consumer, "", 0)
	size, err := c.ChunkSize(ctx)
	require.NoError(t, err)
	assert.Equal(t, chunk, size)
	src := qrng.NewSource(qrng.Config{Upstream: c, Bits: 64, BatchSize: (1 << 20) / 8, OnDemand: true, Workers: 1,
		Fallback: qrng.FallbackNever, Logger: slog.New(slog.DiscardHandler)})
	before := pooled()
	// Read as 'qrng bytes -n 1MiB' does: its first read asks for its need,
	// so the Source's first request is that, in whole chunks (it asks
	// the Consumer's FetchUnit).
	n, err := io.ReadFull(src, make([]byte, 1<<20))
	require.NoError(t, err)
	require.Equal(t, 1<<20, n)
	src.Close()
	assert.LessOrEqual(t, c.Stats().Chunks, int64(17), "1 MiB from 64 KiB chunks")
	assert.LessOrEqual(t, before-pooled(), int64(17))
	assert.Zero(t, c.Stats().Discarded)

	// Fetch pops what it can serve, and a chunk's tail at most.
	topUp()
	c = newTestConsumerChunk(t, consumer, "", 0)
	for _, tc := range []struct{ size, chunks, n, discarded int }{
		{3 * chunk, 3, 3 * chunk, 0},
		{3*chunk + chunk/2, 3, 3 * chunk, 0},
		{chunk / 4, 1, chunk / 4, 3 * chunk / 4}, // the tail of one chunk
	} {
		before := c.Stats()
		n, err := c.Fetch(ctx, make([]byte, tc.size))
		require.NoError(t, err)
		after := c.Stats()
		assert.Equal(t, int64(tc.chunks), after.Chunks-before.Chunks, "a %d-byte Fetch", tc.size)
		assert.Equal(t, tc.n, n)
		assert.Equal(t, int64(tc.discarded), after.Discarded-before.Discarded)
	}

	// A ChunkSize that is not the pool's: an error naming both, nothing popped.
	wrong := newTestConsumerChunk(t, consumer, "", 16<<10)
	before = pooled()
	_, err = wrong.Fetch(ctx, make([]byte, 4<<10))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "ConsumerConfig.ChunkSize 16384 differs from the pool's chunk size 65536")
	assert.Equal(t, before, pooled(), "nothing popped")

	// Without the settings: one chunk first, then whole chunks.
	old := newTestConsumerChunk(t, rs.client(t, "old-consumer", "opw"), "", 0)
	p := make([]byte, 1<<20)
	n1, err := old.Fetch(ctx, p)
	require.NoError(t, err)
	assert.Equal(t, chunk, n1, "one chunk, its size unknown")
	n2, err := old.Fetch(ctx, p)
	require.NoError(t, err)
	assert.Equal(t, 16*chunk, n2)
	assert.Zero(t, old.Stats().Discarded)
	wrongOld := newTestConsumerChunk(t, rs.client(t, "old-consumer", "opw"), "", 16<<10)
	_, err = wrongOld.Fetch(ctx, p)
	assert.ErrorContains(t, err, "differs from the pool's chunk size 65536")
	assert.Equal(t, int64(1), wrongOld.Stats().Chunks, "one chunk told the size")
}

// A refunded reservation lifts the block it caused: the pool's quota of
// 1.5 batches has one batch in flight, so the other worker is refused;
// that request fails (503) and is refunded, and a consumer reading
// meanwhile gets bytes, never a quota error.
func TestRefundThenReadNoQuotaError(t *testing.T) {
	rs := startRedis(t)
	rdb := rs.client(t, "", "")
	emu := qrngtest.New(qrngtest.Options{QuotaBits: -1})
	release := make(chan struct{})
	var first atomic.Bool
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == qrngtest.PathRandomNumbers && first.CompareAndSwap(false, true) {
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
			http.Error(w, `{"detail":"busy"}`, http.StatusServiceUnavailable)
			return
		}
		emu.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	t.Cleanup(emu.Shutdown)
	cfg := testFillerConfig(&qrngtest.Server{URL: hs.URL, Token: emu.Token()}, rdb, "refund")
	cfg.QuotaBits, cfg.Target = testBatchBits+testBatchBits/2, 1<<30
	cfg.HeartbeatTTL = 30 * time.Second // no expiry in this test
	f := newTestFiller(t, cfg)
	runFiller(t, f)
	require.Eventually(t, func() bool { return f.Stats().QuotaBlocked }, patience, 5*time.Millisecond,
		"the second worker was refused while the first request is held")

	c := newTestConsumer(t, rs.client(t, "", ""), "refund")
	got := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), patience)
		defer cancel()
		_, err := c.Fetch(ctx, make([]byte, testChunk))
		got <- err
	}()
	close(release)
	err := <-got
	assert.NoError(t, err, "bytes after the refund, not a quota error")
	assert.Equal(t, testBatchBits, f.Stats().RefundedBits)
}

// The reasons are read after a pop that found nothing; chunks pushed in
// between (the last batch, pushed just before its filler reported the
// quota spent) are served, not hidden behind a quota error.
func TestNoQuotaErrorWhileChunksArePooled(t *testing.T) {
	rs := startRedis(t)
	rdb := rs.client(t, "", "")
	ctx := context.Background()
	k := newKeys("late")
	c := newTestConsumer(t, rdb, "late")
	c.beforeWhy = func() {
		c.beforeWhy = nil
		chunk := make([]byte, testChunk)
		chunk[0] = 1
		require.NoError(t, rdb.RPush(ctx, k.pool, sealedChunk(t, rdb, k, chunk)).Err())
		require.NoError(t, rdb.Set(ctx, k.spent, "quota "+unix(time.Now().Add(time.Hour)), time.Minute).Err())
	}
	n, err := c.Fetch(ctx, make([]byte, testChunk))
	require.NoError(t, err)
	assert.Equal(t, testChunk, n)
	_, err = c.Fetch(ctx, make([]byte, testChunk))
	assert.ErrorIs(t, err, qrng.ErrQuotaExceeded, "then, the pool empty, the quota")
}

// A Source's slow start over a pool asks for whole chunks (the Consumer's
// FetchUnit): one value costs one chunk, none of it erased unserved, and a
// reader in 32 KiB pieces never has a chunk cut, although its first
// demand is smaller than a chunk. Without FetchUnit the first request
// would be 512 bytes, cutting a 64 KiB chunk and erasing the rest.
func TestSlowStartAsksForWholeChunks(t *testing.T) {
	const chunk = 64 << 10
	rs := startRedis(t)
	admin := rs.client(t, "", "")
	ctx := context.Background()
	srv := newEmulator(t)
	cfg := testFillerConfig(srv, rs.client(t, "", ""), "")
	cfg.ChunkSize, cfg.BatchSize, cfg.Target, cfg.LowMark = chunk, 4*chunk*8/testBits, 40*chunk, 40*chunk
	f := newTestFiller(t, cfg)
	runFiller(t, f)
	require.Eventually(t, func() bool { return idle(f) && admin.LLen(ctx, "{qrng}:pool").Val() >= 40 }, patience, 5*time.Millisecond)

	for _, read := range []struct {
		name  string
		total int
		piece int
	}{{"one value", 8, 8}, {"1 MiB in 32 KiB pieces", 1 << 20, 32 << 10}} {
		c := newTestConsumerChunk(t, admin, "", 0)
		_, err := c.ChunkSize(ctx) // as a Source's first Fetch would learn it
		require.NoError(t, err)
		src := qrng.NewSource(qrng.Config{Upstream: c, Bits: 64, BatchSize: (1 << 20) / 8, Workers: 1,
			Fallback: qrng.FallbackNever, Logger: slog.New(slog.DiscardHandler)})
		buf := make([]byte, read.piece)
		for done := 0; done < read.total; done += read.piece {
			_, err := io.ReadFull(src, buf)
			require.NoError(t, err, read.name)
		}
		require.NoError(t, src.Close())
		st := c.Stats()
		assert.Zero(t, st.Discarded, "%s: no chunk cut", read.name)
		assert.Positive(t, st.Chunks, read.name)
		if read.total == 8 {
			assert.Equal(t, int64(1), st.Chunks, "one value costs one chunk")
		}
	}
}
