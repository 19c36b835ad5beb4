package redispool

import (
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/qrng-go/qrng"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// newPoolSource is a qrng.Source over a Consumer of its own connection.
func newPoolSource(t *testing.T, rs *redisServer, prefix string, cfg qrng.Config) *qrng.Source {
	t.Helper()
	cfg.Upstream = newTestConsumer(t, rs.client(t, "", ""), prefix)
	cfg.Bits, cfg.BatchSize = testBits, 4*testChunk*8/testBits // four chunks a batch
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	src := qrng.NewSource(cfg)
	t.Cleanup(func() { src.Close() })
	return src
}

// Sources in one process, each over its own connection, draw the pool
// through Config.Upstream until the shared quota is spent: every chunk is
// served once, traceable to the emulator, and the end is the quota error.
func TestSourcesShareOnePool(t *testing.T) {
	const batches = 12
	rs := startRedis(t)
	srv := newEmulator(t)
	rdb := rs.client(t, "", "")
	cfg := testFillerConfig(srv, rdb, "src")
	cfg.QuotaBits, cfg.Target = batches*testBatchBits, 3*testBatchBytes
	stop := runFiller(t, newTestFiller(t, cfg))

	const sources = 3
	streams := make([][]byte, sources)
	var wg sync.WaitGroup
	for i := range sources {
		src := newPoolSource(t, rs, "src", qrng.Config{Fallback: qrng.FallbackNever, WaitTimeout: time.Minute, Workers: 1})
		wg.Go(func() {
			p := make([]byte, testChunk)
			for {
				n, err := src.Read(p)
				if err != nil {
					assert.ErrorIs(t, err, qrng.ErrQuotaExceeded, "source %d ends on the quota", i)
					assert.Zero(t, n)
					return
				}
				streams[i] = append(streams[i], p...)
			}
		})
	}
	wg.Wait()
	require.NoError(t, stop())
	n := checkServed(t, chunkIndex(t, srv, testBits, testChunk), streams)
	assert.Equal(t, batches*testBatchChunks, n, "every chunk pushed was served once")
}

// An empty pool with no filler: FallbackNever says so at once,
// FallbackOnError falls back, counted and reported.
func TestEmptyPoolThroughSource(t *testing.T) {
	rs := startRedis(t)
	never := newPoolSource(t, rs, "empty", qrng.Config{Fallback: qrng.FallbackNever, WaitTimeout: time.Minute})
	start := time.Now()
	_, err := never.Read(make([]byte, 8))
	assert.ErrorIs(t, err, ErrPoolEmpty)
	assert.Less(t, time.Since(start), 5*time.Second, "promptly, not after WaitTimeout")

	var reason error
	var mu sync.Mutex
	fb := newPoolSource(t, rs, "empty", qrng.Config{OnFallback: func(e qrng.FallbackEvent) {
		mu.Lock()
		defer mu.Unlock()
		if e.Active {
			reason = e.Reason
		}
	}})
	n, err := fb.Read(make([]byte, 64))
	require.NoError(t, err)
	assert.Equal(t, 64, n)
	assert.EqualValues(t, 64, fb.Stats().FallbackBytes)
	mu.Lock()
	assert.True(t, errors.Is(reason, ErrPoolEmpty), "the reason names the empty pool: %v", reason)
	mu.Unlock()
}
