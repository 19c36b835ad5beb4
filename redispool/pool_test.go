package redispool

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/qrng-go/qrng"
	"github.com/qrng-go/qrng/qrngtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// checkServed verifies streams of bytes handed out by consumers: each is
// a sequence of whole chunks, every chunk comes from a batch the emulator
// served intact (at a chunk boundary), no chunk appears twice across all
// streams, and no 8-byte window appears twice. It returns the number of
// chunks.
func checkServed(t *testing.T, idx map[string]chunkPos, streams [][]byte) int {
	t.Helper()
	seen := map[string]bool{}
	windows := map[[8]byte]bool{}
	var chunks, untraced, twice, windowTwice int
	for i, s := range streams {
		require.Zero(t, len(s)%testChunk, "stream %d is whole chunks", i)
		for off := 0; off < len(s); off += testChunk {
			c := string(s[off : off+testChunk])
			if _, ok := idx[c]; !ok {
				untraced++
			}
			if seen[c] {
				twice++
			}
			seen[c] = true
			chunks++
		}
		for j := 0; j+8 <= len(s); j++ {
			w := [8]byte(s[j : j+8])
			if windows[w] {
				windowTwice++
			}
			windows[w] = true
		}
	}
	assert.Zero(t, untraced, "chunks not traceable to a batch the emulator served")
	assert.Zero(t, twice, "chunks served twice")
	assert.Zero(t, windowTwice, "8-byte windows served twice")
	return chunks
}

// Consumers over separate connections, as separate processes and as
// goroutines, draw from one pool while a filler refills it, until the
// shared quota is spent and the pool is empty. Every chunk pushed is
// served exactly once (nothing crashed, so nothing was lost), and every
// byte is traceable to a batch the emulator served.
func TestConsumersShareOnePool(t *testing.T) {
	const batches = 24
	for _, mode := range []string{"processes", "goroutines"} {
		t.Run(mode, func(t *testing.T) {
			rs := startRedis(t)
			srv := newEmulator(t)
			rdb := rs.client(t, "", "")
			cfg := testFillerConfig(srv, rdb, "share")
			cfg.QuotaBits, cfg.Target = batches*testBatchBits, 3*testBatchBytes
			f := newTestFiller(t, cfg)
			stop := runFiller(t, f)

			var streams [][]byte
			if mode == "processes" {
				streams = consumeInProcesses(t, rs, 4)
			} else {
				streams = consumeInGoroutines(t, rs, 8, 4)
			}
			require.NoError(t, stop())

			idx := chunkIndex(t, srv, testBits, testChunk)
			n := checkServed(t, idx, streams)
			assert.Equal(t, batches*testBatchChunks, n, "every chunk pushed was served once")
			assert.Equal(t, int64(n), f.Stats().Chunks)
			assert.Len(t, idx, n, "and every chunk served intact by the emulator was pushed")
			assert.Zero(t, rdb.LLen(context.Background(), "share:pool").Val())
			assert.Equal(t, srv.Counters().BitsServed, quotaUsed(t, rdb, "share"))
		})
	}
}

// consumeInProcesses runs n child consumers and returns their output.
func consumeInProcesses(t *testing.T, rs *redisServer, n int) [][]byte {
	outs := make([]*bytes.Buffer, n)
	var errs [](*bytes.Buffer)
	var cmds []interface{ Wait() error }
	for i := range n {
		cmd := startChild(t, "consumer", "REDISPOOL_SOCK="+rs.sock, "REDISPOOL_PREFIX=share")
		outs[i] = new(bytes.Buffer)
		stderr := new(bytes.Buffer)
		cmd.Stdout, cmd.Stderr = outs[i], stderr
		require.NoError(t, cmd.Start())
		cmds = append(cmds, cmd)
		errs = append(errs, stderr)
	}
	streams := make([][]byte, n)
	for i, cmd := range cmds {
		assert.NoError(t, cmd.Wait(), "consumer %d: %s", i, errs[i])
		streams[i] = outs[i].Bytes()
	}
	return streams
}

