package metrics

import (
	"context"
	"io"
	"log/slog"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/qrng-go/qrng"
	"github.com/qrng-go/qrng/internal/redistest"
	"github.com/qrng-go/qrng/qrngtest"
	"github.com/qrng-go/qrng/redispool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// gather returns each metric's value by name (one series per name here).
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	fams, err := reg.Gather()
	require.NoError(t, err)
	got := map[string]float64{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			got[f.GetName()] = value(m)
		}
	}
	return got
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return 0
}

// A filler, a consumer and a Source reading through it, on a real Redis
// and the emulator: each collector reports its object's counters as its
// Stats say them, the pool's from Redis; with Redis gone the pool's
// collector says so (status_up 0) and reports nothing else.
func TestCollectorsReportTheStats(t *testing.T) {
	srv := qrngtest.Start(t, qrngtest.Options{})
	rs := redistest.Start(t)
	rdb := rs.Client(t)
	ctx := context.Background()
	const chunk, bits, batch = 1024, 16, 4096 // a batch: 8 chunks
	f, err := redispool.NewFiller(redispool.FillerConfig{Redis: rdb, Token: srv.Token, BaseURL: srv.URL,
		Bits: bits, BatchSize: batch, ChunkSize: chunk, Target: 4 * batch * bits / 8, Workers: 1, DailyBits: -1,
		HeartbeatTTL: time.Second, PollInterval: 20 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- f.Run(rctx) }()
	t.Cleanup(func() { cancel(); <-done })
	require.Eventually(t, func() bool { return rdb.LLen(ctx, "{qrng}:pool").Val() >= 32 && f.Stats().Batches >= 4 },
		time.Minute, 5*time.Millisecond)

	c, err := redispool.NewConsumer(redispool.ConsumerConfig{Redis: rdb})
	require.NoError(t, err)
	src := qrng.NewSource(qrng.Config{Upstream: c, Bits: 64, BatchSize: 2 * chunk / 8, Workers: 1, Fallback: qrng.FallbackNever})
	t.Cleanup(func() { src.Close() })
	_, err = io.ReadFull(src, make([]byte, 3*chunk))
	require.NoError(t, err)

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewFillerCollector(f), NewConsumerCollector("reader", c), NewSourceCollector("main", src), NewPoolCollector(rdb, ""))
	// The Source closed (no prefetch under way), and the pool above its
	// low mark (no top-up), the counters hold still.
	require.NoError(t, src.Close())
	require.Greater(t, rdb.LLen(ctx, "{qrng}:pool").Val(), int64(16))
	fs, cs, ss := f.Stats(), c.Stats(), src.Stats()
	got := gather(t, reg)

	assert.Equal(t, float64(fs.Batches), got["qrng_filler_batches_pushed_total"])
	assert.Equal(t, float64(fs.Chunks*chunk), got["qrng_filler_bytes_pushed_total"])
	assert.Equal(t, float64(fs.ReservedBits), got["qrng_filler_reserved_bits_total"])
	assert.Equal(t, float64(srv.Counters().BitsServed), got["qrng_filler_reserved_bits_total"], "every reservation was served")
	assert.Equal(t, float64(cs.Chunks), got["qrng_consumer_chunks_total"])
	assert.Equal(t, float64(cs.Bytes), got["qrng_consumer_bytes_total"])
	assert.Positive(t, cs.Chunks)
	assert.Equal(t, float64(ss.QuantumBytes), got["qrng_source_quantum_bytes_total"])
	assert.Equal(t, float64(ss.FetchedBytes), got["qrng_source_fetched_bytes_total"])
	assert.Equal(t, float64(3*chunk), got["qrng_source_quantum_bytes_total"])
	assert.Equal(t, float64(rdb.LLen(ctx, "{qrng}:pool").Val()), got["qrng_pool_chunks"])
	assert.Equal(t, float64(srv.Counters().BitsServed), got["qrng_pool_quota_used_bits"])
	assert.Equal(t, float64(1), got["qrng_pool_status_up"])
	assert.Equal(t, float64(1), got["qrng_pool_fillers"])
	assert.Equal(t, float64(-1), got["qrng_pool_daily_share_left_bits"], "no daily limit")

	// Every metric the README names is reported, and every one reported
	// is named there.
	names := readmeMetrics(t)
	var reported []string
	for name := range got {
		reported = append(reported, name)
	}
	sort.Strings(reported)
	assert.Equal(t, names, reported)

	rs.Stop()
	got = gather(t, reg)
	assert.Equal(t, float64(0), got["qrng_pool_status_up"])
	_, ok := got["qrng_pool_chunks"]
	assert.False(t, ok, "no pool metric without a status")
}

// The daily share left is the share less today's use, never below 0.
func TestDailyShareLeft(t *testing.T) {
	rs := redistest.Start(t)
	rdb := rs.Client(t)
	ctx := context.Background()
	day := time.Now().UTC()
	// A pool whose first filler recorded a daily rule of 1000 bits a day.
	require.NoError(t, rdb.HSet(ctx, "{qrng}:meta", "chunk_size", 1024, "bits", 16, "quota_bits", 1000000, "daily", 1000).Err())
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewPoolCollector(rdb, ""))
	for _, c := range []struct{ used, left float64 }{{0, 1000}, {300, 700}, {1000, 0}, {1200, 0}} {
		require.NoError(t, rdb.Set(ctx, "{qrng}:day:"+day.Format("2006-01-02"), int64(c.used), time.Hour).Err())
		got := gather(t, reg)
		assert.Equal(t, c.used, got["qrng_pool_day_used_bits"])
		assert.Equal(t, c.left, got["qrng_pool_daily_share_left_bits"], "used %v", c.used)
	}
}

// readmeMetrics are the metric names in the README's "Watching a pool".
func readmeMetrics(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	s := string(b)
	i := strings.Index(s, "### Watching a pool")
	require.GreaterOrEqual(t, i, 0, "README has a \"Watching a pool\" section")
	s = s[i+1:]
	if j := strings.Index(s, "\n#"); j >= 0 {
		s = s[:j]
	}
	seen := map[string]bool{}
	for _, m := range regexp.MustCompile("`(qrng_[a-z_]+)`").FindAllStringSubmatch(s, -1) {
		seen[m[1]] = true
	}
	var names []string
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