// consumeInGoroutines runs per goroutines on each of clients clients (one
// Consumer per client) until the pool is empty for good.
func consumeInGoroutines(t *testing.T, rs *redisServer, clients, per int) [][]byte {
	var mu sync.Mutex
	var streams [][]byte
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for range clients {
		c := newTestConsumer(t, rs.client(t, "", ""), "share")
		for range per {
			wg.Go(func() {
				var out []byte
				p := make([]byte, 6*testChunk)
				for {
					n, err := c.Fetch(ctx, p[:testChunk*(1+rand.IntN(5))+rand.IntN(testChunk)])
					out = append(out, p[:n]...)
					if err != nil {
						if !errors.Is(err, qrng.ErrQuotaExceeded) {
							t.Errorf("consumer: %v", err)
						}
						break
					}
				}
				mu.Lock()
				streams = append(streams, out)
				mu.Unlock()
			})
		}
	}
	wg.Wait()
	return streams
}

// A filler killed with SIGKILL in the middle of its work leaves only whole
// batches in the pool: each batch's chunks complete and in order, none
// twice. Once its heartbeat expires, an emptied pool says ErrPoolEmpty.
func TestFillerKilledLeavesWholeBatches(t *testing.T) {
	const chunk, batch = 512, 16384 // 64 chunks a batch
	rs := startRedis(t)
	srv := newEmulator(t)
	rdb := rs.client(t, "", "")
	ctx := context.Background()
	cmd := startChild(t, "filler", "REDISPOOL_SOCK="+rs.sock, "REDISPOOL_PREFIX=kill",
		"REDISPOOL_TOKEN="+srv.Token, "REDISPOOL_URL="+srv.URL,
		"REDISPOOL_CHUNK="+strconv.Itoa(chunk), "REDISPOOL_BATCH="+strconv.Itoa(batch))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	require.Eventually(t, func() bool { return rdb.LLen(ctx, "kill:pool").Val() >= 8*64 }, 20*time.Second, time.Millisecond,
		"filler child: %s", &stderr)
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	cmd.Wait()

	vals, err := rdb.LRange(ctx, "kill:pool", 0, -1).Result()
	require.NoError(t, err)
	idx := chunkIndex(t, srv, testBits, chunk)
	seen := map[string]bool{}
	for i := 0; i < len(vals); {
		first, ok := idx[unseal(t, vals[i])]
		require.True(t, ok, "chunk %d is not from a batch the emulator served", i)
		require.Zero(t, first.index, "chunk %d starts a batch", i)
		for j := range 64 {
			require.Less(t, i+j, len(vals), "batch cut short at the end of the list")
			v := unseal(t, vals[i+j])
			require.Len(t, v, chunk)
			require.Equal(t, chunkPos{first.batch, j}, idx[v], "chunk %d is chunk %d of batch %d", i+j, j, first.batch)
			require.False(t, seen[v], "chunk %d is in the pool twice", i+j)
			seen[v] = true
		}
		i += 64
	}
	t.Logf("%d whole batches in the pool when the filler was killed", len(vals)/64)

	// The killed filler's heartbeat expires (TTL 1 s); after that, the
	// drained pool reports ErrPoolEmpty rather than waiting for it.
	require.Eventually(t, func() bool {
		st, err := ReadStatus(ctx, rdb, "kill")
		return err == nil && len(st.Fillers) == 0
	}, 10*time.Second, 10*time.Millisecond)
	c, err := NewConsumer(ConsumerConfig{Redis: rdb, Prefix: "kill", ChunkSize: chunk})
	require.NoError(t, err)
	p := make([]byte, 64*chunk)
	for {
		_, err := c.Fetch(ctx, p)
		if err != nil {
			assert.ErrorIs(t, err, ErrPoolEmpty)
			break
		}
	}
}

// Redis killed under a running consumer: Fetch fails with a clear error
// that is neither "pool empty" nor quota; once Redis is back (empty, as
// persistence is off), the filler refills it, restarts the month's count
// from the service's usage, and Fetch works again.
func TestRedisRestartUnderConsumer(t *testing.T) {
	rs := startRedis(t)
	srv := newEmulator(t)
	rdb := rs.client(t, "", "")
	f := newTestFiller(t, testFillerConfig(srv, rdb, "restart"))
	runFiller(t, f)
	c := newTestConsumer(t, rs.client(t, "", ""), "restart")
	ctx := context.Background()
	p := make([]byte, 2*testChunk)
	n, err := c.Fetch(ctx, p)
	require.NoError(t, err)
	require.Equal(t, len(p), n)
	servedBefore := srv.Counters().BitsServed
	require.Positive(t, servedBefore)

	rs.stop()
	_, err = c.Fetch(ctx, p)
	require.Error(t, err)
	assert.NotErrorIs(t, err, ErrPoolEmpty)
	assert.NotErrorIs(t, err, qrng.ErrQuotaExceeded)
	assert.Regexp(t, `^redispool: pop from restart:pool: `, err.Error())

	rs.start()
	require.Eventually(t, func() bool {
		n, err := c.Fetch(ctx, p)
		return err == nil && n == len(p)
	}, patience, 10*time.Millisecond)
	// A batch the filler held across the restart may reach the pool
	// before the counter is back (its push is sent again): the counter
	// comes back once the filler sees the new run_id.
	assert.Eventually(t, func() bool { return quotaUsed(t, rdb, "restart") >= servedBefore }, patience, 10*time.Millisecond,
		"the lost counter restarted from the service's usage")
}

// An empty pool: with no filler, Fetch says so at once; with a live filler
// it waits for the refill, up to its context; with the quota spent it
// says so, as a quota error.
func TestEmptyPool(t *testing.T) {
	rs := startRedis(t)
	ctx := context.Background()
	p := make([]byte, testChunk)

	t.Run("no filler ever", func(t *testing.T) {
		c := newTestConsumer(t, rs.client(t, "", ""), "never")
		start := time.Now()
		_, err := c.Fetch(ctx, p)
		assert.Less(t, time.Since(start), 5*time.Second)
		require.ErrorIs(t, err, ErrPoolEmpty)
		assert.NotErrorIs(t, err, qrng.ErrQuotaExceeded)
		assert.Equal(t, "redispool: pool empty and no filler running", err.Error())
		var ra interface{ RetryAfter() time.Duration }
		require.ErrorAs(t, err, &ra)
		assert.Equal(t, time.Second, ra.RetryAfter())
	})

	t.Run("filler stopped", func(t *testing.T) {
		srv := newEmulator(t)
		rdb := rs.client(t, "", "")
		cfg := testFillerConfig(srv, rdb, "stopped")
		cfg.HeartbeatTTL = time.Minute // the stop, not the TTL, must tell consumers
		f := newTestFiller(t, cfg)
		stop := runFiller(t, f)
		c := newTestConsumer(t, rdb, "stopped")
		_, err := c.Fetch(ctx, p)
		require.NoError(t, err)
		require.NoError(t, stop())
		for err == nil {
			_, err = c.Fetch(ctx, make([]byte, 8*testChunk))
		}
		start := time.Now()
		_, err = c.Fetch(ctx, p)
		assert.Less(t, time.Since(start), 5*time.Second, "well before the heartbeat's minute")
		assert.ErrorIs(t, err, ErrPoolEmpty)
	})

	t.Run("live filler: wait for the refill", func(t *testing.T) {
		srv := newEmulator(t)
		rdb := rs.client(t, "", "")
		// Every request is slow, so the pool is surely empty when Fetch
		// starts (one slow request left the other worker free to fill it
		// first on a quick machine).
		srv.Inject(qrngtest.Fault{Latency: time.Second, Times: -1})
		f := newTestFiller(t, testFillerConfig(srv, rdb, "live"))
		runFiller(t, f)
		require.Eventually(t, func() bool { return rdb.Exists(ctx, "live:alive").Val() == 1 }, 10*time.Second, time.Millisecond)
		c := newTestConsumer(t, rdb, "live")
		n, err := c.Fetch(ctx, p)
		require.NoError(t, err)
		assert.Equal(t, len(p), n)
		assert.Equal(t, int64(1), c.Stats().Waits)
	})

	t.Run("live filler: the context ends the wait", func(t *testing.T) {
		srv := newEmulator(t)
		rdb := rs.client(t, "", "")
		srv.Inject(qrngtest.Fault{Latency: time.Minute, Times: -1})
		f := newTestFiller(t, testFillerConfig(srv, rdb, "slow"))
		runFiller(t, f)
		require.Eventually(t, func() bool { return rdb.Exists(ctx, "slow:alive").Val() == 1 }, 10*time.Second, time.Millisecond)
		c := newTestConsumer(t, rdb, "slow")
		tctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := c.Fetch(tctx, p)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Less(t, time.Since(start), 5*time.Second)
	})

	t.Run("quota spent", func(t *testing.T) {
		srv := newEmulator(t)
		rdb := rs.client(t, "", "")
		cfg := testFillerConfig(srv, rdb, "spent")
		cfg.QuotaBits = testBatchBits + testBatchBits/2
		// The quota key lives as long as the heartbeat: one that outlives
		// any pause of a loaded machine keeps the reason from expiring
		// into ErrPoolEmpty while the test reads it.
		cfg.HeartbeatTTL = 30 * time.Second
		f := newTestFiller(t, cfg)
		runFiller(t, f)
		c := newTestConsumer(t, rdb, "spent")
		var err error
		var got int
		for err == nil {
			var n int
			n, err = c.Fetch(ctx, make([]byte, 3*testChunk))
			got += n
		}
		assert.Equal(t, testBatchBytes, got, "the one batch the quota allowed")
		require.ErrorIs(t, err, qrng.ErrQuotaExceeded)
		assert.NotErrorIs(t, err, ErrPoolEmpty)
		assert.Contains(t, err.Error(), "redispool: pool empty and the monthly quota is spent until ")
		var ra interface{ RetryAfter() time.Duration }
		require.ErrorAs(t, err, &ra)
		assert.Positive(t, ra.RetryAfter())
		assert.LessOrEqual(t, ra.RetryAfter(), spentRecheck)
	})
}

// Fetch erases what it popped: the strings go-redis made for the chunks
// are zeroed once copied, and a chunk too big for the buffer is served in
// part and erased, never kept.
func TestFetchErasesPoppedChunks(t *testing.T) {
	rs := startRedis(t)
	srv := newEmulator(t)
	rdb := rs.client(t, "", "")
	runFiller(t, newTestFiller(t, testFillerConfig(srv, rdb, "erase")))
	c := newTestConsumer(t, rdb, "erase")
	var popped []string
	c.afterTake = func(s []string) { popped = s }
	ctx := context.Background()

	p := make([]byte, 3*testChunk)
	n, err := c.Fetch(ctx, p)
	require.NoError(t, err)
	require.Equal(t, len(p), n)
	require.Len(t, popped, 3)
	zero := string(make([]byte, testChunk))
	for i, s := range popped {
		assert.Len(t, s, testChunk)
		assert.True(t, s == zero, "popped chunk %d was not erased", i)
		assert.NotEqual(t, make([]byte, testChunk), p[i*testChunk:(i+1)*testChunk], "but its copy was served")
	}

	small := make([]byte, 100)
	n, err = c.Fetch(ctx, small)
	require.NoError(t, err)
	assert.Equal(t, 100, n)
	assert.Equal(t, int64(testChunk-100), c.Stats().Discarded)
	require.Len(t, popped, 1)
	assert.True(t, popped[0] == zero)

	_, err = c.Fetch(ctx, nil)
	assert.Error(t, err)
}
